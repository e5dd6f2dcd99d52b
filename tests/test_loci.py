"""Distance-based loci: rows without a p-value never become leads."""

import numpy as np
import polars as pl

from crosscohort.loci import distance_loci


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
