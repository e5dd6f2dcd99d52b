"""The workflow honours the cohort sheet's genotype_format: a .pgen cohort runs QC -> PCA -> association.

A cohort of the small simulated demo is converted by plink2 to ``.pgen``
(command in ``pgen_cohort``) and declared ``pfile`` in the sheet. In cohort
mode the DAG reads the ``.pgen/.pvar/.psam`` and no ``.bed``; run to the
association results, it writes exactly what the same cohort declared as
``bfile`` gives.
"""

from __future__ import annotations

import gzip
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.test_workflow import _config, dag_inputs, planned_jobs, snakemake

pytestmark = pytest.mark.workflow

COHORT = "admixed_afr"
SHEET_HEADER = "cohort\tgenotypes\tgenotype_format\tpheno\tcovar\tbuild\tancestry\tduo_codes\n"


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory) -> Path:
    from crosscohort.demo.simulate import simulate_demo
    from tests.conftest import require_tool

    plink2 = require_tool("plink2")
    root = tmp_path_factory.mktemp("wf_containers")
    demo = root / "demo"
    simulate_demo(demo, scale="small")  # seed 42: the workflow demo's cohorts
    # Oracle command (plink2 v2.00a3.5): the same genotypes as a PLINK 2 fileset
    subprocess.run(
        [plink2, "--bfile", str(demo / COHORT), "--make-pgen", "--out", str(demo / f"{COHORT}_pg")],
        check=True,
        capture_output=True,
    )
    return demo


def _workdir(demo: Path, wd: Path, fmt: str) -> Path:
    """A cohort-mode directory holding only this cohort's files, its sheet row in format ``fmt``."""
    data = wd / "data"
    data.mkdir(parents=True)
    stem = COHORT if fmt == "bfile" else f"{COHORT}_pg"
    exts = (".bed", ".bim", ".fam") if fmt == "bfile" else (".pgen", ".pvar", ".psam")
    for ext in (*exts,):
        shutil.copy(demo / f"{stem}{ext}", data / f"{stem}{ext}")
    for ext in (".pheno.tsv", ".covar.tsv"):
        shutil.copy(demo / f"{COHORT}{ext}", data / f"{COHORT}{ext}")
    (wd / "config").mkdir()
    (wd / "config" / "cohorts.tsv").write_text(
        SHEET_HEADER
        + f"{COHORT}\tdata/{stem}\t{fmt}\tdata/{COHORT}.pheno.tsv\tdata/{COHORT}.covar.tsv"
        "\tGRCh38\tAFR/EUR admixed\tGRU\n"
    )
    import yaml

    cfg = _config(mode="cohort", cohort=COHORT)
    (wd / "config" / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    return wd / "config" / "config.yaml"


def test_workflow__pgen_cohort_dag_reads_the_pgen_in_qc_pca_and_association(demo_dir, tmp_path):
    cfg = _workdir(demo_dir, tmp_path, "pfile")
    jobs = planned_jobs(tmp_path, cfg)
    assert jobs.get("qc") == 1 and jobs.get("pca") == 1 and jobs.get("association_part", 0) >= 1, (
        jobs
    )
    inputs = dag_inputs(tmp_path, cfg)
    assert f"data/{COHORT}_pg.pgen" in inputs and f"data/{COHORT}_pg.psam" in inputs
    assert not [f for f in inputs if f.endswith((".bed", ".bim", ".fam"))], inputs


def test_workflow__sheet_format_not_matching_files_fails_at_load_naming_them(demo_dir, tmp_path):
    cfg = _workdir(demo_dir, tmp_path, "pfile")
    sheet = tmp_path / "config" / "cohorts.tsv"
    sheet.write_text(sheet.read_text().replace("\tpfile\t", "\tbfile\t"))
    proc = snakemake(tmp_path, "-n", configfile=cfg, check=False)
    assert proc.returncode != 0
    assert f"file data/{COHORT}_pg.bed not found" in proc.stdout + proc.stderr


def test_workflow__pgen_cohort_runs_qc_pca_association_like_the_bed(demo_dir, tmp_path):
    targets = [f"results/association/{COHORT}/{t}.tsv.gz" for t in ("ldl", "cad")]
    out = {}
    for fmt in ("bfile", "pfile"):
        wd = tmp_path / fmt
        cfg = _workdir(demo_dir, wd, fmt)
        # "--cores 2" again ends --configfile's list of files, so the targets stay targets
        snakemake(wd, "--cores", "2", *targets, configfile=cfg)
        out[fmt] = wd
    for rel in (
        f"results/qc/{COHORT}/qc.samples.keep",
        f"results/qc/{COHORT}/qc.variants.keep",
        f"results/qc/{COHORT}/qc.ledger.json",
        f"results/pca/{COHORT}/pcs.eigenvec",
    ):
        assert (out["pfile"] / rel).read_bytes() == (out["bfile"] / rel).read_bytes(), rel
    for rel in targets:
        got = gzip.decompress((out["pfile"] / rel).read_bytes())
        assert got == gzip.decompress((out["bfile"] / rel).read_bytes()), rel
        assert got.count(b"\n") > 1000
