"""The value rules and the duplicate rule (contract/row_rules.py), and the stages that apply them."""

from __future__ import annotations

import math

import polars as pl

from crosscohort.central.harmonise import harmonise
from crosscohort.central.meta import meta_analyse
from crosscohort.contract.row_rules import VALUE_RULES, duplicate_order, value_failures


def _rows(**cols) -> pl.DataFrame:
    n = len(next(iter(cols.values())))
    base = {"chromosome": [1] * n, "base_pair_location": [100 + i for i in range(n)],
            "effect_allele": ["G"] * n, "other_allele": ["A"] * n, "beta": [0.1] * n,
            "standard_error": [0.05] * n, "effect_allele_frequency": [0.3] * n,
            "p_value": [0.04] * n}
    base.update(cols)
    return pl.DataFrame(base, schema_overrides={"n": pl.Int64} if "n" in cols else None)


def test_value_failures__each_rule_catches_its_values_and_allows_the_rest():
    nan, inf = math.nan, math.inf
    df = _rows(beta=[0.1, None, nan, inf, 0.1, 0.1, 0.1, 0.1, 0.1],
               standard_error=[0.05, 0.05, 0.05, 0.05, 0.0, -1.0, inf, None, 0.05],
               effect_allele_frequency=[0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, None],
               n=[10, 10, 10, 10, 10, 10, 10, 10, 0])
    got = df.select(**{r: e for r, e in value_failures(df.columns).items()})
    assert got.get_column("beta").to_list() == [False, True, True, True] + [False] * 5
    assert got.get_column("standard_error").to_list() == [False] * 4 + [True] * 4 + [False]
    assert got.get_column("effect_allele_frequency").to_list() == [False] * 9  # missing EAF allowed
    assert got.get_column("n").to_list() == [False] * 8 + [True]
    assert set(got.columns) == set(VALUE_RULES)
    # p = 0 is an underflow: allowed only beside a finite -log10 p.
    p = _rows(p_value=[0.0, 0.0, None, 1.5], neg_log_10_p_value=[320.0, None, 5.0, 0.1])
    assert p.select(value_failures(p.columns)["p_value"]).to_series().to_list() == \
        [False, True, False, True]


def test_duplicate_order__largest_n_then_smallest_se_then_first_in_file():
    assert duplicate_order(["beta", "n", "standard_error"], row="_r") == (
        ["n", "standard_error", "_r"], [True, False, False])
    assert duplicate_order(["beta", "standard_error"], row="_r") == (
        ["standard_error", "_r"], [False, False])


def test_duplicate_rule__harmonisation_and_meta_analysis_keep_the_row_the_rule_puts_first():
    # One variant four times in one cohort: the rule keeps n=200 (largest n), then of the
    # two with n=200 the SE 0.04 one; the meta-analysis (one cohort: its input) agrees.
    dup = _rows(base_pair_location=[100, 100, 100, 100, 200],
                beta=[0.11, 0.22, 0.33, 0.44, 0.5],
                standard_error=[0.05, 0.06, 0.04, 0.04, 0.05],
                n=[100, 200, 200, 200, 100])
    tie, desc = duplicate_order(dup.columns, row="_row")
    want = (dup.with_row_index("_row").filter(pl.col("base_pair_location") == 100)
            .sort(tie, descending=desc).get_column("beta")[0])
    assert want == 0.33
    h = harmonise({"c": dup})
    assert h.ledgers["c"].removed["duplicate"] == 3
    at = h.tables["c"].filter(pl.col("base_pair_location") == 100)
    assert at.get_column("beta").to_list() == [want]
    m = meta_analyse({"c": dup})
    assert m.ledgers["c"].removed["duplicate"] == 3
    assert m.table.filter(pl.col("base_pair_location") == 100).get_column("beta").to_list() == [want]
