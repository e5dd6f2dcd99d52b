"""Inverse-variance weighted meta-analysis of one part: the output columns of stacked cohorts.

:func:`combine_part` turns one part of the input (the whole of it, or one
chromosome of every cohort), stacked by :mod:`crosscohort.central.meta.stacking`,
into output rows: the estimators of :mod:`crosscohort.central.meta.estimators`
(fixed effect, Cochran's Q, I², DerSimonian-Laird, sample-size Z), MR-MEGA's
columns, the EAF summaries and flags, the direction string. What is genome-wide
(each cohort's λ_GC, MR-MEGA's axes) is computed by the driver
(:mod:`crosscohort.central.meta.stream`) over every part and passed in.
:class:`MetaResult` is the in-memory result, :func:`write_meta` writes it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from crosscohort.central.meta.estimators import (
    eaf_summary,
    effective_n,
    gc_factor,
    ivw_arrays,
    lambda_from_z2,
    samplesize_arrays,
)
from crosscohort.central.meta.mrmega import (
    Axes,
    MrMegaModel,
    axis_marker_rows,
    mrmega_arrays,
    mrmega_columns,
)
from crosscohort.central.meta.stacking import Stacked, meta_input_columns
from crosscohort.contract.keys import FLAG_EAF_FAR
from crosscohort.contract.ledger import Ledger
from crosscohort.contract.stats import neg_log10_p_from_z, p_from_chi2, p_from_z, z_from_neg_log10_p
from crosscohort.contract.sumstats import (
    COLUMNS,
    META_COLUMNS,
    float_column,
    variant_id,
    write_sumstats,
)
from crosscohort.runtime.atomic import write_json

__all__ = [
    "GENOME_WIDE",
    "METHODS",
    "MetaResult",
    "axis_marker_eaf",
    "cohort_z2",
    "combine_part",
    "gc_factors",
    "meta_input_columns",  # the command's column pruning reads it here
    "mrmega_chi2",
    "p_from_z",
    "summary_counts",
    "summary_dict",
    "write_meta",
]

#: Conventional genome-wide significance threshold, used in the summary.
GENOME_WIDE = 5e-8

#: Methods of :func:`~crosscohort.central.meta.meta_analyse`: the estimate the summary (and,
#: for ``samplesize``, the p-value columns) report as primary.
METHODS = ("fixed", "random", "samplesize", "mrmega")


@dataclass(frozen=True)
class MetaResult:
    """A meta-analysis: the per-variant table and what went into it.

    Attributes
    ----------
    table
        GWAS-SSF columns plus the meta columns of :data:`crosscohort.contract.sumstats.META_COLUMNS`,
        sorted by chromosome, position and alleles (marker-name-only rows last, by
        marker name), plus :data:`~crosscohort.contract.keys.FLAG_EAF_FAR`.
        ``beta``/``standard_error``
        are always the fixed-effect IVW estimate; ``p_value``/``neg_log_10_p_value``
        are fixed-effect, except with ``method="samplesize"`` where they are
        the sample-size Z test's (and ``z_samplesize`` holds Z); the
        ``*_random`` columns are DerSimonian-Laird.
    cohorts
        Cohort ids in direction-string order.
    method
        ``fixed``, ``random`` or ``samplesize``: which estimate the summary calls primary.
    lambda_gc
        Cohort id -> λ_GC of its input (before any correction).
    lambda_meta
        λ_GC of the meta-analysis p-values (``neg_log_10_p_value``).
    gc_applied
        Cohort id -> factor its SEs were multiplied by (1.0 when not corrected).
    ledgers
        Cohort id -> ledger (stage ``meta``) of rows not used, by reason.
    eaf_se
        Per row of ``table``: n-weighted standard deviation of the cohort EAFs
        around the mean (METAL's ``FreqSE``-like spread; NaN with < 1 EAF).
        Not a GWAS-SSF column; :func:`crosscohort.central.meta.tbl.write_tbl` prints it.
    """

    table: pl.DataFrame
    cohorts: tuple[str, ...]
    method: str
    lambda_gc: dict[str, float]
    lambda_meta: float
    gc_applied: dict[str, float]
    ledgers: dict[str, Ledger] = field(default_factory=dict)
    eaf_se: np.ndarray | None = None
    mrmega: dict | None = None

    def summary(self) -> dict:
        """JSON-ready summary: counts, λ per cohort and overall, genome-wide hits, method."""
        return summary_dict(self.method, self.cohorts, summary_counts(self.table),
                            lambda_gc=self.lambda_gc, lambda_meta=self.lambda_meta,
                            gc_applied=self.gc_applied, ledgers=self.ledgers, mrmega=self.mrmega)


def summary_counts(table: pl.DataFrame, *, nlp_fixed: np.ndarray | None = None) -> dict[str, int]:
    """The counts of :meth:`MetaResult.summary` over ``table``: sums over parts give the whole's.

    ``nlp_fixed``: the fixed-effect -log10 p of the rows when the caller has it
    (:func:`combine_part` computes it from the same z), else computed from beta/SE.
    """
    t = table
    thr = -np.log10(GENOME_WIDE)
    if nlp_fixed is None:
        z_fixed = (t.get_column("beta") / t.get_column("standard_error")).to_numpy()
        nlp_fixed = neg_log10_p_from_z(z_fixed)
    nlp_random = t.get_column("neg_log_10_p_value_random").to_numpy()
    with np.errstate(invalid="ignore"):
        counts = {"fixed": int(np.sum(nlp_fixed > thr)), "random": int(np.sum(nlp_random > thr))}
        if "z_samplesize" in t.columns:
            counts["samplesize"] = int(np.sum(t.get_column("neg_log_10_p_value").to_numpy() > thr))
        if "mrmega_chi2_association" in t.columns:
            counts["mrmega"] = int(np.sum(t.get_column("neg_log_10_p_value").to_numpy() > thr))
    return {
        "n_variants": t.height,
        "n_variants_multi_cohort": int((t.get_column("n_studies") > 1).sum()),
        "n_eaf_far": int(t.get_column(FLAG_EAF_FAR).sum()) if FLAG_EAF_FAR in t.columns else 0,
        **{f"n_genome_wide_{k}": v for k, v in counts.items()},
    }


def summary_dict(
    method: str,
    cohorts: tuple[str, ...],
    counts: dict[str, int],
    *,
    lambda_gc: dict[str, float],
    lambda_meta: float,
    gc_applied: dict[str, float],
    ledgers: dict[str, Ledger],
    mrmega: dict | None = None,
) -> dict:
    """The summary JSON of a meta-analysis from its :func:`summary_counts` (summed over parts).

    ``mrmega``: :meth:`crosscohort.central.meta.mrmega.MrMegaModel.summary` (the axes,
    distances, markers, λ_gco), written under ``"mrmega"`` when given.
    """
    out = {
        "method": method,
        "cohorts": list(cohorts),
        "n_variants": counts["n_variants"],
        "n_variants_multi_cohort": counts["n_variants_multi_cohort"],
        "lambda_gc": {c: _json_float(v) for c, v in lambda_gc.items()},
        "lambda_gc_meta": _json_float(lambda_meta),
        "gc_applied": {c: _json_float(v) for c, v in gc_applied.items()},
        "genome_wide_threshold": GENOME_WIDE,
        "n_genome_wide": counts[f"n_genome_wide_{method}"],
        "n_eaf_far": counts["n_eaf_far"],
        "ledgers": [lg.to_dict() for lg in ledgers.values()],
    }
    out.update({k: v for k, v in counts.items() if k.startswith("n_genome_wide_")})
    if mrmega is not None:
        out["mrmega"] = mrmega
    return out


def _json_float(x: float) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


#: Up to this many cohorts the direction strings come from a table of all 4^k of them.
_DIRECTION_TABLE_MAX_K = 8


@functools.lru_cache(maxsize=_DIRECTION_TABLE_MAX_K + 1)
def _direction_table(k: int) -> pl.Series:
    """Every direction string of ``k`` cohorts, at index sum(d_j 4^j) with d = 0 +, 1 -, 2 0, 3 ?."""
    chars = "+-0?"
    codes = np.arange(4**k)
    return pl.Series("direction", ["".join(chars[(c >> (2 * j)) & 3] for j in range(k))
                                   for c in codes.tolist()], dtype=pl.String)


def _direction(beta: np.ndarray) -> pl.Series:
    """One character per cohort (rows of ``beta``, (k, m)): ``+``, ``-``, ``0`` (beta 0, as METAL), ``?``.

    Up to :data:`_DIRECTION_TABLE_MAX_K` cohorts, each variant's string is
    looked up in :func:`_direction_table` by a code built in numpy (NaN
    compares false three times: ``?``); beyond, :func:`_direction_exprs`.
    """
    k, m = beta.shape
    if k == 0 or k > _DIRECTION_TABLE_MAX_K:
        return _direction_exprs(beta)
    code = np.zeros(m, dtype=np.uint32)
    with np.errstate(invalid="ignore"):
        for j in range(k):
            b = beta[j]
            # At most one of >, <, == holds (none for NaN): 0 +, 1 -, 2 0, 3 ?.
            d = 3 - (np.greater(b, 0).view(np.uint8) * np.uint8(3)
                     + np.less(b, 0).view(np.uint8) * np.uint8(2) + np.equal(b, 0).view(np.uint8))
            code |= d.astype(np.uint32) << np.uint32(2 * j)
    return _direction_table(k).gather(code)


def _direction_exprs(beta: np.ndarray) -> pl.Series:
    """:func:`_direction` with one polars expression per cohort (any number of cohorts)."""
    if beta.shape[0] == 0:
        return pl.Series("direction", [""] * beta.shape[1], dtype=pl.String)
    chars = []
    for j in range(beta.shape[0]):
        # NaN -> null: polars orders NaN above every number, so NaN > 0 would read as "+".
        b = float_column(f"_{j}", beta[j])
        chars.append(pl.when(b > 0).then(pl.lit("+")).when(b < 0).then(pl.lit("-"))
                     .when(b == 0).then(pl.lit("0")).otherwise(pl.lit("?")))
    return pl.select(pl.concat_str(chars).alias("direction")).to_series()


def _cohort_z(arrays: dict[str, np.ndarray]) -> np.ndarray:
    """Per-cohort signed z of the sample-size scheme: z of the p-value, signed by beta."""
    nlp = arrays.get("neg_log_10_p_value")
    with np.errstate(divide="ignore", invalid="ignore"):
        from_p = -np.log10(arrays["p_value"]) if "p_value" in arrays else None
    if nlp is None:
        nlp = from_p
    elif from_p is not None:
        nlp = np.where(np.isfinite(nlp), nlp, from_p)
    return z_from_neg_log10_p(nlp, arrays["beta"])


def axis_marker_eaf(stacked: Stacked) -> np.ndarray:
    """``(markers, K)`` EAFs of the stacked variants MR-MEGA's axes are computed from (rows of one part)."""
    k = len(stacked.arrays["beta"])
    eaf = stacked.arrays.get("effect_allele_frequency")
    if eaf is None or stacked.variants.height == 0:
        return np.empty((0, k))
    v = stacked.variants
    chrom = v.get_column("chromosome").cast(pl.Float64).to_numpy()  # null -> NaN
    pos = v.get_column("base_pair_location").cast(pl.Float64).to_numpy()
    return eaf[:, axis_marker_rows(chrom, pos, eaf)].T


def mrmega_chi2(stacked: Stacked, factors: dict[str, float], canonical: list[str],
                 axes: Axes) -> np.ndarray:
    """MR-MEGA association chi-squares of stacked variants (for the ``--gco`` median)."""
    fvec = np.array([factors[c] for c in canonical])[:, None]
    beta, se = stacked.arrays["beta"], stacked.arrays["standard_error"] * fvec
    return mrmega_arrays(beta.T, se.T, axes.coordinates).chi2_association


def cohort_z2(stacked: Stacked) -> list[np.ndarray]:
    """Per cohort (rows of the stack), z^2 = (beta/SE)^2 of its usable rows: what λ_GC is a median of."""
    beta, se = stacked.arrays["beta"], stacked.arrays["standard_error"]
    out = []
    for j in range(beta.shape[0]):
        zj = beta[j] / se[j]
        zj = zj[np.isfinite(zj)]
        out.append(zj * zj)
    return out


def gc_factors(
    canonical: list[str], z2: list[list[np.ndarray]], *, gc: bool
) -> tuple[dict[str, float], dict[str, float]]:
    """λ_GC of each cohort from its z^2 (in parts, e.g. one per chromosome) and its SE factor.

    median(z^2)/median(chi2_1) directly: the same λ as lambda_gc of the p-values
    (chi2 is monotone in p), without a log-tail pass per cohort. The median of
    the concatenated parts is that of the whole, whatever the split.
    """
    lambdas: dict[str, float] = {}
    factors: dict[str, float] = {}
    for j, cohort in enumerate(canonical):
        parts = z2[j]
        zz = parts[0] if len(parts) == 1 else np.concatenate(parts) if parts else np.empty(0)
        lambdas[cohort] = lam = lambda_from_z2(zz)
        factors[cohort] = gc_factor(lam) if gc else 1.0
    return lambdas, factors


@dataclass(frozen=True)
class _Part:
    """The output rows of one :func:`combine_part` call and what the summary needs of them."""

    table: pl.DataFrame
    eaf_se: np.ndarray
    nlp_main: np.ndarray  # -log10 p of p_value, for the meta-analysis λ


def combine_part(
    stacked: Stacked,
    ledgers: dict[str, Ledger],
    *,
    canonical: list[str],
    order: list[str],
    factors: dict[str, float],
    method: str,
    eaf_max_diff: float,
    mrmega: MrMegaModel | None = None,
) -> _Part:
    """Per-variant statistics and output columns of stacked cohorts (the whole input or one part).

    Every quantity is per variant except the SE factors of genomic control
    and, for ``method="mrmega"``, the axes and ``--gco`` factor (``mrmega``),
    which the caller computes over the whole input; the EAF-far counts are
    added to ``ledgers``.
    """
    arrays, present = stacked.arrays, stacked.present
    m, k = stacked.variants.height, len(canonical)
    beta, se = arrays["beta"], arrays["standard_error"]
    gc = any(f != 1.0 for f in factors.values())
    fvec = np.array([factors[c] for c in canonical])[:, None]
    se_used = se * fvec if gc else se

    res = ivw_arrays(beta, se_used)
    with np.errstate(invalid="ignore"):
        het_p = np.where(res.df > 0, p_from_chi2(res.q, np.maximum(res.df, 1)), np.nan)

    def dense(col: str) -> np.ndarray:
        return arrays[col] if col in arrays else np.full((k, m), np.nan)

    n = dense("n")
    # Absent count columns stay None: a (k, m) array of NaN per column is memory for nothing.
    cases, controls = arrays.get("n_cases"), arrays.get("n_controls")
    eaf = dense("effect_allele_frequency")
    neff = effective_n(n, cases, controls)
    # Each cohort's EAF against the others': here rather than in harmonisation, which holds
    # one cohort at a time; a reference panel's check is harmonisation's (flag_eaf_far there).
    eafs = eaf_summary(eaf, n, max_diff=eaf_max_diff)
    eaf_mean, eaf_min, eaf_max, eaf_se = eafs.mean, eafs.min, eafs.max, eafs.spread
    far_any, far_counts = eafs.far.any(axis=0), eafs.far.sum(axis=1).tolist()

    def count_sum(arr: np.ndarray, name: str) -> pl.Series:
        # Sums of counts stay integer; a variant with no reporting cohort is NA, not 0.
        has = np.isfinite(arr).any(axis=0)
        return float_column(name, np.where(has, np.nansum(arr, axis=0), np.nan)).cast(pl.Int64)


    if method == "samplesize":
        z_cohort = _cohort_z(arrays) / fvec
        ss = samplesize_arrays(z_cohort, n)
        p_main, nlp_main = p_from_z(ss.z), ss.neg_log_10_p_value
    elif method == "mrmega":
        # MR-MEGA's association test is the primary p (GLGC 2021); beta/SE stay IVW's.
        mr_cols, p_main, nlp_main = mrmega_columns(beta, se_used, mrmega)
    else:
        p_main, nlp_main = p_from_z(res.z), neg_log10_p_from_z(res.z)

    columns: dict[str, pl.Series] = {
        "beta": float_column("beta", res.beta),
        "standard_error": float_column("standard_error", res.standard_error),
        "effect_allele_frequency": float_column("effect_allele_frequency", eaf_mean),
        "p_value": float_column("p_value", p_main),
        "neg_log_10_p_value": float_column("neg_log_10_p_value", nlp_main),
        "n": count_sum(n, "n"),
        "n_studies": pl.Series("n_studies", res.n_studies.astype(np.int64)),
        "direction": _direction(beta[[canonical.index(c) for c in order]]),
        "het_q": float_column("het_q", res.q),
        "het_df": float_column("het_df", res.df).cast(pl.Int64),
        "het_p": float_column("het_p", het_p),
        "het_i2": float_column("het_i2", res.i2),
        "tau2": float_column("tau2", res.tau2),
        "beta_random": float_column("beta_random", res.beta_random),
        "standard_error_random": float_column("standard_error_random", res.standard_error_random),
        "p_value_random": float_column("p_value_random", p_from_z(res.z_random)),
        "neg_log_10_p_value_random": float_column(
            "neg_log_10_p_value_random", neg_log10_p_from_z(res.z_random)
        ),
        "eaf_min": float_column("eaf_min", eaf_min),
        "eaf_max": float_column("eaf_max", eaf_max),
        "n_effective": float_column("n_effective", np.where(
            np.isfinite(neff).any(axis=0), np.nansum(neff, axis=0), np.nan)),
    }
    if method == "samplesize":
        columns["z_samplesize"] = float_column("z_samplesize", ss.z)
    if method == "mrmega":
        for name, v in mr_cols.items():
            col = float_column(name, v)
            columns[name] = col.cast(pl.Int64) if name == "mrmega_df_residual_het" else col
    columns[FLAG_EAF_FAR] = pl.Series(FLAG_EAF_FAR, far_any)
    for j, cohort in enumerate(canonical):
        ledgers[cohort].change("eaf_far_from_other_cohorts_flagged", far_counts[j])
    if present["n_cases"]:
        columns["n_cases"] = count_sum(cases, "n_cases")
    if present["n_controls"]:
        columns["n_controls"] = count_sum(controls, "n_controls")
    if not present["n"]:
        del columns["n"]
    table = stacked.variants.with_columns(list(columns.values())).with_columns(
        variant_id(pl.col("chromosome"), pl.col("base_pair_location"),
                   pl.col("other_allele"), pl.col("effect_allele"))
    )
    # Already in chromosome, position, allele order: the packed key sorted it.
    # dict.fromkeys: the flag may also be declared in the registry.
    wanted = [c for c in dict.fromkeys((*COLUMNS, *META_COLUMNS, FLAG_EAF_FAR)) if c in table.columns]
    table = table.select(wanted)
    return _Part(table=table, eaf_se=eaf_se, nlp_main=nlp_main)


def write_meta(result: MetaResult, out: str | Path) -> tuple[Path, Path]:
    """Write the table to ``out`` and the summary to ``out.summary.json``; returns both paths."""
    out = Path(out)
    write_sumstats(result.table, out)
    summary = out.with_name(out.name + ".summary.json")
    write_json(summary, result.summary())
    return out, summary
