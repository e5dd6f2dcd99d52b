"""The one block reader (contract/table_io.py): blocks, their line numbers, errors that name the line."""

from __future__ import annotations

import gzip
import threading
from pathlib import Path

import polars as pl
import pytest

from crosscohort.contract.sumstats import read_sumstats, schema_for
from crosscohort.contract.table_io import (
    Block,
    Blocks,
    SumstatsError,
    ordered_map,
    parse_block,
)

HEADER = "chromosome\tbase_pair_location\tbeta\trsid\n"


def _rows(n: int) -> list[str]:
    return [f"{1 + i % 3}\t{100 + i}\t{i / 7!r}\trs{i}\n" for i in range(n)]


@pytest.mark.parametrize("block", [1, 13, 100, 1 << 20])
@pytest.mark.parametrize("gz", [False, True])
def test_blocks__first_line_numbers_count_the_file_lines(tmp_path, block, gz):
    text = HEADER + "".join(_rows(50)) + "\n" + "".join(_rows(7))  # a blank line inside
    path = tmp_path / ("t.tsv.gz" if gz else "t.tsv")
    path.write_bytes(gzip.compress(text.encode()) if gz else text.encode())
    blocks = list(Blocks(path, block_bytes=block))
    assert b"".join(b.data for b in blocks) == text.encode()[len(HEADER):]
    lines = text.splitlines(keepends=True)
    for b in blocks:  # each block starts with the file's line first_line() (1-based)
        assert b.data.startswith(lines[b.first_line() - 1].encode())
        assert b.first_line() == 2 + sum(x.data.count(b"\n") for x in blocks if x.start < b.start)


def test_blocks__truncated_gzip_names_the_file_and_the_line_reached(tmp_path):
    raw = gzip.compress((HEADER + "".join(_rows(20_000))).encode())
    path = tmp_path / "cut.tsv.gz"
    path.write_bytes(raw[: len(raw) * 2 // 3])
    with pytest.raises(SumstatsError, match=r"cut\.tsv\.gz: cannot read the text from line \d+ on .*complete gzip"):
        list(Blocks(path, block_bytes=4096))
    with pytest.raises(SumstatsError, match=r"cut\.tsv\.gz: cannot read the text from line"):
        read_sumstats(path, required=())


@pytest.mark.parametrize("block", [7, 64, 1 << 20])
def test_parse_block__bad_value_names_line_column_and_value_in_any_block(tmp_path, block):
    rows = _rows(40)
    rows[29] = "2\t129\t0.1x\trs29\n"  # file line 31
    path = tmp_path / "bad.tsv"
    path.write_text(HEADER + "".join(rows))
    schema = schema_for(HEADER.rstrip("\n").split("\t"))
    with pytest.raises(SumstatsError, match=r"bad\.tsv: line 31: column beta: '0\.1x' is not a valid Float64"):
        for b in Blocks(path, block_bytes=block):
            parse_block(b, path=path, schema=schema, columns=list(schema))
    # A column not parsed is not checked (the report reads a few columns of every row).
    got = pl.concat([parse_block(b, path=path, schema=schema, columns=["rsid"])
                     for b in Blocks(path, block_bytes=block)])
    assert got.height == 40


@pytest.mark.parametrize("block", [7, 64, 1 << 20])
@pytest.mark.parametrize(("cut", "fields"), [("2\t129\t0.1\n", 3), ("2\t129\t0.1", 3), ("2\t129\t0.1\trs\tx\n", 5)])
def test_parse_block__a_cut_or_long_line_names_its_line_in_any_block(tmp_path, block, cut, fields):
    """A line cut short (middle or last, without its line end) or with a field too many.

    Before: a short line in the middle parsed with nulls for the missing fields (a value cut
    short kept silently), and a cut last line gave polars' "column names specified in
    schema not found" for "lines 42-41".
    """
    rows = _rows(40)
    rows[29] = cut if cut.endswith("\n") else rows[29]  # file line 31
    text = HEADER + "".join(rows) + ("" if cut.endswith("\n") else cut)
    line = 31 if cut.endswith("\n") else 42
    path = tmp_path / "cut.tsv"
    path.write_text(text)
    schema = schema_for(HEADER.rstrip("\n").split("\t"))
    with pytest.raises(SumstatsError, match=rf"cut\.tsv: line {line}: {fields} fields, header has 4"):
        for b in Blocks(path, block_bytes=block):
            parse_block(b, path=path, schema=schema, columns=list(schema))


@pytest.mark.parametrize("block", [7, 64, 1 << 20])
def test_parse_block__latin1_text_names_its_line(tmp_path, block):
    """Before: 'lines 2-41: invalid utf-8 sequence', the whole block's range."""
    rows = _rows(40)
    rows[29] = "2\t129\t0.1\trs\xe9\n"  # file line 31, é in Latin-1
    path = tmp_path / "l1.tsv"
    path.write_bytes((HEADER + "".join(rows)).encode("latin-1"))
    schema = schema_for(HEADER.rstrip("\n").split("\t"))
    with pytest.raises(SumstatsError, match=r"l1\.tsv: line 31: not UTF-8 text .*byte 0xe9"):
        for b in Blocks(path, block_bytes=block):
            parse_block(b, path=path, schema=schema, columns=list(schema))


def test_parse_block__white_space_only_gives_no_rows_and_na_tokens_are_missing():
    schema = {"beta": pl.Float64, "rsid": pl.String}
    assert parse_block(Block(Path("x"), 0, b"\n  \n"), path="x", schema=schema, columns=["beta"]).height == 0
    got = parse_block(Block(Path("x"), 0, b"NA\ta\nNaN\tNA\nnan\t\n0.5\tb\n"), path="x", schema=schema,
                      columns=["beta", "rsid"])
    assert got.get_column("beta").to_list() == [None, None, None, 0.5]
    assert got.get_column("rsid").to_list() == ["a", None, None, "b"]


def test_read_sumstats__blocks_give_the_whole_file_read(tmp_path, monkeypatch):
    import crosscohort.contract.table_io as table_io

    path = tmp_path / "t.tsv.gz"
    path.write_bytes(gzip.compress((HEADER + "".join(_rows(500))).encode()))
    whole = read_sumstats(path, required=())
    monkeypatch.setattr(table_io, "BLOCK_BYTES", 50)  # about two lines a block
    assert read_sumstats(path, required=()).equals(whole)
    assert whole.height == 500 and whole.schema["beta"] == pl.Float64


def test_ordered_map__results_in_order_and_the_first_error_at_its_turn():
    gate = threading.Event()

    def slow_first(i: int) -> int:
        if i == 0:
            gate.wait(5)  # the later items finish first
        else:
            gate.set()
        return i * i

    assert list(ordered_map(slow_first, range(10), workers=2, ahead=3)) == [i * i for i in range(10)]
    assert list(ordered_map(slow_first, range(1, 4), workers=0)) == [1, 4, 9]

    def failing(i: int) -> int:
        if i == 4:
            raise ValueError("item 4")
        return i

    got = []
    with pytest.raises(ValueError, match="item 4"):
        for x in ordered_map(failing, range(10), workers=2, ahead=2):
            got.append(x)
    assert got == [0, 1, 2, 3]


def test_count_byte__equals_bytes_count_on_any_bytes():
    """The block reader's line and separator counts: numpy's count is bytes.count's."""
    import numpy as np

    from crosscohort.contract.table_io import count_byte

    rng = np.random.default_rng(7)
    for n in (0, 1, 17, 70_001):
        data = rng.choice(np.frombuffer(b"\n\t a1\r\xff", dtype=np.uint8), size=n).tobytes()
        for byte in (b"\n", b"\t", b"\xff", b"z"):
            assert count_byte(data, byte) == data.count(byte)
    with pytest.raises(ValueError, match="one byte"):
        count_byte(b"a\r\nb", b"\r\n")


_SSF = ("chromosome\tbase_pair_location\teffect_allele\tother_allele\tbeta\tstandard_error\t"
        "effect_allele_frequency\tp_value\tn\n")
_SSF_ROWS = [f"1\t{100 + i}\tA\tG\t{i / 9!r}\t0.05\t0.3\t0.5\t{'NA' if i % 4 else 1000}\n"
             for i in range(12)]


@pytest.mark.parametrize("blank", ["\n", "\r\n", "  \n", "\t \n", "\t" * 8 + "\n", " \t" * 8 + " \n"])
@pytest.mark.parametrize("at", [0, 1, 5, 12])
def test_read_sumstats__blank_lines_are_no_rows_whatever_the_blocks(tmp_path, monkeypatch, blank, at):
    """A line of white space only is no row, wherever the blocks are cut; the file's other
    rows read exactly as without it, and file_parts (meta on harmonised files) agrees.

    Before: a blank line inside a block was a row of nulls (one more variant in, a bad
    value), alone in a block no row, and at a block's start an error ('column names
    specified in schema not found'): the count depended on the block size.
    """
    import crosscohort.contract.table_io as table_io
    from crosscohort.central.meta.stream import file_parts

    plain, dirty = tmp_path / "plain.tsv", tmp_path / "blank.tsv"
    plain.write_text(_SSF + "".join(_SSF_ROWS))
    dirty.write_text(_SSF + "".join(_SSF_ROWS[:at]) + blank + blank + "".join(_SSF_ROWS[at:]))
    want = read_sumstats(plain)
    for block in (1, 7, 40, 97, 1 << 20):
        monkeypatch.setattr(table_io, "BLOCK_BYTES", block)
        assert read_sumstats(dirty).equals(want), block
        parts = file_parts({"a": dirty}, ["a"], keep=tuple(want.columns), samplesize=False,
                           block_bytes=block)
        assert sum(frames[0].height for _, frames in parts.parts()) == want.height, block


def _bgzf(data: bytes, *, eof: bool = True) -> bytes:
    """``data`` as bgzip writes it: gzip members of at most 1000 bytes of text, each with
    the BGZF extra field (its size), then the 28-byte end-of-file block."""
    import struct
    import zlib

    out = []
    for i in range(0, len(data), 1000):
        piece = data[i:i + 1000]
        c = zlib.compressobj(6, zlib.DEFLATED, -15)
        body = c.compress(piece) + c.flush()
        out.append(b"\x1f\x8b\x08\x04\x00\x00\x00\x00\x00\xff\x06\x00BC\x02\x00"
                   + struct.pack("<H", len(body) + 25) + body
                   + struct.pack("<II", zlib.crc32(piece), len(piece)))
    if eof:
        out.append(bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000"))
    return b"".join(out)


def test_open_binary__bgzip_without_its_end_of_file_block_is_cut_short(tmp_path):
    """bgzip ends every file with a 28-byte empty block. A file cut at a member's end (and
    at a line end) reads as a complete, shorter table: only that block tells the cut.

    Before: such a file was read as complete, its lost rows never counted.
    """
    from crosscohort.central.harmonise.readers import read_summary_statistics

    text = (_SSF + "".join(_SSF_ROWS * 20)).encode()
    whole, cut = tmp_path / "whole.tsv.gz", tmp_path / "cut.tsv.gz"
    whole.write_bytes(_bgzf(text))
    cut.write_bytes(_bgzf(text[:text.rfind(b"\n", 0, 2000) + 1], eof=False))  # whole lines, no EOF
    assert read_sumstats(whole).height == 240
    assert read_summary_statistics(whole).n_rows == 240
    for read in (read_sumstats, read_summary_statistics):
        with pytest.raises(SumstatsError, match=r"cut\.tsv\.gz: bgzip file without its end-of-file "
                                                r"block: cut short; rule: a complete gzip stream"):
            read(cut)


@pytest.mark.parametrize(("kind", "magic"), [("bzip2", b"BZh9"), ("xz", b"\xfd7zXZ\x00"),
                                             ("zip", b"PK\x03\x04")])
def test_open_binary__another_compression_is_named(tmp_path, kind, magic):
    """Before: a 'not UTF-8 text' error for a bzip2, xz or zip file, as if it were damaged text
    (zstd is read: tests/test_harmonise_peers.py)."""
    from crosscohort.central.harmonise.readers import read_summary_statistics

    path = tmp_path / "t.tsv.x"
    path.write_bytes(magic + bytes(range(256)))
    for read in (read_sumstats, read_summary_statistics):
        with pytest.raises(SumstatsError, match=rf"t\.tsv\.x: {kind}-compressed; rule: plain text, "
                                                r"gzip \(bgzip\) or zstd; decompress it first"):
            read(path)


def test_header__carriage_returns_only_as_line_ends_are_named(tmp_path):
    """Classic Mac text (CR line ends, as some spreadsheet exports still write) is one line.

    Before: 'duplicated column(s) ['0.04', '0.05'] in header' (harmonise) or 'missing
    required column(s)' (read_sumstats), the whole file taken for its header.
    """
    from crosscohort.central.harmonise.readers import read_summary_statistics

    path = tmp_path / "mac.tsv"
    path.write_bytes((_SSF + "".join(_SSF_ROWS)).replace("\n", "\r").encode())
    for read in (read_sumstats, read_summary_statistics):
        with pytest.raises(SumstatsError, match=r"mac\.tsv: line 1: a carriage return inside the "
                                                r"line.*rule: lines end with LF or CRLF"):
            read(path)
