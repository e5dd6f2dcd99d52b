"""METAL's SAMPLESIZE scheme: hand example, scipy oracle, far tail, bad input."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from scipy.stats import norm

from crosscohort.central.meta import meta_analyse


def _one(pos, beta, p, n, *, se=0.1, nlp=None) -> pl.DataFrame:
    m = len(pos)
    return pl.DataFrame({
        "chromosome": [1] * m, "base_pair_location": pos, "effect_allele": ["G"] * m,
        "other_allele": ["A"] * m, "beta": beta, "standard_error": [se] * m,
        "effect_allele_frequency": [0.3] * m, "p_value": p, "n": n,
        **({"neg_log_10_p_value": nlp} if nlp is not None else {}),
    }, schema_overrides={"p_value": pl.Float64, "n": pl.Int64})


def test_meta_samplesize__hand_example_of_metal_formula():
    # Willer et al. 2010, Table 1: z_i = Phi^-1(1 - p_i/2) * sign(beta_i), w_i = sqrt(N_i),
    # Z = sum(z_i w_i) / sqrt(sum w_i^2).  By hand: z1 = +2.5758293035489 (p 0.01),
    # z2 = -1.2815515655446 (p 0.2); Z = (sqrt(1000) z1 + sqrt(4000) z2) / sqrt(5000)
    #    = (81.45468 - 81.05224) / 70.71068 = 0.0056913...
    a = _one([10], [0.3], [0.01], [1000])
    b = _one([10], [-0.1], [0.2], [4000])
    row = meta_analyse({"a": a, "b": b}, method="samplesize").table.row(0, named=True)
    z1, z2 = 2.5758293035489004, -1.2815515655446004
    want = (np.sqrt(1000) * z1 + np.sqrt(4000) * z2) / np.sqrt(5000)
    assert want == pytest.approx(0.0056913, abs=1e-7)
    assert row["z_samplesize"] == pytest.approx(want, rel=1e-12)
    assert row["p_value"] == pytest.approx(2 * norm.sf(abs(want)), rel=1e-12)
    assert row["n"] == 5000
    # beta/SE stay the fixed-effect IVW estimate (equal SEs: the mean of the betas).
    assert row["beta"] == pytest.approx(0.1, rel=1e-12)


def test_meta_samplesize__matches_scipy_on_random_cohorts_with_gaps():
    rng = np.random.default_rng(21)
    m, k = 300, 4
    tabs, N, P, B = {}, [], [], []
    for c in range(k):
        keep = rng.random(m) > 0.25
        pos = (np.arange(m) + 1)[keep]
        beta = rng.normal(0, 0.05, m)[keep]
        p = rng.uniform(1e-12, 1, m)[keep]
        n = rng.integers(100, 20000, m)[keep]
        tabs[f"c{c}"] = _one(pos.tolist(), beta.tolist(), p.tolist(), n.tolist())
        full = np.full((4, m), np.nan)
        full[0, keep], full[1, keep], full[2, keep] = p, n, beta
        P.append(full[0]), N.append(full[1]), B.append(full[2])
    P, N, B = np.array(P), np.array(N), np.array(B)
    # oracle: scipy.stats.norm.isf per cohort, summed per variant in a plain loop
    want = []
    for v in range(m):
        got = np.isfinite(P[:, v])
        z = np.sign(B[got, v]) * norm.isf(P[got, v] / 2)
        if got.any():
            want.append((np.sqrt(N[got, v]) * z).sum() / np.sqrt(N[got, v].sum()))
    res = meta_analyse(tabs, method="samplesize").table
    want = np.array(want)
    np.testing.assert_allclose(res.get_column("z_samplesize").to_numpy(), want, rtol=1e-10)
    np.testing.assert_allclose(res.get_column("p_value").to_numpy(), 2 * norm.sf(np.abs(want)),
                               rtol=1e-9)
    fixed = meta_analyse(tabs).table
    assert res.get_column("beta").to_list() == fixed.get_column("beta").to_list()
    assert "z_samplesize" not in fixed.columns


def test_meta_samplesize__far_tail_from_neg_log10_p():
    # p = 1e-400 underflows; -log10 p carries it. z = norm.isf in log space:
    # oracle: mpmath-free check that 2*Phi(-|z|) gives back 400 in -log10 (scipy log_ndtr).
    a = _one([10], [0.5], [0.0], [1000], nlp=[400.0])
    row = meta_analyse({"a": a}, method="samplesize").table.row(0, named=True)
    from scipy.special import log_ndtr
    z = row["z_samplesize"]
    assert z == pytest.approx(42.826, abs=1e-3)
    assert -(np.log(2) + log_ndtr(-z)) / np.log(10) == pytest.approx(400.0, rel=1e-12)
    assert row["neg_log_10_p_value"] == pytest.approx(400.0, rel=1e-10)


def test_meta_samplesize__missing_n_and_p_counted_never_zero():
    a = _one([10, 20, 30, 40], [0.1, 0.2, -0.1, 0.3], [0.01, None, 0.5, 0.2], [1000, 1000, None, 0])
    b = _one([10, 20, 30, 40], [0.1, 0.2, -0.1, 0.3], [0.01, 0.02, 0.5, 0.2], [500, 500, 500, 500])
    res = meta_analyse({"a": a, "b": b}, method="samplesize")
    lg = res.ledgers["a"]
    assert lg.removed["bad_value_p_value"] == 1 and lg.removed["bad_value_n"] == 2
    assert lg.n_kept == 1
    assert res.table.get_column("direction").to_list() == ["++", "?+", "?-", "?+"]
    # variant 20: b alone, z from its own p
    row = res.table.row(1, named=True)
    assert row["z_samplesize"] == pytest.approx(norm.isf(0.01), rel=1e-12)
    # fixed: n and p do not matter, nothing removed for them
    assert "bad_value_n" not in meta_analyse({"a": a, "b": b}).ledgers["a"].removed


def test_meta_samplesize__zero_beta_gives_z_zero_not_metals_positive(tmp_path):
    # METAL counts beta = 0 as a positive effect (its example data print beta as 0 with
    # p = 0.6, a rounded effect); we give such a cohort z = 0: the sign is unknown, and a
    # fixed "+" would push every such variant's Z one way (docs/harmonisation.md).
    # Derived by hand: cohort a beta 0, p 0.6, N 1000; cohort b beta 0.1, p 0.01, N 4000.
    #   ours:  Z = (sqrt(1000) * 0 + sqrt(4000) * 2.5758293035489) / sqrt(5000) = 2.3039...
    #   METAL: Z = (sqrt(1000) * 0.5244005127080 + sqrt(4000) * 2.5758293035489) / sqrt(5000)
    from crosscohort.cli import main
    from crosscohort.contract.sumstats import read_sumstats

    files = []
    for name, beta, p, n in (("a", 0.0, 0.6, 1000), ("b", 0.1, 0.01, 4000)):
        f = tmp_path / f"{name}.txt"
        f.write_text(f"SNP\tCHR\tPOS\tEA\tNEA\tBETA\tSE\tP\tN\nrs1\t1\t100\tG\tA\t{beta}\t0.1\t{p}\t{n}\n")
        files.append(str(f))
    out = tmp_path / "m.tsv"
    assert main(["meta", "--format", "auto", "--method", "samplesize", "--out", str(out), *files]) == 0
    z = read_sumstats(out, required=()).get_column("z_samplesize")[0]
    z_b = -norm.ppf(0.005)
    ours = np.sqrt(4000) * z_b / np.sqrt(5000)
    metal = (np.sqrt(1000) * -norm.ppf(0.3) + np.sqrt(4000) * z_b) / np.sqrt(5000)
    assert z == pytest.approx(ours, rel=1e-12)
    assert abs(z - metal) > 0.2
