"""Per-file column maps as a consortium's analysts write them (``COHORT=FILE:MAP.yaml``).

Mixed inputs through one raw ``crosscohort meta`` call (the product path,
:func:`crosscohort.cli.main`), and the maps' mistakes: each a clear error
naming the map or data file, the key and the rule, never a traceback.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from crosscohort.cli import main
from crosscohort.contract.sumstats import read_sumstats

PEERS = Path(__file__).parent / "data" / "peers"

A_MAP = """columns:
  marker: SNPID
  chromosome: CHR
  base_pair_location: POS
  effect_allele: AL1
  other_allele: AL2
  effect_allele_frequency: FREQ_AL1
  beta: EFFECT
  standard_error: STDERR
  p_value: PVAL
  n: NEFF
"""


def _cohorts(tmp_path: Path) -> dict[str, Path]:
    """Three cohorts' files as consortia receive them, and each one's map."""
    (tmp_path / "a.txt").write_text(
        "SNPID\tCHR\tPOS\tAL1\tAL2\tFREQ_AL1\tEFFECT\tSTDERR\tPVAL\tNEFF\n"
        "rs1\t1\t100\tG\tA\t0.2\t0.1\t0.05\t0.045\t1000\n"
        "rs2\t1\t200\tT\tC\t0.3\tNR\t0.06\t0.6\t1000\n"
        "rs3\t1\t300\tC\tA\t0.4\t0.05\t0.04\t0.21\t-9\n"
    )
    (tmp_path / "a.yaml").write_text(A_MAP + 'missing: ["NR", -9]\n')
    # an OR with its 95% CI and no N column
    (tmp_path / "b.txt").write_text(
        "MARKER CHROM BP A1 A2 OR L95 U95 P\n"
        "rs1 1 100 G A 1.12 1.01 1.24 0.03\n"
        "rs2 1 200 T C 1.02 0.9 1.15 0.75\n"
        "rs3 1 300 A C 0.98 0.88 1.09 0.71\n"
    )
    (tmp_path / "b.yaml").write_text(
        "columns: {marker: MARKER, chromosome: CHROM, base_pair_location: BP, effect_allele: A1,"
        " other_allele: A2, odds_ratio: OR, ci_lower: L95, ci_upper: U95, p_value: P}\n"
        "default_n: 800\n"
    )
    # marker names only, alleles coded 1-4: positions from the reference
    (tmp_path / "c.txt").write_text(
        "rsid\tea\tnea\tbeta\tse\tn\n"
        "rs1\t3\t1\t0.09\t0.06\t500\n"
        "rs2\t4\t2\t0.01\t0.07\t500\n"
        "rs3\t2\t1\t0.02\t0.05\t500\n"
    )
    (tmp_path / "c.yaml").write_text("numeric_alleles: true\n")
    (tmp_path / "ref.tsv").write_text(
        "chromosome\tbase_pair_location\trsid\tref\talt\talt_frequency\n"
        "1\t100\trs1\tA\tG\t0.2\n1\t200\trs2\tC\tT\t0.3\n1\t300\trs3\tA\tC\t0.4\n"
    )
    return {c: tmp_path / f"{c}.txt" for c in "abc"}


def test_consortium_maps__mixed_inputs_one_raw_meta_call(tmp_path):
    files = _cohorts(tmp_path)
    out = tmp_path / "m.tsv"
    args = [f"{c}={p}:{tmp_path / c}.yaml" for c, p in files.items()]
    assert main(["meta", "--reference", str(tmp_path / "ref.tsv"), "--out", str(out), *args]) == 0
    m = {r["rsid"]: r for r in read_sumstats(out).iter_rows(named=True)}
    # a's rs2 has NR for its beta (missing, per its map): b and c only; a's rs3 N is -9
    # (missing, per its map), so rs3's n counts b's default 800 and c's 500 only.
    assert [m[s]["direction"] for s in ("rs1", "rs2", "rs3")] == ["+++", "?++", "+++"]
    assert (m["rs1"]["n"], m["rs2"]["n"], m["rs3"]["n"]) == (2300, 1300, 1300)
    # the IVW of a's 0.1 (SE 0.05), b's ln 1.12 (SE from its CI), c's 0.09 (SE 0.06)
    se_b = (math.log(1.24) - math.log(1.01)) / (2 * 1.959963984540054)
    w = [1 / 0.05**2, 1 / se_b**2, 1 / 0.06**2]
    beta = (w[0] * 0.1 + w[1] * math.log(1.12) + w[2] * 0.09) / sum(w)
    assert m["rs1"]["beta"] == pytest.approx(beta, rel=1e-12)
    assert m["rs1"]["standard_error"] == pytest.approx(sum(w) ** -0.5, rel=1e-12)
    ledgers = {
        lg["cohort"]: lg for lg in json.loads(out.with_name("m.tsv.harmonise.json").read_text())
    }
    for lg in ledgers.values():
        assert lg["n_in"] == 3 == lg["n_kept"] + sum(lg["removed"].values())
    assert ledgers["a"]["removed"]["bad_value_beta"] == 1
    assert ledgers["b"]["changed"]["n_default"] == 3 and ledgers["b"]["changed"]["se_from_ci"] == 3
    assert ledgers["b"]["changed"]["allele_swapped"] == 1  # rs3 printed for A against C
    assert ledgers["c"]["changed"]["numeric_alleles_decoded"] == 3
    assert ledgers["c"]["changed"]["position_from_reference"] == 3


@pytest.mark.parametrize("command", ["meta", "harmonise"])
@pytest.mark.parametrize(
    ("missing", "per_file"), [("[NR, -9]", True), ("[NR, -9]", False), ("NR", True), ("NR", False)]
)
def test_column_map_missing__numbers_and_a_single_token_read_as_written(
    command, missing, per_file, tmp_path
):
    # YAML reads -9 as a number and `missing: NR` as one string: both are the tokens written
    # (before: a number in the run's --columns map was a polars traceback in meta, and NR
    # was read as the two tokens N and R).
    a = _cohorts(tmp_path)["a"]
    if "-9" not in missing:  # the -9 row's N would be a negative count
        a.write_text(a.read_text().replace("\t-9\n", "\t1000\n"))
    amap = tmp_path / "amap.yaml"
    amap.write_text(A_MAP + f"missing: {missing}\n")
    out = tmp_path / "out"
    spec = [f"a={a}:{amap}"] if per_file else ["--columns", str(amap), f"a={a}"]
    target = (
        ["meta", "--out", str(out)] if command == "meta" else ["harmonise", "--out-dir", str(out)]
    )
    assert main([*target, *spec]) == 0
    ledger = out.with_name("out.harmonise.json") if command == "meta" else out / "ledger.json"
    lg = json.loads(ledger.read_text())[0]
    assert lg["removed"]["bad_value_beta"] == 1 and lg["n_kept"] == 2


@pytest.mark.parametrize("per_file", [True, False])
@pytest.mark.parametrize(
    ("line", "rule"),
    [("missing:", "missing: a list of"), ("missing: {NR: 1}", "missing: a list of")],
)
def test_column_map_missing__not_a_list_of_tokens_is_an_error_naming_map_and_key(
    line, rule, per_file, tmp_path, capsys
):
    a = _cohorts(tmp_path)["a"]
    amap = tmp_path / "amap.yaml"
    amap.write_text(A_MAP + line + "\n")
    spec = [f"a={a}:{amap}"] if per_file else ["--columns", str(amap), f"a={a}"]
    assert main(["meta", "--out", str(tmp_path / "m.tsv"), *spec]) == 2
    err = capsys.readouterr().err
    assert f"{amap}: " in err and rule in err and "Traceback" not in err


def _regenie_with_neff(tmp_path: Path) -> Path:
    """REGENIE's example output with an effective N column a cohort added (N_EFF = N - 10)."""
    lines = (PEERS / "regenie_example.regenie").read_text().splitlines()
    out = [lines[0] + " N_EFF"] + [ln + f" {int(ln.split()[7]) - 10}" for ln in lines[1:]]
    path = tmp_path / "r.regenie"
    path.write_text("\n".join(out) + "\n")
    return path


def test_per_file_map_on_a_preset__overrides_one_column_and_keeps_the_rest(tmp_path):
    path = _regenie_with_neff(tmp_path)
    rmap = tmp_path / "r.yaml"
    rmap.write_text("format: regenie\ncolumns: {n: N_EFF}\nnumeric_alleles: true\n")
    out = tmp_path / "h"
    assert main(["harmonise", "--out-dir", str(out), f"r={path}:{rmap}"]) == 0
    t = read_sumstats(out / "r.tsv.gz")
    assert t.height == 30 and set(t["n"].to_list()) == {484}  # REGENIE's N is 494
    assert t["neg_log_10_p_value"].null_count() == 0  # the preset's LOG10P still read


def test_per_file_map_on_a_preset__a_column_the_file_lacks_is_an_error_naming_the_map(
    tmp_path, capsys
):
    # The run's --columns serves files of mixed formats (a preset file with none of its
    # columns reads by its preset alone); a file's own map is that file's alone: a header it
    # names and the file lacks is a mistake (before: ignored, N read from the preset's N).
    path = _regenie_with_neff(tmp_path)
    rmap = tmp_path / "r.yaml"
    rmap.write_text("format: regenie\ncolumns: {n: NEFF}\nnumeric_alleles: true\n")
    assert main(["harmonise", "--out-dir", str(tmp_path / "h"), f"r={path}:{rmap}"]) == 2
    err = capsys.readouterr().err
    assert f"{path}: {rmap} maps n to 'NEFF', which the header lacks" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("colums: {marker: SNPID}\n", "unknown key(s) ['colums']; allowed:"),
        ("default-n: 1000\n", "unknown key(s) ['default-n']; allowed:"),
        (A_MAP.replace("standard_error:", "stderr:"), "unknown field(s) ['stderr'] under columns"),
        ("default_n: -5\n", "default_n must be a positive integer; got -5"),
        ("default_n: lots\n", "default_n must be a positive integer; got 'lots'"),
        ("numeric_alleles: maybe\n", "numeric_alleles must be true or false; got 'maybe'"),
        ("format: regeni\n", "format 'regeni' not one of"),
        ("columns: [SNPID]\n", "'columns' must map field names to header names"),
        ("columns: [marker: \n", "line 2, column 1: "),
    ],
)
def test_per_file_map_mistakes__clear_error_naming_the_map_and_key(text, says, tmp_path, capsys):
    # What already worked when this was written (recorded): each mistake a consortium's
    # analyst makes in a map, refused before any file is read.
    a = _cohorts(tmp_path)["a"]
    amap = tmp_path / "amap.yaml"
    amap.write_text(text)
    assert main(["meta", "--out", str(tmp_path / "m.tsv"), f"a={a}:{amap}"]) == 2
    err = capsys.readouterr().err
    assert f"{amap}: {says}" in err and "Traceback" not in err


def test_test_note__a_renamed_regenie_files_extra_mapped_counts_failed_tests(tmp_path):
    # A cohort's pipeline renamed REGENIE's columns (its own names, EXTRA kept as NOTE): the
    # map names the note column, and a TEST_FAIL row is a failed test as in a .regenie file.
    path = tmp_path / "r.txt"
    path.write_text(
        "SNP CHR BP EA NEA BETA SE P N NOTE\n"
        "rs1 1 100 G A 0.1 0.05 0.045 1000 NA\n"
        "rs2 1 200 T C NA NA NA 1000 TEST_FAIL\n"
        "rs3 1 300 C A 0.05 0.04 0.21 1000 DF=1\n"
    )
    rmap = tmp_path / "r.yaml"
    rmap.write_text("columns: {test_note: NOTE}\n")
    out = tmp_path / "h"
    assert main(["harmonise", "--out-dir", str(out), f"r={path}:{rmap}"]) == 0
    lg = json.loads((out / "ledger.json").read_text())[0]
    assert lg["removed"]["test_failed"] == 1 and lg["removed"]["bad_value_beta"] == 0
    assert lg["n_in"] == 3 == lg["n_kept"] + sum(lg["removed"].values())


@pytest.mark.parametrize(
    ("text", "says"),
    [
        # no mapping for AL1/AL2 (not dictionary names): the fix goes in the file's own map,
        # which replaces --columns for this file (before: "map them with --columns")
        ("columns: {beta: EFFECT}\n", "map them in {amap}"),
        ("columns: {beta: EFFECT, standard_error: EFFECT}\n", "fix in {amap}"),
    ],
)
def test_per_file_map_errors__point_to_the_files_own_map_not_columns(text, says, tmp_path, capsys):
    a = _cohorts(tmp_path)["a"]
    amap = tmp_path / "amap.yaml"
    amap.write_text(text)
    assert main(["meta", "--out", str(tmp_path / "m.tsv"), f"a={a}:{amap}"]) == 2
    err = capsys.readouterr().err
    assert says.format(amap=amap) in err and "--columns" not in err


def test_per_file_map_broken_yaml__one_line_naming_the_maps_line_and_column(tmp_path, capsys):
    # (before: PyYAML's several-line message, its position given in "<unicode string>")
    a = _cohorts(tmp_path)["a"]
    amap = tmp_path / "amap.yaml"
    amap.write_text("columns:\n  beta: EFFECT\n  standard_error: [STDERR\n")
    assert main(["meta", "--out", str(tmp_path / "m.tsv"), f"a={a}:{amap}"]) == 2
    err = capsys.readouterr().err.strip()
    assert f"{amap}: line 4, column 1: " in err and "rule: " in err
    assert "\n" not in err and "<unicode string>" not in err
