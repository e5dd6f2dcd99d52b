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
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
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
    args = ap.parse_args(argv)
    work = args.work_dir or HERE / "out" / f"meta_{args.variants}"
    if not (work / "ours" / f"c{args.cohorts - 1}.tsv").exists():
        subprocess.run([sys.executable, str(HERE / "make_meta_input.py"), "--out-dir", str(work),
                        "--variants", str(args.variants), "--cohorts", str(args.cohorts)], check=True)
    k = args.cohorts
    rows = []
    ours = [sys.executable, "-m", "crosscohort", "meta", "--format", "gwas-ssf", "--method",
            "random", "--out", str(work / "ours" / "meta.tsv"),
            *(str(work / "ours" / f"c{i}.tsv") for i in range(k))]
    env_cwd = HERE.parent
    rows.append(("crosscohort meta (raw)", *timed(ours, env_cwd)))
    if args.harmonised:
        # The workflow's call: inputs already harmonised (prepared here, untimed, as .tsv).
        prep = ("import sys; from crosscohort.harmonise import harmonise, read_cohort_tables; "
                "from crosscohort.sumstats import write_sumstats; from pathlib import Path; "
                "w = Path(sys.argv[1]); k = int(sys.argv[2]); "
                "h = harmonise(read_cohort_tables({f'c{i}': w / 'ours' / f'c{i}.tsv' for i in range(k)})); "
                "[write_sumstats(t, w / 'ours' / f'h_{c}.tsv') for c, t in h.tables.items()]")
        subprocess.run([sys.executable, "-c", prep, str(work), str(k)], check=True, cwd=env_cwd)
        rows.append(("crosscohort meta (harmonised)", *timed(
            [sys.executable, "-m", "crosscohort", "meta", "--method", "random", "--out",
             str(work / "ours" / "meta_h.tsv"),
             *(f"c{i}={work / 'ours' / f'h_c{i}.tsv'}" for i in range(k))], env_cwd)))
    if not args.ours_only:
        plink = shutil.which("plink1.9") or "plink"
        rows.append(("plink1.9 --meta-analysis", *timed(
            [plink, "--meta-analysis", *(f"c{i}.assoc" for i in range(k)), "+", "qt",
             "--out", "pm"], work / "plink")))
        if not args.no_gwama:
            gwama = shutil.which("GWAMA") or "gwama"
            rows.append(("GWAMA -r", *timed([gwama, "-i", "gwama.in", "-qt", "-r", "-o", "out"],
                                            work / "gwama")))
    ours_wall, ours_cpu = rows[0][1], rows[0][2]
    print(f"{k} cohorts x {args.variants:,} variants; {os.cpu_count()} cores")
    print("| tool | wall s | CPU s | peak RSS GB | ours(raw)/tool wall | ours(raw)/tool CPU "
          "| load before -> after |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for name, wall, cpu, rss, load in rows:
        print(f"| {name} | {wall:.1f} | {cpu:.1f} | {rss:.2f} | {ours_wall / wall:.2f} "
              f"| {ours_cpu / cpu:.2f} | {load} |")
    if args.work_dir is None:
        shutil.rmtree(work)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
