"""The floor under ``crosscohort meta`` on raw files: reading the inputs and writing the output alone, against plink 1.9.

Issue 20 asks the raw call on 3 x 2M sorted GWAS-SSF files (harmonise +
fixed + heterogeneity + random) to take at most 0.25x plink 1.9
``--meta-analysis``'s wall time. This script measures what no design that
keeps the product's reader and output can go below, in the same run as
plink 1.9 and our full call, on the inputs of ``bench_meta.py``:

- ``start-up``: a fresh interpreter importing what ``crosscohort meta``
  imports before it reads a byte (``crosscohort.commands.meta`` and the
  harmonisation and meta-analysis packages);
- ``read``: polars parsing the three input files whole (every column, the
  parser the block reader hands each block to), with nothing checked;
- ``write``: formatting and writing the output table of our full call
  (``meta.tsv``, read back untimed first) with the writer's own call
  (``write_csv`` with 17 significant digits, tab-separated, ``NA``), to a
  file that is then removed.

Each is a child process of its own, measured with ``os.wait4`` (wall,
user + system CPU, peak RSS; benchmarks/_timing.py); ``read`` and ``write`` are timed inside
the child as well, so that their start-up is not counted twice. The floor
printed is start-up + read + write, in wall time and in CPU time over the
machine's cores (the least wall time if the stages overlapped perfectly).

Usage::

    python benchmarks/bench_meta.py --variants 2000000 --no-gwama --work-dir D   # inputs, meta.tsv
    python benchmarks/bench_meta_floor.py --work-dir D --repeat 3
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _timing import measured  # noqa: E402

_STARTUP = ("import crosscohort.commands.meta, crosscohort.central.harmonise.readers, "
            "crosscohort.central.meta.stream")

_READ = """
import resource, sys, time
import polars as pl
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
w, c = time.perf_counter(), cpu()
frames = [pl.read_csv(p, separator="\\t", infer_schema_length=10000,
                      schema_overrides={"chromosome": pl.Utf8}) for p in sys.argv[1:]]
print(f"inner {time.perf_counter() - w:.3f} {cpu() - c:.3f} {sum(f.height for f in frames)}")
"""

_WRITE = """
import resource, sys, time
import polars as pl
from crosscohort.runtime.uncached import UncachedFile
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
table = pl.read_csv(sys.argv[1], separator="\\t", null_values="NA", infer_schema_length=10000,
                    schema_overrides={"chromosome": pl.Utf8, "variant_id": pl.Utf8})
w, c = time.perf_counter(), cpu()
with UncachedFile(sys.argv[2]) as fh:
    table.write_csv(fh, separator="\\t", null_value="NA", float_precision=None)
print(f"inner {time.perf_counter() - w:.3f} {cpu() - c:.3f} {table.height}")
"""


def timed(cmd: list[str], cwd: Path, log: Path) -> tuple[float, float, float, str]:
    """Wall s, CPU s (user + system), peak RSS GB of ``cmd``, and what it printed."""
    m = measured(cmd, cwd, log=log)
    if m.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed:\n{log.read_text()[-2000:]}")
    return m.wall, m.cpu, m.rss_gb, log.read_text()


def _inner(stdout: str) -> tuple[float, float]:
    m = re.search(r"^inner (\S+) (\S+)", stdout, re.M)
    return float(m.group(1)), float(m.group(2))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work-dir", type=Path, required=True,
                    help="bench_meta.py's work dir (ours/c*.tsv, plink/c*.assoc)")
    ap.add_argument("--cohorts", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=1, metavar="N")
    args = ap.parse_args(argv)
    work, k = args.work_dir, args.cohorts
    inputs = [str(work / "ours" / f"c{i}.tsv") for i in range(k)]
    missing = [p for p in [*inputs, *(str(work / "plink" / f"c{i}.assoc") for i in range(k))]
               if not Path(p).exists()]
    if missing:
        ap.error(f"no {missing[0]}: run bench_meta.py --work-dir {work} first")
    out, scratch = work / "ours" / "floor_meta.tsv", work / "ours" / "floor_write.tsv"
    env_cwd = HERE.parent
    plink = shutil.which("plink1.9") or "plink"
    jobs = {
        "plink1.9 --meta-analysis": ([plink, "--meta-analysis", *(f"c{i}.assoc" for i in range(k)),
                                      "+", "qt", "--out", "pm"], work / "plink"),
        "crosscohort meta (raw)": ([sys.executable, "-m", "crosscohort", "meta", "--format",
                                    "gwas-ssf", "--method", "random", "--out", str(out), *inputs],
                                   env_cwd),
        "start-up": ([sys.executable, "-c", _STARTUP], env_cwd),
        "read": ([sys.executable, "-c", _READ, *inputs], env_cwd),
        "write": ([sys.executable, "-c", _WRITE, str(out), str(scratch)], env_cwd),
    }
    cores = os.cpu_count() or 1
    print(f"{k} cohorts from {work}; {cores} cores")
    rows: list[dict[str, tuple[float, float]]] = []
    for r in range(args.repeat):
        got: dict[str, tuple[float, float]] = {}
        for name, (cmd, cwd) in jobs.items():  # "write" needs the full call's output
            wall, cpu, rss, stdout = timed(cmd, cwd, work / "ours" / "floor.log")
            if name in ("read", "write"):
                wall, cpu = _inner(stdout)
            got[name] = (wall, cpu)
            print(f"round {r + 1}: {name}: wall {wall:.2f} s, CPU {cpu:.2f} s, peak RSS {rss:.2f} GB")
        floor_wall = sum(got[s][0] for s in ("start-up", "read", "write"))
        floor_cpu = sum(got[s][1] for s in ("start-up", "read", "write"))
        got["floor"] = (floor_wall, floor_cpu)
        plink_wall = got["plink1.9 --meta-analysis"][0]
        print(f"round {r + 1}: floor (start-up + read + write): wall {floor_wall:.2f} s "
              f"= {floor_wall / plink_wall:.3f}x plink 1.9; CPU {floor_cpu:.2f} s, over {cores} "
              f"cores {floor_cpu / cores:.2f} s = {floor_cpu / cores / plink_wall:.3f}x; "
              f"ours {got['crosscohort meta (raw)'][0] / plink_wall:.3f}x")
        rows.append(got)
    scratch.unlink(missing_ok=True)
    if args.repeat > 1:
        print("| measure | wall s, median (min-max) | CPU s, median |")
        print("|---|---|---:|")
        for name in [*jobs, "floor"]:
            walls = [g[name][0] for g in rows]
            cpus = [g[name][1] for g in rows]
            print(f"| {name} | {statistics.median(walls):.2f} ({min(walls):.2f}-{max(walls):.2f}) "
                  f"| {statistics.median(cpus):.2f} |")
        ratios = [g["floor"][0] / g["plink1.9 --meta-analysis"][0] for g in rows]
        ours = [g["crosscohort meta (raw)"][0] / g["plink1.9 --meta-analysis"][0] for g in rows]
        print(f"floor / plink 1.9 (wall), median of rounds: {statistics.median(ratios):.3f} "
              f"({min(ratios):.3f}-{max(ratios):.3f}); ours / plink 1.9: "
              f"{statistics.median(ours):.3f} ({min(ours):.3f}-{max(ours):.3f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
