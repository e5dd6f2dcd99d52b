"""``crosscohort pool``: the pooled arm's phenotype and covariate tables."""

from __future__ import annotations

import argparse
import sys


def _pairs(values: list[str], flag: str) -> dict[str, str]:
    from crosscohort.errors import InputError

    out = {}
    for v in values:
        if "=" not in v:
            raise InputError(f"{flag} {v!r}: expected COHORT=PATH")
        k, p = v.split("=", 1)
        out[k] = p
    return out


def run(args: argparse.Namespace) -> int:
    from crosscohort.pool import pool_tables, read_plink_table, write_plink_table

    pheno = {c: read_plink_table(p) for c, p in _pairs(args.pheno, "--pheno").items()}
    covar = {c: read_plink_table(p) for c, p in _pairs(args.covar, "--covar").items()}
    if list(pheno) != list(covar):
        from crosscohort.errors import InputError

        raise InputError(f"--pheno cohorts {list(pheno)} and --covar cohorts {list(covar)} differ")
    write_plink_table(pool_tables(pheno, indicators=False), args.out_pheno)
    write_plink_table(pool_tables(covar, indicators=True), args.out_covar)
    n = sum(t.height for t in pheno.values())
    print(f"pooled {len(pheno)} cohorts, {n} phenotype rows", file=sys.stderr)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "pool",
        help="demo: stack cohorts' phenotype and covariate files for the pooled arm",
        description=(
            "Stack every cohort's phenotype and covariate files (plink2 #FID IID layout) into "
            "one table each, adding indicator covariates cohort_<id> for all cohorts but the first. "
            "For the pooled arm only, where pooling individual data is allowed."
        ),
    )
    p.add_argument("--pheno", nargs="+", required=True, metavar="COHORT=PATH", help="phenotype files, in cohort order")
    p.add_argument("--covar", nargs="+", required=True, metavar="COHORT=PATH", help="covariate files, in cohort order")
    p.add_argument("--out-pheno", required=True, help="pooled phenotype table to write")
    p.add_argument("--out-covar", required=True, help="pooled covariate table (with cohort indicators) to write")
    p.set_defaults(func=run)
