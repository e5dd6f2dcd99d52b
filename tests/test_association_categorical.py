"""Cohort files as they come, through ``crosscohort assoc`` and against plink2 --glm.

One small cohort with numeric sample IDs (FID 0, FID = IID, FID 1..k), one
space-separated phenotype+covariate file without '#' (a 0/1 case/control
trait, a categorical covariate with plink2's missing category NONE, an
unrequested text column, PCs), sex taken from the .fam, plink2's list syntax
(space-separated names, a range PC1-PC3). Our command and plink2 get the same
file; plink2 dummy-codes the categorical covariate itself.
"""

from __future__ import annotations

import io
import subprocess
from contextlib import redirect_stderr
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from bed_reader import to_bed

from crosscohort.cli import main

N, M = 500, 60
CENTRES = ["leeds", "bristol", "glasgow"]


def _simulate(d: Path, seed: int = 7) -> Path:
    rng = np.random.default_rng(seed)
    g = rng.binomial(2, rng.uniform(0.05, 0.5, M), size=(N, M)).astype(np.float64)
    g[rng.random((N, M)) < 0.01] = np.nan
    iid = [str(1000 + i) for i in range(N)]
    # numeric IDs as cohorts hand them over: FID 0, FID = IID, FID 1..k
    fid = ["0" if i < N // 3 else iid[i] if i < 2 * N // 3 else str(i - 2 * N // 3 + 1) for i in range(N)]
    sex = rng.integers(1, 3, N)
    sex[:4] = 0  # unknown sex: left out where sex is a covariate
    prefix = d / "c"
    to_bed(prefix.with_suffix(".bed"), g, count_A1=True, num_threads=1, properties={
        "fid": fid, "iid": iid, "sex": sex, "chromosome": ["1"] * M,
        "sid": [f"rs{10 + j}" for j in range(M)], "bp_position": np.arange(M) * 500 + 1,
        "allele_1": rng.choice(["A", "C"], M).tolist(), "allele_2": rng.choice(["G", "T"], M).tolist(),
    })
    centre = rng.integers(0, 3, N)
    age = rng.normal(50, 9, N)
    pcs = rng.normal(size=(N, 3))
    dose = np.nan_to_num(g[:, :3])
    ldl = 0.03 * age + np.array([0.0, 0.8, -0.5])[centre] + 0.4 * (sex == 2) + pcs[:, 0] + dose @ [0.4, 0, -0.3]
    ldl += rng.normal(size=N)
    eta = -1 + 0.02 * (age - 50) + np.array([0.0, 0.7, -0.4])[centre] + 0.5 * dose[:, 0]
    cad = (rng.random(N) < 1 / (1 + np.exp(-eta))).astype(int)
    lines = ["FID IID ldl cad age centre ancestry PC1 PC2 PC3"]
    for i in range(N):
        c = "NONE" if i % 41 == 5 else CENTRES[centre[i]]
        a = "NA" if i % 37 == 3 else f"{age[i]:.2f}"
        ld = "-9" if i % 29 == 2 else f"{ldl[i]:.5f}"
        anc = rng.choice(["EUR", "AFR/EUR", "South Asian"]).replace(" ", "_")
        lines.append(f"{fid[i]} {iid[i]} {ld} {cad[i]} {a} {c} {anc} "
                     + " ".join(f"{v:.6f}" for v in pcs[i]))
    (d / "study.txt").write_text("\n".join(lines) + "\n")
    return prefix


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _simulate(tmp_path_factory.mktemp("categorical"))


@pytest.fixture(scope="module")
def ours(cohort: Path) -> tuple[dict[str, pl.DataFrame], str]:
    d = cohort.parent
    err = io.StringIO()
    with redirect_stderr(err):
        code = main(["assoc", "--bfile", str(cohort), "--pheno", str(d / "study.txt"),
                     "--pheno-name", "ldl", "cad", "--trait-type", "cad=binary",
                     "--covar", str(d / "study.txt"), "--covar-name", "age", "centre", "sex", "PC1-PC3",
                     "--no-firth", "--out", str(d / "ours.{trait}.tsv")])
    assert code == 0, err.getvalue()
    tables = {t: pl.read_csv(d / f"ours.{t}.tsv", separator="\t", null_values="NA") for t in ("ldl", "cad")}
    return tables, err.getvalue()


@pytest.fixture(scope="module")
def plink2_glm(cohort: Path) -> dict[str, pl.DataFrame]:
    from conftest import require_tool

    exe = require_tool("plink2")
    d = cohort.parent
    # Oracle command: the same file as phenotype and covariate file; --1: 0/1 case/control;
    # plink2 dummy-codes 'centre' (missing category NONE) and adds .fam sex with 'sex':
    cmd = [exe, "--bfile", str(cohort), "--pheno", str(d / "study.txt"), "--pheno-name", "ldl", "cad", "--1",
           "--covar", str(d / "study.txt"), "--covar-name", "age", "centre", "PC1-PC3",
           "--glm", "sex", "hide-covar", "omit-ref", "no-firth", "cols=+a1freq,+beta,+nobs,+err",
           "--out", str(d / "plink2")]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return {t: pl.read_csv(d / f"plink2.{t}.glm.{ext}", separator="\t", null_values="NA",
                           infer_schema_length=None)
            for t, ext in (("ldl", "linear"), ("cad", "logistic"))}


@pytest.mark.oracle
@pytest.mark.parametrize(("trait", "tol"), [("ldl", 1e-5), ("cad", 1e-4)])
def test_assoc__categorical_covariate_sex_from_fam_numeric_ids_match_plink2(ours, plink2_glm, trait, tol):
    mine, theirs = ours[0][trait], plink2_glm[trait]
    assert mine["rsid"].to_list() == theirs["ID"].to_list()
    j = pl.concat([mine, theirs], how="horizontal").filter(pl.col("ERRCODE") == ".")
    assert j.height >= M - 2 and j["error_code"].null_count() == j.height
    assert (j["n"] == j["OBS_CT"]).all()
    se = j["SE"].to_numpy()
    for a, b in (("beta", "BETA"), ("standard_error", "SE"), ("p_value", "P")):
        x, y = j[a].to_numpy(), j[b].to_numpy()
        # 6 significant digits printed (linear: 1e-5 relative); logistic in single precision,
        # beta on the scale of its SE (tolerances of tests/test_association_plink2.py)
        scale = np.maximum(np.abs(y), se) if (b == "BETA" and trait == "cad") else np.abs(y)
        assert (np.abs(x - y) / scale).max() < tol, (trait, b)


def test_assoc__categorical_levels_and_text_columns_are_logged(ours):
    log = ours[1]
    # plink2's reference level is the first in the file: plink2 --glm without hide-covar on this
    # file names its columns centre=bristol and centre=leeds (glasgow is the file's first level)
    assert "categorical covariate centre: 3 levels (glasgow, leeds, bristol), reference glasgow" in log
    assert "covariate sex from the genotype samples' sex" in log
    assert "ancestry" not in log  # unrequested text column: ignored, not even mentioned


def test_assoc__text_trait_or_ambiguous_range_is_one_line_error(cohort, capsys):
    d = cohort.parent
    code = main(["assoc", "--bfile", str(cohort), "--pheno", str(d / "study.txt"), "--pheno-name", "ancestry",
                 "--covar", str(d / "study.txt"), "--covar-name", "age", "--out", str(d / "x.tsv")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1].startswith(f"crosscohort assoc: error: {d / 'study.txt'}, line 2, column 'ancestry': "
                              "trait 'ancestry' values must be numbers"), err
    code = main(["assoc", "--bfile", str(cohort), "--pheno", str(d / "study.txt"), "--pheno-name", "ldl",
                 "--covar", str(d / "study.txt"), "--covar-name", "PC1-PC9", "--out", str(d / "x.tsv")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and "--covar-name: no column(s) ['PC4', 'PC5', 'PC6', 'PC7', 'PC8', 'PC9']" in err[-1]
