"""Allele algebra as polars expressions: complements, palindromes, SNP tests.

Everything here is an expression over whole columns, so harmonising ten
million variants is a handful of vectorised passes, never a Python loop.
"""

from __future__ import annotations

import polars as pl

__all__ = [
    "COMPLEMENT",
    "complement",
    "is_snp",
    "is_palindromic",
    "is_upper_letters",
    "normalise_allele",
]

#: Watson-Crick complement of each nucleotide.
COMPLEMENT: dict[str, str] = {"A": "T", "T": "A", "C": "G", "G": "C"}


def normalise_allele(allele: pl.Expr) -> pl.Expr:
    """Upper-cased, whitespace-stripped allele (``a`` and ``A `` are the same allele)."""
    return allele.str.strip_chars().str.to_uppercase()


def is_upper_letters(alleles: pl.Series) -> bool:
    """Whether every non-null allele is made of the capitals A-Z only (text columns only).

    Such alleles are their own :func:`normalise_allele`, hold no comma and no
    numeric code, so readers skip those passes. Checked on the distinct values
    (a few dozen in most files), not on every row.
    """
    if alleles.dtype != pl.String:
        return False
    return bool(alleles.unique().drop_nulls().str.contains(r"^[A-Z]+$").all())


def is_snp(allele_a: pl.Expr, allele_b: pl.Expr) -> pl.Expr:
    """True where both alleles are one of A, C, G, T (only these can be strand-flipped)."""
    acgt = r"^[ACGT]$"
    return allele_a.str.contains(acgt) & allele_b.str.contains(acgt)


def complement(allele: pl.Expr) -> pl.Expr:
    """Complement of a single-nucleotide allele (A<->T, C<->G); null for anything else.

    Indels and symbolic alleles have no complement here on purpose: their
    strand cannot be resolved from the allele string, so they are only ever
    matched exactly or swapped.
    """
    return allele.replace_strict(COMPLEMENT, default=None, return_dtype=pl.String)


def is_palindromic(allele_a: pl.Expr, allele_b: pl.Expr) -> pl.Expr:
    """True for A/T and C/G SNPs, whose complement is the same allele pair.

    For these the strand cannot be told from the alleles: a strand flip
    looks exactly like an allele swap.
    """
    return is_snp(allele_a, allele_b) & (complement(allele_a) == allele_b)
