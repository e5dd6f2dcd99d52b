"""Meta-analysis estimators against stored golden numbers (metafor, statsmodels) and the live oracle.

The numbers sit in ``tests/results/`` beside the command that produced them
(statsmodels' ``stats/tests/results/`` habit). Each is checked three ways:
the estimator functions (:mod:`crosscohort.central.meta.estimators`), the
product path (``crosscohort meta`` through the CLI, or ``meta_analyse``,
which is the command's driver), and, where the tool is here, the live
oracle against the stored numbers, so that a stored number that no longer
matches its tool fails too.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from results import metafor_meta, statsmodels_dl_panel
from scipy.special import chdtrc, ndtr
from statsmodels.stats.meta_analysis import combine_effects

from crosscohort.central.meta import meta_analyse
from crosscohort.central.meta.estimators import ivw_arrays
from crosscohort.cli import main
from crosscohort.contract.sumstats import read_sumstats

#: metafor prints 15 significant digits; Q of effects near 62 with deviations near 1 loses
#: about two digits to rounding in any implementation (ours and statsmodels' differ from
#: metafor's by 3e-12 and 8e-13), so 1e-10 as statsmodels' own tests use.
RTOL = 1e-10


def _cohort_tables(beta: np.ndarray, se: np.ndarray) -> dict[str, pl.DataFrame]:
    """One table per study (columns of ``beta``), variant i at chromosome 1, position 1000 (i + 1)."""
    tables = {}
    for j in range(beta.shape[1]):
        ok = np.isfinite(beta[:, j])
        pos = (np.flatnonzero(ok) + 1) * 1000
        tables[f"s{j + 1}"] = pl.DataFrame({
            "chromosome": np.ones(ok.sum(), dtype=np.int64), "base_pair_location": pos,
            "effect_allele": ["G"] * int(ok.sum()), "other_allele": ["A"] * int(ok.sum()),
            "beta": beta[ok, j], "standard_error": se[ok, j],
            "effect_allele_frequency": 0.3, "p_value": 2 * ndtr(-np.abs(beta[ok, j] / se[ok, j])),
        })
    return tables


def test_meta_estimators__metafor_fixed_and_dersimonian_laird_numbers():
    y = np.array(metafor_meta.Y)[:, None]  # (k studies, 1 variant)
    se = np.sqrt(np.array(metafor_meta.V))[:, None]
    res = ivw_arrays(y, se)
    fe, dl = metafor_meta.FE, metafor_meta.DL
    np.testing.assert_allclose(res.beta, [fe["b"]], rtol=RTOL)
    np.testing.assert_allclose(res.standard_error, [fe["se"]], rtol=RTOL)
    np.testing.assert_allclose(res.z, [fe["zval"]], rtol=RTOL)
    np.testing.assert_allclose(res.q, [fe["QE"]], rtol=RTOL)
    np.testing.assert_allclose(100 * res.i2, [fe["I2"]], rtol=RTOL)
    np.testing.assert_allclose(res.tau2, [dl["tau2"]], rtol=RTOL)
    np.testing.assert_allclose(res.beta_random, [dl["b"]], rtol=RTOL)
    np.testing.assert_allclose(res.standard_error_random, [dl["se"]], rtol=RTOL)
    np.testing.assert_allclose(res.z_random, [dl["zval"]], rtol=RTOL)
    np.testing.assert_allclose(chdtrc(res.df, res.q), [fe["QEp"]], rtol=1e-10)


def test_meta_cli__metafor_example_through_the_command(tmp_path):
    # Nine cohorts of one variant each, as `crosscohort meta` reads them from disk.
    y, v = np.array(metafor_meta.Y), np.array(metafor_meta.V)
    tables = _cohort_tables(y[None, :], np.sqrt(v)[None, :])
    args = []
    for c, t in tables.items():
        t.write_csv(tmp_path / f"{c}.tsv", separator="\t")
        args.append(f"{c}={tmp_path / c}.tsv")
    out = tmp_path / "meta.tsv"
    assert main(["meta", "--method", "random", "--out", str(out), *args]) == 0
    row = read_sumstats(out).row(0, named=True)
    fe, dl = metafor_meta.FE, metafor_meta.DL
    # The table is written with 17 significant digits: metafor's 15 hold.
    assert row["n_studies"] == 9 and row["het_df"] == 8
    assert row["beta"] == pytest.approx(fe["b"], rel=RTOL)
    assert row["standard_error"] == pytest.approx(fe["se"], rel=RTOL)
    assert row["het_q"] == pytest.approx(fe["QE"], rel=RTOL)
    assert row["het_p"] == pytest.approx(fe["QEp"], rel=1e-10)
    assert 100 * row["het_i2"] == pytest.approx(fe["I2"], rel=RTOL)
    assert row["tau2"] == pytest.approx(dl["tau2"], rel=RTOL)
    assert row["beta_random"] == pytest.approx(dl["b"], rel=RTOL)
    assert row["standard_error_random"] == pytest.approx(dl["se"], rel=RTOL)


def _panel() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    beta = np.array(statsmodels_dl_panel.BETA)
    se = np.array(statsmodels_dl_panel.SE)
    want = np.array(statsmodels_dl_panel.RESULTS)
    return beta, se, want


def _truncated(want: np.ndarray) -> dict[str, np.ndarray]:
    """The stored statsmodels numbers with DerSimonian-Laird's truncation at 0 (module docstring)."""
    cols = dict(zip(statsmodels_dl_panel.COLUMNS, want.T, strict=True))
    homogeneous = cols["tau2"] <= 0
    cols["tau2"] = np.maximum(cols["tau2"], 0.0)
    cols["i2"] = np.maximum(cols["i2"], 0.0)
    cols["mean_effect_re"] = np.where(homogeneous, cols["mean_effect_fe"], cols["mean_effect_re"])
    cols["sd_eff_w_re"] = np.where(homogeneous, cols["sd_eff_w_fe"], cols["sd_eff_w_re"])
    return cols


def test_meta_golden__stored_statsmodels_panel_is_what_statsmodels_computes():
    beta, se, want = _panel()
    for b, s, w in zip(beta, se, want, strict=True):
        ok = np.isfinite(b)
        with np.errstate(invalid="ignore"):
            r = combine_effects(b[ok], s[ok] ** 2, method_re="dl")
        got = [r.mean_effect_fe, r.sd_eff_w_fe, r.q, r.i2, r.tau2, r.mean_effect_re, r.sd_eff_w_re]
        np.testing.assert_allclose(got, w, rtol=1e-13, equal_nan=True)


def test_meta_estimators__statsmodels_panel_numbers():
    beta, se, want = _panel()
    cols = _truncated(want)
    res = ivw_arrays(beta.T, se.T)
    assert res.n_studies.tolist() == [4, 4, 2, 3, 4, 4]
    np.testing.assert_allclose(res.beta, cols["mean_effect_fe"], rtol=RTOL)
    np.testing.assert_allclose(res.standard_error, cols["sd_eff_w_fe"], rtol=RTOL)
    np.testing.assert_allclose(res.q, cols["q"], rtol=RTOL)
    np.testing.assert_allclose(res.i2, cols["i2"], rtol=RTOL)
    np.testing.assert_allclose(res.tau2, cols["tau2"], rtol=RTOL, atol=0)
    np.testing.assert_allclose(res.beta_random, cols["mean_effect_re"], rtol=RTOL)
    np.testing.assert_allclose(res.standard_error_random, cols["sd_eff_w_re"], rtol=RTOL)


def test_meta_driver__statsmodels_panel_numbers():
    beta, se, want = _panel()
    cols = _truncated(want)
    t = meta_analyse(_cohort_tables(beta, se), method="random").table
    assert t.get_column("base_pair_location").to_list() == [1000, 2000, 3000, 4000, 5000, 6000]
    assert t.get_column("direction").to_list() == ["+-++", "++++", "++??", "-?-+", "++++", "+-+0"]
    for mine, theirs, rtol in (("beta", "mean_effect_fe", RTOL),
                               ("standard_error", "sd_eff_w_fe", RTOL),
                               ("het_q", "q", RTOL), ("het_i2", "i2", RTOL), ("tau2", "tau2", RTOL),
                               ("beta_random", "mean_effect_re", RTOL),
                               ("standard_error_random", "sd_eff_w_re", RTOL)):
        np.testing.assert_allclose(t.get_column(mine).to_numpy(), cols[theirs], rtol=rtol,
                                   err_msg=mine)
