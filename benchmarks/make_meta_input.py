"""Write the meta-analysis benchmark's input: k cohorts x m variants in three tools' formats.

Each cohort holds ``m`` variants: ``overlap * m`` drawn from one shared pool
(the same variants in every cohort) and the rest its own, so with the
defaults 90 % of a cohort's variants are in every other cohort. Every row's
allele orientation is random (effect/other swapped with beta negated and
EAF mirrored), so harmonisation has real work to do. Alleles are
non-palindromic SNPs, so no tool has to guess a strand.

Files, tab-separated text, one set per cohort ``c{i}``:

- ``ours/c{i}.tsv``: GWAS-SSF (``crosscohort meta``).
- ``plink/c{i}.assoc``: ``CHR BP SNP A1 A2 BETA SE P`` (``plink1.9 --meta-analysis``).
- ``gwama/c{i}.txt``: ``MARKERNAME EA NEA BETA SE N EAF STRAND`` plus ``gwama/gwama.in``.

Usage::

    python benchmarks/make_meta_input.py --out-dir /tmp/metabench --variants 2000000
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import polars as pl
from scipy.special import ndtr

#: Non-palindromic SNP allele pairs (effect, other) before random orientation.
_PAIRS = np.array([("A", "G"), ("A", "C"), ("T", "G"), ("T", "C"), ("G", "A"), ("C", "A"),
                   ("G", "T"), ("C", "T")])


def make_cohorts(m: int, *, k: int = 3, overlap: float = 0.9, seed: int = 1) -> list[pl.DataFrame]:
    """``k`` GWAS-SSF frames of ``m`` variants each; ``overlap`` of them shared by all cohorts."""
    rng = np.random.default_rng(seed)
    n_shared = int(round(overlap * m))
    n_own = m - n_shared
    total = n_shared + k * n_own
    # One universe of variants; positions unique so the marker name identifies the variant.
    chrom = np.sort(rng.integers(1, 23, total))
    pos = np.empty(total, dtype=np.int64)
    for c in np.unique(chrom):
        sel = chrom == c
        pos[sel] = np.sort(rng.choice(250_000_000, sel.sum(), replace=False)) + 1
    pair = _PAIRS[rng.integers(0, len(_PAIRS), total)]
    truth = rng.normal(0, 0.02, total)
    eaf_true = rng.uniform(0.01, 0.99, total)
    ids = np.arange(total)
    perm = rng.permutation(total)
    shared = np.sort(perm[:n_shared])
    out = []
    for i in range(k):
        own = np.sort(perm[n_shared + i * n_own: n_shared + (i + 1) * n_own])
        idx = np.sort(np.concatenate([shared, own]))
        n = int(rng.integers(5_000, 50_000))
        se = 1.0 / np.sqrt(2 * n * eaf_true[idx] * (1 - eaf_true[idx])) * rng.uniform(0.9, 1.1, m)
        beta = truth[idx] + rng.normal(0, 1, m) * se
        eaf = np.clip(eaf_true[idx] + rng.normal(0, 0.01, m), 0.001, 0.999)
        swap = rng.random(m) < 0.5
        ea = np.where(swap, pair[idx, 1], pair[idx, 0])
        oa = np.where(swap, pair[idx, 0], pair[idx, 1])
        beta = np.where(swap, -beta, beta)
        eaf = np.where(swap, 1 - eaf, eaf)
        p = 2 * ndtr(-np.abs(beta / se))
        out.append(pl.DataFrame({
            "chromosome": chrom[idx], "base_pair_location": pos[idx],
            "effect_allele": ea, "other_allele": oa, "beta": beta, "standard_error": se,
            "effect_allele_frequency": eaf, "p_value": p, "n": np.full(m, n, dtype=np.int64),
        }).with_columns(pl.concat_str([pl.lit("rs"), pl.Series(ids[idx]).cast(pl.String)])
                        .alias("rsid")))
    return out


def write_inputs(cohorts: list[pl.DataFrame], out_dir: Path) -> None:
    """Write every cohort in our, plink 1.9's and GWAMA's format under ``out_dir``."""
    for sub in ("ours", "plink", "gwama"):
        (out_dir / sub).mkdir(parents=True, exist_ok=True)
    for i, c in enumerate(cohorts):
        c.write_csv(out_dir / "ours" / f"c{i}.tsv", separator="\t")
        c.select(
            pl.col("chromosome").alias("CHR"), pl.col("base_pair_location").alias("BP"),
            pl.col("rsid").alias("SNP"), pl.col("effect_allele").alias("A1"),
            pl.col("other_allele").alias("A2"), pl.col("beta").alias("BETA"),
            pl.col("standard_error").alias("SE"), pl.col("p_value").alias("P"),
        ).write_csv(out_dir / "plink" / f"c{i}.assoc", separator="\t")
        c.select(
            pl.col("rsid").alias("MARKERNAME"), pl.col("effect_allele").alias("EA"),
            pl.col("other_allele").alias("NEA"), pl.col("beta").alias("BETA"),
            pl.col("standard_error").alias("SE"), pl.col("n").alias("N"),
            pl.col("effect_allele_frequency").alias("EAF"), pl.lit("+").alias("STRAND"),
        ).write_csv(out_dir / "gwama" / f"c{i}.txt", separator="\t")
    (out_dir / "gwama" / "gwama.in").write_text(
        "".join(f"c{i}.txt\n" for i in range(len(cohorts))))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out-dir", type=Path, required=True)
    ap.add_argument("--variants", type=int, default=2_000_000, help="variants per cohort")
    ap.add_argument("--cohorts", type=int, default=3)
    ap.add_argument("--overlap", type=float, default=0.9, help="share of variants in every cohort")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    write_inputs(make_cohorts(args.variants, k=args.cohorts, overlap=args.overlap, seed=args.seed),
                 args.out_dir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
