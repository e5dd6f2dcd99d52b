"""The export's --out-dir: only the gate's own earlier output is replaced, and a bundle appears whole.

Item 6 of issue 18: `crosscohort export --out-dir D` used to delete every
.tsv.gz/.json/.yaml/.md already in D (even when the export was blocked), and
`--out-dir .` crashed with a traceback leaving `..staging/` behind.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from crosscohort.central.verify import verify_bundle
from crosscohort.cli import main
from crosscohort.contract.errors import ConfigError, GateError
from crosscohort.tre.gate import export_bundle

DIGEST = "ab" * 32


def _inputs(tmp: Path, *, rsid: str = "rs2") -> tuple[Path, Path]:
    src = tmp / "assoc.tsv"
    pl.DataFrame({
        "chromosome": [1, 1], "base_pair_location": [100, 200], "effect_allele": ["A", "C"],
        "other_allele": ["G", "T"], "beta": [0.1, -0.2], "standard_error": [0.05, 0.06],
        "effect_allele_frequency": [0.3, 0.4], "p_value": [0.04, 0.001], "n": [1000, 990],
        "mac": [600.0, 790.0], "residual_df": [998, 988], "rsid": ["rs1", rsid],
    }).write_csv(src, separator="\t")
    fam = tmp / "c.fam"
    fam.write_text("F1 NA12878 0 0 1 -9\n")
    return src, fam


def _export(tmp: Path, out: Path, *, rsid: str = "rs2") -> Path:
    src, fam = _inputs(tmp, rsid=rsid)
    export_bundle({"ldl": src}, cohort="c1", trait_types={"ldl": "quantitative"}, ids_from=[fam],
                  build="GRCh38", ancestry="EUR", config_digest=DIGEST, out_dir=out)
    return out


def _contents(d: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in d.iterdir()}


def _no_leftovers(parent: Path) -> None:
    hidden = [p.name for p in parent.iterdir() if p.name.startswith(".")]
    assert hidden == [], f"staging left behind: {hidden}"


@pytest.mark.parametrize("blocked", [False, True], ids=["release", "blocked"])
def test_outdir__user_files_of_bundle_types_are_refused_and_untouched(tmp_path: Path, blocked: bool) -> None:
    out = tmp_path / "exports" / "c1"
    out.mkdir(parents=True)
    (out / "notes.md").write_text("my notes\n")
    (out / "config.yaml").write_text("mode: cohort\n")
    (out / "input.tsv.gz").write_bytes(b"\x1f\x8b not mine")
    (out / "audit.json").write_text('{"mine": true}\n')
    before = _contents(out)
    # blocked: a sample ID in the output would block the export; the directory check comes first.
    with pytest.raises(ConfigError, match=r"c1: --out-dir holds 4 file\(s\) the export gate did not write.*"
                                          r"nothing was written or removed"):
        _export(tmp_path, out, rsid="NA12878" if blocked else "rs2")
    assert _contents(out) == before
    _no_leftovers(out.parent)


def test_outdir__earlier_bundle_is_replaced_and_earlier_blocked_audit_too(tmp_path: Path) -> None:
    out = tmp_path / "exports" / "c1"
    with pytest.raises(GateError):
        _export(tmp_path, out, rsid="NA12878")
    assert sorted(p.name for p in out.iterdir()) == ["audit.json", "audit.md"]
    _export(tmp_path, out)  # the blocked audit is the gate's own: replaced by the bundle
    assert verify_bundle(out).rows == {"ldl": 2}
    _export(tmp_path, out)  # and an earlier bundle matching its manifest
    assert verify_bundle(out).rows == {"ldl": 2}
    with pytest.raises(GateError):  # a blocked rerun replaces the earlier bundle by its audit
        _export(tmp_path, out, rsid="NA12878")
    assert json.loads((out / "audit.json").read_text())["status"] == "blocked"
    _no_leftovers(out.parent)


def test_outdir__bundle_file_edited_after_export_is_not_the_gates_to_replace(tmp_path: Path) -> None:
    out = _export(tmp_path, tmp_path / "exports" / "c1")
    with open(out / "audit.md", "a") as fh:
        fh.write("\nChecked by J. Smith, output checker.\n")
    before = _contents(out)
    with pytest.raises(ConfigError, match=r"did not write, e\.g\. \['audit\.md'\]"):
        _export(tmp_path, out)
    assert _contents(out) == before


def test_outdir__blocked_audit_edited_by_hand_is_not_replaced(tmp_path: Path) -> None:
    out = tmp_path / "exports" / "c1"
    with pytest.raises(GateError):
        _export(tmp_path, out, rsid="NA12878")
    (out / "audit.md").write_text("# my own notes under the gate's name\n")
    with pytest.raises(ConfigError, match="did not write"):
        _export(tmp_path, out)
    assert (out / "audit.md").read_text() == "# my own notes under the gate's name\n"


def test_outdir__input_inside_out_dir_is_refused(tmp_path: Path) -> None:
    src, fam = _inputs(tmp_path)
    out = tmp_path / "o"
    out.mkdir()
    inside = out / "assoc.tsv"
    inside.write_bytes(src.read_bytes())
    with pytest.raises(ConfigError, match=r"o: --out-dir holds .*assoc\.tsv, an input of this export"):
        export_bundle({"ldl": inside}, cohort="c1", trait_types={"ldl": "quantitative"}, ids_from=[fam],
                      build="GRCh38", ancestry="EUR", config_digest=DIGEST, out_dir=out)
    assert sorted(p.name for p in out.iterdir()) == ["assoc.tsv"]


@pytest.mark.parametrize("out_dir", [".", "..", "sub/.."])
def test_outdir__working_directory_is_refused_cleanly_by_the_cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, out_dir: str
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "sub").mkdir()
    src, fam = _inputs(work)
    (work / "README.md").write_text("user file\n")
    before = sorted(p.name for p in work.iterdir())
    monkeypatch.chdir(work)
    rc = main(["export", "--cohort", "c1", "--sumstats", "ldl=assoc.tsv", "--trait-type", "ldl=quantitative",
               "--ids-from", "c.fam", "--build", "GRCh38", "--ancestry", "EUR", "--config-digest", DIGEST,
               "--out-dir", out_dir])
    assert rc == 2
    err = capsys.readouterr().err
    assert "working directory or one of its parents" in err and "Traceback" not in err
    assert sorted(p.name for p in work.iterdir()) == before
    _no_leftovers(work)
    _no_leftovers(tmp_path)


def test_outdir__failure_mid_export_leaves_the_earlier_bundle_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = _export(tmp_path, tmp_path / "exports" / "c1")
    before = _contents(out)

    def crash(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr("crosscohort.tre.gate.bundle.scan_released", crash)
    with pytest.raises(RuntimeError, match="disk full"):
        _export(tmp_path, out)
    assert _contents(out) == before
    _no_leftovers(out.parent)


def test_outdir__failed_swap_puts_the_earlier_bundle_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = _export(tmp_path, tmp_path / "exports" / "c1")
    before = _contents(out)
    real_rename = __import__("os").rename

    def rename(src, dst):
        if str(src).endswith(".staging"):
            raise OSError(5, "Input/output error")
        return real_rename(src, dst)

    monkeypatch.setattr("crosscohort.tre.gate.outdir.os.rename", rename)
    with pytest.raises(OSError, match="Input/output error"):
        _export(tmp_path, out)
    assert _contents(out) == before
    _no_leftovers(out.parent)
