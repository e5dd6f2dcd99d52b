"""The report's block reader: the planted values of every row, whole rows above the line, errors that name the line.

Tables are written here as plain text (no project writer), with values and
significant rows planted; block sizes of a few hundred bytes force many
blocks, lines split across reads and a last line without a newline. The
oracles are the planted columns and, for the loci, ``distance_loci`` on the
planted table read whole by polars itself.
"""

from __future__ import annotations

import gzip
import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from crosscohort.central.loci import distance_loci
from crosscohort.central.report.reading import read_digest, read_header
from crosscohort.contract.sumstats import SumstatsError

HEADER = ["chromosome", "base_pair_location", "effect_allele", "other_allele", "beta", "standard_error",
          "p_value", "neg_log_10_p_value", "variant_id", "rsid", "n", "flag_eaf_far"]
N = 1_000
#: Rows planted above the line (-log10 p = 12), and one row whose p is missing altogether.
SIGNIFICANT = (3, 250, 251, 777, 999)
NO_P = 500


def _planted(rng: np.random.Generator) -> dict[str, list]:
    chrom = np.sort(rng.integers(1, 4, N))
    pos = np.arange(1, N + 1) * 1_000
    nlp = -np.log10(rng.uniform(1e-5, 1.0, N))
    nlp[list(SIGNIFICANT)] = 12.0 + np.arange(len(SIGNIFICANT))
    p = 10.0 ** -nlp
    beta = rng.normal(size=N)
    ea = rng.choice(["A", "C", "G", "T"], N)
    oa = np.where(ea == "A", "G", "A")
    cols = {
        "chromosome": chrom.tolist(), "base_pair_location": pos.tolist(), "effect_allele": ea.tolist(),
        "other_allele": oa.tolist(), "beta": beta.tolist(), "standard_error": (np.abs(beta) / 3 + 0.01).tolist(),
        "p_value": p.tolist(), "neg_log_10_p_value": nlp.tolist(),
        "variant_id": [f"{c}:{q}:{o}:{e}" for c, q, o, e in zip(chrom, pos, oa, ea, strict=True)],
        "rsid": [f"rs{i}" for i in range(N)], "n": [1000 + i for i in range(N)],
        "flag_eaf_far": ["false"] * N,
    }
    cols["p_value"][NO_P] = None
    cols["neg_log_10_p_value"][NO_P] = None
    return cols


def _write(cols: dict[str, list], path: Path, *, newline_at_end: bool = True) -> Path:
    lines = ["\t".join(HEADER)]
    for i in range(N):
        lines.append("\t".join("NA" if cols[h][i] is None else repr(cols[h][i]) if isinstance(cols[h][i], float)
                               else str(cols[h][i]) for h in HEADER))
    text = "\n".join(lines) + ("\n" if newline_at_end else "")
    if path.suffix == ".gz":
        with gzip.open(path, "wt") as fh:
            fh.write(text)
    else:
        path.write_text(text)
    return path


@pytest.fixture(scope="module")
def planted() -> dict[str, list]:
    return _planted(np.random.default_rng(7))


@pytest.mark.parametrize("name", ["t.tsv.gz", "t.tsv"])
@pytest.mark.parametrize("block", [97, 4096, None])
def test_read_digest__columns_of_every_row_equal_the_planted_values(planted, tmp_path, name, block):
    path = _write(planted, tmp_path / name, newline_at_end=block != 4096)
    d = read_digest(path, columns=("base_pair_location", "beta", "n", "neg_log_10_p_value", "absent"),
                    line=None, block_bytes=block)
    assert d.header == tuple(HEADER)
    assert d.n_rows == N
    assert d.table.columns == ["base_pair_location", "beta", "neg_log_10_p_value", "n"]  # file order
    assert d.table.schema == {"base_pair_location": pl.Int64, "beta": pl.Float64,
                              "neg_log_10_p_value": pl.Float64, "n": pl.Int64}
    assert d.table["base_pair_location"].to_list() == planted["base_pair_location"]
    assert d.table["beta"].to_list() == planted["beta"]  # repr round-trips float64 exactly
    assert d.table["n"].to_list() == planted["n"]
    assert d.table["neg_log_10_p_value"].to_list() == planted["neg_log_10_p_value"]
    assert d.significant.height == 0


@pytest.mark.parametrize("block", [97, None])
def test_read_digest__rows_above_the_line_are_whole_and_give_the_same_loci(planted, tmp_path, block):
    path = _write(planted, tmp_path / "t.tsv.gz")
    d = read_digest(path, columns=("chromosome",), line=-math.log10(5e-8), block_bytes=block)
    # Whole rows, every column typed as the registry declares, in file order.
    assert d.significant.columns == HEADER
    # A row without any p-value is not significant (distance_loci's rule too), so it is not here.
    assert d.significant["rsid"].to_list() == [f"rs{i}" for i in sorted(SIGNIFICANT)]
    assert d.significant.schema["flag_eaf_far"] == pl.Boolean
    whole = pl.read_csv(path, separator="\t", null_values=["NA"], infer_schema_length=None)
    want = distance_loci(whole, threshold=5e-8, window_kb=500)
    got = distance_loci(d.significant, threshold=5e-8, window_kb=500)
    assert got["rsid"].to_list() == want["rsid"].to_list()
    assert got.select("locus", "start", "end", "n_variants").rows() == \
        want.select("locus", "start", "end", "n_variants").rows()


def test_read_digest__bad_value_names_file_line_column_and_type(planted, tmp_path):
    cols = {k: list(v) for k, v in planted.items()}
    cols["n"][640] = "12x"  # file line 642: header is line 1, row 0 is line 2
    path = _write(cols, tmp_path / "bad.tsv.gz")
    with pytest.raises(SumstatsError, match=r"bad\.tsv\.gz: line 642: column n: '12x' is not a valid Int64"):
        read_digest(path, columns=("n",), block_bytes=97)
    # A column the report does not parse of every row is checked where rows are read whole.
    cols = {k: list(v) for k, v in planted.items()}
    cols["standard_error"][251] = "wide"
    path = _write(cols, tmp_path / "bad_se.tsv")
    with pytest.raises(SumstatsError, match=r"line 253: column standard_error: 'wide'"):
        read_digest(path, columns=("chromosome",), line=7.0, block_bytes=300)


def test_read_digest__missing_required_column_and_empty_file_are_named(planted, tmp_path):
    path = _write(planted, tmp_path / "t.tsv.gz")
    with pytest.raises(SumstatsError, match=r"missing required column\(s\) \['eaf'\]"):
        read_digest(path, columns=("beta",), required=("chromosome", "eaf"))
    empty = tmp_path / "empty.tsv"
    empty.write_text("")
    with pytest.raises(SumstatsError, match="empty file"):
        read_header(empty)
    with pytest.raises(SumstatsError, match="no such file"):
        read_digest(tmp_path / "absent.tsv.gz", columns=("beta",))
    dup = tmp_path / "dup.tsv"
    dup.write_text("chromosome\tbeta\tbeta\n1\t0.1\t0.2\n")
    with pytest.raises(SumstatsError, match=r"duplicated column\(s\) \['beta'\]"):
        read_digest(dup, columns=("beta",))


def test_read_digest__parquet_gives_what_the_text_file_gives(planted, tmp_path):
    text = _write(planted, tmp_path / "t.tsv")
    whole = pl.read_csv(text, separator="\t", null_values=["NA"], infer_schema_length=None,
                        schema_overrides={"flag_eaf_far": pl.Boolean})
    pq = tmp_path / "t.parquet"
    whole.write_parquet(pq)
    a = read_digest(text, columns=("beta", "p_value"), line=7.0, block_bytes=200)
    b = read_digest(pq, columns=("beta", "p_value"), line=7.0)
    assert a.table.equals(b.table)
    assert a.significant["rsid"].to_list() == b.significant["rsid"].to_list()
    assert a.n_rows == b.n_rows == N


def test_read_digest__multi_member_gzip_is_read_to_its_end(tmp_path):
    # bgzip and `cat a.gz b.gz` write several gzip members; every one holds rows.
    rows = [f"1\t{i}\t0.5\n" for i in range(1, 2_001)]
    path = tmp_path / "multi.tsv.gz"
    path.write_bytes(gzip.compress(("chromosome\tbase_pair_location\tp_value\n" + "".join(rows[:1_000])).encode())
                     + gzip.compress("".join(rows[1_000:]).encode()))
    d = read_digest(path, columns=("base_pair_location",), block_bytes=500)
    assert d.table["base_pair_location"].to_list() == list(range(1, 2_001))


@pytest.mark.parametrize("name", ["t.tsv.gz", "t.parquet"])
@pytest.mark.parametrize("block", [97, None])
def test_read_digest__named_rows_are_the_unplaced_rows_of_those_names_whole(planted, tmp_path, name,
                                                                           block):
    """Rows without a chromosome whose rsid is asked for come back whole, in file order; a
    positioned row of the same name and unplaced rows of other names do not; none asked,
    none returned (an empty frame with the file's columns)."""
    cols = {h: list(v) for h, v in planted.items()}
    unplaced = (10, 400, 401, 900)
    for i in unplaced:
        cols["chromosome"][i] = None
        cols["base_pair_location"][i] = None
        cols["variant_id"][i] = None
    cols["rsid"][401] = "rs10"  # a second unplaced row named rs10, other alleles
    cols["rsid"][20] = "rs10"  # placed: another variant
    text = _write(cols, tmp_path / "t.tsv.gz")
    path = text
    if name.endswith(".parquet"):
        path = tmp_path / name
        pl.read_csv(text, separator="\t", null_values=["NA"], schema_overrides={
            "chromosome": pl.Int64, "base_pair_location": pl.Int64}).write_parquet(path)
    want = [i for i in unplaced if cols["rsid"][i] in ("rs10", "rs900")]
    digest = read_digest(path, columns=["chromosome", "p_value"], line=8.0, block_bytes=block,
                         names=["rs10", "rs900", "rs3"])
    got = digest.named
    assert got.columns == HEADER
    assert got.get_column("rsid").to_list() == [cols["rsid"][i] for i in want]
    assert got.get_column("beta").to_list() == pytest.approx([cols["beta"][i] for i in want],
                                                             rel=1e-15)
    assert got.get_column("chromosome").null_count() == len(want)
    assert read_digest(path, columns=["chromosome"], block_bytes=block).named.height == 0
