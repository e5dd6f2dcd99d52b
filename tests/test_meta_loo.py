"""Leave-one-cohort-out: each row equals a meta-analysis run on the other cohorts."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from crosscohort.central.loci import distance_loci
from crosscohort.central.meta import LEFT_OUT, leave_one_out, meta_analyse
from crosscohort.contract.keys import VARIANT_KEY


def _cohort(rng, m, *, drop=0.0, shift=0.0):
    keep = rng.random(m) >= drop
    pos = (np.arange(m) + 1) * 1000
    beta = rng.normal(0, 0.02, m) + np.where(np.arange(m) % 50 == 0, 0.3, 0.0) + shift
    return pl.DataFrame({
        "chromosome": np.ones(m, dtype=np.int64), "base_pair_location": pos,
        "effect_allele": ["G"] * m, "other_allele": ["A"] * m, "beta": beta,
        "standard_error": rng.uniform(0.02, 0.04, m), "effect_allele_frequency": 0.3,
        "p_value": 0.5, "n": 1000,
    }).filter(pl.Series(keep))


@pytest.mark.parametrize("gc", [False, True])
def test_meta_loo__equals_meta_analysis_of_the_other_cohorts(gc):
    rng = np.random.default_rng(31)
    tables = {c: _cohort(rng, 400, drop=0.2, shift=0.01 * i) for i, c in enumerate("abcd")}
    full = meta_analyse(tables, gc=gc)
    leads = distance_loci(full.table, threshold=5e-8, window_kb=10)
    assert leads.height >= 5
    loo = leave_one_out(tables, leads, se_factors=full.gc_applied)
    assert loo.table.height == leads.height * 4
    for c in "abcd":
        # independent path: the whole pipeline on the other three cohorts, same SE factors
        others = {o: t for o, t in tables.items() if o != c}
        if gc:
            others = {o: t.with_columns(pl.col("standard_error") * full.gc_applied[o])
                      for o, t in others.items()}
        ref = meta_analyse(others).table.join(leads.select(VARIANT_KEY), on=list(VARIANT_KEY),
                                              how="semi")
        got = loo.table.filter(pl.col(LEFT_OUT) == c).join(
            ref, on=list(VARIANT_KEY), how="inner", suffix="_ref")
        assert got.height == ref.height
        for col in ("beta", "standard_error", "p_value", "neg_log_10_p_value", "n_studies"):
            np.testing.assert_allclose(got.get_column(col).to_numpy().astype(float),
                                       got.get_column(f"{col}_ref").to_numpy().astype(float),
                                       rtol=1e-13, err_msg=f"{c} {col}")


def test_meta_loo__variant_only_in_left_out_cohort_is_na_and_order_kept():
    rng = np.random.default_rng(32)
    a, b = _cohort(rng, 10), _cohort(rng, 10)
    only_a = pl.DataFrame({"chromosome": [2], "base_pair_location": [5], "effect_allele": ["T"],
                           "other_allele": ["C"], "beta": [0.2], "standard_error": [0.05]})
    a = pl.concat([a, only_a], how="diagonal_relaxed")
    want = pl.concat([only_a.select(VARIANT_KEY), a.head(1).select(VARIANT_KEY)])
    loo = leave_one_out({"a": a, "b": b}, want, cohort_order=["b", "a"])
    t = loo.table
    assert t.get_column(LEFT_OUT).to_list() == ["b", "a", "b", "a"]
    assert t.get_column("chromosome").to_list() == [2, 2, 1, 1]
    row = t.row(1, named=True)  # chr2 variant without cohort a
    assert row["beta"] is None and row["n_studies"] == 0
    assert t.row(0, named=True)["beta"] == pytest.approx(0.2)
    assert t.row(3, named=True)["beta"] == pytest.approx(b.get_column("beta")[0], rel=1e-15)


def test_meta_loo__marker_name_leads_equal_meta_analysis_of_the_other_cohorts():
    """Leads keyed by marker name alone (no chromosome, no position: METAL/GWAMA inputs) get
    their leave-one-out rows, matched on name and alleles as meta_analyse matches them."""
    rng = np.random.default_rng(33)
    tables = {}
    for i, c in enumerate("abc"):
        t = _cohort(rng, 60).with_columns(pl.Series("rsid", [f"rs{j}" for j in range(60)]))
        # Cohort c names rs0 with the other allele order: another variant, never matched.
        marker = t.head(3).with_columns(
            pl.lit(None, pl.Int64).alias("chromosome"), pl.lit(None, pl.Int64).alias("base_pair_location"),
            pl.Series("rsid", ["mk1", "mk2", "mk3"]), pl.lit(0.6 + 0.05 * i).alias("beta"))
        if c == "c":
            marker = marker.with_columns(pl.lit("G").alias("other_allele"),
                                         pl.lit("A").alias("effect_allele"))
        tables[c] = pl.concat([t, marker])
    full = meta_analyse(tables)
    leads = distance_loci(full.table, threshold=5e-8, window_kb=10)
    named = leads.filter(pl.col("chromosome").is_null())
    assert named.height == 6  # mk1-3 of a and b, and of c with the alleles reversed
    loo = leave_one_out(tables, leads)
    assert "rsid" in loo.table.columns
    assert loo.table.height == leads.height * 3
    key = ["rsid", "other_allele", "effect_allele"]
    for c in "abc":
        ref = meta_analyse({o: t for o, t in tables.items() if o != c}).table.filter(
            pl.col("chromosome").is_null())
        got = loo.table.filter((pl.col(LEFT_OUT) == c) & pl.col("chromosome").is_null())
        assert got.height == 6
        both = got.join(ref, on=key, how="left", suffix="_ref")
        for col in ("beta", "standard_error", "p_value", "n_studies"):
            a = both.get_column(col).to_numpy().astype(float)
            b = both.get_column(f"{col}_ref").to_numpy().astype(float)
            if col == "n_studies":
                b = np.nan_to_num(b, nan=0.0)  # a variant only the left-out cohort has: 0
            np.testing.assert_allclose(a, b, rtol=1e-13, err_msg=f"{c} {col}")
        assert got.get_column("variant_id").null_count() == 6
