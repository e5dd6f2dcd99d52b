"""The code base is lint-clean: ruff, snakefmt and `snakemake --lint` report nothing."""

from __future__ import annotations

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
        # cohort mode checks its inputs exist: give it empty stand-ins
        demo = tmp_path / "resources" / "demo"
        demo.mkdir(parents=True)
        for suffix in (".bed", ".bim", ".fam", ".pheno.tsv", ".covar.tsv"):
            (demo / f"biobank_eur{suffix}").write_text("")
        args.append("cohort=biobank_eur")
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--lint", *args],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "Congratulations, your workflow is in a good condition!" in out, out
