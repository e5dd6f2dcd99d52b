"""Genomic control: lambda from -log10 p against scipy's chi-square, underflow included."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import chi2, norm

from crosscohort.contract.stats import CHI2_1_MEDIAN, chi2_from_neglog10p, lambda_gc


@pytest.mark.parametrize("n", [1, 2, 999, 1000])
def test_lambda_gc__equals_median_chi2_over_its_null_median(n):
    rng = np.random.default_rng(n)
    z = rng.normal(scale=1.1, size=n)
    p = 2 * norm.sf(np.abs(z))
    expected = np.median(chi2.isf(p, 1)) / chi2.ppf(0.5, 1)
    assert lambda_gc(-np.log10(p)) == pytest.approx(expected, rel=1e-10)


def test_lambda_gc__ignores_missing_and_is_nan_when_empty():
    assert np.isnan(lambda_gc(np.array([np.nan, np.inf])))
    assert lambda_gc(np.array([np.nan, -np.log10(0.5)])) == pytest.approx(chi2.isf(0.5, 1) / CHI2_1_MEDIAN)


def test_chi2_from_neglog10p__finite_beyond_double_underflow():
    # |z| = 40: p = 7.3e-350 underflows; chi2 must still be z^2 = 1600
    nlp = -(np.log(2) + norm.logsf(40)) / np.log(10)
    assert chi2_from_neglog10p(np.array([nlp]))[0] == pytest.approx(1600.0, rel=1e-9)


def test_chi2_1_median__is_scipys_median_to_the_last_bit():
    # the literal replaces an import of scipy.stats at start-up
    assert CHI2_1_MEDIAN == float(chi2.ppf(0.5, 1))


def test_chi2_from_neglog10p__equals_scipy_chi2_isf_exactly():
    x = np.linspace(0.0, 299.0, 5001)
    assert np.array_equal(chi2_from_neglog10p(x), chi2.isf(10.0 ** -x, 1))
