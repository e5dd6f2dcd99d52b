"""The report keeps, of each cohort, only the rows its cross-cohort views use (issue 9)."""

from __future__ import annotations

import polars as pl

from crosscohort.central.report.build import _at_positions, _positions_of


def _cohort() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "chromosome": [1, 1, 1, 2, 2],
            "base_pair_location": [100, 100, 200, 100, 300],
            "effect_allele": ["A", "G", "C", "A", "T"],
            "other_allele": ["G", "A", "T", "G", "C"],
            "beta": [0.1, -0.1, 0.2, 0.3, 0.4],
        }
    )


def test_at_positions__keeps_both_allele_orders_at_a_lead_and_nothing_else() -> None:
    leads = pl.DataFrame(
        {
            "chromosome": [1, 2],
            "base_pair_location": [100, 300],
            "effect_allele": ["A", "T"],
            "other_allele": ["G", "C"],
        }
    )
    kept = _at_positions(_cohort(), _positions_of(leads))
    assert sorted(kept.select("chromosome", "base_pair_location", "effect_allele").rows()) == [
        (1, 100, "A"),
        (1, 100, "G"),
        (2, 300, "T"),
    ]
    assert kept.columns == _cohort().columns


def test_at_positions__no_loci_keeps_no_rows_but_the_columns() -> None:
    empty = pl.DataFrame(schema={"chromosome": pl.Int64, "base_pair_location": pl.Int64})
    assert _positions_of(empty) is None
    kept = _at_positions(_cohort(), None)
    assert kept.height == 0 and kept.columns == _cohort().columns


def test_positions_of__string_chromosome_of_loci_matches_integer_cohort_codes() -> None:
    leads = pl.DataFrame({"chromosome": ["2"], "base_pair_location": [100]})
    assert _at_positions(_cohort(), _positions_of(leads))["beta"].to_list() == [0.3]
