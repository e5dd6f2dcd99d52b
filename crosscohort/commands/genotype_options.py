"""The genotype input options every genotype-reading command shares (assoc, qc, pca, clump).

One definition of ``--bfile | --pfile | --bgen [--sample] [--bgen-ref] |
--vcf [--vcf-field] [--psam]`` and of how they become the inputs of
:class:`crosscohort.tre.genotypes.Genotypes`, so that every command reads the
same containers the same way.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from crosscohort.contract.errors import InputError

__all__ = ["add_genotype_options", "genotype_sources", "open_genotypes", "default_cohort_name"]


def add_genotype_options(parser: argparse.ArgumentParser) -> None:
    """Add the genotype input options (one container, required) to ``parser``."""
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument(
        "--bfile",
        action="append",
        metavar="PREFIX",
        help="PLINK 1 fileset prefix; repeat to stack the samples of filesets with identical .bim (pooled arm)",
    )
    src.add_argument(
        "--pfile",
        action="append",
        metavar="PREFIX",
        help="PLINK 2 .pgen/.pvar/.psam prefix (ALT dosages); repeatable like --bfile",
    )
    src.add_argument(
        "--bgen",
        metavar="FILE",
        help="BGEN v1.2 file (dosages from genotype probabilities), with --sample",
    )
    src.add_argument(
        "--vcf",
        action="append",
        metavar="FILE",
        help=".vcf, .vcf.gz or .bcf file (GT, or DS where declared; see --vcf-field); repeatable",
    )
    parser.add_argument(
        "--sample",
        metavar="FILE",
        help="with --bgen: the Oxford .sample file (ID_1 = FID, ID_2 = IID); default: FILE.sample",
    )
    parser.add_argument(
        "--bgen-ref",
        choices=["first", "last"],
        default="first",
        help="with --bgen: 'first' (default; UK Biobank layout) = the first allele is REF and the "
        "second is counted; 'last' = the first allele is ALT and counted, as plink2 "
        "--export bgen-1.2 writes without its ref-first modifier (plink2 --bgen ... ref-last)",
    )
    parser.add_argument(
        "--vcf-field",
        choices=["auto", "GT", "DS"],
        default="auto",
        help="with --vcf: FORMAT field read (default auto: DS when the header declares it, else GT)",
    )
    parser.add_argument(
        "--psam",
        action="append",
        metavar="FILE",
        help="with --vcf: a .psam or .fam giving the FIDs, parents and sex a VCF lacks (same "
        "samples, same order; plink2 --psam); one per --vcf. Needed for chromosome X "
        "association (sex) and for founder-only QC frequencies (parents)",
    )


def genotype_sources(args: argparse.Namespace) -> list:
    """The genotype inputs named by ``--bfile/--pfile/--bgen/--vcf`` (PLINK 1 prefixes stay plain paths).

    Raises
    ------
    InputError
        When an option of one container is given with another (``--sample``
        without ``--bgen``, ``--psam`` without ``--vcf``), or the number of
        ``--psam`` differs from the number of ``--vcf``.
    """
    from crosscohort.tre.genotype_formats import GenotypeSource

    if args.sample is not None and args.bgen is None:
        raise InputError(f"--sample {args.sample}: only used with --bgen")
    psam = getattr(args, "psam", None)
    if psam and not args.vcf:
        raise InputError(
            f"--psam {psam[0]}: only used with --vcf (a .pgen's .psam is found by --pfile)"
        )
    if args.bfile:
        return list(args.bfile)
    if args.pfile:
        return [GenotypeSource("pfile", p) for p in args.pfile]
    if args.bgen:
        return [
            GenotypeSource(
                "bgen", args.bgen, sample=args.sample, bgen_ref_first=args.bgen_ref == "first"
            )
        ]
    if psam and len(psam) != len(args.vcf):
        raise InputError(
            f"{len(psam)} --psam for {len(args.vcf)} --vcf: give one sample file per VCF, in order"
        )
    samples = psam or [None] * len(args.vcf)
    return [
        GenotypeSource("vcf", v, vcf_field=args.vcf_field, sample=s)
        for v, s in zip(args.vcf, samples, strict=True)
    ]


def open_genotypes(args: argparse.Namespace):
    """:class:`crosscohort.tre.genotypes.Genotypes` of the inputs the options name."""
    from crosscohort.tre.genotypes import Genotypes

    return Genotypes(genotype_sources(args))


def default_cohort_name(args: argparse.Namespace) -> str:
    """The first genotype input's name without its container suffix (the ledger's default cohort id)."""
    first = Path(str(genotype_sources(args)[0]))
    name = first.name
    for suffix in (".vcf.gz", ".vcf", ".bcf", ".bgen"):
        if name.endswith(suffix):
            return name.removesuffix(suffix)
    return name
