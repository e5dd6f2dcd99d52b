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
            "PREFIX.loci.tsv (loci of either arm). "
            "Same-model mode (--federated, --individual, --trait-type, --out; the demo): the federated "
            "pooled fit (pool-fit) against the individual-level fit of the same model (pool --specific + "
            "assoc on the filled filesets): per-variant relative differences of beta (to max(|beta|, SE)), "
            "SE and p, their maxima and medians, and every variant of either table counted once: compared, "
            "different n, not estimable, in one table only. A quantitative trait is held to 1e-10; a binary "
            "one's differences are the one-step estimator's error."
        ),
    )
    p.add_argument("--meta", type=Path, help="meta-analysis table (crosscohort meta)")
    p.add_argument("--pooled", type=Path, help="pooled-arm GWAS-SSF table")
    threshold, window = float(default("report.threshold")), float(default("report.window_kb"))
    p.add_argument("--threshold", type=float, default=threshold,
                   help=f"significance threshold on p (default {threshold:g})")
    p.add_argument("--window-kb", type=float, default=window,
                   help=f"locus half-window in kb (default {window:g})")
    p.add_argument("--cohort", action="extend", nargs="+", default=[], metavar="C=FILE",
                   help="a cohort id and its harmonised table (for per-cohort EAFs); repeat, in cohort order")
    p.add_argument("--out-prefix", type=Path,
                   help="writes PREFIX.json, PREFIX.tsv, PREFIX.loci.tsv")
    same = p.add_argument_group("same-model mode (federated pooled fit vs individual-level fit)")
    same.add_argument("--federated", type=Path, help="crosscohort pool-fit's table")
    same.add_argument("--individual", type=Path,
                      help="crosscohort assoc's table of the same model on the stacked individuals")
    same.add_argument("--trait-type", choices=["quantitative", "binary"],
                      help="quantitative (held to 1e-10 relative) or binary (one-step estimator's error)")
    same.add_argument("--out", type=Path, help="the comparison's JSON")
    p.set_defaults(func=run)


def _run_same_model(args: argparse.Namespace) -> int:
    import sys

    from crosscohort.contract.sumstats import read_sumstats
    from crosscohort.demo.same_model import REQUIRED, compare_same_model, write_same_model

    given = [f for f, v in (("--meta", args.meta), ("--pooled", args.pooled), ("--out-prefix", args.out_prefix),
                            ("--cohort", args.cohort)) if v]
    if given:
        raise InputError(f"compare: {', '.join(given)} belong to the meta-vs-pooled mode, not with --federated")
    missing = [f for f, v in (("--federated", args.federated), ("--individual", args.individual),
                              ("--trait-type", args.trait_type), ("--out", args.out)) if v is None]
    if missing:
        raise InputError(f"compare: the same-model mode needs {', '.join(missing)}")
    columns = (*REQUIRED, "neg_log_10_p_value")
    res = compare_same_model(read_sumstats(args.federated, required=REQUIRED, columns=columns),
                             read_sumstats(args.individual, required=REQUIRED, columns=columns),
                             trait_type=args.trait_type)
    write_same_model(res, args.out, federated=str(args.federated), individual=str(args.individual))
    print(f"compare: {res.n_compared} variants compared; max relative difference beta {res.max_rel_beta:.3g}, "
          f"SE {res.max_rel_se:.3g}, p {res.max_rel_p:.3g} -> {args.out}", file=sys.stderr)
    return 0


def run(args: argparse.Namespace) -> int:
    if args.federated is not None or args.individual is not None:
        return _run_same_model(args)
    missing = [f for f, v in (("--meta", args.meta), ("--pooled", args.pooled), ("--out-prefix", args.out_prefix))
               if v is None]
    if missing:
        raise InputError(f"compare: {', '.join(missing)} required (or --federated and --individual for the "
                         "same-model mode)")
    stray = [f for f, v in (("--trait-type", args.trait_type), ("--out", args.out)) if v is not None]
    if stray:
        raise InputError(f"compare: {', '.join(stray)} belong to the same-model mode (--federated, --individual)")
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
