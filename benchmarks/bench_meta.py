"""Time ``crosscohort meta`` (harmonise + fixed + heterogeneity + random) against plink 1.9 and GWAMA.

All three run on the same cohorts (benchmarks/make_meta_input.py) in one
invocation of this script, one after the other, each under
``/usr/bin/time -v`` for wall time, CPU time (user + system: the fairer figure
on a shared machine) and peak RSS, with the 1-minute load average before and
after each. Ours is the standalone
call users would make (raw GWAS-SSF text in, harmonised and combined in
one process, uncompressed TSV out); the peers read their own formats.

Usage::

    python benchmarks/bench_meta.py --variants 2000000            # writes input, times all three
    python benchmarks/bench_meta.py --variants 10000000 --ours-only
    python benchmarks/bench_meta.py --variants 2000000 --harmonised --work-dir D  # keep D
    python benchmarks/bench_meta.py --variants 2000000 --repeat 3 --work-dir D     # 3 rounds
    python benchmarks/bench_meta.py --variants 2000000 --unsorted --work-dir D     # rows shuffled

With ``--repeat N`` the tools run in N rounds, the order rotated each round
(a tool's place in a round does not favour it), and a last table gives each
tool's median and range of wall time and the median of the per-round
ratios: the figure to quote on a machine whose speed drifts (this VM's does,
by up to 1.5x for every tool alike, benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def timed(cmd: list[str], cwd: Path) -> tuple[float, float, float, str]:
    """Wall s, CPU s (user + system), peak RSS (GB) of ``cmd`` under GNU time, and the loads."""
    before = os.getloadavg()[0]
    proc = subprocess.run(["/usr/bin/time", "-v", *cmd], cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    err = proc.stderr
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", err).group(1)
    secs = sum(float(x) * 60**i for i, x in enumerate(reversed(wall.split(":"))))
    cpu = sum(float(re.search(rf"{k} time \(seconds\): (\S+)", err).group(1)) for k in ("User", "System"))
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", err).group(1)) / 1024**2
    return secs, cpu, rss, f"{before:.1f} -> {os.getloadavg()[0]:.1f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variants", type=int, default=2_000_000, help="variants per cohort")
    ap.add_argument("--cohorts", type=int, default=3)
    ap.add_argument("--work-dir", type=Path,
                    help="inputs/outputs here, kept (default: benchmarks/out/meta_<variants>, removed)")
    ap.add_argument("--ours-only", action="store_true", help="skip plink 1.9 and GWAMA")
    ap.add_argument("--no-gwama", action="store_true", help="skip GWAMA (10 GB at 10M variants)")
    ap.add_argument("--harmonised", action="store_true",
                    help="also time the workflow's call on pre-harmonised inputs")
    ap.add_argument("--unsorted", action="store_true",
                    help="shuffle every tool's input rows (one permutation per cohort, the same "
                         "for all tools) into WORK/unsorted and time on those")
    ap.add_argument("--repeat", type=int, default=1, metavar="N",
                    help="rounds of all tools, order rotated each round; prints medians")
    args = ap.parse_args(argv)
    if args.repeat < 1:
        ap.error("--repeat must be at least 1")
    work = args.work_dir or HERE / "out" / f"meta_{args.variants}"
    if not (work / "ours" / f"c{args.cohorts - 1}.tsv").exists():
        subprocess.run([sys.executable, str(HERE / "make_meta_input.py"), "--out-dir", str(work),
                        "--variants", str(args.variants), "--cohorts", str(args.cohorts)], check=True)
    k = args.cohorts
    env_cwd = HERE.parent
    root = work
    if args.unsorted:
        work = _shuffled(work, k)
    jobs: list[tuple[str, list[str], Path]] = [(
        "crosscohort meta (raw)",
        [sys.executable, "-m", "crosscohort", "meta", "--format", "gwas-ssf", "--method",
         "random", "--out", str(work / "ours" / "meta.tsv"),
         *(str(work / "ours" / f"c{i}.tsv") for i in range(k))],
        env_cwd)]
    if args.harmonised:
        # The workflow's call: inputs already harmonised (prepared here, untimed, as .tsv).
        prep = ("import sys; from crosscohort.central.harmonise import harmonise; "
                "from crosscohort.contract.sumstats import read_sumstats, write_sumstats; from pathlib import Path; "
                "w = Path(sys.argv[1]); k = int(sys.argv[2]); "
                "h = harmonise({f'c{i}': read_sumstats(w / 'ours' / f'c{i}.tsv', chromosome_labels=True) for i in range(k)}); "
                "[write_sumstats(t, w / 'ours' / f'h_{c}.tsv') for c, t in h.tables.items()]")
        subprocess.run([sys.executable, "-c", prep, str(work), str(k)], check=True, cwd=env_cwd)
        jobs.append(("crosscohort meta (harmonised)",
                     [sys.executable, "-m", "crosscohort", "meta", "--method", "random", "--out",
                      str(work / "ours" / "meta_h.tsv"),
                      *(f"c{i}={work / 'ours' / f'h_c{i}.tsv'}" for i in range(k))], env_cwd))
    if not args.ours_only:
        plink = shutil.which("plink1.9") or "plink"
        jobs.append(("plink1.9 --meta-analysis",
                     [plink, "--meta-analysis", *(f"c{i}.assoc" for i in range(k)), "+", "qt",
                      "--out", "pm"], work / "plink"))
        if not args.no_gwama:
            gwama = shutil.which("GWAMA") or "gwama"
            jobs.append(("GWAMA -r", [gwama, "-i", "gwama.in", "-qt", "-r", "-o", "out"],
                         work / "gwama"))
    print(f"{k} cohorts x {args.variants:,} variants; {os.cpu_count()} cores")
    rounds: list[dict[str, tuple[float, float, float, str]]] = []
    for r in range(args.repeat):
        got = {}
        for name, cmd, cwd in jobs[r % len(jobs):] + jobs[:r % len(jobs)]:
            got[name] = timed(cmd, cwd)
        rounds.append(got)
        if args.repeat > 1:
            print(f"round {r + 1} of {args.repeat} (first: {next(iter(got))})")
        _table(jobs, got)
    if args.repeat > 1:
        _summary(jobs, rounds)
    if args.work_dir is None:
        shutil.rmtree(root)
    return 0


def _shuffled(work: Path, k: int) -> Path:
    """``work/unsorted``: every tool's cohort files with their rows in a random order.

    Real summary statistics come sorted by marker name or p as often as by
    position; the peers key by marker name and do not care, ours must not
    lose its speed or memory bound. Cohort i's rows get one permutation
    (seed i), the same in every tool's file, headers kept.
    """
    import numpy as np

    out = work / "unsorted"
    files = [(f"ours/c{i}.tsv", i) for i in range(k)] + [(f"plink/c{i}.assoc", i) for i in range(k)]
    files += [(f"gwama/c{i}.txt", i) for i in range(k)]
    for rel, i in files:
        src, dst = work / rel, out / rel
        if dst.exists() or not src.exists():
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        lines = src.read_bytes().splitlines(keepends=True)
        body = lines[1:]
        perm = np.random.default_rng(i).permutation(len(body))
        dst.write_bytes(lines[0] + b"".join(body[j] for j in perm))
    if (work / "gwama" / "gwama.in").exists():
        shutil.copy(work / "gwama" / "gwama.in", out / "gwama" / "gwama.in")
    return out


def _table(jobs, got) -> None:
    """One round: each tool's wall, CPU, peak RSS, ours (raw) over it, and the loads."""
    ours_wall, ours_cpu = got[jobs[0][0]][0], got[jobs[0][0]][1]
    print("| tool | wall s | CPU s | peak RSS GB | ours(raw)/tool wall | ours(raw)/tool CPU "
          "| load before -> after |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for name, _, _ in jobs:
        wall, cpu, rss, load = got[name]
        print(f"| {name} | {wall:.1f} | {cpu:.1f} | {rss:.2f} | {ours_wall / wall:.2f} "
              f"| {ours_cpu / cpu:.2f} | {load} |")


def _summary(jobs, rounds) -> None:
    """Over the rounds: median (range) wall, median CPU, largest RSS, median per-round ratio."""
    ours = jobs[0][0]
    print(f"summary of {len(rounds)} rounds")
    print("| tool | wall s, median (min-max) | CPU s, median | peak RSS GB, max "
          "| ours(raw)/tool wall, median of rounds (min-max) |")
    print("|---|---|---:|---:|---|")
    for name, _, _ in jobs:
        walls = [g[name][0] for g in rounds]
        ratios = [g[ours][0] / g[name][0] for g in rounds]
        print(f"| {name} | {statistics.median(walls):.1f} ({min(walls):.1f}-{max(walls):.1f}) "
              f"| {statistics.median(g[name][1] for g in rounds):.1f} "
              f"| {max(g[name][2] for g in rounds):.2f} "
              f"| {statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f}) |")


if __name__ == "__main__":
    raise SystemExit(main())
