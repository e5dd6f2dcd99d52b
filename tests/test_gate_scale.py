"""The export gate's memory-bounded paths (issue 9): block-wise identifier scan, one trait at a time."""

from __future__ import annotations

import gzip
from pathlib import Path

import polars as pl
import pytest

from crosscohort.contract.errors import GateError
from crosscohort.tre.gate import export_bundle, identifiers, read_sample_ids, scan_released

DIGEST = "ab" * 32
IDS = [("FAM7", "NA12878"), ("0", "123456"), ("FAM9", "HG00733"), ("FAM9", "HG00734")]


def _fam(tmp: Path) -> Path:
    p = tmp / "cohort.fam"
    p.write_text("".join(f"{f}\t{i}\t0\t0\t1\t-9\n" for f, i in IDS))
    return p


def _bundle_table(tmp: Path, rows: list[tuple[str, str]]) -> Path:
    """A released-looking table whose (variant_id, rsid) rows are ``rows``."""
    d = tmp / "bundle"
    d.mkdir()
    with gzip.open(d / "ldl.tsv.gz", "wt") as fh:
        fh.write("chromosome\tbase_pair_location\tvariant_id\trsid\tbeta\n")
        for i, (vid, rsid) in enumerate(rows):
            fh.write(f"1\t{1000 + i}\t{vid}\t{rsid}\t0.1\n")
    return d


@pytest.mark.parametrize("block", [1, 2, 3, 1_000_000])
def test_scan__id_in_a_later_row_block_is_found_at_its_file_line(
    tmp_path: Path, monkeypatch, block: int
) -> None:
    monkeypatch.setattr(identifiers, "_SCAN_BLOCK_ROWS", block)
    rows = [(f"1:{1000 + i}:G:A", f"rs{i}") for i in range(7)]
    rows[5] = ("1:1005:G:A", "NA12878")  # data row 6 = file line 7
    d = _bundle_table(tmp_path, rows)
    with pytest.raises(
        GateError, match=r"ldl\.tsv\.gz, line 7, column rsid: holds a sample identifier"
    ):
        scan_released(d, read_sample_ids([_fam(tmp_path)]))


@pytest.mark.parametrize("block", [1, 2, 1_000_000])
def test_scan__numeric_id_is_a_hit_in_variant_id_alleles_not_in_its_position(
    tmp_path: Path, monkeypatch, block: int
) -> None:
    monkeypatch.setattr(identifiers, "_SCAN_BLOCK_ROWS", block)
    ids = read_sample_ids([_fam(tmp_path)])
    # Position 123456 equals a numeric sample ID: a typed coordinate, not compared.
    rows = [("1:1000:G:A", "rs1"), ("1:123456:G:A", "rs2"), ("1:1002:G:A", "rs3")]
    assert scan_released(_bundle_table(tmp_path, rows), ids) == ["ldl.tsv.gz"]
    # The same number as an allele field (k >= 2 within its own row) is a hit.
    rows[2] = ("1:1002:G:123456", "rs3")
    other = tmp_path / "again"
    other.mkdir()
    with pytest.raises(GateError, match=r"line 4, column variant_id"):
        scan_released(_bundle_table(other, rows), ids)


def test_export__result_keeps_ledgers_but_not_each_traits_released_rows(tmp_path: Path) -> None:
    df = pl.DataFrame(
        {
            "chromosome": [1, 1, 1],
            "base_pair_location": [100, 200, 300],
            "effect_allele": ["A"] * 3,
            "other_allele": ["G"] * 3,
            "beta": [0.1, 0.2, 0.3],
            "standard_error": [0.05] * 3,
            "effect_allele_frequency": [0.3, 0.3, 0.001],
            "p_value": [0.04] * 3,
            "n": [1000] * 3,
            "mac": [600.0, 600.0, 2.0],
            "residual_df": [990] * 3,
            "rsid": ["rs1", "rs2", "rs3"],
        }
    )
    src = {}
    for t in ("ldl", "hdl"):
        src[t] = tmp_path / f"{t}.tsv"
        df.write_csv(src[t], separator="\t")
    res = export_bundle(
        src,
        cohort="c1",
        trait_types={"ldl": "quantitative", "hdl": "quantitative"},
        ids_from=[_fam(tmp_path)],
        build="GRCh38",
        ancestry="EUR",
        config_digest=DIGEST,
        out_dir=tmp_path / "exports" / "c1",
    )
    for t in ("ldl", "hdl"):
        r = res.traits[t]
        assert (r.ledger.n_in, r.ledger.n_kept, r.suppressed["min_mac"]) == (3, 2, 1)
        assert r.released.height == 0 and "beta" in r.released.columns
        with gzip.open(res.out_dir / f"{t}.tsv.gz", "rt") as fh:
            assert len(fh.read().splitlines()) == 1 + 2
