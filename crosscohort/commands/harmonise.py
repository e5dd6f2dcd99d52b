"""``crosscohort harmonise``: align cohorts' summary statistics to one allele orientation."""

from __future__ import annotations

import argparse
from pathlib import Path

from crosscohort.errors import ConfigError
from crosscohort.harmonise import harmonise, read_cohort_tables, read_reference, write_harmonised
from crosscohort.harmonise.align import check_cohort_name

__all__ = ["register", "run", "cohort_paths"]


def cohort_paths(items: list[str]) -> dict[str, Path]:
    """``COHORT=FILE`` arguments as an ordered ``{cohort: path}``; :class:`ConfigError` when malformed."""
    out: dict[str, Path] = {}
    for item in items:
        cohort, sep, path = item.partition("=")
        if not sep or not cohort or not path:
            raise ConfigError(f"expected COHORT=FILE, got {item!r}")
        check_cohort_name(cohort)
        if cohort in out:
            raise ConfigError(f"cohort {cohort!r} given twice ({out[cohort]} and {path})")
        out[cohort] = Path(path)
    return out


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "harmonise",
        help="align cohorts' summary statistics to one allele orientation",
        description=(
            "Check values, align alleles and de-duplicate each cohort's GWAS-SSF summary "
            "statistics. With --reference, the effect allele becomes the reference ALT "
            "(swaps negate beta and mirror EAF; strand flips are complemented; A/T and C/G "
            "SNPs are oriented by EAF or dropped). Without, each allele pair is put in byte "
            "order (other < effect), the same in every cohort. Writes OUT_DIR/{cohort}.tsv.gz "
            "and OUT_DIR/ledger.json (per cohort: in, kept, removed and changed by reason)."
        ),
    )
    p.add_argument("cohorts", nargs="+", metavar="COHORT=FILE",
                   help="a cohort id and its GWAS-SSF file (.tsv, .tsv.gz or .parquet)")
    p.add_argument("--trait", required=True, help="trait name, recorded in the ledger")
    p.add_argument("--reference", metavar="REF.tsv.gz",
                   help="forward-strand panel: chromosome, base_pair_location, ref, alt, alt_frequency")
    p.add_argument("--palindrome-max-maf", type=float, default=0.4, metavar="MAF",
                   help="keep A/T and C/G SNPs only when the cohort MAF is at most this (default 0.4)")
    p.add_argument("--out-dir", required=True, type=Path, help="output directory")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    paths = cohort_paths(args.cohorts)
    tables = read_cohort_tables(paths)
    reference = read_reference(args.reference) if args.reference else None
    result = harmonise(
        tables,
        reference=reference,
        trait=args.trait,
        palindrome_max_maf=args.palindrome_max_maf,
        sources={c: str(p) for c, p in paths.items()},
    )
    write_harmonised(result, args.out_dir)
    return 0
