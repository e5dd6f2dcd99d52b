"""Exact Firth correction of WGR step 2 (REGENIE ``--firth`` without ``--approx``) against an independent fit.

A small family cohort with a binary trait: step 1 through ``crosscohort wgr``,
step 2 through ``crosscohort assoc --pred --firth --pThresh 0.2``. Every
corrected row is refitted here by maximising Firth's penalised
log-likelihood ``l(b) + 1/2 log det(X'WX)`` with scipy.optimize (BFGS), the
LOCO prediction as offset, ``X`` = intercept, age and the dosage: BETA is
the penalised estimate, the p-value that of the penalised likelihood-ratio
statistic against the fit with the dosage's coefficient held at 0 (the same
design's penalty, ``logistf``'s profile), SE the Wald SE of the unpenalised
information at the estimate (REGENIE's default SE).
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from scipy.optimize import minimize
from scipy.special import chdtrc, expit

from crosscohort.cli import main
from crosscohort.demo.pedigree import simulate_families
from crosscohort.tre.association import regenie_files as RF
from crosscohort.tre.genotypes import Genotypes


def _penalised(b: np.ndarray, x: np.ndarray, y: np.ndarray, off: np.ndarray) -> float:
    eta = off + x @ b
    w = expit(eta) * (1 - expit(eta))
    return float(np.sum(y * eta - np.logaddexp(0.0, eta)) + 0.5 * np.linalg.slogdet((x.T * w) @ x)[1])


def test_step2_exact_firth__rows_below_pthresh_match_an_independent_penalised_fit(tmp_path):
    c = simulate_families(tmp_path / "fam", n_families=20, n_unrelated=200, n_chrom=2, variants_per_chrom=150,
                          n_causal=40, h2=0.6, prevalence=0.15, seed=11)
    common = ["--bfile", str(c.prefix), "--pheno", str(c.pheno), "--pheno-name", "cc", "--trait-type", "cc=binary",
              "--covar", str(c.covar), "--covar-name", "age"]
    assert main(["wgr", *common, "--bsize", "100", "--out", str(tmp_path / "fit")]) == 0
    assert main(["assoc", *common, "--pred", str(tmp_path / "fit_pred.list"), "--firth", "--pThresh", "0.2",
                 "--out", str(tmp_path / "exact.tsv")]) == 0
    t = pl.read_csv(tmp_path / "exact.tsv", separator="\t", null_values="NA")
    rows = np.flatnonzero(t.get_column("firth").to_numpy())
    assert rows.size >= 10, rows.size
    assert t.get_column("error_code").null_count() == t.height

    geno = Genotypes([c.prefix])
    fam = geno.samples
    keys = [RF.sample_key(f, i) for f, i in zip(fam.get_column("fid").to_list(), fam.get_column("iid").to_list(),
                                                strict=True)]
    loco = RF.read_loco(tmp_path / "fit_1.loco").aligned(keys)
    pheno = fam.select("fid", "iid").join(
        pl.read_csv(c.pheno, separator="\t").rename({"#FID": "fid", "IID": "iid"}), on=["fid", "iid"], how="left")
    covar = fam.select("fid", "iid").join(
        pl.read_csv(c.covar, separator="\t").rename({"#FID": "fid", "IID": "iid"}), on=["fid", "iid"], how="left")
    y = pheno.get_column("cc").to_numpy().astype(float)
    age = covar.get_column("age").to_numpy()
    chrom = geno.variants.get_column("chrom").to_numpy().astype(int)
    dos = geno.read(rows)
    for col, j in enumerate(rows):
        g = dos[:, col].copy()
        g[np.isnan(g)] = np.nanmean(g)  # REGENIE's mean imputation
        off = loco[:, chrom[j] - 1]
        x = np.column_stack([np.ones(y.size), (age - age.mean()) / age.std(), g])
        full = minimize(lambda b, x=x, off=off: -_penalised(b, x, y, off), np.zeros(3), method="BFGS",
                        options={"gtol": 1e-10})
        null = minimize(lambda b, x=x, off=off: -_penalised(np.r_[b, 0.0], x, y, off), np.zeros(2),
                        method="BFGS", options={"gtol": 1e-10})
        # BFGS on a numerical gradient stops at ~1e-8 ("precision loss"), well inside the tolerances below.
        lrt = 2 * (null.fun - full.fun)
        p = expit(off + x @ full.x)
        se = np.sqrt(np.linalg.inv((x.T * (p * (1 - p))) @ x)[2, 2])
        assert t["beta"][int(j)] == pytest.approx(full.x[2], rel=1e-5, abs=1e-7), j
        assert t["standard_error"][int(j)] == pytest.approx(se, rel=1e-5), j
        assert t["p_value"][int(j)] == pytest.approx(chdtrc(1, lrt), rel=1e-4), j
