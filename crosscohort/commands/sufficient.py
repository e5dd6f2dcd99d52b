"""``crosscohort sufficient``: a cohort's sums for the federated pooled fit (inside a TRE)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from crosscohort.commands import add_command
from crosscohort.commands.genotype_options import (
    default_cohort_name,
    genotype_sources,
)
from crosscohort.commands.sample_options import (
    add_ledger_options,
    add_sample_options,
    add_transform_options,
    positive_int,
)

_DESCRIPTION = """\
Compute, for each trait, what the central pooled fit (crosscohort pool-fit)
needs from this cohort: the cohort block once (n, covariate and trait sums,
x'x, x'y, y'y over the trait's analysed samples, covariates on their file
scale, centred on the cohort's means; binary traits: X'W0X of the
covariates-only logistic fit) and per variant the sums of the ALT dosage
g with 1, itself, the covariates and the trait (binary: the score and the
information blocks at the null fit).

Samples, phenotype preprocessing and covariates are those of crosscohort
assoc with the same options. A missing call is filled with the variant's
hard call of the mean (the genotype 0, 1 or 2 nearest its mean dosage over
the --keep samples with a call), so every variant's sums are over the
trait's n samples and do not reveal how many calls were missing.
Chromosome X variants are not summed (counted in the ledger).

Output in --out-dir: {trait}.block.json and {trait}.sufficient.tsv.gz, with
internal columns (genotype-class counts; the fewest people in which each
variant differs from one of the --difference-window variants before it;
binary: case/control MACs) that the export gate (crosscohort export
--sufficient) uses and strips. These files hold sums over people: export
them only through the gate.
"""

_EPILOG = """\
example:
  crosscohort sufficient --bfile qc/c1 --pheno c1.pheno.tsv --covar c1.covar.tsv \\
      --covar pcs/c1.eigenvec --extract qc/c1.variants.keep --out-dir results/sufficient/c1
"""


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``sufficient`` subcommand to ``subparsers``."""
    p = add_command(
        subparsers,
        "sufficient",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_sample_options(p, pheno_default="all",
                       chunk_help="most variants read at once (fewer when samples x M x 8 bytes exceeds 16 MiB)")
    add_transform_options(p)
    add_ledger_options(p)
    p.add_argument("--difference-window", type=positive_int, default=1000, metavar="W",
                   help="compare each variant with the W variants before it (and their mirrors) for the gate's "
                        "difference rule (default 1000; memory samples x W bytes for hard calls)")
    p.add_argument("--difference-cap", type=positive_int, default=20, metavar="C",
                   help="count such differences up to C people; the gate needs C >= its min_count (default 20, "
                        "the gate's default min_count; larger costs more)")
    p.add_argument("--out-dir", required=True, metavar="DIR",
                   help="directory for {trait}.block.json and {trait}.sufficient.tsv.gz")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Compute and write the blocks and sums of every trait."""
    from crosscohort.contract.sums import BLOCK_SUFFIX, VARIANT_SUFFIX, write_block
    from crosscohort.contract.sumstats import write_sumstats
    from crosscohort.tre.sufficient import run_sufficient

    result = run_sufficient(
        genotype_sources(args), args.pheno,
        pheno_names=args.pheno_name, covar=args.covar, covar_names=args.covar_name,
        keep=args.keep, extract=args.extract, trait_types=dict(args.trait_type),
        chunk_size=args.chunk_size, pheno_transform=args.pheno_transform, int_offset=args.int_offset,
        cohort=args.cohort or default_cohort_name(args), difference_window=args.difference_window,
        difference_cap=args.difference_cap, log=sys.stderr,
    )
    out = Path(args.out_dir)
    for trait, block in result.blocks.items():
        write_block(block, out / f"{trait}{BLOCK_SUFFIX}")
        path = write_sumstats(result.tables[trait], out / f"{trait}{VARIANT_SUFFIX}")
        print(f"sufficient: trait {trait}: {result.tables[trait].height} rows -> {path}", file=sys.stderr)
    if args.ledger:
        from crosscohort.contract.ledger import write_ledgers

        write_ledgers(result.ledgers, args.ledger)
    return 0
