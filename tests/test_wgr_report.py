"""The step-1 summary across the TRE boundary: λGC without LOCO, the gate's allow-list, verify, report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from crosscohort.central.report.build import build_report
from crosscohort.cli import main
from crosscohort.contract.errors import GateError
from crosscohort.contract.release_wgr import WGR_FILE, WGR_WITHHELD, release_wgr_summary
from crosscohort.contract.stats import CHI2_1_MEDIAN, lambda_gc
from crosscohort.demo.pedigree import simulate_families
from crosscohort.tre.association.wgr import run_step1, write_step1
from crosscohort.tre.gate import GateRules, export_bundle

DIGEST = "cd" * 32


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    d = tmp_path_factory.mktemp("wgr_report")
    c = simulate_families(d / "fam", n_families=10, n_unrelated=150, n_chrom=2, variants_per_chrom=60,
                          n_causal=20, h2=0.5, seed=2)
    common = ["--bfile", str(c.prefix), "--pheno", str(c.pheno), "--pheno-name", "y,cc",
              "--trait-type", "cc=binary", "--covar", str(c.covar)]
    # Step 1 through the function `crosscohort wgr` calls (its name-list options are read by
    # read_study_tables on main).
    step1 = run_step1([c.prefix], c.pheno, pheno_names=["y", "cc"], trait_types={"cc": "binary"},
                      covar=[c.covar], covar_names=["sex", "age"], bsize=30)
    write_step1(step1, d / "step1")
    for t in ("y", "cc"):
        assert main(["assoc", *common[:4], "--pheno-name", t, *(common[6:8] if t == "cc" else []),
                     "--covar", str(c.covar), "--pred", str(d / "step1_pred.list"),
                     "--out", str(d / f"{t}.tsv")]) == 0
    return c, d


def _export(d: Path, c, out: Path, summary: Path, *, min_count: int = 20) -> int:
    return main(["export", "--cohort", out.name, "--sumstats", f"y={d / 'y.tsv'}", "--sumstats",
                 f"cc={d / 'cc.tsv'}", "--trait-type", "y=quantitative", "--trait-type", "cc=binary",
                 "--ids-from", f"{c.prefix}.fam", "--build", "GRCh38", "--ancestry", "simulated",
                 "--config-digest", DIGEST, "--min-count", str(min_count), "--min-mac", "5",
                 "--min-mac-group", "5", "--min-residual-df", "3", "--wgr-summary", str(summary),
                 "--out-dir", str(out)])


def test_step1_lambda_without_loco__equals_statsmodels_ols_of_each_variant(cohort):
    # Oracle: statsmodels OLS of y on intercept, sex, age and each step-1 variant (no offset);
    # the score statistic is (N - K) r^2 with r^2 = t^2 / (t^2 + N - K - 1), K = 3 covariates.
    import statsmodels.api as sm
    from bed_reader import open_bed

    c, d = cohort
    summary = json.loads((d / "step1.wgr.json").read_text())
    ids = [ln.split()[:2] for ln in Path(f"{c.prefix}.fam").read_text().splitlines()]
    fam = pl.DataFrame({"fid": [i[0] for i in ids], "iid": [i[1] for i in ids]})
    pheno = fam.join(pl.read_csv(c.pheno, separator="\t").rename({"#FID": "fid", "IID": "iid"}),
                     on=["fid", "iid"], how="left", maintain_order="left")
    cov = fam.join(pl.read_csv(c.covar, separator="\t").rename({"#FID": "fid", "IID": "iid"}),
                   on=["fid", "iid"], how="left", maintain_order="left")
    x = np.column_stack([np.ones(fam.height), cov.select("sex", "age").to_numpy().astype(float)])
    with open_bed(f"{c.prefix}.bed", count_A1=True) as bed:
        g = bed.read(dtype="float64")
    # Step 1 mean-imputes missing genotypes (as REGENIE): the oracle tests the same dosages.
    g = np.where(np.isnan(g), np.nanmean(g, axis=0), g)
    assert np.isfinite(x).all()
    n, k = x.shape
    for trait in ("y", "cc"):
        y = pheno.get_column(trait).to_numpy().astype(float)
        score = []
        for j in range(g.shape[1]):
            t = sm.OLS(y, np.column_stack([x, g[:, j]])).fit().tvalues[-1]
            score.append((n - k) * t * t / (t * t + n - k - 1))
        want = float(np.median(score)) / CHI2_1_MEDIAN
        got = next(s for s in summary["traits"] if s["trait"] == trait)["lambda_gc_no_loco"]
        # Stored as float32 per variant before the median: 1e-6 relative.
        assert got == pytest.approx(want, rel=1e-6), trait


def test_export_verify_report__step1_summary_crosses_the_gate_and_is_shown(cohort, tmp_path):
    c, d = cohort
    out = tmp_path / "exports" / "c1"
    assert _export(d, c, out, d / "step1.wgr.json") == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["wgr"] == WGR_FILE and WGR_FILE in {f["path"] for f in manifest["files"]}
    released = json.loads((out / WGR_FILE).read_text())
    inside = json.loads((d / "step1.wgr.json").read_text())
    # Counts of people withheld: neither the step-1 sample size nor any trait's n is released.
    assert "n_samples" not in released and released["withheld"] == WGR_WITHHELD
    assert all("n" not in t for t in released["traits"].values())
    assert released["level0_shrinkage"] == inside["level0_shrinkage"] and released["cv"] == inside["cv"]
    for t in inside["traits"]:
        r = released["traits"][t["trait"]]
        assert r["cv_r2"] == t["cv_r2"] and r["chosen_level1_shrinkage"] == t["chosen_level1_shrinkage"]
        # λGC with LOCO: of the released file, read back as the world reads it.
        nlp = pl.read_csv(out / f"{t['trait']}.tsv.gz", separator="\t", null_values="NA")
        assert r["lambda_gc_loco"] == pytest.approx(lambda_gc(nlp.get_column("neg_log_10_p_value").to_numpy()))
    audit = json.loads((out / "audit.json").read_text())
    assert audit["wgr"]["status"] == "pass" and "step-1 summary" in (out / "audit.md").read_text()

    rec = tmp_path / "verify.json"
    assert main(["verify", "--bundle", str(out), "--out", str(rec), "--min-count", "20", "--min-mac", "5",
                 "--min-mac-group", "5", "--min-residual-df", "3"]) == 0

    html = build_report(trait="y", meta_path=out / "y.tsv.gz", cohort_paths={"c1": out / "y.tsv.gz"},
                        out_path=tmp_path / "y.html", manifest_paths={"c1": out / "manifest.json"})
    page = html.read_text()
    assert 'id="cohorts-model"' in page and "λGC without LOCO" in page
    row = page[page.index('id="cohorts-model"'):].split("<tbody>")[1].split("</tr>")[0]
    y = released["traits"]["y"]
    for cell in ("c1", "wgr", released["cv"], f"{y['cv_r2']:.4f}", f"{y['lambda_gc_loco']:.4f}",
                 f"{y['lambda_gc_no_loco']:.4f}"):
        assert f"<td>{cell}</td>" in row, cell


def test_verify__a_count_added_to_the_released_summary_is_refused(cohort, tmp_path):
    c, d = cohort
    out = tmp_path / "exports" / "c1"
    assert _export(d, c, out, d / "step1.wgr.json") == 0
    released = json.loads((out / WGR_FILE).read_text())
    released["traits"]["y"]["n_cases"] = 7
    (out / WGR_FILE).write_text(json.dumps(released))
    # Re-signed manifest not needed to show the content rule: fix size and digest as a forger would.
    from crosscohort.tre.gate.bundle import file_digest

    man = json.loads((out / "manifest.json").read_text())
    for f in man["files"]:
        if f["path"] == WGR_FILE:
            f["sha256"], f["size"] = file_digest(out / WGR_FILE), (out / WGR_FILE).stat().st_size
    (out / "manifest.json").write_text(json.dumps(man))
    from crosscohort.central.verify import verify_bundle

    with pytest.raises(GateError, match=r"wgr.json: traits\['y'\] key\(s\) \['n_cases'\] outside the released"):
        verify_bundle(out, cohort="c1", required=GateRules(min_mac=5, min_mac_group=5, min_residual_df=3))


# ---------------------------------------------------------------- adversarial: the gate's allow-list


def _summary(tmp_path: Path, **change) -> Path:
    base = {
        "n_samples": 21, "n_variants": 120, "n_blocks": 4, "block_size": 30, "cv": "5-fold",
        "level0_h2": [0.01, 0.5], "level0_shrinkage": [11880.0, 120.0], "level1": "pooled",
        "traits": [{"trait": "bmi", "trait_type": "quantitative", "n": 21, "chosen_level1_h2": 0.5,
                    "chosen_level1_shrinkage": 8.0, "cv_r2": 0.1, "cv_criterion": 0.9, "criterion_name": "mse",
                    "level1_h2": [0.5], "level1_shrinkage": [8.0], "criterion": [0.9], "r2": [0.1],
                    "lambda_gc_no_loco": 1.1}],
    }
    trait = change.pop("trait", {})
    base.update(change)
    base["traits"][0].update(trait)
    p = tmp_path / "s.wgr.json"
    p.write_text(json.dumps(base))
    return p


def test_release_wgr_summary__counts_of_people_withheld_rest_released(tmp_path):
    out = release_wgr_summary(_summary(tmp_path), trait_types={"bmi": "quantitative"}, lambda_loco={"bmi": 1.01})
    assert "n_samples" not in out and "n" not in out["traits"]["bmi"]
    assert out["traits"]["bmi"]["lambda_gc_loco"] == 1.01 and out["traits"]["bmi"]["cv_r2"] == 0.1
    assert out["level1"] == "pooled"


@pytest.mark.parametrize("change", [
    {"n_cases": 7},  # a small count under a key the gate does not know
    {"trait": {"n_controls": 7}},
    {"trait": {"note": "F1 I1"}},  # free text
    {"cv": "HG00096"},  # an ID where a fixed string belongs
    {"level1": "HG00096"},
    {"trait": {"criterion_name": "HG00096"}},
    {"trait": {"trait": "HG00096"}},  # a trait that is not exported
    {"trait": {"trait": ["HG00096"]}},  # not a name at all
    {"trait": {"cv_r2": "HG00096"}},  # an ID where a number belongs
    {"level0_h2": ["HG00096"]},
    {"n_blocks": 2.5},
])
def test_release_wgr_summary__anything_off_the_allow_list_blocks_without_echoing_it(tmp_path, change):
    with pytest.raises(GateError, match="rule wgr_allow_list") as err:
        release_wgr_summary(_summary(tmp_path, **change), trait_types={"bmi": "quantitative"}, lambda_loco={})
    assert "HG00096" not in err.value.released and "F1 I1" not in err.value.released


def test_export_bundle__id_smuggled_into_the_summary_blocks_the_whole_bundle(tmp_path):
    src = tmp_path / "in.tsv"
    k = 3  # rows: not the number of samples (the gate would see a table of people)
    pl.DataFrame({"chromosome": [1] * k, "base_pair_location": [1000 * (i + 1) for i in range(k)],
                  "effect_allele": ["A"] * k, "other_allele": ["G"] * k, "beta": [0.1] * k,
                  "standard_error": [0.05] * k, "p_value": [0.04] * k, "effect_allele_frequency": [0.3] * k,
                  "n": [1000] * k, "mac": [600.0] * k, "residual_df": [990] * k,
                  "rsid": [f"rs{i + 1}" for i in range(k)]}
                 ).write_csv(src, separator="\t")
    fam = tmp_path / "c.fam"
    fam.write_text("FAM1 HG00096 0 0 1 -9\nFAM2 HG00097 0 0 1 -9\n")
    out = tmp_path / "exports" / "c1"
    args = dict(cohort="c1", trait_types={"bmi": "quantitative"}, ids_from=[fam], build="GRCh38",
                ancestry="European", config_digest=DIGEST, out_dir=out)
    with pytest.raises(GateError, match="wgr_allow_list"):
        export_bundle({"bmi": src}, **args, wgr_summary=_summary(tmp_path, trait={"trait_type": "HG00096"}))
    assert sorted(p.name for p in out.iterdir()) == ["audit.json", "audit.md"]
    assert "HG00096" not in (out / "audit.json").read_text() + (out / "audit.md").read_text()
    # The same bundle with an honest summary is released, wgr.json among its files.
    export_bundle({"bmi": src}, **args, wgr_summary=_summary(tmp_path))
    assert WGR_FILE in {p.name for p in out.iterdir()}


def test_export_bundle__numeric_family_ids_do_not_block_the_cv_scheme(tmp_path):
    # Families numbered from 1 (PLINK habit, the demo): "5-fold" holds the token 5, a family ID;
    # the CV scheme is the gate's own validated text (loocv or K-fold), not an identifier.
    src = tmp_path / "in.tsv"
    k = 3
    pl.DataFrame({"chromosome": [1] * k, "base_pair_location": [1000 * (i + 1) for i in range(k)],
                  "effect_allele": ["A"] * k, "other_allele": ["G"] * k, "beta": [0.1] * k,
                  "standard_error": [0.05] * k, "p_value": [0.04] * k, "effect_allele_frequency": [0.3] * k,
                  "n": [1000] * k, "mac": [600.0] * k, "residual_df": [990] * k,
                  "rsid": [f"rs{i + 1}" for i in range(k)]}).write_csv(src, separator="\t")
    fam = tmp_path / "c.fam"
    fam.write_text("5 S5a 0 0 1 -9\n5 S5b 0 0 1 -9\n")
    out = tmp_path / "exports" / "c1"
    export_bundle({"bmi": src}, cohort="c1", trait_types={"bmi": "quantitative"}, ids_from=[fam],
                  build="GRCh38", ancestry="European", config_digest=DIGEST, out_dir=out,
                  wgr_summary=_summary(tmp_path, cv="5-fold"))
    assert json.loads((out / WGR_FILE).read_text())["cv"] == "5-fold"


def test_marginal_chi2__missing_rows_leave_the_trait_out_of_numerator_and_denominator():
    from crosscohort.tre.association.wgr import marginal_chi2

    rng = np.random.default_rng(4)
    g = rng.normal(size=(50, 6))
    y = rng.normal(size=(50, 2))
    masks = np.ones((50, 2), dtype=bool)
    masks[::7, 1] = False
    y[~masks] = 0.0  # step 1's y_std: zero where missing
    got = marginal_chi2(g, y, masks)
    for t in range(2):
        m = masks[:, t]
        want = (g[m].T @ y[m, t]) ** 2 / (g[m] ** 2).sum(axis=0)
        np.testing.assert_allclose(got[:, t], want, rtol=1e-12)


def test_report__a_bundle_without_step1_summary_is_a_glm_row(tmp_path):
    src = tmp_path / "in.tsv"
    k = 3
    pl.DataFrame({"chromosome": [1] * k, "base_pair_location": [1000 * (i + 1) for i in range(k)],
                  "effect_allele": ["A"] * k, "other_allele": ["G"] * k, "beta": [0.1] * k,
                  "standard_error": [0.05] * k, "p_value": [0.04] * k, "effect_allele_frequency": [0.3] * k,
                  "n": [1000] * k, "mac": [600.0] * k, "residual_df": [990] * k,
                  "rsid": [f"rs{i + 1}" for i in range(k)]}).write_csv(src, separator="\t")
    fam = tmp_path / "c.fam"
    fam.write_text("F1 S1a 0 0 1 -9\nF1 S1b 0 0 1 -9\n")
    out = tmp_path / "exports" / "c1"
    export_bundle({"bmi": src}, cohort="c1", trait_types={"bmi": "quantitative"}, ids_from=[fam],
                  build="GRCh38", ancestry="European", config_digest=DIGEST, out_dir=out)
    assert "wgr" not in json.loads((out / "manifest.json").read_text())
    page = build_report(trait="bmi", meta_path=out / "bmi.tsv.gz", cohort_paths={"c1": out / "bmi.tsv.gz"},
                        out_path=tmp_path / "bmi.html", manifest_paths={"c1": out / "manifest.json"}).read_text()
    row = page[page.index('id="cohorts-model"'):].split("<tbody>")[1].split("</tr>")[0]
    assert "<td>c1</td><td>glm</td>" in row
    # No cohort ran wgr: the step-1 columns (seven dashes a row) are left out, and the note says why.
    assert row.count("<td>—</td>") == 0
    assert "No cohort released a step-1 summary" in page
