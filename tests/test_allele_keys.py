"""The variant key of crosscohort.contract.keys: allele_pair_rank (byte table for one-byte alleles)
against its plain Enum version, the packed key against a sort on the key columns, and the rules
shared with it (cohort ids, the EAF threshold)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from crosscohort.contract.errors import ConfigError
from crosscohort.contract.keys import (
    PAIR_BITS,
    VARIANT_KEY,
    _allele_pair_rank_enum,
    allele_pair_rank,
    check_cohort_name,
    check_eaf_max_diff,
    variant_keys,
)

ALLELES = ["A", "C", "G", "T", "N", "a", "Z", "0", "AC", "ACGT", "GA", "TT", "A" * 40, "é", "ß",
           "\x00", "-", "*"]


def _series(values) -> pl.Series:
    return pl.Series(list(values), dtype=pl.String)


@pytest.mark.parametrize("seed", range(40))
def test_same_ranks_as_the_enum_version(seed):
    rng = np.random.default_rng(seed)
    pool = rng.choice(ALLELES, rng.integers(1, len(ALLELES) + 1), replace=False)
    n = int(rng.integers(0, 300))
    other, effect = _series(rng.choice(pool, n)), _series(rng.choice(pool, n))
    got, want = allele_pair_rank(other, effect), _allele_pair_rank_enum(other, effect)
    assert got.dtype == want.dtype == np.int64
    np.testing.assert_array_equal(got, want)


def test_order_is_byte_order_of_the_pair():
    other = _series(["C", "A", "AC", "A", "T", "AC"])
    effect = _series(["A", "T", "A", "AC", "G", "AC"])
    rank = allele_pair_rank(other, effect)
    pairs = list(zip(other.to_list(), effect.to_list(), strict=True))
    by_rank = [pairs[i] for i in np.argsort(rank, kind="stable")]
    assert by_rank == sorted(pairs, key=lambda p: (p[0].encode(), p[1].encode()))


def test_categoricals_take_the_plain_path():
    other, effect = _series(["A", "AC", "C"]), _series(["G", "T", "T"])
    want = _allele_pair_rank_enum(other, effect)
    np.testing.assert_array_equal(
        allele_pair_rank(other.cast(pl.Categorical), effect.cast(pl.Categorical)), want)


def test_too_many_alleles_rank_the_pair_text():
    # More distinct alleles than sqrt(2^26) = 8192: pairs ranked as text, same as the plain path.
    n = 9000
    other = _series(f"A{i:05d}" for i in range(n))
    effect = _series(["C"] * n)
    assert n * n >= 2**PAIR_BITS
    np.testing.assert_array_equal(allele_pair_rank(other, effect),
                                  _allele_pair_rank_enum(other, effect))


@pytest.mark.parametrize("seed", range(5))
def test_variant_keys__integer_order_is_the_sort_on_the_key_columns(seed):
    rng = np.random.default_rng(seed)
    m = 3000
    df = pl.DataFrame({
        "chromosome": rng.integers(1, 26, m),
        "base_pair_location": rng.integers(0, 2**32, m, dtype=np.int64),
        "other_allele": [ALLELES[i] for i in rng.integers(0, len(ALLELES), m)],
        "effect_allele": [ALLELES[i] for i in rng.integers(0, len(ALLELES), m)],
    })
    df = df.vstack(df.head(200))  # repeated keys get equal integers
    keys = variant_keys(df)
    by_key = df.with_row_index("_r").sort([*VARIANT_KEY, "_r"]).get_column("_r").to_numpy()
    assert np.array_equal(np.argsort(keys, kind="stable"), by_key)
    rows = df.select(VARIANT_KEY).rows()
    assert (keys[:, None] == keys[None, :200]).sum() == sum(rows.count(r) for r in rows[:200])


def test_variant_keys__none_when_a_value_does_not_fit_the_bits():
    df = pl.DataFrame({"chromosome": [1, 32], "base_pair_location": [5, 6],
                       "other_allele": ["A", "C"], "effect_allele": ["G", "T"]})
    assert variant_keys(df) is None  # chromosome 32 > MAX_CHROM
    assert variant_keys(df.with_columns(pl.Series("chromosome", [1, 2]),
                                        pl.Series("base_pair_location", [5, 2**32]))) is None
    assert variant_keys(df.with_columns(pl.Series("chromosome", [1, None], dtype=pl.Int64))) is None


def test_shared_rules__refuse_with_the_rule_and_the_value():
    assert check_cohort_name("eur_1.v2") == "eur_1.v2"
    with pytest.raises(ConfigError, match=r"cohort id '\.\./x' must match .* \(it names output files\)"):
        check_cohort_name("../x")
    assert check_eaf_max_diff(1.0) == 1.0
    with pytest.raises(ConfigError, match=r"eaf_max_diff \(--eaf-max-diff\) must lie in \(0, 1\]; got 0.0"):
        check_eaf_max_diff(0.0)
