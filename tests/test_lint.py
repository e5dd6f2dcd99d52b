"""The code base is lint-clean: ruff, snakefmt and `snakemake --lint` report nothing."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def test_ruff__clean():
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", "."], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_snakefmt__clean():
    proc = subprocess.run([sys.executable, "-m", "snakefmt", "--check", "."], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("mode", ["demo", "cohort", "central"])
def test_snakemake_lint__reports_nothing(mode, tmp_path):
    shutil.copytree(REPO / "config", tmp_path / "config")
    args = ["--config", f"mode={mode}"]
    if mode == "cohort":
        # cohort mode checks its inputs exist and its tables' columns: give it stand-ins
        demo = tmp_path / "resources" / "demo"
        demo.mkdir(parents=True)
        for suffix in (".bed", ".bim", ".fam"):
            (demo / f"biobank_eur{suffix}").write_text("")
        (demo / "biobank_eur.pheno.tsv").write_text("#FID\tIID\tldl\tcad\nF\tA\t1.5\t1\nF\tB\t2.5\t2\n")
        (demo / "biobank_eur.covar.tsv").write_text("#FID\tIID\tage\tsex\nF\tA\t50\t1\nF\tB\t60\t2\n")
        args.append("cohort=biobank_eur")
    if mode == "central":
        # central mode checks every bundle holds every trait: give it stand-in manifests
        sheet = (REPO / "config" / "cohorts.tsv").read_text().splitlines()[1:]
        for c in (line.split("\t")[0] for line in sheet if line.strip()):
            (tmp_path / "exports" / c).mkdir(parents=True)
            files = [{"path": f"{t}.tsv.gz"} for t in ("ldl", "cad")]
            (tmp_path / "exports" / c / "manifest.json").write_text(json.dumps({"files": files}))
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--lint", *args],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "Congratulations, your workflow is in a good condition!" in out, out
