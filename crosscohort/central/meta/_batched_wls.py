"""Many small weighted least-squares fits at once, one per variant, in closed form (private).

MR-MEGA regresses each variant's K cohort effects on the same K x p design
(an intercept and T axes) with the variant's own weights 1/SE^2. The normal
equations ``X'WX b = X'Wy`` are p x p with p = T + 1 (3 in the demo): a
batched LAPACK inverse of an ``(m, p, p)`` stack spent most of MR-MEGA's
regression time on call overhead per 3 x 3 block and on copies
(benchmarks/README.md, "MR-MEGA on top of fixed + random"). Here every entry
of the p x p system is a length-m vector and the Cholesky factorisation,
its inverse and the solution are written out entry by entry: O(p^3) vector
operations over all variants, no per-variant Python and no ``(m, p, p)``
array. Equal to the LAPACK path to ~1e-15 relative on well-conditioned
systems.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["BatchedWls", "batched_wls"]


@dataclass(frozen=True)
class BatchedWls:
    """Per-variant weighted least-squares fits (length-m arrays; NaN where not fitted).

    ``coef`` and ``inv_diag`` are ``(p, m)``: the coefficients and the diagonal
    of ``(X'WX)^-1``; ``rss`` the weighted residual sum of squares, ``tss0``
    the weighted sum of squares of y, ``tss`` of y about its weighted mean.
    """

    coef: np.ndarray
    inv_diag: np.ndarray
    rss: np.ndarray
    tss0: np.ndarray
    tss: np.ndarray


def batched_wls(x: np.ndarray, y: np.ndarray, w: np.ndarray, fit: np.ndarray) -> BatchedWls:
    """Weighted least squares of ``y[:, v]`` on ``x`` with weights ``w[:, v]``, for every variant v.

    Parameters
    ----------
    x
        ``(k, p)`` design shared by all variants (k observations, here cohorts).
    y, w
        ``(k, m)`` responses and weights; an absent observation has weight 0
        (and any finite y).
    fit
        ``(m,)`` bool: variants to fit; the others, and those whose ``X'WX``
        is not positive definite (collinear design among the observations
        with weight), get NaN.

    Returns
    -------
    BatchedWls
        ``b = (X'WX)^-1 X'Wy`` by the Cholesky factor ``L`` of ``X'WX``
        (``(X'WX)^-1 = L^-T L^-1``); ``rss = sum w (y - Xb)^2``,
        ``tss0 = sum w y^2``, ``tss = sum w (y - ybar)^2``.
    """
    k, p = x.shape
    m = y.shape[1]
    if y.shape != (k, m) or w.shape != (k, m) or fit.shape != (m,):
        raise ValueError(
            f"y and w must be ({k}, m) and fit (m,); got {y.shape}, {w.shape}, {fit.shape}"
        )
    wy = w * y
    # X'WX (lower triangle) and X'Wy: each entry a length-m vector.
    s = [[(x[:, a] * x[:, b]) @ w for b in range(a + 1)] for a in range(p)]
    r = [x[:, a] @ wy for a in range(p)]
    ok = fit.copy()
    # Cholesky X'WX = L L' entry by entry; a pivot not clearly positive marks the variant singular.
    low = [[np.empty(0)] * (a + 1) for a in range(p)]
    with np.errstate(invalid="ignore", divide="ignore"):
        for a in range(p):
            for b in range(a):
                acc = s[a][b] - sum((low[a][c] * low[b][c] for c in range(b)), np.zeros(m))
                low[a][b] = acc / low[b][b]
            d = s[a][a] - sum((low[a][c] ** 2 for c in range(a)), np.zeros(m))
            ok &= d > 1e-12 * s[a][a]
            low[a][a] = np.sqrt(np.where(ok, d, 1.0))
        # L^-1 (lower triangular) by forward substitution.
        linv = [[np.zeros(m)] * (a + 1) for a in range(p)]
        for a in range(p):
            linv[a][a] = 1.0 / low[a][a]
            for b in range(a):
                acc = sum((low[a][c] * linv[c][b] for c in range(b, a)), np.zeros(m))
                linv[a][b] = -acc / low[a][a]
        # (X'WX)^-1 = L^-T L^-1: entry (a, b) = sum_c>=max(a,b) linv[c][a] linv[c][b].
        inv = [
            [sum(linv[c][a] * linv[c][b] for c in range(a, p)) for b in range(a + 1)]
            for a in range(p)
        ]

        def inv_at(a: int, b: int) -> np.ndarray:
            return inv[a][b] if b <= a else inv[b][a]

        coef = np.empty((p, m))
        for a in range(p):
            coef[a] = sum(inv_at(a, b) * r[b] for b in range(p))
        inv_diag = np.array([inv[a][a] for a in range(p)])
        rss = np.zeros(m)
        tss0 = np.zeros(m)
        sum_w = np.zeros(m)
        for j in range(k):
            resid = y[j] - sum(x[j, a] * coef[a] for a in range(p))
            rss += w[j] * resid * resid
            tss0 += wy[j] * y[j]
            sum_w += w[j]
        ybar = r[0] / sum_w if np.all(x[:, 0] == 1.0) else (wy.sum(axis=0) / sum_w)
        tss = np.zeros(m)
        for j in range(k):
            dev = y[j] - ybar
            tss += w[j] * dev * dev
    nan = ~ok
    coef[:, nan] = np.nan
    inv_diag[:, nan] = np.nan
    for arr in (rss, tss0, tss):
        arr[nan] = np.nan
    return BatchedWls(coef=coef, inv_diag=inv_diag, rss=rss, tss0=tss0, tss=tss)
