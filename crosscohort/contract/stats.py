"""p-values and -log10 p of z, t and χ² statistics, in log space, and genomic control.

The one set of p-value helpers every stage uses (association, gate, harmonisation,
meta-analysis, comparison, report), so that a p-value means the same thing and
prints the same digits wherever it is computed:

- :func:`p_from_z`, :func:`p_from_t`, :func:`p_from_chi2`: p as a float (0 where it underflows);
- :func:`neg_log10_p_from_z`, :func:`neg_log10_p_from_t`, :func:`neg_log10_p_from_chi2`,
  :func:`neg_log10_p`: -log10 p, computed in log space so that p far below the
  float range (|z| = 40, χ² = 2000) keeps a finite -log10 p;
- :func:`z_from_neg_log10_p`, :func:`chi2_from_neglog10p`: back from -log10 p, also
  beyond the float range;
- :func:`neg_log10_p_of_table`: the -log10 p of each row of a summary-statistics table;
- :func:`lambda_gc`: the genomic-control inflation factor.

Only :mod:`scipy.special`, imported inside the functions: ``scipy.stats`` costs
0.5-1.5 s of every command's start-up (benchmarks/README.md, "Start-up"), and a
command that never computes a p-value (``verify``, ``export``) loads none of it.
tests/test_stats.py checks each helper at the extremes against mpmath at 50 digits.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from crosscohort.contract.errors import InputError

if TYPE_CHECKING:
    import polars as pl

__all__ = [
    "CHI2_1_MEDIAN",
    "chi2_from_neglog10p",
    "lambda_gc",
    "neg_log10_p",
    "neg_log10_p_from_chi2",
    "neg_log10_p_from_t",
    "neg_log10_p_from_z",
    "neg_log10_p_of_table",
    "p_and_neg_log10_p_from_chi2",
    "p_from_chi2",
    "p_from_t",
    "p_from_z",
    "z_from_neg_log10_p",
]

#: Median of the chi-square distribution with one degree of freedom,
#: ``scipy.stats.chi2.ppf(0.5, 1)`` (tests/test_stats.py checks the literal).
#: A literal because importing ``scipy.stats`` costs ~0.5 s of every command's
#: start-up; ``scipy.special`` alone is enough here.
CHI2_1_MEDIAN = 0.454936423119572

#: Below this p, ``chdtrc`` loses digits to underflow and the continued fraction takes over.
_CHI2_TINY_P = 1e-280


def p_from_z(z: np.ndarray) -> np.ndarray:
    """Two-sided p of a standard normal z: ``2 Φ(-|z|)``; 0 where it underflows (|z| > 38.5)."""
    from scipy.special import ndtr

    return 2.0 * ndtr(-np.abs(z))


def p_from_t(t: np.ndarray, df: np.ndarray | float) -> np.ndarray:
    """Two-sided p of a Student t statistic with ``df`` degrees of freedom: ``2 stdtr(df, -|t|)``."""
    from scipy.special import stdtr

    return 2.0 * stdtr(df, -np.abs(t))


def p_from_chi2(chi2: np.ndarray, df: np.ndarray | float) -> np.ndarray:
    """Upper tail of the χ² distribution with ``df`` degrees of freedom, ``Q(df/2, χ²/2)``.

    ``scipy.special.chdtrc`` (what ``scipy.stats.chi2.sf`` calls); 0 where it underflows.
    """
    from scipy.special import chdtrc

    return chdtrc(df, chi2)


def neg_log10_p(p: np.ndarray) -> np.ndarray:
    """-log10 of p-values; p = 0 gives +inf, NaN stays NaN (no warning for either)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return -np.log10(p)


def neg_log10_p_from_z(z: np.ndarray) -> np.ndarray:
    """Two-sided -log10 p of a standard normal z, exact in the far tail.

    Computed as ``-(log 2 + log Φ(-|z|)) / log 10`` with ``scipy.special.log_ndtr``
    so |z| = 40 gives 349.136 (p = 7.3e-350) rather than infinity.
    """
    from scipy.special import log_ndtr

    z = np.asarray(z, dtype=float)
    with np.errstate(invalid="ignore"):
        return -(np.log(2.0) + log_ndtr(-np.abs(z))) / np.log(10.0)


def neg_log10_p_from_t(t: np.ndarray, df: np.ndarray | float) -> np.ndarray:
    """Two-sided -log10 p of a Student t statistic with ``df`` degrees of freedom.

    ``-log10(2 stdtr(df, -|t|))``, the same numbers as ``scipy.stats.t.logsf``
    (whose log survival function is ``log(stdtr(df, -t))``). Where ``stdtr``
    underflows, ``2 stdtr(df, -|t|) = I_x(df/2, 1/2)`` with ``x = df / (df + t²)``
    is taken in log space from ``I_x(a, b) = x^a F(a, 1 - b; a + 1; x) / (a B(a, b))``
    (DLMF 8.17.8), so t = 1e200 on 5 df gives 998.72 rather than infinity.
    """
    from scipy.special import betaln, hyp2f1, stdtr

    t, dfa = np.broadcast_arrays(np.asarray(t, dtype=float), np.asarray(df, dtype=float))
    with np.errstate(divide="ignore", invalid="ignore"):
        sf = stdtr(dfa, -np.abs(t))
        out = np.asarray(-(np.log(2.0) + np.log(sf)) / np.log(10.0))
        # Zero or subnormal (digits lost): the tail in log space.
        tiny = (sf < np.finfo(float).tiny) & np.isfinite(t) & np.isfinite(dfa) & (dfa > 0)
        if np.any(tiny):
            n, tt = dfa[tiny], np.abs(t[tiny])
            a = n / 2.0
            # log x without forming t², which overflows for |t| > 1e154
            log_x = np.log(n) - 2.0 * np.log(tt) - np.log1p(n / tt / tt)
            log_i = (
                a * log_x
                + np.log(hyp2f1(a, 0.5, a + 1.0, np.exp(log_x)))
                - np.log(a)
                - betaln(a, 0.5)
            )
            out[tiny] = -log_i / np.log(10.0)
    return out[()]


def neg_log10_p_from_chi2(chi2: np.ndarray, df: np.ndarray | float) -> np.ndarray:
    """-log10 of the χ² survival function, exact where p underflows.

    ``chdtrc`` (the regularised upper incomplete gamma Q(df/2, χ²/2)) where
    p > 1e-280; beyond, ``log Q(a, x) = -x + a log x - log Γ(a) + log CF``
    with the continued fraction of Q evaluated by the modified Lentz method
    (Numerical Recipes 6.2), so χ² = 5000 on 3 df gives 1083.9 rather than
    infinity. NaN in, NaN out; p = 1 at χ² = 0.
    """
    return p_and_neg_log10_p_from_chi2(chi2, df)[1]


def p_and_neg_log10_p_from_chi2(chi2: np.ndarray, df: np.ndarray | float
                                ) -> tuple[np.ndarray, np.ndarray]:
    """:func:`p_from_chi2` and :func:`neg_log10_p_from_chi2` of the same χ², ``chdtrc`` evaluated once."""
    from scipy.special import chdtrc

    x = np.asarray(chi2, dtype=np.float64)
    dfa = np.broadcast_to(np.asarray(df, dtype=np.float64), x.shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = chdtrc(dfa, x)
        out = np.asarray(-np.log10(p))
    tiny = np.isfinite(x) & (p < _CHI2_TINY_P)
    if tiny.any():
        out[tiny] = -_log_upper_gamma_q(dfa[tiny] / 2.0, x[tiny] / 2.0) / np.log(10.0)
    return p[()], out[()]


def _log_upper_gamma_q(a: np.ndarray, x: np.ndarray, *, iterations: int = 200) -> np.ndarray:
    """log Q(a, x) by its continued fraction, for x > a + 1 (where it converges fast)."""
    from scipy.special import gammaln

    fpmin = 1e-300
    b = x + 1.0 - a
    c = np.full_like(x, 1.0 / fpmin)
    d = 1.0 / b
    h = d.copy()
    for i in range(1, iterations + 1):
        an = -i * (i - a)
        b = b + 2.0
        d = an * d + b
        d = np.where(np.abs(d) < fpmin, fpmin, d)
        c = b + an / c
        c = np.where(np.abs(c) < fpmin, fpmin, c)
        d = 1.0 / d
        delta = d * c
        h = h * delta
        if np.all(np.abs(delta - 1.0) < 1e-16):
            break
    return -x + a * np.log(x) - gammaln(a) + np.log(h)


def z_from_neg_log10_p(neg_log10_p: np.ndarray, sign: np.ndarray) -> np.ndarray:
    """Signed standard-normal z of two-sided p-values given as -log10 p, exact in the far tail.

    ``|z| = -Φ^-1(p/2)`` evaluated from ``log(p/2)`` with
    :func:`scipy.special.ndtri_exp`, so p = 1e-400 (beyond float range) still
    gives |z| = 42.8; ``sign`` (of beta) gives the sign; sign 0 gives z = 0.
    """
    from scipy.special import ndtri_exp

    x = np.asarray(neg_log10_p, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        absz = -ndtri_exp(-x * np.log(10.0) - np.log(2.0))
    return np.sign(sign) * absz


def chi2_from_neglog10p(neglog10p: np.ndarray) -> np.ndarray:
    """1-df chi-square statistics of two-sided p-values given as -log10 p.

    Working from -log10 p keeps p-values that underflow to 0 finite:
    ``chi2.isf`` of ``10**-x`` is evaluated through the log survival function.
    """
    from scipy.special import chdtri

    x = np.asarray(neglog10p, dtype=float)
    p = np.power(10.0, -x)
    out = np.asarray(chdtri(1.0, p))  # = scipy.stats.chi2.isf(p, 1), which calls it
    tiny = p < 1e-300
    if np.any(tiny):
        # z from log p via the normal's inverse survival function in log space
        from scipy.special import ndtri_exp

        logp_half = -x[tiny] * np.log(10.0) - np.log(2.0)
        out[tiny] = ndtri_exp(logp_half) ** 2
    return out[()]


def neg_log10_p_of_table(
    df: pl.DataFrame,
    *,
    source: str = "sumstats",
    p_column: str = "p_value",
    neglog_column: str = "neg_log_10_p_value",
) -> np.ndarray:
    """-log10 p of each row of a summary-statistics table, float64.

    ``neg_log_10_p_value`` where it is finite (authoritative where p underflows),
    else -log10 of ``p_value`` (p = 0 gives +inf, a missing p NaN); a table with
    neither column gets the -log10 p of z = β/SE (normal).

    Parameters
    ----------
    df
        The table.
    source
        What the table is (a file name), for the error.
    p_column, neglog_column
        The p-value and -log10 p columns.

    Raises
    ------
    InputError
        When the table has neither p-value column nor ``beta`` and ``standard_error``.
    """
    import polars as pl

    cols = df.columns
    if neglog_column in cols:
        x = df.get_column(neglog_column).cast(pl.Float64).to_numpy().copy()
        if p_column in cols:
            miss = ~np.isfinite(x)
            if miss.any():
                x[miss] = neg_log10_p(df.get_column(p_column).cast(pl.Float64).to_numpy()[miss])
        return x
    if p_column in cols:
        return neg_log10_p(df.get_column(p_column).cast(pl.Float64).to_numpy())
    if "beta" in cols and "standard_error" in cols:
        z = df.get_column("beta").cast(pl.Float64) / df.get_column("standard_error").cast(
            pl.Float64
        )
        return neg_log10_p_from_z(z.to_numpy())
    raise InputError(
        f"{source}: needs a p-value column ({neglog_column} or {p_column}) or beta and "
        f"standard_error for a -log10 p; present: {cols}"
    )


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
