"""Property: for random association tables and thresholds, no released row breaks a rule,
every suppressed row is counted once (in = released + suppressed), and the recovery attacks
on the released file fail: differencing per-variant counts, and ``eaf * 2n``.

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

from crosscohort.tre.gate import GateRules, export_bundle

ORDER = ["no_estimate", "min_count", "min_mac", "min_mac_group", "min_residual_df", "released_mac"]


@st.composite
def _case(draw):
    binary = draw(st.booleans())
    min_count = draw(st.integers(0, 30))
    round_n = draw(st.sampled_from([0, 0, 5, 10, 25, 50]))
    per_variant = round_n > min_count and draw(st.booleans())
    rules = GateRules(
        min_count=min_count,
        round_n=round_n,
        release_n="per_variant" if per_variant else "trait",
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


def _row_rule(row: dict, rules: GateRules, binary: bool) -> str | None:
    """The first of the row rules (all but released_mac) that ``row`` breaks, on its true values."""
    def bad(x) -> bool:
        return x is None or (isinstance(x, float) and math.isnan(x))

    if row["error_code"] or bad(row["beta"]) or bad(row["standard_error"]) or bad(row["p_value"]):
        return "no_estimate"
    if any(_small(row[c], rules.min_count) for c in _counts(binary)):
        return "min_count"
    if bad(row["mac"]) or row["mac"] < rules.min_mac:
        return "min_mac"
    if binary and rules.min_mac_group > 0 and (
        row["mac_cases"] < rules.min_mac_group or row["mac_controls"] < rules.min_mac_group
    ):
        return "min_mac_group"
    if rules.min_residual_df > 0 and row["residual_df"] < rules.min_residual_df:
        return "min_residual_df"
    return None


def _counts(binary: bool) -> list[str]:
    return ["n"] + (["n_cases", "n_controls"] if binary else [])


def _released_counts(rows: list[dict], rules: GateRules, binary: bool) -> list[dict]:
    """Each row's released counts: the trait's (largest over rows passing the row rules) or its own."""
    if rules.release_n == "per_variant":
        return [{c: None if r[c] is None else _round(r[c], rules.round_n) for c in _counts(binary)}
                for r in rows]
    passing = [r for r in rows if _row_rule(r, rules, binary) is None]
    top = {c: max((r[c] for r in passing), default=None) for c in _counts(binary)}
    if binary and passing:
        top["n"] = top["n_cases"] + top["n_controls"]
    return [{c: None if v is None else _round(v, rules.round_n) for c, v in top.items()}] * len(rows)


def _decimals(n: int, rules: GateRules) -> int:
    """EAF decimals: the largest d with 10**d <= 2 max(1, n - max(min_count, round_n))."""
    low = max(1, n - max(rules.min_count, rules.round_n))
    d = 0
    while 10 ** (d + 1) <= 2 * low:
        d += 1
    return d


def _round_eaf(eaf: float, d: int) -> float:
    return float(Decimal(repr(eaf)).quantize(Decimal(1).scaleb(-d), rounding=ROUND_HALF_UP))


def _first_failing(row: dict, rel: dict, rules: GateRules, binary: bool) -> str | None:
    """The first rule in ORDER that ``row`` (an input row, released counts ``rel``) breaks."""
    rule = _row_rule(row, rules, binary)
    if rule == "no_estimate":
        return rule
    # A released count of 1..min_count breaks min_count, which comes before the MAC rules in
    # ORDER: with one size per trait, every row then counts under min_count (found by
    # hypothesis: cases 16 rounded to 15 with min_count 15, the other rows failing min_mac).
    # (No row passing the row rules leaves the trait's size unset: each row keeps its own rule.)
    if any(rel[c] is not None and _small(rel[c], rules.min_count) for c in _counts(binary)):
        return "min_count"
    if rule is not None:
        return rule
    eaf = row["effect_allele_frequency"]
    if eaf is None:
        return "released_mac"
    d = _decimals(rel["n"], rules)
    e = _round_eaf(eaf, d)
    if 2 * rel["n"] * min(e, 1 - e) < rules.min_mac * (1 - 1e-9):
        return "released_mac"
    return None


def _fits(eaf: float, n: int, d: int) -> bool:
    """Some integer allele count a gives a / 2n rounding to ``eaf`` at ``d`` decimals."""
    a = round(eaf * 2 * n)
    return any(0 <= x <= 2 * n and abs(x / (2 * n) - eaf) <= 0.5 * 10**-d + 1e-12 for x in (a - 1, a, a + 1))


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
        # More samples than rows, so the per-person rule (rows == samples) stays out of the way.
        fam.write_text("".join(f"F{i} Sample_{i} 0 0 1 -9\n" for i in range(30)))
        out = tmp / "exports" / "c"
        export_bundle({"t": src}, cohort="c", trait_types={"t": "binary" if binary else "quantitative"},
                      ids_from=[fam], build="GRCh38", ancestry="EUR", config_digest="0f" * 32,
                      out_dir=out, rules=rules)
        with gzip.open(out / "t.tsv.gz", "rt") as fh:
            released = list(csv.DictReader(io.StringIO(fh.read()), delimiter="\t"))
        audit = json.loads((out / "audit.json").read_text())["traits"]["t"]

    event(f"rows released: {'some' if released else 'none'}; binary: {binary}; {rules.release_n}")
    by_rsid = {r["rsid"]: (r, rel) for r, rel in zip(rows, _released_counts(rows, rules, binary), strict=True)}
    for out_row in released:
        src_row, rel = by_rsid[out_row["rsid"]]
        assert _first_failing(src_row, rel, rules, binary) is None
        n_rel = int(out_row["n"])
        for c in _counts(binary):
            assert int(out_row[c]) == rel[c]
            assert not _small(int(out_row[c]), rules.min_count)
        eaf = float(out_row["effect_allele_frequency"])
        d = _decimals(n_rel, rules)
        # d decimals at most, within half a unit of the last decimal of the true frequency.
        assert eaf == _round_eaf(eaf, d)
        assert abs(eaf - src_row["effect_allele_frequency"]) <= 0.5 * 10**-d + 1e-12
        assert 2 * n_rel * min(eaf, 1 - eaf) >= rules.min_mac * (1 - 1e-9)
        assert not ({"mac", "residual_df", "error_code", "mac_cases", "mac_controls"} & set(out_row))
        # Attack eaf * 2n: every sample size within max(min_count, round_n) of the released n
        # fits the released EAF, so the row's own n (and a small difference) is not recovered.
        margin = max(rules.min_count, rules.round_n)
        assert all(_fits(eaf, m, d) for m in range(max(1, n_rel - margin), n_rel + 1))
    # Attack by differencing: two released counts differ by 0 or by more than min_count.
    for c in _counts(binary):
        values = sorted({int(r[c]) for r in released})
        if rules.release_n == "trait":
            assert len(values) <= 1
        assert all(b - a > rules.min_count for a, b in zip(values, values[1:], strict=False))

    expected = {rule: 0 for rule in ORDER}
    for r, rel in zip(rows, _released_counts(rows, rules, binary), strict=True):
        reason = _first_failing(r, rel, rules, binary)
        if reason:
            expected[reason] += 1
    suppressed = {r["rule"]: r["rows_suppressed"] for r in audit["rules"]}
    assert suppressed == expected
    assert audit["rows_in"] == len(rows) == len(released) + sum(suppressed.values())
