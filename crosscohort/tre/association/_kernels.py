"""Vectorised per-chunk regression kernels (private; the engine is the public face).

Every function here works on one chunk of variants at once: a samples x
variants float64 dosage matrix with NaN for missing calls. Samples with a
missing call are excluded from that variant's fit only, as plink2 does.

Linear regression uses the Frisch-Waugh-Lovell identity so that the
covariate cross-products are computed once per trait and only corrected, per
variant, for the samples whose call is missing. Logistic regression runs
Newton-Raphson per variant in a compiled kernel (numba, threads over
variants): one pass over the samples per iteration evaluates the fitted
probabilities and accumulates the (k+1) x (k+1) information matrix and score
in float64, with no samples x variants temporaries. Its first iteration,
taken at the null fit shared by every variant, needs only the dosage's row
of the information matrix.

The loops over samples are written as short inner loops over blocks of
contiguous samples so that the compiler vectorises them; ``fastmath`` is
limited to reassociation and fused multiply-add (no assumptions about NaN or
infinity, which separation produces).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from crosscohort.contract.stats import neg_log10_p_from_t, neg_log10_p_from_z, p_from_t, p_from_z
from crosscohort.runtime.jit import is_small_job, njit
from crosscohort.tre._bed import set_threads_from_env


def expit(x: np.ndarray) -> np.ndarray:
    """The logistic function (scipy.special.expit, imported at first use: linear runs never load it)."""
    from scipy.special import expit as _expit

    return _expit(x)


if TYPE_CHECKING:  # imported at the first compiled call (crosscohort.runtime.jit)
    import numba

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
    sum_sq
        (m,) sum of squares of ``centred`` (None when not computed).
    n_cases
        (m,) observed samples among the cases (None unless ``cases`` was given
        to :func:`prepare_chunk`).
    alt_cases
        (m,) sum of dosages over the observed cases (None likewise).
    """

    observed: np.ndarray
    centred: np.ndarray
    n_obs: np.ndarray
    alt_count: np.ndarray
    constant: np.ndarray
    sum_sq: np.ndarray | None = None
    n_cases: np.ndarray | None = None
    alt_cases: np.ndarray | None = None


@njit(parallel=True, cache=True, nogil=True)
def _prepare_columns(g, observed, centred, n_obs, alt, constant, sum_sq, cases, n_cases,
                     alt_cases):  # pragma: no cover - compiled
    n, m = g.shape
    with_cases = cases.size > 0
    for v in numba.prange(m):
        cnt = 0
        tot = 0.0
        cnt_c = 0.0
        tot_c = 0.0
        lo = np.inf
        hi = -np.inf
        for i in range(n):
            x = g[i, v]
            if x == x:  # not NaN
                cnt += 1
                tot += x
                lo = min(lo, x)
                hi = max(hi, x)
                if with_cases:
                    # 0/1 weights: exact integer sums in float64.
                    cnt_c += cases[i]
                    tot_c += cases[i] * x
        if with_cases:
            n_cases[v] = cnt_c
            alt_cases[v] = tot_c
        mean = tot / cnt if cnt > 0 else 0.0
        ss = 0.0
        for i in range(n):
            x = g[i, v]
            if x == x:
                d = x - mean
                centred[i, v] = d
                observed[i, v] = True
                ss += d * d
            else:
                centred[i, v] = 0.0
                observed[i, v] = False
        n_obs[v] = cnt
        alt[v] = tot
        constant[v] = not (hi > lo)
        sum_sq[v] = ss


def _prepare_numpy(g, observed, centred, n_obs, alt, constant, sum_sq, cases, n_cases, alt_cases):
    """The numpy twin of :func:`_prepare_columns` (small jobs; crosscohort.runtime.jit)."""
    obs = ~np.isnan(g)
    x = np.where(obs, g, 0.0)
    n_obs[:] = obs.sum(axis=0)
    alt[:] = x.sum(axis=0)
    mean = np.divide(alt, n_obs, out=np.zeros(g.shape[1]), where=n_obs > 0)
    centred[:] = np.where(obs, g - mean, 0.0)
    observed[:] = obs
    sum_sq[:] = np.einsum("ij,ij->j", centred, centred)
    with np.errstate(invalid="ignore"):
        constant[:] = ~(np.where(obs, g, -np.inf).max(axis=0) > np.where(obs, g, np.inf).min(axis=0))
    if cases.size:
        n_cases[:] = cases @ obs
        alt_cases[:] = cases @ x


def prepare_chunk(dosages: np.ndarray, *, cases: np.ndarray | None = None) -> ChunkData:
    """Masks, centred dosages and counts of a (samples x variants) dosage chunk (NaN = missing).

    One compiled pass per variant (threads over variants) computes the
    counts and the mean, a second writes the centred column while it is
    still in cache. Arrays come back in Fortran order (each variant's
    samples contiguous), as :meth:`crosscohort.tre.genotypes.Genotypes.read`
    returns them.

    Parameters
    ----------
    dosages
        (n, m) dosages, NaN for a missing call.
    cases
        (n,) 0/1 case indicator of a binary trait: the same first pass then
        also counts each variant's observed cases and their dosage sum
        (``n_cases``, ``alt_cases``), which a (samples x variants) product
        would cost a second pass and two more chunk-sized arrays.
    """
    g = np.asarray(dosages, dtype=np.float64)
    if g.ndim != 2:
        raise ValueError(f"dosages must be samples x variants (2-D); got shape {g.shape}")
    if not g.flags.f_contiguous:
        g = np.asfortranarray(g)
    n, m = g.shape
    observed = np.empty((n, m), dtype=np.bool_, order="F")
    centred = np.empty((n, m), dtype=np.float64, order="F")
    n_obs = np.empty(m, dtype=np.int64)
    alt = np.empty(m, dtype=np.float64)
    constant = np.empty(m, dtype=np.bool_)
    sum_sq = np.empty(m, dtype=np.float64)
    if cases is not None:
        w = np.ascontiguousarray(cases, dtype=np.float64)
        if w.shape != (n,):
            raise ValueError(f"cases must have one value per sample ({n}); got shape {w.shape}")
        n_cases = np.zeros(m, dtype=np.float64)
        alt_cases = np.zeros(m, dtype=np.float64)
    else:
        w = n_cases = alt_cases = np.empty(0, dtype=np.float64)
    if n and m and is_small_job():
        _prepare_numpy(g, observed, centred, n_obs, alt, constant, sum_sq, w, n_cases, alt_cases)
    elif n and m:
        set_threads_from_env()
        _prepare_columns(g, observed, centred, n_obs, alt, constant, sum_sq, w, n_cases, alt_cases)
    else:
        n_obs[:] = 0
        alt[:] = 0.0
        constant[:] = True
        sum_sq[:] = 0.0
    return ChunkData(observed, centred, n_obs, alt, constant, sum_sq,
                     n_cases if cases is not None else None, alt_cases if cases is not None else None)


@njit(parallel=True, cache=True, nogil=True)
def _missing_sums(observed, idx, c, y, tri_i, tri_j, tri_out, cy_out, yy_out):  # pragma: no cover
    n, k = c.shape
    for t in numba.prange(idx.size):
        v = idx[t]
        for q in range(tri_i.size):
            tri_out[t, q] = 0.0
        for a in range(k):
            cy_out[t, a] = 0.0
        yy = 0.0
        for i in range(n):
            if not observed[i, v]:
                for q in range(tri_i.size):
                    tri_out[t, q] += c[i, tri_i[q]] * c[i, tri_j[q]]
                for a in range(k):
                    cy_out[t, a] += c[i, a] * y[i]
                yy += y[i] * y[i]
        yy_out[t] = yy


def _missing_crossproducts(observed: np.ndarray, idx: np.ndarray, c: np.ndarray, y: np.ndarray
                           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sums over each variant's missing samples of c c' (upper triangles), c y and y^2.

    Missing calls are few per variant after QC, so a scan of the mask that
    touches only their rows is much cheaper than a (variants x samples) GEMM
    with the 0/1 missingness matrix.
    """
    k = c.shape[1]
    i, j = _tri_index(k)
    tri = np.empty((idx.size, i.size))
    cy = np.empty((idx.size, k))
    yy = np.empty(idx.size)
    if idx.size and is_small_job():
        miss = (~observed[:, idx]).astype(np.float64).T
        tri[:] = miss @ (c[:, i] * c[:, j])
        cy[:] = miss @ (c * y[:, None])
        yy[:] = miss @ (y * y)
    elif idx.size:
        set_threads_from_env()
        _missing_sums(observed, np.ascontiguousarray(idx, dtype=np.int64), np.ascontiguousarray(c),
                      np.ascontiguousarray(y, dtype=np.float64), i.astype(np.int64),
                      j.astype(np.int64), tri, cy, yy)
    return tri, cy, yy


@njit(parallel=True, cache=True, nogil=True, fastmath={"reassoc", "contract", "nsz"})
def _cross_columns(rows, g, idx, out):  # pragma: no cover - compiled
    r, n = rows.shape
    for t in numba.prange(idx.size):
        v = idx[t]
        for a in range(r):
            acc = 0.0
            for i in range(n):
                acc += rows[a, i] * g[i, v]
            out[a, t] = acc


def _cross(rows: np.ndarray, g: np.ndarray, idx: np.ndarray | None = None) -> np.ndarray:
    """``rows @ g[:, idx]`` ((r, n) x (n, m') -> (r, m')) with threads over variants.

    A BLAS GEMM of this skinny shape is memory-bound, and OpenBLAS's own
    threads spin against each other (and against the kernels' threads) on a
    busy machine (figures in benchmarks/README.md, association section).
    Each variant's column is read once, from cache.
    """
    g = g if g.flags.f_contiguous else np.asfortranarray(g)
    idx = np.arange(g.shape[1]) if idx is None else idx
    out = np.empty((rows.shape[0], idx.size))
    if idx.size and is_small_job():
        out[:] = rows @ g[:, idx]
    elif idx.size:
        set_threads_from_env()
        _cross_columns(np.ascontiguousarray(rows, dtype=np.float64), g,
                       np.ascontiguousarray(idx, dtype=np.int64), out)
    return out


def _sum_sq(chunk: ChunkData) -> np.ndarray:
    if chunk.sum_sq is not None:
        return chunk.sum_sq
    return np.einsum("ij,ij->j", chunk.centred, chunk.centred)


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


def _fit_start(model, chunk):
    """What a chunk's linear or logistic fit starts from: covariates, outcome, centred dosages,
    empty results, residual df and the screen's error codes."""
    out = _empty_fit(chunk.centred.shape[1])
    df, err = _screen(chunk, model.covariates.shape[1])
    return model.covariates, model.y, chunk.centred, out, df, err


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
    c, y, gc, out, df, err = _fit_start(model, chunk)
    n, k = c.shape
    m = gc.shape[1]

    ssg = _sum_sq(chunk)
    # C'G and y'G in one pass over the chunk (one GEMM with y as an extra covariate row).
    cgy = _cross(np.vstack([c.T, y[None, :]]), gc)  # (k+1, m)
    ctg, gty = cgy[:k], cgy[k]
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
        tri_m, cy_m, yy_m = _missing_crossproducts(chunk.observed, idx, c, y)
        ctc_v = _from_tri(model.ctc[np.triu_indices(k)][None, :] - tri_m, k)
        cty_v = model.cty[None, :] - cy_m  # (m', k)
        yty_v = model.yty - yy_m
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
    out["p_value"][idx] = p_from_t(t, dfi)
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
    # Shared by every chunk (computed once per trait, not per chunk): the transposed
    # design, C'C, and the null fit's weights w0 = p0(1-p0), residuals r0 = y - p0,
    # C'W0C and C'r0.
    ct: np.ndarray | None = None  # (k, n) C-contiguous
    ctc: np.ndarray | None = None  # (k, k)
    w0: np.ndarray | None = None  # (n,)
    r0: np.ndarray | None = None  # (n,)
    a0: np.ndarray | None = None  # (k, k)
    s0: np.ndarray | None = None  # (k,)


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
    ct, ctc, w0, r0, a0, s0 = _null_terms(c, y, beta)
    return LogisticModel(c, y, beta, _row_outer_tri(c), ok, it, ct=ct, ctc=ctc, w0=w0, r0=r0,
                         a0=a0, s0=s0)


def _null_terms(c: np.ndarray, y: np.ndarray, beta: np.ndarray) -> tuple[np.ndarray, ...]:
    """C' (C-contiguous), C'C, and at the null fit ``beta``: w0, r0, C'W0C, C'r0."""
    p0 = expit(c @ beta)
    w0 = p0 * (1.0 - p0)
    r0 = y - p0
    return np.ascontiguousarray(c.T), c.T @ c, w0, r0, (c * w0[:, None]).T @ c, c.T @ r0


_BLOCK = 256  # samples per inner block: the block's working arrays stay in L1


# exp(x) = 2^j e^r, j = round(x / ln 2), |r| <= ln(2)/2 (Cody-Waite split of ln 2, fdlibm's
# constants: j * _LN2_HI is exact for |j| < 2^11), e^r by its Taylor polynomial to r^13
# (truncation < 5e-18 relative). Measured < 1 ulp from numpy's exp.
_LOG2E = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_INV_FACT = tuple(1.0 / float(np.prod(np.arange(1, j + 1, dtype=np.float64))) for j in range(14))


@njit(cache=True, nogil=True, fastmath={"contract"})
def _expit_block(eta, out, scale_bits, e):  # pragma: no cover - compiled
    """``out[:e] = 1 / (1 + exp(-eta[:e]))`` in float64, vectorised.

    numba's ``np.exp`` is a scalar libm call per element (no SVML here), slower
    (benchmarks/README.md). This one uses only arithmetic the compiler vectorises;
    no reassociation flag, which would undo the Cody-Waite split.
    """
    c = _INV_FACT
    for i in range(e):
        x = min(max(-eta[i], -708.0), 709.0)
        j = np.floor(x * _LOG2E + 0.5)
        r = (x - j * _LN2_HI) - j * _LN2_LO
        q = c[13]
        q = q * r + c[12]
        q = q * r + c[11]
        q = q * r + c[10]
        q = q * r + c[9]
        q = q * r + c[8]
        q = q * r + c[7]
        q = q * r + c[6]
        q = q * r + c[5]
        q = q * r + c[4]
        q = q * r + c[3]
        q = q * r + c[2]
        q = q * r + 1.0
        out[i] = q * r + 1.0
        scale_bits[i] = (np.int64(j) + 1023) << 52  # the bits of the double 2^j
    scale = scale_bits.view(np.float64)
    for i in range(e):
        out[i] = 1.0 / (1.0 + out[i] * scale[i])


@njit(cache=True, nogil=True)
def _solve_small(h, rhs, work):  # pragma: no cover - compiled
    """Solve h x = rhs (K x K, K x 2) in place in ``rhs`` by LU with partial pivoting.

    Returns False when a pivot is exactly zero (singular), as LAPACK's gesv
    reports it; an ill-conditioned system gives large values, which the
    caller's finiteness and convergence checks catch.
    """
    kk = h.shape[0]
    nr = rhs.shape[1]
    for a in range(kk):
        for b in range(kk):
            work[a, b] = h[a, b]
    for col in range(kk):
        piv = col
        best = abs(work[col, col])
        for r in range(col + 1, kk):
            if abs(work[r, col]) > best:
                best = abs(work[r, col])
                piv = r
        if best == 0.0:
            return False
        if piv != col:
            for b in range(kk):
                tmp = work[col, b]
                work[col, b] = work[piv, b]
                work[piv, b] = tmp
            for b in range(nr):
                tmp = rhs[col, b]
                rhs[col, b] = rhs[piv, b]
                rhs[piv, b] = tmp
        d = work[col, col]
        for r in range(col + 1, kk):
            f = work[r, col] / d
            if f != 0.0:
                for b in range(col, kk):
                    work[r, b] -= f * work[col, b]
                for b in range(nr):
                    rhs[r, b] -= f * rhs[col, b]
    for col in range(kk - 1, -1, -1):
        d = work[col, col]
        for b in range(nr):
            acc = rhs[col, b]
            for q in range(col + 1, kk):
                acc -= work[col, q] * rhs[q, b]
            rhs[col, b] = acc / d
    return True


@njit(cache=True, nogil=True, fastmath={"reassoc", "contract", "nsz"})
def _dot(a, b, e):  # pragma: no cover - compiled
    """``sum(a[:e] * b[:e])`` over 1-D contiguous arrays: a reduction LLVM vectorises."""
    acc = 0.0
    for i in range(e):
        acc += a[i] * b[i]
    return acc


@njit(cache=True, nogil=True, fastmath={"reassoc", "contract", "nsz"})
def _dot3(a, b, c, e):  # pragma: no cover - compiled
    """``sum(a[:e] * b[:e] * c[:e])`` over 1-D contiguous arrays."""
    acc = 0.0
    for i in range(e):
        acc += a[i] * b[i] * c[i]
    return acc


@njit(parallel=True, cache=True, nogil=True, fastmath={"reassoc", "contract", "nsz"})
def _logistic_newton(ct, y, g, observed, active, pieces, beta_null, w0, r0, a0, s0,
                     max_iter, tol, beta_out, se_out, ok_out):  # pragma: no cover - compiled
    """Newton-Raphson of y ~ covariates + dosage for each variant in ``active``.

    ``ct`` is the (k, n) transposed design, ``g`` the centred dosages (0 where
    missing), ``w0``/``r0`` the null fit's weights and residuals, ``a0`` =
    C'W0C and ``s0`` = C'r0 over all samples. ``pieces`` splits ``active``
    into contiguous runs, one per task, so that each task copies the design
    once into its own buffer.
    """
    k, n = ct.shape
    kk = k + 1
    n_pieces = pieces.size - 1
    for piece in numba.prange(n_pieces):
        # Rows 0..k-1: covariates; k: this variant's dosages; k+1: its observed mask (0/1).
        x = np.empty((k + 2, n))
        for a in range(k):
            for i in range(n):
                x[a, i] = ct[a, i]
        h = np.empty((kk, kk))
        u = np.empty(kk)
        rhs = np.empty((kk, 2))
        work = np.empty((kk, kk))
        bc = np.empty(k)
        eta = np.empty(_BLOCK)
        w = np.empty(_BLOCK)
        r = np.empty(_BLOCK)
        wx = np.empty(_BLOCK)
        pr = np.empty(_BLOCK)
        xd = np.empty(_BLOCK)
        xv = np.empty(_BLOCK)
        bits = np.empty(_BLOCK, dtype=np.int64)
        # dw/deta = p(1-p)(1-2p) per sample at the last full pass (0 for a missing call).
        dw = np.empty(n)
        for t in range(pieces[piece], pieces[piece + 1]):
            v = active[t]
            xg = x[k]
            xo = x[k + 1]
            for i in range(n):
                xg[i] = g[i, v]
                xo[i] = 1.0 if observed[i, v] else 0.0
            for a in range(k):
                bc[a] = beta_null[a]
            bg = 0.0
            ok_out[t] = False
            for it in range(max_iter + 1):
                for a in range(kk):
                    u[a] = 0.0
                    for b in range(kk):
                        h[a, b] = 0.0
                if it == 0:
                    # At the null fit p is the same for every variant: C'WC and C'r are the
                    # null's, less the rows of this variant's missing calls.
                    for a in range(k):
                        u[a] = s0[a]
                        for b in range(k):
                            h[a, b] = a0[a, b]
                    for i in range(n):
                        if xo[i] == 0.0:
                            for a in range(k):
                                u[a] -= r0[i] * ct[a, i]
                                for b in range(a, k):
                                    h[a, b] -= w0[i] * ct[a, i] * ct[b, i]
                    for a in range(kk):
                        h[a, k] = _dot3(w0, xg, x[a], n)
                    u[k] = _dot(r0, xg, n)
                else:
                    for s in range(0, n, _BLOCK):
                        e = min(_BLOCK, n - s)
                        # 1-D slices, not x[a, s + i]: 2-D indexing keeps LLVM from vectorising
                        # these loops (benchmarks/README.md).
                        gs = xg[s : s + e]
                        for i in range(e):
                            eta[i] = bg * gs[i]
                        for a in range(k):
                            ba = bc[a]
                            xa = x[a, s : s + e]
                            for i in range(e):
                                eta[i] += ba * xa[i]
                        _expit_block(eta, pr, bits, e)
                        os_ = xo[s : s + e]
                        ys = y[s : s + e]
                        dws = dw[s : s + e]
                        for i in range(e):
                            p = pr[i]
                            o = os_[i]
                            w[i] = p * (1.0 - p) * o
                            r[i] = (ys[i] - p) * o
                            dws[i] = w[i] * (1.0 - 2.0 * p)
                        for a in range(kk):
                            xa = x[a, s : s + e]
                            for i in range(e):
                                wx[i] = w[i] * xa[i]
                            for b in range(a, kk):
                                h[a, b] += _dot(wx, x[b, s : s + e], e)
                            u[a] += _dot(r, xa, e)
                for a in range(kk):
                    for b in range(a + 1, kk):
                        h[b, a] = h[a, b]
                    rhs[a, 0] = u[a]
                    rhs[a, 1] = 0.0
                rhs[k, 1] = 1.0
                solved = _solve_small(h, rhs, work)
                var_g = rhs[k, 1]  # (H^-1)_gg at the current estimate
                big = 0.0
                finite = solved
                for a in range(k):
                    bc[a] += rhs[a, 0]
                    big = max(big, abs(rhs[a, 0]))
                    finite = finite and np.isfinite(bc[a])
                bg += rhs[k, 0]
                big = max(big, abs(rhs[k, 0]))
                finite = finite and np.isfinite(bg) and var_g > 0.0
                if not finite:
                    break
                if it > 0 and big < tol:
                    # Converged: the estimate is within ~step^2 of the maximum. The
                    # information was taken one step back, at beta - delta; its (H^-1)_gg is
                    # moved to beta to first order, var(beta) = var - v' dH v with
                    # v = H^-1 e_g and dH = sum_i dw_i (x_i' delta) x_i x_i': one light pass
                    # over the samples instead of a full Newton pass (error ~step^2).
                    corr = 0.0
                    for s in range(0, n, _BLOCK):
                        e = min(_BLOCK, n - s)
                        gs = xg[s : s + e]
                        dg = rhs[k, 0]
                        for i in range(e):
                            xd[i] = dg * gs[i]
                            xv[i] = var_g * gs[i]
                        for a in range(k):
                            da = rhs[a, 0]
                            va = rhs[a, 1]
                            xa = x[a, s : s + e]
                            for i in range(e):
                                xd[i] += da * xa[i]
                                xv[i] += va * xa[i]
                        dws = dw[s : s + e]
                        for i in range(e):
                            corr += dws[i] * xd[i] * xv[i] * xv[i]
                    var_g -= corr
                    if var_g > 0.0:
                        beta_out[t] = bg
                        se_out[t] = np.sqrt(var_g)
                        ok_out[t] = True
                    break


def _logistic_newton_numpy(c, y, g, obs, beta_null, w0, r0, a0, s0, *, max_iter, tol):
    """The numpy twin of :func:`_logistic_newton` (small jobs): the same steps, all variants at once.

    ``g`` and ``obs`` hold the active variants' centred dosages and masks
    (samples x variants). Returns (beta, se, converged) per variant.
    """
    n, k = c.shape
    m = g.shape[1]
    o = obs.astype(np.float64)
    miss = 1.0 - o
    bc = np.tile(beta_null, (m, 1))
    bg = np.zeros(m)
    beta, se = np.full(m, np.nan), np.full(m, np.nan)
    conv = np.zeros(m, dtype=np.bool_)
    running = np.ones(m, dtype=np.bool_)
    e_g = np.zeros(k + 1)
    e_g[k] = 1.0
    dw = np.zeros((n, m))
    cc = (c[:, :, None] * c[:, None, :]).reshape(n, k * k)  # rows' c c', so that C'WC is one GEMM
    for it in range(max_iter + 1):
        h = np.empty((m, k + 1, k + 1))
        u = np.empty((m, k + 1))
        if it == 0:
            # The null fit's C'WC and C'r, less each variant's missing rows (as compiled).
            h[:, :k, :k] = a0[None] - ((miss * w0[:, None]).T @ cc).reshape(m, k, k)
            u[:, :k] = s0[None] - (miss * r0[:, None]).T @ c
            wg = w0[:, None] * g
        else:
            p = expit(c @ bc.T + g * bg)
            w = p * (1.0 - p) * o
            r = (y[:, None] - p) * o
            dw = w * (1.0 - 2.0 * p)
            h[:, :k, :k] = (w.T @ cc).reshape(m, k, k)
            u[:, :k] = r.T @ c
            wg = w * g
        h[:, :k, k] = h[:, k, :k] = wg.T @ c
        h[:, k, k] = (wg * g).sum(axis=0)
        u[:, k] = (r0[:, None] * g if it == 0 else r * g).sum(axis=0)
        rhs = np.stack([u, np.broadcast_to(e_g, u.shape)], axis=2)
        with np.errstate(all="ignore"):
            try:
                sol = np.linalg.solve(h, rhs)
                solved = np.ones(m, dtype=np.bool_)
            except np.linalg.LinAlgError:  # a singular information matrix: variant by variant
                sol = np.full_like(rhs, np.nan)
                solved = np.zeros(m, dtype=np.bool_)
                for v in np.flatnonzero(running):
                    try:
                        sol[v] = np.linalg.solve(h[v], rhs[v])
                        solved[v] = True
                    except np.linalg.LinAlgError:
                        pass
        step, var_g = sol[:, :, 0], sol[:, k, 1]
        bc = np.where(running[:, None], bc + step[:, :k], bc)
        bg = np.where(running, bg + step[:, k], bg)
        big = np.abs(step).max(axis=1)
        finite = solved & np.isfinite(bc).all(axis=1) & np.isfinite(bg) & (var_g > 0.0)
        running &= finite
        done = running & (big < tol) if it > 0 else np.zeros(m, dtype=np.bool_)
        if done.any():
            # The information was taken one step back: its (H^-1)_gg moved to the estimate
            # to first order, var - sum_i dw_i (x_i' delta) (x_i' v)^2 (as compiled).
            v = np.flatnonzero(done)
            xd = c @ step[v, :k].T + g[:, v] * step[v, k]
            xv = c @ sol[v, :k, 1].T + g[:, v] * var_g[v]
            var = var_g[v] - (dw[:, v] * xd * xv * xv).sum(axis=0)
            ok = var > 0.0
            beta[v[ok]], se[v[ok]], conv[v[ok]] = bg[v[ok]], np.sqrt(var[ok]), True
            running[v] = False
        if not running.any():
            break
    return beta, se, conv


def logistic_chunk(model: LogisticModel, chunk: ChunkData, *, max_iter: int = 25,
                   tol: float = 1e-6, max_vif: float = 50.0) -> ChunkFit:
    """Per-variant logistic-regression log-odds of the dosage, Wald SE and normal p-value.

    Newton-Raphson runs per variant, started from the null fit (covariates'
    coefficients, dosage coefficient 0), in a compiled kernel with threads
    over variants. Each iteration evaluates ``p`` for the variant's observed
    samples and accumulates ``X'WX`` and ``X'(y - p)`` for ``X = [C, g]``
    with ``w = p(1-p)`` (0 for a missing call), then solves the (k+1)
    system. The first iteration is at the null fit, whose ``C'WC`` and
    ``C'r`` are shared by all variants (less each variant's missing rows).
    A variant converges once a full step's largest absolute change is below
    ``tol``: the step is applied (the estimate is then within ~``tol``^2 of
    the maximum) and the standard error is the information matrix's, moved
    from where the step started to the estimate by its first-order change
    (``var - v' dH v``, ``v = H^-1 e_g``; one light pass over the samples
    instead of another Newton iteration; error ~``tol``^2). Variants not
    converged after ``max_iter`` steps, or whose information matrix becomes
    singular (separation), get ``LOGISTIC_CONVERGE_FAIL`` (plink2
    ``no-firth``; the engine refits them with Firth's penalty).
    """
    c, y, gc, out, df, err = _fit_start(model, chunk)
    n, k = c.shape

    if model.w0 is not None:
        ct, full_ctc, w0, r0, a0, s0 = model.ct, model.ctc, model.w0, model.r0, model.a0, model.s0
    else:  # a LogisticModel built by hand rather than by logistic_model()
        ct, full_ctc, w0, r0, a0, s0 = _null_terms(c, y, model.beta_null)

    # The same collinearity screen as the linear model (plink2 checks unweighted VIF too).
    todo = err == None  # noqa: E711
    idx0 = np.flatnonzero(todo)
    if idx0.size:
        tri_m, _, _ = _missing_crossproducts(chunk.observed, idx0, c, y)
        ctc_v = _from_tri(full_ctc[np.triu_indices(k)][None, :] - tri_m, k)
        ctg = _cross(ct, gc, idx0).T
        sol, ok = _solve(ctc_v, ctg[:, :, None])
        ssg = _sum_sq(chunk)[idx0]
        gmg = ssg - np.einsum("vk,vk->v", ctg, sol[:, :, 0])
        with np.errstate(divide="ignore", invalid="ignore"):
            bad = ~((gmg > 0) & (ssg / gmg <= max_vif))
        err[idx0[~ok]] = SINGULAR_COVARIATES
        err[idx0[ok & bad]] = VIF_TOO_HIGH

    active = np.flatnonzero(err == None)  # noqa: E711
    if active.size and is_small_job():
        beta, se, conv = _logistic_newton_numpy(c, y, gc[:, active], chunk.observed[:, active],
                                                np.asarray(model.beta_null, dtype=np.float64), w0, r0,
                                                a0, s0, max_iter=int(max_iter), tol=float(tol))
    elif active.size:
        g = gc if gc.flags.f_contiguous else np.asfortranarray(gc)
        obs = chunk.observed if chunk.observed.flags.f_contiguous else np.asfortranarray(chunk.observed)
        # Many small tasks handed out one at a time (numba's default splits the range evenly
        # up front): on a shared machine a thread that the OS pauses no longer leaves the
        # other waiting at the end of the chunk. At least ~8 variants a task, as each task
        # copies the design once.
        import numba

        set_threads_from_env()
        threads = numba.get_num_threads()
        n_tasks = min(active.size, max(threads, min(16 * threads, active.size // 8)))
        pieces = np.linspace(0, active.size, n_tasks + 1).astype(np.int64)
        beta = np.full(active.size, np.nan)
        se = np.full(active.size, np.nan)
        conv = np.zeros(active.size, dtype=np.bool_)
        with numba.parallel_chunksize(1):
            _logistic_newton(ct, y, g, obs, active.astype(np.int64), pieces,
                             np.ascontiguousarray(model.beta_null, dtype=np.float64), w0, r0, a0,
                             s0, int(max_iter), float(tol), beta, se, conv)
    if active.size:
        out["beta"][active[conv]] = beta[conv]
        out["standard_error"][active[conv]] = se[conv]
        err[active[~conv]] = LOGISTIC_CONVERGE_FAIL

    fitted = np.flatnonzero(err == None)  # noqa: E711
    z = out["beta"][fitted] / out["standard_error"][fitted]
    out["statistic"][fitted] = z
    out["p_value"][fitted] = p_from_z(z)
    out["neg_log_10_p_value"][fitted] = neg_log10_p_from_z(z)
    out["residual_df"] = np.maximum(df, 0).astype(np.int64)
    out["error_code"] = err
    return ChunkFit(**out)
