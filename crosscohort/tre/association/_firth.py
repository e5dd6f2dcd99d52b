"""Firth-penalised logistic regression, batched over the variants of a chunk (private).

The engine calls :func:`firth_chunk` for the variants whose ordinary logistic
fit failed (no convergence, separation), as plink2's ``--glm firth-fallback``
does. Firth's penalty removes the first-order bias of the maximum-likelihood
estimate and keeps it finite under complete or quasi-complete separation.
Whole-genome regression's step 2 calls it with the LOCO prediction as
``offset`` for its exact Firth correction (REGENIE ``--firth`` without
``--approx``): the full fit, and the null fit with the dosage's coefficient
held at 0 (``fit_dosage=False``) whose penalty is still that of the full
design (the profile penalised likelihood of ``logistf``), so that twice the
difference of their penalised log-likelihoods is the penalised
likelihood-ratio statistic.

Notes
-----
The penalised log-likelihood is ``l*(b) = l(b) + 1/2 log det I(b)`` with
``I(b) = X'WX``, ``W = diag(p(1-p))``. Its score is
``U*_j = sum_i (y_i - p_i + h_i (1/2 - p_i)) x_ij`` where ``h_i`` is the i-th
diagonal element of the hat matrix ``W^1/2 X I^-1 X' W^1/2``. Newton steps
``I^-1 U*`` are capped at ``max_step`` in absolute value and halved while
they lower ``l*`` (Heinze & Schemper 2002; R's ``logistf``); a step that
reverses the previous one is shortened to the secant estimate of the
optimum, without which singleton carriers oscillate around it (plink2
2.00a3.5 stops there, up to ~2e-4 relative off). Convergence: the full
Newton step below ``tol`` for every coefficient. With ``fit_dosage=False``
the step of the covariates is ``(I_cc)^-1 U*_c`` (the hat diagonal still of
the full design; ``logistf``'s restricted fit). The standard
error is Wald-type, ``sqrt((I^-1)_gg)`` at the penalised estimate, and the
test a Wald z, as in plink2 and ``logistf`` with ``pl=FALSE``.

References
----------
Firth D (1993). Bias reduction of maximum likelihood estimates. Biometrika
80:27-38. Heinze G, Schemper M (2002). A solution to the problem of
separation in logistic regression. Stat Med 21:2409-2419.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crosscohort.tre.association._kernels import expit

__all__ = ["FIRTH_CONVERGE_FAIL", "FirthFit", "firth_chunk"]

#: Error code of a variant whose Firth fit did not converge either (plink2's name).
FIRTH_CONVERGE_FAIL = "FIRTH_CONVERGE_FAIL"

# Variants fitted together: the hat-diagonal step holds n x batch doubles a few times.
_BATCH = 64


@dataclass(frozen=True)
class FirthFit:
    """Per-variant Firth estimates of the dosage coefficient (NaN where not converged)."""

    beta: np.ndarray  # (m,)
    standard_error: np.ndarray  # (m,)
    converged: np.ndarray  # (m,) bool
    iterations: np.ndarray  # (m,) int
    #: (m,) penalised log-likelihood ``l + 1/2 log det I`` at the estimate (NaN where not converged).
    penalised_loglik: np.ndarray | None = None


def _tri(k: int) -> tuple[np.ndarray, np.ndarray]:
    return np.triu_indices(k)


class _Batch:
    """Quantities of a batch of variants at their current coefficients."""

    def __init__(self, c: np.ndarray, outer: np.ndarray, y: np.ndarray, g: np.ndarray,
                 obs: np.ndarray, bc: np.ndarray, bg: np.ndarray, offset: np.ndarray | None = None):
        n, k = c.shape
        m = g.shape[1]
        eta = c @ bc + g * bg  # (n, m)
        if offset is not None:
            eta += offset[:, None]
        p = expit(eta)
        w = p * (1.0 - p) * obs
        info = np.empty((m, k + 1, k + 1))
        i, j = _tri(k)
        cwc = w.T @ outer  # (m, T)
        info[:, i, j] = cwc
        info[:, j, i] = cwc
        wg = w * g
        cwg = (c.T @ wg).T
        info[:, :k, k] = cwg
        info[:, k, :k] = cwg
        info[:, k, k] = np.einsum("ij,ij->j", wg, g)
        sign, logdet = np.linalg.slogdet(info)
        loglik = np.sum(obs * (y[:, None] * eta - np.logaddexp(0.0, eta)), axis=0)
        self.ok = (sign > 0) & np.isfinite(logdet) & np.isfinite(loglik)
        self.pll = np.where(self.ok, loglik + 0.5 * np.where(self.ok, logdet, 0.0), -np.inf)
        self.info, self.p, self.w = info, p, w


def _step(c: np.ndarray, outer: np.ndarray, y: np.ndarray, g: np.ndarray, obs: np.ndarray,
          st: _Batch, fit_dosage: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Newton direction ``I^-1 U*`` (m, k+1) and ``I^-1`` (m, k+1, k+1) at the batch's state.

    With ``fit_dosage=False`` the direction is ``((I_cc)^-1 U*_c, 0)``: the
    dosage's coefficient stays where it is, the hat diagonal (the penalty)
    is still the full design's.
    """
    k = c.shape[1]
    inv = np.linalg.inv(np.where(st.ok[:, None, None], st.info, np.eye(k + 1)))
    # Hat diagonal h_i = w_i x_i' I^-1 x_i with x_i = (c_i, g_i), for all variants at once:
    # c' A c through the row-wise outer products (off-diagonal terms twice), plus the g terms.
    i, j = _tri(k)
    a_tri = inv[:, i, j] * np.where(i == j, 1.0, 2.0)  # (m, T)
    quad = outer @ a_tri.T  # (n, m)
    quad += 2.0 * g * (c @ inv[:, :k, k].T)
    quad += g * g * inv[:, k, k]
    h = st.w * quad
    r = (y[:, None] - st.p + h * (0.5 - st.p)) * obs
    u = np.empty((g.shape[1], k + 1))
    u[:, :k] = (c.T @ r).T
    u[:, k] = np.einsum("ij,ij->j", g, r)
    if not fit_dosage:
        info_cc = np.where(st.ok[:, None, None], st.info[:, :k, :k], np.eye(k))
        delta = np.zeros_like(u)
        delta[:, :k] = np.linalg.solve(info_cc, u[:, :k, None])[:, :, 0]
        return delta, inv
    return np.einsum("vab,vb->va", inv, u), inv


def firth_chunk(covariates: np.ndarray, y: np.ndarray, dosages: np.ndarray, observed: np.ndarray,
                *, start: np.ndarray | None = None, offset: np.ndarray | None = None,
                fit_dosage: bool = True, max_iter: int = 100, tol: float = 1e-9,
                max_step: float = 5.0, max_halvings: int = 25) -> FirthFit:
    """Firth logistic regression of ``y`` on the covariates and each variant's dosage.

    Parameters
    ----------
    covariates
        (n, k) design including the intercept column.
    y
        (n,) 0/1 outcome.
    dosages
        (n, m) dosages, any value (e.g. 0) where the call is missing.
    observed
        (n, m) bool; a sample with a missing call is left out of that variant's fit.
    start
        (k,) starting covariate coefficients (the null fit); zeros when None.
    offset
        (n,) fixed part of the linear predictor (WGR step 2: the LOCO
        prediction); none when None.
    fit_dosage
        False: the dosage's coefficient is held at 0 and only the covariates
        are fitted, under the full design's penalty (the null model of the
        penalised likelihood-ratio test); ``beta`` is then 0.
    max_iter, tol
        Newton iterations and the convergence bound on the largest absolute
        coefficient change.
    max_step, max_halvings
        Step cap and step-halving limit (``logistf``'s ``maxstep``/``maxhs``).

    Returns
    -------
    FirthFit
        Coefficient and Wald standard error of the dosage per variant, and
        the penalised log-likelihood at the estimate.
    """
    c = np.ascontiguousarray(covariates, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    g_all = np.asarray(dosages, dtype=np.float64)
    obs_all = np.asarray(observed, dtype=np.float64)
    n, k = c.shape
    m = g_all.shape[1]
    assert g_all.shape == obs_all.shape == (n, m), (g_all.shape, obs_all.shape, c.shape)
    off = None if offset is None else np.asarray(offset, dtype=np.float64)
    assert off is None or off.shape == (n,), (None if off is None else off.shape, n)
    i, j = _tri(k)
    outer = c[:, i] * c[:, j]
    b0 = np.zeros(k) if start is None else np.asarray(start, dtype=np.float64)
    beta = np.full(m, np.nan)
    se = np.full(m, np.nan)
    conv = np.zeros(m, dtype=bool)
    iters = np.zeros(m, dtype=np.int64)
    pll = np.full(m, np.nan)
    for s in range(0, m, _BATCH):
        sl = slice(s, min(s + _BATCH, m))
        g = np.where(obs_all[:, sl] > 0, g_all[:, sl], 0.0)
        obs = obs_all[:, sl]
        mb = g.shape[1]
        bc = np.repeat(b0[:, None], mb, axis=1)
        bg = np.zeros(mb)
        st = _Batch(c, outer, y, g, obs, bc, bg, off)
        active = st.ok.copy()
        done = np.zeros(mb, dtype=bool)
        prev = np.zeros((mb, k + 1))
        for it in range(1, max_iter + 1):
            idx = np.flatnonzero(active)
            if idx.size == 0:
                break
            sub = _Batch.__new__(_Batch)
            sub.ok, sub.pll, sub.info, sub.p, sub.w = (st.ok[idx], st.pll[idx], st.info[idx],
                                                      st.p[:, idx], st.w[:, idx])
            delta, _ = _step(c, outer, y, g[:, idx], obs[:, idx], sub, fit_dosage)
            full = np.max(np.abs(delta), axis=1)  # Newton step size: the convergence measure
            # I = X'WX is not the Hessian of the penalised likelihood, so near a flat optimum
            # (a singleton carrier) the step can overshoot and flip back and forth forever.
            # On a reversal, take the secant step: for steps d_prev then d = -r d_prev, the
            # zero of the (linearised) step lies at d / (1 + r).
            back = -np.einsum("va,va->v", delta, prev[idx])
            norm = np.einsum("va,va->v", prev[idx], prev[idx])
            r = np.where((back > 0) & (norm > 0), back / np.where(norm > 0, norm, 1.0), 0.0)
            delta /= (1.0 + r)[:, None]
            big = np.max(np.abs(delta), axis=1)
            delta *= np.minimum(1.0, max_step / np.where(big > 0, big, 1.0))[:, None]
            new_c = bc[:, idx] + delta[:, :k].T
            new_g = bg[idx] + delta[:, k]
            cand = _Batch(c, outer, y, g[:, idx], obs[:, idx], new_c, new_g, off)
            # Step halving: a step that lowers the penalised likelihood is shortened.
            worse = ~(cand.pll >= sub.pll - 1e-12 * np.abs(sub.pll))
            for _ in range(max_halvings):
                if not worse.any():
                    break
                delta[worse] *= 0.5
                wi = np.flatnonzero(worse)
                new_c[:, wi] = bc[:, idx[wi]] + delta[wi, :k].T
                new_g[wi] = bg[idx[wi]] + delta[wi, k]
                part = _Batch(c, outer, y, g[:, idx[wi]], obs[:, idx[wi]], new_c[:, wi], new_g[wi], off)
                cand.pll[wi], cand.ok[wi] = part.pll, part.ok
                cand.info[wi], cand.p[:, wi], cand.w[:, wi] = part.info, part.p, part.w
                worse[wi] = ~(part.pll >= sub.pll[wi] - 1e-12 * np.abs(sub.pll[wi]))
            bc[:, idx] = new_c
            bg[idx] = new_g
            st.ok[idx], st.pll[idx], st.info[idx] = cand.ok, cand.pll, cand.info
            st.p[:, idx], st.w[:, idx] = cand.p, cand.w
            prev[idx] = delta
            iters[s + idx] = it
            small = full < tol
            finished = small & cand.ok & np.isfinite(new_g)
            done[idx[finished]] = True
            active[idx[finished | ~cand.ok | ~np.isfinite(new_g)]] = False
        fin = np.flatnonzero(done)
        if fin.size:
            inv = np.linalg.inv(st.info[fin])
            var = inv[:, k, k]
            good = var > 0
            beta[s + fin[good]] = bg[fin[good]]
            se[s + fin[good]] = np.sqrt(var[good])
            conv[s + fin[good]] = True
            pll[s + fin[good]] = st.pll[fin[good]]
    return FirthFit(beta, se, conv, iters, pll)
