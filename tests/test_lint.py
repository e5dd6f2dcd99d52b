"""The code base is lint-clean: ruff, snakefmt and `snakemake --lint` report nothing."""

from __future__ import annotations

import json
import re
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


_RULE = re.compile(r"^( *)rule (\w+):\n((?:\1    .*\n|\n)+)", re.M)


def rules_missing_directives(text: str) -> list[str]:
    """``rule: directive`` for each rule of a Snakefile text lacking one the house style requires."""
    missing = []
    for m in _RULE.finditer(text):
        indent, name, body = m.groups()
        for directive in ("log", "benchmark", "resources", "conda", "threads"):
            if not re.search(rf"^{indent}    {directive}:", body, re.M):
                missing.append(f"{name}: {directive}")
    return missing


def test_workflow_rules__every_rule_has_log_benchmark_resources_conda():
    files = sorted((REPO / "workflow" / "rules").glob("*.smk"))
    names = [m.group(2) for f in files for m in _RULE.finditer(f.read_text())]
    assert len(names) >= 15, names  # the checker sees the rules, nested ones included
    assert [f"{f.name} {x}" for f in files for x in rules_missing_directives(f.read_text())] == []
    planted = "rule a:\n    input:\n        'x',\n    log:\n        'l',\n    conda:\n        'c'\n"
    assert rules_missing_directives(planted) == ["a: benchmark", "a: resources", "a: threads"]


def test_workflow__resource_models_apart_and_no_sys_path_edit():
    common = (REPO / "workflow" / "rules" / "common.smk").read_text()
    resources = (REPO / "workflow" / "rules" / "resources.smk").read_text()
    assert "sys.path" not in common
    defined = set(re.findall(r"^def (\w+)\(", resources, re.M))
    assert {"association_mem_mb", "wgr_runtime", "central_mem_mb", "table_runtime"} <= defined
    assert not [d for d in re.findall(r"^def (\w+)\(", common, re.M) if d.endswith(("_mem_mb", "_runtime"))]
