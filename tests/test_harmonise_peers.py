"""The peers' own outputs through the product path, number for number.

Files the peer tools printed (tests/data/peers, README there with the exact
commands), or that a test has a peer tool print in ``tmp_path``, are read by
``crosscohort harmonise`` / ``crosscohort meta`` (:func:`crosscohort.cli.main`)
and compared with the values the peer printed: beta (log OR), SE, p, EAF,
N, the effect allele's orientation, and a ledger that counts every row not
kept with its reason.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import polars as pl
import pytest

from crosscohort.cli import main
from crosscohort.contract.sumstats import read_sumstats

PEERS = Path(__file__).parent / "data" / "peers"


def _rows(path: Path) -> list[dict[str, str]]:
    """The peer's printed table as text fields (whitespace-separated, the header's names)."""
    lines = [ln.split() for ln in path.read_text().splitlines() if ln.strip()]
    return [dict(zip(lines[0], f, strict=True)) for f in lines[1:]]


def _harmonise(tmp_path: Path, *inputs: str, options: tuple[str, ...] = ()) -> tuple[dict, dict]:
    """``crosscohort harmonise`` on ``inputs``: (cohort -> table, cohort -> ledger)."""
    out = tmp_path / "h"
    assert main(["harmonise", *options, "--out-dir", str(out), *inputs]) == 0
    ledgers = {lg["cohort"]: lg for lg in json.loads((out / "ledger.json").read_text())}
    return {c: read_sumstats(out / f"{c}.tsv.gz") for c in ledgers}, ledgers


def _check_plink2_values(table: pl.DataFrame, printed: list[dict[str, str]]) -> None:
    """Every kept row carries plink2's printed numbers, oriented on its effect allele."""
    by_id = {r["ID"]: r for r in printed if r.get("TEST", "ADD") == "ADD"}
    for row in table.iter_rows(named=True):
        r = by_id[row["rsid"]]
        assert r["A1"] in (row["effect_allele"], row["other_allele"])
        sign = 1.0 if row["effect_allele"] == r["A1"] else -1.0
        effect = float(r["BETA"]) if "BETA" in r else math.log(float(r["OR"]))
        assert row["beta"] == pytest.approx(sign * effect, rel=1e-12, abs=0)
        assert row["standard_error"] == float(r.get("SE") or r["LOG(OR)_SE"])
        assert row["p_value"] == float(r["P"])
        assert row["n"] == int(r["OBS_CT"])
        if "A1_FREQ" in r:
            f = float(r["A1_FREQ"])
            assert row["effect_allele_frequency"] == pytest.approx(f if sign > 0 else 1 - f,
                                                                  abs=1e-12)


# --- PLINK 2 --glm ---------------------------------------------------------------------------

def test_plink2_errcode__rows_plink2_marks_failed_are_removed_and_counted_per_code(tmp_path):
    # plink2 prints values for UNFINISHED fits (the Firth fallback stopped at its iteration
    # limit: OR 1.64, SE 2.31 for a singleton); they are not estimates and must not be combined.
    path = PEERS / "covar_rows.cad.glm.logistic.hybrid"
    printed = _rows(path)
    tables, ledgers = _harmonise(tmp_path, f"c={path}")
    lg, table = ledgers["c"], tables["c"]
    add = [r for r in printed if r["TEST"] == "ADD"]
    failed = [r for r in add if r["ERRCODE"] != "."]
    assert {r["ERRCODE"] for r in failed} == {"UNFINISHED", "CONST_OMITTED_ALLELE"}
    assert lg["n_in"] == len(printed)
    assert lg["removed"]["not_additive_test"] == len(printed) - len(add)
    for code in ("UNFINISHED", "CONST_OMITTED_ALLELE"):
        assert lg["removed"][f"errcode_{code.lower()}"] == sum(r["ERRCODE"] == code for r in add)
    assert lg["n_kept"] == len(add) - len(failed) == table.height
    assert lg["n_in"] == lg["n_kept"] + sum(lg["removed"].values())
    assert "rs10300674" not in table["rsid"].to_list()
    _check_plink2_values(table, printed)


def _plink2_dummy(plink2: str, tmp_path: Path, *glm: str) -> None:
    """plink2's own dummy cohort (200 people, 40 SNPs, a binary trait) and ``--glm`` on it."""
    import subprocess

    run = dict(cwd=tmp_path, capture_output=True, text=True, check=True)
    # --memory: plink2 otherwise reserves half the machine's RAM, which fails on a busy host.
    subprocess.run([plink2, "--dummy", "200", "40", "0.05", "acgt", "--seed", "3", "--memory", "1024",
                    "--out", "d"], **run)
    subprocess.run([plink2, "--pfile", "d", "--glm", "allow-no-covars", *glm, "--memory", "1024",
                    "--threads", "1", "--out", "o"], **run)


def test_plink2_zs__zstd_compressed_glm_output_reads_as_the_plain_one(plink2, tmp_path):
    # plink2 --dummy 200 40 0.05 acgt --seed 3; plink2 --pfile d --glm allow-no-covars [zs]
    _plink2_dummy(plink2, tmp_path, "cols=+a1freq")
    plain = tmp_path / "plain.glm.logistic.hybrid"
    (tmp_path / "o.PHENO1.glm.logistic.hybrid").rename(plain)
    _plink2_dummy(plink2, tmp_path, "cols=+a1freq", "zs")
    zst = tmp_path / "o.PHENO1.glm.logistic.hybrid.zst"
    assert zst.read_bytes()[:4] == b"\x28\xb5\x2f\xfd"
    tables, ledgers = _harmonise(tmp_path, f"plain={plain}", f"zs={zst}")
    assert tables["zs"].equals(tables["plain"]) and tables["zs"].height > 30
    assert {k: v for k, v in ledgers["zs"].items() if k != "cohort"} == \
        {k: v for k, v in ledgers["plain"].items() if k != "cohort"}
    _check_plink2_values(tables["zs"], _rows(plain))
    # and the raw meta path reads it too
    out = tmp_path / "m.tsv"
    assert main(["meta", "--format", "auto", "--out", str(out), f"zs={zst}"]) == 0
    assert read_sumstats(out).height == tables["zs"].height


def test_plink2_zs__truncated_zstd_stream_is_an_error_naming_the_file(plink2, tmp_path, capsys):
    _plink2_dummy(plink2, tmp_path, "zs")
    zst = tmp_path / "o.PHENO1.glm.logistic.hybrid.zst"
    cut = tmp_path / "cut.glm.logistic.hybrid.zst"
    data = zst.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    assert main(["harmonise", "--out-dir", str(tmp_path / "h"), str(cut)]) == 2
    err = capsys.readouterr().err
    assert str(cut) in err and "zstd" in err and "Traceback" not in err
