"""``crosscohort compare``: meta-analysis versus pooled analysis of the same samples."""

from __future__ import annotations

import argparse
from pathlib import Path

from crosscohort.commands import add_command
from crosscohort.contract.errors import InputError
from crosscohort.schemas import default

__all__ = ["register", "run"]

_MIN = ("chromosome", "base_pair_location", "effect_allele", "other_allele", "beta",
        "standard_error")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_command(
        subparsers,
        "compare",
        description=(
            "Join meta-analysis and pooled results on the variant (pooled alleles aligned to "
            "the meta's), and report: Pearson r and least-squares slope of beta_meta on "
            "beta_pooled (all shared variants and those significant in either arm), median "
            "SE_meta/SE_pooled, significance counts, distance-based loci and their "
            "concordance (both, meta only, pooled only), direction classes from the meta "
            "direction string, heterogeneity of discordant loci, lambda_GC of each arm and, with "
            "--cohort, each locus lead's EAF per cohort and the cohort where it is most common. "
            "Writes PREFIX.json, PREFIX.tsv (variants significant in either arm) and "
            "PREFIX.loci.tsv (loci of either arm)."
        ),
    )
    p.add_argument("--meta", required=True, type=Path, help="meta-analysis table (crosscohort meta)")
    p.add_argument("--pooled", required=True, type=Path, help="pooled-arm GWAS-SSF table")
    threshold, window = float(default("report.threshold")), float(default("report.window_kb"))
    p.add_argument("--threshold", type=float, default=threshold,
                   help=f"significance threshold on p (default {threshold:g})")
    p.add_argument("--window-kb", type=float, default=window,
                   help=f"locus half-window in kb (default {window:g})")
    p.add_argument("--cohort", action="extend", nargs="+", default=[], metavar="C=FILE",
                   help="a cohort id and its harmonised table (for per-cohort EAFs); repeat, in cohort order")
    p.add_argument("--out-prefix", required=True, type=Path,
                   help="writes PREFIX.json, PREFIX.tsv, PREFIX.loci.tsv")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from crosscohort.central.compare import compare_arms, write_comparison
    from crosscohort.contract.sumstats import read_sumstats

    meta = read_sumstats(args.meta, required=_MIN)
    pooled = read_sumstats(args.pooled, required=_MIN, chromosome_labels=True)
    from crosscohort.commands.report import parse_cohort

    cohorts = {}
    for item in args.cohort:
        c, path = parse_cohort(item)
        if c in cohorts:
            raise InputError(f"--cohort {c!r} given twice")
        cohorts[c] = read_sumstats(path, required=(*_MIN[:4], "effect_allele_frequency"))
    result = compare_arms(meta, pooled, threshold=args.threshold, window_kb=args.window_kb,
                          cohorts=cohorts, sources={"meta": args.meta, "pooled": args.pooled})
    write_comparison(result, args.out_prefix)
    return 0
