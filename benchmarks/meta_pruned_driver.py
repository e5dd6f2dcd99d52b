"""Bench-only: the whole-table meta-analysis (``meta_analyse``) on column-pruned harmonised tables.

Since 2026-12-02 ``crosscohort meta`` reads harmonised tables one chromosome
at a time (``crosscohort/central/meta/stream.py``, 2.16 GB at 5 x 10M); this driver
keeps the whole-table functions it used before (13.6 GB there), as the
reference for memory and for the output, which must be the same bytes.

What ``crosscohort meta`` does for harmonised input (read, ``meta_analyse``,
``write_meta``, ``distance_loci`` + ``leave_one_out`` + ``write_loo``) except
that each table is cut to ``meta_input_columns()`` right after it is read, as
the command already does for raw input. ``bench_scale.py --stages
meta-pruned`` runs it to (a) show what the reading term of the meta stage
costs and (b) produce the 5 x 10M meta-analysis the report stage needs when
the command itself passes the RSS cap. Prints wall, CPU and peak RSS (psutil,
sampled every 50 ms; GB = 10^9 bytes) of each step.

Usage: ``python benchmarks/meta_pruned_driver.py OUT.tsv.gz C=HARMONISED.tsv.gz ...``
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import psutil

from crosscohort.central.loci import distance_loci
from crosscohort.central.meta import leave_one_out, meta_analyse, write_loo, write_meta
from crosscohort.central.meta.ivw import meta_input_columns
from crosscohort.contract.sumstats import read_sumstats


class _Step:
    """Context manager printing one step's wall, CPU and peak RSS."""

    def __init__(self, name: str) -> None:
        self.name, self.proc = name, psutil.Process()

    def __enter__(self) -> _Step:
        self.start = self.peak = self.proc.memory_info().rss
        self.t0, self.c0, self.stop = time.perf_counter(), time.process_time(), threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()
        return self

    def _watch(self) -> None:
        while not self.stop.wait(0.05):
            self.peak = max(self.peak, self.proc.memory_info().rss)

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()
        end = self.proc.memory_info().rss
        print(
            f"{self.name:45s} wall {time.perf_counter() - self.t0:7.1f} s  "
            f"cpu {time.process_time() - self.c0:7.1f} s  RSS start {self.start / 1e9:5.2f} "
            f"peak {max(self.peak, end) / 1e9:5.2f} end {end / 1e9:5.2f} GB",
            flush=True,
        )


def main(argv: list[str]) -> int:
    out = Path(argv[0])
    out.parent.mkdir(parents=True, exist_ok=True)
    paths = dict(item.split("=", 1) for item in argv[1:])
    keep = meta_input_columns(samplesize=False)
    tables = {}
    with _Step("read tables, pruned to meta_input_columns"):
        for cohort, path in paths.items():
            t = read_sumstats(path)
            tables[cohort] = t.select([c for c in keep if c in t.columns])
            del t
    size = sum(t.estimated_size() for t in tables.values()) / 1e9
    print(f"kept columns {list(tables[next(iter(tables))].columns)}: {size:.2f} GB", flush=True)
    with _Step("meta_analyse (random)"):
        result = meta_analyse(tables, method="random", gc=False, cohort_order=list(paths))
    with _Step("write_meta"):
        write_meta(result, out)
    with _Step("distance_loci + leave_one_out + write_loo"):
        leads = distance_loci(result.table, threshold=5e-8, window_kb=500)
        loo = leave_one_out(
            tables,
            leads.drop_nulls("chromosome"),
            cohort_order=list(result.cohorts),
            se_factors=result.gc_applied,
        )
        write_loo(loo, out.with_name(out.name + ".loo.tsv"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
