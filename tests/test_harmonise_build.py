"""Genome build: the data are checked against a reference FASTA, lifted over with a chain, or refused.

A tiny two-chromosome "GRCh37" is written by hand, and a "GRCh38" made from
it by a 100-base insertion after chr1:1000 and a 200-base deletion of
chr1:2001-2200; the chain file between them is written by hand too, so the
expected liftover is plain arithmetic (+100 after 1000, -100 after 2200,
nothing for the deleted bases).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from crosscohort.central.harmonise.build import (
    Genome,
    build_match,
    check_build,
    declared_build,
    liftover,
    normalise_build,
)
from crosscohort.central.harmonise.readers import InputSpec, harmonise_files
from crosscohort.commands import harmonise as harmonise_cmd
from crosscohort.contract.errors import InputError
from crosscohort.contract.sumstats import read_sumstats

CHAIN = """chain 1000 chr1 3000 + 0 3000 chr1 2900 + 0 2900 1
1000 0 100
1000 200 0
800

chain 1000 chr2 1000 + 0 1000 chr2 1000 + 0 1000 2
1000

"""


def _seq(rng: np.random.Generator, n: int) -> str:
    return "".join(rng.choice(list("ACGT"), size=n))


@pytest.fixture
def genomes(tmp_path: Path) -> dict[str, Path]:
    rng = np.random.default_rng(7)
    c1 = list(_seq(rng, 3000))
    c1[500:506] = list("CAAAAT")  # a homopolymer run for the indel tests (chr1:501-506)
    c1 = "".join(c1)
    c2 = _seq(rng, 1000)
    g37 = tmp_path / "g37.fa"
    g37.write_text(f">1\n{c1}\n>2\n{c2}\n")
    c1_38 = c1[:1000] + _seq(rng, 100) + c1[1000:2000] + c1[2200:]
    g38 = tmp_path / "g38.fa"
    # 60 bases a line, as FASTA files usually are; "chr" names, unlike the GRCh37 file.
    wrap = lambda s: "\n".join(s[i:i + 60] for i in range(0, len(s), 60))  # noqa: E731
    g38.write_text(f">chr1\n{wrap(c1_38)}\n>chr2\n{wrap(c2)}\n")
    chain = tmp_path / "hg19ToHg38.over.chain"
    chain.write_text(CHAIN)
    return {"GRCh37": g37, "GRCh38": g38, "chain": chain, "c1": c1, "c2": c2}


def _cohort(genomes, positions: list[tuple[int, int]], *, seed: int = 1) -> pl.DataFrame:
    """SNPs on GRCh37 at ``(chrom, pos)``: REF from the FASTA (other allele), another base as effect."""
    rng = np.random.default_rng(seed)
    seqs = {1: genomes["c1"], 2: genomes["c2"]}
    ref = [seqs[c][p - 1] for c, p in positions]
    alt = [str(rng.choice([b for b in "ACGT" if b != r])) for r in ref]
    m = len(positions)
    return pl.DataFrame({
        "chromosome": [str(c) for c, _ in positions], "base_pair_location": [p for _, p in positions],
        "effect_allele": alt, "other_allele": ref, "beta": rng.normal(0, 0.1, m),
        "standard_error": np.full(m, 0.05), "effect_allele_frequency": rng.uniform(0.1, 0.4, m),
        "p_value": np.full(m, 0.5), "rsid": [f"rs{i}" for i in range(m)],
    })


def _positions(n: int = 400, seed: int = 3) -> list[tuple[int, int]]:
    rng = np.random.default_rng(seed)
    p1 = rng.choice(np.arange(1, 3001), size=n, replace=False)
    p1 = p1[(p1 < 495) | (p1 > 510)]  # keep the indel run clear
    p2 = rng.choice(np.arange(1, 1001), size=n // 4, replace=False)
    return [(1, int(p)) for p in np.sort(p1)] + [(2, int(p)) for p in np.sort(p2)]


def _expected_38(pos: int) -> int | None:
    """Hand arithmetic of the chain above for chr1 (1-based)."""
    if pos <= 1000:
        return pos
    if pos <= 2000:
        return pos + 100
    if pos <= 2200:
        return None
    return pos - 100


def test_build_names__spellings_normalised():
    assert normalise_build("hg19") == "GRCh37" and normalise_build("b38") == "GRCh38"


def test_build_check__data_on_the_fasta_build_pass(genomes):
    df = _cohort(genomes, _positions())
    check = build_match(df, Genome(genomes["GRCh37"]))
    assert check.n_tested == df.height and check.n_match == df.height and check.matches
    out, removed, changed, _ = check_build(df, cohort="c", source="c.tsv", declared="GRCh37",
                                           target="GRCh37", genome=Genome(genomes["GRCh37"]))
    assert out.equals(df) and removed == {} and changed == {}


def test_build_check__other_build_without_chain_refused_naming_cohort_declared_and_detected(genomes):
    df = _cohort(genomes, _positions())
    g38 = Genome(genomes["GRCh38"])
    rate = build_match(df, g38).rate
    assert 0.3 < rate < 0.8  # unrelated bases: about half the allele pairs contain them
    with pytest.raises(InputError, match=(
            r"cohort c \(c.tsv\): declared build GRCh37, detected build not GRCh38 "
            r"\(REF base matches \d+\.\d% of \d+ SNPs in g38.fa, <= 95%\).*give --chain")):
        check_build(df, cohort="c", source="c.tsv", declared="GRCh37", target="GRCh38", genome=g38)
    # undeclared: taken as the reference build, and refused the same way
    with pytest.raises(InputError, match=r"declared build none \(taken as GRCh38\), detected build not GRCh38"):
        check_build(df, cohort="c", source="c.tsv", declared=None, target="GRCh38", genome=g38)


def test_build_check__declared_build_contradicted_by_the_data_refused(genomes):
    df = _cohort(genomes, _positions())
    with pytest.raises(InputError, match=r"declared build GRCh38, detected build GRCh37"):
        check_build(df, cohort="c", source="c.tsv", declared="GRCh38", target="GRCh37",
                    genome=Genome(genomes["GRCh37"]))


def test_liftover__positions_follow_the_chain_and_unliftable_rows_are_counted(genomes):
    pos = _positions()
    df = _cohort(genomes, pos)
    g38 = Genome(genomes["GRCh38"])
    out, removed, changed, check = check_build(
        df, cohort="c", source="c.tsv", declared="GRCh37", target="GRCh38", genome=g38,
        chain=genomes["chain"])
    want = {(c, p): (p if c == 2 else _expected_38(p)) for c, p in pos}
    n_deleted = sum(v is None for v in want.values())
    assert n_deleted > 10
    assert removed == {"not_lifted": n_deleted, "build_mismatch": 0}
    assert changed["lifted_over"] == sum(1 for (c, p), v in want.items() if v is not None and v != p)
    got = dict(zip(out["rsid"], out["base_pair_location"], strict=True))
    for i, (c, p) in enumerate(pos):
        if want[(c, p)] is not None:
            assert got[f"rs{i}"] == want[(c, p)]
    assert check.n_match == check.n_tested == out.height  # every lifted REF is the GRCh38 base
    # pyliftover itself (0-based in and out) agrees with the arithmetic.
    from pyliftover import LiftOver

    lo = LiftOver(str(genomes["chain"]))
    assert lo.convert_coordinate("chr1", 1500 - 1)[0][1] + 1 == _expected_38(1500)


def test_liftover__without_fasta_a_declared_other_build_needs_a_chain(genomes):
    df = _cohort(genomes, _positions(50))
    with pytest.raises(InputError, match=r"cohort c \(f\): declared build GRCh37, reference build GRCh38.*--chain"):
        check_build(df, cohort="c", source="f", declared="GRCh37", target="GRCh38")
    out, removed, _, check = check_build(df, cohort="c", source="f", declared="GRCh37",
                                         target="GRCh38", chain=genomes["chain"])
    assert check is None and out.height + removed["not_lifted"] == df.height


def test_liftover__minus_strand_snps_complemented_indels_not_lifted(tmp_path):
    chain = tmp_path / "rev.chain"
    chain.write_text("chain 100 chr1 100 + 0 100 chr1 100 - 0 100 1\n100\n\n")
    df = pl.DataFrame({"chromosome": ["1", "1"], "base_pair_location": [10, 20],
                       "effect_allele": ["A", "AT"], "other_allele": ["G", "A"]})
    out, removed, changed = liftover(df, chain)
    # oracle: a minus-strand chain maps 1-based p to 100 - p + 1 on the other strand
    assert out.rows() == [("1", 91, "T", "C")]
    assert removed["not_lifted"] == 1 and changed["lift_strand_complemented"] == 1


def test_declared_build__read_from_the_bundle_metadata(tmp_path):
    (tmp_path / "ldl.tsv.gz").write_bytes(b"")
    (tmp_path / "ldl.meta.yaml").write_text("genome_assembly: hg19\ntrait: ldl\n")
    assert declared_build(tmp_path / "ldl.tsv.gz") == "GRCh37"
    assert declared_build(tmp_path / "other.tsv") is None


def test_indels__left_normalised_with_the_fasta_so_representations_match(genomes, tmp_path):
    # chr1:501-506 is CAAAAT. Deleting one A: left-most "501 CA>C"; right-shifted "504 AA>A".
    panel = pl.DataFrame({"chromosome": ["1", "1"], "base_pair_location": [503, 100],
                          "ref": ["AA", genomes["c1"][99]], "alt": ["A", "G" if genomes["c1"][99] != "G" else "C"],
                          "alt_frequency": [0.2, 0.3]})
    ref = tmp_path / "panel.tsv"
    panel.write_csv(ref, separator="\t")
    rows = [("a", 501, "C", "CA", 0.4), ("b", 504, "A", "AA", 0.4), ("c", 505, "AA", "A", -0.4)]
    inputs = []
    for name, pos, ea, oa, beta in rows:
        f = tmp_path / f"{name}.tsv"
        f.write_text("CHR\tPOS\tEA\tNEA\tBETA\tSE\tP\tEAF\n"
                     f"1\t{pos}\t{ea}\t{oa}\t{beta}\t0.1\t0.0001\t0.2\n")
        inputs.append(InputSpec(name, f, "auto"))
    out = harmonise_files(inputs, reference=ref, fasta=genomes["GRCh37"])
    for name in "abc":
        t = out.tables[name]
        # oracle: bcftools norm -f g37.fa gives 1:501 CA>C for all three (worked by hand)
        assert t["variant_id"].to_list() == ["1:501:CA:C"], name
        assert t["beta"].to_list() == [0.4], name
    assert out.ledgers["a"].changed["indel_left_normalised"] == 0
    assert out.ledgers["b"].changed["indel_left_normalised"] == 1
    assert out.ledgers["c"].changed["allele_swapped"] == 1


def test_cli__fasta_chain_build_lift_a_grch37_cohort(genomes, tmp_path):
    df = _cohort(genomes, _positions(200))
    df.write_csv(tmp_path / "c.tsv", separator="\t")
    parser = argparse.ArgumentParser()
    harmonise_cmd.register(parser.add_subparsers(dest="command"))
    base = ["harmonise", "--fasta", str(genomes["GRCh38"]), "--build", "hg38",
            "--cohort-build", "c=GRCh37", "--out-dir", str(tmp_path / "h"), f"c={tmp_path / 'c.tsv'}"]
    args = parser.parse_args(base)
    with pytest.raises(InputError, match="declared build GRCh37, detected build not GRCh38"):
        args.func(args)
    args = parser.parse_args([*base, "--chain", str(genomes["chain"])])
    assert args.func(args) == 0
    led = json.loads((tmp_path / "h" / "ledger.json").read_text())[0]
    assert led["removed"]["not_lifted"] > 0
    assert led["n_in"] == df.height == led["n_kept"] + sum(led["removed"].values())
    got = read_sumstats(tmp_path / "h" / "c.tsv.gz")
    seq = {1: genomes["GRCh38"].read_text().split(">chr2")[0].split("\n", 1)[1].replace("\n", "")}
    for p, oa, ea in got.filter(pl.col("chromosome") == 1).select(
            "base_pair_location", "other_allele", "effect_allele").iter_rows():
        assert seq[1][p - 1] in (oa, ea)
