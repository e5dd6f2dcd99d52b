"""Inverse-variance weighted meta-analysis: fixed effects, Cochran's Q, DerSimonian-Laird.

The kernel (:func:`ivw_arrays`) works on dense ``(variants, cohorts)``
arrays with NaN for "cohort lacks this variant", so every formula is one
vectorised numpy expression. :func:`meta_analyse` does the bookkeeping
around it: stacking cohorts, value checks, genomic control, output columns.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
from scipy.special import ndtr
from scipy.stats import chi2

from crosscohort.errors import ConfigError, InputError
from crosscohort.harmonise.align import VARIANT_KEY, check_cohort_name
from crosscohort.ledger import Ledger
from crosscohort.loci import neglog10p
from crosscohort.stats import lambda_gc
from crosscohort.sumstats import (
    COLUMNS,
    META_COLUMNS,
    neg_log10_p_from_z,
    variant_id,
    write_sumstats,
)

__all__ = [
    "GENOME_WIDE",
    "IVWArrays",
    "MetaResult",
    "ivw_arrays",
    "meta_analyse",
    "write_meta",
]

#: Conventional genome-wide significance threshold, used in the summary.
GENOME_WIDE = 5e-8

_METHODS = ("fixed", "random")


@dataclass(frozen=True)
class IVWArrays:
    """Per-variant results of :func:`ivw_arrays` (1-D float64 arrays of length m)."""

    beta: np.ndarray
    standard_error: np.ndarray
    z: np.ndarray
    q: np.ndarray
    df: np.ndarray
    tau2: np.ndarray
    i2: np.ndarray
    beta_random: np.ndarray
    standard_error_random: np.ndarray
    z_random: np.ndarray
    n_studies: np.ndarray


def ivw_arrays(beta: np.ndarray, se: np.ndarray) -> IVWArrays:
    """Fixed- and random-effects combination of ``(m, k)`` estimates; NaN marks a missing cohort.

    Parameters
    ----------
    beta, se
        Effect estimates and standard errors, shape ``(m variants, k cohorts)``;
        an entry is used when both are finite and ``se > 0``.

    Returns
    -------
    IVWArrays
        With ``w_i = 1/se_i^2``: ``beta = sum(w b)/sum(w)``, ``se = 1/sqrt(sum w)``;
        ``Q = sum w (b - beta)^2`` (two passes, so no cancellation of large
        sums), ``df = k_v - 1``, ``I^2 = max(0, (Q - df)/Q)`` (0 when Q = 0);
        DerSimonian-Laird ``tau2 = max(0, (Q - df)/(sum w - sum w^2/sum w))``
        and the random-effects estimate with weights ``1/(se^2 + tau2)``.
        Variants with no usable cohort get NaN.

    References
    ----------
    DerSimonian R, Laird N (1986) Meta-analysis in clinical trials. Control Clin Trials 7:177-188.
    Higgins JPT, Thompson SG (2002) Quantifying heterogeneity in a meta-analysis. Stat Med 21:1539-58.
    """
    beta = np.asarray(beta, dtype=np.float64)
    se = np.asarray(se, dtype=np.float64)
    if beta.shape != se.shape or beta.ndim != 2:
        raise ValueError(f"beta and se must be (m, k) arrays of one shape; got {beta.shape}, {se.shape}")
    ok = np.isfinite(beta) & np.isfinite(se) & (se > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.where(ok, 1.0 / np.where(ok, se, 1.0) ** 2, 0.0)
        b = np.where(ok, beta, 0.0)
        k = ok.sum(axis=1).astype(np.float64)
        sw = w.sum(axis=1)
        bbar = (w * b).sum(axis=1) / sw
        sef = 1.0 / np.sqrt(sw)
        # One study: its own numbers bit for bit (w b / w and 1/sqrt(1/se^2) round off),
        # hence Q = 0 exactly rather than a rounding residue.
        single = k == 1
        b_one, se_one = b.sum(axis=1), np.where(ok, se, 0.0).sum(axis=1)
        bbar[single] = b_one[single]
        sef[single] = se_one[single]
        q = np.where(ok, w * (b - bbar[:, None]) ** 2, 0.0).sum(axis=1)
        dof = k - 1.0
        i2 = np.where(q > 0, np.maximum(0.0, (q - dof) / q), 0.0)
        denom = sw - (w * w).sum(axis=1) / sw
        tau2 = np.where(denom > 0, np.maximum(0.0, (q - dof) / denom), 0.0)
        wr = np.where(ok, 1.0 / (np.where(ok, se, 1.0) ** 2 + tau2[:, None]), 0.0)
        swr = wr.sum(axis=1)
        br = (wr * b).sum(axis=1) / swr
        ser = 1.0 / np.sqrt(swr)
        br[single] = b_one[single]
        ser[single] = se_one[single]
    none = k == 0
    for arr in (bbar, sef, q, dof, i2, tau2, br, ser):
        arr[none] = np.nan
    return IVWArrays(
        beta=bbar,
        standard_error=sef,
        z=bbar / sef,
        q=q,
        df=dof,
        tau2=tau2,
        i2=i2,
        beta_random=br,
        standard_error_random=ser,
        z_random=br / ser,
        n_studies=k,
    )


@dataclass(frozen=True)
class MetaResult:
    """A meta-analysis: the per-variant table and what went into it.

    Attributes
    ----------
    table
        GWAS-SSF columns plus the meta columns of :data:`crosscohort.sumstats.META_COLUMNS`,
        sorted by chromosome and position. ``beta``/``standard_error``/``p_value``
        are fixed-effect; the ``*_random`` columns DerSimonian-Laird.
    cohorts
        Cohort ids in direction-string order.
    method
        ``fixed`` or ``random``: which estimate the summary calls primary.
    lambda_gc
        Cohort id -> λ_GC of its input (before any correction).
    lambda_meta
        λ_GC of the fixed-effect meta-analysis p-values.
    gc_applied
        Cohort id -> factor its SEs were multiplied by (1.0 when not corrected).
    ledgers
        Cohort id -> ledger (stage ``meta``) of rows not used, by reason.
    """

    table: pl.DataFrame
    cohorts: tuple[str, ...]
    method: str
    lambda_gc: dict[str, float]
    lambda_meta: float
    gc_applied: dict[str, float]
    ledgers: dict[str, Ledger] = field(default_factory=dict)

    def summary(self) -> dict:
        """JSON-ready summary: counts, λ per cohort and overall, genome-wide hits, method."""
        t = self.table
        nlp_fixed = t.get_column("neg_log_10_p_value").to_numpy()
        nlp_random = t.get_column("neg_log_10_p_value_random").to_numpy()
        thr = -np.log10(GENOME_WIDE)
        n_fixed = int(np.sum(nlp_fixed > thr))
        n_random = int(np.sum(nlp_random > thr))
        return {
            "method": self.method,
            "cohorts": list(self.cohorts),
            "n_variants": t.height,
            "n_variants_multi_cohort": int((t.get_column("n_studies") > 1).sum()),
            "lambda_gc": {c: _json_float(v) for c, v in self.lambda_gc.items()},
            "lambda_gc_meta": _json_float(self.lambda_meta),
            "gc_applied": {c: _json_float(v) for c, v in self.gc_applied.items()},
            "genome_wide_threshold": GENOME_WIDE,
            "n_genome_wide": n_fixed if self.method == "fixed" else n_random,
            "n_genome_wide_fixed": n_fixed,
            "n_genome_wide_random": n_random,
            "ledgers": [lg.to_dict() for lg in self.ledgers.values()],
        }


def _json_float(x: float) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


_STUDY_COLUMNS = (
    "beta",
    "standard_error",
    "effect_allele_frequency",
    "n",
    "n_cases",
    "n_controls",
    "rsid",
)


def _usable_rows(df: pl.DataFrame, *, cohort: str, ledger: Ledger) -> pl.DataFrame:
    """Rows a meta-analysis can use; the others counted in ``ledger`` by reason.

    Harmonised input passes untouched; these checks are for tables that
    bypassed harmonisation (NaN beta, SE <= 0, duplicated markers).
    """
    missing = [c for c in (*VARIANT_KEY, "beta", "standard_error") if c not in df.columns]
    if missing:
        raise InputError(
            f"cohort {cohort}: missing column(s) {missing} needed for meta-analysis; "
            f"present: {df.columns}"
        )
    casts = {c: dt for c, dt in (("beta", pl.Float64), ("standard_error", pl.Float64),
                                 ("effect_allele_frequency", pl.Float64), ("n", pl.Float64),
                                 ("n_cases", pl.Float64), ("n_controls", pl.Float64),
                                 ("chromosome", pl.Int64), ("base_pair_location", pl.Int64))
             if c in df.columns}
    try:
        df = df.with_columns([pl.col(c).cast(dt) for c, dt in casts.items()])
    except pl.exceptions.PolarsError as exc:
        raise InputError(
            f"cohort {cohort}: non-numeric value in a numeric column (harmonise first): "
            f"{str(exc).splitlines()[0]}"
        ) from exc
    rules = {
        "bad_value_key": pl.any_horizontal([pl.col(c).is_null() for c in VARIANT_KEY]),
        "bad_value_beta": ~pl.col("beta").is_finite().fill_null(False),
        "bad_value_standard_error": ~(
            (pl.col("standard_error") > 0) & pl.col("standard_error").is_finite()
        ).fill_null(False),
    }
    for reason, bad in rules.items():
        n_bad = int(df.select(bad.sum()).item())
        ledger.remove(reason, n_bad)
        if n_bad:
            df = df.filter(~bad)
    # Same rule as harmonisation: largest n, then smallest SE, then first in file.
    order, desc = [*VARIANT_KEY], [False] * len(VARIANT_KEY)
    if "n" in df.columns:
        order.append("n")
        desc.append(True)
    order.append("standard_error")
    desc.append(False)
    dedup = (
        df.with_row_index("_row")
        .sort([*order, "_row"], descending=[*desc, False], nulls_last=True)
        .unique(subset=list(VARIANT_KEY), keep="first", maintain_order=True)
        .drop("_row")
    )
    ledger.remove("duplicate", df.height - dedup.height)
    return dedup


def _direction(beta: np.ndarray) -> np.ndarray:
    """One character per cohort: ``+``, ``-``, ``0`` (beta exactly 0, as METAL), ``?`` (absent)."""
    chars = np.full(beta.shape, "?", dtype="<U1")
    chars[beta > 0] = "+"
    chars[beta < 0] = "-"
    chars[beta == 0] = "0"
    if beta.shape[1] == 0:
        return np.full(beta.shape[0], "", dtype="<U1")
    # A C-contiguous (m, k) array of 1-char strings viewed as (m, 1) k-char strings.
    return np.ascontiguousarray(chars).view(f"<U{beta.shape[1]}")[:, 0]


def _p_from_z(z: np.ndarray) -> np.ndarray:
    return 2.0 * ndtr(-np.abs(z))


def meta_analyse(
    tables: dict[str, pl.DataFrame],
    *,
    method: str = "fixed",
    gc: bool = False,
    cohort_order: list[str] | None = None,
) -> MetaResult:
    """Fixed- and random-effects meta-analysis of harmonised summary statistics.

    Parameters
    ----------
    tables
        Cohort id -> harmonised GWAS-SSF frame of one trait. Variants are
        matched on ``chromosome, base_pair_location, other_allele,
        effect_allele`` (harmonisation makes the alleles agree).
    method
        ``fixed`` or ``random``: which estimate the summary reports as
        primary. The GWAS-SSF ``beta``/``standard_error``/``p_value`` columns
        are always fixed-effect; the ``*_random`` columns are always filled.
    gc
        Genomic control of the inputs, as METAL's ``GENOMICCONTROL ON``:
        each cohort with λ > 1 has its SEs multiplied by sqrt(λ) before combining.
    cohort_order
        Order of the direction string (default: the order of ``tables``);
        must name every cohort once.

    Returns
    -------
    MetaResult

    Notes
    -----
    Per variant: fixed-effect inverse-variance weighted beta, SE, p (from z,
    with -log10 p in log space so |z| = 40 gives 349.4, not infinity);
    Cochran's Q, ``het_df``, ``het_p`` (chi2 survival; NA when df = 0),
    ``het_i2``; DerSimonian-Laird ``tau2`` and random effects (see
    :func:`ivw_arrays`). ``n`` = sum of n; ``n_cases``/``n_controls``
    summed over the cohorts reporting them; ``n_effective`` = sum of
    4/(1/cases + 1/controls) where a cohort reports both, else its n.
    ``effect_allele_frequency`` = n-weighted mean EAF when every cohort with
    an EAF for the variant reports n, else the plain mean; ``eaf_min``,
    ``eaf_max``. λ_GC = median(z²)/0.4549364 (chi-square 1-df median), via
    :func:`crosscohort.stats.lambda_gc`. Rows with null key, non-finite beta
    or SE <= 0, and duplicated markers (largest n, then smallest SE kept)
    are left out and counted per cohort in :attr:`MetaResult.ledgers`.
    """
    if method not in _METHODS:
        raise ConfigError(f"meta-analysis method must be one of {_METHODS}; got {method!r}")
    if not tables:
        raise InputError("meta-analysis needs at least one cohort table; got none")
    order = list(cohort_order) if cohort_order is not None else list(tables)
    if sorted(order) != sorted(tables) or len(set(order)) != len(order):
        raise ConfigError(
            f"--cohort-order must list each cohort exactly once; got {order}, cohorts are {list(tables)}"
        )
    for c in order:
        check_cohort_name(c)

    ledgers: dict[str, Ledger] = {}
    frames: list[pl.DataFrame] = []
    present = {c: False for c in _STUDY_COLUMNS}
    # Arithmetic runs over cohorts in sorted-id order whatever the requested order,
    # so reordering cohorts changes the direction string and nothing else, bit for bit.
    canonical = sorted(order)
    for idx, cohort in enumerate(canonical):
        df = tables[cohort]
        ledger = Ledger(stage="meta", cohort=cohort, n_in=df.height)
        df = _usable_rows(df, cohort=cohort, ledger=ledger)
        ledger.n_kept = df.height
        ledgers[cohort] = ledger.check()
        cols = [pl.col(c) for c in VARIANT_KEY]
        for c in _STUDY_COLUMNS:
            if c in df.columns and df.get_column(c).null_count() < df.height:
                present[c] = True
            dtype = pl.String if c == "rsid" else pl.Float64
            cols.append(pl.col(c).cast(dtype) if c in df.columns else pl.lit(None, dtype).alias(c))
        frames.append(df.select(cols).with_columns(pl.lit(idx, pl.Int32).alias("_cohort")))
    long = pl.concat(frames, how="vertical")

    variants = (
        long.select(VARIANT_KEY).unique().sort(list(VARIANT_KEY)).with_row_index("_v")
    )
    long = long.join(variants, on=list(VARIANT_KEY), how="inner")
    m, k = variants.height, len(canonical)
    vi = long.get_column("_v").to_numpy().astype(np.int64)
    ci = long.get_column("_cohort").to_numpy().astype(np.int64)

    def dense(col: str) -> np.ndarray:
        arr = np.full((m, k), np.nan)
        arr[vi, ci] = long.get_column(col).cast(pl.Float64).fill_null(np.nan).to_numpy()
        return arr

    beta, se = dense("beta"), dense("standard_error")

    lambdas: dict[str, float] = {}
    factors: dict[str, float] = {}
    for j, cohort in enumerate(canonical):
        zj = beta[:, j] / se[:, j]
        zj = zj[np.isfinite(zj)]
        lam = lambda_gc(neg_log10_p_from_z(zj)) if zj.size else float("nan")
        lambdas[cohort] = lam
        factors[cohort] = float(np.sqrt(lam)) if gc and np.isfinite(lam) and lam > 1 else 1.0
    se_used = se * np.array([factors[c] for c in canonical])[None, :]

    res = ivw_arrays(beta, se_used)
    het_p = np.where(res.df > 0, chi2.sf(res.q, np.maximum(res.df, 1)), np.nan)

    n = dense("n")
    cases, controls = dense("n_cases"), dense("n_controls")
    eaf = dense("effect_allele_frequency")
    with np.errstate(invalid="ignore", divide="ignore"):
        neff_binary = 4.0 / (1.0 / cases + 1.0 / controls)
        neff = np.where(np.isfinite(neff_binary), neff_binary, n)
        has_eaf = np.isfinite(eaf)
        weighted = has_eaf & np.isfinite(n)
        all_weighted = (has_eaf <= weighted).all(axis=1)  # every EAF has its n
        eaf_w = np.nansum(np.where(weighted, eaf * n, 0.0), axis=1) / np.nansum(
            np.where(weighted, n, 0.0), axis=1
        )
        eaf_u = np.nansum(np.where(has_eaf, eaf, 0.0), axis=1) / has_eaf.sum(axis=1)
        eaf_mean = np.where(all_weighted, eaf_w, eaf_u)
        any_eaf = has_eaf.any(axis=1)
        eaf_min = np.where(any_eaf, np.min(np.where(has_eaf, eaf, np.inf), axis=1), np.nan)
        eaf_max = np.where(any_eaf, np.max(np.where(has_eaf, eaf, -np.inf), axis=1), np.nan)

    def count_sum(arr: np.ndarray) -> pl.Series:
        # Sums of counts stay integer; a variant with no reporting cohort is NA, not 0.
        has = np.isfinite(arr).any(axis=1)
        return pl.Series(np.where(has, np.nansum(arr, axis=1), np.nan)).fill_nan(None).cast(pl.Int64)

    def nan_to_null(name: str, arr: np.ndarray) -> pl.Series:
        return pl.Series(name, arr, dtype=pl.Float64).fill_nan(None)

    columns: dict[str, pl.Series] = {
        "beta": nan_to_null("beta", res.beta),
        "standard_error": nan_to_null("standard_error", res.standard_error),
        "effect_allele_frequency": nan_to_null("effect_allele_frequency", eaf_mean),
        "p_value": nan_to_null("p_value", _p_from_z(res.z)),
        "neg_log_10_p_value": nan_to_null("neg_log_10_p_value", neg_log10_p_from_z(res.z)),
        "n": count_sum(n).alias("n"),
        "n_studies": pl.Series("n_studies", res.n_studies.astype(np.int64)),
        "direction": pl.Series(
            "direction", _direction(beta[:, [canonical.index(c) for c in order]])
        ),
        "het_q": nan_to_null("het_q", res.q),
        "het_df": pl.Series("het_df", res.df).fill_nan(None).cast(pl.Int64),
        "het_p": nan_to_null("het_p", het_p),
        "het_i2": nan_to_null("het_i2", res.i2),
        "tau2": nan_to_null("tau2", res.tau2),
        "beta_random": nan_to_null("beta_random", res.beta_random),
        "standard_error_random": nan_to_null("standard_error_random", res.standard_error_random),
        "p_value_random": nan_to_null("p_value_random", _p_from_z(res.z_random)),
        "neg_log_10_p_value_random": nan_to_null(
            "neg_log_10_p_value_random", neg_log10_p_from_z(res.z_random)
        ),
        "eaf_min": nan_to_null("eaf_min", eaf_min),
        "eaf_max": nan_to_null("eaf_max", eaf_max),
        "n_effective": nan_to_null("n_effective", np.where(
            np.isfinite(neff).any(axis=1), np.nansum(neff, axis=1), np.nan)),
    }
    if present["n_cases"]:
        columns["n_cases"] = count_sum(cases).alias("n_cases")
    if present["n_controls"]:
        columns["n_controls"] = count_sum(controls).alias("n_controls")
    if not present["n"]:
        del columns["n"]
    table = variants.drop("_v").with_columns(list(columns.values()))
    table = table.with_columns(
        variant_id(pl.col("chromosome"), pl.col("base_pair_location"),
                   pl.col("other_allele"), pl.col("effect_allele"))
    )
    if present["rsid"]:
        # The first cohort (in sorted-id order) naming the variant supplies its rsid.
        rsid = (
            long.filter(pl.col("rsid").is_not_null())
            .sort(["_v", "_cohort"])
            .unique(subset=["_v"], keep="first")
            .select("_v", "rsid")
        )
        table = (
            table.with_row_index("_v").join(rsid, on="_v", how="left").drop("_v")
        )
    wanted = [c for c in (*COLUMNS, *META_COLUMNS) if c in table.columns]
    table = table.select(wanted).sort(["chromosome", "base_pair_location", "other_allele",
                                       "effect_allele"])
    lam_meta = lambda_gc(neglog10p(table)) if table.height else float("nan")
    return MetaResult(
        table=table,
        cohorts=tuple(order),
        method=method,
        lambda_gc={c: lambdas[c] for c in order},
        lambda_meta=lam_meta,
        gc_applied={c: factors[c] for c in order},
        ledgers={c: ledgers[c] for c in order},
    )


def write_meta(result: MetaResult, out: str | Path) -> tuple[Path, Path]:
    """Write the table to ``out`` and the summary to ``out.summary.json``; returns both paths."""
    out = Path(out)
    write_sumstats(result.table, out)
    summary = out.with_name(out.name + ".summary.json")
    tmp = summary.with_name(f".{summary.name}.tmp")
    tmp.write_text(json.dumps(result.summary(), indent=2, sort_keys=True) + "\n")
    tmp.replace(summary)
    return out, summary
