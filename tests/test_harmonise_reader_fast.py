"""The reader's fast paths (issue 6 speed) read exactly what its checking path reads.

The typed read first parses without matching the missing tokens, nulls them in
text columns afterwards, skips stripping when the file has no white space a
field could carry, leaves already upper-case alleles as they are, and fills in
p / -log10 p only where they are missing. Each case below reads one file both
ways (the checking path forced by disabling the typed read) and compares the
tables, or the error messages, exactly; the value arithmetic is compared with
a whole-column formulation written out here.
"""

from __future__ import annotations

import io
import math

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal, assert_series_equal
from scipy.special import log_ndtr, ndtri_exp

import crosscohort.central.harmonise.readers as readers
import crosscohort.contract.table_io as table_io
from crosscohort.central.harmonise.readers import read_summary_statistics
from crosscohort.contract.errors import InputError
from crosscohort.contract.table_io import FOREIGN_NA_TOKENS as MISSING

HEAD = ["CHR", "BP", "A1", "A2", "BETA", "SE", "EAF", "P", "N", "SNP"]


def _rows(n: int = 40) -> list[list[str]]:
    rng = np.random.default_rng(5)
    out = []
    for i in range(n):
        a1, a2 = rng.choice(list("ACGT"), 2, replace=False)
        out.append([str(1 + i % 3), str(100 + 10 * i), a1, a2, repr(float(rng.normal(0, 0.1))),
                    repr(float(rng.uniform(0.01, 0.1))), repr(float(rng.uniform(0.05, 0.95))),
                    repr(float(rng.uniform(1e-8, 1.0))), str(int(rng.integers(100, 5000))),
                    f"rs{i}"])
    return out


# (row, column, text) edits of a clean file; each exercises one fast-path decision.
CASES = {
    "clean": [],
    "text_tokens": [(1, 9, "NA"), (2, 9, "."), (3, 9, "None"), (4, 0, "NA")],
    "allele_token_letters": [(1, 2, "NA"), (2, 3, "NAN")],
    "allele_token_other": [(1, 2, "na"), (3, 2, "0"), (4, 3, "N/A")],
    # Tokens that are not capitals as written: missing whatever their case, by either path.
    "allele_token_mixed_case": [(1, 2, "None"), (2, 3, "nan(ind)"), (3, 2, "null"),
                                (4, 3, "NONE")],
    "lower_case_alleles": [(1, 2, "a"), (2, 3, "t"), (3, 2, "Ac")],
    "indel_alleles": [(1, 2, "ACGT"), (2, 3, "TTA")],
    "nan_in_numeric": [(1, 4, "nan"), (2, 6, "NaN")],
    "odd_nan_spelling": [(1, 4, "Nan")],
    "token_in_numeric": [(1, 6, "NA"), (2, 8, ".")],
    "empty_numeric": [(1, 6, ""), (2, 7, "")],
    "infinite": [(1, 4, "inf"), (2, 5, "-inf")],
    "p_zero": [(1, 7, "0"), (2, 7, "0.0")],
    "padded_text": [(1, 9, " rs1"), (2, 0, "2 ")],
    "unicode_space": [(1, 9, "rs1\u00a0"), (2, 9, "\u2003rs2")],
    "non_ascii_not_space": [(1, 9, "rs\u00e91")],
    "tab_inside_comma_field": [(1, 9, "rs\t1")],
    "vertical_tab": [(1, 9, "rs1\x0b")],
    "chr_labels": [(1, 0, "chr1"), (2, 0, "X"), (3, 0, "chrMT")],
    "numeric_alleles": [(1, 2, "1"), (1, 3, "2")],
    "all_fields_missing": [(5, k, "NA") for k in range(10)],
}


def _write(tmp_path, edits, sep):
    rows = _rows()
    for r, c, text in edits:
        rows[r][c] = text
    if sep == " ":  # a space file cannot carry empty fields or inner spaces
        rows = [[v if v.strip() and " " not in v else "NA" for v in row] for row in rows]
    text = sep.join(HEAD) + "\n" + "".join(sep.join(r) + "\n" for r in rows)
    p = tmp_path / "s.txt"
    p.write_bytes(text.encode())
    return p


def _read_both(p, monkeypatch, **kw):
    taken = []
    real = readers._read_typed

    def spy(*a, **k):
        r = real(*a, **k)
        taken.append(r is not None)
        return r

    def read():
        try:
            return read_summary_statistics(p, **kw)
        except InputError as exc:
            return str(exc)

    monkeypatch.setattr(readers, "_read_typed", spy)
    fast = read()
    monkeypatch.setattr(readers, "_read_typed", lambda *a, **k: None)
    slow = read()
    monkeypatch.undo()
    return fast, slow, taken


# A tab inside a field exists only in a comma-separated file (elsewhere it separates fields).
_CASE_SEPS = [(c, s) for c in sorted(CASES) for s in ("\t", ",", " ")
              if c != "tab_inside_comma_field" or s == ","]


@pytest.mark.parametrize(("case", "sep"), _CASE_SEPS)
def test_reader_fast__every_case_reads_as_the_checking_path(case, sep, tmp_path, monkeypatch):
    p = _write(tmp_path, CASES[case], sep)
    _assert_fast_reads_as_slow(p, monkeypatch, fast_taken=case in (
        "clean", "text_tokens", "allele_token_letters", "lower_case_alleles", "p_zero"))


def _assert_fast_reads_as_slow(p, monkeypatch, *, fast_taken: bool) -> None:
    """The fast path's table (or error) equals the checking path's; ``fast_taken``: and it
    was the fast path itself that was compared, not a fallback."""
    fast, slow, taken = _read_both(p, monkeypatch)
    if isinstance(slow, str):
        assert fast == slow
        return
    assert not isinstance(fast, str), fast
    assert_frame_equal(fast.table, slow.table)
    assert (fast.n_rows, fast.removed) == (slow.n_rows, slow.removed)
    if fast_taken:
        assert taken == [True]


def test_reader__allele_tokens_are_missing_in_any_case(tmp_path, monkeypatch):
    """None, nan(ind), null as alleles are missing (a bad value), not the alleles NONE, NAN(IND)."""
    p = _write(tmp_path, CASES["allele_token_mixed_case"], "\t")
    fast, slow, _ = _read_both(p, monkeypatch)
    for got in (fast, slow):
        t = got.table
        assert t.get_column("effect_allele")[1] is None and t.get_column("effect_allele")[3] is None
        assert t.get_column("other_allele")[2] is None and t.get_column("other_allele")[4] is None


def test_reader_fast__preset_token_that_parses_as_a_number_is_missing(tmp_path, monkeypatch):
    p = _write(tmp_path, [(1, 8, "-9"), (2, 6, "-9")], "\t")
    fast, slow, taken = _read_both(p, monkeypatch, missing=("-9",))
    assert taken == [True]
    assert_frame_equal(fast.table, slow.table)
    assert fast.table.get_column("n")[1] is None  # never read as the number -9


@pytest.mark.parametrize("token", MISSING)
def test_reader_fast__each_missing_token_fails_as_a_number_or_parses_as_nan(token):
    # The premise of parsing without the tokens: none of them reads as a finite number
    # or as null unnoticed (the empty field is null either way).
    data = ("x\n1\n" + token + "\n").encode()
    try:
        got = pl.read_csv(io.BytesIO(data), schema={"x": pl.Float64}, quote_char=None)
    except pl.exceptions.PolarsError:
        return
    value = got.get_column("x")[1]
    assert (token == "" and value is None) or (value is not None and math.isnan(value))


def _values_whole_column(beta, se, p, nlp):
    """-log10 p, p and the inconsistency flag, every function over the whole column."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        p_given = ~np.isnan(p)
        z_bs = np.abs(beta / se)
        from_nlp = np.isnan(p) & ~np.isnan(nlp)
        p = np.where(from_nlp, 10.0 ** -nlp, p)
        fill = np.isnan(p) & np.isfinite(z_bs)
        lz = -(math.log(2.0) + log_ndtr(-np.abs(z_bs))) / math.log(10.0)
        nlp = np.where(fill & np.isnan(nlp), lz, nlp)
        p = np.where(fill, 10.0 ** -lz, p)
        zero = (p == 0) & np.isnan(nlp) & np.isfinite(z_bs)
        nlp = np.where(zero, lz, nlp)
        nlp = np.where(np.isnan(nlp) & (p > 0), -np.log10(p), nlp)
        z_p = -ndtri_exp(-nlp * math.log(10.0) - math.log(2.0))
        bad = (p_given & np.isfinite(z_bs) & np.isfinite(z_p)
               & (np.abs(z_p - z_bs) > readers.P_INCONSISTENT_REL * np.maximum(z_bs, 1.0)))
    return p, nlp, bad, fill


@pytest.mark.parametrize("with_nlp", [False, True])
@pytest.mark.parametrize("seed", range(3))
def test_values__filled_only_where_missing_equals_the_whole_column_arithmetic(seed, with_nlp):
    rng = np.random.default_rng(seed)
    m = 5000
    beta = rng.normal(0, 0.5, m)
    se = rng.uniform(0.001, 0.2, m)
    p = rng.uniform(0, 1, m) ** 8
    p[rng.random(m) < 0.2] = np.nan
    p[rng.random(m) < 0.05] = 0.0
    beta[rng.random(m) < 0.02] = np.nan
    nlp = np.where(rng.random(m) < 0.5, -np.log10(np.where(p > 0, p, 1e-300)), np.nan) \
        if with_nlp else np.full(m, np.nan)
    df = pl.DataFrame({"beta": beta, "standard_error": se, "p_value": p,
                       **({"neg_log_10_p_value": nlp} if with_nlp else {})}).with_columns(
        pl.all().fill_nan(None)).with_row_index(readers._LINE)
    out = readers._values(df, default_n=None)
    want_p, want_nlp, want_bad, want_fill = _values_whole_column(beta, se, p, nlp)
    assert_series_equal(out.get_column("p_value"),
                        pl.Series("p_value", want_p).fill_nan(None), check_exact=True)
    assert_series_equal(out.get_column("neg_log_10_p_value"),
                        pl.Series("neg_log_10_p_value", want_nlp).fill_nan(None), check_exact=True)
    assert out.get_column("flag_p_inconsistent").to_list() == want_bad.tolist()
    assert out.get_column("_rd_p_from_beta_se").to_list() == want_fill.tolist()
    assert_series_equal(out.get_column("beta"), pl.Series("beta", beta).fill_nan(None),
                        check_exact=True)


def _read_blocks(path, skip, block):
    """Blocks read through: (pieces, data offset, last byte), or None without the header."""
    from crosscohort.contract.table_io import Blocks, open_binary

    blocks = Blocks(path, skip=skip, block_bytes=block)
    pieces = [b.data for b in blocks]
    if not blocks.header_ok:
        return None
    with open_binary(path) as fh:  # the blocks are the data, whole and in order
        assert b"".join(pieces) == fh.read()[blocks.start:]
    assert all(p.endswith(b"\n") for p in pieces[:-1])
    return pieces, blocks.start, blocks.last


@pytest.mark.parametrize("block", [1, 3, 7, 64, 1 << 20])
@pytest.mark.parametrize("gz", [False, True])
def test_blocks_and_their_facts_agree_with_the_whole_data(tmp_path, block, gz):
    """Blocks cut at line ends are the data; their facts add up to those of the whole data."""
    import gzip

    from crosscohort.central.harmonise.readers import _block_facts

    rng = np.random.default_rng(block)
    alphabet = np.frombuffer(b"ACGT\t \r\n\x0b\x0c0123456789.", dtype=np.uint8)
    body = alphabet[rng.integers(0, alphabet.size, 5000)].tobytes() + "é".encode()
    data = b"h1\th2\nskip me\n" + body

    def written(name, raw):
        p = tmp_path / (name + (".gz" if gz else ""))
        p.write_bytes(gzip.compress(raw) if gz else raw)
        return p

    pieces, start, last = _read_blocks(written("x.tsv", data), 2, block)
    rest = data[start:]
    assert start == len(b"h1\th2\nskip me\n")
    assert last == rest[-1:]
    unparsed = pl.DataFrame()  # the last field not parsed: separators are counted
    facts = [_block_facts(p, unparsed, sep=b"\t", n_fields=2, last_field=None,
                          pad=(b" ", b"\x0b", b"\x0c")) for p in pieces]
    assert sum(f.lines for f in facts) == rest.count(b"\n")
    assert any(f.cr for f in facts) == (b"\r" in rest)
    assert any(f.padded for f in facts)  # spaces, VT, FF and a byte above ASCII
    rows = rest.count(b"\n") + (not rest.endswith(b"\n"))
    assert any(f.short for f in facts) == (rest.count(b"\t") != rows)
    pieces, _, last = _read_blocks(written("y.tsv", b"a\tb\n"), 0, block)
    (fact,) = [_block_facts(p, unparsed, sep=b"\t", n_fields=2, last_field=None,
                            pad=(b" ",)) for p in pieces]
    assert (fact.lines, fact.cr, fact.short, fact.padded) == (1, False, False, False)
    assert _read_blocks(written("z.tsv", b"header only, no line end"), 1, block) is None


@pytest.mark.parametrize("parsed_last", [False, True])
def test_block_facts_find_a_short_row(parsed_last):
    """A row with fewer fields than the header is found whether or not its last field is
    parsed; with the last field parsed and never null, separators need no count."""
    from crosscohort.central.harmonise.readers import _block_facts

    kw = dict(sep=b"\t", n_fields=3, pad=(b" ",), last_field="_c2" if parsed_last else None)
    read = dict(has_header=False, separator="\t", quote_char=None,
                schema={"_c0": pl.String, "_c1": pl.String, "_c2": pl.String})
    for piece, short in ((b"a\tb\tc\nd\te\tf\n", False), (b"a\tb\tc\nd\te\n", True),
                         (b"a\tb\tc\nd\te", True), (b"a\tb\t\nd\te\tf\n", False)):
        df = pl.read_csv(piece, **read)
        assert _block_facts(piece, df, **kw).short is short, piece


@pytest.mark.parametrize("block", [50, 301, 4096])
@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("case", ["clean", "text_tokens", "token_in_numeric", "nan_in_numeric",
                                  "empty_numeric", "all_fields_missing", "no_final_newline",
                                  "header_only"])
def test_reader_fast__blocks_read_as_the_checking_path(case, block, gz, tmp_path, monkeypatch):
    """The file parsed in blocks cut at line ends (smaller than a line, a few lines, all of it),
    plain or gzip, with tokens in some blocks only: the same table as the checking path."""
    import gzip

    p = _write(tmp_path, CASES.get(case, []), "\t")
    if case == "no_final_newline":
        p.write_bytes(p.read_bytes()[:-1])
    elif case == "header_only":
        p.write_bytes(p.read_bytes().split(b"\n", 1)[0] + b"\n")
    if gz:
        gzp = tmp_path / "s.txt.gz"
        gzp.write_bytes(gzip.compress(p.read_bytes()))
        p = gzp
    monkeypatch.setattr(table_io, "BLOCK_BYTES", block)
    _assert_fast_reads_as_slow(p, monkeypatch,
                               fast_taken=case in ("clean", "text_tokens", "no_final_newline"))


@pytest.mark.parametrize("block", [7, 1 << 20])
def test_reader_fast__quoted_comma_file_reads_without_its_quotes(tmp_path, monkeypatch, block):
    """R's write.csv quotes every text field ("1","rs1","A"): the quotes are not part of the values.

    Before: the typed read (no quote character) kept them, so chromosome '"1"' and alleles
    '"A"' went on to harmonisation, which dropped every row as a bad chromosome.
    """
    p = tmp_path / "r.csv"
    p.write_text('"CHR","BP","SNP","A1","A2","BETA","SE","P","N"\n'
                 '"1",100,"rs1","A","G",0.1,0.05,0.04,1000\n'
                 '"2",200,"rs2","c","T",-0.2,0.05,0.04,1000\n')
    monkeypatch.setattr(table_io, "BLOCK_BYTES", block)
    got = read_summary_statistics(p).table
    assert got.get_column("chromosome").to_list() == ["1", "2"]
    assert got.get_column("rsid").to_list() == ["rs1", "rs2"]
    assert got.get_column("effect_allele").to_list() == ["A", "C"]
    assert got.get_column("other_allele").to_list() == ["G", "T"]
    _assert_fast_reads_as_slow(p, monkeypatch, fast_taken=False)
