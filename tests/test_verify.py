"""Central verification of export bundles."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import polars as pl
import pytest

from crosscohort.central.verify import verify_bundle, write_record
from crosscohort.contract.errors import ConfigError, InputError
from crosscohort.tre.gate import export_bundle


def _bundle(tmp: Path, traits=("ldl", "cad")) -> Path:
    fam = tmp / "c.fam"
    fam.write_text("F1 S_1 0 0 1 -9\n")
    paths, types = {}, {}
    for t in traits:
        df = pl.DataFrame({
            "chromosome": [1, 2], "base_pair_location": [100, 200], "effect_allele": ["A", "C"],
            "other_allele": ["G", "T"], "beta": [0.1, -0.2], "standard_error": [0.05, 0.06],
            "effect_allele_frequency": [0.3, 0.4], "p_value": [0.04, 0.001], "n": [1000, 990],
            "mac": [600.0, 790.0], "residual_df": [998, 988],
        })
        if t == "cad":
            df = df.with_columns(pl.lit(400).alias("n_cases"), (pl.col("n") - 400).alias("n_controls"),
                                 pl.lit(200.0).alias("mac_cases"), pl.lit(300.0).alias("mac_controls"))
        paths[t] = tmp / f"{t}.in.tsv"
        df.write_csv(paths[t], separator="\t")
        types[t] = "binary" if t == "cad" else "quantitative"
    out = tmp / "exports" / "c9"
    export_bundle(paths, cohort="c9", trait_types=types, ids_from=[fam], build="GRCh38",
                  ancestry="EUR", config_digest="12" * 32, out_dir=out)
    return out


def test_verify__intact_bundle_gives_record_with_every_file(tmp_path: Path) -> None:
    out = _bundle(tmp_path)
    v = verify_bundle(out)
    assert v.cohort == "c9" and sorted(v.traits) == ["cad", "ldl"]
    assert v.rows == {"ldl": 2, "cad": 2}
    rec = json.loads(write_record(v, tmp_path / "results/verify/c9.json").read_text())
    assert rec["status"] == "ok"
    on_disk = sorted(p.name for p in out.iterdir() if p.name != "manifest.json")
    assert [f["path"] for f in rec["files"]] == on_disk
    for f in rec["files"]:
        assert f["sha256"] == hashlib.sha256((out / f["path"]).read_bytes()).hexdigest()
    assert rec["manifest_sha256"] == hashlib.sha256((out / "manifest.json").read_bytes()).hexdigest()
    assert v.sumstats_path("cad") == out / "cad.tsv.gz"


def test_verify__bundle_without_manifest_is_refused(tmp_path: Path) -> None:
    out = _bundle(tmp_path, traits=("ldl",))
    (out / "manifest.json").unlink()
    with pytest.raises(InputError, match=r"manifest\.json: no manifest"):
        verify_bundle(out)


def test_verify__manifest_path_escaping_the_bundle_is_refused(tmp_path: Path) -> None:
    out = _bundle(tmp_path, traits=("ldl",))
    man = json.loads((out / "manifest.json").read_text())
    man["files"][0]["path"] = "../ldl.in.tsv"
    (out / "manifest.json").write_text(json.dumps(man))
    with pytest.raises(InputError, match="must be a plain file name"):
        verify_bundle(out)


def test_verify__subdirectory_in_bundle_is_refused(tmp_path: Path) -> None:
    out = _bundle(tmp_path, traits=("ldl",))
    (out / "extra").mkdir()
    with pytest.raises(InputError, match="extra: file not listed"):
        verify_bundle(out)


def test_export__rerun_replaces_earlier_bundle_but_refuses_foreign_directory(tmp_path: Path) -> None:
    out = _bundle(tmp_path, traits=("ldl",))
    out2 = _bundle(tmp_path, traits=("ldl",))  # same out-dir: an earlier bundle is replaced
    assert out2 == out and verify_bundle(out).rows == {"ldl": 2}
    foreign = tmp_path / "exports" / "c9" / "raw_genotypes.bed"
    foreign.write_bytes(b"\x6c\x1b\x01")
    with pytest.raises(ConfigError, match="the export gate did not write"):
        _bundle(tmp_path, traits=("ldl",))
