"""The export bundle: sumstats, GWAS-SSF metadata, the gate's audit and the manifest.

:func:`export_bundle` runs the whole gate for one cohort: read each trait's
association file from disk, apply :mod:`crosscohort.contract.release`, write the
bundle into a staging directory, re-read and re-check its own output, scan
every file for sample identifiers (:mod:`crosscohort.tre.gate.identifiers`),
write ``manifest.json`` last (signed when a key is given,
:mod:`crosscohort.contract.signature`), and only then move the bundle into place
(:mod:`crosscohort.tre.gate.outdir`: only the gate's own earlier output is ever
replaced, and the bundle appears whole or not at all). When any check fails,
``out_dir`` holds only ``audit.json`` and ``audit.md`` saying why (with
identifiers redacted) and :class:`GateError` is raised.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

import yaml

import crosscohort.contract.release_wgr as wgr_gate
from crosscohort import __version__
from crosscohort.contract.bundle import ALLOWED_SUFFIXES, AUDIT_MD, MANIFEST, file_digest
from crosscohort.contract.errors import ConfigError, GateError, InputError, UserError
from crosscohort.contract.ledger import Ledger, read_ledgers
from crosscohort.contract.release import (
    RULE_DESCRIPTIONS,
    RULE_ORDER,
    TRAIT_TYPES,
    GateResult,
    GateRules,
    apply_gate,
    released_violations,
)
from crosscohort.contract.release_sums import audit_md as sufficient_audit_md
from crosscohort.contract.release_sums import export_sufficient
from crosscohort.contract.release_sums import own_strings as sufficient_own_strings
from crosscohort.contract.signature import load_private_key, sign_manifest
from crosscohort.contract.sumstats import ALL_COLUMNS, read_sumstats, write_sumstats
from crosscohort.tre.gate.identifiers import (
    ID_RULE,
    SCAN_RULE,
    GateBlock,
    SampleIds,
    read_sample_ids,
    redact,
    scan_released,
)
from crosscohort.tre.gate.outdir import OutDir, claim_out_dir

__all__ = [
    "ALLOWED_SUFFIXES",
    "MANIFEST",
    "ExportResult",
    "export_bundle",
    "file_digest",
    "software_name",
]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,99}$")
_HEX = re.compile(r"^[0-9a-fA-F]{8,128}$")


#: What a ledger of people says in released files instead of its counts.
WITHHELD = (
    "withheld: counts of people removed by QC are not released (count rules); "
    "the released sample size is the number analysed"
)


def count_rules_text(rules: GateRules) -> list[str]:
    """The count rules of ``rules``, as the audit states them (one sentence each)."""
    k = rules.min_count
    if rules.release_n == "trait":
        n_rule = (
            "Sample sizes are released once per trait: every row carries the trait's sample size "
            "(binary traits: cases and controls likewise, n their sum), the largest per-variant count "
            "among the rows the row rules keep"
            + (f", rounded to the nearest multiple of {rules.round_n}" if rules.round_n else "")
            + "; per-variant counts are not released, so no difference between rows can be formed. "
            "Sizes of different traits that would differ by 1 to " + str(k) + " are lowered to the "
            "smallest of their group (traits whose sizes lie within " + str(k) + " of each other), "
            "so two traits' released sizes differ by 0 or by more than " + str(k) + "."
        )
    else:
        n_rule = (
            f"Per-variant sample sizes are released, each rounded to the nearest multiple of "
            f"{rules.round_n} (more than {k}), so two released counts differ by 0 or by more than {k}."
        )
    return [
        f"Every released count of people (n, n_cases, n_controls, sample_size, case_count, "
        f"control_count) is 0 or more than {k}, before and after rounding; a variant whose own "
        f"count of people is 1 to {k} is not released.",
        n_rule,
        "QC ledgers that count people (unit samples) are withheld; ledgers that count variants "
        "are released as counts of variants, as are the gate's own row counts (variants are not "
        "people, so these counts may be 1 to " + str(k) + ").",
        "The effect allele frequency is rounded to d decimals, d the largest integer with "
        f"10^d <= 2 (n - {rules.n_margin}), n the row's released sample size: one unit of the last "
        "decimal stands for at least one allele copy at every sample size within "
        f"{rules.n_margin} of n, so 2n x EAF gives back neither the per-variant sample size nor an "
        "exact allele count; the minor allele count recomputed from released values, "
        f"2 n min(EAF, 1-EAF), is at least {rules.min_mac:g} (rule released_mac).",
        "The number of samples in the sample files is not released (its difference to the "
        "analysed sample size would count the people left out).",
    ]


#: What the gate cannot detect, stated in every audit for the output checker.
LIMITS: tuple[str, ...] = (
    "An identifier encoded or transformed (hashed, reversed, split over cells, written in another "
    "alphabet or as hexadecimal in a digest) is not found.",
    "A purely numeric identifier is compared only as a whole token of text; in numeric fields "
    "(positions, statistics, counts) and inside longer tokens (rs12 for ID 12) it cannot be told "
    "from a number and is not flagged; identifiers of letters and digits shorter than 5 "
    "characters likewise only as whole tokens.",
    "Identifiers not listed in the sample files given to the gate (other studies' IDs, names, "
    "dates of birth) are not searched for.",
    "Statistics can carry information about individuals that no rule here measures: an effect "
    "and its standard error for a variant carried by few people, or the per-variant sample size "
    "approximated from standard errors and p-values (a t-distribution p-value depends on the "
    "residual degrees of freedom).",
    "Differences between this release and another release of the same people (another trait "
    "set, another date, another study) are not controlled by the gate. Within this bundle, "
    "sample sizes of different traits are coarsened so that they differ by 0 or by more than "
    "min_count; the exact n of sufficient statistics cannot be coarsened, so sums whose n "
    "(or cases, controls) would differ by 1 to min_count from another released count are "
    "refused (rule sufficient_difference_between_traits).",
    "A table of people whose row count differs from the number of samples in the sample files, "
    "with allow-listed columns only, is not recognised as such.",
)


def software_name() -> str:
    """``crosscohort <version>``, as recorded in metadata and manifests."""
    return f"crosscohort {__version__}"


@dataclass(frozen=True)
class ExportResult:
    """A released bundle: where it is, and each trait's gate result.

    ``traits[t].released`` is emptied (columns kept) once its file is written
    and re-checked: the bundle's ``{t}.tsv.gz`` is the released table, and a
    multi-trait export at biobank scale should not hold every trait's copy.
    """

    out_dir: Path
    cohort: str
    traits: dict[str, GateResult]
    files: tuple[str, ...]


def _utc_now() -> str:
    """UTC time in ISO 8601 basic format (``20261124T111224Z``).

    One token under the identifier scan's delimiters: the extended form's
    colons would split it into hour, minute and second, and a short numeric
    sample ID such as ``12`` would then match the export's own timestamp.
    """
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def _iso_date(created: str) -> str:
    """``2026-11-24`` from ``20261124T111224Z`` (:func:`_utc_now`)."""
    return f"{created[:4]}-{created[4:6]}-{created[6:8]}"


def _check_name(kind: str, value: str) -> None:
    if not _NAME.match(value):
        raise ConfigError(
            f"{kind} {value!r} must start with a letter or digit and use only letters, digits, "
            "'_', '.', '+', '-' (it becomes a file name)"
        )


def _metadata(
    trait: str,
    result: GateResult,
    *,
    cohort: str,
    build: str,
    ancestry: str,
    data_file: Path,
    rules: GateRules,
    qc: list[Ledger],
    created: str,
) -> dict:
    rel = result.released
    binary = result.trait_type == "binary"

    def top(col: str) -> int | None:
        # The largest released (rounded, rule-checked) count: never a count the gate withheld.
        if col not in rel.columns or rel.height == 0 or rel[col].null_count() == rel.height:
            return None
        return int(rel[col].max())

    sample = {
        "sample_size": top("n"),
        "sample_ancestry": [ancestry],
        "case_control_study": binary,
    }
    if binary:
        sample["case_count"] = top("n_cases")
        sample["control_count"] = top("n_controls")
    meta = {
        "data_file_name": data_file.name,
        "file_type": "GWAS-SSF v1.0",
        "data_file_md5sum": file_digest(data_file, "md5"),
        "data_file_sha256sum": file_digest(data_file),
        "is_harmonised": False,
        "genome_assembly": build,
        "coordinate_system": "1-based",
        "trait_description": [trait],
        "cohort": [cohort],
        "analysis_software": software_name(),
        "case_control_study": binary,
        "sample_size": sample["sample_size"],
        "samples": [sample],
        "date_last_modified": _iso_date(created),
    }
    if binary:
        meta["case_count"] = sample["case_count"]
        meta["control_count"] = sample["control_count"]
    meta["data_qc"] = [released_ledger(q) for q in qc if q.trait in (None, trait)]
    meta["export_gate"] = {
        "rows_in": result.ledger.n_in,
        "rows_released": result.ledger.n_kept,
        "rows_suppressed": dict(result.ledger.removed),
        "rules": rules.to_dict(),
    }
    return meta


#: How the differences check labels a trait's sufficient statistics.
SUMS_LABEL = " (sufficient statistics)"


def small_difference_pairs(sizes: dict[str, dict[str, int | None]], *,
                           min_count: int) -> list[tuple[str, str, str]]:
    """(trait a, trait b, kind) of each pair whose released counts of one kind differ by 1 to ``min_count``."""
    traits = sorted(sizes)
    return [(a, b, kind) for i, a in enumerate(traits) for b in traits[i + 1:]
            for kind in ("sample_size", "case_count", "control_count")
            if (x := sizes[a].get(kind)) is not None and (y := sizes[b].get(kind)) is not None
            and 0 < abs(x - y) <= min_count]


def small_differences(sizes: dict[str, dict[str, int | None]], *, min_count: int) -> list[str]:
    """Pairs of traits whose released counts of one kind differ by 1 to ``min_count``.

    Such a difference counts people (e.g. those with one phenotype but not
    the other). The gate does not change the numbers; it names the pairs
    (never the difference) so that the output checker sees them, and says
    how to coarsen them.
    """
    out = []
    for a, b, kind in small_difference_pairs(sizes, min_count=min_count):
        # Exact sums cannot be rounded (round_n refuses them): the remedy differs.
        fix = ("leave out the sufficient statistics of one of them (their n is exact and "
               "cannot be coarsened)" if SUMS_LABEL in a + b else
               "set round_n above min_count to coarsen released sample sizes")
        out.append(
            f"{kind} of traits {a} and {b} differ by 1 to {min_count}: the difference counts "
            f"people; {fix}"
        )
    return out


#: Why the gate refuses sums it had passed: their exact counts beside another released count.
SUMS_DIFFERENCE_RULE = "sufficient_difference_between_traits"


def refuse_sums_in_small_differences(sizes: dict[str, dict[str, int | None]], *,
                                     min_count: int) -> list[str]:
    """The traits whose sufficient statistics must be refused so that no released difference counts 1..min_count people.

    Exact sums cannot be coarsened, so a trait's sums whose n (or cases, or
    controls) lies 1 to ``min_count`` from another count of the release (another
    trait's sums, or a trait's sumstats n lowered by
    :func:`coarsen_between_traits`) would count the people between them. The
    sums in most such pairs go first (ties: trait order), until none is left;
    ``sizes`` loses their entries. Differences between sumstats alone are not
    this function's: the gate coarsens them or blocks.
    """
    refused = []
    while True:
        pairs = small_difference_pairs(sizes, min_count=min_count)
        counts: dict[str, int] = {}
        for a, b, _ in pairs:
            for label in (a, b):
                if label.endswith(SUMS_LABEL):
                    counts[label] = counts.get(label, 0) + 1
        if not counts:
            return refused
        label = max(sorted(counts), key=lambda k: counts[k])
        del sizes[label]
        refused.append(label[: -len(SUMS_LABEL)])


#: The released count columns of each kind that :func:`small_differences` compares.
_SIZE_COLUMNS = {"sample_size": "n", "case_count": "n_cases", "control_count": "n_controls"}


def coarsen_between_traits(
    sizes: dict[str, dict[str, int | None]], *, min_count: int, binary: set[str]
) -> dict[str, dict[str, int | None]]:
    """Released sizes of several traits, lowered so that no difference counts 1..min_count people.

    Two traits' sample sizes (or case, or control counts) that differ by 1 to
    ``min_count`` count the people with one phenotype and not the other. For
    each kind of count, the traits' values are grouped by single linkage
    (sorted, a gap of at most ``min_count`` joins a group) and each group is
    released at its smallest value: two released values then differ by 0 or
    by more than ``min_count``. A binary trait keeps ``n = cases +
    controls``: a lowered ``n`` lowers its larger group, a lowered group
    lowers ``n``; this repeats until nothing changes (values only fall, so
    it ends). Every value is at most its input, so a released size never
    overstates the people analysed (and the EAF's decimals, set by the
    released n, only get fewer).

    Parameters
    ----------
    sizes
        ``{trait: {"sample_size": n, "case_count": c, "control_count": k}}``
        as released by the per-trait rule (None where absent).
    min_count
        The count rule's threshold.
    binary
        The traits whose ``n`` is their cases plus controls.

    Returns
    -------
    dict
        The same shape, lowered where needed.
    """
    out = {t: dict(v) for t, v in sizes.items()}
    changed = True
    while changed:
        changed = False
        for kind in _SIZE_COLUMNS:
            values = sorted((v[kind], t) for t, v in out.items() if v.get(kind) is not None)
            group: list[str] = []
            low = prev = None
            for value, t in values:
                if prev is None or value - prev > min_count:
                    group, low = [], value
                group.append(t)
                prev = value
                if out[t][kind] != low:
                    out[t][kind] = low
                    changed = True
        for t in binary & out.keys():
            v = out[t]
            if None in (v.get("sample_size"), v.get("case_count"), v.get("control_count")):
                continue
            total = v["case_count"] + v["control_count"]
            if v["sample_size"] < total:
                larger = "control_count" if v["control_count"] >= v["case_count"] else "case_count"
                v[larger] -= total - v["sample_size"]
                changed = True
            elif v["sample_size"] > total:
                v["sample_size"] = total
                changed = True
    return out


def released_ledger(q: Ledger) -> dict:
    """A QC ledger as released: counts of variants as they are, counts of people withheld."""
    if q.unit == "variants":
        return {"stage": q.stage, "unit": q.unit, "trait": q.trait, "n_in": q.n_in,
                "n_kept": q.n_kept, "removed": dict(q.removed), "changed": dict(q.changed)}
    return {"stage": q.stage, "unit": q.unit, "trait": q.trait, "counts": WITHHELD}


def _trait_audit(trait: str, result: GateResult, rules: GateRules) -> dict:
    binary = result.trait_type == "binary"
    rows = []
    for rule in RULE_ORDER:
        applies = not (
            (rule == "min_mac_group" and (not binary or rules.min_mac_group == 0))
            or (rule == "min_residual_df" and rules.min_residual_df == 0)
        )
        rows.append({
            "rule": rule,
            "threshold": rules.threshold(rule),
            "description": RULE_DESCRIPTIONS[rule],
            "rows_suppressed": result.ledger.removed.get(rule, 0),
            # "pass": no released row breaks the rule (enforced, then re-checked on the file).
            "status": "pass" if applies else "not applicable",
        })
    return {
        "trait_type": result.trait_type,
        "released_file": f"{trait}.tsv.gz",
        "rows_in": result.ledger.n_in,
        "rows_released": result.ledger.n_kept,
        "rows_suppressed": sum(result.ledger.removed.values()),
        "rules": rows,
        "columns_released": list(result.columns_released),
        "columns_internal_stripped": list(result.columns_internal_stripped),
        "columns_dropped": list(result.columns_dropped),
        "ledger": result.ledger.to_dict(),
    }


def _audit_md(audit: dict) -> str:
    out = [
        f"# Export gate audit: cohort {audit['cohort']}",
        "",
        f"- Status: **{audit['status'].upper()}**",
        f"- Software: {audit['software']}; created {audit['created']} (UTC)",
        f"- Configuration digest: `{audit['config_digest']}`",
        "",
    ]
    if audit["status"] != "released":
        out += ["## Why the export was blocked", "", audit["reason"], "",
                "Nothing was released: this directory holds only this audit.", ""]
    for trait, t in audit.get("traits", {}).items():
        out += [
            f"## Trait {trait} ({t['trait_type']})",
            "",
            f"Rows in: {t['rows_in']}; released: {t['rows_released']}; suppressed: {t['rows_suppressed']}.",
            "",
            "| rule | threshold | rows suppressed | status | what it checks |",
            "|---|---|---|---|---|",
        ]
        for r in t["rules"]:
            thr = "-" if r["threshold"] is None else r["threshold"]
            out.append(f"| {r['rule']} | {thr} | {r['rows_suppressed']} | {r['status']} | {r['description']} |")
        out += [
            "",
            f"Columns released: {', '.join(t['columns_released'])}.",
            f"Internal columns used and stripped: {', '.join(t['columns_internal_stripped']) or 'none'}.",
            f"Other input columns dropped (never released): {', '.join(t['columns_dropped']) or 'none'}.",
            "",
        ]
    if audit.get("qc_ledgers"):
        # Every count that leaves is on this page: the QC ledgers go into each trait's metadata too.
        out += ["## QC ledgers released", "",
                "Counts of variants as the ledgers give them; counts of people are withheld (count rules).", "",
                "| stage | unit | trait | in | kept | removed | changed |", "|---|---|---|---|---|---|---|"]
        for q in audit["qc_ledgers"]:
            row = [q["stage"], q["unit"], q["trait"] or "all traits"]
            if "n_in" in q:
                row += [q["n_in"], q["n_kept"], *(", ".join(f"{k} {v}" for k, v in q[key].items()) or "none"
                                                  for key in ("removed", "changed"))]
            else:
                row += ["withheld"] * 4
            out.append("| " + " | ".join(str(x) for x in row) + " |")
        out.append("")
    if "sufficient" in audit:
        out += sufficient_audit_md(audit["sufficient"], GateRules(**audit["gate_rules"]))
    if "wgr" in audit:
        w = audit["wgr"]
        out += [
            "## Whole-genome regression: step-1 summary",
            "",
            f"Released as {w['released_file']} through its allow-list (rule {w['rule']}): status {w['status']}. "
            f"{w['withheld']}.",
            "",
        ]
    if "summary" in audit:
        s = audit["summary"]
        out += [
            "## Summary",
            "",
            f"Traits: {s['traits']}; rows in: {s['rows_in']}; released: {s['rows_released']}; "
            f"suppressed: {s['rows_suppressed']} (in = released + suppressed).",
            "",
        ]
    out += [
        "## Identifier rule",
        "",
        audit["identifier_scan"]["rule"],
        "",
        f"Result: {audit['identifier_scan']['status']}.",
        "",
    ]
    if audit.get("count_rules"):
        out += ["## Count rules", ""] + [f"- {r}" for r in audit["count_rules"]] + [""]
    if audit.get("differences_between_traits"):
        out += ["## Warning: small differences between traits", ""]
        out += [f"- {r}" for r in audit["differences_between_traits"]] + [""]
    if audit.get("limits"):
        out += ["## What the gate cannot detect", ""] + [f"- {r}" for r in audit["limits"]] + [""]
    out += ["Bundle files allowed: " + ", ".join(ALLOWED_SUFFIXES) + ".", ""]
    return "\n".join(out)


def _own_strings(audit: dict, rules: GateRules) -> frozenset[str]:
    """The gate's own fixed text in ``audit`` and the metadata: not compared with sample IDs.

    Only text the gate writes whatever the data (rule wording, its software
    name and timestamps, digests it computed or validated as hex, registry
    column names); every string that comes from an input (cohort, trait,
    ancestry, build, dropped column names, QC stage and reason names) is
    compared.
    """
    own = {
        *RULE_DESCRIPTIONS.values(), *RULE_ORDER, *TRAIT_TYPES, ID_RULE, SCAN_RULE, WITHHELD,
        *LIMITS, *count_rules_text(rules), *ALL_COLUMNS, *ALLOWED_SUFFIXES,
        software_name(), __version__, audit["created"], _iso_date(audit["created"]), audit["config_digest"],
        "GWAS-SSF v1.0", "1-based", "pass", "fail", "not applicable", "not completed",
        "released", "blocked", "variants", "samples", "export_gate", rules.release_n,
        # Fixed wording around trait names, which are compared as file names and keys.
        *audit.get("differences_between_traits", ()),
        # The sums' rule wording and refusal reasons (crosscohort.contract.release_sums).
        *sufficient_own_strings(audit.get("sufficient", {})),
    }
    return frozenset(own)


def _write_json(obj: dict, path: Path) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n", encoding="utf-8")


def _write_audit(audit: dict, directory: Path) -> None:
    _write_json(audit, directory / "audit.json")
    (directory / "audit.md").write_text(_audit_md(audit), encoding="utf-8")
    # audit.md holds nothing beyond audit.json: its numbers and strings are
    # the JSON's (checked there), the rest is this module's fixed wording.
    back = json.loads((directory / "audit.json").read_text(encoding="utf-8"))
    if (directory / "audit.md").read_text(encoding="utf-8") != _audit_md(back):
        raise GateError(f"{directory / 'audit.md'}: not the rendering of audit.json; export blocked")


def _read_qc_ledgers(paths: Iterable[str | Path]) -> list[Ledger]:
    """The ``--qc-ledger`` files' ledgers; a file that is not a ledger JSON is an input error."""
    out: list[Ledger] = []
    for path in paths:
        try:
            got = read_ledgers([path])
        except UserError:
            raise
        except (OSError, UnicodeDecodeError, TypeError, AttributeError, ValueError) as exc:
            raise InputError(f"{path}: not a ledger JSON ({type(exc).__name__}: {exc}); rule: --qc-ledger "
                             "is the ledger.json crosscohort qc writes (one ledger object or a list)") from exc
        if not got:
            raise InputError(f"{path}: holds no ledger; rule: --qc-ledger is the ledger.json crosscohort qc "
                             "writes (one ledger object or a list)")
        out.extend(got)
    return out


def export_bundle(
    sumstats: dict[str, str | Path],
    *,
    cohort: str,
    trait_types: dict[str, str],
    ids_from: list[str | Path],
    build: str,
    ancestry: str,
    config_digest: str,
    out_dir: str | Path,
    rules: GateRules | None = None,
    qc_ledgers: list[str | Path] = (),
    signing_key: str | Path | None = None,
    sufficient: dict[str, str | Path] | None = None,
    wgr_summary: str | Path | None = None,
) -> ExportResult:
    """Run the export gate on one cohort's association files and write the bundle.

    Parameters
    ----------
    sumstats
        ``{trait: path}`` of association results (GWAS-SSF + internal columns).
    cohort
        Cohort id (used in file contents and the ledger).
    trait_types
        ``{trait: "quantitative" | "binary"}``; every trait needs one.
    ids_from
        Files holding the cohort's sample IDs (``.fam``, ``#FID IID`` tables).
    build, ancestry
        Genome assembly (e.g. ``GRCh38``) and sample ancestry text for the metadata.
    config_digest
        Hex digest of the configuration used (recorded in the manifest).
    out_dir
        Bundle directory; must be absent, empty, or hold only the gate's own
        earlier output (a bundle matching its manifest, or a blocked audit).
        It is replaced as a whole, so it cannot be the working directory.
    rules
        Gate thresholds (defaults: :class:`GateRules`).
    qc_ledgers
        Ledger JSON files to copy, as counts, into the audit and metadata.
    signing_key
        The TRE's Ed25519 private key (PEM); when given, ``manifest.json`` is
        signed into ``manifest.sig.json``.
    sufficient
        ``{trait: directory}`` of ``crosscohort sufficient`` output to gate
        and release beside the sumstats (the cohort opted in to the
        federated pooled fit; rules: :mod:`crosscohort.contract.release_sums`).
    wgr_summary
        The step-1 summary (``OUT.wgr.json`` of ``crosscohort wgr``) when the
        association used whole-genome regression: released as ``wgr.json``
        through its allow-list (:mod:`crosscohort.contract.release_wgr`), with
        each trait's λGC of the released sumstats (with LOCO) added.

    Returns
    -------
    ExportResult

    Raises
    ------
    ConfigError
        Bad cohort/trait names, trait types, build, digest, signing key or
        output directory (one holding anything the gate did not write);
        nothing is written or removed then.
    GateError
        A sample identifier, a person-ID column or a per-person table was found
        in the output, or the re-check of the written files failed; ``out_dir``
        then holds only the audit saying why.
    """
    rules = rules or GateRules()
    out_dir = Path(out_dir)
    _check_name("cohort", cohort)
    if not sumstats:
        raise ConfigError("no --sumstats TRAIT=PATH given; nothing to export")
    for trait in sumstats:
        _check_name("trait", trait)
        if trait not in trait_types:
            raise ConfigError(
                f"trait {trait!r} has no --trait-type {trait}=quantitative|binary "
                "(the binary rules depend on it, so there is no default)"
            )
    extra = sorted(set(trait_types) - set(sumstats))
    if extra:
        raise ConfigError(f"--trait-type given for trait(s) {extra} without --sumstats")
    if not _HEX.match(config_digest):
        raise ConfigError(f"--config-digest must be 8-128 hexadecimal characters; got {config_digest!r}")
    if not build.strip():
        raise ConfigError("--build must name the genome assembly (e.g. GRCh38)")
    key = load_private_key(signing_key) if signing_key is not None else None
    inputs = [*sumstats.values(), *ids_from, *qc_ledgers, *(sufficient or {}).values(),
              *([wgr_summary] if wgr_summary is not None else [])] + (
        [signing_key] if signing_key is not None else []
    )
    target = claim_out_dir(out_dir, inputs=inputs)
    ids = read_sample_ids(list(ids_from))
    qc = _read_qc_ledgers(qc_ledgers)

    created = _utc_now()
    audit: dict = {
        "cohort": cohort,
        "status": "released",
        "software": software_name(),
        "created": created,
        "config_digest": config_digest,
        "gate_rules": rules.to_dict(),
        "rule_order": list(RULE_ORDER),
        "traits": {},
    }
    staging = target.staging()
    results: dict[str, GateResult] = {}
    released_sizes: dict[str, dict[str, int | None]] = {}
    lambda_loco: dict[str, float] = {}
    wgr_own: frozenset[str] = frozenset()
    try:
        def gate_trait(trait: str, path: Path, caps: dict[str, int] | None = None) -> None:
            # One trait's tables at a time: at 10^7 variants each copy is GBs, so
            # the input goes as soon as the gate has run, the re-read as soon as
            # it is checked, and the released table once written and described.
            res = apply_gate(read_sumstats(path), trait_type=trait_types[trait], rules=rules,
                             cohort=cohort, trait=trait, source=str(path), caps=caps)
            data_file = write_sumstats(res.released, staging / f"{trait}.tsv.gz")
            # Re-read what is on disk, as the outside world will, and re-check it.
            back = read_sumstats(data_file)
            bad = released_violations(back, rules=rules)
            n_back = back.height
            del back
            if bad or n_back != res.ledger.n_kept:
                what = (f"re-check of the written file failed (violations {bad}, rows {n_back} vs "
                        f"{res.ledger.n_kept} released); export blocked")
                raise GateBlock(f"{out_dir / data_file.name}: {what}",
                                released=f"{redact(data_file.name, ids)}: {what}")
            meta = _metadata(trait, res, cohort=cohort, build=build, ancestry=ancestry,
                             data_file=data_file, rules=rules, qc=qc, created=created)
            released_sizes[trait] = {k: meta.get(k) for k in ("sample_size", "case_count", "control_count")}
            (staging / f"{trait}.meta.yaml").write_text(
                yaml.safe_dump(meta, sort_keys=False, allow_unicode=True), encoding="utf-8"
            )
            audit["traits"][trait] = _trait_audit(trait, res, rules)
            if wgr_summary is not None:
                lambda_loco[trait] = wgr_gate.released_lambda(res.released)
            results[trait] = replace(res, released=res.released.clear())
            del res

        for trait, path in sumstats.items():
            gate_trait(trait, Path(path))
        if rules.release_n == "trait" and len(sumstats) > 1:
            # Sizes of two traits 1..min_count apart would count people by their difference:
            # the traits concerned go through the gate again, their sizes capped (a second
            # pass only for them, only when it happens).
            binary = {t for t, k in trait_types.items() if k == "binary"}
            for _ in range(4):  # a capped trait may lose rows (released MAC), and so its size
                lowered = coarsen_between_traits(released_sizes, min_count=rules.min_count, binary=binary)
                todo = [t for t in sumstats if lowered[t] != released_sizes[t]]
                for trait in todo:
                    caps = {_SIZE_COLUMNS[k]: v for k, v in lowered[trait].items() if v is not None}
                    gate_trait(trait, Path(sumstats[trait]), caps)
                if not todo:
                    break
            if small_differences(released_sizes, min_count=rules.min_count):
                what = ("sample sizes of two traits differ by 1 to min_count and could not be "
                        "coarsened (rule min_count between traits); export blocked")
                raise GateBlock(f"{out_dir}: {what}", released=what)
        if sufficient:
            audit["sufficient"] = {
                t: export_sufficient(d, t, staging, rules=rules, cohort=cohort, sumstats=sumstats.get(t))
                for t, d in sufficient.items()
            }
            # The sums carry each trait's exact n (and cases): compared with every other released
            # count like a trait's own, so that e.g. sumstats n = n - 3 beside them is named.
            for t, e in audit["sufficient"].items():
                if e["status"] == "released":
                    cases = json.loads((staging / e["files"][0]).read_text(encoding="utf-8")).get("n_cases")
                    released_sizes[f"{t}{SUMS_LABEL}"] = {
                        "sample_size": e["n"], "case_count": cases,
                        "control_count": None if cases is None else e["n"] - cases,
                    }
            for t in refuse_sums_in_small_differences(released_sizes, min_count=rules.min_count):
                # Written to staging by export_sufficient a moment ago: this gate's own files.
                e = audit["sufficient"][t]
                for name in e["files"]:
                    (staging / name).unlink()
                e.pop("n", None)
                e.update(status="refused", files=[], rows_released=0, reasons=[
                    *e["reasons"],
                    f"{SUMS_DIFFERENCE_RULE}: the sums' exact n (or cases, controls) is 1 to "
                    f"{rules.min_count} from another count this bundle releases (another trait's "
                    "sums or sumstats): the difference would count people, and exact sums cannot "
                    "be coarsened"])
        audit["summary"] = {
            "traits": len(results),
            "rows_in": sum(r.ledger.n_in for r in results.values()),
            "rows_released": sum(r.ledger.n_kept for r in results.values()),
            "rows_suppressed": sum(sum(r.ledger.removed.values()) for r in results.values()),
        }
        audit["qc_ledgers"] = [released_ledger(q) for q in qc]
        if wgr_summary is not None:
            released_wgr = wgr_gate.release_wgr_summary(wgr_summary, trait_types=trait_types,
                                                        lambda_loco=lambda_loco)
            _write_json(released_wgr, staging / wgr_gate.WGR_FILE)
            wgr_own = wgr_gate.own_strings(released_wgr)
            audit["wgr"] = {"released_file": wgr_gate.WGR_FILE, "rule": "wgr_allow_list", "status": "pass",
                            "withheld": released_wgr["withheld"]}
        audit["identifier_scan"] = {"rule": SCAN_RULE, "status": "pass"}
        audit["count_rules"] = count_rules_text(rules)
        audit["differences_between_traits"] = small_differences(released_sizes, min_count=rules.min_count)
        audit["limits"] = list(LIMITS)
        _write_audit(audit, staging)
        own = _own_strings(audit, rules) | wgr_own
        scan_released(staging, ids, own=own)
        manifest = {
            "cohort": cohort,
            "traits": {t: {"trait_type": r.trait_type, "sumstats": f"{t}.tsv.gz",
                           "metadata": f"{t}.meta.yaml"} for t, r in results.items()},
            "software": software_name(),
            "crosscohort_version": __version__,
            "config_digest": config_digest,
            "genome_assembly": build,
            "gate_rules": rules.to_dict(),
            "rule_order": list(RULE_ORDER),
            **({"sufficient": {t: e["files"] for t, e in audit["sufficient"].items()}}
               if "sufficient" in audit else {}),
            **({"wgr": wgr_gate.WGR_FILE} if wgr_summary is not None else {}),
            "created": created,
            "files": [
                {"path": p.name, "sha256": file_digest(p), "size": p.stat().st_size}
                for p in sorted(staging.iterdir())
            ],
        }
        _write_json(manifest, staging / MANIFEST)
        scan_released(staging, ids, own=own | {f["sha256"] for f in manifest["files"]})
        if key is not None:
            # Written after the scans: a function of the scanned manifest and the key only.
            sign_manifest(staging, key)
    except UserError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(exc, GateError):
            _write_blocked(target, audit, ids, _released_reason(exc, list(sumstats), ids))
            raise GateError(str(exc).replace(str(staging), str(out_dir))) from None
        raise
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    target.publish(staging)
    return ExportResult(
        out_dir=out_dir, cohort=cohort, traits=results, files=tuple(sorted(p.name for p in out_dir.iterdir()))
    )


def _released_reason(exc: GateError, traits: list[str], ids: SampleIds) -> str:
    """Why the export was blocked, in words that may leave the TRE.

    A :class:`GateBlock` carries such a text (bundle file names with IDs
    redacted, line and column numbers, the rule); its trait names are
    redacted here. Any other refusal is described without its message, which
    may name TRE paths or input values.
    """
    if not isinstance(exc, GateBlock):
        return "export blocked by a check of the gate; the message is in the export log inside the TRE"
    text = exc.released
    for t in traits:
        text = text.replace(f"input of trait {t}:", f"input of trait {redact(t, ids)}:")
    return text


def _write_blocked(target: OutDir, audit: dict, ids: SampleIds, reason: str) -> None:
    blocked = {
        k: audit[k] for k in ("cohort", "software", "created", "config_digest", "gate_rules") if k in audit
    }
    blocked["cohort"] = redact(str(blocked.get("cohort", "")), ids)
    blocked.update({
        "status": "blocked",
        "reason": reason,
        "identifier_scan": {
            "rule": SCAN_RULE,
            "status": "fail" if "identifier" in reason or "per-person" in reason else "not completed",
        },
        "traits": {},
    })
    staging = target.staging()
    try:
        md = staging / AUDIT_MD
        md.write_text(_audit_md(blocked), encoding="utf-8")
        # How a rerun recognises this directory as the gate's own (crosscohort.tre.gate.outdir).
        blocked["audit_md_sha256"] = file_digest(md)
        _write_json(blocked, staging / "audit.json")
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    target.publish(staging)
