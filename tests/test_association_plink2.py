"""Conformance of ``crosscohort assoc`` with plink2 --glm and with statsmodels.

One small simulated cohort (own .bed with missing calls, a monomorphic
variant, an all-missing variant, rare variants, real effects), analysed by
plink2 (Debian's v2.00a3.5) and by us. plink2 prints 6 significant digits and
computes logistic regression in single precision, hence the tolerances.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import statsmodels.api as sm
from bed_reader import to_bed

from crosscohort.tre.association import run_assoc
from crosscohort.tre.genotypes import Genotypes
from crosscohort.tre.phenotypes import read_table

N, M = 600, 160
MONOMORPHIC, ALL_MISSING = 3, 4


def _simulate(directory: Path, seed: int = 20240611) -> Path:
    """Write ``directory/c.{bed,bim,fam}``, ``pheno.tsv`` and ``covar.tsv``; returns the prefix."""
    rng = np.random.default_rng(seed)
    maf = rng.uniform(0.01, 0.5, M)
    maf[:3] = [0.005, 0.008, 0.02]  # rare: few minor alleles, logistic near separation
    g = rng.binomial(2, maf, size=(N, M)).astype(np.float64)
    g[:, MONOMORPHIC] = 0.0
    miss_rate = np.where(np.arange(M) % 3 == 0, 0.05, 0.0)  # a third of variants with missing calls
    g[rng.random((N, M)) < miss_rate] = np.nan
    # Five calls only: fewer samples than intercept + 4 covariates + dosage.
    g[:, ALL_MISSING] = np.nan
    g[:5, ALL_MISSING] = [0, 1, 2, 1, 0]
    fid = [f"F{i // 2}" for i in range(N)]
    iid = [f"I{i}" for i in range(N)]
    prefix = directory / "c"
    to_bed(
        prefix.with_suffix(".bed"), g, count_A1=True, num_threads=1,
        properties={
            "fid": fid, "iid": iid, "sex": rng.integers(1, 3, N),
            "chromosome": ["1"] * (M // 2) + ["2"] * (M - M // 2),
            "sid": [f"rs{100 + j}" for j in range(M)], "bp_position": np.arange(M) * 1000 + 11,
            "allele_1": rng.choice(["A", "C"], M).tolist(), "allele_2": rng.choice(["G", "T"], M).tolist(),
        },
    )
    age = rng.normal(55, 8, N)
    sex = rng.integers(1, 3, N).astype(float)
    pc1, pc2 = rng.normal(size=(2, N))
    dose = np.nan_to_num(g[:, 10:13], nan=0.0)
    eta_q = 0.02 * age + 0.3 * sex + 0.4 * pc1 + dose @ np.array([0.5, -0.3, 0.2])
    qt = eta_q + rng.normal(size=N)
    eta_b = -3 + 0.05 * age + 0.3 * pc2 + dose @ np.array([0.6, 0.0, -0.4])
    bt = 1 + (rng.random(N) < 1 / (1 + np.exp(-eta_b))).astype(int)
    qt_s = [f"{v:.6f}" for v in qt]
    bt_s = [str(v) for v in bt]
    for i in range(0, 30, 3):
        qt_s[i] = "NA"
    for i in range(1, 30, 5):
        bt_s[i] = "-9"
    age_s = [f"{v:.3f}" for v in age]
    age_s[7] = "NA"
    with open(directory / "pheno.tsv", "w") as fh:
        fh.write("#FID\tIID\tqt\tbt\n")
        for i in range(N - 2):  # the last two genotyped samples have no phenotype line
            fh.write(f"{fid[i]}\t{iid[i]}\t{qt_s[i]}\t{bt_s[i]}\n")
        fh.write("FX\tnot_genotyped\t1.5\t2\n")
    with open(directory / "covar.tsv", "w") as fh:
        fh.write("#FID\tIID\tage\tsex\tpc1\tpc2\n")
        for i in range(N):
            fh.write(f"{fid[i]}\t{iid[i]}\t{age_s[i]}\t{sex[i]:.0f}\t{pc1[i]:.6f}\t{pc2[i]:.6f}\n")
    return prefix


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _simulate(tmp_path_factory.mktemp("cohort"))


@pytest.fixture(scope="module")
def ours(cohort: Path) -> dict[str, pl.DataFrame]:
    d = cohort.parent
    return run_assoc([cohort], d / "pheno.tsv", covar=[d / "covar.tsv"], chunk_size=37).tables


@pytest.fixture(scope="module")
def plink2_glm(cohort: Path) -> dict[str, pl.DataFrame]:
    from conftest import require_tool

    exe = require_tool("plink2")
    d = cohort.parent
    # Oracle command (omit-ref: A1 is always the .bim A1/ALT allele, as in our output;
    # no-firth: plain logistic regression, NA where it fails, like ours):
    cmd = [exe, "--bfile", str(cohort), "--pheno", str(d / "pheno.tsv"), "--covar", str(d / "covar.tsv"),
           "--glm", "hide-covar", "omit-ref", "no-firth",
           "cols=+a1count,+totallele,+a1countcc,+a1freq,+beta,+nobs,+err",
           "--out", str(d / "plink2")]
    subprocess.run(cmd, check=True, capture_output=True)
    out = {}
    for trait, ext in (("qt", "linear"), ("bt", "logistic")):
        out[trait] = pl.read_csv(d / f"plink2.{trait}.glm.{ext}", separator="\t", null_values="NA",
                                 infer_schema_length=None)
    return out


def _joined(ours: pl.DataFrame, theirs: pl.DataFrame) -> pl.DataFrame:
    assert ours.height == theirs.height == M
    assert ours["rsid"].to_list() == theirs["ID"].to_list()
    return pl.concat([ours, theirs], how="horizontal")


def _rel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(a - b) / np.abs(b)


@pytest.mark.oracle
def test_assoc_linear__matches_plink2_glm(ours, plink2_glm):
    j = _joined(ours["qt"], plink2_glm["qt"])
    fitted = j.filter(pl.col("ERRCODE") == ".")
    assert fitted.height >= M - 3
    assert fitted["error_code"].null_count() == fitted.height
    for mine, theirs in (("beta", "BETA"), ("standard_error", "SE"), ("p_value", "P"),
                         ("effect_allele_frequency", "A1_FREQ")):
        rel = _rel(fitted[mine].to_numpy(), fitted[theirs].to_numpy())
        # plink2 prints 6 significant digits: half a unit in the 6th digit is <= 5e-6 relative.
        assert rel.max() < 1e-5, (theirs, rel.max())
    assert (fitted["n"] == fitted["OBS_CT"]).all()
    assert (fitted["effect_allele"] == fitted["A1"]).all()
    mac = np.minimum(fitted["A1_CT"], fitted["ALLELE_CT"] - fitted["A1_CT"])
    np.testing.assert_allclose(fitted["mac"].to_numpy(), mac.to_numpy(), rtol=1e-12)


@pytest.mark.oracle
def test_assoc_logistic__matches_plink2_glm_no_firth(ours, plink2_glm):
    j = _joined(ours["bt"], plink2_glm["bt"])
    fitted = j.filter(pl.col("ERRCODE") == ".")
    assert fitted.height >= M - 8
    assert fitted["error_code"].null_count() == fitted.height
    complete = (fitted["n"] == fitted["n"].max()).to_numpy()  # variants without missing calls
    assert complete.sum() > M // 2
    se = fitted["SE"].to_numpy()
    for mine, theirs in (("beta", "BETA"), ("standard_error", "SE"), ("p_value", "P"),
                         ("effect_allele_frequency", "A1_FREQ")):
        a, b = fitted[mine].to_numpy(), fitted[theirs].to_numpy()
        # plink2 fits logistic models in single precision: compare beta on the scale of its SE
        # (a near-zero beta is printed with ~1e-6 absolute precision).
        scale = np.maximum(np.abs(b), se) if theirs == "BETA" else np.abs(b)
        rel = np.abs(a - b) / scale
        if theirs in ("SE", "P"):
            # plink2 2.00a3.5's logistic SE is off by up to ~0.4% for variants with missing
            # calls (its beta is right); ours match statsmodels there to 1e-8 (tests below).
            # So SE and p are compared with plink2 on complete variants only.
            rel = rel[complete]
        assert rel.max() < 1e-4, (theirs, rel.max())
    assert (fitted["n"] == fitted["OBS_CT"]).all()
    assert (fitted["effect_allele"] == fitted["A1"]).all()
    # n_cases and the minor-allele counts per group against plink2's A1 counts in cases/controls
    a1_case, a1_ctrl = fitted["A1_CASE_CT"].to_numpy(), fitted["A1_CTRL_CT"].to_numpy()
    tot = fitted["ALLELE_CT"].to_numpy()
    a1 = fitted["A1_CT"].to_numpy()
    minor_is_a1 = a1 <= tot - a1
    n_cases = fitted["n_cases"].to_numpy()
    n_controls = fitted["n_controls"].to_numpy()
    assert (n_cases + n_controls == fitted["OBS_CT"].to_numpy()).all()
    exp_cases = np.where(minor_is_a1, a1_case, 2 * n_cases - a1_case)
    exp_ctrls = np.where(minor_is_a1, a1_ctrl, 2 * n_controls - a1_ctrl)
    np.testing.assert_allclose(fitted["mac_cases"].to_numpy(), exp_cases, rtol=1e-12)
    np.testing.assert_allclose(fitted["mac_controls"].to_numpy(), exp_ctrls, rtol=1e-12)


@pytest.mark.oracle
def test_assoc__variants_plink2_cannot_fit_get_rows_with_error_codes(ours, plink2_glm):
    for trait in ("qt", "bt"):
        j = _joined(ours[trait], plink2_glm[trait])
        mono = j.row(MONOMORPHIC, named=True)
        assert mono["ERRCODE"].startswith("CONST")
        assert mono["error_code"] == "CONST_ALLELE" and mono["beta"] is None
        few = j.row(ALL_MISSING, named=True)
        assert few["error_code"] == "TOO_FEW_SAMPLES" and few["p_value"] is None
        # plink2 could not fit it either (its code differs: too few samples for the model)
        assert few["ERRCODE"] != "."
        # Whatever plink2 could not fit, we report as NA with a code (never a number).
        failed = j.filter(pl.col("ERRCODE") != ".")
        assert failed["error_code"].null_count() == 0
        assert failed["beta"].null_count() == failed.height


def _design(cohort: Path, trait: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Independent complete-case assembly: (y, covariates, dosages) over samples with all values."""
    d = cohort.parent
    geno = Genotypes([cohort])
    ph = read_table(d / "pheno.tsv")
    cv = read_table(d / "covar.tsv")
    s = geno.samples.select("fid", "iid").with_row_index("row")
    t = s.join(ph, on=["fid", "iid"], how="inner").join(cv, on=["fid", "iid"], how="inner")
    t = t.drop_nulls(subset=[trait, "age", "sex", "pc1", "pc2"]).sort("row")
    y = t[trait].to_numpy()
    x = t.select("age", "sex", "pc1", "pc2").to_numpy()
    g = geno.read(np.arange(M))[t["row"].to_numpy()]
    return (y - 1 if trait == "bt" else y), x, g


@pytest.mark.parametrize("variant", [0, 6, 10, 11, 57, 99])  # 0, 6, 57, 99 have missing calls
def test_assoc_linear__matches_statsmodels_ols(cohort, ours, variant):
    y, x, g = _design(cohort, "qt")
    ok = ~np.isnan(g[:, variant])
    fit = sm.OLS(y[ok], sm.add_constant(np.column_stack([x[ok], g[ok, variant]]))).fit()
    row = ours["qt"].row(variant, named=True)
    for mine, ref in (("beta", fit.params[-1]), ("standard_error", fit.bse[-1]), ("p_value", fit.pvalues[-1])):
        rel = abs(row[mine] - ref) / abs(ref)
        assert rel < 1e-8, (mine, row[mine], ref)
    assert row["n"] == ok.sum() and row["residual_df"] == fit.df_resid


@pytest.mark.parametrize("variant", [2, 6, 10, 12, 57, 99])  # 2 is rare (near separation)
def test_assoc_logistic__matches_statsmodels_logit(cohort, ours, variant):
    y, x, g = _design(cohort, "bt")
    ok = ~np.isnan(g[:, variant])
    fit = sm.Logit(y[ok], sm.add_constant(np.column_stack([x[ok], g[ok, variant]]))).fit(
        disp=0, method="newton", tol=1e-12, maxiter=100)
    row = ours["bt"].row(variant, named=True)
    for mine, ref in (("beta", fit.params[-1]), ("standard_error", fit.bse[-1]), ("p_value", fit.pvalues[-1])):
        rel = abs(row[mine] - ref) / abs(ref)
        assert rel < 1e-8, (mine, row[mine], ref)
    assert row["n"] == ok.sum()
    assert row["n_cases"] == int(y[ok].sum())



@pytest.mark.oracle
def test_assoc_logistic__missing_call_variants_match_plink19(cohort, ours, plink19):
    """Where plink2 2.00a3.5's logistic SE drifts (variants with missing calls), plink 1.9 agrees with us."""
    d = cohort.parent
    # Oracle command (--keep-allele-order: A1 stays the .bim A1, our effect allele):
    cmd = [plink19, "--bfile", str(cohort), "--pheno", str(d / "pheno.tsv"), "--pheno-name", "bt",
           "--covar", str(d / "covar.tsv"), "--logistic", "hide-covar", "beta", "--keep-allele-order",
           "--allow-no-sex", "--out", str(d / "plink19")]
    subprocess.run(cmd, check=True, capture_output=True)
    rows = [ln.split() for ln in (d / "plink19.assoc.logistic").read_text().splitlines()]
    theirs = pl.DataFrame(rows[1:], schema=rows[0], orient="row")
    j = pl.concat([ours["bt"], theirs], how="horizontal").filter(
        (pl.col("STAT") != "NA") & pl.col("error_code").is_null() & (pl.col("n") < pl.col("n").max())
    )
    assert j.height > 40  # the variants with missing calls
    assert (j["NMISS"].cast(pl.Int64) == j["n"]).all()
    z = (j["beta"] / j["standard_error"]).to_numpy()
    stat = j["STAT"].cast(pl.Float64).to_numpy()
    # plink 1.9 prints 4 significant digits.
    assert (np.abs(z - stat) / np.abs(stat)).max() < 1e-3


def _stored(trait: str) -> pl.DataFrame:
    """plink2's printed output for this fixture, stored with its command (tests/results)."""
    from results import plink2_glm_small as stored

    rows = stored.QT if trait == "qt" else stored.BT
    return pl.DataFrame(rows, schema={"ID": pl.String, "A1": pl.String, "OBS_CT": pl.Int64,
                                      "A1_FREQ": pl.Float64, "BETA": pl.Float64,
                                      "SE": pl.Float64, "P": pl.Float64, "ERRCODE": pl.String},
                        orient="row")


@pytest.mark.parametrize("trait", ["qt", "bt"])
def test_plink2_glm__live_output_equals_the_stored_numbers(plink2_glm, trait):
    """The stored numbers are what plink2 prints for this fixture today (else: re-run the
    command in tests/results/plink2_glm_small.py and say why they changed)."""
    live = plink2_glm[trait].select(list(_stored(trait).columns))
    assert live.equals(_stored(trait))


@pytest.mark.parametrize("trait", ["qt", "bt"])
def test_assoc__matches_stored_plink2_glm_numbers(ours, trait):
    """Our association against plink2's stored output, at plink2's print precision (no plink2 needed)."""
    j = _joined(ours[trait], _stored(trait))
    fitted = j.filter(pl.col("ERRCODE") == ".")
    assert fitted.height >= M - (3 if trait == "qt" else 8)
    assert fitted["error_code"].null_count() == fitted.height
    assert (fitted["n"] == fitted["OBS_CT"]).all()
    assert (fitted["effect_allele"] == fitted["A1"]).all()
    failed = j.filter(pl.col("ERRCODE") != ".")
    assert failed.height > 0 and failed["error_code"].null_count() == 0
    assert failed["beta"].null_count() == failed.height
    se = fitted["SE"].to_numpy()
    # Variants without missing calls (plink2 2.00a3.5's logistic SE drifts on the others).
    complete = (fitted["n"] == fitted["n"].max()).to_numpy()
    for mine, theirs in (("beta", "BETA"), ("standard_error", "SE"), ("p_value", "P"),
                         ("effect_allele_frequency", "A1_FREQ")):
        a, b = fitted[mine].to_numpy(), fitted[theirs].to_numpy()
        if trait == "qt":
            # 6 significant digits: half a unit in the 6th digit is <= 5e-6 relative.
            assert (np.abs(a - b) / np.abs(b)).max() < 1e-5, theirs
        else:
            # Single-precision logistic fits: beta on the scale of its SE, SE and p on
            # complete variants (as test_assoc_logistic__matches_plink2_glm_no_firth).
            scale = np.maximum(np.abs(b), se) if theirs == "BETA" else np.abs(b)
            rel = np.abs(a - b) / scale
            assert (rel[complete] if theirs in ("SE", "P") else rel).max() < 1e-4, theirs


def test_assoc__bim_chromosome_25_is_plinks_xy_not_mt(tmp_path):
    """A PLINK 1.9 .bim numbers XY 25 and MT 26 (UK Biobank's genotype calls hold both).

    Before: chromosome 25 of a .bim came out as 25, which in the summary statistics
    (GWAS-SSF) is MT: pseudo-autosomal variants exported as mitochondrial. plink2 reads
    the same .bim as XY and MT (its #CHROM column), the oracle of the numbering.
    """
    from conftest import require_tool

    rng = np.random.default_rng(5)
    n, labels = 200, ["1", "23", "24", "25", "26"]
    g = rng.binomial(2, 0.3, size=(n, len(labels))).astype(np.float64)
    prefix = tmp_path / "c"
    to_bed(prefix.with_suffix(".bed"), g, count_A1=True, num_threads=1, properties={
        "fid": [f"F{i}" for i in range(n)], "iid": [f"I{i}" for i in range(n)],
        "sex": np.r_[np.ones(n // 2, int), np.full(n - n // 2, 2)],
        "chromosome": labels, "sid": [f"v{j}" for j in range(len(labels))],
        "bp_position": [100, 200, 300, 400, 500],
        "allele_1": ["A"] * len(labels), "allele_2": ["G"] * len(labels)})
    (tmp_path / "pheno.tsv").write_text("FID\tIID\tqt\n" + "".join(
        f"F{i}\tI{i}\t{v:.5f}\n" for i, v in enumerate(rng.normal(size=n))))
    table = run_assoc([prefix], tmp_path / "pheno.tsv").tables["qt"]
    got = dict(zip(table["rsid"].to_list(), table["chromosome"].to_list(), strict=True))
    assert got == {"v0": 1, "v1": 23, "v2": 24, "v3": 23, "v4": 25}

    exe = require_tool("plink2")
    subprocess.run([exe, "--bfile", str(prefix), "--pheno", str(tmp_path / "pheno.tsv"),
                    "--glm", "allow-no-covars", "--out", str(tmp_path / "p")],
                   check=True, capture_output=True)
    theirs = pl.read_csv(tmp_path / "p.qt.glm.linear", separator="\t")
    assert dict(zip(theirs["ID"].to_list(), theirs["#CHROM"].cast(pl.String).to_list(),
                    strict=True))["v3"] == "XY"
