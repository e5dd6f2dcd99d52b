"""``crosscohort compare``: meta-analysis versus pooled analysis of the same samples."""

from __future__ import annotations

import argparse
from pathlib import Path

from crosscohort.compare import compare_arms, write_comparison
from crosscohort.sumstats import read_sumstats

__all__ = ["register", "run"]

_MIN = ("chromosome", "base_pair_location", "effect_allele", "other_allele", "beta",
        "standard_error")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "compare",
        help="compare a meta-analysis with the pooled analysis",
        description=(
            "Join meta-analysis and pooled results on the variant (pooled alleles aligned to "
            "the meta's), and report: Pearson r and least-squares slope of beta_meta on "
            "beta_pooled (all shared variants and those significant in either arm), median "
            "SE_meta/SE_pooled, significance counts, distance-based loci and their "
            "concordance, lambda_GC of each arm. Writes PREFIX.json and PREFIX.tsv "
            "(variants significant in either arm)."
        ),
    )
    p.add_argument("--meta", required=True, type=Path, help="meta-analysis table (crosscohort meta)")
    p.add_argument("--pooled", required=True, type=Path, help="pooled-arm GWAS-SSF table")
    p.add_argument("--threshold", type=float, default=5e-8,
                   help="significance threshold on p (default 5e-8)")
    p.add_argument("--window-kb", type=float, default=500.0,
                   help="locus half-window in kb (default 500)")
    p.add_argument("--out-prefix", required=True, type=Path, help="writes PREFIX.json, PREFIX.tsv")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    meta = read_sumstats(args.meta, required=_MIN)
    pooled = read_sumstats(args.pooled, required=_MIN, chromosome_labels=True)
    result = compare_arms(meta, pooled, threshold=args.threshold, window_kb=args.window_kb)
    write_comparison(result, args.out_prefix)
    return 0
