"""A study config states the study; checks at load name the file and column (issue 19).

A --configfile replaces the demo's config/config.yaml; nested --config values
are typed by the schema; in cohort mode every trait and covariate is checked
against the cohort's headers, in central mode every trait against every
bundle, before any job runs.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from crosscohort.config import load_study, validate_config
from crosscohort.contract.errors import ConfigError, UserError
from tests.test_config import CONFIG, REPO, SHEET, _cfg

#: The shipped sheet's cohort ids, in order.
IDS = [line.split("\t")[0] for line in SHEET.splitlines()[1:] if line.strip()]
ONE = IDS[-1]


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "cohorts.tsv").write_text(SHEET)
    return tmp_path


def _snakemake_n(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--cores", "1", "-n", *args],
        cwd=workdir, capture_output=True, text=True, timeout=120,
    )


def test_snakemake__study_config_replaces_the_demo_study_and_nested_overrides_are_typed(workdir):
    """A --configfile states the study: the demo's ldl/cad are not merged in; --config
    'association={scatter: 3}' arrives from Snakemake as the string '3' and is accepted."""
    (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(CONFIG))
    study = {"traits": {"hdl": {"type": "quantitative"}}, "demo": {"scale": "small"}}
    (workdir / "study.yaml").write_text(yaml.safe_dump(study))
    proc = _snakemake_n(workdir, "--configfile", "study.yaml", "--config", "association={scatter: 3}",
                        "meta={gc: true}")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "results/report/hdl.html" in out
    assert "ldl" not in out.replace("resources/demo", "") and "cad.html" not in out
    n_units = len(IDS) + 1  # cohorts + the pooled arm
    assert re.search(rf"association_part\s+{3 * n_units}\b", out), out[-3000:]


def test_config__overrides_given_as_strings_take_the_schema_type():
    cfg = _cfg()
    cfg["association"] = {"scatter": "5", "chunk_size": "100"}
    cfg["qc"].update(maf="0.05", mac="10", king_cutoff="null", hwe="1e-10")
    cfg["meta"] = {"gc": "true", "method": "random"}
    cfg["pooled"] = {"enabled": "false"}
    cfg["covariates"] = "age,sex"
    cfg["study"]["name"] = 2024  # --config 'study={name: 2024}' gives a string, top-level ints an int
    validate_config(cfg)
    assert cfg["study"]["name"] == "2024"
    assert (cfg["association"]["scatter"], cfg["association"]["chunk_size"]) == (5, 100)
    assert (cfg["qc"]["maf"], cfg["qc"]["mac"], cfg["qc"]["king_cutoff"], cfg["qc"]["hwe"]) == (0.05, 10, None, 1e-10)
    assert cfg["meta"]["gc"] is True and cfg["pooled"]["enabled"] is False
    assert cfg["covariates"] == ["age", "sex"]
    with pytest.raises(ConfigError, match=r"key 'association\.scatter': 'five' is not of type 'integer'"):
        validate_config(_cfg(association__scatter="five"))


def test_config__study_config_without_traits_is_named(workdir):
    cfg = {"mode": "cohort", "cohort": ONE}
    with pytest.raises(ConfigError, match=r"my\.yaml: key 'traits' is required .*states the study completely"):
        load_study(cfg, workdir=workdir, source="my.yaml", check_files=False)


def _cohort_files(workdir: Path, cohort: str, pheno: str, covar: str) -> None:
    d = workdir / "resources" / "demo"
    d.mkdir(parents=True, exist_ok=True)
    for suffix in (".bed", ".bim", ".fam"):
        (d / f"{cohort}{suffix}").write_text("")
    (d / f"{cohort}.pheno.tsv").write_text(pheno)
    (d / f"{cohort}.covar.tsv").write_text(covar)


PHENO = "FID IID ldl cad\n1 1 2.5 1\n1 2 3.1 2\n0 3 NA 2\n"
COVAR = "FID IID age sex centre\n1 1 50 1 A\n1 2 61 2 B\n0 3 70 2 A\n"


@pytest.mark.parametrize(("pheno", "covar", "changes", "message"), [
    (PHENO.replace("cad", "chd"), COVAR, {}, r"\.pheno\.tsv, line 1: no column 'cad' for the study's trait"),
    (PHENO.replace("3.1", "high"), COVAR, {},
     r"\.pheno\.tsv, line 3, column 'ldl': trait 'ldl' \(quantitative\) values must be numbers.*'high'"),
    (PHENO.replace(" 2\n", " 3\n"), COVAR, {}, r"pheno\.tsv, column 'cad': a binary trait must be coded 1/2"),
    (PHENO, COVAR, {"covariates": ["age", "bmi"]},
     r"covariates \(config key 'covariates'\): no column\(s\) \['bmi'\] in .*\.covar\.tsv"),
    (PHENO, COVAR.replace("centre", "PC2"), {"covariates": ["age"]},
     r"covar\.tsv, line 1: column\(s\) \['PC2'\] would clash with the in-cohort ancestry PCs"),
])
def test_config__cohort_mode_checks_traits_and_covariates_in_the_headers_at_load(workdir, pheno, covar,
                                                                                 changes, message):
    _cohort_files(workdir, ONE, pheno, covar)
    cfg = _cfg(mode="cohort", cohort=ONE)
    cfg.update(changes)
    with pytest.raises(UserError, match=message):
        load_study(cfg, workdir=workdir)


def test_config__cohort_mode_accepts_categorical_and_fam_sex_covariates(workdir):
    _cohort_files(workdir, ONE, PHENO, COVAR.replace(" sex", "").replace(" 1 A", " A")
                  .replace(" 2 B", " B").replace(" 2 A", " A"))
    cfg = _cfg(mode="cohort", cohort=ONE, covariates=["age", "sex", "centre"])
    assert load_study(cfg, workdir=workdir).run_cohorts == [ONE]


def test_snakemake__central_mode_trait_missing_from_a_bundle_is_named_not_a_missing_bed(workdir):
    for c in IDS:
        (workdir / "exports" / c).mkdir(parents=True)
        traits = ("ldl",) if c == ONE else ("ldl", "cad")
        files = [{"path": f"{t}.tsv.gz"} for t in traits]
        (workdir / "exports" / c / "manifest.json").write_text(json.dumps({"files": files}))
    (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(_cfg(mode="central")))
    proc = _snakemake_n(workdir)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert (f"exports/{ONE}/manifest.json: the bundle of cohort '{ONE}' has no trait(s) ['cad'] "
            "(it has ['ldl'])") in out, out[-2000:]
    assert "MissingInput" not in out and ".bed" not in out and "Traceback" not in out
