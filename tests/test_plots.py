"""Plots: Manhattan binning and axes, QQ λ and confidence band, β–β scatter, PNG output.

Oracles are independent of the plotting code: scipy.stats.chi2 for λGC, the
binomial identity of uniform order statistics (and a simulation) for the QQ
band, scipy.stats.linregress for the fitted slope, and the data themselves
for which points must be drawn.
"""

from __future__ import annotations

import re

import numpy as np
import polars as pl
import pytest
from scipy import stats

from crosscohort.central.report.plots import (
    POINTS_GID,
    beta_scatter,
    figure_png,
    manhattan,
    qq,
    qq_band,
    thin_indices,
)
from crosscohort.contract.errors import InputError
from crosscohort.contract.sumstats import COLUMNS, chrom_label

CHR, POS, P, NLP = "chromosome", "base_pair_location", "p_value", "neg_log_10_p_value"
assert {CHR, POS, P, NLP} <= set(COLUMNS)  # names come from the registry


def _sumstats(n: int, *, chroms: tuple[int, ...] = (1, 2, 3), seed: int = 0, inflation: float = 1.0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    z = rng.standard_normal(n) * np.sqrt(inflation)
    chrom = np.sort(rng.choice(np.array(chroms), size=n))
    return pl.DataFrame({
        CHR: chrom.astype(np.int64),
        POS: rng.integers(1, 100_000_000, size=n),
        "beta": z * 0.01,
        "standard_error": np.full(n, 0.01),
        P: 2 * stats.norm.sf(np.abs(z)),
    })


def _drawn_points(fig) -> tuple[np.ndarray, np.ndarray]:
    ax = fig.axes[0]
    xs, ys = [], []
    for line in ax.lines:
        if line.get_gid() == POINTS_GID:
            xs.append(np.asarray(line.get_xdata(), dtype=float))
            ys.append(np.asarray(line.get_ydata(), dtype=float))
    return np.concatenate(xs), np.concatenate(ys)


def _printed_lambda(fig) -> float:
    texts = [t.get_text() for t in fig.axes[0].texts if t.get_gid() == "lambda_gc"]
    assert len(texts) == 1
    m = re.fullmatch(r"λGC = ([0-9.]+)", texts[0])
    assert m, texts[0]
    return float(m.group(1))


def _scipy_lambda(p: np.ndarray) -> float:
    # Independent oracle: median 1-df chi-square over its null median, via scipy directly.
    return float(np.median(stats.chi2.isf(p, 1)) / stats.chi2.ppf(0.5, 1))


# ---------------------------------------------------------------- QQ

def test_qq__printed_lambda_equals_computed_and_scipy():
    df = _sumstats(20_001, inflation=1.15, seed=3)
    res = qq(df, title="inflated")
    oracle = _scipy_lambda(df[P].to_numpy())
    assert res.lambda_gc == pytest.approx(oracle, rel=1e-10)
    assert _printed_lambda(res.figure) == pytest.approx(res.lambda_gc, abs=5e-5)
    assert 1.1 < res.lambda_gc < 1.2  # the planted inflation is visible
    assert res.n_variants == 20_001


def test_qq__even_number_of_variants_lambda_matches_scipy():
    df = _sumstats(10_000, seed=4)
    assert qq(df, title="even").lambda_gc == pytest.approx(_scipy_lambda(df[P].to_numpy()), rel=1e-10)


def test_qq__lambda_from_z_when_no_p_column():
    df = _sumstats(5_001, inflation=1.3, seed=5).drop(P)
    z = (df["beta"] / df["standard_error"]).to_numpy()
    oracle = float(np.median(z**2) / stats.chi2.ppf(0.5, 1))
    res = qq(df, title="from z")
    assert res.lambda_gc == pytest.approx(oracle, rel=1e-8)
    assert _printed_lambda(res.figure) == pytest.approx(oracle, abs=5e-5)


def test_qq__underflowing_p_uses_neg_log_10_p_value():
    df = _sumstats(1_001, seed=6)
    nlp = -np.log10(df[P].to_numpy())
    nlp[:5] = [400.0, 350.0, 330.0, 320.0, 310.0]
    p = df[P].to_numpy().copy()
    p[:5] = 0.0  # underflowed in float64
    df = df.with_columns(pl.Series(P, p), pl.Series(NLP, nlp))
    res = qq(df, title="underflow")
    _, y = _drawn_points(res.figure)
    assert y.max() == pytest.approx(400.0)
    assert np.isfinite(res.lambda_gc)


def test_qq__band_drawn_and_contains_null_bulk():
    df = _sumstats(50_000, seed=7)
    res = qq(df, title="null")
    bands = [c for c in res.figure.axes[0].collections if c.get_gid() == "qq_band"]
    assert len(bands) == 1
    verts = bands[0].get_paths()[0].vertices
    assert verts[:, 1].max() > verts[:, 1].min() > -1e-9


def test_qq_band__limits_match_binomial_identity():
    # P(U_(i) <= u) = P(Binomial(n, u) >= i) for the i-th smallest of n uniforms.
    n = 1_000
    expected, lower, upper = qq_band(n, level=0.95)
    ranks = np.rint(10.0 ** -expected * (n + 1)).astype(int)
    assert ranks[0] == 1 and ranks[-1] == n
    p_small = 10.0 ** -upper  # the band's smallest p at each rank
    p_large = 10.0 ** -lower
    np.testing.assert_allclose(stats.binom.sf(ranks - 1, n, p_small), 0.025, rtol=1e-6)
    np.testing.assert_allclose(stats.binom.sf(ranks - 1, n, p_large), 0.975, rtol=1e-6)


def test_qq_band__pointwise_coverage_by_simulation():
    n, reps = 200, 4_000
    rng = np.random.default_rng(11)
    sims = -np.log10(np.sort(rng.uniform(size=(reps, n)), axis=1))  # rank 1 = smallest p
    expected, lower, upper = qq_band(n, level=0.95)
    ranks = np.rint(10.0 ** -expected * (n + 1)).astype(int)
    inside = (sims[:, ranks - 1] >= lower) & (sims[:, ranks - 1] <= upper)
    coverage = inside.mean(axis=0)
    # binomial sd of a coverage estimate: sqrt(.95*.05/4000) = 0.0034
    assert np.all(np.abs(coverage - 0.95) < 0.015), coverage


# ---------------------------------------------------------------- Manhattan

def test_manhattan__binning_keeps_every_point_above_display_threshold():
    df = _sumstats(300_000, chroms=tuple(range(1, 23)), inflation=1.4, seed=8)
    y_data = -np.log10(df[P].to_numpy())
    fig = manhattan(df, title="binned", display_threshold=3.0)
    _, y = _drawn_points(fig)
    above_data = np.sort(y_data[y_data >= 3.0])
    above_drawn = np.sort(y[y >= 3.0])
    assert above_data.size > 100
    assert above_drawn.size == above_data.size
    np.testing.assert_array_equal(above_drawn, above_data)
    assert y.size < 0.6 * df.height  # the bulk was thinned


def test_manhattan__axes_cover_every_chromosome_present():
    df = _sumstats(20_000, chroms=(1, 2, 5, 23, 25), seed=9)
    fig = manhattan(df, title="chroms")
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels == [chrom_label(c) for c in (1, 2, 5, 23, 25)] == ["1", "2", "5", "X", "MT"]
    x, _ = _drawn_points(fig)
    lo, hi = ax.get_xlim()
    assert lo <= x.min() and x.max() <= hi
    ticks = ax.get_xticks()
    assert np.all((ticks > lo) & (ticks < hi))


def test_manhattan__threshold_line_at_minus_log10_of_threshold():
    fig = manhattan(_sumstats(1_000), title="line")
    lines = [ln for ln in fig.axes[0].lines if ln.get_gid() == "threshold"]
    assert len(lines) == 1
    assert lines[0].get_ydata()[0] == pytest.approx(-np.log10(5e-8))
    assert lines[0].get_linestyle() == "--"


def test_manhattan__underflowing_p_plotted_from_neg_log_10_p_value():
    df = _sumstats(1_000).with_columns(
        pl.when(pl.int_range(pl.len()) == 10).then(0.0).otherwise(pl.col(P)).alias(P))
    with np.errstate(divide="ignore"):
        nlp = -np.log10(df[P].to_numpy())
    nlp[10] = 512.25
    df = df.with_columns(pl.Series(NLP, nlp))
    _, y = _drawn_points(manhattan(df, title="underflow"))
    assert y.max() == pytest.approx(512.25)


def test_manhattan__lead_loci_labelled():
    df = _sumstats(2_000, chroms=(1, 2), seed=10)
    loci = pl.DataFrame({CHR: [2], POS: [12_345], "rsid": ["rs999"], P: [1e-20]})
    fig = manhattan(df, title="loci", loci=loci)
    labels = [t.get_text() for t in fig.axes[0].texts if t.get_gid() == "lead_label"]
    assert labels == ["rs999"]


def test_manhattan__missing_p_values_counted_on_plot_not_silently_dropped():
    df = _sumstats(1_000).with_columns(
        pl.when(pl.int_range(pl.len()) < 7).then(None).otherwise(pl.col(P)).alias(P))
    fig = manhattan(df, title="na")
    notes = [t.get_text() for t in fig.axes[0].texts if t.get_gid() == "note"]
    assert notes == ["993 variants; 7 without chromosome, position or p-value not shown"]


def test_manhattan__marker_name_rows_without_positions_are_counted_not_a_crash():
    """Rows keyed by marker name only (null chromosome and position, as METAL/GWAMA files
    give) are left out and counted; with a few among positioned rows the plot is drawn (the
    chromosome array then holds nulls, once a crash in the layout), with none positioned
    the plot says so."""
    df = _sumstats(1_000)
    unplaced = pl.int_range(pl.len()) < 5
    some = df.with_columns(pl.when(unplaced).then(None).otherwise(pl.col(c)).alias(c)
                           for c in ("chromosome", POS))
    fig = manhattan(some, title="mixed")
    notes = [t.get_text() for t in fig.axes[0].texts if t.get_gid() == "note"]
    assert notes == ["995 variants; 5 without chromosome, position or p-value not shown"]
    none = df.with_columns(pl.lit(None, pl.Int64).alias("chromosome"), pl.lit(None, pl.Int64).alias(POS))
    fig = manhattan(none, title="names only")
    notes = [t.get_text() for t in fig.axes[0].texts if t.get_gid() == "note"]
    assert notes == ["no variant with chromosome, position and p-value (1,000 without)"]


def test_manhattan__without_position_column_is_a_one_line_input_error():
    with pytest.raises(InputError, match="base_pair_location"):
        manhattan(_sumstats(10).drop(POS), title="broken")


# ---------------------------------------------------------------- thinning, scatter, PNG

def test_thin_indices__one_point_per_occupied_cell_below_threshold():
    rng = np.random.default_rng(12)
    x, y = rng.uniform(0, 1, 50_000), rng.exponential(1.0, 50_000)
    keep = thin_indices(x, y, y_threshold=3.0, x_edges=(0.0, 1.0), x_bins=40, y_bins=30)
    below = keep[y[keep] < 3.0]
    cells = np.floor(x * 40).astype(int) * 30 + np.floor(y / 3.0 * 30).astype(int)
    occupied = np.unique(cells[y < 3.0])
    assert np.array_equal(np.sort(cells[below]), occupied)  # one per cell, every cell
    assert set(np.flatnonzero(y >= 3.0)) <= set(keep)


def test_beta_scatter__slope_matches_linregress_and_swapped_alleles_are_flipped():
    rng = np.random.default_rng(13)
    n = 400
    pooled_beta = rng.normal(0, 0.2, n)
    meta_beta = 0.8 * pooled_beta + rng.normal(0, 0.02, n)
    base = {CHR: np.ones(n, dtype=np.int64), POS: np.arange(1, n + 1) * 1000}
    swap = np.arange(n) % 3 == 0  # a third of the pooled rows report the other allele
    meta = pl.DataFrame({**base, "effect_allele": ["A"] * n, "other_allele": ["G"] * n,
                         "beta": meta_beta, P: np.full(n, 1e-10)})
    pooled = pl.DataFrame({**base, "effect_allele": np.where(swap, "G", "A"),
                           "other_allele": np.where(swap, "A", "G"),
                           "beta": np.where(swap, -pooled_beta, pooled_beta), P: np.full(n, 1e-10)})
    res = beta_scatter(meta, pooled)
    oracle = stats.linregress(pooled_beta, meta_beta)
    assert res.n_matched == n
    assert res.slope == pytest.approx(oracle.slope, rel=1e-9)
    assert res.r == pytest.approx(oracle.rvalue, rel=1e-9)
    assert any(ln.get_gid() == "identity" for ln in res.figure.axes[0].lines)


def test_figure_png__has_png_signature_and_size():
    png = figure_png(manhattan(_sumstats(500), title="png"), dpi=50)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert (width, height) == (600, 225)  # 12 x 4.5 inches at 50 dpi
