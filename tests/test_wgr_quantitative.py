"""Whole-genome regression of quantitative traits: multi-trait step 1 with missing phenotypes, step 2 offset."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from crosscohort.cli import main
from crosscohort.demo.pedigree import simulate_families
from crosscohort.tre.association import regenie_files as RF
from crosscohort.tre.association.wgr import run_step1, run_step2, write_step1


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    d = tmp_path_factory.mktemp("wgr_qt")
    c = simulate_families(d / "fam", n_families=30, n_unrelated=200, n_chrom=3, variants_per_chrom=200,
                          n_causal=60, h2=0.5, seed=3)
    # A second trait, missing for every 7th person; the first trait complete.
    pheno = pl.read_csv(c.pheno, separator="\t")
    rng = np.random.default_rng(0)
    y2 = pheno.get_column("y").to_numpy() * 0.5 + rng.normal(size=pheno.height)
    y2 = [None if i % 7 == 0 else float(v) for i, v in enumerate(y2)]
    both = d / "both.tsv"
    pheno.with_columns(pl.Series("y2", y2, dtype=pl.Float64)).select("#FID", "IID", "y", "y2").write_csv(
        both, separator="\t", null_value="NA")
    return c, both, d


def test_step1__multi_trait_with_missing_values_leaves_the_complete_trait_unchanged(cohort):
    c, both, _ = cohort
    alone = run_step1([c.prefix], c.pheno, pheno_names=["y"], covar=[c.covar], bsize=100)
    joint = run_step1([c.prefix], both, pheno_names=["y", "y2"], covar=[c.covar], bsize=100)
    assert alone.cv == joint.cv == "5-fold" and joint.n_blocks == 6
    np.testing.assert_allclose(joint.loco["y"], alone.loco["y"], rtol=1e-10, atol=1e-12)
    missing = np.isnan(joint.loco["y2"]).all(axis=1)
    assert missing.sum() == len(range(0, c.n_samples, 7))
    assert not np.isnan(joint.loco["y2"][~missing]).any()
    # Chromosomes 4..23 carry no step-1 variant: their LOCO prediction is the whole-genome one.
    np.testing.assert_allclose(joint.loco["y"][:, 5], joint.loco["y"][:, 22])
    assert joint.traits[0].r2[joint.traits[0].best] > 0.05


def test_step1__loocv_runs_and_differs_from_kfold(cohort):
    c, _, _ = cohort
    loo = run_step1([c.prefix], c.pheno, pheno_names=["y"], covar=[c.covar], bsize=100, loocv=True)
    kf = run_step1([c.prefix], c.pheno, pheno_names=["y"], covar=[c.covar], bsize=100)
    assert loo.cv == "loocv"
    assert np.corrcoef(loo.loco["y"][:, 0], kf.loco["y"][:, 0])[0, 1] > 0.8
    assert not np.allclose(loo.loco["y"], kf.loco["y"])


def test_step2__quantitative_offset_equals_ols_of_y_minus_scaled_loco(cohort):
    import statsmodels.api as sm
    c, _, d = cohort
    res = run_step1([c.prefix], c.pheno, pheno_names=["y"], covar=[c.covar], bsize=100)
    paths = write_step1(res, d / "fit_ols")
    out = run_step2([c.prefix], c.pheno, pred=paths["pred_list"], pheno_names=["y"], covar=[c.covar])
    table = out.tables["y"]
    # Oracle, from the files: y, covariates (intercept, sex, age), dosages, and the .loco.
    fam = pl.read_csv(f"{c.prefix}.fam", separator=" ", has_header=False)
    keys = [RF.sample_key(a, b) for a, b in zip(fam[:, 0], fam[:, 1], strict=True)]
    loco = RF.read_loco(paths["loco:y"]).aligned(keys)
    y = pl.read_csv(c.pheno, separator="\t").get_column("y").to_numpy()
    cov = pl.read_csv(c.covar, separator="\t").select("sex", "age").to_numpy().astype(float)
    x = np.column_stack([np.ones(y.size), cov])
    resid = y - x @ np.linalg.lstsq(x, y, rcond=None)[0]
    scale = np.linalg.norm(resid) / np.sqrt(y.size - x.shape[1])
    from crosscohort.tre.genotypes import Genotypes

    geno = Genotypes([c.prefix])
    for j in (0, 250, 599):
        chrom = int(geno.variants.get_column("chrom")[j])
        g = geno.read(np.array([j]))[:, 0]
        fit = sm.OLS(y - scale * loco[:, chrom - 1], np.column_stack([x, g])).fit()
        assert table.get_column("beta")[j] == pytest.approx(fit.params[-1], rel=1e-8)
        assert table.get_column("standard_error")[j] == pytest.approx(fit.bse[-1], rel=1e-8)
        assert table.get_column("p_value")[j] == pytest.approx(fit.pvalues[-1], rel=1e-6)


def test_cli__spa_binary_and_errors_name_the_rule(cohort, capsys):
    c, _, d = cohort
    common = ["--bfile", str(c.prefix), "--pheno", str(c.pheno), "--pheno-name", "cc", "--trait-type", "cc=binary",
              "--covar", str(c.covar)]
    assert main(["wgr", *common, "--bsize", "200", "--out", str(d / "cc")]) == 0
    assert main(["assoc", *common, "--pred", str(d / "cc_pred.list"), "--spa", "--out", str(d / "cc.tsv")]) == 0
    t = pl.read_csv(d / "cc.tsv", separator="\t", null_values="NA")
    assert t.height == c.n_variants and t.get_column("firth").sum() == (t.get_column("p_value") < 0.05).sum()
    capsys.readouterr()
    assert main(["assoc", *common, "--pred", str(d / "cc_pred.list"), "--approx", "--out", str(d / "x.tsv")]) == 2
    assert "--approx: only meaningful with --firth" in capsys.readouterr().err
    assert main(["assoc", *common, "--spa", "--out", str(d / "x.tsv")]) == 2
    assert "--spa: only used with --pred" in capsys.readouterr().err
    (d / "bad.list").write_text(f"other {d / 'cc_1.loco'}\n")
    assert main(["assoc", *common, "--pred", str(d / "bad.list"), "--out", str(d / "x.tsv")]) == 2
    assert "no LOCO predictions for trait(s) ['cc']" in capsys.readouterr().err
    assert not Path(d / "x.tsv").exists()


def test_chromosome_x__step1_row_23_and_step2_uses_the_x_model(cohort):
    import shutil

    c, _, d = cohort
    x = d / "withx"
    for ext in (".bed", ".fam"):
        shutil.copy(f"{c.prefix}{ext}", f"{x}{ext}")
    bim = [ln.split("\t") for ln in Path(f"{c.prefix}.bim").read_text().splitlines()]
    Path(f"{x}.bim").write_text("".join("\t".join(["X" if f[0] == "3" else f[0], *f[1:]]) + "\n" for f in bim))
    res = run_step1([x], c.pheno, pheno_names=["y", "cc"], trait_types={"cc": "binary"}, covar=[c.covar],
                    covar_names=["age"], bsize=100)
    assert res.n_blocks == 6
    # Chromosome X's LOCO differs from the whole-genome prediction (row 23); absent chromosomes do not.
    assert not np.allclose(res.loco["y"][:, 22], res.loco["y"][:, 5])
    paths = write_step1(res, d / "fitx")
    out = run_step2([x], c.pheno, pred=paths["pred_list"], pheno_names=["y", "cc"], trait_types={"cc": "binary"},
                    covar=[c.covar], covar_names=["age"], correction="firth")
    on_x = np.array([f[0] == "3" for f in bim])
    for trait in ("y", "cc"):
        t = out.tables[trait]
        assert t.height == c.n_variants and t.get_column("error_code").null_count() == t.height
        # sex is added as a covariate on X (plink2 --glm's X model): one residual df fewer there.
        df = t.get_column("residual_df").to_numpy()
        assert np.all(df[on_x] == df[~on_x][0] - 1), trait


def test_step1_pooled__chromosome_parts_sum_to_the_prediction_binary_and_quantitative(cohort):
    c, _, _ = cohort
    res = run_step1([c.prefix], c.pheno, pheno_names=["y", "cc"], trait_types={"cc": "binary"}, covar=[c.covar],
                    covar_names=["age"], bsize=100, level1="pooled")
    assert res.level1 == "pooled" and res.summary()["level1"] == "pooled" and res.cv == "loocv"
    for trait in ("y", "cc"):
        loco = res.loco[trait]
        assert np.isfinite(loco).all()
        # LOCO of chromosome c = whole-genome prediction (any absent chromosome's column) minus c's part.
        whole = loco[:, 22]
        parts = whole[:, None] - loco[:, :3]
        assert np.abs(parts).max() > 0
        # The per-chromosome parts of pooled stacking add up to the whole-genome prediction.
        np.testing.assert_allclose(parts.sum(axis=1), whole, rtol=1e-9, atol=1e-12)
    with pytest.raises(Exception, match="'blocks' or 'pooled'"):
        run_step1([c.prefix], c.pheno, pheno_names=["y"], covar=[c.covar], bsize=100, level1="per-chromosome")
