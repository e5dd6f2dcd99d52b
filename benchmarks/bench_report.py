"""Manhattan + QQ of 10 million variants: crosscohort's plots against a plain matplotlib script.

Both run as child processes on the same summary-statistics file (parquet,
written here once), timed with wall clock and peak RSS from
``/usr/bin/time -v`` (falling back to ``resource.getrusage(RUSAGE_CHILDREN)``).
The peer draws every point, as a script written without thinning does.
Then a full ``crosscohort report`` is built on a meta-analysis of the same
size with two cohorts of ``--cohort-variants`` variants, and its size recorded.

Targets (issue 8): Manhattan + QQ of 10M variants in <= 20 s and <= 2 GB; report <= 10 MB.

Usage: python benchmarks/bench_report.py [--variants 10000000] [--cohort-variants 2000000] [--skip-peer]
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "benchmarks" / "out" / "report"

OURS = """
import sys, time
import polars as pl
from crosscohort.central.report.plots import manhattan, qq, figure_png
t0 = time.perf_counter()
df = pl.read_parquet(sys.argv[1], columns=["chromosome", "base_pair_location", "neg_log_10_p_value"])
t1 = time.perf_counter()
m = figure_png(manhattan(df, title="bench"))
q = qq(df, title="bench")
qb = figure_png(q.figure)
t2 = time.perf_counter()
print(f"read {t1 - t0:.2f} s, plots {t2 - t1:.2f} s, png bytes {len(m) + len(qb)}, lambda {q.lambda_gc:.4f}")
"""

PEER = """
import sys, time
import numpy as np, polars as pl
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
df = pl.read_parquet(sys.argv[1], columns=["chromosome", "base_pair_location", "neg_log_10_p_value"])
c = df["chromosome"].to_numpy(); p = df["base_pair_location"].to_numpy().astype(float)
y = df["neg_log_10_p_value"].to_numpy()
off = np.zeros(26); ends = np.zeros(26)
for k in np.unique(c):
    ends[k] = p[c == k].max()
off[1:] = np.cumsum(ends)[:-1]
fig, ax = plt.subplots(figsize=(12, 4.5))
ax.scatter(off[c] + p, y, s=2, c=np.where(c % 2, "#1f4e79", "#7fa7c9"), linewidths=0)
fig.savefig(sys.argv[2] + ".manhattan.png", dpi=100)
fig, ax = plt.subplots(figsize=(5, 5))
n = y.size
ax.scatter(-np.log10(np.arange(1, n + 1) / (n + 1)), np.sort(y)[::-1], s=2, linewidths=0)
fig.savefig(sys.argv[2] + ".qq.png", dpi=100)
print("peer done")
"""


def make_input(n: int, path: Path, *, seed: int = 1) -> None:
    """Null GWAS of ``n`` variants on 22 chromosomes plus 30 loci of 50 significant variants."""
    rng = np.random.default_rng(seed)
    sizes = np.linspace(250, 50, 22)
    counts = np.floor(sizes / sizes.sum() * n).astype(np.int64)
    counts[0] += n - counts.sum()
    chrom = np.repeat(np.arange(1, 23), counts)
    pos = np.concatenate([np.sort(rng.integers(1, int(s * 1e6), k)) for s, k in zip(sizes, counts, strict=True)])
    nlp = -np.log10(rng.uniform(size=n))
    for i in rng.choice(n - 50, 30, replace=False):
        nlp[i:i + 50] = rng.uniform(7.5, 40, 50)
    se = np.full(n, 0.02)
    z = np.sqrt(np.maximum(0, 2 * nlp * np.log(10)))
    alleles = rng.choice(np.array(["A", "C", "G", "T"]), size=(n, 2))
    same = alleles[:, 0] == alleles[:, 1]
    alleles[same, 1] = np.where(alleles[same, 0] == "A", "G", "A")
    pl.DataFrame({
        "chromosome": chrom, "base_pair_location": pos, "effect_allele": alleles[:, 0],
        "other_allele": alleles[:, 1], "beta": z * se * rng.choice([-1.0, 1.0], n), "standard_error": se,
        "effect_allele_frequency": rng.uniform(0.01, 0.99, n), "p_value": 10.0 ** -nlp,
        "neg_log_10_p_value": nlp, "n": np.full(n, 50_000),
    }).write_parquet(path)


def timed(cmd: list[str], log: Path) -> tuple[float, float, int]:
    """Wall seconds, peak RSS (MB) and exit status of ``cmd``."""
    gnu_time = shutil.which("time") or ("/usr/bin/time" if Path("/usr/bin/time").exists() else None)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    t0 = time.perf_counter()
    if gnu_time:
        with open(log, "w") as fh:
            proc = subprocess.run([gnu_time, "-v", *cmd], stdout=fh, stderr=subprocess.STDOUT, env=env)
        wall = time.perf_counter() - t0
        m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", log.read_text())
        return wall, (int(m.group(1)) / 1024 if m else float("nan")), proc.returncode
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    proc = subprocess.run(cmd, stdout=open(log, "w"), stderr=subprocess.STDOUT, env=env)
    wall = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return wall, max(peak, before) / 1024, proc.returncode


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variants", type=int, default=10_000_000)
    ap.add_argument("--cohort-variants", type=int, default=2_000_000)
    ap.add_argument("--skip-peer", action="store_true")
    ap.add_argument("--skip-report", action="store_true")
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    data = OUT / f"meta_{args.variants}.parquet"
    if not data.exists():
        t = time.perf_counter()
        make_input(args.variants, data)
        print(f"input: {args.variants:,} variants written in {time.perf_counter() - t:.1f} s ({data})")
    (OUT / "ours.py").write_text(OURS)
    (OUT / "peer.py").write_text(PEER)
    ours = timed([sys.executable, str(OUT / "ours.py"), str(data)], OUT / "ours.log")
    print(f"crosscohort Manhattan+QQ: {ours[0]:.1f} s wall, peak RSS {ours[1]:.0f} MB, exit {ours[2]}")
    print("  " + [ln for ln in (OUT / "ours.log").read_text().splitlines() if ln.startswith("read")][0])
    if not args.skip_peer:
        peer = timed([sys.executable, str(OUT / "peer.py"), str(data), str(OUT / "peer")], OUT / "peer.log")
        print(f"matplotlib scatter of every point: {peer[0]:.1f} s wall, peak RSS {peer[1]:.0f} MB, "
              f"exit {peer[2]}")
        print(f"ratio (peer / crosscohort): wall {peer[0] / ours[0]:.2f}x, RSS {peer[1] / ours[1]:.2f}x")
    if not args.skip_report:
        meta_tsv = OUT / "meta.tsv.gz"
        cohort_tsv = [OUT / f"cohort{i}.tsv.gz" for i in (1, 2)]
        if not meta_tsv.exists():
            from crosscohort.contract.sumstats import write_sumstats

            full = pl.read_parquet(data)
            write_sumstats(full, meta_tsv)
            for i, path in enumerate(cohort_tsv):
                write_sumstats(full.sample(args.cohort_variants, seed=i).sort("chromosome", "base_pair_location"),
                               path)
            del full
        html = OUT / "report.html"
        cmd = [sys.executable, "-m", "crosscohort", "report", "--trait", "bench", "--meta", str(meta_tsv),
               *(a for i, p in enumerate(cohort_tsv) for a in ("--cohort", f"c{i + 1}={p}")), "--out", str(html)]
        rep = timed(cmd, OUT / "report.log")
        print(f"crosscohort report (meta {args.variants:,}, 2 cohorts x {args.cohort_variants:,}): "
              f"{rep[0]:.1f} s wall, peak RSS {rep[1]:.0f} MB, exit {rep[2]}, "
              f"HTML {html.stat().st_size / 1e6:.2f} MB" if html.exists() else "report failed")
    print(f"machine: {os.cpu_count()} cores; load average {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
