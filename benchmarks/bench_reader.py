"""Time the one block reader (contract/table_io.py) in each of its uses against polars reading the whole file.

One GWAS-SSF table (``benchmarks/make_meta_input.py``'s first cohort, plain or
gzip) is read by:

- ``polars``: the peer, ``pl.read_csv`` of the whole file with the registry's
  types (what ``read_sumstats`` did before the one reader);
- ``read_sumstats``: every column, blocks parsed by worker threads;
- ``read_digest``: the report's reader, three columns of every row;
- ``file_parts``: the meta-analysis' reader of harmonised tables, one
  chromosome at a time;
- ``harmonise_fast``: harmonisation's reader (``read_summary_statistics``), its
  typed path;
- ``harmonise_checking``: the same reader forced onto its checking path (the
  path of padded, CRLF or space-aligned files).

Each runs in its own process under ``/usr/bin/time -v`` (wall, CPU = user +
system, peak RSS), with the 1-minute load average before it: on a shared
machine CPU seconds are the fairer figure.

Usage::

    python benchmarks/bench_reader.py --variants 2000000 --work-dir D [--gz] [--repeat 2]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

_CODE = {
    "polars": (
        "import polars as pl; from crosscohort.contract.sumstats import schema_for, header_names, "
        "header_line; from crosscohort.contract.table_io import NA_TOKENS; p = {path!r}; "
        "df = pl.read_csv(p, separator='\\t', schema_overrides=schema_for(header_names(header_line(p))), "
        "null_values=list(NA_TOKENS), infer_schema=False); print(df.height)"),
    "read_sumstats": (
        "from crosscohort.contract.sumstats import read_sumstats; print(read_sumstats({path!r}).height)"),
    "read_digest": (
        "from crosscohort.central.report.reading import read_digest; "
        "print(read_digest({path!r}, columns=('chromosome', 'base_pair_location', 'p_value'), "
        "line=7.3).n_rows)"),
    "file_parts": (
        "from crosscohort.central.meta.stream import file_parts; from crosscohort.central.meta.ivw "
        "import meta_input_columns; src = file_parts({{'c': {path!r}}}, ['c'], "
        "keep=meta_input_columns(), samplesize=False); "
        "print(sum(f[0].height for _, f in src.parts()))"),
    "harmonise_fast": (
        "from crosscohort.central.harmonise.readers import read_summary_statistics; "
        "print(read_summary_statistics({path!r}, format='gwas-ssf').table.height)"),
    "harmonise_checking": (
        "import crosscohort.central.harmonise.readers as r; r._read_typed = lambda *a, **k: None; "
        "print(r.read_summary_statistics({path!r}, format='gwas-ssf').table.height)"),
}


def timed(code: str) -> tuple[float, float, float, float]:
    """Wall s, CPU s, peak RSS GB of ``python -c code``, and the load average before it."""
    load = os.getloadavg()[0]
    proc = subprocess.run(["/usr/bin/time", "-v", sys.executable, "-c", code],
                          capture_output=True, text=True, env={**os.environ})
    if proc.returncode != 0:
        raise SystemExit(f"failed:\n{code}\n{proc.stderr[-2000:]}")
    err = proc.stderr
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", err).group(1)
    secs = sum(float(x) * 60**i for i, x in enumerate(reversed(wall.split(":"))))
    cpu = sum(float(re.search(rf"{k} time \(seconds\): (\S+)", err).group(1)) for k in ("User", "System"))
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", err).group(1)) / 1024**2
    return secs, cpu, rss, load


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variants", type=int, default=2_000_000)
    ap.add_argument("--work-dir", type=Path, required=True, help="input here (made if missing), kept")
    ap.add_argument("--gz", action="store_true", help="read a gzip copy of the table")
    ap.add_argument("--repeat", type=int, default=1, metavar="N", help="rounds, order rotated")
    ap.add_argument("--only", nargs="*", choices=list(_CODE), help="these readers only")
    args = ap.parse_args(argv)
    table = args.work_dir / "ours" / "c0.tsv"
    if not table.exists():
        subprocess.run([sys.executable, str(HERE / "make_meta_input.py"), "--out-dir",
                        str(args.work_dir), "--variants", str(args.variants), "--cohorts", "1"],
                       check=True)
    path = table
    if args.gz:
        path = args.work_dir / "ours" / "c0.tsv.gz"
        if not path.exists():
            from isal import igzip

            with open(table, "rb") as src, igzip.open(path, "wb", compresslevel=2) as dst:
                while chunk := src.read(1 << 24):
                    dst.write(chunk)
    names = args.only or list(_CODE)
    print(f"{path} ({path.stat().st_size / 1e6:.0f} MB); {os.cpu_count()} cores")
    print("| round | reader | wall s | CPU s | peak RSS GB | CPU / polars | load before |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for r in range(args.repeat):
        order = names[r % len(names):] + names[:r % len(names)]
        got = {n: timed(_CODE[n].format(path=str(path))) for n in order}
        base = got.get("polars", (0, 0, 0, 0))[1]
        for n in names:
            wall, cpu, rss, load = got[n]
            ratio = f"{cpu / base:.2f}" if base else ""
            print(f"| {r + 1} | {n} | {wall:.2f} | {cpu:.2f} | {rss:.2f} | {ratio} | {load:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
