"""Central side of the federated pooled fit: the pooled model solved from summed blocks.

The model (quantitative traits), over the stacked samples of the cohorts
that carry the variant::

    y = sum_c a_c 1_c + S b + sum_c P_c d_c + g beta + e

one intercept ``a_c`` per cohort, the *shared* covariates ``S`` (e.g. age,
sex) with one effect across cohorts, and every other covariate of a cohort
(its own PCs) as cohort-specific columns ``P_c`` (zero outside cohort c: a
block-diagonal design). Least squares, exactly: with the cohort intercepts
absorbed by centring each cohort on its own means, Z = [S, P_1, ..., P_K]
and the normal equations are sums of the cohorts' centred blocks
(:mod:`crosscohort.contract.sums`); per variant, by Frisch-Waugh-Lovell,

    beta = g'M y / g'M g,  M = I - Z (Z'Z)^-1 Z'
    SE^2 = (y'M y - beta g'M y) / (N - p) / g'M g,  p = K + q + 1

with q the columns of Z and N the stacked samples; the p-value from
Student's t with N - p degrees of freedom. These are the numbers an
individual-level OLS of the stacked data returns (tests: statsmodels, 1e-10).
Z'Z is solved once per set of cohorts (Cholesky of the unit-diagonal
rescaled matrix), then every variant costs one triangular solve.

Binary traits (stated method, one export, no iteration): a one-step
estimator from the null. The model there has one shared genotype effect and
cohort-specific intercepts *and* covariate effects (each cohort's own
covariates-only logistic fit is the null). Each cohort exports, per
variant, the score U_c = g'(y - mu0) and the information blocks; centrally

    I_c = g'W0 g - g'W0 X (X'W0X)^-1 X'W0 g,   beta = sum U_c / sum I_c,
    SE = (sum I_c)^-1/2

the first Newton step from beta = 0 with the nuisance parameters at their
null estimates. z = beta / SE is exactly the pooled (cohort-stratified)
score test, so the p-value is exact for that test; beta and SE approximate
the individual-level logistic maximum-likelihood fit, and the error grows
with |beta| (measured in tests/test_pooled_fit.py and benchmarks/README.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.linalg import cho_factor, solve_triangular

from crosscohort.contract.errors import InputError
from crosscohort.contract.stats import neg_log10_p_from_t, neg_log10_p_from_z, p_from_t, p_from_z
from crosscohort.contract.sums import CohortBlock, gwx_column, gx_column

__all__ = ["PooledFit", "Partition", "partition", "solve_linear", "solve_logistic_onestep"]


@dataclass(frozen=True)
class PooledFit:
    """Per-variant pooled estimates (arrays of length m; NaN where not estimable)."""

    beta: np.ndarray
    standard_error: np.ndarray
    p_value: np.ndarray
    neg_log_10_p_value: np.ndarray
    residual_df: np.ndarray
    n: np.ndarray


@dataclass(frozen=True)
class Partition:
    """Which covariates are shared across cohorts and which are each cohort's own."""

    shared: tuple[str, ...]
    specific: tuple[tuple[str, ...], ...]


def partition(blocks: Sequence[CohortBlock], shared: Sequence[str]) -> Partition:
    """Split each cohort's covariates into the shared ones (in this order) and its own.

    Raises
    ------
    InputError
        A shared covariate missing from a cohort, or standardised there
        (a shared effect needs the same scale in every cohort).
    """
    shared = tuple(shared)
    specific = []
    for b in blocks:
        absent = [s for s in shared if s not in b.covariates]
        if absent:
            raise InputError(f"cohort {b.cohort}, trait {b.trait}: shared covariate(s) {absent} not among its "
                             f"covariates {list(b.covariates)}; share only covariates every cohort has")
        std = [s for s in shared if b.scale[b.covariates.index(s)] != "raw"]
        if std:
            raise InputError(f"cohort {b.cohort}, trait {b.trait}: shared covariate(s) {std} are standardised "
                             "within the cohort, so their scale differs between cohorts; they can only be "
                             "cohort-specific")
        specific.append(tuple(c for c in b.covariates if c not in shared))
    return Partition(shared, tuple(specific))


def _index(block: CohortBlock, names: Sequence[str]) -> list[int]:
    return [block.covariates.index(c) for c in names]


def solve_linear(
    blocks: Sequence[CohortBlock],
    sums: Sequence[Mapping[str, np.ndarray]],
    *,
    shared: Sequence[str] = (),
) -> PooledFit:
    """Pooled linear regression of every variant from the cohorts' blocks and sums.

    Parameters
    ----------
    blocks
        The K cohorts' blocks of one quantitative trait.
    sums
        Per cohort, columns ``gg``, ``gy``, ``gx__<covariate>`` (arrays of
        length m, the same m variants in the same order and allele
        orientation in every cohort).
    shared
        Covariates with one effect across cohorts; all others are cohort-specific.

    Returns
    -------
    PooledFit

    Raises
    ------
    InputError
        Non-quantitative blocks, too few samples for the parameters, or a
        singular covariate design (named).
    """
    if len(blocks) != len(sums) or not blocks:
        raise InputError(f"solve_linear: {len(blocks)} blocks for {len(sums)} sum tables")
    bad = [b.cohort for b in blocks if b.trait_type != "quantitative"]
    if bad:
        raise InputError(f"cohort(s) {bad}: the linear pooled fit needs quantitative-trait blocks")
    part = partition(blocks, shared)
    s = len(part.shared)
    q = s + sum(len(sp) for sp in part.specific)
    m = len(np.asarray(sums[0]["gg"]))
    zz = np.zeros((q, q))
    zy = np.zeros(q)
    gz = np.zeros((m, q))
    yy = gg = gy = 0.0
    names = list(part.shared)
    at = s
    for b, t, sp in zip(blocks, sums, part.specific, strict=True):
        i_s, i_p = _index(b, part.shared), _index(b, sp)
        sl = slice(at, at + len(sp))
        zz[:s, :s] += b.xx[np.ix_(i_s, i_s)]
        zz[:s, sl] = b.xx[np.ix_(i_s, i_p)]
        zz[sl, :s] = b.xx[np.ix_(i_p, i_s)]
        zz[sl, sl] = b.xx[np.ix_(i_p, i_p)]
        zy[:s] += b.xy[i_s]
        zy[sl] = b.xy[i_p]
        yy += b.yy
        gg = gg + np.asarray(t["gg"], dtype=np.float64)
        gy = gy + np.asarray(t["gy"], dtype=np.float64)
        for j, c in enumerate(part.shared):
            gz[:, j] += t[gx_column(c)]
        for j, c in enumerate(sp):
            gz[:, at + j] = t[gx_column(c)]
        names += [f"{c}[{b.cohort}]" for c in sp]
        at += len(sp)
    n_total = sum(b.n for b in blocks)
    n_params = len(blocks) + q + 1
    df = n_total - n_params
    if df < 1:
        raise InputError(f"trait {blocks[0].trait}: N must exceed the parameters (cohort intercepts + "
                         f"covariates + dosage); got N={n_total}, parameters={n_params}")
    if q:
        d = np.sqrt(np.diag(zz))
        if not np.all(d > 0):
            raise InputError(f"trait {blocks[0].trait}: covariate(s) {[names[j] for j in np.flatnonzero(~(d > 0))]} "
                             "are constant within every cohort that has them")
        try:
            low, _ = cho_factor(zz / np.outer(d, d), lower=True)
        except np.linalg.LinAlgError:
            raise InputError(f"trait {blocks[0].trait}: the pooled covariate design {names} is singular "
                             "(a shared covariate collinear with the cohort intercepts or PCs?)") from None
        low = np.tril(low)
        u = solve_triangular(low, zy / d, lower=True)
        w = solve_triangular(low, (gz / d).T, lower=True)
        assert w.shape == (q, m), w.shape
        ymy = yy - u @ u
        gmg = gg - np.einsum("ij,ij->j", w, w)
        gmy = gy - u @ w
    else:
        ymy, gmg, gmy = yy, gg, gy
    with np.errstate(invalid="ignore", divide="ignore"):
        ok = gmg > 1e-12 * np.maximum(gg, 1e-300)
        beta = np.where(ok, gmy / gmg, np.nan)
        rss = ymy - beta * gmy
        se = np.sqrt(rss / df / gmg)
        se = np.where(ok & (rss > 0), se, np.nan)
        beta = np.where(np.isfinite(se), beta, np.nan)
        t = beta / se
    p = p_from_t(t, df)
    nlp = neg_log10_p_from_t(t, df)
    return PooledFit(beta, se, p, nlp, np.full(m, df, dtype=np.int64), np.full(m, n_total, dtype=np.int64))


def solve_logistic_onestep(
    blocks: Sequence[CohortBlock],
    sums: Sequence[Mapping[str, np.ndarray]],
) -> PooledFit:
    """One-step pooled logistic estimate of every variant (see the module docstring).

    Parameters
    ----------
    blocks
        The K cohorts' blocks of one binary trait (``xwx``).
    sums
        Per cohort, columns ``u``, ``gwg``, ``gwx__1``, ``gwx__<covariate>``.

    Returns
    -------
    PooledFit
        ``residual_df`` is -1 (a z test).
    """
    if len(blocks) != len(sums) or not blocks:
        raise InputError(f"solve_logistic_onestep: {len(blocks)} blocks for {len(sums)} sum tables")
    bad = [b.cohort for b in blocks if b.trait_type != "binary"]
    if bad:
        raise InputError(f"cohort(s) {bad}: the logistic one-step fit needs binary-trait blocks")
    m = len(np.asarray(sums[0]["u"]))
    score = np.zeros(m)
    info = np.zeros(m)
    for b, t in zip(blocks, sums, strict=True):
        cols = [gwx_column("1"), *(gwx_column(c) for c in b.covariates)]
        bx = np.column_stack([np.asarray(t[c], dtype=np.float64) for c in cols])
        d = np.sqrt(np.diag(b.xwx))
        try:
            low, _ = cho_factor(b.xwx / np.outer(d, d), lower=True)
        except np.linalg.LinAlgError:
            raise InputError(f"cohort {b.cohort}, trait {b.trait}: X'W0X is singular") from None
        w = solve_triangular(np.tril(low), (bx / d).T, lower=True)
        info += np.asarray(t["gwg"], dtype=np.float64) - np.einsum("ij,ij->j", w, w)
        score += np.asarray(t["u"], dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        ok = info > 0
        beta = np.where(ok, score / info, np.nan)
        se = np.where(ok, 1.0 / np.sqrt(info), np.nan)
        z = beta / se
    p = p_from_z(z)
    n_total = sum(b.n for b in blocks)
    return PooledFit(beta, se, p, neg_log10_p_from_z(z), np.full(m, -1, dtype=np.int64),
                     np.full(m, n_total, dtype=np.int64))
