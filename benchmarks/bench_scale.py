"""Biobank scale (issue 9): wall, CPU and peak RSS of every stage at 10,000,000 variants.

Inputs come from ``benchmarks/make_scale_input.py`` (``benchmarks/out/scale/``);
outputs go to ``benchmarks/out/scale/run{TAG}/``. Each stage runs as the workflow's
rule runs it (``python -m crosscohort <stage>`` with the rule's arguments), in
a child process measured with ``os.wait4`` (``_timing.measured``): wall
seconds, CPU seconds (user + system), peak RSS, with the 1-minute load
average before and after. Stages, in pipeline order:

``assoc``
    ``association_part`` (workflow/rules/association.smk) on part 1 of
    ``--scatter`` of the cohort input: both traits (``ldl`` linear, ``cad``
    logistic) in one job, ``--chunk-size`` from config/config.yaml unless
    ``--chunk-size`` is given. Its peak RSS is compared with the ``mem_mb``
    that ``association_mem_mb`` in workflow/rules/resources.smk declares for
    this input (the function is evaluated, not copied).
``assoc-linear``, ``assoc-logistic``
    The same job with one trait each (time and memory per model).
``gate``
    ``crosscohort export`` on the 10,000,000-row binary-trait association
    table, sample IDs from the cohort's ``.fam``, phenotype and covariate files
    (the export rule's ``--ids-from``), the config's gate rules.
``harmonise``, ``harmonise-ref``
    ``crosscohort harmonise`` of the K central cohorts (GWAS-SSF ``.tsv.gz``,
    as bundles release them), without and with the union panel as
    ``--reference``.
``meta``
    ``crosscohort meta --method random`` on the harmonised tables (of
    ``harmonise-ref`` when present, else ``harmonise``), with the rule's
    ``--cohort-order``, ``--loo-threshold``, ``--loo-window-kb`` (the command
    reads them one chromosome at a time: ``crosscohort/central/meta/stream.py``).
``meta-pruned``
    ``benchmarks/meta_pruned_driver.py``: the whole-table functions
    (``meta_analyse`` on whole tables cut to ``meta_input_columns()``, as the
    command ran before its per-chromosome pass), with a wall/CPU/RSS line per
    step: the reference the per-chromosome command is measured against.
``report``
    ``crosscohort report`` on the meta-analysis (the ``meta`` stage's output,
    else ``meta-pruned``'s) as the report rule calls it
    (meta, summary, leave-one-out, harmonised cohorts, harmonisation ledger,
    reference); no audits or manifests (there are no central bundles).

Every stage's child is killed when its process tree passes ``--rss-cap-gb``
(default 16: the machine is shared); the row then says so. Each row is
appended as JSON to ``benchmarks/out/scale/results.jsonl``.

Usage::

    python benchmarks/bench_scale.py [--stages assoc,gate,harmonise,harmonise-ref,meta,report]
        [--chunk-size N] [--scatter 2] [--rss-cap-gb 16] [--tag=-1] [--report-from=-1p]

(``--tag=-1`` with ``=``: a value starting with ``-`` otherwise reads as an option.
``--report-from=TAG`` reports on another run's meta-analysis and harmonised
tables without rerunning them; the rows' ``report_from`` says which.)
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import Measured, measured  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SCALE = ROOT / "benchmarks" / "out" / "scale"
STAGES = (
    "assoc",
    "assoc-linear",
    "assoc-logistic",
    "gate",
    "harmonise",
    "harmonise-ref",
    "meta",
    "meta-pruned",
    "report",
)
TRAIT_TYPES = {"ldl": "quantitative", "cad": "binary"}


# ---------------------------------------------------------------- the workflow's resource formulas
def workflow_resources(
    config: dict, *, traits: list[str], n_parts: int, bfile: Path
) -> SimpleNamespace:
    """The resource functions of workflow/rules/resources.smk, evaluated for ``bfile``.

    resources.smk (its constants and functions) is parsed and executed with
    the names it uses from common.smk (``config``, ``N_PARTS``, ``TRAITS``,
    ``bfile_prefixes``), so the figures are the workflow's own, not a copy.
    """
    src = (ROOT / "workflow" / "rules" / "resources.smk").read_text()
    tree = ast.parse(src)
    ns: dict = {
        "os": os,
        "config": config,
        "N_PARTS": n_parts,
        "TRAITS": traits,
        "bfile_prefixes": lambda cohort: [str(bfile)],
    }
    exec(compile(tree, "resources.smk", "exec"), ns)  # noqa: S102 - the project's own file
    return SimpleNamespace(**{k: v for k, v in ns.items() if callable(v) or k.isupper()})


def size_mb(paths: list[Path]) -> float:
    """Snakemake's ``input.size_mb``: total size in MiB."""
    return sum(p.stat().st_size for p in paths) / 1024**2


def declared_mem_mb(res, stage: str, paths: list[Path], **input_attrs) -> float:
    """The rule's ``mem_mb`` for these inputs, from ``resources.smk``'s own function."""
    return res.central_mem_mb(stage)(None, SimpleNamespace(size_mb=size_mb(paths), **input_attrs), 1)


def harmonised_dir(run: Path) -> Path:
    """The run's harmonised tables: those aligned to the panel when that stage ran."""
    ref = run / "harmonise-ref"
    return ref if (ref / "ledger.json").exists() else run / "harmonise"


# ---------------------------------------------------------------- one stage
def run_stage(
    name: str, cmd: list[str], *, log: Path, cap: float, extra: dict, results: Path
) -> Measured:
    load0 = os.getloadavg()[0]
    print(f"[{time.strftime('%H:%M:%S')}] {name}: {' '.join(cmd)}", file=sys.stderr, flush=True)
    m = measured(cmd, ROOT, log=log, rss_cap_gb=cap)
    load1 = os.getloadavg()[0]
    row = {
        "stage": name,
        "date": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "wall_s": round(m.wall, 1),
        "cpu_s": round(m.cpu, 1),
        "peak_rss_gb": round(m.rss_gb, 3),
        "returncode": m.returncode,
        "stopped_at_cap_gb": cap if m.stopped_at_cap else None,
        "load_before": round(load0, 2),
        "load_after": round(load1, 2),
        "commit": _commit(),
        "command": " ".join(cmd),
        **extra,
    }
    with open(results, "a") as fh:
        fh.write(json.dumps(row) + "\n")
    status = (
        "STOPPED at cap"
        if m.stopped_at_cap
        else "ok"
        if m.returncode == 0
        else f"FAILED rc={m.returncode} (see {log})"
    )
    print(
        f"{name:15s} wall {m.wall:8.1f} s  cpu {m.cpu:8.1f} s  peak RSS {m.rss_gb:6.2f} GB  "
        f"load {load0:.2f} -> {load1:.2f}  {status}"
        + "".join(f"  {k}={v}" for k, v in extra.items()),
        flush=True,
    )
    return m


def _commit() -> str:
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    )
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "crosscohort"], cwd=ROOT, capture_output=True, text=True
    )
    return head.stdout.strip() + (
        "+uncommitted crosscohort/ changes" if dirty.stdout.strip() else ""
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--stages",
        default="assoc,gate,harmonise,harmonise-ref,meta,report",
        help=f"comma-separated, from {', '.join(STAGES)}",
    )
    ap.add_argument("--input-dir", type=Path, default=SCALE)
    ap.add_argument(
        "--chunk-size", type=int, help="association chunk size (default: config/config.yaml)"
    )
    ap.add_argument("--scatter", type=int, help="association parts (default: config/config.yaml)")
    ap.add_argument("--rss-cap-gb", type=float, default=16.0)
    ap.add_argument("--tag", default="", help="suffix of the run directory and label of the rows")
    ap.add_argument(
        "--report-from",
        metavar="TAG",
        help="report stage: take the meta-analysis and harmonised tables from run{TAG}/ "
        "(e.g. --report-from=-1p) instead of this run's directory; the report is written here",
    )
    a = ap.parse_args(argv)
    stages = a.stages.split(",")
    bad = [s for s in stages if s not in STAGES]
    if bad:
        ap.error(f"--stages: unknown {bad}; choose from {STAGES}")
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    if a.chunk_size:
        config["association"]["chunk_size"] = a.chunk_size
    if a.scatter:
        config["association"]["scatter"] = a.scatter
    n_parts, chunk = config["association"]["scatter"], config["association"]["chunk_size"]
    inp = a.input_dir
    run = inp / f"run{a.tag}"
    run.mkdir(parents=True, exist_ok=True)
    results = inp / "results.jsonl"
    py = [sys.executable, "-m", "crosscohort"]
    cohort = inp / "cohort"
    central = sorted((inp / "central").glob("c[0-9]*.tsv.gz"))
    names = [p.name.split(".")[0] for p in central]
    reference = inp / "central" / "reference.tsv.gz"
    common = {"tag": a.tag} if a.tag else {}

    for stage in stages:
        if stage.startswith("assoc"):
            traits = {"assoc": ["ldl", "cad"], "assoc-linear": ["ldl"], "assoc-logistic": ["cad"]}[
                stage
            ]
            bfile = cohort / "geno"
            res = workflow_resources(config, traits=traits, n_parts=n_parts, bfile=bfile)
            wc = SimpleNamespace(cohort="scale")
            declared = res.association_mem_mb(wc, None, 1)
            covars = ",".join(
                config["covariates"] + [f"PC{i}" for i in range(1, config["pca"]["n_pcs"] + 1)]
            )
            out = run / stage
            out.mkdir(exist_ok=True)
            cmd = [
                *py,
                "assoc",
                "--bfile",
                str(bfile),
                "--keep",
                str(cohort / "samples.keep"),
                "--extract",
                str(cohort / "variants.keep"),
                "--pheno",
                str(cohort / "pheno.tsv"),
                "--pheno-name",
                ",".join(traits),
                *[f"--trait-type={t}={TRAIT_TYPES[t]}" for t in traits],
                "--covar",
                str(cohort / "covar.tsv"),
                "--covar",
                str(cohort / "pcs.eigenvec"),
                "--covar-name",
                covars,
                "--part",
                f"1/{n_parts}",
                "--chunk-size",
                str(chunk),
                "--threads",
                "2",
                "--out",
                str(out / ("{trait}.tsv.gz" if len(traits) > 1 else f"{traits[0]}.tsv.gz")),
            ]
            n = res.n_samples_of(wc)
            m = run_stage(
                stage,
                cmd,
                log=out / "log.txt",
                cap=a.rss_cap_gb,
                results=results,
                extra={
                    **common,
                    "samples": n,
                    "variants_in_part": round(res.n_variants_of(wc) / n_parts),
                    "chunk_size": chunk,
                    "declared_mem_mb": declared,
                },
            )
            print(
                f"{'':15s} peak RSS {m.rss_gb * 1024:.0f} MiB vs declared mem_mb {declared}: "
                f"{'within' if m.rss_gb * 1024 <= declared else 'EXCEEDS'}",
                flush=True,
            )
        elif stage == "gate":
            table = inp / "gate" / "cad.tsv.gz"
            ids = [cohort / "geno.fam", cohort / "pheno.tsv", cohort / "covar.tsv"]
            g = config["export_gate"]
            out = run / "exports" / "scale"
            cmd = [
                *py,
                "export",
                "--cohort",
                "scale",
                "--sumstats",
                f"cad={table}",
                "--trait-type",
                "cad=binary",
                *[x for p in ids for x in ("--ids-from", str(p))],
                "--build",
                "GRCh38",
                "--ancestry",
                "simulated",
                "--config-digest",
                "0" * 64,
                "--min-count",
                str(g["min_count"]),
                "--round-n",
                str(g["round_n"]),
                "--min-mac",
                str(g["min_mac"]),
                "--min-mac-group",
                str(g["min_mac_group"]),
                "--min-residual-df",
                str(g["min_residual_df"]),
                "--release-n",
                str(g["release_n"]),
                "--out-dir",
                str(out),
            ]
            res = workflow_resources(config, traits=["cad"], n_parts=n_parts, bfile=cohort / "geno")
            inputs = [table, *ids]
            declared = declared_mem_mb(res, "export", inputs)
            run_stage(
                stage,
                cmd,
                log=run / "gate.log",
                cap=a.rss_cap_gb,
                results=results,
                extra={
                    **common,
                    "rows": _rows(table),
                    "input_mb": round(size_mb([table]), 1),
                    "declared_mem_mb": declared,
                },
            )
        elif stage.startswith("harmonise"):
            with_ref = stage == "harmonise-ref"
            out = run / stage
            if out.exists():
                shutil.rmtree(out)
            cmd = [
                *py,
                "harmonise",
                "--trait",
                "ldl",
                *(["--reference", str(reference)] if with_ref else []),
                "--palindrome-max-maf",
                str(config["harmonise"]["palindrome_max_maf"]),
                "--out-dir",
                str(out),
                *[f"{c}={p}" for c, p in zip(names, central, strict=True)],
            ]
            inputs = central + ([reference] if with_ref else [])
            res = workflow_resources(config, traits=["ldl"], n_parts=n_parts, bfile=cohort / "geno")
            run_stage(
                stage,
                cmd,
                log=run / f"{stage}.log",
                cap=a.rss_cap_gb,
                results=results,
                extra={
                    **common,
                    "cohorts": len(central),
                    "input_mb": round(size_mb(inputs), 1),
                    "declared_mem_mb": declared_mem_mb(res, "harmonise", inputs),
                },
            )
        elif stage == "meta":
            hdir = harmonised_dir(run)
            tables = [hdir / f"{c}.tsv.gz" for c in names]
            out = run / "meta" / "ldl.tsv.gz"
            out.parent.mkdir(exist_ok=True)
            cmd = [
                *py,
                "meta",
                "--method",
                "random",
                "--cohort-order",
                ",".join(names),
                "--loo-threshold",
                str(config["report"]["threshold"]),
                "--loo-window-kb",
                str(config["report"]["window_kb"]),
                "--out",
                str(out),
                *[f"{c}={p}" for c, p in zip(names, tables, strict=True)],
            ]
            res = workflow_resources(config, traits=["ldl"], n_parts=n_parts, bfile=cohort / "geno")
            run_stage(
                stage,
                cmd,
                log=run / "meta.log",
                cap=a.rss_cap_gb,
                results=results,
                extra={
                    **common,
                    "input": hdir.name,
                    "input_mb": round(size_mb(tables), 1),
                    "declared_mem_mb": declared_mem_mb(res, "meta", tables),
                },
            )
        elif stage == "meta-pruned":
            hdir = harmonised_dir(run)
            out = run / "meta-pruned" / "ldl.tsv.gz"
            cmd = [
                sys.executable,
                str(ROOT / "benchmarks" / "meta_pruned_driver.py"),
                str(out),
                *[f"{c}={hdir / f'{c}.tsv.gz'}" for c in names],
            ]
            run_stage(
                stage,
                cmd,
                log=run / "meta-pruned.log",
                cap=a.rss_cap_gb,
                results=results,
                extra={**common, "input": hdir.name},
            )
        elif stage == "report":
            src = inp / f"run{a.report_from}" if a.report_from is not None else run
            meta = src / "meta" / "ldl.tsv.gz"
            if not meta.exists():
                # The command passed the cap: report on the pruned driver's output instead.
                meta = src / "meta-pruned" / "ldl.tsv.gz"
            if not meta.exists():
                print(f"report: skipped, no meta-analysis output in {src}", flush=True)
                continue
            hdir = harmonised_dir(src)
            tables = [hdir / f"{c}.tsv.gz" for c in names]
            out = run / "report" / "ldl.html"
            out.parent.mkdir(exist_ok=True)
            ref = ["--reference", str(reference)] if hdir.name == "harmonise-ref" else []
            cmd = [
                *py,
                "report",
                "--trait",
                "ldl",
                "--meta",
                str(meta),
                "--meta-summary",
                f"{meta}.summary.json",
                *[x for c, p in zip(names, tables, strict=True) for x in ("--cohort", f"{c}={p}")],
                "--ledger",
                str(hdir / "ledger.json"),
                "--loo",
                f"{meta}.loo.tsv",
                *ref,
                "--threshold",
                str(config["report"]["threshold"]),
                "--config-digest",
                "0" * 64,
                "--out",
                str(out),
            ]
            inputs = [
                meta,
                Path(f"{meta}.summary.json"),
                Path(f"{meta}.loo.tsv"),
                *tables,
                hdir / "ledger.json",
                *([reference] if ref else []),
            ]
            res = workflow_resources(config, traits=["ldl"], n_parts=n_parts, bfile=cohort / "geno")
            declared = declared_mem_mb(res, "report", inputs, meta=str(meta))
            m = run_stage(
                stage,
                cmd,
                log=run / "report.log",
                cap=a.rss_cap_gb,
                results=results,
                extra={
                    **common,
                    **({"report_from": a.report_from} if a.report_from is not None else {}),
                    "input_mb": round(size_mb(inputs), 1),
                    "declared_mem_mb": declared,
                },
            )
            if m.returncode == 0:
                print(f"{'':15s} report HTML {out.stat().st_size / 1e6:.2f} MB", flush=True)
    return 0


def _rows(path: Path) -> int:
    """Data rows of a gzip'd table (header excluded), counted by ``gzip -dc | wc -l``."""
    out = subprocess.run(
        f"gzip -dc {path} | wc -l", shell=True, capture_output=True, text=True, check=True
    )
    return int(out.stdout) - 1


if __name__ == "__main__":
    raise SystemExit(main())
