"""Time ``crosscohort assoc`` on one dataset in each genotype container, and plink2 --glm on the .pgen.

Input: ``plink2 --dummy N M 0.01 scalar-pheno`` (written to benchmarks/out/formats/), converted by
plink2 to .pgen, BGEN v1.2 (8-bit, ref-first) and bgzipped VCF. Every run: linear model, 2 threads.
Prints wall time, the ratio to plink2 --glm on the .pgen and peak RSS (GNU time -v).

    python benchmarks/bench_genotype_formats.py [N] [M]    # default 5000 20000
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import timed  # noqa: E402


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    m = int(sys.argv[2]) if len(sys.argv) > 2 else 20000
    out = Path(__file__).resolve().parent / "out" / "formats"
    out.mkdir(parents=True, exist_ok=True)

    def plink2(*args: str) -> None:
        subprocess.run(["plink2", "--threads", "2", *args], cwd=out, check=True, capture_output=True)

    plink2("--dummy", str(n), str(m), "0.01", "scalar-pheno", "--make-bed", "--out", "d")
    plink2("--bfile", "d", "--make-pgen", "--out", "d")
    plink2("--bfile", "d", "--export", "bgen-1.2", "bits=8", "ref-first", "--out", "d")
    plink2("--bfile", "d", "--export", "vcf", "bgz", "--out", "d")
    fam = (out / "d.fam").read_text().split("\n")
    (out / "p.tsv").write_text("#FID\tIID\ty\n" + "".join(
        f"{r.split()[0]}\t{r.split()[1]}\t{r.split()[5]}\n" for r in fam if r.strip()))
    runs = {
        "plink2 --glm (.pgen)": ["plink2", "--threads", "2", "--pfile", "d", "--pheno", "p.tsv",
                                 "--glm", "allow-no-covars", "--out", "peer"],
        "crosscohort --bfile": ["--bfile", "d"],
        "crosscohort --pfile": ["--pfile", "d"],
        "crosscohort --bgen": ["--bgen", "d.bgen", "--sample", "d.sample"],
        "crosscohort --vcf (.vcf.gz, GT)": ["--vcf", "d.vcf.gz"],
    }
    base = None
    print(f"{n} samples x {m} variants, linear, 2 threads")
    for name, args in runs.items():
        # PYTHONPATH: this checkout's package, whatever copy pip installed.
        cmd = args if args[0] == "plink2" else [
            "env", f"PYTHONPATH={Path(__file__).resolve().parents[1]}", sys.executable, "-m", "crosscohort", "assoc", *args, "--pheno", "p.tsv", "--threads", "2",
            "--out", "ours.tsv"]
        wall, rss = timed(cmd, out)
        base = base or wall
        print(f"{name:34s} wall {wall:7.2f} s  ratio {wall / base:5.2f}x  peak RSS {rss * 1024:7.0f} MB")


if __name__ == "__main__":
    main()
