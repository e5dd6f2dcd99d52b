"""Phenotype and covariate files: layouts plink2 accepts, missing codes, trait types, errors."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from crosscohort.contract.errors import InputError
from crosscohort.tre.phenotypes import (
    case_control_outcome,
    check_study_columns,
    detect_trait_type,
    expand_names,
    read_header,
    read_sample_list,
    read_table,
)


def _write(tmp_path, text, name="t.tsv"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_read_table__plink2_layout_with_missing_codes(tmp_path):
    p = _write(tmp_path, "#FID\tIID\tqt\tbt\nF1\tI1\t1.5\t2\nF1\tI2\tNA\t-9\nF2\tI3\tnan\t\nF2\tI4\t-0.25\t1\n")
    df = read_table(p)
    assert df.columns == ["fid", "iid", "qt", "bt"]
    assert df["fid"].to_list() == ["F1", "F1", "F2", "F2"]
    assert df["qt"].to_list() == [1.5, None, None, -0.25]
    assert df["bt"].to_list() == [2.0, None, None, 1.0]


@pytest.mark.parametrize("header", ["FID IID x", "#FID IID x"])
def test_read_table__whitespace_separated_and_fid_header_variants(tmp_path, header):
    p = _write(tmp_path, f"{header}\nF1   I1  3\n  F1 I2 4e-1\n")
    df = read_table(p, kind="covariate")
    assert df["iid"].to_list() == ["I1", "I2"]
    assert df["x"].to_list() == [3.0, 0.4]


def test_read_table__iid_only_header_gives_null_fid(tmp_path):
    df = read_table(_write(tmp_path, "#IID\tPC1\nI1\t0.1\nI2\t-0.2\n"))
    assert df["fid"].null_count() == 2
    assert df["iid"].to_list() == ["I1", "I2"]


def test_read_table__non_numeric_value_names_file_line_and_column(tmp_path):
    p = _write(tmp_path, "#FID\tIID\tqt\nF1\tI1\t1\nF1\tI2\t1.2.3\n")
    with pytest.raises(InputError, match=r"t\.tsv, line 3, column 'qt'.*numbers.*'1\.2\.3'"):
        read_table(p, numeric=["qt"])


def test_read_table__infinite_value_is_not_a_number(tmp_path):
    with pytest.raises(InputError, match=r"line 2, column 'age'.*'inf'"):
        read_table(_write(tmp_path, "#FID\tIID\tage\nF\tI\tinf\n"), kind="covariate", numeric=["age"])


def test_read_table__text_columns_are_read_as_text_and_numbers_stay_numbers(tmp_path):
    """An ancestry label or a centre is not refused: it is text (categorical if used)."""
    p = _write(tmp_path, "FID IID qt centre ancestry\n1 1 0.5 leeds EUR/AFR\n0 2 NONE NONE x\n3 3 -9 NA y\n")
    df = read_table(p)
    assert df["fid"].to_list() == ["1", "0", "3"] and df["iid"].to_list() == ["1", "2", "3"]
    assert df.schema["qt"] == pl.Float64 and df["qt"].to_list() == [0.5, None, None]
    assert df["centre"].to_list() == ["leeds", None, None]
    assert df["ancestry"].to_list() == ["EUR/AFR", "x", "y"]


def test_read_table__space_separated_line_in_a_tab_headed_file(tmp_path):
    df = read_table(_write(tmp_path, "#FID\tIID\tqt\nF1\tI1\t1\nF1 I2 2\nF1\tI3\t\n"))
    assert df["qt"].to_list() == [1.0, 2.0, None]


@pytest.mark.parametrize(("tokens", "expected"), [
    (["age", "sex"], ["age", "sex"]),
    (["age,sex"], ["age", "sex"]),
    (["age", "PC1-PC3"], ["age", "PC1", "PC2", "PC3"]),
    (["PC2-PC10"], [f"PC{i}" for i in range(2, 11)]),
    (["age-PC2"], ["age", "sex", "PC1", "PC2"]),
    (["my-col", "sex,age"], ["my-col", "sex", "age"]),
])
def test_expand_names__plink2_lists_commas_and_ranges(tokens, expected):
    # plink2 reads a range by header position
    header = ["age", "sex"] + [f"PC{i}" for i in range(1, 11)] + ["my-col"]
    assert expand_names(tokens, header, option="--covar-name") == expected


def test_expand_names__unknown_name_or_range_member_is_named():
    with pytest.raises(InputError, match=r"--covar-name: no column\(s\) \['PC3'\] in c\.tsv; columns are"):
        expand_names(["PC1-PC3"], ["PC1", "PC2"], option="--covar-name", sources="c.tsv")
    with pytest.raises(InputError, match=r"no column\(s\) \['bmi'\]"):
        expand_names(["bmi"], ["age"], option="--pheno-name")


def test_check_study_columns__each_rule_names_file_and_column(tmp_path):
    p = _write(tmp_path, "FID IID ldl cad cc3 label centre one\n"
               "1 a 1.5 1 0 x A 1\n1 b 2.5 2 1 y B 1\n1 c NA 2 3 z NONE 1\n", "s.txt")
    ok = dict(traits={"ldl": "quantitative", "cad": "binary"}, covariates=["centre", "sex"], sex_from="x.fam")
    check_study_columns(p, p, **ok)
    with pytest.raises(InputError, match=r"s\.txt, line 1: no column 'hdl' for the study's trait 'hdl'"):
        check_study_columns(p, p, traits={"hdl": "quantitative"}, covariates=[])
    with pytest.raises(InputError, match=r"s\.txt, line 2, column 'label': trait 'label' \(quantitative\) values must be numbers.*got 'x'"):
        check_study_columns(p, p, traits={"label": "quantitative"}, covariates=[])
    with pytest.raises(InputError, match=r"s\.txt, column 'cc3': a binary trait must be coded 1/2"):
        check_study_columns(p, p, traits={"cc3": "binary"}, covariates=[])
    with pytest.raises(InputError, match=r"s\.txt, column 'one': a binary trait needs two values"):
        check_study_columns(p, p, traits={"one": "binary"}, covariates=[])
    with pytest.raises(InputError, match=r"covariates \(config key 'covariates'\): no column\(s\) \['bmi'\] in .*s\.txt"):
        check_study_columns(p, p, traits={}, covariates=["bmi"])
    with pytest.raises(InputError, match=r"no column\(s\) \['sex'\]"):
        check_study_columns(p, p, traits={}, covariates=["sex"], sex_from="")
    with pytest.raises(InputError, match=r"s\.txt, column 'one': a covariate needs at least two distinct values"):
        check_study_columns(p, p, traits={}, covariates=["one"])


def test_read_table__bad_header_and_ragged_line_are_errors(tmp_path):
    with pytest.raises(InputError, match=r"line 1: header must start with '#FID IID'"):
        read_table(_write(tmp_path, "ID\tqt\nI1\t1\n"))
    with pytest.raises(InputError, match=r"line 3: expected 3 fields as in the header, got 2"):
        read_table(_write(tmp_path, "#FID\tIID\tqt\nF\tI1\t1\nF\tI2\n", "r.tsv"))


def test_read_table__duplicated_sample_or_column_is_an_error(tmp_path):
    with pytest.raises(InputError, match=r"FID=F IID=I1 appears 2 times"):
        read_table(_write(tmp_path, "#FID\tIID\tqt\nF\tI1\t1\nF\tI1\t2\n"))
    with pytest.raises(InputError, match=r"duplicated column name\(s\) \['qt'\]"):
        read_table(_write(tmp_path, "#FID\tIID\tqt\tqt\nF\tI1\t1\t2\n", "d.tsv"))


def test_read_sample_list__fid_iid_and_iid_only(tmp_path):
    a = read_sample_list(_write(tmp_path, "#FID\tIID\nF1\tI1\nF2\tI2\n", "k1"))
    assert a.rows() == [("F1", "I1"), ("F2", "I2")]
    b = read_sample_list(_write(tmp_path, "#IID\nI1\n", "k2"))
    assert b.rows() == [(None, "I1")]
    c = read_sample_list(_write(tmp_path, "F1 I1\n", "k3"))
    assert c.rows() == [("F1", "I1")]


def test_detect_trait_type__one_two_is_binary_else_quantitative():
    assert detect_trait_type(np.array([1, 2, np.nan, 2.0])) == "binary"
    assert detect_trait_type(np.array([0, 1, 1, 0.0])) == "quantitative"  # 0/1 only when declared
    assert detect_trait_type(np.array([1.0, 2.0, 3.0])) == "quantitative"
    assert detect_trait_type(np.array([0, 1.0]), declared="binary") == "binary"
    assert detect_trait_type(np.array([1, 2.0]), declared="quantitative") == "quantitative"


def test_detect_trait_type__declared_binary_coded_zero_three_names_the_values():
    with pytest.raises(InputError, match=r"p\.tsv, column 'cc'.*coded 1/2.*found values 0, 3"):
        detect_trait_type(np.array([0, 3, 3, np.nan]), declared="binary", column="cc", source="p.tsv")


def test_case_control_outcome__both_codings_give_one_for_cases():
    np.testing.assert_array_equal(case_control_outcome(np.array([1, 2, np.nan])), [0, 1, np.nan])
    np.testing.assert_array_equal(case_control_outcome(np.array([0, 1, 1.0])), [0, 1, 1])


def test_read_table__only_requested_columns_are_kept_yet_every_line_is_checked(tmp_path):
    p = _write(tmp_path, "FID IID a b c\n1 1 1 x 3\n1 2 2 y 4\n")
    df = read_table(p, columns=["c", "a"])
    assert df.columns == ["fid", "iid", "a", "c"]
    assert read_header(p) == ["a", "b", "c"]
    with pytest.raises(InputError, match=r"line 3: expected 5 fields as in the header, got 4"):
        read_table(_write(tmp_path, "FID IID a b c\n1 1 1 x 3\n1 2 2 4\n", "r.txt"), columns=["a"])


@pytest.mark.parametrize("reader", [read_header, read_table, read_sample_list])
def test_readers__a_directory_is_an_input_error_not_a_traceback(tmp_path, reader):
    """Before: IsADirectoryError from open()/read_text() (a traceback)."""
    (tmp_path / "p.tsv").mkdir()
    with pytest.raises(InputError, match=r"p\.tsv: is a directory"):
        reader(tmp_path / "p.tsv")


@pytest.mark.parametrize("reader", [read_header, read_table, read_sample_list])
def test_readers__latin1_text_names_the_line_not_a_unicode_traceback(tmp_path, reader):
    """A Latin-1 export (é as one byte 0xE9) on line 3. Before: UnicodeDecodeError (a traceback)."""
    p = tmp_path / "p.tsv"
    p.write_bytes("#FID\tIID\tqt\nF1\tI1\t1\nF2\tJos\xe9\t2\n".encode("latin-1"))
    with pytest.raises(InputError, match=r"p\.tsv, line 3: not UTF-8 text"):
        reader(p)


def test_read_table__a_utf8_byte_order_mark_is_read_through(tmp_path):
    """Excel's UTF-8 export starts with a BOM. Before: 'header must start with #FID IID'."""
    p = tmp_path / "p.tsv"
    p.write_bytes(b"\xef\xbb\xbf#FID\tIID\tqt\nF1\tI1\t1\n")
    assert read_header(p) == ["qt"]
    assert read_table(p)["iid"].to_list() == ["I1"]
