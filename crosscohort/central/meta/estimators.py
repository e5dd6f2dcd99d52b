"""Meta-analysis estimators, as in the papers: pure numpy functions of per-study arrays.

Every function takes ``(k, m)`` arrays, k studies (cohorts) along axis 0 and
m variants along axis 1, so one call combines m independent meta-analyses
with the formulas of one (statsmodels' ``stats/meta_analysis.py`` writes
them for one variant, k studies). A study that lacks a variant is carried
by the caller's mask: in the weighted sums it has weight 0 and effect 0
(:func:`masked_effects`). The reductions run over axis 0 of C-ordered
``(k, m)`` arrays, adding k contiguous rows, which is several times faster
in numpy than reducing the short axis of an ``(m, k)`` array.

Nothing here reads files, knows cohorts or column names, or manages memory;
the driver (:mod:`crosscohort.central.meta.stream`) bounds memory by calling
these on one chromosome at a time.

References
----------
DerSimonian R, Laird N (1986) Meta-analysis in clinical trials. Control Clin Trials 7:177-188.
Higgins JPT, Thompson SG (2002) Quantifying heterogeneity in a meta-analysis. Stat Med 21:1539-58.
Willer CJ, Li Y, Abecasis GR (2010) METAL: fast and efficient meta-analysis of genomewide
association scans. Bioinformatics 26:2190-2191.
Devlin B, Roeder K (1999) Genomic control for association studies. Biometrics 55:997-1004.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crosscohort.contract.stats import CHI2_1_MEDIAN, neg_log10_p_from_z

__all__ = [
    "IVWArrays",
    "SampleSizeArrays",
    "EAFSummary",
    "cochran_q",
    "eaf_summary",
    "effective_n",
    "fixed_effect",
    "gc_factor",
    "i_squared",
    "ivw_arrays",
    "lambda_from_z2",
    "masked_effects",
    "random_effects",
    "samplesize_arrays",
    "samplesize_z",
    "tau2_dersimonian_laird",
]


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


@dataclass(frozen=True)
class SampleSizeArrays:
    """Per-variant results of :func:`samplesize_arrays` (1-D float64 arrays of length m)."""

    z: np.ndarray
    weight: np.ndarray
    neg_log_10_p_value: np.ndarray
    n_studies: np.ndarray


@dataclass(frozen=True)
class EAFSummary:
    """Per-variant summaries of the studies' effect-allele frequencies (:func:`eaf_summary`)."""

    mean: np.ndarray  # (m,) n-weighted when every EAF has its n, else plain
    min: np.ndarray  # (m,)
    max: np.ndarray  # (m,)
    spread: np.ndarray  # (m,) weighted SD around ``mean`` (METAL's FreqSE-like)
    far: np.ndarray  # (k, m) bool: the study's EAF is far from the other studies'


def masked_effects(beta: np.ndarray, se: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Effects, variances and the usable mask of ``(k, m)`` estimates: a study is used when
    its beta and SE are finite and SE > 0.

    Returns ``(b, var, ok)``: ``b`` is 0 and ``var`` is +inf where not ``ok``, so
    that the weight ``1/var`` of a missing study is exactly 0 in every sum below.
    """
    ok = np.isfinite(beta) & np.isfinite(se) & (se > 0)
    with np.errstate(invalid="ignore", over="ignore"):
        var = np.where(ok, se * se, np.inf)
    return np.where(ok, beta, 0.0), var, ok


def fixed_effect(b: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inverse-variance weighted fixed-effect estimate and its SE.

    ``beta = sum(w b) / sum(w)``, ``se = 1 / sqrt(sum w)`` with ``w = 1/var``.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        sw = w.sum(axis=0)
        return (w * b).sum(axis=0) / sw, 1.0 / np.sqrt(sw)


def cochran_q(b: np.ndarray, w: np.ndarray, mean: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """Cochran's ``Q = sum w (b - mean)^2`` over the usable studies.

    Two passes (the mean first), so Q is not the difference of two large sums.
    """
    with np.errstate(invalid="ignore"):
        dev = b - mean
        return np.where(ok, w * dev * dev, 0.0).sum(axis=0)


def i_squared(q: np.ndarray, df: np.ndarray) -> np.ndarray:
    """Higgins' ``I^2 = max(0, (Q - df) / Q)``, 0 when Q = 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(q > 0, np.maximum(0.0, (q - df) / q), 0.0)


def tau2_dersimonian_laird(q: np.ndarray, df: np.ndarray, w: np.ndarray) -> np.ndarray:
    """DerSimonian-Laird between-study variance, the method of moments.

    ``c = sum w - sum w^2 / sum w``, ``tau2 = max(0, (Q - df) / c)``; 0 when c = 0
    (one study).
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        sw = w.sum(axis=0)
        c = sw - (w * w).sum(axis=0) / sw
        return np.where(c > 0, np.maximum(0.0, (q - df) / c), 0.0)


def random_effects(b: np.ndarray, var: np.ndarray, tau2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Random-effects estimate and SE: the fixed-effect formulas with weights ``1/(var + tau2)``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return fixed_effect(b, 1.0 / (var + tau2))


def ivw_arrays(beta: np.ndarray, se: np.ndarray) -> IVWArrays:
    """Fixed- and random-effects combination of ``(k, m)`` estimates; NaN marks a missing study.

    Parameters
    ----------
    beta, se
        Effect estimates and standard errors, shape ``(k studies, m variants)``;
        an entry is used when both are finite and ``se > 0``.

    Returns
    -------
    IVWArrays
        :func:`fixed_effect`, :func:`cochran_q` with ``df = k_v - 1``,
        :func:`i_squared`, :func:`tau2_dersimonian_laird` and
        :func:`random_effects`, per variant. A variant with one study gets
        that study's own beta and SE bit for bit (``w b / w`` and
        ``1/sqrt(1/se^2)`` would round off), hence Q = 0 exactly; a variant
        with no usable study gets NaN.
    """
    # C order: the sums over axis 0 then add k contiguous rows, in the same order whatever
    # the caller's layout (a transposed view would be summed in another order).
    beta = np.ascontiguousarray(beta, dtype=np.float64)
    se = np.ascontiguousarray(se, dtype=np.float64)
    if beta.shape != se.shape or beta.ndim != 2:
        raise ValueError(f"beta and se must be (k, m) arrays of one shape; got {beta.shape}, {se.shape}")
    b, var, ok = masked_effects(beta, se)
    k = ok.sum(axis=0).astype(np.float64)
    w = 1.0 / var
    beta_fe, se_fe = fixed_effect(b, w)
    single = k == 1
    if single.any():
        b_one, se_one = b.sum(axis=0)[single], np.where(ok, se, 0.0).sum(axis=0)[single]
        beta_fe[single], se_fe[single] = b_one, se_one
    q = cochran_q(b, w, beta_fe, ok)
    df = k - 1.0
    i2 = i_squared(q, df)
    tau2 = tau2_dersimonian_laird(q, df, w)
    beta_re, se_re = random_effects(b, var, tau2)
    if single.any():
        beta_re[single], se_re[single] = b_one, se_one
    none = k == 0
    for arr in (beta_fe, se_fe, q, df, i2, tau2, beta_re, se_re):
        arr[none] = np.nan
    return IVWArrays(beta=beta_fe, standard_error=se_fe, z=beta_fe / se_fe, q=q, df=df,
                     tau2=tau2, i2=i2, beta_random=beta_re, standard_error_random=se_re,
                     z_random=beta_re / se_re, n_studies=k)



def samplesize_z(z: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """METAL's sample-size scheme: ``Z = sum(sqrt(N_i) z_i) / sqrt(sum N_i)``.

    ``z``, ``n``: ``(k, m)``; a study is used where z and n are finite and n > 0.
    Returns ``(Z, sum N, k used)``; Z is NaN and the weight 0 where no study is used.
    """
    ok = np.isfinite(z) & np.isfinite(n) & (n > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        nn = np.where(ok, n, 0.0)
        weight = nn.sum(axis=0)
        zz = (np.sqrt(nn) * np.where(ok, z, 0.0)).sum(axis=0) / np.sqrt(weight)
    k = ok.sum(axis=0).astype(np.float64)
    zz[k == 0] = np.nan
    return zz, weight, k


def samplesize_arrays(z: np.ndarray, n: np.ndarray) -> SampleSizeArrays:
    """:func:`samplesize_z` of ``(k, m)`` arrays with its weight and two-sided -log10 p.

    Parameters
    ----------
    z
        Per-study signed z statistics (z of the p-value, signed by beta), ``(k, m)``.
    n
        Per-study sample sizes, ``(k, m)``; NaN marks a missing study.

    Returns
    -------
    SampleSizeArrays
        ``z``; ``weight`` = sum of N used (METAL's ``Weight`` column; NaN where no
        study is used); the two-sided ``-log10 p`` of Z, in log space; ``n_studies``.

    References
    ----------
    Willer et al. (2010), Table 1, sample-size scheme: ``w_i = sqrt(N_i)``,
    ``Z = sum z_i w_i / sqrt(sum w_i^2)``.
    """
    z = np.ascontiguousarray(z, dtype=np.float64)
    n = np.ascontiguousarray(n, dtype=np.float64)
    if z.shape != n.shape or z.ndim != 2:
        raise ValueError(f"z and n must be (k, m) arrays of one shape; got {z.shape}, {n.shape}")
    zz, weight, k = samplesize_z(z, n)
    return SampleSizeArrays(z=zz, weight=np.where(k > 0, weight, np.nan),
                            neg_log_10_p_value=neg_log10_p_from_z(zz), n_studies=k)


def lambda_from_z2(z2: np.ndarray) -> float:
    """Genomic-control λ of one study: ``median(z^2) / median(chi2_1)``; NaN when empty.

    The same λ as :func:`crosscohort.contract.stats.lambda_gc` of the p-values
    (chi2 is monotone in p), without a log-tail pass.
    """
    return float(np.median(z2) / CHI2_1_MEDIAN) if z2.size else float("nan")


def gc_factor(lam: float) -> float:
    """SE multiplier of genomic control (METAL's ``GENOMICCONTROL ON``): sqrt(λ) when λ > 1, else 1."""
    return float(np.sqrt(lam)) if np.isfinite(lam) and lam > 1 else 1.0


def effective_n(n: np.ndarray, cases: np.ndarray | None, controls: np.ndarray | None) -> np.ndarray:
    """Effective sample size per study: ``4 / (1/cases + 1/controls)`` where both are known, else n.

    ``(k, m)`` arrays; ``cases``/``controls`` None when no study reports them.
    """
    if cases is None or controls is None:
        return n
    with np.errstate(invalid="ignore", divide="ignore"):
        neff_binary = 4.0 / (1.0 / cases + 1.0 / controls)
    return np.where(np.isfinite(neff_binary), neff_binary, n)


def eaf_summary(eaf: np.ndarray, n: np.ndarray, *, max_diff: float) -> EAFSummary:
    """Mean, range and spread of ``(k, m)`` EAFs, and each study against the others.

    Weights: a variant whose every EAF comes with its n is n-weighted, else
    each EAF weighs 1. ``far[j]``: study j's EAF differs by more than
    ``max_diff`` from the mean of the other studies' EAFs with the same
    weights (leave-one-out), where another study has one. NaN marks a missing
    EAF or n; a variant with no EAF gets NaN mean, range and spread.
    """
    k, m = eaf.shape
    with np.errstate(invalid="ignore", divide="ignore"):
        has_eaf = np.isfinite(eaf)
        weighted = has_eaf & np.isfinite(n)
        all_weighted = (has_eaf <= weighted).all(axis=0)  # every EAF has its n
        wn = np.where(weighted, n, 0.0)
        eaf_w = np.where(weighted, eaf * n, 0.0).sum(axis=0) / wn.sum(axis=0)
        n_eaf = has_eaf.sum(axis=0)
        eaf_u = np.where(has_eaf, eaf, 0.0).sum(axis=0) / n_eaf
        mean = np.where(all_weighted, eaf_w, eaf_u)
        any_eaf = n_eaf > 0
        lo = np.where(any_eaf, np.min(np.where(has_eaf, eaf, np.inf), axis=0), np.nan)
        hi = np.where(any_eaf, np.max(np.where(has_eaf, eaf, -np.inf), axis=0), np.nan)
        wt = np.where(all_weighted, wn, has_eaf.astype(np.float64))
        dev = np.where(has_eaf, eaf - mean, 0.0)
        spread = np.sqrt((wt * dev * dev).sum(axis=0) / wt.sum(axis=0))
        eaf0 = np.where(has_eaf, eaf, 0.0)
        sum_w, sum_we = wt.sum(axis=0), (wt * eaf0).sum(axis=0)
        far = np.zeros((k, m), dtype=bool)
        for j in range(k):
            w_other = sum_w - wt[j]
            far[j] = has_eaf[j] & (w_other > 0)
            far[j] &= np.abs(eaf0[j] - (sum_we - wt[j] * eaf0[j]) / np.where(far[j], w_other, 1.0)) \
                > max_diff
    return EAFSummary(mean=mean, min=lo, max=hi, spread=spread, far=far)
