"""Vectorised per-chunk regression kernels (private; the engine is the public face).

Every function here works on one chunk of variants at once: a samples x
variants float64 dosage matrix with NaN for missing calls. Samples with a
missing call are excluded from that variant's fit only, as plink2 does.

Linear regression uses the Frisch-Waugh-Lovell identity so that the
covariate cross-products are computed once per trait and only corrected, per
variant, for the samples whose call is missing. Logistic regression runs
Newton-Raphson for all variants of a chunk together, assembling each
variant's information matrix from BLAS products.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit, ndtr, stdtr

from crosscohort.sumstats import neg_log10_p_from_t, neg_log10_p_from_z

__all__ = [
    "CONST_ALLELE",
    "TOO_FEW_SAMPLES",
    "VIF_TOO_HIGH",
    "SINGULAR_COVARIATES",
    "ZERO_RESIDUAL_VARIANCE",
    "LOGISTIC_CONVERGE_FAIL",
    "ChunkData",
    "ChunkFit",
    "LinearModel",
    "LogisticModel",
    "prepare_chunk",
    "linear_model",
    "logistic_model",
    "linear_chunk",
    "logistic_chunk",
]

# Error codes (plink2's ERRCODE where one exists).
CONST_ALLELE = "CONST_ALLELE"  # one genotype value among the variant's analysed samples
TOO_FEW_SAMPLES = "TOO_FEW_SAMPLES"  # no residual degree of freedom left
VIF_TOO_HIGH = "VIF_TOO_HIGH"  # dosage (almost) a linear function of the covariates
SINGULAR_COVARIATES = "SINGULAR_COVARIATES"  # covariates singular once missing calls are dropped
ZERO_RESIDUAL_VARIANCE = "ZERO_RESIDUAL_VARIANCE"  # the model fits the trait exactly
LOGISTIC_CONVERGE_FAIL = "LOGISTIC_CONVERGE_FAIL"  # Newton-Raphson did not converge (e.g. separation)


def _tri_index(k: int) -> tuple[np.ndarray, np.ndarray]:
    return np.triu_indices(k)


def _row_outer_tri(c: np.ndarray) -> np.ndarray:
    """Row-wise upper-triangle outer products: (n, k) -> (n, k(k+1)/2)."""
    i, j = _tri_index(c.shape[1])
    return c[:, i] * c[:, j]


def _from_tri(v: np.ndarray, k: int) -> np.ndarray:
    """Symmetric (m, k, k) matrices from their (m, k(k+1)/2) upper triangles."""
    i, j = _tri_index(k)
    out = np.empty((v.shape[0], k, k))
    out[:, i, j] = v
    out[:, j, i] = v
    return out


def _solve(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Batched ``solve(a, b)`` that marks singular systems instead of failing the batch.

    Returns the solutions (NaN where singular) and a boolean mask of the
    systems that could be solved.
    """
    try:
        x = np.linalg.solve(a, b)
        ok = np.all(np.isfinite(x.reshape(x.shape[0], -1)), axis=1)
        return x, ok
    except np.linalg.LinAlgError:
        # One singular system poisons the whole batched call; retry one by one.
        x = np.full(np.broadcast_shapes(b.shape), np.nan)
        ok = np.zeros(a.shape[0], dtype=bool)
        for v in range(a.shape[0]):
            try:
                x[v] = np.linalg.solve(a[v], b[v])
                ok[v] = np.all(np.isfinite(x[v]))
            except np.linalg.LinAlgError:
                pass
        return x, ok


@dataclass(frozen=True)
class ChunkData:
    """One chunk's dosages prepared for the kernels.

    Attributes
    ----------
    observed
        (n, m) bool, True where the call is present.
    centred
        (n, m) dosages minus the variant's mean over observed samples, 0 where missing.
        Centring changes no slope (the intercept absorbs it) but keeps the
        sums of squares well conditioned for common alleles.
    n_obs
        (m,) observed samples per variant.
    alt_count
        (m,) sum of dosages (counted-allele count) over observed samples.
    constant
        (m,) True when the observed dosages take a single value (or none).
    """

    observed: np.ndarray
    centred: np.ndarray
    n_obs: np.ndarray
    alt_count: np.ndarray
    constant: np.ndarray


def prepare_chunk(dosages: np.ndarray) -> ChunkData:
    """Masks, centred dosages and counts of a (samples x variants) dosage chunk (NaN = missing)."""
    g = np.asarray(dosages, dtype=np.float64)
    missing = np.isnan(g)
    observed = ~missing
    n_obs = observed.sum(axis=0)
    g0 = np.where(missing, 0.0, g)
    alt = g0.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n_obs > 0, alt / np.maximum(n_obs, 1), 0.0)
    centred = np.where(missing, 0.0, g - mean)
    gmax = np.where(missing, -np.inf, g).max(axis=0, initial=-np.inf)
    gmin = np.where(missing, np.inf, g).min(axis=0, initial=np.inf)
    constant = ~(gmax > gmin)
    return ChunkData(observed, centred, n_obs, alt, constant)


@dataclass(frozen=True)
class ChunkFit:
    """Per-variant results of one chunk (arrays of length m; NaN where not fitted)."""

    beta: np.ndarray
    standard_error: np.ndarray
    statistic: np.ndarray
    p_value: np.ndarray
    neg_log_10_p_value: np.ndarray
    residual_df: np.ndarray
    error_code: np.ndarray  # object array: None when fitted, else the code


def _empty_fit(m: int) -> dict[str, np.ndarray]:
    nan = np.full(m, np.nan)
    return {
        "beta": nan.copy(),
        "standard_error": nan.copy(),
        "statistic": nan.copy(),
        "p_value": nan.copy(),
        "neg_log_10_p_value": nan.copy(),
        "residual_df": np.zeros(m, dtype=np.int64),
        "error_code": np.full(m, None, dtype=object),
    }


def _screen(chunk: ChunkData, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Residual df and the error codes decided before any fitting."""
    df = chunk.n_obs - k - 1
    err = np.full(df.shape, None, dtype=object)
    err[chunk.constant] = CONST_ALLELE
    err[df < 1] = TOO_FEW_SAMPLES
    return df, err


# ----------------------------------------------------------------------------- linear


@dataclass(frozen=True)
class LinearModel:
    """Per-trait quantities of y ~ covariates shared by all variants.

    ``covariates`` includes the intercept column; ``y`` is centred (the
    intercept makes that harmless and it keeps y'y well conditioned).
    """

    covariates: np.ndarray  # (n, k)
    y: np.ndarray  # (n,)
    ctc: np.ndarray  # (k, k)
    cty: np.ndarray  # (k,)
    yty: float
    outer_tri: np.ndarray  # (n, k(k+1)/2) row-wise c_i c_i' upper triangles
    cy: np.ndarray  # (n, k) rows c_i * y_i


def linear_model(y: np.ndarray, covariates: np.ndarray) -> LinearModel:
    """Precompute the covariate cross-products of a linear trait.

    Parameters
    ----------
    y
        (n,) trait values of the analysed samples, no missing value.
    covariates
        (n, k) design of the covariates including the intercept column.
    """
    c = np.ascontiguousarray(covariates, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    y = y - y.mean()
    assert c.shape[0] == y.shape[0], (c.shape, y.shape)
    return LinearModel(
        covariates=c,
        y=y,
        ctc=c.T @ c,
        cty=c.T @ y,
        yty=float(y @ y),
        outer_tri=_row_outer_tri(c),
        cy=c * y[:, None],
    )


def linear_chunk(model: LinearModel, chunk: ChunkData, *, max_vif: float = 50.0) -> ChunkFit:
    """Per-variant least-squares slope of the dosage, its SE and Student-t p-value.

    Notes
    -----
    With M the annihilator of the covariates C (over the variant's observed
    samples), Frisch-Waugh-Lovell gives ``beta = g'My / g'Mg``, residual sum
    of squares ``y'My - beta g'My``, ``df = n_v - k - 1``,
    ``SE = sqrt(RSS/df / g'Mg)``. For variants with missing calls the
    cross-products C'C, C'y and y'y lose the missing samples' rows
    (``C'C_v = C'C - sum_{i missing} c_i c_i'``) and are solved in one
    batched call. The genotype's variance inflation factor is
    ``g'g / g'Mg`` on centred g (plink2's ``--vif``, default 50).
    """
    c, y = model.covariates, model.y
    n, k = c.shape
    gc = chunk.centred
    m = gc.shape[1]
    out = _empty_fit(m)
    df, err = _screen(chunk, k)

    ssg = np.einsum("ij,ij->j", gc, gc)
    ctg = c.T @ gc  # (k, m)
    gty = gc.T @ y  # (m,)
    gmg = np.full(m, np.nan)
    gmy = np.full(m, np.nan)
    ymy = np.full(m, np.nan)

    n_missing = n - chunk.n_obs
    todo = err == None  # noqa: E711 -- elementwise comparison on an object array
    full = todo & (n_missing == 0)
    part = todo & (n_missing > 0)

    if full.any():
        idx = np.flatnonzero(full)
        rhs = np.column_stack([ctg[:, idx], model.cty])
        sol = np.linalg.solve(model.ctc, rhs)  # the covariates were checked non-singular
        gmg[idx] = ssg[idx] - np.einsum("kj,kj->j", ctg[:, idx], sol[:, :-1])
        gmy[idx] = gty[idx] - ctg[:, idx].T @ sol[:, -1]
        ymy[idx] = model.yty - model.cty @ sol[:, -1]
    if part.any():
        idx = np.flatnonzero(part)
        miss = (~chunk.observed[:, idx]).astype(np.float64)  # (n, m')
        ctc_v = _from_tri(model.ctc[np.triu_indices(k)][None, :] - miss.T @ model.outer_tri, k)
        cty_v = model.cty[None, :] - miss.T @ model.cy  # (m', k)
        yty_v = model.yty - miss.T @ (y * y)
        b = ctg[:, idx].T  # (m', k)
        sol, ok = _solve(ctc_v, np.stack([b, cty_v], axis=2))
        gmg[idx] = ssg[idx] - np.einsum("vk,vk->v", b, sol[:, :, 0])
        gmy[idx] = gty[idx] - np.einsum("vk,vk->v", b, sol[:, :, 1])
        ymy[idx] = yty_v - np.einsum("vk,vk->v", cty_v, sol[:, :, 1])
        err[idx[~ok]] = SINGULAR_COVARIATES

    todo = err == None  # noqa: E711
    with np.errstate(divide="ignore", invalid="ignore"):
        vif = ssg / gmg
    too_collinear = todo & ~((gmg > 0) & (vif <= max_vif))
    err[too_collinear] = VIF_TOO_HIGH
    todo &= ~too_collinear

    idx = np.flatnonzero(todo)
    beta = gmy[idx] / gmg[idx]
    rss = ymy[idx] - beta * gmy[idx]
    dfi = df[idx].astype(np.float64)
    sigma2 = rss / dfi
    zero = ~(sigma2 > 0)
    err[idx[zero]] = ZERO_RESIDUAL_VARIANCE
    idx, beta, sigma2, dfi = idx[~zero], beta[~zero], sigma2[~zero], dfi[~zero]
    se = np.sqrt(sigma2 / gmg[idx])
    t = beta / se
    out["beta"][idx] = beta
    out["standard_error"][idx] = se
    out["statistic"][idx] = t
    out["p_value"][idx] = 2.0 * stdtr(dfi, -np.abs(t))
    out["neg_log_10_p_value"][idx] = neg_log10_p_from_t(t, dfi)
    out["residual_df"] = np.maximum(df, 0).astype(np.int64)
    out["error_code"] = err
    return ChunkFit(**out)


# --------------------------------------------------------------------------- logistic


@dataclass(frozen=True)
class LogisticModel:
    """Per-trait null fit (covariates only) of a case/control trait."""

    covariates: np.ndarray  # (n, k) including the intercept
    y: np.ndarray  # (n,) 0/1
    beta_null: np.ndarray  # (k,)
    outer_tri: np.ndarray  # (n, k(k+1)/2)
    converged: bool
    iterations: int


def _irls_single(c: np.ndarray, y: np.ndarray, *, max_iter: int, tol: float
                 ) -> tuple[np.ndarray, bool, int]:
    beta = np.zeros(c.shape[1])
    # Start at the intercept-only fit: one Newton step from there is well behaved.
    ybar = float(np.clip(y.mean(), 1e-12, 1 - 1e-12))
    beta[0] = np.log(ybar / (1 - ybar))
    for it in range(1, max_iter + 1):
        p = expit(c @ beta)
        w = p * (1 - p)
        h = (c * w[:, None]).T @ c
        u = c.T @ (y - p)
        try:
            delta = np.linalg.solve(h, u)
        except np.linalg.LinAlgError:
            return beta, False, it
        beta = beta + delta
        if not np.all(np.isfinite(beta)):
            return beta, False, it
        if np.max(np.abs(delta)) < tol:
            return beta, True, it
    return beta, False, max_iter


def logistic_model(y: np.ndarray, covariates: np.ndarray, *, max_iter: int = 50,
                   tol: float = 1e-10) -> LogisticModel:
    """Fit the null logistic model y ~ covariates (the starting point of every variant's fit).

    Parameters
    ----------
    y
        (n,) outcome, 1 = case, 0 = control, no missing value.
    covariates
        (n, k) design including the intercept column.
    """
    c = np.ascontiguousarray(covariates, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    assert c.shape[0] == y.shape[0], (c.shape, y.shape)
    beta, ok, it = _irls_single(c, y, max_iter=max_iter, tol=tol)
    return LogisticModel(c, y, beta, _row_outer_tri(c), ok, it)


def logistic_chunk(model: LogisticModel, chunk: ChunkData, *, max_iter: int = 25,
                   tol: float = 1e-6, max_vif: float = 50.0) -> ChunkFit:
    """Per-variant logistic-regression log-odds of the dosage, Wald SE and normal p-value.

    Newton-Raphson runs for all variants of the chunk at once, each started
    from the null fit (covariates' coefficients, dosage coefficient 0).
    Each iteration assembles, per variant v with weights
    ``w = p(1-p)`` (0 for a missing call),
    ``C'WC`` as ``W' @ (row-wise c c')``, ``C'Wg = C' @ (W*G)`` and
    ``g'Wg = colsum(W*G^2)``, then solves the (k+1) systems in one batched
    call. A variant converges once a step's largest absolute change is below
    ``tol``; the next (quadratically smaller) step is applied and the
    information matrix at that point gives the standard error. Variants not
    converged after ``max_iter`` steps, or whose information matrix becomes
    singular (separation), get ``LOGISTIC_CONVERGE_FAIL`` (plink2
    ``no-firth``; a Firth fallback is not implemented).
    """
    c, y = model.covariates, model.y
    n, k = c.shape
    gc = chunk.centred
    m = gc.shape[1]
    out = _empty_fit(m)
    df, err = _screen(chunk, k)

    # The same collinearity screen as the linear model (plink2 checks unweighted VIF too).
    todo = err == None  # noqa: E711
    idx0 = np.flatnonzero(todo)
    if idx0.size:
        obs = chunk.observed[:, idx0].astype(np.float64)
        full_ctc = c.T @ c
        ctc_v = _from_tri(full_ctc[np.triu_indices(k)][None, :] - (1.0 - obs).T @ model.outer_tri, k)
        ctg = (c.T @ gc[:, idx0]).T
        sol, ok = _solve(ctc_v, ctg[:, :, None])
        ssg = np.einsum("ij,ij->j", gc[:, idx0], gc[:, idx0])
        gmg = ssg - np.einsum("vk,vk->v", ctg, sol[:, :, 0])
        with np.errstate(divide="ignore", invalid="ignore"):
            bad = ~((gmg > 0) & (ssg / gmg <= max_vif))
        err[idx0[~ok]] = SINGULAR_COVARIATES
        err[idx0[ok & bad]] = VIF_TOO_HIGH

    active = np.flatnonzero(err == None)  # noqa: E711
    bc = np.repeat(model.beta_null[:, None], active.size, axis=1)  # (k, m_a)
    bg = np.zeros(active.size)
    small = np.zeros(active.size, dtype=bool)
    last = np.zeros(k + 1)
    last[k] = 1.0
    # Working copies of the active variants' columns, re-subset only when the set shrinks.
    g = np.ascontiguousarray(gc[:, active])
    obs = chunk.observed[:, active].astype(np.float64)
    eta0 = c @ model.beta_null  # every variant starts at the null fit
    for it in range(max_iter + 1):
        if active.size == 0:
            break
        if it == 0:
            p = np.repeat(expit(eta0)[:, None], active.size, axis=1)
        else:
            p = c @ bc
            p += g * bg
            expit(p, out=p)
        w = p * (1.0 - p)
        w *= obs
        r = np.subtract(y[:, None], p, out=p)  # p is not needed past this point
        r *= obs
        wg = w * g
        h = np.empty((active.size, k + 1, k + 1))
        h[:, :k, :k] = _from_tri(w.T @ model.outer_tri, k)
        hcg = (c.T @ wg).T  # (m_a, k)
        h[:, :k, k] = hcg
        h[:, k, :k] = hcg
        h[:, k, k] = np.einsum("ij,ij->j", wg, g)
        u = np.empty((active.size, k + 1))
        u[:, :k] = (c.T @ r).T
        u[:, k] = np.einsum("ij,ij->j", g, r)
        rhs = np.stack([u, np.broadcast_to(last, u.shape)], axis=2)
        sol, ok = _solve(h, rhs)
        delta = sol[:, :, 0]
        var_g = sol[:, k, 1]  # (H^-1)_{gg}
        bc = bc + delta[:, :k].T
        bg = bg + delta[:, k]
        finite = ok & np.isfinite(bg) & np.all(np.isfinite(bc), axis=0) & (var_g > 0)
        done = small & finite
        if done.any():
            d = active[done]
            out["beta"][d] = bg[done]
            out["standard_error"][d] = np.sqrt(var_g[done])
        failed = ~finite
        err[active[failed]] = LOGISTIC_CONVERGE_FAIL
        small = np.max(np.abs(delta), axis=1) < tol
        keep = ~(done | failed)
        if not keep.all():
            active, bc, bg, small = active[keep], bc[:, keep], bg[keep], small[keep]
            g, obs = g[:, keep], obs[:, keep]
    err[active] = LOGISTIC_CONVERGE_FAIL

    fitted = np.flatnonzero(err == None)  # noqa: E711
    z = out["beta"][fitted] / out["standard_error"][fitted]
    out["statistic"][fitted] = z
    out["p_value"][fitted] = 2.0 * ndtr(-np.abs(z))
    out["neg_log_10_p_value"][fitted] = neg_log10_p_from_z(z)
    out["residual_df"] = np.maximum(df, 0).astype(np.int64)
    out["error_code"] = err
    return ChunkFit(**out)
