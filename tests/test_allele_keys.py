"""allele_pair_rank (byte table for one-byte alleles) against its plain Enum version."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from crosscohort.contract.keys import PAIR_BITS, _allele_pair_rank_enum, allele_pair_rank

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
