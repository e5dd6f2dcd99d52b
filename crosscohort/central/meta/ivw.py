"""Inverse-variance weighted meta-analysis: fixed effects, Cochran's Q, DerSimonian-Laird.

The kernel (:func:`ivw_arrays`) works on dense ``(variants, cohorts)``
arrays with NaN for "cohort lacks this variant", so every formula is one
vectorised numpy expression. :func:`meta_analyse` does the bookkeeping
around it: stacking cohorts, value checks, genomic control, output columns.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from crosscohort.central.harmonise.strand import CHANGED as STRAND_CHANGED
from crosscohort.central.harmonise.strand import strand_flips
from crosscohort.central.meta.mrmega import (
    DEFAULT_AXES,
    Axes,
    MrMegaModel,
    axes_from_eaf,
    axis_marker_rows,
    check_axes,
    gco_lambda,
    mrmega_arrays,
    mrmega_columns,
)
from crosscohort.contract.errors import ConfigError, InputError
from crosscohort.contract.keys import (
    EAF_MAX_DIFF,
    FLAG_EAF_FAR,
    PAIR_BITS,
    POS_BITS,
    VARIANT_KEY,
    allele_pair_rank,
    check_cohort_name,
    check_eaf_max_diff,
    packed_key,
)
from crosscohort.contract.ledger import Ledger
from crosscohort.contract.stats import (
    CHI2_1_MEDIAN,
    lambda_gc,
    neg_log10_p_from_z,
    p_from_chi2,
    p_from_z,
    z_from_neg_log10_p,
)
from crosscohort.contract.sumstats import (
    COLUMNS,
    META_COLUMNS,
    float_column,
    marker_only,
    variant_id,
    write_sumstats,
)
from crosscohort.runtime.atomic import write_json

__all__ = [
    "GENOME_WIDE",
    "LEFT_OUT",
    "METHODS",
    "IVWArrays",
    "LeaveOneOut",
    "MetaResult",
    "SampleSizeArrays",
    "ivw_arrays",
    "leave_one_out",
    "meta_analyse",
    "samplesize_arrays",
    "write_loo",
    "write_meta",
]

#: Conventional genome-wide significance threshold, used in the summary.
GENOME_WIDE = 5e-8

#: Methods of :func:`meta_analyse`: the estimate the summary (and, for
#: ``samplesize``, the p-value columns) report as primary.
METHODS = ("fixed", "random", "samplesize", "mrmega")


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

    Notes
    -----
    The arithmetic runs on the transposed ``(k, m)`` layout: reductions over
    the short cohort axis of an ``(m, k)`` array are several times slower in
    numpy than adding k contiguous rows. Pass ``x.T`` of a ``(k, m)`` array
    to avoid the copy.

    References
    ----------
    DerSimonian R, Laird N (1986) Meta-analysis in clinical trials. Control Clin Trials 7:177-188.
    Higgins JPT, Thompson SG (2002) Quantifying heterogeneity in a meta-analysis. Stat Med 21:1539-58.
    """
    beta = np.asarray(beta, dtype=np.float64)
    se = np.asarray(se, dtype=np.float64)
    if beta.shape != se.shape or beta.ndim != 2:
        raise ValueError(f"beta and se must be (m, k) arrays of one shape; got {beta.shape}, {se.shape}")
    bt = np.ascontiguousarray(beta.T)
    st = np.ascontiguousarray(se.T)
    ok = np.isfinite(bt) & np.isfinite(st) & (st > 0)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        var = np.where(ok, st * st, np.inf)
        w = 1.0 / var  # 0 where not ok
        b = np.where(ok, bt, 0.0)
        k = ok.sum(axis=0).astype(np.float64)
        sw = w.sum(axis=0)
        bbar = (w * b).sum(axis=0) / sw
        sef = 1.0 / np.sqrt(sw)
        # One study: its own numbers bit for bit (w b / w and 1/sqrt(1/se^2) round off),
        # hence Q = 0 exactly rather than a rounding residue.
        single = k == 1
        if single.any():
            b_one, se_one = b.sum(axis=0), np.where(ok, st, 0.0).sum(axis=0)
            bbar[single] = b_one[single]
            sef[single] = se_one[single]
        dev = b - bbar
        q = np.where(ok, w * dev * dev, 0.0).sum(axis=0)
        del dev  # (k, m) temporaries go as soon as used: peak memory at 10M variants
        dof = k - 1.0
        i2 = np.where(q > 0, np.maximum(0.0, (q - dof) / q), 0.0)
        denom = sw - (w * w).sum(axis=0) / sw
        del w
        tau2 = np.where(denom > 0, np.maximum(0.0, (q - dof) / denom), 0.0)
        wr = 1.0 / (var + tau2)
        swr = wr.sum(axis=0)
        br = (wr * b).sum(axis=0) / swr
        del wr, var
        ser = 1.0 / np.sqrt(swr)
        if single.any():
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
class SampleSizeArrays:
    """Per-variant results of :func:`samplesize_arrays` (1-D float64 arrays of length m)."""

    z: np.ndarray
    weight: np.ndarray
    neg_log_10_p_value: np.ndarray
    n_studies: np.ndarray


def samplesize_arrays(z: np.ndarray, n: np.ndarray) -> SampleSizeArrays:
    """METAL's SAMPLESIZE scheme: ``Z = sum(sqrt(N_i) z_i) / sqrt(sum N_i)`` over ``(m, k)`` arrays.

    Parameters
    ----------
    z
        Per-cohort signed z statistics (z of the p-value, signed by beta), ``(m, k)``.
    n
        Per-cohort sample sizes, ``(m, k)``; an entry is used when z and n
        are finite and n > 0, NaN marks a missing cohort.

    Returns
    -------
    SampleSizeArrays
        ``z``; ``weight`` = sum of N used (METAL's ``Weight`` column); the
        two-sided ``-log10 p`` of Z, in log space; ``n_studies``. NaN where
        no cohort is usable.

    References
    ----------
    Willer CJ, Li Y, Abecasis GR (2010) METAL: fast and efficient meta-analysis of
    genomewide association scans. Bioinformatics 26:2190-2191 (Table 1, sample-size scheme:
    w_i = sqrt(N_i), Z = sum z_i w_i / sqrt(sum w_i^2)).
    """
    z = np.asarray(z, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    if z.shape != n.shape or z.ndim != 2:
        raise ValueError(f"z and n must be (m, k) arrays of one shape; got {z.shape}, {n.shape}")
    zt, nt = np.ascontiguousarray(z.T), np.ascontiguousarray(n.T)
    ok = np.isfinite(zt) & np.isfinite(nt) & (nt > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        nn = np.where(ok, nt, 0.0)
        weight = nn.sum(axis=0)
        zz = (np.sqrt(nn) * np.where(ok, zt, 0.0)).sum(axis=0) / np.sqrt(weight)
    k = ok.sum(axis=0).astype(np.float64)
    zz[k == 0] = np.nan
    weight = np.where(k > 0, weight, np.nan)
    return SampleSizeArrays(z=zz, weight=weight, neg_log_10_p_value=neg_log10_p_from_z(zz),
                            n_studies=k)


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
    (:func:`_combine` computes it from the same z), else computed from beta/SE.
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


_STUDY_COLUMNS = (
    "beta",
    "standard_error",
    "effect_allele_frequency",
    "n",
    "n_cases",
    "n_controls",
    "p_value",
    "neg_log_10_p_value",
    "rsid",
)
_FLOAT_COLUMNS = tuple(c for c in _STUDY_COLUMNS if c != "rsid")


def meta_input_columns(*, samplesize: bool = False) -> tuple[str, ...]:
    """The columns :func:`meta_analyse` reads from a cohort table (the others can be dropped)."""
    skip = () if samplesize else ("p_value", "neg_log_10_p_value")
    return (*VARIANT_KEY, *(c for c in _STUDY_COLUMNS if c not in skip))

#: Value rules in the order they are applied; a row failing several is counted
#: once, under the first. ``p_value`` and ``n`` apply to the sample-size scheme only.
_RULES = ("bad_value_key", "bad_value_beta", "bad_value_standard_error",
          "bad_value_p_value", "bad_value_n")

# Packed variant key (crosscohort.contract.keys): chromosome (5 bits) | position
# (32 bits) | allele-pair rank (26 bits).
_POS_BITS, _PAIR_BITS = POS_BITS, PAIR_BITS
# Rows keyed by marker name alone (METAL/GWAMA inputs without CHR/POS) take the chromosome
# code no real chromosome has (codes are 1-25) and the rank of their marker name as
# position, so one sort puts them after every positioned row, in marker-name order.
_MARKER_CHROM = 31


@dataclass(frozen=True)
class _Stacked:
    """All cohorts' usable rows as dense ``(k, m)`` arrays over the union of variants."""

    variants: pl.DataFrame  # VARIANT_KEY + rsid, sorted, one row per variant
    arrays: dict[str, np.ndarray]  # column -> (k, m) float64, NaN = cohort lacks the variant
    present: dict[str, bool]  # column -> some cohort reports a value (decides the columns)
    present_here: dict[str, bool]  # the same, over these frames only


def _cohort_rows(df: pl.DataFrame, *, cohort: str, idx: int, samplesize: bool) -> pl.DataFrame:
    """One cohort's columns, cast to their types, with its index.

    Integer chromosome and position columns keep their width, and optional
    columns the cohort lacks are left out (the concatenation fills them for
    the other cohorts' rows only): at ten million rows a cohort, every
    Int64 or null column is 80 MB.
    """
    missing = [c for c in (*VARIANT_KEY, "beta", "standard_error") if c not in df.columns]
    if missing:
        raise InputError(
            f"cohort {cohort}: missing column(s) {missing} needed for meta-analysis; "
            f"present: {df.columns}"
        )
    # Column by column, not a select: a table read in blocks holds columns of different
    # chunkings, which a select would first copy into one layout (the stacking copies
    # each chromosome's rows into one chunk anyway).
    cols = [
        df.get_column(c) if df.schema[c].is_integer() else df.get_column(c).cast(pl.Int64)
        for c in ("chromosome", "base_pair_location")
    ] + [df.get_column("other_allele").cast(pl.String), df.get_column("effect_allele").cast(pl.String)]
    # Referenced by the value rules whether present or not.
    always = ("rsid", "n", "p_value", "neg_log_10_p_value") if samplesize else ("rsid",)
    try:
        for c in _STUDY_COLUMNS:
            dtype = pl.String if c == "rsid" else pl.Float64
            if c in df.columns:
                cols.append(df.get_column(c).cast(dtype))
            elif c in always:
                cols.append(pl.repeat(None, df.height, dtype=dtype, eager=True).alias(c))
    except pl.exceptions.PolarsError as exc:
        raise InputError(
            f"cohort {cohort}: non-numeric value in a numeric column (harmonise first): "
            f"{str(exc).splitlines()[0]}"
        ) from exc
    cols.append(pl.repeat(idx, df.height, dtype=pl.Int32, eager=True).alias("_cohort"))
    return pl.DataFrame(cols)


def _stack(
    tables: dict[str, pl.DataFrame], canonical: list[str], *, samplesize: bool
) -> tuple[_Stacked, dict[str, Ledger]]:
    """Value rules, de-duplication and the variant union of all cohorts in one sort.

    Every cohort's rows are concatenated (one chunk per column), checked (reasons
    counted per cohort), keyed by one packed int64 per variant (chromosome,
    position, rank of the allele pair in byte order) and arg-sorted once,
    stably: the sort order is the output order, duplicates are neighbours and
    variant indices a running count. Only the int64 keys move; the value
    columns are scattered straight from input order into the dense arrays.
    """
    frames = [_cohort_rows(tables[c], cohort=c, idx=i, samplesize=samplesize)
              for i, c in enumerate(canonical)]
    return _stack_frames(frames, [tables[c].height for c in canonical], canonical,
                         samplesize=samplesize)


def _strand_across_cohorts(long: pl.DataFrame, key: np.ndarray, order: np.ndarray,
                           cohort_idx: np.ndarray, k: int):
    """Non-palindromic SNPs reported on both strands made one variant (harmonise/strand.py).

    Only sites holding more than one allele pair (neighbours in the sorted keys
    with one site and two keys) are looked at. Returns ``long``, ``key`` and
    ``order`` (recomputed when a row was complemented) and the rows complemented
    per cohort.
    """
    flipped = np.zeros(k, dtype=np.int64)
    ks = key[order]
    site = ks >> _PAIR_BITS
    multi = (site[1:] == site[:-1]) & (ks[1:] != ks[:-1])
    if not multi.any():
        return long, key, order, flipped
    sites = np.unique(site[1:][multi])
    lo, hi = np.searchsorted(site, sites, "left"), np.searchsorted(site, sites, "right")
    sel = np.concatenate([np.arange(a, b) for a, b in zip(lo, hi, strict=True)])
    rows = order[sel]
    flip, new_o, new_e, swapped = strand_flips(
        long.get_column("other_allele").gather(rows), long.get_column("effect_allele").gather(rows),
        site[sel])
    if flip.size == 0:
        return long, key, order, flipped
    at = rows[flip]
    cols = {"other_allele": long.get_column("other_allele").scatter(at, new_o),
            "effect_allele": long.get_column("effect_allele").scatter(at, new_e)}
    long = long.with_columns(**cols)
    neg = at[swapped]
    if neg.size:
        mask = np.zeros(long.height, dtype=bool)
        mask[neg] = True
        m = pl.Series("_neg", mask)
        long = long.with_columns(
            pl.when(m).then(-pl.col("beta")).otherwise(pl.col("beta")).alias("beta"),
            *[pl.when(m).then(1.0 - pl.col(c)).otherwise(pl.col(c)).alias(c)
              for c in ("effect_allele_frequency",) if c in long.columns])
    flipped += np.bincount(cohort_idx[at], minlength=k)
    rank = allele_pair_rank(long.get_column("other_allele"), long.get_column("effect_allele"))
    if rank is None:
        raise InputError(f"more than {2**_PAIR_BITS} distinct allele pairs; cannot key variants")
    key = ((key >> _PAIR_BITS) << _PAIR_BITS) | rank
    return long, key, np.argsort(key, kind="stable"), flipped


def _stack_frames(
    frames: list[pl.DataFrame],
    n_in: list[int],
    canonical: list[str],
    *,
    samplesize: bool,
    present: dict[str, bool] | None = None,
) -> tuple[_Stacked, dict[str, Ledger]]:
    """:func:`_stack` of frames already cut by :func:`_cohort_rows` (one per cohort, in order).

    ``n_in`` are the cohorts' row counts for the ledgers. ``present`` (column ->
    some cohort reports it, over the whole input) fixes which columns the
    result carries, so that every chromosome of a per-chromosome run gets the
    columns the whole-table run would; by default it is read off ``frames``.
    :attr:`_Stacked.present_here` is always what ``frames`` themselves hold.
    """
    # Integer key columns of different widths across cohorts: one common width for the concat.
    for c in ("chromosome", "base_pair_location"):
        widths = {f.schema[c] for f in frames}
        if len(widths) > 1:
            frames = [f.with_columns(pl.col(c).cast(pl.Int64)) for f in frames]
    # One chunk per column: the gathers and to_numpy below then neither walk chunks nor copy
    # (a copy of one chromosome here is cheaper than their chunked versions: 3 x 2M, -0.15 s).
    long = pl.concat(frames, how="diagonal", rechunk=True)
    del frames
    present_here = {c: c in long.columns and bool(long.get_column(c).null_count() < long.height)
                    for c in _STUDY_COLUMNS}
    if present is None:
        present = present_here

    pos, chrom = pl.col("base_pair_location"), pl.col("chromosome")
    se = pl.col("standard_error")
    nlp = _neglog10p_expr()
    positioned_ok = chrom.is_between(0, _MARKER_CHROM - 1) & pos.is_between(0, 2**_POS_BITS - 1)
    # The rules in order (1-5, as _RULES); a row failing several counts under the first.
    rules = [
        pl.col("other_allele").is_not_null() & pl.col("effect_allele").is_not_null()
        & (marker_only() | positioned_ok).fill_null(False),
        pl.col("beta").is_finite().fill_null(False),
        ((se > 0) & se.is_finite()).fill_null(False),
    ]
    if samplesize:
        rules += [(nlp.is_finite() & (nlp >= 0)).fill_null(False),
                  ((pl.col("n") > 0) & pl.col("n").is_finite()).fill_null(False)]
    cohort_idx = long.get_column("_cohort").to_numpy().astype(np.int64)
    k = len(canonical)
    width = len(_RULES) + 1
    # Usually every row passes: one reduction says so, without the per-row reason chain.
    if long.select(pl.all_horizontal(rules).all()).item():
        removed = np.zeros((k, width), dtype=np.int64)
        removed[:, 0] = np.bincount(cohort_idx, minlength=k)
    else:
        reason = pl.when(~rules[0]).then(1)
        for code, rule in enumerate(rules[1:], start=2):
            reason = reason.when(~rule).then(code)
        bad = long.select(reason.otherwise(0).cast(pl.Int8)).to_series()
        # One bincount over (cohort, rule) cells: np.add.at is ~10x slower at 10^7 rows.
        removed = np.bincount(cohort_idx * width + bad.to_numpy().astype(np.int64),
                              minlength=k * width).reshape(k, width)
        if removed[:, 1:].any():
            long = long.filter(bad == 0)
            cohort_idx = long.get_column("_cohort").to_numpy().astype(np.int64)

    chrom_np = long.get_column("chromosome").fill_null(_MARKER_CHROM).to_numpy().astype(np.int64)
    pos_np = long.get_column("base_pair_location").fill_null(0).to_numpy().astype(np.int64)
    mo = chrom_np == _MARKER_CHROM
    if mo.any():
        names = long.get_column("rsid").filter(pl.Series(mo))
        levels = names.unique().sort()
        if levels.len() >= 2**_POS_BITS:
            raise InputError(f"more than {2**_POS_BITS} distinct marker names; cannot key variants")
        pos_np[mo] = names.cast(pl.Enum(levels.to_list())).to_physical().to_numpy()
    rank = allele_pair_rank(long.get_column("other_allele"), long.get_column("effect_allele"))
    if rank is None:
        raise InputError(f"more than {2**_PAIR_BITS} distinct allele pairs; cannot key variants")
    key = packed_key(chrom_np, pos_np, rank)
    del rank
    del chrom_np, pos_np, mo
    # Stable: within a key, rows stay in cohort order, then file order.
    order = np.argsort(key, kind="stable")
    long, key, order, flipped = _strand_across_cohorts(long, key, order, cohort_idx, k)
    ks, cs = key[order], cohort_idx[order]
    n_dup = np.zeros(k, dtype=np.int64)
    if ks.size > 1:
        dup = np.zeros(ks.size, dtype=bool)
        dup[1:] = (ks[1:] == ks[:-1]) & (cs[1:] == cs[:-1])
        if dup.any():
            # Rare: resolve only the groups with duplicates. Same rule as harmonisation:
            # largest n, then smallest SE, then first in file.
            in_group = dup.copy()
            in_group[:-1] |= dup[1:]
            rows = order[in_group]
            # Within a cohort, the row's place in ``long`` is its place in the file.
            by = ["_key", "_cohort", *(["n"] if "n" in long.columns else []), "standard_error",
                  "_row"]
            sub = long[rows].with_columns(pl.Series("_key", ks[in_group]),
                                          pl.Series("_i", np.flatnonzero(in_group)),
                                          pl.Series("_row", rows)).sort(
                by, descending=[c == "n" for c in by], nulls_last=True)
            loser = ((sub.get_column("_key") == sub.get_column("_key").shift(1))
                     & (sub.get_column("_cohort") == sub.get_column("_cohort").shift(1))
                     ).fill_null(False)
            drop = sub.filter(loser)
            np.add.at(n_dup, drop.get_column("_cohort").to_numpy().astype(np.int64), 1)
            keep = np.ones(ks.size, dtype=bool)
            keep[drop.get_column("_i").to_numpy()] = False
            order, ks, cs = order[keep], ks[keep], cs[keep]

    ledgers: dict[str, Ledger] = {}
    for i, cohort in enumerate(canonical):
        lg = Ledger(stage="meta", cohort=cohort, n_in=int(n_in[i]))
        for code, rule in enumerate(_RULES, start=1):
            if code <= 3 or samplesize:
                lg.remove(rule, int(removed[i, code]))
        lg.remove("duplicate", int(n_dup[i]))
        lg.change(STRAND_CHANGED, int(flipped[i]))
        lg.n_kept = int(removed[i, 0] - n_dup[i])
        ledgers[cohort] = lg.check()

    first = np.ones(ks.size, dtype=bool)
    first[1:] = ks[1:] != ks[:-1]
    vi_sorted = np.cumsum(first) - 1
    m = int(first.sum())
    vi = np.full(long.height, -1, dtype=np.int64)  # variant of each input row; -1 = duplicate
    vi[order] = vi_sorted
    first_rows = order[first]
    variants = long.select(*VARIANT_KEY)[first_rows].with_columns(  # 4 columns, not all
        pl.col("chromosome").cast(pl.Int64), pl.col("base_pair_location").cast(pl.Int64))
    wanted = [c for c in _FLOAT_COLUMNS if present[c] or c in ("beta", "standard_error")]
    if not samplesize:
        wanted = [c for c in wanted if c not in ("p_value", "neg_log_10_p_value")]
    # Each cohort's rows are one contiguous block of ``long`` (concatenation order),
    # so a 1-D scatter per cohort fills its row of the (k, m) arrays.
    bounds = np.searchsorted(cohort_idx, np.arange(k + 1))
    blocks = []
    for j in range(k):
        vj = vi[bounds[j]:bounds[j + 1]]
        keep = vj >= 0
        blocks.append((vj, None if keep.all() else keep))
    arrays: dict[str, np.ndarray] = {}
    for c in wanted:
        arr = np.full((k, m), np.nan)
        if c not in long.columns:  # present elsewhere in the input, not in this part
            arrays[c] = arr
            continue
        vals = long.get_column(c).to_numpy()  # float64, null -> NaN
        for j, (vj, keep) in enumerate(blocks):
            vals_j = vals[bounds[j]:bounds[j + 1]]
            if keep is None:
                arr[j, vj] = vals_j
            else:
                arr[j, vj[keep]] = vals_j[keep]
        arrays[c] = arr
    if present["rsid"] and m:
        # The first cohort (in sorted-id order) naming the variant supplies its rsid.
        named = long.get_column("rsid").is_not_null().to_numpy()[order]
        rows, vs = (order, vi_sorted) if named.all() else (order[named], vi_sorted[named])
        firsts = np.ones(vs.size, dtype=bool)
        firsts[1:] = vs[1:] != vs[:-1]
        names = long.get_column("rsid").gather(rows[firsts])
        if names.len() == m:  # every variant named (vs[firsts] is 0..m-1): no scatter
            rsid = names.alias("rsid")
        else:
            rsid = pl.repeat(None, m, dtype=pl.String, eager=True).alias("rsid").scatter(
                vs[firsts], names)
        variants = variants.with_columns(rsid)
    return _Stacked(variants=variants, arrays=arrays, present=present,
                    present_here=present_here), ledgers


def _neglog10p_expr() -> pl.Expr:
    """-log10 p of a cohort row: its ``neg_log_10_p_value``, else -log10 of ``p_value`` in (0, 1]."""
    p = pl.col("p_value")
    from_p = pl.when((p > 0) & (p <= 1)).then(-p.log10())
    return pl.when(pl.col("neg_log_10_p_value").is_finite()).then(
        pl.col("neg_log_10_p_value")).otherwise(from_p)


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


def _check_order(tables: dict[str, pl.DataFrame], cohort_order: list[str] | None) -> list[str]:
    if not tables:
        raise InputError("meta-analysis needs at least one cohort table; got none")
    order = list(cohort_order) if cohort_order is not None else list(tables)
    if sorted(order) != sorted(tables) or len(set(order)) != len(order):
        raise ConfigError(
            f"--cohort-order must list each cohort exactly once; got {order}, cohorts are {list(tables)}"
        )
    for c in order:
        check_cohort_name(c)
    return order


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


def meta_analyse(
    tables: dict[str, pl.DataFrame],
    *,
    method: str = "fixed",
    gc: bool = False,
    cohort_order: list[str] | None = None,
    eaf_max_diff: float = EAF_MAX_DIFF,
    pcs: int = DEFAULT_AXES,
    gco: bool = False,
) -> MetaResult:
    """Fixed-effect, random-effects, sample-size and MR-MEGA meta-analysis of harmonised summary statistics.

    Parameters
    ----------
    tables
        Cohort id -> harmonised GWAS-SSF frame of one trait. Variants are
        matched on ``chromosome, base_pair_location, other_allele,
        effect_allele`` (harmonisation makes the alleles agree).
    method
        ``fixed``, ``random`` or ``samplesize``: which estimate the summary
        reports as primary. ``beta``/``standard_error`` are always the
        fixed-effect estimate and the ``*_random`` columns always filled.
        ``p_value``/``neg_log_10_p_value`` are the fixed-effect test's, except
        with ``samplesize``, where they are the sample-size Z test's
        (``z_samplesize``), as METAL's ``SCHEME SAMPLESIZE`` reports.
        ``mrmega`` adds MR-MEGA's meta-regression on ``pcs`` axes of genetic
        variation (:mod:`crosscohort.central.meta.mrmega`; ``mrmega_*`` columns) and
        puts its association test's p in ``p_value``/``neg_log_10_p_value``.
    gc
        Genomic control of the inputs, as METAL's ``GENOMICCONTROL ON``:
        each cohort with λ > 1 has its SEs multiplied by sqrt(λ) (and, in the
        sample-size scheme, its z divided by sqrt(λ)) before combining.
    cohort_order
        Order of the direction string (default: the order of ``tables``);
        must name every cohort once.
    eaf_max_diff
        A cohort's EAF is *far* when it differs from the other cohorts' EAF at
        the variant (their mean with the weights of ``effect_allele_frequency``
        below, i.e. n-weighted when every EAF has its n) by more than this;
        :data:`~crosscohort.contract.keys.FLAG_EAF_FAR` marks variants with
        a far cohort (kept), and each cohort's ledger counts its far rows as
        ``changed.eaf_far_from_other_cohorts_flagged``.
    pcs
        ``mrmega`` only: number T of axes of genetic variation (MR-MEGA
        ``--pc``); needs at least T + 3 cohorts.
    gco
        ``mrmega`` only: genomic control of the association chi-squares on
        output (MR-MEGA ``--gco``, :func:`crosscohort.central.meta.mrmega.gco_lambda`).

    Returns
    -------
    MetaResult

    Raises
    ------
    ConfigError
        On an unknown method or a ``cohort_order`` not naming every cohort once.
    InputError
        When a table lacks a key, beta or SE column or holds text in a numeric one.

    Notes
    -----
    Per variant: fixed-effect inverse-variance weighted beta, SE, p (from z,
    with -log10 p in log space so |z| = 40 gives 349.1, not infinity);
    Cochran's Q, ``het_df``, ``het_p`` (chi2 survival; NA when df = 0),
    ``het_i2``; DerSimonian-Laird ``tau2`` and random effects (see
    :func:`ivw_arrays`). Sample-size scheme (:func:`samplesize_arrays`):
    per cohort ``z_i = sign(beta_i) * Phi^-1(1 - p_i/2)`` from
    ``neg_log_10_p_value`` (else ``p_value``), weights ``sqrt(n_i)``.
    ``n`` = sum of n; ``n_cases``/``n_controls``
    summed over the cohorts reporting them; ``n_effective`` = sum of
    4/(1/cases + 1/controls) where a cohort reports both, else its n.
    ``effect_allele_frequency`` = n-weighted mean EAF when every cohort with
    an EAF for the variant reports n, else the plain mean; ``eaf_min``,
    ``eaf_max``. λ_GC = median(z²)/0.4549364 (chi-square 1-df median), via
    :func:`crosscohort.contract.stats.lambda_gc`.

    Rows with neither chromosome nor position but a marker name (``rsid``),
    as METAL and GWAMA key them, are matched on (rsid, other allele, effect
    allele) and placed after every positioned variant, in marker-name order
    (null ``variant_id``); they never match a positioned row.

    Rows left out, counted per cohort in :attr:`MetaResult.ledgers` (first
    rule broken): ``bad_value_key`` (null allele, or null chromosome or
    position without a marker name),
    ``bad_value_beta`` (NA/NaN/inf beta: never read as 0),
    ``bad_value_standard_error`` (SE NA, <= 0 or inf); with ``samplesize``
    also ``bad_value_p_value`` (no finite -log10 p and no p in (0, 1]) and
    ``bad_value_n`` (n NA or <= 0); ``duplicate`` (same variant twice in a
    cohort: largest n, then smallest SE, then first in file kept). A cohort
    left with no rows, or sharing no variant with the others, contributes
    ``?`` to the direction string and nothing else.
    """
    if method not in METHODS:
        raise ConfigError(f"meta-analysis method must be one of {METHODS}; got {method!r}")
    check_eaf_max_diff(eaf_max_diff)
    order = _check_order(tables, cohort_order)
    # Arithmetic runs over cohorts in sorted-id order whatever the requested order,
    # so reordering cohorts changes the direction string and nothing else, bit for bit.
    canonical = sorted(order)
    if method == "mrmega":
        check_axes(len(canonical), pcs)
    stacked, ledgers = _stack(tables, canonical, samplesize=method == "samplesize")
    lambdas, factors = _gc_factors(canonical, [[z2] for z2 in _cohort_z2(stacked)], gc=gc)
    model = None
    if method == "mrmega":
        eaf = stacked.arrays.get("effect_allele_frequency")
        none = [c for j, c in enumerate(canonical) if eaf is None or not np.isfinite(eaf[j]).any()]
        if none:
            raise InputError("MR-MEGA's axes of genetic variation need every cohort's "
                             f"effect_allele_frequency; cohort(s) {none} report none")
        axes = axes_from_eaf(_axis_marker_eaf(stacked), pcs)
        lam = gco_lambda(_mrmega_chi2(stacked, factors, canonical, axes), pcs) if gco else None
        model = MrMegaModel(axes=axes, lambda_gco=lam)
    part = _combine(stacked, ledgers, canonical=canonical, order=order, factors=factors,
                    method=method, eaf_max_diff=eaf_max_diff, mrmega=model)
    lam_meta = lambda_gc(part.nlp_main) if part.table.height else float("nan")
    return MetaResult(
        table=part.table,
        cohorts=tuple(order),
        method=method,
        lambda_gc={c: lambdas[c] for c in order},
        lambda_meta=lam_meta,
        gc_applied={c: factors[c] for c in order},
        ledgers={c: ledgers[c] for c in order},
        eaf_se=part.eaf_se,
        mrmega=None if model is None else model.summary(canonical),
    )


def _axis_marker_eaf(stacked: _Stacked) -> np.ndarray:
    """``(markers, K)`` EAFs of the stacked variants MR-MEGA's axes are computed from (rows of one part)."""
    k = len(stacked.arrays["beta"])
    eaf = stacked.arrays.get("effect_allele_frequency")
    if eaf is None or stacked.variants.height == 0:
        return np.empty((0, k))
    v = stacked.variants
    chrom = v.get_column("chromosome").cast(pl.Float64).to_numpy()  # null -> NaN
    pos = v.get_column("base_pair_location").cast(pl.Float64).to_numpy()
    return eaf[:, axis_marker_rows(chrom, pos, eaf)].T


def _mrmega_chi2(stacked: _Stacked, factors: dict[str, float], canonical: list[str],
                 axes: Axes) -> np.ndarray:
    """MR-MEGA association chi-squares of stacked variants (for the ``--gco`` median)."""
    fvec = np.array([factors[c] for c in canonical])[:, None]
    beta, se = stacked.arrays["beta"], stacked.arrays["standard_error"] * fvec
    return mrmega_arrays(beta.T, se.T, axes.coordinates).chi2_association


def _cohort_z2(stacked: _Stacked) -> list[np.ndarray]:
    """Per cohort (rows of the stack), z^2 = (beta/SE)^2 of its usable rows: what λ_GC is a median of."""
    beta, se = stacked.arrays["beta"], stacked.arrays["standard_error"]
    out = []
    for j in range(beta.shape[0]):
        zj = beta[j] / se[j]
        zj = zj[np.isfinite(zj)]
        out.append(zj * zj)
    return out


def _gc_factors(
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
        lam = float(np.median(zz) / CHI2_1_MEDIAN) if zz.size else float("nan")
        lambdas[cohort] = lam
        factors[cohort] = float(np.sqrt(lam)) if gc and np.isfinite(lam) and lam > 1 else 1.0
    return lambdas, factors


@dataclass(frozen=True)
class _Part:
    """The output rows of one :func:`_combine` call and what the summary needs of them."""

    table: pl.DataFrame
    eaf_se: np.ndarray
    nlp_main: np.ndarray  # -log10 p of p_value, for the meta-analysis λ


def _combine(
    stacked: _Stacked,
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

    res = ivw_arrays(beta.T, se_used.T)
    with np.errstate(invalid="ignore"):
        het_p = np.where(res.df > 0, p_from_chi2(res.q, np.maximum(res.df, 1)), np.nan)

    def dense(col: str) -> np.ndarray:
        return arrays[col] if col in arrays else np.full((k, m), np.nan)

    n = dense("n")
    # Absent count columns stay None: a (k, m) array of NaN per column is memory for nothing.
    cases, controls = arrays.get("n_cases"), arrays.get("n_controls")
    eaf = dense("effect_allele_frequency")
    with np.errstate(invalid="ignore", divide="ignore"):
        if cases is not None and controls is not None:
            neff_binary = 4.0 / (1.0 / cases + 1.0 / controls)
            neff = np.where(np.isfinite(neff_binary), neff_binary, n)
        else:
            neff = n
        has_eaf = np.isfinite(eaf)
        weighted = has_eaf & np.isfinite(n)
        all_weighted = (has_eaf <= weighted).all(axis=0)  # every EAF has its n
        wn = np.where(weighted, n, 0.0)
        eaf_w = np.where(weighted, eaf * n, 0.0).sum(axis=0) / wn.sum(axis=0)
        n_eaf = has_eaf.sum(axis=0)
        eaf_u = np.where(has_eaf, eaf, 0.0).sum(axis=0) / n_eaf
        eaf_mean = np.where(all_weighted, eaf_w, eaf_u)
        any_eaf = n_eaf > 0
        eaf_min = np.where(any_eaf, np.min(np.where(has_eaf, eaf, np.inf), axis=0), np.nan)
        eaf_max = np.where(any_eaf, np.max(np.where(has_eaf, eaf, -np.inf), axis=0), np.nan)
        # Spread of cohort EAFs around the mean, with the mean's weights.
        wt = np.where(all_weighted, wn, has_eaf.astype(np.float64))
        dev = np.where(has_eaf, eaf - eaf_mean, 0.0)
        eaf_se = np.sqrt((wt * dev * dev).sum(axis=0) / wt.sum(axis=0))
        del dev
        # Each cohort against the others (leave-one-out mean with the same weights): here
        # rather than in harmonisation, which holds one cohort at a time; a reference
        # panel's check is harmonisation's (flag_eaf_far there).
        eaf0 = np.where(has_eaf, eaf, 0.0)
        sum_w, sum_we = wt.sum(axis=0), (wt * eaf0).sum(axis=0)
        far_any = np.zeros(m, dtype=bool)
        far_counts = []
        for j in range(k):
            w_other = sum_w - wt[j]
            far = has_eaf[j] & (w_other > 0)
            far &= np.abs(eaf0[j] - (sum_we - wt[j] * eaf0[j]) / np.where(far, w_other, 1.0)) \
                > eaf_max_diff
            far_counts.append(int(far.sum()))
            far_any |= far
        del wt, has_eaf, weighted, wn, eaf0

    def count_sum(arr: np.ndarray, name: str) -> pl.Series:
        # Sums of counts stay integer; a variant with no reporting cohort is NA, not 0.
        has = np.isfinite(arr).any(axis=0)
        return float_column(name, np.where(has, np.nansum(arr, axis=0), np.nan)).cast(pl.Int64)


    if method == "samplesize":
        z_cohort = _cohort_z(arrays) / fvec
        ss = samplesize_arrays(z_cohort.T, n.T)
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


#: Name of the left-out cohort column of :func:`leave_one_out`'s table.
LEFT_OUT = "left_out_cohort"
#: How a marker-name row (no chromosome, no position) is matched: name and alleles.
_MARKER_KEY = ("rsid", "other_allele", "effect_allele")


@dataclass(frozen=True)
class LeaveOneOut:
    """Leave-one-cohort-out fixed-effect estimates of chosen variants.

    Attributes
    ----------
    table
        One row per variant and left-out cohort: ``chromosome,
        base_pair_location, other_allele, effect_allele, variant_id``,
        :data:`LEFT_OUT`, ``n_studies`` (cohorts remaining with the variant),
        ``beta``, ``standard_error``, ``p_value``, ``neg_log_10_p_value``
        (NA when no other cohort has the variant). Variants in the order
        given, cohorts in ``cohorts`` order.
    cohorts
        Cohort ids, in the order rows are written.
    """

    table: pl.DataFrame
    cohorts: tuple[str, ...]


def leave_one_out(
    tables: dict[str, pl.DataFrame],
    variants: pl.DataFrame,
    *,
    cohort_order: list[str] | None = None,
    se_factors: dict[str, float] | None = None,
) -> LeaveOneOut:
    """Fixed-effect IVW estimate of each variant with each cohort left out in turn.

    Parameters
    ----------
    tables
        Cohort id -> harmonised GWAS-SSF frame, as for :func:`meta_analyse`
        (the same value rules and duplicate rule apply).
    variants
        Variants to report (e.g. lead variants of
        :func:`crosscohort.central.loci.distance_loci`), with ``chromosome,
        base_pair_location, other_allele, effect_allele`` and optionally
        ``rsid``: a row without chromosome and position is then a marker-name
        variant (METAL/GWAMA inputs), matched on ``rsid`` and alleles as
        :func:`meta_analyse` matches it.
    cohort_order
        Order of the rows per variant (default: order of ``tables``).
    se_factors
        Cohort id -> SE multiplier (``MetaResult.gc_applied`` to match a
        genomic-controlled meta-analysis); default 1.

    Returns
    -------
    LeaveOneOut

    Notes
    -----
    The table carries ``rsid`` when ``variants`` does (the only name a
    marker-name variant has; its ``variant_id`` is NA, as in the
    meta-analysis). The tables are first cut to the requested variants (a
    semi-join), so the cost is that of one pass over the inputs, whatever their size; then the
    fixed-effect kernel :func:`ivw_arrays` runs k times on ``(m, k)`` arrays
    with one cohort's column masked.
    """
    order = _check_order(tables, cohort_order)
    missing = [c for c in VARIANT_KEY if c not in variants.columns]
    if missing:
        raise InputError(f"leave_one_out: variants lack column(s) {missing}")
    named = "rsid" in variants.columns
    key = variants.select(
        pl.col("chromosome").cast(pl.Int64), pl.col("base_pair_location").cast(pl.Int64),
        pl.col("other_allele").cast(pl.String), pl.col("effect_allele").cast(pl.String),
        (pl.col("rsid") if named else pl.lit(None)).cast(pl.String).alias("rsid"),
    ).unique(maintain_order=True)
    # Marker-name rows (no chromosome, no position: METAL/GWAMA inputs) are matched as
    # meta_analyse matches them, on marker name and alleles; positioned ones on the key.
    markers = key.filter(marker_only()).select(_MARKER_KEY)
    canonical = sorted(order)
    cut = {}
    for c in canonical:
        t = tables[c]
        if all(col in t.columns for col in VARIANT_KEY):
            try:
                t = t.with_columns(pl.col("chromosome").cast(pl.Int64),
                                   pl.col("base_pair_location").cast(pl.Int64))
            except pl.exceptions.PolarsError as exc:
                raise InputError(f"cohort {c}: non-numeric chromosome or position") from exc
            placed = t.join(key.select(VARIANT_KEY), on=list(VARIANT_KEY), how="semi")
            if markers.height and "rsid" in t.columns:
                by_name = t.filter(marker_only()).with_columns(pl.col("rsid").cast(pl.String)).join(
                    markers, on=list(_MARKER_KEY), how="semi")
                placed = pl.concat([placed, by_name.cast(placed.schema)])
            t = placed
        cut[c] = t
    stacked, _ = _stack(cut, canonical, samplesize=False)
    factors = np.array([(se_factors or {}).get(c, 1.0) for c in canonical])[:, None]
    beta, se = stacked.arrays["beta"], stacked.arrays["standard_error"] * factors
    # Back to the caller's variant order; variants no cohort has get NA rows.
    got_variants = stacked.variants.with_row_index("_i")
    if "rsid" not in got_variants.columns:
        got_variants = got_variants.with_columns(pl.lit(None, pl.String).alias("rsid"))
    at_key = key.join(got_variants.select(*VARIANT_KEY, "_i"), on=list(VARIANT_KEY), how="left",
                      maintain_order="left").get_column("_i")
    at_name = key.join(got_variants.filter(marker_only()).select(*_MARKER_KEY, "_i"),
                       on=list(_MARKER_KEY), how="left", maintain_order="left").get_column("_i")
    is_marker = key.select(marker_only()).to_series()
    idx = pl.select(pl.when(is_marker).then(at_name).otherwise(at_key)).to_series()
    idx = idx.fill_null(-1).to_numpy().astype(np.int64)
    if not named:
        key = key.drop("rsid")
    blocks = []
    for c in order:
        j = canonical.index(c)
        b = beta.copy()
        b[j] = np.nan
        res = ivw_arrays(b.T, se.T)
        got = idx >= 0
        pick = np.where(got, idx, 0)

        def col(arr: np.ndarray, got=got, pick=pick) -> np.ndarray:
            return np.where(got, arr[pick] if arr.size else np.nan, np.nan)

        z = col(res.z)
        blocks.append(key.with_columns(
            pl.lit(c).alias(LEFT_OUT),
            pl.Series("n_studies", np.where(got, res.n_studies[pick] if res.n_studies.size else 0,
                                            0).astype(np.int64)),
            float_column("beta", col(res.beta)),
            float_column("standard_error", col(res.standard_error)),
            float_column("p_value", p_from_z(z)),
            float_column("neg_log_10_p_value", neg_log10_p_from_z(z)),
        ).with_row_index("_v"))
    table = (
        pl.concat(blocks).sort("_v", maintain_order=True).drop("_v")
        .with_columns(variant_id(pl.col("chromosome"), pl.col("base_pair_location"),
                                 pl.col("other_allele"), pl.col("effect_allele")))
    )
    first = [*VARIANT_KEY, "variant_id", *(["rsid"] if named else []), LEFT_OUT]
    return LeaveOneOut(table=table.select(first + [c for c in table.columns if c not in first]),
                       cohorts=tuple(order))


def write_loo(loo: LeaveOneOut, out: str | Path) -> Path:
    """Write a :class:`LeaveOneOut` table as tab-separated text (``NA`` for missing), atomically."""
    return write_sumstats(loo.table, out)


def write_meta(result: MetaResult, out: str | Path) -> tuple[Path, Path]:
    """Write the table to ``out`` and the summary to ``out.summary.json``; returns both paths."""
    out = Path(out)
    write_sumstats(result.table, out)
    summary = out.with_name(out.name + ".summary.json")
    write_json(summary, result.summary())
    return out, summary
