"""Comparison, locus level: concordance classes, direction classes, heterogeneity of discordant
loci and the ancestry view, each recomputed here by an independent path (plain Python loops
over dictionaries keyed by variant strings), never by the module's own joins."""

from __future__ import annotations

import argparse
import json

import numpy as np
import polars as pl
import pytest

from crosscohort.central.compare import compare_arms, direction_class
from crosscohort.commands import compare as compare_cmd
from crosscohort.contract.sumstats import write_sumstats
from tests.test_compare import _arms

COHORT_N = {"c1": 3000, "c2": 2000, "c3": 1000}
WINDOW_KB = 50


@pytest.mark.parametrize("d,want", [("+++", "agree"), ("+-?", "conflict"), ("??+", "single_cohort"),
                                    ("???", "unknown"), ("+0?", "agree"), ("0??", "single_cohort"),
                                    ("-?-", "agree"), (None, "unknown")])
def test_direction_class__each_pattern(d, want):
    assert direction_class(pl.Series([d], dtype=pl.String))[0] == want


def _design(seed: int = 0):
    meta, pooled, _ = _arms(seed=seed)
    m = meta.height
    rng = np.random.default_rng(seed + 10)
    direction = np.array(["+++"] * m, dtype=object)
    direction[390] = "??+"  # carried by c3 only
    direction[100] = "+-+"  # conflicting signs
    meta = meta.with_columns(
        pl.Series("direction", direction, dtype=pl.String),
        pl.Series("het_q", rng.uniform(0, 10, m)), pl.Series("het_p", rng.uniform(0, 1, m)),
        pl.Series("het_i2", rng.uniform(0, 1, m)))
    # Pooled: loses the locus at index 250 (chr2), gains one at index 150 (chr1).
    pos = pooled.get_column("base_pair_location").to_numpy()
    chrom = pooled.get_column("chromosome").to_list()
    lost = np.array([(c == "chr2") and p == 51 * 20_000 for c, p in zip(chrom, pos, strict=True)])
    gained = np.array([(c == "1") and p == 151 * 20_000 for c, p in zip(chrom, pos, strict=True)])
    nlp = pooled.get_column("neg_log_10_p_value").to_numpy().copy()
    nlp[lost] = 0.3
    nlp[gained] = 12.0
    pooled = pooled.with_columns(pl.Series("neg_log_10_p_value", nlp), pl.Series("p_value", 10.0 ** -nlp))
    # Cohorts: random EAFs; c2 reports every variant with alleles reversed; c3 alone has index 390.
    cohorts = {}
    for k, (c, n) in enumerate(COHORT_N.items()):
        eaf = np.random.default_rng(seed + k).uniform(0.02, 0.98, m)
        t = meta.select("chromosome", "base_pair_location", "effect_allele", "other_allele").with_columns(
            pl.Series("effect_allele_frequency", eaf), pl.lit(n, pl.Int64).alias("n"),
            pl.lit(0.1).alias("beta"), pl.lit(0.05).alias("standard_error"), pl.lit(0.04).alias("p_value"))
        if c == "c2":
            t = t.with_columns(pl.col("other_allele").alias("effect_allele"), pl.col("effect_allele")
                               .alias("other_allele"), (1 - pl.col("effect_allele_frequency"))
                               .alias("effect_allele_frequency"))
        if c != "c3":
            t = t.filter(pl.int_range(pl.len()) != 390)
        cohorts[c] = t
    return meta, pooled, cohorts


def _key(r) -> str:
    return f"{str(r['chromosome']).replace('chr', '')}:{r['base_pair_location']}"


def _oracle(meta, pooled, cohorts, threshold=5e-8):
    """Greedy loci, classes, EAFs and most-common cohort by loops over dicts."""
    t = -np.log10(threshold)

    def loci(df):
        rows = sorted((r for r in df.iter_rows(named=True) if r["neg_log_10_p_value"] > t),
                      key=lambda r: -r["neg_log_10_p_value"])
        leads, used = [], set()
        for r in rows:
            if _key(r) in used:
                continue
            leads.append(r)
            for s in rows:
                if str(s["chromosome"]).replace("chr", "") == str(r["chromosome"]).replace("chr", "") and \
                        abs(s["base_pair_location"] - r["base_pair_location"]) <= WINDOW_KB * 1000:
                    used.add(_key(s))
        return leads

    lm, lp = loci(meta), loci(pooled)

    def near(a, bs):
        return any(str(a["chromosome"]).replace("chr", "") == str(b["chromosome"]).replace("chr", "")
                   and abs(a["base_pair_location"] - b["base_pair_location"]) <= WINDOW_KB * 1000 for b in bs)

    out = {}
    for r in lm:
        out[_key(r)] = {"class": "both" if near(r, lp) else "meta_only", "lead": r}
    for r in lp:
        if not near(r, lm):
            out[_key(r)] = {"class": "pooled_only", "lead": r}
    meta_rows = {_key(r): r for r in meta.iter_rows(named=True)}
    for k, v in out.items():
        lead = v["lead"]
        eafs = {}
        for c, df in cohorts.items():
            for r in df.iter_rows(named=True):
                if _key(r) != k:
                    continue
                same = (r["effect_allele"], r["other_allele"]) == (lead["effect_allele"], lead["other_allele"])
                eafs[c] = r["effect_allele_frequency"] if same else 1 - r["effect_allele_frequency"]
        v["eaf"] = eafs
        wsum = sum(COHORT_N[c] for c in eafs)
        mean = sum(COHORT_N[c] * e for c, e in eafs.items()) / wsum
        minor = {c: (e if mean <= 0.5 else 1 - e) for c, e in eafs.items()}
        v["most_common"] = max(minor, key=minor.get)
        mr = meta_rows.get(k)
        v["direction"] = mr["direction"] if mr else None
        v["het_i2"] = mr["het_i2"] if mr else None
    return out


def test_compare_loci__classes_eafs_and_ancestry_match_independent_loops():
    meta, pooled, cohorts = _design()
    c = compare_arms(meta, pooled, window_kb=WINDOW_KB, cohorts=cohorts)
    want = _oracle(meta, pooled, cohorts)
    got = {f"{r['chromosome']}:{r['base_pair_location']}": r for r in c.loci.iter_rows(named=True)}
    assert set(got) == set(want)
    assert sorted(v["class"] for v in want.values()) == sorted(r["class"] for r in got.values())
    assert {v["class"] for v in want.values()} == {"both", "meta_only", "pooled_only"}
    for k, w in want.items():
        g = got[k]
        assert g["class"] == w["class"], k
        assert g["most_common_cohort"] == w["most_common"], k
        for cohort in COHORT_N:
            if cohort in w["eaf"]:
                assert g[f"eaf_{cohort}"] == pytest.approx(w["eaf"][cohort], abs=1e-12), (k, cohort)
            else:
                assert g[f"eaf_{cohort}"] is None, (k, cohort)
        assert g["direction"] == w["direction"]
    # Index 390 (chr2, position 191 * 20 kb) is carried by c3 only: cohort-specific, EAF from c3.
    specific = [k for k, r in got.items() if r["cohort_specific"]]
    assert specific == ["2:3820000"]
    assert got["2:3820000"]["most_common_cohort"] == "c3"
    # Counts in the metrics agree with the table.
    classes = [w["class"] for w in want.values()]
    assert (c.n_loci_both, c.n_loci_meta_only, c.n_loci_pooled_only) == tuple(
        classes.count(x) for x in ("both", "meta_only", "pooled_only"))
    outside = sum(1 for w in want.values() if w["most_common"] != "c1")  # c1 is the largest cohort
    assert c.largest_cohort == "c1"
    assert c.n_hits_most_common_outside_largest == outside
    assert c.share_hits_most_common_outside_largest == pytest.approx(outside / len(want))
    # Heterogeneity of the discordant loci: the meta I² at their leads.
    disc_i2 = [w["het_i2"] for w in want.values() if w["class"] != "both" and w["het_i2"] is not None]
    assert c.discordant_het["n_loci"] == sum(w["class"] != "both" for w in want.values())
    assert c.discordant_het["median_i2"] == pytest.approx(float(np.median(disc_i2)))
    dirs = [direction_class(pl.Series([w["direction"]], dtype=pl.String))[0] for w in want.values()]
    assert c.direction_classes_loci == {k: dirs.count(k) for k in ("agree", "conflict", "single_cohort", "unknown")}


def test_compare_cli__loci_tsv_and_json_agree(tmp_path):
    meta, pooled, cohorts = _design(seed=1)
    write_sumstats(meta, tmp_path / "meta.tsv.gz")
    write_sumstats(pooled, tmp_path / "pooled.tsv.gz")
    args = []
    for c, df in cohorts.items():
        write_sumstats(df, tmp_path / f"{c}.tsv.gz")
        args.append(f"{c}={tmp_path / f'{c}.tsv.gz'}")
    parser = argparse.ArgumentParser()
    compare_cmd.register(parser.add_subparsers(dest="command"))
    ns = parser.parse_args(["compare", "--meta", str(tmp_path / "meta.tsv.gz"), "--pooled",
                            str(tmp_path / "pooled.tsv.gz"), "--window-kb", str(WINDOW_KB), "--cohort", *args,
                            "--out-prefix", str(tmp_path / "cmp")])
    assert ns.func(ns) == 0
    metrics = json.loads((tmp_path / "cmp.json").read_text())
    loci = pl.read_csv(tmp_path / "cmp.loci.tsv", separator="\t", null_values=["NA"])
    counts = dict(zip(*loci.get_column("class").value_counts().to_dict().values(), strict=True))
    assert counts.get("both", 0) == metrics["n_loci_both"]
    assert counts.get("meta_only", 0) == metrics["n_loci_meta_only"]
    assert counts.get("pooled_only", 0) == metrics["n_loci_pooled_only"]
    assert loci.get_column("cohort_specific").sum() == metrics["n_cohort_specific_loci"] == 1
    assert metrics["cohorts"] == list(COHORT_N)
    assert len(metrics["loci_table"]) == loci.height
    variants = pl.read_csv(tmp_path / "cmp.tsv", separator="\t", null_values=["NA"])
    dc = variants.get_column("direction_class").to_list()
    assert metrics["direction_classes_variants"] == {k: dc.count(k) for k in
                                                      ("agree", "conflict", "single_cohort", "unknown")}
