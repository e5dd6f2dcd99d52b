"""The harmonise reader on damaged and unusual text, through the command's function.

Each case is a tiny file that a damaged transfer, a tired analyst or another
tool produces; read by :func:`harmonise_files` (what ``crosscohort harmonise``
runs) in blocks of several sizes (a line across a block's end, a block of one
line, the whole file), the table and the ledger equal those of the same rows
written plainly, and ``n_in = n_kept + each reason``.
"""

from __future__ import annotations

import math
import re

import pytest
from scipy.stats import norm

import crosscohort.central.harmonise.readers as readers
import crosscohort.contract.table_io as table_io
from crosscohort.central.harmonise.readers import InputSpec, harmonise_files

HEAD = "CHR\tBP\tSNP\tA1\tA2\tBETA\tSE\tP\tN\tNOTE"
ROWS = ["1\t100\trs1\tA\tG\t0.1\t0.05\t0.04\t1000\tx",
        "1\t200\trs2\tC\tT\t-0.2\t0.05\t0.0001\t1000\ty",
        "2\t300\trs3\tA\tC\t0.3\t0.1\t0.003\t900\tz"]
BLOCKS = [1, 5, 23, 64, 1 << 20]


def _harmonise(path, block, monkeypatch):
    monkeypatch.setattr(table_io, "BLOCK_BYTES", block)
    out = harmonise_files([InputSpec("c", path, "auto")])
    monkeypatch.undo()
    ledger = out.ledgers["c"]
    assert ledger.n_in == ledger.n_kept + sum(ledger.removed.values())
    return out.tables["c"], ledger


@pytest.mark.parametrize("block", BLOCKS)
@pytest.mark.parametrize("eol", ["\n", "\r\n"])
@pytest.mark.parametrize("where", ["after_header", "middle", "end"])
def test_reader__blank_lines_are_no_rows_wherever_a_block_starts(tmp_path, monkeypatch, block,
                                                                 eol, where):
    """Before: a blank line that began a block (right after the header, or where a block
    was cut) failed with polars' 'column names specified in schema not found'."""
    lines = [HEAD, *ROWS]
    at = {"after_header": 1, "middle": 2, "end": 4}[where]
    blank = [*lines[:at], "", "", *lines[at:]]
    plain, dirty = tmp_path / "plain.tsv", tmp_path / "blank.tsv"
    plain.write_text("\n".join(lines) + "\n")
    dirty.write_bytes((eol.join(blank) + eol).encode())
    want, want_ledger = _harmonise(plain, 1 << 20, monkeypatch)
    got, ledger = _harmonise(dirty, block, monkeypatch)
    assert got.equals(want)
    assert (ledger.n_in, ledger.n_kept, ledger.removed) == (
        want_ledger.n_in, want_ledger.n_kept, want_ledger.removed)


@pytest.mark.parametrize("block", BLOCKS)
@pytest.mark.parametrize("sep", ["\t", ","])
def test_reader__a_row_of_empty_fields_is_counted_not_dropped(tmp_path, monkeypatch, block, sep):
    """A data line whose used fields are all empty (here only NOTE holds text) is a row with
    every value missing: counted in n_in and removed as a bad value.

    Before: the checking path dropped it as if it were a blank line, and the ledger's n_in
    did not count it (in = kept + each reason held, but for one line fewer than the file's).
    """
    empty = sep.join([""] * 9 + ["note"])
    p = tmp_path / "e.txt"
    p.write_text("\n".join([HEAD.replace("\t", sep), ROWS[0].replace("\t", sep), empty,
                            ROWS[1].replace("\t", sep)]) + "\n")
    got, ledger = _harmonise(p, block, monkeypatch)
    assert got.get_column("rsid").to_list() == ["rs1", "rs2"]
    assert ledger.n_in == 3 and ledger.removed["bad_value_chromosome"] == 1


@pytest.mark.parametrize("checking", [False, True])
@pytest.mark.parametrize("block", [7, 1 << 20])
def test_reader__p_below_the_float_range_keeps_its_printed_exponent(tmp_path, monkeypatch, block,
                                                                    checking):
    """BOLT-LMM prints p below 2.2e-308 from log space ("%.1fE%d": 1.2E-500); parsed, it is
    0 (or a subnormal with few digits). Its -log10 p comes from the text: 500 - log10 1.2.
    A p printed as 0 has no exponent: its -log10 p still comes from beta/SE.

    Before: every such row got its -log10 p from beta/SE (here 544.7 for z = 50, not 499.9):
    the file's own p, which for P_BOLT_LMM is not beta/SE's, silently replaced.
    """
    p = tmp_path / "b.bolt"
    p.write_text("SNP\tCHR\tBP\tGENPOS\tALLELE1\tALLELE0\tA1FREQ\tF_MISS\tBETA\tSE\tP_BOLT_LMM\n"
                 "rs1\t1\t100\t0\tA\tG\t0.3\t0\t0.5\t0.01\t1.2E-500\n"
                 "rs2\t1\t200\t0\tA\tG\t0.3\t0\t0.5\t0.01\t4.9E-324\n"
                 "rs3\t1\t300\t0\tA\tG\t0.3\t0\t0.5\t0.01\t0\n"
                 "rs4\t1\t400\t0\tA\tG\t0.3\t0\t0.1\t0.05\t0.04\n")
    if checking:
        monkeypatch.setattr(readers, "_read_typed", lambda *a, **k: None)
    monkeypatch.setattr(table_io, "BLOCK_BYTES", block)
    got = readers.read_summary_statistics(p).table.get_column("neg_log_10_p_value").to_list()
    from_z = -(norm.logsf(50.0) + math.log(2)) / math.log(10)
    want = [500 - math.log10(1.2), 324 - math.log10(4.9), from_z, -math.log10(0.04)]
    assert got == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("checking", [False, True])
def test_reader__a_fractional_position_is_an_error_naming_its_line(tmp_path, monkeypatch, checking):
    """R writes 1000000 as 1e+06: a whole number, read as one. 1234.5 is no position (a
    column mapped wrongly, a value cut): an error naming the line, column and rule.

    Before: positions were rounded as sample sizes are (METAL's Weight), so 1234.5 became
    1234 and the row went on at a position the file never gave.
    """
    p = tmp_path / "s.tsv"
    p.write_text(HEAD + "\n" + ROWS[0].replace("\t100\t", "\t1e+06\t") + "\n"
                 + ROWS[1].replace("\t200\t", "\t1234.5\t") + "\n")
    if checking:
        monkeypatch.setattr(readers, "_read_typed", lambda *a, **k: None)
    with pytest.raises(readers.InputError,
                       match=r"s\.tsv: line 3: column BP \(base_pair_location\): 1234\.5 is not a "
                             r"whole number; rule: base_pair_location is a whole number"):
        readers.read_summary_statistics(p)
    p.write_text(HEAD + "\n" + ROWS[0].replace("\t100\t", "\t1e+06\t") + "\n")
    got = readers.read_summary_statistics(p).table.get_column("base_pair_location")
    assert got.to_list() == [1_000_000]


def test_reader__several_alleles_in_either_allele_column_are_a_bad_value(tmp_path, monkeypatch):
    """'A,C' names no single allele, as effect allele as much as other allele.

    Before: only the other allele's was refused; an effect allele 'A,C' was kept and,
    ordered by bytes, became the other allele 'A,C' of a row with its beta negated.
    """
    p = tmp_path / "s.tsv"
    p.write_text("\n".join([HEAD, ROWS[0].replace("\tA\tG\t", "\tA,C\tG\t"), ROWS[1],
                            ROWS[2].replace("\tA\tC\t", "\tA\tC,T\t")]) + "\n")
    got, ledger = _harmonise(p, 1 << 20, monkeypatch)
    assert got.get_column("rsid").to_list() == ["rs2"]
    assert ledger.removed["bad_value_effect_allele"] == 1
    assert ledger.removed["bad_value_other_allele"] == 1


@pytest.mark.parametrize(("header", "fmt"), [("P\tp", "auto"), ("P\t#P", "auto"),
                                             ("BETA\tbeta", "gwama")])
def test_reader__two_columns_one_name_but_for_case_is_an_error(tmp_path, header, fmt):
    """Headers are matched without case and leading '#': 'P' and 'p' both name the p-value.

    Before: the first was read and the second ignored, without a word.
    """
    p = tmp_path / "s.tsv"
    cols = header.split("\t")
    if fmt == "gwama":
        p.write_text(f"MARKERNAME\tEA\tNEA\t{header}\tSE\nrs1\tA\tG\t0.1\t0.2\t0.05\n")
    else:
        p.write_text(f"CHR\tBP\tA1\tA2\tBETA\tSE\t{header}\n1\t100\tA\tG\t0.1\t0.05\t0.04\t0.5\n")
    with pytest.raises(readers.InputError,
                       match=rf"s\.tsv: columns {re.escape(repr(cols))} are one name but for case "
                             r"or a leading '#'; rule: one column per name"):
        readers.read_summary_statistics(p, format=fmt)


@pytest.mark.parametrize("sep", [" ", "\t"])
def test_reader__r_write_table_quotes_are_read_off(tmp_path, monkeypatch, sep):
    """R's write.table(quote = TRUE, row.names = FALSE), its default quoting: the header
    and every text field in double quotes, space- or tab-separated.

    Before: the header's names kept their quotes ('"CHR"'), so no column was recognised
    ('missing required column for effect_allele').
    """
    lines = [HEAD, *ROWS]
    quoted = [sep.join(f'"{v}"' if not v[0].isdigit() and v[0] != "-" or k == 0 else v
                       for k, v in enumerate(line.split("\t"))) for line in lines]
    plain, p = tmp_path / "plain.tsv", tmp_path / "r.txt"
    plain.write_text("\n".join(lines) + "\n")
    p.write_text("\n".join(quoted) + "\n")
    assert '"rs1"' in p.read_text() and '"1"' in p.read_text()
    want, want_ledger = _harmonise(plain, 1 << 20, monkeypatch)
    for block in BLOCKS:
        got, ledger = _harmonise(p, block, monkeypatch)
        assert got.equals(want)
        assert ledger.removed == want_ledger.removed


def test_reader__a_run_of_spaces_after_the_sampled_lines_still_separates_one_field(tmp_path):
    """A space-separated file is read single-spaced when its first 2,000 data lines are; a
    line after them aligned with two spaces (a padded value) is still one separator.

    Before: that line was 'line 2503: 11 fields, header has 10'.
    """
    head = HEAD.replace("\t", " ")
    rows = [f"1 {100 + i} rs{i} A G 0.1 0.05 0.04 1000 x" for i in range(2600)]
    rows[2501] = rows[2501].replace(" A G ", "  A G ")
    p = tmp_path / "s.txt"
    p.write_text(head + "\n" + "\n".join(rows) + "\n")
    got = readers.read_summary_statistics(p)
    assert got.n_rows == 2600 and got.table.get_column("effect_allele")[2501] == "A"


def test_formats__metal_table_resaved_by_r_is_read_as_metal(tmp_path):
    """R's read.table makes METAL's 'P-value' 'P.value'; with Allele1 and Allele2 that is
    SAIGE's signature too, but SAIGE's columns (BETA, MarkerID) are not there.

    Before: detected as saige, then 'missing required column for beta or odds_ratio
    (format saige)'.
    """
    p = tmp_path / "metal.tbl"
    p.write_text("MarkerName\tAllele1\tAllele2\tFreq1\tEffect\tStdErr\tP.value\tDirection\n"
                 "rs1\ta\tg\t0.3\t0.1\t0.05\t0.04\t++\n")
    got = readers.read_summary_statistics(p)
    assert got.format == "metal"
    row = got.table.row(0, named=True)
    assert (row["effect_allele"], row["other_allele"], row["beta"], row["p_value"]) == \
        ("A", "G", 0.1, 0.04)


def test_reader__an_unbalanced_quote_in_a_comma_file_names_its_line(tmp_path):
    """A field that opens a double quote and never closes it would run on into the next
    lines. Before: 'cannot read (could not parse `"rs1,A,G,...)', no line named."""
    p = tmp_path / "q.csv"
    p.write_text("\n".join(x.replace("\t", ",") for x in
                           [HEAD, ROWS[0], ROWS[1].replace("rs2", '"rs2'), ROWS[2]]) + "\n")
    with pytest.raises(readers.InputError, match=r"q\.csv: line 3: a double quote opened and not "
                                                 r"closed; rule: quoted fields"):
        readers.read_summary_statistics(p)


@pytest.mark.parametrize("checking", [False, True])
def test_reader__a_quote_inside_a_comma_field_is_a_character(tmp_path, monkeypatch, checking):
    """Only a field that begins with a double quote is quoted; rs"1 is the text rs"1.

    Before: the checking path (quote-aware) failed with polars' 'CSV malformed: expected 0
    rows, actual 2 rows' where the typed path read rs"1: the two paths disagreed.
    """
    p = tmp_path / "m.csv"
    p.write_text("\n".join(x.replace("\t", ",") for x in
                           [HEAD, ROWS[0].replace("rs1", 'rs"1'), ROWS[1]]) + "\n")
    if checking:
        monkeypatch.setattr(readers, "_read_typed", lambda *a, **k: None)
    assert readers.read_summary_statistics(p).table.get_column("rsid").to_list() == ['rs"1', "rs2"]


def test_formats__gwama_packaged_sample_headers_are_detected_as_gwama(tmp_path):
    """GWAMA's own packaged sample writes SNP, EFFECT_ALLELE, NON_EFFECT_ALLELE (GWAMA 2.1's
    names); with -9 in N or EAF (GWAMA's missing value) a row keeps its beta and SE.

    Before: --format auto read such a file through the header dictionary, without GWAMA's
    -9 rule: N = -9 and EAF = -9 were values, and the rows were removed as bad values.
    """
    p = tmp_path / "pop.txt"
    p.write_text("SNP\tSTRAND\tIMPUTED\tEFFECT_ALLELE\tNON_EFFECT_ALLELE\tBETA\tSE\tN\tEAF\n"
                 "rs1\t+\t0\tG\tC\t-0.02\t0.4\t-9\t0.3\n"
                 "rs2\t+\t0\tA\tG\t0.05\t0.1\t1000\t-9\n")
    got = readers.read_summary_statistics(p)
    assert got.format == "gwama"
    assert got.table.get_column("n").to_list() == [None, 1000]
    assert got.table.get_column("effect_allele_frequency").to_list() == [0.3, None]


_PANEL = ("chromosome\tbase_pair_location\trsid\tref\talt\talt_frequency\n"
          "1\t100\trs1\tG\tA\t0.3\n1\t200\trs2\tT\tC\t0.4\n2\t300\trs3\tC\tA\t0.2\n")


def test_reference__a_cut_line_or_a_bad_value_names_its_line(tmp_path):
    """The reference panel is read as every table is (the block reader's checks).

    Before: polars read the whole file and filled a cut line's missing fields with nulls
    (1:200 with no ALT and no frequency, without a word), and a bad number gave polars'
    message without a line.
    """
    p = tmp_path / "ref.tsv"
    p.write_text(_PANEL.replace("\tT\tC\t0.4", "\tT"))
    with pytest.raises(readers.InputError, match=r"ref\.tsv: line 3: 4 fields, header has 6"):
        readers.read_reference(p)
    p.write_text(_PANEL.replace("0.4", "0.4x"))
    with pytest.raises(readers.InputError,
                       match=r"ref\.tsv: line 3: column alt_frequency: '0\.4x' is not a valid"):
        readers.read_reference(p)
    ok, messy = tmp_path / "ok.tsv", tmp_path / "messy.tsv"
    ok.write_text(_PANEL)
    messy.write_bytes(("\ufeff" + _PANEL.replace("\n", "\r\n") + "\r\n").encode())
    assert readers.read_reference(messy).equals(readers.read_reference(ok))  # BOM, CRLF, blank
