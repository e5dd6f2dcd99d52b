"""association.model: wgr in the workflow: step 1 one job per analysis unit, every part reads its LOCO list."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _dry_run(tmp_path: Path, model: str, king: str = "null") -> str:
    shutil.copytree(REPO / "config", tmp_path / "config")
    cfg = tmp_path / "config" / "config.yaml"
    text = cfg.read_text()
    text = re.sub(r"\n  model: \w+", f"\n  model: {model}", text)
    text = re.sub(r"\n  king_cutoff: \S+", f"\n  king_cutoff: {king}", text)
    cfg.write_text(text)
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-n", "-p"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout + proc.stderr


def _count(out: str, rule: str) -> int:
    m = re.search(rf"^{rule}\s+(\d+)$", out, flags=re.M)
    return int(m.group(1)) if m else 0


def test_workflow_wgr__step1_per_unit_and_parts_with_pred(tmp_path):
    out = _dry_run(tmp_path, "wgr")
    # 3 demo cohorts + the pooled arm; 2 parts each.
    assert _count(out, "association_wgr_step1") == 4
    assert _count(out, "association_part") == 8
    assert out.count("--pred results/association/") == 8
    assert "--firth --approx --pThresh 0.05" in out
    # Every cohort's export releases its step-1 summary (the pooled arm is not exported).
    assert len(re.findall(r"--wgr-summary results/association/\w+/wgr/step1\.wgr\.json", out)) == 3


@pytest.mark.parametrize(("king", "steps"), [("null", 4), ("0.0884", 0)])
def test_workflow_auto__wgr_exactly_when_relatives_are_kept(tmp_path, king, steps):
    out = _dry_run(tmp_path, "auto", king)
    assert _count(out, "association_wgr_step1") == steps
    assert ("--wgr-summary" in out) == (steps > 0)
