"""Adversarial inputs to the export gate and to central verification: each caught, clearly."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import polars as pl
import pytest
import yaml

from crosscohort.central.verify import verify_bundle
from crosscohort.contract.errors import GateError, InputError
from crosscohort.tre.gate import (
    GateRules,
    apply_gate,
    export_bundle,
    read_sample_ids,
    scan_released,
)
from crosscohort.tre.gate.bundle import coarsen_between_traits

DIGEST = "cd" * 32
IDS = [("FAM7", "NA12878"), ("FAM8", "HG00733"), ("0", "123456"), ("0", "12")]


def _fam(tmp: Path) -> Path:
    p = tmp / "cohort.fam"
    p.write_text("".join(f"{f}\t{i}\t0\t0\t1\t-9\n" for f, i in IDS))
    return p


def _table(rows: list[dict]) -> pl.DataFrame:
    base = {
        "chromosome": 1, "effect_allele": "A", "other_allele": "G", "beta": 0.1,
        "standard_error": 0.05, "p_value": 0.04, "effect_allele_frequency": 0.3, "n": 1000,
        "mac": 600.0, "residual_df": 990, "error_code": None,
    }
    out = [{**base, "base_pair_location": 1000 + i, "rsid": f"rs{i + 1}",
            "variant_id": f"1:{1000 + i}:G:A", **r} for i, r in enumerate(rows)]
    return pl.DataFrame(out, schema_overrides={"error_code": pl.String})


def _export(tmp: Path, df: pl.DataFrame, *, trait: str = "ldl", trait_type: str = "quantitative") -> Path:
    src = tmp / "assoc.tsv"
    df.write_csv(src, separator="\t", null_value="NA")
    out = tmp / "exports" / "c1"
    export_bundle({trait: src}, cohort="c1", trait_types={trait: trait_type}, ids_from=[_fam(tmp)],
                  build="GRCh38", ancestry="EUR", config_digest=DIGEST, out_dir=out)
    return out


def _only_blocked_audit(out: Path) -> dict:
    assert sorted(p.name for p in out.iterdir()) == ["audit.json", "audit.md"]
    for p in out.iterdir():
        text = p.read_text()
        for _, iid in IDS[:2]:
            assert iid not in text  # the audit never repeats the identifier
    audit = json.loads((out / "audit.json").read_text())
    assert audit["status"] == "blocked"
    return audit


def test_adversarial__sample_id_planted_in_rsid_blocks_export_naming_file_and_line(tmp_path: Path) -> None:
    df = _table([{}, {}, {"rsid": "NA12878"}])
    with pytest.raises(GateError, match=r"ldl\.tsv\.gz, line 4, column rsid: holds a sample identifier "
                                        r"\(the IID at line 1 of --ids-from file 1\)"):
        _export(tmp_path, df)
    audit = _only_blocked_audit(tmp_path / "exports/c1")
    assert "line 4, column rsid" in audit["reason"]


def test_adversarial__sample_id_as_allele_part_of_variant_id_blocks_export(tmp_path: Path) -> None:
    df = _table([{"variant_id": "1:1000:G:HG00733"}])
    with pytest.raises(GateError, match=r"line 2, column variant_id.*IID at line 2"):
        _export(tmp_path, df)


def test_adversarial__sample_id_in_file_name_blocks_export(tmp_path: Path) -> None:
    with pytest.raises(GateError, match=r"HG00733\.(meta\.yaml|tsv\.gz), file name: holds a sample identifier"):
        _export(tmp_path, _table([{}]), trait="HG00733")
    audit = _only_blocked_audit(tmp_path / "exports/c1")
    assert "<sample-id>.meta.yaml, file name" in audit["reason"]


def test_adversarial__numeric_id_matches_whole_tokens_only(tmp_path: Path) -> None:
    # Position 123456 and rsid rs12 are not sample IDs 123456 and 12; an rsid field "12" is.
    ok = _table([{"base_pair_location": 123456, "variant_id": "1:123456:G:A", "rsid": "rs12"},
                 {"n": 1200, "rsid": "rs123456"}])
    (tmp_path / "a").mkdir()
    out = _export(tmp_path / "a", ok)
    assert (out / "manifest.json").is_file()
    (tmp_path / "b").mkdir()
    with pytest.raises(GateError, match=r"line 3, column rsid"):
        _export(tmp_path / "b", _table([{}, {"rsid": "12"}]))


def test_adversarial__iid_and_genotype_counts_columns_are_stripped_and_reported(tmp_path: Path) -> None:
    df = _table([{}, {}]).with_columns(
        pl.Series("iid", ["NA12878", "HG00733"]), pl.lit("0/1/99").alias("genotype_counts"))
    out = _export(tmp_path, df)
    audit = json.loads((out / "audit.json").read_text())
    assert audit["traits"]["ldl"]["columns_dropped"] == ["iid", "genotype_counts"]
    with gzip.open(out / "ldl.tsv.gz", "rt") as fh:
        text = fh.read()
    assert "iid" not in text.splitlines()[0] and "genotype_counts" not in text
    assert "NA12878" not in text and "HG00733" not in text
    assert "genotype_counts" in (out / "audit.md").read_text()


def test_adversarial__person_id_column_in_a_released_table_is_refused(tmp_path: Path) -> None:
    d = tmp_path / "bundle"
    d.mkdir()
    with gzip.open(d / "x.tsv.gz", "wt") as fh:
        fh.write("IID\tbeta\ns1\t0.1\n")
    with pytest.raises(GateError, match=r"x\.tsv\.gz, line 1: column\(s\) \['IID'\] are named like person"):
        scan_released(d, read_sample_ids([_fam(tmp_path)]))


def test_adversarial__variant_with_mac_3_is_suppressed_and_counted(tmp_path: Path) -> None:
    out = _export(tmp_path, _table([{}, {"mac": 3.0, "rsid": "rs_rare"}]))
    audit = json.loads((out / "audit.json").read_text())
    rules = {r["rule"]: r["rows_suppressed"] for r in audit["traits"]["ldl"]["rules"]}
    assert rules["min_mac"] == 1
    with gzip.open(out / "ldl.tsv.gz", "rt") as fh:
        assert "rs_rare" not in fh.read()


def test_adversarial__binary_variant_with_two_carrier_cases_is_suppressed() -> None:
    df = _table([{"mac_cases": 40.0}, {"mac_cases": 2.0}]).with_columns(
        pl.lit(400).alias("n_cases"), pl.lit(600).alias("n_controls"), pl.lit(560.0).alias("mac_controls"))
    res = apply_gate(df, trait_type="binary", rules=GateRules(), cohort="c1", trait="cad")
    assert res.suppressed["min_mac_group"] == 1
    assert res.released["rsid"].to_list() == ["rs1"]


def test_adversarial__n_15_is_suppressed_as_a_small_count() -> None:
    res = apply_gate(_table([{}, {"n": 15, "effect_allele_frequency": 0.5}]), trait_type="quantitative",
                     rules=GateRules(min_mac=0), cohort="c1", trait="t")
    assert res.suppressed["min_count"] == 1 and res.released.height == 1


def test_adversarial__n_cases_15_is_suppressed_in_binary_trait() -> None:
    df = _table([{}]).with_columns(pl.lit(15).alias("n_cases"), pl.lit(985).alias("n_controls"),
                                   pl.lit(60.0).alias("mac_cases"), pl.lit(540.0).alias("mac_controls"))
    res = apply_gate(df, trait_type="binary", rules=GateRules(), cohort="c1", trait="t")
    assert res.suppressed["min_count"] == 1


def test_adversarial__rounded_n_with_frequency_revealing_small_mac_is_suppressed() -> None:
    # eaf * 2n on the released (rounded) n gives 2000 * 0.004 = 8 < 20, even though mac says 25.
    df = _table([{"n": 1003, "mac": 25.0, "effect_allele_frequency": 0.004}])
    res = apply_gate(df, trait_type="quantitative", rules=GateRules(round_n=10), cohort="c", trait="t")
    assert res.suppressed["released_mac"] == 1


def _bundle(tmp: Path) -> Path:
    return _export(tmp, _table([{}, {}, {}]))


def test_verify__extra_file_in_bundle_is_refused(tmp_path: Path) -> None:
    out = _bundle(tmp_path)
    (out / "notes.md").write_text("hello\n")
    with pytest.raises(InputError, match=r"notes\.md: file not listed in manifest\.json"):
        verify_bundle(out)


def test_verify__sumstats_edited_after_manifest_is_refused(tmp_path: Path) -> None:
    out = _bundle(tmp_path)
    with gzip.open(out / "ldl.tsv.gz", "rt") as fh:
        text = fh.read()
    with gzip.open(out / "ldl.tsv.gz", "wt") as fh:
        fh.write(text.replace("rs2", "rs9"))
    with pytest.raises(InputError, match=r"ldl\.tsv\.gz: (size|SHA-256) .* changed after export"):
        verify_bundle(out)


def test_verify__same_size_edit_is_caught_by_sha256(tmp_path: Path) -> None:
    out = _bundle(tmp_path)
    p = out / "audit.md"
    data = bytearray(p.read_bytes())
    data[2] = ord("X") if data[2] != ord("X") else ord("Y")
    p.write_bytes(bytes(data))
    with pytest.raises(InputError, match=r"audit\.md: SHA-256 [0-9a-f]{64} differs"):
        verify_bundle(out)


def _rewrite_manifest(out: Path, name: str) -> None:
    # An attacker (or a broken copy tool) who also updates the manifest.
    man = json.loads((out / "manifest.json").read_text())
    for f in man["files"]:
        if f["path"] == name:
            data = (out / name).read_bytes()
            f["sha256"], f["size"] = hashlib.sha256(data).hexdigest(), len(data)
    (out / "manifest.json").write_text(json.dumps(man))


def test_verify__truncated_gz_is_refused(tmp_path: Path) -> None:
    out = _bundle(tmp_path)
    p = out / "ldl.tsv.gz"
    p.write_bytes(p.read_bytes()[:-12])
    with pytest.raises(InputError, match="ldl.tsv.gz: size"):
        verify_bundle(out)
    _rewrite_manifest(out, "ldl.tsv.gz")
    with pytest.raises(InputError, match=r"ldl\.tsv\.gz: gzip stream is damaged or truncated"):
        verify_bundle(out)


def test_verify__column_outside_allow_list_is_refused(tmp_path: Path) -> None:
    out = _bundle(tmp_path)
    p = out / "ldl.tsv.gz"
    with gzip.open(p, "rt") as fh:
        lines = fh.read().splitlines()
    lines = [lines[0] + "\tgenotype_counts"] + [ln + "\t1/2/3" for ln in lines[1:]]
    with gzip.open(p, "wt") as fh:
        fh.write("\n".join(lines) + "\n")
    _rewrite_manifest(out, "ldl.tsv.gz")
    with pytest.raises(GateError, match=r"line 1: column\(s\) \['genotype_counts'\] outside the GWAS-SSF allow-list"):
        verify_bundle(out)


def test_verify__small_count_smuggled_into_released_file_is_refused(tmp_path: Path) -> None:
    out = _bundle(tmp_path)
    p = out / "ldl.tsv.gz"
    with gzip.open(p, "rt") as fh:
        text = fh.read()
    with gzip.open(p, "wt") as fh:
        fh.write(text.replace("\t1000\n", "\t12\n", 1))  # n is the last column
    _rewrite_manifest(out, "ldl.tsv.gz")
    with pytest.raises(GateError, match=r"rows breaking gate rules .*'min_count': 1"):
        verify_bundle(out)


def test_verify__missing_listed_file_is_refused(tmp_path: Path) -> None:
    out = _bundle(tmp_path)
    (out / "ldl.meta.yaml").unlink()
    with pytest.raises(InputError, match=r"ldl\.meta\.yaml: listed in manifest\.json but missing"):
        verify_bundle(out)


# ---------------------------------------------------------------- issue 18: release rules

LONG, SHORT, COLON = "NA12878", "FAM7", "AB:1234"


def _fam18(tmp: Path, ids: list[tuple[str, str]] | None = None, name: str = "cohort.fam") -> Path:
    ids = ids or [("FAM7", LONG), ("FAM8", "HG00733"), ("0", COLON), ("0", "123456")]
    p = tmp / name
    p.write_text("".join(f"{f}\t{i}\t0\t0\t1\t-9\n" for f, i in ids))
    return p


def _export18(tmp: Path, df: pl.DataFrame, *, fam: Path | None = None, src_name: str = "assoc.tsv",
              trait: str = "ldl", trait_type: str = "quantitative", **kw) -> Path:
    src = tmp / src_name
    df.write_csv(src, separator="\t", null_value="NA")
    out = tmp / "exports" / "c1"
    export_bundle({trait: src}, cohort="c1", trait_types={trait: trait_type}, ids_from=[fam or _fam18(tmp)],
                  build="GRCh38", ancestry="EUR", config_digest=DIGEST, out_dir=out, **kw)
    return out


def _released_text(out: Path) -> str:
    parts = []
    for p in sorted(out.iterdir()):
        parts.append(p.name)
        if p.name.endswith(".gz"):
            with gzip.open(p, "rt") as fh:
                parts.append(fh.read())
        else:
            parts.append(p.read_text())
    return "\n".join(parts)


@pytest.mark.parametrize("rsid", [f"rs{LONG}", f"{LONG}.1", f"{LONG}-x", f"{SHORT}_{LONG}",
                                  LONG.lower(), f"{SHORT}_x", "x.fam7", COLON, f"rs_{COLON.lower()}"])
def test_adversarial18__identifier_inside_a_longer_text_cell_blocks_export(tmp_path: Path, rsid: str) -> None:
    # Failed before issue 18: whole-token matching let rs<IID>, <IID>.1, <FID>_<IID>, lower
    # case and IDs holding ':' through.
    with pytest.raises(GateError, match=r"ldl\.tsv\.gz, line 3, column rsid: holds a sample identifier"):
        _export18(tmp_path, _table([{}, {"rsid": rsid}, {}]))
    audit = json.loads((tmp_path / "exports/c1/audit.json").read_text())
    assert audit["status"] == "blocked"
    assert audit["reason"].startswith("ldl.tsv.gz, line 3, column rsid: holds a sample identifier")
    text = _released_text(tmp_path / "exports/c1").lower()
    assert rsid.lower() not in text and LONG.lower() not in text


def test_adversarial18__input_and_id_file_names_are_not_released(tmp_path: Path) -> None:
    # Failed before issue 18: audit.json carried "input_file": "<name of the input>" and the
    # --ids-from file names.
    fam = _fam18(tmp_path, name="secret_sample_list.fam")
    out = _export18(tmp_path, _table([{}, {}, {}]), fam=fam, src_name="alice_private_results.tsv")
    text = _released_text(out)
    for word in ("alice_private_results", "secret_sample_list", str(tmp_path)):
        assert word not in text


def test_adversarial18__input_named_after_a_sample_is_not_released_and_not_blocking(tmp_path: Path) -> None:
    out = _export18(tmp_path, _table([{}, {}, {}]), src_name=f"{LONG}.tsv")
    assert (out / "manifest.json").is_file() and LONG not in _released_text(out)


def test_adversarial18__qc_counts_of_people_are_withheld(tmp_path: Path) -> None:
    # Failed before issue 18: call_rate_below_mind: 8 and exact n_in / n_kept of the sample
    # ledger went out in *.meta.yaml and audit.json.
    led = tmp_path / "qc.ledger.json"
    led.write_text(json.dumps([
        {"stage": "qc", "cohort": "c1", "unit": "samples", "n_in": 2483, "n_kept": 2475,
         "removed": {"call_rate_below_mind": 8}, "changed": {}},
        {"stage": "qc", "cohort": "c1", "unit": "variants", "n_in": 5000, "n_kept": 4990,
         "removed": {"hwe": 10}, "changed": {}},
    ]))
    out = _export18(tmp_path, _table([{}, {}, {}]), qc_ledgers=[led])
    text = _released_text(out)
    assert "call_rate_below_mind" not in text and "2483" not in text and "2475" not in text
    meta = yaml.safe_load((out / "ldl.meta.yaml").read_text())
    assert meta["data_qc"][0]["unit"] == "samples" and "withheld" in meta["data_qc"][0]["counts"]
    assert meta["data_qc"][1]["removed"] == {"hwe": 10}  # variants are not people


def _cad(rows: list[tuple[int, int, int]], eaf: float = 0.3) -> pl.DataFrame:
    df = _table([{"n": n, "effect_allele_frequency": eaf, "mac": 1000.0} for n, _, _ in rows])
    return df.with_columns(
        pl.Series("n_cases", [c for _, c, _ in rows]), pl.Series("n_controls", [k for _, _, k in rows]),
        pl.lit(300.0).alias("mac_cases"), pl.lit(700.0).alias("mac_controls"))


def test_adversarial18__per_variant_counts_cannot_be_differenced(tmp_path: Path) -> None:
    # Failed before issue 18: rows 2469 584 1885 / 2469 585 1884 / 2470 584 1886 (the demo's
    # cad bundle) went out as they are: one left-out person, and whether a case, is visible.
    rows = [(2469, 584, 1885), (2469, 585, 1884), (2470, 584, 1886)]
    out = _export18(tmp_path, _cad(rows + [(2470, 585, 1885), (2468, 583, 1885)]), trait="cad",
                    trait_type="binary")
    with gzip.open(out / "cad.tsv.gz", "rt") as fh:
        rel = pl.read_csv(fh.read().encode(), separator="\t")
    assert rel.height == 5
    for c in ("n", "n_cases", "n_controls"):
        assert rel[c].n_unique() == 1  # one N per trait and group
    assert (rel["n"][0], rel["n_cases"][0], rel["n_controls"][0]) == (585 + 1886, 585, 1886)
    meta = yaml.safe_load((out / "cad.meta.yaml").read_text())
    assert (meta["sample_size"], meta["case_count"], meta["control_count"]) == (2471, 585, 1886)


def test_adversarial18__eaf_times_2n_no_longer_gives_the_per_variant_n(tmp_path: Path) -> None:
    # Failed before issue 18: with round_n set, the 17-digit EAF gave n back (eaf * 2n integral).
    ns = [1990, 1993, 1997, 2001, 2004]
    df = _table([{"n": n, "effect_allele_frequency": (311 + i) / (2 * n), "mac": 311.0 + i}
                 for i, n in enumerate(ns)])
    out = _export18(tmp_path, df, rules=GateRules(round_n=10))
    with gzip.open(out / "ldl.tsv.gz", "rt") as fh:
        rel = pl.read_csv(fh.read().encode(), separator="\t")
    for eaf, n_rel in zip(rel["effect_allele_frequency"], rel["n"], strict=True):
        candidates = [m for m in range(n_rel - 30, n_rel + 1) if abs(eaf * 2 * m - round(eaf * 2 * m)) < 1e-6]
        fits = [m for m in range(n_rel - 30, n_rel + 1)
                if any(round(a / (2 * m), 3) == eaf for a in range(round(eaf * 2 * m) - 2, round(eaf * 2 * m) + 3))]
        assert len(str(eaf).split(".")[1]) <= 3  # 10**3 <= 2 (2000 - 20) < 10**4
        assert len(fits) == 31 and len(candidates) < 31  # every n' fits; integrality singles out none


def test_adversarial18__per_person_table_with_allowed_columns_only_is_blocked(tmp_path: Path) -> None:
    # Failed before issue 18: a table of as many rows as samples passed when its columns were
    # all on the allow-list, which is all the gate ever writes.
    ids = [("0", f"P{i:05d}") for i in range(6)]
    with pytest.raises(GateError, match=r"ldl\.tsv\.gz: 6 rows, exactly as many as the cohort's samples"):
        _export18(tmp_path, _table([{}] * 6), fam=_fam18(tmp_path, ids))
    assert "per-person table" in json.loads((tmp_path / "exports/c1/audit.json").read_text())["reason"]


def _numeric_fam(tmp: Path, n: int = 60) -> Path:
    return _fam18(tmp, [("0", str(i)) for i in range(1, n + 1)])


def test_adversarial18__numeric_ids_1_to_n_and_fid_0_export(tmp_path: Path) -> None:
    # Failed before issue 18: the gate matched its own rule text ("2 n min(eaf, 1-eaf)"), its
    # version and dates against IDs 1..N and blocked every such export.
    led = tmp_path / "qc.ledger.json"
    led.write_text(json.dumps([{"stage": "qc", "cohort": "c1", "unit": "variants", "n_in": 12,
                                "n_kept": 10, "removed": {"maf": 2}, "changed": {}}]))
    out = _export18(tmp_path, _table([{}, {}, {}]), fam=_numeric_fam(tmp_path), qc_ledgers=[led])
    assert json.loads((out / "audit.json").read_text())["status"] == "released"


def test_adversarial18__numeric_id_in_text_still_blocks_and_the_audit_keeps_its_line(tmp_path: Path) -> None:
    # Failed before issue 18: the blocked audit's redaction hid the line number ("line <sample-id>").
    with pytest.raises(GateError, match=r"line 4, column rsid"):
        _export18(tmp_path, _table([{}, {}, {"rsid": "x_4"}]), fam=_numeric_fam(tmp_path))
    audit = json.loads((tmp_path / "exports/c1/audit.json").read_text())
    assert audit["reason"].startswith("ldl.tsv.gz, line 4, column rsid: holds a sample identifier "
                                      "(the IID at line 4 of --ids-from file 1)")
    assert "identifier scan" in audit["reason"]


def test_adversarial18__audit_states_the_id_rule_count_rules_and_limits(tmp_path: Path) -> None:
    md = (_export18(tmp_path, _table([{}, {}, {}])) / "audit.md").read_text()
    for heading in ("## Identifier rule", "## Count rules", "## What the gate cannot detect"):
        assert heading in md
    assert "case-insensitive substring" in md and "whole token" in md
    assert "one unit of the last decimal" in md and "withheld" in md


def _released_sizes(out: Path) -> dict[str, dict]:
    sizes = {}
    for meta in out.glob("*.meta.yaml"):
        trait = meta.name.removesuffix(".meta.yaml")
        with gzip.open(out / f"{trait}.tsv.gz", "rt") as fh:
            table = pl.read_csv(fh, separator="\t", null_values=["NA"])
        sizes[trait] = {"meta": yaml.safe_load(meta.read_text()).get("sample_size"),
                        "rows": set(table["n"].to_list())}
    return sizes


def test_adversarial18__sizes_of_two_traits_cannot_be_differenced_to_a_small_count(tmp_path: Path) -> None:
    # Failed before this fix: ldl n 1000 and hdl n 1004 were both released, and their
    # difference (4 people with one phenotype and not the other) could be read off.
    for name, n in (("a.tsv", 1000), ("b.tsv", 1004), ("c.tsv", 1100)):
        _table([{"n": n}] * 3).write_csv(tmp_path / name, separator="\t", null_value="NA")
    out = tmp_path / "exports" / "c1"
    export_bundle({"ldl": tmp_path / "a.tsv", "hdl": tmp_path / "b.tsv", "bmi": tmp_path / "c.tsv"},
                  cohort="c1", trait_types=dict.fromkeys(("ldl", "hdl", "bmi"), "quantitative"),
                  ids_from=[_fam18(tmp_path)], build="GRCh38", ancestry="EUR", config_digest=DIGEST, out_dir=out)
    sizes = _released_sizes(out)
    released = {t: v["meta"] for t, v in sizes.items()}
    assert released == {"ldl": 1000, "hdl": 1000, "bmi": 1100}  # the group's smallest; bmi apart
    assert all(v["rows"] == {v["meta"]} for v in sizes.values())  # rows carry the same size
    # The attack: every difference between released sizes is 0 or more than min_count.
    values = list(released.values())
    assert not any(0 < abs(a - b) <= 20 for a in values for b in values)
    audit = json.loads((out / "audit.json").read_text())
    assert audit["differences_between_traits"] == []
    assert "lowered to the smallest of their group" in (out / "audit.md").read_text()


def test_coarsen_between_traits__chains_and_binary_groups_keep_their_sums() -> None:
    sizes = {
        "a": {"sample_size": 1000, "case_count": None, "control_count": None},
        "b": {"sample_size": 1015, "case_count": None, "control_count": None},  # chained: a-b-c
        "c": {"sample_size": 1030, "case_count": None, "control_count": None},
        "d": {"sample_size": 1200, "case_count": 300, "control_count": 900},
        "e": {"sample_size": 1190, "case_count": 310, "control_count": 880},
    }
    out = coarsen_between_traits(sizes, min_count=20, binary={"d", "e"})
    for kind in ("sample_size", "case_count", "control_count"):
        vals = [v[kind] for v in out.values() if v[kind] is not None]
        assert not any(0 < abs(x - y) <= 20 for x in vals for y in vals), (kind, out)
    for t in ("d", "e"):
        assert out[t]["sample_size"] == out[t]["case_count"] + out[t]["control_count"]
    assert all(out[t][k] <= sizes[t][k] for t in sizes for k in sizes[t] if sizes[t][k] is not None)
    assert [out[t]["sample_size"] for t in "abc"] == [1000, 1000, 1000]


def test_adversarial18__coarsened_sizes_do_not_block_numeric_ids(tmp_path: Path) -> None:
    for name, n in (("a.tsv", 1000), ("b.tsv", 1004)):
        _table([{"n": n}] * 3).write_csv(tmp_path / name, separator="\t", null_value="NA")
    out = tmp_path / "exports" / "c1"
    export_bundle({"ldl": tmp_path / "a.tsv", "hdl": tmp_path / "b.tsv"}, cohort="c1",
                  trait_types=dict.fromkeys(("ldl", "hdl"), "quantitative"), ids_from=[_numeric_fam(tmp_path)],
                  build="GRCh38", ancestry="EUR", config_digest=DIGEST, out_dir=out)
    assert json.loads((out / "audit.json").read_text())["status"] == "released"


def test_adversarial18__numeric_ids_meet_registry_headers_and_coordinate_rsids_without_a_block(
    tmp_path: Path,
) -> None:
    # Failed before this fix (found by the 10M-row benchmark with IDs 1..100000): the header
    # "neg_log_10_p_value" held token 10, and PLINK's rsid for unnamed variants, 1:12:A:C,
    # held tokens 1 and 12.
    df = _table([{"rsid": "1:12:A:C"}, {"rsid": "chr10:4:G:T"}, {}]).with_columns(
        pl.lit(1.4).alias("neg_log_10_p_value"))
    out = _export18(tmp_path, df, fam=_numeric_fam(tmp_path))
    assert json.loads((out / "audit.json").read_text())["status"] == "released"
    # An ID after the coordinates, or in an rsid of another shape, still blocks.
    for rsid in ("1:12:A:C:12", "rs:12"):
        (tmp_path / rsid).mkdir()
        with pytest.raises(GateError, match=r"line 2, column rsid"):
            _export18(tmp_path / rsid, _table([{"rsid": rsid}, {}, {}]), fam=_numeric_fam(tmp_path / rsid))
