"""The report's MR-MEGA views: cohorts on the axes, each locus' ancestry heterogeneity, MR-MEGA against IVW.

Shown when the meta-analysis ran with ``--method mrmega`` (its table has
``mrmega_*`` columns, its summary an ``mrmega`` block). The meta-analysis
section shows the cohorts on the axes; the comparison section the loci of
either test, where MR-MEGA finds what IVW misses and the reverse, with the
pooled arm's p beside them when there is one. Every number comes from the
meta-analysis table and summary (and the pooled table): MR-MEGA's p is the
table's ``p_value``; the fixed-effect IVW p is recomputed from its ``beta``
and ``standard_error`` (two-sided normal, in log space).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import polars as pl
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from crosscohort.central.loci import distance_loci
from crosscohort.central.report.plots import png_data_uri
from crosscohort.central.report.sections import Image, Table, count, format_p, num
from crosscohort.contract.keys import VARIANT_KEY
from crosscohort.contract.stats import neg_log10_p_from_z
from crosscohort.contract.sumstats import chrom_label

__all__ = ["MRMEGA_COLUMNS", "MrMegaViews", "axes_figure", "ivw_neglog10p", "is_mrmega", "mrmega_views"]

#: Meta-analysis columns the MR-MEGA views read of every row (besides the report's own).
MRMEGA_COLUMNS = (
    "effect_allele",
    "other_allele",
    "beta",
    "standard_error",
    "het_q",
    "mrmega_neg_log_10_p_ancestry_het",
)
#: The classes of a locus found by either test.
CLASSES = ("both", "mrmega_only", "ivw_only")


@dataclass(frozen=True)
class MrMegaViews:
    """What the report shows of an MR-MEGA run.

    ``images`` and ``tables`` (the axes) go in the meta-analysis section,
    ``comparison`` (MR-MEGA against IVW by locus) in the comparison section.
    """

    images: tuple[Image, ...]
    tables: tuple[Table, ...]
    comparison: tuple[Table, ...]
    counts: dict[str, int]


def is_mrmega(header: list[str] | tuple[str, ...]) -> bool:
    """Whether a meta-analysis table (its header) is an MR-MEGA run's."""
    return "mrmega_chi2_association" in header


def ivw_neglog10p(meta: pl.DataFrame) -> np.ndarray:
    """Fixed-effect IVW -log10 p of each row, from its ``beta`` and ``standard_error``."""
    b = meta.get_column("beta").cast(pl.Float64).to_numpy()
    s = meta.get_column("standard_error").cast(pl.Float64).to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        return neg_log10_p_from_z(b / s)


def _axes_image(summary: Mapping, *, dpi: int) -> Image | None:
    fig = axes_figure(summary)
    if fig is None:
        return None
    return Image(
        png_data_uri(fig, dpi=dpi),
        "cohorts on the first two axes of genetic variation",
        f"Cohorts on MR-MEGA's axes of genetic variation: classical MDS of the mean squared "
        f"EAF differences over {count(summary.get('n_markers'))} markers (one per Mb bin).",
    )


def axes_figure(summary: Mapping) -> Figure | None:
    """The cohorts on the first two axes (one axis: on a line) of the summary's ``mrmega`` block; None without axes."""
    axes = summary.get("axes") or {}
    if not axes:
        return None
    fig = Figure(figsize=(4.8, 4.0), layout="constrained")
    ax = fig.add_subplot()
    two = all(len(v) >= 2 for v in axes.values())
    xs = [v[0] for v in axes.values()]
    mid = (min(xs) + max(xs)) / 2
    for cohort, v in axes.items():
        x, y = v[0], (v[1] if two else 0.0)
        ax.scatter([x], [y], s=40)
        # Names point inwards, so the outermost cohorts' stay inside the frame.
        right = x > mid
        ax.annotate(cohort, (x, y), textcoords="offset points", xytext=(-5 if right else 5, 4), fontsize=8,
                    ha="right" if right else "left")
    # Few ticks: axis values like -0.075 are wide, and 4.8 inches hold about five.
    ax.xaxis.set_major_locator(MaxNLocator(nbins=4))
    ax.yaxis.set_major_locator(MaxNLocator(nbins=5))
    ax.margins(x=0.12, y=0.15)
    ev = summary.get("eigenvalues") or []
    total = sum(e for e in ev if e > 0) or 1.0
    ax.set_xlabel(f"axis 1 ({100 * ev[0] / total:.0f}% of the EAF variation)" if ev else "axis 1")
    ax.set_ylabel(f"axis 2 ({100 * ev[1] / total:.0f}%)" if two and len(ev) > 1 else "")
    ax.axhline(0, color="#bbb", lw=0.5)
    ax.axvline(0, color="#bbb", lw=0.5)
    return fig


def _axes_table(summary: Mapping) -> Table:
    axes = summary.get("axes") or {}
    if not axes:
        # The axes and distances live in the summary JSON only (meta --method mrmega writes both).
        return Table(
            "axes of genetic variation: not known without the meta-analysis summary",
            (),
            (),
            id="meta-mrmega-axes",
            note="The cohorts' axes and EAF distances are in the summary JSON crosscohort meta "
            "writes beside its table (OUT.summary.json, key mrmega); give it with --meta-summary.",
        )
    t = int(summary.get("n_axes") or 0)
    cohorts = list(axes)
    dist = summary.get("distances") or {}
    rows = tuple(
        (
            c,
            *(num(v, ".4g") for v in axes[c]),
            *(num(dist.get(c, {}).get(c2), ".3g") for c2 in cohorts),
        )
        for c in cohorts
    )
    lam = summary.get("lambda_gco")
    return Table(
        "axes of genetic variation and EAF distances",
        ("cohort", *(f"axis {j}" for j in range(1, t + 1)), *(f"D to {c}" for c in cohorts)),
        rows,
        id="meta-mrmega-axes",
        note=f"D: mean squared EAF difference over {count(summary.get('n_markers'))} markers "
        f"({summary.get('marker_rule', '')}); association test on {t + 1} df, ancestry "
        f"heterogeneity on {t} df" + (f"; λ_gco = {num(lam, '.4f')}" if lam else "") + ".",
    )


def _lead_label(row: Mapping) -> str:
    if row.get("chromosome") is None:
        return str(row.get("rsid") or "?")
    return f"{chrom_label(int(row['chromosome']))}:{int(row['base_pair_location']):,}"


def _near(a: pl.DataFrame, b: pl.DataFrame, window_bp: float) -> np.ndarray:
    """Per row of ``a``: some lead of ``b`` lies on its chromosome within the window."""
    if a.height == 0 or b.height == 0:
        return np.zeros(a.height, dtype=bool)
    ac = a.get_column("chromosome").fill_null(-1).to_numpy()
    ap = a.get_column("base_pair_location").fill_null(-1).to_numpy()
    bc = b.get_column("chromosome").fill_null(-2).to_numpy()
    bp = b.get_column("base_pair_location").fill_null(-1).to_numpy()
    return ((ac[:, None] == bc[None, :]) & (np.abs(ap[:, None] - bp[None, :]) <= window_bp)).any(
        axis=1
    )


def _pooled_neglog10p(leads: list[tuple[str, Mapping]], pooled: pl.DataFrame) -> list[float | None]:
    """The pooled arm's -log10 p at each lead (same variant and alleles, either orientation)."""
    key = ("chromosome", "base_pair_location", "effect_allele", "other_allele")
    if not leads or not set(key) <= set(pooled.columns):
        return [None] * len(leads)
    nlp = (
        pl.col("neg_log_10_p_value")
        if "neg_log_10_p_value" in pooled.columns
        else -pl.col("p_value").log10()
    )
    look = pooled.select(*key, nlp.cast(pl.Float64).alias("_nlp"))
    swapped = look.rename({"effect_allele": "other_allele", "other_allele": "effect_allele"})
    want = pl.DataFrame(
        [{k: r.get(k) for k in key} for _, r in leads],
        schema={k: look.schema[k] for k in key},
    )
    out = []
    for found in (
        want.join(t, on=list(key), how="left", maintain_order="left").get_column("_nlp")
        for t in (look, swapped)
    ):
        out.append(found.to_list())
    return [a if a is not None else b for a, b in zip(*out, strict=True)]


def mrmega_views(
    meta: pl.DataFrame,
    mrmega_loci: pl.DataFrame,
    summary: Mapping,
    *,
    threshold: float,
    window_kb: float,
    dpi: int,
    pooled: pl.DataFrame | None = None,
) -> MrMegaViews:
    """The MR-MEGA figures and tables of the meta-analysis section.

    Parameters
    ----------
    meta
        The meta-analysis' every row, with at least chromosome, position,
        ``n_studies``, ``het_p`` and :data:`MRMEGA_COLUMNS`.
    mrmega_loci
        Loci of MR-MEGA's p (the table's ``p_value``): :func:`distance_loci` of its
        significant rows, read whole.
    summary
        The ``mrmega`` block of the meta-analysis summary JSON.
    pooled
        The pooled arm's every row (chromosome, position, alleles and its p),
        when there is one: its p is shown at each lead.

    Returns
    -------
    MrMegaViews
        The cohorts on the axes; the axes and distances; per locus of either
        test (MR-MEGA, IVW fixed effect) its class, both -log10 p (and the
        pooled arm's), MR-MEGA's ancestry-heterogeneity p beside IVW's
        Cochran's Q and its p; counts by class.
    """
    t = int(summary.get("n_axes") or 0)
    nlp_ivw = ivw_neglog10p(meta)
    ivw_rows = meta.with_columns(pl.Series("neg_log_10_p_value", nlp_ivw)).filter(
        pl.col("neg_log_10_p_value") > -np.log10(threshold)
    )
    ivw_loci = distance_loci(
        ivw_rows.drop("p_value", strict=False), threshold=threshold, window_kb=window_kb
    )
    w = window_kb * 1000
    mr_shared = _near(mrmega_loci, ivw_loci, w)
    ivw_shared = _near(ivw_loci, mrmega_loci, w)
    # The MR-MEGA leads' own columns come whole from the significant rows; the IVW-only
    # leads' from the every-row columns (enough for the table).
    leads = [
        ("both" if s else "mrmega_only", r)
        for s, r in zip(mr_shared, mrmega_loci.iter_rows(named=True), strict=True)
    ]
    ivw_only = ivw_loci.filter(pl.Series(~ivw_shared)) if ivw_loci.height else ivw_loci
    if ivw_only.height:
        full = ivw_only.select(VARIANT_KEY).join(meta, on=list(VARIANT_KEY), how="left", maintain_order="left")
        leads += [("ivw_only", r) for r in full.iter_rows(named=True)]
    pooled_nlp = _pooled_neglog10p(leads, pooled) if pooled is not None else [None] * len(leads)
    rows = []
    for (cls, r), nlp_pooled in zip(leads, pooled_nlp, strict=True):
        b, s = r.get("beta"), r.get("standard_error")
        ivw = float(neg_log10_p_from_z(np.array([b / s]))[0]) if b is not None and s else None
        mr = r.get("neg_log_10_p_value")  # MR-MEGA's: the table's primary p
        ns = r.get("n_studies")
        note = (
            f"in fewer than T + 3 = {t + 3} cohorts: no MR-MEGA fit"
            if cls == "ivw_only" and ns is not None and ns < t + 3
            else ""
        )
        rows.append(
            (
                cls.replace("_", " "),
                _lead_label(r),
                count(ns),
                format_p(mr),
                format_p(ivw),
                *((format_p(nlp_pooled),) if pooled is not None else ()),
                format_p(r.get("mrmega_neg_log_10_p_ancestry_het")),
                num(r.get("het_q"), ".3g"),
                format_p(-np.log10(r["het_p"]) if r.get("het_p") else None),
                note,
            )
        )
    counts = {
        "both": int(mr_shared.sum()),
        "mrmega_only": int((~mr_shared).sum()),
        "ivw_only": int((~ivw_shared).sum()) if ivw_loci.height else 0,
    }
    loci_table = Table(
        "MR-MEGA against fixed-effect IVW, by locus",
        (
            "class",
            "lead",
            "cohorts",
            "MR-MEGA p",
            "IVW p",
            *(("pooled p",) if pooled is not None else ()),
            "ancestry het p (MR-MEGA)",
            "Cochran's Q (IVW)",
            "Q p",
            "note",
        ),
        tuple(rows),
        id="comparison-mrmega-ivw",
        note=f"Loci of either test (p < {threshold:g}, ±{window_kb:g} kb): both = a locus of the "
        f"other test lies within the window. MR-MEGA loci: {counts['both'] + counts['mrmega_only']}"
        f" ({counts['mrmega_only']} not found by IVW); IVW loci: "
        f"{int(ivw_loci.height)} ({counts['ivw_only']} not found by MR-MEGA). The ancestry-"
        f"heterogeneity p tests whether the effect varies along the axes ({t} df); Cochran's Q "
        "tests any difference between cohorts."
        + (
            " Pooled p: the pooled arm (one effect, cohort intercepts) at the same lead."
            if pooled is not None
            else ""
        ),
    )
    images = tuple(img for img in (_axes_image(summary, dpi=dpi),) if img is not None)
    return MrMegaViews(
        images=images, tables=(_axes_table(summary),), comparison=(loci_table,), counts=counts
    )
