"""``crosscohort meta`` standalone (raw files harmonised in the same call), .tbl, LOO, bad input."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from crosscohort.central.harmonise import harmonise
from crosscohort.central.meta import meta_analyse
from crosscohort.central.meta.tbl import TBL_COLUMNS, TBL_COLUMNS_SAMPLESIZE
from crosscohort.cli import main
from crosscohort.contract.sumstats import read_sumstats


def _raw(rng, m, *, swap_share=0.5, pos0=1):
    pos = (np.arange(m) + pos0) * 100
    beta = rng.normal(0, 0.05, m) + np.where(np.arange(m) % 40 == 0, 0.5, 0.0)
    se = rng.uniform(0.02, 0.05, m)
    swap = rng.random(m) < swap_share
    return pl.DataFrame({
        "chromosome": np.ones(m, dtype=np.int64), "base_pair_location": pos,
        "effect_allele": np.where(swap, "A", "G"), "other_allele": np.where(swap, "G", "A"),
        "beta": np.where(swap, -beta, beta), "standard_error": se,
        "effect_allele_frequency": np.where(swap, 0.7, 0.3),
        "p_value": 0.5, "n": 1000, "rsid": [f"rs{i}" for i in range(m)],
    })


def test_meta_cli__standalone_raw_files_equal_harmonise_then_meta(tmp_path):
    rng = np.random.default_rng(41)
    a, b = _raw(rng, 200), _raw(rng, 200)
    a.write_csv(tmp_path / "coh_a.tsv", separator="\t")
    # The second cohort as plink1.9-style text the auto-detector reads through its dictionary.
    b.select(pl.col("chromosome").alias("CHR"), pl.col("base_pair_location").alias("BP"),
             pl.col("rsid").alias("SNP"), pl.col("effect_allele").alias("A1"),
             pl.col("other_allele").alias("A2"), pl.col("beta").alias("BETA"),
             pl.col("standard_error").alias("SE"), pl.col("p_value").alias("P"),
             pl.col("n").alias("N")).write_csv(tmp_path / "b.assoc", separator="\t")
    out = tmp_path / "m.tsv"
    rc = main(["meta", "--format", "auto", "--tbl", str(tmp_path / "m.tbl"), "--loo-threshold",
               "5e-8", "--loo-window-kb", "1", "--out", str(out), str(tmp_path / "coh_a.tsv"), f"bee={tmp_path / 'b.assoc'}"])
    assert rc == 0
    got = read_sumstats(out)
    want = meta_analyse(harmonise({"coh_a": a, "bee": b}).tables).table
    assert got.height == want.height == 200
    for col in ("beta", "standard_error", "het_q", "beta_random"):
        np.testing.assert_allclose(got.get_column(col).to_numpy(), want.get_column(col).to_numpy(),
                                   rtol=1e-15)
    assert json.loads((tmp_path / "m.tsv.summary.json").read_text())["cohorts"] == ["coh_a", "bee"]
    ledgers = json.loads((tmp_path / "m.tsv.harmonise.json").read_text())
    assert [lg["changed"]["allele_swapped"] for lg in ledgers] == [
        int((a.get_column("effect_allele") == "A").sum()), int((b.get_column("effect_allele") == "A").sum())]
    # .tbl: METAL's header, lower-case alleles, numbers equal the table's
    tbl = pl.read_csv(tmp_path / "m.tbl", separator="\t", null_values="NA")
    assert tuple(tbl.columns) == TBL_COLUMNS
    assert set(tbl.get_column("Allele1").to_list()) <= {"a", "c", "g", "t"}
    np.testing.assert_array_equal(tbl.get_column("Effect").to_numpy(), got.get_column("beta").to_numpy())
    np.testing.assert_allclose(tbl.get_column("HetISq").to_numpy(), 100 * got.get_column("het_i2").to_numpy())
    np.testing.assert_allclose(tbl.get_column("P-value").to_numpy(), got.get_column("p_value").to_numpy(),
                               rtol=1e-15)
    # LOO of the 5 planted loci (one lead each, 2 cohorts -> 10 rows)
    loo = pl.read_csv(tmp_path / "m.tsv.loo.tsv", separator="\t", null_values="NA")
    assert loo.height == 10 and set(loo.get_column("left_out_cohort")) == {"coh_a", "bee"}


def test_meta_cli__samplesize_tbl_layout_and_far_tail_p_text(tmp_path):
    t = pl.DataFrame({"chromosome": [1, 1], "base_pair_location": [5, 9], "effect_allele": ["G", "G"],
                      "other_allele": ["A", "A"], "beta": [4.0, 0.1], "standard_error": [0.1, 0.1],
                      "effect_allele_frequency": [0.5, 0.5], "p_value": [0.0, 0.3],
                      "neg_log_10_p_value": [349.1362, 0.5229], "n": [100, 100]})
    t.write_csv(tmp_path / "c.tsv", separator="\t")
    rc = main(["meta", "--method", "samplesize", "--tbl", str(tmp_path / "o.tbl"), "--out",
               str(tmp_path / "o.tsv"), f"c={tmp_path / 'c.tsv'}"])
    assert rc == 0
    tbl = pl.read_csv(tmp_path / "o.tbl", separator="\t", infer_schema=False)
    assert tuple(tbl.columns) == TBL_COLUMNS_SAMPLESIZE
    assert tbl.get_column("P-value")[0] == "7.3e-350"  # 10^-349.1362, not 0


def test_meta_cli__bad_inputs_counted_not_crashing(tmp_path):
    rng = np.random.default_rng(42)
    a = _raw(rng, 20, swap_share=0)
    b = a.with_columns(pl.lit(None, pl.Float64).alias("beta"))  # all-missing column ("NA")
    c = _raw(rng, 5, swap_share=0, pos0=10_000)  # no overlap with the others
    d = pl.concat([a.head(3), a.head(3).with_columns(pl.lit(0.0).alias("standard_error"))])
    for name, df in {"a": a, "b": b, "c": c, "d": d}.items():
        df.write_csv(tmp_path / f"{name}.tsv", separator="\t", null_value="NA")
    out = tmp_path / "o.tsv"
    rc = main(["meta", "--out", str(out), *(f"{x}={tmp_path / x}.tsv" for x in "abcd")])
    assert rc == 0
    s = json.loads((tmp_path / "o.tsv.summary.json").read_text())
    lg = {x["cohort"]: x for x in s["ledgers"]}
    assert lg["b"]["removed"]["bad_value_beta"] == 20 and lg["b"]["n_kept"] == 0
    assert lg["d"]["removed"]["bad_value_standard_error"] == 3 and lg["d"]["n_kept"] == 3
    t = read_sumstats(out)
    assert t.height == 25
    assert all(d[1] == "?" for d in t.get_column("direction"))  # b never read as 0
    assert [d[:2] + d[3] for d in t.filter(pl.col("base_pair_location") >= 1_000_000)
            .get_column("direction")] == ["???"] * 5
    # duplicated markers in the raw path: counted by harmonisation, kept once
    dup = pl.concat([a, a.head(2)])
    dup.write_csv(tmp_path / "dup.tsv", separator="\t")
    rc = main(["meta", "--format", "gwas-ssf", "--out", str(tmp_path / "o2.tsv"),
               f"dup={tmp_path / 'dup.tsv'}", f"a={tmp_path / 'a.tsv'}"])
    assert rc == 0
    h = json.loads((tmp_path / "o2.tsv.harmonise.json").read_text())
    assert h[0]["removed"]["duplicate"] == 2


@pytest.mark.parametrize("argv", [["--method", "bayes"], ["--format", "nonsense"]])
def test_meta_cli__bad_options_exit_2(tmp_path, argv, capsys):
    _raw(np.random.default_rng(1), 3).write_csv(tmp_path / "a.tsv", separator="\t")
    try:
        rc = main(["meta", *argv, "--out", str(tmp_path / "o.tsv"), f"a={tmp_path / 'a.tsv'}"])
    except SystemExit as exc:  # argparse rejects choices itself
        rc = exc.code
    assert rc == 2


def test_meta_cli__gwama_files_keyed_by_marker_name_alone_are_meta_analysed(tmp_path):
    rng = np.random.default_rng(43)
    frames = {x: _raw(rng, 30) for x in ("a", "b")}
    for x, df in frames.items():
        df.select(pl.col("rsid").alias("MARKERNAME"), pl.col("effect_allele").alias("EA"),
                  pl.col("other_allele").alias("NEA"), pl.col("beta").alias("BETA"),
                  pl.col("standard_error").alias("SE"), pl.col("n").alias("N"),
                  pl.col("effect_allele_frequency").alias("EAF")).write_csv(
            tmp_path / f"{x}.txt", separator="\t")
    out = tmp_path / "o.tsv"
    rc = main(["meta", "--format", "gwama", "--out", str(out),
               *(f"{x}={tmp_path / x}.txt" for x in frames)])
    assert rc == 0
    s = json.loads((tmp_path / "o.tsv.summary.json").read_text())
    assert [lg["removed"]["bad_value_key"] for lg in s["ledgers"]] == [0, 0]
    t = read_sumstats(out, required=())
    assert t.height == 30 and t.get_column("chromosome").null_count() == 30
    assert t.get_column("n_studies").to_list() == [2] * 30
    assert t.get_column("rsid").to_list() == sorted(f"rs{i}" for i in range(30))
    # The same numbers as the positioned cohorts give (alignment by allele pair, not position).
    want = meta_analyse(harmonise(frames).tables).table.sort("rsid")
    np.testing.assert_allclose(t.get_column("beta").to_numpy(), want.get_column("beta").to_numpy(),
                               rtol=1e-15)


@pytest.mark.parametrize("raw", [True, False], ids=["raw", "harmonised"])
def test_meta_and_harmonise_cli__cohort_without_variants_is_named_on_stderr(tmp_path, capsys, raw):
    """A header-only file (a wrong or cut transfer) or a cohort whose every row is removed
    contributes nothing: the run goes on, and says so, naming the cohort and its file."""
    rng = np.random.default_rng(43)
    a = _raw(rng, 30, swap_share=0)
    a.write_csv(tmp_path / "a.tsv", separator="\t")
    a.head(0).write_csv(tmp_path / "hdr.tsv", separator="\t")
    a.with_columns(pl.lit(None, pl.Float64).alias("beta")).write_csv(
        tmp_path / "nobeta.tsv", separator="\t", null_value="NA")
    files = [f"{x}={tmp_path / x}.tsv" for x in ("a", "hdr", "nobeta")]
    if raw:
        rc = main(["meta", "--format", "gwas-ssf", "--out", str(tmp_path / "o.tsv"), *files])
        stage = "harmonise"
    else:
        assert main(["harmonise", "--out-dir", str(tmp_path / "h"), *files]) == 0
        err = capsys.readouterr().err
        assert f"cohort hdr ({tmp_path / 'hdr.tsv'}): no data lines (a header only)" in err
        assert "cohort nobeta" in err and "none of its 30 rows kept by harmonise" in err
        # Two header-only harmonised files are the same file (refused): one of them.
        rc = main(["meta", "--out", str(tmp_path / "o.tsv"),
                   *(f"{x}={tmp_path / 'h' / x}.tsv.gz" for x in ("a", "hdr"))])
        stage = "meta"
    assert rc == 0
    err = capsys.readouterr().err
    assert "cohort hdr (" in err and "no data lines (a header only): it contributes no variants" in err
    if raw:
        assert f"cohort nobeta ({tmp_path / 'nobeta.tsv'}): none of its 30 rows kept by {stage}" in err
    assert "cohort a " not in err and "cohort a(" not in err
    assert read_sumstats(tmp_path / "o.tsv").height == 30
