"""Align every cohort's summary statistics to one allele orientation.

The readable orchestration lives here; the allele algebra (complements,
palindromes) is in :mod:`crosscohort.central.harmonise.alleles`. Every step is a
vectorised polars pass, so ten million variants per cohort cost a few joins
and sorts, not a Python loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from crosscohort.central.harmonise.alleles import (
    COMPLEMENT,
    complement,
    is_palindromic,
    is_snp,
    is_upper_letters,
    normalise_allele,
)
from crosscohort.contract.errors import ConfigError, InputError
from crosscohort.contract.keys import (
    EAF_MAX_DIFF,
    FLAG_EAF_FAR,
    VARIANT_KEY,
    check_cohort_name,
    check_eaf_max_diff,
    normalise_chromosomes,
    variant_keys,
)
from crosscohort.contract.ledger import Ledger, write_ledgers
from crosscohort.contract.row_rules import VALUE_RULES, duplicate_order, value_failures
from crosscohort.contract.sumstats import (
    REQUIRED,
    marker_only,
    variant_id,
    write_sumstats,
)
from crosscohort.contract.table_io import (
    Blocks,
    check_header,
    header_line,
    header_names,
    ordered_map,
    parse_block,
)

__all__ = [
    "REFERENCE_COLUMNS",
    "HarmonisedSet",
    "ReferencePanel",
    "compact_reference",
    "harmonise",
    "other_allele_from_panel",
    "harmonise_cohort",
    "read_reference",
    "write_harmonised",
    "left_normalise",
]

#: Columns of the reference panel written by the demo simulator (REF/ALT on the forward strand).
REFERENCE_COLUMNS: tuple[str, ...] = ("chromosome", "base_pair_location", "ref", "alt", "alt_frequency")

_ROW = "_row"
_MARKER_ONLY = "_marker_only"
#: Cohort column names the packed alignment path uses itself (such a cohort is joined instead).
_PANEL_PATH_NAMES = {"ref", "alt", "alt_frequency", "_kind", "_pal", "_negate", "_at", "_swapped",
                     "_flipped", "_pal_resolved"}
_CHANGE_FLAGS = {
    "_swapped": "allele_swapped",
    "_flipped": "strand_flipped",
    "_pal_resolved": "palindrome_resolved_by_eaf",
}


@dataclass(frozen=True)
class HarmonisedSet:
    """Per-cohort aligned summary statistics and the ledger of what harmonisation did.

    Attributes
    ----------
    tables
        Cohort id -> aligned GWAS-SSF frame, sorted by chromosome, position and alleles,
        one row per (chromosome, base_pair_location, other_allele, effect_allele).
    ledgers
        Cohort id -> :class:`~crosscohort.contract.ledger.Ledger` (stage ``harmonise``).
    reference_used
        Whether the alignment was to a reference panel (else the canonical
        allele order; see :func:`harmonise`).
    """

    tables: dict[str, pl.DataFrame]
    ledgers: dict[str, Ledger]
    reference_used: bool


def check_harmonise_options(*, palindrome_max_maf: float, eaf_max_diff: float) -> None:
    """The alignment options' ranges, checked before anything is read; else :class:`ConfigError`."""
    if not 0.0 <= palindrome_max_maf <= 0.5:
        raise ConfigError(f"palindrome_max_maf must lie in [0, 0.5]; got {palindrome_max_maf}")
    check_eaf_max_diff(eaf_max_diff)


def read_reference(path: str | Path) -> pl.DataFrame:
    """Reference panel (forward-strand REF/ALT with ALT frequency), normalised for alignment.

    Parameters
    ----------
    path
        Tab-separated file, optionally gzipped, with columns ``chromosome,
        base_pair_location, ref, alt, alt_frequency`` (as the demo simulator writes).

    Raises
    ------
    InputError
        When the file is missing, lacks a column or holds an unknown chromosome; a
        line cut short or a value that is not its column's type (naming the line).
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file (the harmonisation reference)")
    # Read as every table is (contract/table_io.py): in blocks, typed in the parser (no text
    # copy of the numbers: the panel is as long as a cohort), a cut line or a bad value
    # named by its line, blank lines no rows. Only the panel's own columns are kept: an rsid
    # or annotation column of a genome-wide panel would otherwise cost more memory.
    header = header_names(header_line(path))
    check_header(path, header)
    missing = [c for c in REFERENCE_COLUMNS if c not in header]
    if missing:
        raise InputError(
            f"{path}: reference lacks column(s) {missing}; expected {list(REFERENCE_COLUMNS)}, "
            f"found {header}"
        )
    schema = {h: {"base_pair_location": pl.Int64, "alt_frequency": pl.Float64}.get(h, pl.String)
              for h in header}
    cols = [c for c in header if c in REFERENCE_COLUMNS]
    frames = list(ordered_map(lambda b: parse_block(b, path=path, schema=schema, columns=cols),
                              Blocks(path)))
    ref = (pl.concat(frames) if frames
           else pl.DataFrame(schema={c: schema[c] for c in cols}))
    ref = ref.select(
        pl.col("chromosome"),
        pl.col("base_pair_location"),
        normalise_allele(pl.col("ref")).alias("ref"),
        normalise_allele(pl.col("alt")).alias("alt"),
        pl.col("alt_frequency"),
    )
    return prepare_reference(ref, source=str(path))


def prepare_reference(ref: pl.DataFrame, *, source: str = "reference") -> pl.DataFrame:
    """Reference with numeric chromosomes, upper-case alleles and one row per allele pair."""
    missing = [c for c in REFERENCE_COLUMNS if c not in ref.columns]
    if missing:
        raise InputError(f"{source}: reference lacks column(s) {missing}")
    codes = normalise_chromosomes(ref.get_column("chromosome"))
    bad = codes.is_null() & ref.get_column("chromosome").is_not_null()
    if bad.any():
        i = int(bad.arg_max())
        raise InputError(
            f"{source}: line {i + 2}: column chromosome: unknown label "
            f"{ref.get_column('chromosome')[i]!r}; expected 1-22, X, Y, MT (chr prefix allowed)"
        )
    ref = ref.select(
        codes.alias("chromosome"),
        pl.col("base_pair_location").cast(pl.Int64),
        normalise_allele(pl.col("ref").cast(pl.String)).alias("ref"),
        normalise_allele(pl.col("alt").cast(pl.String)).alias("alt"),
        pl.col("alt_frequency").cast(pl.Float64),
    )
    del codes
    # A panel listing the same allele pair twice would duplicate cohort rows in the join:
    # keep the first. On one packed int64 per row where the values fit (no string hashing).
    nonnull = ref.select(pl.all_horizontal(pl.col(c).is_not_null() for c in REFERENCE_COLUMNS[:4])
                         .all()).item() if ref.height else False
    keys = variant_keys(ref.rename({"ref": "other_allele", "alt": "effect_allele"})) if nonnull \
        else None
    if keys is None:
        return ref.unique(subset=["chromosome", "base_pair_location", "ref", "alt"], keep="first",
                          maintain_order=True)
    _, first = np.unique(keys, return_index=True)
    if first.size == ref.height:
        return ref
    first.sort()
    return ref[first]


def _prepare(df: pl.DataFrame, *, source: str) -> pl.DataFrame:
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise InputError(f"{source}: missing required column(s) {missing}; present: {df.columns}")
    casts = {
        "base_pair_location": pl.Int64,
        "beta": pl.Float64,
        "standard_error": pl.Float64,
        "effect_allele_frequency": pl.Float64,
        "p_value": pl.Float64,
        "neg_log_10_p_value": pl.Float64,
        "n": pl.Int64,
        "n_cases": pl.Int64,
        "n_controls": pl.Int64,
    }
    exprs = []
    for name, dtype in casts.items():
        if name in df.columns and df.schema[name] != dtype:
            exprs.append(pl.col(name).cast(dtype, strict=True))
    try:
        df = df.with_columns(exprs) if exprs else df
    except pl.exceptions.PolarsError as exc:
        raise InputError(f"{source}: a numeric column holds text ({str(exc).splitlines()[0]})") from exc
    return df.with_row_index(_ROW).with_columns(
        normalise_chromosomes(df.get_column("chromosome")).alias("chromosome"),
        *[normalise_allele(pl.col(c).cast(pl.String)) for c in ("effect_allele", "other_allele")
          if not is_upper_letters(df.get_column(c))],
    )


def _swap(df: pl.DataFrame, mask: pl.Expr) -> pl.DataFrame:
    """Exchange effect and other allele where ``mask``: beta -> -beta, EAF -> 1 - EAF."""
    return df.with_columns(
        pl.when(mask).then(pl.col("other_allele")).otherwise(pl.col("effect_allele")).alias("effect_allele"),
        pl.when(mask).then(pl.col("effect_allele")).otherwise(pl.col("other_allele")).alias("other_allele"),
        pl.when(mask).then(-pl.col("beta")).otherwise(pl.col("beta")).alias("beta"),
        pl.when(mask)
        .then(1.0 - pl.col("effect_allele_frequency"))
        .otherwise(pl.col("effect_allele_frequency"))
        .alias("effect_allele_frequency"),
    )


def _align_canonical(df: pl.DataFrame) -> pl.DataFrame:
    """Orient so that ``other_allele < effect_allele`` (byte order); no strand changes."""
    swap = pl.col("effect_allele") < pl.col("other_allele")
    return _swap(df.with_columns(swap.alias("_swapped")), pl.col("_swapped"))


@dataclass(frozen=True)
class ReferencePanel:
    """A prepared reference panel held compactly for alignment (about 24 bytes a variant).

    Rows are sorted by (chromosome, position, REF, ALT), alleles in byte order, which is
    the order of :data:`VARIANT_KEY` once a cohort is aligned (other = REF, effect = ALT).

    Attributes
    ----------
    site
        ``chromosome << 32 | base_pair_location`` per row (int64, sorted).
    ref, alt
        Codes into ``levels`` (int32); a missing allele is ``len(levels) + 1``, which
        no cohort allele's code equals.
    freq
        ALT frequency (Float64, nulls kept), row for row.
    levels
        The distinct alleles of the panel and ``A, C, G, T``, sorted (so a code is a rank).
    """

    site: np.ndarray
    ref: np.ndarray
    alt: np.ndarray
    freq: pl.Series
    levels: list[str]

    @property
    def height(self) -> int:
        return int(self.site.size)

    def to_frame(self) -> pl.DataFrame:
        """The panel as the frame :func:`prepare_reference` returns (rows in panel order)."""
        allele = pl.Series(self.levels, dtype=pl.String)

        def alleles(codes: np.ndarray) -> pl.Series:
            idx = pl.Series(np.where(codes < len(self.levels), codes, 0).astype(np.uint32))
            return allele.gather(idx).zip_with(pl.Series(codes < len(self.levels)),
                                               pl.Series([None], dtype=pl.String))

        return pl.DataFrame({
            "chromosome": self.site >> 32, "base_pair_location": self.site & 0xFFFFFFFF,
            "ref": alleles(self.ref), "alt": alleles(self.alt), "alt_frequency": self.freq,
        })


def compact_reference(ref: pl.DataFrame) -> ReferencePanel | None:
    """The prepared panel (:func:`prepare_reference`) as a :class:`ReferencePanel`, or ``None``.

    Rows without a chromosome or a position are left out (a join never matches them).
    ``None`` when a position does not fit 32 bits; the caller then joins the frame.
    """
    if isinstance(ref, ReferencePanel):
        return ref
    chrom, pos = ref.get_column("chromosome"), ref.get_column("base_pair_location")
    placed = (chrom.is_not_null() & pos.is_not_null())
    if not placed.all():
        ref = ref.filter(placed)
        chrom, pos = ref.get_column("chromosome"), ref.get_column("base_pair_location")
    if ref.height and not (0 <= pos.min() and pos.max() < 2**32):
        return None
    present = pl.concat([ref.get_column("ref"), ref.get_column("alt")]).drop_nulls().unique()
    levels = sorted({*present.to_list(), "A", "C", "G", "T"})
    enum = pl.Enum(levels)
    missing = len(levels) + 1

    def codes(name: str) -> np.ndarray:
        return (ref.get_column(name).cast(enum).to_physical().cast(pl.Int32)
                .fill_null(missing).to_numpy())

    site = (chrom.to_numpy().astype(np.int64) << 32) | pos.to_numpy().astype(np.int64)
    r, a = codes("ref"), codes("alt")
    order = np.lexsort((a, r, site))
    if np.all(order[1:] > order[:-1]):
        # Already in order (a sorted panel file): no copy.
        return ReferencePanel(site=site, ref=r, alt=a, freq=ref.get_column("alt_frequency"),
                              levels=levels)
    return ReferencePanel(site=site[order], ref=r[order], alt=a[order],
                          freq=ref.get_column("alt_frequency").gather(order), levels=levels)


def other_allele_from_panel(table: pl.DataFrame, panel: ReferencePanel | pl.DataFrame) -> pl.Series:
    """The other allele of rows that give only an effect allele, from the panel's site.

    PLINK 1.9 ``--linear``/``--logistic`` print A1 alone. At a site the panel
    holds, A1 is REF or ALT (or, from a cohort on the other strand, the
    complement of one): the other allele is the remaining one (complemented
    likewise), unless the panel's alleles there do not give exactly one
    such allele (A1 in none of them, or several panel rows that disagree).

    Parameters
    ----------
    table
        ``chromosome`` (labels or codes), ``base_pair_location`` and
        ``effect_allele`` (normalised), one row per file row.
    panel
        The prepared panel (:func:`compact_reference` or :func:`prepare_reference`).

    Returns
    -------
    polars.Series
        ``other_allele``, row for row; null where the panel does not tell it.
    """
    chrom = normalise_chromosomes(table.get_column("chromosome")).cast(pl.Int64)
    rows = pl.DataFrame({
        "_i": np.arange(table.height),
        "chromosome": chrom,
        "base_pair_location": table.get_column("base_pair_location").cast(pl.Int64),
        "_ea": table.get_column("effect_allele"),
    }).drop_nulls(["chromosome", "base_pair_location", "_ea"])
    if isinstance(panel, ReferencePanel):
        keys = ((rows.get_column("chromosome").to_numpy() << 32)
                | rows.get_column("base_pair_location").to_numpy())
        at = np.flatnonzero(np.isin(panel.site, keys))
        sites = ReferencePanel(site=panel.site[at], ref=panel.ref[at], alt=panel.alt[at],
                               freq=panel.freq.gather(at), levels=panel.levels).to_frame()
    else:
        sites = panel
    sites = sites.select(pl.col("chromosome").cast(pl.Int64),
                         pl.col("base_pair_location").cast(pl.Int64), "ref", "alt")
    ea, ref, alt = pl.col("_ea"), pl.col("ref"), pl.col("alt")
    other = (rows.join(sites, on=["chromosome", "base_pair_location"])
             .select("_i", pl.when(ea == ref).then(alt).when(ea == alt).then(ref)
                     .when(complement(ea) == ref).then(complement(alt))
                     .when(complement(ea) == alt).then(complement(ref)).alias("_o"))
             .drop_nulls("_o").unique()
             .filter(pl.len().over("_i") == 1))
    out = pl.repeat(None, table.height, dtype=pl.String, eager=True).alias("other_allele")
    return out.scatter(other.get_column("_i").to_numpy(), other.get_column("_o"))


def _allele_tables(levels: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per allele code (``len(levels)`` = not in the panel): its complement's code, is it A/C/G/T.

    Index ``len(levels)`` (a cohort allele the panel lacks) complements to -1, which no
    panel code equals.
    """
    index = {a: i for i, a in enumerate(levels)}
    comp = np.full(len(levels) + 1, -1, dtype=np.int64)
    snp = np.zeros(len(levels) + 1, dtype=bool)
    for base, other in COMPLEMENT.items():
        comp[index[base]] = index[other]
        snp[index[base]] = True
    return comp, snp


def _align_to_panel(
    df: pl.DataFrame, panel: ReferencePanel, *, ledger: Ledger, palindrome_max_maf: float,
    eaf_max_diff: float = EAF_MAX_DIFF,
) -> pl.DataFrame:
    """Alignment to a compact panel, then de-duplication; the rules of :func:`_align_to_reference_join`.

    Sites are matched by binary search on the panel's sorted ``site`` and alleles
    compared as integer codes, so memory holds the cohort, int arrays over its rows
    and, once, the aligned output; never a join of the cohort with the panel.
    Duplicates are resolved here (the panel row is the aligned variant), and
    ``duplicate`` recorded after the alignment reasons, as :func:`_deduplicate` would.
    """
    m = df.height
    pos = df.get_column("base_pair_location").to_numpy()
    site = (df.get_column("chromosome").to_numpy().astype(np.int64) << 32) | pos
    # A position beyond 32 bits matches no panel site (all of which fit).
    site[(pos < 0) | (pos >= 2**32)] = -1
    if m < 2 or bool(np.all(site[1:] >= site[:-1])):
        lo = np.searchsorted(panel.site, site, side="left")
        hi = np.searchsorted(panel.site, site, side="right")
    else:
        # Binary search in query order is cache-friendly; an unsorted cohort is
        # searched in site order (ten times faster at 2M rows) and scattered back.
        order = np.argsort(site, kind="stable")
        lo, hi = np.empty_like(site), np.empty_like(site)
        lo[order] = np.searchsorted(panel.site, site[order], side="left")
        hi[order] = np.searchsorted(panel.site, site[order], side="right")
        del order
    del site, pos
    count = hi - lo
    at_site = count > 0
    n_at_site = int(np.count_nonzero(at_site))

    enum = pl.Enum(panel.levels)
    n_levels = len(panel.levels)

    def codes(name: str) -> np.ndarray:
        return (df.get_column(name).cast(enum, strict=False).to_physical().cast(pl.Int32)
                .fill_null(n_levels).to_numpy())

    comp, snp = _allele_tables(panel.levels)
    e_all, o_all = codes("effect_allele"), codes("other_allele")
    if count.max(initial=0) <= 1:
        rows = np.flatnonzero(at_site)
        cand = lo[rows]
    else:
        rows = np.repeat(np.arange(m), count)
        first = np.repeat(np.cumsum(count) - count, count)
        cand = np.repeat(lo, count) + (np.arange(rows.size) - first)
        del first
    del lo, hi, count, at_site
    e, o = e_all[rows], o_all[rows]
    del e_all, o_all
    r, a = panel.ref[cand], panel.alt[cand]
    ce, co = comp[e], comp[o]
    both_snp = snp[e] & snp[o]
    pal = both_snp & (ce == o)
    flippable = both_snp & ~pal
    # 0 exact, 1 swapped, 2 strand-flipped, 3 flipped and swapped, 4 no match; lower wins
    # when a multi-allelic site offers several readings.
    kind = np.full(rows.size, 4, dtype=np.int32)
    kind[flippable & (ce == r) & (co == a)] = 3
    kind[flippable & (ce == a) & (co == r)] = 2
    kind[(e == r) & (o == a)] = 1
    kind[(e == a) & (o == r)] = 0
    del ce, co, r, a, e, o, flippable
    if rows.size and np.any(rows[1:] == rows[:-1]):
        # Several panel rows at a site: keep each cohort row's best reading.
        pick = np.lexsort((kind, rows))
        firsts = np.ones(pick.size, dtype=bool)
        firsts[1:] = rows[pick][1:] != rows[pick][:-1]
        pick = pick[firsts]
        rows, cand, kind, pal, both_snp = (x[pick] for x in (rows, cand, kind, pal, both_snp))
    hit = kind < 4
    rows, cand, kind, pal, both_snp = (x[hit] for x in (rows, cand, kind, pal, both_snp))
    ledger.remove("not_in_reference", m - n_at_site)
    ledger.remove("allele_mismatch", n_at_site - rows.size)

    votes = kind[both_snp & ~pal]
    strand = _strand_from_votes(votes.size, int(np.count_nonzero(votes >= 2)))
    del votes, both_snp
    eaf_col = df.get_column("effect_allele_frequency")
    best = pl.DataFrame({
        "_kind": kind, "_pal": pal,
        "effect_allele_frequency": eaf_col.gather(rows),
        "alt_frequency": panel.freq.gather(cand),
    }).with_row_index("_at")
    del kind, pal
    best = _orient(best, strand=strand, ledger=ledger, palindrome_max_maf=palindrome_max_maf)
    at = best.get_column("_at").to_numpy()
    if at.size != rows.size:
        rows, cand = rows[at], cand[at]
    # The panel's row order is the aligned variant order: de-duplicate on it.
    order = [c for c in ("n", "standard_error", _ROW) if c in df.columns]
    pick = _first_per_key(df, cand.astype(np.int64), order, [c == "n" for c in order], at=rows)
    ledger.remove("duplicate", rows.size - pick.size)
    rows, cand = rows[pick], cand[pick]
    best = best[pick]
    allele = pl.Series(panel.levels, dtype=pl.String)
    negate = best.get_column("_negate")
    # One gather of the cohort's rows, without the allele columns it replaces: the only
    # copy of the cohort this path makes, and none when every row is kept in order.
    kept = df.drop("effect_allele", "other_allele")
    out = (kept if _is_identity(rows, df.height) else kept[rows]).with_columns(
        pl.when(negate).then(-pl.col("beta")).otherwise(pl.col("beta")).alias("beta"),
        pl.when(negate).then(1.0 - pl.col("effect_allele_frequency"))
        .otherwise(pl.col("effect_allele_frequency")).alias("effect_allele_frequency"),
        # After alignment the alleles are the reference's, whatever the cohort spelled.
        allele.gather(panel.alt[cand]).alias("effect_allele"),
        allele.gather(panel.ref[cand]).alias("other_allele"),
    ).select(df.columns).with_columns(
        best.get_column(c) for c in ("_swapped", "_flipped", "_pal_resolved"))
    af = panel.freq.gather(cand)
    del rows, cand, best, negate, kept
    # On the aligned EAF, so a swap or strand flip is never mistaken for a far frequency;
    # a missing EAF on either side is not evidence, so not flagged.
    return out.with_columns(
        ((pl.col("effect_allele_frequency") - af).abs() > eaf_max_diff).fill_null(False)
        .alias(FLAG_EAF_FAR)
    )


def _align_to_reference_join(
    df: pl.DataFrame, ref: pl.DataFrame, *, ledger: Ledger, palindrome_max_maf: float,
    eaf_max_diff: float = EAF_MAX_DIFF,
) -> pl.DataFrame:
    """Alignment by a join of the cohort with the panel on (chromosome, position).

    The general path, and the oracle the packed path (:func:`_align_to_panel`) is
    tested against: it holds the cohort joined to every panel row at its site, with
    all columns, so its memory is several times the cohort's.
    """
    ea, oa = pl.col("effect_allele"), pl.col("other_allele")
    snp_flippable = is_snp(ea, oa) & ~is_palindromic(ea, oa)
    # 0 exact, 1 swapped, 2 strand-flipped, 3 flipped and swapped; lower wins
    # when a multi-allelic site offers several readings.
    kind = (
        pl.when((ea == pl.col("alt")) & (oa == pl.col("ref"))).then(0)
        .when((ea == pl.col("ref")) & (oa == pl.col("alt"))).then(1)
        .when(snp_flippable & (complement(ea) == pl.col("alt")) & (complement(oa) == pl.col("ref")))
        .then(2)
        .when(snp_flippable & (complement(ea) == pl.col("ref")) & (complement(oa) == pl.col("alt")))
        .then(3)
        .otherwise(None)
        .alias("_kind")
    )
    cand = df.join(ref, on=["chromosome", "base_pair_location"], how="inner").with_columns(kind)
    n_at_site = cand.get_column(_ROW).n_unique()
    best = (
        cand.filter(pl.col("_kind").is_not_null())
        .sort([_ROW, "_kind"])
        .unique(subset=[_ROW], keep="first", maintain_order=True)
    )
    ledger.remove("not_in_reference", df.height - n_at_site)
    ledger.remove("allele_mismatch", n_at_site - best.height)

    pal = is_palindromic(ea, oa)
    strand = strand_consensus(best)
    best = best.with_columns(pal.alias("_pal"))
    best = _orient(best, strand=strand, ledger=ledger, palindrome_max_maf=palindrome_max_maf)
    af = pl.col("alt_frequency")
    best = best.with_columns(
        pl.when(pl.col("_negate")).then(-pl.col("beta")).otherwise(pl.col("beta")).alias("beta"),
        pl.when(pl.col("_negate")).then(1.0 - pl.col("effect_allele_frequency"))
        .otherwise(pl.col("effect_allele_frequency")).alias("effect_allele_frequency"),
        # After alignment the alleles are the reference's, whatever the cohort spelled.
        pl.col("alt").alias("effect_allele"),
        pl.col("ref").alias("other_allele"),
    ).with_columns(
        # On the aligned EAF, so a swap or strand flip is never mistaken for a far frequency;
        # a missing EAF on either side is not evidence, so not flagged.
        ((pl.col("effect_allele_frequency") - af).abs() > eaf_max_diff).fill_null(False)
        .alias(FLAG_EAF_FAR)
    )
    return best.drop(["ref", "alt", "alt_frequency", "_kind", "_pal", "_negate"])


def _orient(best: pl.DataFrame, *, strand: str, ledger: Ledger,
            palindrome_max_maf: float) -> pl.DataFrame:
    """Matched rows with ``_kind``, ``_pal``, EAF and ``alt_frequency`` -> change flags and ``_negate``.

    Drops (and counts) the palindromes that cannot be resolved; adds ``_swapped``,
    ``_flipped``, ``_pal_resolved`` and ``_negate`` (beta and EAF to be negated/mirrored).
    """
    eaf = pl.col("effect_allele_frequency")
    af = pl.col("alt_frequency")
    if strand in ("forward", "reverse"):
        # The cohort's other SNPs say which strand it reports on, so a
        # palindrome's labels are read on that strand: forward -> as written
        # (label match kind 0 keeps, kind 1 negates); reverse -> complemented,
        # which for A/T or C/G turns a label match into a swap. Frequencies,
        # which differ between ancestries, are not needed (and not trusted).
        pal_negate = (pl.col("_kind") == 1) if strand == "forward" else (pl.col("_kind") == 0)
        best = best.with_columns(
            pl.lit(True).alias("_resolvable"), pal_negate.alias("_pal_negate"),
            pl.lit(False).alias("_by_eaf"),
        )
    else:
        # Mixed strands: the labels cannot tell, so the frequency decides.
        # Keeping the cohort's sign makes its EAF the ALT frequency; negating
        # makes it 1 - EAF.
        d_keep = (eaf - af).abs()
        d_negate = (1.0 - eaf - af).abs()
        resolvable = (pl.min_horizontal(eaf, 1.0 - eaf) <= palindrome_max_maf) & (d_keep != d_negate)
        best = best.with_columns(
            resolvable.fill_null(False).alias("_resolvable"),
            (d_negate < d_keep).fill_null(False).alias("_pal_negate"),
            pl.lit(True).alias("_by_eaf"),
        )
    ambiguous = pl.col("_pal") & ~pl.col("_resolvable")
    ledger.remove("palindrome_ambiguous", int(best.select(ambiguous.sum()).item()))
    best = best.filter(~ambiguous)

    negate = pl.when(pl.col("_pal")).then(pl.col("_pal_negate")).otherwise(pl.col("_kind").is_in([1, 3]))
    flipped = ~pl.col("_pal") & pl.col("_kind").is_in([2, 3])
    best = best.with_columns(
        ((~pl.col("_pal") & pl.col("_kind").is_in([1, 3]))
         | (pl.col("_pal") & ~pl.col("_by_eaf") & pl.col("_pal_negate") & (strand == "forward"))
         ).alias("_swapped"),
        (flipped | (pl.col("_pal") & (strand == "reverse"))).alias("_flipped"),
        (pl.col("_pal") & pl.col("_by_eaf") & pl.col("_pal_negate")).alias("_pal_resolved"),
        negate.alias("_negate"),
    )
    return best.drop(["_resolvable", "_pal_negate", "_by_eaf"])


#: A cohort reports on one strand when at least this share of its
#: non-palindromic SNPs matched the reference on that strand.
STRAND_CONSENSUS_SHARE = 0.99
#: Fewer non-palindromic SNPs than this give no consensus.
STRAND_CONSENSUS_MIN_SNPS = 100


def strand_consensus(matched: pl.DataFrame) -> str:
    """``forward``, ``reverse`` or ``mixed``: the strand a cohort reports on.

    ``matched`` holds the cohort's rows joined to the reference with the
    match kind ``_kind`` (0 exact, 1 swapped, 2 flipped, 3 flipped and
    swapped). Only non-palindromic SNPs vote: a cohort is ``forward`` when
    at least 99% of them matched without a strand flip (kinds 0, 1),
    ``reverse`` when at least 99% needed one, and ``mixed`` otherwise or
    with fewer than 100 such SNPs.
    """
    ea, oa = pl.col("effect_allele"), pl.col("other_allele")
    votes = matched.filter(is_snp(ea, oa) & ~is_palindromic(ea, oa)).get_column("_kind")
    return _strand_from_votes(votes.len(), int(votes.is_in([2, 3]).sum()))


def _strand_from_votes(n: int, flipped: int) -> str:
    """:func:`strand_consensus` from the count of voting SNPs and of those strand-flipped."""
    if n < STRAND_CONSENSUS_MIN_SNPS:
        return "mixed"
    if flipped <= (1 - STRAND_CONSENSUS_SHARE) * n:
        return "forward"
    if flipped >= STRAND_CONSENSUS_SHARE * n:
        return "reverse"
    return "mixed"


def _deduplicate(
    df: pl.DataFrame, ledger: Ledger, *, key: tuple[str, ...] = VARIANT_KEY, sort: bool = True
) -> pl.DataFrame:
    """One row per aligned variant, by the duplicate rule (:func:`~crosscohort.contract.row_rules.duplicate_order`).

    The result is sorted by ``key``. For the variant key the rows are ordered by one
    packed int64 (:mod:`._keys`) and only groups of duplicates (rare) are sorted on
    their columns; other keys, or values a packed key cannot hold, sort the columns.
    ``sort=False`` (variant key only) keeps the surviving rows in file order: the
    same rows, without gathering a whole unsorted cohort into key order (for a
    caller that orders rows itself, as the meta-analysis does per chromosome).
    """
    tie, tie_desc = duplicate_order(df.columns, row=_ROW)
    order, desc = [*key, *tie], [False] * len(key) + tie_desc
    packed = variant_keys(df) if tuple(key) == VARIANT_KEY else None
    if packed is None:
        out = df.sort(order, descending=desc, nulls_last=True).unique(
            subset=list(key), keep="first", maintain_order=True
        )
        ledger.remove("duplicate", df.height - out.height)
        return out
    rows = _first_per_key(df, packed, tie, tie_desc)
    ledger.remove("duplicate", df.height - rows.size)
    if not sort:
        if rows.size == df.height:
            return df
        kept = np.zeros(df.height, dtype=bool)
        kept[rows] = True
        return df.filter(pl.Series(kept))
    return df if _is_identity(rows, df.height) else df[rows]


def _is_identity(rows: np.ndarray, n: int) -> bool:
    """Whether ``rows`` is ``0, 1, ..., n - 1`` (then a gather would only copy the frame)."""
    return rows.size == n and bool(np.array_equal(rows, np.arange(n)))


def _first_per_key(ties: pl.DataFrame, keys: np.ndarray, order: list[str],
                   desc: list[bool], *, at: np.ndarray | None = None) -> np.ndarray:
    """Row positions sorting ``keys`` (stably), one per key: the first by ``order`` among equals.

    ``ties`` holds the tie-break columns, row for row with ``keys`` (or, with ``at``,
    row ``at[i]`` for key ``i``); only the groups of equal keys (rare) are sorted on them.
    """
    if keys.size < 2 or bool(np.all(keys[1:] >= keys[:-1])):
        # Already in order (a file sorted by position): the stable sort is the identity.
        rows = np.arange(keys.size)
        ks = keys
    else:
        rows = np.argsort(keys, kind="stable")
        ks = keys[rows]
    dup = ks[1:] == ks[:-1]
    if dup.any():
        in_group = np.zeros(ks.size, dtype=bool)
        in_group[1:] |= dup
        in_group[:-1] |= dup
        grouped = rows[in_group]
        sub = ties[grouped if at is None else at[grouped]].select(order).with_columns(
            pl.Series("_key", ks[in_group]), pl.Series("_at", np.flatnonzero(in_group))
        ).sort(["_key", *order], descending=[False, *desc], nulls_last=True)
        loser = (sub.get_column("_key") == sub.get_column("_key").shift(1)).fill_null(False)
        keep = np.ones(ks.size, dtype=bool)
        # A group's rows are adjacent and share the key: dropping the losers keeps the order.
        keep[sub.filter(loser).get_column("_at").to_numpy()] = False
        rows = rows[keep]
    return rows


def harmonise_cohort(
    df: pl.DataFrame,
    *,
    cohort: str,
    reference: pl.DataFrame | ReferencePanel | None = None,
    trait: str | None = None,
    palindrome_max_maf: float = 0.4,
    source: str | None = None,
    keep_marker_only: bool = False,
    eaf_max_diff: float = EAF_MAX_DIFF,
    variant_ids: bool = True,
) -> tuple[pl.DataFrame, Ledger]:
    """One cohort's summary statistics, value-checked, aligned and de-duplicated, with its ledger.

    See :func:`harmonise` for the rules. ``reference`` must already be
    prepared (:func:`read_reference` or :func:`prepare_reference`), and is best
    passed as a :class:`ReferencePanel` (:func:`compact_reference`) when several
    cohorts use it, so that it is packed once.
    ``variant_ids=False`` leaves out the ``variant_id`` column (a string per
    row) for a caller that keys variants itself, as the meta-analysis does.
    """
    return _harmonise_cohort(
        [df], cohort=cohort, reference=reference, trait=trait,
        palindrome_max_maf=palindrome_max_maf, source=source, keep_marker_only=keep_marker_only,
        eaf_max_diff=eaf_max_diff, variant_ids=variant_ids,
    )


def _harmonise_cohort(
    box: list[pl.DataFrame],
    *,
    cohort: str,
    reference: pl.DataFrame | ReferencePanel | None,
    trait: str | None,
    palindrome_max_maf: float,
    source: str | None,
    keep_marker_only: bool,
    eaf_max_diff: float,
    variant_ids: bool,
    sort: bool = True,
) -> tuple[pl.DataFrame, Ledger]:
    """:func:`harmonise_cohort` of the one frame in ``box``, which it takes out.

    ``sort=False``: without a reference, positioned rows stay in file order
    (:func:`_deduplicate`); with one, or for marker-only rows, nothing changes.

    A caller that holds no other reference to the frame (the command's pipeline)
    lets its raw columns (chromosome labels, unnormalised alleles) go as soon as
    they are converted, instead of holding them through the alignment.
    """
    df = box.pop()
    source = source or cohort
    ledger = Ledger(stage="harmonise", cohort=cohort, trait=trait, n_in=df.height)
    work = _prepare(df, source=source)
    del df
    has_markers = keep_marker_only and "rsid" in work.columns
    if has_markers:
        # Rows keyed by marker name alone (METAL/GWAMA files without CHR/POS) are not
        # bad values: they are exempt from the position rules and aligned apart.
        work = work.with_columns(
            marker_only().alias(_MARKER_ONLY)
        )

    failures = value_failures(work.columns)
    if has_markers:
        for rule in ("chromosome", "base_pair_location"):
            failures[rule] = failures[rule] & ~pl.col(_MARKER_ONLY)
    # All rules in one pass: a rule counts the rows that break it and no earlier rule,
    # exactly what filtering rule after rule counts; one filter at the end, if any.
    counts, keep = [], pl.lit(True)
    for rule in VALUE_RULES:
        bad = failures[rule]
        counts.append((bad & keep).sum().alias(rule))
        keep = keep & ~bad.fill_null(True)
    # Usually no row breaks any rule: one pass says so. The counts' expressions grow with
    # each rule (every earlier rule's mask), about forty column passes at eleven rules.
    if work.select(pl.any_horizontal([failures[r].fill_null(True) for r in VALUE_RULES])
                   .any()).item():
        n_bad = work.select(counts).row(0, named=True)
    else:
        n_bad = dict.fromkeys(VALUE_RULES, 0)
    for rule in VALUE_RULES:
        ledger.remove(f"bad_value_{rule}", int(n_bad[rule]))
    if any(n_bad.values()):
        work = work.filter(keep)

    markers = None
    if has_markers and not work.get_column(_MARKER_ONLY).any():
        # The usual case: no marker-only row, so no copy of the cohort to split it off.
        markers, work = work.clear().drop(_MARKER_ONLY), work.drop(_MARKER_ONLY)
    elif has_markers:
        markers = work.filter(pl.col(_MARKER_ONLY)).drop(_MARKER_ONLY)
        work = work.filter(~pl.col(_MARKER_ONLY)).drop(_MARKER_ONLY)
    if reference is None:
        work = _deduplicate(_align_canonical(work), ledger, sort=sort)
    else:
        for reason in ("not_in_reference", "allele_mismatch", "palindrome_ambiguous"):
            ledger.remove(reason, 0)
        panel = compact_reference(reference)
        if panel is not None and not set(work.columns) & _PANEL_PATH_NAMES:
            work = _align_to_panel(
                work, panel, ledger=ledger, palindrome_max_maf=palindrome_max_maf,
                eaf_max_diff=eaf_max_diff,
            )
        else:
            # Positions beyond 32 bits, or cohort columns the join would rename: the join.
            frame = reference.to_frame() if isinstance(reference, ReferencePanel) else reference
            work = _deduplicate(_align_to_reference_join(
                work, frame, ledger=ledger, palindrome_max_maf=palindrome_max_maf,
                eaf_max_diff=eaf_max_diff,
            ), ledger)
    if markers is not None and markers.height:
        if reference is not None:
            # A reference aligns by position; a marker it could not place cannot be aligned to it.
            ledger.remove("not_in_reference", markers.height)
        else:
            markers = _deduplicate(
                _align_canonical(markers), ledger, key=("rsid", "other_allele", "effect_allele")
            )
            work = pl.concat([work, markers.with_columns(pl.lit(True).alias(_MARKER_ONLY))],
                             how="diagonal_relaxed")
    # Changes are counted on the rows kept, so a planted swap shows up exactly once.
    for flag, reason in _CHANGE_FLAGS.items():
        if flag in work.columns:
            ledger.change(reason, int(work.get_column(flag).sum()))
            work = work.drop(flag)
    if FLAG_EAF_FAR in work.columns:
        # Kept and shown (column and ledger), never dropped: ancestry differs between cohorts.
        ledger.change("eaf_far_from_reference_flagged",
                      int(work.get_column(FLAG_EAF_FAR).fill_null(False).sum()))
    if variant_ids:
        work = work.with_columns(
            variant_id(
                pl.col("chromosome"), pl.col("base_pair_location"),
                pl.col("other_allele"), pl.col("effect_allele"),
            )
        )
    elif "variant_id" in work.columns:
        work = work.drop("variant_id")
    # Already in order: _deduplicate sorted the positioned rows by VARIANT_KEY and the
    # marker-only rows (appended last) by marker name and alleles.
    work = work.drop(_ROW, *([_MARKER_ONLY] if _MARKER_ONLY in work.columns else []))
    ledger.n_kept = work.height
    return work, ledger.check()


def harmonise(
    tables: dict[str, pl.DataFrame],
    *,
    reference: pl.DataFrame | None = None,
    trait: str | None = None,
    palindrome_max_maf: float = 0.4,
    sources: dict[str, str] | None = None,
    keep_marker_only: bool = False,
    eaf_max_diff: float = EAF_MAX_DIFF,
) -> HarmonisedSet:
    """Every cohort aligned to one allele orientation, with a ledger of what was dropped or changed.

    Parameters
    ----------
    tables
        Cohort id -> GWAS-SSF frame (:func:`crosscohort.contract.sumstats.read_sumstats`;
        ``chromosome`` may be labels such as ``chr1`` or ``X``).
    reference
        Forward-strand panel with ``chromosome, base_pair_location, ref, alt,
        alt_frequency``; ``None`` aligns to the canonical order (below).
    trait
        Recorded in each ledger.
    palindrome_max_maf
        A/T and C/G SNPs are kept only when the cohort's minor allele
        frequency is at most this, so that the frequency can tell the strand.
    sources
        Cohort id -> file name, used in error messages.
    keep_marker_only
        Keep rows with neither chromosome nor position but a marker name
        (``rsid``), as METAL and GWAMA do (and ``crosscohort harmonise``
        always does): without a reference they take the position the other
        cohorts give their marker name (:mod:`crosscohort.central.harmonise.markers`),
        else are put in canonical allele order, de-duplicated on (rsid,
        other, effect allele) and placed after all positioned rows (null
        ``variant_id``); with a reference they are ``not_in_reference``.
        Off: such rows are ``bad_value_chromosome``.
    eaf_max_diff
        With a reference: rows whose aligned EAF differs from the panel's ALT
        frequency by more than this get :data:`FLAG_EAF_FAR` = True (kept;
        ``changed.eaf_far_from_reference_flagged``). Without one the check is
        against the other cohorts, at meta-analysis
        (:func:`crosscohort.central.meta.meta_analyse`).

    Returns
    -------
    HarmonisedSet
        Aligned frames (``variant_id`` rebuilt as ``chrom:pos:other:effect``) and ledgers.

    Notes
    -----
    The frames go through the command's driver
    (:func:`crosscohort.central.harmonise.driver.harmonise_reads`, as
    :func:`crosscohort.central.harmonise.readers.harmonise_files` runs it on
    files), so these rules are applied by the same code either way.

    Rules, in order; a removed row is counted once, under the first rule it breaks:

    1. Values (``bad_value_<column>``): chromosome label known to
       :func:`~crosscohort.contract.sumstats.chrom_code`; position > 0; alleles
       non-empty and different (``bad_value_alleles``); finite beta; finite
       SE > 0; p in (0, 1], or p = 0 / NA with a finite ``neg_log_10_p_value``;
       ``neg_log_10_p_value`` (when given) finite and >= 0; EAF in [0, 1] or
       NA; n > 0 or NA. NA is never read as 0.
    2. Alignment with a reference: effect allele := ALT, other := REF.
       Exact match kept; swapped (effect = REF) -> beta negated, EAF
       mirrored (``changed.allele_swapped``); complement alleles ->
       complemented (``changed.strand_flipped``), possibly also swapped.
       Indels and other multi-base alleles are matched exactly or swapped,
       never complemented. Palindromic SNPs (A/T, C/G): first the cohort's
       strand consensus (:func:`strand_consensus`, from its other SNPs):
       on a forward (reverse) cohort the labels are read as written
       (complemented) and matched like any SNP, with no appeal to
       frequencies, which differ between ancestries. On a mixed-strand
       cohort the frequency decides: the reading (keep sign, or negate)
       whose ALT frequency is closer to the reference's wins
       (``changed.palindrome_resolved_by_eaf`` when that negates beta); they
       are dropped as ``palindrome_ambiguous`` when the cohort MAF exceeds
       ``palindrome_max_maf``, EAF or the reference frequency is missing, or
       both readings are equally close.
       Dropped: ``not_in_reference`` (no panel row at the position),
       ``allele_mismatch`` (rows at the position, none matching).
    3. Alignment without a reference: the alleles are taken as given (on the
       forward strand, as GWAS-SSF requires; strand cannot be judged without
       a reference, so nothing is complemented) and each pair is put in
       byte order, ``other_allele < effect_allele`` (A/G -> effect G; A/AT ->
       effect AT). The rule depends only on the pair, so every cohort, in
       any order, gets the same orientation. Swaps are counted as
       ``changed.allele_swapped``.
    4. Duplicates (same chromosome, position, other and effect allele after
       alignment): the row with the largest n is kept, ties broken by the
       smallest SE, then by file order; the rest are ``duplicate``.
    """
    check_harmonise_options(palindrome_max_maf=palindrome_max_maf, eaf_max_diff=eaf_max_diff)
    from crosscohort.central.harmonise.driver import harmonise_reads
    from crosscohort.central.harmonise.readers import ReadResult

    sources = sources or {}
    for cohort in tables:
        check_cohort_name(cohort)
    ref = prepare_reference(reference) if reference is not None else None
    if ref is not None:
        # Packed once for every cohort (the frame when positions exceed 32 bits).
        ref = compact_reference(ref) or ref
    # The frames as the command's reader hands files on: nothing removed by the reader.
    reads = ((cohort, None, ReadResult(table=df, source=sources.get(cohort, cohort),
                                       format="frame", columns={}, n_rows=df.height))
             for cohort, df in tables.items())
    return harmonise_reads(reads, list(tables), reference=ref, trait=trait,
                           palindrome_max_maf=palindrome_max_maf, eaf_max_diff=eaf_max_diff,
                           keep_marker_only=keep_marker_only)


def write_harmonised(result: HarmonisedSet, out_dir: str | Path) -> list[Path]:
    """Write ``out_dir/{cohort}.tsv.gz`` per cohort and ``out_dir/ledger.json`` (a list)."""

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [
        write_sumstats(df, out_dir / f"{cohort}.tsv.gz") for cohort, df in result.tables.items()
    ]
    written.append(write_ledgers(result.ledgers.values(), out_dir / "ledger.json"))
    return written


def left_normalise(
    df: pl.DataFrame, genome, *, a: str = "other_allele", b: str = "effect_allele"
) -> tuple[pl.DataFrame, int]:
    """Indels left-aligned and trimmed against the genome (Tan et al. 2015), with the count changed.

    Parameters
    ----------
    df
        Rows with numeric ``chromosome``-able labels, ``base_pair_location``
        and the allele columns ``a`` and ``b`` (the rule is symmetric in them).
    genome
        :class:`crosscohort.central.harmonise.build.Genome`: ``base(chrom, pos)`` and
        ``sequence(chrom, start, end)`` (1-based, inclusive).

    Returns
    -------
    (frame, n_changed)
        Rows whose position or alleles changed get the normalised ones.

    Notes
    -----
    The algorithm of ``bcftools norm``/``vt normalize``: while both alleles
    end in the same base, drop it (and when one becomes empty, prepend the
    base before the position and move left); then drop common leading bases
    while both alleles are longer than one. SNPs and rows without a position
    pass untouched. So ``1:101 CA/CAA`` in an ``AAA`` run becomes the left-most
    ``1:99 T/TA``-style representation every cohort shares, and indels are
    matched exactly afterwards (never by strand).
    """
    xa, xb = pl.col(a), pl.col(b)
    cand = (
        (xa.str.len_chars() != xb.str.len_chars()) | (xa.str.len_chars() > 1)
    ) & pl.col("base_pair_location").is_not_null() & xa.is_not_null() & xb.is_not_null() & (xa != xb)
    sub = df.with_row_index("_ln_row").filter(cand.fill_null(False))
    if sub.height == 0:
        return df, 0
    codes = normalise_chromosomes(sub.get_column("chromosome"))
    rows, new_pos, new_a, new_b = [], [], [], []
    for row, chrom, pos, ra, rb in zip(sub.get_column("_ln_row").to_list(), codes.to_list(),
                                       sub.get_column("base_pair_location").to_list(),
                                       sub.get_column(a).to_list(), sub.get_column(b).to_list(),
                                       strict=True):
        if chrom is None or not set(ra + rb) <= set("ACGTN"):
            continue
        p, x, y = pos, ra, rb
        for _ in range(10_000):  # bounded: a repeat longer than this is left where it is
            if x and y and x[-1] == y[-1]:
                x, y = x[:-1], y[:-1]
            elif not x or not y:
                if p <= 1:
                    break
                base = genome.base(chrom, p - 1)
                if base is None:
                    break
                p, x, y = p - 1, base + x, base + y
            else:
                break
        while len(x) > 1 and len(y) > 1 and x[0] == y[0]:
            x, y, p = x[1:], y[1:], p + 1
        if not x or not y:
            continue
        if (p, x, y) != (pos, ra, rb):
            rows.append(row)
            new_pos.append(p)
            new_a.append(x)
            new_b.append(y)
    if not rows:
        return df, 0
    fix = pl.DataFrame({"_ln_row": pl.Series(rows, dtype=pl.UInt32), "_ln_pos": new_pos,
                        "_ln_a": new_a, "_ln_b": new_b},
                       schema_overrides={"_ln_pos": pl.Int64})
    out = df.with_row_index("_ln_row").join(fix, on="_ln_row", how="left",
                                            maintain_order="left").with_columns(
        pl.coalesce("_ln_pos", "base_pair_location").cast(pl.Int64).alias("base_pair_location"),
        pl.coalesce("_ln_a", a).alias(a),
        pl.coalesce("_ln_b", b).alias(b),
    ).drop("_ln_row", "_ln_pos", "_ln_a", "_ln_b")
    return out.select(df.columns), len(rows)
