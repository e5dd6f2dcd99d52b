"""Cohort tables stacked into dense ``(k cohorts, m variants)`` arrays over the union of variants.

The step between reading and combining: each cohort's columns are cut and
typed (:func:`cohort_rows`), the value rules and the duplicate rule applied
and counted per cohort, non-palindromic SNPs reported on both strands made
one variant, and every row keyed by one packed int64 (chromosome, position,
rank of the allele pair) so that a single stable sort gives the output order
and the variant union (:func:`stack_frames`). The estimators
(:mod:`crosscohort.central.meta.estimators`) then work on the arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from crosscohort.central.harmonise.strand import CHANGED as STRAND_CHANGED
from crosscohort.central.harmonise.strand import strand_flips
from crosscohort.contract.errors import ConfigError, InputError
from crosscohort.contract.keys import (
    PAIR_BITS,
    POS_BITS,
    VARIANT_KEY,
    allele_pair_rank,
    check_cohort_name,
    packed_key,
)
from crosscohort.contract.ledger import Ledger
from crosscohort.contract.row_rules import beta_ok, n_ok, standard_error_ok
from crosscohort.contract.sumstats import marker_only

__all__ = [
    "STUDY_COLUMNS",
    "Stacked",
    "check_cohort_order",
    "cohort_rows",
    "meta_input_columns",
    "stack_frames",
    "stack_tables",
    "with_present",
]

#: The columns of a cohort table the meta-analysis reads besides the variant key.
STUDY_COLUMNS = (
    "beta",
    "standard_error",
    "effect_allele_frequency",
    "n",
    "n_cases",
    "n_controls",
    "p_value",
    "neg_log_10_p_value",
    "rsid",
)
_FLOAT_COLUMNS = tuple(c for c in STUDY_COLUMNS if c != "rsid")


def meta_input_columns(*, samplesize: bool = False) -> tuple[str, ...]:
    """The columns :func:`meta_analyse` reads from a cohort table (the others can be dropped)."""
    skip = () if samplesize else ("p_value", "neg_log_10_p_value")
    return (*VARIANT_KEY, *(c for c in STUDY_COLUMNS if c not in skip))

#: Value rules in the order they are applied; a row failing several is counted
#: once, under the first. ``p_value`` and ``n`` apply to the sample-size scheme only.
_RULES = ("bad_value_key", "bad_value_beta", "bad_value_standard_error",
          "bad_value_p_value", "bad_value_n")

# Packed variant key (crosscohort.contract.keys): chromosome (5 bits) | position
# (32 bits) | allele-pair rank (26 bits).
_POS_BITS, _PAIR_BITS = POS_BITS, PAIR_BITS
# Rows keyed by marker name alone (METAL/GWAMA inputs without CHR/POS) take the chromosome
# code no real chromosome has (codes are 1-25) and the rank of their marker name as
# position, so one sort puts them after every positioned row, in marker-name order.
_MARKER_CHROM = 31


@dataclass(frozen=True)
class Stacked:
    """All cohorts' usable rows as dense ``(k, m)`` arrays over the union of variants."""

    variants: pl.DataFrame  # VARIANT_KEY + rsid, sorted, one row per variant
    arrays: dict[str, np.ndarray]  # column -> (k, m) float64, NaN = cohort lacks the variant
    present: dict[str, bool]  # column -> some cohort reports a value (decides the columns)
    present_here: dict[str, bool]  # the same, over these frames only


def cohort_rows(df: pl.DataFrame, *, cohort: str, idx: int, samplesize: bool) -> pl.DataFrame:
    """One cohort's columns, cast to their types, with its index.

    Integer chromosome and position columns keep their width, and optional
    columns the cohort lacks are left out (the concatenation fills them for
    the other cohorts' rows only): at ten million rows a cohort, every
    Int64 or null column is 80 MB.
    """
    missing = [c for c in (*VARIANT_KEY, "beta", "standard_error") if c not in df.columns]
    if missing:
        raise InputError(
            f"cohort {cohort}: missing column(s) {missing} needed for meta-analysis; "
            f"present: {df.columns}"
        )
    # Column by column, not a select: a table read in blocks holds columns of different
    # chunkings, which a select would first copy into one layout (the stacking copies
    # each chromosome's rows into one chunk anyway).
    cols = [
        df.get_column(c) if df.schema[c].is_integer() else df.get_column(c).cast(pl.Int64)
        for c in ("chromosome", "base_pair_location")
    ] + [df.get_column("other_allele").cast(pl.String), df.get_column("effect_allele").cast(pl.String)]
    # Referenced by the value rules whether present or not.
    always = ("rsid", "n", "p_value", "neg_log_10_p_value") if samplesize else ("rsid",)
    try:
        for c in STUDY_COLUMNS:
            dtype = pl.String if c == "rsid" else pl.Float64
            if c in df.columns:
                cols.append(df.get_column(c).cast(dtype))
            elif c in always:
                cols.append(pl.repeat(None, df.height, dtype=dtype, eager=True).alias(c))
    except pl.exceptions.PolarsError as exc:
        raise InputError(
            f"cohort {cohort}: non-numeric value in a numeric column (harmonise first): "
            f"{str(exc).splitlines()[0]}"
        ) from exc
    cols.append(pl.repeat(idx, df.height, dtype=pl.Int32, eager=True).alias("_cohort"))
    return pl.DataFrame(cols)


def stack_tables(
    tables: dict[str, pl.DataFrame], canonical: list[str], *, samplesize: bool
) -> tuple[Stacked, dict[str, Ledger]]:
    """Value rules, de-duplication and the variant union of all cohorts in one sort.

    Every cohort's rows are concatenated (one chunk per column), checked (reasons
    counted per cohort), keyed by one packed int64 per variant (chromosome,
    position, rank of the allele pair in byte order) and arg-sorted once,
    stably: the sort order is the output order, duplicates are neighbours and
    variant indices a running count. Only the int64 keys move; the value
    columns are scattered straight from input order into the dense arrays.
    """
    frames = [cohort_rows(tables[c], cohort=c, idx=i, samplesize=samplesize)
              for i, c in enumerate(canonical)]
    return stack_frames(frames, [tables[c].height for c in canonical], canonical,
                         samplesize=samplesize)


def _strand_across_cohorts(long: pl.DataFrame, key: np.ndarray, order: np.ndarray,
                           cohort_idx: np.ndarray, k: int):
    """Non-palindromic SNPs reported on both strands made one variant (harmonise/strand.py).

    Only sites holding more than one allele pair (neighbours in the sorted keys
    with one site and two keys) are looked at. Returns ``long``, ``key`` and
    ``order`` (recomputed when a row was complemented) and the rows complemented
    per cohort.
    """
    flipped = np.zeros(k, dtype=np.int64)
    ks = key[order]
    site = ks >> _PAIR_BITS
    multi = (site[1:] == site[:-1]) & (ks[1:] != ks[:-1])
    if not multi.any():
        return long, key, order, flipped
    sites = np.unique(site[1:][multi])
    lo, hi = np.searchsorted(site, sites, "left"), np.searchsorted(site, sites, "right")
    sel = np.concatenate([np.arange(a, b) for a, b in zip(lo, hi, strict=True)])
    rows = order[sel]
    flip, new_o, new_e, swapped = strand_flips(
        long.get_column("other_allele").gather(rows), long.get_column("effect_allele").gather(rows),
        site[sel])
    if flip.size == 0:
        return long, key, order, flipped
    at = rows[flip]
    cols = {"other_allele": long.get_column("other_allele").scatter(at, new_o),
            "effect_allele": long.get_column("effect_allele").scatter(at, new_e)}
    long = long.with_columns(**cols)
    neg = at[swapped]
    if neg.size:
        mask = np.zeros(long.height, dtype=bool)
        mask[neg] = True
        m = pl.Series("_neg", mask)
        long = long.with_columns(
            pl.when(m).then(-pl.col("beta")).otherwise(pl.col("beta")).alias("beta"),
            *[pl.when(m).then(1.0 - pl.col(c)).otherwise(pl.col(c)).alias(c)
              for c in ("effect_allele_frequency",) if c in long.columns])
    flipped += np.bincount(cohort_idx[at], minlength=k)
    rank = allele_pair_rank(long.get_column("other_allele"), long.get_column("effect_allele"))
    if rank is None:
        raise InputError(f"more than {2**_PAIR_BITS} distinct allele pairs; cannot key variants")
    key = ((key >> _PAIR_BITS) << _PAIR_BITS) | rank
    return long, key, np.argsort(key, kind="stable"), flipped


def stack_frames(
    frames: list[pl.DataFrame],
    n_in: list[int],
    canonical: list[str],
    *,
    samplesize: bool,
    present: dict[str, bool] | None = None,
) -> tuple[Stacked, dict[str, Ledger]]:
    """:func:`stack_tables` of frames already cut by :func:`cohort_rows` (one per cohort, in order).

    ``n_in`` are the cohorts' row counts for the ledgers. ``present`` (column ->
    some cohort reports it, over the whole input) fixes which columns the
    result carries, so that every chromosome of a per-chromosome run gets the
    columns the whole-table run would; by default it is read off ``frames``.
    :attr:`Stacked.present_here` is always what ``frames`` themselves hold.
    """
    # Integer key columns of different widths across cohorts: one common width for the concat.
    for c in ("chromosome", "base_pair_location"):
        widths = {f.schema[c] for f in frames}
        if len(widths) > 1:
            frames = [f.with_columns(pl.col(c).cast(pl.Int64)) for f in frames]
    # One chunk per column: the gathers and to_numpy below then neither walk chunks nor copy
    # (one copy of the part here is cheaper than their chunked versions; benchmarks/README.md).
    long = pl.concat(frames, how="diagonal", rechunk=True)
    del frames
    present_here = {c: c in long.columns and bool(long.get_column(c).null_count() < long.height)
                    for c in STUDY_COLUMNS}
    if present is None:
        present = present_here

    pos, chrom = pl.col("base_pair_location"), pl.col("chromosome")
    nlp = _neglog10p_expr()
    positioned_ok = chrom.is_between(0, _MARKER_CHROM - 1) & pos.is_between(0, 2**_POS_BITS - 1)
    # The rules in order (1-5, as _RULES); a row failing several counts under the first.
    rules = [
        pl.col("other_allele").is_not_null() & pl.col("effect_allele").is_not_null()
        & (marker_only() | positioned_ok).fill_null(False),
        beta_ok().fill_null(False),
        standard_error_ok().fill_null(False),
    ]
    if samplesize:
        # -log10 p here is the expression that falls back on p_value (_neglog10p_expr); n must
        # also be finite, as a weight.
        rules += [((nlp >= 0) & nlp.is_finite()).fill_null(False),
                  (n_ok() & pl.col("n").is_finite()).fill_null(False)]
    cohort_idx = long.get_column("_cohort").to_numpy().astype(np.int64)
    k = len(canonical)
    width = len(_RULES) + 1
    # Usually every row passes: one reduction says so, without the per-row reason chain.
    if long.select(pl.all_horizontal(rules).all()).item():
        removed = np.zeros((k, width), dtype=np.int64)
        removed[:, 0] = np.bincount(cohort_idx, minlength=k)
    else:
        reason = pl.when(~rules[0]).then(1)
        for code, rule in enumerate(rules[1:], start=2):
            reason = reason.when(~rule).then(code)
        bad = long.select(reason.otherwise(0).cast(pl.Int8)).to_series()
        # One bincount over (cohort, rule) cells: np.add.at is much slower at 10^7 rows.
        removed = np.bincount(cohort_idx * width + bad.to_numpy().astype(np.int64),
                              minlength=k * width).reshape(k, width)
        if removed[:, 1:].any():
            long = long.filter(bad == 0)
            cohort_idx = long.get_column("_cohort").to_numpy().astype(np.int64)

    chrom_np = long.get_column("chromosome").fill_null(_MARKER_CHROM).to_numpy().astype(np.int64)
    pos_np = long.get_column("base_pair_location").fill_null(0).to_numpy().astype(np.int64)
    mo = chrom_np == _MARKER_CHROM
    if mo.any():
        names = long.get_column("rsid").filter(pl.Series(mo))
        levels = names.unique().sort()
        if levels.len() >= 2**_POS_BITS:
            raise InputError(f"more than {2**_POS_BITS} distinct marker names; cannot key variants")
        pos_np[mo] = names.cast(pl.Enum(levels.to_list())).to_physical().to_numpy()
    rank = allele_pair_rank(long.get_column("other_allele"), long.get_column("effect_allele"))
    if rank is None:
        raise InputError(f"more than {2**_PAIR_BITS} distinct allele pairs; cannot key variants")
    key = packed_key(chrom_np, pos_np, rank)
    del rank
    del chrom_np, pos_np, mo
    # Stable: within a key, rows stay in cohort order, then file order.
    order = np.argsort(key, kind="stable")
    long, key, order, flipped = _strand_across_cohorts(long, key, order, cohort_idx, k)
    ks, cs = key[order], cohort_idx[order]
    n_dup = np.zeros(k, dtype=np.int64)
    if ks.size > 1:
        dup = np.zeros(ks.size, dtype=bool)
        dup[1:] = (ks[1:] == ks[:-1]) & (cs[1:] == cs[:-1])
        if dup.any():
            # Rare: resolve only the groups with duplicates. Same rule as harmonisation:
            # largest n, then smallest SE, then first in file.
            in_group = dup.copy()
            in_group[:-1] |= dup[1:]
            rows = order[in_group]
            # Within a cohort, the row's place in ``long`` is its place in the file.
            by = ["_key", "_cohort", *(["n"] if "n" in long.columns else []), "standard_error",
                  "_row"]
            sub = long[rows].with_columns(pl.Series("_key", ks[in_group]),
                                          pl.Series("_i", np.flatnonzero(in_group)),
                                          pl.Series("_row", rows)).sort(
                by, descending=[c == "n" for c in by], nulls_last=True)
            loser = ((sub.get_column("_key") == sub.get_column("_key").shift(1))
                     & (sub.get_column("_cohort") == sub.get_column("_cohort").shift(1))
                     ).fill_null(False)
            drop = sub.filter(loser)
            np.add.at(n_dup, drop.get_column("_cohort").to_numpy().astype(np.int64), 1)
            keep = np.ones(ks.size, dtype=bool)
            keep[drop.get_column("_i").to_numpy()] = False
            order, ks, cs = order[keep], ks[keep], cs[keep]

    ledgers: dict[str, Ledger] = {}
    for i, cohort in enumerate(canonical):
        lg = Ledger(stage="meta", cohort=cohort, n_in=int(n_in[i]))
        for code, rule in enumerate(_RULES, start=1):
            if code <= 3 or samplesize:
                lg.remove(rule, int(removed[i, code]))
        lg.remove("duplicate", int(n_dup[i]))
        lg.change(STRAND_CHANGED, int(flipped[i]))
        lg.n_kept = int(removed[i, 0] - n_dup[i])
        ledgers[cohort] = lg.check()

    first = np.ones(ks.size, dtype=bool)
    first[1:] = ks[1:] != ks[:-1]
    vi_sorted = np.cumsum(first) - 1
    m = int(first.sum())
    vi = np.full(long.height, -1, dtype=np.int64)  # variant of each input row; -1 = duplicate
    vi[order] = vi_sorted
    first_rows = order[first]
    variants = long.select(*VARIANT_KEY)[first_rows].with_columns(  # 4 columns, not all
        pl.col("chromosome").cast(pl.Int64), pl.col("base_pair_location").cast(pl.Int64))
    wanted = _wanted(present, samplesize=samplesize)
    # Each cohort's rows are one contiguous block of ``long`` (concatenation order),
    # so a 1-D scatter per cohort fills its row of the (k, m) arrays.
    bounds = np.searchsorted(cohort_idx, np.arange(k + 1))
    blocks = []
    for j in range(k):
        vj = vi[bounds[j]:bounds[j + 1]]
        keep = vj >= 0
        blocks.append((vj, None if keep.all() else keep))
    arrays: dict[str, np.ndarray] = {}
    for c in wanted:
        arr = np.full((k, m), np.nan)
        if c not in long.columns:  # present elsewhere in the input, not in this part
            arrays[c] = arr
            continue
        vals = long.get_column(c).to_numpy()  # float64, null -> NaN
        for j, (vj, keep) in enumerate(blocks):
            vals_j = vals[bounds[j]:bounds[j + 1]]
            if keep is None:
                arr[j, vj] = vals_j
            else:
                arr[j, vj[keep]] = vals_j[keep]
        arrays[c] = arr
    if present["rsid"] and m:
        # The first cohort (in sorted-id order) naming the variant supplies its rsid.
        named = long.get_column("rsid").is_not_null().to_numpy()[order]
        rows, vs = (order, vi_sorted) if named.all() else (order[named], vi_sorted[named])
        firsts = np.ones(vs.size, dtype=bool)
        firsts[1:] = vs[1:] != vs[:-1]
        names = long.get_column("rsid").gather(rows[firsts])
        if names.len() == m:  # every variant named (vs[firsts] is 0..m-1): no scatter
            rsid = names.alias("rsid")
        else:
            rsid = pl.repeat(None, m, dtype=pl.String, eager=True).alias("rsid").scatter(
                vs[firsts], names)
        variants = variants.with_columns(rsid)
    return Stacked(variants=variants, arrays=arrays, present=present,
                    present_here=present_here), ledgers


def _wanted(present: dict[str, bool], *, samplesize: bool) -> list[str]:
    """The float columns a :class:`Stacked` carries as arrays, given ``present``."""
    wanted = [c for c in _FLOAT_COLUMNS if present[c] or c in ("beta", "standard_error")]
    if not samplesize:
        wanted = [c for c in wanted if c not in ("p_value", "neg_log_10_p_value")]
    return wanted


def with_present(stacked: Stacked, present: dict[str, bool], *, samplesize: bool) -> Stacked:
    """``stacked`` as :func:`stack_frames` would have made it with ``present`` given.

    ``stacked`` was made with fewer columns present (its own frames', say, in a
    first pass that did not yet know the whole input's): a column present
    elsewhere becomes an all-NaN array (an all-null ``rsid``), as
    :func:`stack_frames` makes it for a part that lacks the column.
    Raises ``ValueError`` if ``stacked`` holds a column ``present`` does not.
    """
    wanted = _wanted(present, samplesize=samplesize)
    extra = set(stacked.arrays) - set(wanted)
    if extra:
        raise ValueError(f"stacked part holds column(s) {sorted(extra)} not in present")
    k = next(iter(stacked.arrays.values())).shape[0]
    m = stacked.variants.height
    arrays = {c: stacked.arrays[c] if c in stacked.arrays else np.full((k, m), np.nan)
              for c in wanted}
    variants = stacked.variants
    if present["rsid"] and m and "rsid" not in variants.columns:
        variants = variants.with_columns(pl.repeat(None, m, dtype=pl.String, eager=True).alias("rsid"))
    return Stacked(variants=variants, arrays=arrays, present=present,
                   present_here=stacked.present_here)


def _neglog10p_expr() -> pl.Expr:
    """-log10 p of a cohort row: its ``neg_log_10_p_value``, else -log10 of ``p_value`` in (0, 1]."""
    p = pl.col("p_value")
    from_p = pl.when((p > 0) & (p <= 1)).then(-p.log10())
    return pl.when(pl.col("neg_log_10_p_value").is_finite()).then(
        pl.col("neg_log_10_p_value")).otherwise(from_p)


def check_cohort_order(tables: dict[str, pl.DataFrame], cohort_order: list[str] | None) -> list[str]:
    if not tables:
        raise InputError("meta-analysis needs at least one cohort table; got none")
    order = list(cohort_order) if cohort_order is not None else list(tables)
    if sorted(order) != sorted(tables) or len(set(order)) != len(order):
        raise ConfigError(
            f"--cohort-order must list each cohort exactly once; got {order}, cohorts are {list(tables)}"
        )
    for c in order:
        check_cohort_name(c)
    return order
