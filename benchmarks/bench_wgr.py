"""Whole-genome regression on a family cohort: calibration (wgr vs glm) and BOLT-LMM, side by side.

Simulates a cohort of extended families plus unrelated people
(:func:`crosscohort.demo.pedigree.simulate_families`), then times on the same
input, each as a child process under GNU time:

- ``crosscohort wgr`` (step 1) and ``crosscohort assoc --pred`` (step 2);
- ``crosscohort assoc`` without KING filtering (glm, relatives kept);
- ``bolt --lmmInfOnly --LDscoresUseChip`` (BOLT-LMM's infinitesimal mixed model with LOCO).

Prints one JSON record: lambda_GC of the null (non-causal) variants per
method, lambda_GC of all variants with LOCO (step 2), without LOCO (step 1's
summary, the report's pair) and of glm, the correlation of our step-2 chi2 with BOLT's ``P_BOLT_LMM_INF``
chi2, wall time and peak RSS of each command. ``--step1-only`` times step 1
against BOLT on a larger input (the 20,000 x 100,000 target).

usage: python benchmarks/bench_wgr.py [--families 100 --unrelated 1000 --chrom 10 --per-chrom 500
       --causal 300 --threads 1] [--step1-only] [--wgr-args "--loocv --level1 pooled"]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import polars as pl
from scipy.stats import chi2

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _timing import timed  # noqa: E402

from crosscohort.demo.pedigree import simulate_families  # noqa: E402

OUT = Path(__file__).resolve().parent / "out" / "wgr"


def _lambda(p: np.ndarray) -> float:
    return float(np.median(chi2.isf(p, 1)) / chi2.ppf(0.5, 1))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--families", type=int, default=100)
    ap.add_argument("--unrelated", type=int, default=1000)
    ap.add_argument("--chrom", type=int, default=10)
    ap.add_argument("--per-chrom", type=int, default=500)
    ap.add_argument("--causal", type=int, default=300)
    ap.add_argument("--bsize", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--step1-only", action="store_true")
    ap.add_argument("--wgr-args", default="", help="extra options of crosscohort wgr, e.g. '--loocv --level1 pooled'")
    ap.add_argument("--relatives", action="store_true",
                    help="step 2 with --relatives: the related pairs 'crosscohort qc' writes (O.king.tsv, "
                         "KING-robust kinship above --relatives-min-kinship, nobody removed)")
    ap.add_argument("--relatives-min-kinship", type=float, default=0.02, metavar="K",
                    help="with --relatives: qc's kinship floor of the pair table (default 0.02)")
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    tag = f"f{args.families}_u{args.unrelated}_c{args.chrom}x{args.per_chrom}"
    fit = tag + "".join(a.strip("-").replace(" ", "") for a in args.wgr_args.split())  # one fit per option set
    c = simulate_families(OUT / tag, n_families=args.families, n_unrelated=args.unrelated,
                          n_chrom=args.chrom, variants_per_chrom=args.per_chrom, n_causal=args.causal,
                          seed=args.seed)
    step2_extra: list[str] = []
    py = [sys.executable, "-m", "crosscohort"]
    if args.relatives:
        # The product path: crosscohort qc's pair table, with QC rules that remove nobody.
        qc = OUT / f"{tag}.k{args.relatives_min_kinship:g}.qc"
        rec_qc = timed([*py, "qc", "--bfile", str(c.prefix), "--geno", "1", "--mind", "1", "--maf", "0",
                        "--mac", "0", "--hwe", "0", "--king-cutoff", "none", "--relatives-min-kinship",
                        str(args.relatives_min_kinship), "--out-prefix", str(qc)], OUT)
        kin = Path(f"{qc}.king.tsv")
        step2_extra = ["--relatives", str(kin)]
        fit_out = fit + f"rel{args.relatives_min_kinship:g}"
    else:
        fit_out = fit
    bolt_pheno = OUT / f"{tag}.bolt.pheno"
    bolt_covar = OUT / f"{tag}.bolt.covar"
    bolt_pheno.write_text(c.pheno.read_text().replace("#FID", "FID", 1))
    bolt_covar.write_text(c.covar.read_text().replace("#FID", "FID", 1))
    common = ["--bfile", str(c.prefix), "--pheno", str(c.pheno), "--pheno-name", "y", "--covar", str(c.covar),
              "--threads", str(args.threads)]
    rec: dict = {"samples": c.n_samples, "variants": c.n_variants, "causal": int(c.causal.size),
                 "families": args.families, "unrelated": args.unrelated, "threads": args.threads}
    rec["wgr_args"] = args.wgr_args
    rec["relatives"] = args.relatives
    if args.relatives:
        rec["relatives_min_kinship"] = args.relatives_min_kinship
        rec["relatives_pairs"] = len(kin.read_text().splitlines()) - 1
        rec["qc_king"] = rec_qc
    rec["wgr_step1"] = timed([*py, "wgr", *common, "--bsize", str(args.bsize), *args.wgr_args.split(),
                              "--out", str(OUT / f"{fit}.fit")], OUT)
    rec["bolt"] = timed(["bolt", f"--bfile={c.prefix}", f"--phenoFile={bolt_pheno}", "--phenoCol=y",
                         f"--covarFile={bolt_covar}", "--qCovarCol=age", "--covarCol=sex", "--lmmInfOnly",
                         "--LDscoresUseChip", f"--statsFile={OUT / f'{tag}.bolt.stats'}",
                         f"--numThreads={args.threads}"], OUT)
    if not args.step1_only:
        rec["wgr_step2"] = timed([*py, "assoc", *common, "--pred", str(OUT / f"{fit}.fit_pred.list"), *step2_extra,
                                  "--out", str(OUT / f"{fit_out}.wgr.tsv")], OUT)
        rec["glm"] = timed([*py, "assoc", *common, "--out", str(OUT / f"{tag}.glm.tsv")], OUT)
        # glm on an unrelated subset: the families' founders (grandparents and spouses) and the
        # unrelated people, i.e. what a KING filter keeps at best.
        keep = OUT / f"{tag}.unrelated.keep"
        fam = [ln.split() for ln in c.prefix.with_name(c.prefix.name + ".fam").read_text().splitlines()]
        keep.write_text("".join(f"{f[0]} {f[1]}\n" for f in fam if f[2] == "0" and f[3] == "0"))
        rec["glm_unrelated"] = timed([*py, "assoc", *common, "--keep", str(keep),
                                      "--out", str(OUT / f"{tag}.glm_unrel.tsv")], OUT)
        null = np.ones(c.n_variants, dtype=bool)
        null[c.causal] = False
        wgr = pl.read_csv(OUT / f"{fit_out}.wgr.tsv", separator="\t", null_values="NA")
        glm = pl.read_csv(OUT / f"{tag}.glm.tsv", separator="\t", null_values="NA")
        bolt = pl.read_csv(OUT / f"{tag}.bolt.stats", separator="\t")
        p_w, p_g = wgr.get_column("p_value").to_numpy(), glm.get_column("p_value").to_numpy()
        p_u = pl.read_csv(OUT / f"{tag}.glm_unrel.tsv", separator="\t", null_values="NA").get_column(
            "p_value").to_numpy()
        rec["n_unrelated_subset"] = sum(1 for _ in keep.read_text().splitlines())
        p_b = bolt.get_column("P_BOLT_LMM_INF").cast(pl.Float64).to_numpy()
        rec["lambda_null"] = {"wgr": _lambda(p_w[null]), "glm": _lambda(p_g[null]), "bolt_inf": _lambda(p_b[null])}
        rec["mean_chi2_null"] = {k: float(chi2.isf(p[null], 1).mean()) for k, p in
                                 (("wgr", p_w), ("glm", p_g), ("bolt_inf", p_b))}
        rec["chi2_corr_wgr_bolt"] = float(np.corrcoef(chi2.isf(p_w, 1), chi2.isf(p_b, 1))[0, 1])
        rec["causal_p_below_1e-3"] = {k: int((p[c.causal] < 1e-3).sum()) for k, p in
                                      (("wgr", p_w), ("glm", p_g), ("glm_unrelated", p_u), ("bolt_inf", p_b))}
        rec["lambda_null"]["glm_unrelated"] = _lambda(p_u[null])
        step1 = json.loads((OUT / f"{fit}.fit.wgr.json").read_text())["traits"][0]
        rec["wgr_cv_r2"] = step1["cv_r2"]
        # The report's pair (issue 22): step 2's λGC with LOCO and step 1's λGC without LOCO,
        # both over every variant (causal included, as a cohort computes them), beside glm's.
        rec["lambda_all"] = {"wgr_step2_loco": _lambda(p_w), "wgr_step1_no_loco": step1["lambda_gc_no_loco"],
                             "glm": _lambda(p_g)}
    print(json.dumps(rec, indent=1))


if __name__ == "__main__":
    main()
