"""Meta-analysis against external tools: GWAMA (packaged sample and synthetic) and plink 1.9."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from results import gwama_sample
from scipy.stats import norm

from crosscohort.central.harmonise import harmonise
from crosscohort.central.meta import meta_analyse
from crosscohort.cli import main
from crosscohort.contract.sumstats import read_sumstats

pytestmark = pytest.mark.oracle

GWAMA_SAMPLES = Path("/usr/share/doc/gwama/examples/samples")
FLIP_SIGN = str.maketrans("+-", "-+")


def _read_ws(path: Path) -> pl.DataFrame:
    """A whitespace-separated table with a header, all columns as text."""
    rows = [ln.split() for ln in path.read_text().splitlines() if ln.strip()]
    return pl.DataFrame({h: [r[j] for r in rows[1:]] for j, h in enumerate(rows[0])})


def _num(df: pl.DataFrame, col: str) -> np.ndarray:
    return df.get_column(col).cast(pl.Float64).to_numpy()


def _oriented(ours: pl.DataFrame, theirs: pl.DataFrame, *, marker: str, a1: str, a2: str):
    """Join tool output to ours on marker and allele pair; sign = +1 where effect alleles agree."""
    # The tool's columns get a "t_" prefix: several share our names (beta, other_allele...).
    t = theirs.rename({c: f"t_{c}" for c in theirs.columns}).rename({f"t_{marker}": "rsid"})
    a1, a2 = f"t_{a1}", f"t_{a2}"
    j = t.join(ours, on="rsid", how="inner").filter(
        ((pl.col(a1) == pl.col("effect_allele")) & (pl.col(a2) == pl.col("other_allele")))
        | ((pl.col(a1) == pl.col("other_allele")) & (pl.col(a2) == pl.col("effect_allele")))
    )
    sign = np.where(j.get_column(a1).to_numpy() == j.get_column("effect_allele").to_numpy(), 1, -1)
    return j, sign


def _run(cmd: list[str], cwd: Path) -> None:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# --- GWAMA packaged sample --------------------------------------------------------------

def _ours_cli(tmp_path: Path, files: list[str], *, random: bool) -> tuple[pl.DataFrame, list]:
    """The product path: ``crosscohort meta --format gwama FILE...`` as a user runs it."""
    out = tmp_path / "ours.tsv"
    argv = ["meta", "--format", "gwama", "--method", "random" if random else "fixed",
            "--out", str(out), *(str(tmp_path / f) for f in files)]
    assert main(argv) == 0
    ledgers = json.loads((tmp_path / "ours.tsv.harmonise.json").read_text())
    for lg in ledgers:  # every row of every file accounted for
        assert lg["n_in"] == lg["n_kept"] + sum(lg["removed"].values())
    return read_sumstats(out, required=()), ledgers


def _golden(random: bool) -> pl.DataFrame:
    rows = gwama_sample.RANDOM if random else gwama_sample.FIXED
    return pl.DataFrame([dict(zip(gwama_sample.COLUMNS, r, strict=True)) for r in rows],
                        infer_schema_length=None)


@pytest.mark.parametrize("random", [False, True], ids=["fixed", "random"])
def test_meta_gwama__packaged_sample_as_shipped_matches_gwama_through_the_cli(gwama, tmp_path, random):
    for f in GWAMA_SAMPLES.iterdir():
        shutil.copy(f, tmp_path / f.name)
    # oracle (Debian gwama 2.2.2, examples/run-sample-analysis), run live here and stored
    # with its command in tests/results/gwama_sample.py:
    #   GWAMA -i gwama.in -qt --name_marker SNP --name_ea EFFECT_ALLELE \
    #         --name_nea NON_EFFECT_ALLELE -o out        (and with -r for random effects)
    cmd = [gwama, "-i", "gwama.in", "-qt", "--name_marker", "SNP", "--name_ea", "EFFECT_ALLELE",
           "--name_nea", "NON_EFFECT_ALLELE", "-o", "out"] + (["-r"] if random else [])
    _run(cmd, tmp_path)
    live = pl.read_csv(tmp_path / "out.out", separator="\t", infer_schema=False)
    golden = _golden(random)
    # The live tool still prints the stored numbers.
    assert live.get_column("rs_number").to_list() == golden.get_column("rs_number").to_list()
    for t, g in (("beta", "beta"), ("se", "se"), ("q_statistic", "q_statistic"), ("i2", "i2")):
        np.testing.assert_array_equal(_num(live, t), _num(golden, g))
    theirs = golden.rename({"effects": "effects", "p_value": "p", "q_p_value": "q_p"})
    # The files as shipped, through the command line: no name options, no marker map.
    res, ledgers = _ours_cli(tmp_path, ["pop1.txt", "pop2.txt", "pop3.txt"], random=random)
    j, sign = _oriented(res, theirs, marker="rs_number", a1="reference_allele",
                        a2="other_allele")
    assert j.height == theirs.height == 12  # every marker GWAMA reports, once
    b = "beta_random" if random else "beta"
    s = "standard_error_random" if random else "standard_error"
    p = "p_value_random" if random else "p_value"
    # GWAMA prints 6 decimals: agreement within half a unit of the last digit (+ rounding).
    np.testing.assert_allclose(sign * _num(j, b), _num(j, "t_beta"), rtol=0, atol=6e-7)
    np.testing.assert_allclose(_num(j, s), _num(j, "t_se"), rtol=0, atol=6e-7)
    np.testing.assert_allclose(sign * _num(j, b) / _num(j, s), _num(j, "t_z"), rtol=0, atol=6e-7)
    # GWAMA's p comes from an approximate normal tail (up to ~10 % off near 1e-5; 7.75e-05
    # printed where 2*Phi(-3.954188) = 7.68e-05); ours is exact, so we check p against GWAMA's z.
    np.testing.assert_allclose(_num(j, p), 2 * norm.sf(np.abs(_num(j, "t_z"))), rtol=1e-5)
    np.testing.assert_allclose(_num(j, "het_q"), _num(j, "t_q_statistic"), rtol=0, atol=6e-7)
    np.testing.assert_allclose(_num(j, "het_p"), _num(j, "t_q_p"), rtol=0, atol=6e-7)
    np.testing.assert_allclose(_num(j, "het_i2"), _num(j, "t_i2"), rtol=0, atol=6e-7)
    assert j.get_column("n_studies").to_list() == j.get_column("t_n_studies").to_list()
    ours_dir = [d if sg == 1 else d.translate(FLIP_SIGN)
                for d, sg in zip(j.get_column("direction"), sign, strict=True)]
    assert ours_dir == j.get_column("t_effects").to_list()
    # pop3's positions reach pop1's and pop2's marker-only rows through the marker names:
    # one row per variant, positioned (rs12124819, absent from pop3, stays marker-only).
    placed = j.filter(pl.col("rsid") != "rs12124819")
    assert placed.get_column("chromosome").null_count() == 0
    by = {lg["cohort"]: lg for lg in ledgers}
    assert by["pop1"]["changed"]["position_from_marker_name_join"] == 9
    assert by["pop2"]["changed"]["position_from_marker_name_join"] == 11
    # Where we differ: pop3 gives rs12138618 as T/A, the others G/A. GWAMA drops it
    # from pop3 ("wrong alleles"); harmonisation without a reference keeps it as the
    # other variant it is (1:790098 A/T), reported on its own row.
    extra = res.filter((pl.col("rsid") == "rs12138618") & (pl.col("effect_allele") == "T"))
    assert extra.get_column("direction").to_list() == ["??+"]
    assert res.height == 13
    # pop1's rs2905035 has SE = NA: GWAMA "marker not used", we count bad_value_standard_error.
    assert by["pop1"]["removed"]["bad_value_standard_error"] == 1
    # IMPUTED (pop1) and IMP (pop2, pop3) are read, counted, and change no value.
    assert [by[c]["changed"]["imputed_marked"] for c in ("pop1", "pop2", "pop3")] == [5, 3, 0]


def test_meta_gwama__packaged_sample_auto_format_equals_the_gwama_preset(gwama, tmp_path):
    # --format auto reads GWAMA's sample through the header dictionary (SNP, EFFECT_ALLELE,
    # NON_EFFECT_ALLELE...): once pop3's positions reach pop1/pop2 by marker name, the
    # same 13 rows as the gwama preset (they came out as two rows per marker before).
    for f in GWAMA_SAMPLES.iterdir():
        shutil.copy(f, tmp_path / f.name)
    files = [str(tmp_path / f"pop{i}.txt") for i in (1, 2, 3)]
    for fmt in ("auto", "gwama"):
        assert main(["meta", "--format", fmt, "--out", str(tmp_path / f"{fmt}.tsv"), *files]) == 0
    assert (tmp_path / "auto.tsv").read_bytes() == (tmp_path / "gwama.tsv").read_bytes()
    assert read_sumstats(tmp_path / "auto.tsv", required=()).height == 13


# --- GWAMA on synthetic data with swapped alleles --------------------------------------

def _synthetic(rng: np.random.Generator, k: int = 3, m: int = 150):
    """k cohorts of m A/G markers with large effects (so 6 printed decimals are ~1e-6 relative)."""
    truth = rng.uniform(0.5, 3.0, m) * rng.choice([-1, 1], m)
    cohorts = []
    for c in range(k):
        keep = rng.random(m) > 0.15
        se = rng.uniform(0.2, 1.0, m)
        beta = truth + rng.normal(0, 1, m) * se + (0.8 if c == 2 else 0.0)  # cohort 3 heterogeneous
        eaf = rng.uniform(0.05, 0.95, m)
        swap = rng.random(m) < 0.4
        cohorts.append(pl.DataFrame({
            "rsid": [f"rs{i + 1}" for i in range(m)],
            "chromosome": np.ones(m, dtype=np.int64), "base_pair_location": (np.arange(m) + 1) * 100,
            "effect_allele": np.where(swap, "A", "G"), "other_allele": np.where(swap, "G", "A"),
            "beta": np.where(swap, -beta, beta), "standard_error": se,
            "effect_allele_frequency": np.where(swap, 1 - eaf, eaf),
            "p_value": np.full(m, 0.5), "n": rng.integers(500, 5000, m),
        }).filter(pl.Series(keep)))
    return cohorts


@pytest.mark.parametrize("random", [False, True], ids=["fixed", "random"])
def test_meta_gwama__synthetic_swapped_alleles_beta_se_within_printed_precision(gwama, tmp_path, random):
    cohorts = _synthetic(np.random.default_rng(11))
    for i, c in enumerate(cohorts):
        c.select(pl.col("rsid").alias("MARKERNAME"), pl.col("effect_allele").alias("EA"),
                 pl.col("other_allele").alias("NEA"), pl.col("beta").alias("BETA"),
                 pl.col("standard_error").alias("SE"), pl.col("n").alias("N"),
                 pl.col("effect_allele_frequency").alias("EAF"), pl.lit("+").alias("STRAND"),
                 ).write_csv(tmp_path / f"c{i}.txt", separator="\t")
    (tmp_path / "gwama.in").write_text("".join(f"c{i}.txt\n" for i in range(len(cohorts))))
    # oracle: GWAMA -i gwama.in -qt --name_marker MARKERNAME -o out   (and -r)
    _run([gwama, "-i", "gwama.in", "-qt", "--name_marker", "MARKERNAME", "-o", "out"]
         + (["-r"] if random else []), tmp_path)
    theirs = pl.read_csv(tmp_path / "out.out", separator="\t", infer_schema=False)
    # Marker names only (no CHR/POS), as GWAMA keys them: combined by name and alleles.
    table, _ = _ours_cli(tmp_path, [f"c{i}.txt" for i in range(len(cohorts))], random=random)
    j, sign = _oriented(table, theirs, marker="rs_number", a1="reference_allele",
                        a2="other_allele")
    assert j.height == theirs.height == table.height
    b = "beta_random" if random else "beta"
    s = "standard_error_random" if random else "standard_error"
    np.testing.assert_allclose(sign * _num(j, b), _num(j, "t_beta"), rtol=0, atol=6e-7)
    np.testing.assert_allclose(_num(j, s), _num(j, "t_se"), rtol=0, atol=6e-7)
    if not random:
        np.testing.assert_allclose(sign * _num(j, "beta") / _num(j, "standard_error"),
                                   _num(j, "t_z"), rtol=0, atol=6e-7)
    np.testing.assert_allclose(_num(j, "het_q"), _num(j, "t_q_statistic"), rtol=1e-6, atol=6e-7)
    multi = _num(j, "n_studies") > 1
    np.testing.assert_allclose(_num(j, "het_i2")[multi], _num(j, "t_i2")[multi], rtol=0, atol=6e-7)
    # One study: GWAMA prints I2 as -nan (0/0; now and then 0) and q_p-value 1; we report
    # I2 = 0 and het_p = NA (no degrees of freedom).
    assert (_num(j, "het_i2")[~multi] == 0).all()
    assert j.filter(pl.Series(~multi)).get_column("het_p").null_count() == int((~multi).sum())
    # EAF (n-weighted mean) and total N agree too.
    eaf = np.where(sign == 1, _num(j, "effect_allele_frequency"), 1 - _num(j, "effect_allele_frequency"))
    np.testing.assert_allclose(eaf, _num(j, "t_eaf"), rtol=0, atol=6e-7)
    assert j.get_column("n").to_list() == j.get_column("t_n_samples").cast(pl.Int64).to_list()
    assert (_num(j, "tau2") > 0).sum() > 10  # heterogeneity really exercised


def test_meta_gwama__reverse_strand_snps_merged_as_gwama_merges_them(gwama, tmp_path):
    # One cohort reports 30 % of its (non-palindromic) SNPs on the reverse strand, no
    # STRAND column: GWAMA complements them on its own; so do we, by marker name, with no
    # reference (crosscohort/central/harmonise/strand.py). Alleles A/G and C/T only.
    rng = np.random.default_rng(13)
    cohorts = _synthetic(rng)
    comp = {"A": "T", "C": "G", "G": "C", "T": "A"}
    names = []
    for i, c in enumerate(cohorts):
        flip = pl.Series(rng.random(c.height) < (0.3 if i == 1 else 0.0))
        c = c.with_columns(pl.when(flip).then(pl.col(a).replace_strict(comp)).otherwise(pl.col(a))
                           .alias(a) for a in ("effect_allele", "other_allele"))
        c.select(pl.col("rsid").alias("MARKERNAME"), pl.col("effect_allele").alias("EA"),
                 pl.col("other_allele").alias("NEA"), pl.col("beta").alias("BETA"),
                 pl.col("standard_error").alias("SE")).write_csv(tmp_path / f"c{i}.txt",
                                                                 separator="\t")
        names.append(f"c{i}.txt")
    (tmp_path / "gwama.in").write_text("".join(n + "\n" for n in names))
    # oracle: GWAMA -i gwama.in -qt -o out   (Debian gwama 2.2.2)
    _run([gwama, "-i", "gwama.in", "-qt", "-o", "out"], tmp_path)
    theirs = pl.read_csv(tmp_path / "out.out", separator="\t", infer_schema=False)
    table, ledgers = _ours_cli(tmp_path, names, random=False)
    assert table.height == theirs.height  # no marker split in two
    theirs = theirs.with_columns(  # GWAMA reports the first file's strand; compare as a set
        pl.col("reference_allele").replace_strict(comp).alias("ra_c"),
        pl.col("other_allele").replace_strict(comp).alias("oa_c"))
    j = theirs.rename({c: f"t_{c}" for c in theirs.columns}).rename({"t_rs_number": "rsid"}).join(
        table, on="rsid", how="inner")
    assert j.height == theirs.height
    same = ((pl.col("t_reference_allele") == pl.col("effect_allele"))
            | (pl.col("t_ra_c") == pl.col("effect_allele")))
    sign = np.where(j.select(same).to_series().to_numpy(), 1, -1)
    np.testing.assert_allclose(sign * _num(j, "beta"), _num(j, "t_beta"), rtol=0, atol=6e-7)
    np.testing.assert_allclose(_num(j, "standard_error"), _num(j, "t_se"), rtol=0, atol=6e-7)
    assert j.get_column("n_studies").to_list() == j.get_column("t_n_studies").cast(pl.Int64).to_list()
    flipped = {lg["cohort"]: lg["changed"]["strand_flipped_across_cohorts"]
               for lg in json.loads((tmp_path / "ours.tsv.summary.json").read_text())["ledgers"]}
    assert flipped["c1"] > 20 and flipped["c0"] == flipped["c2"] == 0


# --- plink 1.9 --meta-analysis -----------------------------------------------------------

def test_meta_plink19__beta_p_q_i_and_random_beta_match(plink19, tmp_path):
    cohorts = _synthetic(np.random.default_rng(12))
    files = []
    for i, c in enumerate(cohorts):
        f = tmp_path / f"c{i}.assoc"
        z = (c.get_column("beta") / c.get_column("standard_error")).to_numpy()
        c.select(pl.col("chromosome").alias("CHR"), pl.col("base_pair_location").alias("BP"),
                 pl.col("rsid").alias("SNP"), pl.col("effect_allele").alias("A1"),
                 pl.col("other_allele").alias("A2"), pl.col("beta").alias("BETA"),
                 pl.col("standard_error").alias("SE"),
                 pl.Series("P", 2 * norm.sf(np.abs(z))),
                 ).write_csv(f, separator=" ")
        files.append(f.name)
    # oracle: plink1.9 --meta-analysis c0.assoc c1.assoc c2.assoc + qt --out pm
    _run([plink19, "--meta-analysis", *files, "+", "qt", "--out", "pm"], tmp_path)
    theirs = _read_ws(tmp_path / "pm.meta")
    tables = {f"c{i}": c for i, c in enumerate(cohorts)}
    res = meta_analyse(harmonise(tables).tables)
    # plink reports only variants in at least two studies.
    multi = res.table.filter(pl.col("n_studies") > 1)
    j, sign = _oriented(multi, theirs, marker="SNP", a1="A1", a2="A2")
    assert j.height == theirs.height == multi.height
    # plink prints BETA and Q with 4 decimals, P with 4 significant digits, I (percent) with 2.
    np.testing.assert_allclose(sign * _num(j, "beta"), _num(j, "t_BETA"), rtol=0, atol=5.1e-5)
    np.testing.assert_allclose(sign * _num(j, "beta_random"), _num(j, "t_BETA(R)"), rtol=0, atol=5.1e-5)
    np.testing.assert_allclose(_num(j, "p_value"), _num(j, "t_P"), rtol=5.1e-4, atol=1e-300)
    np.testing.assert_allclose(_num(j, "p_value_random"), _num(j, "t_P(R)"), rtol=5.1e-4, atol=1e-300)
    # plink's Q column is the p-value of Cochran's Q; I is I^2 in percent.
    np.testing.assert_allclose(_num(j, "het_p"), _num(j, "t_Q"), rtol=0, atol=5.1e-5)
    np.testing.assert_allclose(100 * _num(j, "het_i2"), _num(j, "t_I"), rtol=0, atol=5.1e-3)
    assert j.get_column("n_studies").to_list() == j.get_column("t_N").cast(pl.Int64).to_list()
