"""Trait models of ``crosscohort assoc``: chromosome X, inverse-normal transform, a null trait.

chrX and the transform are compared with plink2 2.00a3.5 ``--glm`` on small
cohorts written here; the null trait runs qc, pca and assoc on the small
simulated demo.
"""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import statsmodels.api as sm
from bed_reader import to_bed
from scipy.stats import norm, rankdata

from crosscohort.contract.errors import InputError
from crosscohort.contract.stats import lambda_gc
from crosscohort.demo.simulate import simulate_demo
from crosscohort.tre.association import run_assoc
from crosscohort.tre.genotypes import Genotypes
from crosscohort.tre.pca import run_pca, write_pca
from crosscohort.tre.phenotypes import inverse_normal_transform, read_table
from crosscohort.tre.qc import run_qc, write_qc

N_X, M_AUTO, M_X = 500, 20, 30
N_UNKNOWN_SEX = 6
HET_MALE_VARIANT = M_AUTO  # first X variant: three males carry a (erroneous) heterozygous call


def _x_cohort(d: Path, seed: int = 9) -> Path:
    """Autosomal and chrX variants; males' X calls haploid, stored as homozygous (0/2)."""
    rng = np.random.default_rng(seed)
    sex = rng.integers(1, 3, N_X)
    sex[:N_UNKNOWN_SEX] = 0
    male = sex == 1
    p = rng.uniform(0.05, 0.5, M_AUTO + M_X)
    g = rng.binomial(2, p, size=(N_X, M_AUTO + M_X)).astype(np.float64)
    hap = 2.0 * rng.binomial(1, p[M_AUTO:], size=(N_X, M_X))
    g[:, M_AUTO:] = np.where(male[:, None], hap, g[:, M_AUTO:])
    g[np.flatnonzero(male)[:3], HET_MALE_VARIANT] = 1.0
    g[rng.random(g.shape) < 0.02] = np.nan
    prefix = d / "x"
    to_bed(prefix.with_suffix(".bed"), g, count_A1=True, num_threads=1,
           properties={"fid": [f"f{i}" for i in range(N_X)], "iid": [f"i{i}" for i in range(N_X)],
                       "sex": sex, "sid": [f"v{j}" for j in range(M_AUTO + M_X)],
                       "chromosome": ["1"] * M_AUTO + ["X"] * M_X,
                       "bp_position": np.arange(M_AUTO + M_X) * 10 + 1})
    gx = np.nan_to_num(g)
    qt = 0.3 * gx[:, M_AUTO + 1] + 0.5 * male + rng.normal(size=N_X)
    eta = -1 + 0.4 * gx[:, M_AUTO + 2] + 0.3 * male
    bt = (rng.random(N_X) < 1 / (1 + np.exp(-eta))).astype(int) + 1
    skewed = np.exp(qt)  # a skewed trait for the transform
    age = rng.normal(50, 8, N_X)
    (d / "pheno.tsv").write_text("#FID\tIID\tqt\tbt\tskewed\n" + "".join(
        f"f{i}\ti{i}\t{qt[i]:.6f}\t{bt[i]}\t{skewed[i]:.6f}\n" for i in range(N_X)))
    (d / "covar.tsv").write_text("#FID\tIID\tage\n" + "".join(f"f{i}\ti{i}\t{age[i]:.4f}\n" for i in range(N_X)))
    return prefix


@pytest.fixture(scope="module")
def xcohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _x_cohort(tmp_path_factory.mktemp("chrx"))


def _plink2_glm(exe: str, prefix: Path, extra: list[str], out: str) -> dict[str, pl.DataFrame]:
    d = prefix.parent
    cmd = [exe, "--bfile", str(prefix), "--pheno", str(d / "pheno.tsv"), "--covar", str(d / "covar.tsv"),
           *extra, "--glm", "hide-covar", "omit-ref", "no-firth",
           "cols=+a1count,+totallele,+a1freq,+beta,+nobs,+err", "--out", str(d / out)]
    subprocess.run(cmd, check=True, capture_output=True)
    res = {}
    for f in d.glob(f"{out}.*.glm.*"):
        res[f.name.split(".")[1]] = pl.read_csv(f, separator="\t", null_values="NA")
    return res


@pytest.mark.oracle
def test_chrx__males_0_2_sex_covariate_matches_plink2_glm(xcohort, plink2):
    # Oracle command: plink2 --bfile x --pheno pheno.tsv --covar covar.tsv --glm hide-covar omit-ref
    #   no-firth cols=+a1count,+totallele,+a1freq,+beta,+nobs,+err --out p2
    # (plink2 adds sex from the .fam as a chrX covariate and codes males 0/2: --xchr-model 2)
    theirs = _plink2_glm(plink2, xcohort, ["--pheno-name", "qt,bt"], "p2")
    log = io.StringIO()
    ours = run_assoc([xcohort], xcohort.parent / "pheno.tsv", pheno_names=["qt", "bt"],
                     covar=[xcohort.parent / "covar.tsv"], firth=False, log=log).tables
    assert "chromosome X" in log.getvalue() and "sex added as a covariate" in log.getvalue()
    for trait, tol in (("qt", 1e-5), ("bt", 1e-4)):  # plink2: 6 digits; single-precision logistic
        j = pl.concat([ours[trait], theirs[trait]], how="horizontal")
        assert (j["rsid"] == j["ID"]).all()
        assert (j["ERRCODE"] == ".").all() and j["error_code"].null_count() == j.height
        assert (j["n"] == j["OBS_CT"]).all()  # unknown-sex samples left out on X only
        x = j.filter(pl.col("chromosome") == 23)
        assert x.height == M_X and (x["n"] <= N_X - N_UNKNOWN_SEX).all()
        assert (j.filter(pl.col("chromosome") == 1)["n"] > N_X - N_UNKNOWN_SEX).any()
        for mine, other in (("beta", "BETA"), ("standard_error", "SE"), ("p_value", "P"),
                            ("effect_allele_frequency", "A1_FREQ")):
            a, b = j[mine].to_numpy(), j[other].to_numpy()
            scale = np.maximum(np.abs(b), j["SE"].to_numpy()) if other == "BETA" else np.abs(b)
            rel = np.abs(a - b) / scale
            assert rel.max() < tol, (trait, other, rel.max())


def test_chrx__sex_already_a_covariate_is_not_added_twice(xcohort, tmp_path):
    fam = Genotypes([xcohort]).samples
    cov = read_table(xcohort.parent / "covar.tsv").join(fam.select("fid", "iid", "sex"), on=["fid", "iid"])
    path = tmp_path / "covar_sex.tsv"
    path.write_text("#FID\tIID\tage\tSex\n" + "".join(
        f"{f}\t{i}\t{a}\t{s if s else 'NA'}\n" for f, i, a, s in cov.select("fid", "iid", "age", "sex").iter_rows()))
    log = io.StringIO()
    a = run_assoc([xcohort], xcohort.parent / "pheno.tsv", pheno_names=["qt"], covar=[path], log=log).tables["qt"]
    b = run_assoc([xcohort], xcohort.parent / "pheno.tsv", pheno_names=["qt"],
                  covar=[xcohort.parent / "covar.tsv"], log=io.StringIO()).tables["qt"]
    assert "sex already a covariate" in log.getvalue()
    x = pl.col("chromosome") == 23
    # same model on X (sex from the file = sex from the .fam), so the same estimates
    np.testing.assert_allclose(a.filter(x)["beta"].to_numpy(), b.filter(x)["beta"].to_numpy(), rtol=1e-10)


def test_inverse_normal_transform__blom_formula_with_ties_averaged():
    v = np.array([3.0, 1.0, 2.0, 2.0, np.nan, 10.0])
    got = inverse_normal_transform(v)
    ok = ~np.isnan(v)
    r = rankdata(v[ok])  # average ranks for ties
    want = norm.ppf((r - 0.375) / (ok.sum() + 0.25))
    np.testing.assert_allclose(got[ok], want, rtol=1e-14)
    assert np.isnan(got[4]) and got[2] == got[3]
    with pytest.raises(ValueError, match="offset"):
        inverse_normal_transform(v, offset=0.7)


@pytest.mark.oracle
def test_pheno_transform_int__matches_plink2_pheno_quantile_normalize(xcohort, plink2):
    # Oracle command: plink2 --bfile x --pheno pheno.tsv --covar covar.tsv --pheno-name skewed
    #   --pheno-quantile-normalize --glm hide-covar omit-ref no-firth cols=... --out int
    # plink2 uses the rankit offset 1/2 (checked to 5e-6 on its --make-just-psam output), so
    # --int-offset 0.5 reproduces it; every sample has every value, so the ranked sets agree.
    theirs = _plink2_glm(plink2, xcohort, ["--pheno-name", "skewed", "--pheno-quantile-normalize"], "int")
    ours = run_assoc([xcohort], xcohort.parent / "pheno.tsv", pheno_names=["skewed"],
                     covar=[xcohort.parent / "covar.tsv"], pheno_transform="int", int_offset=0.5,
                     log=io.StringIO()).tables["skewed"]
    j = pl.concat([ours, theirs["skewed"]], how="horizontal")
    auto = j.filter(pl.col("chromosome") == 1)  # same samples on autosomes
    for mine, other in (("beta", "BETA"), ("standard_error", "SE")):
        rel = np.abs(auto[mine].to_numpy() - auto[other].to_numpy()) / np.abs(auto[other].to_numpy())
        assert rel.max() < 1e-5, (other, rel.max())


def test_pheno_transform_int__blom_default_matches_statsmodels_on_transformed_trait(xcohort):
    d = xcohort.parent
    ours = run_assoc([xcohort], d / "pheno.tsv", pheno_names=["skewed"], covar=[d / "covar.tsv"],
                     pheno_transform="int", log=io.StringIO()).tables["skewed"]
    y = read_table(d / "pheno.tsv")["skewed"].to_numpy()
    age = read_table(d / "covar.tsv")["age"].to_numpy()
    z = norm.ppf((rankdata(y) - 0.375) / (y.size + 0.25))  # every sample analysed on autosomes
    g = Genotypes([xcohort]).read(np.array([3]))[:, 0]
    ok = ~np.isnan(g)
    fit = sm.OLS(z[ok], sm.add_constant(np.column_stack([age[ok], g[ok]]))).fit()
    row = ours.row(3, named=True)
    assert abs(row["beta"] - fit.params[-1]) / abs(fit.params[-1]) < 1e-8
    assert abs(row["standard_error"] - fit.bse[-1]) / fit.bse[-1] < 1e-8


def test_pheno_transform__bad_offset_is_an_input_error(xcohort):
    with pytest.raises(InputError, match="--int-offset must be in"):
        run_assoc([xcohort], xcohort.parent / "pheno.tsv", pheno_names=["skewed"],
                  covar=[xcohort.parent / "covar.tsv"], pheno_transform="int", int_offset=0.9,
                  log=io.StringIO())


# ----------------------------------------------------------------- null trait on the demo

@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    simulate_demo(out, scale="small")
    return out


@pytest.fixture(scope="module")
def null_lambdas(demo: Path) -> dict[str, float]:
    """λGC of a null trait with ancestry-correlated mean, with and without 5 in-cohort PCs."""
    cohort = "biobank_eur"
    work = demo / "null"
    geno = Genotypes([demo / cohort])
    qc = run_qc(geno, cohort=cohort, log=io.StringIO())
    write_qc(qc, work / cohort)
    keep = qc.samples.filter(pl.col("keep")).select("fid", "iid")
    write_pca(run_pca(geno, keep=keep, extract=qc.kept_variant_ids, n_pcs=5), work / f"{cohort}.eigenvec")
    truth = pl.read_csv(demo / "truth" / "samples.tsv", separator="\t").filter(pl.col("cohort") == cohort)
    rng = np.random.default_rng(0)
    # No genetic effect: noise plus an ancestry shift (AFR fraction; +1 for East Asians).
    y = (rng.normal(size=truth.height) + truth["afr_fraction"].to_numpy()
         + (truth["population"] == "EAS").to_numpy())
    (work / "null.tsv").write_text("#FID\tIID\tnull\n" + "".join(
        f"{f}\t{i}\t{v:.6f}\n" for f, i, v in zip(truth["FID"], truth["IID"], y, strict=True)))
    lambdas = {}
    for label, covar in (("pcs", [work / f"{cohort}.eigenvec"]), ("none", [])):
        t = run_assoc([demo / cohort], work / "null.tsv", covar=covar, keep=work / f"{cohort}.samples.keep",
                      extract=work / f"{cohort}.variants.keep", chunk_size=5000, log=io.StringIO()).tables["null"]
        lambdas[label] = lambda_gc(t["neg_log_10_p_value"].drop_nulls().to_numpy())
    return lambdas


def test_null_trait__in_cohort_pcs_keep_lambda_gc_at_most_1_05(null_lambdas):
    # measured: 1.001 with 5 PCs (biobank_eur, seed 42, small scale)
    assert null_lambdas["pcs"] <= 1.05, null_lambdas


def test_null_trait__without_pcs_is_inflated(null_lambdas):
    # measured: 3.97 without PCs
    assert null_lambdas["none"] > 1.5, null_lambdas
