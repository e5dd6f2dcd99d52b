"""Meta-analysis versus pooled analysis: how far federated results track pooled ones.

Both arms are GWAS-SSF tables of one trait. The comparison joins them on
the variant, aligns the pooled alleles to the meta-analysis's, and reports
effect agreement, significance concordance, locus concordance and λ_GC.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import polars as pl

from crosscohort.errors import ConfigError, InputError
from crosscohort.harmonise.align import normalise_chromosomes
from crosscohort.loci import distance_loci, neglog10p
from crosscohort.stats import lambda_gc
from crosscohort.sumstats import write_sumstats

__all__ = ["Agreement", "Comparison", "compare_arms", "write_comparison"]

_KEY = ("chromosome", "base_pair_location", "other_allele", "effect_allele")
#: Per-arm columns carried into the per-variant table (suffixed ``_meta`` / ``_pooled``).
_ARM_COLUMNS = ("beta", "standard_error", "p_value", "neg_log_10_p_value")
ARMS = ("meta", "pooled")


@dataclass(frozen=True)
class Agreement:
    """Agreement of meta and pooled effects over one set of variants.

    ``slope`` is the least-squares slope (with intercept) of β_meta
    regressed on β_pooled; 1 means the meta-analysis reproduces pooled
    effects on average. NaN when fewer than 2 variants or no spread.
    """

    n: int
    pearson_r: float
    slope: float
    intercept: float


@dataclass(frozen=True)
class Comparison:
    """Everything :func:`compare_arms` measures; :meth:`to_dict` is the JSON written.

    ``variants`` holds one row per shared variant significant in either arm,
    with each arm's beta/SE/p and ``class`` (``both``, ``meta_only``, ``pooled_only``).
    """

    threshold: float
    window_kb: float
    n_meta: int
    n_pooled: int
    n_shared: int
    n_pooled_swapped: int
    n_allele_mismatch: int
    all_shared: Agreement
    significant_either: Agreement
    se_ratio_median: float
    n_sig_meta_all: int
    n_sig_pooled_all: int
    n_sig_meta: int
    n_sig_pooled: int
    n_sig_both: int
    n_sig_meta_only: int
    n_sig_pooled_only: int
    n_loci_meta: int
    n_loci_pooled: int
    n_loci_meta_shared: int
    n_loci_pooled_shared: int
    lambda_gc_meta: float
    lambda_gc_pooled: float
    loci_meta: pl.DataFrame
    loci_pooled: pl.DataFrame
    variants: pl.DataFrame

    def to_dict(self) -> dict:
        """JSON-ready metrics (NaN as null) with each arm's loci as lists of records."""
        out = {}
        for key, value in asdict(self).items():
            if isinstance(value, pl.DataFrame):
                continue
            out[key] = _clean(value)
        for arm, loci in (("meta", self.loci_meta), ("pooled", self.loci_pooled)):
            cols = [c for c in ("locus", "chromosome", "base_pair_location", "variant_id",
                                "p_value", "neg_log_10_p_value", "start", "end", "n_variants",
                                "shared") if c in loci.columns]
            out[f"loci_{arm}_table"] = _clean(loci.select(cols).to_dicts())
        return out


def _clean(v):
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_clean(x) for x in v]
    if isinstance(v, float) and not np.isfinite(v):
        return None
    return v


def _agreement(bm: np.ndarray, bp: np.ndarray) -> Agreement:
    n = int(bm.size)
    if n < 2 or np.ptp(bp) == 0 or np.ptp(bm) == 0:
        return Agreement(n=n, pearson_r=float("nan"), slope=float("nan"), intercept=float("nan"))
    dm, dp = bm - bm.mean(), bp - bp.mean()
    slope = float((dm * dp).sum() / (dp * dp).sum())
    r = float((dm * dp).sum() / np.sqrt((dm * dm).sum() * (dp * dp).sum()))
    return Agreement(n=n, pearson_r=r, slope=slope, intercept=float(bm.mean() - slope * bp.mean()))


def _arm(df: pl.DataFrame, name: str) -> pl.DataFrame:
    missing = [c for c in (*_KEY, "beta", "standard_error") if c not in df.columns]
    if missing:
        raise InputError(f"{name} arm: missing column(s) {missing}; present: {df.columns}")
    if "p_value" not in df.columns and "neg_log_10_p_value" not in df.columns:
        raise InputError(f"{name} arm: needs p_value or neg_log_10_p_value; present: {df.columns}")
    codes = normalise_chromosomes(df.get_column("chromosome"))
    if codes.null_count() > df.get_column("chromosome").null_count():
        bad = df.get_column("chromosome").filter(codes.is_null()).drop_nulls()[0]
        raise InputError(f"{name} arm: column chromosome: unknown label {bad!r}")
    out = df.with_columns(
        codes.alias("chromosome"),
        pl.col("beta").cast(pl.Float64),
        pl.col("standard_error").cast(pl.Float64),
        pl.col("effect_allele").str.to_uppercase(),
        pl.col("other_allele").str.to_uppercase(),
        pl.Series("neg_log_10_p_value", neglog10p(df), dtype=pl.Float64),
    )
    if "p_value" not in out.columns:
        out = out.with_columns((10.0 ** -pl.col("neg_log_10_p_value")).alias("p_value"))
    if "variant_id" not in out.columns:
        out = out.with_columns(pl.concat_str([pl.col(c).cast(pl.String) for c in (
            "chromosome", "base_pair_location", "other_allele", "effect_allele")],
            separator=":").alias("variant_id"))
    return out


def _shared_loci(loci: pl.DataFrame, other: pl.DataFrame, window_bp: float) -> pl.DataFrame:
    """``loci`` with ``shared``: True where a lead of ``other`` lies within the window of its lead."""
    if loci.height == 0:
        return loci.with_columns(pl.lit(None, pl.Boolean).alias("shared"))
    if other.height == 0:
        return loci.with_columns(pl.lit(False).alias("shared"))
    a_chr = loci.get_column("chromosome").to_numpy()
    a_pos = loci.get_column("base_pair_location").to_numpy()
    b_chr = other.get_column("chromosome").to_numpy()
    b_pos = other.get_column("base_pair_location").to_numpy()
    # Loci are few (hundreds), so the pairwise matrix is small.
    near = (a_chr[:, None] == b_chr[None, :]) & (np.abs(a_pos[:, None] - b_pos[None, :]) <= window_bp)
    return loci.with_columns(pl.Series("shared", near.any(axis=1)))


def compare_arms(
    meta: pl.DataFrame,
    pooled: pl.DataFrame,
    *,
    threshold: float = 5e-8,
    window_kb: float = 500.0,
) -> Comparison:
    """Agreement of a meta-analysis with the pooled analysis of the same samples.

    Parameters
    ----------
    meta
        Meta-analysis table (fixed-effect ``beta``/``standard_error``/``p_value``
        and, where present, ``neg_log_10_p_value``, which wins on underflow).
    pooled
        Pooled-arm association table (GWAS-SSF).
    threshold
        Significance threshold on p for counts and loci.
    window_kb
        Locus half-window: loci are greedy ±window around the most significant
        remaining variant (:func:`crosscohort.loci.distance_loci`); a meta locus
        is shared when a pooled lead lies within the window of its lead (and
        vice versa for pooled loci).

    Returns
    -------
    Comparison

    Notes
    -----
    Variants are matched on chromosome and position with the same allele pair;
    a pooled row whose alleles are reversed is aligned (beta negated) and
    counted in ``n_pooled_swapped``; a position present in both with another
    allele pair is counted in ``n_allele_mismatch``. The regression is
    β_meta on β_pooled (slope and intercept by least squares), over all
    shared variants and over those significant in either arm. ``se_ratio_median``
    is the median of SE_meta / SE_pooled over shared variants. Significance
    counts ``n_sig_meta``... are over shared variants; ``n_sig_*_all`` over each
    whole arm. Loci and λ_GC use each whole arm.
    """
    if not 0 < threshold < 1:
        raise ConfigError(f"--threshold must lie in (0, 1); got {threshold}")
    if window_kb < 0:
        raise ConfigError(f"--window-kb must be >= 0; got {window_kb}")
    m = _arm(meta, "meta")
    p = _arm(pooled, "pooled")
    pcols = ["chromosome", "base_pair_location", "other_allele", "effect_allele", *_ARM_COLUMNS]
    p_sel = p.select(pcols).rename({c: f"{c}_pooled" for c in _ARM_COLUMNS})
    m_sel = m.select(["variant_id", *pcols]).rename({c: f"{c}_meta" for c in _ARM_COLUMNS})
    direct = m_sel.join(p_sel, on=list(_KEY), how="inner")
    # Reversed orientation: the pooled effect allele is the meta other allele.
    p_rev = p_sel.rename({"other_allele": "effect_allele", "effect_allele": "other_allele"})
    rev = (
        m_sel.join(p_rev, on=list(_KEY), how="inner")
        .with_columns(-pl.col("beta_pooled"))
        .join(direct.select(_KEY), on=list(_KEY), how="anti")
    )
    shared = pl.concat([direct, rev], how="vertical").sort(["chromosome", "base_pair_location"])
    pos_both = m.select("chromosome", "base_pair_location").unique().join(
        p.select("chromosome", "base_pair_location").unique(),
        on=["chromosome", "base_pair_location"], how="inner")
    pos_matched = shared.select("chromosome", "base_pair_location").unique()
    mismatch = pos_both.join(pos_matched, on=["chromosome", "base_pair_location"], how="anti").height

    thr = -np.log10(threshold)
    sig_m = shared.get_column("neg_log_10_p_value_meta").to_numpy() > thr
    sig_p = shared.get_column("neg_log_10_p_value_pooled").to_numpy() > thr
    bm = shared.get_column("beta_meta").to_numpy()
    bp = shared.get_column("beta_pooled").to_numpy()
    se_ratio = shared.get_column("standard_error_meta").to_numpy() / shared.get_column(
        "standard_error_pooled").to_numpy()
    either = sig_m | sig_p
    cls = np.where(sig_m & sig_p, "both", np.where(sig_m, "meta_only", "pooled_only"))
    variants = shared.with_columns(pl.Series("class", cls)).filter(pl.Series(either))

    w = window_kb * 1000.0
    loci_m = distance_loci(m, threshold=threshold, window_kb=window_kb)
    loci_p = distance_loci(p, threshold=threshold, window_kb=window_kb)
    loci_m = _shared_loci(loci_m, loci_p, w)
    loci_p = _shared_loci(loci_p, loci_m, w)

    return Comparison(
        threshold=threshold,
        window_kb=window_kb,
        n_meta=m.height,
        n_pooled=p.height,
        n_shared=shared.height,
        n_pooled_swapped=rev.height,
        n_allele_mismatch=mismatch,
        all_shared=_agreement(bm, bp),
        significant_either=_agreement(bm[either], bp[either]),
        se_ratio_median=float(np.median(se_ratio)) if se_ratio.size else float("nan"),
        n_sig_meta_all=int((m.get_column("neg_log_10_p_value").to_numpy() > thr).sum()),
        n_sig_pooled_all=int((p.get_column("neg_log_10_p_value").to_numpy() > thr).sum()),
        n_sig_meta=int(sig_m.sum()),
        n_sig_pooled=int(sig_p.sum()),
        n_sig_both=int((sig_m & sig_p).sum()),
        n_sig_meta_only=int((sig_m & ~sig_p).sum()),
        n_sig_pooled_only=int((~sig_m & sig_p).sum()),
        n_loci_meta=loci_m.height,
        n_loci_pooled=loci_p.height,
        n_loci_meta_shared=int(loci_m.get_column("shared").sum()) if loci_m.height else 0,
        n_loci_pooled_shared=int(loci_p.get_column("shared").sum()) if loci_p.height else 0,
        lambda_gc_meta=lambda_gc(m.get_column("neg_log_10_p_value").to_numpy()),
        lambda_gc_pooled=lambda_gc(p.get_column("neg_log_10_p_value").to_numpy()),
        loci_meta=loci_m,
        loci_pooled=loci_p,
        variants=variants,
    )


def write_comparison(result: Comparison, out_prefix: str | Path) -> tuple[Path, Path]:
    """Write ``{prefix}.json`` (all metrics) and ``{prefix}.tsv`` (significant-in-either variants)."""
    prefix = Path(out_prefix)
    js = prefix.with_name(prefix.name + ".json")
    tsv = prefix.with_name(prefix.name + ".tsv")
    js.parent.mkdir(parents=True, exist_ok=True)
    tmp = js.with_name(f".{js.name}.tmp")
    tmp.write_text(json.dumps(result.to_dict(), indent=2, sort_keys=True) + "\n")
    tmp.replace(js)
    write_sumstats(result.variants, tsv)
    return js, tsv
