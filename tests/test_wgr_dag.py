"""association.model: wgr in the workflow: step 1 one job per analysis unit, every part reads its LOCO list."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _dry_run(tmp_path: Path, model: str, king: str = "null", relatives: str | None = None) -> str:
    shutil.copytree(REPO / "config", tmp_path / "config")
    cfg = tmp_path / "config" / "config.yaml"
    text = cfg.read_text()
    text = re.sub(r"\n  model: \w+", f"\n  model: {model}", text)
    text = re.sub(r"\n  king_cutoff: \S+", f"\n  king_cutoff: {king}", text)
    if relatives is not None:
        text, n = re.subn(r"\n    relatives: \w+", f"\n    relatives: {relatives}", text)
        assert n == 1, "config/config.yaml: association.wgr.relatives not found"
    cfg.write_text(text)
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-n", "-p"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout + proc.stderr


def _demo_cohorts() -> list[str]:
    """The demo's cohorts, from its sheet (config/cohorts.tsv)."""
    rows = (REPO / "config" / "cohorts.tsv").read_text().splitlines()
    return [r.split("\t")[0] for r in rows[1:] if r.strip()]


def _count(out: str, rule: str) -> int:
    m = re.search(rf"^{rule}\s+(\d+)$", out, flags=re.M)
    return int(m.group(1)) if m else 0


def test_workflow_wgr__step1_per_unit_and_parts_with_pred(tmp_path):
    out = _dry_run(tmp_path, "wgr")
    k = len(_demo_cohorts())
    # The demo's cohorts + the pooled arm; 2 parts each.
    assert _count(out, "association_wgr_step1") == k + 1
    assert _count(out, "association_part") == 2 * (k + 1)
    assert out.count("--pred results/association/") == 2 * (k + 1)
    assert "--firth --approx --pThresh 0.05" in out
    # Every cohort's export releases its step-1 summary (the pooled arm is not exported).
    assert len(re.findall(r"--wgr-summary results/association/\w+/wgr/step1\.wgr\.json", out)) == k


@pytest.mark.parametrize(("king", "wgr"), [("null", True), ("0.0884", False)])
def test_workflow_auto__wgr_exactly_when_relatives_are_kept(tmp_path, king, wgr):
    out = _dry_run(tmp_path, "auto", king)
    steps = len(_demo_cohorts()) + 1 if wgr else 0  # every cohort and the pooled arm, or none
    assert _count(out, "association_wgr_step1") == steps
    assert ("--wgr-summary" in out) == (steps > 0)
    # No pair table where nothing reads it: glm, or wgr with the demo's association.wgr.relatives false.
    for j in (j for j in _jobs(out) if j["rule"] == "qc"):
        assert "--relatives-min-kinship none" in j["shell"], j["shell"]
        assert "king.tsv" not in j["output"]
    assert "--relatives " not in out
    assert _count(out, "pool_relatives") == 0


def _jobs(out: str) -> list[dict[str, str]]:
    """The dry run's jobs: rule name, and its input, output and shell command lines."""
    jobs = []
    for block in re.split(r"\n(?=(?:local)?rule \w+:\n)", out):
        m = re.match(r"(?:local)?rule (\w+):\n", block)
        if not m:
            continue
        job = {"rule": m.group(1)}
        for key, pattern in (("input", r"^    input: (.*)$"), ("output", r"^    output: (.*)$"),
                             ("shell", r"^Shell command: (.*)$")):
            hit = re.search(pattern, block, flags=re.M)
            job[key] = hit.group(1) if hit else ""
        jobs.append(job)
    return jobs


def test_workflow_wgr_relatives__parts_calibrate_with_qc_king_pairs_that_never_reach_the_export(tmp_path):
    jobs = _jobs(_dry_run(tmp_path, "wgr", relatives="true"))
    units = _demo_cohorts()
    # qc writes the pairs above the floor whatever the KING filter does (here: none removed).
    qc = {j["shell"].split("--cohort ")[1].split()[0]: j for j in jobs if j["rule"] == "qc"}
    assert sorted(qc) == sorted(units)
    for c, j in qc.items():
        assert "--king-cutoff none --relatives-min-kinship 0.0442" in j["shell"], j["shell"]
        assert f"results/qc/{c}/qc.king.tsv" in j["output"].split(", ")
    # Every step-2 part of every unit reads its unit's pairs, passed to --relatives.
    parts = [j for j in jobs if j["rule"] == "association_part"]
    assert len(parts) == 2 * (len(units) + 1)
    for j in parts:
        unit = re.search(r"--pred results/association/(\w+)/wgr/step1_pred\.list", j["shell"]).group(1)
        pairs = f"results/qc/{unit}/qc.king.tsv"
        assert f"--relatives {pairs} " in j["shell"], j["shell"]
        assert pairs in j["input"].split(", ")
    # The pooled arm: the cohorts' tables, one after the other.
    (pool,) = [j for j in jobs if j["rule"] == "pool_relatives"]
    assert sorted(pool["input"].split(", ")) == sorted(f"results/qc/{c}/qc.king.tsv" for c in units)
    # Step 1 with the defaults that met the BOLT-LMM bar (pooled level 1, leave-one-out).
    for j in (j for j in jobs if j["rule"] == "association_wgr_step1"):
        assert "--loocv --level1 pooled" in j["shell"], j["shell"]
    # The pairs name individuals: no export job reads them, no bundle holds them.
    exports = [j for j in jobs if j["rule"] == "export"]
    assert len(exports) == len(units)
    for j in exports:
        assert "king" not in j["input"] + j["output"] + j["shell"], j
        assert "qc.king.tsv" not in " ".join(j.values())
