"""``crosscohort assoc``: per-cohort linear/logistic association, plink2 ``--glm`` style."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from crosscohort.commands import add_command
from crosscohort.commands.genotype_options import genotype_sources
from crosscohort.commands.sample_options import (
    add_ledger_options,
    add_sample_options,
    add_transform_options,
    positive_int,
)
from crosscohort.contract.errors import InputError

_DESCRIPTION = """\
Regress each phenotype on each variant's dosage of the ALT allele (.bim A1,
.pvar ALT, VCF ALT, BGEN second allele or first with --bgen-ref last),
with an intercept and the covariates: linear regression (Student t test) for
quantitative traits, logistic regression (Wald z test) for case/control
traits, as plink2 --glm does. Options use plink2's names.

Samples: those with genotype, the phenotype and every covariate (and in
--keep), per trait; overlap counts are logged on stderr. A sample with a
missing call is left out of that variant's fit only (--missing drop, plink2's
semantics); --missing fill instead fills each missing call with its variant's
hard call of the mean over the --keep samples (the genotype 0, 1 or 2 nearest
the mean ALT dosage of the calls; halves up), exactly as crosscohort
sufficient fills it, so every analysed sample counts in every variant: a
cohort that releases sums beside its sumstats must use it (the export gate
refuses sums beside sumstats whose n or allele count differ from theirs). Traits whose values are
only 1/2 (missing NA/-9) are case/control with 2 = case; declare 0/1 traits
with --trait-type NAME=binary.

Phenotype and covariate files: tab- or space-separated, '#FID IID', 'FID IID'
or 'IID' header; missing as NA, nan, -9, NONE or empty. Columns not named by
--pheno-name/--covar-name are ignored whatever they hold. A covariate column
that is not numeric (centre, batch, sex as M/F) is categorical, dummy-coded
as plink2 does: its first level (sorted) is the reference, one 0/1 column per
other level, levels listed on stderr. A covariate named sex that no --covar
file holds is the .fam/.psam sex (1 male, 2 female, else missing).
--pheno-name and --covar-name take plink2's lists: names separated by spaces
or commas, and ranges (PC1-PC10: the header's columns from PC1 to PC10).

Case/control traits: a variant whose ordinary logistic fit fails to converge
(e.g. separation by a rare allele) is refitted by Firth-penalised logistic
regression, as plink2's default --glm firth-fallback; such rows carry the
internal column firth=true. --no-firth keeps them NA (LOGISTIC_CONVERGE_FAIL).

Chromosome X (.bim chromosome X or 23): males' haploid calls count 0/2 (as
stored in a .bed; plink2's default --xchr-model 2; a heterozygous male call
counts 1, as in plink2), samples of unknown .fam sex are left out and sex is always a
covariate (added from the .fam unless a covariate named sex is given), as
plink2 --glm does.

--pheno-transform int: each quantitative trait is replaced by its rank-based
inverse-normal transform Phi^-1((rank - 3/8) / (n + 1/4)) over that trait's
analysed samples (Blom offset, ties averaged), after sample selection;
--int-offset 0.5 gives plink2's --pheno-quantile-normalize values.

Output: one row per analysed variant, in .bim order, GWAS-SSF columns plus
the internal mac, mac_cases, mac_controls, residual_df, error_code and firth (which
the export gate uses and strips). A variant that cannot be fitted keeps its
row with NA statistics and an error_code (CONST_ALLELE, TOO_FEW_SAMPLES,
VIF_TOO_HIGH, SINGULAR_COVARIATES, ZERO_RESIDUAL_VARIANCE,
LOGISTIC_CONVERGE_FAIL, FIRTH_CONVERGE_FAIL).
"""

_EPILOG = """\
example:
  crosscohort assoc --bfile qc/c1 --pheno c1.pheno.tsv --covar c1.covar.tsv \\
      --covar pcs/c1.eigenvec --extract qc/c1.variants.keep --part 3/20 \\
      --out results/assoc/c1/{trait}.part3.tsv.gz
"""


def _part(text: str) -> tuple[int, int]:
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected I/N with integers, e.g. 3/20; got {text!r}") from None
    if not (n >= 1 and 1 <= i <= n):
        raise argparse.ArgumentTypeError(f"expected 1 <= I <= N; got {text!r}")
    return i, n


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``assoc`` subcommand to ``subparsers``."""
    p = add_command(
        subparsers,
        "assoc",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_sample_options(p, pheno_default="every numeric column",
                       chunk_help="most variants read and fitted at once (fewer when samples x M x 8 bytes "
                                  "exceeds 16 MiB); memory ~ a few x min(samples x M x 8 bytes, 16 MiB)")
    p.add_argument("--part", type=_part, metavar="I/N",
                   help="analyse only the I-th (1-based) of N equal contiguous parts of the extracted variants")
    p.add_argument("--threads", type=positive_int, metavar="T",
                   help="BLAS threads (effective when set before numpy loads, or with threadpoolctl installed)")
    p.add_argument("--vif", type=float, default=50.0, metavar="X",
                   help="refuse a fit (error_code VIF_TOO_HIGH) when the dosage's variance-inflation factor "
                        "on the covariates exceeds X (plink2 --vif; default 50)")
    p.add_argument("--no-firth", dest="firth", action="store_false",
                   help="no Firth fallback: a failed logistic fit stays NA (plink2 --glm no-firth); "
                        "default: refit it with Firth-penalised logistic regression (plink2 firth-fallback)")
    p.add_argument("--missing", choices=["drop", "fill"], default="drop",
                   help="a missing genotype call: 'drop' leaves the sample out of that variant's fit (plink2; "
                        "default); 'fill' fills it with the variant's hard call of the mean over the --keep "
                        "samples (minus --remove), as crosscohort sufficient does (required beside released "
                        "sums; with --pred too)")
    add_transform_options(p)
    wgr = p.add_argument_group(
        "whole-genome regression step 2 (REGENIE names)",
        "with --pred, the step-1 LOCO predictions ('crosscohort wgr', or REGENIE's step 1) are the offset: "
        "quantitative traits are tested as y minus the prediction, binary traits by the logistic score "
        "test with the prediction as offset, corrected below --pThresh by --firth (exact), --firth --approx or --spa",
    )
    wgr.add_argument("--pred", metavar="LIST", help="step-1 prediction list (OUT_pred.list: TRAIT PATH.loco lines)")
    wgr.add_argument("--remove", metavar="FILE", help="leave out these samples ('FID IID' lines)")
    wgr.add_argument("--firth", dest="wgr_firth", action="store_true", help="with --pred: Firth correction (covariates and variant refitted with Firth's penalty; "
                          "with --approx, covariates fixed at the Firth null fit)")
    wgr.add_argument("--approx", action="store_true", help="with --firth: the approximate (covariates fixed) Firth fit")
    wgr.add_argument("--spa", action="store_true", help="with --pred: saddle-point approximation of the score test")
    wgr.add_argument("--relatives", metavar="FILE",
                     help="with --pred: related pairs with their kinship (plink2 .kin0 columns #FID1 IID1 FID2 IID2 "
                          "... KINSHIP, e.g. crosscohort qc's king.tsv): quantitative traits' tests are calibrated "
                          "for relatives' correlated LOCO residuals")
    wgr.add_argument("--pThresh", dest="pthresh", type=float, default=0.05, metavar="P",
                     help="with --pred: correct binary-trait rows whose score p-value is below P (default 0.05)")
    wgr.add_argument("--out-format", choices=["gwas-ssf", "regenie"], default="gwas-ssf",
                     help="'regenie': REGENIE's step-2 columns (space-separated; CHROM GENPOS ID ALLELE0 ALLELE1 "
                          "A1FREQ INFO N TEST BETA SE CHISQ LOG10P EXTRA); default GWAS-SSF")
    add_ledger_options(p)
    p.add_argument("--out", required=True, metavar="PATH",
                   help="output .tsv, .tsv.gz or .parquet; must contain {trait} when several traits are analysed")
    p.set_defaults(func=run)
    return p


def _limit_threads(n: int) -> None:
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(n)
    try:  # optional: effective even once numpy has loaded its BLAS
        from threadpoolctl import threadpool_limits
    except ImportError:
        return
    threadpool_limits(n)


def output_path(out: str, trait: str, n_traits: int, *, regenie: bool = False) -> Path:
    """The output file of ``trait`` from the ``--out`` template (any name for ``--out-format regenie``)."""
    if n_traits > 1 and "{trait}" not in out:
        raise InputError(f"--out {out}: several traits are analysed, so the path must contain {{trait}}")
    suffixes = "".join(Path(out).suffixes[-2:])
    if not regenie and not (out.endswith(".tsv") or out.endswith(".tsv.gz") or out.endswith(".parquet")):
        raise InputError(f"--out {out}: expected a .tsv, .tsv.gz or .parquet path; got suffix {suffixes!r}")
    return Path(out.replace("{trait}", trait))


def trait_names(pheno: str, tokens: list[str] | None) -> list[str]:
    """The traits of ``--pheno-name`` tokens (plink2 lists and ranges), or every numeric column."""
    from crosscohort.tre.phenotypes import expand_names, read_header, read_table

    columns = read_header(pheno)
    if tokens is not None:
        return expand_names(tokens, columns, option="--pheno-name", sources=pheno)
    table = read_table(pheno)
    return [c for c in columns if table.schema[c].is_numeric()] or columns


def run(args: argparse.Namespace) -> int:
    """Run the scan and write one file per trait."""
    if args.threads:
        _limit_threads(args.threads)
    from crosscohort.contract.sumstats import write_sumstats

    types = dict(args.trait_type)
    args.pheno_name = trait_names(args.pheno, args.pheno_name)
    # Check --out before the scan, not after an hour of it.
    if args.pheno_name is not None:
        n_traits = len(args.pheno_name)
    else:
        from crosscohort.tre.phenotypes import read_table

        n_traits = len(read_table(args.pheno).columns) - 2
    regenie = args.out_format == "regenie"
    output_path(args.out, "x", n_traits, regenie=regenie)
    result = _run_step2(args, types) if args.pred else _run_glm(args, types)
    for trait, table in result.tables.items():
        path = output_path(args.out, trait, len(result.tables), regenie=regenie)
        if regenie:
            from crosscohort.tre.association.regenie_files import write_regenie

            write_regenie(table, path)
        else:
            path = write_sumstats(table, path)
        print(f"assoc: trait {trait}: {table.height} rows -> {path}", file=sys.stderr)
    if args.ledger:
        from crosscohort.contract.ledger import write_ledgers

        write_ledgers(result.ledgers, args.ledger)
    return 0


def _run_step2(args: argparse.Namespace, types: dict):
    """Whole-genome regression step 2 (``--pred``)."""
    from crosscohort.tre.association.wgr import run_step2

    if args.pheno_transform is not None:
        raise InputError("--pheno-transform: not available with --pred (transform the phenotype before step 1)")
    if not args.firth:
        raise InputError("--no-firth: plink2's --glm option; with --pred give --firth [--approx], --spa or neither")
    if args.wgr_firth and args.spa:
        raise InputError("--firth and --spa: choose one correction")
    if args.approx and not args.wgr_firth:
        raise InputError("--approx: only meaningful with --firth")
    correction = ("firth" if args.approx else "firth-exact") if args.wgr_firth else "spa" if args.spa else None
    return run_step2(
        genotype_sources(args), args.pheno, pred=args.pred,
        pheno_names=args.pheno_name, covar=args.covar, covar_names=args.covar_name,
        keep=args.keep, remove=args.remove, extract=args.extract, trait_types=types,
        chunk_size=args.chunk_size, part=args.part, max_vif=args.vif, correction=correction,
        pthresh=args.pthresh, relatives=args.relatives, cohort=args.cohort, missing=args.missing, log=sys.stderr,
    )


def _run_glm(args: argparse.Namespace, types: dict):
    """The plink2 ``--glm``-style scan."""
    from crosscohort.tre.association import run_assoc

    for flag, dest in (("remove", "remove"), ("firth", "wgr_firth"), ("approx", "approx"), ("spa", "spa"),
                       ("relatives", "relatives")):
        if getattr(args, dest):
            raise InputError(f"--{flag}: only used with --pred (whole-genome regression step 2)")
    if args.out_format != "gwas-ssf":
        raise InputError("--out-format regenie: only with --pred")
    return run_assoc(
        genotype_sources(args), args.pheno,
        pheno_names=args.pheno_name, covar=args.covar, covar_names=args.covar_name,
        keep=args.keep, extract=args.extract, trait_types=types, chunk_size=args.chunk_size,
        part=args.part, max_vif=args.vif,
        firth=args.firth, pheno_transform=args.pheno_transform, int_offset=args.int_offset,
        cohort=args.cohort, missing=args.missing, log=sys.stderr,
    )
