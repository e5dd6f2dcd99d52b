"""Timing of one child command for the benchmark scripts: wall time and peak RSS (GNU time or os.wait4)."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path


def timed(cmd: list[str], cwd: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (GB) of ``cmd`` from GNU time -v (Debian package ``time``)."""
    proc = subprocess.run(["/usr/bin/time", "-v", *cmd], cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", proc.stderr).group(1)
    secs = sum(float(x) * 60**i for i, x in enumerate(reversed(wall.split(":"))))
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr).group(1))
    return secs, rss / 1024**2


@dataclass(frozen=True)
class Measured:
    """One child command's cost: wall and CPU seconds, peak RSS (GB), and whether a cap stopped it."""

    wall: float
    cpu_user: float
    cpu_sys: float
    rss_gb: float
    returncode: int
    stopped_at_cap: bool

    @property
    def cpu(self) -> float:
        """User + system CPU seconds of the child and the descendants it waited for."""
        return self.cpu_user + self.cpu_sys


def measured(cmd: list[str], cwd: Path, *, log: Path, rss_cap_gb: float | None = None,
             poll: float = 0.5) -> Measured:
    """Run ``cmd`` (stderr and stdout to ``log``) and measure it with ``os.wait4``.

    Peak RSS is the kernel's ``ru_maxrss`` of the child (the largest of it and
    the descendants it waited for); CPU time is its ``ru_utime + ru_stime``,
    the fairer figure on a shared machine. With ``rss_cap_gb``, a watcher sums
    the RSS of the child's process tree every ``poll`` seconds and kills the
    tree once it passes the cap (so a benchmark cannot exhaust a shared
    machine); the result then says ``stopped_at_cap``.
    """
    import os
    import signal
    import threading
    import time

    import psutil

    with open(log, "wb") as fh:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
        capped = threading.Event()
        done = threading.Event()

        def watch() -> None:
            try:
                root = psutil.Process(proc.pid)
            except psutil.NoSuchProcess:
                return
            while not done.wait(poll):
                try:
                    rss = sum(p.memory_info().rss for p in [root, *root.children(recursive=True)])
                except psutil.NoSuchProcess:
                    continue
                if rss > rss_cap_gb * 1024**3:
                    capped.set()
                    os.killpg(proc.pid, signal.SIGKILL)
                    return

        watcher = threading.Thread(target=watch, daemon=True) if rss_cap_gb else None
        if watcher:
            watcher.start()
        _, status, ru = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        done.set()
        proc.returncode = os.waitstatus_to_exitcode(status)
    return Measured(wall=wall, cpu_user=ru.ru_utime, cpu_sys=ru.ru_stime, rss_gb=ru.ru_maxrss / 1024**2,
                    returncode=proc.returncode, stopped_at_cap=capped.is_set())
