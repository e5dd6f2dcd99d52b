"""Harmonisation speed and memory: ``crosscohort harmonise`` against GWAMA and plink 1.9 on one input.

Writes K cohorts x M text rows (default 3 x 2,000,000) with random
orientations (40 % allele swaps, 10 % strand flips of non-palindromic SNPs,
5 % palindromes, 5 % indels, mixed chromosome spellings) in one whitespace
layout all three tools read (``CHR BP SNP A1 A2 BETA SE P N EAF``), plus a
reference panel, then times in one run:

- ``crosscohort harmonise`` without a reference (canonical allele order; the
  same job as the peers: align cohorts to each other),
- ``crosscohort harmonise --reference`` (alignment to the panel),
- ``GWAMA -qt`` (reads, aligns to the first study, meta-analyses),
- ``plink1.9 --meta-analysis ... + qt`` (reads, aligns, meta-analyses).

Each command runs under ``/usr/bin/time -v``; wall time, CPU time (user +
system, the fairer figure on a shared machine), peak RSS and the 1-minute
load average before and after are printed, with the ratio to ours, and the size of the columns we keep
(polars ``estimated_size`` of the harmonised tables) for the memory rule
"peak RSS at most about twice the kept columns".

Usage: ``python benchmarks/bench_harmonise.py [--rows 2000000] [--cohorts 3] [--workdir DIR]
[--reuse] [--no-peers]``
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

COMP = np.array(list("TGCA"))  # complement of ACGT by index
BASES = np.array(list("ACGT"))


def make_panel(m: int, rng: np.random.Generator) -> pl.DataFrame:
    chrom = np.sort(rng.integers(1, 24, m))
    pos = np.empty(m, dtype=np.int64)
    for c in np.unique(chrom):
        idx = np.flatnonzero(chrom == c)
        pos[idx] = np.sort(rng.choice(np.arange(1, 250_000_000), size=idx.size, replace=False))
    r = rng.integers(0, 4, m)
    a = (r + rng.integers(1, 4, m)) % 4
    # non-palindromic by default; 5 % palindromes (A/T, C/G)
    pal = rng.random(m) < 0.05
    a = np.where(pal, 3 - r, np.where(a == 3 - r, (a + 1) % 4, a))
    a = np.where(~pal & (a == r), (r + 1) % 4, a)
    ref, alt = BASES[r].astype(object), BASES[a].astype(object)
    indel = (rng.random(m) < 0.05) & ~pal
    alt = np.where(indel, ref + BASES[rng.integers(0, 4, m)] + BASES[rng.integers(0, 4, m)], alt)
    return pl.DataFrame({
        "chromosome": chrom, "base_pair_location": pos, "ref": ref.astype(str),
        "alt": alt.astype(str), "alt_frequency": rng.uniform(0.01, 0.35, m),
        "rsid": [f"rs{i}" for i in range(1, m + 1)],
    })


def make_cohort(panel: pl.DataFrame, rng: np.random.Generator) -> pl.DataFrame:
    m = panel.height
    ref, alt = panel["ref"].to_numpy(), panel["alt"].to_numpy()
    snp = (panel["ref"].str.len_chars() == 1).to_numpy() & (panel["alt"].str.len_chars() == 1).to_numpy()
    idx = {b: i for i, b in enumerate("ACGT")}
    pal = snp & np.array([idx.get(x, 0) + idx.get(y, 0) == 3 for x, y in zip(ref, alt, strict=True)])
    swap = rng.random(m) < 0.4
    flip = snp & ~pal & (rng.random(m) < 0.1)

    def comp(x: np.ndarray) -> np.ndarray:
        return np.where(flip, np.array([COMP[idx[b]] if len(b) == 1 else b for b in x]), x)

    r2, a2 = comp(ref), comp(alt)
    beta = rng.normal(0, 0.05, m)
    se = rng.uniform(0.01, 0.1, m)
    eaf = panel["alt_frequency"].to_numpy()
    from scipy.stats import norm

    spell = np.array(["", "chr"])[rng.integers(0, 2, m)]
    return pl.DataFrame({
        "CHR": np.char.add(spell.astype(str), panel["chromosome"].cast(pl.String).to_numpy().astype(str)),
        "BP": panel["base_pair_location"], "SNP": panel["rsid"],
        "A1": np.where(swap, r2, a2), "A2": np.where(swap, a2, r2),
        "BETA": np.where(swap, -beta, beta), "SE": se,
        "P": 2 * norm.sf(np.abs(beta / se)), "N": rng.integers(1000, 50_000, m),
        "EAF": np.where(swap, 1 - eaf, eaf),
    })


def timed(cmd: list[str], cwd: Path) -> tuple[float, float, float, str]:
    """Wall s, peak RSS (MB), CPU s (user + system) of ``cmd`` under /usr/bin/time -v, and loads."""
    import os

    before = os.getloadavg()[0]
    t0 = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-v", *cmd], cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr).group(1)) / 1024
    cpu = sum(float(re.search(rf"{k} time \(seconds\): (\S+)", proc.stderr).group(1))
              for k in ("User", "System"))
    return wall, rss, cpu, f"{before:.1f} -> {os.getloadavg()[0]:.1f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--cohorts", type=int, default=3)
    ap.add_argument("--workdir", type=Path)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--reuse", action="store_true",
                    help="keep the input files already in --workdir (same rows, cohorts and seed)")
    ap.add_argument("--no-peers", action="store_true",
                    help="time only crosscohort (e.g. the same inputs before/after a change)")
    args = ap.parse_args(argv)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench_harmonise_"))
    work.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    t0 = time.perf_counter()
    files = [f"c{k}.assoc" for k in range(args.cohorts)]
    if not (args.reuse and all((work / f).exists() for f in [*files, "panel.tsv"])):
        panel = make_panel(args.rows, rng)
        panel.write_csv(work / "panel.tsv", separator="\t")
        for f in files:
            make_cohort(panel, rng).write_csv(work / f, separator=" ")
        del panel
    (work / "gwama.in").write_text("".join(f + "\n" for f in files))
    size_mb = sum((work / f).stat().st_size for f in files) / 2**20
    print(f"input: {args.cohorts} x {args.rows:,} rows, {size_mb:.0f} MB of text "
          f"(written in {time.perf_counter() - t0:.0f} s) in {work}")

    ours = [sys.executable, "-m", "crosscohort", "harmonise", "--format", "auto"]
    cohorts = [f"c{k}={f}" for k, f in enumerate(files)]
    runs = {
        "crosscohort harmonise (no reference)": [*ours, "--out-dir", "h_noref", *cohorts],
        "crosscohort harmonise --reference": [*ours, "--reference", "panel.tsv", "--out-dir",
                                              "h_ref", *cohorts],
    }
    gwama = shutil.which("GWAMA") or shutil.which("gwama")
    plink = shutil.which("plink1.9") or shutil.which("plink")
    if gwama and not args.no_peers:
        runs["GWAMA -qt"] = [gwama, "-i", "gwama.in", "-qt", "--name_marker", "SNP", "--name_ea",
                             "A1", "--name_nea", "A2", "-o", "gwama_out"]
    if plink and not args.no_peers:
        runs["plink1.9 --meta-analysis + qt"] = [plink, "--meta-analysis", *files, "+", "qt",
                                                 "--out", "plink_out"]
    results = {}
    for name, cmd in runs.items():
        results[name] = timed(cmd, work)
        print(f"  {name}: {results[name][0]:.1f} s, {results[name][1]:.0f} MB", flush=True)
    kept = sum(pl.read_csv(work / "h_ref" / f"c{k}.tsv.gz", separator="\t", infer_schema=False)
               .pipe(lambda d: d.cast({c: pl.Float64 for c in ("beta", "standard_error", "p_value",
                                                                "neg_log_10_p_value",
                                                                "effect_allele_frequency")})
                     .cast({c: pl.Int64 for c in ("chromosome", "base_pair_location", "n")})
                     # Flags as the booleans they are in memory, not as text.
                     .with_columns(pl.col(c) == "true" for c in d.columns if c.startswith("flag_")))
               .estimated_size() for k in range(args.cohorts)) / 2**20
    base = results["crosscohort harmonise (no reference)"]
    print("\n| command | wall (s) | CPU (s) | ratio to ours (no ref), wall / CPU | peak RSS (MB) "
          "| RSS / kept columns | load before -> after |")
    print("|---|---|---|---|---|---|---|")
    for name, (wall, rss, cpu, load) in results.items():
        print(f"| {name} | {wall:.1f} | {cpu:.1f} | {wall / base[0]:.2f} / {cpu / base[2]:.2f} "
              f"| {rss:.0f} | {rss / kept:.2f} | {load} |")
    print(f"\nkept columns of the {args.cohorts} harmonised tables (polars estimated_size): {kept:.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
