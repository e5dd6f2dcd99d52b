"""Marker names join positioned and marker-only rows of one variant (crosscohort/central/harmonise/markers.py)."""

from __future__ import annotations

import json

import polars as pl

from crosscohort.central.harmonise.readers import InputSpec, harmonise_files
from crosscohort.cli import main
from crosscohort.contract.sumstats import read_sumstats


def _write(path, header, rows):
    path.write_text("\t".join(header) + "\n" + "".join("\t".join(map(str, r)) + "\n" for r in rows))
    return path


def _cohorts(tmp_path):
    a = _write(tmp_path / "a.txt", ["SNP", "CHR", "POS", "EA", "NEA", "BETA", "SE"], [
        ("rs1", 1, 100, "A", "G", 0.10, 0.05),
        ("rs2", 1, 200, "C", "T", 0.20, 0.05),
        ("rs3", 1, 300, "A", "C", 0.30, 0.05),
    ])
    # rs3 at another position: one rsID at two places.
    b = _write(tmp_path / "b.txt", ["SNP", "CHR", "POS", "EA", "NEA", "BETA", "SE"], [
        ("rs3", 1, 999, "A", "C", 0.31, 0.05),
    ])
    c = _write(tmp_path / "c.txt", ["SNP", "EA", "NEA", "BETA", "SE"], [
        ("rs1", "G", "A", -0.12, 0.05),   # the other way round from a's
        ("rs2", "C", "T", 0.22, 0.05),
        ("rs3", "A", "C", 0.33, 0.05),    # conflict: removed
        ("rs4", "G", "T", 0.44, 0.05),    # nobody places it: stays marker-only
    ])
    # d has rs2 twice: positioned and marker-only; once placed they are one variant.
    d = _write(tmp_path / "d.txt", ["SNP", "CHR", "POS", "EA", "NEA", "BETA", "SE", "N"], [
        ("rs2", 1, 200, "C", "T", 0.21, 0.05, 900),
        ("rs2", "NA", "NA", "C", "T", 0.25, 0.05, 500),
    ])
    return a, b, c, d


def test_markers__marker_only_rows_take_the_position_other_cohorts_give_their_name(tmp_path):
    a, b, c, d = _cohorts(tmp_path)
    h = harmonise_files([InputSpec("a", a, "auto"), InputSpec("b", b, "auto"),
                         InputSpec("c", c, "auto"), InputSpec("d", d, "auto")])
    assert list(h.tables) == ["a", "b", "c", "d"]  # command-line order kept
    tc = h.tables["c"]
    placed = tc.filter(pl.col("chromosome").is_not_null())
    assert placed.select("rsid", "base_pair_location").rows() == [("rs1", 100), ("rs2", 200)]
    assert placed.get_column("variant_id").to_list() == ["1:100:A:G", "1:200:C:T"]
    # rs1 is G/A in c and A/G in a: byte order makes G the effect allele of both.
    assert placed.filter(pl.col("rsid") == "rs1").get_column("beta").to_list() == [-0.12]
    assert h.tables["a"].filter(pl.col("rsid") == "rs1").get_column("beta").to_list() == [-0.10]
    assert tc.filter(pl.col("chromosome").is_null()).get_column("rsid").to_list() == ["rs4"]
    lc = h.ledgers["c"]
    assert lc.removed["marker_name_at_two_positions"] == 1
    assert lc.changed["position_from_marker_name_join"] == 2
    assert lc.n_in == 4 == lc.n_kept + sum(lc.removed.values())
    # d: its marker-only rs2 lands on its own positioned rs2; the larger N is kept.
    ld = h.ledgers["d"]
    assert h.tables["d"].select("rsid", "n").rows() == [("rs2", 900)]
    assert ld.removed["duplicate"] == 1 and ld.changed["position_from_marker_name_join"] == 0
    assert ld.n_in == 2 == ld.n_kept + sum(ld.removed.values())
    # The positioned cohorts keep their own positions, conflict or not.
    assert h.tables["b"].get_column("base_pair_location").to_list() == [999]


def test_markers__meta_combines_positioned_and_marker_only_rows_once(tmp_path):
    a, b, c, d = _cohorts(tmp_path)
    out = tmp_path / "m.tsv"
    assert main(["meta", "--format", "auto", "--out", str(out), str(a), str(b), str(c)]) == 0
    m = read_sumstats(out, required=())
    rs1 = m.filter(pl.col("rsid") == "rs1")
    assert rs1.height == 1 and rs1.get_column("n_studies").to_list() == [2]
    assert rs1.get_column("direction").to_list() == ["-?-"]
    # rs3: a's and b's rows at their own positions; c's conflicting row is not combined.
    assert sorted(m.filter(pl.col("rsid") == "rs3").get_column("direction").to_list()) == ["-??", "?-?"]
    assert m.filter(pl.col("rsid") == "rs4").get_column("chromosome").to_list() == [None]
    ledgers = json.loads((tmp_path / "m.tsv.harmonise.json").read_text())
    for lg in ledgers:
        assert lg["n_in"] == lg["n_kept"] + sum(lg["removed"].values())


def test_markers__harmonise_out_dir_places_from_cohorts_already_written(tmp_path):
    a, b, c, d = _cohorts(tmp_path)
    out = tmp_path / "h"
    # c first: the positions come from a, written after it.
    assert main(["harmonise", "--out-dir", str(out), f"c={c}", f"a={a}", f"b={b}"]) == 0
    tc = read_sumstats(out / "c.tsv.gz", required=())
    assert tc.filter(pl.col("rsid") == "rs1").get_column("base_pair_location").to_list() == [100]
    led = {lg["cohort"]: lg for lg in json.loads((out / "ledger.json").read_text())}
    assert led["c"]["removed"]["marker_name_at_two_positions"] == 1


# --- per-file column maps (issue 20 item 4) ----------------------------------------------

def test_inputs__each_file_its_own_column_map_in_one_run(tmp_path):
    a = _write(tmp_path / "a.txt", ["SNP", "CHR", "POS", "EA", "NEA", "BETA", "SE", "N"],
               [("rs1", 1, 100, "A", "G", 0.10, 0.05, 1000)])
    # METAL-style names the dictionary does not know, numeric alleles, no N.
    b = _write(tmp_path / "b.txt", ["MRK", "CH", "BP", "AL1", "AL2", "EFF", "ERR"],
               [("rs1", 1, 100, "1", "3", 0.12, 0.05)])
    bmap = tmp_path / "b.yaml"
    bmap.write_text("format: mapped\ncolumns: {marker: MRK, chromosome: CH, base_pair_location: BP,"
                    " effect_allele: AL1, other_allele: AL2, beta: EFF, standard_error: ERR}\n"
                    "numeric_alleles: true\ndefault_n: 777\n")
    out = tmp_path / "h"
    assert main(["harmonise", "--out-dir", str(out), f"a={a}", f"b={b}:{bmap}"]) == 0
    tb = read_sumstats(out / "b.tsv.gz")
    assert tb.select("variant_id", "beta", "n").rows() == [("1:100:A:G", -0.12, 777)]
    led = {lg["cohort"]: lg for lg in json.loads((out / "ledger.json").read_text())}
    assert led["b"]["changed"]["numeric_alleles_decoded"] == 1
    assert led["b"]["changed"]["n_default"] == 1
    # The same in one raw meta call; the map marks the input raw.
    m = tmp_path / "m.tsv"
    assert main(["meta", "--out", str(m), f"a={a}", f"b={b}:{bmap}"]) == 0
    assert read_sumstats(m, required=()).select("n_studies", "n").rows() == [(2, 1777)]


def test_inputs__raw_meta_has_default_n_and_numeric_alleles(tmp_path):
    a = _write(tmp_path / "a.txt", ["SNP", "CHR", "POS", "EA", "NEA", "BETA", "SE"],
               [("rs1", 1, 100, "1", "3", 0.10, 0.05)])
    b = _write(tmp_path / "b.txt", ["SNP", "CHR", "POS", "EA", "NEA", "BETA", "SE"],
               [("rs1", 1, 100, "A", "G", 0.12, 0.05)])
    m = tmp_path / "m.tsv"
    assert main(["meta", "--format", "auto", "--numeric-alleles", "--default-n", "500",
                 "--out", str(m), str(a), str(b)]) == 0
    assert read_sumstats(m, required=()).select("n_studies", "n").rows() == [(2, 1000)]


def test_markers__in_memory_harmonise_runs_the_commands_driver(tmp_path):
    # harmonise() on frames runs the driver harmonise_files runs on files: the same tables
    # and ledgers (before, harmonise() left c's rs1 and rs2 unplaced and had no conflict rule).
    from crosscohort.central.harmonise import harmonise
    from crosscohort.central.harmonise.readers import read_summary_statistics

    paths = dict(zip("abcd", _cohorts(tmp_path), strict=True))
    files = harmonise_files([InputSpec(c, p, "auto") for c, p in paths.items()])
    frames = {c: read_summary_statistics(p).table for c, p in paths.items()}
    mem = harmonise(frames, keep_marker_only=True, sources={c: str(p) for c, p in paths.items()})
    assert list(mem.tables) == list(files.tables) == ["a", "b", "c", "d"]
    for c in paths:
        assert mem.tables[c].equals(files.tables[c]), c
        assert mem.ledgers[c].to_dict() == files.ledgers[c].to_dict(), c
    assert mem.ledgers["c"].changed["position_from_marker_name_join"] == 2
