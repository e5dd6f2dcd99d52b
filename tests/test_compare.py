"""Meta versus pooled comparison: metrics recomputed by independent paths (scipy, numpy, pandas-free joins)."""

from __future__ import annotations

import argparse
import json

import numpy as np
import polars as pl
import pytest
from scipy.stats import linregress

from crosscohort.central.compare import compare_arms
from crosscohort.commands import compare as compare_cmd
from crosscohort.contract.stats import CHI2_1_MEDIAN, neg_log10_p_from_z
from crosscohort.contract.sumstats import write_sumstats


def _arms(seed: int = 0, m: int = 400):
    rng = np.random.default_rng(seed)
    chrom = np.repeat([1, 2], m // 2)
    pos = np.tile(np.arange(1, m // 2 + 1) * 20_000, 2)
    true = np.zeros(m)
    hits = [10, 11, 12, 100, 250, 390]  # two adjacent-variant loci and singles
    true[hits] = [0.5, 0.45, 0.4, 0.3, 0.35, 0.6]
    se_p = np.full(m, 0.04)
    se_m = se_p * rng.uniform(1.0, 1.1, m)
    bp = true + rng.normal(0, 1, m) * se_p
    bm = bp + rng.normal(0, 0.3, m) * se_p

    def table(b, se):
        z = b / se
        nlp = neg_log10_p_from_z(z)
        return pl.DataFrame({"chromosome": chrom, "base_pair_location": pos,
                             "effect_allele": ["G"] * m, "other_allele": ["A"] * m,
                             "beta": b, "standard_error": se,
                             "effect_allele_frequency": np.full(m, 0.3),
                             "p_value": 10.0 ** -nlp, "neg_log_10_p_value": nlp})

    meta = table(bm, se_m).with_columns(
        pl.concat_str([pl.col("chromosome").cast(str), pl.col("base_pair_location").cast(str),
                       pl.lit("A"), pl.lit("G")], separator=":").alias("variant_id"))
    pooled = table(bp, se_p)
    # The pooled arm reports a third of variants with alleles the other way round,
    # labels chromosome 2 as "chr2", lacks 10 variants and has one allele mismatch.
    swap = pl.Series(rng.random(m) < 0.33)
    pooled = pooled.with_columns(
        pl.when(swap).then(pl.col("other_allele")).otherwise(pl.col("effect_allele")).alias("effect_allele"),
        pl.when(swap).then(pl.col("effect_allele")).otherwise(pl.col("other_allele")).alias("other_allele"),
        pl.when(swap).then(-pl.col("beta")).otherwise(pl.col("beta")).alias("beta"),
        pl.when(pl.col("chromosome") == 2).then(pl.lit("chr2"))
        .otherwise(pl.col("chromosome").cast(str)).alias("chromosome"),
    )
    pooled = pooled.filter(~pl.int_range(pl.len()).is_in(list(range(300, 310))))
    pooled = pooled.with_columns(
        pl.when(pl.int_range(pl.len()) == 5).then(pl.lit("T")).otherwise(pl.col("effect_allele"))
        .alias("effect_allele"))
    return meta, pooled, int(swap.sum())


def test_compare__metrics_recomputed_independently():
    meta, pooled, _ = _arms()
    c = compare_arms(meta, pooled, threshold=5e-8, window_kb=500)
    # Independent join: variant strings in both orientations.
    mk = {f"{r['chromosome']}:{r['base_pair_location']}:{r['other_allele']}:{r['effect_allele']}": r
          for r in meta.iter_rows(named=True)}
    pairs = []
    for r in pooled.iter_rows(named=True):
        ch = str(r["chromosome"]).replace("chr", "")
        fwd = f"{ch}:{r['base_pair_location']}:{r['other_allele']}:{r['effect_allele']}"
        rev = f"{ch}:{r['base_pair_location']}:{r['effect_allele']}:{r['other_allele']}"
        if fwd in mk:
            pairs.append((mk[fwd], r["beta"], r))
        elif rev in mk:
            pairs.append((mk[rev], -r["beta"], r))
    bm = np.array([m["beta"] for m, _, _ in pairs])
    bp = np.array([b for _, b, _ in pairs])
    assert c.n_shared == len(pairs) == 400 - 10 - 1
    assert c.n_allele_mismatch == 1
    fit = linregress(bp, bm)  # oracle: scipy.stats.linregress(x=beta_pooled, y=beta_meta)
    assert c.all_shared.slope == pytest.approx(fit.slope, rel=1e-10)
    assert c.all_shared.intercept == pytest.approx(fit.intercept, rel=1e-8, abs=1e-14)
    assert c.all_shared.pearson_r == pytest.approx(np.corrcoef(bm, bp)[0, 1], rel=1e-10)
    ratio = np.array([m["standard_error"] / r["standard_error"] for m, _, r in pairs])
    assert c.se_ratio_median == pytest.approx(np.median(ratio), rel=1e-12)
    sig_m = np.array([m["p_value"] < 5e-8 for m, _, _ in pairs])
    sig_p = np.array([r["p_value"] < 5e-8 for _, _, r in pairs])
    assert (c.n_sig_meta, c.n_sig_pooled, c.n_sig_both, c.n_sig_meta_only, c.n_sig_pooled_only) == (
        sig_m.sum(), sig_p.sum(), (sig_m & sig_p).sum(), (sig_m & ~sig_p).sum(), (~sig_m & sig_p).sum())
    assert c.n_sig_both >= 4
    for arm, df in (("meta", meta), ("pooled", pooled)):
        z2 = (df.get_column("beta") / df.get_column("standard_error")).to_numpy() ** 2
        assert getattr(c, f"lambda_gc_{arm}") == pytest.approx(np.median(z2) / CHI2_1_MEDIAN, rel=1e-8)


def test_compare__loci_and_concordance():
    meta, pooled, _ = _arms()
    c = compare_arms(meta, pooled, threshold=5e-8, window_kb=50)
    # hits 10-12 are 20 kb apart (one locus), 100, 250 (chr2) and 390 (chr2) alone
    assert c.n_loci_meta == c.n_loci_pooled == 4
    assert c.n_loci_meta_shared == c.n_loci_pooled_shared == 4
    # Drop pooled's strongest locus: that meta locus is no longer shared.
    pooled2 = pooled.with_columns(
        pl.when(pl.col("base_pair_location").is_between(200_000, 280_000)
                & (pl.col("chromosome") == "1")).then(pl.lit(0.5)).otherwise(pl.col("p_value"))
        .alias("p_value"),
        pl.when(pl.col("base_pair_location").is_between(200_000, 280_000)
                & (pl.col("chromosome") == "1")).then(pl.lit(0.3)).otherwise(pl.col("neg_log_10_p_value"))
        .alias("neg_log_10_p_value"))
    c2 = compare_arms(meta, pooled2, threshold=5e-8, window_kb=50)
    assert c2.n_loci_pooled == 3 and c2.n_loci_meta_shared == 3 and c2.n_loci_pooled_shared == 3


def _run_cli(module, argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    module.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_compare_cli__tsv_reproduces_json_metrics_via_linregress(tmp_path):
    meta, pooled, _ = _arms(seed=3)
    write_sumstats(meta, tmp_path / "meta.tsv.gz")
    write_sumstats(pooled, tmp_path / "pooled.tsv.gz")
    rc = _run_cli(compare_cmd, ["compare", "--meta", str(tmp_path / "meta.tsv.gz"), "--pooled",
                                str(tmp_path / "pooled.tsv.gz"), "--threshold", "1e-6",
                                "--window-kb", "100", "--out-prefix", str(tmp_path / "cmp")])
    assert rc == 0
    metrics = json.loads((tmp_path / "cmp.json").read_text())
    tsv = pl.read_csv(tmp_path / "cmp.tsv", separator="\t")
    assert tsv.height == metrics["significant_either"]["n"]
    fit = linregress(tsv.get_column("beta_pooled").to_numpy(), tsv.get_column("beta_meta").to_numpy())
    assert metrics["significant_either"]["slope"] == pytest.approx(fit.slope, rel=1e-10)
    assert metrics["significant_either"]["pearson_r"] == pytest.approx(fit.rvalue, rel=1e-10)
    counts = tsv.get_column("class").value_counts()
    got = dict(zip(counts.get_column("class").to_list(), counts.get_column("count").to_list(),
                   strict=True))
    assert got.get("both", 0) == metrics["n_sig_both"]
    assert got.get("meta_only", 0) == metrics["n_sig_meta_only"]
    assert got.get("pooled_only", 0) == metrics["n_sig_pooled_only"]
    assert metrics["threshold"] == 1e-6 and metrics["window_kb"] == 100
    assert len(metrics["loci_meta_table"]) == metrics["n_loci_meta"]


def test_compare_cli__an_unknown_chromosome_label_names_the_file_and_line(tmp_path, capsys):
    """Before: 'pooled arm: column chromosome: unknown label 'chr99'' named neither file nor line."""
    from crosscohort.cli import main

    meta, pooled, _ = _arms(seed=3)
    pooled = pooled.with_columns(
        pl.when(pl.int_range(pl.len()) == 7).then(pl.lit("chr99")).otherwise(pl.col("chromosome"))
        .alias("chromosome"))
    write_sumstats(meta, tmp_path / "meta.tsv.gz")
    write_sumstats(pooled, tmp_path / "pooled.tsv.gz")
    rc = main(["compare", "--meta", str(tmp_path / "meta.tsv.gz"), "--pooled",
               str(tmp_path / "pooled.tsv.gz"), "--out-prefix", str(tmp_path / "cmp")])
    assert rc == 2
    assert (r"pooled arm (" + str(tmp_path / "pooled.tsv.gz") + "): line 9: column chromosome: "
            "unknown label 'chr99'") in capsys.readouterr().err


def test_compare__a_shared_variant_without_an_estimate_is_counted_not_a_nan_agreement():
    """A pooled NA row (a variant assoc or plink2 could not fit). Before: pearson_r, slope and
    se_ratio_median all NaN from that one row, with no count saying why."""
    meta, pooled, _ = _arms(seed=3)
    whole = compare_arms(meta, pooled)
    na = pl.int_range(pl.len()) == 50
    cols = ("beta", "standard_error", "p_value", "neg_log_10_p_value")
    holed = pooled.with_columns(pl.when(na).then(None).otherwise(pl.col(c)).alias(c) for c in cols)
    got = compare_arms(meta, holed)
    assert got.n_shared == whole.n_shared and got.n_shared_no_estimate == 1
    assert got.all_shared.n == whole.all_shared.n - 1
    # the same agreement as without that variant at all
    without = compare_arms(meta, pooled.filter(~na))
    assert got.all_shared.pearson_r == pytest.approx(without.all_shared.pearson_r, rel=1e-12)
    assert got.se_ratio_median == pytest.approx(without.se_ratio_median, rel=1e-12)
    assert got.to_dict()["n_shared_no_estimate"] == 1
