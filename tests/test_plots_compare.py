"""Comparison and QC plots: Miami halves, concordance tiles, forest rows, λ at upper quantiles."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from scipy.stats import chi2

from crosscohort.central.report.plots import (
    POINTS_GID,
    concordance_tiles,
    forest,
    lambda_at_quantiles,
    miami,
    qq,
)


def _gwas(chroms, n_per, seed, hit=None):
    rng = np.random.default_rng(seed)
    rows = []
    for c in chroms:
        pos = np.sort(rng.choice(np.arange(1, 10_000) * 1000, n_per, replace=False))
        nlp = -np.log10(rng.uniform(size=n_per))
        if hit and hit[0] == c:
            nlp[n_per // 2] = hit[1]
        rows.append(pl.DataFrame({"chromosome": np.full(n_per, c), "base_pair_location": pos,
                                  "neg_log_10_p_value": nlp}))
    return pl.concat(rows)


def _points(ax):
    return np.concatenate([ln.get_ydata() for ln in ax.get_lines() if ln.get_gid() == POINTS_GID])


def test_miami__meta_above_pooled_below_on_one_axis_covering_both_arms():
    meta = _gwas([1, 2, 3], 2000, 1, hit=(2, 20.0))
    pooled = _gwas([1, 3, 23], 2000, 2, hit=(23, 15.0))
    fig = miami(meta, pooled, threshold=5e-8)
    top, bottom = fig.axes
    assert bottom.yaxis_inverted() and not top.yaxis_inverted()
    labels = [t.get_text() for t in bottom.get_xticklabels()]
    assert labels == ["1", "2", "3", "X"]  # union of both arms' chromosomes
    assert _points(top).max() == pytest.approx(20.0)
    assert _points(bottom).max() == pytest.approx(15.0)
    # Every point above the display threshold is drawn in each half.
    assert (_points(top) >= 3).sum() == (meta["neg_log_10_p_value"] >= 3).sum()
    assert (_points(bottom) >= 3).sum() == (pooled["neg_log_10_p_value"] >= 3).sum()


def test_concordance_tiles__tile_texts_are_the_counts():
    rows = {"variants": {"both": 81, "meta_only": 2, "pooled_only": 3}, "loci": {"both": 4, "meta_only": 0,
                                                                               "pooled_only": 1}}
    fig = concordance_tiles(rows)
    texts = [t.get_text() for t in fig.axes[0].texts if t.get_gid() == "tile"]
    assert texts == ["81", "2", "3", "4", "0", "1"]


def test_forest__one_interval_per_row_at_beta_plus_minus_1_96_se():
    rows = pl.DataFrame({"label": ["a", "b", "without a", "meta"], "beta": [0.2, -0.1, -0.1, 0.05],
                         "standard_error": [0.05, 0.1, 0.1, 0.04], "kind": ["cohort", "cohort", "loo", "summary"]})
    fig = forest(rows, title="x")
    cis = [ln.get_xdata() for ln in fig.axes[0].get_lines() if ln.get_gid() == "ci"]
    z = 1.959963984540054  # scipy.stats.norm.isf(0.025)
    for (lo, hi), b, se in zip(cis, rows["beta"], rows["standard_error"], strict=True):
        assert lo == pytest.approx(b - z * se) and hi == pytest.approx(b + z * se)


def test_lambda_at_quantiles__matches_scipy_chi2_quantiles():
    rng = np.random.default_rng(5)
    n = 10_001  # q (n - 1) is an integer for every q: no interpolation in either path
    z = rng.normal(size=n) * 1.1
    p = 2 * chi2.sf(z * z, 1) / 2
    got = lambda_at_quantiles(-np.log10(p))
    stat = chi2.isf(p, 1)  # oracle: scipy chi2 of each p, numpy quantile, over chi2.ppf(q, 1)
    for q in (0.5, 0.9, 0.99, 0.999):
        assert got[q] == pytest.approx(np.quantile(stat, q) / chi2.ppf(q, 1), rel=1e-9)
    assert got[0.5] == pytest.approx(qq(pl.DataFrame({"p_value": p}), title="t").lambda_gc, rel=1e-9)


def test_lambda_at_quantiles__too_few_variants_for_a_quantile_is_nan():
    got = lambda_at_quantiles(np.array([1.0, 2.0, 0.5]))
    assert np.isfinite(got[0.5]) and np.isnan(got[0.99])


def test_qq__upper_quantile_lambdas_printed():
    rng = np.random.default_rng(1)
    q = qq(pl.DataFrame({"p_value": rng.uniform(size=5000)}), title="t")
    text = [t.get_text() for t in q.figure.axes[0].texts if t.get_gid() == "lambda_quantiles"][0]
    assert f"λ0.9 = {q.lambda_quantiles[0.9]:.3f}" in text
