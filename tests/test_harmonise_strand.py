"""Palindromic SNPs: the cohort's strand consensus decides before any frequency does.

In a multi-ancestry consortium a palindrome's frequency in one cohort can sit
on the other side of 0.5 from the reference panel's (the demo has hundreds),
so frequency-based resolution would flip correctly labelled variants. The
cohort's non-palindromic SNPs tell which strand it reports on.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from crosscohort.central.harmonise import harmonise

COMP = {"A": "T", "T": "A", "C": "G", "G": "C"}
NON_PAL = [("A", "G"), ("C", "T"), ("A", "C"), ("G", "T")]


def _panel(n_snps: int, n_pal: int, seed: int = 1) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_snps + n_pal):
        ref, alt = NON_PAL[i % 4] if i < n_snps else (("A", "T") if i % 2 else ("C", "G"))
        rows.append((1, 1000 + 10 * i, ref, alt, float(rng.uniform(0.05, 0.95))))
    return pl.DataFrame(rows, schema=["chromosome", "base_pair_location", "ref", "alt", "alt_frequency"], orient="row")


def _cohort(panel: pl.DataFrame, *, strand: str, seed: int = 2) -> pl.DataFrame:
    """The panel's variants as a cohort reports them: ALT as effect allele, on ``strand``.

    The cohort's frequencies are the panel's mirrored (1 - AF): an ancestry
    where every allele frequency sits across 0.5 from the panel's.
    """
    rng = np.random.default_rng(seed)
    ea, oa = panel["alt"].to_list(), panel["ref"].to_list()
    if strand == "reverse":
        ea, oa = [COMP[a] for a in ea], [COMP[a] for a in oa]
    elif strand == "mixed":
        flip = rng.random(len(ea)) < 0.5
        ea = [COMP[a] if f else a for a, f in zip(ea, flip, strict=True)]
        oa = [COMP[a] if f else a for a, f in zip(oa, flip, strict=True)]
    n = panel.height
    return pl.DataFrame({
        "chromosome": panel["chromosome"], "base_pair_location": panel["base_pair_location"],
        "effect_allele": ea, "other_allele": oa,
        "beta": rng.normal(0.1, 0.02, n), "standard_error": np.full(n, 0.05),
        "effect_allele_frequency": 1.0 - panel["alt_frequency"].to_numpy(),
        "p_value": np.full(n, 0.04), "n": np.full(n, 1000),
    })


@pytest.mark.parametrize("strand", ["forward", "reverse"])
def test_palindromes__consensus_strand_keeps_labels_even_when_frequencies_disagree(strand):
    panel = _panel(300, 40)
    cohort = _cohort(panel, strand=strand)
    out = harmonise({"c": cohort}, reference=panel, palindrome_max_maf=0.4)
    got = out.tables["c"].sort("base_pair_location")
    assert got.height == panel.height  # nothing dropped, palindromes included
    # every beta keeps its sign: the cohort's effect allele was the ALT all along
    np.testing.assert_array_equal(np.sign(got["beta"].to_numpy()), 1.0)
    assert (got["effect_allele"] == panel.sort("base_pair_location")["alt"]).all()
    led = out.ledgers["c"]
    assert led.changed.get("palindrome_resolved_by_eaf", 0) == 0
    assert led.removed["palindrome_ambiguous"] == 0
    expected_flips = panel.height if strand == "reverse" else 0
    assert led.changed.get("strand_flipped", 0) == expected_flips


def test_palindromes__mixed_strands_fall_back_to_frequency():
    panel = _panel(300, 40)
    cohort = _cohort(panel, strand="mixed")
    # frequencies agree with the panel here, so the frequency rule can work
    cohort = cohort.with_columns(pl.Series("effect_allele_frequency", panel["alt_frequency"].to_numpy()))
    out = harmonise({"c": cohort}, reference=panel, palindrome_max_maf=0.4)
    got = out.tables["c"]
    pal = got.filter(pl.col("effect_allele").is_in(["A", "T"]) & pl.col("other_allele").is_in(["A", "T"])
                     | pl.col("effect_allele").is_in(["C", "G"]) & pl.col("other_allele").is_in(["C", "G"]))
    maf = np.minimum(panel["alt_frequency"], 1 - panel["alt_frequency"])[300:]
    assert pal.height == int((maf <= 0.4).sum())  # the rest dropped as ambiguous
    assert out.ledgers["c"].removed["palindrome_ambiguous"] == int((maf > 0.4).sum())
    np.testing.assert_array_equal(np.sign(got["beta"].to_numpy()), 1.0)
