"""Federated pooled fit (issue 24): cohort-side cost, central solve at scale, the binary method's error.

Three parts, each printing a table row per run (figures go to benchmarks/README.md):

``cohort``
    ``crosscohort sufficient`` against ``crosscohort assoc`` on the same
    input (``make_assoc_input.py``'s fileset, one trait at a time), run
    alternately; wall, CPU, peak RSS and the ratio sufficient / assoc. Bar:
    <= 1.5. Also ``assoc --missing fill`` (what an opted-in cohort runs)
    against ``assoc``.
``central``
    ``crosscohort pool-fit`` on K synthetic cohorts' released sums (12
    covariates: age, sex shared; 10 PCs cohort-specific). pool-fit holds one
    chromosome of every cohort at a time, so its memory is set by the
    largest chromosome: ``--chr1`` rows on chromosome 1 (800,000 is
    chromosome 1's share of a 10M-variant genome) plus ``--rest`` rows on
    chromosome 2. Wall time scales with the total rows.
``demo``
    On the simulated demo's cohorts (msprime genotypes: real LD, so real
    near-duplicate variants): ``sufficient`` against ``assoc`` (trait ldl,
    covariates age and sex), and what the sufficient-statistics gate
    withholds under the default rules, per rule (the difference rule's
    share included).
``window``
    How wide the difference rule's window must be: on one simulated
    cohort, the variants with MAC >= 20 that have a near-duplicate (1..cap
    people, direct or mirrored) within each window, up to the whole
    genome in file order.
``binary``
    The one-step logistic estimate against statsmodels' ``Logit`` on the
    stacked individual-level data of the simulated demo (every common
    variant of a chromosome): |delta beta| / SE and SE ratio.

Usage::

    python benchmarks/make_assoc_input.py --samples 5000 --variants 20000
    python benchmarks/bench_pooled.py cohort --samples 5000 --variants 20000 --repeat 3
    python benchmarks/bench_pooled.py central --cohorts 5 --chr1 800000 --rest 200000
    python benchmarks/bench_pooled.py central --cohorts 5 --chr1 800000 --rest 9200000 --spread
    python benchmarks/bench_pooled.py demo --scale small
    python benchmarks/bench_pooled.py window --scale small --cohort biobank_eur
    python benchmarks/bench_pooled.py binary --scale small
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import measured  # noqa: E402

OUT = Path(__file__).resolve().parent / "out"
CLI = [sys.executable, "-m", "crosscohort"]


def _cohort(args: argparse.Namespace) -> None:
    bfile = OUT / f"assoc_{args.samples}x{args.variants}"
    pheno, covar = OUT / f"assoc_{args.samples}.pheno.tsv", OUT / f"assoc_{args.samples}.covar.tsv"
    if not bfile.with_suffix(".bed").exists():
        raise SystemExit(f"{bfile}.bed missing: run benchmarks/make_assoc_input.py --samples {args.samples} "
                         f"--variants {args.variants}")
    common = ["--bfile", str(bfile), "--pheno", str(pheno), "--covar", str(covar)]
    print(f"load before: {os.getloadavg()[0]:.1f}")
    print("| trait | tool | wall s | CPU s | peak RSS MB |")
    print("|---|---|---|---|---|")
    ratios: dict[str, list[float]] = {}
    fill_ratios: dict[str, list[float]] = {}
    tools = {"assoc": ["assoc"], "assoc-fill": ["assoc", "--missing", "fill"], "sufficient": ["sufficient"]}
    for trait in args.traits.split(","):
        for r in range(args.repeat):
            runs = {}
            for tool, cmd in tools.items():
                out = (["--out", str(OUT / f"pooled_{trait}.{tool}.tsv.gz")] if cmd[0] == "assoc"
                       else ["--out-dir", str(OUT / "pooled_suff")])
                m = measured([*CLI, *cmd, *common, "--pheno-name", trait, *out], OUT,
                             log=OUT / f"pooled_{tool}_{trait}_{r}.log")
                if m.returncode:
                    raise SystemExit(f"{tool} failed; see {OUT}/pooled_{tool}_{trait}_{r}.log")
                runs[tool] = m
                print(f"| {trait} | {tool} | {m.wall:.2f} | {m.cpu:.2f} | {m.rss_gb * 1024:.0f} |")
            ratios.setdefault(trait, []).append(runs["sufficient"].cpu / runs["assoc"].cpu)
            fill_ratios.setdefault(trait, []).append(runs["assoc-fill"].cpu / runs["assoc"].cpu)
    print(f"load after: {os.getloadavg()[0]:.1f}")
    for trait, rs in ratios.items():
        print(f"{trait}: CPU ratio sufficient / assoc, median {np.median(rs):.2f} (runs {', '.join(f'{x:.2f}' for x in rs)})")
    for trait, rs in fill_ratios.items():
        print(f"{trait}: CPU ratio assoc --missing fill / assoc, median {np.median(rs):.2f} "
              f"(runs {', '.join(f'{x:.2f}' for x in rs)})")


def _central_inputs(k: int, chr1: int, rest: int, seed: int, *, spread: bool = False) -> list[Path]:
    """K cohorts' synthetic released sums: ``chr1`` rows on chromosome 1, ``rest`` on chromosome 2
    (or, with ``spread``, split evenly over chromosomes 2-22, as in a genome), written one
    chromosome at a time (gzip level 1) so that making 10M rows holds one chromosome."""
    import gzip

    import polars as pl

    from crosscohort.contract.sums import CohortBlock, write_block

    names = ["age", "sex", *(f"PC{i}" for i in range(1, 11))]
    dirs = []
    sizes = [chr1, *(np.diff(np.linspace(0, rest, 22).round().astype(int)) if spread else [rest])]
    tag = f"{k}x{chr1}+{rest}" + ("s" if spread else "")
    for c in range(k):
        d = OUT / f"pooled_central_{tag}" / f"c{c}"
        dirs.append(d)
        if (d / "t.sufficient.tsv.gz").exists():
            continue
        rng = np.random.default_rng(seed + c)
        n = 20_000
        a = rng.normal(size=(n // 100, len(names)))
        xx = a.T @ a * 100 + np.eye(len(names)) * n
        block = CohortBlock(cohort=f"c{c}", trait="t", trait_type="quantitative", n=n, covariates=tuple(names),
                            scale=("raw",) * len(names), sum_x=rng.normal(size=len(names)) * n, sum_y=0.0,
                            xx=xx, xy=rng.normal(size=len(names)) * 10, yy=float(n))
        write_block(block, d / "t.block.json")
        tmp = d / ".t.sufficient.tsv.gz.tmp"
        with gzip.open(tmp, "wb", compresslevel=1) as fh:
            for chrom, m in enumerate(sizes, start=1):
                cols = {"chromosome": np.full(m, chrom, np.int64),
                        "base_pair_location": np.arange(1, m + 1) * 10,
                        "effect_allele": ["A"] * m, "other_allele": ["C"] * m, "n": np.full(m, n)}
                sum_g = rng.uniform(0.05, 0.95, m) * 2 * n
                cols |= {"sum_g": sum_g, "gg": sum_g * (1 - sum_g / (2 * n)) + 1.0, "gy": rng.normal(size=m) * 30}
                cols |= {f"gx__{name}": rng.normal(size=m) * 20 for name in names}
                pl.DataFrame(cols).write_csv(fh, separator="\t", include_header=chrom == 1)
        tmp.replace(d / "t.sufficient.tsv.gz")
    return dirs


def _central(args: argparse.Namespace) -> None:
    dirs = _central_inputs(args.cohorts, args.chr1, args.rest, args.seed, spread=args.spread)
    print(f"load before: {os.getloadavg()[0]:.1f}")
    for r in range(args.repeat):
        out = OUT / "pooled_central.tsv.gz"
        m = measured([*CLI, "pool-fit", "--trait", "t", "--shared", "age,sex", "--out", str(out),
                      *map(str, dirs)], OUT, log=OUT / f"pooled_central_{r}.log", rss_cap_gb=args.rss_cap)
        print(f"| {args.cohorts} cohorts x {args.chr1 + args.rest:,} variants (chr1 {args.chr1:,}) | "
              f"{m.wall:.1f} s | CPU {m.cpu:.1f} s | peak RSS {m.rss_gb:.2f} GB |"
              + (" stopped at the RSS cap" if m.stopped_at_cap else "") + ("" if m.returncode == 0 else " FAILED"))
    print(f"load after: {os.getloadavg()[0]:.1f}")


def _binary(args: argparse.Namespace) -> None:
    import tempfile

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    import statsmodels.api as sm
    from test_pooled_fit import COHORTS, _stacked

    from crosscohort.cli import main
    from crosscohort.demo.simulate import simulate_demo
    from crosscohort.tre.genotypes import Genotypes

    root = Path(tempfile.mkdtemp(prefix="bench_pooled_", dir=OUT))
    sim = simulate_demo(root / "sim", scale=args.scale)
    d = sim.out_dir
    geno = Genotypes([d / COHORTS[0]])
    every = np.arange(0, geno.n_variants, args.every)
    freq = np.nanmean(geno.read(every), axis=0) / 2
    chosen = every[(freq > 0.05) & (freq < 0.95)]
    ids = geno.variants.get_column("id").to_numpy()[chosen]
    from test_pooled_fit import _pcs

    dirs = {}
    for c in COHORTS:
        _pcs(d / c, root / f"{c}.pcs.tsv")
        (root / f"{c}.extract").write_text("\n".join(ids) + "\n")
        main(["sufficient", "--bfile", str(d / c), "--pheno", str(d / f"{c}.pheno.tsv"), "--covar",
              str(d / f"{c}.covar.tsv"), "--covar", str(root / f"{c}.pcs.tsv"), "--extract",
              str(root / f"{c}.extract"), "--pheno-name", "cad", "--cohort", c, "--out-dir", str(root / c)])
        dirs[c] = root / c
    main(["pool-fit", "--trait", "cad", "--out", str(root / "cad.tsv"), *(str(dirs[c]) for c in COHORTS)])
    import polars as pl

    res = pl.read_csv(root / "cad.tsv", separator="\t", null_values="NA")
    by_id = {r["rsid"]: r for r in res.iter_rows(named=True)}
    demo = {"sim": d, "root": root, "ids": ids}
    y, x, doses, _ = _stacked(demo, "cad")
    rows = []
    for v, vid in enumerate(doses["ids"]):
        g = np.concatenate([doses["g"][k][:, v] for k in range(len(COHORTS))])
        fit = sm.Logit(y, np.column_stack([g, x])).fit(disp=0, tol=1e-12, maxiter=100)
        r = by_id[vid]
        rows.append((fit.params[0] / fit.bse[0], abs(r["beta"] - fit.params[0]) / fit.bse[0],
                     r["standard_error"] / fit.bse[0] - 1, abs(fit.params[0])))
    a = np.asarray(rows)
    print(f"{len(rows)} variants (demo scale {args.scale}, every {args.every}th with EAF 0.05-0.95 in "
          f"{COHORTS[0]}), {y.size} samples")
    print(f"|dbeta|/SE: median {np.median(a[:, 1]):.4f}, 95th pct {np.percentile(a[:, 1], 95):.4f}, "
          f"max {a[:, 1].max():.4f}")
    print(f"SE/SE_mle - 1: median {np.median(np.abs(a[:, 2])):.4f}, max |.| {np.abs(a[:, 2]).max():.4f}")
    for lo, hi in ((0, 2), (2, 4), (4, 100)):
        sel = (np.abs(a[:, 0]) >= lo) & (np.abs(a[:, 0]) < hi)
        if sel.any():
            print(f"|z| in [{lo}, {hi}): {sel.sum()} variants, max |dbeta|/SE {a[sel, 1].max():.4f}")


def _demo(args: argparse.Namespace) -> None:
    import tempfile

    from crosscohort.contract.release import GateRules
    from crosscohort.contract.release_sums import ROW_RULES, gate_sufficient, read_sums_table
    from crosscohort.contract.sums import read_block
    from crosscohort.demo.simulate import simulate_demo

    root = Path(tempfile.mkdtemp(prefix="bench_pooled_demo_", dir=OUT))
    d = simulate_demo(root / "sim", scale=args.scale).out_dir
    print(f"load before: {os.getloadavg()[0]:.1f}")
    print("| cohort | assoc CPU s | sufficient CPU s | ratio | peak RSS MB (assoc / sufficient) | rows in | "
          "released | " + " | ".join(r.removeprefix("sufficient_") for r in ROW_RULES) + " |")
    print("|---" * (7 + len(ROW_RULES)) + "|")
    for c in args.cohorts.split(","):
        common = ["--bfile", str(d / c), "--pheno", str(d / f"{c}.pheno.tsv"), "--pheno-name", "ldl",
                  "--covar", str(d / f"{c}.covar.tsv"), "--covar-name", "age,sex"]
        a = measured([*CLI, "assoc", *common, "--out", str(root / f"{c}.tsv.gz")], OUT, log=root / f"{c}.assoc.log")
        s = measured([*CLI, "sufficient", *common, "--cohort", c, "--out-dir", str(root / c)], OUT,
                     log=root / f"{c}.sufficient.log")
        if a.returncode or s.returncode:
            raise SystemExit(f"{c}: a run failed; see {root}")
        res = gate_sufficient(read_block(root / c / "ldl.block.json"),
                              read_sums_table(root / c / "ldl.sufficient.tsv.gz"), rules=GateRules(), cohort=c)
        led = res.ledger
        print(f"| {c} | {a.cpu:.2f} | {s.cpu:.2f} | {s.cpu / a.cpu:.2f} | {a.rss_gb * 1024:.0f} / "
              f"{s.rss_gb * 1024:.0f} | {led.n_in:,} | {led.n_kept:,} | "
              + " | ".join(f"{led.removed.get(r, 0):,}" for r in ROW_RULES) + " |")
    print(f"load after: {os.getloadavg()[0]:.1f}")


def _window(args: argparse.Namespace) -> None:
    import tempfile
    import time

    from crosscohort.demo.simulate import simulate_demo
    from crosscohort.tre._differences import nearest_differences
    from crosscohort.tre.genotypes import Genotypes
    from crosscohort.tre.sufficient import fill_missing, hard_call_fill

    root = Path(tempfile.mkdtemp(prefix="bench_pooled_window_", dir=OUT))
    geno = Genotypes([simulate_demo(root / "sim", scale=args.scale).out_dir / args.cohort])
    g = geno.read(np.arange(geno.n_variants))
    g = np.asfortranarray(fill_missing(g, hard_call_fill(g)).astype(np.int8))
    s = g.sum(axis=0, dtype=np.int64)
    mac = np.minimum(s, 2 * g.shape[0] - s) >= 20
    print(f"{args.cohort}: {g.shape[1]:,} variants, n = {g.shape[0]:,}, {mac.sum():,} with MAC >= 20")
    for w in (100, 1000, g.shape[1]):
        t = time.process_time()
        d = nearest_differences(g, 0, window=w, cap=args.cap)
        print(f"window {w:,}: {((d <= args.cap) & mac).sum():,} with a near-duplicate (1-{args.cap} people); "
              f"CPU {time.process_time() - t:.1f} s")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="part", required=True)
    c = sub.add_parser("cohort")
    c.add_argument("--samples", type=int, default=5000)
    c.add_argument("--variants", type=int, default=20000)
    c.add_argument("--traits", default="qt,bt")
    c.add_argument("--repeat", type=int, default=3)
    z = sub.add_parser("central")
    z.add_argument("--cohorts", type=int, default=5)
    z.add_argument("--chr1", type=int, default=800_000)
    z.add_argument("--rest", type=int, default=200_000)
    z.add_argument("--repeat", type=int, default=1)
    z.add_argument("--seed", type=int, default=1)
    z.add_argument("--spread", action="store_true", help="--rest over chromosomes 2-22 (a genome), not all on 2")
    z.add_argument("--rss-cap", type=float, default=6.0, help="kill the run above this RSS (GB)")
    e = sub.add_parser("demo")
    e.add_argument("--scale", default="small")
    e.add_argument("--cohorts", default="biobank_eur,admixed_afr,biobank_eas")
    w = sub.add_parser("window")
    w.add_argument("--scale", default="small")
    w.add_argument("--cohort", default="biobank_eur")
    w.add_argument("--cap", type=int, default=20)
    b = sub.add_parser("binary")
    b.add_argument("--scale", default="small")
    b.add_argument("--every", type=int, default=50)
    args = ap.parse_args(argv)
    OUT.mkdir(exist_ok=True)
    {"cohort": _cohort, "central": _central, "demo": _demo, "window": _window, "binary": _binary}[args.part](args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
