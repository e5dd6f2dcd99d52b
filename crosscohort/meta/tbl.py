"""METAL-style ``.tbl`` output of a meta-analysis, for users' downstream tools.

METAL (Willer et al. 2010) writes ``METAANALYSIS1.TBL``: tab-separated, one
row per marker, alleles in lower case. :func:`write_tbl` writes that layout
from a :class:`~crosscohort.meta.ivw.MetaResult`, so scripts written for
METAL's output read ours unchanged.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from crosscohort.meta.ivw import MetaResult
from crosscohort.sumstats import float_column

__all__ = ["TBL_COLUMNS", "TBL_COLUMNS_SAMPLESIZE", "format_p", "tbl_frame", "write_tbl"]

#: METAL's columns with ``SCHEME STDERR``, ``AVERAGEFREQ ON``, ``MINMAXFREQ ON``, heterogeneity on.
TBL_COLUMNS: tuple[str, ...] = (
    "MarkerName", "Allele1", "Allele2", "Freq1", "FreqSE", "MinFreq", "MaxFreq",
    "Effect", "StdErr", "P-value", "Direction", "HetISq", "HetChiSq", "HetDf", "HetPVal",
)
#: The same with ``SCHEME SAMPLESIZE`` (``Weight``, ``Zscore`` instead of ``Effect``, ``StdErr``).
TBL_COLUMNS_SAMPLESIZE: tuple[str, ...] = (
    *TBL_COLUMNS[:7], "Weight", "Zscore", *TBL_COLUMNS[9:],
)


def format_p(p: pl.Expr, neg_log10_p: pl.Expr) -> pl.Expr:
    """p as text: the float where it is representable, else ``m.me-E`` from -log10 p.

    METAL prints p as ``%.4g``; p-values below the double range (|z| > 38)
    would print as 0 there, so they are written from -log10 p instead
    (|z| = 40 gives ``7.3e-349``).
    """
    ip = neg_log10_p.ceil()
    mant = (10 ** (ip - neg_log10_p))
    tiny = (mant.round(1).cast(pl.String) + pl.lit("e-") + ip.cast(pl.Int64).cast(pl.String))
    return pl.when(p > 0).then(p.cast(pl.String)).when(neg_log10_p.is_finite()).then(tiny)


def tbl_frame(result: MetaResult) -> pl.DataFrame:
    """The ``.tbl`` table as text-ready columns (see :func:`write_tbl`)."""
    t = result.table
    samplesize = "z_samplesize" in t.columns
    eaf_se = result.eaf_se if result.eaf_se is not None else np.full(t.height, np.nan)
    effect = (
        [pl.col("n").cast(pl.Float64).alias("Weight") if "n" in t.columns
         else pl.lit(None, pl.Float64).alias("Weight"),
         pl.col("z_samplesize").alias("Zscore")]
        if samplesize
        else [pl.col("beta").alias("Effect"), pl.col("standard_error").alias("StdErr")]
    )
    return t.select(
        # The marker name is our variant id (chrom:pos:other:effect): unique, unlike rsids.
        pl.col("variant_id").alias("MarkerName"),
        pl.col("effect_allele").str.to_lowercase().alias("Allele1"),
        pl.col("other_allele").str.to_lowercase().alias("Allele2"),
        pl.col("effect_allele_frequency").alias("Freq1"),
        float_column("FreqSE", eaf_se),
        pl.col("eaf_min").alias("MinFreq"),
        pl.col("eaf_max").alias("MaxFreq"),
        *effect,
        format_p(pl.col("p_value"), pl.col("neg_log_10_p_value")).alias("P-value"),
        pl.col("direction").alias("Direction"),
        # METAL prints I^2 in percent.
        (100.0 * pl.col("het_i2")).alias("HetISq"),
        pl.col("het_q").alias("HetChiSq"),
        pl.col("het_df").alias("HetDf"),
        pl.col("het_p").alias("HetPVal"),
    )


def write_tbl(result: MetaResult, path: str | Path) -> Path:
    """Write ``result`` in METAL's ``.tbl`` layout (tab-separated, lower-case alleles).

    Parameters
    ----------
    result
        A meta-analysis.
    path
        Output file; written atomically (temporary name, then rename).

    Returns
    -------
    pathlib.Path

    Notes
    -----
    Columns :data:`TBL_COLUMNS` (fixed and random runs: ``Effect``/``StdErr``
    are the fixed-effect IVW estimate, as METAL's ``SCHEME STDERR``), or
    :data:`TBL_COLUMNS_SAMPLESIZE` for ``method="samplesize"`` (``Weight`` =
    total N, ``Zscore``). ``MarkerName`` is ``chrom:pos:other:effect``;
    ``Allele1`` is the effect allele. ``FreqSE`` is the n-weighted standard
    deviation of the cohort EAFs around ``Freq1``; ``HetISq`` is in percent;
    heterogeneity is Cochran's Q of the IVW estimates in both schemes.
    Missing values are ``NA``; floats carry 17 significant digits (METAL
    prints 4-6), ``P-value`` uses mantissa-exponent text below 1e-308.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tbl_frame(result).write_csv(tmp, separator="\t", null_value="NA", float_precision=None)
    tmp.replace(path)
    return path
