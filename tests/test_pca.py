"""Ancestry PCs (``crosscohort pca``): population separation, plink2 conformance, λGC."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from bed_reader import to_bed
from scipy.stats import t as tdist

from crosscohort.cli import main
from crosscohort.contract.errors import InputError
from crosscohort.contract.stats import lambda_gc
from crosscohort.tre.genotypes import Genotypes
from crosscohort.tre.pca import ld_prune, randomized_eigh, run_pca

N_POP, N_PER_POP, N_VARIANTS, FST = 3, 300, 3000, 0.05


def _structured_cohort(tmp_path: Path, *, missing: float = 0.0, seed: int = 5) -> Path:
    """Three populations, Balding-Nichols frequencies (Fst 0.05), some LD, two chromosomes."""
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.05, 0.95, N_VARIANTS)
    a, b = p * (1 - FST) / FST, (1 - p) * (1 - FST) / FST
    pops = rng.beta(a, b, size=(N_POP, N_VARIANTS))
    g = np.vstack([rng.binomial(2, pops[k], size=(N_PER_POP, N_VARIANTS)) for k in range(N_POP)])
    g = g.astype(np.float64)
    # LD: every third variant copies its left neighbour in 90% of samples
    for j in range(1, N_VARIANTS, 3):
        same = rng.random(g.shape[0]) < 0.9
        g[same, j] = g[same, j - 1]
    g[rng.random(g.shape) < missing] = np.nan
    half = N_VARIANTS // 2
    prefix = tmp_path / "structured"
    to_bed(prefix.with_suffix(".bed"), g, properties={
        "iid": [f"i{i}" for i in range(g.shape[0])],
        "sid": [f"v{j}" for j in range(N_VARIANTS)],
        "chromosome": ["1"] * half + ["2"] * (N_VARIANTS - half - 50) + ["X"] * 50,
        "bp_position": np.r_[np.arange(1, half + 1), np.arange(1, N_VARIANTS - half + 1)] * 1000,
    }, num_threads=1)
    return prefix


@pytest.fixture(scope="module")
def structured(tmp_path_factory) -> Path:
    return _structured_cohort(tmp_path_factory.mktemp("pca"))


@pytest.fixture(scope="module")
def ours(structured) -> Path:
    out = structured.with_name("ours.eigenvec")
    assert main(["pca", "--bfile", str(structured), "--n-pcs", "5", "--out", str(out)]) == 0
    return out


def _labels() -> np.ndarray:
    return np.repeat(np.arange(N_POP), N_PER_POP)


def test_pca__pc1_pc2_separate_populations(ours):
    ev = pl.read_csv(ours, separator="\t")
    assert ev.columns == ["#FID", "IID", "PC1", "PC2", "PC3", "PC4", "PC5"]
    x = ev.select("PC1", "PC2").to_numpy()
    lab = _labels()
    # nearest-centroid classification on PC1-2 is perfect and clusters are tight
    cent = np.stack([x[lab == k].mean(axis=0) for k in range(N_POP)])
    d = ((x[:, None, :] - cent[None]) ** 2).sum(axis=2)
    assert (d.argmin(axis=1) == lab).all()
    within = np.mean([x[lab == k].std(axis=0).max() for k in range(N_POP)])
    between = min(np.linalg.norm(cent[i] - cent[j]) for i in range(3) for j in range(i + 1, 3))
    assert between > 10 * within
    counts = json.loads(Path(f"{ours}.prune.json").read_text())
    assert counts["n_in"] == counts["n_non_autosomal"] + counts["n_maf_below"] + counts["n_ld_pruned"] + counts["n_used"]
    assert counts["n_non_autosomal"] == 50


@pytest.mark.oracle
def test_pca__matches_plink2_pca_on_the_same_pruned_set(structured, ours, tmp_path, plink2):
    # Oracle: plink2 --bfile X --extract ours.eigenvec.prune.in --pca 5 --out O
    out = tmp_path / "plink2"
    subprocess.run([plink2, "--bfile", str(structured), "--extract", f"{ours}.prune.in", "--pca", "5",
                    "--threads", "1", "--out", str(out)], check=True, capture_output=True)
    theirs = pl.read_csv(f"{out}.eigenvec", separator="\t")
    mine = pl.read_csv(ours, separator="\t")
    assert mine["IID"].to_list() == theirs["IID"].to_list()
    for k in (1, 2):
        r = np.corrcoef(mine[f"PC{k}"], theirs[f"PC{k}"])[0, 1]
        assert abs(r) > 0.9999, (k, r)
        # same unit-length scaling as plink2, up to sign
        np.testing.assert_allclose(np.abs(mine[f"PC{k}"]), np.abs(theirs[f"PC{k}"]), atol=2e-4)
    # no missing calls here: same GRM, so eigenvalues agree to plink2's 6 printed digits
    ev_mine = np.loadtxt(f"{ours}.eigenval")
    ev_theirs = np.loadtxt(f"{out}.eigenval")
    np.testing.assert_allclose(ev_mine, ev_theirs, rtol=5e-6)


@pytest.mark.oracle
def test_ld_prune__agrees_with_plink2_indep_pairwise(structured, ours, tmp_path, plink2):
    # Oracle: plink2 --bfile X --autosome --maf 0.05 --indep-pairwise 200 50 0.2 --out O
    out = tmp_path / "prune"
    subprocess.run([plink2, "--bfile", str(structured), "--autosome", "--maf", "0.05",
                    "--indep-pairwise", "200", "50", "0.2", "--threads", "1", "--out", str(out)],
                   check=True, capture_output=True)
    theirs = set(Path(f"{out}.prune.in").read_text().split())
    mine = set(Path(f"{ours}.prune.in").read_text().split())
    jaccard = len(mine & theirs) / len(mine | theirs)
    # measured: identical sets on this data (same greedy rule, same r2); allow small drift
    assert jaccard > 0.98, (len(mine), len(theirs), jaccard)


def test_pca__pcs_as_covariates_remove_stratification_from_a_null_trait(structured, ours):
    rng = np.random.default_rng(9)
    lab = _labels()
    y = np.array([0.0, 1.0, -1.0])[lab] + rng.standard_normal(len(lab))  # no genetic effect
    g = Genotypes([structured]).read(np.arange(N_VARIANTS))
    g = np.where(np.isnan(g), np.nanmean(g, axis=0), g)
    pcs = pl.read_csv(ours, separator="\t").select("PC1", "PC2").to_numpy()

    def neglog10p(cov: np.ndarray) -> np.ndarray:
        # per-variant OLS y ~ cov + g, by residualising on cov (Frisch-Waugh-Lovell)
        q, _ = np.linalg.qr(cov)
        ry, rg = y - q @ (q.T @ y), g - q @ (q.T @ g)
        keep = (rg**2).sum(axis=0) > 1e-8
        rg = rg[:, keep]
        beta = rg.T @ ry / (rg**2).sum(axis=0)
        df = len(y) - cov.shape[1] - 1
        s2 = ((ry[:, None] - rg * beta) ** 2).sum(axis=0) / df
        tstat = beta / np.sqrt(s2 / (rg**2).sum(axis=0))
        return -(np.log(2.0) + tdist.logsf(np.abs(tstat), df)) / np.log(10.0)

    ones = np.ones((len(y), 1))
    lam_raw = lambda_gc(neglog10p(ones))
    lam_pcs = lambda_gc(neglog10p(np.hstack([ones, pcs])))
    assert lam_raw > 1.5, lam_raw  # the stratified null trait is inflated without PCs
    assert 0.9 < lam_pcs < 1.1, lam_pcs


def test_randomized_eigh__matches_exact_top_eigenpairs():
    rng = np.random.default_rng(2)
    u, _ = np.linalg.qr(rng.standard_normal((300, 300)))
    vals = np.r_[50.0, 30.0, 20.0, rng.uniform(0, 1, 297)]
    k = (u * vals) @ u.T
    got_vals, got_vecs = randomized_eigh(lambda q: k @ q, 300, 3, seed=4)
    np.testing.assert_allclose(got_vals, vals[:3], rtol=1e-10)
    np.testing.assert_allclose(np.abs(np.sum(got_vecs * u[:, :3], axis=0)), 1.0, atol=1e-10)


def test_pca__randomized_and_exact_agree_with_missing_calls(tmp_path):
    prefix = _structured_cohort(tmp_path, missing=0.01, seed=8)
    kw = {"n_pcs": 2, "chunk_size": 700}
    exact = run_pca(Genotypes([prefix]), method="exact", **kw)
    rand = run_pca(Genotypes([prefix]), method="randomized", **kw)
    assert exact.method == "exact" and rand.method == "randomized"
    np.testing.assert_allclose(rand.eigenvalues, exact.eigenvalues, rtol=1e-8)
    np.testing.assert_allclose(np.abs(rand.eigenvectors), np.abs(exact.eigenvectors), atol=1e-6)


def test_ld_prune__drops_the_lower_maf_of_a_perfectly_linked_pair():
    x = np.array([[0, 0, 1], [1, 1, 0], [2, 2, 1], [0, 0, 2], [1, 1, 0]], dtype=float)
    keep = ld_prune(lambda pos: x[:, pos], np.array(["1"] * 3), np.array([0.3, 0.4, 0.4]),
                    window=3, step=1, r2=0.5)
    assert keep.tolist() == [False, True, True]


def test_pca__too_few_samples_is_a_clear_error(tmp_path):
    p = tmp_path / "tiny"
    g = np.random.default_rng(0).binomial(2, 0.5, size=(4, 40)).astype(float)
    to_bed(p.with_suffix(".bed"), g, num_threads=1)
    with pytest.raises(InputError, match="got 4 samples for 10 PCs"):
        run_pca(Genotypes([p]), n_pcs=10)


def test_pca_cli__help_says_pcs_never_leave_the_tre(capsys):
    with pytest.raises(SystemExit):
        main(["pca", "--help"])
    assert "NEVER leave" in capsys.readouterr().out
