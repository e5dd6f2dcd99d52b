"""Report sections built from specific inputs: cohort QC plots, forest plots, heterogeneity,
the meta-versus-pooled comparison and the export audit, each as readable tables and figures.

:mod:`crosscohort.central.report.build` assembles the page; the functions here turn
one input into :class:`Table` and :class:`Image` records (display strings and
data URIs) so the template stays free of logic.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from crosscohort.central.compare import LOCUS_CLASSES
from crosscohort.central.report.plots import (
    concordance_tiles,
    forest,
    identity_scatter,
    miami,
    neglog10p_scatter,
    png_data_uri,
    se_sqrt_n,
)
from crosscohort.contract.errors import InputError
from crosscohort.contract.keys import VARIANT_KEY
from crosscohort.contract.stats import neg_log10_p_from_z, neg_log10_p_of_table
from crosscohort.contract.sumstats import chrom_label, marker_only, variant_id

__all__ = [
    "Image",
    "Table",
    "association_model_table",
    "audit_tables",
    "comparison_section",
    "eaf_image",
    "forest_images",
    "format_p",
    "heterogeneity_table",
    "lead_label",
    "p_recomputed_image",
    "read_loo",
    "same_model_table",
    "se_image",
]

_KEY = list(VARIANT_KEY)
#: Lead variants given a forest plot (the most significant first).
MAX_FORESTS = 12


@dataclass(frozen=True)
class Table:
    """A rendered table: caption, column headers and rows of display strings."""

    caption: str
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    id: str | None = None
    note: str = ""


@dataclass(frozen=True)
class Image:
    """An embedded figure: data URI, alt text and caption."""

    uri: str
    alt: str
    caption: str = ""


def num(v: object, fmt: str = ".4g") -> str:
    """A number for display; ``—`` for missing or non-finite."""
    if v is None:
        return "—"
    try:
        f = float(v)
    except (TypeError, ValueError):
        return str(v)
    if not math.isfinite(f):
        return "—"
    return format(f, fmt)


def format_p(neglog10p: object) -> str:
    """A p-value for display from its -log10, exact far below the float64 range (e.g. ``3.20e-412``).

    Three significant digits down to 1e-4, then ``m.mme-k``; ``—`` for a missing or
    non-finite value.
    """
    if neglog10p is None:
        return "—"
    x = float(neglog10p)
    if not math.isfinite(x):
        return "—"
    if x < 4:
        return f"{10.0 ** -x:.3g}"
    exponent = math.floor(-x)
    mantissa = 10.0 ** (-x - exponent)
    if mantissa >= 9.995:  # rounding would print 10.00e-k
        mantissa, exponent = 1.0, exponent + 1
    return f"{mantissa:.2f}e{exponent}"


def count(v: object) -> str:
    return "—" if v is None else f"{int(v):,}"


# ---------------------------------------------------------------- per-cohort QC

def _aligned_join(df: pl.DataFrame, other: pl.DataFrame, value: str, *, flip: bool) -> pl.DataFrame:
    """``df``'s key and EAF with ``other``'s ``value`` at the same variant (mirrored when alleles are reversed)."""
    left = df.select(*_KEY, "effect_allele_frequency")
    o = other.select(*_KEY, value)
    # One chromosome at a time: the key joins of 10^7 rows against a 10^7-row panel cost
    # GBs of hash tables at once (issue 9); a variant's key includes its chromosome, so
    # the rows matched are the same. Rows keep the left table's order, direct matches first.
    direct_parts, rev_parts = [], []
    for chrom in left.get_column("chromosome").drop_nulls().unique(maintain_order=True):
        lc = left.filter(pl.col("chromosome") == chrom)
        oc = o.filter(pl.col("chromosome") == chrom)
        direct = lc.join(oc, on=_KEY, how="inner", maintain_order="left")
        rev = lc.join(oc.rename({"effect_allele": "other_allele", "other_allele": "effect_allele"}),
                      on=_KEY, how="inner", maintain_order="left")
        if flip:
            rev = rev.with_columns((1.0 - pl.col(value)).alias(value))
        direct_parts.append(direct)
        rev_parts.append(rev.join(direct.select(_KEY), on=_KEY, how="anti", maintain_order="left"))
        del lc, oc
    if not direct_parts:
        return left.join(o, on=_KEY, how="inner")
    return pl.concat([*direct_parts, *rev_parts], rechunk=False)


def eaf_image(df: pl.DataFrame, *, name: str, reference: pl.DataFrame | None,
              others: Mapping[str, pl.DataFrame], dpi: int) -> tuple[Image | None, str]:
    """EAF of one cohort against the reference panel's ALT frequency, else the other cohorts' mean EAF.

    Returns the image (None when no frequency can be compared) and a one-line
    summary (variants compared, those differing by more than 0.2).
    """
    if "effect_allele_frequency" not in df.columns:
        return None, "no effect_allele_frequency column"
    if reference is not None:
        ref = reference.select(pl.col("chromosome"), pl.col("base_pair_location"),
                               pl.col("alt").alias("effect_allele"), pl.col("ref").alias("other_allele"),
                               pl.col("alt_frequency").alias("_x"))
        both = _aligned_join(df, ref, "_x", flip=True)
        xlabel, against = "reference ALT frequency (aligned to the effect allele)", "the reference panel"
    else:
        parts = [o.select(*_KEY, pl.col("effect_allele_frequency").alias(f"_e{i}"))
                 for i, o in enumerate(others.values()) if "effect_allele_frequency" in o.columns]
        if not parts:
            return None, "no reference and no other cohort with EAF"
        # Harmonised cohorts share one orientation, so a join on the key aligns them.
        # One chromosome at a time (the key includes it): the full joins of every other
        # cohort would otherwise hold all their rows at once.
        chunks = []
        for chrom in df.get_column("chromosome").drop_nulls().unique(maintain_order=True):
            on_chrom = [p.filter(pl.col("chromosome") == chrom) for p in parts]
            merged = on_chrom[0]
            for part in on_chrom[1:]:
                merged = merged.join(part, on=_KEY, how="full", coalesce=True)
            cols = [c for c in merged.columns if c.startswith("_e")]
            merged = merged.select(*_KEY, pl.mean_horizontal(cols).alias("_x"))
            chunks.append(_aligned_join(df.filter(pl.col("chromosome") == chrom), merged, "_x", flip=True))
            del on_chrom, merged
        both = pl.concat(chunks, rechunk=False) if chunks else \
            _aligned_join(df, parts[0].select(*_KEY, pl.col(parts[0].columns[-1]).alias("_x")), "_x", flip=True)
        xlabel, against = "mean EAF of the other cohorts", "the other cohorts"
    x = both.get_column("_x").cast(pl.Float64).to_numpy()
    y = both.get_column("effect_allele_frequency").cast(pl.Float64).to_numpy()
    far = np.abs(x - y) > 0.2
    note = f"{int(np.nansum(far)):,} differ by > 0.2"
    fig = identity_scatter(x, y, xlabel=xlabel, ylabel=f"{name} EAF", title=f"{name}: EAF against {against}",
                           highlight=far, note=note)
    summary = f"{x.size:,} variants compared with {against}; {note}"
    return Image(png_data_uri(fig, dpi=dpi), f"EAF of {name} against {against}",
                 f"Effect allele frequency of {name} against {against}; red: |difference| > 0.2 "
                 "(strand or allele errors, or genuine ancestry differences)."), summary


def se_image(df: pl.DataFrame, *, name: str, dpi: int) -> Image:
    """SE·√N of one cohort's variants, captioned with where SE·√(2p(1−p)N) should peak.

    Linear regression: at the trait's residual SD. Logistic regression (a
    binary trait: ``n_cases`` present): near 1/√(φ(1−φ)), φ = cases / N, since
    the information of a log-odds per allele is 2p(1−p) N φ(1−φ).
    """
    fig = se_sqrt_n(df, title=f"{name}: SE against N")
    cases, n = _top(df, "n_cases"), _top(df, "n")
    if cases is not None and n and 0 < cases < n:
        phi = cases / n
        peak = (f"which for a binary trait (logistic regression) should peak near 1/√(φ(1−φ)) = "
                f"{1 / math.sqrt(phi * (1 - phi)):.3g} (φ = {count(cases)}/{count(n)} cases), a little above "
                "with covariates")
    else:
        peak = "which should peak at the trait's residual SD"
    return Image(png_data_uri(fig, dpi=dpi), f"SE times root N of {name}",
                 f"Distribution of SE·√N for {name} (and SE·√(2p(1−p)N), {peak}): a second mode points at a "
                 "wrong N or mis-scaled β.")


def _top(df: pl.DataFrame, col: str) -> int | None:
    """The largest value of a count column (the gate releases one per trait); None when absent."""
    if col not in df.columns:
        return None
    v = df.get_column(col).cast(pl.Int64, strict=False).max()
    return None if v is None else int(v)


def p_recomputed_image(df: pl.DataFrame, *, name: str, dpi: int) -> tuple[Image | None, str]:
    """Reported -log10 p against -log10 p recomputed from z = β/SE (normal)."""
    if not {"beta", "standard_error"} <= set(df.columns) or not (
            {"p_value", "neg_log_10_p_value"} & set(df.columns)):
        return None, "needs beta, standard_error and a p-value"
    rep = neg_log10_p_of_table(df, source=name)
    z = (df.get_column("beta").cast(pl.Float64) / df.get_column("standard_error").cast(pl.Float64)).to_numpy()
    rec = neg_log10_p_from_z(z)
    with np.errstate(invalid="ignore"):
        off = np.abs(rep - rec) > np.maximum(0.1 * np.maximum(rep, rec), 0.05)
    note = f"{int(np.nansum(off)):,} differ by > 10%"
    fig = identity_scatter(rec, rep, xlabel=r"$-\log_{10}\,p$ from z = β/SE",
                           ylabel=r"reported $-\log_{10}\,p$", title=f"{name}: reported p against β/SE",
                           highlight=off, note=note)
    return Image(png_data_uri(fig, dpi=dpi), f"reported against recomputed p of {name}",
                 f"Reported −log10 p of {name} against −log10 p of z = β/SE (normal); a t-test at small N "
                 "sits slightly below the line; red points differ by more than 10% (β, SE and p out of step)."), \
        f"{np.isfinite(rep).sum():,} variants; {note}"


# ---------------------------------------------------------------- forest plots

def read_loo(path: str | Path) -> pl.DataFrame:
    """Leave-one-out rows of ``crosscohort meta --loo-threshold`` (``O.loo.tsv``).

    Accepted column names: the lead as ``variant_id`` (or the four key
    columns), the left-out cohort as ``left_out`` / ``left_out_cohort`` /
    ``cohort_left_out`` / ``excluded_cohort``, and ``beta``, ``standard_error``.

    Raises
    ------
    InputError
        When the file cannot be read or lacks one of those columns.
    """
    path = Path(path)
    try:
        df = pl.read_csv(path, separator="\t", null_values=["NA", "NaN", ""], infer_schema_length=10000)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise InputError(f"{path}: cannot read leave-one-out table ({str(exc).splitlines()[0]})") from exc
    left = next((c for c in ("left_out", "left_out_cohort", "cohort_left_out", "excluded_cohort", "loo_cohort")
                 if c in df.columns), None)
    if left is None or not {"beta", "standard_error"} <= set(df.columns):
        raise InputError(f"{path}: leave-one-out table needs a left-out cohort column (left_out), beta and "
                         f"standard_error; present: {df.columns}")
    if "variant_id" not in df.columns:
        if not set(_KEY) <= set(df.columns):
            raise InputError(f"{path}: leave-one-out table needs variant_id or {_KEY}; present: {df.columns}")
        df = df.with_columns(variant_id(*(pl.col(c).cast(pl.String) for c in VARIANT_KEY)))
    return df.rename({left: "left_out"})


def _ivw(b: np.ndarray, se: np.ndarray) -> tuple[float, float]:
    w = 1.0 / se ** 2
    ok = np.isfinite(w) & np.isfinite(b)
    if not ok.any():
        return float("nan"), float("nan")
    return float((w[ok] * b[ok]).sum() / w[ok].sum()), float(1.0 / math.sqrt(w[ok].sum()))


def _aligned_betas(leads: pl.DataFrame, df: pl.DataFrame) -> dict[str, tuple[float, float]]:
    """Lead label (:func:`lead_label`) -> (β, SE) of ``df`` at that variant, β negated where
    its alleles are reversed: by position and alleles, or for a marker-name lead (no
    chromosome, no position) by ``rsid`` and alleles among ``df``'s rows without a position."""
    labels = pl.Series("_label", [lead_label(leads[i], i) for i in range(leads.height)],
                       dtype=pl.String)
    keys = leads.with_columns(labels)
    t = df.select(*_KEY, *(["rsid"] if "rsid" in df.columns else []),
                  pl.col("beta").cast(pl.Float64), pl.col("standard_error").cast(pl.Float64))
    swapped = {"effect_allele": "other_allele", "other_allele": "effect_allele"}
    rows = []
    for on, lk, tk in _lead_keys(keys, t):
        lk = lk.select(*on, "_label")
        tk = tk.select(*on, "beta", "standard_error")
        rows.append(lk.join(tk.rename(swapped), on=on, how="inner").with_columns(-pl.col("beta")))
        rows.append(lk.join(tk, on=on, how="inner"))
    out: dict[str, tuple[float, float]] = {}
    for part in rows:  # reversed rows first: direct rows written last win
        for r in part.iter_rows(named=True):
            out[r["_label"]] = (r["beta"], r["standard_error"])
    return out


def _lead_keys(leads: pl.DataFrame, t: pl.DataFrame,
               ) -> Iterator[tuple[list[str], pl.DataFrame, pl.DataFrame]]:
    """(join columns, leads, rows) for positioned leads, then marker-name leads if any."""
    placed = pl.col("chromosome").is_not_null() & pl.col("base_pair_location").is_not_null()
    yield _KEY, leads.filter(placed), t.filter(placed)
    if "rsid" in leads.columns and "rsid" in t.columns:
        unplaced = marker_only()
        by_name = ["rsid", "effect_allele", "other_allele"]
        yield (by_name, leads.filter(unplaced).with_columns(pl.col("rsid").cast(pl.String)),
               t.filter(unplaced).with_columns(pl.col("rsid").cast(pl.String)))


def lead_label(lead: pl.DataFrame, i: int) -> str:
    """A lead's name: its variant_id; a marker-name lead (no position) its rsid and alleles."""
    vid = lead.get_column("variant_id")[0] if "variant_id" in lead.columns else None
    if vid is not None:
        return str(vid)
    if "rsid" in lead.columns and lead.get_column("rsid")[0] is not None:
        return (f"{lead.get_column('rsid')[0]} {lead.get_column('other_allele')[0]}/"
                f"{lead.get_column('effect_allele')[0]}")
    return f"lead {i + 1}"


def _loo_rows_of(lead: pl.DataFrame, loo: pl.DataFrame) -> pl.Expr:
    """The leave-one-out rows of a lead: by variant_id, or by rsid and alleles for a marker-name lead."""
    vid = lead.get_column("variant_id")[0] if "variant_id" in lead.columns else None
    if vid is not None:
        return pl.col("variant_id") == str(vid)
    key = ("rsid", "other_allele", "effect_allele")
    if all(c in lead.columns and c in loo.columns for c in key) and lead.get_column("rsid")[0] is not None:
        return pl.all_horizontal(pl.col(c).cast(pl.String) == str(lead.get_column(c)[0]) for c in key)
    return pl.lit(False)


def forest_images(leads: pl.DataFrame, cohorts: Mapping[str, pl.DataFrame], *, loo: pl.DataFrame | None,
                  pooled_leads: pl.DataFrame | None, dpi: int,
                  summary_label: str = "meta-analysis") -> tuple[list[Image], Table]:
    """A forest plot per lead variant: each cohort, leave-one-out estimates, meta (and pooled) summary.

    Cohort rows come from the harmonised tables (aligned to the lead's effect
    allele). Leave-one-out rows come from ``loo`` when given; otherwise they
    are the fixed-effect IVW of the remaining cohorts, computed here from the
    same rows (marked as such).

    ``summary_label`` names the leads' own β and SE row (an MR-MEGA run's are the
    fixed-effect IVW's: ``"fixed-effect IVW"``).

    Returns the images and a table of every row plotted.
    """
    images: list[Image] = []
    rows_out: list[tuple[str, ...]] = []
    # A binary trait's cohorts carry case counts; its β is a log odds ratio (logistic regression).
    binary = any("n_cases" in df.columns and df.get_column("n_cases").is_not_null().any() for df in cohorts.values())
    effect = "β, log odds ratio" if binary else "β"
    leads = leads.head(MAX_FORESTS)
    if "variant_id" not in leads.columns:
        leads = leads.with_columns(variant_id(*(pl.col(c).cast(pl.String) for c in VARIANT_KEY)))
    aligned = {c: _aligned_betas(leads, df) for c, df in cohorts.items()}
    for i in range(leads.height):
        lead = leads[i]
        vid = lead_label(lead, i)
        labels, betas, ses, kinds = [], [], [], []
        per = {c: aligned[c][vid] for c in cohorts if vid in aligned[c]}
        for c, (b, se) in per.items():
            labels.append(c)
            betas.append(b)
            ses.append(se)
            kinds.append("cohort")
        loo_source = "from the meta-analysis's leave-one-out table"
        if loo is not None:
            sub = loo.filter(_loo_rows_of(lead, loo))
            for r in sub.iter_rows(named=True):
                labels.append(f"without {r['left_out']}")
                betas.append(float(r["beta"]) if r["beta"] is not None else float("nan"))
                ses.append(float(r["standard_error"]) if r["standard_error"] is not None else float("nan"))
                kinds.append("loo")
        elif len(per) > 1:
            loo_source = "computed here (fixed-effect IVW of the other cohorts)"
            for c in per:
                rest = [v for k, v in per.items() if k != c]
                b, se = _ivw(np.array([v[0] for v in rest]), np.array([v[1] for v in rest]))
                labels.append(f"without {c}")
                betas.append(b)
                ses.append(se)
                kinds.append("loo")
        labels.append(summary_label)
        betas.append(float(lead.get_column("beta")[0]))
        ses.append(float(lead.get_column("standard_error")[0]))
        kinds.append("summary")
        if pooled_leads is not None:
            pr = pooled_leads.filter(pl.col("variant_id") == vid)
            if pr.height and pr.get_column("beta_pooled")[0] is not None:
                labels.append("pooled")
                betas.append(float(pr.get_column("beta_pooled")[0]))
                ses.append(float(pr.get_column("standard_error_pooled")[0]))
                kinds.append("summary")
        frame = pl.DataFrame({"label": labels, "beta": betas, "standard_error": ses, "kind": kinds})
        fig = forest(frame, title=f"{vid}", effect=effect)
        # The caption names the rows drawn: no leave-one-out row for one cohort (or a lead
        # the file lacks), no pooled row without a pooled arm.
        drawn = ["per-cohort β with 95% CI"]
        if "loo" in kinds:
            drawn.append(f"leave-one-out estimates ({loo_source})")
        drawn.append(f"the {summary_label} β")
        if "pooled" in labels:
            drawn.append("the pooled β")
        images.append(Image(png_data_uri(fig, dpi=dpi), f"forest plot of {vid}",
                            f"{vid}: {', '.join(drawn[:-1])} and {drawn[-1]}."
                            + (" β is the log odds ratio per effect allele." if binary else "")))
        rows_out.extend((vid, lab, kind, num(b), num(se)) for lab, kind, b, se in
                        zip(labels, kinds, betas, ses, strict=True))
    table = Table("forest plot rows", ("lead variant", "row", "kind", "β", "SE"), tuple(rows_out),
                  id="meta-forest", note="" if rows_out else "no lead variant")
    return images, table


# ---------------------------------------------------------------- heterogeneity

def heterogeneity_table(meta: pl.DataFrame, *, threshold: float) -> Table:
    """Cochran's Q p and I² over all variants and over those with p < threshold (— where a column is absent)."""
    nlp = neg_log10_p_of_table(meta, source="meta-analysis")
    sig = np.nan_to_num(nlp, nan=-np.inf) > -np.log10(threshold)
    nan = np.full(meta.height, np.nan)
    hp = meta.get_column("het_p").cast(pl.Float64).to_numpy() if "het_p" in meta.columns else nan
    i2 = meta.get_column("het_i2").cast(pl.Float64).to_numpy() if "het_i2" in meta.columns else nan
    ns = meta.get_column("n_studies").cast(pl.Int64).to_numpy() if "n_studies" in meta.columns else None
    rows = []
    for label, sel in (("all variants", np.ones(meta.height, dtype=bool)),
                       (f"p < {threshold:g}", sig)):
        multi = sel & (ns >= 2) if ns is not None else sel
        h = hp[multi]
        g = i2[multi]
        have_p, have_i2 = bool(np.isfinite(h).any()), bool(np.isfinite(g).any())
        rows.append((label, count(int(sel.sum())), count(int(multi.sum())),
                     count(int(np.sum(h < 0.05))) if have_p else "—",
                     count(int(np.sum(h < 1e-4))) if have_p else "—",
                     num(np.nanmedian(g), ".3f") if have_i2 else "—",
                     count(int(np.sum(g > 0.5))) if have_i2 else "—"))
    return Table("heterogeneity", ("variants", "n", "in ≥ 2 cohorts", "Q p < 0.05", "Q p < 1e-4",
                                   "median I²", "I² > 50%"), tuple(rows), id="meta-heterogeneity",
                 note="Cochran's Q and Higgins' I² of the fixed-effect meta-analysis"
                      + ("" if {"het_p", "het_i2"} <= set(meta.columns) else
                         f"; missing column(s): {sorted({'het_p', 'het_i2'} - set(meta.columns))}") + ".")


# ---------------------------------------------------------------- comparison

_AGREEMENT_ROWS = (("all_shared", "all shared variants"), ("significant_either", "significant in either arm"))


def _is_comparison(d: object) -> bool:
    return isinstance(d, Mapping) and "all_shared" in d and "n_sig_both" in d


#: ``crosscohort compare --federated``'s counts of the variants not compared, and why.
_NOT_COMPARED = (
    ("n_different_samples", "not compared: different n (the federated fit summed fewer people, e.g. a "
                            "cohort's gate withheld the variant's sums)"),
    ("n_not_estimable", "not compared: not estimable in an arm"),
    ("n_federated_only", "not compared: in the federated fit only"),
    ("n_individual_only", "not compared: in the individual-level fit only"),
)


def same_model_table(metrics: Mapping, *, source: str | Path) -> Table:
    """The federated pooled fit against the individual-level fit of the same model (``compare --federated``).

    Raises
    ------
    InputError
        A JSON without the comparison's keys (naming the file and the keys).
    """
    need = ("trait_type", "n_compared", "max_rel_beta", "max_rel_se", "max_rel_p", *(k for k, _ in _NOT_COMPARED))
    missing = [k for k in need if not isinstance(metrics, Mapping) or k not in metrics]
    if missing:
        raise InputError(f"{source}: not a same-model comparison (crosscohort compare --federated): "
                         f"key(s) {missing} missing")
    binary = metrics["trait_type"] == "binary"
    fit = "logistic; one-step estimate vs maximum likelihood" if binary else "linear least squares"
    caption = (f"federated pooled vs individual-level pooled (same model, {count(metrics['n_compared'])} "
               f"variants; {fit})")
    rows = [
        ("max |Δβ| / max(|β|, SE)", num(metrics["max_rel_beta"], ".3g")),
        ("max relative SE difference", num(metrics["max_rel_se"], ".3g")),
        ("max relative p difference", num(metrics["max_rel_p"], ".3g")),
        ("median |Δβ| / max(|β|, SE)", num(metrics.get("median_rel_beta"), ".3g")),
        ("median relative SE difference", num(metrics.get("median_rel_se"), ".3g")),
        ("median relative p difference", num(metrics.get("median_rel_p"), ".3g")),
        ("variants compared", count(metrics["n_compared"])),
        *((label, count(metrics[k])) for k, label in _NOT_COMPARED),
    ]
    if metrics.get("tolerance") is not None:
        within = metrics.get("within_tolerance")
        rows.append((f"all three within {num(metrics['tolerance'], 'g')}",
                     "—" if within is None else ("yes" if within else "NO")))
    if binary:
        note = ("For a binary trait the federated fit is a one-step estimate from the null (score and "
                "information from the released sums); these differences are the one-step estimator's "
                "measured error against the individual-level logistic fit of the same model.")
    else:
        note = ("The federated fit solves the same least-squares problem from the released sums as the "
                "individual-level fit does from the stacked people: equal up to rounding (issue 24's bar, "
                "1e-10 relative).")
    note += (" Same model: cohort intercepts, each cohort's PCs cohort-specific, missing calls filled as the sums "
             "fill them; same people (each cohort's QC'd samples) and variants (kept by every opted-in cohort's QC).")
    return Table(caption, ("measure", "value"), tuple(rows), id="comparison-same-model", note=note)


def comparison_section(metrics: Mapping, *, loci: pl.DataFrame | None, meta: pl.DataFrame | None,
                       pooled: pl.DataFrame | None, threshold: float, dpi: int
                       ) -> tuple[list[Table], list[Image]] | None:
    """Readable tables and the four plots of ``crosscohort compare``'s JSON (None for another layout)."""
    if not _is_comparison(metrics):
        return None
    tables: list[Table] = []
    agree_rows = []
    for key, label in _AGREEMENT_ROWS:
        a = metrics.get(key) or {}
        agree_rows.append((label, count(a.get("n")), num(a.get("pearson_r"), ".4f"), num(a.get("slope"), ".4f"),
                           num(a.get("intercept"), ".3g")))
    tables.append(Table("β_meta against β_pooled", ("variants", "n", "Pearson r", "slope", "intercept"),
                        tuple(agree_rows), id="comparison-agreement",
                        note=f"least squares of β_meta on β_pooled; median SE_meta/SE_pooled = "
                             f"{num(metrics.get('se_ratio_median'), '.4f')}; "
                             f"{count(metrics.get('n_shared'))} shared variants "
                             f"({count(metrics.get('n_pooled_swapped'))} pooled rows with swapped alleles aligned, "
                             f"{count(metrics.get('n_allele_mismatch'))} positions with another allele pair)."))
    # λGC is a median over the rows with a p-value: an MR-MEGA table has none where a variant is
    # in fewer than T + 3 cohorts, so the arm's row count alone overstates what it is of.
    def with_p(df: pl.DataFrame | None, n: object) -> str:
        if df is None or not {"p_value", "neg_log_10_p_value"} & set(df.columns):
            return count(n)
        return f"{count(int(np.isfinite(neg_log10_p_of_table(df, source='comparison')).sum()))} (of {count(n)})"

    tables.append(Table("genomic control", ("arm", "variants with a p-value (of rows)", "λGC"), (
        ("meta-analysis", with_p(meta, metrics.get("n_meta")), num(metrics.get("lambda_gc_meta"), ".4f")),
        ("pooled", with_p(pooled, metrics.get("n_pooled")), num(metrics.get("lambda_gc_pooled"), ".4f"))),
        id="comparison-lambda"))
    variant_counts = {"both": metrics.get("n_sig_both", 0), "meta_only": metrics.get("n_sig_meta_only", 0),
                      "pooled_only": metrics.get("n_sig_pooled_only", 0)}
    locus_counts = {"both": metrics.get("n_loci_both", metrics.get("n_loci_meta_shared", 0)),
                    "meta_only": metrics.get("n_loci_meta_only", 0),
                    "pooled_only": metrics.get("n_loci_pooled_only", 0)}
    tables.append(Table(f"concordance at p < {threshold:g}", ("level", *(c.replace("_", " ") for c in LOCUS_CLASSES)),
                        (("variants", *(count(variant_counts[c]) for c in LOCUS_CLASSES)),
                         ("loci", *(count(locus_counts[c]) for c in LOCUS_CLASSES))), id="comparison-concordance",
                        note=f"loci: ±{num(metrics.get('window_kb'), 'g')} kb around each lead; a locus is in both "
                             "when the other arm has a lead within its window."))
    dv, dl = metrics.get("direction_classes_variants") or {}, metrics.get("direction_classes_loci") or {}
    if dv or dl:
        classes = list(dv or dl)
        tables.append(Table("direction classes (meta-analysis direction string)",
                            ("level", *(c.replace("_", " ") for c in classes)),
                            (("significant variants", *(count(dv.get(c, 0)) for c in classes)),
                             ("loci (leads)", *(count(dl.get(c, 0)) for c in classes))),
                            id="comparison-direction",
                            note="agree: all cohorts carrying the variant share the sign; conflict: opposite signs; "
                                 "single cohort: only one cohort carries it."))
    het = metrics.get("discordant_het") or {}
    if loci is not None and loci.height:
        disc = loci.filter((pl.col("class") != "both") | pl.col("cohort_specific").fill_null(False))
        eaf_cols = [c for c in loci.columns if c.startswith("eaf_")]
        rows = []
        for r in disc.iter_rows(named=True):
            rows.append((r.get("variant_id") or f"{chrom_label(r['chromosome'])}:{r['base_pair_location']}",
                         r["class"].replace("_", " "), "yes" if r.get("cohort_specific") else "no",
                         format_p(r.get("neg_log_10_p_value_meta")), format_p(r.get("neg_log_10_p_value_pooled")),
                         r.get("direction") or "—", (r.get("direction_class") or "—").replace("_", " "),
                         num(r.get("het_q"), ".3g"), num(r.get("het_p"), ".3g"),
                         "—" if r.get("het_i2") is None else f"{100 * float(r['het_i2']):.1f}%",
                         *(num(r.get(c), ".3f") for c in eaf_cols), r.get("most_common_cohort") or "—"))
        tables.append(Table("discordant and cohort-specific loci: heterogeneity and ancestry",
                            ("lead", "class", "cohort-specific", "p meta", "p pooled", "direction",
                             "direction class", "Q", "Q p", "I²", *(f"EAF {c[4:]}" for c in eaf_cols),
                             "minor allele most common in"), tuple(rows), id="comparison-discordant",
                            note=(f"{count(het.get('n_loci'))} discordant loci; median I² "
                                  f"{num(het.get('median_i2'), '.3f')}." if het else "") if rows else
                            "No discordant or cohort-specific locus: every locus is found by both arms and "
                            "carried by more than one cohort."))
        tables.append(Table("ancestry of the hits", ("measure", "value"), (
            ("hits (loci of either arm)", count(metrics.get("n_hits"))),
            ("hits with per-cohort EAF", count(metrics.get("n_hits_with_eaf"))),
            ("largest cohort (by N)", str(metrics.get("largest_cohort") or "—")),
            ("hits whose minor allele is most common outside it",
             count(metrics.get("n_hits_most_common_outside_largest"))),
            ("share", num(metrics.get("share_hits_most_common_outside_largest"), ".3f")),
            ("cohort-specific loci", count(metrics.get("n_cohort_specific_loci")))), id="comparison-ancestry"))
    images: list[Image] = [Image(png_data_uri(concordance_tiles({"variants": variant_counts, "loci": locus_counts}),
                                              dpi=dpi), "concordance tile plot",
                                 "Counts significant in both arms, the meta-analysis only and the pooled analysis "
                                 "only, by variant and by locus.")]
    if meta is not None and pooled is not None:
        images.insert(0, Image(png_data_uri(miami(meta, pooled, threshold=threshold), dpi=dpi), "Miami plot",
                               "Miami plot: meta-analysis above, pooled analysis below, on one genome axis."))
        images.append(Image(png_data_uri(neglog10p_scatter(meta, pooled, threshold=threshold), dpi=dpi),
                            "minus log10 p scatter", "−log10 p of the meta-analysis against the pooled analysis; "
                            "dotted: the threshold; red: significant in either arm."))
    return tables, images


# ---------------------------------------------------------------- export audit

def audit_tables(audit: object, *, cohort: str, trait: str) -> list[Table] | None:
    """The gate's audit (``crosscohort export`` layout) as tables; None for another layout."""
    if not isinstance(audit, Mapping) or not isinstance(audit.get("traits"), Mapping):
        return None
    head = [(k, str(audit[k])) for k in ("cohort", "status", "software", "created", "config_digest")
            if k in audit]
    tables = [Table(f"{cohort}: bundle", ("field", "value"), tuple(head))]
    rules = audit.get("gate_rules")
    if isinstance(rules, Mapping):
        tables.append(Table(f"{cohort}: gate rules applied", ("rule", "threshold"),
                            tuple((str(k), str(v)) for k, v in rules.items())))
    t = audit["traits"].get(trait)
    if isinstance(t, Mapping):
        rows = tuple((str(r.get("rule")), "—" if r.get("threshold") is None else str(r.get("threshold")),
                      str(r.get("description", "")), count(r.get("rows_suppressed")), str(r.get("status", "")))
                     for r in t.get("rules", []) if isinstance(r, Mapping))
        note = (f"rows in {count(t.get('rows_in'))}, released {count(t.get('rows_released'))}, "
                f"suppressed {count(t.get('rows_suppressed'))}; trait type {t.get('trait_type', '—')}")
        tables.append(Table(f"{cohort}: {trait} rows suppressed by rule",
                            ("rule", "threshold", "what it checks", "rows suppressed", "status"), rows,
                            id=f"audit-{cohort}", note=note))
        cols = [(k.replace("columns_", "columns "), ", ".join(map(str, v)) or "none")
                for k, v in t.items() if k.startswith("columns_") and isinstance(v, Sequence)]
        if cols:
            tables.append(Table(f"{cohort}: {trait} columns", ("columns", "names"), tuple(cols)))
    suff = audit.get("sufficient")
    if isinstance(suff, Mapping) and isinstance(suff.get(trait), Mapping):
        tables.append(_sufficient_table(suff[trait], cohort=cohort, trait=trait))
    # The gate's sentences, as audit.md states them: the warning first, an output checker's finding.
    for key, caption in _AUDIT_SENTENCES:
        v = audit.get(key)
        if isinstance(v, Sequence) and not isinstance(v, str) and v:
            tables.append(Table(f"{cohort}: {caption}", ("statement",), tuple((str(x),) for x in v),
                                id=f"audit-{cohort}-{key.replace('_', '-')}"))
    # qc_ledgers are in the ledger section (read as ledgers); the rest as field/value rows.
    other = {k: v for k, v in audit.items() if k not in ("traits", "gate_rules", "rule_order", "cohort", "status",
                                                          "software", "created", "config_digest", "sufficient",
                                                          "qc_ledgers", *(k for k, _ in _AUDIT_SENTENCES))}
    for k, v in other.items():
        if isinstance(v, Mapping):
            rows = tuple((str(a), str(b)) for a, b in v.items() if not isinstance(b, (Mapping, list)))
            if rows:
                tables.append(Table(f"{cohort}: {k}", ("field", "value"), rows))
    return tables


#: The audit's lists of sentences (``crosscohort.tre.gate.bundle``), in the order shown.
_AUDIT_SENTENCES = (
    ("differences_between_traits", "Warning: small differences between traits"),
    ("count_rules", "count rules"),
    ("limits", "what the gate cannot detect"),
)


def _sufficient_table(e: Mapping, *, cohort: str, trait: str) -> Table:
    """One trait's sufficient statistics as the gate released them: its rule rows, status and counts."""
    rows = tuple((str(r.get("rule")), count(r.get("rows_suppressed")), str(r.get("description", "")))
                 for r in e.get("rules", []) if isinstance(r, Mapping))
    fill = e.get("sumstats_fill")
    note = (f"status {str(e.get('status', '—')).upper()}"
            + (f"; n = {e['n']}" if e.get("n") is not None else "")
            + f"; rows in {count(e.get('rows_in'))}, released {count(e.get('rows_released'))}"
            + "".join(f"; refused: {r}" for r in e.get("reasons") or [])
            + (f"; rule {fill.get('rule')}: {fill.get('status')}" if isinstance(fill, Mapping) else "")
            + "." + (f" Not covered: {e['not_covered']}" if e.get("not_covered") else ""))
    return Table(f"{cohort}: {trait} sufficient statistics (federated pooled fit): rows suppressed by rule",
                 ("rule", "rows suppressed", "what it checks"), rows, id=f"audit-{cohort}-sufficient", note=note)


# ---------------------------------------------------------------- association model

def _lists(v: object, fmt: str) -> str:
    if not isinstance(v, Sequence) or isinstance(v, str):
        return "—"
    return ", ".join(num(x, fmt) for x in v)


def association_model_table(manifests: Sequence[tuple[str, Path, object]], *, trait: str) -> Table | None:
    """Per cohort: the association model, its step-1 summary and λGC with and without LOCO.

    Parameters
    ----------
    manifests
        ``(cohort, manifest path, manifest)`` of the export bundles. A bundle
        whose manifest names a step-1 summary (key ``wgr``, written by the
        gate: :mod:`crosscohort.contract.release_wgr`) used whole-genome
        regression; one without used ``glm``.
    trait
        The report's trait.

    Returns
    -------
    Table or None
        None when no manifest was given.

    Raises
    ------
    InputError
        A named step-1 summary missing or not a JSON object (naming the file).
    """
    import json

    rows = []
    for cohort, path, manifest in manifests:
        name = manifest.get("wgr") if isinstance(manifest, Mapping) else None
        if name is None:
            rows.append((cohort, "glm", *("—" for _ in range(7))))
            continue
        file = Path(path).parent / str(name)
        try:
            summary = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(f"{file}: the step-1 summary named by {path} (key 'wgr') is unreadable "
                             f"({type(exc).__name__})") from None
        traits = summary.get("traits") if isinstance(summary, Mapping) else None
        if not isinstance(traits, Mapping):
            raise InputError(f"{file}: a step-1 summary must be an object with 'traits'")
        t = traits.get(trait)
        t = t if isinstance(t, Mapping) else {}
        rows.append((
            cohort, "wgr", str(summary.get("cv", "—")), _lists(summary.get("level0_shrinkage"), ".4g"),
            f"{num(t.get('chosen_level1_shrinkage'), '.4g')} (h² {num(t.get('chosen_level1_h2'), '.3g')})",
            num(t.get("cv_r2"), ".4f"), num(t.get("lambda_gc_loco"), ".4f"), num(t.get("lambda_gc_no_loco"), ".4f"),
            _cell_count(summary.get("n_blocks")),
        ))
    if not rows:
        return None
    if all(r[1] == "glm" for r in rows):
        # Nothing of step 1 to show: seven columns of dashes a row said less than this.
        return Table(
            f"association model per cohort: {trait}", ("cohort", "model"), tuple(r[:2] for r in rows),
            id="cohorts-model",
            note="No cohort released a step-1 summary (wgr.json): every bundle's association is glm (fixed "
                 "effects and the cohort's ancestry PCs, no whole-genome regression); each cohort's λGC is "
                 "in the cohorts table.")
    return Table(
        f"association model per cohort: {trait}",
        ("cohort", "model", "step-1 CV", "level-0 shrinkages", "level-1 shrinkage chosen", "CV R²",
         "λGC with LOCO", "λGC without LOCO", "step-1 blocks"),
        tuple(rows), id="cohorts-model",
        note="From each bundle's released step-1 summary (wgr.json). Level-0 shrinkages are REGENIE's grid "
             "M (1 - h²) / h² over the step-1 variants M; the level-1 shrinkage is chosen by cross-validation. "
             "λGC with LOCO: of the released step-2 statistics (the rows the export gate kept); without "
             "LOCO: of the covariates-only score test of the step-1 variants, computed in step 1 (in the "
             "workflow, the QC'd variants step 2 tests). A bundle without a step-1 summary is shown as glm "
             "(a step 2 run on REGENIE's own step-1 files, outside the workflow, releases none); its λGC "
             "is in the cohorts table.",
    )


def _cell_count(v: object) -> str:
    return count(v) if isinstance(v, int) and not isinstance(v, bool) else "—"
