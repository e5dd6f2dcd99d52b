"""The p-value helpers and genomic control against scipy and mpmath (50 digits), far beyond the double range."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import mpmath
import numpy as np
import polars as pl
import pytest
from scipy.special import chdtrc
from scipy.stats import chi2, norm
from scipy.stats import t as student_t

from crosscohort.contract.errors import InputError
from crosscohort.contract.stats import (
    CHI2_1_MEDIAN,
    _log_upper_gamma_q,
    chi2_from_neglog10p,
    lambda_gc,
    neg_log10_p,
    neg_log10_p_from_chi2,
    neg_log10_p_from_t,
    neg_log10_p_from_z,
    neg_log10_p_of_table,
    p_from_chi2,
    p_from_t,
    p_from_z,
    z_from_neg_log10_p,
)


@pytest.mark.parametrize("n", [1, 2, 999, 1000])
def test_lambda_gc__equals_median_chi2_over_its_null_median(n):
    rng = np.random.default_rng(n)
    z = rng.normal(scale=1.1, size=n)
    p = 2 * norm.sf(np.abs(z))
    expected = np.median(chi2.isf(p, 1)) / chi2.ppf(0.5, 1)
    assert lambda_gc(-np.log10(p)) == pytest.approx(expected, rel=1e-10)


def test_lambda_gc__ignores_missing_and_is_nan_when_empty():
    assert np.isnan(lambda_gc(np.array([np.nan, np.inf])))
    assert lambda_gc(np.array([np.nan, -np.log10(0.5)])) == pytest.approx(
        chi2.isf(0.5, 1) / CHI2_1_MEDIAN
    )


def test_chi2_from_neglog10p__finite_beyond_double_underflow():
    # |z| = 40: p = 7.3e-350 underflows; chi2 must still be z^2 = 1600
    nlp = -(np.log(2) + norm.logsf(40)) / np.log(10)
    assert chi2_from_neglog10p(np.array([nlp]))[0] == pytest.approx(1600.0, rel=1e-9)


def test_chi2_1_median__is_scipys_median_to_the_last_bit():
    # the literal replaces an import of scipy.stats at start-up
    assert CHI2_1_MEDIAN == float(chi2.ppf(0.5, 1))


def test_chi2_from_neglog10p__equals_scipy_chi2_isf_exactly():
    x = np.linspace(0.0, 299.0, 5001)
    assert np.array_equal(chi2_from_neglog10p(x), chi2.isf(10.0**-x, 1))


# --- the p-value helpers at the extremes, against mpmath at 50 digits ----------------------

mpmath.mp.dps = 50


def _mp_nlp_z(z):
    return -mpmath.log10(mpmath.erfc(abs(mpmath.mpf(z)) / mpmath.sqrt(2)))


def _mp_nlp_chi2(x, df):
    return -mpmath.log10(
        mpmath.gammainc(mpmath.mpf(df) / 2, mpmath.mpf(x) / 2, mpmath.inf, regularized=True)
    )


def _mp_nlp_t(t, df):
    t, df = mpmath.mpf(t), mpmath.mpf(df)
    return -mpmath.log10(
        mpmath.betainc(df / 2, mpmath.mpf(1) / 2, 0, df / (df + t * t), regularized=True)
    )


@pytest.mark.parametrize("z", [0.0, 1e-8, 1.0, -1.96, 5.45, 37.5, -40.0, 100.0, 1000.0])
def test_neg_log10_p_from_z__equals_mpmath_to_the_last_digits(z):
    assert neg_log10_p_from_z(np.array([z]))[0] == pytest.approx(
        float(_mp_nlp_z(z)), rel=1e-13, abs=1e-16
    )


def test_p_from_z__is_scipys_two_sided_normal_p_and_underflows_to_zero():
    z = np.array([0.0, 1.0, -1.96, 5.45, -37.0, 40.0])
    np.testing.assert_array_equal(p_from_z(z), 2.0 * norm.sf(np.abs(z)))
    assert p_from_z(np.array([40.0]))[0] == 0.0  # why -log10 p is computed in log space
    assert np.isnan(p_from_z(np.array([np.nan]))[0])


@pytest.mark.parametrize("df", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("x", [0.0, 3.0, 60.0, 1400.0, 2000.0, 5000.0, 20000.0])
def test_neg_log10_p_from_chi2__equals_mpmath_beyond_the_double_range(x, df):
    got = neg_log10_p_from_chi2(np.array([x]), df)[0]
    assert got == pytest.approx(float(_mp_nlp_chi2(x, df)), rel=1e-12, abs=1e-15), (x, df)


def test_neg_log10_p_from_chi2__continued_fraction_equals_chdtrc_where_both_work():
    # the continued fraction (used where p < 1e-280) agrees with chdtrc where both work
    x, df = np.array([60.0, 300.0, 1200.0]), np.array([2.0, 3.0, 4.0])
    np.testing.assert_allclose(
        -_log_upper_gamma_q(df / 2, x / 2) / np.log(10), -np.log10(chdtrc(df, x)), rtol=1e-13
    )


def test_p_from_chi2__is_scipys_chi2_sf_and_nan_stays_nan():
    x, df = np.array([0.0, 3.84, 30.0, 2000.0, np.nan]), np.array([1, 1, 3, 5, 2])
    np.testing.assert_array_equal(p_from_chi2(x, df), chi2.sf(x, df))
    assert np.isnan(neg_log10_p_from_chi2(np.array([np.nan]), 2)[0])


@pytest.mark.parametrize(
    ("t", "df"),
    [
        (0.0, 5),
        (2.0, 10),
        (-8.0, 3),
        (40.0, 1000),
        (60.0, 1000),
        (45.0, 3000),
        (1e5, 30),
        (1e20, 40),
        (1e160, 1),
        (1e200, 5),
    ],
)
def test_neg_log10_p_from_t__equals_mpmath_also_where_stdtr_underflows(t, df):
    # before the log-space tail, t = 60 on 1000 df (p = 1e-333) and beyond gave +inf
    got = neg_log10_p_from_t(np.array([t]), df)[0]
    assert got == pytest.approx(float(_mp_nlp_t(t, df)), rel=1e-13, abs=1e-15), (t, df)


def test_neg_log10_p_from_t__is_scipys_t_logsf_where_p_is_a_normal_float():
    rng = np.random.default_rng(3)
    t, df = rng.normal(scale=6.0, size=200), rng.integers(1, 500, size=200).astype(float)
    want = -(np.log(2.0) + student_t.logsf(np.abs(t), df)) / np.log(10.0)
    np.testing.assert_allclose(neg_log10_p_from_t(t, df), want, rtol=1e-14)
    np.testing.assert_allclose(p_from_t(t, df), 2.0 * student_t.sf(np.abs(t), df), rtol=1e-14)
    # a scalar df with a vector t, and NaN in NaN out
    assert np.isnan(neg_log10_p_from_t(np.array([np.nan, 1.0]), 7.0)[0])


@pytest.mark.parametrize("nlp", [0.5, 7.3, 300.0, 349.136, 400.0, 1000.0])
def test_z_and_chi2_from_neg_log10_p__invert_mpmaths_tail_beyond_the_double_range(nlp):
    # -log10 p = 400 is p = 1e-400, below the smallest double: the inverse must still be exact
    z = z_from_neg_log10_p(np.array([nlp]), np.array([-1.0]))[0]
    assert z < 0 and float(_mp_nlp_z(z)) == pytest.approx(nlp, rel=1e-13)
    x = chi2_from_neglog10p(np.array([nlp]))[0]
    assert float(_mp_nlp_chi2(x, 1)) == pytest.approx(nlp, rel=1e-12)
    assert z_from_neg_log10_p(np.array([nlp]), np.array([0.0]))[0] == 0.0


def test_neg_log10_p__zero_is_infinite_and_nan_stays_nan_without_warnings():
    with np.errstate(all="raise"):
        out = neg_log10_p(np.array([1.0, 0.01, 0.0, np.nan]))
    np.testing.assert_array_equal(out, [-0.0, 2.0, np.inf, np.nan])


def test_neg_log10_p_of_table__prefers_the_log_column_then_p_then_z():
    t = pl.DataFrame(
        {
            "neg_log_10_p_value": [400.0, None, None, float("nan")],
            "p_value": [0.0, 1e-5, 0.0, 0.5],
            "beta": [1.0] * 4,
            "standard_error": [1.0] * 4,
        }
    )
    np.testing.assert_allclose(neg_log10_p_of_table(t), [400.0, 5.0, np.inf, -np.log10(0.5)])
    np.testing.assert_allclose(
        neg_log10_p_of_table(t.drop("neg_log_10_p_value")), [np.inf, 5.0, np.inf, -np.log10(0.5)]
    )
    z = neg_log10_p_of_table(t.select("beta", "standard_error"))
    np.testing.assert_allclose(z, neg_log10_p_from_z(np.ones(4)), rtol=0)


def test_neg_log10_p_of_table__without_p_nor_beta_names_the_table_and_the_columns():
    with pytest.raises(
        InputError, match=r"meta\.tsv: needs a p-value column .*present: \['beta'\]"
    ):
        neg_log10_p_of_table(pl.DataFrame({"beta": [1.0]}), source="meta.tsv")


def test_stats__import_loads_no_scipy():
    # every command imports the contract; scipy.special loads only when a helper runs
    code = (
        "import sys; import crosscohort.contract.stats as s; a = 'scipy' in sys.modules; "
        "s.neg_log10_p_from_z([1.0]); print(a, 'scipy.special' in sys.modules, 'scipy.stats' in sys.modules)"
    )
    root = str(Path(__file__).resolve().parent.parent)
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": root, "PATH": "/usr/bin:/bin"},
    )
    assert proc.stdout.split() == ["False", "True", "False"], proc.stdout + proc.stderr


def test_log_space_helpers__take_a_scalar_also_where_p_underflows():
    # a float in, a float out, through the branch that fixes underflowed rows
    for got, want in [
        (neg_log10_p_from_t(1e200, 5.0), _mp_nlp_t(1e200, 5)),
        (neg_log10_p_from_chi2(2000.0, 3), _mp_nlp_chi2(2000.0, 3)),
        (neg_log10_p_from_z(40.0), _mp_nlp_z(40.0)),
    ]:
        assert np.ndim(got) == 0 and float(got) == pytest.approx(float(want), rel=1e-12)
    x = chi2_from_neglog10p(400.0)
    assert np.ndim(x) == 0 and float(_mp_nlp_chi2(x, 1)) == pytest.approx(400.0, rel=1e-12)
