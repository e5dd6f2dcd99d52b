"""Step 1 of whole-genome regression at biobank-test scale against BOLT-LMM, and memory flatness in M.

Input: ``benchmarks/make_assoc_input.py`` (plink2 --dummy, 20,000 samples x
100,000 and 200,000 variants, 1 % missing calls in half the variants), with
the variants spread over 10 chromosomes (a copy of the ``.bim``; ``.bed`` and
``.fam`` linked) so that both tools compute LOCO predictions. Times, as child
processes under GNU time with the same number of threads:

- ``crosscohort wgr --bsize 1000`` on M and 2M variants (peak RSS should not grow with M);
- ``bolt --lmmInfOnly --LDscoresUseChip`` on M variants (BOLT's step 1 and 2 together;
  its streaming association pass is a few seconds of it).

usage: python benchmarks/bench_wgr_scale.py [--samples 20000 --variants 100000 --threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _timing import measured  # noqa: E402
from make_assoc_input import make_input  # noqa: E402

OUT = Path(__file__).resolve().parent / "out"


def _ten_chromosomes(src: Path, dst: Path, m: int) -> Path:
    """A fileset ``dst`` with ``src``'s .bed/.fam and a .bim whose M variants lie on 10 chromosomes."""
    for ext in (".bed", ".fam"):
        link = dst.with_suffix(ext)
        if not link.exists():
            os.symlink(src.with_suffix(ext).resolve(), link)
    per = -(-m // 10)
    with open(src.with_suffix(".bim")) as fi, open(dst.with_suffix(".bim"), "w") as fo:
        for i, line in enumerate(fi):
            f = line.split("\t") if "\t" in line else line.split()
            f[0] = str(i // per + 1)
            f[3] = str((i % per + 1) * 100)
            fo.write("\t".join(x.strip() for x in f) + "\n")
    return dst


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=20_000)
    ap.add_argument("--variants", type=int, default=100_000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--bsize", type=int, default=1000)
    ap.add_argument("--skip-bolt", action="store_true")
    ap.add_argument("--skip-2m", action="store_true", help="time M only (no memory-flatness run at 2M)")
    args = ap.parse_args()
    n, m = args.samples, args.variants
    if args.skip_2m and (OUT / f"assoc_{n}x{m}.bed").exists() and (OUT / f"assoc_{n}.pheno.tsv").exists():
        pheno, covar = OUT / f"assoc_{n}.pheno.tsv", OUT / f"assoc_{n}.covar.tsv"
    else:
        paths = make_input(samples=n, variants=m)  # M and 2M filesets
        pheno, covar = paths["pheno"], paths["covar"]
    wdir = OUT / "wgr_scale"
    wdir.mkdir(parents=True, exist_ok=True)
    rec: dict = {"samples": n, "variants": m, "threads": args.threads, "bsize": args.bsize}
    py = [sys.executable, "-m", "crosscohort", "wgr"]

    def record(m_: object) -> dict:
        return {"wall_s": round(m_.wall, 1), "cpu_s": round(m_.cpu, 1), "peak_rss_gb": round(m_.rss_gb, 3),
                "returncode": m_.returncode}

    for k, mm in (("M", m), ("2M", 2 * m)):
        if k == "2M" and args.skip_2m:
            continue
        fs = _ten_chromosomes(OUT / f"assoc_{n}x{mm}", wdir / f"geno_{n}x{mm}", mm)
        rec[f"wgr_step1_{k}"] = record(measured(
            [*py, "--bfile", str(fs), "--pheno", str(pheno), "--pheno-name", "qt", "--covar", str(covar),
             "--bsize", str(args.bsize), "--threads", str(args.threads), "--out", str(wdir / f"fit_{n}_{k}")],
            wdir, log=wdir / f"wgr_{n}_{k}.log"))
        print(k, rec[f"wgr_step1_{k}"], file=sys.stderr, flush=True)
    if not args.skip_bolt:
        fs = wdir / f"geno_{n}x{m}"
        bp, bc = wdir / "bolt.pheno", wdir / "bolt.covar"
        bp.write_text(Path(pheno).read_text().replace("#FID", "FID", 1))
        bc.write_text(Path(covar).read_text().replace("#FID", "FID", 1))
        rec["bolt_M"] = record(measured(
            ["bolt", f"--bfile={fs}", f"--phenoFile={bp}", "--phenoCol=qt", f"--covarFile={bc}",
             "--qCovarCol=age", "--qCovarCol=pc{1:3}", "--covarCol=sex", "--lmmInfOnly", "--LDscoresUseChip",
             f"--statsFile={wdir / f'bolt_{n}.stats'}", f"--numThreads={args.threads}"],
            wdir, log=wdir / f"bolt_{n}.log"))
        rec["ratio_wgr_over_bolt"] = {
            "wall": rec["wgr_step1_M"]["wall_s"] / rec["bolt_M"]["wall_s"],
            "cpu": rec["wgr_step1_M"]["cpu_s"] / rec["bolt_M"]["cpu_s"],
        }
    print(json.dumps(rec, indent=1))


if __name__ == "__main__":
    main()
