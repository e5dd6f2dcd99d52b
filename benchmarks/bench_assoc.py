"""Time ``crosscohort assoc`` against ``plink2 --glm`` on the same input, linear and logistic.

Both tools get 2 threads, the same fileset (by default 20,000 samples x
100,000 variants from ``make_assoc_input.py``), the same phenotype and the
same 5 covariates. For each model the script prints wall time, peak RSS
(the child's own ``ru_maxrss`` from ``os.wait4``, as ``/usr/bin/time -v``
reports it) and our/plink2 ratio; then it runs ours again on twice the
variants to show whether memory stays flat. The load average before and
after each run is printed too: timings on a shared machine are noisy.

plink2 runs as the conformance tests run it (``hide-covar omit-ref
no-firth``); ours with its defaults (Firth fallback on, which on this input
refits nothing when no ordinary fit fails).

Usage::

    python benchmarks/make_assoc_input.py
    python benchmarks/bench_assoc.py [--samples 20000] [--variants 100000] [--threads 2]
        [--chunk-size M] [--models linear,logistic] [--skip-2x] [--repeat R]

``--repeat R`` runs the plink2 / crosscohort pair R times, alternating, so
that on a shared machine both tools see the same spells of load.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
TRAIT = {"linear": "qt", "logistic": "bt"}


@dataclass(frozen=True)
class Run:
    """One timed child process."""

    tool: str
    model: str
    variants: int
    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    load_before: float
    load_after: float


def timed(cmd: list[str], *, log: Path) -> tuple[float, float, float]:
    """Run ``cmd``; return (wall s, user + system CPU s, peak RSS in MB) of that child alone.

    CPU time is printed beside wall time because on a shared machine the
    wall time mostly measures the other jobs.
    """
    with open(log, "w") as fh:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}; see {log}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024.0  # Linux: KiB


def plink2_cmd(plink2: str, bfile: Path, pheno: Path, covar: Path, trait: str, threads: int,
               out: Path) -> list[str]:
    return [plink2, "--bfile", str(bfile), "--pheno", str(pheno), "--pheno-name", trait,
            "--covar", str(covar), "--glm", "hide-covar", "omit-ref", "no-firth",
            "--threads", str(threads), "--out", str(out)]


def ours_cmd(bfile: Path, pheno: Path, covar: Path, trait: str, threads: int, out: Path,
             chunk_size: int | None, extra: list[str] | None = None) -> list[str]:
    cmd = [sys.executable, "-m", "crosscohort", "assoc", "--bfile", str(bfile), "--pheno", str(pheno),
           "--pheno-name", trait, "--covar", str(covar), "--threads", str(threads),
           "--out", str(out)]
    if chunk_size:
        cmd += ["--chunk-size", str(chunk_size)]
    return cmd + (extra or [])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=int, default=20_000)
    ap.add_argument("--variants", type=int, default=100_000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--chunk-size", type=int, default=None, help="ours (default: the command's default)")
    ap.add_argument("--models", default="linear,logistic")
    ap.add_argument("--skip-2x", action="store_true", help="skip ours on twice the variants")
    ap.add_argument("--repeat", type=int, default=1, help="run the plink2/ours pair this many times, alternating")
    ap.add_argument("--plink2", default=shutil.which("plink2") or "plink2")
    a = ap.parse_args(argv)

    n, m = a.samples, a.variants
    bfile, bfile2 = OUT / f"assoc_{n}x{m}", OUT / f"assoc_{n}x{2 * m}"
    pheno, covar = OUT / f"assoc_{n}.pheno.tsv", OUT / f"assoc_{n}.covar.tsv"
    for p in (bfile.with_suffix(".bed"), bfile2.with_suffix(".bed"), pheno, covar):
        if not p.exists():
            raise SystemExit(f"{p} missing: run python benchmarks/make_assoc_input.py "
                             f"--samples {n} --variants {m}")
    print(f"machine: {os.cpu_count()} CPUs; {' '.join(os.uname()[2:3])}; input {n} samples x {m} variants, "
          f"5 covariates; threads {a.threads}", flush=True)

    # Warm-up: compiles (and caches) the numba kernels once, so the timed runs measure the scan.
    w0 = time.perf_counter()
    timed(ours_cmd(bfile, pheno, covar, "qt,bt", a.threads, OUT / "bench_warm.{trait}.tsv", 100,
                   ["--part", "1/1000"]), log=OUT / "bench_warm.log")
    print(f"warm-up (numba compile or cache load): {time.perf_counter() - w0:.1f} s", flush=True)

    runs: list[Run] = []
    for model in a.models.split(","):
        trait = TRAIT[model]
        jobs = [("plink2", m, plink2_cmd(a.plink2, bfile, pheno, covar, trait, a.threads,
                                         OUT / f"bench_plink2_{model}")),
                ("crosscohort", m, ours_cmd(bfile, pheno, covar, trait, a.threads,
                                            OUT / f"bench_ours_{model}.tsv", a.chunk_size))] * a.repeat
        if not a.skip_2x:
            jobs.append(("crosscohort", 2 * m, ours_cmd(bfile2, pheno, covar, trait, a.threads,
                                                        OUT / f"bench_ours_{model}_2x.tsv",
                                                        a.chunk_size)))
        for tool, mv, cmd in jobs:
            before = os.getloadavg()[0]
            wall, cpu, rss = timed(cmd, log=OUT / f"bench_{tool}_{model}_{mv}.log")
            runs.append(Run(tool, model, mv, wall, cpu, rss, before, os.getloadavg()[0]))
            print(f"  {tool:12s} {model:9s} {mv:>7d} variants  {wall:8.1f} s  cpu {cpu:8.1f} s  {rss:7.0f} MB  "
                  f"(load {before:.1f} -> {runs[-1].load_after:.1f})", flush=True)

    print()
    print("| tool | model | variants | wall s | CPU s | peak RSS MB | wall ratio (ours / plink2) | "
          "CPU ratio | load 1-min avg before -> after |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---|")
    for i, r in enumerate(runs):
        # Ours against the plink2 run just before it (same model): the pair saw the same load.
        ref = next((x for x in reversed(runs[:i]) if x.tool == "plink2" and x.model == r.model), None)
        same = ref is not None and r.tool != "plink2" and r.variants == ref.variants
        ratio = f"{r.wall_s / ref.wall_s:.2f}" if same else ""
        cpu_ratio = f"{r.cpu_s / ref.cpu_s:.2f}" if same else ""
        print(f"| {r.tool} | {r.model} | {r.variants} | {r.wall_s:.1f} | {r.cpu_s:.1f} | {r.peak_rss_mb:.0f} | "
              f"{ratio} | {cpu_ratio} | {r.load_before:.1f} -> {r.load_after:.1f} |")
    for model in a.models.split(","):
        one = [r for r in runs if r.tool == "crosscohort" and r.model == model and r.variants == m]
        two = [r for r in runs if r.tool == "crosscohort" and r.model == model and r.variants == 2 * m]
        if one and two:
            print(f"{model}: our peak RSS at {2 * m} / {m} variants = "
                  f"{two[0].peak_rss_mb / max(r.peak_rss_mb for r in one):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
