"""Strand flips without a reference: non-palindromic SNPs on the other strand merge (harmonise/strand.py)."""

from __future__ import annotations

import json

import numpy as np
import polars as pl

from crosscohort.cli import main
from crosscohort.contract.sumstats import read_sumstats

COMP = str.maketrans("ACGT", "TGCA")
PAIRS = [("A", "C"), ("A", "G"), ("C", "T"), ("G", "T"), ("A", "T"), ("C", "G")]


def _cohorts(rng, m=300, k=3):
    pairs = [PAIRS[i] for i in rng.integers(0, len(PAIRS), m)]
    truth = rng.normal(0, 0.1, m)
    out = []
    for _ in range(k):
        se = rng.uniform(0.02, 0.06, m)
        out.append(pl.DataFrame({
            "SNP": [f"rs{i}" for i in range(m)], "CHR": 1, "POS": (np.arange(m) + 1) * 100,
            "EA": [p[1] for p in pairs], "NEA": [p[0] for p in pairs],
            "BETA": truth + rng.normal(0, 1, m) * se, "SE": se,
            "EAF": rng.uniform(0.05, 0.45, m),
        }))
    return out


def _reverse(df: pl.DataFrame, share: float, rng) -> tuple[pl.DataFrame, int]:
    """The cohort with ``share`` of its non-palindromic SNPs on the reverse strand."""
    pal = pl.concat_str("EA", "NEA").is_in(["AT", "TA", "CG", "GC"])
    flip = pl.Series(rng.random(df.height) < share) & ~df.select(pal).to_series()
    comp = {"A": "T", "C": "G", "G": "C", "T": "A"}
    out = df.with_columns(
        pl.when(flip).then(pl.col(c).replace_strict(comp)).otherwise(pl.col(c)).alias(c)
        for c in ("EA", "NEA"))
    return out, int(flip.sum())


def _meta(tmp_path, name, frames, *extra):
    files = []
    for i, f in enumerate(frames):
        p = tmp_path / f"{name}{i}.txt"
        f.write_csv(p, separator="\t")
        files.append(f"c{i}={p}")
    out = tmp_path / f"{name}.tsv"
    assert main(["meta", "--format", "auto", *extra, "--out", str(out), *files]) == 0
    return read_sumstats(out, required=()), json.loads(
        (tmp_path / f"{name}.tsv.summary.json").read_text())["ledgers"]


def test_meta_strand__reverse_strand_snps_of_one_cohort_merge_with_the_others(tmp_path):
    rng = np.random.default_rng(20)
    cohorts = _cohorts(rng)
    truth, _ = _meta(tmp_path, "fwd", cohorts)
    rev, n_flipped = _reverse(cohorts[1], 0.2, rng)
    assert n_flipped > 30
    got, ledgers = _meta(tmp_path, "mix", [cohorts[0], rev, cohorts[2]])
    # No variant split in two: the same rows, numbers and directions as all-forward.
    assert got.height == truth.height == 300
    assert (got.get_column("n_studies") == 3).all()
    cols = ["beta", "standard_error", "effect_allele_frequency", "het_q"]
    for c in cols:
        np.testing.assert_allclose(got.get_column(c).to_numpy(), truth.get_column(c).to_numpy(),
                                   rtol=1e-12, atol=1e-15)
    assert got.get_column("direction").to_list() == truth.get_column("direction").to_list()
    # Alleles as the majority of cohorts report them (the forward strand here).
    assert got.get_column("variant_id").to_list() == truth.get_column("variant_id").to_list()
    by = {lg["cohort"]: lg for lg in ledgers}
    assert by["c1"]["changed"]["strand_flipped_across_cohorts"] == n_flipped
    assert by["c0"]["changed"]["strand_flipped_across_cohorts"] == 0
    for lg in ledgers:
        assert lg["n_in"] == lg["n_kept"] + sum(lg["removed"].values())


def test_meta_strand__palindromes_and_indels_are_not_merged_by_strand(tmp_path):
    a = pl.DataFrame({"SNP": ["rs1", "rs2"], "CHR": 1, "POS": [100, 200], "EA": ["A", "T"],
                      "NEA": ["T", "TA"], "BETA": [0.1, 0.2], "SE": [0.05, 0.05]})
    # rs1 A/T reported as T/A (a palindrome: a swap or a flip, the alleles cannot say);
    # rs2 T/TA against A/AT: an indel is never complemented.
    b = pl.DataFrame({"SNP": ["rs1", "rs2"], "CHR": 1, "POS": [100, 200], "EA": ["T", "A"],
                      "NEA": ["A", "AT"], "BETA": [-0.1, 0.2], "SE": [0.05, 0.05]})
    got, ledgers = _meta(tmp_path, "pal", [a, b])
    assert got.filter(pl.col("base_pair_location") == 100).get_column("n_studies").to_list() == [2]
    assert got.filter(pl.col("base_pair_location") == 200).height == 2  # kept apart
    assert all(lg["changed"]["strand_flipped_across_cohorts"] == 0 for lg in ledgers)


def test_meta_strand__harmonised_tables_merge_too(tmp_path):
    rng = np.random.default_rng(21)
    cohorts = _cohorts(rng, m=120, k=2)
    rev, n_flipped = _reverse(cohorts[1], 0.5, rng)
    files = []
    for i, f in enumerate([cohorts[0], rev]):
        p = tmp_path / f"h{i}.txt"
        f.write_csv(p, separator="\t")
        files.append(f"c{i}={p}")
    assert main(["harmonise", "--out-dir", str(tmp_path / "h"), *files]) == 0
    out = tmp_path / "m.tsv"
    assert main(["meta", "--out", str(out), f"c0={tmp_path / 'h' / 'c0.tsv.gz'}",
                 f"c1={tmp_path / 'h' / 'c1.tsv.gz'}"]) == 0
    got = read_sumstats(out, required=())
    assert got.height == 120 and (got.get_column("n_studies") == 2).all()
