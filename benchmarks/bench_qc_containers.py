"""Time ``crosscohort qc`` and ``crosscohort pca`` on one dataset in each genotype container, and plink2 on the .pgen.

Input: ``plink2 --dummy N M 0.01 --seed 1`` (1 % missing calls; written to
benchmarks/out/qc_containers/), converted by plink2 to .pgen, BGEN v1.2
(8-bit, ref-first) and bgzipped VCF (IIDs only; FIDs from --psam). QC: the
workflow's thresholds (geno/mind 0.1, MAF 0.01, MAC 20, HWE 1e-15) and the
KING cutoff 0.0884, plink2 with the same flags in one run. PCA: 5 PCs after
``--indep-pairwise 200 50 0.2``, plink2 in one run on the QC'd sets. Prints,
per run, wall and CPU seconds (the child's ``ru_utime + ru_stime``), the
wall and CPU ratio to plink2 and peak RSS, and the 1-minute load average
before and after.

    python benchmarks/bench_qc_containers.py [N] [M]    # default 2000 20000
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import measured  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    m = int(sys.argv[2]) if len(sys.argv) > 2 else 20000
    out = REPO / "benchmarks" / "out" / "qc_containers"
    out.mkdir(parents=True, exist_ok=True)

    def plink2(*args: str) -> None:
        subprocess.run(
            ["plink2", "--threads", "2", *args], cwd=out, check=True, capture_output=True
        )

    plink2("--dummy", str(n), str(m), "0.01", "--seed", "1", "--make-bed", "--out", "d")
    plink2("--bfile", "d", "--make-pgen", "--out", "d")
    plink2("--bfile", "d", "--export", "bgen-1.2", "bits=8", "ref-first", "--out", "d")
    plink2("--bfile", "d", "--export", "vcf", "bgz", "id-paste=iid", "--out", "d")
    qc_flags = ["--geno", "0.1", "--mind", "0.1", "--maf", "0.01", "--mac", "20", "--hwe", "1e-15"]
    containers = {
        "--bfile": ["--bfile", "d"],
        "--pfile": ["--pfile", "d"],
        "--bgen": ["--bgen", "d.bgen", "--sample", "d.sample"],
        "--vcf (.vcf.gz, GT)": ["--vcf", "d.vcf.gz", "--psam", "d.psam"],
    }
    ours = [
        "env",
        f"PYTHONPATH={REPO}",
        "OPENBLAS_NUM_THREADS=2",
        sys.executable,
        "-m",
        "crosscohort",
    ]
    stages = {
        "qc": (
            [
                "plink2",
                "--threads",
                "2",
                "--pfile",
                "d",
                *qc_flags,
                "--king-cutoff",
                "0.0884",
                "--write-snplist",
                "--write-samples",
                "--out",
                "peer_qc",
            ],
            lambda g: [*ours, "qc", *g, "--cohort", "d", "--out-prefix", "ours_qc"],
        ),
        "pca": (
            [
                "plink2",
                "--threads",
                "2",
                "--pfile",
                "d",
                "--keep",
                "ours_qc.samples.keep",
                "--extract",
                "ours_qc.variants.keep",
                "--maf",
                "0.05",
                "--indep-pairwise",
                "200",
                "50",
                "0.2",
                "--out",
                "peer_prune",
            ],
            lambda g: [
                *ours,
                "pca",
                *g,
                "--keep",
                "ours_qc.samples.keep",
                "--extract",
                "ours_qc.variants.keep",
                "--n-pcs",
                "5",
                "--out",
                "ours.eigenvec",
            ],
        ),
    }
    print(
        f"{n} samples x {m} variants; wall / CPU seconds, ratios to plink2 on the .pgen, peak RSS"
    )
    for stage, (peer, cmd) in stages.items():
        runs = {f"plink2 (.pgen) {stage}": peer} | {
            f"crosscohort {stage} {k}": cmd(v) for k, v in containers.items()
        }
        base = None
        for name, c in runs.items():
            load0 = os.getloadavg()[0]
            r = measured(c, out, log=out / f"{name.replace(' ', '_')}.log", rss_cap_gb=8)
            if r.returncode != 0:
                raise SystemExit(f"{name} failed: see {out}")
            if stage == "pca" and name.startswith("plink2"):
                # the PCA itself on the pruned set, timed with the pruning
                r2 = measured(
                    [
                        "plink2",
                        "--threads",
                        "2",
                        "--pfile",
                        "d",
                        "--keep",
                        "ours_qc.samples.keep",
                        "--extract",
                        "peer_prune.prune.in",
                        "--pca",
                        "5",
                        "--out",
                        "peer_pca",
                    ],
                    out,
                    log=out / "plink2_pca.log",
                )
                r = type(r)(
                    r.wall + r2.wall,
                    r.cpu_user + r2.cpu_user,
                    r.cpu_sys + r2.cpu_sys,
                    max(r.rss_gb, r2.rss_gb),
                    0,
                    False,
                )
            base = base or r
            print(
                f"{name:38s} wall {r.wall:7.2f} s  CPU {r.cpu:7.2f} s  ratio wall {r.wall / base.wall:6.2f}x"
                f"  CPU {r.cpu / base.cpu:6.2f}x  peak RSS {r.rss_gb * 1024:6.0f} MB"
                f"  load {load0:.1f} -> {os.getloadavg()[0]:.1f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
