"""Meta-analysis: formulas against statsmodels, invariants (hypothesis), far tail, bad input, CLI."""

from __future__ import annotations

import argparse
import json

import mpmath
import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from statsmodels.stats.meta_analysis import combine_effects

from crosscohort.central.harmonise import harmonise
from crosscohort.central.meta import meta_analyse
from crosscohort.commands import meta as meta_cmd
from crosscohort.contract.errors import ConfigError
from crosscohort.contract.keys import FLAG_EAF_FAR
from crosscohort.contract.stats import CHI2_1_MEDIAN
from crosscohort.contract.sumstats import COLUMNS, META_COLUMNS, read_sumstats, write_sumstats

NUMERIC = ["beta", "standard_error", "p_value", "neg_log_10_p_value", "het_q", "het_p",
           "het_i2", "tau2", "beta_random", "standard_error_random", "p_value_random",
           "neg_log_10_p_value_random", "effect_allele_frequency", "eaf_min", "eaf_max",
           "n_effective", "n", "n_studies"]


def _cohort(rng: np.random.Generator, m: int, *, pos=None, n=1000, drop=0.0) -> pl.DataFrame:
    pos = np.arange(1, m + 1) * 100 if pos is None else pos
    df = pl.DataFrame({
        "chromosome": np.ones(m, dtype=np.int64), "base_pair_location": pos,
        "effect_allele": ["G"] * m, "other_allele": ["A"] * m,
        "beta": rng.normal(0, 0.2, m), "standard_error": rng.uniform(0.02, 0.2, m),
        "effect_allele_frequency": rng.uniform(0.05, 0.95, m), "p_value": rng.uniform(0, 1, m),
        "n": np.full(m, n, dtype=np.int64),
    })
    if drop:
        df = df.filter(pl.Series(rng.random(m) >= drop))
    return df


def test_meta_fixed_and_random__match_statsmodels_combine_effects():
    rng = np.random.default_rng(1)
    tables = {f"c{i}": _cohort(rng, 8) for i in range(4)}
    # Heterogeneity on some variants so tau2 > 0 is exercised.
    tables["c3"] = tables["c3"].with_columns(pl.col("beta") + 0.5)
    res = meta_analyse(tables).table
    b = np.column_stack([t.get_column("beta").to_numpy() for t in tables.values()])
    s = np.column_stack([t.get_column("standard_error").to_numpy() for t in tables.values()])
    n_tau = 0
    for i in range(b.shape[0]):
        # oracle: statsmodels.stats.meta_analysis.combine_effects(eff, var, method_re="dl")
        o = combine_effects(b[i], s[i] ** 2, method_re="dl")
        row = res.row(i, named=True)
        assert row["beta"] == pytest.approx(o.mean_effect_fe, rel=1e-10, abs=1e-14)
        assert row["standard_error"] == pytest.approx(o.sd_eff_w_fe, rel=1e-10)
        assert row["het_q"] == pytest.approx(o.q, rel=1e-10)
        assert row["tau2"] == pytest.approx(o.tau2, rel=1e-10, abs=1e-14)
        assert row["het_i2"] == pytest.approx(max(0.0, o.i2), rel=1e-10, abs=1e-14)
        assert row["beta_random"] == pytest.approx(o.mean_effect_re, rel=1e-10, abs=1e-14)
        assert row["standard_error_random"] == pytest.approx(o.sd_eff_w_re, rel=1e-10)
        assert row["het_df"] == 3 and row["n_studies"] == 4
        n_tau += o.tau2 > 0
    assert n_tau > 0


def test_meta_fixed__single_cohort_is_identity():
    rng = np.random.default_rng(2)
    t = _cohort(rng, 20)
    res = meta_analyse({"only": t}).table
    assert res.get_column("beta").to_list() == t.get_column("beta").to_list()
    assert res.get_column("standard_error").to_list() == t.get_column("standard_error").to_list()
    assert res.get_column("beta_random").to_list() == t.get_column("beta").to_list()
    assert set(res.get_column("direction").to_list()) <= {"+", "-"}
    assert res.get_column("het_p").null_count() == 20
    assert res.get_column("het_i2").to_list() == [0.0] * 20


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), m=st.integers(1, 40))
def test_meta_property__single_cohort_equals_input_beta_se_p(seed, m):
    rng = np.random.default_rng(seed)
    t = _cohort(rng, m)
    z = t.get_column("beta").to_numpy() / t.get_column("standard_error").to_numpy()
    from scipy.stats import norm
    res = meta_analyse({"c": t}).table
    assert res.get_column("beta").to_list() == t.get_column("beta").to_list()
    assert res.get_column("standard_error").to_list() == t.get_column("standard_error").to_list()
    np.testing.assert_allclose(res.get_column("p_value").to_numpy(), 2 * norm.sf(np.abs(z)),
                               rtol=1e-12)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), perm_seed=st.integers(0, 1000))
def test_meta_property__cohort_order_changes_only_direction_order(seed, perm_seed):
    rng = np.random.default_rng(seed)
    names = ["a", "b", "c", "d"]
    tables = {c: _cohort(rng, 30, n=100 * (i + 1), drop=0.3) for i, c in enumerate(names)}
    order = list(np.random.default_rng(perm_seed).permutation(names))
    r1 = meta_analyse(tables)
    r2 = meta_analyse({c: tables[c] for c in order})
    assert r1.table.drop("direction").equals(r2.table.drop("direction"))
    d1 = r1.table.get_column("direction").to_list()
    d2 = r2.table.get_column("direction").to_list()
    idx = [names.index(c) for c in order]
    assert d2 == ["".join(d[i] for i in idx) for d in d1]
    r3 = meta_analyse(tables, cohort_order=order)
    assert r3.table.get_column("direction").to_list() == d2


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_meta_property__swapping_alleles_in_one_cohort_gives_identical_meta(seed):
    rng = np.random.default_rng(seed)
    tables = {c: _cohort(rng, 25, drop=0.2) for c in ("a", "b", "c")}
    mask = pl.Series(rng.random(tables["b"].height) < 0.5)
    swapped = tables["b"].with_columns(
        pl.when(mask).then(pl.col("other_allele")).otherwise(pl.col("effect_allele")).alias("effect_allele"),
        pl.when(mask).then(pl.col("effect_allele")).otherwise(pl.col("other_allele")).alias("other_allele"),
        pl.when(mask).then(-pl.col("beta")).otherwise(pl.col("beta")).alias("beta"),
        pl.when(mask).then(1 - pl.col("effect_allele_frequency"))
        .otherwise(pl.col("effect_allele_frequency")).alias("effect_allele_frequency"),
    )
    h1 = harmonise(tables)
    h2 = harmonise({**tables, "b": swapped})
    t1 = meta_analyse(h1.tables).table
    t2 = meta_analyse(h2.tables).table
    for col in NUMERIC:
        np.testing.assert_allclose(t2.get_column(col).to_numpy().astype(float),
                                   t1.get_column(col).to_numpy().astype(float),
                                   rtol=1e-14, atol=1e-15, err_msg=col)
    assert t1.get_column("direction").to_list() == t2.get_column("direction").to_list()


def test_meta_far_tail__z40_gives_finite_neg_log10_p_of_349_4():
    t = pl.DataFrame({"chromosome": [1], "base_pair_location": [1], "effect_allele": ["G"],
                      "other_allele": ["A"], "beta": [4.0], "standard_error": [0.1],
                      "effect_allele_frequency": [0.5], "p_value": [0.0],
                      "neg_log_10_p_value": [349.0], "n": [10]})
    row = meta_analyse({"c": t}).table.row(0, named=True)
    # oracle: mpmath, -log10(erfc(40/sqrt(2))) at 50 digits (two-sided p = erfc(z/sqrt 2))
    mpmath.mp.dps = 50
    want = float(-mpmath.log10(mpmath.erfc(mpmath.mpf(40) / mpmath.sqrt(2))))
    # The often-quoted 349.4 is the one-sided value; two-sided is log10(2) smaller.
    one_sided = float(-mpmath.log10(mpmath.erfc(mpmath.mpf(40) / mpmath.sqrt(2)) / 2))
    assert one_sided == pytest.approx(349.44, abs=0.01)
    assert want == pytest.approx(one_sided - np.log10(2), rel=1e-15)
    assert row["neg_log_10_p_value"] == pytest.approx(want, rel=1e-12)
    assert row["neg_log_10_p_value_random"] == pytest.approx(want, rel=1e-12)
    assert row["p_value"] == 0.0  # underflows, as documented; -log10 p is authoritative


def test_meta_bad_input__nan_beta_zero_se_duplicates_counted_and_absent_cohort_is_question_mark():
    rng = np.random.default_rng(3)
    a = _cohort(rng, 5)
    b = a.with_columns(
        pl.Series("beta", [np.nan, 0.0, 0.1, 0.2, 0.3]),
        pl.Series("standard_error", [0.1, 0.1, 0.0, 0.1, 0.1]),
    )
    b = pl.concat([b, b.tail(1).with_columns(pl.lit(0.05).alias("standard_error"))])
    c = _cohort(rng, 3, pos=np.array([10_000, 20_000, 30_000]))  # no overlap
    res = meta_analyse({"a": a, "b": b, "c": c})
    lg = res.ledgers["b"]
    assert lg.removed == {"bad_value_key": 0, "bad_value_beta": 1,
                          "bad_value_standard_error": 1, "duplicate": 1}
    assert lg.n_in == 6 and lg.n_kept == 3
    t = res.table
    assert t.height == 8
    dirs = t.get_column("direction").to_list()
    assert dirs[0][1:] == "??" and dirs[1][1:] == "0?" and dirs[2][1:] == "??"
    assert all(d[:2] == "??" for d in dirs[5:])
    # duplicate rule: same n, smaller SE kept
    b_row = t.filter(pl.col("base_pair_location") == 500)
    w = np.array([1 / a.get_column("standard_error")[4] ** 2, 1 / 0.05**2])
    want = (w * np.array([a.get_column("beta")[4], 0.3])).sum() / w.sum()
    assert b_row.get_column("beta")[0] == pytest.approx(want, rel=1e-12)


def test_meta_bad_input__all_missing_eaf_and_n_give_na_not_zero():
    rng = np.random.default_rng(4)
    a = _cohort(rng, 4).with_columns(pl.lit(None, pl.Float64).alias("effect_allele_frequency"),
                                     pl.lit(None, pl.Int64).alias("n"))
    t = meta_analyse({"a": a, "b": a}).table
    assert t.get_column("effect_allele_frequency").null_count() == 4
    assert "n" not in t.columns
    assert t.get_column("n_effective").null_count() == 4


def test_meta_bad_input__text_in_a_numeric_column_is_a_clear_error():
    """A table handed to meta_analyse unharmonised, with text in its SE column, is an
    InputError naming the cohort and the rule, not a polars traceback."""
    from crosscohort.contract.errors import InputError

    rng = np.random.default_rng(5)
    a = _cohort(rng, 4)
    bad = a.with_columns(pl.Series("standard_error", ["0.1", "0.2", "n/a", "0.1"]))
    with pytest.raises(InputError, match=r"cohort b: non-numeric value in a numeric column"):
        meta_analyse({"a": a, "b": bad})


def test_meta_sample_sizes__n_eaf_and_binary_n_effective():
    def one(eaf, n, ca, co):
        return pl.DataFrame({"chromosome": [1], "base_pair_location": [5], "effect_allele": ["G"],
                             "other_allele": ["A"], "beta": [0.1], "standard_error": [0.1],
                             "effect_allele_frequency": [eaf], "p_value": [0.3], "n": [n],
                             "n_cases": [ca], "n_controls": [co]})
    row = meta_analyse({"a": one(0.1, 300, 100, 200), "b": one(0.4, 600, 300, 300)}).table.row(
        0, named=True)
    assert row["n"] == 900 and row["n_cases"] == 400 and row["n_controls"] == 500
    assert row["effect_allele_frequency"] == pytest.approx((0.1 * 300 + 0.4 * 600) / 900)
    assert (row["eaf_min"], row["eaf_max"]) == (0.1, 0.4)
    assert row["n_effective"] == pytest.approx(4 / (1 / 100 + 1 / 200) + 4 / (1 / 300 + 1 / 300))


def test_meta_gc__inflated_cohort_se_scaled_by_sqrt_lambda():
    rng = np.random.default_rng(5)
    m = 2001
    a = _cohort(rng, m).with_columns(pl.Series("beta", rng.normal(0, 1, m) * 0.05),
                                     pl.lit(0.05).alias("standard_error"))
    b = _cohort(rng, m).with_columns(pl.Series("beta", rng.normal(0, 1, m) * 0.05 * 1.3),
                                     pl.lit(0.05).alias("standard_error"))
    za = (a.get_column("beta") / a.get_column("standard_error")).to_numpy()
    zb = (b.get_column("beta") / b.get_column("standard_error")).to_numpy()
    lam_a, lam_b = np.median(za**2) / CHI2_1_MEDIAN, np.median(zb**2) / CHI2_1_MEDIAN
    assert lam_b > 1
    plain = meta_analyse({"a": a, "b": b})
    gc = meta_analyse({"a": a, "b": b}, gc=True)
    assert gc.lambda_gc["b"] == pytest.approx(lam_b, rel=1e-9)
    assert plain.lambda_gc["a"] == pytest.approx(lam_a, rel=1e-9)
    fa = np.sqrt(lam_a) if lam_a > 1 else 1.0
    assert gc.gc_applied == {"a": pytest.approx(fa), "b": pytest.approx(np.sqrt(lam_b))}
    sa, sb = 0.05 * fa, 0.05 * np.sqrt(lam_b)
    want_se = 1 / np.sqrt(1 / sa**2 + 1 / sb**2)
    np.testing.assert_allclose(gc.table.get_column("standard_error").to_numpy(), want_se, rtol=1e-12)
    assert plain.gc_applied == {"a": 1.0, "b": 1.0}
    assert gc.lambda_meta < plain.lambda_meta


def test_meta_options__bad_method_and_cohort_order_rejected():
    rng = np.random.default_rng(6)
    t = _cohort(rng, 3)
    with pytest.raises(ConfigError, match="method"):
        meta_analyse({"a": t}, method="bayes")
    with pytest.raises(ConfigError, match="cohort-order"):
        meta_analyse({"a": t, "b": t}, cohort_order=["a", "c"])


def _run_cli(module, argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    module.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_meta_cli__writes_registry_columns_sorted_and_summary(tmp_path):
    rng = np.random.default_rng(7)
    a = _cohort(rng, 10, pos=np.arange(10, 0, -1) * 100)
    b = _cohort(rng, 10).with_columns(pl.Series("beta", [8.0] + [0.0] * 9),
                                      pl.lit(0.1).alias("standard_error"))
    write_sumstats(a, tmp_path / "a.tsv.gz")
    write_sumstats(b, tmp_path / "b.tsv.gz")
    out = tmp_path / "meta.tsv.gz"
    rc = _run_cli(meta_cmd, ["meta", "--method", "random", "--cohort-order", "b,a", "--out",
                             str(out), f"a={tmp_path / 'a.tsv.gz'}", f"b={tmp_path / 'b.tsv.gz'}"])
    assert rc == 0
    t = read_sumstats(out)
    registry = [*COLUMNS, *META_COLUMNS, FLAG_EAF_FAR]
    assert t.columns == [c for c in registry if c in t.columns]
    assert t.get_column("base_pair_location").to_list() == sorted(t.get_column("base_pair_location"))
    assert t.get_column("direction")[0][0] == "+" and set(t.get_column("direction")[1][:1]) == {"0"}
    summary = json.loads((tmp_path / "meta.tsv.gz.summary.json").read_text())
    assert summary["method"] == "random" and summary["n_variants"] == 10
    assert summary["cohorts"] == ["b", "a"]
    assert set(summary["lambda_gc"]) == {"a", "b"} and summary["lambda_gc_meta"] > 0
    nlp = t.get_column("neg_log_10_p_value_random").to_numpy()
    assert summary["n_genome_wide"] == int((nlp > -np.log10(5e-8)).sum())


def test_meta_eaf__far_cohort_flagged_against_the_others_n_weighted():
    rng = np.random.default_rng(21)
    m = 50
    eaf = rng.uniform(0.3, 0.7, m)

    def cohort(n, shift):
        return _cohort(rng, m, n=n).with_columns(pl.Series("effect_allele_frequency", eaf + shift))

    far = np.zeros(m)
    planted = [2, 9, 10, 31, 44, 49]
    far[planted] = 0.25
    # b is small: its far EAF moves the others' weighted mean by 0.25 * 1000/11000 < 0.2,
    # so only b is flagged; a 0.15 shift (row 5) is within the threshold.
    shift_b = far + np.where(np.arange(m) == 5, 0.15, 0.0)
    res = meta_analyse({"a": cohort(10_000, 0.0), "b": cohort(1_000, shift_b),
                        "c": cohort(10_000, 0.0).head(45)})  # rows 45-49: a and b only
    changed = {c: lg.changed["eaf_far_from_other_cohorts_flagged"] for c, lg in res.ledgers.items()}
    # Rows 45-49 have two cohorts: each is "the others" of the other, so row 49 flags a too.
    assert changed == {"a": 1, "b": len(planted), "c": 0}
    assert np.flatnonzero(res.table.get_column("flag_eaf_far").to_numpy()).tolist() == planted
    assert res.table.height == m  # flagged, never dropped
    assert res.summary()["n_eaf_far"] == len(planted)
    lone = meta_analyse({"a": cohort(10_000, 0.0)})  # one cohort: no others to differ from
    assert lone.ledgers["a"].changed["eaf_far_from_other_cohorts_flagged"] == 0


def test_meta_marker_only__rows_keyed_by_marker_name_are_combined_and_placed_last():
    rng = np.random.default_rng(22)

    def cohort():
        pos = _cohort(rng, 4).with_columns(pl.Series("rsid", ["p1", "p2", "p3", "p4"]))
        names = _cohort(rng, 3).with_columns(
            pl.lit(None, pl.Int64).alias("chromosome"), pl.lit(None, pl.Int64).alias("base_pair_location"),
            pl.Series("rsid", ["rs9", "rs10", "rs2"]))
        # Marker-only rows first in the file: the output still puts them last.
        return pl.concat([names, pos])

    a, b = cohort(), cohort()
    res = meta_analyse({"a": a, "b": b})
    t = res.table
    assert res.ledgers["a"].removed["bad_value_key"] == 0 and res.ledgers["a"].n_kept == 7
    assert t.height == 7
    assert t.get_column("base_pair_location").to_list()[:4] == [100, 200, 300, 400]
    assert t.get_column("chromosome").null_count() == 3
    assert t.get_column("rsid").to_list()[4:] == ["rs10", "rs2", "rs9"]  # marker-name order
    assert t.get_column("variant_id").to_list()[4:] == [None] * 3
    for name in ("rs10", "rs2", "rs9"):
        ba = a.filter(pl.col("rsid") == name).row(0, named=True)
        bb = b.filter(pl.col("rsid") == name).row(0, named=True)
        w = np.array([1 / ba["standard_error"] ** 2, 1 / bb["standard_error"] ** 2])
        want = (w * np.array([ba["beta"], bb["beta"]])).sum() / w.sum()
        row = t.filter(pl.col("rsid") == name).row(0, named=True)
        assert row["beta"] == pytest.approx(want, rel=1e-12) and row["n_studies"] == 2
    # Null position with no marker name is still a bad key.
    c = a.with_columns(pl.lit(None, pl.String).alias("rsid"))
    assert meta_analyse({"c": c}).ledgers["c"].removed["bad_value_key"] == 3


@pytest.mark.parametrize("k", range(0, 11))
def test_direction_table_matches_the_expression_version(k):
    """Looked-up direction strings (k <= 8) equal the per-cohort expressions, NaN/0/-0/inf included."""
    from crosscohort.central.meta.ivw import _direction, _direction_exprs

    rng = np.random.default_rng(k)
    beta = rng.choice([np.nan, 0.0, -0.0, 1.5, -2.0, np.inf, -np.inf, 1e-300, -5e-324], (k, 700))
    got, want = _direction(beta), _direction_exprs(beta)
    assert got.name == want.name == "direction" and got.dtype == want.dtype == pl.String
    assert got.to_list() == want.to_list()
    assert all(len(s) == k for s in got.to_list())
