"""Ridge kernels of whole-genome regression against closed forms, brute force and statsmodels."""

from __future__ import annotations

import numpy as np
import pytest

from crosscohort.contract.errors import InputError
from crosscohort.tre.association import _offset_tests as O
from crosscohort.tre.association import _ridge as R
from crosscohort.tre.association import regenie_files as RF


def _data(n=60, b=8, t=2, seed=1):
    rng = np.random.default_rng(seed)
    g = rng.normal(size=(n, b))
    y = g @ rng.normal(size=(b, t)) * 0.3 + rng.normal(size=(n, t))
    return g, y


def test_ridge_path__equals_closed_form_solve():
    g, y = _data()
    lam = np.array([0.5, 3.0, 40.0])
    got = R.ridge_path(g.T @ g, g.T @ y, lam)
    for j, s in enumerate(lam):
        want = np.linalg.solve(g.T @ g + s * np.eye(g.shape[1]), g.T @ y)
        np.testing.assert_allclose(got[j], want, rtol=1e-10, atol=1e-12)


def test_level0_loocv__equals_brute_force_leave_one_out():
    g, y = _data(n=25, b=6)
    lam = np.array([1.0, 10.0])
    got = R.level0_loocv(g, y, lam)
    for i in range(g.shape[0]):
        keep = np.arange(g.shape[0]) != i
        for j, s in enumerate(lam):
            beta = np.linalg.solve(g[keep].T @ g[keep] + s * np.eye(6), g[keep].T @ y[keep])
            np.testing.assert_allclose(got[i, j], g[i] @ beta, rtol=1e-9, atol=1e-12)


def test_level0_kfold__each_fold_predicted_by_the_fit_without_it():
    g, y = _data(n=23, b=5)
    lam = np.array([2.0])
    sizes = R.fold_sizes(23, 5)
    assert sizes.tolist() == [4, 4, 4, 4, 7]
    got = R.level0_kfold(g, y, sizes, lam)
    start = 0
    for size in sizes:
        test = np.zeros(23, dtype=bool)
        test[start : start + size] = True
        beta = np.linalg.solve(g[~test].T @ g[~test] + 2.0 * np.eye(5), g[~test].T @ y[~test])
        np.testing.assert_allclose(got[test, 0], g[test] @ beta, rtol=1e-10)
        start += size


def test_level1_linear_loocv__loco_parts_equal_brute_force_refits():
    x, y = _data(n=30, b=6, t=1)
    y = y[:, 0]
    mask = np.ones(30, dtype=bool)
    groups = [np.arange(0, 3), np.arange(3, 6)]
    tau = np.array([0.5, 5.0, 50.0])
    fit = R.level1_linear_loocv(x, y, mask, tau, groups)
    s = tau[fit.best]
    mse = []
    for j, t in enumerate(tau):
        err = []
        for i in range(30):
            keep = np.arange(30) != i
            b = np.linalg.solve(x[keep].T @ x[keep] + t * np.eye(6), x[keep].T @ y[keep])
            err.append((x[i] @ b - y[i]) ** 2)
            if j == fit.best:
                for c, cols in enumerate(groups):
                    assert fit.chrom_pred[i, c] == pytest.approx(x[i, cols] @ b[cols], rel=1e-9, abs=1e-12)
        mse.append(np.mean(err))
    np.testing.assert_allclose(fit.criterion, mse, rtol=1e-9)
    assert tau[int(np.argmin(mse))] == s


def test_logistic_ridge__equals_newton_optimum_of_the_penalised_likelihood():
    from scipy.optimize import minimize
    from scipy.special import expit

    rng = np.random.default_rng(3)
    n, p = 200, 4
    x = rng.normal(size=(n, p))
    off = rng.normal(scale=0.5, size=n)
    y = (rng.random(n) < expit(off + x @ [0.8, -0.5, 0.0, 0.3])).astype(float)
    tau = 7.0
    b, prob, _, ok = R.logistic_ridge(x, y, off, tau, tol=1e-11)
    assert ok

    # Oracle: scipy's trust-region Newton on -loglik + tau/2 |b|^2 with its exact gradient and Hessian
    # (statsmodels' fit_regularized stops at a gradient of ~1e-3 here, too coarse to compare to).
    def f(v):
        eta = off + x @ v
        return float(np.sum(np.logaddexp(0, eta) - y * eta) + tau / 2 * v @ v)

    def grad(v):
        return x.T @ (expit(off + x @ v) - y) + tau * v

    def hess(v):
        q = expit(off + x @ v)
        return (x.T * (q * (1 - q))) @ x + tau * np.eye(p)

    ref = minimize(f, np.zeros(p), jac=grad, hess=hess, method="trust-exact", options={"gtol": 1e-12})
    np.testing.assert_allclose(b, ref.x, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(prob, expit(off + x @ b), rtol=1e-12)


def test_score_chunk__equals_statsmodels_score_test_with_offset():
    import statsmodels.api as sm
    rng = np.random.default_rng(5)
    n = 300
    c = np.column_stack([np.ones(n), rng.normal(size=(n, 2))])
    off = rng.normal(scale=0.4, size=n)
    g = rng.binomial(2, 0.3, size=(n, 3)).astype(float)
    y = (rng.random(n) < 1 / (1 + np.exp(-(off - 0.7 + 0.4 * c[:, 1])))).astype(float)
    null = O.null_fit(y, c, off)
    res0 = sm.GLM(y, c, family=sm.families.Binomial(), offset=off).fit(tol=1e-12)
    np.testing.assert_allclose(null.gamma, res0.params, rtol=1e-8)
    _, _, stat, _ = O.score_chunk(null, g - g.mean(0))
    for j in range(3):
        # Rao score test of adding g_j: statsmodels' score_test of the full model's g coefficient at 0.
        full = sm.GLM(y, np.column_stack([c, g[:, j]]), family=sm.families.Binomial(), offset=off)
        want = full.score_test(np.append(res0.params, 0.0), k_constraints=1)[0]
        assert stat[j] == pytest.approx(float(np.squeeze(want)), rel=1e-7)


def test_level_shrinkage_grids__regenie_formulas():
    np.testing.assert_allclose(R.level0_shrinkage((0.5, 0.25), 1000), [1000.0, 3000.0])
    np.testing.assert_allclose(R.level1_shrinkage((0.5,), 50, binary=False), [50.0])
    np.testing.assert_allclose(R.level1_shrinkage((0.5,), 50, binary=True), [50.0 * 3 / np.pi**2])
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        R.level0_shrinkage((0.0,), 10)


def test_loco_file__round_trip_and_sorted_fid_iid_header(tmp_path):
    keys = ["2_2", "10_10", "1_1"]
    loco = np.arange(3 * RF.N_CHROM, dtype=float).reshape(3, RF.N_CHROM) / 7
    loco[1] = np.nan
    path = RF.write_loco(tmp_path / "x_1.loco.gz", keys, loco)
    back = RF.read_loco(path)
    assert back.samples == ("10_10", "1_1", "2_2")  # string order, as REGENIE's std::map
    np.testing.assert_array_equal(back.aligned(keys), loco)
    assert np.isnan(back.aligned(["9_9"])).all()


@pytest.mark.parametrize(("text", "rule"), [
    ("ID 1_1\n1 0.5\n", "header starting 'FID_IID'"),
    ("FID_IID 1_1 2_2\n1 0.5\n", "1 values for the header's 2 samples"),
    ("FID_IID 1_1\n24 0.5\n", "outside 1..23"),
    ("FID_IID 1_1\n1 abc\n", "neither a number nor NA"),
])
def test_read_loco__bad_file_names_line_and_rule(tmp_path, text, rule):
    p = tmp_path / "bad.loco"
    p.write_text(text)
    with pytest.raises(InputError, match=rule) as exc:
        RF.read_loco(p)
    assert "bad.loco" in str(exc.value)


def test_read_pred_list__relative_paths_and_duplicates(tmp_path):
    (tmp_path / "a_1.loco").write_text("FID_IID 1_1\n1 0\n")
    (tmp_path / "p.list").write_text("Y1 a_1.loco\n")
    assert RF.read_pred_list(tmp_path / "p.list") == {"Y1": tmp_path / "a_1.loco"}
    (tmp_path / "q.list").write_text("Y1 a\nY1 b\n")
    with pytest.raises(InputError, match="q.list, line 2: trait 'Y1' listed twice"):
        RF.read_pred_list(tmp_path / "q.list")


def test_spa_pvalues__match_the_simulated_null_distribution_of_the_score():
    """Oracle: the exact null law of U = G~'(Y - p) with Y ~ Bernoulli(p), by simulation (300,000 draws)."""
    from scipy.special import ndtr

    rng = np.random.default_rng(11)
    n = 1000
    c = np.column_stack([np.ones(n), rng.normal(size=n)])
    off = rng.normal(scale=0.3, size=n)
    y = (rng.random(n) < 0.04).astype(float)  # 4 % cases: the score is skewed for a rare variant
    null = O.null_fit(y, c, off)
    g = rng.binomial(2, 0.02, size=n).astype(float)
    _, se, _, gt = O.score_chunk(null, (g - g.mean())[:, None])
    v = 1.0 / se**2
    draws = np.concatenate([(rng.random((30_000, n)) < null.p) @ gt[:, 0] - null.p @ gt[:, 0] for _ in range(10)])
    for z in (3.5, 4.0):
        q = z * np.sqrt(v[0])
        mc = np.mean(np.abs(draws) >= q)
        spa = O.spa_pvalues(null, gt, np.array([q]), v)[0]
        assert abs(spa - mc) < 4 * np.sqrt(mc / draws.size), (z, spa, mc)
        assert 2 * ndtr(-z) < 0.25 * mc  # the normal approximation is far off here


def test_level1_logistic_kfold__fold_predictions_use_the_penalised_optimum_without_the_fold():
    from scipy.optimize import minimize
    from scipy.special import expit

    rng = np.random.default_rng(8)
    n, p = 120, 4
    x = rng.normal(size=(n, p))
    off = rng.normal(scale=0.3, size=n)
    y = (rng.random(n) < expit(off + x @ [0.7, -0.4, 0.2, 0.0])).astype(float)
    mask = np.ones(n, dtype=bool)
    mask[::9] = False  # missing phenotypes: rows that take no part
    y[~mask] = 0.0
    sizes = R.fold_sizes(n, 4)
    tau = np.array([2.0, 20.0])
    groups = [np.array([0, 1]), np.array([2, 3])]
    fit = R.level1_logistic_kfold(x, y, off, mask, sizes, tau, groups)
    crit = np.zeros(tau.size)
    start = 0
    for size in sizes:
        test = np.zeros(n, dtype=bool)
        test[start : start + size] = True
        tr, te = ~test & mask, test & mask
        for j, t in enumerate(tau):
            def f(v, t=t, tr=tr):
                eta = off[tr] + x[tr] @ v
                return float(np.sum(np.logaddexp(0, eta) - y[tr] * eta) + t / 2 * v @ v)

            def grad(v, t=t, tr=tr):
                return x[tr].T @ (expit(off[tr] + x[tr] @ v) - y[tr]) + t * v

            b = minimize(f, np.zeros(p), jac=grad, method="BFGS", options={"gtol": 1e-10}).x
            q = expit(off[te] + x[te] @ b)
            crit[j] -= np.sum(y[te] * np.log(q) + (1 - y[te]) * np.log(1 - q))
            if j == fit.best:
                for c, cols in enumerate(groups):
                    np.testing.assert_allclose(fit.chrom_pred[te, c], x[te][:, cols] @ b[cols], rtol=1e-3, atol=1e-4)
        start += size
    # REGENIE stops logistic ridge at a score below 1e-4: criteria agree to ~1e-6.
    np.testing.assert_allclose(fit.criterion, crit / mask.sum(), rtol=1e-5)
    assert np.all(fit.chrom_pred[~mask] == 0)


def test_regenie_table__chisq_from_log10p_stays_finite_below_double_underflow():
    import polars as pl

    t = pl.DataFrame({"chromosome": [1, 1], "base_pair_location": [1, 2], "rsid": ["a", "b"],
                      "other_allele": ["A", "A"], "effect_allele": ["G", "G"], "effect_allele_frequency": [0.1, 0.2],
                      "n": [10, 10], "beta": [0.1, 5.0], "standard_error": [0.3, 0.1],
                      "neg_log_10_p_value": [0.133163, 400.0], "error_code": [None, None]})
    out = RF.to_regenie_table(t)
    chisq = out.get_column("CHISQ").to_numpy()
    assert chisq[0] == pytest.approx(0.113736, rel=1e-5)  # REGENIE's golden row 1: CHISQ 0.113736, LOG10P 0.133163
    assert np.isfinite(chisq[1]) and chisq[1] == pytest.approx(1834.1, rel=1e-4)
