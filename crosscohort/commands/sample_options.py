"""Phenotype, covariate and sample options that ``assoc`` and ``sufficient`` share (plink2's names and syntax).

``wgr`` takes the same value types (:func:`names`, :func:`trait_type`,
:func:`positive_int`) under REGENIE's option names as well.
"""

from __future__ import annotations

import argparse

from crosscohort.commands import add_schema_option
from crosscohort.commands.genotype_options import add_genotype_options

__all__ = ["add_sample_options", "names", "trait_type", "positive_int"]


def trait_type(text: str) -> tuple[str, str]:
    """``NAME=quantitative|binary`` as a pair."""
    name, sep, kind = text.partition("=")
    if not sep or not name or kind not in ("quantitative", "binary"):
        raise argparse.ArgumentTypeError(
            f"expected NAME=quantitative or NAME=binary; got {text!r}"
        )
    return name, kind


def names(text: str) -> str:
    """A column list as plink2 takes it (spaces or commas, ranges ``A-B``), checked non-empty."""
    if not any(x.strip() for x in text.split(",")):
        raise argparse.ArgumentTypeError("expected column names (space- or comma-separated, ranges A-B)")
    return text


def positive_int(text: str) -> int:
    """An integer of at least 1."""
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer; got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer; got {v}")
    return v


def add_sample_options(p: argparse.ArgumentParser, *, pheno_default: str, chunk_help: str) -> None:
    """Add the genotype options, then ``--pheno``, ``--pheno-name``, ``--covar``, ``--covar-name``,
    ``--keep``, ``--extract``, ``--trait-type`` and ``--chunk-size``.

    ``pheno_default`` says which phenotype columns are analysed without
    ``--pheno-name``; ``chunk_help`` what ``--chunk-size`` bounds.
    """
    add_genotype_options(p)
    p.add_argument("--pheno", required=True, metavar="FILE", help="phenotype file, '#FID IID name...' header")
    p.add_argument("--pheno-name", type=names, nargs="+", metavar="T",
                   help="phenotype columns to analyse, as plink2: 'A B', 'A,B', ranges 'A-C' "
                        f"(default: {pheno_default})")
    p.add_argument("--covar", action="append", default=[], metavar="FILE",
                   help="covariate file ('#FID IID name...'); repeat to join several on FID+IID")
    p.add_argument("--covar-name", type=names, nargs="+", metavar="C",
                   help="covariate columns to use, as plink2: 'age sex', 'age,sex', ranges 'PC1-PC10'; "
                        "non-numeric ones are categorical; 'sex' not in a file is the .fam/.psam sex "
                        "(default: all columns of all --covar files)")
    p.add_argument("--keep", metavar="FILE", help="analyse only these samples ('#FID IID' lines)")
    p.add_argument("--extract", metavar="FILE", help="analyse only these variant IDs (one per line)")
    p.add_argument("--trait-type", type=trait_type, action="append", default=[],
                   metavar="NAME=quantitative|binary",
                   help="override trait-type detection (repeatable); needed for 0/1-coded case/control traits")
    add_schema_option(p, "association.chunk_size", type=positive_int, metavar="M", help=chunk_help)


def add_transform_options(p: argparse.ArgumentParser) -> None:
    """Add ``--pheno-transform int`` and ``--int-offset``."""
    p.add_argument("--pheno-transform", choices=["int"], metavar="int",
                   help="'int': rank-based inverse-normal transform of each quantitative trait over its "
                        "analysed samples (Blom offset 3/8, ties averaged); default: none")
    p.add_argument("--int-offset", type=float, default=0.375, metavar="C",
                   help="offset c of --pheno-transform int, Phi^-1((rank - c) / (n - 2c + 1)): 0.375 "
                        "(Blom, default), 0.5 (rankit, as plink2 --pheno-quantile-normalize)")


def add_ledger_options(p: argparse.ArgumentParser) -> None:
    """Add ``--cohort`` (the ledger's cohort id) and ``--ledger``."""
    p.add_argument("--cohort", metavar="ID", help="cohort id for the ledger (default: the first genotype input's name)")
    p.add_argument("--ledger", metavar="FILE",
                   help="write the sample and variant ledgers (JSON list) here")
