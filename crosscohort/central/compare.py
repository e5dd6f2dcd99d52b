"""Meta-analysis versus pooled analysis: how far federated results track pooled ones.

Both arms are GWAS-SSF tables of one trait. The comparison joins them on
the variant, aligns the pooled alleles to the meta-analysis's, and reports
effect agreement, significance concordance, locus concordance and λ_GC.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import MappingProxyType

import numpy as np
import polars as pl

from crosscohort.central.loci import THRESHOLD, WINDOW_KB, distance_loci
from crosscohort.contract.errors import ConfigError, InputError
from crosscohort.contract.keys import VARIANT_KEY, normalise_chromosomes
from crosscohort.contract.stats import lambda_gc, neg_log10_p_of_table
from crosscohort.contract.sumstats import variant_id, write_sumstats
from crosscohort.runtime.atomic import write_json

__all__ = [
    "Agreement",
    "Comparison",
    "DIRECTION_CLASSES",
    "LOCUS_CLASSES",
    "compare_arms",
    "direction_class",
    "write_comparison",
]

#: Per-arm columns carried into the per-variant table (suffixed ``_meta`` / ``_pooled``).
_ARM_COLUMNS = ("beta", "standard_error", "p_value", "neg_log_10_p_value")
ARMS = ("meta", "pooled")
#: Concordance classes of a variant or locus at the threshold.
LOCUS_CLASSES = ("both", "meta_only", "pooled_only")
#: Direction classes of a meta-analysis ``direction`` string.
DIRECTION_CLASSES = ("agree", "conflict", "single_cohort", "unknown")
#: Meta-analysis heterogeneity columns carried into the comparison tables.
_HET_COLUMNS = ("direction", "n_studies", "het_q", "het_df", "het_p", "het_i2",
                # MR-MEGA runs (meta --method mrmega): heterogeneity along ancestry, and what is left.
                "mrmega_neg_log_10_p_ancestry_het", "mrmega_neg_log_10_p_residual_het")


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
    with each arm's beta/SE/p and ``class`` (``both``, ``meta_only``, ``pooled_only``),
    the meta-analysis's direction and heterogeneity and ``direction_class``.
    ``loci`` holds one row per locus of either arm (meta loci, then pooled
    loci with no meta lead in their window) with its ``class``, the lead's
    p in each arm, direction class, heterogeneity, per-cohort EAF
    (``eaf_<cohort>``), ``most_common_cohort`` and ``cohort_specific``.
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
    n_loci_both: int = 0
    n_loci_meta_only: int = 0
    n_loci_pooled_only: int = 0
    direction_classes_variants: dict = field(default_factory=dict)
    direction_classes_loci: dict = field(default_factory=dict)
    discordant_het: dict = field(default_factory=dict)
    cohorts: tuple[str, ...] = ()
    cohort_n: dict = field(default_factory=dict)
    largest_cohort: str | None = None
    n_hits: int = 0
    n_hits_with_eaf: int = 0
    n_hits_most_common_outside_largest: int = 0
    share_hits_most_common_outside_largest: float = float("nan")
    n_cohort_specific_loci: int = 0
    loci: pl.DataFrame = field(default_factory=pl.DataFrame)
    #: Shared variants without an estimate in an arm (beta or SE missing or not finite, SE <= 0,
    #: e.g. plink2's NA rows): counted here, left out of the agreement and the SE ratio.
    n_shared_no_estimate: int = 0

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
        if self.loci.height:
            out["loci_table"] = _clean(self.loci.with_columns(
                pl.col(pl.Float32, pl.Float64).fill_nan(None)).to_dicts())
        else:
            out["loci_table"] = []
        return out


def _clean(v):
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_clean(x) for x in v]
    if isinstance(v, float) and not np.isfinite(v):
        return None
    return v


def direction_class(direction: pl.Series) -> np.ndarray:
    """Class of each meta-analysis ``direction`` string: agree, conflict, single_cohort or unknown.

    ``single_cohort``: exactly one cohort has the variant (one character other
    than ``?``); ``conflict``: both ``+`` and ``-`` occur; ``agree``: two or
    more cohorts, signs never opposed (``0``, a β of exactly 0, opposes
    nothing); ``unknown``: no direction string (null) or no cohort at all.
    """
    d = direction.cast(pl.String)
    frame = pl.DataFrame({"d": d})
    out = frame.select(
        pl.when(pl.col("d").is_null()).then(pl.lit("unknown"))
        .when(pl.col("d").str.count_matches(r"[+\-0]") == 1).then(pl.lit("single_cohort"))
        .when((pl.col("d").str.count_matches(r"\+") > 0) & (pl.col("d").str.count_matches("-") > 0))
        .then(pl.lit("conflict"))
        .when(pl.col("d").str.count_matches(r"[+\-0]") >= 2).then(pl.lit("agree"))
        .otherwise(pl.lit("unknown")).alias("c")
    ).get_column("c")
    return out.to_numpy()


def _class_counts(classes: np.ndarray, names: tuple[str, ...]) -> dict[str, int]:
    return {n: int(np.sum(classes == n)) for n in names}


def _flip_direction(col: str) -> pl.Expr:
    return (pl.col(col).str.replace_all("+", "\x00", literal=True).str.replace_all("-", "+", literal=True)
            .str.replace_all("\x00", "-", literal=True))


def _lookup(leads: pl.DataFrame, table: pl.DataFrame, columns: tuple[str, ...], *,
            suffix: str) -> pl.DataFrame:
    """``leads`` (with ``_i``) plus ``table``'s ``columns`` at the same variant, aligned to the lead's alleles.

    Matched on chromosome, position and allele pair in either orientation; a
    reversed match negates ``beta``, mirrors ``effect_allele_frequency`` and
    swaps the signs of ``direction``. Columns are renamed ``<column><suffix>``.
    """
    cols = [c for c in columns if c in table.columns]
    t = table.select(*VARIANT_KEY, *cols)
    keys = leads.select("_i", *VARIANT_KEY)
    direct = keys.join(t, on=list(VARIANT_KEY), how="inner")
    flips = []
    if "beta" in cols:
        flips.append(-pl.col("beta"))
    if "effect_allele_frequency" in cols:
        flips.append((1.0 - pl.col("effect_allele_frequency")).alias("effect_allele_frequency"))
    if "direction" in cols:
        flips.append(_flip_direction("direction"))
    rev = keys.join(t.rename({"effect_allele": "other_allele", "other_allele": "effect_allele"}),
                    on=list(VARIANT_KEY), how="inner")
    if flips:
        rev = rev.with_columns(flips)
    rev = rev.select(direct.columns).join(direct.select("_i"), on="_i", how="anti")
    found = pl.concat([direct, rev]).unique(subset="_i", keep="first", maintain_order=True)
    found = found.select("_i", *(pl.col(c).alias(f"{c}{suffix}") for c in cols))
    return leads.join(found, on="_i", how="left")


def _most_common(eaf: np.ndarray, n: np.ndarray, cohorts: tuple[str, ...]) -> np.ndarray:
    """Per row of ``eaf`` (variants x cohorts, NaN = absent): the cohort where the minor allele is most frequent.

    The minor allele is decided over the cohorts carrying the variant,
    weighting each cohort's EAF by its N, so a variant whose effect allele is
    common in one cohort and absent or rare in the others points at that cohort.
    """
    out = np.full(eaf.shape[0], None, dtype=object)
    if eaf.size == 0:
        return out
    present = np.isfinite(eaf)
    w = np.where(present, n[None, :], 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        pooled = np.nansum(np.where(present, eaf, 0.0) * w, axis=1) / w.sum(axis=1)
    minor = np.where((pooled <= 0.5)[:, None], eaf, 1.0 - eaf)
    anyp = present.any(axis=1)
    best = np.argmax(np.where(present, minor, -np.inf), axis=1)
    out[anyp] = np.asarray(cohorts, dtype=object)[best[anyp]]
    return out


def _cohort_n(df: pl.DataFrame) -> float:
    if "n" in df.columns:
        v = df.get_column("n").cast(pl.Float64, strict=False).max()
        if v is not None:
            return float(v)
    return float("nan")


def _agreement(bm: np.ndarray, bp: np.ndarray) -> Agreement:
    n = int(bm.size)
    if n < 2 or np.ptp(bp) == 0 or np.ptp(bm) == 0:
        return Agreement(n=n, pearson_r=float("nan"), slope=float("nan"), intercept=float("nan"))
    dm, dp = bm - bm.mean(), bp - bp.mean()
    slope = float((dm * dp).sum() / (dp * dp).sum())
    r = float((dm * dp).sum() / np.sqrt((dm * dm).sum() * (dp * dp).sum()))
    return Agreement(n=n, pearson_r=r, slope=slope, intercept=float(bm.mean() - slope * bp.mean()))


def _arm(df: pl.DataFrame, name: str, source: str | None = None) -> pl.DataFrame:
    where = f"{name} arm" + (f" ({source})" if source else "")
    missing = [c for c in (*VARIANT_KEY, "beta", "standard_error") if c not in df.columns]
    if missing:
        raise InputError(f"{where}: missing column(s) {missing}; present: {df.columns}")
    if "p_value" not in df.columns and "neg_log_10_p_value" not in df.columns:
        raise InputError(f"{where}: needs p_value or neg_log_10_p_value; present: {df.columns}")
    labels = df.get_column("chromosome")
    codes = normalise_chromosomes(labels)
    unknown = codes.is_null() & labels.is_not_null()
    if unknown.any():
        i = int(unknown.arg_true()[0])  # row i is file line i + 2 (the reader keeps every line)
        raise InputError(f"{where}: line {i + 2}: column chromosome: unknown label {labels[i]!r}; "
                         "rule: 1-22, X, Y, MT (chr prefix allowed) or 23-25")
    out = df.with_columns(
        codes.alias("chromosome"),
        pl.col("beta").cast(pl.Float64),
        pl.col("standard_error").cast(pl.Float64),
        pl.col("effect_allele").str.to_uppercase(),
        pl.col("other_allele").str.to_uppercase(),
        pl.Series("neg_log_10_p_value", neg_log10_p_of_table(df), dtype=pl.Float64),
    )
    if "p_value" not in out.columns:
        out = out.with_columns((10.0 ** -pl.col("neg_log_10_p_value")).alias("p_value"))
    if "variant_id" not in out.columns:
        out = out.with_columns(variant_id(*(pl.col(c).cast(pl.String) for c in VARIANT_KEY)))
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


def _locus_table(loci_m: pl.DataFrame, loci_p: pl.DataFrame, m: pl.DataFrame, p: pl.DataFrame,
                 cohorts: Mapping[str, pl.DataFrame]) -> tuple[pl.DataFrame, tuple[str, ...], dict[str, float]]:
    """One row per locus of either arm with its class, both arms' p, heterogeneity and per-cohort EAF."""
    base = [*VARIANT_KEY, "variant_id", "locus", "start", "end", "n_variants"]
    parts = []
    if loci_m.height:
        parts.append(loci_m.select(base).with_columns(
            pl.lit("meta").alias("arm"),
            pl.when(pl.col("locus").is_in(loci_m.filter(pl.col("shared")).get_column("locus").implode()))
            .then(pl.lit("both")).otherwise(pl.lit("meta_only")).alias("class")))
    if loci_p.height:
        po = loci_p.filter(~pl.col("shared"))
        if po.height:
            parts.append(po.select(base).with_columns(pl.lit("pooled").alias("arm"),
                                                      pl.lit("pooled_only").alias("class")))
    cohort_ids = tuple(cohorts)
    cohort_n = {c: _cohort_n(df) for c, df in cohorts.items()}
    if not parts:
        return pl.DataFrame(), cohort_ids, cohort_n
    leads = pl.concat(parts, how="vertical_relaxed").with_row_index("_i")
    leads = _lookup(leads, m, ("beta", "standard_error", "neg_log_10_p_value", *_HET_COLUMNS), suffix="_meta")
    leads = _lookup(leads, p, ("beta", "standard_error", "neg_log_10_p_value"), suffix="_pooled")
    leads = leads.rename({c: c.removesuffix("_meta") for c in leads.columns
                          if c.removesuffix("_meta") in _HET_COLUMNS})
    if "direction" in leads.columns:
        dcls = direction_class(leads.get_column("direction"))
    else:
        dcls = np.full(leads.height, "unknown", dtype=object)
    leads = leads.with_columns(pl.Series("direction_class", dcls, dtype=pl.String))
    eaf_cols = []
    for c, df in cohorts.items():
        if "effect_allele_frequency" not in df.columns:
            raise InputError(f"cohort {c}: column effect_allele_frequency is needed for the ancestry view; "
                             f"present: {df.columns}")
        cdf = _arm_keys(df, f"cohort {c}")
        leads = _lookup(leads, cdf, ("effect_allele_frequency",), suffix=f"__{c}").rename(
            {f"effect_allele_frequency__{c}": f"eaf_{c}"})
        eaf_cols.append(f"eaf_{c}")
    if eaf_cols:
        eaf = leads.select(eaf_cols).cast(pl.Float64).to_numpy()
        n = np.array([cohort_n[c] if np.isfinite(cohort_n[c]) else 1.0 for c in cohort_ids])
        leads = leads.with_columns(pl.Series("most_common_cohort", _most_common(eaf, n, cohort_ids),
                                             dtype=pl.String))
    leads = leads.with_columns((pl.col("direction_class") == "single_cohort").alias("cohort_specific"))
    return leads.drop("_i"), cohort_ids, cohort_n


def _arm_keys(df: pl.DataFrame, name: str) -> pl.DataFrame:
    """Key columns normalised as :func:`_arm` does (numeric chromosome, upper-case alleles)."""
    missing = [c for c in VARIANT_KEY if c not in df.columns]
    if missing:
        raise InputError(f"{name}: missing column(s) {missing}; present: {df.columns}")
    return df.with_columns(
        normalise_chromosomes(df.get_column("chromosome")).alias("chromosome"),
        pl.col("base_pair_location").cast(pl.Int64),
        pl.col("effect_allele").str.to_uppercase(),
        pl.col("other_allele").str.to_uppercase(),
    )


def compare_arms(
    meta: pl.DataFrame,
    pooled: pl.DataFrame,
    *,
    threshold: float = THRESHOLD,
    window_kb: float = WINDOW_KB,
    cohorts: Mapping[str, pl.DataFrame] | None = None,
    sources: Mapping[str, str] = MappingProxyType({}),
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
        remaining variant (:func:`crosscohort.central.loci.distance_loci`); a meta locus
        is shared when a pooled lead lies within the window of its lead (and
        vice versa for pooled loci).
    cohorts
        Optional harmonised per-cohort tables (cohort id -> GWAS-SSF table, in
        cohort order) for the ancestry view: each locus lead's EAF per cohort
        (aligned to the lead's effect allele; null where the cohort lacks the
        variant), the cohort where its minor allele is most common, and the
        share of hits most common outside the largest cohort (by N, the
        largest ``n`` of its table).
    sources
        Where each arm was read (``{"meta": path, "pooled": path}``), named
        in error messages.

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
    is the median of SE_meta / SE_pooled over shared variants. A shared variant
    with no estimate in an arm (beta or SE missing or not finite, or SE <= 0:
    plink2's and assoc's NA rows) is counted in ``n_shared_no_estimate`` and
    left out of the regression and the SE ratio. Significance
    counts ``n_sig_meta``... are over shared variants; ``n_sig_*_all`` over each
    whole arm. Loci and λ_GC use each whole arm.

    Locus level: a meta locus is ``both`` when a pooled lead lies within the
    window of its lead, else ``meta_only``; a pooled locus with no meta lead
    in its window is ``pooled_only``. Direction classes come from the meta
    ``direction`` string (:func:`direction_class`). A hit (locus lead) is
    ``cohort_specific`` when its direction class is ``single_cohort``: only
    one cohort carries the variant (it is monomorphic, rare below the MAC
    filters or missing in the others). Heterogeneity of discordant loci
    (classes other than ``both``) is the meta row's Q, its p and I² at the
    lead (for a pooled-only locus, at the pooled lead).
    """
    if not 0 < threshold < 1:
        raise ConfigError(f"--threshold must lie in (0, 1); got {threshold}")
    if window_kb < 0:
        raise ConfigError(f"--window-kb must be >= 0; got {window_kb}")
    m = _arm(meta, "meta", sources.get("meta"))
    p = _arm(pooled, "pooled", sources.get("pooled"))
    pcols = ["chromosome", "base_pair_location", "other_allele", "effect_allele", *_ARM_COLUMNS]
    p_sel = p.select(pcols).rename({c: f"{c}_pooled" for c in _ARM_COLUMNS})
    het = [c for c in _HET_COLUMNS if c in m.columns]
    m_sel = m.select(["variant_id", *pcols, *het]).rename({c: f"{c}_meta" for c in _ARM_COLUMNS})
    direct = m_sel.join(p_sel, on=list(VARIANT_KEY), how="inner")
    # Reversed orientation: the pooled effect allele is the meta other allele.
    p_rev = p_sel.rename({"other_allele": "effect_allele", "effect_allele": "other_allele"})
    rev = (
        m_sel.join(p_rev, on=list(VARIANT_KEY), how="inner")
        .with_columns(-pl.col("beta_pooled"))
        .join(direct.select(VARIANT_KEY), on=list(VARIANT_KEY), how="anti")
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
    se_m = shared.get_column("standard_error_meta").to_numpy()
    se_p = shared.get_column("standard_error_pooled").to_numpy()
    # A row with no estimate (NA beta/SE) would make r, the slope and the median NaN.
    with np.errstate(invalid="ignore"):
        est = np.isfinite(bm) & np.isfinite(bp) & (se_m > 0) & (se_p > 0) & np.isfinite(se_m) & np.isfinite(se_p)
    se_ratio = se_m[est] / se_p[est]
    either = sig_m | sig_p
    cls = np.where(sig_m & sig_p, "both", np.where(sig_m, "meta_only", "pooled_only"))
    variants = shared.with_columns(pl.Series("class", cls)).filter(pl.Series(either))
    dir_var = direction_class(variants.get_column("direction")) if "direction" in variants.columns \
        else np.full(variants.height, "unknown", dtype=object)
    variants = variants.with_columns(pl.Series("direction_class", dir_var, dtype=pl.String))

    w = window_kb * 1000.0
    loci_m = distance_loci(m, threshold=threshold, window_kb=window_kb)
    loci_p = distance_loci(p, threshold=threshold, window_kb=window_kb)
    loci_m = _shared_loci(loci_m, loci_p, w)
    loci_p = _shared_loci(loci_p, loci_m, w)
    loci, cohort_ids, cohort_n = _locus_table(loci_m, loci_p, m, p, cohorts or {})
    lclass = loci.get_column("class").to_numpy() if loci.height else np.empty(0, dtype=object)
    ldir = loci.get_column("direction_class").to_numpy() if loci.height else np.empty(0, dtype=object)
    disc = loci.filter(pl.col("class") != "both") if loci.height else loci
    i2 = disc.get_column("het_i2").drop_nulls().to_numpy() if "het_i2" in disc.columns else np.empty(0)
    hp = disc.get_column("het_p").drop_nulls().to_numpy() if "het_p" in disc.columns else np.empty(0)
    largest = None
    if cohort_n and any(np.isfinite(v) for v in cohort_n.values()):
        largest = max((c for c in cohort_ids if np.isfinite(cohort_n[c])), key=lambda c: cohort_n[c])
    mc = loci.get_column("most_common_cohort").to_numpy() if "most_common_cohort" in loci.columns \
        else np.empty(0, dtype=object)
    has = np.array([x is not None for x in mc], dtype=bool)
    outside = int(np.sum(has & (mc != largest))) if largest is not None else 0

    return Comparison(
        threshold=threshold,
        window_kb=window_kb,
        n_meta=m.height,
        n_pooled=p.height,
        n_shared=shared.height,
        n_pooled_swapped=rev.height,
        n_allele_mismatch=mismatch,
        n_shared_no_estimate=int((~est).sum()),
        all_shared=_agreement(bm[est], bp[est]),
        significant_either=_agreement(bm[either & est], bp[either & est]),
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
        n_loci_both=int(np.sum(lclass == "both")),
        n_loci_meta_only=int(np.sum(lclass == "meta_only")),
        n_loci_pooled_only=int(np.sum(lclass == "pooled_only")),
        direction_classes_variants=_class_counts(dir_var, DIRECTION_CLASSES),
        direction_classes_loci=_class_counts(ldir, DIRECTION_CLASSES),
        discordant_het={
            "n_loci": disc.height,
            "n_with_het": int(i2.size),
            "median_i2": float(np.median(i2)) if i2.size else float("nan"),
            "max_i2": float(np.max(i2)) if i2.size else float("nan"),
            "n_het_p_below_0_05": int(np.sum(hp < 0.05)),
        },
        cohorts=cohort_ids,
        cohort_n={c: cohort_n[c] for c in cohort_ids},
        largest_cohort=largest,
        n_hits=loci.height,
        n_hits_with_eaf=int(has.sum()),
        n_hits_most_common_outside_largest=outside,
        share_hits_most_common_outside_largest=(outside / int(has.sum())) if has.any() and largest
        is not None else float("nan"),
        n_cohort_specific_loci=int(loci.get_column("cohort_specific").sum()) if loci.height else 0,
        loci=loci,
    )


def write_comparison(result: Comparison, out_prefix: str | Path) -> tuple[Path, Path, Path]:
    """Write ``{prefix}.json`` (all metrics), ``{prefix}.tsv`` (significant-in-either variants)
    and ``{prefix}.loci.tsv`` (one row per locus of either arm, with class and ancestry view)."""
    prefix = Path(out_prefix)
    js = prefix.with_name(prefix.name + ".json")
    tsv = prefix.with_name(prefix.name + ".tsv")
    loci_tsv = prefix.with_name(prefix.name + ".loci.tsv")
    js.parent.mkdir(parents=True, exist_ok=True)
    write_json(js, result.to_dict())
    write_sumstats(result.variants, tsv)
    write_sumstats(result.loci, loci_tsv)
    return js, tsv, loci_tsv
