"""Per-chromosome meta-analysis (crosscohort/central/meta/stream.py) against the whole-table reference.

The reference is the whole-table path: ``meta_analyse`` on whole tables,
``write_meta`` (``write_sumstats`` of the whole table), ``write_tbl``,
``distance_loci`` + ``leave_one_out`` on whole tables. The streamed command
must give the same bytes for every file, on inputs built to catch what a
per-chromosome split can get wrong: chromosomes a cohort lacks, partial
overlap, swapped alleles (several allele pairs per position), missing
values and bad rows counted per rule, duplicates, marker-name-only rows,
a column that is empty in some chromosomes, genomic control, unsorted files.
"""

from __future__ import annotations

import gzip

import numpy as np
import polars as pl
import pytest

from crosscohort.central.loci import distance_loci
from crosscohort.central.meta import leave_one_out, meta_analyse, write_loo, write_meta
from crosscohort.central.meta.stream import Unsorted, file_parts, memory_parts, meta_analyse_to_file
from crosscohort.central.meta.tbl import write_tbl
from crosscohort.cli import main
from crosscohort.contract.sumstats import SumstatsError, read_sumstats, write_sumstats

THRESHOLD, WINDOW_KB = 1e-6, 5.0


def _cohort(rng: np.random.Generator, c: int, m: int = 900) -> pl.DataFrame:
    """One harmonised-looking cohort over chromosomes 1, 2, 3, 7, 22 and 23, with traps."""
    chroms = np.array([1, 2, 3, 7, 22, 23])
    # Cohort 1 lacks chromosome 3, cohort 2 has chromosome 7 only in part: partial overlap.
    keep = [ch for ch in chroms if not (c == 1 and ch == 3)]
    chrom = rng.choice(keep, m)
    pos = rng.integers(1, 60, m) * 1000 + (c == 2) * rng.integers(0, 2, m) * 7
    ea, oa = np.array(list("ACGT"))[rng.integers(0, 4, (2, m))]
    oa = np.where(oa == ea, np.where(ea == "A", "C", "A"), oa)
    beta = rng.normal(0, 0.05, m) + np.where(rng.random(m) < 0.03, 0.8, 0.0)
    se = rng.uniform(0.02, 0.06, m) * (1.0 + 0.2 * c)  # lambda differs by cohort
    df = pl.DataFrame({
        "chromosome": chrom, "base_pair_location": pos,
        "effect_allele": ea, "other_allele": oa, "beta": beta, "standard_error": se,
        "effect_allele_frequency": rng.uniform(0.01, 0.99, m),
        "p_value": rng.uniform(0, 1, m),
        "rsid": [f"rs{c}_{i}" if i % 3 else None for i in range(m)],
        "n": rng.integers(500, 5000, m),
    })
    # Missing and bad values: NA beta, SE 0, SE NA, NA allele, NA n and EAF.
    bad = rng.random(m)
    df = df.with_columns(
        pl.when(pl.Series(bad < 0.02)).then(None).otherwise(pl.col("beta")).alias("beta"),
        pl.when(pl.Series((bad >= 0.02) & (bad < 0.03))).then(0.0).otherwise(
            pl.col("standard_error")).alias("standard_error"),
        pl.when(pl.Series((bad >= 0.03) & (bad < 0.04))).then(None).otherwise(
            pl.col("other_allele")).alias("other_allele"),
        pl.when(pl.Series(bad > 0.95)).then(None).otherwise(pl.col("n")).alias("n"),
        pl.when(pl.Series((bad > 0.9) & (bad < 0.93))).then(None).otherwise(
            pl.col("effect_allele_frequency")).alias("effect_allele_frequency"),
    )
    # rsid only on chromosome 1 for cohort 0: a column empty in most chromosomes.
    if c == 0:
        df = df.with_columns(pl.when(pl.col("chromosome") == 1).then(pl.col("rsid")).alias("rsid"))
    # Exact duplicates of some rows (resolved by n, SE, file order).
    df = pl.concat([df, df.head(15).with_columns(pl.col("standard_error") * 0.9)])
    # Marker-name-only rows (no chromosome, no position), partly shared across cohorts.
    mo = pl.DataFrame({
        "chromosome": pl.Series([None] * 6, dtype=pl.Int64),
        "base_pair_location": pl.Series([None] * 6, dtype=pl.Int64),
        "effect_allele": ["A", "G", "A", "T", "C", "A"], "other_allele": ["G", "A", "G", "C", "T", "G"],
        # mk2 significant (its own locus, no position): a leave-one-out lead by name.
        "beta": rng.normal(0, 0.01, 6) + np.where(np.arange(6) == (2 - c) % 8, 0.9, 0.0),
        "standard_error": rng.uniform(0.02, 0.05, 6),
        "effect_allele_frequency": rng.uniform(0.1, 0.9, 6), "p_value": rng.uniform(0, 1, 6),
        "rsid": [f"mk{(i + c) % 8}" for i in range(6)], "n": rng.integers(500, 5000, 6),
    })
    # Chromosome 0 (a valid code) with no usable row: a first part without output rows,
    # which must not decide the header (a part with no rows has no rsid column).
    zero = df.head(4).with_columns(pl.lit(0, pl.Int64).alias("chromosome"),
                                   pl.lit(None, pl.Float64).alias("beta"))
    return pl.concat([df, mo, zero], how="vertical_relaxed")


def _tables(seed: int = 3, k: int = 3) -> dict[str, pl.DataFrame]:
    rng = np.random.default_rng(seed)
    # Cohort ids not in sorted order: the direction string follows argument order.
    names = ["zeta", "alpha", "mid", "beta"][:k]
    return {name: _cohort(rng, c) for c, name in enumerate(names)}


def _sorted(t: pl.DataFrame, *, nulls_last: bool = True) -> pl.DataFrame:
    # As harmonisation writes them: by chromosome code then position, marker-name rows last
    # (or first: a reader must take them wherever they are).
    return t.sort(["chromosome", "base_pair_location"], nulls_last=nulls_last, maintain_order=True)


def _reference(tables, out, *, method="fixed", gc=False, order=None):
    """The whole-table path: what ``crosscohort meta`` wrote before the per-chromosome pass."""
    res = meta_analyse(tables, method=method, gc=gc, cohort_order=order)
    write_meta(res, out)
    write_tbl(res, out.with_name(out.name + ".tbl"))
    leads = distance_loci(res.table, threshold=THRESHOLD, window_kb=WINDOW_KB)
    loo = leave_one_out(tables, leads, cohort_order=list(res.cohorts), se_factors=res.gc_applied)
    write_loo(loo, out.with_name(out.name + ".loo.tsv"))
    return res


def _files(out):
    return [out, out.with_name(out.name + ".summary.json"), out.with_name(out.name + ".tbl"),
            out.with_name(out.name + ".loo.tsv")]


def _cli(out, pairs, *, method="fixed", gc=False, order=None):
    args = ["meta", "--method", method, "--out", str(out), "--tbl",
            str(out.with_name(out.name + ".tbl")), "--loo-threshold", str(THRESHOLD),
            "--loo-window-kb", str(WINDOW_KB)]
    args += ["--gc"] if gc else []
    args += ["--cohort-order", ",".join(order)] if order else []
    assert main(args + pairs) == 0


def _assert_same_bytes(got, want):
    for g, w in zip(_files(got), _files(want), strict=True):
        a, b = g.read_bytes(), w.read_bytes()
        if g.suffix == ".gz":
            a, b = gzip.decompress(a), gzip.decompress(b)
        assert a == b, f"{g.name} differs from the whole-table {w.name}"
    # Of a .gz, the text is compared: ISA-L's deflate blocks follow the write calls, and
    # polars sizes its writes from the row count of the frame it is given, so a table
    # written in parts compresses to other (equally valid, equally reproducible) bytes.


@pytest.mark.parametrize(("method", "gc"), [("random", False), ("fixed", True), ("samplesize", False)])
def test_meta_stream__harmonised_files_give_the_whole_table_bytes(tmp_path, method, gc):
    tables = {c: _sorted(t, nulls_last=c != "alpha") for c, t in _tables().items()}
    pairs = []
    for c, t in tables.items():
        write_sumstats(t, tmp_path / f"{c}.tsv.gz")
        pairs.append(f"{c}={tmp_path / f'{c}.tsv.gz'}")
    # Read back as the whole-table path read them (typed, only the meta columns).
    whole = {c: read_sumstats(tmp_path / f"{c}.tsv.gz") for c in tables}
    ref = _reference(whole, tmp_path / "ref.tsv.gz", method=method, gc=gc,
                     order=["mid", "zeta", "alpha"])
    # Random pairs at shared positions: strand complements (A/C, G/T) merge across cohorts.
    assert ref.table.height > 1600 and ref.table.get_column("chromosome").n_unique() == 7
    assert (ref.table.get_column("n_studies") > 1).sum() > 100
    if method != "samplesize":  # (its p are the inputs' p, drawn uniform here)
        assert read_sumstats(tmp_path / "ref.tsv.gz.loo.tsv", required=()).height > 0
    assert sum(lg.removed["duplicate"] for lg in ref.ledgers.values()) > 0
    _cli(tmp_path / "got.tsv.gz", pairs, method=method, gc=gc, order=["mid", "zeta", "alpha"])
    _assert_same_bytes(tmp_path / "got.tsv.gz", tmp_path / "ref.tsv.gz")


def test_meta_stream__mrmega_parts_kept_stacked_give_the_whole_table_bytes(tmp_path):
    # MR-MEGA's first pass keeps each chromosome stacked for the passes after it: a
    # chromosome where no cohort reports n (7) or rsid (22) is stacked there without the
    # column, which the whole input has, and must come back as if stacked knowing it.
    rng = np.random.default_rng(23)
    tables = {}
    for c, name in enumerate(["zeta", "alpha", "mid", "beta", "eta"]):
        t = _cohort(rng, c).with_columns(
            pl.when(pl.col("chromosome") == 7).then(None).otherwise(pl.col("n")).alias("n"),
            pl.when(pl.col("chromosome") == 22).then(None).otherwise(pl.col("rsid")).alias("rsid"))
        tables[name] = _sorted(t)
    pairs = []
    for c, t in tables.items():
        write_sumstats(t, tmp_path / f"{c}.tsv.gz")
        pairs.append(f"{c}={tmp_path / f'{c}.tsv.gz'}")
    whole = {c: read_sumstats(tmp_path / f"{c}.tsv.gz") for c in tables}
    ref = _reference(whole, tmp_path / "ref.tsv.gz", method="mrmega")
    assert ref.table.filter(pl.col("chromosome") == 7).get_column("n").null_count() > 0
    assert read_sumstats(tmp_path / "ref.tsv.gz.loo.tsv", required=()).height > 0
    _cli(tmp_path / "got.tsv.gz", pairs, method="mrmega")
    _assert_same_bytes(tmp_path / "got.tsv.gz", tmp_path / "ref.tsv.gz")
    # Without the leave-one-out step the parts' rows are not kept: the same table.
    args = ["meta", "--method", "mrmega", "--out", str(tmp_path / "bare.tsv.gz")]
    assert main(args + pairs) == 0
    assert (gzip.decompress((tmp_path / "bare.tsv.gz").read_bytes())
            == gzip.decompress((tmp_path / "got.tsv.gz").read_bytes()))
    assert not [f for f in tmp_path.iterdir() if ".parts." in f.name]


def test_meta_stream__small_blocks_cut_lines_and_chromosomes_anywhere(tmp_path):
    tables = {c: _sorted(t, nulls_last=c != "zeta") for c, t in _tables(seed=5).items()}
    paths = {}
    for c, t in tables.items():
        paths[c] = tmp_path / f"{c}.tsv"
        write_sumstats(t, paths[c])
    whole = {c: read_sumstats(p) for c, p in paths.items()}
    _reference(whole, tmp_path / "ref.tsv")
    keep = tuple(whole["alpha"].columns)
    for block in (997, 65_536):
        got = tmp_path / f"got{block}.tsv"
        res = meta_analyse_to_file(file_parts(paths, sorted(paths), keep=keep, samplesize=False,
                                              block_bytes=block), list(paths), got)
        assert got.read_bytes() == (tmp_path / "ref.tsv").read_bytes()
        assert res.passes == 1


def test_meta_stream__gzip_without_gz_suffix_is_read_as_gzip(tmp_path):
    """A harmonised table compressed but named .tsv (a renamed download): read by its magic
    bytes, as every other reader does, not taken for text by its name."""
    tables = _tables(seed=6, k=2)
    paths = {}
    for c, t in tables.items():
        write_sumstats(_sorted(t), tmp_path / f"{c}.tsv.gz")
        paths[c] = tmp_path / f"{c}.tsv"
        (tmp_path / f"{c}.tsv.gz").rename(paths[c])
    keep = tuple(read_sumstats(paths["zeta"]).columns)
    meta_analyse_to_file(file_parts(paths, sorted(paths), keep=keep, samplesize=False),
                         list(paths), tmp_path / "got.tsv")
    _reference({c: read_sumstats(p) for c, p in paths.items()}, tmp_path / "ref.tsv")
    assert (tmp_path / "got.tsv").read_bytes() == (tmp_path / "ref.tsv").read_bytes()


def test_meta_stream__header_not_utf8_is_the_error_read_sumstats_gives(tmp_path, capsys):
    """A harmonised table whose header is not UTF-8 text: the workflow's meta call fails with
    read_sumstats' message (file, line 1, rule), not a UnicodeDecodeError traceback."""
    good = tmp_path / "a.tsv"
    write_sumstats(_sorted(_tables(seed=8, k=1)["zeta"]), good)
    bad = tmp_path / "b.tsv"
    text = good.read_bytes()
    bad.write_bytes(text.replace(b"standard_error", b"standard_error\xff", 1))
    with pytest.raises(SumstatsError) as want:
        read_sumstats(bad)
    assert "b.tsv: line 1: header is not UTF-8" in str(want.value)
    assert main(["meta", "--out", str(tmp_path / "m.tsv"), f"a={good}", f"b={bad}"]) == 2
    assert str(want.value) in capsys.readouterr().err


def test_meta_stream__raw_standalone_call_gives_the_whole_table_bytes(tmp_path):
    # In-memory parts (the standalone call's), from tables in no particular order.
    tables = {c: t.sample(fraction=1.0, shuffle=True, seed=1) for c, t in _tables(seed=7).items()}
    ref = _reference(tables, tmp_path / "ref.tsv")
    got = tmp_path / "got.tsv"
    res = meta_analyse_to_file(memory_parts(tables, sorted(tables), samplesize=False),
                               list(tables), got, tbl=got.with_name("got.tsv.tbl"),
                               loo_threshold=THRESHOLD)
    for name in ("", ".summary.json", ".tbl"):
        assert (tmp_path / f"got.tsv{name}").read_bytes() == (tmp_path / f"ref.tsv{name}").read_bytes()
    assert res.summary() == ref.summary()
    assert {c: lg.to_dict() for c, lg in res.ledgers.items()} == \
        {c: lg.to_dict() for c, lg in ref.ledgers.items()}


def test_meta_stream__unsorted_file_falls_back_to_whole_tables(tmp_path, capsys):
    tables = _tables(seed=11)
    pairs = []
    for c, t in tables.items():
        # One cohort as written by someone else: chromosome 22 before 3.
        t = _sorted(t) if c != "mid" else t.sort(pl.col("chromosome").cast(pl.String))
        write_sumstats(t, tmp_path / f"{c}.tsv")
        pairs.append(f"{c}={tmp_path / f'{c}.tsv'}")
    whole = {c: read_sumstats(tmp_path / f"{c}.tsv") for c in tables}
    with pytest.raises(Unsorted, match="mid.tsv"):
        meta_analyse_to_file(file_parts({c: tmp_path / f"{c}.tsv" for c in tables}, sorted(tables),
                                        keep=tuple(whole["mid"].columns), samplesize=False),
                             list(tables), tmp_path / "x.tsv")
    _reference(whole, tmp_path / "ref.tsv")
    _cli(tmp_path / "got.tsv", pairs)
    assert "one chromosome at a time" in capsys.readouterr().err
    _assert_same_bytes(tmp_path / "got.tsv", tmp_path / "ref.tsv")


def test_meta_stream__header_column_no_row_fills_is_dropped_as_whole_table_does(tmp_path):
    tables = {c: _sorted(t).with_columns(pl.lit(None, pl.String).alias("rsid"))
              for c, t in _tables(seed=13, k=2).items()}
    pairs = []
    for c, t in tables.items():
        write_sumstats(t, tmp_path / f"{c}.tsv")
        pairs.append(f"{c}={tmp_path / f'{c}.tsv'}")
    whole = {c: read_sumstats(tmp_path / f"{c}.tsv") for c in tables}
    ref = _reference(whole, tmp_path / "ref.tsv")
    assert "rsid" not in ref.table.columns
    _cli(tmp_path / "got.tsv", pairs)
    _assert_same_bytes(tmp_path / "got.tsv", tmp_path / "ref.tsv")


def test_meta_stream__no_usable_row_writes_the_whole_tables_header(tmp_path):
    t = _sorted(_tables(seed=17, k=1)["zeta"]).with_columns(pl.lit(None, pl.Float64).alias("beta"))
    write_sumstats(t, tmp_path / "a.tsv")
    whole = {"a": read_sumstats(tmp_path / "a.tsv")}
    res = meta_analyse(whole)
    write_meta(res, tmp_path / "ref.tsv")
    got = meta_analyse_to_file(file_parts({"a": tmp_path / "a.tsv"}, ["a"],
                                          keep=tuple(whole["a"].columns), samplesize=False),
                               ["a"], tmp_path / "got.tsv")
    assert (tmp_path / "got.tsv").read_bytes() == (tmp_path / "ref.tsv").read_bytes()
    assert got.ledgers["a"].removed["bad_value_beta"] == t.height - t.get_column("other_allele").null_count()
    assert got.summary() == res.summary()


def test_meta_stream__bad_value_in_a_block_names_file_and_lines(tmp_path):
    t = _sorted(_tables(seed=19, k=1)["zeta"])
    write_sumstats(t, tmp_path / "a.tsv")
    lines = (tmp_path / "a.tsv").read_text().splitlines(keepends=True)
    cols = lines[0].rstrip("\n").split("\t")
    row = lines[500].split("\t")
    row[cols.index("standard_error")] = "0.0x3"
    lines[500] = "\t".join(row)
    (tmp_path / "a.tsv").write_text("".join(lines))
    with pytest.raises(SumstatsError, match=r"a\.tsv: line 501: column standard_error: .0\.0x3. is not a valid Float64"):
        meta_analyse_to_file(file_parts({"a": tmp_path / "a.tsv"}, ["a"], keep=tuple(cols),
                                        samplesize=False, block_bytes=4096), ["a"],
                             tmp_path / "got.tsv")


def test_meta_stream__raw_unsorted_files_give_the_sorted_files_bytes(tmp_path):
    # Raw inputs are harmonised without sorting (meta orders each chromosome itself):
    # rows shuffled, the same output bytes, duplicates resolved the same way.
    tables = _tables(seed=5)
    sorted_pairs, shuffled_pairs = [], []
    for i, (c, t) in enumerate(tables.items()):
        t = t.filter(pl.col("chromosome").is_not_null() & (pl.col("chromosome") > 0))
        s = _sorted(t)
        s.write_csv(tmp_path / f"s_{c}.tsv", separator="\t", null_value="NA")
        t.sample(fraction=1.0, shuffle=True, seed=i).write_csv(
            tmp_path / f"u_{c}.tsv", separator="\t", null_value="NA")
        sorted_pairs.append(f"{c}={tmp_path / f's_{c}.tsv'}")
        shuffled_pairs.append(f"{c}={tmp_path / f'u_{c}.tsv'}")
    for name, pairs in (("s", sorted_pairs), ("u", shuffled_pairs)):
        assert main(["meta", "--format", "gwas-ssf", "--out", str(tmp_path / f"{name}.tsv"),
                     *pairs]) == 0
    assert (tmp_path / "u.tsv").read_bytes() == (tmp_path / "s.tsv").read_bytes()
