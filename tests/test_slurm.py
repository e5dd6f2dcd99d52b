"""The small demo through a real SLURM scheduler (issue 9).

`.ci/slurm/setup.sh` starts a one-node cluster with job accounting (slurmctld,
slurmd, slurmdbd on MariaDB, munge). The demo is run with the project's SLURM
profile (`workflow/profiles/slurm`) through snakemake-executor-plugin-slurm;
the profile used is that file with only the site values filled in from the
test cluster and CI's differences (no conda, short polling), so the profile
users copy is what is exercised. The test then asks the scheduler's own
accounting (`sacct`) which jobs ran, and compares the results byte for byte
with the local run of tests/test_workflow.py.

Without a cluster the test skips locally (with the command that starts one)
and fails under CI=true, as the oracle tools of tests/conftest.py do.
"""

from __future__ import annotations

import collections
import datetime
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml

from tests.test_workflow import (  # noqa: F401
    COHORTS,
    REPO,
    TRAITS,
    _config,
    _write_config,
    demo,
    job_stats,
)

pytestmark = pytest.mark.workflow

SLURM_PROFILE = REPO / "workflow" / "profiles" / "slurm" / "config.yaml"
SLURM_TOOLS = ("sbatch", "sinfo", "sacct", "sacctmgr", "scontrol")
# What CI changes in the SLURM profile, and why (every other entry is used as shipped).
CI_PROFILE_CHANGES = {
    # CI installs crosscohort with pip and has no conda: jobs run in the test's environment
    # (the executor submits with --export=ALL).
    "software-deployment-method": None,
    # A failure must show at once, not be retried twice: the run is the test.
    "retries": 0,
    "keep-going": False,
    # Local disk, not a network file system.
    "latency-wait": 5,
    # The plugin's first status check waits 40 s and backs off by 10 s while no job
    # finishes (sized for busy clusters); the demo's jobs take seconds.
    "slurm-init-seconds-before-status-checks": 2,
    # Keep each job's SLURM log: the test reads in it that the rule ran inside the job.
    "slurm-keep-successful-logs": True,
}
RULE_COMMENT = re.compile(r"^rule_(?P<rule>.+?)(?:_wildcards_(?P<wildcards>.*))?$")


def _fail_or_skip(msg: str) -> None:
    """Skip locally, fail under CI=true (the rule of tests/conftest.py's require_tool)."""
    msg += "; start a one-node cluster with `sudo .ci/slurm/setup.sh` (.ci/run does)"
    if os.environ.get("CI") == "true":
        pytest.fail(msg)
    pytest.skip(msg)


def _run(*cmd: str) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise RuntimeError(f"`{' '.join(cmd)}` exited {proc.returncode}: {proc.stderr.strip()}")
    return proc.stdout


# session scope: requested before the session-wide local demo, it skips before that runs
@pytest.fixture(scope="session")
def slurm() -> dict[str, str]:
    """The test cluster's default partition, its nodes and the user's default account.

    Skips locally (fails under CI=true) when no cluster with accounting answers.
    """
    missing = [t for t in SLURM_TOOLS if shutil.which(t) is None]
    if missing:
        _fail_or_skip(f"no SLURM client tools on PATH ({', '.join(missing)})")
    try:
        import snakemake_executor_plugin_slurm  # noqa: F401
    except ImportError:
        _fail_or_skip("snakemake-executor-plugin-slurm is not installed (pip install -e '.[test]')")
    try:
        # the default partition is starred in sinfo's %P
        partitions = _run("sinfo", "-h", "-o", "%P %T %N").split("\n")
        user = _run("id", "-un").strip()
        account = _run(
            "sacctmgr", "-n", "-P", "show", "user", user, "format=defaultaccount"
        ).strip()
        # accounting reachable: the executor polls job states with sacct
        _run("sacct", "-n", "-X", "--starttime", "now-1minutes")
    except (RuntimeError, subprocess.TimeoutExpired) as e:
        _fail_or_skip(f"no SLURM cluster answering: {e}")
    default = [p.split() for p in partitions if p.split() and p.split()[0].endswith("*")]
    ready = [p for p in default if p[1] in ("idle", "mixed", "allocated")]
    if not ready:
        _fail_or_skip(f"no default SLURM partition with a node up (sinfo: {partitions})")
    if not account:
        _fail_or_skip(f"SLURM user {user} has no default account (sacctmgr show user {user})")
    nodes = _run("scontrol", "show", "hostnames", ready[0][2]).split()
    return {"partition": ready[0][0].rstrip("*"), "account": account, "nodes": nodes}


def _ci_profile(dest: Path, *, account: str, partition: str) -> Path:
    """The SLURM profile with the test cluster's account/partition and CI_PROFILE_CHANGES."""
    cfg = yaml.safe_load(SLURM_PROFILE.read_text())
    for key, value in CI_PROFILE_CHANGES.items():
        if value is None:
            cfg.pop(key, None)
        else:
            cfg[key] = value
    # the profile's FILL_IN placeholders, as a user fills them in
    cfg["default-resources"].update(slurm_account=account, slurm_partition=partition)
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    return dest


def test_slurm__demo_jobs_run_through_the_scheduler_and_match_the_local_run(
    slurm,
    demo,  # noqa: F811 (the fixture imported above)
    tmp_path,
):
    wd = tmp_path / "run"
    cfgfile = _write_config(wd, _config())
    profile = _ci_profile(
        tmp_path / "profile", account=slurm["account"], partition=slurm["partition"]
    )
    # sacct's window starts a minute early: its clock resolution is one second
    since = (datetime.datetime.now() - datetime.timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S")
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(REPO / "Snakefile"),
        "--workflow-profile",
        str(profile),
        "--configfile",
        str(cfgfile),
    ]
    proc = _run_killing_group(cmd, cwd=wd, timeout=1200)
    log = proc.stdout + proc.stderr
    if proc.returncode != 0:
        slurm_logs = "\n".join(
            f"== {p}\n{p.read_text()[-2000:]}"
            for p in sorted((wd / ".snakemake" / "slurm_logs").rglob("*.log"))
        )
        raise AssertionError(
            f"snakemake --executor slurm failed ({proc.returncode}):\n{log[-8000:]}\n{slurm_logs}"
        )
    assert "crosscohort: done" in log

    # The executor names every job of one run by its run id and comments it with the rule
    # and wildcards; a run that did not go through SLURM has neither.
    run_id = re.search(r"SLURM run ID: (\S+)", log)
    assert run_id, (
        f"no 'SLURM run ID' in Snakemake's log: the jobs did not go through SLURM\n{log[-3000:]}"
    )
    planned = job_stats(log)
    # `all` has no action: Snakemake completes it itself
    del planned["all"]
    acct = _run(
        "sacct",
        "-X",
        "-P",
        "-n",
        "--starttime",
        since,
        "--name",
        run_id.group(1),
        "--format",
        "JobIDRaw,JobName,Comment%200,State,ExitCode,Account,Partition,NodeList",
    )
    rows = [
        dict(
            zip(
                ("id", "name", "comment", "state", "exit", "account", "partition", "node"),
                line.split("|"),
                strict=True,
            )
        )
        for line in acct.splitlines()
    ]
    print(f"sacct for run {run_id.group(1)}:\n{acct}")
    ran = collections.Counter(RULE_COMMENT.match(r["comment"])["rule"] for r in rows)
    # every job Snakemake planned is one SLURM job, none ran beside the scheduler
    assert ran == planned, f"sacct lists {dict(ran)}, Snakemake planned {dict(planned)}\n{acct}"
    assert len({r["comment"] for r in rows}) == len(rows), "one SLURM job per rule and wildcards"
    for r in rows:
        assert (r["state"], r["exit"]) == ("COMPLETED", "0:0"), r
        assert (r["account"], r["partition"]) == (slurm["account"], slurm["partition"]), r
        assert r["node"] in slurm["nodes"], r
        # the rule's own work ran inside that job: SLURM's --output of the job holds the
        # job-side Snakemake's record of the rule
        (slurm_log,) = (wd / ".snakemake" / "slurm_logs").rglob(f"{r['id']}.log")
        text = slurm_log.read_text()
        rule = RULE_COMMENT.match(r["comment"])["rule"]
        assert re.search(rf"^(local)?rule {rule}:$", text, re.M), (r, text[-2000:])
        assert re.search(rf"^Finished jobid: \d+ \(Rule: {rule}\)$", text, re.M), (r, text[-2000:])

    # The same results as the local run: scheduling changes nothing but the threads each
    # job gets (the local profile gives association_part one thread, the scheduler the two
    # the rule declares), and BLAS sums over people in another order with another thread
    # count, which moves the last bits of some estimates.
    for trait in TRAITS:
        for rel in [
            f"results/meta/{trait}.tsv.gz",
            *(f"exports/{c}/{trait}.tsv.gz" for c in COHORTS),
        ]:
            problem = _same_table(wd / rel, demo / rel)
            assert problem is None, f"{rel}: {problem}"


def _run_killing_group(cmd: list[str], *, cwd: Path, timeout: float) -> subprocess.CompletedProcess:
    """subprocess.run, but a timeout ends Snakemake's whole process group and its SLURM jobs.

    (subprocess.run kills only the child and then waits for pipes its children still hold.)
    """
    proc = subprocess.Popen(
        cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        if m := re.search(r"SLURM run ID: (\S+)", err):
            subprocess.run(["scancel", "--name", m.group(1)], check=False)
        raise AssertionError(
            f"snakemake --executor slurm did not finish in {timeout:.0f} s:\n{err[-4000:]}\n"
            f"squeue:\n{subprocess.run(['squeue'], capture_output=True, text=True).stdout}"
        ) from None
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def _same_table(got: Path, want: Path, rtol: float = 1e-10) -> str | None:
    """None when the two gzipped TSVs hold the same rows and columns, text equal and
    numbers equal to rtol; otherwise a one-line account of the first difference."""
    if got.read_bytes() == want.read_bytes():
        return None
    a = pl.read_csv(got, separator="\t", infer_schema_length=0, null_values=["NA"])
    b = pl.read_csv(want, separator="\t", infer_schema_length=0, null_values=["NA"])
    if a.columns != b.columns or a.height != b.height:
        return f"shape {a.shape} {a.columns} != local {b.shape} {b.columns}"
    for col in a.columns:
        x, y = a[col], b[col]
        if x.equals(y):
            continue
        xf, yf = x.cast(pl.Float64, strict=False), y.cast(pl.Float64, strict=False)
        # a text column, or a value present in one run and NA in the other
        text = (xf.is_null() & x.is_not_null()).any() or (yf.is_null() & y.is_not_null()).any()
        if text or (x.is_null() != y.is_null()).any():
            i = (x != y).arg_true()[0]
            return f"column {col} row {i + 2}: {x[i]!r} != local {y[i]!r}"
        xa, ya = xf.fill_null(0).to_numpy(), yf.fill_null(0).to_numpy()
        rel = np.abs(xa - ya) / np.maximum(np.abs(ya), np.finfo(float).tiny)
        if (bad := rel > rtol).any():
            i = int(np.argmax(rel))
            return (
                f"column {col}: {int(bad.sum())} values differ by more than {rtol:g} relative, "
                f"worst row {i + 2}: {x[i]} != local {y[i]}"
            )
    return None
