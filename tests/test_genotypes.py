"""Reading PLINK 1 ``.bed`` genotypes: the packed-byte decoder against plink2 and the written truth."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from bed_reader import to_bed
from hypothesis import given, settings
from hypothesis import strategies as st

from crosscohort.contract.errors import InputError
from crosscohort.tre import _bed
from crosscohort.tre.genotypes import Genotypes


def _write(prefix: Path, g: np.ndarray, *, seed: int = 0, iid_prefix: str = "s") -> Path:
    """Write samples x variants dosages (NaN = missing) as a PLINK 1 fileset; A1 is counted."""
    n, m = g.shape
    rng = np.random.default_rng(seed)
    to_bed(prefix.with_suffix(".bed"), g, count_A1=True, num_threads=1, properties={
        "fid": [f"F{i}" for i in range(n)], "iid": [f"{iid_prefix}{i}" for i in range(n)],
        "sex": rng.integers(1, 3, n), "chromosome": ["1"] * m,
        "sid": [f"v{j}" for j in range(m)], "bp_position": np.arange(1, m + 1) * 100,
        "allele_1": ["A"] * m, "allele_2": ["G"] * m,
    })
    return prefix


def _random_dosages(n: int, m: int, seed: int, missing: float = 0.1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    g = rng.integers(0, 3, size=(n, m)).astype(np.float64)
    g[rng.random((n, m)) < missing] = np.nan
    return g


@pytest.mark.parametrize("n", [1, 4, 13, 14, 15, 16, 257])  # every padding of the last byte
def test_read__returns_the_written_dosages_for_every_last_byte_padding(tmp_path, n):
    g = _random_dosages(n, 9, seed=n)
    geno = Genotypes([_write(tmp_path / "c", g)])
    got = geno.read(np.arange(9))
    assert got.shape == (n, 9) and got.dtype == np.float64
    np.testing.assert_array_equal(got, g)  # NaN == NaN for assert_array_equal
    assert got.flags.f_contiguous  # each variant's samples contiguous: the kernels' layout


@pytest.mark.oracle
def test_read__matches_plink2_export_A(tmp_path, plink2):
    g = _random_dosages(37, 25, seed=7)
    prefix = _write(tmp_path / "c", g)
    # Oracle command: plink2 --bfile c --export A --out raw  (NA = missing; the header names the
    # allele each column counts: v<j>_<allele>. v2.00a3.5 counts the .bim A2 (REF) allele here.)
    subprocess.run([plink2, "--bfile", str(prefix), "--export", "A", "--out", str(tmp_path / "raw")],
                   check=True, capture_output=True)
    lines = (tmp_path / "raw.raw").read_text().splitlines()
    counted = [h.rsplit("_", 1)[1] for h in lines[0].split()[6:]]
    assert set(counted) <= {"A", "G"} and len(counted) == 25
    raw = np.array([[np.nan if x == "NA" else float(x) for x in ln.split()[6:]] for ln in lines[1:]])
    a1_dosage = np.where(np.array(counted) == "A", raw, 2.0 - raw)  # ours count A1 = "A"
    np.testing.assert_array_equal(Genotypes([prefix]).read(np.arange(25)), a1_dosage)


def test_read__any_variant_order_and_sample_subset_match_the_full_matrix(tmp_path):
    g = _random_dosages(50, 40, seed=3)
    geno = Genotypes([_write(tmp_path / "c", g)])
    vi = np.array([39, 2, 3, 4, 17, 16, 0, 38, 39])  # unsorted, repeated, runs and singletons
    si = np.array([0, 1, 5, 6, 7, 30, 49])
    np.testing.assert_array_equal(geno.read(vi), g[:, vi])
    np.testing.assert_array_equal(geno.read(vi, si), g[np.ix_(si, vi)])
    np.testing.assert_array_equal(geno.read(slice(5, 12)), g[:, 5:12])
    assert geno.read(np.array([], dtype=np.int64)).shape == (50, 0)


def test_read__stacked_filesets_concatenate_samples_and_subset_across_them(tmp_path):
    a, b = _random_dosages(21, 11, seed=1), _random_dosages(10, 11, seed=2)
    pa = _write(tmp_path / "a", a, iid_prefix="a")
    pb = _write(tmp_path / "b", b, iid_prefix="b")
    geno = Genotypes([pa, pb])
    full = np.vstack([a, b])
    np.testing.assert_array_equal(geno.read(np.arange(11)), full)
    si = np.array([3, 20, 21, 30])  # straddles the two filesets
    np.testing.assert_array_equal(geno.read(np.array([10, 0]), si), full[np.ix_(si, [10, 0])])
    only_b = np.arange(21, 31)
    np.testing.assert_array_equal(geno.read(np.arange(11), only_b), b)


def test_chunks__cover_the_variants_in_order_with_the_same_values_as_one_read(tmp_path):
    g = _random_dosages(30, 23, seed=4)
    geno = Genotypes([_write(tmp_path / "c", g)])
    vi = np.arange(23)[::-1]
    parts = list(geno.chunks(vi, 5))
    assert [len(p[0]) for p in parts] == [5, 5, 5, 5, 3]
    np.testing.assert_array_equal(np.hstack([p[1] for p in parts]), g[:, vi])


def test_read__bad_indices_are_refused(tmp_path):
    geno = Genotypes([_write(tmp_path / "c", _random_dosages(8, 4, seed=5))])
    with pytest.raises(IndexError, match="variant index out of range"):
        geno.read(np.array([4]))
    with pytest.raises(ValueError, match="strictly increasing"):
        geno.read(np.arange(4), np.array([3, 1]))


def test_genotypes__truncated_bed_is_an_input_error_naming_the_sizes(tmp_path):
    prefix = _write(tmp_path / "c", _random_dosages(9, 6, seed=6))
    bed = prefix.with_suffix(".bed")
    bed.write_bytes(bed.read_bytes()[:-1])
    with pytest.raises(InputError, match=r"c\.bed: 20 bytes, expected 21 for 9 samples x 6 variants"):
        Genotypes([prefix])


def _decode_one_by_one(packed: bytes, n: int) -> list[float]:
    """Independent reference: the PLINK 1 format table, one sample at a time."""
    table = {0b00: 2.0, 0b01: float("nan"), 0b10: 1.0, 0b11: 0.0}
    return [table[(packed[s // 4] >> (2 * (s % 4))) & 0b11] for s in range(n)]


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 41), data=st.data())
def test_decode__equals_the_format_table_for_any_bytes(n, data):
    nb = _bed.bytes_per_variant(n)
    rows = data.draw(st.lists(st.binary(min_size=nb, max_size=nb), min_size=1, max_size=4))
    packed = np.frombuffer(b"".join(rows), dtype=np.uint8).reshape(len(rows), nb)
    got = _bed.decode_dosages(packed, n)
    want = np.array([_decode_one_by_one(r, n) for r in rows])
    np.testing.assert_array_equal(got, want)
    sel = np.array(sorted(set(data.draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=n)))))
    np.testing.assert_array_equal(_bed.decode_dosages(packed, n, samples=sel), want[:, sel])


@pytest.mark.parametrize(("reader", "name"), [("read_id_list", "ids.txt"), ("read_fam", "g.fam"), ("read_bim", "g.bim")])
def test_id_list_and_fam__directory_or_latin1_is_an_input_error_not_a_traceback(tmp_path, reader, name):
    """Before: IsADirectoryError and UnicodeDecodeError tracebacks from 'assoc --extract' / a .fam;
    for a .bim, polars' 'failed to retrieve file schemas' and 'invalid utf-8' without a line."""
    from crosscohort.tre import genotypes

    read = getattr(genotypes, reader)
    (tmp_path / name).mkdir()
    with pytest.raises(InputError, match=rf"{name}: is a directory"):
        read(tmp_path / name)
    other = tmp_path / "latin1" / name
    other.parent.mkdir()
    other.write_bytes("F1\tI1\t0\t0\t1\t-9\nF2\tJos\xe9\t0\t0\t2\t-9\n".encode("latin-1"))
    with pytest.raises(InputError, match=rf"{name}, line 2: not UTF-8 text"):
        read(other)


def test_read_id_list__a_byte_order_mark_does_not_hide_the_first_id(tmp_path):
    """Before: the first ID read as '\\ufeffrs1' and was silently not extracted."""
    from crosscohort.tre.genotypes import read_id_list

    (tmp_path / "ids.txt").write_bytes(b"\xef\xbb\xbfrs1\r\nrs2\r\n")
    assert read_id_list(tmp_path / "ids.txt") == ["rs1", "rs2"]


@pytest.mark.parametrize(("text", "line"), [
    ("1\trs1\t0\t10\tA\tC\n\n1\trs2\t0\t20\tG\tT\n", 2),  # blank line: counted as a variant before
    ("1\trs1\t0\t10\tA\tC\n1\trs2\t0", 2),  # cut last line: alleles silently null before
])
def test_read_bim__a_blank_or_cut_line_names_its_line(tmp_path, text, line):
    """Before: a blank line made a wrong '.bed size' error; a cut last line passed with null alleles."""
    from crosscohort.tre.genotypes import read_bim

    (tmp_path / "g.bim").write_text(text)
    with pytest.raises(InputError, match=rf"g\.bim, line {line}: blank, or fewer than 6 fields"):
        read_bim(tmp_path / "g.bim")
