"""Ancestry PCs on the demo's admixed cohort: they track admixture and control a stratified null trait.

Issue 3 asks for λGC ≤ 1.05 for a null trait analysed with in-cohort PCs. On
``admixed_afr`` one null trait (seed 0) gave λ = 1.09 with 5 PCs. Why, from
``python tests/test_pca_admixture.py`` style runs on the small demo (seed 42;
QC as the workflow's demo config, KING off; 796 samples, 13,553 variants;
20 null-trait seeds each; numbers from a numpy regression of the same data):

- The null trait is stratified **by design**: ``N(0, 1) + afr_fraction (+1
  for East Asians)``, so that PCs matter (mean λ 3.22 without covariates).
- λ from the median is **noisy on this genome**: 6 Mb in three chromosomes,
  admixed 12 generations ago, so each haplotype's chromosome is mostly one
  ancestry tract and admixture LD spans whole chromosomes; the variants
  behave like a few hundred independent tests. A pure-noise trait with no
  covariate has λ 0.997 ± 0.131 (mean ± SD over seeds, range 0.79-1.45).
- The PCs capture admixture: PC1 correlates with the true AFR fraction at
  |r| = 0.967 (5 PCs: R² = 0.94). With 5 PCs mean λ is 0.986 ± 0.085, as
  with the true AFR fraction as covariate (1.003 ± 0.091); 1, 2, 3, 10 PCs
  give 1.005, 1.003, 0.999, 0.982; pruning at r² 0.5 or none, or MAF 0.01,
  give 0.997, 0.993, 0.988. The single 1.09 is one SD above the mean.

With the association engine itself (this file's fixture, per-variant
missing calls; ``python tests/test_pca_admixture.py DIR`` prints them): 5 PCs
mean λ 1.012 ± 0.088 (range 0.87-1.18; seed 0: 1.113), no PCs 3.27 ± 0.53.

So the method is right and the test is on the average over seeds, where the
standard error is SD/sqrt(20) ~ 0.02, not on one seed.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from crosscohort.contract.stats import lambda_gc
from crosscohort.tre.association import run_assoc
from crosscohort.tre.genotypes import Genotypes
from crosscohort.tre.pca import run_pca, write_pca
from crosscohort.tre.qc import run_qc, write_qc

COHORT = "admixed_afr"
SEEDS = 20


@pytest.fixture(scope="module")
def admixed(tmp_path_factory) -> dict:
    from crosscohort.demo.simulate import simulate_demo

    root = tmp_path_factory.mktemp("admixed")
    simulate_demo(root, scale="small")
    geno = Genotypes([root / COHORT])
    # the workflow's demo QC: config.yaml sets king_cutoff null on this short genome
    qc = run_qc(geno, cohort=COHORT, king_cutoff=None, log=io.StringIO())
    write_qc(qc, root / COHORT)
    keep = qc.samples.filter(pl.col("keep")).select("fid", "iid")
    pca = run_pca(
        geno, keep=keep, extract=qc.kept_variant_ids, n_pcs=5
    )  # config.yaml's pca settings
    write_pca(pca, root / f"{COHORT}.eigenvec")
    truth = pl.read_csv(root / "truth" / "samples.tsv", separator="\t").filter(
        pl.col("cohort") == COHORT
    )
    ancestry = truth["afr_fraction"].to_numpy() + (truth["population"] == "EAS").to_numpy()
    cols = {
        f"null{s}": np.random.default_rng(s).normal(size=truth.height) + ancestry
        for s in range(SEEDS)
    }
    names = list(cols)
    lines = ["#FID\tIID\t" + "\t".join(names)]
    for i, (f, iid) in enumerate(zip(truth["FID"], truth["IID"], strict=True)):
        lines.append(f"{f}\t{iid}\t" + "\t".join(f"{cols[c][i]:.6f}" for c in names))
    (root / "null.tsv").write_text("\n".join(lines) + "\n")
    lambdas = {}
    for label, covar in (("pcs", [root / f"{COHORT}.eigenvec"]), ("none", [])):
        tables = run_assoc(
            [root / COHORT],
            root / "null.tsv",
            covar=covar,
            keep=root / f"{COHORT}.samples.keep",
            extract=root / f"{COHORT}.variants.keep",
            chunk_size=5000,
            log=io.StringIO(),
        ).tables
        lambdas[label] = np.array(
            [lambda_gc(tables[c]["neg_log_10_p_value"].drop_nulls().to_numpy()) for c in names]
        )
    scores = pl.read_csv(root / f"{COHORT}.eigenvec", separator="\t").rename({"#FID": "FID"})
    return {"lambdas": lambdas, "pcs": scores.join(truth, on=["FID", "IID"], how="inner")}


def test_pca__pc1_tracks_the_admixture_proportion_and_separates_the_europeans(admixed):
    pcs = admixed["pcs"]
    pc1, afr = pcs["PC1"].to_numpy(), pcs["afr_fraction"].to_numpy()
    assert abs(np.corrcoef(pc1, afr)[0, 1]) > 0.9  # measured 0.967
    sign = np.sign(np.corrcoef(pc1, afr)[0, 1])
    eur = sign * pc1[pcs["population"] == "EUR"]
    admix = sign * pc1[pcs["population"] == "ADMIX"]
    # every European lies below the admixed cohort's 5th percentile of AFR-ward PC1
    assert eur.max() < np.quantile(admix, 0.05)


def test_null_trait__admixed_cohort_with_pcs_has_mean_lambda_gc_at_most_1_05_over_seeds(admixed):
    lam = admixed["lambdas"]["pcs"]
    # the bar on the average of 20 seeds (SE ~ 0.02); one seed's λ is noisy (SD ~ 0.09)
    assert lam.mean() <= 1.05, lam
    assert lam.mean() >= 0.95, lam  # and not deflated (over-correction)


def test_null_trait__admixed_cohort_without_pcs_is_inflated_on_every_seed(admixed):
    lam = admixed["lambdas"]["none"]
    assert lam.min() > 1.5, lam  # stratified by design: PCs are what brings λ down


if __name__ == "__main__":  # the figures in the docstring: python tests/test_pca_admixture.py DIR
    import sys
    import tempfile

    class _Factory:
        def mktemp(self, name: str) -> Path:
            return Path(
                tempfile.mkdtemp(prefix=name, dir=sys.argv[1] if len(sys.argv) > 1 else None)
            )

    res = admixed.__wrapped__(_Factory())
    for k, v in res["lambdas"].items():
        print(
            k,
            f"mean {v.mean():.4f} sd {v.std(ddof=1):.4f} min {v.min():.4f} max {v.max():.4f}",
            "seed0",
            f"{v[0]:.4f}",
        )
