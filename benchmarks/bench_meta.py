"""Time ``crosscohort meta`` (harmonise + fixed + heterogeneity + random) against plink 1.9 and GWAMA.

All three run on the same cohorts (benchmarks/make_meta_input.py) in one
invocation of this script, one after the other, each under
``/usr/bin/time -v`` for wall time and peak RSS. Ours is the standalone
call users would make (raw GWAS-SSF text in, harmonised and combined in
one process, uncompressed TSV out); the peers read their own formats.

Usage::

    python benchmarks/bench_meta.py --variants 2000000            # writes input, times all three
    python benchmarks/bench_meta.py --variants 10000000 --ours-only
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _timing import timed  # noqa: E402  (benchmarks/ is not a package)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variants", type=int, default=2_000_000, help="variants per cohort")
    ap.add_argument("--cohorts", type=int, default=3)
    ap.add_argument("--work-dir", type=Path,
                    help="inputs/outputs here, kept (default: benchmarks/out/meta_<variants>, removed)")
    ap.add_argument("--ours-only", action="store_true", help="skip plink 1.9 and GWAMA")
    ap.add_argument("--harmonised", action="store_true",
                    help="also time the workflow's call on pre-harmonised inputs")
    args = ap.parse_args(argv)
    work = args.work_dir or HERE / "out" / f"meta_{args.variants}"
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
        gwama = shutil.which("GWAMA") or "gwama"
        rows.append(("GWAMA -r", *timed([gwama, "-i", "gwama.in", "-qt", "-r", "-o", "out"],
                                        work / "gwama")))
    ours_wall = rows[0][1]
    print(f"{k} cohorts x {args.variants:,} variants; {os.cpu_count()} cores; "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"{'tool':32s} {'wall s':>8s} {'ours(raw)/tool':>15s} {'peak RSS GB':>12s}")
    for name, wall, rss in rows:
        print(f"{name:32s} {wall:8.1f} {ours_wall / wall:15.2f} {rss:12.2f}")
    if args.work_dir is None:
        shutil.rmtree(work)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
