"""The variant key shared by every central stage: its columns, chromosome codes and packed form.

What identifies one variant once its alleles are aligned, so that harmonisation,
meta-analysis, comparison, clumping and the report join and sort on the same thing:

- :data:`VARIANT_KEY`, the key columns, in sort order;
- :func:`normalise_chromosomes`, numeric chromosome codes (1-22, X=23, Y=24, MT=25) of any labels;
- :data:`FLAG_EAF_FAR` and its default threshold :data:`EAF_MAX_DIFF`;
- :func:`check_cohort_name`, the rule for the cohort ids that key the per-cohort tables;
- :func:`variant_keys`, the key packed into one int64 per row (a hot kernel: sorting,
  de-duplicating and matching on one int64 is several times cheaper than on four
  columns of which two are strings). The integer order is the order of
  ``(chromosome, base_pair_location, other_allele, effect_allele)`` with alleles in
  byte order, so results are identical to a sort on the columns.
"""

from __future__ import annotations

import re

import numpy as np
import polars as pl

from crosscohort.contract.errors import ConfigError
from crosscohort.contract.sumstats import FLAG_COLUMNS, SumstatsError, chrom_code

__all__ = [
    "EAF_MAX_DIFF",
    "FLAG_EAF_FAR",
    "MAX_CHROM",
    "PAIR_BITS",
    "POS_BITS",
    "VARIANT_KEY",
    "allele_pair_rank",
    "check_cohort_name",
    "check_eaf_max_diff",
    "normalise_chromosomes",
    "packed_key",
    "variant_keys",
]

#: Columns that identify one variant once alleles are aligned.
VARIANT_KEY: tuple[str, ...] = ("chromosome", "base_pair_location", "other_allele", "effect_allele")

#: Boolean column: the row's aligned EAF differs from the reference's ALT frequency
#: (in harmonisation) or from the other cohorts' n-weighted EAF (in meta-analysis) by
#: more than the threshold. Flagged and kept, never dropped.
FLAG_EAF_FAR = FLAG_COLUMNS["flag_eaf_far"].name
#: Default threshold of :data:`FLAG_EAF_FAR`: |delta EAF| > 0.2, the allele-frequency
#: outlier check of EasyQC (Winkler et al. 2014, Nat Protoc 9:1192) and GWASinspector.
EAF_MAX_DIFF = 0.2

_COHORT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def check_cohort_name(name: str) -> str:
    """The cohort id, if it is safe as a file name; else :class:`ConfigError`."""
    if not _COHORT_NAME.match(name):
        raise ConfigError(
            f"cohort id {name!r} must match {_COHORT_NAME.pattern} (it names output files)"
        )
    return name


def check_eaf_max_diff(value: float) -> float:
    """The EAF-difference threshold, if it lies in (0, 1]; else :class:`ConfigError`."""
    if not 0.0 < value <= 1.0:
        raise ConfigError(f"eaf_max_diff (--eaf-max-diff) must lie in (0, 1]; got {value}")
    return value


def normalise_chromosomes(labels: pl.Series) -> pl.Series:
    """Numeric chromosome codes (1-22, X=23, Y=24, MT=25) of any labels; null where unknown.

    ``chr1``, ``1``, ``X``, ``chrX`` and ``23`` all map through
    :func:`crosscohort.contract.sumstats.chrom_code`. Only the distinct labels (a few
    dozen) are looked up one by one; the mapping itself is vectorised.
    Unknown labels (``chrUn_gl000220``) become null, for the caller to count.
    """
    if labels.dtype.is_integer():
        codes = labels.cast(pl.Int64)
        return (
            codes.to_frame("c")
            .select(pl.when(pl.col("c").is_between(1, 25)).then(pl.col("c")).alias(labels.name))
            .to_series()
        )
    text = labels.cast(pl.String)
    # Files sorted by chromosome (nearly all) hold a few dozen runs of one label: each run
    # looked up once and its code repeated, without hashing every row. Whether they do is
    # told by the first rows, so an unsorted file does not pay for a run per row.
    head_runs = text.head(1 << 14).rle_id().max()
    runs = text.rle() if head_runs is None or head_runs < 256 else None
    if runs is None:
        # Unsorted: numeric labels (GWAS-SSF's, as most tools write them) parse as integers
        # in one pass; chrom_code's rule for them is 1-25, 26 = MT, anything else unknown.
        # A sign ("+1", which chrom_code does not take) or any other label: the lookup below.
        ints = text.str.to_integer(strict=False)
        if ints.null_count() == text.null_count() and not text.str.starts_with("+").any():
            return ints.to_frame("c").select(
                pl.when(pl.col("c") == 26).then(25)
                .when(pl.col("c").is_between(1, 25)).then(pl.col("c"))
                .cast(pl.Int64).alias(labels.name)
            ).to_series()
    elif runs.len() <= max(1024, text.len() // 64):
        lengths, values = runs.struct.field("len"), runs.struct.field("value")
        run_codes = []
        for label in values.to_list():
            try:
                run_codes.append(None if label is None else chrom_code(label))
            except SumstatsError:
                run_codes.append(None)
        at = np.repeat(np.arange(len(run_codes), dtype=np.int64), lengths.to_numpy())
        return pl.Series(labels.name, run_codes, dtype=pl.Int64).gather(at)
    distinct = text.drop_nulls().unique().to_list()
    codes: list[int | None] = []
    for label in distinct:
        try:
            codes.append(chrom_code(label))
        except SumstatsError:
            codes.append(None)
    # Each label's rank in an Enum of the distinct labels indexes its code: one hash pass.
    rank = text.cast(pl.Enum(distinct)).to_physical()
    return pl.Series(labels.name, codes, dtype=pl.Int64).gather(rank)


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
    if (
        other.dtype != pl.String
        or effect.dtype != pl.String
        or other.null_count()
        or effect.null_count()
    ):
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
