"""The export gate at biobank scale, before and after a change: same input, same command.

``crosscohort export`` on the 10,000,000-row binary-trait table of
``benchmarks/make_scale_input.py --what gate`` (``<scale>/gate/cad.tsv.gz``), with
100,000 sample IDs, once per code tree and ID style, as the export rule calls it
(the config's gate rules). A code tree is a git revision, extracted with ``git
archive`` into ``benchmarks/out/gate/src-<rev>/``, put on ``PYTHONPATH`` and used
as the child's working directory, or ``.`` for the working tree. ID styles: ``plink`` (``per0`` .. ``per99999``,
FID = IID, as ``plink2 --dummy`` names them) and ``numeric`` (``1`` .. ``100000``
with FID ``0``, PLINK's common convention: every row of ``variant_id`` and
``rsid`` then holds a token that is an ID, the slowest case of the whole-token
search).

Each run is a child process measured by ``os.wait4`` (``_timing.measured``:
wall, CPU = user + system, peak RSS); one JSON line per run is appended to
``benchmarks/out/gate/results.jsonl``.

Usage::

    python benchmarks/make_scale_input.py --what gate --out-dir benchmarks/out/scale
    python benchmarks/bench_gate.py --revs 85d51a1,. --ids plink,numeric [--scale benchmarks/out/scale]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import measured  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "out" / "gate"
N_SAMPLES = 100_000


def _tree(rev: str) -> Path:
    if rev == ".":
        return ROOT
    dest = OUT / f"src-{rev}"
    if not (dest / "crosscohort").is_dir():
        data = subprocess.run(["git", "archive", rev, "crosscohort"], cwd=ROOT, check=True,
                              capture_output=True).stdout
        dest.mkdir(parents=True, exist_ok=True)
        with tarfile.open(fileobj=io.BytesIO(data)) as tf:
            tf.extractall(dest, filter="data")
    return dest


def _ids(style: str) -> Path:
    path = OUT / f"ids-{style}.fam"
    if not path.is_file():
        OUT.mkdir(parents=True, exist_ok=True)
        with open(path, "w") as fh:
            for i in range(N_SAMPLES):
                fid, iid = (f"per{i}", f"per{i}") if style == "plink" else ("0", str(i + 1))
                fh.write(f"{fid}\t{iid}\t0\t0\t1\t-9\n")
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--revs", default=".", help="comma-separated git revisions; '.' = working tree")
    ap.add_argument("--ids", default="plink", help="comma-separated: plink, numeric")
    ap.add_argument("--scale", type=Path, default=ROOT / "benchmarks" / "out" / "scale")
    ap.add_argument("--rss-cap-gb", type=float, default=12.0)
    a = ap.parse_args(argv)
    table = a.scale / "gate" / "cad.tsv.gz"
    if not table.is_file():
        ap.error(f"{table}: no such file; run benchmarks/make_scale_input.py --what gate first")
    g = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())["export_gate"]
    OUT.mkdir(parents=True, exist_ok=True)
    for rev in a.revs.split(","):
        tree = _tree(rev)
        for style in a.ids.split(","):
            out = OUT / f"run-{rev.replace('.', 'wt')}-{style}"
            shutil.rmtree(out, ignore_errors=True)
            cmd = [sys.executable, "-m", "crosscohort", "export", "--cohort", "scale",
                   "--sumstats", f"cad={table}", "--trait-type", "cad=binary",
                   "--ids-from", str(_ids(style)), "--build", "GRCh38", "--ancestry", "simulated",
                   "--config-digest", "0" * 64, "--min-count", str(g["min_count"]),
                   "--round-n", str(g["round_n"]), "--min-mac", str(g["min_mac"]),
                   "--min-mac-group", str(g["min_mac_group"]),
                   "--min-residual-df", str(g["min_residual_df"]), "--out-dir", str(out)]
            env_path = os.environ.get("PYTHONPATH", "")
            os.environ["PYTHONPATH"] = str(tree)
            load0 = os.getloadavg()[0]
            # cwd = the tree: ``python -m`` puts the cwd first on sys.path, ahead of PYTHONPATH.
            m = measured(cmd, tree, log=OUT / f"{out.name}.log", rss_cap_gb=a.rss_cap_gb)
            load1 = os.getloadavg()[0]
            os.environ["PYTHONPATH"] = env_path
            row = {"rev": rev, "ids": style, "rows": 10_000_000, "wall_s": round(m.wall, 1),
                   "cpu_s": round(m.cpu, 1), "peak_rss_gb": round(m.rss_gb, 2), "returncode": m.returncode,
                   "stopped_at_cap": m.stopped_at_cap, "load_before": round(load0, 1),
                   "load_after": round(load1, 1), "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
            with open(OUT / "results.jsonl", "a") as fh:
                fh.write(json.dumps(row) + "\n")
            print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
