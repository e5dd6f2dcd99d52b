"""``crosscohort wgr``: whole-genome ridge regression (REGENIE step 1), LOCO predictions per trait."""

from __future__ import annotations

import argparse
import sys

from crosscohort.commands import add_command
from crosscohort.commands.assoc import _limit_threads
from crosscohort.commands.genotype_options import (
    add_genotype_options,
    default_cohort_name,
    genotype_sources,
)
from crosscohort.commands.sample_options import names, positive_int, trait_type
from crosscohort.contract.errors import InputError

_DESCRIPTION = """\
Step 1 of whole-genome regression (Mbatchou et al. 2021, REGENIE): fit the
polygenic part of every phenotype from all step-1 variants at once and write
its leave-one-chromosome-out (LOCO) predictions, which 'crosscohort assoc
--pred OUT_pred.list' (step 2) then uses as an offset. Relatives and
population structure can stay in the analysis.

Genotypes are read in blocks of --bsize consecutive variants of one
chromosome (memory grows with samples x blocks, not with variants); each
block is mean-imputed, residualised on the covariates and standardised.
Level 0: ridge regressions per block at shrinkages M (1 - h2) / h2 (M =
step-1 variants, h2 in --l0-h2), kept out-of-sample by K-fold (--cv K) or
leave-one-out (--loocv) cross-validation. Level 1: ridge (quantitative) or
logistic ridge with the covariates' offset (binary), shrinkage p (1 - h2) /
h2 (x 3/pi^2 for binary; p = blocks x level-0 values), chosen by CV
(mean squared error / negative log-likelihood). --level1 pooled fits one
level-1 coefficient per level-0 value, shared by all blocks (p = level-0
values): with --loocv, closer to a mixed model (BOLT-LMM) where many samples
have relatives, at the price of some deflation (benchmarks/README.md). A run with a binary trait and
fewer than 5,000 samples uses leave-one-out CV for all its traits, as REGENIE
does.

Samples: those with genotype, all covariates and at least one phenotype
(minus --remove, within --keep); a trait's missing values mask only its own
rows. Options follow REGENIE's names where the concept is the same (--bsize,
--bt, --loocv, --cv, --remove, --exclude; --phenoFile, --phenoColList,
--covarFile, --covarColList are accepted for --pheno, --pheno-name, --covar,
--covar-name).

Output (REGENIE's layout, readable by REGENIE's step 2 --pred):
  OUT_pred.list        one line per trait: TRAIT PATH
  OUT_<k>.loco[.gz]    header FID_IID id..., then per chromosome 1..23 the LOCO predictions
  OUT.wgr.json         the step-1 summary: shrinkage grids, chosen level-1 h2 and
                       CV R^2 per trait, and the trait's lambda GC without LOCO
                       (covariates-only score test of the step-1 variants);
                       released by 'crosscohort export --wgr-summary'.
"""

_EPILOG = """\
example (REGENIE's example data):
  crosscohort wgr --bfile example --exclude snplist_rm.txt --covar covariates.txt \\
      --pheno phenotype_bin.txt --remove fid_iid_to_remove.txt --bsize 100 --bt --out fit_bin_out
"""


def _h2_grid(text: str) -> tuple[float, ...]:
    try:
        vals = tuple(float(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers in (0, 1); got {text!r}") from None
    if not vals or any(not 0 < v < 1 for v in vals):
        raise argparse.ArgumentTypeError(f"expected heritabilities strictly between 0 and 1; got {text!r}")
    return vals


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``wgr`` subcommand to ``subparsers``."""
    p = add_command(
        subparsers,
        "wgr",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_genotype_options(p)
    p.add_argument("--pheno", "--phenoFile", dest="pheno", required=True, metavar="FILE", help="phenotype file, 'FID IID name...' header")
    p.add_argument("--pheno-name", "--phenoColList", dest="pheno_name", type=names, nargs="+", metavar="T", help="phenotype columns (default: all)")
    p.add_argument("--covar", "--covarFile", dest="covar", action="append", default=[], metavar="FILE", help="covariate file; repeatable")
    p.add_argument("--covar-name", "--covarColList", dest="covar_name", type=names, nargs="+", metavar="C", help="covariate columns (default: all)")
    p.add_argument("--keep", metavar="FILE", help="analyse only these samples ('FID IID' lines)")
    p.add_argument("--remove", metavar="FILE", help="leave out these samples ('FID IID' lines; REGENIE --remove)")
    p.add_argument("--extract", metavar="FILE", help="step-1 variants: only these IDs")
    p.add_argument("--exclude", metavar="FILE", help="step-1 variants: all but these IDs (REGENIE --exclude)")
    p.add_argument("--bt", action="store_true",
                   help="every trait is case/control (0/1 or 1/2 coded), as REGENIE --bt")
    p.add_argument("--trait-type", type=trait_type, action="append", default=[],
                   metavar="NAME=quantitative|binary", help="declare one trait's type (repeatable)")
    p.add_argument("--bsize", type=positive_int, default=1000, metavar="B",
                   help="variants per genotype block (REGENIE --bsize; default 1000)")
    p.add_argument("--cv", type=positive_int, default=5, metavar="K", help="K-fold cross-validation (default 5)")
    p.add_argument("--loocv", action="store_true", help="leave-one-out cross-validation (REGENIE --loocv)")
    p.add_argument("--l0-h2", type=_h2_grid, default=None, metavar="H1,H2,...",
                   help="heritabilities of the level-0 shrinkage grid (default 0.01,0.25,0.5,0.75,0.99)")
    p.add_argument("--l1-h2", type=_h2_grid, default=None, metavar="H1,H2,...",
                   help="heritabilities of the level-1 shrinkage grid (default 0.01,0.25,0.5,0.75,0.99)")
    p.add_argument("--level1", choices=["blocks", "pooled"], default="blocks",
                   help="level-1 stacking: 'blocks' (REGENIE: a coefficient per block and level-0 value) or "
                        "'pooled' (a coefficient per level-0 value, shared by all blocks: better calibrated "
                        "LOCO residuals where many samples have relatives)")
    p.add_argument("--gz", action="store_true", help="write .loco.gz (REGENIE --gz)")
    p.add_argument("--threads", type=positive_int, metavar="T", help="BLAS threads")
    p.add_argument("--cohort", metavar="ID", help="cohort id for the ledger (default: the genotype input's name)")
    p.add_argument("--ledger", metavar="FILE", help="write the sample and variant ledgers (JSON list) here")
    p.add_argument("--out", required=True, metavar="PREFIX", help="output prefix (OUT_pred.list, OUT_<k>.loco)")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Fit step 1 and write the prediction list, LOCO files and summary."""
    if args.threads:
        _limit_threads(args.threads)
    from crosscohort.tre.association import _ridge as R
    from crosscohort.tre.association.wgr import run_step1, write_step1

    types = dict(args.trait_type)
    if args.bt:
        from crosscohort.commands.assoc import trait_names

        traits = trait_names(args.pheno, args.pheno_name)
        conflicting = [t for t, k in types.items() if k != "binary"]
        if conflicting:
            raise InputError(f"--bt declares every trait binary, but --trait-type says otherwise for {conflicting}")
        types = {t: "binary" for t in traits}
    result = run_step1(
        genotype_sources(args), args.pheno, pheno_names=args.pheno_name, covar=args.covar,
        covar_names=args.covar_name, keep=args.keep, remove=args.remove, extract=args.extract,
        exclude=args.exclude, trait_types=types, bsize=args.bsize, cv_folds=args.cv, loocv=args.loocv,
        level0_h2=args.l0_h2 or R.DEFAULT_H2, level1_h2=args.l1_h2 or R.DEFAULT_H2, level1=args.level1,
        cohort=args.cohort or default_cohort_name(args), log=sys.stderr,
    )
    paths = write_step1(result, args.out, gz=args.gz)
    print(f"wgr: LOCO predictions of {len(result.traits)} trait(s) -> {paths['pred_list']}", file=sys.stderr)
    if args.ledger:
        from crosscohort.contract.ledger import write_ledgers

        write_ledgers(result.ledgers, args.ledger)
    return 0
