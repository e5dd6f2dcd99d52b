"""The compiled fast paths of the association kernels against independent references.

Each compiled piece (the fused chunk preparation, the missing-call
corrections, the column cross-products, the vectorised expit, the small
solver and the per-variant logistic Newton loop) is checked on its own
against numpy/scipy/statsmodels, on inputs that exercise its branches:
missing calls, constant and all-missing variants, C- and Fortran-ordered
chunks, one covariate and many.
"""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm
from scipy.special import expit

from crosscohort.tre import _bed
from crosscohort.tre.association import _kernels as K


def _chunk(n: int, m: int, seed: int, missing: float = 0.05) -> np.ndarray:
    rng = np.random.default_rng(seed)
    g = rng.binomial(2, rng.uniform(0.05, 0.5, m), size=(n, m)).astype(np.float64)
    g[rng.random((n, m)) < missing] = np.nan
    return g


@pytest.mark.parametrize("order", ["C", "F"])
def test_prepare_chunk__fused_pass_equals_the_numpy_definition(order):
    g = _chunk(301, 40, seed=1)
    g[:, 0] = 1.0  # constant
    g[:, 1] = np.nan  # all missing
    g[:5, 2] = [0, 2, np.nan, 2, 0]
    g[5:, 2] = np.nan
    c = K.prepare_chunk(np.asarray(g, order=order))
    obs = ~np.isnan(g)
    n_obs = obs.sum(axis=0)
    alt = np.where(obs, g, 0.0).sum(axis=0)
    mean = np.where(n_obs > 0, alt / np.maximum(n_obs, 1), 0.0)
    centred = np.where(obs, g - mean, 0.0)
    np.testing.assert_array_equal(c.observed, obs)
    np.testing.assert_array_equal(c.n_obs, n_obs)
    np.testing.assert_array_equal(c.alt_count, alt)  # integer dosages: sums are exact
    np.testing.assert_allclose(c.centred, centred, rtol=0, atol=1e-14)
    np.testing.assert_allclose(c.sum_sq, (centred**2).sum(axis=0), rtol=1e-13)
    want_const = np.array([np.unique(g[obs[:, j], j]).size <= 1 for j in range(g.shape[1])])
    np.testing.assert_array_equal(c.constant, want_const)
    assert c.constant[0] and c.constant[1] and not c.constant[2]


def test_prepare_chunk__empty_chunk_has_no_variants():
    c = K.prepare_chunk(np.empty((10, 0)))
    assert c.centred.shape == (10, 0) and c.n_obs.size == 0


def test_missing_crossproducts__equal_the_masked_matrix_products():
    rng = np.random.default_rng(2)
    n, k = 200, 4
    c = np.column_stack([np.ones(n), rng.normal(size=(n, k - 1))])
    y = rng.normal(size=n)
    obs = rng.random((n, 30)) > 0.1
    idx = np.array([0, 5, 29, 7])
    tri, cy, yy = K._missing_crossproducts(np.asfortranarray(obs), idx, c, y)
    miss = (~obs[:, idx]).astype(float)
    i, j = np.triu_indices(k)
    np.testing.assert_allclose(tri, miss.T @ (c[:, i] * c[:, j]), rtol=1e-12)
    np.testing.assert_allclose(cy, miss.T @ (c * y[:, None]), rtol=1e-12)
    np.testing.assert_allclose(yy, miss.T @ (y * y), rtol=1e-12)


def test_cross__equals_the_matrix_product_of_the_selected_columns():
    rng = np.random.default_rng(3)
    rows, g = rng.normal(size=(7, 513)), np.asfortranarray(rng.normal(size=(513, 20)))
    idx = np.array([19, 0, 4])
    np.testing.assert_allclose(K._cross(rows, g, idx), rows @ g[:, idx], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(K._cross(rows, np.ascontiguousarray(g)), rows @ g, rtol=1e-12, atol=1e-12)


def test_expit_block__within_two_ulp_of_scipy_over_the_whole_range():
    eta = np.concatenate([np.linspace(-40, 40, 4001), [-745.0, -709.5, -700.0, 0.0, 700.0, 709.5, 745.0],
                          np.random.default_rng(4).normal(0, 3, 2000)])
    out = np.empty(eta.size)
    bits = np.empty(eta.size, dtype=np.int64)
    K._expit_block(eta, out, bits, eta.size)
    ref = expit(eta)
    ok = ref > 1e-300  # below that both are denormal/zero: probabilities the fit treats as 0
    rel = np.abs(out[ok] - ref[ok]) / ref[ok]
    assert rel.max() <= 2 * np.finfo(float).eps, rel.max()
    assert np.all(out[~ok] < 1e-300)


def test_solve_small__solves_like_lapack_and_reports_exact_singularity():
    rng = np.random.default_rng(5)
    a = rng.normal(size=(6, 6))
    h = a @ a.T + np.eye(6)
    rhs = rng.normal(size=(6, 2))
    sol = rhs.copy()
    assert K._solve_small(h, sol, np.empty((6, 6)))
    np.testing.assert_allclose(sol, np.linalg.solve(h, rhs), rtol=1e-12)
    sing = np.zeros((3, 3))
    sing[0, 0] = 1.0
    assert not K._solve_small(sing, np.ones((3, 2)), np.empty((3, 3)))


@pytest.mark.parametrize("k_cov", [0, 1, 6])
def test_logistic_chunk__compiled_newton_matches_statsmodels_logit(k_cov):
    rng = np.random.default_rng(10 + k_cov)
    n, m = 700, 12
    x = rng.normal(size=(n, k_cov))
    g = _chunk(n, m, seed=20 + k_cov, missing=0.0)
    g[rng.random((n, m)) < np.where(np.arange(m) % 2 == 0, 0.08, 0.0)] = np.nan  # half with missing
    dose = np.nan_to_num(g[:, 0])
    eta = -1.0 + (x @ rng.normal(0, 0.5, k_cov) if k_cov else 0.0) + 0.4 * dose
    y = (rng.random(n) < expit(eta)).astype(np.float64)
    design = np.column_stack([np.ones(n), (x - x.mean(0)) / x.std(0)]) if k_cov else np.ones((n, 1))
    fit = K.logistic_chunk(K.logistic_model(y, design), K.prepare_chunk(g))
    assert all(e is None for e in fit.error_code)
    for v in range(m):
        ok = ~np.isnan(g[:, v])
        # Independent reference: statsmodels' Newton to 1e-12 on the variant's complete cases.
        ref = sm.Logit(y[ok], np.column_stack([design[ok], g[ok, v]])).fit(
            disp=0, method="newton", tol=1e-12, maxiter=100)
        assert abs(fit.beta[v] - ref.params[-1]) / abs(ref.params[-1]) < 1e-8
        assert abs(fit.standard_error[v] - ref.bse[-1]) / ref.bse[-1] < 1e-8
        assert abs(fit.p_value[v] - ref.pvalues[-1]) / ref.pvalues[-1] < 1e-7


def test_linear_chunk__missing_call_path_matches_statsmodels_ols():
    rng = np.random.default_rng(30)
    n, m = 400, 10
    design = np.column_stack([np.ones(n), rng.normal(size=(n, 3))])
    g = _chunk(n, m, seed=31, missing=0.2)
    y = design @ np.array([1.0, 0.5, -0.2, 0.1]) + 0.3 * np.nan_to_num(g[:, 3]) + rng.normal(size=n)
    fit = K.linear_chunk(K.linear_model(y, design), K.prepare_chunk(g))
    for v in range(m):
        ok = ~np.isnan(g[:, v])
        ref = sm.OLS(y[ok], np.column_stack([design[ok], g[ok, v]])).fit()
        assert abs(fit.beta[v] - ref.params[-1]) / abs(ref.params[-1]) < 1e-9
        assert abs(fit.standard_error[v] - ref.bse[-1]) / ref.bse[-1] < 1e-9


def test_logistic_chunk__same_results_whatever_the_number_of_threads():
    import numba

    rng = np.random.default_rng(40)
    n, m = 300, 37
    design = np.column_stack([np.ones(n), rng.normal(size=(n, 2))])
    y = (rng.random(n) < 0.3).astype(float)
    chunk = K.prepare_chunk(_chunk(n, m, seed=41))
    model = K.logistic_model(y, design)
    base = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = K.logistic_chunk(model, chunk)
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        many = K.logistic_chunk(model, chunk)
    finally:
        numba.set_num_threads(base)
    # Each variant is fitted by one thread from the same inputs: bit-identical.
    np.testing.assert_array_equal(one.beta, many.beta)
    np.testing.assert_array_equal(one.standard_error, many.standard_error)


def test_set_threads_from_env__never_exceeds_numba_threads():
    assert 1 <= _bed.set_threads_from_env() <= __import__("numba").config.NUMBA_NUM_THREADS
