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
from dataclasses import dataclass

import numpy as np
import polars as pl
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from scipy.stats import beta as beta_dist

from crosscohort.errors import InputError
from crosscohort.loci import neglog10p
from crosscohort.stats import lambda_gc
from crosscohort.sumstats import chrom_label, neg_log10_p_from_z

__all__ = [
    "QQPlot",
    "BetaScatter",
    "thin_indices",
    "manhattan",
    "qq",
    "qq_band",
    "beta_scatter",
    "sumstats_neglog10p",
    "figure_png",
    "png_data_uri",
]

#: Gid of the artists that hold data points (tests and report code find them by it).
POINTS_GID = "points"
_COLOURS = ("#1f4e79", "#7fa7c9")  # alternate chromosomes: dark and light blue
_LEAD_COLOUR = "#c0392b"


@dataclass(frozen=True)
class QQPlot:
    """A QQ figure and the genomic-control λ printed on it."""

    figure: Figure
    lambda_gc: float
    n_variants: int


@dataclass(frozen=True)
class BetaScatter:
    """A β–β scatter figure and the fitted line drawn on it."""

    figure: Figure
    slope: float
    intercept: float
    r: float
    n_matched: int
    n_fitted: int


def sumstats_neglog10p(df: pl.DataFrame, *, source: str = "sumstats") -> np.ndarray:
    """-log10 p of each row: ``neg_log_10_p_value`` if present, else ``p_value``, else z = β/SE.

    Raises
    ------
    InputError
        When the table has none of ``neg_log_10_p_value``, ``p_value`` or
        ``beta`` with ``standard_error``.
    """
    if "neg_log_10_p_value" in df.columns or "p_value" in df.columns:
        return neglog10p(df)
    if "beta" in df.columns and "standard_error" in df.columns:
        z = (df.get_column("beta").cast(pl.Float64) / df.get_column("standard_error").cast(pl.Float64)).to_numpy()
        return neg_log10_p_from_z(z)
    raise InputError(
        f"{source}: needs a p-value column (neg_log_10_p_value or p_value) or beta and "
        f"standard_error to plot; present: {df.columns}"
    )


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


def manhattan(df: pl.DataFrame, *, title: str, threshold: float = 5e-8,
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
    y_all = sumstats_neglog10p(df, source=title)
    chrom = df.get_column("chromosome").cast(pl.Int64).to_numpy(allow_copy=True)
    pos = df.get_column("base_pair_location").cast(pl.Float64).to_numpy(allow_copy=True)
    chrom_null = df.get_column("chromosome").is_null().to_numpy() | df.get_column("base_pair_location").is_null().to_numpy()
    ok = np.isfinite(y_all) & ~chrom_null & np.isfinite(pos)
    n_hidden = int((~ok).sum())
    if n_hidden:
        chrom, pos, y_all = chrom[ok], pos[ok], y_all[ok]
    fig, ax = _new_figure(width, height)
    line_y = -np.log10(threshold)
    if chrom.size == 0:
        ax.set_title(title)
        ax.text(0.5, 0.5, "no variant with a p-value", ha="center", transform=ax.transAxes)
        return fig

    # Chromosome codes are small ints (1-25): a bincount finds them in O(n).
    counts = np.bincount(chrom, minlength=26)
    codes = np.flatnonzero(counts)
    index_of = np.full(counts.size, -1, dtype=np.int64)
    index_of[codes] = np.arange(codes.size)
    cidx = index_of[chrom]
    spans = pl.DataFrame({"c": cidx, "p": pos}).group_by("c").agg(
        pl.col("p").min().alias("lo"), pl.col("p").max().alias("hi")).sort("c")
    lo = spans.get_column("lo").to_numpy()
    hi = spans.get_column("hi").to_numpy()
    length = np.maximum(hi - lo, 1.0)
    gap = 0.01 * length.sum()
    offset = np.concatenate([[0.0], np.cumsum(length + gap)[:-1]])
    rel = pos - lo[cidx]
    x = offset[cidx] + rel

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
    ax.set_title(title)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    if loci is not None and loci.height:
        _label_loci(ax, loci, codes=codes, lo=lo, offset=offset, max_labels=max_labels)
    note = f"{chrom.size:,} variants"
    if n_hidden:
        note += f"; {n_hidden:,} without chromosome, position or p-value not shown"
    ax.text(1.0, 1.0, note, transform=ax.transAxes, ha="right", va="bottom", fontsize=7, gid="note")
    return fig


def _label_loci(ax, loci: pl.DataFrame, *, codes: np.ndarray, lo: np.ndarray, offset: np.ndarray,
                max_labels: int) -> None:
    y = sumstats_neglog10p(loci, source="loci")
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
    upper = -np.log10(beta_dist.ppf(alpha, a, b))
    lower = -np.log10(beta_dist.ppf(1.0 - alpha, a, b))
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
    y = sumstats_neglog10p(df, source=title)
    y = y[np.isfinite(y)]
    n = int(y.size)
    lam = lambda_gc(_median_order_statistics(y))
    fig, ax = _new_figure(width, height)
    if n == 0:
        ax.set_title(title)
        ax.text(0.5, 0.5, "no variant with a p-value", ha="center", transform=ax.transAxes)
        return QQPlot(fig, lam, 0)
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
    ax.legend(loc="lower right", fontsize=8, frameon=False)
    return QQPlot(fig, lam, n)


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
    key = ["chromosome", "base_pair_location", "effect_allele", "other_allele"]
    for name, df in (("meta", meta), ("pooled", pooled)):
        missing = [c for c in [*key, "beta"] if c not in df.columns]
        if missing:
            raise InputError(f"{name} sumstats: column(s) {missing} needed for the beta-beta scatter")

    def side(df: pl.DataFrame, suffix: str) -> pl.DataFrame:
        out = df.select(*key, pl.col("beta").alias(f"beta_{suffix}"),
                        pl.Series(f"nlp_{suffix}", sumstats_neglog10p(df, source=suffix)))
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


def beta_scatter(meta: pl.DataFrame, pooled: pl.DataFrame, *, threshold: float = 5e-8,
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
    lo = float(min(bx.min(), by.min()))
    hi = float(max(bx.max(), by.max()))
    pad = 0.05 * (hi - lo or 1.0)
    lo, hi = lo - pad, hi + pad
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


def figure_png(fig: Figure, *, dpi: int = 100) -> bytes:
    """PNG bytes of a figure (Agg), at ``dpi`` dots per inch."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    return buf.getvalue()


def png_data_uri(fig: Figure, *, dpi: int = 100) -> str:
    """``data:image/png;base64,...`` URI of a figure, for embedding in a self-contained HTML page."""
    return "data:image/png;base64," + base64.b64encode(figure_png(fig, dpi=dpi)).decode("ascii")
