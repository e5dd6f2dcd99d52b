"""Export gate: rules against plink2's own filters, bundle contents, metadata, CLI."""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import subprocess
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml

from crosscohort.commands import export as export_cmd
from crosscohort.commands import verify as verify_cmd
from crosscohort.contract.errors import ConfigError, GateError, UserError
from crosscohort.contract.sumstats import COLUMNS, INTERNAL_COLUMNS
from crosscohort.tre.gate import GateRules, apply_gate, export_bundle, read_sample_ids
from crosscohort.tre.gate.identifiers import tokens

DIGEST = "ab" * 32


def _run(plink: str, *args: str) -> None:
    subprocess.run([plink, *args], check=True, capture_output=True)


def _read_tsv(path: Path) -> pl.DataFrame:
    return pl.read_csv(path, separator="\t", null_values=["NA"])


def _assoc_from_plink2(plink2: str, tmp: Path, *, n: int, m: int, binary: bool) -> tuple[Path, pl.DataFrame]:
    """A dummy fileset and an association table whose counts come from plink2 --freq counts."""
    prefix = tmp / "d"
    _run(plink2, "--dummy", str(n), str(m), "acgt", *([] if binary else ["scalar-pheno"]),
         "--seed", "7", "--make-bed", "--out", str(prefix))

    def counts(extra: list[str], out: str) -> pl.DataFrame:
        _run(plink2, "--bfile", str(prefix), *extra, "--freq", "counts", "--out", str(tmp / out))
        df = pl.read_csv(tmp / f"{out}.acount", separator="\t")
        return df.select(
            pl.col("ID"),
            pl.min_horizontal("ALT_CTS", pl.col("OBS_CT") - pl.col("ALT_CTS")).cast(pl.Float64).alias("mac"),
            pl.col("ALT_CTS"), pl.col("OBS_CT"),
        )

    overall = counts([], "all")
    bim = pl.read_csv(prefix.with_suffix(".bim"), separator="\t", has_header=False,
                      new_columns=["chrom", "ID", "cm", "pos", "a1", "a2"])
    rng = np.random.default_rng(1)
    tab = overall.join(bim, on="ID").with_columns(
        pl.lit(1, dtype=pl.Int64).alias("chromosome"),
        (pl.col("pos") + 1000).alias("base_pair_location"),
        pl.col("a1").alias("effect_allele"), pl.col("a2").alias("other_allele"),
        (pl.col("ALT_CTS") / pl.col("OBS_CT")).alias("effect_allele_frequency"),
        (pl.col("OBS_CT") // 2).alias("n"),
        pl.col("ID").alias("rsid"),
    )
    tab = tab.with_columns(
        pl.Series("beta", rng.normal(0, 0.1, tab.height)),
        pl.Series("standard_error", rng.uniform(0.05, 0.2, tab.height)),
        pl.Series("p_value", rng.uniform(0, 1, tab.height)),
        (pl.col("n") - 2).alias("residual_df"),
        pl.lit(None, dtype=pl.String).alias("error_code"),
    )
    if binary:
        fam = pl.read_csv(prefix.with_suffix(".fam"), separator="\t", has_header=False,
                          new_columns=["fid", "iid", "f", "m", "sex", "pheno"])
        for label, code in (("cases", 2), ("controls", 1)):
            fam.filter(pl.col("pheno") == code).select("fid", "iid").write_csv(
                tmp / f"{label}.txt", separator="\t", include_header=False)
            grp = counts(["--keep", str(tmp / f"{label}.txt")], label).select(
                "ID", pl.col("mac").alias(f"mac_{label}"))
            tab = tab.join(grp, on="ID")
        n_cases = int((fam["pheno"] == 2).sum())
        tab = tab.with_columns(pl.lit(n_cases).alias("n_cases"), (pl.col("n") - n_cases).alias("n_controls"))
    keep = [c for c in (*COLUMNS, *INTERNAL_COLUMNS) if c in tab.columns]
    path = tmp / "assoc.tsv"
    tab.select(keep).write_csv(path, separator="\t", null_value="NA")
    return prefix, tab


def _snplist(plink2: str, prefix: Path, out: Path, *extra: str) -> set[str]:
    # Oracle: plink2 keeps variants with minor allele count >= --mac.
    _run(plink2, "--bfile", str(prefix), *extra, "--mac", "20", "--write-snplist", "--out", str(out))
    return set(out.with_suffix(".snplist").read_text().split())


@pytest.mark.oracle
def test_gate_mac__released_set_equals_plink2_mac_filter(plink2: str, tmp_path: Path) -> None:
    prefix, tab = _assoc_from_plink2(plink2, tmp_path, n=60, m=400, binary=False)
    res = export_bundle({"height": tmp_path / "assoc.tsv"}, cohort="c1",
                        trait_types={"height": "quantitative"}, ids_from=[prefix.with_suffix(".fam")],
                        build="GRCh38", ancestry="EUR", config_digest=DIGEST,
                        out_dir=tmp_path / "exports" / "c1")
    released = set(_read_tsv(tmp_path / "exports/c1/height.tsv.gz")["rsid"])
    # plink2 --bfile d --mac 20 --write-snplist
    oracle = _snplist(plink2, prefix, tmp_path / "oracle")
    assert 0 < len(oracle) < tab.height  # both kinds of variant are present
    assert released == oracle
    led = res.traits["height"].ledger
    assert led.n_in == tab.height and led.n_kept + sum(led.removed.values()) == led.n_in
    assert led.removed["min_mac"] == tab.height - len(oracle)


@pytest.mark.oracle
def test_gate_mac__derived_mac_without_mac_column_matches_plink2(plink2: str, tmp_path: Path) -> None:
    prefix, tab = _assoc_from_plink2(plink2, tmp_path, n=60, m=300, binary=False)
    no_mac = tmp_path / "nomac.tsv"
    _read_tsv(tmp_path / "assoc.tsv").drop("mac").write_csv(no_mac, separator="\t", null_value="NA")
    export_bundle({"t": no_mac}, cohort="c1", trait_types={"t": "quantitative"},
                  ids_from=[prefix.with_suffix(".fam")], build="GRCh38", ancestry="EUR",
                  config_digest=DIGEST, out_dir=tmp_path / "out")
    released = set(_read_tsv(tmp_path / "out/t.tsv.gz")["rsid"])
    assert released == _snplist(plink2, prefix, tmp_path / "oracle")


@pytest.mark.oracle
def test_gate_mac_group__binary_released_set_equals_plink2_filters_in_cases_and_controls(
    plink2: str, tmp_path: Path
) -> None:
    prefix, tab = _assoc_from_plink2(plink2, tmp_path, n=100, m=300, binary=True)
    res = export_bundle({"cad": tmp_path / "assoc.tsv"}, cohort="c1", trait_types={"cad": "binary"},
                        ids_from=[prefix.with_suffix(".fam")], build="GRCh38", ancestry="EUR",
                        config_digest=DIGEST, out_dir=tmp_path / "out")
    released = set(_read_tsv(tmp_path / "out/cad.tsv.gz")["rsid"])
    # plink2 --bfile d [--keep cases.txt | --keep controls.txt] --mac 20 --write-snplist
    overall = _snplist(plink2, prefix, tmp_path / "o_all")
    cases = _snplist(plink2, prefix, tmp_path / "o_cases", "--keep", str(tmp_path / "cases.txt"))
    controls = _snplist(plink2, prefix, tmp_path / "o_ctrl", "--keep", str(tmp_path / "controls.txt"))
    assert released == overall & cases & controls
    assert res.traits["cad"].ledger.removed["min_mac_group"] == len(overall - (cases & controls))
    meta = yaml.safe_load((tmp_path / "out/cad.meta.yaml").read_text())
    fam_pheno = [ln.split()[5] for ln in prefix.with_suffix(".fam").read_text().splitlines()]
    assert meta["case_count"] == fam_pheno.count("2")
    assert meta["control_count"] == fam_pheno.count("1")
    assert meta["case_control_study"] is True


def _table(rows: list[dict]) -> pl.DataFrame:
    base = {
        "chromosome": 1, "effect_allele": "A", "other_allele": "G", "beta": 0.1,
        "standard_error": 0.05, "p_value": 0.04, "effect_allele_frequency": 0.3, "n": 1000,
        "mac": 600.0, "residual_df": 990, "error_code": None,
    }
    out = []
    for i, r in enumerate(rows):
        row = {**base, "base_pair_location": 1000 + i, "rsid": f"rs{i + 1}", **r}
        out.append(row)
    return pl.DataFrame(out, schema_overrides={"error_code": pl.String})


def test_gate_rules__each_row_counted_under_first_failing_rule() -> None:
    df = _table([
        {},  # released
        {"error_code": "SEPARATION", "n": 10, "mac": 1.0},  # no_estimate first
        {"n": 15, "mac": 2.0},  # min_count before min_mac
        {"mac": 3.0, "residual_df": 2},  # min_mac before min_residual_df
        {"residual_df": 5},
        {"beta": float("nan")},
        {"effect_allele_frequency": 0.005},  # 2*1000*0.005 = 10 < 20 from released values
    ])
    res = apply_gate(df, trait_type="quantitative", rules=GateRules(), cohort="c", trait="t")
    assert res.suppressed == {"no_estimate": 2, "min_count": 1, "min_mac": 1, "min_mac_group": 0,
                              "min_residual_df": 1, "released_mac": 1}
    assert res.released["rsid"].to_list() == ["rs1"]
    assert res.ledger.stage == "export_gate"
    assert set(res.released.columns) <= set(COLUMNS)


@pytest.mark.parametrize("min_count", [20, 10, 5])
def test_gate_count__boundary_reading_is_zero_or_above_threshold(min_count: int) -> None:
    ns = [min_count - 1, min_count, min_count + 1]
    df = _table([{"n": n, "mac": 10_000.0, "effect_allele_frequency": 0.5} for n in ns])
    res = apply_gate(df, trait_type="quantitative", cohort="c", trait="t",
                     rules=GateRules(min_count=min_count, min_mac=0, min_residual_df=0))
    # All of Us "no counts 1-20": min_count itself is withheld, min_count + 1 released.
    assert res.released["n"].to_list() == [min_count + 1]


def test_gate_round__half_up_and_rounding_never_unlocks_a_small_count() -> None:
    # Per-variant counts (release_n="per_variant") need round_n > min_count: here 25 > 20.
    ns = [14, 15, 24, 37, 38, 1012, 1013, 1234]
    df = _table([{"n": n, "effect_allele_frequency": 0.5} for n in ns])
    res = apply_gate(df, trait_type="quantitative", cohort="c", trait="t",
                     rules=GateRules(round_n=25, release_n="per_variant", min_mac=0, min_residual_df=0))
    expected = [int(Decimal(n / 25).quantize(Decimal(1), rounding=ROUND_HALF_UP)) * 25 for n in ns]
    released = {n: e for n, e in zip(ns, expected, strict=True) if n > 20 and e > 20}
    assert res.released["n"].to_list() == list(released.values())
    assert res.released["n"].to_list() == [25, 25, 50, 1000, 1025, 1225]


def test_gate_round__trait_n_is_the_rounded_largest_count_of_the_kept_rows() -> None:
    df = _table([{"n": 1234}, {"n": 1236}, {"n": 1500, "mac": 3.0}, {"n": 15}])
    res = apply_gate(df, trait_type="quantitative", cohort="c", trait="t", rules=GateRules(round_n=5))
    # 1500 fails min_mac, 15 fails min_count: neither sets the trait's n.
    assert res.released["n"].to_list() == [1235, 1235]


def test_gate_rules__per_variant_counts_need_round_n_above_min_count() -> None:
    with pytest.raises(ConfigError, match=r"round_n must exceed min_count.*round_n=10, min_count=20"):
        GateRules(release_n="per_variant", round_n=10)


def test_gate__quantitative_trait_with_case_columns_is_refused() -> None:
    df = _table([{"n_cases": 400, "n_controls": 600}])
    with pytest.raises(ConfigError, match="--trait-type t=binary"):
        apply_gate(df, trait_type="quantitative", rules=GateRules(), cohort="c", trait="t")


def test_gate__binary_without_group_mac_columns_fails_closed() -> None:
    df = _table([{"n_cases": 400, "n_controls": 600}])
    with pytest.raises(GateError, match=r"mac_cases.*min_mac_group"):
        apply_gate(df, trait_type="binary", rules=GateRules(), cohort="c", trait="t")


def _fam(path: Path, ids: list[tuple[str, str]]) -> Path:
    path.write_text("".join(f"{f} {i} 0 0 1 -9\n" for f, i in ids))
    return path


def _export_small(tmp_path: Path, df: pl.DataFrame, **kw) -> Path:
    src = tmp_path / "in.tsv"
    df.write_csv(src, separator="\t", null_value="NA")
    fam = _fam(tmp_path / "c.fam", [("FAM1", "HG00096"), ("FAM2", "HG00097"), ("FAM3", "HG00099")])
    out = tmp_path / "exports" / "c1"
    args = dict(cohort="c1", trait_types={"bmi": "quantitative"}, ids_from=[fam], build="GRCh38",
                ancestry="European", config_digest=DIGEST, out_dir=out)
    args.update(kw)
    export_bundle({"bmi": src}, **args)
    return out


def test_bundle__manifest_lists_every_other_file_with_sha256_and_size(tmp_path: Path) -> None:
    out = _export_small(tmp_path, _table([{}, {"n": 15}]))
    names = sorted(p.name for p in out.iterdir())
    assert names == ["audit.json", "audit.md", "bmi.meta.yaml", "bmi.tsv.gz", "manifest.json"]
    man = json.loads((out / "manifest.json").read_text())
    listed = {f["path"]: f for f in man["files"]}
    assert sorted(listed) == [n for n in names if n != "manifest.json"]
    for name, f in listed.items():
        data = (out / name).read_bytes()
        assert f["sha256"] == hashlib.sha256(data).hexdigest() and f["size"] == len(data)
    assert man["cohort"] == "c1" and man["config_digest"] == DIGEST
    assert man["gate_rules"] == GateRules().to_dict()
    assert man["created"].endswith("Z") and man["crosscohort_version"]
    # the gate's own timestamp is one scan token, so no short numeric ID can match a piece of it
    assert tokens(man["created"]) == [man["created"]]


def test_bundle__sumstats_bytes_are_deterministic_across_runs(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = _export_small(tmp_path / "a", _table([{}, {}]))
    b = _export_small(tmp_path / "b", _table([{}, {}]))
    assert (a / "bmi.tsv.gz").read_bytes() == (b / "bmi.tsv.gz").read_bytes()


def test_bundle__released_columns_are_gwas_ssf_only_and_internal_stripped(tmp_path: Path) -> None:
    out = _export_small(tmp_path, _table([{}]).with_columns(pl.lit("x").alias("notes")))
    with gzip.open(out / "bmi.tsv.gz", "rt") as fh:
        header = fh.readline().rstrip("\n").split("\t")
    assert set(header) <= set(COLUMNS)
    assert not set(header) & set(INTERNAL_COLUMNS)
    audit = json.loads((out / "audit.json").read_text())
    t = audit["traits"]["bmi"]
    assert t["columns_dropped"] == ["notes"]
    assert set(t["columns_internal_stripped"]) == {"mac", "residual_df", "error_code"}


def test_bundle__metadata_counts_are_rounded_and_from_released_rows(tmp_path: Path) -> None:
    df = _table([{"n": 1234}, {"n": 1236}, {"n": 1500, "mac": 3.0}])
    out = _export_small(tmp_path, df, rules=GateRules(round_n=5))
    meta = yaml.safe_load((out / "bmi.meta.yaml").read_text())
    # 1236 rounds to 1235; the 1500 row is suppressed (MAC 3) and must not show as sample_size.
    assert meta["sample_size"] == 1235
    assert meta["genome_assembly"] == "GRCh38" and meta["samples"][0]["sample_ancestry"] == ["European"]
    assert meta["analysis_software"].startswith("crosscohort ")
    data = (out / "bmi.tsv.gz").read_bytes()
    assert meta["data_file_md5sum"] == hashlib.md5(data).hexdigest()
    assert meta["export_gate"]["rows_suppressed"]["min_mac"] == 1


def test_bundle__audit_tables_add_up_and_md_names_each_rule(tmp_path: Path) -> None:
    df = _table([{}, {"n": 15}, {"mac": 3.0}, {"error_code": "CONST_ALLELE"}])
    out = _export_small(tmp_path, df)
    audit = json.loads((out / "audit.json").read_text())
    t = audit["traits"]["bmi"]
    assert t["rows_in"] == 4 and t["rows_released"] == 1
    assert sum(r["rows_suppressed"] for r in t["rules"]) == 3
    md = (out / "audit.md").read_text()
    for r in t["rules"]:
        assert f"| {r['rule']} |" in md
    assert "whole token" in md and audit["status"] == "released"


def test_bundle__qc_ledgers_copied_as_counts(tmp_path: Path) -> None:
    led = tmp_path / "qc.ledger.json"
    led.write_text(json.dumps([{"stage": "qc", "cohort": "c1", "unit": "variants", "n_in": 10,
                                "n_kept": 7, "removed": {"maf": 3}, "changed": {}}]))
    out = _export_small(tmp_path, _table([{}]), qc_ledgers=[led])
    audit = json.loads((out / "audit.json").read_text())
    assert audit["qc_ledgers"][0]["removed"] == {"maf": 3}
    meta = yaml.safe_load((out / "bmi.meta.yaml").read_text())
    assert meta["data_qc"][0]["n_kept"] == 7


@pytest.mark.parametrize(("text", "message"), [
    (b"5", r"qc\.ledger\.json: not a ledger JSON \(TypeError"),
    (b'{"stage": "qc"}', r"qc\.ledger\.json: not a ledger JSON \(TypeError"),
    ('{"stage": "q\xe9"}'.encode("latin-1"), r"qc\.ledger\.json: not a ledger JSON \(UnicodeDecodeError"),
    (b"[]", r"qc\.ledger\.json: holds no ledger"),
])
def test_bundle__a_qc_ledger_that_is_not_a_ledger_is_an_input_error(tmp_path: Path, text, message) -> None:
    """Before: TypeError/UnicodeDecodeError tracebacks from 'export --qc-ledger'; '[]' released no QC counts."""
    led = tmp_path / "qc.ledger.json"
    led.write_bytes(text)
    with pytest.raises(UserError, match=message):
        _export_small(tmp_path, _table([{}]), qc_ledgers=[led])


def test_read_sample_ids__fam_psam_and_headerless_lists(tmp_path: Path) -> None:
    fam = _fam(tmp_path / "a.fam", [("0", "per0"), ("F1", "per1")])
    psam = tmp_path / "b.psam"
    psam.write_text("#IID\tSEX\nq1\t1\n")
    pheno = tmp_path / "p.tsv"
    pheno.write_text("#FID\tIID\ty\nF9\tz9\t1.0\n")
    ids = read_sample_ids([fam, psam, pheno])
    assert set(ids.where) == {"per0", "per1", "F1", "q1", "F9", "z9"}  # "0" is PLINK's missing FID
    assert ids.n_samples == 4


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="crosscohort")
    sub = p.add_subparsers(dest="command", required=True)
    export_cmd.register(sub)
    verify_cmd.register(sub)
    return p


def _cli(argv: list[str]) -> int:
    # Mirrors crosscohort.cli.main for just these two subcommands.
    args = _parser().parse_args(argv)
    try:
        return args.func(args)
    except UserError:
        return 2


def test_cli__export_then_verify_writes_ok_record(tmp_path: Path) -> None:
    src = tmp_path / "in.tsv"
    _table([{}, {"n": 15}]).write_csv(src, separator="\t", null_value="NA")
    fam = _fam(tmp_path / "c.fam", [("F", "S1xx")])
    cfg = tmp_path / "config.yaml"
    cfg.write_text("mode: demo\n")
    out = tmp_path / "exports/c1"
    rc = _cli(["export", "--cohort", "c1", "--sumstats", f"bmi={src}", "--trait-type", "bmi=quantitative",
               "--ids-from", str(fam), "--build", "GRCh38", "--ancestry", "EUR", "--config", str(cfg),
               "--min-count", "10", "--round-n", "0", "--min-mac", "5", "--min-mac-group", "5",
               "--min-residual-df", "3", "--out-dir", str(out)])
    assert rc == 0
    man = json.loads((out / "manifest.json").read_text())
    assert man["config_digest"] == hashlib.sha256(cfg.read_bytes()).hexdigest()
    assert man["gate_rules"]["min_count"] == 10
    rec = tmp_path / "results/verify/c1.json"
    # Exported at min_count 10: the default required rules (min_count 20) refuse it ...
    assert _cli(["verify", "--bundle", str(out), "--out", str(rec)]) == 2 and not rec.exists()
    # ... the study's own (the same thresholds the export used) accept it.
    assert _cli(["verify", "--bundle", str(out), "--out", str(rec), "--cohort", "c1", "--min-count", "10",
                 "--min-mac", "5", "--min-mac-group", "5", "--min-residual-df", "3"]) == 0
    record = json.loads(rec.read_text())
    assert record["status"] == "ok" and record["cohort"] == "c1" and list(record["traits"]) == ["bmi"]
    assert record["traits"]["bmi"]["rows"] == 2  # n = 15 > min_count 10


def test_cli__missing_trait_type_exits_2(tmp_path: Path) -> None:
    src = tmp_path / "in.tsv"
    _table([{}]).write_csv(src, separator="\t", null_value="NA")
    fam = _fam(tmp_path / "c.fam", [("F", "S1")])
    rc = _cli(["export", "--cohort", "c1", "--sumstats", f"bmi={src}", "--ids-from", str(fam),
               "--build", "GRCh38", "--ancestry", "EUR", "--config-digest", DIGEST,
               "--out-dir", str(tmp_path / "o")])
    assert rc == 2


def test_cli__export_release_n_per_variant_releases_rounded_counts(tmp_path: Path) -> None:
    src = tmp_path / "in.tsv"
    _table([{"n": 1000}, {"n": 1040}]).write_csv(src, separator="\t", null_value="NA")
    fam = _fam(tmp_path / "c.fam", [("F", "S1xx")])
    out = tmp_path / "exports/c1"
    rc = _cli(["export", "--cohort", "c1", "--sumstats", f"bmi={src}", "--trait-type", "bmi=quantitative",
               "--ids-from", str(fam), "--build", "GRCh38", "--ancestry", "EUR", "--config-digest", DIGEST,
               "--round-n", "25", "--release-n", "per_variant", "--out-dir", str(out)])
    assert rc == 0
    assert _read_tsv(out / "bmi.tsv.gz")["n"].to_list() == [1000, 1050]
    assert json.loads((out / "manifest.json").read_text())["gate_rules"]["release_n"] == "per_variant"
