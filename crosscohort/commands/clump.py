"""``crosscohort clump``: LD-based loci of summary statistics, as plink 1.9 ``--clump``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from crosscohort.commands import add_command
from crosscohort.commands.genotype_options import add_genotype_options, open_genotypes

__all__ = ["register", "run"]

_KEY = ("chromosome", "base_pair_location", "effect_allele", "other_allele")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_command(
        subparsers,
        "clump",
        description=(
            "Group significant variants into LD-based loci as plink 1.9 --clump does: the most "
            "significant remaining variant with p <= --clump-p1 becomes an index and takes every "
            "not yet clumped variant with p <= --clump-p2, on its chromosome less than --clump-kb "
            "away, with EM-haplotype r2 >= --clump-r2. Rows of the summary statistics are matched to "
            "the genotype variants by chromosome, position and alleles (effect/other against .bim "
            "A1/A2, either orientation); rows without a genotype are counted in OUT.json (those "
            "with p <= p2 listed by variant_id) and on stderr. Writes OUT (one row per clump: the "
            "index's chromosome, base_pair_location, alleles, variant_id, p_value, "
            "neg_log_10_p_value; clump, bim_id, n_members, members = member variant_ids by "
            "position, comma-separated, NONE when empty; span_start, span_end) and OUT's stem "
            "+ .json (rows_in, matched, not_in_genotypes, clumps...). LD is measured in the genotypes "
            "of any container (--bfile, --pfile, --bgen, --vcf); from dosages, on hard calls "
            "(within 0.1 of 0/1/2, else missing), as plink does. Defaults are plink's "
            "except --clump-p1 (genome-wide 5e-8)."
        ),
    )
    add_genotype_options(p)
    p.add_argument("--sumstats", required=True, type=Path, metavar="FILE",
                   help="GWAS-SSF table (.tsv, .tsv.gz, .parquet) with p_value or neg_log_10_p_value")
    p.add_argument("--keep", metavar="SAMPLES", help="measure LD in these samples only ('#FID IID' or IID lines)")
    p.add_argument("--clump-p1", type=float, default=5e-8, help="index variants' p threshold (default 5e-8)")
    p.add_argument("--clump-p2", type=float, default=1e-2,
                   help="clumped variants' p threshold (default 0.01, plink's)")
    p.add_argument("--clump-r2", type=float, default=0.1,
                   help="r2 with the index a clumped variant must reach (default 0.1, plink 1.9's)")
    p.add_argument("--clump-kb", type=float, default=250.0,
                   help="window: clumped variants lie less than this many kb from the index (default 250)")
    p.add_argument("--out", required=True, type=Path, metavar="OUT.tsv",
                   help="clumps table; counts go to the same stem + .json")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import polars as pl

    from crosscohort.contract.errors import InputError
    from crosscohort.contract.keys import normalise_chromosomes
    from crosscohort.contract.sumstats import read_sumstats, variant_id
    from crosscohort.demo.clump import clump, match_genotypes, write_clumps
    from crosscohort.tre.phenotypes import read_sample_list

    ss = read_sumstats(args.sumstats, required=_KEY, chromosome_labels=True)
    if "p_value" not in ss.columns and "neg_log_10_p_value" not in ss.columns:
        raise InputError(f"{args.sumstats}: needs a p_value or neg_log_10_p_value column; present: {ss.columns}")
    # Labels (chr1, X) become the contract's codes; an unknown label is null and
    # so is counted as not in the genotypes rather than refused.
    ss = ss.with_columns(normalise_chromosomes(ss.get_column("chromosome")).alias("chromosome"))
    if "variant_id" not in ss.columns:
        ss = ss.with_columns(variant_id(pl.col("chromosome"), pl.col("base_pair_location"),
                                        pl.col("other_allele"), pl.col("effect_allele")))
    if "neg_log_10_p_value" not in ss.columns:
        from crosscohort.contract.stats import neg_log10_p_of_table

        ss = ss.with_columns(pl.Series("neg_log_10_p_value", neg_log10_p_of_table(ss)))
    genotypes = open_genotypes(args)
    samples = genotypes.sample_index(read_sample_list(args.keep), require_all=True) if args.keep else None
    matched = int(match_genotypes(ss, genotypes).sum())
    res = clump(ss, genotypes, p1=args.clump_p1, p2=args.clump_p2, r2=args.clump_r2,
                window_kb=args.clump_kb, sample_index=samples)
    tsv, js = write_clumps(res, args.out, rows_in=ss.height, matched=matched)
    print(f"crosscohort clump: {ss.height} rows, {matched} matched to genotypes, "
          f"{ss.height - matched} not in genotypes ({res.n_not_in_genotypes} of them with p <= p2); "
          f"{res.clumps.height} clumps -> {tsv}, {js}", file=sys.stderr)
    return 0
