"""Leave-one-cohort-out fixed-effect estimates of chosen variants (lead variants of loci).

How much one cohort drives a signal: the fixed-effect estimate of each
variant asked for, recomputed with each cohort left out in turn, with the
stacking and value rules of the meta-analysis itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from crosscohort.central.meta.estimators import ivw_arrays
from crosscohort.central.meta.stacking import check_cohort_order, stack_tables
from crosscohort.contract.errors import InputError
from crosscohort.contract.keys import VARIANT_KEY
from crosscohort.contract.stats import neg_log10_p_from_z, p_from_z
from crosscohort.contract.sumstats import (
    float_column,
    marker_only,
    variant_id,
    write_sumstats,
)

__all__ = ["LEFT_OUT", "LeaveOneOut", "leave_one_out", "write_loo"]

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
    fixed-effect kernel :func:`ivw_arrays` runs k times on ``(k, m)`` arrays
    with one cohort's column masked.
    """
    order = check_cohort_order(tables, cohort_order)
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
    stacked, _ = stack_tables(cut, canonical, samplesize=False)
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
        res = ivw_arrays(b, se)
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
