"""MR-MEGA on top of fixed + random effects: the cost of ``--method mrmega`` over ``--method random``.

The workflow's call (``crosscohort meta`` on harmonised tables, one chromosome
at a time) on k cohorts x m variants from ``make_meta_input.py`` (90 % of
variants in every cohort; each cohort's EAF the shared one plus N(0, 0.01)
noise, so the axes of genetic variation are those of noise: the cost does not
depend on them). Both commands read the same harmonised ``.tsv.gz`` files and
write ``.tsv.gz``; rounds alternate their order. Bar (issue 23): MR-MEGA's
wall <= 1.3x that of fixed + random, peak RSS within the meta bound.

Usage::

    python benchmarks/bench_mrmega.py --variants 2000000 --cohorts 5 --repeat 3 [--work-dir D]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

from _timing import measured

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variants", type=int, default=2_000_000, help="variants per cohort")
    ap.add_argument("--cohorts", type=int, default=5)
    ap.add_argument("--pcs", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument(
        "--work-dir",
        type=Path,
        help="inputs/outputs here, kept (default: benchmarks/out/mrmega_<variants>, removed)",
    )
    args = ap.parse_args(argv)
    k = args.cohorts
    work = args.work_dir or HERE / "out" / f"mrmega_{args.variants}"
    ours = work / "ours"
    if not (ours / f"h_c{k - 1}.tsv.gz").exists():
        subprocess.run(
            [
                sys.executable,
                str(HERE / "make_meta_input.py"),
                "--out-dir",
                str(work),
                "--variants",
                str(args.variants),
                "--cohorts",
                str(k),
            ],
            check=True,
        )
        prep = (
            "import sys; from crosscohort.central.harmonise import harmonise; "
            "from crosscohort.contract.sumstats import read_sumstats, write_sumstats; from pathlib import Path; "
            "w = Path(sys.argv[1]); k = int(sys.argv[2]); "
            "h = harmonise({f'c{i}': read_sumstats(w / f'c{i}.tsv', chromosome_labels=True) for i in range(k)}); "
            "[write_sumstats(t, w / f'h_{c}.tsv.gz') for c, t in h.tables.items()]"
        )
        subprocess.run([sys.executable, "-c", prep, str(ours), str(k)], check=True, cwd=HERE.parent)
    inputs = [f"c{i}={ours / f'h_c{i}.tsv.gz'}" for i in range(k)]
    jobs = {
        "fixed + random": [
            sys.executable,
            "-m",
            "crosscohort",
            "meta",
            "--method",
            "random",
            "--out",
            str(ours / "meta_random.tsv.gz"),
            *inputs,
        ],
        "+ MR-MEGA": [
            sys.executable,
            "-m",
            "crosscohort",
            "meta",
            "--method",
            "mrmega",
            "--pcs",
            str(args.pcs),
            "--out",
            str(ours / "meta_mrmega.tsv.gz"),
            *inputs,
        ],
    }
    print(
        f"{k} cohorts x {args.variants:,} variants; {os.cpu_count()} cores; "
        f"load {os.getloadavg()[0]:.1f}"
    )
    got: dict[str, list] = {name: [] for name in jobs}
    names = list(jobs)
    for r in range(args.repeat):
        for name in names[r % 2 :] + names[: r % 2]:
            m = measured(jobs[name], HERE.parent, log=work / f"{name[:5].strip('+ ')}.log")
            if m.returncode != 0:
                raise SystemExit(f"{name} failed: see {work}")
            got[name].append(m)
            print(
                f"round {r + 1}: {name}: wall {m.wall:.1f} s, CPU {m.cpu:.1f} s, "
                f"peak RSS {m.rss_gb:.2f} GB, load {os.getloadavg()[0]:.1f}"
            )
    med = {
        n: (
            statistics.median(x.wall for x in v),
            statistics.median(x.cpu for x in v),
            max(x.rss_gb for x in v),
        )
        for n, v in got.items()
    }
    base = med["fixed + random"]
    print(
        "| tool | wall s (median) | CPU s (median) | peak RSS GB (max) | wall ratio | CPU ratio |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for n, (w, c, rss) in med.items():
        print(f"| {n} | {w:.1f} | {c:.1f} | {rss:.2f} | {w / base[0]:.2f} | {c / base[1]:.2f} |")
    if args.work_dir is None:
        shutil.rmtree(work)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
