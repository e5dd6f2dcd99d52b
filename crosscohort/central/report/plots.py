"""Manhattan, QQ and beta-beta plots of summary statistics that stay light at 10M variants.

Figures are built on matplotlib's Agg canvas directly (no pyplot, no global
backend switch), so they are safe in worker processes and tests. Every point
above a display threshold (by default -log10 p >= 3) is drawn as it is; the
null bulk below it is thinned by keeping one point per occupied cell of a
(position-bin, y-bin) grid, which is invisible at screen resolution and keeps
10 million variants down to a few hundred thousand markers.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass, field

import numpy as np
import polars as pl
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from scipy.special import betaincinv, gammaincinv

from crosscohort.central.loci import THRESHOLD
from crosscohort.contract.errors import InputError
from crosscohort.contract.keys import VARIANT_KEY
from crosscohort.contract.stats import chi2_from_neglog10p, lambda_gc, neg_log10_p_of_table
from crosscohort.contract.sumstats import chrom_label

__all__ = [
    "QQPlot",
    "BetaScatter",
    "thin_indices",
    "manhattan",
    "qq",
    "qq_band",
    "beta_scatter",
    "miami",
    "neglog10p_scatter",
    "concordance_tiles",
    "forest",
    "identity_scatter",
    "se_sqrt_n",
    "lambda_at_quantiles",
    "LAMBDA_QUANTILES",
    "figure_png",
    "png_data_uri",
]

#: Gid of the artists that hold data points (tests and report code find them by it).
POINTS_GID = "points"
_COLOURS = ("#1f4e79", "#7fa7c9")  # alternate chromosomes: dark and light blue
_LEAD_COLOUR = "#c0392b"


#: Quantiles of the 1-df chi-square at which the QQ plot reports λ (0.5 is λGC).
LAMBDA_QUANTILES = (0.5, 0.9, 0.99, 0.999)


@dataclass(frozen=True)
class QQPlot:
    """A QQ figure and the genomic-control λ printed on it.

    ``lambda_quantiles`` maps q to λ_q (:func:`lambda_at_quantiles`); λ_0.5 = λGC.
    """

    figure: Figure
    lambda_gc: float
    n_variants: int
    lambda_quantiles: dict = field(default_factory=dict)


@dataclass(frozen=True)
class BetaScatter:
    """A β–β scatter figure and the fitted line drawn on it."""

    figure: Figure
    slope: float
    intercept: float
    r: float
    n_matched: int
    n_fitted: int


def _square_limits(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """One axis range for both of two non-empty arrays, padded by 5% of its span (of 1 when flat)."""
    lo = float(min(x.min(), y.min()))
    hi = float(max(x.max(), y.max()))
    pad = 0.05 * (hi - lo or 1.0)
    return lo - pad, hi + pad


def thin_indices(x: np.ndarray, y: np.ndarray, *, y_threshold: float, x_edges: tuple[float, float],
                 x_bins: int, y_bins: int, group: np.ndarray | None = None,
                 n_groups: int = 1) -> np.ndarray:
    """Indices of the points to draw: all with ``y >= y_threshold``, one per occupied grid cell below.

    Parameters
    ----------
    x, y
        Point coordinates (float64, same length, finite).
    y_threshold
        Points at or above it are always kept.
    x_edges
        ``(lo, hi)`` of the x range the grid covers (per group when ``x`` is
        already relative to its group's origin).
    x_bins, y_bins
        Grid resolution; the bulk keeps at most ``x_bins * y_bins`` points per group.
    group, n_groups
        Optional integer group of each point (e.g. chromosome index) so each
        group has its own grid.

    Returns
    -------
    numpy.ndarray
        Sorted int64 indices into ``x``.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    above = np.flatnonzero(y >= y_threshold)
    below = np.flatnonzero(y < y_threshold)
    if below.size == 0:
        return above
    lo, hi = x_edges
    width = max(hi - lo, np.finfo(float).tiny)
    xb = np.clip(((x[below] - lo) / width * x_bins).astype(np.int64), 0, x_bins - 1)
    yb = np.clip((y[below] / y_threshold * y_bins).astype(np.int64), 0, y_bins - 1) if y_threshold > 0 \
        else np.zeros(below.size, dtype=np.int64)
    cell = xb * y_bins + yb
    if group is not None:
        cell += np.asarray(group, dtype=np.int64)[below] * (x_bins * y_bins)
    # Any one point per cell will do: with repeated indices numpy keeps one of
    # the writes, which is all we need, and it is O(n) where np.unique sorts.
    rep = np.full(n_groups * x_bins * y_bins, -1, dtype=np.int64)
    rep[cell] = below
    kept = rep[rep >= 0]
    return np.sort(np.concatenate([above, kept]))


def _new_figure(width: float, height: float) -> tuple[Figure, object]:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def manhattan(df: pl.DataFrame, *, title: str, threshold: float = THRESHOLD,
              loci: pl.DataFrame | None = None, max_points_per_chrom: int = 6000,
              display_threshold: float = 3.0, y_bins: int = 60, max_labels: int = 15,
              width: float = 12.0, height: float = 4.5) -> Figure:
    """Manhattan plot: -log10 p along the genome, chromosomes in alternate colours.

    Parameters
    ----------
    df
        Summary statistics with ``chromosome`` (numeric code), ``base_pair_location``
        and ``neg_log_10_p_value`` and/or ``p_value``.
    title
        Axes title.
    threshold
        Genome-wide significance; a dashed line is drawn at -log10 of it.
    loci
        Small table of lead variants (``chromosome``, ``base_pair_location`` and
        a p column; labelled with ``rsid`` or ``variant_id`` when present); the
        ``max_labels`` most significant are annotated.
    max_points_per_chrom
        Most points drawn per chromosome for the bulk below ``display_threshold``
        (the grid is ``max_points_per_chrom // y_bins`` position bins by ``y_bins``).
    display_threshold
        -log10 p at or above which every variant is drawn individually.

    Returns
    -------
    matplotlib.figure.Figure
        On an Agg canvas; data points are ``Line2D`` artists with gid ``"points"``.
    """
    for col in ("chromosome", "base_pair_location"):
        if col not in df.columns:
            raise InputError(f"{title}: column {col!r} is required for a Manhattan plot; present: {df.columns}")
    y_all = neg_log10_p_of_table(df, source=title)
    # Marker-name rows (METAL/GWAMA keys) have no chromosome: 0 here, left out below (with
    # nulls polars would hand over floats, which the layout's bincount refuses).
    chrom = df.get_column("chromosome").cast(pl.Int64).fill_null(0).to_numpy(allow_copy=True)
    pos = df.get_column("base_pair_location").cast(pl.Float64).to_numpy(allow_copy=True)
    chrom_null = df.get_column("chromosome").is_null().to_numpy() | df.get_column("base_pair_location").is_null().to_numpy()
    ok = np.isfinite(y_all) & ~chrom_null & np.isfinite(pos)
    n_hidden = int((~ok).sum())
    if n_hidden:
        chrom, pos, y_all = chrom[ok], pos[ok], y_all[ok]
    fig, ax = _new_figure(width, height)
    if chrom.size == 0:
        ax.set_title(title)
        # Files keyed by marker name only (METAL/GWAMA layouts) have p-values, no positions.
        ax.text(0.5, 0.5, f"no variant with chromosome, position and p-value ({n_hidden:,} without)"
                if n_hidden else "no variant", ha="center", transform=ax.transAxes, gid="note")
        return fig
    layout = _layout(chrom, pos)
    _draw_manhattan(ax, chrom, pos, y_all, layout, threshold=threshold, loci=loci,
                    max_points_per_chrom=max_points_per_chrom, display_threshold=display_threshold,
                    y_bins=y_bins, max_labels=max_labels)
    ax.set_title(title)
    note = f"{chrom.size:,} variants"
    if n_hidden:
        note += f"; {n_hidden:,} without chromosome, position or p-value not shown"
    # Below the axes, right of the axis label: the top right corner is where the label of a
    # strong lead at the end of the last chromosome is drawn.
    ax.annotate(note, xy=(1.0, 0.0), xycoords="axes fraction", xytext=(0, -24), textcoords="offset points",
                ha="right", va="top", fontsize=7, gid="note")
    return fig


@dataclass(frozen=True)
class _Layout:
    """Where each chromosome sits on a genome-wide x axis."""

    codes: np.ndarray
    lo: np.ndarray
    length: np.ndarray
    offset: np.ndarray
    gap: float

    def x(self, chrom: np.ndarray, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Genome x, chromosome index and position relative to the chromosome's first variant."""
        index_of = np.full(26, -1, dtype=np.int64)
        index_of[self.codes] = np.arange(self.codes.size)
        cidx = index_of[chrom]
        rel = pos - self.lo[cidx]
        return self.offset[cidx] + rel, cidx, rel


def _layout(chrom: np.ndarray, pos: np.ndarray) -> _Layout:
    # Chromosome codes are small ints (1-25): a bincount finds them in O(n).
    counts = np.bincount(chrom, minlength=26)
    codes = np.flatnonzero(counts)
    index_of = np.full(counts.size, -1, dtype=np.int64)
    index_of[codes] = np.arange(codes.size)
    spans = pl.DataFrame({"c": index_of[chrom], "p": pos}).group_by("c").agg(
        pl.col("p").min().alias("lo"), pl.col("p").max().alias("hi")).sort("c")
    lo = spans.get_column("lo").to_numpy()
    hi = spans.get_column("hi").to_numpy()
    length = np.maximum(hi - lo, 1.0)
    gap = 0.01 * length.sum()
    offset = np.concatenate([[0.0], np.cumsum(length + gap)[:-1]])
    return _Layout(codes, lo, length, offset, float(gap))


def _draw_manhattan(ax, chrom: np.ndarray, pos: np.ndarray, y_all: np.ndarray, layout: _Layout, *,
                    threshold: float, loci: pl.DataFrame | None, max_points_per_chrom: int,
                    display_threshold: float, y_bins: int, max_labels: int) -> None:
    line_y = -np.log10(threshold)
    x, cidx, rel = layout.x(chrom, pos)
    length, offset, codes, gap = layout.length, layout.offset, layout.codes, layout.gap
    x_bins = max(1, max_points_per_chrom // y_bins)
    # Relative position scaled to [0, 1) per chromosome so one grid fits all.
    keep = thin_indices(rel / length[cidx], y_all, y_threshold=display_threshold, x_edges=(0.0, 1.0),
                        x_bins=x_bins, y_bins=y_bins, group=cidx, n_groups=codes.size)
    xk, yk, ck = x[keep], y_all[keep], cidx[keep]
    for parity in (0, 1):
        sel = (ck % 2) == parity
        ax.plot(xk[sel], yk[sel], ls="none", marker="o", ms=2.0, mew=0, color=_COLOURS[parity],
                gid=POINTS_GID, rasterized=False)
    ax.axhline(line_y, ls="--", lw=0.8, color="#555555", gid="threshold")
    ax.set_xticks(offset + length / 2)
    ax.set_xticklabels([chrom_label(int(c)) for c in codes], fontsize=7 if codes.size > 12 else 9)
    ax.set_xlim(-gap, offset[-1] + length[-1] + gap)
    top = max(float(y_all.max()), line_y)
    ax.set_ylim(0, top * 1.08 + 0.5)
    ax.set_xlabel("chromosome")
    ax.set_ylabel(r"$-\log_{10}\,p$")
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    if loci is not None and loci.height:
        _label_loci(ax, loci, codes=codes, lo=layout.lo, offset=offset, max_labels=max_labels)


def _label_loci(ax, loci: pl.DataFrame, *, codes: np.ndarray, lo: np.ndarray, offset: np.ndarray,
                max_labels: int) -> None:
    y = neg_log10_p_of_table(loci, source="loci")
    order = np.argsort(-np.nan_to_num(y, nan=-np.inf))[:max_labels]
    chrom = loci.get_column("chromosome").to_numpy()
    pos = loci.get_column("base_pair_location").to_numpy().astype(float)
    name_col = next((c for c in ("rsid", "variant_id") if c in loci.columns), None)
    for i in order:
        where = np.flatnonzero(codes == chrom[i])
        if where.size == 0 or not np.isfinite(y[i]):
            continue
        k = int(where[0])
        xi = offset[k] + pos[i] - lo[k]
        name = loci.get_column(name_col)[int(i)] if name_col else None
        label = str(name) if name else f"{chrom_label(int(chrom[i]))}:{int(pos[i])}"
        ax.plot([xi], [y[i]], ls="none", marker="D", ms=4, color=_LEAD_COLOUR, gid="lead")
        ax.annotate(label, (xi, y[i]), xytext=(0, 5), textcoords="offset points", ha="center",
                    fontsize=7, rotation=30, gid="lead_label")


def qq_band(n: int, *, level: float = 0.95, n_points: int = 400) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pointwise confidence band of the QQ plot: beta order statistics of n uniform p-values.

    The i-th smallest of n uniform p-values is Beta(i, n - i + 1); its
    expectation i/(n+1) is the expected p and its (1±level)/2 quantiles bound
    the band. Evaluated at ``n_points`` ranks spaced evenly in log rank (the
    band is smooth, and beta quantiles at all 10M ranks would cost seconds).

    Returns
    -------
    expected, lower, upper
        -log10 of the expected p and of the band's limits, each of the same
        length, ordered from the smallest p (rank 1) upwards. ``lower`` is the
        lower -log10 limit (the band's upper p quantile).
    """
    if n < 1:
        empty = np.empty(0)
        return empty, empty, empty
    ranks = np.unique(np.round(np.geomspace(1, n, num=min(n, n_points))).astype(np.int64))
    a = ranks.astype(float)
    b = n - a + 1.0
    alpha = (1.0 - level) / 2.0
    expected = -np.log10(a / (n + 1.0))
    # scipy.stats.beta.ppf's numbers, without importing scipy.stats (~0.5 s of the report's start-up)
    upper = -np.log10(betaincinv(a, b, alpha))
    lower = -np.log10(betaincinv(a, b, 1.0 - alpha))
    return expected, lower, upper


def qq(df: pl.DataFrame, *, title: str, display_threshold: float = 3.0, x_bins: int = 400,
       y_bins: int = 400, level: float = 0.95, width: float = 5.0, height: float = 5.0) -> QQPlot:
    """QQ plot of -log10 p with a pointwise confidence band and λGC printed on it.

    Parameters
    ----------
    df
        Summary statistics with ``neg_log_10_p_value`` and/or ``p_value``
        (or, failing both, ``beta`` and ``standard_error`` for z = β/SE).
    title
        Axes title.
    display_threshold
        Observed -log10 p at or above which every point is drawn; the bulk
        below is thinned on an ``x_bins`` by ``y_bins`` grid.
    level
        Coverage of the pointwise band (beta order statistics, see :func:`qq_band`).

    Returns
    -------
    QQPlot
        The figure (the λ text has gid ``"lambda_gc"``), λGC =
        median(χ²₁)/0.4549364 of the finite p-values, and the number of them.
    """
    y = neg_log10_p_of_table(df, source=title)
    y = y[np.isfinite(y)]
    n = int(y.size)
    lam = lambda_gc(_median_order_statistics(y))
    lam_q = lambda_at_quantiles(y)
    fig, ax = _new_figure(width, height)
    if n == 0:
        ax.set_title(title)
        ax.text(0.5, 0.5, "no variant with a p-value", ha="center", transform=ax.transAxes)
        return QQPlot(fig, lam, 0, lam_q)
    obs = np.sort(y)[::-1]
    exp = -np.log10(np.arange(1, n + 1, dtype=float) / (n + 1.0))
    keep = thin_indices(exp, obs, y_threshold=display_threshold, x_edges=(0.0, float(exp[0])),
                        x_bins=x_bins, y_bins=y_bins)
    be, bl, bu = qq_band(n, level=level)
    ax.fill_between(be, bl, bu, color="#cccccc", lw=0, gid="qq_band",
                    label=f"{level:.0%} pointwise band")
    lim = float(exp[0])
    ax.plot([0, lim], [0, lim], ls="--", lw=0.8, color="#555555", gid="identity")
    ax.plot(exp[keep], obs[keep], ls="none", marker="o", ms=2.5, mew=0, color=_COLOURS[0], gid=POINTS_GID)
    ax.set_xlim(0, lim * 1.03)
    ax.set_ylim(0, max(float(obs[0]), lim) * 1.05)
    ax.set_xlabel(r"expected $-\log_{10}\,p$")
    ax.set_ylabel(r"observed $-\log_{10}\,p$")
    ax.set_title(title)
    ax.text(0.04, 0.96, f"λGC = {lam:.4f}", transform=ax.transAxes, va="top", gid="lambda_gc")
    ax.text(0.04, 0.89, f"n = {n:,}", transform=ax.transAxes, va="top", fontsize=8, gid="n_variants")
    upper = [f"λ{q:g} = {v:.3f}" for q, v in lam_q.items() if q != 0.5 and np.isfinite(v)]
    if upper:
        ax.text(0.04, 0.83, "\n".join(upper), transform=ax.transAxes, va="top", fontsize=7,
                gid="lambda_quantiles")
    ax.legend(loc="lower right", fontsize=8, frameon=False)
    return QQPlot(fig, lam, n, lam_q)


def lambda_at_quantiles(neglog10p: np.ndarray, quantiles: tuple[float, ...] = LAMBDA_QUANTILES
                        ) -> dict[float, float]:
    """λ_q: the q-th quantile of the observed 1-df χ² over the q-th quantile of χ²₁.

    Parameters
    ----------
    neglog10p
        -log10 p of the variants; non-finite entries ignored.
    quantiles
        Values of q in (0, 1). q = 0.5 gives λGC (Devlin & Roeder 1999);
        upper quantiles (0.9, 0.99, 0.999) show inflation in the tail that the
        median hides (polygenic signal or residual stratification).

    Returns
    -------
    dict
        q -> λ_q (NaN when fewer than 1/(1-q) variants: the quantile would be
        the maximum).

    Notes
    -----
    The observed quantile is numpy's ``quantile`` (linear interpolation) of
    -log10 p, mapped to χ² (χ² is increasing in -log10 p, so the χ² of the
    interpolated -log10 p is the same order statistic; interpolation happens
    on the -log10 p scale). Only the few order statistics needed are
    transformed, so 10 million variants cost one partition.
    """
    x = np.asarray(neglog10p, dtype=float)
    x = x[np.isfinite(x)]
    out: dict[float, float] = {}
    for q in quantiles:
        if x.size == 0 or x.size < 1.0 / (1.0 - q):
            out[q] = float("nan")
            continue
        xq = float(np.quantile(x, q))
        out[q] = float(chi2_from_neglog10p(np.array([xq]))[0] / (2.0 * gammaincinv(0.5, q)))
    return out


def _median_order_statistics(x: np.ndarray) -> np.ndarray:
    """The one or two middle values of ``x``: all :func:`lambda_gc` needs of it.

    χ² is increasing in -log10 p, so the median χ² is the χ² of the middle
    order statistic(s); passing only those gives the identical λ while
    sparing ``chi2.isf`` on every variant (about 3 s per million).
    """
    n = x.size
    if n < 3:
        return x
    k = (n - 1) // 2
    part = np.partition(x, [k, n // 2])
    return part[[k, n // 2]] if n % 2 == 0 else part[[k]]


def _match_betas(meta: pl.DataFrame, pooled: pl.DataFrame) -> pl.DataFrame:
    """Meta and pooled β of the same variant, with the pooled β flipped when alleles are swapped."""
    key = list(VARIANT_KEY)
    for name, df in (("meta", meta), ("pooled", pooled)):
        missing = [c for c in [*key, "beta"] if c not in df.columns]
        if missing:
            raise InputError(f"{name} sumstats: column(s) {missing} needed for the beta-beta scatter")

    def side(df: pl.DataFrame, suffix: str) -> pl.DataFrame:
        out = df.select(*key, pl.col("beta").alias(f"beta_{suffix}"),
                        pl.Series(f"nlp_{suffix}", neg_log10_p_of_table(df, source=suffix)))
        return out

    m = side(meta, "meta")
    p = side(pooled, "pooled")
    same = m.join(p, on=key, how="inner")
    swapped = m.join(
        p.rename({"effect_allele": "other_allele", "other_allele": "effect_allele"})
        .with_columns(-pl.col("beta_pooled")),
        on=key, how="inner",
    ).join(same.select(key), on=key, how="anti")  # a direct match wins over a reversed one
    return pl.concat([same, swapped.select(same.columns)])


def beta_scatter(meta: pl.DataFrame, pooled: pl.DataFrame, *, threshold: float = THRESHOLD,
                 title: str = "meta-analysis vs pooled effect sizes", bins: int = 300,
                 width: float = 5.5, height: float = 5.5) -> BetaScatter:
    """β–β scatter of meta-analysis against pooled estimates with identity and fitted lines.

    Variants are matched on chromosome, position and alleles (the pooled β is
    negated where the alleles are swapped). Variants with p < ``threshold``
    in either arm are drawn individually and highlighted; the rest are thinned
    on a ``bins`` by ``bins`` grid. The least-squares line (meta on pooled) is
    fitted to the significant variants when there are at least three, else to
    all matched variants; the legend says which.

    Returns
    -------
    BetaScatter
        The figure, the fitted slope and intercept, Pearson r over the fitted
        set, and the numbers of matched and fitted variants.
    """
    both = _match_betas(meta, pooled).filter(
        pl.col("beta_meta").is_finite() & pl.col("beta_pooled").is_finite())
    bx = both.get_column("beta_pooled").to_numpy()
    by = both.get_column("beta_meta").to_numpy()
    line = -np.log10(threshold)
    sig = (np.nan_to_num(both.get_column("nlp_meta").to_numpy()) > line) | (
        np.nan_to_num(both.get_column("nlp_pooled").to_numpy()) > line)
    fig, ax = _new_figure(width, height)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("pooled β")
    ax.set_ylabel("meta-analysis β")
    if bx.size == 0:
        ax.text(0.5, 0.5, "no variant in both analyses", ha="center", transform=ax.transAxes)
        return BetaScatter(fig, float("nan"), float("nan"), float("nan"), 0, 0)
    fit = sig if sig.sum() >= 3 else np.ones_like(sig)
    fit_label = "p < threshold in either arm" if sig.sum() >= 3 else "all matched variants"
    fx, fy = bx[fit], by[fit]
    if fx.size >= 2 and np.ptp(fx) > 0:
        slope, intercept = np.polyfit(fx, fy, 1)
        r = float(np.corrcoef(fx, fy)[0, 1])
    else:
        slope = intercept = r = float("nan")
    lo, hi = _square_limits(bx, by)
    keep = _thin_2d(bx, by, sig, lo=lo, hi=hi, bins=bins)
    kk = keep[~sig[keep]]
    ks = keep[sig[keep]]
    ax.plot(bx[kk], by[kk], ls="none", marker="o", ms=2.0, mew=0, color=_COLOURS[1], gid=POINTS_GID,
            label=f"{int((~sig).sum()):,} other variants")
    ax.plot(bx[ks], by[ks], ls="none", marker="o", ms=3.5, mew=0, color=_LEAD_COLOUR, gid=POINTS_GID,
            label=f"{int(sig.sum()):,} with p < {threshold:g} in either arm")
    ax.plot([lo, hi], [lo, hi], ls="--", lw=0.8, color="#555555", gid="identity", label="identity")
    if np.isfinite(slope):
        ax.plot([lo, hi], [intercept + slope * lo, intercept + slope * hi], lw=1.0, color="#000000",
                gid="fit", label=f"fit ({fit_label}): slope {slope:.3f}, r {r:.3f}")
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_aspect("equal")
    ax.legend(loc="upper left", fontsize=7, frameon=False)
    return BetaScatter(fig, float(slope), float(intercept), float(r), int(bx.size), int(fx.size))


def _thin_2d(x: np.ndarray, y: np.ndarray, sig: np.ndarray, *, lo: float, hi: float, bins: int) -> np.ndarray:
    """All significant points plus one non-significant point per occupied cell of a square grid."""
    rest = np.flatnonzero(~sig)
    scale = bins / max(hi - lo, np.finfo(float).tiny)
    xb = np.clip(((x[rest] - lo) * scale).astype(np.int64), 0, bins - 1)
    yb = np.clip(((y[rest] - lo) * scale).astype(np.int64), 0, bins - 1)
    rep = np.full(bins * bins, -1, dtype=np.int64)
    rep[xb * bins + yb] = rest
    return np.sort(np.concatenate([np.flatnonzero(sig), rep[rep >= 0]]))


def miami(meta: pl.DataFrame, pooled: pl.DataFrame, *, threshold: float = THRESHOLD,
          title: str = "meta-analysis (top) and pooled analysis (bottom)",
          loci_meta: pl.DataFrame | None = None, loci_pooled: pl.DataFrame | None = None,
          max_points_per_chrom: int = 6000, display_threshold: float = 3.0, y_bins: int = 60,
          width: float = 12.0, height: float = 7.0) -> Figure:
    """Miami plot: the meta-analysis's Manhattan above, the pooled analysis's mirrored below.

    Both halves share one genome axis (chromosomes laid out over the union of
    both arms' variants), so a locus found by one arm only stands out as a peak
    with no reflection. Thinning is as :func:`manhattan`'s: every point with
    -log10 p ≥ ``display_threshold`` is drawn.

    Returns
    -------
    matplotlib.figure.Figure
        Two axes; the lower one's y axis is inverted. Points have gid ``"points"``.
    """
    arms = []
    for name, df in (("meta", meta), ("pooled", pooled)):
        for col in ("chromosome", "base_pair_location"):
            if col not in df.columns:
                raise InputError(f"{name}: column {col!r} is required for a Miami plot; present: {df.columns}")
        y = neg_log10_p_of_table(df, source=name)
        ch = df.get_column("chromosome").cast(pl.Int64, strict=False).to_numpy(allow_copy=True)
        ps = df.get_column("base_pair_location").cast(pl.Float64).to_numpy(allow_copy=True)
        ok = np.isfinite(y) & np.isfinite(ps) & ~df.get_column("chromosome").is_null().to_numpy()
        arms.append((ch[ok].astype(np.int64), ps[ok], y[ok], int((~ok).sum())))
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    top, bottom = fig.subplots(2, 1, sharex=True)
    if arms[0][0].size + arms[1][0].size == 0:
        top.text(0.5, 0.5, "no variant with a p-value", ha="center", transform=top.transAxes)
        return fig
    layout = _layout(np.concatenate([arms[0][0], arms[1][0]]), np.concatenate([arms[0][1], arms[1][1]]))
    notes: list[str] = []
    for ax, (ch, ps, y, hidden), loci, name in ((top, arms[0], loci_meta, "meta-analysis"),
                                                (bottom, arms[1], loci_pooled, "pooled")):
        if ch.size == 0:
            ax.text(0.5, 0.5, f"{name}: no variant with a p-value", ha="center", transform=ax.transAxes)
            continue
        _draw_manhattan(ax, ch, ps, y, layout, threshold=threshold, loci=loci,
                        max_points_per_chrom=max_points_per_chrom, display_threshold=display_threshold,
                        y_bins=y_bins, max_labels=10)
        ax.set_ylabel(f"{name}\n" + r"$-\log_{10}\,p$")
        notes.append(f"{name}: {ch.size:,} variants"
                     + (f" ({hidden:,} without position or p not shown)" if hidden else ""))
    # One line below the bottom axis, right of its label (as the Manhattan plot's): in a
    # corner of either axes it sat on a lead label or on the bottom axis' tick labels.
    bottom.annotate("; ".join(notes), xy=(1.0, 0.0), xycoords="axes fraction", xytext=(0, -24),
                    textcoords="offset points", ha="right", va="top", fontsize=7, gid="note")
    ymax = max(top.get_ylim()[1], bottom.get_ylim()[1])
    top.set_ylim(0, ymax)
    bottom.set_ylim(ymax, 0)
    top.set_xlabel("")
    top.set_title(title)
    return fig


def identity_scatter(x: np.ndarray, y: np.ndarray, *, xlabel: str, ylabel: str, title: str,
                     highlight: np.ndarray | None = None, bins: int = 300, lines: tuple[float, ...] = (),
                     note: str = "", width: float = 5.0, height: float = 5.0) -> Figure:
    """Scatter of two measures of the same quantity with the identity line, thinned for millions of points.

    Points in ``highlight`` are all drawn (red); the rest keep one point per
    cell of a ``bins`` x ``bins`` grid. ``lines`` adds dotted reference lines at
    those values on both axes (e.g. the significance threshold).
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    hl = np.zeros(x.size, dtype=bool) if highlight is None else np.asarray(highlight, dtype=bool)[ok]
    fig, ax = _new_figure(width, height)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if x.size == 0:
        ax.text(0.5, 0.5, "no value to compare", ha="center", transform=ax.transAxes)
        return fig
    lo, hi = _square_limits(x, y)
    keep = _thin_2d(x, y, hl, lo=lo, hi=hi, bins=bins)
    kk, ks = keep[~hl[keep]], keep[hl[keep]]
    ax.plot(x[kk], y[kk], ls="none", marker="o", ms=2.0, mew=0, color=_COLOURS[0], gid=POINTS_GID)
    if ks.size:
        ax.plot(x[ks], y[ks], ls="none", marker="o", ms=3.0, mew=0, color=_LEAD_COLOUR, gid=POINTS_GID)
    ax.plot([lo, hi], [lo, hi], ls="--", lw=0.8, color="#555555", gid="identity")
    for v in lines:
        ax.axvline(v, ls=":", lw=0.8, color="#888888")
        ax.axhline(v, ls=":", lw=0.8, color="#888888")
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_aspect("equal")
    ax.text(0.02, 0.98, (note + "\n" if note else "") + f"{x.size:,} variants", transform=ax.transAxes,
            va="top", fontsize=7, gid="note")
    return fig


def neglog10p_scatter(meta: pl.DataFrame, pooled: pl.DataFrame, *, threshold: float = THRESHOLD,
                      title: str = "meta-analysis vs pooled −log10 p") -> Figure:
    """−log10 p of the meta-analysis against the pooled analysis, matched variants, threshold lines."""
    both = _match_betas(meta, pooled)
    x = both.get_column("nlp_pooled").to_numpy()
    y = both.get_column("nlp_meta").to_numpy()
    t = -np.log10(threshold)
    return identity_scatter(x, y, xlabel=r"pooled $-\log_{10}\,p$", ylabel=r"meta-analysis $-\log_{10}\,p$",
                            title=title, highlight=(np.nan_to_num(x) > t) | (np.nan_to_num(y) > t),
                            lines=(t,))


def concordance_tiles(rows: dict[str, dict[str, int]], *, title: str = "concordance at the threshold",
                      width: float = 6.0, height: float = 2.6) -> Figure:
    """Tile plot of counts: one row per level (e.g. variants, loci), one column per class.

    Parameters
    ----------
    rows
        Level -> {class -> count}, e.g. ``{"variants": {"both": 81, "meta_only": 2,
        "pooled_only": 2}, "loci": {...}}``. Column order follows the first row.

    Returns
    -------
    matplotlib.figure.Figure
        Tiles shaded by each count's share of its row; the counts are written
        in the tiles (text artists with gid ``"tile"``).
    """
    levels = list(rows)
    classes = list(next(iter(rows.values()))) if rows else []
    counts = np.array([[rows[lv].get(c, 0) for c in classes] for lv in levels], dtype=float)
    share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1.0)
    fig, ax = _new_figure(width, height)
    if counts.size == 0:
        ax.text(0.5, 0.5, "nothing to compare", ha="center", transform=ax.transAxes)
        return fig
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1, aspect="auto")
    for i in range(len(levels)):
        for j in range(len(classes)):
            ax.text(j, i, f"{int(counts[i, j]):,}", ha="center", va="center", gid="tile",
                    color="white" if share[i, j] > 0.6 else "black")
    ax.set_xticks(range(len(classes)))
    ax.set_xticklabels([c.replace("_", " ") for c in classes])
    ax.set_yticks(range(len(levels)))
    ax.set_yticklabels(levels)
    ax.set_title(title, fontsize=10)
    return fig


def forest(rows: pl.DataFrame, *, title: str, level: float = 0.95, width: float = 5.5,
           height: float | None = None, effect: str = "β") -> Figure:
    """Forest plot: one estimate with its confidence interval per row, summary rows as diamonds.

    Parameters
    ----------
    rows
        Columns ``label``, ``beta``, ``standard_error`` and ``kind`` (``cohort``,
        ``loo`` for a leave-one-out estimate, or ``summary`` for a pooled or
        meta-analysis estimate), top to bottom.
    level
        Coverage of the intervals (normal: β ± z·SE).
    effect
        What β is, for the axis label (``"β, log odds ratio"`` for a binary trait).
    """
    from scipy.special import ndtri

    z = float(-ndtri((1 - level) / 2))  # scipy.stats.norm.isf, without importing scipy.stats
    n = rows.height
    fig, ax = _new_figure(width, height or max(1.6, 0.32 * n + 1.0))
    ax.set_title(title, fontsize=9)
    if n == 0:
        ax.text(0.5, 0.5, "no estimate", ha="center", transform=ax.transAxes)
        return fig
    b = rows.get_column("beta").cast(pl.Float64).to_numpy()
    se = rows.get_column("standard_error").cast(pl.Float64).to_numpy()
    kinds = rows.get_column("kind").to_list()
    yy = np.arange(n)[::-1].astype(float)
    colours = {"cohort": _COLOURS[0], "loo": "#7f7f7f", "summary": _LEAD_COLOUR}
    for i in range(n):
        if not (np.isfinite(b[i]) and np.isfinite(se[i])):
            continue
        c = colours.get(kinds[i], "#000000")
        ax.plot([b[i] - z * se[i], b[i] + z * se[i]], [yy[i], yy[i]], color=c, lw=1.2, gid="ci")
        marker = "D" if kinds[i] == "summary" else ("o" if kinds[i] == "cohort" else "s")
        ax.plot([b[i]], [yy[i]], ls="none", marker=marker, ms=5, color=c, gid=POINTS_GID)
    ax.axvline(0, color="#555555", lw=0.8, ls="--")
    ax.set_yticks(yy)
    ax.set_yticklabels(rows.get_column("label").to_list(), fontsize=7)
    ax.set_xlabel(f"{effect} ({level:.0%} CI)")
    ax.set_ylim(-0.7, n - 0.3)
    return fig


def se_sqrt_n(df: pl.DataFrame, *, title: str, bins: int = 80, width: float = 5.0,
              height: float = 3.6) -> Figure:
    """Distribution of SE·√N (and, with EAF, SE·√(2·EAF·(1−EAF)·N)) of one cohort's variants.

    Under a linear model SE ≈ σ_y / √(2 p (1−p) N), so SE·√(2p(1−p)N) should
    peak narrowly at the trait's residual SD; a second mode or a long tail
    points at wrong N, mis-scaled β or a mix of trait units. SE·√N alone
    additionally spreads with allele frequency.
    """
    fig, ax = _new_figure(width, height)
    ax.set_title(title, fontsize=10)
    if not {"standard_error", "n"} <= set(df.columns):
        ax.text(0.5, 0.5, "needs standard_error and n", ha="center", transform=ax.transAxes)
        return fig
    se = df.get_column("standard_error").cast(pl.Float64).to_numpy()
    n = df.get_column("n").cast(pl.Float64).to_numpy()
    v = se * np.sqrt(n)
    v = v[np.isfinite(v)]
    if v.size:
        ax.hist(v, bins=bins, color=_COLOURS[1], alpha=0.8, label=r"SE·$\sqrt{N}$", gid="hist")
    if "effect_allele_frequency" in df.columns:
        p = df.get_column("effect_allele_frequency").cast(pl.Float64).to_numpy()
        w = se * np.sqrt(2 * p * (1 - p) * n)
        w = w[np.isfinite(w)]
        if w.size:
            ax.hist(w, bins=bins, color=_COLOURS[0], alpha=0.8, label=r"SE·$\sqrt{2p(1-p)N}$", gid="hist")
            ax.axvline(float(np.median(w)), color="#000000", lw=0.8, ls="--")
            ax.text(0.98, 0.6, f"median {np.median(w):.3g}", transform=ax.transAxes, ha="right", fontsize=7)
    ax.set_xlabel("standard error × √N")
    ax.set_ylabel("variants")
    ax.legend(fontsize=7, frameon=False)
    return fig


def figure_png(fig: Figure, *, dpi: int = 100) -> bytes:
    """PNG bytes of a figure (Agg), at ``dpi`` dots per inch."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    return buf.getvalue()


def png_data_uri(fig: Figure, *, dpi: int = 100) -> str:
    """``data:image/png;base64,...`` URI of a figure, for embedding in a self-contained HTML page."""
    return "data:image/png;base64," + base64.b64encode(figure_png(fig, dpi=dpi)).decode("ascii")
