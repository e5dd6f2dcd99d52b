"""Packed int64 variant keys: one integer per (chromosome, position, allele pair), in sort order.

A hot kernel kept apart from the rules (:mod:`.align`, :mod:`crosscohort.central.meta.ivw`):
sorting, de-duplicating and matching on one int64 is several times cheaper than on
four columns of which two are strings, and the integer order is the order of
``(chromosome, base_pair_location, other_allele, effect_allele)`` with alleles in
byte order, so results are identical to a sort on the columns.
"""

from __future__ import annotations

import numpy as np
import polars as pl

#: Bits of the key: chromosome (5) | position (32) | allele-pair rank (26).
POS_BITS, PAIR_BITS = 32, 26
#: Largest chromosome code a key can hold.
MAX_CHROM = 31


def allele_pair_rank(other: pl.Series, effect: pl.Series) -> np.ndarray | None:
    """Rank of each (other, effect) allele pair in byte order, as int64; ``None`` if too many.

    Each allele's rank is its place among the sorted distinct alleles of both
    columns, and the pair's rank is ``rank(other) * n + rank(effect)``. With
    too many distinct alleles for that to fit (indel-rich data), the pair text
    itself is ranked; ``None`` when even the distinct pairs exceed the key's bits.

    One-byte alleles (SNPs: nearly every row) are ranked from their byte
    through a 256-entry table, with no hashing of strings; only the longer
    ones go through a :class:`polars.Enum` cast. The ranks are those of
    :func:`_allele_pair_rank_enum`, the plain version (tests compare them).
    """
    if other.dtype != pl.String or effect.dtype != pl.String or other.null_count() \
            or effect.null_count():
        return _allele_pair_rank_enum(other, effect)
    # The byte of a one-byte value; null for longer ones (multi-byte UTF-8 included).
    ob = other.cast(pl.Binary).bin.reinterpret(dtype=pl.UInt8)
    eb = effect.cast(pl.Binary).bin.reinterpret(dtype=pl.UInt8)
    o_long, e_long = ob.is_null(), eb.is_null()
    longer = pl.concat([other.filter(o_long), effect.filter(e_long)]).unique()
    o_byte = ob.fill_null(0).to_numpy()
    e_byte = eb.fill_null(0).to_numpy()
    counts = np.bincount(o_byte, minlength=256) + np.bincount(e_byte, minlength=256)
    counts[0] -= ob.null_count() + eb.null_count()  # the longer ones' stand-in byte
    short = [bytes([b]).decode("ascii") for b in np.flatnonzero(counts)]
    # Sorted by polars, as the plain version sorts: the same order of strings.
    levels = pl.concat([pl.Series(short, dtype=pl.String), longer]).sort()
    n = levels.len()
    if n * n >= 2**PAIR_BITS:
        return _allele_pair_rank_enum(other, effect)
    table = np.zeros(256, dtype=np.int64)
    names = levels.to_list()
    for i, name in enumerate(names):
        if len(name) == 1 and ord(name) < 128:
            table[ord(name)] = i
    o = np.take(table, o_byte)  # take: fancy indexing by uint8 is ten times slower
    e = np.take(table, e_byte)
    if not longer.is_empty():
        enum = pl.Enum(names)
        for ranks, col, mask in ((o, other, o_long), (e, effect, e_long)):
            at = np.flatnonzero(mask.to_numpy())
            if at.size:
                ranks[at] = col.gather(at).cast(enum).to_physical().to_numpy()
    return o * n + e


def _allele_pair_rank_enum(other: pl.Series, effect: pl.Series) -> np.ndarray | None:
    """:func:`allele_pair_rank` by casting both columns to an Enum of the sorted distinct alleles."""
    # Distinct values of each column first: no concatenated copy of both columns.
    levels = pl.concat([other.unique(), effect.unique()]).unique().sort()
    n = levels.len()
    if n * n < 2**PAIR_BITS:
        enum = pl.Enum(levels.to_list())
        o = other.cast(enum).to_physical().to_numpy().astype(np.int64)
        e = effect.cast(enum).to_physical().to_numpy().astype(np.int64)
        return o * n + e
    # The separator sorts below every allele character, so the string order is the pair order.
    pair = pl.select(pl.concat_str([other, effect], separator="\x01")).to_series()
    pairs = pair.unique().sort()
    if pairs.len() >= 2**PAIR_BITS:
        return None
    return pair.cast(pl.Enum(pairs.to_list())).to_physical().to_numpy().astype(np.int64)


def packed_key(chrom: np.ndarray, pos: np.ndarray, pair_rank: np.ndarray) -> np.ndarray:
    """``chrom << 58 | pos << 26 | pair_rank``; the caller checks the ranges (see module bits)."""
    return (
        (chrom.astype(np.int64) << (POS_BITS + PAIR_BITS))
        | (pos.astype(np.int64) << PAIR_BITS)
        | pair_rank
    )


def variant_keys(df: pl.DataFrame) -> np.ndarray | None:
    """Packed key of every row of a frame with non-null ``VARIANT_KEY`` columns, or ``None``.

    ``None`` when a value does not fit the key (chromosome outside 0-31, position
    outside [0, 2^32), too many allele pairs): the caller then sorts the columns.
    """
    chrom, pos = df.get_column("chromosome"), df.get_column("base_pair_location")
    if df.height == 0 or chrom.null_count() or pos.null_count():
        return None
    if not (
        0 <= chrom.min() <= chrom.max() <= MAX_CHROM and 0 <= pos.min() and pos.max() < 2**POS_BITS
    ):
        return None
    rank = allele_pair_rank(df.get_column("other_allele"), df.get_column("effect_allele"))
    if rank is None:
        return None
    return packed_key(chrom.to_numpy(), pos.to_numpy(), rank)
