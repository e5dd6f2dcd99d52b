"""Time ``crosscohort clump`` against ``plink1.9 --clump`` on the same simulated fileset.

The input (written here, untimed) is PLINK 1 genotypes with LD blocks
(haplotypes copied along a Markov chain, as tests/test_compare_clump.py)
and GWAS-SSF summary statistics of a trait with causal variants every
``--causal-every`` variants; plink reads the same p-values as ``SNP P``.
Both tools run in one invocation of this script, one after the other,
under ``/usr/bin/time -v`` for wall time and peak RSS, and their clumps
are compared (index variants and member sets).

Usage::

    python benchmarks/bench_clump.py --samples 2000 --variants 100000
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import polars as pl
from bed_reader import to_bed

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _timing import timed  # noqa: E402  (benchmarks/ is not a package)


def make_input(work: Path, n: int, m: int, causal_every: int, seed: int = 1) -> None:
    """Write ``work/geno.{bed,bim,fam}``, ``work/sumstats.tsv`` and ``work/assoc.txt``."""
    rng = np.random.default_rng(seed)
    n_chrom = 2
    per = m // n_chrom
    geno = np.empty((n, m), dtype=np.float32)
    freq = rng.uniform(0.05, 0.5, m)
    prev = rng.random(2 * n) < freq[0]
    for j in range(m):
        # A new block every 50 variants; within, each variant copies the previous allele with p=0.97.
        fresh = rng.random(2 * n) < freq[j]
        keep = rng.random(2 * n) < (0.97 if j % 50 and j % per else 0.0)
        prev = np.where(keep, prev, fresh)
        geno[:, j] = prev[:n].astype(np.float32) + prev[n:]
    chrom = np.repeat(np.arange(1, n_chrom + 1), per)
    pos = np.tile(np.arange(1, per + 1) * 2_000 + 10_000, n_chrom)
    causal = np.arange(causal_every // 2, m, causal_every)
    y = geno[:, causal].astype(float) @ rng.choice([-0.2, 0.2], causal.size) + rng.normal(size=n)
    g = geno - geno.mean(axis=0)
    yc = y - y.mean()
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (g.T @ yc) / np.sqrt((g * g).sum(axis=0) * (yc @ yc))
    t = r * np.sqrt((n - 2) / (1 - r * r))
    from scipy import stats

    p = 2 * stats.t.sf(np.abs(t), n - 2)
    ids = [f"v{i}" for i in range(m)]
    a1 = rng.choice(["A", "C"], m)
    a2 = np.where(a1 == "A", "G", "T")
    to_bed(str(work / "geno.bed"), geno, count_A1=True,
           properties={"fid": [f"f{i}" for i in range(n)], "iid": [f"i{i}" for i in range(n)],
                       "chromosome": chrom.astype(str), "sid": ids, "bp_position": pos,
                       "allele_1": a1, "allele_2": a2, "cm_position": np.zeros(m)})
    ss = pl.DataFrame({"chromosome": chrom.astype(np.int64), "base_pair_location": pos.astype(np.int64),
                       "effect_allele": a1, "other_allele": a2, "p_value": p, "rsid": ids})
    ss.write_csv(work / "sumstats.tsv", separator="\t", float_precision=None)
    ss.select(pl.col("rsid").alias("SNP"), pl.col("p_value").alias("P")).write_csv(
        work / "assoc.txt", separator="\t", float_precision=None)


def _plink_sets(path: Path) -> dict[str, frozenset[str]]:
    out = {}
    lines = path.read_text().splitlines()
    head = lines[0].split()
    for line in lines[1:]:
        if line.strip():
            row = dict(zip(head, line.split(), strict=True))
            out[row["SNP"]] = frozenset() if row["SP2"] == "NONE" else frozenset(
                s.split("(")[0] for s in row["SP2"].split(","))
    return out


def _our_sets(path: Path, ss: Path) -> dict[str, frozenset[str]]:
    s = pl.read_csv(ss, separator="\t")
    vid = s.select(pl.concat_str(["chromosome", "base_pair_location", "other_allele", "effect_allele"],
                                 separator=":"), "rsid")
    to_rsid = dict(vid.iter_rows())
    out = {}
    for row in pl.read_csv(path, separator="\t").iter_rows(named=True):
        out[row["bim_id"]] = frozenset() if row["members"] == "NONE" else frozenset(
            to_rsid[v] for v in row["members"].split(","))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=2000)
    ap.add_argument("--variants", type=int, default=100_000)
    ap.add_argument("--causal-every", type=int, default=2_000)
    ap.add_argument("--p1", default="5e-8")
    ap.add_argument("--p2", default="1e-2")
    ap.add_argument("--r2", default="0.1")
    ap.add_argument("--kb", default="250")
    ap.add_argument("--work-dir", type=Path, help="default benchmarks/out/clump_<samples>x<variants>")
    args = ap.parse_args(argv)
    work = args.work_dir or HERE / "out" / f"clump_{args.samples}x{args.variants}"
    work.mkdir(parents=True, exist_ok=True)
    if not (work / "geno.bed").exists():
        make_input(work, args.samples, args.variants, args.causal_every)
    ours = [sys.executable, "-m", "crosscohort", "clump", "--bfile", str(work / "geno"), "--sumstats",
            str(work / "sumstats.tsv"), "--clump-p1", args.p1, "--clump-p2", args.p2, "--clump-r2", args.r2,
            "--clump-kb", args.kb, "--out", str(work / "ours.tsv")]
    plink = shutil.which("plink1.9") or "plink"
    theirs = [plink, "--bfile", "geno", "--clump", "assoc.txt", "--clump-p1", args.p1, "--clump-p2", args.p2,
              "--clump-r2", args.r2, "--clump-kb", args.kb, "--allow-no-sex", "--out", "plink"]
    load = os.getloadavg()[0]
    t_ours, rss_ours = timed(ours, HERE.parent)
    t_plink, rss_plink = timed(theirs, work)
    a, b = _our_sets(work / "ours.tsv", work / "sumstats.tsv"), _plink_sets(work / "plink.clumped")
    n_sig = int((pl.read_csv(work / "sumstats.tsv", separator="\t")["p_value"] <= float(args.p2)).sum())
    print(f"{args.samples:,} samples x {args.variants:,} variants ({n_sig:,} with p <= p2); "
          f"{os.cpu_count()} cores; load avg at start {load:.1f}")
    print(f"crosscohort clump  {t_ours:7.2f} s  {rss_ours:5.2f} GB  {len(a)} clumps")
    print(f"plink1.9 --clump   {t_plink:7.2f} s  {rss_plink:5.2f} GB  {len(b)} clumps")
    print(f"ratio ours/plink   {t_ours / t_plink:.2f}; identical clumps: {a == b}")
    return 0 if a == b else 1


if __name__ == "__main__":
    raise SystemExit(main())
