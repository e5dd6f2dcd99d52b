"""End to end: the three modes of the one Snakefile on the small simulated demo.

One demo run (session fixture) feeds the content tests; the cohort-mode and
central-mode runs start from fresh directories holding only what that mode
may see, and their DAGs are checked from Snakemake's own detailed summary.
"""

from __future__ import annotations

import copy
import gzip
import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml
from scipy.stats import norm

pytestmark = pytest.mark.workflow

REPO = Path(__file__).resolve().parent.parent
BASE_CONFIG = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
COHORTS = ["biobank_eur", "admixed_afr", "biobank_eas", "admixed_amr", "study_eur"]
TRAITS = ["ldl", "cad"]
GENOTYPE_OR_PHENOTYPE = re.compile(r"\.(bed|bim|fam|pheno\.tsv|covar\.tsv)$|results/pooled/|results/individual_fit/")


def _config(**top) -> dict:
    cfg = copy.deepcopy(BASE_CONFIG)
    cfg["demo"]["scale"] = "small"
    cfg.update(top)
    return cfg


def _write_config(workdir: Path, cfg: dict, name: str = "config.yaml") -> Path:
    (workdir / "config").mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "config" / "cohorts.tsv", workdir / "config" / "cohorts.tsv")
    path = workdir / "config" / name
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def snakemake(workdir: Path, *args: str, configfile: Path | None = None, check: bool = True,
              timeout: int = 900) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--cores", "2",
           "--workflow-profile", str(REPO / "workflow" / "profiles" / "default")]
    if configfile is not None:
        cmd += ["--configfile", str(configfile)]
    proc = subprocess.run(cmd + list(args), cwd=workdir, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        logs = "\n".join(f"== {p}\n{p.read_text()[-3000:]}" for p in sorted((workdir / "logs").rglob("*.log"))
                         if p.stat().st_size) if (workdir / "logs").exists() else ""
        raise AssertionError(f"snakemake failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}\n{logs}")
    return proc


def planned_jobs(workdir: Path, configfile: Path) -> dict[str, int]:
    """Rule -> job count that a dry run plans (Snakemake's 'Job stats' table)."""
    return job_stats(snakemake(workdir, "-n", configfile=configfile).stdout)


def job_stats(out: str) -> dict[str, int]:
    """Rule -> job count from Snakemake's 'Job stats' table in a run's log ({} without one)."""
    jobs: dict[str, int] = {}
    lines = out.splitlines()
    if "Job stats:" not in out:
        return jobs
    start = lines.index("Job stats:") + 3
    for line in lines[start:]:
        parts = line.split()
        if len(parts) != 2 or parts[0] == "total":
            break
        jobs[parts[0]] = int(parts[1])
    return jobs


def dag_inputs(workdir: Path, configfile: Path) -> list[str]:
    """Every input file of every job the DAG plans, from Snakemake's dry run of a fresh directory."""
    out = snakemake(workdir, "-n", configfile=configfile).stdout
    files: list[str] = []
    for line in out.splitlines():
        if line.strip().startswith("input:"):
            files.extend(f.strip() for f in line.split(":", 1)[1].split(","))
    return files


# ------------------------------------------------------------------ demo mode
@pytest.fixture(scope="session")
def demo(tmp_path_factory) -> Path:
    # Run once per session: tests/test_slurm.py imports this fixture (pytest then holds a
    # second session fixture of this name) and finds the finished run by its marker.
    base = tmp_path_factory.getbasetemp()
    wd, done = base / "demo", base / "demo.done"
    if done.exists():
        return wd
    shutil.rmtree(wd, ignore_errors=True)
    wd.mkdir()
    cfgfile = _write_config(wd, _config())
    proc = snakemake(wd, configfile=cfgfile)
    assert "crosscohort: done" in proc.stdout + proc.stderr
    done.touch()
    return wd


def _read(path: Path) -> pl.DataFrame:
    return pl.read_csv(path, separator="\t", null_values=["NA"], infer_schema_length=100000)


def test_demo__leaves_reports_and_manifests_that_match_their_files(demo):
    for trait in TRAITS:
        html = (demo / "results" / "report" / f"{trait}.html").read_text()
        for section in ("summary", "meta", "pooled", "comparison", "cohorts", "ledger", "audit"):
            assert f'id="{section}"' in html, section
        assert html.count("data:image/png;base64,") >= 2 + 2 + 1 + 2 * len(COHORTS)
    for c in COHORTS:
        manifest = json.loads((demo / "exports" / c / "manifest.json").read_text())
        listed = {Path(f["path"]).name: f for f in manifest["files"]}
        on_disk = {p.name for p in (demo / "exports" / c).iterdir()} - {"manifest.json", "manifest.sig.json"}
        assert set(listed) == on_disk
        # The demo signs each bundle with the key it generated for the cohort, and verify checked it.
        record = json.loads((demo / "results" / "verify" / f"{c}.json").read_text())
        assert record["signature"]["status"] == "valid"
        for name, entry in listed.items():
            data = (demo / "exports" / c / name).read_bytes()
            assert hashlib.sha256(data).hexdigest() == entry["sha256"]


def test_demo__largest_planted_effects_are_genome_wide_significant(demo):
    truth = _read(demo / "resources" / "demo" / "truth" / "causal.tsv")
    # small scale (900/600/650/500/350 people): the three largest shared ldl effects and
    # the largest cad effect are genome-wide significant by fixed-effect IVW (the table's
    # beta and SE; seed 42: p = 1e-26, 5e-22, 1e-8 and 3e-9), the two largest ldl effects
    # also by the demo's primary test, MR-MEGA's association p (p_value, 3 df: 1e-24, 3e-20);
    # the demo scale recovers five and three.
    for trait, k, k_mrmega in (("ldl", 3, 2), ("cad", 1, 0)):
        meta = _read(demo / "results" / "meta" / f"{trait}.tsv.gz")
        planted = truth.filter((pl.col("trait") == trait) & pl.col("ancestry_specific").is_null()
                               & pl.col("effect_ancestry").is_null())
        top = planted.sort("expected_rank").head(k)
        hits = top.join(meta, on=["chromosome", "base_pair_location"], how="left")
        assert hits.height == k
        ivw_p = 2 * norm.sf(np.abs(hits["beta_right"].to_numpy() / hits["standard_error"].to_numpy()))
        assert (ivw_p < 5e-8).all(), hits.select("chromosome", "base_pair_location", "beta", "standard_error")
        assert (hits["p_value"].head(k_mrmega) < 5e-8).all(), hits.select("base_pair_location", "p_value")
        # the meta-analysis recovers the planted direction on the ALT allele
        same = np.sign(hits["beta_right"].to_numpy()) == np.sign(hits["beta"].to_numpy())
        assert same.all()


def test_demo__mrmega_follows_the_afr_only_effect_that_ivw_dilutes(demo):
    """The demo runs MR-MEGA on two axes of genetic variation: the admixed African cohort
    at one end of an axis, and the variant whose effect exists only in AFR ancestry tested
    far more strongly by MR-MEGA (its ancestry heterogeneity) than by IVW or the pooled fit
    (small scale, seed 42: MR-MEGA p 2e-5, ancestry-heterogeneity p 5e-5, IVW p 0.04,
    pooled 0.01; demo scale: 3e-26, 7e-23, 9e-6, 6e-6)."""
    summary = json.loads((demo / "results" / "meta" / "ldl.tsv.gz.summary.json").read_text())
    mr = summary["mrmega"]
    assert mr["n_axes"] == 2 and sorted(mr["axes"]) == sorted(COHORTS)
    axes = np.array([mr["axes"][c] for c in COHORTS])
    extreme = {COHORTS[int(np.argmax(np.abs(axes[:, t])))] for t in range(2)}
    assert "admixed_afr" in extreme, mr["axes"]
    truth = _read(demo / "resources" / "demo" / "truth" / "causal.tsv")
    afr = truth.filter(pl.col("effect_ancestry") == "AFR")
    assert afr.height == 1
    meta = _read(demo / "results" / "meta" / "ldl.tsv.gz")
    pooled = _read(demo / "results" / "association" / "pooled" / "ldl.tsv.gz")
    key = ["chromosome", "base_pair_location"]
    r = afr.join(meta, on=key, suffix="_meta").row(0, named=True)
    assert r["n_studies"] == len(COHORTS)
    nlp_ivw = -np.log10(2 * norm.sf(abs(r["beta_meta"] / r["standard_error"])))
    nlp_pooled = afr.join(pooled, on=key, suffix="_pooled").row(0, named=True)["neg_log_10_p_value"]
    assert r["neg_log_10_p_value"] > nlp_ivw + 2 and r["neg_log_10_p_value"] > nlp_pooled + 2
    assert r["mrmega_neg_log_10_p_ancestry_het"] > 3


def test_demo__meta_and_pooled_betas_agree_over_significant_variants(demo):
    """Fixed-effect IVW and the pooled fit with cohort indicators estimate the same
    per-allele effect from the same people, so over variants significant in either
    arm the betas agree: r > 0.9 (the issue's bar) where the significant set spans
    a range of effects (ldl: dozens of variants at several loci), and for every such
    variant of either trait that every cohort contributed to (same people in both
    arms) the two estimates differ by less than 2 standard errors: they differ only
    by covariate modelling, far less than sampling noise."""
    for trait in TRAITS:
        meta = _read(demo / "results" / "meta" / f"{trait}.tsv.gz")
        pooled = _read(demo / "results" / "association" / "pooled" / f"{trait}.tsv.gz")
        j = meta.join(pooled, on=["chromosome", "base_pair_location", "effect_allele", "other_allele"],
                      suffix="_pooled")
        sig = j.filter((pl.col("p_value") < 5e-8) | (pl.col("p_value_pooled") < 5e-8))
        assert sig.height >= 5, trait
        b, bp = sig["beta"].to_numpy(), sig["beta_pooled"].to_numpy()
        assert (np.sign(b) == np.sign(bp)).all(), trait
        everyone = sig.filter(~pl.col("direction").str.contains("?", literal=True))
        assert everyone.height >= 1, trait
        delta = (everyone["beta"] - everyone["beta_pooled"]).abs() / everyone["standard_error"]
        assert (delta < 2).all(), (trait, delta.max())
        r = np.corrcoef(b, bp)[0, 1]
        if trait == "ldl":
            assert r > 0.9, (trait, r)
            # both arms estimate the same per-allele effect with no relative bias
            # (same people, same engine): the slope of meta on pooled is 1 up to
            # the method difference (measured 1.007 here, 1.009 at demo scale)
            slope = np.polyfit(bp, b, 1)[0]
            assert abs(slope - 1) < 0.1, slope
        # the comparison file reports the same figures, recomputed here independently
        cmp = json.loads((demo / "results" / "compare" / f"{trait}.json").read_text())
        assert cmp["significant_either"]["pearson_r"] == pytest.approx(r, rel=1e-9)
        assert cmp["significant_either"]["n"] == sig.height


def test_demo__federated_pooled_fit_equals_the_individual_level_fit_of_the_same_model(demo):
    """Issue 24: pool-fit from the opted-in cohorts' released sums against the individual-level
    fit of the same model (individual_fit: filled genotypes, cohort intercepts, cohort-specific
    PCs): equal to 1e-10 relative for the quantitative trait, read from compare's JSON and
    recomputed here from the two tables read by the package's reader; for the binary trait the
    JSON states the one-step estimator's error, which stays well under a standard error."""
    from crosscohort.contract.sumstats import read_sumstats

    sheet = _read(demo / "config" / "cohorts.tsv")
    opted = sheet.filter(pl.col("sufficient") == "yes").get_column("cohort").to_list()
    assert len(opted) >= 2
    key = ["chromosome", "base_pair_location", "effect_allele", "other_allele"]
    for trait in TRAITS:
        same = json.loads((demo / "results" / "compare" / "individual_fit" / f"{trait}.json").read_text())
        assert same["n_union"] == sum(same[k] for k in ("n_compared", "n_different_samples", "n_not_estimable",
                                                        "n_federated_only", "n_individual_only"))
        fed = read_sumstats(demo / "results" / "poolfit" / f"{trait}.tsv.gz")
        ind = read_sumstats(demo / "results" / "individual_fit" / f"{trait}.tsv.gz")
        assert (same["n_federated"], same["n_individual"]) == (fed.height, ind.height)
        # Same .bim alleles in both arms; the same people wherever n agrees (every opted-in cohort's sums).
        j = fed.join(ind, on=key, suffix="_ind").filter(
            (pl.col("n") == pl.col("n_ind")) & pl.col("beta").is_not_null() & pl.col("beta_ind").is_not_null())
        # small scale, seed 42: 423 (ldl) and 422 (cad) variants released by every opted-in cohort's gate
        assert j.height == same["n_compared"] and j.height >= 200, (trait, j.height)
        assert (j.get_column("n_studies") == len(opted)).all()
        b, bi = j.get_column("beta").to_numpy(), j.get_column("beta_ind").to_numpy()
        s, si = j.get_column("standard_error").to_numpy(), j.get_column("standard_error_ind").to_numpy()
        p, pi = j.get_column("p_value").to_numpy(), j.get_column("p_value_ind").to_numpy()
        rel = (np.abs(b - bi) / np.maximum(np.abs(bi), si), np.abs(s - si) / si, np.abs(p - pi) / pi)
        for name, r in zip(("max_rel_beta", "max_rel_se", "max_rel_p"), rel, strict=True):
            assert same[name] == pytest.approx(float(r.max()), rel=1e-9, abs=1e-300), (trait, name)
        if trait == "ldl":
            assert all(float(r.max()) <= 1e-10 for r in rel), [float(r.max()) for r in rel]
            assert same["within_tolerance"] is True and same["tolerance"] == 1e-10
        else:  # one-step from the null: first-order in beta, its measured error is reported (0.031 here)
            assert same["tolerance"] is None and 0 < same["max_rel_beta"] < 0.5, same["max_rel_beta"]
        html = (demo / "results" / "report" / f"{trait}.html").read_text()
        comparison = html[html.index('<section id="comparison"'):html.index('<section id="cohorts"')]
        assert f"federated pooled vs individual-level pooled (same model, {same['n_compared']:,} variants" in comparison
        assert "meta-analysis vs federated pooled fit" in comparison  # the meta-vs-federated table stays


def test_demo__reports_render_in_a_real_browser_without_errors(demo):
    """The demo's reports opened as a reviewer would: headless Chromium, no network."""
    from tests.conftest import require_tool
    from tests.test_report_browser import ARTIFACTS, EXPECTED_TABLES, _check, open_report

    chromium = require_tool("chromium", "chromium-browser")
    for trait in TRAITS:
        html = demo / "results" / "report" / f"{trait}.html"
        facts = open_report(chromium, html, ARTIFACTS / f"report-demo-{trait}.png")
        _check(facts, tables=EXPECTED_TABLES)


def test_demo__snakemake_report_carries_the_html_reports_and_captions(demo, tmp_path):
    import zipfile

    out = tmp_path / "snakemake-report.zip"
    snakemake(demo, "--report", str(out), configfile=demo / "config" / "config.yaml")
    with zipfile.ZipFile(out) as z:
        names = z.namelist()
        assert any(n.endswith("/ldl.html") for n in names), names[:20]
        assert any(n.endswith("/cad.html") for n in names)
        text = "".join(z.read(n).decode("utf-8", "ignore") for n in names if n.endswith("report.html"))
    assert "Self-contained HTML report" in text


def test_demo__planted_effects_are_recovered_by_both_arms(demo):
    truth = _read(demo / "resources" / "demo" / "truth" / "causal.tsv")
    for trait, k in (("ldl", 3), ("cad", 1)):
        top = truth.filter((pl.col("trait") == trait) & pl.col("ancestry_specific").is_null()
                           & pl.col("effect_ancestry").is_null()).sort("expected_rank").head(k)
        pooled = _read(demo / "results" / "association" / "pooled" / f"{trait}.tsv.gz")
        hits = top.join(pooled, on=["chromosome", "base_pair_location"], how="left")
        assert (hits["p_value"] < 5e-8).all(), hits.select("base_pair_location", "p_value")


def test_demo__eas_only_allele_is_reported_with_its_eafs_and_found_by_ivw_not_mrmega(demo):
    truth = _read(demo / "resources" / "demo" / "truth" / "causal.tsv")
    eas = truth.filter((pl.col("trait") == "ldl") & (pl.col("ancestry_specific") == "EAS"))
    assert eas.height == 1
    key = ["chromosome", "base_pair_location"]
    # Carried by the East Asian cohort and, through its EAS-like ancestry, the Latino-like
    # one (at about half the frequency); absent from the European and African cohorts.
    t = eas.row(0, named=True)
    for c in COHORTS:
        h = _read(demo / "results" / "harmonise" / "ldl" / f"{c}.tsv.gz").join(eas, on=key)
        if c in ("biobank_eas", "admixed_amr"):
            assert abs(h["effect_allele_frequency"].item() - t[f"eaf_{c}"]) < 0.01, c
        else:
            assert h.height == 0, c
    assert t["eaf_admixed_amr"] < 0.7 * t["eaf_biobank_eas"]
    # Two cohorts are fewer than MR-MEGA's T + 3 = 5: no MR-MEGA p, while IVW finds it
    # (seed 42, small scale: p = 7e-10; the demo scale's report lists it "ivw only").
    meta = _read(demo / "results" / "meta" / "ldl.tsv.gz")
    m = eas.join(meta, on=key, suffix="_meta").row(0, named=True)
    assert m["n_studies"] == 2 and m["direction"].count("?") == len(COHORTS) - 2
    assert m["p_value"] is None and m["mrmega_chi2_association"] is None
    assert 2 * norm.sf(abs(m["beta_meta"] / m["standard_error"])) < 5e-8
    # The comparison carries it with both cohorts' direction; meta's primary p is MR-MEGA's,
    # absent here, so the pooled arm alone calls it at 5e-8.
    cmp = eas.join(_read(demo / "results" / "compare" / "ldl.tsv"), on=key, suffix="_cmp")
    r = cmp.row(0, named=True)
    assert (r["direction_class"], r["class"]) == ("agree", "pooled_only")
    assert r["p_value_meta"] is None and r["p_value_pooled"] < 5e-8
    # The report's comparison section sets MR-MEGA's loci against IVW's.
    html = (demo / "results" / "report" / "ldl.html").read_text()
    comparison = html[html.index('<section id="comparison"'):html.index('<section id="cohorts"')]
    assert 'id="comparison-mrmega-ivw"' in comparison and "<th>pooled p</th>" in comparison


def test_demo__no_individual_level_column_or_id_in_exports(demo):
    fam_ids = set()
    for c in COHORTS:
        for line in (demo / "resources" / "demo" / f"{c}.fam").read_text().splitlines():
            fam_ids.update(line.split()[:2])
    for c in COHORTS:
        for p in (demo / "exports" / c).iterdir():
            raw = p.read_bytes()
            text = gzip.decompress(raw).decode() if p.suffix == ".gz" else raw.decode()
            tokens = set(re.split(r"[\t\n,: \"'{}\[\]]+", text))
            assert not tokens & fam_ids, p
            if p.name.endswith(".tsv.gz"):
                header = text.splitlines()[0].split("\t")
                assert not {"mac", "mac_cases", "mac_controls", "residual_df", "error_code"} & set(header)


def test_config_change__reruns_exactly_the_dependent_jobs(demo):
    nothing = planned_jobs(demo, _write_config(demo, _config(), "same.yaml"))
    assert nothing == {}, nothing
    meta_only = planned_jobs(demo, _write_config(demo, _config(meta={"method": "random", "gc": False}), "m.yaml"))
    # compare_federated: the demo's cohorts opt in to the federated pooled fit (issue 24).
    assert meta_only == {"meta": 2, "compare": 2, "compare_federated": 2, "report": 2, "all": 1}, meta_only
    cfg = _config()
    cfg["qc"]["geno"] = 0.05
    qc = planned_jobs(demo, _write_config(demo, cfg, "qc.yaml"))
    assert "simulate_demo" not in qc and "pool_inputs" not in qc
    assert qc["qc"] == len(COHORTS) and qc["pool_qc"] == 1
    assert qc["export"] == len(COHORTS) and qc["report"] == 2
    gate = copy.deepcopy(_config())
    gate["export_gate"]["overrides"] = {"biobank_eas": {"min_count": 10}}
    g = planned_jobs(demo, _write_config(demo, gate, "gate.yaml"))
    assert g["export"] == 1 and "qc" not in g and "association_part" not in g, g


# ---------------------------------------------------------------- cohort mode
def test_cohort_mode__reads_only_its_cohorts_files_and_exports_the_same_bundle(demo, tmp_path):
    cohort = "biobank_eas"
    src = demo / "resources" / "demo"
    dst = tmp_path / "resources" / "demo"
    dst.mkdir(parents=True)
    for suffix in (".bed", ".bim", ".fam", ".pheno.tsv", ".covar.tsv"):
        shutil.copy(src / f"{cohort}{suffix}", dst / f"{cohort}{suffix}")
    # The TRE's own key, made once with `crosscohort keygen`, named in the config.
    key, pub = tmp_path / "secure" / "tre.key", tmp_path / "tre.pub"
    subprocess.run([sys.executable, "-m", "crosscohort", "keygen", "--key", str(key), "--public-key", str(pub)],
                   check=True, capture_output=True)
    cfg = _config(mode="cohort", cohort=cohort)
    cfg["export_gate"]["signing_key"] = str(key)
    cfgfile = _write_config(tmp_path, cfg)

    inputs = dag_inputs(tmp_path, cfgfile)
    assert inputs, "the DAG has inputs"
    others = [f for f in inputs if any(o in f for o in COHORTS if o != cohort) or "pooled" in f
              or "individual_fit" in f]
    assert others == [], others

    snakemake(tmp_path, configfile=cfgfile)
    assert sorted(p.name for p in (tmp_path / "exports").iterdir()) == [cohort]
    for trait in TRAITS:
        ours = (tmp_path / "exports" / cohort / f"{trait}.tsv.gz").read_bytes()
        assert ours == (demo / "exports" / cohort / f"{trait}.tsv.gz").read_bytes()
    assert not (tmp_path / "results" / "meta").exists()
    from crosscohort.central.verify import verify_bundle

    assert verify_bundle(tmp_path / "exports" / cohort, cohort=cohort, public_key=pub).signature.status == "valid"


# --------------------------------------------------------------- central mode
def _public_keys(demo: Path, workdir: Path) -> None:
    """What a centre holds of each cohort's key pair: the public key the cohort sheet names."""
    (workdir / "results" / "keys").mkdir(parents=True)
    for c in COHORTS:
        shutil.copy(demo / "results" / "keys" / f"{c}.pub", workdir / "results" / "keys" / f"{c}.pub")


def test_central_mode__no_job_reads_genotypes_or_phenotypes_and_meta_matches_demo(demo, tmp_path):
    shutil.copytree(demo / "exports", tmp_path / "exports")
    _public_keys(demo, tmp_path)
    ref = Path("resources/demo/reference/variants.tsv.gz")
    (tmp_path / ref.parent).mkdir(parents=True)
    shutil.copy(demo / ref, tmp_path / ref)
    cfgfile = _write_config(tmp_path, _config(mode="central"))

    inputs = dag_inputs(tmp_path, cfgfile)
    assert any(f.startswith("exports/") for f in inputs)
    bad = [f for f in inputs if GENOTYPE_OR_PHENOTYPE.search(f)]
    assert bad == [], bad

    snakemake(tmp_path, configfile=cfgfile)
    for trait in TRAITS:
        a = _read(tmp_path / "results" / "meta" / f"{trait}.tsv.gz")
        b = _read(demo / "results" / "meta" / f"{trait}.tsv.gz")
        assert a.equals(b)
        html = (tmp_path / "results" / "report" / f"{trait}.html").read_text()
        assert 'id="meta"' in html and 'id="audit"' in html
    assert not (tmp_path / "results" / "association").exists()
    assert not list((tmp_path / "results" / "keys").glob("*.key"))  # no private key made centrally
