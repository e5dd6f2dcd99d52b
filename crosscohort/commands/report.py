"""``crosscohort report``: one self-contained HTML report per trait."""

from __future__ import annotations

import argparse
from pathlib import Path

from crosscohort.commands import add_command
from crosscohort.contract.errors import InputError

__all__ = ["register", "run", "parse_cohort"]


def parse_cohort(item: str) -> tuple[str, Path]:
    """``(cohort, path)`` of a ``C=FILE`` argument.

    Raises
    ------
    InputError
        When the argument is not of the form ``C=FILE`` with a non-empty cohort id.
    """
    cohort, sep, path = item.partition("=")
    if not sep or not cohort.strip() or not path:
        raise InputError(f"--cohort expects COHORT=FILE (e.g. ukb=harmonised/ukb.tsv.gz); got {item!r}")
    return cohort.strip(), Path(path)


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``report`` subcommand."""
    p = add_command(
        subparsers,
        "report",
        description=(
            "Write one self-contained HTML file for a trait: run summary, Manhattan and QQ plots "
            "of the meta-analysis, the pooled analysis and each cohort (with λGC), the table of "
            "loci, the meta-versus-pooled comparison, the harmonisation/QC ledgers and each "
            "cohort's export audit. Images are embedded; the page needs no network."
        ),
    )
    p.add_argument("--trait", required=True, help="trait name shown in the report")
    p.add_argument("--meta", required=True, type=Path, metavar="META.tsv.gz",
                   help="meta-analysis summary statistics")
    p.add_argument("--meta-summary", type=Path, metavar="JSON",
                   help="the meta-analysis's summary JSON (META.tsv.gz.summary.json)")
    p.add_argument("--pooled", type=Path, metavar="POOLED.tsv.gz", help="pooled-arm summary statistics")
    p.add_argument("--compare", type=Path, metavar="COMPARE.json", help="comparison metrics (JSON)")
    p.add_argument("--federated-compare", type=Path, metavar="COMPARE.json",
                   help="comparison metrics of the meta-analysis against the federated pooled fit (pool-fit)")
    p.add_argument("--individual-fit-compare", type=Path, metavar="SAME.json",
                   help="the federated pooled fit against the individual-level fit of the same model "
                        "(crosscohort compare --federated; the demo)")
    p.add_argument("--compare-table", type=Path, metavar="COMPARE.tsv", help="comparison table (TSV)")
    p.add_argument("--compare-loci", type=Path, metavar="COMPARE.loci.tsv",
                   help="comparison loci table (crosscohort compare's PREFIX.loci.tsv)")
    p.add_argument("--reference", type=Path, metavar="REF.tsv.gz",
                   help="harmonisation reference (ref, alt, alt_frequency): cohort EAFs are plotted against it "
                        "(default: against the other cohorts)")
    p.add_argument("--loo", type=Path, metavar="META.loo.tsv",
                   help="leave-one-out table of crosscohort meta --loo-threshold (default: computed from the "
                        "cohort tables by fixed-effect IVW)")
    p.add_argument("--cohort", required=True, action="extend", nargs="+", metavar="C=FILE",
                   help="a cohort id and its harmonised summary statistics; repeat for each cohort, in order")
    p.add_argument("--ledger", action="extend", nargs="+", default=[], type=Path, metavar="LEDGER.json",
                   help="ledger JSON file(s) of any stage")
    p.add_argument("--audit", action="extend", nargs="+", default=[], metavar="[C=]AUDIT.json",
                   help="export-gate audit JSON(s); cohort from C=, the file's 'cohort' key or its folder")
    p.add_argument("--manifest", action="extend", nargs="+", default=[], metavar="[C=]MANIFEST.json",
                   help="export bundle manifest(s); a *.meta.yaml beside it supplies ancestry")
    p.add_argument("--config-digest", metavar="HEX",
                   help="digest of this run's config, shown beside the digests the bundles' manifests record")
    p.add_argument("--threshold", type=float, default=5e-8,
                   help="genome-wide significance for the Manhattan line and the loci (default 5e-8)")
    p.add_argument("--window-kb", type=float, default=500.0,
                   help="half-window of a locus around its lead variant, kb (default 500)")
    p.add_argument("--dpi", type=int, default=100, help="resolution of the embedded images (default 100)")
    p.add_argument("--out", required=True, type=Path, metavar="R.html", help="the HTML file to write")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Build the report from parsed arguments; returns the exit status."""
    from crosscohort.central.report import build_report

    cohorts: dict[str, Path] = {}
    for item in args.cohort:
        cohort, path = parse_cohort(item)
        if cohort in cohorts:
            raise InputError(f"--cohort {cohort!r} given twice ({cohorts[cohort]} and {path})")
        cohorts[cohort] = path
    if args.dpi < 20 or args.dpi > 600:
        raise InputError(f"--dpi must be between 20 and 600; got {args.dpi}")
    build_report(
        trait=args.trait,
        meta_path=args.meta,
        cohort_paths=cohorts,
        out_path=args.out,
        meta_summary_path=args.meta_summary,
        pooled_path=args.pooled,
        compare_path=args.compare,
        compare_table_path=args.compare_table,
        federated_compare_path=args.federated_compare,
        individual_fit_compare_path=args.individual_fit_compare,
        ledger_paths=args.ledger,
        audit_paths=args.audit,
        manifest_paths=args.manifest,
        config_digest=args.config_digest,
        threshold=args.threshold,
        window_kb=args.window_kb,
        dpi=args.dpi,
        reference_path=args.reference,
        compare_loci_path=args.compare_loci,
        loo_path=args.loo,
    )
    return 0
