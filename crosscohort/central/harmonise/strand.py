"""Strand across cohorts without a reference: a non-palindromic SNP reported on both strands is one variant.

Without a reference panel nothing says which strand a cohort reports, but
for a non-palindromic SNP the question has one answer across cohorts: A/C in
one cohort and G/T in another, at the same position (or marker name), can
only be the same variant read on opposite strands. (At one site the forward
strand's REF base is in every forward-strand pair, so A/C and G/T cannot both
be forward.) METAL and GWAMA merge them; so does the meta-analysis, here:

- among the rows of all cohorts at one site whose pairs are strand
  complements of each other (``{A,C}`` with ``{G,T}``, ``{A,G}`` with
  ``{C,T}``), the rows of the orientation fewer rows report are complemented
  to the other's (a tie goes to the strand whose pair holds an ``A``), and put
  in the majority rows' allele order (beta negated and EAF mirrored when that
  exchanges effect and other allele);
- palindromic SNPs (A/T, C/G) and indels are never touched: their strand
  cannot be read from the alleles (harmonisation's consensus and EAF rules
  apply to them, with a reference);
- with a reference every cohort is already on the forward strand and no site
  holds both orientations, so the rule changes nothing.

Only sites that hold more than one allele pair are looked at (the caller
finds them in its sorted keys), so the usual input costs one comparison.
The ledger counts the rows complemented per cohort
(``changed.strand_flipped_across_cohorts``).
"""

from __future__ import annotations

import numpy as np
import polars as pl

__all__ = ["CHANGED", "strand_flips"]

#: Ledger ``changed`` reason of the meta-analysis.
CHANGED = "strand_flipped_across_cohorts"

_CODE = np.full(256, -1, dtype=np.int8)
for _i, _b in enumerate(b"ACGT"):
    _CODE[_b] = _i
_BASES = np.array(list("ACGT"))


def _codes(alleles: pl.Series) -> np.ndarray:
    """0-3 for one-letter A/C/G/T alleles, -1 otherwise."""
    b = alleles.cast(pl.Binary).bin.reinterpret(dtype=pl.UInt8)
    out = _CODE[b.fill_null(0).to_numpy()]
    out[b.is_null().to_numpy()] = -1
    return out


def strand_flips(other: pl.Series, effect: pl.Series, site: np.ndarray
                 ) -> tuple[np.ndarray, pl.Series, pl.Series, np.ndarray]:
    """Which rows to complement, and their new alleles.

    Parameters
    ----------
    other, effect
        Alleles of the rows at sites that hold more than one allele pair.
    site
        One integer per row naming its site (chromosome and position, or marker name).

    Returns
    -------
    rows, new_other, new_effect, swapped
        Positions (into the inputs) of the rows to complement; their alleles
        afterwards, in the majority rows' order; and whether that order
        exchanged effect and other allele (the caller negates beta and
        mirrors EAF there).
    """
    o, e = _codes(other), _codes(effect)
    snp = (o >= 0) & (e >= 0) & (o != e)
    nonpal = snp & (o + e != 3)  # A+T = C+G = 3: palindromes
    empty = np.zeros(0, dtype=np.int64)
    if not nonpal.any():
        return empty, other.clear(), effect.clear(), np.zeros(0, dtype=bool)
    a_strand = (o == 0) | (e == 0)
    # The class in A-strand form: the partner of A (C = 1 or G = 2); G/T -> A/C, C/T -> A/G.
    cls = np.where(a_strand, o + e, 6 - (o + e))
    idx = np.flatnonzero(nonpal)
    frame = pl.DataFrame({
        "_i": idx, "_site": site[idx], "_cls": cls[idx], "_a": a_strand[idx],
        "_o": other.gather(idx), "_e": effect.gather(idx),
    })
    votes = frame.group_by("_site", "_cls").agg(
        pl.col("_a").sum().alias("_na"), (~pl.col("_a")).sum().alias("_nt"),
        # The majority orientation's allele order (its first row's).
        pl.col("_o").filter(pl.col("_a")).first().alias("_oa"),
        pl.col("_e").filter(pl.col("_a")).first().alias("_ea"),
        pl.col("_o").filter(~pl.col("_a")).first().alias("_ot"),
        pl.col("_e").filter(~pl.col("_a")).first().alias("_et"),
    ).filter((pl.col("_na") > 0) & (pl.col("_nt") > 0))
    if votes.height == 0:
        return empty, other.clear(), effect.clear(), np.zeros(0, dtype=bool)
    keep_a = pl.col("_na") >= pl.col("_nt")  # tie: the A strand
    j = frame.join(votes, on=["_site", "_cls"], how="inner").filter(
        pl.col("_a") != keep_a
    ).with_columns(
        pl.when(keep_a).then(pl.col("_oa")).otherwise(pl.col("_ot")).alias("_to"),
        pl.when(keep_a).then(pl.col("_ea")).otherwise(pl.col("_et")).alias("_te"),
    ).sort("_i")
    rows = j.get_column("_i").to_numpy()
    co = _BASES[3 - o[rows]]
    ce = _BASES[3 - e[rows]]
    swapped = co != j.get_column("_to").to_numpy()
    new_o = np.where(swapped, ce, co)
    new_e = np.where(swapped, co, ce)
    return (rows, pl.Series("other_allele", new_o, dtype=pl.String),
            pl.Series("effect_allele", new_e, dtype=pl.String), swapped)
