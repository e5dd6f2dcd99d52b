"""The sumstats registry's reader and writer: column subsets, NA, byte-reproducible gzip."""

from __future__ import annotations

import gzip
import hashlib

import numpy as np
import polars as pl
import pytest

from crosscohort.contract.sumstats import SumstatsError, float_column, read_sumstats, write_sumstats


def _table() -> pl.DataFrame:
    return pl.DataFrame({
        "chromosome": [1, 2, 23],
        "base_pair_location": [10, 20, 30],
        "effect_allele": ["A", "C", "G"],
        "other_allele": ["G", "T", "A"],
        "beta": [0.5, None, -0.25],
        "standard_error": [0.1, 0.2, 0.3],
        "effect_allele_frequency": [0.1, 0.5, 0.9],
        "p_value": [1e-300, 0.5, 0.25],
        "variant_id": ["1:10:G:A", "2:20:T:C", "23:30:A:G"],
    })


@pytest.mark.parametrize("suffix", [".tsv", ".tsv.gz", ".parquet"])
def test_read_sumstats__columns_keeps_only_those_present_and_values_exact(tmp_path, suffix):
    path = write_sumstats(_table(), tmp_path / f"t{suffix}")
    got = read_sumstats(path, columns=("chromosome", "beta", "rsid", "p_value"))
    assert got.columns == ["chromosome", "beta", "p_value"]  # file order; absent rsid ignored
    assert got.get_column("beta").to_list() == [0.5, None, -0.25]  # NA stays missing, never 0
    assert got.get_column("p_value").to_list() == [1e-300, 0.5, 0.25]
    assert read_sumstats(path).equals(_table())


def test_read_sumstats__required_checked_against_the_header_not_the_subset(tmp_path):
    path = write_sumstats(_table().drop("standard_error"), tmp_path / "t.tsv.gz")
    with pytest.raises(SumstatsError, match=r"t\.tsv\.gz: missing required column\(s\) \['standard_error'\]"):
        read_sumstats(path, columns=("beta",))


def test_write_sumstats__gzip_is_standard_and_byte_reproducible(tmp_path):
    a = write_sumstats(_table(), tmp_path / "a.tsv.gz")
    b = write_sumstats(_table(), tmp_path / "b.tsv.gz")
    assert hashlib.sha256(a.read_bytes()).digest() == hashlib.sha256(b.read_bytes()).digest()
    text = gzip.decompress(a.read_bytes()).decode()
    assert text.splitlines()[2].split("\t")[4] == "NA"
    assert not list(tmp_path.glob(".*.tmp"))


def test_read_sumstats__gzip_named_tsv_is_read_and_binary_header_is_a_clear_error(tmp_path):
    df = pl.DataFrame({"chromosome": [1], "base_pair_location": [5], "effect_allele": ["A"],
                       "other_allele": ["G"], "beta": [0.1], "standard_error": [0.02],
                       "effect_allele_frequency": [0.3], "p_value": [1e-3]})
    write_sumstats(df, tmp_path / "s.tsv.gz")
    renamed = tmp_path / "s.tsv"  # compressed, but not named so
    (tmp_path / "s.tsv.gz").rename(renamed)
    assert read_sumstats(renamed).equals(read_sumstats_plain(df, tmp_path))
    junk = tmp_path / "junk.tsv"
    junk.write_bytes(b"\xff\xfe\x00c\x00h\x00r\n")  # UTF-16 text, say
    with pytest.raises(SumstatsError, match=r"junk.tsv: line 1: header is not UTF-8"):
        read_sumstats(junk)


def read_sumstats_plain(df: pl.DataFrame, tmp_path) -> pl.DataFrame:
    write_sumstats(df, tmp_path / "plain.tsv")
    return read_sumstats(tmp_path / "plain.tsv")


@pytest.mark.parametrize("block", [1, 2, 5, 64, 1 << 20])
def test_line_blocks__whole_lines_after_the_prefix_and_nothing_lost(block):
    import io

    from crosscohort.contract.sumstats import line_blocks

    data = b"a\tb\nlonger line here\n\nx" + b"y" * 100 + b"\nlast, no line end"
    for text in (data, data + b"\n", b"", b"\n"):
        blocks = list(line_blocks(io.BytesIO(text), block, prefix=b"H\n"))
        assert all(b.startswith(b"H\n") for b in blocks)
        body = [b[2:] for b in blocks]
        assert b"".join(body) == text
        assert all(b.endswith(b"\n") for b in body[:-1])
        assert all(b for b in body)  # no block of the prefix alone


def test_float_column__nan_is_null_and_every_other_value_kept_bit_for_bit():
    values = np.array([0.1, np.nan, -0.0, np.inf, -np.inf, 5e-324, 1.7976931348623157e308, np.nan])
    col = float_column("x", values)
    assert col.name == "x" and col.dtype == pl.Float64
    assert col.is_null().to_list() == [False, True, False, False, False, False, False, True]
    kept = col.drop_nulls().to_numpy()
    assert kept.tobytes() == values[~np.isnan(values)].tobytes()  # -0.0 stays -0.0
    # The same column as the slower expression it replaces; integer input becomes Float64.
    assert col.equals(pl.Series("x", values).fill_nan(None))
    assert float_column("n", np.array([1, 2], dtype=np.int64)).to_list() == [1.0, 2.0]
