"""Which rows of summary statistics are used: the value rules and the duplicate rule.

Harmonisation and the meta-analysis both drop rows whose values cannot be
combined and keep one row per variant and cohort; both count what they drop
in the ledger (``bad_value_<rule>``, ``duplicate``). The rules are declared
here once, as polars expressions over GWAS-SSF columns
(:mod:`crosscohort.contract.sumstats`), so the two stages cannot disagree.

Value rules, in the order they are applied (a row failing several counts once,
under the first, so the ledger adds up):

==========================  ======================================================
rule                        a row breaks it when
==========================  ======================================================
chromosome                  no known chromosome (1-25)
base_pair_location          no position, or position <= 0
effect_allele, other_allele empty or missing
alleles                     effect allele = other allele
beta                        missing or not finite
standard_error              missing, <= 0 or not finite
p_value                     outside (0, 1]; 0 (an underflow) or missing only beside a
                            finite ``neg_log_10_p_value``
neg_log_10_p_value          (when the column exists) missing, < 0 or not finite
effect_allele_frequency     present and outside [0, 1] (missing is allowed: only
                            palindromes need it)
n                           (when the column exists) <= 0
==========================  ======================================================

Duplicate rule: of the rows of one variant in one cohort, the one with the
largest ``n``, then the smallest ``standard_error``, then the first in the
file is kept (:func:`duplicate_order`).
"""

from __future__ import annotations

from collections.abc import Collection

import polars as pl

__all__ = [
    "VALUE_RULES",
    "beta_ok",
    "duplicate_order",
    "n_ok",
    "neg_log_10_p_ok",
    "standard_error_ok",
    "value_failures",
]

#: Value rules in the order they are applied; a row failing several is counted
#: once, under the first, so the ledger adds up.
VALUE_RULES: tuple[str, ...] = (
    "chromosome",
    "base_pair_location",
    "effect_allele",
    "other_allele",
    "alleles",
    "beta",
    "standard_error",
    "p_value",
    "neg_log_10_p_value",
    "effect_allele_frequency",
    "n",
)


def beta_ok() -> pl.Expr:
    """True where ``beta`` is a finite number (null: missing)."""
    return pl.col("beta").is_finite()


def standard_error_ok() -> pl.Expr:
    """True where ``standard_error`` is finite and positive (null: missing)."""
    se = pl.col("standard_error")
    return (se > 0) & se.is_finite()


def neg_log_10_p_ok() -> pl.Expr:
    """True where ``neg_log_10_p_value`` is finite and not negative (null: missing)."""
    nlp = pl.col("neg_log_10_p_value")
    return (nlp >= 0) & nlp.is_finite()


def n_ok() -> pl.Expr:
    """True where ``n`` is a positive sample size (null: missing)."""
    return pl.col("n") > 0


def value_failures(columns: Collection[str]) -> dict[str, pl.Expr]:
    """One expression per rule of :data:`VALUE_RULES`: True where a row breaks it.

    ``columns`` are the table's columns: ``neg_log_10_p_value`` and ``n`` are
    checked only when present. Nulls count as failures where a value is required.
    """
    has_nlp = "neg_log_10_p_value" in columns
    nlp_ok = (
        pl.col("neg_log_10_p_value").is_not_null() & pl.col("neg_log_10_p_value").is_finite()
        if has_nlp
        else pl.lit(False)
    )
    p = pl.col("p_value")
    # p = 0 is an underflow, trustworthy only next to a finite -log10 p; NA p only with -log10 p.
    p_ok = ((p > 0) & (p <= 1)).fill_null(False) | ((p == 0).fill_null(True) & nlp_ok)
    eaf = pl.col("effect_allele_frequency")
    return {
        "chromosome": pl.col("chromosome").is_null(),
        "base_pair_location": ~(pl.col("base_pair_location") > 0).fill_null(False),
        "effect_allele": pl.col("effect_allele").fill_null("").str.len_chars() == 0,
        "other_allele": pl.col("other_allele").fill_null("").str.len_chars() == 0,
        "alleles": pl.col("effect_allele") == pl.col("other_allele"),
        "beta": ~beta_ok().fill_null(False),
        "standard_error": ~standard_error_ok().fill_null(False),
        "p_value": ~p_ok,
        "neg_log_10_p_value": ~neg_log_10_p_ok().fill_null(True) if has_nlp else pl.lit(False),
        # Missing EAF is allowed (only palindromes need it); present EAF must be a frequency.
        "effect_allele_frequency": ~((eaf >= 0) & (eaf <= 1)).fill_null(True)
        | eaf.is_nan().fill_null(False),
        "n": (~n_ok()).fill_null(False) if "n" in columns else pl.lit(False),
    }


def duplicate_order(columns: Collection[str], *, row: str) -> tuple[list[str], list[bool]]:
    """The duplicate rule as a sort: ``(columns, descending)`` putting the row to keep first.

    Among rows of one variant: the largest ``n`` (when the table has it), then
    the smallest ``standard_error``, then the first in the file (``row``: the
    column holding each row's place in the file). Sort with ``nulls_last=True``:
    a row with a missing n or SE loses to one with a value.
    """
    order = (["n"] if "n" in columns else []) + ["standard_error", row]
    return order, [c == "n" for c in order]
