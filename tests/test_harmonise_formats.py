"""Reading every supported format: the same data written by each tool's layout harmonises back.

The writers below print one cohort's summary statistics with the header and
layout of PLINK 2 ``--glm``, REGENIE, METAL (``.tbl``), GWAMA, BOLT-LMM,
SAIGE, GWAS-SSF and a comma-separated file with a column mapping; the
property test re-encodes a cohort (allele swaps, strand flips, chromosome
spellings, header names, formats, gzip) and checks that harmonisation
returns the original values and a ledger that counts exactly what was planted.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import tempfile
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.stats import norm

from crosscohort.central.harmonise.formats import HEADER_DICTIONARY, detect_format
from crosscohort.central.harmonise.readers import (
    FLAG_P_INCONSISTENT,
    InputSpec,
    harmonise_files,
    parse_input,
    read_summary_statistics,
)
from crosscohort.commands import harmonise as harmonise_cmd
from crosscohort.contract.errors import ConfigError, InputError
from crosscohort.contract.sumstats import read_sumstats

COMP = {"A": "T", "T": "A", "C": "G", "G": "C"}

# --- writers: one cohort as each tool prints it ------------------------------------------


def _fmt(x) -> str:
    if x is None or (isinstance(x, float) and np.isnan(x)):
        return "NA"
    return repr(float(x)) if isinstance(x, float) else str(x)


def _write(path: Path, header: list[str], rows: list[list], sep: str, *, gz: bool = False,
           pre: str = "") -> Path:
    text = pre + sep.join(header) + "\n" + "".join(
        sep.join(_fmt(v) for v in r) + "\n" for r in rows)
    if gz:
        with gzip.open(path, "wt") as fh:
            fh.write(text)
    else:
        path.write_text(text)
    return path


def _cols(df: pl.DataFrame, *names: str) -> list[list]:
    return [list(r) for r in df.select(names).iter_rows()]


def plink2_glm(df: pl.DataFrame, path: Path, *, logistic: bool = False, covariate_rows: int = 0,
               gz: bool = False) -> Path:
    """PLINK 2 ``--glm`` layout; ``covariate_rows`` extra TEST=AGE rows after the first variants."""
    eff = np.exp(df["beta"].to_numpy()) if logistic else df["beta"].to_numpy()
    z = df["beta"].to_numpy() / df["standard_error"].to_numpy()
    header = ["#CHROM", "POS", "ID", "REF", "ALT", "A1", "A1_FREQ", "TEST", "OBS_CT",
              "OR" if logistic else "BETA", "LOG(OR)_SE" if logistic else "SE",
              "Z_STAT" if logistic else "T_STAT", "P", "ERRCODE"]
    rows = []
    for i, r in enumerate(df.iter_rows(named=True)):
        rows.append([r["chromosome"], r["base_pair_location"], r["rsid"], r["ref"], r["alt"],
                     r["effect_allele"], r["effect_allele_frequency"], "ADD", r["n"],
                     float(eff[i]), r["standard_error"], float(z[i]), r["p_value"], "."])
        if i < covariate_rows:
            rows.append([r["chromosome"], r["base_pair_location"], r["rsid"], r["ref"], r["alt"],
                         r["effect_allele"], r["effect_allele_frequency"], "AGE", r["n"],
                         0.01, 0.001, 10.0, 1e-20, "."])
    return _write(path, header, rows, "\t", gz=gz)


def regenie(df: pl.DataFrame, path: Path, *, gz: bool = False) -> Path:
    """REGENIE step 2 layout (space-separated, LOG10P)."""
    nlp = -np.log10(df["p_value"].to_numpy())
    rows = [[r["chromosome"], r["base_pair_location"], r["rsid"], r["other_allele"],
             r["effect_allele"], r["effect_allele_frequency"], 1.0, r["n"], "ADD", r["beta"],
             r["standard_error"], 1.0, float(nlp[i]), "NA"]
            for i, r in enumerate(df.iter_rows(named=True))]
    return _write(path, ["CHROM", "GENPOS", "ID", "ALLELE0", "ALLELE1", "A1FREQ", "INFO", "N",
                         "TEST", "BETA", "SE", "CHISQ", "LOG10P", "EXTRA"], rows, " ", gz=gz)


def metal(df: pl.DataFrame, path: Path, *, gz: bool = False) -> Path:
    """METAL output ``.tbl`` layout: marker names only, lower-case alleles."""
    rows = [[r["rsid"], r["effect_allele"].lower(), r["other_allele"].lower(),
             r["effect_allele_frequency"], 0.0, r["effect_allele_frequency"],
             r["effect_allele_frequency"], r["beta"], r["standard_error"], r["p_value"], "+",
             0.0, 0.0, 0, 1.0, r["n"]]
            for r in df.iter_rows(named=True)]
    return _write(path, ["MarkerName", "Allele1", "Allele2", "Freq1", "FreqSE", "MinFreq",
                         "MaxFreq", "Effect", "StdErr", "P-value", "Direction", "HetISq",
                         "HetChiSq", "HetDf", "HetPVal", "Weight"], rows, "\t", gz=gz)


def gwama(df: pl.DataFrame, path: Path, *, gz: bool = False) -> Path:
    """GWAMA input with CHR/POS."""
    rows = [[r["rsid"], r["effect_allele"], r["other_allele"], r["beta"], r["standard_error"],
             r["n"], r["effect_allele_frequency"], "+", r["chromosome"], r["base_pair_location"]]
            for r in df.iter_rows(named=True)]
    return _write(path, ["MARKERNAME", "EA", "NEA", "BETA", "SE", "N", "EAF", "STRAND", "CHR",
                         "POS"], rows, " ", gz=gz)


def gwas_ssf(df: pl.DataFrame, path: Path, *, gz: bool = False) -> Path:
    names = ["chromosome", "base_pair_location", "effect_allele", "other_allele", "beta",
             "standard_error", "effect_allele_frequency", "p_value", "n", "rsid"]
    return _write(path, names, _cols(df, *names), "\t", gz=gz)


def csv_mapped(df: pl.DataFrame, path: Path, header: dict[str, str], *, gz: bool = False) -> Path:
    """Comma-separated, columns named by ``header`` (field -> name), in that order."""
    fields = list(header)
    return _write(path, [header[f] for f in fields], _cols(df, *fields), ",", gz=gz)


def bolt(df: pl.DataFrame, path: Path, *, gz: bool = False) -> Path:
    rows = [[r["rsid"], r["chromosome"], r["base_pair_location"], 0.0, r["effect_allele"],
             r["other_allele"], r["effect_allele_frequency"], 0.0, r["beta"],
             r["standard_error"], r["p_value"]] for r in df.iter_rows(named=True)]
    return _write(path, ["SNP", "CHR", "BP", "GENPOS", "ALLELE1", "ALLELE0", "A1FREQ", "F_MISS",
                         "BETA", "SE", "P_BOLT_LMM_INF"], rows, "\t", gz=gz)


def saige(df: pl.DataFrame, path: Path, *, gz: bool = False) -> Path:
    """SAIGE step 2: Allele2 is the effect allele."""
    rows = [[r["chromosome"], r["base_pair_location"], r["rsid"], r["other_allele"],
             r["effect_allele"], 100, r["effect_allele_frequency"], 1.0, r["n"], r["beta"],
             r["standard_error"], 1.0, 1.0, r["p_value"], r["p_value"], "FALSE", 1.0, 1.0]
            for r in df.iter_rows(named=True)]
    return _write(path, ["CHR", "POS", "MarkerID", "Allele1", "Allele2", "AC_Allele2",
                         "AF_Allele2", "imputationInfo", "N", "BETA", "SE", "Tstat", "var",
                         "p.value", "p.value.NA", "Is.SPA.converge", "varT", "varTstar"],
                  rows, " ", gz=gz)


WRITERS = {
    "plink2": plink2_glm,
    "plink2-logistic": lambda df, p, **kw: plink2_glm(df, p, logistic=True, **kw),
    "regenie": regenie,
    "metal": metal,
    "gwama": gwama,
    "gwas-ssf": gwas_ssf,
    "bolt": bolt,
    "saige": saige,
}
#: Format each writer's file is detected as.
DETECTED = {"plink2": "plink2", "plink2-logistic": "plink2", "regenie": "regenie",
            "metal": "metal", "gwama": "gwama", "gwas-ssf": "gwas-ssf", "bolt": "bolt",
            "saige": "saige"}
FIELDS = ("chromosome", "base_pair_location", "marker", "effect_allele", "other_allele", "beta",
          "standard_error", "p_value", "effect_allele_frequency", "n")
#: Frame column written for each field by the mapped/dictionary writers.
SOURCE = {"marker": "rsid"}


# --- a cohort, its panel, and a re-encoding ----------------------------------------------

def _truth(rng: np.random.Generator, m: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Cohort aligned to its panel (effect = ALT); a fifth palindromic SNPs, a fifth indels."""
    chrom = np.sort(rng.choice([1, 2, 23], size=m))
    pos = np.arange(1, m + 1) * 1000
    ref, alt = [], []
    for i in range(m):
        kind = i % 5
        if kind == 0:
            r = str(rng.choice(["A", "C"]))
            a = COMP[r]
        elif kind == 4:
            r, a = "A", "A" + "".join(rng.choice(list("ACGT"), size=2))
        else:
            r, a = (str(x) for x in rng.choice(list("ACGT"), size=2, replace=False))
            if COMP[r] == a:
                a = next(b for b in "ACGT" if b not in (r, COMP[r]))
        ref.append(r)
        alt.append(a)
    af = rng.uniform(0.02, 0.3, size=m)
    af = np.where(rng.random(m) < 0.5, af, 1 - af)
    beta = rng.normal(0, 0.1, m)
    se = rng.uniform(0.01, 0.1, m)
    rsid = [f"rs{1000 + i}" for i in range(m)]
    panel = pl.DataFrame({"chromosome": [str(c) for c in chrom], "base_pair_location": pos,
                          "ref": ref, "alt": alt, "alt_frequency": af, "rsid": rsid})
    truth = pl.DataFrame({
        "chromosome": chrom.astype(np.int64), "base_pair_location": pos,
        "effect_allele": alt, "other_allele": ref, "beta": beta, "standard_error": se,
        "effect_allele_frequency": af, "p_value": 2 * norm.sf(np.abs(beta / se)),
        "n": rng.integers(100, 10_000, m), "rsid": rsid,
    })
    return truth, panel


SPELLINGS = {1: ["1", "chr1", "CHR1"], 2: ["2", "chr2"], 23: ["X", "chrX", "23", "chr23"]}


def _encode(truth: pl.DataFrame, rng: np.random.Generator):
    """Random allele swaps, strand flips (SNPs) and chromosome spellings; returns file rows and plants."""
    alt, ref = truth["effect_allele"].to_numpy(), truth["other_allele"].to_numpy()
    m = truth.height
    snp = np.array([len(a) == 1 and len(r) == 1 for a, r in zip(alt, ref, strict=True)])
    pal = np.array([s and COMP[a] == r for s, a, r in zip(snp, alt, ref, strict=True)])
    swap = rng.random(m) < 0.5
    flip = snp & (rng.random(m) < 0.5)

    def strand(x: np.ndarray) -> list[str]:
        return [COMP[a] if f else a for a, f in zip(x, flip, strict=True)]

    f_ref, f_alt = strand(ref), strand(alt)
    ea = np.where(swap, f_ref, f_alt)
    oa = np.where(swap, f_alt, f_ref)
    beta, eaf = truth["beta"].to_numpy(), truth["effect_allele_frequency"].to_numpy()
    chrom = [SPELLINGS[c][rng.integers(len(SPELLINGS[c]))] for c in truth["chromosome"]]
    rows = truth.with_columns(
        pl.Series("chromosome", chrom), pl.Series("effect_allele", ea),
        pl.Series("other_allele", oa), pl.Series("ref", f_ref), pl.Series("alt", f_alt),
        pl.Series("beta", np.where(swap, -beta, beta)),
        pl.Series("effect_allele_frequency", np.where(swap, 1 - eaf, eaf)),
    )
    planted = {
        "allele_swapped": int((swap & ~pal).sum()),
        "strand_flipped": int((flip & ~pal).sum()),
        # A flipped palindrome only looks swapped; its beta is negated exactly when swapped.
        "palindrome_resolved_by_eaf": int((swap & pal).sum()),
    }
    return rows, planted


def _write_panel(panel: pl.DataFrame, path: Path) -> Path:
    panel.write_csv(path, separator="\t")
    return path


def _write_any(kind: str, rows: pl.DataFrame, d: Path, rng: np.random.Generator, *, gz: bool,
               covariate_rows: int = 0) -> tuple[Path, str, dict | None]:
    """Write ``rows`` as ``kind``; returns the path, the --format to use and a --columns mapping."""
    path = d / f"c.{kind}{'.gz' if gz else ''}"
    if kind == "plink2":
        return plink2_glm(rows, path, covariate_rows=covariate_rows, gz=gz), "auto", None
    if kind in WRITERS:
        return WRITERS[kind](rows, path, gz=gz), "auto", None
    order = list(rng.permutation(FIELDS))
    if kind == "csv-mapped":
        header = {f: f"COL_{f.upper()}_X" for f in order}
        mapping = {f: header[f] for f in order}
        csv_mapped(rows.rename({"rsid": "marker"}), path, header, gz=gz)
        return path, "mapped", mapping
    # "dictionary": names drawn from the header dictionary, whitespace or tab separated.
    names = {f: HEADER_DICTIONARY[f][rng.integers(len(HEADER_DICTIONARY[f]))] for f in order}
    names = {f: n.upper() if rng.random() < 0.5 else n for f, n in names.items()}
    sep = " " if rng.random() < 0.5 else "\t"
    fr = rows.rename({"rsid": "marker"})
    text = sep.join(names[f] for f in order) + "\n" + "".join(
        sep.join(_fmt(v) for v in r) + "\n" for r in fr.select(order).iter_rows())
    if gz:
        with gzip.open(path, "wt") as fh:
            fh.write(text)
    else:
        path.write_text(text)
    return path, "mapped", None


KINDS = [*WRITERS, "csv-mapped", "dictionary"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), m=st.integers(5, 40), kind=st.sampled_from(KINDS),
       gz=st.booleans())
def test_formats_property__reencoded_cohort_in_any_format_harmonises_back_and_ledger_counts_plants(
        seed, m, kind, gz):
    rng = np.random.default_rng(seed)
    truth, panel = _truth(rng, m)
    rows, planted = _encode(truth, rng)
    covariate_rows = int(rng.integers(0, 4)) if kind == "plink2" else 0
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        ref = _write_panel(panel, d / "panel.tsv")
        path, fmt, mapping = _write_any(kind, rows, d, rng, gz=gz, covariate_rows=covariate_rows)
        out = harmonise_files([InputSpec("c", path, fmt)], reference=ref, columns=mapping)
    got = out.tables["c"].sort("base_pair_location")
    want = truth.sort("base_pair_location")
    assert got.height == m
    for col in ("chromosome", "base_pair_location", "effect_allele", "other_allele", "rsid"):
        assert got[col].to_list() == want[col].to_list(), col
    if kind == "bolt":  # BOLT-LMM prints no N
        assert "n" not in got.columns
    else:
        assert got["n"].to_list() == want["n"].to_list()
    # OR -> ln OR and 10^-LOG10P round trips are exact to a few ulps, the rest bit for bit.
    # ln of a printed OR is exact to a few ulps of 1 (OR's own), not of a small beta:
    # beta = -6.5e-5 came back 1.02e-12 apart relatively (seed 44520522, m 36).
    for col in ("beta", "standard_error", "p_value"):
        atol = 4 * np.finfo(float).eps if (col == "beta" and kind == "plink2-logistic") else 0
        np.testing.assert_allclose(got[col].to_numpy(), want[col].to_numpy(), rtol=1e-12, atol=atol)
    np.testing.assert_allclose(got["effect_allele_frequency"].to_numpy(),
                               want["effect_allele_frequency"].to_numpy(), rtol=0, atol=1e-15)
    assert not got[FLAG_P_INCONSISTENT].any()
    lg = out.ledgers["c"]
    expected = {k: v for k, v in planted.items() if v}
    if kind == "plink2-logistic":
        expected["beta_from_odds_ratio"] = m
    if kind == "metal":  # marker names only: placed through the panel's rsid column
        expected["position_from_reference"] = m
    if kind == "gwama":  # GWAMA input has no p column
        expected["p_from_beta_se"] = m
    assert {k: v for k, v in lg.changed.items() if v} == expected
    assert lg.n_in == m + covariate_rows and lg.n_kept == m
    assert {k: v for k, v in lg.removed.items() if v} == (
        {"not_additive_test": covariate_rows} if covariate_rows else {})


# --- each reader ---------------------------------------------------------------------------

def _small(m: int = 6, seed: int = 5) -> tuple[pl.DataFrame, pl.DataFrame]:
    truth, panel = _truth(np.random.default_rng(seed), m)
    rows = truth.with_columns(pl.col("chromosome").cast(pl.String),
                              pl.col("other_allele").alias("ref"),
                              pl.col("effect_allele").alias("alt"))
    return rows, panel


@pytest.mark.parametrize("kind", [*WRITERS, "csv-mapped", "dictionary"])
def test_readers__na_is_never_read_as_zero(kind, tmp_path):
    rows, _ = _small()
    rows = rows.with_columns(
        pl.when(pl.int_range(pl.len()) == 2).then(None).otherwise(pl.col("beta")).alias("beta"),
        pl.when(pl.int_range(pl.len()) == 3).then(None).otherwise(pl.col("standard_error"))
        .alias("standard_error"),
    ).with_columns(pl.col("beta").fill_null(float("nan")),
                   pl.col("standard_error").fill_null(float("nan")))
    path, fmt, mapping = _write_any(kind, rows, tmp_path, np.random.default_rng(1), gz=False)
    assert "NA" in path.read_text()
    read = read_summary_statistics(path, format=fmt, columns=mapping).table
    assert read["beta"][2] is None and read["standard_error"][3] is None
    assert read["beta"].drop_nulls().len() == rows.height - 1
    out = harmonise_files([InputSpec("c", path, fmt)], columns=mapping)
    lg = out.ledgers["c"]
    assert lg.removed["bad_value_beta"] == 1 and lg.removed["bad_value_standard_error"] == 1
    assert lg.n_kept == rows.height - 2
    assert 0.0 not in out.tables["c"]["beta"].to_list()


@pytest.mark.parametrize("kind", list(WRITERS))
def test_readers__format_detected_from_header(kind, tmp_path):
    rows, _ = _small()
    path = WRITERS[kind](rows, tmp_path / "f.txt")
    assert read_summary_statistics(path).format == DETECTED[kind]
    header = path.read_text().splitlines()[0].split()
    assert detect_format(header) == DETECTED[kind]


def test_readers__plink19_assoc_read_through_the_header_dictionary(tmp_path):
    p = tmp_path / "c.assoc"
    p.write_text(" CHR   BP  SNP  A1  A2  BETA  SE  P\n   1  100  rs1  a  g  0.5  0.1  5.7e-07\n")
    rd = read_summary_statistics(p)
    assert rd.format == "mapped"
    assert rd.columns == {"chromosome": "CHR", "base_pair_location": "BP", "marker": "SNP",
                          "effect_allele": "A1", "other_allele": "A2", "beta": "BETA",
                          "standard_error": "SE", "p_value": "P"}
    row = rd.table.row(0, named=True)
    assert (row["effect_allele"], row["other_allele"], row["beta"]) == ("A", "G", 0.5)


def test_readers__tab_space_comma_and_gzip_read_alike(tmp_path):
    lines = [["CHR", "POS", "SNP", "EA", "NEA", "BETA", "SE", "P", "EAF", "N"],
             ["1", "100", "rs1", "A", "G", "0.5", "0.1", "0.01", "0.2", "1000"],
             ["chr2", "200", "rs2", "c", "t", "-0.25", "0.05", "NA", "NA", "NA"]]
    frames = []
    for name, sep, gz in [("t.tsv", "\t", False), ("s.txt", "   ", False), ("c.csv", ",", False),
                          ("t.tsv.gz", "\t", True), ("c.csv.gz", ",", True)]:
        text = "".join(sep.join(r) + "\n" for r in lines)
        if name == "c.csv":
            text = "".join(",".join(f'"{x}"' for x in r) + "\n" for r in lines)
        p = tmp_path / name
        if gz:
            with gzip.open(p, "wt") as fh:
                fh.write(text)
        else:
            p.write_text(text)
        frames.append(read_summary_statistics(p).table)
    for f in frames[1:]:
        assert f.equals(frames[0])
    t = frames[0]
    assert t["effect_allele"].to_list() == ["A", "C"]
    assert t["n"][1] is None and t["effect_allele_frequency"][1] is None
    # p missing: from beta/SE, two-sided normal (oracle: scipy.stats.norm.sf)
    assert t["p_value"][1] == pytest.approx(2 * norm.sf(5.0), rel=1e-12)


def test_readers__odds_ratio_and_its_ci_give_log_or_and_se(tmp_path):
    p = tmp_path / "g.txt"
    p.write_text("MARKERNAME EA NEA OR OR_95L OR_95U N EAF\nrs1 A G 1.5 1.2 1.875 -9 -9\n")
    t = read_summary_statistics(p).table
    assert t["beta"][0] == pytest.approx(math.log(1.5), rel=1e-15)
    assert t["standard_error"][0] == pytest.approx(
        (math.log(1.875) - math.log(1.2)) / (2 * 1.959963984540054), rel=1e-15)
    assert t["n"][0] is None and t["effect_allele_frequency"][0] is None  # GWAMA's -9


def test_readers__gwama_preset_reads_the_packaged_samples_as_shipped(tmp_path, gwama):
    # Debian's gwama package ships these; the fixture skips locally / fails in CI without it.
    samples = Path("/usr/share/doc/gwama/examples/samples")
    assert samples.exists(), "GWAMA is installed but its packaged examples are missing"
    for i in (1, 2, 3):
        path = samples / f"pop{i}.txt"
        # Their headers: SNP STRAND IMPUTED|IMP EFFECT_ALLELE NON_EFFECT_ALLELE BETA SE (+CHR POS).
        rd = read_summary_statistics(path, format="gwama")
        assert rd.columns["marker"] == "SNP" and rd.columns["effect_allele"] == "EFFECT_ALLELE"
        assert rd.columns["other_allele"] == "NON_EFFECT_ALLELE"
        assert rd.columns["imputed"] == ("IMPUTED" if i == 1 else "IMP")
        rows = [ln.split("\t") for ln in path.read_text().splitlines()]
        head, body = rows[0], rows[1:]
        col = {h: [r[j] for r in body] for j, h in enumerate(head)}
        t = rd.table
        assert t["rsid"].to_list() == col["SNP"]
        assert t["effect_allele"].to_list() == col["EFFECT_ALLELE"]
        assert t["other_allele"].to_list() == col["NON_EFFECT_ALLELE"]
        assert t["beta"].to_list() == [float(v) for v in col["BETA"]]
        assert t["standard_error"].to_list() == [None if v == "NA" else float(v) for v in col["SE"]]
        imputed = [v == "1" for v in col["IMPUTED" if i == 1 else "IMP"]]
        assert t["_rd_imputed_marked"].to_list() == imputed


def test_readers__gwama_minus9_is_missing_only_in_n_and_eaf(tmp_path):
    p = tmp_path / "g.txt"
    p.write_text("MARKERNAME EA NEA BETA SE N EAF\nrs1 A G -9 0.5 -9 -9\nrs2 A C 0.1 0.2 100 0.3\n")
    t = read_summary_statistics(p, format="gwama").table
    # GWAMA's -9 is "not available" for N and EAF; a beta of -9 is a beta.
    assert t["beta"].to_list() == [-9.0, 0.1]
    assert t["n"].to_list() == [None, 100]
    assert t["effect_allele_frequency"].to_list() == [None, 0.3]


def test_readers__header_dictionary_does_not_take_r2_for_info(tmp_path):
    # METAL's example data: r2 is the variance explained, not imputation quality.
    p = tmp_path / "m.txt"
    p.write_text("SNP A1 A2 BETA SE r2\nrs1 A G 0.1 0.05 0.002\n")
    rd = read_summary_statistics(p)
    assert "info" not in rd.columns and "info" not in rd.table.columns
    p.write_text("SNP A1 A2 BETA SE rsq\nrs1 A G 0.1 0.05 0.93\n")
    assert read_summary_statistics(p).table["info"].to_list() == [0.93]


def test_readers__regenie_log10p_underflow_is_kept(tmp_path):
    rows, _ = _small(m=3)
    p = regenie(rows, tmp_path / "r.regenie")
    text = p.read_text().splitlines()
    f = text[1].split(" ")
    f[12] = "400.5"
    text[1] = " ".join(f)
    p.write_text("\n".join(text) + "\n")
    out = harmonise_files([InputSpec("c", p, "regenie")])
    t = out.tables["c"]
    row = t.filter(pl.col("rsid") == rows["rsid"][0]).row(0, named=True)
    assert row["p_value"] == 0.0 and row["neg_log_10_p_value"] == 400.5
    assert out.ledgers["c"].n_kept == 3


def test_readers__p_printed_as_zero_gets_log10p_from_beta_se(tmp_path):
    p = tmp_path / "z.tsv"
    p.write_text("CHR\tPOS\tA1\tA2\tBETA\tSE\tP\n1\t10\tA\tG\t4.0\t0.1\t0\n")
    t = harmonise_files([InputSpec("c", p, "auto")]).tables["c"]
    # oracle: -log10(2 * Phi(-40)) with scipy's log survival function
    assert t["neg_log_10_p_value"][0] == pytest.approx(-(math.log(2) + norm.logsf(40)) / math.log(10),
                                                       rel=1e-12)


def test_readers__beta_se_inconsistent_with_p_flagged_not_dropped(tmp_path):
    p = tmp_path / "f.tsv"
    z_p = norm.isf(0.005 / 2)  # 2.807
    p.write_text("CHR\tPOS\tA1\tA2\tBETA\tSE\tP\n"
                 "1\t10\tA\tG\t0.5\t0.1\t0.5\n"                      # |z| 5 vs p 0.5: flagged
                 f"1\t20\tA\tG\t{float(z_p * 1.03 * 0.1)!r}\t0.1\t0.005\n"  # 3 % off: kept unflagged
                 f"1\t30\tA\tG\t{float(z_p * 1.07 * 0.1)!r}\t0.1\t0.005\n")  # 7 % off: flagged
    out = harmonise_files([InputSpec("c", p, "auto")])
    t = out.tables["c"].sort("base_pair_location")
    assert t[FLAG_P_INCONSISTENT].to_list() == [True, False, True]
    assert out.ledgers["c"].changed["p_inconsistent_flagged"] == 2
    assert out.ledgers["c"].n_kept == 3


def test_readers__default_n_fills_only_missing(tmp_path):
    p = tmp_path / "n.tsv"
    p.write_text("CHR\tPOS\tA1\tA2\tBETA\tSE\tN\n1\t10\tA\tG\t0.1\t0.1\t800\n1\t20\tA\tG\t0.1\t0.1\tNA\n")
    out = harmonise_files([InputSpec("c", p, "auto")], default_n=5000)
    assert out.tables["c"].sort("base_pair_location")["n"].to_list() == [800, 5000]
    assert out.ledgers["c"].changed["n_default"] == 1
    q = tmp_path / "nn.tsv"
    q.write_text("CHR\tPOS\tA1\tA2\tBETA\tSE\n1\t10\tA\tG\t0.1\t0.1\n")
    assert read_summary_statistics(q, default_n=42).table["n"].to_list() == [42]


def test_readers__numeric_alleles_only_when_declared(tmp_path):
    p = tmp_path / "num.tsv"
    p.write_text("CHR\tPOS\tA1\tA2\tBETA\tSE\n1\t10\t1\t3\t0.1\t0.1\n1\t20\t4\t2\t0.2\t0.1\n")
    with pytest.raises(InputError, match=r"num.tsv: line 2: alleles '1'/'3' are numeric.*--numeric-alleles"):
        read_summary_statistics(p)
    out = harmonise_files([InputSpec("c", p, "auto")], numeric_alleles=True)
    t = out.tables["c"].sort("base_pair_location")
    # 1/3 = A/G (effect A: canonical order makes G the effect, beta negated); 4/2 = T/C
    assert t["effect_allele"].to_list() == ["G", "T"] and t["beta"].to_list() == [-0.1, 0.2]
    assert out.ledgers["c"].changed["numeric_alleles_decoded"] == 2


def test_readers__marker_only_rows_kept_last_and_matched_by_marker_and_alleles(tmp_path):
    a = tmp_path / "a.tbl"
    a.write_text("MarkerName\tAllele1\tAllele2\tEffect\tStdErr\tP-value\n"
                 "rs9\ta\tg\t0.3\t0.1\t0.0027\nrs8\tc\tt\t0.2\t0.1\t0.0455\n1:500\ta\tc\t0.1\t0.1\t0.3173\n")
    b = tmp_path / "b.tbl"
    b.write_text("MarkerName\tAllele1\tAllele2\tEffect\tStdErr\tP-value\n"
                 "rs9\tg\ta\t-0.3\t0.1\t0.0027\nrs8\tc\tt\t0.2\t0.1\t0.0455\n")
    out = harmonise_files([InputSpec("a", a, "auto"), InputSpec("b", b, "auto")])
    ta, tb = out.tables["a"], out.tables["b"]
    # "1:500" names its position; the rsIDs have none and come last, in rsid order.
    assert ta["rsid"].to_list() == ["1:500", "rs8", "rs9"]
    assert ta["chromosome"].to_list() == [1, None, None]
    assert ta["variant_id"].to_list() == ["1:500:A:C", None, None]
    assert out.ledgers["a"].changed["position_from_marker_name"] == 1
    # both cohorts put rs9 as other A / effect G, so a swap in one is undone
    for t in (ta, tb):
        r9 = t.filter(pl.col("rsid") == "rs9").row(0, named=True)
        assert (r9["other_allele"], r9["effect_allele"], r9["beta"]) == ("A", "G", -0.3)
    assert out.ledgers["a"].removed.get("bad_value_chromosome", 0) == 0


def test_align__multiallelic_site_matched_by_allele_pair(tmp_path):
    from crosscohort.central.harmonise import harmonise

    ref = pl.DataFrame({"chromosome": ["1", "1"], "base_pair_location": [100, 100],
                        "ref": ["A", "A"], "alt": ["G", "T"], "alt_frequency": [0.2, 0.1]})
    df = pl.DataFrame({"chromosome": ["1", "1"], "base_pair_location": [100, 100],
                       "effect_allele": ["A", "T"], "other_allele": ["G", "A"],
                       "beta": [0.5, 0.7], "standard_error": [0.1, 0.1],
                       "effect_allele_frequency": [0.8, 0.1], "p_value": [0.01, 0.01]})
    out = harmonise({"c": df}, reference=ref)
    t = out.tables["c"].sort("effect_allele")
    assert t["variant_id"].to_list() == ["1:100:A:G", "1:100:A:T"]
    assert t["beta"].to_list() == [-0.5, 0.7]
    assert out.ledgers["c"].changed["allele_swapped"] == 1


# --- bad input -----------------------------------------------------------------------------

def test_bad_input__missing_required_column_named(tmp_path):
    p = tmp_path / "m.tsv"
    p.write_text("CHR\tPOS\tA1\tA2\tSE\tP\n1\t10\tA\tG\t0.1\t0.5\n")
    with pytest.raises(InputError, match=r"m.tsv: missing required column for beta or odds_ratio"):
        read_summary_statistics(p)


def test_bad_input__unknown_format(tmp_path):
    p = tmp_path / "x.txt"
    p.write_text("a\n")
    with pytest.raises(ConfigError, match="unknown format 'plink3'"):
        parse_input(f"c={p}:plink3")
    with pytest.raises(ConfigError, match="unknown format 'plink3'"):
        read_summary_statistics(p, format="plink3")


def test_bad_input__ragged_row_names_file_and_line(tmp_path):
    p = tmp_path / "r.txt.gz"
    with gzip.open(p, "wt") as fh:
        fh.write("##comment\nCHR POS A1 A2 BETA SE\n1 10 A G 0.1 0.1\n1 20 A G 0.1\n")
    with pytest.raises(InputError, match=r"r.txt.gz: line 4: 5 fields, header has 6"):
        read_summary_statistics(p)


def test_bad_input__ambiguous_header_lists_candidates(tmp_path):
    p = tmp_path / "a.tsv"
    p.write_text("CHR\tPOS\tA1\tALT\tREF\tBETA\tSE\n1\t10\tA\tA\tG\t0.1\t0.1\n")
    with pytest.raises(InputError, match=r"ambiguous for effect_allele: columns \['A1', 'ALT'\]"):
        read_summary_statistics(p)
    # a mapping settles it
    t = read_summary_statistics(p, columns={"effect_allele": "A1", "other_allele": "REF"}).table
    assert t["other_allele"].to_list() == ["G"]


def test_bad_input__text_in_numeric_column_names_line_and_column(tmp_path):
    p = tmp_path / "t.tsv"
    p.write_text("CHR\tPOS\tA1\tA2\tBETA\tSE\n1\t10\tA\tG\t0.1\t0.1\n1\t20\tA\tG\tabc\t0.1\n")
    with pytest.raises(InputError, match=r"t.tsv: line 3: column BETA \(beta\): 'abc' is not a number"):
        read_summary_statistics(p)


# --- PLINK 2 itself --------------------------------------------------------------------------

def test_plink2_glm__other_allele_from_ref_alt_a1_equals_plink2_ax(plink2, tmp_path):
    import subprocess

    # oracle: plink2 --dummy 300 60 0.1 acgt --seed 1; positions rewritten to 100, 200, ...;
    #   plink2 --pfile d --pheno q.txt --covar cov.txt --glm cols=+a1freq,+ax --memory 1024 --out o
    run = dict(cwd=tmp_path, capture_output=True, text=True, check=True)
    # --memory: plink2 otherwise reserves half the machine's RAM, which fails on a busy host.
    subprocess.run([plink2, "--dummy", "300", "60", "0.1", "acgt", "--seed", "1", "--memory", "1024", "--out", "d0"],
                   **run)
    pvar = (tmp_path / "d0.pvar").read_text().splitlines()
    out = [pvar[0]] + ["\t".join([f[0], str((int(f[1]) + 1) * 100), *f[2:]])
                       for f in (ln.split("\t") for ln in pvar[1:])]
    (tmp_path / "d.pvar").write_text("\n".join(out) + "\n")
    for ext in ("pgen", "psam"):
        (tmp_path / f"d.{ext}").write_bytes((tmp_path / f"d0.{ext}").read_bytes())
    rng = np.random.default_rng(3)
    ids = [ln.split("\t")[0] for ln in (tmp_path / "d.psam").read_text().splitlines()[1:]]
    (tmp_path / "q.txt").write_text("#IID\tQT\n" + "".join(f"{i}\t{rng.normal()!r}\n" for i in ids))
    (tmp_path / "cov.txt").write_text("#IID\tAGE\n" + "".join(f"{i}\t{rng.normal()!r}\n" for i in ids))
    subprocess.run([plink2, "--pfile", "d", "--pheno", "q.txt", "--covar", "cov.txt", "--glm",
                    "cols=+a1freq,+ax", "--memory", "1024", "--out", "o"], **run)
    glm = next(tmp_path.glob("o.QT.glm.linear"))
    with_ax = read_summary_statistics(glm).table
    lines = [ln.split("\t") for ln in glm.read_text().splitlines()]
    ax = lines[0].index("AX")
    no_ax = tmp_path / "noax.glm.linear"
    no_ax.write_text("".join("\t".join(f[:ax] + f[ax + 1:]) + "\n" for f in lines))
    rd = read_summary_statistics(no_ax)
    assert rd.removed == {"not_additive_test": 60}  # the AGE rows plink2 prints per variant
    derived = rd.table
    assert derived["other_allele"].to_list() == with_ax["other_allele"].to_list()
    add = [f for f in lines[1:] if f[lines[0].index("TEST")] == "ADD"]
    assert derived["other_allele"].to_list() == [f[ax] for f in add]
    assert derived["effect_allele"].to_list() == [f[lines[0].index("A1")] for f in add]
    # plink2 prints NA for a variant it cannot fit; the reader keeps it missing, never 0
    b = lines[0].index("BETA")
    assert derived["beta"].to_list() == [None if f[b] == "NA" else float(f[b]) for f in add]
    # plink2's P is from t, ours from the file as given: flags only where t and z really differ.
    assert not derived[FLAG_P_INCONSISTENT].any()


# --- CLI ---------------------------------------------------------------------------------------

def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    harmonise_cmd.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli__per_file_formats_mapping_and_default_n(tmp_path):
    rows, panel = _small(m=8)
    ref = _write_panel(panel, tmp_path / "panel.tsv")
    regenie(rows, tmp_path / "a.regenie")
    header = {"chromosome": "K", "base_pair_location": "L", "effect_allele": "E",
              "other_allele": "O", "beta": "EST", "standard_error": "S", "p_value": "PV",
              "effect_allele_frequency": "F"}
    csv_mapped(rows, tmp_path / "c.csv", header)
    (tmp_path / "map.yaml").write_text(yaml.safe_dump({"columns": header}))
    rc = _cli(["harmonise", "--reference", str(ref), "--out-dir", str(tmp_path / "h"),
               "--columns", str(tmp_path / "map.yaml"), "--default-n", "777",
               f"a={tmp_path / 'a.regenie'}:regenie", f"{tmp_path / 'c.csv'}:mapped"])
    assert rc == 0
    ledgers = {lg["cohort"]: lg for lg in json.loads((tmp_path / "h" / "ledger.json").read_text())}
    assert set(ledgers) == {"a", "c"}
    assert ledgers["c"]["changed"]["n_default"] == 8
    got = read_sumstats(tmp_path / "h" / "c.tsv.gz").sort("base_pair_location")
    assert got["n"].to_list() == [777] * 8
    np.testing.assert_allclose(got["beta"].to_numpy(), rows.sort("base_pair_location")["beta"].to_numpy(),
                               rtol=0, atol=0)


# --- the documentation lists what the code does ---------------------------------------------

def test_docs__presets_dictionary_and_difference_tests_are_listed():
    import re

    from crosscohort.central.harmonise.formats import PRESETS

    doc = (Path(__file__).parent.parent / "docs" / "harmonisation.md").read_text()
    for name in PRESETS:
        assert f"| `{name}` |" in doc, name
    for field, names in HEADER_DICTIONARY.items():
        row = next(ln for ln in doc.splitlines() if ln.startswith(f"| `{field}` |"))
        assert row.split("|")[2].strip() == ", ".join(dict.fromkeys(names)), field
    tests = Path(__file__).parent / "test_harmonise_conformance.py"
    for name in re.findall(r"`(test_differs\w+)`", doc):
        assert f"def {name}(" in tests.read_text(), name


def test_readers__gwas_ssf_parquet_and_passthrough_columns(tmp_path):
    rows, _ = _small(m=4)
    df = rows.select("chromosome", "base_pair_location", "effect_allele", "other_allele", "beta",
                     "standard_error", "effect_allele_frequency", "p_value", "n", "rsid")
    df.write_parquet(tmp_path / "c.parquet")
    t = read_summary_statistics(tmp_path / "c.parquet").table
    assert t["beta"].to_list() == df["beta"].to_list() and t["rsid"].to_list() == df["rsid"].to_list()
    tsv = tmp_path / "c.tsv"
    df.with_columns(pl.lit("x").alias("hm_code")).write_csv(tsv, separator="\t")
    rd = read_summary_statistics(tsv)
    assert rd.format == "gwas-ssf" and rd.table["hm_code"].to_list() == ["x"] * 4


def test_readers__plink1_missing_allele_zero_is_a_bad_value_not_an_allele(tmp_path):
    p = tmp_path / "m.assoc"
    p.write_text("CHR BP SNP A1 A2 BETA SE P\n1 100 rs1 A 0 0.5 0.1 0.01\n1 200 rs2 A G 0.5 0.1 0.01\n")
    out = harmonise_files([InputSpec("c", p, "auto")])
    assert out.ledgers["c"].removed["bad_value_other_allele"] == 1
    assert out.tables["c"]["rsid"].to_list() == ["rs2"]


@pytest.mark.parametrize("layout", ["tab", "comma", "space", "tab.gz", "comments", "blank_line",
                                    "short_row_balanced_by_long_row", "crlf", "padded"])
def test_readers__typed_fast_path_reads_exactly_what_the_checking_path_reads(layout, tmp_path,
                                                                              monkeypatch):
    import crosscohort.central.harmonise.readers as readers

    sep = {"comma": ",", "space": " "}.get(layout, "\t")
    rows = [["1", "10", "A", "G", "0.1", "0.05", "0.2", "NA", "100", "rs1"],
            ["chr2", "20", "a", "t", "-0.3", "0.1", ".", "1e-300", "", "rs2"],
            ["X", "30", "C", "CT", "nan", "0.2", "0.5", "0.5", "250", "NA"]]
    if sep == " ":  # whitespace runs are one separator: no empty field there
        rows = [[v or "NA" for v in r] for r in rows]
    head = ["CHR", "BP", "A1", "A2", "BETA", "SE", "EAF", "P", "N", "SNP"]
    lines = [sep.join(head)] + [sep.join(r) for r in rows]
    if layout == "comments":
        lines = ["## written by a tool", *lines]
    if layout == "blank_line":
        lines.insert(2, "")
    if layout == "short_row_balanced_by_long_row":
        lines[1] = sep.join(rows[0][:-1])  # one field short ...
        lines[2] = sep.join([*rows[1], "extra"])  # ... one long: total separators still match
    if layout == "padded":
        lines[1] = lines[1].replace("0.05", " 0.05")
    eol = "\r\n" if layout == "crlf" else "\n"
    text = eol.join(lines) + eol
    p = tmp_path / ("s.tsv.gz" if layout.endswith(".gz") else "s.txt")
    if layout.endswith(".gz"):
        p.write_bytes(gzip.compress(text.encode()))
    else:
        p.write_text(text)

    def read(fast: bool):
        if not fast:
            monkeypatch.setattr(readers, "_read_typed", lambda *a, **k: None)
        try:
            return read_summary_statistics(p)
        except InputError as exc:
            return str(exc)
        finally:
            monkeypatch.undo()

    taken = []
    real = readers._read_typed
    monkeypatch.setattr(readers, "_read_typed", lambda *a, **k: taken.append(r := real(*a, **k)) or r)
    fast = read(True)
    slow = read(False)
    if isinstance(slow, str):  # the checking path's error, word for word, from either path
        assert fast == slow and "fields, header has 10" in slow
        assert taken == [None]
    else:
        assert fast.table.equals(slow.table) and fast.n_rows == slow.n_rows == 3
        # Clean layouts (a padded number parses alike) take the fast path; the rest fall back.
        assert (taken[0] is not None) == (layout in ("tab", "comma", "space", "tab.gz", "comments",
                                                     "padded"))
