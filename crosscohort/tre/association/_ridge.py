"""Ridge kernels of whole-genome regression (private; :mod:`crosscohort.tre.association.wgr` is the public face).

Step 1 of REGENIE (Mbatchou et al. 2021, Nat Genet 53:1097) is two stacked
ridge regressions:

- **level 0**: within one block of standardised genotypes G (n x b), the ridge
  fits ``beta_j = (G'G + lambda_j I)^-1 G'y`` at a grid of shrinkages, whose
  *out-of-sample* predictions (K-fold or leave-one-out) become the level-1
  features;
- **level 1**: a ridge (quantitative) or logistic ridge with the covariates'
  linear predictor as offset (binary) over all blocks' level-0 predictions,
  its shrinkage chosen by cross-validation, then split by chromosome into
  leave-one-chromosome-out (LOCO) predictions.

One eigendecomposition of ``G'G`` (minus the held-out fold) serves every
shrinkage and every trait: ``(G'G + lambda I)^-1 = V diag(1/(d + lambda)) V'``.
Leave-one-out uses the hat-matrix identity ``yhat_(-i) = (yhat_i - h_ii y_i) /
(1 - h_ii)`` (exact for ridge), and for logistic ridge the one-step
approximation ``b_(-i) = b - H^-1 x_i (y_i - p_i) / (1 - w_i x_i' H^-1 x_i)``
that REGENIE uses.

Every function takes only the analysed rows; a trait's missing phenotypes are
zeros in ``y`` and zero rows in the level-1 features (they contribute nothing
to a cross-product), and ``mask`` says which rows count in a trait's
cross-validation sums.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg import cho_factor, cho_solve
from scipy.special import expit
from threadpoolctl import threadpool_limits

__all__ = [
    "DEFAULT_H2",
    "level0_shrinkage",
    "level1_shrinkage",
    "fold_sizes",
    "ridge_path",
    "level0_kfold",
    "level0_loocv",
    "standardise_predictions",
    "Level1Fit",
    "level1_linear_kfold",
    "level1_linear_loocv",
    "logistic_ridge",
    "level1_logistic_kfold",
    "level1_logistic_loocv",
]

#: REGENIE's default grid of assumed heritabilities (``--l0 5``, ``--l1 5``).
DEFAULT_H2: tuple[float, ...] = (0.01, 0.25, 0.5, 0.75, 0.99)
#: Fitted probabilities closer than this to 0 or 1 are clamped (glmnet's rule, as REGENIE).
PROB_EPS = 1e-5
#: Logistic ridge stops when every score component is below this.
SCORE_TOL = 1e-4
#: Most IRLS iterations of a logistic ridge fit.
MAX_ITER = 500


def level0_shrinkage(h2: np.ndarray | tuple[float, ...], n_variants: int) -> np.ndarray:
    """Level-0 ridge parameters ``M (1 - h2) / h2`` for M standardised variants (REGENIE)."""
    h2 = np.asarray(h2, dtype=np.float64)
    _check_h2(h2)
    return n_variants * (1.0 - h2) / h2


def level1_shrinkage(h2: np.ndarray | tuple[float, ...], n_features: int, *, binary: bool) -> np.ndarray:
    """Level-1 ridge parameters ``p (1 - h2) / h2``, times ``3 / pi^2`` for a logistic model.

    ``p`` is the number of level-0 predictors (blocks x level-0 shrinkages);
    for binary traits ``h2`` is read on the liability scale, whose logistic
    residual variance is ``pi^2 / 3``.
    """
    h2 = np.asarray(h2, dtype=np.float64)
    _check_h2(h2)
    tau = n_features * (1.0 - h2) / h2
    return tau * 3.0 / np.pi**2 if binary else tau


def _check_h2(h2: np.ndarray) -> None:
    if h2.ndim != 1 or h2.size == 0 or np.any(~((h2 > 0) & (h2 < 1))):
        raise ValueError(f"heritabilities must lie strictly between 0 and 1; got {h2.tolist()}")


def fold_sizes(n: int, k: int) -> np.ndarray:
    """Sizes of K contiguous folds over n samples: floor(n/K) each, the remainder in the last."""
    if k < 2 or n < k:
        raise ValueError(f"K-fold cross-validation needs 2 <= K <= N; got K={k}, N={n}")
    t = n // k
    sizes = np.full(k, t, dtype=np.int64)
    sizes[-1] = n - t * (k - 1)
    return sizes


def _eigh(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``numpy.linalg.eigh`` on one BLAS thread: its many small level-2 steps gain nothing from
    threads and lose much to their synchronisation when cores are shared."""
    with threadpool_limits(1, user_api="blas"):
        return np.linalg.eigh(a)


def ridge_path(xtx: np.ndarray, xty: np.ndarray, shrinkages: np.ndarray) -> np.ndarray:
    """Ridge coefficients ``(X'X + s I)^-1 X'y`` for every shrinkage s.

    Parameters
    ----------
    xtx
        (p, p) cross-product.
    xty
        (p, t) cross-products with t outcomes.
    shrinkages
        (L,) ridge parameters.

    Returns
    -------
    numpy.ndarray
        (L, p, t) coefficients.
    """
    d, v = _eigh(xtx)
    w = v.T @ xty  # (p, t)
    out = np.empty((shrinkages.size, xtx.shape[0], xty.shape[1]))
    for j, s in enumerate(shrinkages):
        out[j] = v @ (w / (d + s)[:, None])
    return out


def level0_kfold(g: np.ndarray, y: np.ndarray, sizes: np.ndarray, shrinkages: np.ndarray) -> np.ndarray:
    """Out-of-fold level-0 ridge predictions of one genotype block.

    Parameters
    ----------
    g
        (n, b) standardised genotypes of the block.
    y
        (n, t) standardised phenotypes (0 where missing).
    sizes
        Contiguous fold sizes (:func:`fold_sizes`).
    shrinkages
        (L,) level-0 ridge parameters.

    Returns
    -------
    numpy.ndarray
        (n, L, t): each sample's prediction from the fit without its fold.

    Notes
    -----
    The fold cross-products are computed once and summed for the total; each
    fold's systems are solved by Cholesky per shrinkage, which for REGENIE's
    five shrinkages costs less than one eigendecomposition (benchmarks/README.md).
    """
    starts = np.concatenate([[0], np.cumsum(sizes)])
    folds = [slice(int(a), int(b)) for a, b in zip(starts[:-1], starts[1:], strict=True)]
    gtg_f = [g[f].T @ g[f] for f in folds]
    gty_f = [g[f].T @ y[f] for f in folds]
    gtg = np.sum(gtg_f, axis=0)
    gty = np.sum(gty_f, axis=0)
    out = np.empty((g.shape[0], shrinkages.size, y.shape[1]))
    diag = np.arange(g.shape[1])
    for f, a_f, r_f in zip(folds, gtg_f, gty_f, strict=True):
        a = gtg - a_f
        r = gty - r_f
        for j, s in enumerate(shrinkages):
            a_s = a.copy()
            a_s[diag, diag] += s
            beta = cho_solve(cho_factor(a_s, check_finite=False), r, check_finite=False)
            out[f, j, :] = g[f] @ beta
    return out


def level0_loocv(g: np.ndarray, y: np.ndarray, shrinkages: np.ndarray) -> np.ndarray:
    """Leave-one-out level-0 ridge predictions of one genotype block (exact hat-matrix identity).

    Same parameters and result layout as :func:`level0_kfold`.
    """
    d, v = _eigh(g.T @ g)
    z = g @ v  # (n, b)
    w = z.T @ y  # (b, t)
    z2 = z * z
    out = np.empty((g.shape[0], shrinkages.size, y.shape[1]))
    for j, s in enumerate(shrinkages):
        inv = 1.0 / (d + s)
        fitted = z @ (w * inv[:, None])
        h = z2 @ inv
        out[:, j, :] = (fitted - h[:, None] * y) / (1.0 - h)[:, None]
    return out


def standardise_predictions(pred: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Centre and scale each level-0 predictor over a trait's samples; zero elsewhere.

    Parameters
    ----------
    pred
        (n, L) one trait's level-0 predictions of one block.
    mask
        (n,) True where the trait is observed.
    """
    m = mask.astype(np.float64)[:, None]
    n_eff = float(mask.sum())
    mean = (pred * m).sum(axis=0) / n_eff
    x = (pred - mean) * m
    sd = np.sqrt((x * x).sum(axis=0) / (n_eff - 1.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        x = np.where(sd > 0, x / sd, 0.0)
    return x


@dataclass(frozen=True)
class Level1Fit:
    """Cross-validated level-1 model of one trait.

    Attributes
    ----------
    best
        Index of the chosen level-1 shrinkage.
    criterion
        (T,) CV criterion per shrinkage: mean squared error (quantitative) or
        mean negative log-likelihood (binary); the smallest is chosen.
    r2
        (T,) squared correlation of the out-of-sample predictions with the phenotype.
    chrom_pred
        (n, C) out-of-sample prediction from each chromosome's features at the
        chosen shrinkage (0 where the trait is missing); LOCO of chromosome c
        is the row sum minus column c.
    """

    best: int
    criterion: np.ndarray
    r2: np.ndarray
    chrom_pred: np.ndarray


def _r2(sx: np.ndarray, sy: np.ndarray, sx2: np.ndarray, sy2: np.ndarray, sxy: np.ndarray, n: float
        ) -> np.ndarray:
    num = sxy - sx * sy / n
    with np.errstate(invalid="ignore", divide="ignore"):
        return num * num / ((sx2 - sx * sx / n) * (sy2 - sy * sy / n))


def _chrom_parts(x: np.ndarray, b: np.ndarray, groups: list[np.ndarray] | np.ndarray) -> np.ndarray:
    """Per-chromosome partial predictions with one coefficient vector b (p,) or per-row b (n, p).

    ``groups`` is either the column indices of ``x`` per chromosome (REGENIE's
    per-block stacking: chromosome c's part is ``x[:, cols_c] b[cols_c]``) or an
    (n, C, p) array of per-chromosome features that sum to ``x`` (pooled
    stacking: chromosome c's part is ``features[:, c] b``).
    """
    if isinstance(groups, np.ndarray):
        if b.ndim == 1:
            return groups @ b
        return np.einsum("ncp,np->nc", groups, b)
    out = np.empty((x.shape[0], len(groups)))
    for c, cols in enumerate(groups):
        if b.ndim == 1:
            out[:, c] = x[:, cols] @ b[cols]
        else:
            out[:, c] = np.einsum("np,np->n", x[:, cols], b[:, cols])
    return out


def _fold_parts(x: np.ndarray, sizes: np.ndarray, coefs: list[np.ndarray],
                groups: list[np.ndarray] | np.ndarray) -> np.ndarray:
    """Per-chromosome partial predictions of K-fold CV: each fold's rows by that fold's coefficients (p,)."""
    parts = np.empty((x.shape[0], groups.shape[1] if isinstance(groups, np.ndarray) else len(groups)))
    start = 0
    for size, b in zip(sizes, coefs, strict=True):
        f = slice(start, start + int(size))
        parts[f] = _chrom_parts(x[f], b, groups[f] if isinstance(groups, np.ndarray) else groups)
        start += int(size)
    return parts


def level1_linear_kfold(x: np.ndarray, y: np.ndarray, mask: np.ndarray, sizes: np.ndarray,
                        shrinkages: np.ndarray, groups: list[np.ndarray] | np.ndarray) -> Level1Fit:
    """Level-1 ridge of a quantitative trait with K-fold CV (each fold's own coefficients predict it).

    Parameters
    ----------
    x
        (n, p) standardised level-0 predictions (0 where the trait is missing).
    y
        (n,) standardised phenotype (0 where missing).
    mask
        (n,) True where observed.
    sizes
        Fold sizes; shrinkages (T,) level-1 ridge parameters; groups: column
        indices of x per chromosome, or (n, C, p) per-chromosome features
        summing to x (pooled stacking; see :func:`_chrom_parts`).
    """
    n_eff = float(mask.sum())
    xtx = x.T @ x
    xty = x.T @ y
    sums = np.zeros((5, shrinkages.size))
    fold_beta = []
    start = 0
    for size in sizes:
        f = slice(start, start + int(size))
        beta = ridge_path(xtx - x[f].T @ x[f], (xty - x[f].T @ y[f])[:, None], shrinkages)[:, :, 0]
        p1 = x[f] @ beta.T  # (nf, T)
        yf = y[f][:, None]
        sums += [p1.sum(0), np.full(shrinkages.size, yf.sum()), (p1 * p1).sum(0),
                 np.full(shrinkages.size, (yf * yf).sum()), (p1 * yf).sum(0)]
        fold_beta.append(beta)
        start += int(size)
    mse = (sums[2] + sums[3] - 2 * sums[4]) / n_eff
    best = int(np.argmin(mse))
    parts = _fold_parts(x, sizes, [b[best] for b in fold_beta], groups)
    return Level1Fit(best, mse, _r2(*sums, n_eff), parts * mask[:, None])


def level1_linear_loocv(x: np.ndarray, y: np.ndarray, mask: np.ndarray, shrinkages: np.ndarray,
                        groups: list[np.ndarray] | np.ndarray) -> Level1Fit:
    """Level-1 ridge of a quantitative trait with leave-one-out CV (exact); see :func:`level1_linear_kfold`."""
    n_eff = float(mask.sum())
    d, v = _eigh(x.T @ x)
    z = x @ v
    w = z.T @ y
    z2 = z * z
    sums = np.zeros((5, shrinkages.size))
    for j, s in enumerate(shrinkages):
        inv = 1.0 / (d + s)
        pred = ((z @ (w * inv)) - (z2 @ inv) * y) / (1.0 - z2 @ inv)
        pred = pred[mask]
        yy = y[mask]
        sums[:, j] = [pred.sum(), yy.sum(), pred @ pred, yy @ yy, pred @ yy]
    mse = (sums[2] + sums[3] - 2 * sums[4]) / n_eff
    best = int(np.argmin(mse))
    # Leave-one-out coefficients at the chosen shrinkage: b_(-i) = b - H^-1 x_i r_i / (1 - h_i).
    s = shrinkages[best]
    hinv = (v / (d + s)) @ v.T
    b = hinv @ (x.T @ y)
    hx = x @ hinv  # (n, p) rows x_i' H^-1
    h = np.einsum("np,np->n", hx, x)
    r = y - x @ b
    b_loo = b[None, :] - hx * (r / (1.0 - h))[:, None]
    parts = _chrom_parts(x, b_loo, groups)
    return Level1Fit(best, mse, _r2(*sums, n_eff), parts * mask[:, None])


def logistic_ridge(x: np.ndarray, y: np.ndarray, offset: np.ndarray, shrinkage: float, *,
                   start: np.ndarray | None = None, tol: float = SCORE_TOL
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    """Ridge-penalised logistic regression with an offset, by IRLS (no intercept: the offset carries it).

    Maximises ``sum_i [y_i eta_i - log(1 + e^eta_i)] - shrinkage/2 |b|^2`` with
    ``eta = offset + x b``. Fitted probabilities within 1e-5 of 0 or 1 get
    weight 1e-5 (glmnet's rule, as REGENIE), so separation does not stall it.
    It stops when every component of the penalised score is below ``tol``
    (REGENIE's 1e-4 by default).

    Returns
    -------
    tuple
        (coefficients (p,), fitted probabilities (n,), IRLS weights (n,), converged).
    """
    p_dim = x.shape[1]
    b = np.zeros(p_dim) if start is None else start.copy()
    ident = np.eye(p_dim) * shrinkage
    converged = False
    for _ in range(MAX_ITER):
        eta = offset + x @ b
        prob, w = _clamped(eta)
        z = (eta - offset) + (y - prob) / w
        xw = x.T * w
        b_new = np.linalg.solve(xw @ x + ident, xw @ z)
        # Step halving while the weights degenerate (REGENIE's line search).
        for _half in range(50):
            eta = offset + x @ b_new
            prob, w = _clamped(eta)
            if np.all(w > 0) and np.all(np.isfinite(eta)):
                break
            b_new = (b + b_new) / 2
        score = x.T @ (y - prob) - shrinkage * b_new
        b = b_new
        if np.max(np.abs(score)) < tol:
            converged = True
            break
    prob, w = _clamped(offset + x @ b)
    return b, prob, w, converged


def _clamped(eta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    prob = expit(eta)
    w = prob * (1.0 - prob)
    low, high = prob < PROB_EPS, prob > 1.0 - PROB_EPS
    if low.any() or high.any():
        prob = np.where(low, 0.0, np.where(high, 1.0, prob))
        w = np.where(low | high, PROB_EPS, w)
    return prob, w


def _neg_loglik(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    p = np.clip(p, PROB_EPS, 1.0 - PROB_EPS)
    return -(y * np.log(p) + (1.0 - y) * np.log(1.0 - p))


def level1_logistic_loocv(x: np.ndarray, y: np.ndarray, offset: np.ndarray, shrinkages: np.ndarray,
                          groups: list[np.ndarray] | np.ndarray) -> Level1Fit:
    """Level-1 logistic ridge of a binary trait with approximate leave-one-out CV.

    Parameters
    ----------
    x
        (n, p) standardised level-0 predictions of the trait's observed samples only.
    y
        (n,) 0/1 outcome.
    offset
        (n,) linear predictor of the covariates-only logistic fit.
    shrinkages, groups
        As :func:`level1_linear_kfold`.

    Notes
    -----
    Fits the full data at each shrinkage (warm-started from the previous
    one), then ``b_(-i) = b - H^-1 x_i (y_i - p_i) / (1 - w_i x_i' H^-1 x_i)``
    with ``H = X'WX + tau I``; the criterion is the mean negative
    log-likelihood of the left-out samples. The LOCO parts use the same
    leave-one-out coefficients at the chosen shrinkage.
    """
    n = float(x.shape[0])
    crit = np.empty(shrinkages.size)
    sums = np.zeros((5, shrinkages.size))
    b = np.zeros(x.shape[1])
    loo_at: dict[int, np.ndarray] = {}
    for j, tau in enumerate(shrinkages):
        b, prob, w, ok = logistic_ridge(x, y, offset, float(tau), start=b)
        if not ok:
            raise ArithmeticError(f"level-1 logistic ridge did not converge at shrinkage {tau:g}")
        b_loo = _loo_coefficients(x, y, b, prob, w, float(tau))
        p1 = np.clip(expit(offset + np.einsum("np,np->n", x, b_loo)), PROB_EPS, 1 - PROB_EPS)
        crit[j] = _neg_loglik(y, p1).sum() / n
        sums[:, j] = [p1.sum(), y.sum(), p1 @ p1, y @ y, p1 @ y]
        loo_at[j] = b_loo
    best = int(np.argmin(crit))
    # REGENIE refits from zero at the chosen shrinkage; at convergence that is the same fit.
    b0, prob, w, _ = logistic_ridge(x, y, offset, float(shrinkages[best]))
    b_loo = _loo_coefficients(x, y, b0, prob, w, float(shrinkages[best]))
    return Level1Fit(best, crit, _r2(*sums, n), _chrom_parts(x, b_loo, groups))


def _loo_coefficients(x: np.ndarray, y: np.ndarray, b: np.ndarray, prob: np.ndarray, w: np.ndarray,
                      tau: float) -> np.ndarray:
    h = (x.T * w) @ x + tau * np.eye(x.shape[1])
    v1 = np.linalg.solve(h, x.T)  # (p, n)
    v2 = np.einsum("np,pn->n", x, v1) * w
    return b[None, :] - (v1 * ((y - prob) / (1.0 - v2))[None, :]).T


def level1_logistic_kfold(x: np.ndarray, y: np.ndarray, offset: np.ndarray, mask: np.ndarray,
                          sizes: np.ndarray, shrinkages: np.ndarray, groups: list[np.ndarray] | np.ndarray
                          ) -> Level1Fit:
    """Level-1 logistic ridge of a binary trait with K-fold CV; see :func:`level1_logistic_loocv`.

    ``x``, ``y``, ``offset`` cover all analysed rows (fold layout), ``mask`` the trait's observed ones.
    """
    n_eff = float(mask.sum())
    crit = np.zeros(shrinkages.size)
    sums = np.zeros((5, shrinkages.size))
    betas: list[np.ndarray] = []
    start = 0
    for size in sizes:
        test = np.zeros(x.shape[0], dtype=bool)
        test[start : start + int(size)] = True
        train = ~test & mask
        te = test & mask
        b = np.zeros(x.shape[1])
        fold_b = np.empty((shrinkages.size, x.shape[1]))
        for j, tau in enumerate(shrinkages):
            b, _, _, ok = logistic_ridge(x[train], y[train], offset[train], float(tau), start=b)
            if not ok:
                raise ArithmeticError(f"level-1 logistic ridge did not converge at shrinkage {tau:g}")
            fold_b[j] = b
            p1 = np.clip(expit(offset[te] + x[te] @ b), PROB_EPS, 1 - PROB_EPS)
            yy = y[te]
            crit[j] += _neg_loglik(yy, p1).sum()
            sums[:, j] += [p1.sum(), yy.sum(), p1 @ p1, yy @ yy, p1 @ yy]
        betas.append(fold_b)
        start += int(size)
    crit /= n_eff
    best = int(np.argmin(crit))
    parts = _fold_parts(x, sizes, [b[best] for b in betas], groups)
    return Level1Fit(best, crit, _r2(*sums, n_eff), parts * mask[:, None])
