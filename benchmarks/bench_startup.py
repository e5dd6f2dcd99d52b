"""Start-up cost of every command, and ``crosscohort assoc`` on 100 variants against ``plink2 --glm``.

A scatter of small jobs pays each command's start-up every time (issue 19:
target <= 0.5 s start-up, ``assoc`` on 100 variants <= 1 s). Measured, each
``--repeat`` times, median reported, as wall and CPU (user + system) seconds
(CPU is the fairer figure on a shared machine, whose load average is printed):

* ``crosscohort COMMAND --help``: the parser and the command's module;
* ``import`` of the modules a command's run imports (its start-up before it
  reads any input), in a fresh interpreter;
* ``crosscohort assoc`` on 2,000 samples x 100 variants (``plink2 --dummy``),
  one quantitative and one case/control trait (and the quantitative alone),
  2 covariates, 1 thread, with ``plink2 --glm`` on the same files; and
  ``crosscohort qc`` on the same fileset.

``--baseline DIR`` runs the same with ``PYTHONPATH=DIR`` (e.g. an earlier
commit's ``git archive COMMIT crosscohort | tar -x -C DIR``) for a before/after.

Usage::

    python benchmarks/bench_startup.py [--repeat 5] [--baseline DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
OUT = HERE / "out" / "startup"
sys.path.insert(0, str(HERE))

from _timing import measured  # noqa: E402

#: What each command's run imports before it reads its input: its module and the stage code
#: its run imports lazily (so that --help does not).
RUN_IMPORTS = {
    "simulate": "crosscohort.commands.simulate, crosscohort.demo.simulate",
    "qc": "crosscohort.commands.qc, crosscohort.tre.qc",
    "pca": "crosscohort.commands.pca, crosscohort.tre.pca",
    "assoc": "crosscohort.commands.assoc, crosscohort.tre.association, crosscohort.contract.sumstats",
    "export": "crosscohort.commands.export, crosscohort.tre.gate.bundle, crosscohort.contract.release",
    "verify": "crosscohort.commands.verify, crosscohort.central.verify, crosscohort.contract.release",
    "harmonise": "crosscohort.commands.harmonise, crosscohort.central.harmonise.readers",
    "meta": "crosscohort.commands.meta, crosscohort.central.meta, crosscohort.central.meta.stream, crosscohort.contract.sumstats",
    "pool": "crosscohort.commands.pool, crosscohort.demo.pool",
    "compare": "crosscohort.commands.compare, crosscohort.central.compare, crosscohort.contract.sumstats",
    "clump": "crosscohort.commands.clump, crosscohort.demo.clump",
    "report": "crosscohort.commands.report, crosscohort.central.report",
}


def _input(plink2: str) -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    prefix = OUT / "d"
    if not prefix.with_suffix(".bed").exists():
        subprocess.run([plink2, "--dummy", "2000", "100", "0,0.01", "acgt", "--seed", "1", "--make-bed",
                        "--out", str(prefix)], check=True, capture_output=True)
        import numpy as np

        rng = np.random.default_rng(1)
        fam = [line.split()[:2] for line in prefix.with_suffix(".fam").read_text().splitlines()]
        pheno = ["#FID\tIID\tqt\tbt"] + [f"{f}\t{i}\t{rng.normal():.4f}\t{rng.integers(1, 3)}" for f, i in fam]
        covar = ["#FID\tIID\tage\tpc1"] + [f"{f}\t{i}\t{rng.normal(50, 8):.2f}\t{rng.normal():.4f}"
                                            for f, i in fam]
        (OUT / "pheno.tsv").write_text("\n".join(pheno) + "\n")
        (OUT / "covar.tsv").write_text("\n".join(covar) + "\n")
    return prefix


def _median(cmd: list[str], repeat: int, env: dict[str, str]) -> tuple[float, float]:
    walls, cpus = [], []
    old = dict(os.environ)
    os.environ.update(env)
    try:
        for _ in range(repeat):
            # cwd outside the repository: sys.path[0] is the cwd, which would shadow PYTHONPATH
            m = measured(cmd, OUT, log=OUT / "last.log")
            if m.returncode != 0:
                raise SystemExit(f"{' '.join(cmd)} failed: {(OUT / 'last.log').read_text()[-2000:]}")
            walls.append(m.wall)
            cpus.append(m.cpu)
    finally:
        os.environ.clear()
        os.environ.update(old)
    return statistics.median(walls), statistics.median(cpus)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--baseline", type=Path, help="a directory holding an earlier crosscohort package")
    args = parser.parse_args(argv)
    plink2 = shutil.which("plink2")
    if plink2 is None:
        raise SystemExit("plink2 not on PATH")
    prefix = _input(plink2)
    py = sys.executable
    runs = {"ours": {"PYTHONPATH": str(REPO)}}
    if args.baseline:
        runs["baseline"] = {"PYTHONPATH": str(args.baseline.resolve())}
    print(f"load average before: {os.getloadavg()}")
    assoc = [py, "-m", "crosscohort", "assoc", "--bfile", str(prefix), "--pheno", str(OUT / "pheno.tsv"),
             "--covar", str(OUT / "covar.tsv"), "--threads", "1", "--out", str(OUT / "o.{trait}.tsv")]
    glm = [plink2, "--bfile", str(prefix), "--pheno", str(OUT / "pheno.tsv"), "--covar", str(OUT / "covar.tsv"),
           "--glm", "hide-covar", "omit-ref", "--threads", "1", "--out", str(OUT / "plink2")]
    qc = [py, "-m", "crosscohort", "qc", "--bfile", str(prefix), "--king-cutoff", "none", "--out-prefix",
          str(OUT / "qc")]
    assoc_qt = [*assoc[:-2], "--pheno-name", "qt", *assoc[-2:]]
    for env in runs.values():  # numba's cache written once, not timed
        _median(assoc, 1, env)
        _median(qc, 1, env)
    print("\n| run | assoc qt+bt wall s | CPU s | assoc qt wall s | CPU s | qc wall s | CPU s "
          "| plink2 --glm wall s | CPU s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, env in runs.items():
        w, c = _median(assoc, args.repeat, env)
        qw, qcpu = _median(assoc_qt, args.repeat, env)
        kw, kc = _median(qc, args.repeat, env)
        pw, pc = _median(glm, args.repeat, env)
        print(f"| {name} | {w:.2f} | {c:.2f} | {qw:.2f} | {qcpu:.2f} | {kw:.2f} | {kc:.2f} | {pw:.2f} | {pc:.2f} |")
    print("\n| command | run | --help wall s | CPU s | run imports wall s | CPU s |")
    print("|---|---|---|---|---|---|")
    for cmd, mods in RUN_IMPORTS.items():
        for name, env in runs.items():
            hw, hc = _median([py, "-m", "crosscohort", cmd, "--help"], args.repeat, env)
            iw, ic = _median([py, "-c", f"import {mods}"], args.repeat, env)
            print(f"| {cmd} | {name} | {hw:.2f} | {hc:.2f} | {iw:.2f} | {ic:.2f} |")
    print(f"\nload average after: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
