"""METAL-style ``.tbl`` output of a meta-analysis, for users' downstream tools.

METAL (Willer et al. 2010) writes ``METAANALYSIS1.TBL``: tab-separated, one
row per marker, alleles in lower case. :func:`write_tbl` writes that layout
from a :class:`~crosscohort.central.meta.ivw.MetaResult`, so scripts written for
METAL's output read ours unchanged.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from crosscohort.central.meta.ivw import MetaResult
from crosscohort.contract.sumstats import float_column

__all__ = ["TBL_COLUMNS", "TBL_COLUMNS_SAMPLESIZE", "format_p", "mrmega_result_columns",
           "mrmega_result_frame", "tbl_frame", "write_tbl"]

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


def mrmega_result_columns(n_axes: int) -> tuple[str, ...]:
    """MR-MEGA's ``.result`` columns with ``n_axes`` axes (its ``--pc``)."""
    return (
        "MarkerName", "Chromosome", "Position", "EA", "NEA", "EAF", "Nsample", "Ncohort",
        "Effects", *(f"{x}_{j}" for j in range(n_axes + 1) for x in ("beta", "se")),
        "chisq_association", "ndf_association", "P-value_association",
        "chisq_ancestry_het", "ndf_ancestry_het", "P-value_ancestry_het",
        "chisq_residual_het", "ndf_residual_het", "P-value_residual_het", "lnBF", "Comments",
    )


def mrmega_result_frame(table: pl.DataFrame) -> pl.DataFrame:
    """An MR-MEGA meta-analysis table in MR-MEGA's ``.result`` layout (text-ready columns).

    ``MarkerName`` is our ``variant_id``; ``EAF`` and ``Nsample`` the
    meta-analysis' (n-weighted EAF, summed n); ``Comments`` is
    ``SmallCohortCount`` where fewer than T + 3 cohorts have the variant
    (MR-MEGA's word), else empty. P-values below the double range are written
    from their -log10 (:func:`format_p`).
    """
    t = table
    n_axes = max(int(c.rsplit("_", 1)[1]) for c in t.columns if c.startswith("mrmega_beta_"))

    def p_of(nlp: pl.Expr) -> pl.Expr:
        return format_p(10.0 ** (-nlp), nlp)

    assoc = pl.col("mrmega_chi2_association")
    return t.select(
        pl.col("variant_id").alias("MarkerName"),
        pl.col("chromosome").alias("Chromosome"),
        pl.col("base_pair_location").alias("Position"),
        pl.col("effect_allele").alias("EA"),
        pl.col("other_allele").alias("NEA"),
        pl.col("effect_allele_frequency").alias("EAF"),
        (pl.col("n") if "n" in t.columns else pl.lit(None, pl.Int64)).alias("Nsample"),
        pl.col("n_studies").alias("Ncohort"),
        pl.col("direction").alias("Effects"),
        *(pl.col(f"mrmega_{x}_{j}").alias(f"{short}_{j}") for j in range(n_axes + 1)
          for x, short in (("beta", "beta"), ("standard_error", "se"))),
        assoc.alias("chisq_association"),
        pl.when(assoc.is_not_null()).then(n_axes + 1).alias("ndf_association"),
        format_p(pl.col("p_value"), pl.col("neg_log_10_p_value")).alias("P-value_association"),
        pl.col("mrmega_chi2_ancestry_het").alias("chisq_ancestry_het"),
        pl.when(assoc.is_not_null()).then(n_axes).alias("ndf_ancestry_het"),
        p_of(pl.col("mrmega_neg_log_10_p_ancestry_het")).alias("P-value_ancestry_het"),
        pl.col("mrmega_chi2_residual_het").alias("chisq_residual_het"),
        pl.col("mrmega_df_residual_het").alias("ndf_residual_het"),
        p_of(pl.col("mrmega_neg_log_10_p_residual_het")).alias("P-value_residual_het"),
        pl.col("mrmega_ln_bf").alias("lnBF"),
        pl.when(pl.col("n_studies") < n_axes + 3).then(pl.lit("SmallCohortCount"))
        .otherwise(pl.lit("")).alias("Comments"),
    )


def tbl_frame(result: MetaResult) -> pl.DataFrame:
    """The ``.tbl`` table as text-ready columns (see :func:`write_tbl`).

    An MR-MEGA meta-analysis (``mrmega_*`` columns) gets MR-MEGA's layout
    instead (:func:`mrmega_result_frame`).
    """
    t = result.table
    if "mrmega_chi2_association" in t.columns:
        return mrmega_result_frame(t)
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
