"""Generate the association benchmark input: one PLINK 1 fileset, phenotypes and 5 covariates.

Writes into ``benchmarks/out/`` (gitignored)::

    assoc_{N}x{M}.bed/.bim/.fam      M variants (the benchmark's size)
    assoc_{N}x{2M}.bed/.bim/.fam     the same M variants followed by M more (memory flatness)
    assoc_{N}.pheno.tsv              #FID IID qt bt  (bt coded 1/2, 2 = case)
    assoc_{N}.covar.tsv              #FID IID age sex pc1 pc2 pc3

Genotypes come from ``plink2 --dummy`` (random allele frequencies; half the
variants with 1% missing calls, so both the complete-case and the
missing-call paths of each tool are timed). The M-variant fileset is the
first M variants of the 2M one, cut from the variant-major ``.bed`` bytes.
Phenotypes depend on the covariates (as real traits do, so the logistic null
model is not trivial); the dummy genotypes have no effect.

Usage::

    python benchmarks/make_assoc_input.py [--samples 20000] [--variants 100000] [--seed 1]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent / "out"


def _dummy(plink2: str, n: int, m: int, prefix: Path, seed: int) -> None:
    # "0,0.01": each variant's missing-call rate is drawn from {0, 1%}.
    cmd = [plink2, "--dummy", str(n), str(m), "0,0.01", "acgt", "--seed", str(seed),
           "--make-bed", "--threads", "2", "--out", str(prefix)]
    subprocess.run(cmd, check=True, capture_output=True)
    print("ran:", " ".join(cmd), file=sys.stderr)


def _head(src: Path, dst: Path, n: int, m: int) -> None:
    """Copy the first ``m`` variants of fileset ``src`` to ``dst``."""
    per_variant = (n + 3) // 4
    with open(src.with_suffix(".bed"), "rb") as fi, open(dst.with_suffix(".bed"), "wb") as fo:
        remaining = 3 + m * per_variant
        while remaining:
            block = fi.read(min(remaining, 1 << 24))
            fo.write(block)
            remaining -= len(block)
    with open(src.with_suffix(".bim")) as fi, open(dst.with_suffix(".bim"), "w") as fo:
        for i, line in enumerate(fi):
            if i == m:
                break
            fo.write(line)
    shutil.copyfile(src.with_suffix(".fam"), dst.with_suffix(".fam"))


def _tables(fam: Path, n: int, out_dir: Path, seed: int) -> tuple[Path, Path]:
    rng = np.random.default_rng(seed)
    ids = [line.split()[:2] for line in fam.read_text().splitlines()]
    assert len(ids) == n, (len(ids), n)
    age = rng.normal(55, 8, n)
    sex = rng.integers(1, 3, n).astype(float)
    pcs = rng.normal(size=(n, 3))
    eta = 0.02 * (age - 55) + 0.2 * (sex - 1.5) + pcs @ np.array([0.3, -0.2, 0.1])
    qt = eta + rng.normal(size=n)
    bt = 1 + (rng.random(n) < 1 / (1 + np.exp(-(-1.4 + eta)))).astype(int)  # ~20% cases
    pheno = out_dir / f"assoc_{n}.pheno.tsv"
    covar = out_dir / f"assoc_{n}.covar.tsv"
    with open(pheno, "w") as fh:
        fh.write("#FID\tIID\tqt\tbt\n")
        for (f, i), q, b in zip(ids, qt, bt, strict=True):
            fh.write(f"{f}\t{i}\t{q:.6f}\t{b}\n")
    with open(covar, "w") as fh:
        fh.write("#FID\tIID\tage\tsex\tpc1\tpc2\tpc3\n")
        for (f, i), a, s, p in zip(ids, age, sex, pcs, strict=True):
            fh.write(f"{f}\t{i}\t{a:.3f}\t{s:.0f}\t{p[0]:.6f}\t{p[1]:.6f}\t{p[2]:.6f}\n")
    return pheno, covar


def make_input(*, samples: int = 20_000, variants: int = 100_000, seed: int = 1,
               out_dir: Path = OUT, plink2: str = "plink2") -> dict[str, Path]:
    """Write the benchmark filesets and tables (skipping those present); returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    big = out_dir / f"assoc_{samples}x{2 * variants}"
    small = out_dir / f"assoc_{samples}x{variants}"
    if not big.with_suffix(".bed").exists():
        _dummy(plink2, samples, 2 * variants, big, seed)
    if not small.with_suffix(".bed").exists():
        _head(big, small, samples, variants)
    pheno, covar = _tables(big.with_suffix(".fam"), samples, out_dir, seed)
    return {"bfile": small, "bfile_2x": big, "pheno": pheno, "covar": covar}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=int, default=20_000)
    ap.add_argument("--variants", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out-dir", type=Path, default=OUT)
    ap.add_argument("--plink2", default=shutil.which("plink2") or "plink2")
    a = ap.parse_args(argv)
    paths = make_input(samples=a.samples, variants=a.variants, seed=a.seed, out_dir=a.out_dir,
                       plink2=a.plink2)
    for k, v in paths.items():
        print(f"{k}\t{v}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
