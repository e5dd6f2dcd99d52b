"""EAF against the panel, one chromosome at a time, matches the rule row by row; blocks do not change the page.

The oracle of the alignment is a dictionary lookup written here: a cohort row
takes the panel's ALT frequency where its effect/other alleles are the panel's
ALT/REF, else 1 - that frequency where they are REF/ALT, a direct match
winning; rows of other chromosomes never match.
"""

from __future__ import annotations

import numpy as np
import polars as pl

import crosscohort.contract.table_io as table_io
from crosscohort.central.report.sections import _aligned_join
from crosscohort.cli import main
from tests.test_report import inputs  # noqa: F401  (the session fixture of the report tests)

KEY = ["chromosome", "base_pair_location", "effect_allele", "other_allele"]


def _tables(rng: np.random.Generator) -> tuple[pl.DataFrame, pl.DataFrame]:
    n = 3_000
    chrom = rng.choice([1, 2, 7, 23], n)
    pos = rng.integers(1, 400, n)  # few positions: the same position on several chromosomes
    alleles = np.array(["A", "C", "G", "T", "AT"])
    ref = rng.choice(alleles, n)
    # ALT any other allele: some positions list both A>G and G>A (a direct match must win).
    alt = np.array([rng.choice(alleles[alleles != r]) for r in ref])
    panel = pl.DataFrame({"chromosome": chrom, "base_pair_location": pos, "ref": ref, "alt": alt,
                          "alt_frequency": rng.uniform(0, 1, n)}).unique(
        subset=["chromosome", "base_pair_location", "ref", "alt"], keep="first", maintain_order=True)
    # The cohort: panel variants in either orientation, plus variants the panel lacks.
    take = panel.sample(fraction=0.8, seed=1)
    swap = rng.uniform(size=take.height) < 0.5
    ea = np.where(swap, take["ref"].to_numpy(), take["alt"].to_numpy())
    oa = np.where(swap, take["alt"].to_numpy(), take["ref"].to_numpy())
    cohort = pl.DataFrame({"chromosome": take["chromosome"], "base_pair_location": take["base_pair_location"],
                           "effect_allele": ea, "other_allele": oa,
                           "effect_allele_frequency": rng.uniform(0, 1, take.height)})
    extra = pl.DataFrame({"chromosome": [3, 1], "base_pair_location": [5, 10_000], "effect_allele": ["A", "A"],
                          "other_allele": ["G", "G"], "effect_allele_frequency": [0.5, 0.5]})
    return pl.concat([cohort, extra]).sort("chromosome", "base_pair_location"), panel


def _oracle(cohort: pl.DataFrame, panel: pl.DataFrame) -> list[tuple[float, float]]:
    freq = {(r["chromosome"], r["base_pair_location"], r["alt"], r["ref"]): r["alt_frequency"]
            for r in panel.iter_rows(named=True)}
    direct, rev = [], []
    for r in cohort.iter_rows(named=True):
        k = (r["chromosome"], r["base_pair_location"], r["effect_allele"], r["other_allele"])
        kr = (r["chromosome"], r["base_pair_location"], r["other_allele"], r["effect_allele"])
        if k in freq:
            direct.append((freq[k], r["effect_allele_frequency"]))
        elif kr in freq:
            rev.append((1.0 - freq[kr], r["effect_allele_frequency"]))
    return direct + rev


def test_aligned_join__per_chromosome_gives_the_rule_row_by_row_in_cohort_order() -> None:
    cohort, panel = _tables(np.random.default_rng(11))
    other = panel.select("chromosome", "base_pair_location", pl.col("alt").alias("effect_allele"),
                         pl.col("ref").alias("other_allele"), pl.col("alt_frequency").alias("_x"))
    both = _aligned_join(cohort, other, "_x", flip=True)
    got = list(zip(both["_x"].to_list(), both["effect_allele_frequency"].to_list(), strict=True))
    want = _oracle(cohort, panel)
    assert len(want) > 1_000
    pairs = set(zip(panel["chromosome"], panel["base_pair_location"], panel["ref"], panel["alt"], strict=True))
    assert any((c, p, a, r) in pairs for c, p, r, a in pairs)  # both orientations are planted
    assert got == want


def test_report__tiny_blocks_give_the_same_page(inputs, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    argv = list(inputs["argv"])
    i = argv.index("--out")
    argv[i + 1] = str(tmp_path / "default.html")
    assert main(argv) == 0
    # Every reader of the report (one block reader): hundreds of blocks, lines split across reads.
    monkeypatch.setattr(table_io, "BLOCK_BYTES", 777)
    argv[i + 1] = str(tmp_path / "tiny.html")
    assert main(argv) == 0
    assert (tmp_path / "tiny.html").read_bytes() == (tmp_path / "default.html").read_bytes()
