"""``crosscohort pca``: ancestry PCs (plink2 .eigenvec layout) from an LD-pruned variant set."""

from __future__ import annotations

import argparse
import sys

from crosscohort.commands import add_command, add_schema_option
from crosscohort.commands.genotype_options import add_genotype_options, open_genotypes


def run(args: argparse.Namespace) -> int:
    from crosscohort.runtime.jit import SMALL_JOB_CELLS, small_job
    from crosscohort.tre.genotypes import read_id_list
    from crosscohort.tre.pca import run_pca, write_pca
    from crosscohort.tre.phenotypes import read_sample_list

    keep = read_sample_list(args.keep) if args.keep else None
    extract = read_id_list(args.extract) if args.extract else None
    genotypes = open_genotypes(args)
    # A small cohort decodes with numpy rather than load numba (crosscohort.runtime.jit; same calls).
    with small_job(genotypes.n_samples * genotypes.n_variants <= SMALL_JOB_CELLS):
        res = run_pca(genotypes, keep=keep, extract=extract, n_pcs=args.n_pcs, maf=args.maf,
                      window=args.prune_window, step=args.prune_step, r2=args.prune_r2, seed=args.seed,
                      method=args.method, chunk_size=args.chunk_size, nonfounders=args.nonfounders)
    params = {"maf": args.maf, "prune_window": args.prune_window, "prune_step": args.prune_step,
              "prune_r2": args.prune_r2, "n_pcs": args.n_pcs, "seed": args.seed}
    write_pca(res, args.out, params=params)
    print(f"pca: {res.samples.height} samples, {res.prune.n_used} variants used "
          f"({res.prune.to_dict()}), {res.method} eigensolver; wrote {args.out}", file=sys.stderr)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "pca",
        description=(
            "Ancestry principal components of one cohort, as plink2 --pca: autosomal variants with "
            "MAF >= --maf are LD-pruned like plink's --indep-pairwise (window and step in variants), "
            "genotypes standardised by 2p and sqrt(2p(1-p)) with missing calls mean-imputed, and the "
            "top --n-pcs eigenvectors written in plink2's .eigenvec layout (F), with F.eigenval, "
            "F.prune.json (variant counts: in, non-autosomal, below MAF, LD-pruned, used) and "
            "F.prune.in (IDs used). From dosages (.pgen/BGEN/VCF DS), as plink2: frequencies and the "
            "PCA use dosages, LD pruning uses hard calls (plink2 --indep-pairwise). CAVEAT: PCs are individual-level data. They are association "
            "covariates inside the TRE and must NEVER leave it; the export gate does not release them."
        ),
    )
    add_genotype_options(p)
    p.add_argument("--keep", metavar="FILE", help="samples to use (#FID IID), e.g. qc's O.samples.keep")
    p.add_argument("--extract", metavar="FILE", help="variant IDs to consider, e.g. qc's O.variants.keep")
    add_schema_option(p, "pca.n_pcs", type=int, help="number of PCs")
    add_schema_option(p, "pca.maf", type=float, help="leave out variants with MAF below this")
    add_schema_option(p, "pca.prune_window", type=int, help="LD window in variants")
    add_schema_option(p, "pca.prune_step", type=int, help="window step in variants")
    add_schema_option(p, "pca.prune_r2", type=float, help="prune pairs with r^2 above this")
    p.add_argument("--seed", type=int, default=1, help="seed of the randomized eigensolver (default 1)")
    p.add_argument("--method", choices=("auto", "exact", "randomized"), default="auto",
                   help="eigensolver: exact N x N eigendecomposition, randomized subspace iteration "
                        "(streamed), or auto: exact up to 5000 samples (default)")
    p.add_argument("--nonfounders", action="store_true",
                   help="use all samples, not only founders, for allele frequencies (plink2's flag)")
    p.add_argument("--chunk-size", type=int, default=2000, metavar="M", help="variants read per chunk (default 2000)")
    p.add_argument("--out", required=True, metavar="F", help="eigenvector file to write; F.eigenval etc. beside it")
    p.set_defaults(func=run)
