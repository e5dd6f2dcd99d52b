"""A wrong config or cohort sheet fails before any job runs, with one message naming the key or row."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from crosscohort.config import config_digest, load_study, read_cohort_sheet, validate_config
from crosscohort.contract.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent
CONFIG = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
SHEET = (REPO / "config" / "cohorts.tsv").read_text()


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "cohorts.tsv").write_text(SHEET)
    return tmp_path


def _cfg(**changes) -> dict:
    cfg = copy.deepcopy(CONFIG)
    for dotted, value in changes.items():
        *parents, leaf = dotted.split("__")
        node = cfg
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return cfg


def test_config__shipped_config_is_valid_and_fills_defaults(workdir):
    cfg = copy.deepcopy(CONFIG)
    del cfg["qc"]["hwe"]
    study = load_study(cfg, workdir=workdir)
    assert study.config["qc"]["hwe"] == 1e-15
    assert study.cohorts == ["biobank_eur", "admixed_afr", "biobank_eas", "admixed_amr", "study_eur"]
    assert study.run_cohorts == study.cohorts


def test_config__unknown_key_is_named(workdir):
    cfg = _cfg(qc__genotype_rate=0.1)
    with pytest.raises(ConfigError, match=r"unknown key 'qc\.genotype_rate'.*allowed keys here: geno, hwe"):
        load_study(cfg, workdir=workdir)


def test_config__unknown_top_level_key_is_named(workdir):
    cfg = _cfg(metaanalysis={"method": "fixed"})
    with pytest.raises(ConfigError, match=r"unknown key 'metaanalysis'"):
        load_study(cfg, workdir=workdir)


def test_config__wrong_type_names_key_and_expectation(workdir):
    cfg = _cfg(qc__geno="ten percent")
    with pytest.raises(ConfigError, match=r"key 'qc\.geno'.*not of type 'number'.*max variant missing call rate"):
        load_study(cfg, workdir=workdir)


def test_config__out_of_range_value_is_named(workdir):
    with pytest.raises(ConfigError, match=r"key 'meta\.method': 'bayesian' is not one of"):
        validate_config(_cfg(meta__method="bayesian"))


def test_sheet__duplicate_cohort_id_names_both_lines(workdir):
    lines = SHEET.splitlines()
    (workdir / "config" / "cohorts.tsv").write_text("\n".join([*lines, lines[1]]) + "\n")
    with pytest.raises(ConfigError, match=r"line 7: duplicate cohort id 'biobank_eur' \(first on line 2\)"):
        load_study(copy.deepcopy(CONFIG), workdir=workdir)


def test_sheet__wrong_value_names_line_and_column(tmp_path):
    lines = SHEET.splitlines()
    lines[2] = lines[2].replace("GRCh38", "hg19")
    (tmp_path / "s.tsv").write_text("\n".join(lines) + "\n")
    with pytest.raises(ConfigError, match=r"line 3, column 'build': 'hg19' is not one of"):
        read_cohort_sheet(tmp_path / "s.tsv")


def test_sheet__unknown_column_is_named(tmp_path):
    lines = SHEET.splitlines()
    lines[0] = lines[0].replace("covar", "covariates")
    (tmp_path / "s.tsv").write_text("\n".join(lines) + "\n")
    with pytest.raises(ConfigError, match=r"line 1: unknown column\(s\) \['covariates'\]"):
        read_cohort_sheet(tmp_path / "s.tsv")


def test_sheet__ragged_row_is_named(tmp_path):
    lines = SHEET.splitlines()
    lines[3] = lines[3].rsplit("\t", 1)[0]
    (tmp_path / "s.tsv").write_text("\n".join(lines) + "\n")
    n = len(lines[0].split("\t"))
    with pytest.raises(ConfigError, match=rf"line 4: {n - 1} fields, expected {n}"):
        read_cohort_sheet(tmp_path / "s.tsv")


def test_config__cohort_mode_missing_file_is_named(workdir):
    cfg = _cfg(mode="cohort", cohort="admixed_afr")
    with pytest.raises(ConfigError, match=r"cohort 'admixed_afr': file resources/demo/admixed_afr\.bed not found"):
        load_study(cfg, workdir=workdir)


def test_config__cohort_mode_unknown_cohort_is_named(workdir):
    cfg = _cfg(mode="cohort", cohort="ukb")
    with pytest.raises(ConfigError, match=r"key 'cohort': 'ukb' is not in the cohort sheet"):
        load_study(cfg, workdir=workdir)


def test_config__digest_changes_with_science_only_when_values_change():
    a, b = _cfg(), _cfg()
    assert config_digest(a) == config_digest(b)
    assert config_digest(a) != config_digest(_cfg(qc__mac=10))


def test_snakemake__bad_config_fails_before_any_job(workdir):
    """Through Snakemake itself: one message naming the key, and no job started."""
    cfg = _cfg(qc__geno=2)
    (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(cfg))
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--cores", "1", "-n"],
        cwd=workdir, capture_output=True, text=True, timeout=120,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "key 'qc.geno': 2 is greater than the maximum of 1" in out
    assert "Job stats" not in out and "rule simulate_demo" not in out


def test_snakemake__cohort_whose_consent_forbids_the_study_fails_before_any_job(workdir):
    """A disease-specific cohort used for another disease is refused at load (fail closed)."""
    lines = SHEET.splitlines()
    lines[2] = lines[2].rsplit("\t", 1)[0] + "\tDS:MONDO:0005148"  # type 2 diabetes only
    (workdir / "config" / "cohorts.tsv").write_text("\n".join(lines) + "\n")
    cfg = _cfg(study__disease="MONDO:0005010")  # coronary artery disease
    (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(cfg))
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--cores", "1", "-n"],
        cwd=workdir, capture_output=True, text=True, timeout=120,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "admixed_afr" in out and "DS:MONDO:0005148" in out, out[-2000:]
    assert "Job stats" not in out


def test_config__pooled_arm_is_refused_outside_demo_mode(workdir):
    for mode in ("central", "cohort"):
        cfg = _cfg(mode=mode, cohort="biobank_eur", pooled={"enabled": True})
        with pytest.raises(ConfigError, match=r"'pooled.enabled' is true in (central|cohort) mode.*only in demo mode"):
            load_study(cfg, workdir=workdir, check_files=False)
    assert not load_study(_cfg(mode="central"), workdir=workdir, check_files=False).run_pooled
    assert load_study(_cfg(), workdir=workdir).run_pooled
    assert not load_study(_cfg(pooled={"enabled": False}), workdir=workdir).run_pooled


def test_sheet__public_key_column_is_optional_and_read_as_text(tmp_path):
    with_keys = tmp_path / "with.tsv"
    with_keys.write_text(SHEET)
    assert read_cohort_sheet(with_keys)["public_key"][0] == "results/keys/biobank_eur.pub"
    lines = [ln.rsplit("\t", 1)[0] for ln in SHEET.splitlines()]  # a sheet from before the column
    without = tmp_path / "without.tsv"
    without.write_text("\n".join(lines) + "\n")
    assert read_cohort_sheet(without)["public_key"].to_list() == [""] * (len(lines) - 1)


def test_config__cohort_mode_missing_signing_key_is_named(workdir):
    demo = workdir / "resources" / "demo"
    demo.mkdir(parents=True)
    for suffix in (".bed", ".bim", ".fam"):
        (demo / f"biobank_eur{suffix}").write_text("")
    # Headers the load-time trait and covariate checks accept: the key is what is missing.
    (demo / "biobank_eur.pheno.tsv").write_text("#FID\tIID\tldl\tcad\n1\t1\t1.5\t1\n2\t2\t2.5\t2\n")
    (demo / "biobank_eur.covar.tsv").write_text("#FID\tIID\tage\tsex\n1\t1\t50\t1\n2\t2\t60\t2\n")
    cfg = _cfg(mode="cohort", cohort="biobank_eur", export_gate__signing_key="secrets/tre.key")
    with pytest.raises(ConfigError, match=r"key 'export_gate\.signing_key': secrets/tre\.key not found"):
        load_study(cfg, workdir=workdir)
    (workdir / "secrets").mkdir()
    (workdir / "secrets" / "tre.key").write_text("")
    assert load_study(cfg, workdir=workdir).config["export_gate"]["signing_key"] == "secrets/tre.key"


def test_config__per_variant_counts_without_coarsening_are_refused_at_load(workdir):
    cfg = _cfg(export_gate__release_n="per_variant", export_gate__round_n=10)
    with pytest.raises(ConfigError, match=r"key 'export_gate' \(cohort biobank_eur\).*round_n must exceed min_count"):
        load_study(cfg, workdir=workdir)
    study = load_study(_cfg(export_gate__release_n="per_variant", export_gate__round_n=25), workdir=workdir)
    assert study.gate_rules("biobank_eur")["release_n"] == "per_variant"


def test_config__mrmega_with_too_many_axes_for_the_cohorts_is_refused(workdir):
    n = len(read_cohort_sheet(workdir / "config" / "cohorts.tsv"))
    cfg = _cfg(meta__method="mrmega", meta__pcs=n - 2)
    with pytest.raises(ConfigError, match=rf"meta.pcs = {n - 2} .* pcs \+ 3 = {n + 1} cohorts"):
        load_study(cfg, workdir=workdir)


def test_config__mrmega_study_config_runs_in_a_tre_whose_sheet_lists_only_its_cohort(workdir):
    """Cohort mode runs no meta-analysis: the consortium's MR-MEGA config must not stop a TRE.

    Failed before the fix: a TRE using the study config (meta.method mrmega, 2 axes) with its
    own row only in the sheet was refused for having fewer than 5 cohorts.
    """
    sheet = workdir / "config" / "cohorts.tsv"
    lines = sheet.read_text().splitlines()
    sheet.write_text("\n".join(lines[:2]) + "\n")
    own = lines[1].split("\t")[0]
    cfg = _cfg(mode="cohort", cohort=own, meta__method="mrmega", meta__pcs=2)
    assert load_study(cfg, workdir=workdir, check_files=False).config["meta"]["method"] == "mrmega"
    with pytest.raises(ConfigError, match=r"pcs \+ 3 = 5 cohorts; the sheet has 1"):
        load_study(_cfg(mode="central", meta__method="mrmega", meta__pcs=2), workdir=workdir, check_files=False)


def test_sheet__sufficient_column_opts_in_and_defaults_to_no(tmp_path):
    lines = SHEET.splitlines()
    header = lines[0].split("\t")
    k = header.index("sufficient")
    rows = [line.split("\t") for line in lines[1:] if line.strip()]
    rows[1][k] = "no"
    (tmp_path / "s.tsv").write_text("\n".join(["\t".join(header)] + ["\t".join(r) for r in rows]) + "\n")
    sheet = read_cohort_sheet(tmp_path / "s.tsv")
    assert sheet.get_column("sufficient").to_list() == ["yes", "no"] + ["yes"] * (len(rows) - 2)
    without = [[v for j, v in enumerate(r) if j != k] for r in [header, *rows]]
    (tmp_path / "t.tsv").write_text("\n".join("\t".join(r) for r in without) + "\n")
    sheet = read_cohort_sheet(tmp_path / "t.tsv")
    assert sheet.get_column("sufficient").to_list() == ["no"] * len(rows)
    rows[0][k] = "maybe"
    (tmp_path / "u.tsv").write_text("\n".join(["\t".join(header)] + ["\t".join(r) for r in rows]) + "\n")
    with pytest.raises(ConfigError, match=r"line 2, column 'sufficient': 'maybe' is not one of"):
        read_cohort_sheet(tmp_path / "u.tsv")
