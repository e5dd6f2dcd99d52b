"""README's "Run on your own cohorts", run literally, then checked against plink2 --glm.

The README's commands run in a directory laid out as the repository root
(symlinks): tests/make_cohorts.py writes three cohorts with numeric FIDs and
one shared space-separated phenotype+covariate file (a categorical
covariate, an unrequested text column, traits the study does not name);
cohort mode runs for each, then central mode, all with the study config
given by --configfile. Then: exports hold only the study's traits, and each
cohort's association equals plink2 --glm on the same samples, variants,
covariate file (categorical column included, dummy-coded by plink2) and PCs.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml

from tests.make_cohorts import STUDY_YAML

pytestmark = pytest.mark.workflow

REPO = Path(__file__).resolve().parent.parent
COHORTS = ["cohort1", "cohort2", "cohort3"]
TRAITS = ["hdl", "t2d"]


def readme_block(lang: str) -> str:
    """The first ```lang block of the README's "Run on your own cohorts" section."""
    text = (REPO / "README.md").read_text()
    section = text.split("## Run on your own cohorts", 1)[1].split("\n## ", 1)[0]
    m = re.search(rf"^( *)```{lang}\n(.*?)^\1```", section, flags=re.S | re.M)
    assert m, f"no ```{lang} block in README's 'Run on your own cohorts'"
    indent = len(m.group(1))
    return "".join(line[indent:] + "\n" for line in m.group(2).splitlines())


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("newcomer")
    for name in ("Snakefile", "workflow", "tests", "crosscohort", "config"):
        (root / name).symlink_to(REPO / name)
    commands = readme_block("bash")
    proc = subprocess.run(["bash", "-euo", "pipefail", "-c", commands], cwd=root, capture_output=True,
                          text=True, timeout=1200)
    out = proc.stdout + proc.stderr
    logs = "\n".join(f"== {p}\n{p.read_text()[-2000:]}" for p in (root / "my_study").rglob("logs/**/*.log")
                     if p.stat().st_size)
    assert proc.returncode == 0, out[-6000:] + logs
    assert out.count("crosscohort: done") == len(COHORTS) + 1, out[-3000:]
    return root / "my_study"


def test_readme__study_config_shown_is_the_one_the_example_uses(study):
    assert yaml.safe_load(readme_block("yaml")) == yaml.safe_load(STUDY_YAML)
    assert yaml.safe_load((study / "study.yaml").read_text()) == yaml.safe_load(STUDY_YAML)


def test_newcomer__exports_hold_only_the_study_traits_and_central_reports_them(study):
    header = (study / "study.txt").read_text().splitlines()[0].split()
    assert {"ldl", "cad"} <= set(header)  # in the file, not in the study: never analysed
    for c in COHORTS:
        names = [p.name for p in (study / "exports" / c).iterdir()]
        assert "manifest.json" in names and "audit.md" in names, names
        # per-trait files of exactly the study's traits (whatever else a bundle holds)
        for ext in (".tsv.gz", ".meta.yaml"):
            assert sorted(n.removesuffix(ext) for n in names if n.endswith(ext)) == sorted(TRAITS), names
    assert sorted(p.name for p in (study / "results" / "report").iterdir()) == ["hdl.html", "t2d.html"]
    assert not (study / "results" / "pooled").exists()
    for t in TRAITS:
        meta = pl.read_csv(study / "results" / "meta" / f"{t}.tsv.gz", separator="\t", null_values="NA",
                           infer_schema_length=None)
        assert meta.height > 300 and meta["n_studies"].max() == len(COHORTS)


def _covariate_file(study: Path, cohort: str, out: Path) -> Path:
    """The study's shared file with the cohort's PCs appended (plink2 takes one --covar file)."""
    pcs = {}
    for line in (study / "results" / "pca" / cohort / "pcs.eigenvec").read_text().splitlines():
        f = line.split()
        if not f[0].startswith("#"):
            pcs[(f[0], f[1])] = f[2:]
    lines = (study / "study.txt").read_text().splitlines()
    n_pcs = len(next(iter(pcs.values())))
    rows = [lines[0] + "".join(f" PC{i}" for i in range(1, n_pcs + 1))]
    rows += [line + " " + " ".join(pcs.get(tuple(line.split()[:2]), ["NA"] * n_pcs)) for line in lines[1:]]
    out.write_text("\n".join(rows) + "\n")
    return out


@pytest.mark.oracle
@pytest.mark.parametrize("cohort", COHORTS)
def test_newcomer__each_cohort_association_equals_plink2_glm(study, cohort, tmp_path):
    from tests.conftest import require_tool

    exe = require_tool("plink2")
    covar = _covariate_file(study, cohort, tmp_path / "covar.txt")
    qc = study / "results" / "qc" / cohort
    # Oracle command: same genotypes, QC'd samples and variants, the shared file (t2d 0/1: --1),
    # centre dummy-coded by plink2, .fam sex by the 'sex' modifier, our PCs; firth-fallback
    # (plink2's default, as ours).
    cmd = [exe, "--bfile", str(study / cohort), "--keep", str(qc / "qc.samples.keep"),
           "--extract", str(qc / "qc.variants.keep"), "--pheno", str(study / "study.txt"),
           "--pheno-name", "hdl", "t2d", "--1", "--covar", str(covar),
           "--covar-name", "age", "centre", "PC1-PC3", "--glm", "sex", "hide-covar", "omit-ref",
           "cols=+a1freq,+beta,+nobs,+err", "--out", str(tmp_path / "plink2")]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout
    for trait in TRAITS:
        theirs = pl.read_csv(next(tmp_path.glob(f"plink2.{trait}.glm.*")), separator="\t", null_values="NA",
                             infer_schema_length=None)
        ours = pl.read_csv(study / "results" / "association" / cohort / f"{trait}.tsv.gz", separator="\t",
                           null_values="NA", infer_schema_length=None)
        assert ours["rsid"].to_list() == theirs["ID"].to_list()
        j = pl.concat([ours, theirs], how="horizontal").filter(pl.col("ERRCODE") == ".")
        assert j.height == ours.height - ours["error_code"].drop_nulls().len() > 300
        assert (j["n"] == j["OBS_CT"]).all() and (j["effect_allele"] == j["A1"]).all()
        if trait == "hdl":
            # linear: plink2 prints 6 significant digits; measured max 5e-6
            for a, b in (("beta", "BETA"), ("standard_error", "SE"), ("p_value", "P")):
                rel = np.abs(j[a].to_numpy() - j[b].to_numpy()) / np.abs(j[b].to_numpy())
                assert rel.max() < 1e-5, (cohort, b, rel.max())
        else:
            # logistic: plink2 fits in single precision (measured: beta 1e-5 of its SE); its SE
            # is off for variants with missing calls (tests/test_association_plink2.py, where
            # ours match statsmodels), so SE and p are compared on complete variants
            assert (j["FIRTH?"] == "N").all() and not ours["firth"].any()
            se = j["SE"].to_numpy()
            beta = np.abs(j["beta"].to_numpy() - j["BETA"].to_numpy()) / np.maximum(np.abs(j["BETA"]), se)
            assert beta.max() < 5e-5, (cohort, beta.max())
            full = j.filter(pl.col("n") == pl.col("n").max())
            assert full.height > 100
            for a, b in (("standard_error", "SE"), ("p_value", "P")):
                rel = np.abs(full[a].to_numpy() - full[b].to_numpy()) / np.abs(full[b].to_numpy())
                assert rel.max() < 1e-4, (cohort, b, rel.max())
