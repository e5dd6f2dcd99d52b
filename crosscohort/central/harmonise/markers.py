"""Marker names join rows with and without positions: one variant, one row, in every cohort.

METAL and GWAMA key variants by marker name. A cohort whose file has no
chromosome and position (GWAMA's ``pop1``) and one whose file has them
(``pop3``) report the same variant; keyed apart, every such variant would
come out twice (once per kind of cohort). So, without a reference panel,
marker-only rows take the position that the cohorts with positions give
their marker name, and are then keyed, de-duplicated and combined like any
positioned row. With a reference panel its ``rsid``/``id`` column places
them instead (:func:`crosscohort.central.harmonise.build.place_markers`).

Rules (ledger reasons in brackets):

- a marker name that the positioned rows of all cohorts give exactly one
  (chromosome, position) places the marker-only rows of that name
  [``changed.position_from_marker_name_join``];
- a name given two or more positions is a conflict: its marker-only rows
  cannot be placed and are removed [``removed.marker_name_at_two_positions``];
  the positioned rows keep their own positions;
- a name no cohort places stays marker-only (combined by name and alleles);
- placed rows are de-duplicated with the cohort's own positioned rows by
  :func:`crosscohort.central.harmonise.align._deduplicate`'s rule [``removed.duplicate``].

Alleles need no second look: without a reference every pair is already in
byte order (:func:`crosscohort.central.harmonise.align.harmonise`), whichever row it
came from; a placed row whose alleles differ from the positioned cohort's is
another variant at that position and is kept as such (GWAMA drops it as
"wrong alleles").
"""

from __future__ import annotations

from collections.abc import Iterable

import polars as pl

from crosscohort.central.harmonise.align import _deduplicate
from crosscohort.contract.keys import VARIANT_KEY
from crosscohort.contract.ledger import Ledger
from crosscohort.contract.sumstats import marker_only, variant_id

__all__ = ["CONFLICT", "PLACED", "has_marker_only", "marker_positions", "place_by_marker"]

#: Ledger reason: marker-only rows whose name the positioned rows give two positions.
CONFLICT = "marker_name_at_two_positions"
#: Ledger change: marker-only rows placed from another row's position of the same name.
PLACED = "position_from_marker_name_join"

_ROW = "_row"


def has_marker_only(table: pl.DataFrame) -> bool:
    """Whether a harmonised table holds rows keyed by marker name alone."""
    return ("rsid" in table.columns and "chromosome" in table.columns
            and bool(table.select(marker_only().any()).item()))


def marker_names(table: pl.DataFrame) -> pl.Series:
    """The distinct marker names of a table's marker-only rows."""
    return table.filter(marker_only()).get_column("rsid").unique()


def marker_positions(sources: Iterable[pl.DataFrame | pl.LazyFrame], names: pl.Series) -> pl.DataFrame:
    """``rsid, chromosome, base_pair_location, n_positions`` for each of ``names`` that is placed.

    Parameters
    ----------
    sources
        Frames (or lazy frames) with ``rsid``, ``chromosome`` (integer codes)
        and ``base_pair_location``; rows without a position are ignored.
    names
        The marker names wanted (the marker-only rows'); others are not kept.

    Returns
    -------
    polars.DataFrame
        One row per name that some source places; ``n_positions`` > 1 is a
        conflict (then ``chromosome``/``base_pair_location`` are the first).
    """
    wanted = names.implode()
    frames = []
    for src in sources:
        lf = src.lazy() if isinstance(src, pl.DataFrame) else src
        frames.append(lf.select(
            pl.col("rsid"), pl.col("chromosome").cast(pl.Int64),
            pl.col("base_pair_location").cast(pl.Int64),
        ).filter(pl.col("chromosome").is_not_null() & pl.col("base_pair_location").is_not_null()
                 & pl.col("rsid").is_in(wanted)))
    if not frames:
        return pl.DataFrame(schema={"rsid": pl.String, "chromosome": pl.Int64,
                                    "base_pair_location": pl.Int64, "n_positions": pl.UInt32})
    sites = pl.concat(frames).unique(maintain_order=True).collect()
    return sites.group_by("rsid", maintain_order=True).agg(
        pl.col("chromosome").first(), pl.col("base_pair_location").first(),
        pl.len().alias("n_positions"),
    )


def place_by_marker(table: pl.DataFrame, positions: pl.DataFrame, ledger: Ledger, *,
                    variant_ids: bool) -> pl.DataFrame:
    """A harmonised cohort table with its marker-only rows placed where ``positions`` says.

    Parameters
    ----------
    table
        One cohort's harmonised rows: positioned rows sorted by
        :data:`~crosscohort.contract.keys.VARIANT_KEY`, marker-only rows last.
    positions
        :func:`marker_positions` of every cohort.
    ledger
        The cohort's ledger; gains :data:`PLACED`, :data:`CONFLICT` and duplicates,
        and its ``n_kept`` is updated (``n_in = n_kept + sum(removed)`` still holds).
    variant_ids
        Give placed rows a ``variant_id`` (when the table has the column).

    Returns
    -------
    polars.DataFrame
        Positioned rows (own and placed) sorted by the variant key, then the
        marker-only rows left unplaced, in their order.
    """
    mo = marker_only()
    positioned = table.filter(~mo)
    markers = table.filter(mo)
    j = markers.join(positions.rename({"chromosome": "_chr", "base_pair_location": "_pos"}),
                     on="rsid", how="left", maintain_order="left")
    n_pos = j.get_column("n_positions").fill_null(0)
    conflict = n_pos > 1
    ledger.remove(CONFLICT, int(conflict.sum()))
    place = n_pos == 1
    placed = j.filter(place).with_columns(
        pl.col("_chr").cast(table.schema["chromosome"]).alias("chromosome"),
        pl.col("_pos").cast(table.schema["base_pair_location"]).alias("base_pair_location"),
    )
    if variant_ids and "variant_id" in table.columns:
        placed = placed.with_columns(variant_id(
            pl.col("chromosome"), pl.col("base_pair_location"), pl.col("other_allele"),
            pl.col("effect_allele")).cast(table.schema["variant_id"]))
    placed = placed.select(table.columns)
    unplaced = j.filter(n_pos == 0).select(table.columns)
    # Own positioned rows first, so that a tie (same n, same SE) keeps the file's row.
    merged = pl.concat([positioned, placed]).with_row_index(_ROW)
    before = merged.height
    merged = _deduplicate(merged, ledger, key=VARIANT_KEY)
    n_dup = before - merged.height
    ledger.change(PLACED, placed.height - _dropped_placed(merged, positioned.height, placed.height,
                                                          n_dup))
    out = pl.concat([merged.drop(_ROW), unplaced])
    ledger.n_kept = out.height
    ledger.check()
    return out


def _dropped_placed(merged: pl.DataFrame, n_own: int, n_placed: int, n_dup: int) -> int:
    """How many placed rows lost to a duplicate (the row index says whose row survived)."""
    if not n_dup:
        return 0
    kept_placed = int((merged.get_column(_ROW) >= n_own).sum())
    return n_placed - kept_placed
