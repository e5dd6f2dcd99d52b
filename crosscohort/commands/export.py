"""``crosscohort export``: the export gate, run inside a TRE on association files."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from crosscohort.commands import add_command, key_value_pairs
from crosscohort.commands.gate_options import add_gate_rule_options
from crosscohort.contract.errors import ConfigError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_command(
        subparsers,
        "export",
        description=(
            "The export gate: the only door out of a TRE. Reads one cohort's association "
            "results, suppresses rows breaking the disclosure rules (counts 1..min-count, "
            "MAC, case/control MAC, residual df, no estimate), keeps only GWAS-SSF columns, "
            "writes {trait}.tsv.gz, {trait}.meta.yaml, audit.json, audit.md and manifest.json "
            "(last; signed into manifest.sig.json with --signing-key), scans everything written "
            "for sample IDs (with --wgr-summary also wgr.json, the step-1 summary of whole-genome "
            "regression, through its allow-list), and moves the bundle into --out-dir only when every "
            "check passes; "
            "otherwise --out-dir holds only the audit."
        ),
    )
    p.add_argument("--cohort", required=True, help="cohort id")
    p.add_argument("--sumstats", action="append", required=True, metavar="TRAIT=PATH",
                   help="association results of one trait (repeatable)")
    p.add_argument("--trait-type", action="append", default=[], metavar="TRAIT=quantitative|binary",
                   help="type of each trait (required for every trait; binary enables case/control rules)")
    p.add_argument("--ids-from", action="append", required=True, metavar="FILE",
                   help=".fam / #FID IID files holding the cohort's sample IDs; every FID, IID (and .psam SID) is a forbidden string")
    p.add_argument("--build", required=True, help="genome assembly, e.g. GRCh38")
    p.add_argument("--ancestry", required=True, help="sample ancestry text for the metadata")
    digest = p.add_mutually_exclusive_group(required=True)
    digest.add_argument("--config-digest", metavar="HEX", help="digest of the configuration used")
    digest.add_argument("--config", metavar="FILE", help="configuration file; its SHA-256 is recorded as the digest")
    add_gate_rule_options(p)
    p.add_argument("--qc-ledger", action="append", default=[], metavar="FILE",
                   help="QC ledger JSON to copy (counts only) into the audit and metadata (repeatable)")
    p.add_argument("--signing-key", metavar="FILE",
                   help="the TRE's Ed25519 private key (crosscohort keygen); signs manifest.json into "
                        "manifest.sig.json, which central verify checks against the cohort sheet's public key")
    p.add_argument("--sufficient", action="append", default=[], metavar="TRAIT=DIR",
                   help="opt in to the federated pooled fit: gate and release the sums that "
                        "'crosscohort sufficient --out-dir DIR' wrote for TRAIT (repeatable; off by default)")
    p.add_argument("--wgr-summary", metavar="FILE",
                   help="the step-1 summary of 'crosscohort wgr' (OUT.wgr.json) when the association used "
                        "whole-genome regression: released as wgr.json through its allow-list (shrinkage, "
                        "CV R2, λGC without LOCO; counts of people withheld), with each trait's λGC with LOCO")
    p.add_argument("--out-dir", required=True,
                   help="bundle directory, e.g. exports/C: new, empty, or the gate's own earlier output "
                        "(replaced whole); anything else in it is refused and left untouched")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from crosscohort.contract.bundle import file_digest
    from crosscohort.contract.release import GateRules
    from crosscohort.tre.gate.bundle import export_bundle

    digest = args.config_digest
    if args.config:
        if not Path(args.config).is_file():
            raise ConfigError(f"{args.config}: no such file (--config)")
        digest = file_digest(args.config)
    rules = GateRules.from_options(args)
    res = export_bundle(
        key_value_pairs(args.sumstats, "--sumstats", key="TRAIT"),
        cohort=args.cohort,
        trait_types=key_value_pairs(args.trait_type, "--trait-type", key="TRAIT"),
        ids_from=args.ids_from,
        build=args.build,
        ancestry=args.ancestry,
        config_digest=digest,
        out_dir=args.out_dir,
        rules=rules,
        qc_ledgers=args.qc_ledger,
        signing_key=args.signing_key,
        sufficient=key_value_pairs(args.sufficient, "--sufficient", key="TRAIT") if args.sufficient else None,
        wgr_summary=args.wgr_summary,
    )
    for trait, r in res.traits.items():
        print(f"{trait}: {r.ledger.n_in} rows in, {r.ledger.n_kept} released, suppressed {r.suppressed}")
    audit = json.loads((Path(res.out_dir) / "audit.json").read_text())
    for trait, e in audit.get("sufficient", {}).items():
        print(f"{trait}: sufficient statistics {e['status']}: {e['rows_in']} rows in, {e['rows_released']} released"
              + "".join(f"; {r}" for r in e["reasons"]))
    print(f"bundle written to {res.out_dir}")
    return 0
