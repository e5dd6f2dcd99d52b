"""Case/control tests with a fixed offset (the step-1 LOCO prediction): kernels of WGR step 2.

For a binary trait, REGENIE's step 2 fits the null logistic model
``logit p = offset + C gamma`` once per trait and chromosome and tests every
variant by the score statistic (Mbatchou et al. 2021): with G the
mean-imputed dosage, ``W = diag(p(1-p))`` and ``G~ = G - C (C'WC)^-1 C'WG``,

    U = G~'(y - p),   V = G~'W G~,   chi2 = U^2 / V,  beta = U / V,  SE = 1 / sqrt(V).

Rows with a score p-value below a threshold are corrected (REGENIE's
``--firth --approx`` or ``--spa``):

- **approximate Firth** (Mbatchou et al. 2021, Methods): the covariate
  effects are fixed at the Firth-penalised null fit, and only the variant's
  coefficient is fitted by Firth-penalised likelihood with offset
  ``offset + C gamma_firth``; the statistic is the penalised likelihood-ratio
  test, BETA the penalised estimate and SE ``1 / sqrt(G'W G)`` at it (the
  unpenalised information, as REGENIE reports by default).
- **saddle-point approximation** of the score's null distribution
  (Dey et al. 2017, as SAIGE and REGENIE ``--spa``) with the
  covariate-adjusted dosage ``G~``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq
from scipy.special import expit, log_ndtr, ndtr

__all__ = ["OffsetNull", "null_fit", "firth_null", "score_chunk", "firth_approx", "spa_pvalues"]


@dataclass(frozen=True)
class OffsetNull:
    """The null logistic fit ``logit p = offset + C gamma`` of one trait on one chromosome."""

    covariates: np.ndarray  # (n, k) with the intercept
    y: np.ndarray  # (n,) 0/1
    offset: np.ndarray  # (n,)
    gamma: np.ndarray  # (k,)
    p: np.ndarray  # (n,)
    w: np.ndarray  # (n,)
    cwc_inv: np.ndarray  # (k, k) (C'WC)^-1


def null_fit(y: np.ndarray, covariates: np.ndarray, offset: np.ndarray, *, max_iter: int = 100,
             tol: float = 1e-8) -> OffsetNull:
    """Newton-Raphson fit of the covariates with a fixed offset.

    Raises
    ------
    ArithmeticError
        When it does not converge (e.g. the covariates separate cases from controls).
    """
    c = np.asarray(covariates, dtype=np.float64)
    gamma = np.zeros(c.shape[1])
    ybar = float(np.clip(y.mean(), 1e-6, 1 - 1e-6))
    gamma[0] = np.log(ybar / (1 - ybar)) - float(offset.mean())
    for _ in range(max_iter):
        p = expit(offset + c @ gamma)
        w = p * (1 - p)
        step = np.linalg.solve((c.T * w) @ c, c.T @ (y - p))
        gamma = gamma + step
        if np.max(np.abs(step)) < tol:
            break
    else:
        raise ArithmeticError("the null logistic model with the LOCO offset did not converge")
    p = expit(offset + c @ gamma)
    w = p * (1 - p)
    return OffsetNull(c, y, offset, gamma, p, w, np.linalg.inv((c.T * w) @ c))


def firth_null(null: OffsetNull, *, max_iter: int = 200, tol: float = 1e-8, max_step: float = 5.0
               ) -> np.ndarray:
    """Covariate coefficients of the Firth-penalised null model (same offset): the approximate Firth's fixed part."""
    c, y, off = null.covariates, null.y, null.offset
    gamma = null.gamma.copy()
    for _ in range(max_iter):
        p = expit(off + c @ gamma)
        w = p * (1 - p)
        info = (c.T * w) @ c
        inv = np.linalg.inv(info)
        h = np.einsum("ij,jk,ik->i", c * w[:, None], inv, c)  # hat diagonal of W^1/2 C
        score = c.T @ (y - p + h * (0.5 - p))
        step = inv @ score
        big = np.max(np.abs(step))
        if big > max_step:
            step *= max_step / big
        gamma = gamma + step
        if np.max(np.abs(score)) < tol:
            return gamma
    raise ArithmeticError("the Firth-penalised null model did not converge")


def score_chunk(null: OffsetNull, centred: np.ndarray) -> tuple[np.ndarray, ...]:
    """Score statistics of a chunk of mean-imputed, centred dosages (n, m).

    Returns
    -------
    tuple
        (beta = U/V, SE = 1/sqrt(V), chi2 = U^2/V, adjusted dosages G~ (n, m)).
    """
    c, w = null.covariates, null.w
    gt = centred - c @ (null.cwc_inv @ ((c.T * w) @ centred))
    u = gt.T @ (null.y - null.p)
    v = (gt * gt * w[:, None]).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return u / v, 1.0 / np.sqrt(v), u * u / v, gt


def _penalised_loglik(eta: np.ndarray, y: np.ndarray, g: np.ndarray) -> float:
    p = expit(eta)
    w = p * (1 - p)
    ll = float(np.sum(y * eta - np.logaddexp(0.0, eta)))
    return ll + 0.5 * float(np.log(np.sum(w * g * g)))


def firth_approx(y: np.ndarray, offset: np.ndarray, g: np.ndarray, *, max_iter: int = 200,
                 tol: float = 1e-6, max_step: float = 5.0) -> tuple[float, float, float, bool]:
    """One variant's Firth-penalised fit of ``logit p = offset + b g`` (b only).

    Returns
    -------
    tuple
        (b, SE = 1/sqrt(g'W g) at b, penalised likelihood-ratio chi2 against
        b = 0, converged).
    """
    b = 0.0
    for _ in range(max_iter):
        p = expit(offset + b * g)
        w = p * (1 - p)
        info = float(np.sum(w * g * g))
        h = w * g * g / info
        score = float(np.sum(g * (y - p + h * (0.5 - p))))
        step = score / info
        if abs(step) > max_step:
            step = np.sign(step) * max_step
        b += step
        if abs(score) < tol:
            break
    else:
        return np.nan, np.nan, np.nan, False
    p = expit(offset + b * g)
    se = 1.0 / np.sqrt(float(np.sum(p * (1 - p) * g * g)))
    lrt = 2.0 * (_penalised_loglik(offset + b * g, y, g) - _penalised_loglik(offset, y, g))
    return b, se, max(lrt, 0.0), True


def spa_pvalues(null: OffsetNull, gt: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Two-sided saddle-point p-values of the scores ``u`` (variances ``v``) of adjusted dosages ``gt``.

    ``K(t) = sum_i log(1 - p_i + p_i e^(t g_i)) - t sum_i g_i p_i`` is the
    cumulant generating function of ``U = sum g_i (y_i - p_i)`` under the
    null; the tail probability at ``|u|`` uses Barndorff-Nielsen's formula
    (Dey et al. 2017), both tails added.
    """
    p = null.p
    out = np.empty(u.size)
    for j in range(u.size):
        g = gt[:, j]
        out[j] = _spa_two_sided(g, p, float(u[j]), float(v[j]))
    return out


def _spa_two_sided(g: np.ndarray, p: np.ndarray, q: float, var: float) -> float:
    if not np.isfinite(q) or var <= 0:
        return np.nan
    mu_g = float(np.sum(g * p))

    def k1(t: float) -> float:
        e = p * np.exp(t * g)
        return float(np.sum(g * e / (1 - p + e))) - mu_g

    def k0(t: float) -> float:
        return float(np.sum(np.log(1 - p + p * np.exp(t * g)))) - t * mu_g

    def k2(t: float) -> float:
        e = p * np.exp(t * g)
        d = 1 - p + e
        return float(np.sum(g * g * e * (1 - p) / (d * d)))

    def tail(qq: float) -> float:
        # P(U > qq) for qq > 0 (or P(U < qq) for qq < 0, by symmetry of the formula).
        if abs(qq) < 1e-12:
            return 0.5
        bound = 1.0
        while k1(bound) < qq and bound < 1e4:
            bound *= 2
        lo = -1.0
        while k1(lo) > qq and lo > -1e4:
            lo *= 2
        if (k1(bound) - qq) * (k1(lo) - qq) > 0:
            return 0.0  # qq lies beyond the score's support: that tail has probability 0
        t = brentq(lambda s: k1(s) - qq, lo, bound, xtol=1e-12)
        wv = np.sign(t) * np.sqrt(max(2 * (t * qq - k0(t)), 0.0))
        vv = t * np.sqrt(k2(t))
        if wv == 0 or vv == 0:
            return float(ndtr(-abs(qq) / np.sqrt(var)))
        z = wv + np.log(vv / wv) / wv
        return float(np.exp(log_ndtr(-abs(z))))

    if abs(q) / np.sqrt(var) < 2.0:  # the normal approximation is accurate near the centre
        return float(2 * ndtr(-abs(q) / np.sqrt(var)))
    return min(1.0, tail(abs(q)) + tail(-abs(q)))
