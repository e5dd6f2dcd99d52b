"""Distance-based loci: rows without a p-value never become leads."""

import numpy as np
import polars as pl

from crosscohort.central.loci import distance_loci


def _table(nlp):
    n = len(nlp)
    return pl.DataFrame(
        {
            "chromosome": [1] * n,
            "base_pair_location": [1_000 + 2_000_000 * i for i in range(n)],
            "neg_log_10_p_value": nlp,
            "p_value": [10.0 ** -v if np.isfinite(v) else float("nan") for v in nlp],
        }
    )


def test_distance_loci__row_without_p_value_is_not_a_locus():
    loci = distance_loci(_table([float("nan"), 9.0, 3.0, 12.0]), threshold=5e-8)
    assert loci.get_column("neg_log_10_p_value").to_list() == [12.0, 9.0]
    assert loci.get_column("n_variants").to_list() == [1, 1]


def test_distance_loci__underflowed_p_with_its_neglog_is_significant():
    df = _table([400.0, 2.0]).with_columns(pl.Series("p_value", [0.0, 0.01]))
    loci = distance_loci(df, threshold=5e-8)
    assert loci.height == 1 and loci.item(0, "neg_log_10_p_value") == 400.0


def test_distance_loci__marker_only_rows_are_loci_of_their_own():
    # rows keyed by marker name alone (no chromosome, no position) cannot be
    # grouped by distance; they must neither crash nor join a positioned locus
    df = pl.DataFrame(
        {
            "chromosome": [1, None, 1, None],
            "base_pair_location": [1_000, None, 2_000, None],
            "rsid": ["a", "m1", "b", "m2"],
            "neg_log_10_p_value": [9.0, 20.0, 8.0, 10.0],
            "p_value": [1e-9, 1e-20, 1e-8, 1e-10],
        },
        schema_overrides={"chromosome": pl.Int64, "base_pair_location": pl.Int64},
    )
    loci = distance_loci(df, threshold=5e-8, window_kb=500)
    assert loci.get_column("rsid").to_list() == ["m1", "m2", "a"]
    assert loci.get_column("n_variants").to_list() == [1, 1, 2]
    assert loci.get_column("start").to_list() == [None, None, 1_000]
    assert loci.get_column("end").to_list() == [None, None, 2_000]
