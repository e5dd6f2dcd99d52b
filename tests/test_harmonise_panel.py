"""Packed-panel alignment (issue 5, memory): the same rows, values, order and ledger as the join.

:func:`crosscohort.central.harmonise.align._align_to_panel` matches a cohort to the
reference by binary search on packed sites and integer allele codes; the
join of the cohort with the panel (:func:`_align_to_reference_join`, the
previous implementation, kept as the general path) is the oracle here. The
inputs are adversarial: multi-allelic sites, palindromes on every strand
consensus, indels, null and NaN frequencies, missing panel alleles,
duplicates with ties and null n, unsorted panels, rows the panel lacks.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from crosscohort.central.harmonise import align
from crosscohort.central.harmonise.align import (
    ReferencePanel,
    compact_reference,
    harmonise,
    harmonise_cohort,
    prepare_reference,
)

COMP = {"A": "T", "C": "G", "G": "C", "T": "A"}
BASES = np.array(list("ACGT"))


def _panel(rng: np.random.Generator, m: int) -> pl.DataFrame:
    chrom = rng.integers(1, 4, m)
    pos = rng.integers(1, m // 2 + 2, m)  # many shared sites: multi-allelic
    ref = BASES[rng.integers(0, 4, m)].astype(object)
    alt = BASES[rng.integers(0, 4, m)].astype(object)
    indel = rng.random(m) < 0.1
    alt = np.where(indel, ref + BASES[rng.integers(0, 4, m)], alt)
    freq = rng.uniform(0.0, 1.0, m)
    df = pl.DataFrame({
        "chromosome": [("chr" if k % 2 else "") + str(c) for k, c in enumerate(chrom)],
        "base_pair_location": pos, "ref": ref.astype(str), "alt": alt.astype(str),
        "alt_frequency": freq,
    }).with_columns(
        # Missing and NaN frequencies, and a few missing alleles and positions.
        pl.when(pl.Series(rng.random(m) < 0.05)).then(None)
        .when(pl.Series(rng.random(m) < 0.03)).then(float("nan"))
        .otherwise(pl.col("alt_frequency")).alias("alt_frequency"),
        pl.when(pl.Series(rng.random(m) < 0.01)).then(None).otherwise(pl.col("alt")).alias("alt"),
        pl.when(pl.Series(rng.random(m) < 0.01)).then(None)
        .otherwise(pl.col("base_pair_location")).alias("base_pair_location"),
    )
    # Not sorted: the packed path must not rely on the file's order.
    return df.sample(fraction=1.0, shuffle=True, seed=int(rng.integers(1 << 30)))


def _cohort(rng: np.random.Generator, panel: pl.DataFrame, n: int, *, flip_rate: float) -> pl.DataFrame:
    src = panel.drop_nulls(["base_pair_location"]).sample(n, with_replacement=True,
                                                          seed=int(rng.integers(1 << 30)))
    ref, alt = src.get_column("ref").to_list(), src.get_column("alt").to_list()
    ea, oa = [], []
    for r, a in zip(ref, alt, strict=True):
        r, a = r or "A", a or "G"
        if rng.random() < 0.1:  # an allele the panel does not have at this site
            a = str(BASES[rng.integers(0, 4)]) + "TT"
        if len(r) == 1 and len(a) == 1 and rng.random() < flip_rate:
            r, a = COMP[r], COMP[a]
        if rng.random() < 0.4:
            r, a = a, r
        ea.append(a.lower() if rng.random() < 0.05 else a)
        oa.append(r)
    m = src.height
    eaf = rng.uniform(0.0, 1.0, m)
    return pl.DataFrame({
        "chromosome": src.get_column("chromosome"),
        "base_pair_location": src.get_column("base_pair_location")
        + np.where(rng.random(m) < 0.1, 1, 0),  # some positions the panel lacks
        "effect_allele": ea, "other_allele": oa,
        "beta": rng.normal(0, 0.1, m),
        # Few distinct SEs and ns, some n missing: duplicates tie and fall through the rule.
        "standard_error": rng.choice([0.01, 0.02], m),
        "effect_allele_frequency": np.where(rng.random(m) < 0.1, np.nan, eaf),
        "p_value": rng.uniform(0.01, 1.0, m),
        "n": rng.choice([1000, 2000], m),
        "rsid": [f"rs{i}" for i in range(m)],
    }).with_columns(
        pl.col("effect_allele_frequency").fill_nan(None),
        pl.when(pl.Series(rng.random(m) < 0.05)).then(None).otherwise(pl.col("n")).alias("n"),
    )


def _by_join(monkeypatch, df, ref, **kw):
    with monkeypatch.context() as mp:
        mp.setattr(align, "compact_reference", lambda r: None)
        return harmonise_cohort(df, cohort="c", reference=ref, **kw)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("flip_rate", [0.0, 1.0, 0.3])  # forward, reverse, mixed strand
def test_panel__packed_alignment_equals_the_join(seed, flip_rate, monkeypatch):
    rng = np.random.default_rng(seed)
    ref = prepare_reference(_panel(rng, 3000))
    df = _cohort(rng, ref.with_columns(pl.col("chromosome").cast(pl.String)), 4000,
                 flip_rate=flip_rate)
    want, want_ledger = _by_join(monkeypatch, df, ref, keep_marker_only=True)
    panel = compact_reference(ref)
    assert isinstance(panel, ReferencePanel)
    for reference in (ref, panel):
        got, ledger = harmonise_cohort(df, cohort="c", reference=reference, keep_marker_only=True)
        assert_frame_equal(got, want)
        assert list(ledger.removed.items()) == list(want_ledger.removed.items())
        assert list(ledger.changed.items()) == list(want_ledger.changed.items())
    # The scenario exercised what it should: matches of every kind, and drops.
    assert want_ledger.changed["allele_swapped"] > 0
    assert want_ledger.removed["allele_mismatch"] > 0
    assert want_ledger.removed["not_in_reference"] > 0
    assert want_ledger.removed["duplicate"] > 0


def test_panel__several_cohorts_through_harmonise_equal_the_join(monkeypatch):
    rng = np.random.default_rng(7)
    ref = _panel(rng, 2000)
    labels = prepare_reference(ref).with_columns(pl.col("chromosome").cast(pl.String))
    tables = {f"c{k}": _cohort(rng, labels, 2500, flip_rate=0.3 * k) for k in range(3)}
    got = harmonise(tables, reference=ref, keep_marker_only=True)
    with monkeypatch.context() as mp:
        mp.setattr(align, "compact_reference", lambda r: None)
        want = harmonise(tables, reference=ref, keep_marker_only=True)
    for c in tables:
        assert_frame_equal(got.tables[c], want.tables[c])
        assert got.ledgers[c].to_dict() == want.ledgers[c].to_dict()


def test_panel__positions_beyond_32_bits_fall_back_to_the_join():
    ref = prepare_reference(pl.DataFrame({
        "chromosome": ["1", "1"], "base_pair_location": [100, 2**33],
        "ref": ["A", "C"], "alt": ["G", "T"], "alt_frequency": [0.2, 0.3]}))
    assert compact_reference(ref) is None
    df = pl.DataFrame({
        "chromosome": ["1", "1"], "base_pair_location": [100, 2**33], "effect_allele": ["A", "C"],
        "other_allele": ["G", "T"], "beta": [0.1, 0.2], "standard_error": [0.1, 0.1],
        "effect_allele_frequency": [0.8, 0.7], "p_value": [0.5, 0.5], "n": [10, 10]})
    out, ledger = harmonise_cohort(df, cohort="c", reference=ref)
    assert out.get_column("base_pair_location").to_list() == [100, 2**33]
    assert out.get_column("beta").to_list() == [-0.1, -0.2]  # both swapped to effect = ALT
    assert ledger.changed["allele_swapped"] == 2


def test_panel__to_frame_gives_back_the_prepared_panel_in_variant_order():
    rng = np.random.default_rng(3)
    ref = prepare_reference(_panel(rng, 500))
    back = compact_reference(ref).to_frame()
    want = ref.drop_nulls(["chromosome", "base_pair_location"]).sort(
        ["chromosome", "base_pair_location", "ref", "alt"], nulls_last=True)
    assert_frame_equal(back.sort(["chromosome", "base_pair_location", "ref", "alt"],
                                 nulls_last=True), want, check_dtypes=False)
    # Panel order is the aligned variant order: (chromosome, position, REF, ALT), bytes.
    assert back.get_column("chromosome").is_sorted()
