"""Runs that survive being killed, and a late cohort bundle (issue 9, faults).

The small demo is killed in the middle of association, once with SIGTERM
(Snakemake cleans up) and once with SIGKILL (nothing cleans up: the next run
must find the half-done jobs itself through ``rerun-incomplete`` in the
profile). A last run completes it; the results must equal an uninterrupted
run's byte for byte, with no half-written file anywhere. Then, in central
mode, one cohort's bundle arriving again (newer files) must rerun only what
depends on it.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from crosscohort.contract.signature import load_private_key, sign_manifest
from tests.test_workflow import COHORTS, TRAITS, _config, _write_config, planned_jobs, snakemake

pytestmark = pytest.mark.workflow

REPO = Path(__file__).resolve().parent.parent
PROFILE = REPO / "workflow" / "profiles" / "default"


def _start(workdir: Path, configfile: Path) -> subprocess.Popen:
    """Snakemake in its own process group, so the test can signal it and every job it started."""
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--cores", "2",
           "--workflow-profile", str(PROFILE), "--configfile", str(configfile)]
    out = (workdir / "killed_runs.log").open("a")
    return subprocess.Popen(cmd, cwd=workdir, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def _association_started(workdir: Path, since: float) -> bool:
    """A part job of association has written its log or an output since ``since``."""
    paths = [*workdir.glob("logs/association/*/*of*.log"), *workdir.glob("results/association/*/parts/**/*")]
    return any(p.stat().st_mtime >= since for p in paths if p.exists())


def _kill_in_association(workdir: Path, configfile: Path, sig: signal.Signals) -> None:
    since = time.time() - 1.0
    proc = _start(workdir, configfile)
    deadline = time.monotonic() + 600
    while not _association_started(workdir, since):
        assert proc.poll() is None, f"the run ended (rc {proc.returncode}) before association started"
        assert time.monotonic() < deadline, "association never started"
        time.sleep(0.1)
    time.sleep(0.5)  # inside the job, not at its first byte
    os.killpg(proc.pid, sig)
    proc.wait(timeout=120)
    assert proc.returncode != 0  # it was stopped, not finished


def _unfinished(workdir: Path) -> list[str]:
    """Half-written files: temporary names left behind, gzip streams that end early."""
    bad = [str(p.relative_to(workdir)) for p in workdir.rglob("*")
           if ".snakemake" not in p.parts and (p.name.endswith(".tmp") or ".tmp." in p.name)]
    for p in [*workdir.glob("results/**/*.gz"), *workdir.glob("exports/**/*.gz")]:
        try:
            with gzip.open(p, "rb") as fh:
                while fh.read(1 << 20):
                    pass
        except (EOFError, OSError) as err:
            bad.append(f"{p.relative_to(workdir)}: {err}")
    return bad


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """The small demo run once, uninterrupted."""
    wd = tmp_path_factory.mktemp("uninterrupted")
    snakemake(wd, configfile=_write_config(wd, _config()))
    return wd


@pytest.fixture(scope="module")
def killed_twice(tmp_path_factory) -> Path:
    """The small demo killed in association by SIGTERM, then by SIGKILL, then run to the end."""
    wd = tmp_path_factory.mktemp("killed")
    cfg = _write_config(wd, _config())
    _kill_in_association(wd, cfg, signal.SIGTERM)
    _kill_in_association(wd, cfg, signal.SIGKILL)
    # SIGKILL leaves Snakemake's lock behind, as a power cut would: the documented remedy.
    snakemake(wd, "--unlock", configfile=cfg)
    snakemake(wd, configfile=cfg)
    return wd


def test_kill_and_rerun__no_half_written_output_is_left(killed_twice):
    assert _unfinished(killed_twice) == []


def test_kill_and_rerun__results_equal_an_uninterrupted_run(killed_twice, reference):
    # Byte-identical: the tables carry no timestamp and gzip is written without one (-n / mtime=0).
    compared = []
    for rel in [*(f"results/meta/{t}.tsv.gz" for t in TRAITS),
                *(f"results/meta/{t}.tsv.gz.loo.tsv" for t in TRAITS),
                *(f"results/association/{c}/{t}.tsv.gz" for c in COHORTS for t in TRAITS),
                *(f"exports/{c}/{t}.tsv.gz" for c in COHORTS for t in TRAITS)]:
        a, b = (killed_twice / rel).read_bytes(), (reference / rel).read_bytes()
        assert a == b, rel
        compared.append(rel)
    assert len(compared) == 2 * len(TRAITS) + 2 * len(COHORTS) * len(TRAITS)
    assert (killed_twice / "results" / "report" / "ldl.html").exists()


def _planned_verify(workdir: Path, configfile: Path) -> list[str]:
    out = snakemake(workdir, "-n", configfile=configfile).stdout
    return sorted(line.split(":", 1)[1].strip() for line in out.splitlines()
                  if line.strip().startswith("output: results/verify/"))


def test_late_bundle__reruns_only_what_depends_on_that_cohort(killed_twice, tmp_path):
    shutil.copytree(killed_twice / "exports", tmp_path / "exports")
    (tmp_path / "results" / "keys").mkdir(parents=True)
    for c in COHORTS:  # the centre holds the cohorts' public keys (cohort sheet column public_key)
        shutil.copy(killed_twice / "results" / "keys" / f"{c}.pub", tmp_path / "results" / "keys")
    ref = Path("resources/demo/reference/variants.tsv.gz")
    (tmp_path / ref.parent).mkdir(parents=True)
    shutil.copy(killed_twice / ref, tmp_path / ref)
    cfg = _write_config(tmp_path, _config(mode="central"))
    snakemake(tmp_path, configfile=cfg)
    assert planned_jobs(tmp_path, cfg) == {}  # complete: nothing to do
    late, others = COHORTS[1], [c for c in COHORTS if c != COHORTS[1]]
    bundle = tmp_path / "exports" / late
    time.sleep(1.1)  # past the file system's mtime resolution

    # 1. The same bundle sent again: newer files, same bytes. Snakemake's
    # checksums of small files see nothing new; never another cohort's verify.
    for f in (killed_twice / "exports" / late).iterdir():
        shutil.copy(f, bundle / f.name)  # content as before, mtime of arrival
    assert set(_planned_verify(tmp_path, cfg)) <= {f"results/verify/{late}.json"}

    # 2. The cohort re-exports (same results, a new manifest: its `created` time).
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["created"] = "2099-01-01T00:00:00Z"
    (bundle / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    sign_manifest(bundle, load_private_key(killed_twice / "results" / "keys" / f"{late}.key"))  # as its TRE
    plan = planned_jobs(tmp_path, cfg)
    # The demo's cohorts opt in to the federated pooled fit (sheet column `sufficient`), which
    # reads the bundles too: it and its comparison rerun for every trait as well.
    assert plan == {"verify": 1, "harmonise": len(TRAITS), "meta": len(TRAITS),
                    "pool_fit": len(TRAITS), "compare_federated": len(TRAITS),
                    "report": len(TRAITS), "all": 1}, plan
    assert _planned_verify(tmp_path, cfg) == [f"results/verify/{late}.json"]

    before = {c: (tmp_path / "results" / "verify" / f"{c}.json").stat().st_mtime_ns for c in others}
    meta_before = {t: (tmp_path / "results" / "meta" / f"{t}.tsv.gz").read_bytes() for t in TRAITS}
    snakemake(tmp_path, configfile=cfg)
    after = {c: (tmp_path / "results" / "verify" / f"{c}.json").stat().st_mtime_ns for c in others}
    assert after == before  # the other cohorts' bundles were not verified again
    for t in TRAITS:  # same numbers in, same bytes out
        assert (tmp_path / "results" / "meta" / f"{t}.tsv.gz").read_bytes() == meta_before[t]
