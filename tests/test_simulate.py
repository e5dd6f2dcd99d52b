"""The demo simulator: files plink2 reads, realistic population genetics, planted truth.

One small simulation (module fixture, ~2 s) serves every test; the determinism
test runs the CLI twice more. Oracles: plink2 (reads the .bed, computes
frequencies, missingness and HWE), bed-reader (an independent .bed decoder)
and statsmodels (OLS).
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import re
import subprocess
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from bed_reader import open_bed

from crosscohort.contract.errors import ConfigError
from crosscohort.demo.simulate import COHORTS, SimulationResult, simulate_demo

SEED = 42


@pytest.fixture(scope="module")
def sim(tmp_path_factory) -> SimulationResult:
    return simulate_demo(tmp_path_factory.mktemp("sim") / "demo", seed=SEED, scale="small")


def _read_tsv(path: Path) -> pl.DataFrame:
    return pl.read_csv(path, separator="\t", null_values="NA", infer_schema_length=None)


def _bim(prefix: Path) -> pl.DataFrame:
    return pl.read_csv(
        f"{prefix}.bim", separator="\t", has_header=False,
        new_columns=["chrom", "id", "cm", "pos", "a1", "a2"],
        schema_overrides={"chrom": pl.String},
    )


def _genotypes(prefix: Path) -> np.ndarray:
    """ALT-allele dosages (samples x variants, NaN missing) via bed-reader, independent of our writer."""
    with open_bed(f"{prefix}.bed", count_A1=True, num_threads=1) as bed:
        return bed.read(dtype="float64")


def _alt_freq(g: np.ndarray) -> np.ndarray:
    return np.nansum(g, axis=0) / (2.0 * np.sum(~np.isnan(g), axis=0))


def _plink2(exe: str, *args: str) -> None:
    subprocess.run([exe, "--threads", "1", "--memory", "2000", *args], check=True,
                   capture_output=True, text=True)


def _truth(sim: SimulationResult) -> pl.DataFrame:
    return _read_tsv(sim.causal_truth)


# --- files and layout ---------------------------------------------------------
def test_simulate__writes_every_declared_file(sim):
    out = sim.out_dir
    for c in COHORTS:
        for ext in (".bed", ".bim", ".fam", ".pheno.tsv", ".covar.tsv"):
            assert (out / f"{c}{ext}").stat().st_size > 0, f"{c}{ext}"
    for rel in ("cohorts.tsv", "reference/variants.tsv.gz", "truth/causal.tsv", "truth/samples.tsv",
                "truth/qc_planted.tsv", "truth/variants.ledger.json"):
        assert (out / rel).stat().st_size > 0, rel
    # No temporary files left behind by the atomic writes.
    assert not [p for p in out.rglob(".*.tmp")]


def test_simulate__cohort_sheet_points_at_the_written_files(sim):
    sheet = _read_tsv(sim.cohort_sheet)
    assert sheet.columns == ["cohort", "genotypes", "genotype_format", "pheno", "covar", "build",
                             "ancestry", "duo_codes"]
    assert sheet["cohort"].to_list() == list(COHORTS)
    assert set(sheet["genotype_format"]) == {"bfile"}
    assert set(sheet["build"]) == {"GRCh38"}
    assert set(sheet["duo_codes"]) == {"GRU"}
    for row in sheet.iter_rows(named=True):
        assert Path(row["genotypes"] + ".bed").exists()
        assert Path(row["pheno"]).exists() and Path(row["covar"]).exists()
        assert row["ancestry"]


def test_simulate__bed_is_variant_major_plink1_with_expected_size(sim):
    n_var = _bim(sim.cohorts[0].bfile).height
    assert n_var == sim.n_variants
    for c in sim.cohorts:
        raw = Path(f"{c.bfile}.bed").read_bytes()
        assert raw[:3] == bytes([0x6C, 0x1B, 0x01])
        assert len(raw) == 3 + n_var * ((c.n_samples + 3) // 4)


def test_simulate__bim_is_biallelic_acgt_sorted_unique_and_shared_by_cohorts(sim):
    bims = [_bim(c.bfile) for c in sim.cohorts]
    assert all(b.equals(bims[0]) for b in bims[1:]), "cohorts must share one variant set (pooled arm)"
    bim = bims[0]
    assert set(bim["a1"]) <= set("ACGT") and set(bim["a2"]) <= set("ACGT")
    assert (bim["a1"] != bim["a2"]).all()
    assert bim["id"].n_unique() == bim.height
    assert all(re.fullmatch(r"rs\d+", i) for i in bim["id"].to_list())
    assert set(bim["chrom"]) == {"1", "2", "3"}
    for _, grp in bim.group_by("chrom"):
        pos = grp["pos"].to_numpy()
        assert pos.min() >= 1 and np.all(np.diff(pos) > 0)
    # Palindromic SNPs are realistic and wanted.
    pal = ((bim["a1"] + bim["a2"]).is_in(["AT", "TA", "CG", "GC"])).sum()
    assert 0.05 < pal / bim.height < 0.4


def test_simulate__minor_allele_count_rule_holds_up_to_planted_missingness(sim):
    count = np.zeros(sim.n_variants)
    called = np.zeros(sim.n_variants)
    missing = np.zeros(sim.n_variants)
    for c in sim.cohorts:
        g = _genotypes(c.bfile)
        count += np.nansum(g, axis=0)
        called += 2 * np.sum(~np.isnan(g), axis=0)
        missing += 2 * np.sum(np.isnan(g), axis=0)
    mac = np.minimum(count, called - count)
    # The rule applies to the true genotypes; missing calls can hide at most 2 alleles each.
    assert np.all(mac + missing >= 5)
    assert sim.ledger.n_in == sim.n_variants + sum(sim.ledger.removed.values())
    assert sim.n_dropped_low_mac > 0 and sim.n_dropped_multiple_mutations > 0


def test_simulate__sample_ids_are_unique_tre_style_and_consistent_across_files(sim):
    seen: set[str] = set()
    prefix = {"biobank_eur": "EUR", "admixed_afr": "AFA", "biobank_eas": "EAS", "admixed_amr": "AMA",
              "study_eur": "EUS"}
    samples = _read_tsv(sim.samples_truth)
    for c in sim.cohorts:
        fam = pl.read_csv(f"{c.bfile}.fam", separator="\t", has_header=False,
                          new_columns=["fid", "iid", "pat", "mat", "sex", "pheno"],
                          schema_overrides={"pheno": pl.String})
        assert fam.height == c.n_samples == sum(c.composition.values())
        assert (fam["fid"] == fam["iid"]).all()
        assert all(re.fullmatch(prefix[c.cohort] + r"\d{7}", i) for i in fam["iid"].to_list())
        assert set(fam["sex"]) == {1, 2}
        assert set(fam["pheno"]) == {"-9"}
        ids = fam["iid"].to_list()
        assert not seen & set(ids)
        seen |= set(ids)
        pheno = _read_tsv(c.pheno)
        covar = _read_tsv(c.covar)
        assert pheno.columns == ["#FID", "IID", "ldl", "cad"]
        assert covar.columns == ["#FID", "IID", "age", "sex"]
        assert pheno["IID"].to_list() == ids and covar["IID"].to_list() == ids
        assert covar["sex"].to_list() == fam["sex"].to_list()
        assert covar["age"].min() >= 40 and covar["age"].max() <= 70
        truth = samples.filter(pl.col("cohort") == c.cohort)
        assert truth["IID"].to_list() == ids
        assert dict(zip(*np.unique(truth["population"].to_numpy(), return_counts=True), strict=True)) == c.composition


def test_simulate__phenotypes_look_like_ldl_and_cad(sim):
    pheno = pl.concat([_read_tsv(c.pheno) for c in sim.cohorts])
    ldl = pheno["ldl"].drop_nulls().to_numpy()
    assert 3.2 < ldl.mean() < 3.6 and 0.75 < ldl.std() < 1.05
    cad = pheno["cad"].drop_nulls()
    assert set(cad) == {1, 2}
    assert 0.18 < (cad == 2).mean() < 0.26
    for col in ("ldl", "cad"):
        assert 0.002 < pheno[col].null_count() / pheno.height < 0.03
    assert sum(c.n_cases for c in sim.cohorts) == int((cad == 2).sum())
    # The raw file spells missing values NA.
    text = sim.cohorts[0].pheno.read_text()
    assert "\tNA" in text and "nan" not in text.lower()


def test_simulate__admixed_cohort_has_about_80_percent_afr_ancestry(sim):
    s = _read_tsv(sim.samples_truth)
    admix = s.filter(pl.col("population") == "ADMIX")["afr_fraction"].to_numpy()
    assert 0.72 < admix.mean() < 0.88
    assert admix.std() > 0.02  # individuals differ, as real admixed genomes do
    assert set(s.filter(pl.col("population") == "ADMIX")["eas_fraction"]) == {0.0}
    pure = s.filter(~pl.col("population").is_in(["ADMIX", "AMR"]))
    assert set(pure["afr_fraction"]) == {0.0}  # the cohorts hold no unadmixed AFR people
    assert (pure["eas_fraction"].to_numpy() == (pure["population"] == "EAS").to_numpy()).all()


def test_simulate__latino_like_cohort_has_its_three_ancestries(sim):
    # Browning et al. 2018: 1/6 AFR, 1/3 EUR, 1/2 EAS-like (Native American proxy).
    s = _read_tsv(sim.samples_truth)
    amr = s.filter(pl.col("population") == "AMR")
    assert set(amr["cohort"]) == {"admixed_amr"}
    afr, eas = amr["afr_fraction"].to_numpy(), amr["eas_fraction"].to_numpy()
    assert 0.12 < afr.mean() < 0.22 and 0.44 < eas.mean() < 0.56
    assert afr.std() > 0.02 and eas.std() > 0.02
    assert (afr + eas <= 1.0 + 1e-4).all()


# --- plink2 as the oracle -------------------------------------------------------
def test_simulate__plink2_reads_bed_and_alt_freqs_match_truth_and_bed_reader(sim, plink2, tmp_path):
    truth = _truth(sim)
    for c in sim.cohorts:
        # oracle: plink2 --bfile {cohort} --freq --out {tmp}/{cohort}
        _plink2(plink2, "--bfile", str(c.bfile), "--freq", "--out", str(tmp_path / c.cohort))
        freq = _read_tsv(tmp_path / f"{c.cohort}.afreq")
        bim = _bim(c.bfile)
        assert freq["ID"].to_list() == bim["id"].to_list()
        assert freq["ALT"].to_list() == bim["a1"].to_list()  # A1 = ALT
        assert freq["REF"].to_list() == bim["a2"].to_list()
        # Against an independent decoder (bed-reader): plink2 prints 6 significant digits.
        ours = _alt_freq(_genotypes(c.bfile))
        np.testing.assert_allclose(freq["ALT_FREQS"].to_numpy(), ours, rtol=1e-5, atol=1e-6)
        # Against the simulator's truth for the causal variants (rounded to 6 decimals there).
        got = dict(zip(freq["ID"].to_list(), freq["ALT_FREQS"].to_list(), strict=True))
        for row in truth.iter_rows(named=True):
            assert got[row["rsid"]] == pytest.approx(row[f"eaf_{c.cohort}"], abs=2e-6)
            assert row["effect_allele"] == freq.filter(pl.col("ID") == row["rsid"])["ALT"].item()


def test_simulate__planted_qc_failures_are_what_plink2_qc_removes(sim, plink2, tmp_path):
    planted = _read_tsv(sim.qc_truth)
    for c in sim.cohorts:
        mine = planted.filter(pl.col("cohort") == c.cohort)
        bad_v = set(mine.filter(pl.col("kind") == "variant_missing")["id"])
        hwe_v = set(mine.filter(pl.col("kind") == "variant_hwe")["id"])
        bad_s = set(mine.filter(pl.col("kind") == "sample_missing")["id"])
        assert (len(bad_v), len(hwe_v), len(bad_s)) == (
            c.planted_missing_variants, c.planted_hwe_variants, c.planted_missing_samples)
        assert len(bad_v) >= 0.004 * sim.n_variants and len(bad_s) >= 2 and len(hwe_v) >= 3
        o = str(tmp_path / c.cohort)
        # oracle: plink2 --bfile {cohort} --missing --hardy --out {o}
        _plink2(plink2, "--bfile", str(c.bfile), "--missing", "--hardy", "--out", o)
        vmiss = _read_tsv(Path(o + ".vmiss"))
        smiss = _read_tsv(Path(o + ".smiss"))
        hardy = _read_tsv(Path(o + ".hardy"))
        is_bad = vmiss["ID"].is_in(list(bad_v))
        assert vmiss.filter(is_bad)["F_MISS"].min() > 0.15
        assert vmiss.filter(~is_bad)["F_MISS"].max() < 0.05
        is_bad_s = smiss["IID"].is_in(list(bad_s))
        assert smiss.filter(is_bad_s)["F_MISS"].min() > 0.15
        assert smiss.filter(~is_bad_s)["F_MISS"].max() < 0.02
        assert 0.003 < smiss.filter(~is_bad_s)["F_MISS"].mean() < 0.008  # ~0.5 % random calls
        h = hardy.filter(pl.col("ID").is_in(list(hwe_v)))
        assert (h["HET_A1_CT"] == 0).all() and (h["P"] < 1e-15).all()
        # oracle: plink2 --bfile {cohort} --mind 0.1 --geno 0.1 --hwe 1e-15 --write-snplist --write-samples --out {o}.qc
        _plink2(plink2, "--bfile", str(c.bfile), "--mind", "0.1", "--geno", "0.1", "--hwe", "1e-15",
                "--write-snplist", "--write-samples", "--out", o + ".qc")
        kept_v = set(Path(o + ".qc.snplist").read_text().split())
        kept_s = {ln.split("\t")[1] for ln in Path(o + ".qc.id").read_text().splitlines()[1:]}
        removed_v = set(vmiss["ID"]) - kept_v
        assert bad_v | hwe_v <= removed_v
        # Beyond the planted ones, --hwe may also remove genuine Wahlund-effect failures
        # (an allele common only in a cohort's 5-10 % minority ancestry): a handful at most.
        assert len(removed_v - bad_v - hwe_v) <= 0.0005 * sim.n_variants
        assert set(smiss["IID"]) - kept_s == bad_s


# --- population genetics ----------------------------------------------------------
def test_simulate__eur_and_eas_biobanks_differ_like_populations(sim):
    ge, ga = _genotypes(sim.cohort("biobank_eur").bfile), _genotypes(sim.cohort("biobank_eas").bfile)
    p1, p2 = _alt_freq(ge), _alt_freq(ga)
    n1, n2 = 2 * np.sum(~np.isnan(ge), axis=0), 2 * np.sum(~np.isnan(ga), axis=0)
    pbar = (p1 + p2) / 2
    common = np.minimum(pbar, 1 - pbar) > 0.05
    # Hudson's Fst (Bhatia et al. 2013), ratio of averages over common SNPs.
    num = (p1 - p2) ** 2 - p1 * (1 - p1) / (n1 - 1) - p2 * (1 - p2) / (n2 - 1)
    den = p1 * (1 - p2) + p2 * (1 - p1)
    fst = num[common].sum() / den[common].sum()
    assert 0.05 < fst < 0.2, fst  # CEU-CHB is ~0.1; each cohort is diluted by 10 % of another ancestry


def test_simulate__ld_decays_with_distance(sim):
    g = _genotypes(sim.cohort("biobank_eur").bfile)
    bim = _bim(sim.cohort("biobank_eur").bfile)
    p = _alt_freq(g)
    sel = np.flatnonzero((bim["chrom"] == "1").to_numpy() & (np.minimum(p, 1 - p) > 0.05))
    x = g[:, sel]
    x = np.where(np.isnan(x), np.nanmean(x, axis=0), x)
    z = (x - x.mean(axis=0)) / x.std(axis=0)
    pos = bim["pos"].to_numpy()[sel]
    r2_adjacent = np.mean(np.mean(z[:, :-1] * z[:, 1:], axis=0) ** 2)
    far = np.searchsorted(pos, pos + 1_000_000)
    ok = far < len(pos)
    r2_far = np.mean(np.mean(z[:, ok] * z[:, far[ok]], axis=0) ** 2)
    assert r2_adjacent > 0.2
    assert r2_far < 0.02
    assert r2_adjacent > 20 * r2_far


def test_simulate__reference_panel_has_every_variant_and_similar_frequencies(sim):
    with gzip.open(sim.reference, "rt") as fh:
        rows = list(csv.reader(fh, delimiter="\t"))
    assert rows[0] == ["chromosome", "base_pair_location", "ref", "alt", "alt_frequency"]
    bim = _bim(sim.cohorts[0].bfile)
    assert len(rows) - 1 == bim.height
    assert [r[0] for r in rows[1:]] == bim["chrom"].to_list()
    assert [int(r[1]) for r in rows[1:]] == bim["pos"].to_list()
    assert [r[2] for r in rows[1:]] == bim["a2"].to_list()
    assert [r[3] for r in rows[1:]] == bim["a1"].to_list()
    ref_p = np.array([float(r[4]) for r in rows[1:]])
    assert ref_p.min() >= 0 and ref_p.max() <= 1
    pooled = np.concatenate([_genotypes(c.bfile) for c in sim.cohorts])
    # Different individuals of the same populations: frequencies agree closely, not exactly.
    assert np.corrcoef(ref_p, _alt_freq(pooled))[0, 1] > 0.9


# --- the planted genetic architecture ------------------------------------------------
def test_simulate__truth_table_has_the_declared_columns_and_architecture(sim):
    t = _truth(sim)
    for col in ("trait", "chromosome", "base_pair_location", "variant_id", "rsid", "effect_allele",
                "other_allele", "beta", "ancestry_specific", "effect_ancestry", "eaf_AFR", "eaf_EUR",
                "eaf_EAS", "eaf_ADMIX", "eaf_AMR", "expected_rank", *(f"eaf_{c}" for c in COHORTS)):
        assert col in t.columns, col
    ldl, cad = t.filter(pl.col("trait") == "ldl"), t.filter(pl.col("trait") == "cad")
    assert 11 <= ldl.height <= 16 and 6 <= cad.height <= 10
    assert ldl["expected_rank"].sort().to_list() == list(range(1, ldl.height + 1))
    assert ldl.filter(pl.col("ancestry_specific") == "EAS").height == 1
    assert ldl.filter(pl.col("effect_ancestry") == "AFR").height == 1
    assert cad["effect_ancestry"].null_count() == cad.height
    assert set(cad["rsid"]) & set(ldl["rsid"]), "cad shares some causal variants with ldl"
    assert set(cad["rsid"]) - set(ldl["rsid"]), "cad has causal variants of its own"
    bim = _bim(sim.cohorts[0].bfile)
    for row in t.iter_rows(named=True):
        b = bim.filter(pl.col("id") == row["rsid"]).row(0, named=True)
        assert row["variant_id"] == f"{b['chrom']}:{b['pos']}:{b['a2']}:{b['a1']}"
        assert (row["effect_allele"], row["other_allele"]) == (b["a1"], b["a2"])
    raw = sim.causal_truth.read_text()
    assert '""' not in raw  # an empty ancestry_specific is an empty field


def test_simulate__eas_specific_variant_is_common_only_in_eas(sim):
    row = _truth(sim).filter(pl.col("ancestry_specific") == "EAS").row(0, named=True)
    idx = _bim(sim.cohorts[0].bfile)["id"].to_list().index(row["rsid"])
    maf = {}
    for c in sim.cohorts:
        p = _alt_freq(_genotypes(c.bfile)[:, [idx]])[0]
        maf[c.cohort] = min(p, 1 - p)
    assert maf["biobank_eas"] > 0.1
    assert maf["biobank_eur"] < 0.01
    assert maf["admixed_afr"] < 0.01
    assert maf["study_eur"] < 0.01
    # The Latino-like cohort carries it through its EAS-like ancestry, at about half the frequency.
    assert 0.3 * maf["biobank_eas"] < maf["admixed_amr"] < 0.7 * maf["biobank_eas"]


def _ols_effect(c, rsid: str, *, ancestry: pl.DataFrame | None = None) -> tuple[float, float, float]:
    """statsmodels OLS of ldl on the variant, age and sex in one cohort: beta, SE, p.

    ``ancestry``: the samples truth, whose AFR and EAS fractions are then covariates too
    (what the pipeline's PCs stand for).
    """
    import statsmodels.api as sm

    idx = _bim(c.bfile)["id"].to_list().index(rsid)
    x = _genotypes(c.bfile)[:, idx]
    pheno, covar = _read_tsv(c.pheno), _read_tsv(c.covar)
    y = pheno["ldl"].to_numpy().astype(float)
    ok = np.isfinite(x) & np.isfinite(y)
    cols = [np.ones(ok.sum()), x[ok], covar["age"].to_numpy()[ok], covar["sex"].to_numpy()[ok]]
    if ancestry is not None:
        mine = ancestry.filter(pl.col("cohort") == c.cohort)
        assert mine["IID"].to_list() == covar["IID"].to_list()
        cols += [mine[f].to_numpy()[ok] for f in ("afr_fraction", "eas_fraction")
                 if mine[f].to_numpy()[ok].std() > 0]
    fit = sm.OLS(y[ok], np.column_stack(cols)).fit()
    return float(fit.params[1]), float(fit.bse[1]), float(fit.pvalues[1])


def test_simulate__afr_effect_variant_is_common_everywhere_but_acts_only_in_afr_ancestry(sim):
    row = _truth(sim).filter(pl.col("effect_ancestry") == "AFR").row(0, named=True)
    assert row["trait"] == "ldl" and row["ancestry_specific"] is None
    for c in COHORTS:  # common in every cohort: MR-MEGA can fit it
        assert 0.1 < row[f"eaf_{c}"] < 0.9, c
    samples = _read_tsv(sim.samples_truth)
    # oracle: statsmodels OLS per cohort, adjusted for ancestry. In admixed_afr the
    # per-allele effect is beta x the mean AFR fraction of its people (chi2 ~ 35 expected
    # at small scale); in the European and East Asian cohorts it is absent.
    afa = sim.cohort("admixed_afr")
    afr_mean = samples.filter(pl.col("cohort") == afa.cohort)["afr_fraction"].mean()
    b, se, p = _ols_effect(afa, row["rsid"], ancestry=samples)
    assert p < 1e-4
    assert abs(b - row["beta"] * afr_mean) < 3 * se
    for c in ("biobank_eur", "study_eur", "biobank_eas"):
        b, se, _ = _ols_effect(sim.cohort(c), row["rsid"], ancestry=samples)
        assert abs(b) < 3 * se, c


def test_simulate__top_ldl_effect_recovered_by_ols_in_eur_cohort(sim):
    t = _truth(sim).filter((pl.col("trait") == "ldl") & pl.col("ancestry_specific").is_null()
                           & pl.col("effect_ancestry").is_null())
    top = t.sort("expected_rank").row(0, named=True)
    b, se, p = _ols_effect(sim.cohort("biobank_eur"), top["rsid"])
    # At small scale (N = 900) the largest effect (3 % of variance) gives chi2 ~ 27:
    # p < 1e-4 is what power allows; at demo scale p ~ 1e-15.
    assert p < 1e-4
    assert abs(b - top["beta"]) < 4 * se


# --- determinism and the command line ---------------------------------------------------
def _digests(root: Path) -> dict[str, str]:
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file():
            data = p.read_bytes()
            if p.name == "cohorts.tsv":  # holds absolute paths of its own directory
                data = data.replace(str(root).encode(), b"ROOT")
            out[str(p.relative_to(root))] = hashlib.sha256(data).hexdigest()
    return out


def test_simulate__same_seed_gives_identical_bytes_and_other_seed_differs(sim, tmp_path, capsys):
    from crosscohort.cli import main

    assert main(["simulate", "--out-dir", str(tmp_path / "again"), "--seed", str(SEED),
                 "--scale", "small"]) == 0
    assert "biobank_eur" in capsys.readouterr().out
    first, again = _digests(sim.out_dir), _digests(tmp_path / "again")
    assert len(first) == len(COHORTS) * 5 + 6
    assert first == again
    other = simulate_demo(tmp_path / "other", seed=SEED + 1, scale="small")
    changed = _digests(other.out_dir)
    for name in ("biobank_eur.bed", "biobank_eur.bim", "truth/causal.tsv", "biobank_eas.pheno.tsv"):
        assert changed[name] != first[name], name


def test_simulate_cli__help_explains_what_is_written(capsys):
    from crosscohort.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["simulate", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for word in ("--out-dir", "--seed", "--scale", "truth/causal.tsv", "cohorts.tsv", "Gutenkunst",
                 "reference/variants.tsv.gz", "byte-identical"):
        assert word in text, word


def test_simulate__rejects_unknown_scale_negative_seed_and_file_as_out_dir(tmp_path):
    with pytest.raises(ConfigError, match="'huge': unknown scale"):
        simulate_demo(tmp_path, scale="huge")
    with pytest.raises(ConfigError, match="--seed -1: .*non-negative"):
        simulate_demo(tmp_path, seed=-1)
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match="file: exists and is not a directory"):
        simulate_demo(tmp_path / "file", scale="small")
