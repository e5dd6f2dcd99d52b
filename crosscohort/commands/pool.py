"""``crosscohort pool``: the pooled arm's phenotype and covariate tables."""

from __future__ import annotations

import argparse
import sys

from crosscohort.commands import add_command, key_value_lists, key_value_pairs


def run(args: argparse.Namespace) -> int:
    from crosscohort.contract.errors import InputError

    if args.fill_missing:
        if not args.out_bfile:
            raise InputError("--fill-missing needs --out-bfile")
        from crosscohort.demo.pool import fill_missing_calls

        got = fill_missing_calls(args.fill_missing, args.out_bfile, keep=args.keep, extract=args.extract)
        print(f"filled {got['filled_calls']} missing calls in {got['variants_with_missing']} of "
              f"{got['variants']} variants -> {args.out_bfile}.bed", file=sys.stderr)
        return 0
    if args.qc:
        if not (args.bim and args.out_qc_prefix):
            raise InputError("--qc needs --bim and --out-qc-prefix")
        from crosscohort.demo.pool import pool_qc, write_pooled_qc

        samples, variants, ledgers = pool_qc(key_value_pairs(args.qc, "--qc"), bim=args.bim, variants=args.variants)
        write_pooled_qc(samples, variants, ledgers, args.out_qc_prefix)
        print(f"pooled QC: {samples.height} samples, {len(variants)} variants ({args.variants} of cohorts' QC)",
              file=sys.stderr)
        return 0
    if not (args.pheno and args.covar and args.out_pheno and args.out_covar):
        raise InputError("give --pheno, --covar, --out-pheno and --out-covar (or --qc, --bim, --out-qc-prefix)")
    from crosscohort.demo.pool import pool_tables, read_plink_table, write_plink_table

    pheno = {c: read_plink_table(p) for c, p in key_value_pairs(args.pheno, "--pheno").items()}
    covar = {c: read_plink_table(p) for c, p in key_value_pairs(args.covar, "--covar").items()}
    if list(pheno) != list(covar):
        raise InputError(f"--pheno cohorts {list(pheno)} and --covar cohorts {list(covar)} differ")
    write_plink_table(pool_tables(pheno, indicators=False), args.out_pheno)
    pooled_covar = pool_tables(covar, indicators=True)
    if args.specific:
        from crosscohort.demo.pool import cohort_specific, join_tables

        specific = {c: join_tables([read_plink_table(p) for p in paths], cohort=c)
                    for c, paths in key_value_lists(args.specific, "--specific").items()}
        unknown = [c for c in specific if c not in covar]
        if unknown:
            raise InputError(f"--specific cohort(s) {unknown} not among the --covar cohorts {list(covar)}")
        pooled_covar = cohort_specific(pooled_covar, specific)
    write_plink_table(pooled_covar, args.out_covar)
    n = sum(t.height for t in pheno.values())
    print(f"pooled {len(pheno)} cohorts, {n} phenotype rows", file=sys.stderr)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "pool",
        description=(
            "Inputs of the pooled arm (demo only, where pooling individual data is allowed). "
            "Tables: stack every cohort's phenotype and covariate files (plink2 #FID IID layout) "
            "into one table each, adding indicator covariates cohort_<id> for all cohorts but the "
            "first. Fill (--fill-missing): a cohort's fileset with missing calls filled as the federated sums fill them. QC (--qc): the cohorts' kept samples and the union of their kept variants, "
            "written like 'crosscohort qc' output, so both arms analyse the same people and variants."
        ),
    )
    p.add_argument("--pheno", nargs="+", metavar="COHORT=PATH", help="phenotype files, in cohort order")
    p.add_argument("--covar", nargs="+", metavar="COHORT=PATH", help="covariate files, in cohort order")
    p.add_argument("--out-pheno", help="pooled phenotype table to write")
    p.add_argument("--out-covar", help="pooled covariate table (with cohort indicators) to write")
    p.add_argument("--specific", nargs="+", metavar="COHORT=PATH",
                   help="each cohort's own covariates (e.g. its PCs), added as cohort-specific columns "
                        "NAME_COHORT (0 for other cohorts): the federated pooled fit's model; a cohort given "
                        "twice has its tables joined on #FID IID (e.g. its covariate file and its PCs)")
    p.add_argument("--fill-missing", metavar="PREFIX",
                   help="a cohort's PLINK 1 fileset to copy with every missing call filled with its variant's "
                        "hard call of the mean over the --keep samples, as 'crosscohort sufficient' fills it: "
                        "the individual-level reference of the federated pooled fit")
    p.add_argument("--out-bfile", metavar="PREFIX", help="prefix of the filled fileset (--fill-missing)")
    p.add_argument("--keep", help="the cohort's QC'd samples (--fill-missing; default all)")
    p.add_argument("--extract", help="--fill-missing: copy only these variant IDs (one a line; default all)")
    p.add_argument("--qc", nargs="+", metavar="COHORT=PREFIX", help="each cohort's 'crosscohort qc' output prefix")
    p.add_argument("--bim", help="the .bim shared by the cohorts (variant order of the kept list)")
    p.add_argument("--out-qc-prefix", help="prefix of the pooled QC files to write")
    p.add_argument("--variants", choices=["union", "intersection"], default="union",
                   help="--qc: keep the variants any cohort's QC kept (union; default) or only those every "
                        "cohort's QC kept (intersection: the federated pooled fit's individual-level reference)")
    p.set_defaults(func=run)
