"""The harmonisation driver: one cohort read at a time, checked, aligned, counted and stored.

Both entry points run it: :func:`crosscohort.central.harmonise.readers.harmonise_files`
(the command's: files of any format, read one after the other) and
:func:`crosscohort.central.harmonise.align.harmonise` (frames already in
memory, as the tests and scripts call it). So the rules the tests check are
the rules the command applies, in the same order: markers placed by the
reference's ids, the build checked (and lifted over), indels left-normalised,
values checked and alleles aligned
(:func:`crosscohort.central.harmonise.align.harmonise_cohort`), the reader's
counts folded into the ledger, marker-only rows placed once every cohort's
positions are known (:mod:`crosscohort.central.harmonise.markers`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path

import polars as pl

from crosscohort.central.harmonise import markers
from crosscohort.central.harmonise.align import (
    HarmonisedSet,
    ReferencePanel,
    _harmonise_cohort,
    left_normalise,
    write_harmonised,
)
from crosscohort.central.harmonise.readers import ReadResult, reader_flags
from crosscohort.contract.sumstats import marker_only, read_sumstats, write_sumstats

__all__ = ["harmonise_reads"]


def _columns(table: pl.DataFrame, names: list[str]) -> pl.DataFrame:
    """Some of a frame's columns, as they are: no copy."""
    return pl.DataFrame([table.get_column(c) for c in names])


def _fold_reader_counts(table: pl.DataFrame, ledger, rd: ReadResult, removed: dict[str, int],
                        changed: dict[str, int]) -> pl.DataFrame:
    """Reader and build counts into the cohort's ledger; private flag columns summed and dropped."""
    for reason, k in {**rd.removed, **removed}.items():
        ledger.n_in += k
        ledger.remove(reason, k)
    for reason, k in changed.items():
        ledger.change(reason, k)
    flags = reader_flags(table.columns)
    for c, reason in flags.items():
        ledger.change(reason, int(table.get_column(c).fill_null(False).sum()))
    ledger.check()
    return _columns(table, [c for c in table.columns if c not in flags])


def harmonise_reads(
    reads: Iterable[tuple[str, Path | None, ReadResult]],
    cohorts: list[str],
    *,
    reference: pl.DataFrame | ReferencePanel | None,
    reference_path: str | Path | None = None,
    genome=None,
    chain: str | Path | None = None,
    target: str | None = None,
    cohort_builds: Mapping[str, str] | None = None,
    trait: str | None = None,
    palindrome_max_maf: float = 0.4,
    eaf_max_diff: float,
    variant_ids: bool = True,
    keep: tuple[str, ...] | None = None,
    keep_marker_only: bool = True,
    out_dir: Path | None = None,
) -> HarmonisedSet:
    """Harmonise cohorts read one at a time; the options are checked by the callers.

    Parameters
    ----------
    reads
        ``(cohort, path or None, ReadResult)`` per cohort, in input order; each is
        taken as it comes, so a generator holds one cohort's rows at a time.
    cohorts
        The cohort ids in input order (the order of the returned tables).
    reference
        The prepared panel (:func:`~crosscohort.central.harmonise.align.prepare_reference`,
        best packed by :func:`~crosscohort.central.harmonise.align.compact_reference`), or None.
    reference_path
        The panel's file, whose marker ids place marker-only rows (read when a cohort has some).
    genome, chain, target, cohort_builds
        Build check and liftover (:func:`crosscohort.central.harmonise.build.check_build`),
        applied when one of ``genome``, ``chain``, ``target`` is given; a cohort's
        declared build is ``cohort_builds[cohort]``, else its bundle's.
    trait, palindrome_max_maf, eaf_max_diff, variant_ids, keep_marker_only
        Passed to :func:`~crosscohort.central.harmonise.align.harmonise_cohort`.
    keep
        Columns kept in the returned tables (``None``: all); the tables are then
        not sorted (the meta-analysis sorts each part itself).
    out_dir
        Write each cohort's table there as it is done (the returned set then
        holds the ledgers only) and the ledger at the end.
    """
    from crosscohort.central.harmonise import build as buildmod

    tables: dict[str, pl.DataFrame] = {}
    ledgers = {}
    deferred: dict[str, pl.DataFrame] = {}  # cohorts with marker-only rows, placed last
    written: dict[str, Path] = {}
    ids: pl.DataFrame | None = None  # the reference's marker ids, read only when needed

    def store(cohort: str, aligned: pl.DataFrame) -> None:
        if out_dir is not None:
            written[cohort] = write_sumstats(aligned, Path(out_dir) / f"{cohort}.tsv.gz")
        else:
            tables[cohort] = aligned if keep is None else _columns(
                aligned, [c for c in aligned.columns if c in keep])

    for cohort, path, rd in reads:
        table = rd.table
        rd = replace(rd, table=table.clear())
        unplaced = marker_only() if "rsid" in table.columns else pl.lit(False)
        if reference_path and table.select(unplaced.any()).item():
            if ids is None:
                ids = buildmod.read_reference_ids(reference_path)
            if ids is not None:
                table = buildmod.place_markers(table, ids)
        removed: dict[str, int] = {}
        changed: dict[str, int] = {}
        if genome is not None or chain is not None or target is not None:
            # Builds matter only when asked about: a bundle declaring an assembly we do not
            # know (NCBI36) is still harmonised as before without --fasta/--chain/--build.
            declared = ((cohort_builds or {}).get(cohort)
                        or (buildmod.declared_build(path) if path is not None else None))
            table, removed, changed, _ = buildmod.check_build(
                table, cohort=cohort, source=rd.source, declared=declared, target=target,
                genome=genome, chain=chain,
            )
        if genome is not None:
            table, n_norm = left_normalise(table, genome)
            changed["indel_left_normalised"] = n_norm
        # Handed over in a box, so the raw columns go as soon as alignment has converted them.
        box = [table]
        del table
        aligned, ledger = _harmonise_cohort(
            box, cohort=cohort, reference=reference, trait=trait,
            palindrome_max_maf=palindrome_max_maf, source=rd.source,
            keep_marker_only=keep_marker_only, eaf_max_diff=eaf_max_diff,
            variant_ids=variant_ids,
            # Tables handed to the meta-analysis (``keep``) need no key order: it splits
            # them by chromosome and sorts each part's keys itself. Unsorted files then
            # skip a random gather of every column (benchmarks/README.md, issue 20).
            sort=out_dir is not None or keep is None,
        )
        aligned = _fold_reader_counts(aligned, ledger, rd, removed, changed)
        ledgers[cohort] = ledger
        if reference is None and markers.has_marker_only(aligned):
            # Placed once every cohort's positions are known (markers.py).
            deferred[cohort] = aligned
        else:
            store(cohort, aligned)
        del aligned
    if deferred:
        sources: list = [t for t in (*tables.values(), *deferred.values()) if "rsid" in t.columns]
        for cohort in written:
            cols = read_sumstats(written[cohort], required=(),
                                 columns=("rsid", "chromosome", "base_pair_location"))
            if "rsid" in cols.columns:
                sources.append(cols)
        # Files of marker names only (GWAMA's usual input): nothing can place them.
        placeable = any(t.get_column("chromosome").null_count() < t.height for t in sources)
        if placeable:
            names = pl.concat([markers.marker_names(t) for t in deferred.values()]).unique()
            positions = markers.marker_positions(sources, names)
        del sources
        for cohort in list(deferred):
            table = deferred.pop(cohort)
            if placeable:
                table = markers.place_by_marker(table, positions, ledgers[cohort],
                                                variant_ids=variant_ids)
            else:
                ledgers[cohort].remove(markers.CONFLICT, 0)
                ledgers[cohort].change(markers.PLACED, 0)
            store(cohort, table)
        # Tables in input order (the direction string follows it).
        tables = {c: tables[c] for c in cohorts if c in tables}
    result = HarmonisedSet(tables=tables, ledgers=ledgers, reference_used=reference is not None)
    if out_dir is not None:
        write_harmonised(result, out_dir)
    return result
