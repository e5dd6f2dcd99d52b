"""harmonise/meta on damaged, odd or repeated files: messages not tracebacks, no lost file (issue 18).

Items 7 (an output is never an input; all or nothing), 9 (one file under two
cohort ids) and 12 (truncated gzip, position 1e20, non-UTF-8, byte-order mark)
for the central readers.
"""

from __future__ import annotations

import gzip
import json

import polars as pl
import pytest

from crosscohort.cli import main
from crosscohort.contract.sumstats import read_sumstats

HEADER = "SNP\tCHR\tPOS\tEA\tNEA\tBETA\tSE\n"
SSF = "chromosome\tbase_pair_location\teffect_allele\tother_allele\tbeta\tstandard_error\tp_value\trsid\n"


def _raw(path, m=400, beta=0.1):
    path.write_text(HEADER + "".join(f"rs{i}\t1\t{i * 10}\tA\tG\t{beta}\t0.05\n"
                                     for i in range(1, m + 1)))
    return path


def _fails(argv, capsys, *needles):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    for n in needles:
        assert n in err, err
    return err


def test_files__truncated_gzip_is_a_message_naming_the_file(tmp_path, capsys):
    data = gzip.compress(_raw(tmp_path / "a.txt", m=3000).read_bytes())
    (tmp_path / "t.txt.gz").write_bytes(data[: len(data) // 2])
    _fails(["harmonise", "--out-dir", str(tmp_path / "o"), f"c={tmp_path / 't.txt.gz'}"],
           capsys, "t.txt.gz", "gzip")
    # The harmonised-table path (meta's streaming reader) too.
    assert main(["harmonise", "--out-dir", str(tmp_path / "h"), f"a={tmp_path / 'a.txt'}"]) == 0
    whole = (tmp_path / "h" / "a.tsv.gz").read_bytes()
    (tmp_path / "cut.tsv.gz").write_bytes(whole[: len(whole) // 2])
    _raw(tmp_path / "b.txt", m=3000, beta=0.2)
    assert main(["harmonise", "--out-dir", str(tmp_path / "h2"), f"b={tmp_path / 'b.txt'}"]) == 0
    _fails(["meta", "--out", str(tmp_path / "m.tsv"), f"a={tmp_path / 'cut.tsv.gz'}",
            f"b={tmp_path / 'h2' / 'b.tsv.gz'}"], capsys, "cut.tsv.gz", "gzip")


def test_files__position_1e20_names_line_and_column(tmp_path, capsys):
    p = _raw(tmp_path / "a.txt", m=5)
    p.write_text(p.read_text().replace("rs3\t1\t30\t", "rs3\t1\t1e20\t"))
    _fails(["harmonise", "--out-dir", str(tmp_path / "o"), f"c={p}"], capsys,
           "line 4", "POS", "out of range")


def test_files__non_utf8_text_names_the_line(tmp_path, capsys):
    p = tmp_path / "a.txt"
    p.write_bytes(HEADER.encode() + b"rs1\t1\t10\tA\tG\t0.1\t0.05\nrs\xe92\t1\t20\tA\tG\t0.1\t0.05\n")
    _fails(["harmonise", "--out-dir", str(tmp_path / "o"), f"c={p}"], capsys,
           "line 3", "not UTF-8")


def test_files__utf8_bom_is_read_through_not_a_lost_cohort(tmp_path):
    rows = "".join(f"1\t{i * 10}\tA\tG\t0.1\t0.05\t0.04\trs{i}\n" for i in range(1, 51))
    p = tmp_path / "a.tsv"
    p.write_bytes(b"\xef\xbb\xbf" + (SSF + rows).encode())
    assert main(["harmonise", "--out-dir", str(tmp_path / "o"), f"a={p}"]) == 0
    lg = json.loads((tmp_path / "o" / "ledger.json").read_text())[0]
    assert lg["n_in"] == lg["n_kept"] == 50  # not 50 x bad_value_chromosome
    # A harmonised table with a BOM, read by meta's table reader.
    q = tmp_path / "b.tsv"
    q.write_bytes(b"\xef\xbb\xbf" + gzip.decompress((tmp_path / "o" / "a.tsv.gz").read_bytes()))
    assert read_sumstats(q).get_column("chromosome").to_list() == [1] * 50


def test_files__one_file_under_two_cohort_ids_is_refused(tmp_path, capsys):
    a = _raw(tmp_path / "a.txt")
    (tmp_path / "copy.txt").write_bytes(a.read_bytes())
    _fails(["harmonise", "--out-dir", str(tmp_path / "o"), f"x={a}", f"y={tmp_path / 'copy.txt'}"],
           capsys, "'x'", "'y'", "identical content")
    _fails(["meta", "--format", "auto", "--out", str(tmp_path / "m.tsv"), f"x={a}", f"y={a}"],
           capsys, "identical content")
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").glob("*.tsv.gz"))


def test_files__an_output_that_is_an_input_is_refused(tmp_path, capsys):
    a, b = _raw(tmp_path / "a.txt"), _raw(tmp_path / "b.txt", beta=0.3)
    assert main(["harmonise", "--out-dir", str(tmp_path / "h"), f"a={a}", f"b={b}"]) == 0
    ha = tmp_path / "h" / "a.tsv.gz"
    before = ha.read_bytes()
    _fails(["meta", "--out", str(ha), str(ha), str(tmp_path / "h" / "b.tsv.gz")], capsys,
           "is an input")
    _fails(["harmonise", "--out-dir", str(tmp_path / "h"), f"a={ha}"], capsys, "is an input")
    assert ha.read_bytes() == before


def test_files__failed_harmonise_leaves_the_folder_as_it_was(tmp_path, capsys):
    a, b = _raw(tmp_path / "a.txt"), _raw(tmp_path / "b.txt", beta=0.3)
    out = tmp_path / "h"
    assert main(["harmonise", "--out-dir", str(out), f"a={a}", f"b={b}"]) == 0
    (out / "notes.txt").write_text("mine")
    snapshot = {p.name: p.read_bytes() for p in out.iterdir()}
    bad = tmp_path / "bad.txt"
    bad.write_text(HEADER + "rs1\t1\t10\tA\tG\tx\t0.05\n")
    a.write_text(a.read_text().replace("\t0.1\t", "\t0.4\t"))  # a new a, then b fails
    _fails(["harmonise", "--out-dir", str(out), f"a={a}", f"b={bad}"], capsys, "bad.txt")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == snapshot  # no new a beside old b
    # A run with fewer cohorts replaces the tables the previous ledger lists; notes stay.
    assert main(["harmonise", "--out-dir", str(out), f"a={a}"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["a.tsv.gz", "ledger.json", "notes.txt"]
    assert read_sumstats(out / "a.tsv.gz").get_column("beta").abs().to_list() == [0.4] * 400


def test_files__meta_on_harmonised_tables_takes_the_cohort_id_from_the_file_name(tmp_path):
    a, b = _raw(tmp_path / "a.txt"), _raw(tmp_path / "b.txt", beta=0.3)
    assert main(["harmonise", "--out-dir", str(tmp_path / "h"), f"a={a}", f"b={b}"]) == 0
    out = tmp_path / "m.tsv"
    assert main(["meta", "--out", str(out), str(tmp_path / "h" / "a.tsv.gz"),
                 str(tmp_path / "h" / "b.tsv.gz")]) == 0
    assert json.loads((tmp_path / "m.tsv.summary.json").read_text())["cohorts"] == ["a", "b"]
    assert pl.read_csv(out, separator="\t").get_column("n_studies").to_list() == [2] * 400


@pytest.mark.parametrize("item", ["FILE-that-is-missing.tsv"])
def test_files__meta_without_cohort_id_and_no_such_file_is_a_config_error(tmp_path, capsys, item):
    _fails(["meta", "--out", str(tmp_path / "m.tsv"), item], capsys, "COHORT=FILE")


def test_files__a_harmonised_table_harmonised_again_is_no_traceback(tmp_path):
    """A harmonised table carries flag_eaf_far ('true'/'false', read as text). Before:
    polars InvalidOperationError ('sum' on str) from harmonise, and from meta --format auto."""
    rows = "".join(f"1\t{i * 10}\tA\tG\t0.1\t0.05\t0.04\trs{i}\t{'true' if i == 3 else 'false'}\n"
                   for i in range(1, 21))
    p = tmp_path / "a.tsv"
    p.write_text(SSF.replace("\n", "\tflag_eaf_far\n") + rows)
    assert main(["harmonise", "--out-dir", str(tmp_path / "o"), f"a={p}"]) == 0
    lg = json.loads((tmp_path / "o" / "ledger.json").read_text())[0]
    assert lg["n_in"] == lg["n_kept"] == 20
    assert main(["meta", "--format", "auto", "--out", str(tmp_path / "m.tsv.gz"), f"a={p}",
                 f"b={tmp_path / 'o' / 'a.tsv.gz'}"]) == 0


def test_files__a_latin1_column_map_names_its_line_not_a_unicode_traceback(tmp_path, capsys):
    """Before: UnicodeDecodeError from read_text() ('harmonise --columns' traceback)."""
    m = tmp_path / "map.yaml"
    m.write_bytes("columns:\n  beta: B\xe9TA\n".encode("latin-1"))
    _fails(["harmonise", "--columns", str(m), "--out-dir", str(tmp_path / "o"),
            f"c={_raw(tmp_path / 'a.txt', m=5)}"], capsys, "map.yaml: line 2", "not UTF-8")
