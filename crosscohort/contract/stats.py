"""Small statistics shared by several stages (genomic control)."""

from __future__ import annotations

import numpy as np
from scipy.special import chdtri

__all__ = ["CHI2_1_MEDIAN", "chi2_from_neglog10p", "lambda_gc"]

#: Median of the chi-square distribution with one degree of freedom,
#: ``scipy.stats.chi2.ppf(0.5, 1)`` (tests/test_stats.py checks the literal).
#: A literal because importing ``scipy.stats`` costs ~0.5 s of every command's
#: start-up; ``scipy.special`` alone is enough here.
CHI2_1_MEDIAN = 0.454936423119572


def chi2_from_neglog10p(neglog10p: np.ndarray) -> np.ndarray:
    """1-df chi-square statistics of two-sided p-values given as -log10 p.

    Working from -log10 p keeps p-values that underflow to 0 finite:
    ``chi2.isf`` of ``10**-x`` is evaluated through the log survival function.
    """
    x = np.asarray(neglog10p, dtype=float)
    p = np.power(10.0, -x)
    out = chdtri(1.0, p)  # = scipy.stats.chi2.isf(p, 1), which calls it
    tiny = p < 1e-300
    if np.any(tiny):
        # z from log p via the normal's inverse survival function in log space
        from scipy.special import ndtri_exp

        logp_half = -x[tiny] * np.log(10.0) - np.log(2.0)
        out[tiny] = ndtri_exp(logp_half) ** 2
    return out


def lambda_gc(neglog10p: np.ndarray) -> float:
    """Genomic-control inflation factor: median 1-df chi-square over its null median.

    Parameters
    ----------
    neglog10p
        -log10 of two-sided p-values; NaN entries are ignored.

    Returns
    -------
    float
        λ_GC = median(χ²) / 0.4549364 (Devlin & Roeder 1999); NaN when no finite value.
    """
    x = np.asarray(neglog10p, dtype=float)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return float("nan")
    # chi2 is increasing in -log10 p, so its median is the chi2 of the middle
    # one or two values: no need to transform every variant (10M -> 2 values).
    n = x.size
    mid = np.partition(x, [(n - 1) // 2, n // 2])[[(n - 1) // 2, n // 2]]
    return float(np.mean(chi2_from_neglog10p(mid)) / CHI2_1_MEDIAN)
