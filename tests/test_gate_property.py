"""Property: for random association tables and thresholds, no released row breaks a rule,
and every suppressed row is counted once (in = released + suppressed).

The rules are re-checked here from the released file with plain Python, independently of
the gate's polars expressions.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
import tempfile
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import polars as pl
from hypothesis import event, given, settings
from hypothesis import strategies as st

from crosscohort.gate import GateRules, export_bundle

ORDER = ["no_estimate", "min_count", "min_mac", "min_mac_group", "min_residual_df", "released_mac"]


@st.composite
def _case(draw):
    binary = draw(st.booleans())
    rules = GateRules(
        min_count=draw(st.integers(0, 30)),
        round_n=draw(st.sampled_from([0, 0, 5, 10])),
        min_mac=float(draw(st.integers(0, 30))),
        min_mac_group=float(draw(st.integers(0, 30))),
        min_residual_df=draw(st.integers(0, 15)),
    )
    n_rows = draw(st.integers(1, 25))
    rows = []
    for i in range(n_rows):
        n = draw(st.one_of(st.integers(0, 60), st.integers(100, 3000)))
        eaf = draw(st.one_of(st.floats(0, 1), st.none()))
        row = {
            "chromosome": 1, "base_pair_location": 100 + i, "effect_allele": "A", "other_allele": "G",
            "beta": draw(st.sampled_from([0.1, -0.3, 1.5, float("nan")])),
            "standard_error": draw(st.floats(0.01, 1)), "p_value": draw(st.floats(0, 1)),
            "effect_allele_frequency": eaf, "rsid": f"rs{i}", "n": draw(st.one_of(st.just(n), st.none())),
            "mac": draw(st.one_of(st.floats(0, 60), st.floats(60, 3000), st.none())),
            "residual_df": draw(st.integers(-1, 3000)),
            "error_code": draw(st.sampled_from([None, None, None, "", "SEPARATION"])),
        }
        if binary:
            cases = draw(st.integers(0, n))
            row.update(n_cases=cases, n_controls=n - cases,
                       mac_cases=draw(st.floats(0, 300)), mac_controls=draw(st.floats(0, 300)))
        rows.append(row)
    return binary, rules, rows


def _round(c: int, r: int) -> int:
    return c if r == 0 else int(Decimal(c / r).quantize(Decimal(1), rounding=ROUND_HALF_UP)) * r


def _small(c, k: int) -> bool:
    return c is None or 0 < c <= k


def _first_failing(row: dict, rules: GateRules, binary: bool) -> str | None:
    """The first rule in ORDER that ``row`` (an input row) breaks, by direct reading of the rules."""
    def bad(x) -> bool:
        return x is None or (isinstance(x, float) and math.isnan(x))

    if row["error_code"] or bad(row["beta"]) or bad(row["standard_error"]) or bad(row["p_value"]):
        return "no_estimate"
    counts = ["n"] + (["n_cases", "n_controls"] if binary else [])
    for c in counts:
        v = row[c]
        if _small(v, rules.min_count) or (v is not None and _small(_round(v, rules.round_n), rules.min_count)):
            return "min_count"
    if bad(row["mac"]) or row["mac"] < rules.min_mac:
        return "min_mac"
    if binary and rules.min_mac_group > 0 and (
        row["mac_cases"] < rules.min_mac_group or row["mac_controls"] < rules.min_mac_group
    ):
        return "min_mac_group"
    if rules.min_residual_df > 0 and row["residual_df"] < rules.min_residual_df:
        return "min_residual_df"
    eaf = row["effect_allele_frequency"]
    if eaf is None or 2 * _round(row["n"], rules.round_n) * min(eaf, 1 - eaf) < rules.min_mac * (1 - 1e-9):
        return "released_mac"
    return None


@settings(max_examples=100, deadline=None)
@given(_case())
def test_gate_property__released_rows_obey_every_rule_and_counts_add_up(case) -> None:
    binary, rules, rows = case
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        src = tmp / "in.tsv"
        pl.DataFrame(rows, schema_overrides={"error_code": pl.String, "n": pl.Int64,
                                             "effect_allele_frequency": pl.Float64,
                                             "mac": pl.Float64}).write_csv(
            src, separator="\t", null_value="NA")
        fam = tmp / "c.fam"
        fam.write_text("F1 S_one 0 0 1 -9\nF2 S_two 0 0 2 -9\n")
        out = tmp / "exports" / "c"
        export_bundle({"t": src}, cohort="c", trait_types={"t": "binary" if binary else "quantitative"},
                      ids_from=[fam], build="GRCh38", ancestry="EUR", config_digest="0f" * 32,
                      out_dir=out, rules=rules)
        with gzip.open(out / "t.tsv.gz", "rt") as fh:
            released = list(csv.DictReader(io.StringIO(fh.read()), delimiter="\t"))
        audit = json.loads((out / "audit.json").read_text())["traits"]["t"]

    event(f"rows released: {'some' if released else 'none'}; binary: {binary}")
    by_rsid = {r["rsid"]: r for r in rows}
    for rel in released:
        src_row = by_rsid[rel["rsid"]]
        assert _first_failing(src_row, rules, binary) is None
        n_rel = int(rel["n"])
        assert n_rel == _round(src_row["n"], rules.round_n)
        for c in ["n"] + (["n_cases", "n_controls"] if binary else []):
            assert not _small(int(rel[c]), rules.min_count)
        eaf = float(rel["effect_allele_frequency"])
        assert 2 * n_rel * min(eaf, 1 - eaf) >= rules.min_mac * (1 - 1e-9)
        assert not ({"mac", "residual_df", "error_code", "mac_cases", "mac_controls"} & set(rel))

    expected = {rule: 0 for rule in ORDER}
    for r in rows:
        reason = _first_failing(r, rules, binary)
        if reason:
            expected[reason] += 1
    suppressed = {r["rule"]: r["rows_suppressed"] for r in audit["rules"]}
    assert suppressed == expected
    assert audit["rows_in"] == len(rows) == len(released) + sum(suppressed.values())
