"""``crosscohort meta``: fixed- and random-effects meta-analysis of harmonised cohorts."""

from __future__ import annotations

import argparse
from pathlib import Path

from crosscohort.commands.harmonise import cohort_paths
from crosscohort.meta import meta_analyse, write_meta
from crosscohort.sumstats import read_sumstats

__all__ = ["register", "run"]


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "meta",
        help="inverse-variance meta-analysis of harmonised cohorts",
        description=(
            "Combine harmonised summary statistics of one trait (output of `crosscohort "
            "harmonise`), matching variants on chromosome, position and alleles. Writes OUT "
            "(GWAS-SSF: fixed-effect beta/SE/p; plus n_studies, direction, Cochran's Q, I^2, "
            "DerSimonian-Laird tau2 and random-effects columns, EAF range, n_effective) and "
            "OUT.summary.json (variants, per-cohort and meta lambda_GC, genome-wide hits)."
        ),
    )
    p.add_argument("cohorts", nargs="+", metavar="COHORT=FILE",
                   help="a cohort id and its harmonised GWAS-SSF file")
    p.add_argument("--method", choices=("fixed", "random"), default="fixed",
                   help="which estimate the summary calls primary (default fixed); "
                        "both are always written")
    p.add_argument("--gc", action="store_true",
                   help="genomic control: multiply SEs of cohorts with lambda_GC > 1 by "
                        "sqrt(lambda) before combining (METAL GENOMICCONTROL ON)")
    p.add_argument("--cohort-order", metavar="C1,C2,...",
                   help="order of the direction string (default: argument order)")
    p.add_argument("--out", required=True, type=Path, help="output table (.tsv, .tsv.gz, .parquet)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    paths = cohort_paths(args.cohorts)
    tables = {c: read_sumstats(p) for c, p in paths.items()}
    order = [c.strip() for c in args.cohort_order.split(",")] if args.cohort_order else None
    result = meta_analyse(tables, method=args.method, gc=args.gc, cohort_order=order)
    write_meta(result, args.out)
    return 0
