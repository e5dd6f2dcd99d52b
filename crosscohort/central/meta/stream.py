"""Meta-analysis one chromosome at a time, written as it goes: memory bounded by the largest chromosome.

Variants are independent, so the per-variant statistics of
:func:`crosscohort.central.meta.meta_analyse` can be computed on one chromosome of
every cohort at a time and appended to the output. Only three things are
genome-wide and kept across chromosomes: each cohort's λ_GC (a median of
its z^2, kept as one float vector per cohort; with genomic control applied
it must be known before combining, so a first pass computes it), the
meta-analysis λ (a median of the output's -log10 p, one float vector) and
the summary's counts (sums). The output is the same bytes as writing
:func:`~crosscohort.central.meta.meta_analyse`'s table with
:func:`~crosscohort.contract.sumstats.write_sumstats` (tests/test_meta_stream.py
compares them).

The same driver serves :func:`meta_analyse` (in memory, the whole input as
one part: :func:`whole_part`) and :func:`meta_analyse_to_file` (the
command), so tests and production run the same code. Sources of parts:

- :func:`whole_part`: tables in memory as one part (:func:`meta_analyse`).
- :func:`memory_parts`: tables already in memory (the standalone call, which
  harmonises raw files in-process), cut to the columns the meta-analysis
  reads and split by chromosome (slices when a table is sorted by
  chromosome; a stable sort by chromosome otherwise).
- :func:`file_parts`: harmonised ``.tsv``/``.tsv.gz`` tables (the workflow's
  call), decompressed with ISA-L in blocks cut at line ends and parsed with
  polars, one chromosome of each file handed out at a time. Harmonisation
  writes them sorted by chromosome; a file whose chromosomes are not in
  ascending order (each in one run) raises :class:`Unsorted`, and the
  caller falls back to :func:`memory_parts` (correct, not bounded).
"""

from __future__ import annotations

import collections
import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from crosscohort.central.meta.ivw import (
    METHODS,
    MetaResult,
    axis_marker_eaf,
    cohort_z2,
    combine_part,
    gc_factors,
    mrmega_chi2,
    summary_counts,
    summary_dict,
)
from crosscohort.central.meta.mrmega import (
    DEFAULT_AXES,
    MrMegaModel,
    axes_from_eaf,
    check_axes,
    gco_lambda,
)
from crosscohort.central.meta.stacking import (
    STUDY_COLUMNS,
    Stacked,
    check_cohort_order,
    cohort_rows,
    stack_frames,
    with_present,
)
from crosscohort.contract.errors import InputError
from crosscohort.contract.keys import EAF_MAX_DIFF, VARIANT_KEY, check_eaf_max_diff
from crosscohort.contract.ledger import Ledger
from crosscohort.contract.stats import lambda_gc
from crosscohort.contract.sumstats import (
    REQUIRED,
    chromosome_parts,
    marker_only,
    open_gzip_writer,
    order_columns,
    schema_for,
)
from crosscohort.contract.table_io import (
    Blocks,
    check_header,
    header_line,
    header_names,
    ordered_map,
    parse_block,
)
from crosscohort.runtime.atomic import write_json
from crosscohort.runtime.uncached import UncachedFile

__all__ = [
    "StreamedMeta",
    "Unsorted",
    "file_parts",
    "memory_parts",
    "meta_analyse",
    "whole_part",
    "meta_analyse_to_file",
]

#: Sort position of the part holding rows without a chromosome (marker-name rows): last.
_NO_CHROM = np.iinfo(np.int64).max
#: Parts combined at once (the machines this is tuned on have 2 cores).
COMBINE_WORKERS = 2
#: Columns whose presence changes the output's columns (the others only fill NaN).
_SCHEMA_COLUMNS = ("rsid", "n", "n_cases", "n_controls")


class Unsorted(Exception):
    """A file's chromosomes are not in ascending runs: it cannot be read one chromosome at a time."""


@dataclass
class Parts:
    """Where the parts come from: ``parts()`` yields, per chromosome in ascending order
    (rows without one last), one :func:`cohort_rows` frame per cohort (``canonical``
    order; empty frames for cohorts without that chromosome).
    ``present`` is column -> some cohort reports it (``None``: known only after a pass)."""

    parts: Callable[[], Iterator[tuple[int, list[pl.DataFrame]]]]
    present: dict[str, bool] | None
    assumed: dict[str, bool] = field(default_factory=dict)  # from headers, when present is None


def _runs(codes: np.ndarray) -> list[tuple[int, int, int]]:
    """(code, start, stop) of each run of equal values."""
    if codes.size == 0:
        return []
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
    stops = np.r_[starts[1:], codes.size]
    return [(int(codes[a]), int(a), int(b)) for a, b in zip(starts, stops, strict=True)]


def _codes(frame: pl.DataFrame) -> np.ndarray:
    return frame.get_column("chromosome").cast(pl.Int64).fill_null(_NO_CHROM).to_numpy()


def whole_part(tables: dict[str, pl.DataFrame], canonical: list[str], *, samplesize: bool) -> Parts:
    """All of in-memory tables as one part (every chromosome at once), cut to the meta columns.

    What :func:`meta_analyse` runs the driver over: the per-chromosome runs
    (:func:`memory_parts`, :func:`file_parts`) must give the same bytes
    (tests/test_meta_stream.py), whatever the split.
    """
    frames = [cohort_rows(tables[c], cohort=c, idx=i, samplesize=samplesize)
              for i, c in enumerate(canonical)]
    present = {c: any(c in f.columns and f.get_column(c).null_count() < f.height for f in frames)
               for c in STUDY_COLUMNS}
    return Parts(parts=lambda: iter([(0, frames)]), present=present)


def memory_parts(tables: dict[str, pl.DataFrame], canonical: list[str], *, samplesize: bool,
                 take: bool = False) -> Parts:
    """Parts of in-memory tables: each cut to the meta columns and split by chromosome.

    ``take``: each table is removed from ``tables`` once split, so that an
    unsorted table (put in chromosome order by a gather) and its sorted copy
    are in memory one cohort at a time, not all at once.
    """
    frames: list[pl.DataFrame] = []
    split: list[dict[int, pl.DataFrame]] = []
    for i, c in enumerate(canonical):
        f = cohort_rows(tables.pop(c) if take else tables[c], cohort=c, idx=i,
                         samplesize=samplesize)
        codes = _codes(f)
        if codes.size > 1 and (codes[1:] < codes[:-1]).any():
            # Stable: within a chromosome rows keep file order (the duplicate rule's "first").
            # Codes are 0-31 or _NO_CHROM: as one byte, numpy's stable sort is a radix sort
            # (one pass, not a merge sort of int64s).
            small = np.where(codes == _NO_CHROM, 255, codes).astype(np.uint8)
            idx = np.argsort(small, kind="stable")
            # Column by column, each made one chunk first: a table read in blocks has a
            # chunk per block, and a gather across chunks is the slower kind (measured in
            # benchmarks/README.md, issue 20). Each column in file order is let go once
            # gathered, so the cohort is held about once, not twice.
            at, columns, gathered = pl.Series(idx), f.get_columns(), []
            del f
            while columns:
                gathered.append(columns.pop(0).rechunk().gather(at))
            f = pl.DataFrame(gathered)
            codes = codes[idx]
            del at, gathered
        frames.append(f)
        split.append({code: f.slice(a, b - a) for code, a, b in _runs(codes)})
        del f
    present = {c: any(c in f.columns and f.get_column(c).null_count() < f.height for f in frames)
               for c in STUDY_COLUMNS}
    empty = [f.clear() for f in frames]

    def parts() -> Iterator[tuple[int, list[pl.DataFrame]]]:
        codes = sorted(set().union(*split)) or [_NO_CHROM]
        for code in codes:
            yield code, [s.get(code, empty[i]) for i, s in enumerate(split)]

    return Parts(parts=parts, present=present)


def _header(path: Path) -> list[str]:
    """The column names of a harmonised table, checked as :func:`~crosscohort.contract.sumstats.read_sumstats` checks them."""
    names = header_names(header_line(path))
    check_header(path, names, required=REQUIRED)
    return names


def _file_chunks(path: Path, *, cohort: str, idx: int, keep: tuple[str, ...], samplesize: bool,
                 block_bytes: int | None) -> Iterator[tuple[int, pl.DataFrame]]:
    """(chromosome code, rows) of one file, one chromosome at a time, in file order."""
    schema = schema_for(_header(path))
    wanted = [c for c in schema if c in keep]
    cur, pending, nulls, done = None, [], [], set()
    for block in Blocks(path, block_bytes=block_bytes):
        f = cohort_rows(parse_block(block, path=path, schema=schema, columns=wanted),
                         cohort=cohort, idx=idx, samplesize=samplesize)
        del block
        for code, a, b in _runs(_codes(f)):
            rows = f.slice(a, b - a)
            if code == _NO_CHROM:
                nulls.append(rows)  # marker-name rows: wherever they are, last
            elif code == cur:
                pending.append(rows)
            else:
                if cur is not None:
                    yield cur, pl.concat(pending, rechunk=False)
                    done.add(cur)
                if code in done or (cur is not None and code < cur):
                    raise Unsorted(f"{path}: chromosome {code} after {cur}, "
                                   "not in ascending runs")
                cur, pending = code, [rows]
    if cur is not None:
        yield cur, pl.concat(pending, rechunk=False)
    if nulls:
        yield _NO_CHROM, pl.concat(nulls, rechunk=False)


def file_parts(paths: dict[str, Path], canonical: list[str], *, keep: tuple[str, ...],
               samplesize: bool, block_bytes: int | None = None) -> Parts:
    """Parts of harmonised tables on disk, read one chromosome of each at a time.

    Blocks of ``block_bytes`` (default :data:`crosscohort.contract.table_io.BLOCK_BYTES`).
    Raises :class:`Unsorted` (from the iteration) for a file not in ascending chromosome runs.
    """
    headers = {c: _header(Path(paths[c])) for c in canonical}
    empty = []
    for i, c in enumerate(canonical):
        schema = schema_for(headers[c])
        empty.append(cohort_rows(pl.DataFrame(schema={k: v for k, v in schema.items() if k in keep}),
                                  cohort=c, idx=i, samplesize=samplesize))
    assumed = {col: any(col in f.columns and col in headers[c]
                        for c, f in zip(canonical, empty, strict=True))
               for col in STUDY_COLUMNS}

    def parts() -> Iterator[tuple[int, list[pl.DataFrame]]]:
        gens = [_file_chunks(Path(paths[c]), cohort=c, idx=i, keep=keep, samplesize=samplesize,
                             block_bytes=block_bytes) for i, c in enumerate(canonical)]
        any_part = False
        for code, frames in chromosome_parts(gens, empty):
            any_part = True
            yield code, frames
        if not any_part:
            yield _NO_CHROM, list(empty)

    return Parts(parts=parts, present=None, assumed=assumed)


@dataclass
class StreamedMeta:
    """What :func:`meta_analyse_to_file` computed besides the table it wrote.

    Attributes mirror :class:`~crosscohort.central.meta.MetaResult` (``cohorts``,
    ``method``, ``lambda_gc``, ``lambda_meta``, ``gc_applied``, ``ledgers``);
    ``counts`` are the summary's counts; ``significant`` the output rows with
    p below ``loo_threshold`` (input of :func:`crosscohort.central.loci.distance_loci`)
    and ``loo_tables`` each cohort's rows at those variants (input of
    :func:`~crosscohort.central.meta.leave_one_out`), when a threshold was given.
    """

    cohorts: tuple[str, ...]
    method: str
    lambda_gc: dict[str, float]
    lambda_meta: float
    gc_applied: dict[str, float]
    ledgers: dict[str, Ledger]
    counts: dict[str, int]
    significant: pl.DataFrame | None = None
    loo_tables: dict[str, pl.DataFrame] | None = None
    passes: int = 1
    mrmega: dict | None = None

    def summary(self) -> dict:
        """The same JSON as :meth:`MetaResult.summary` of the whole table."""
        return summary_dict(self.method, self.cohorts, self.counts, lambda_gc=self.lambda_gc,
                            lambda_meta=self.lambda_meta, gc_applied=self.gc_applied,
                            ledgers=self.ledgers, mrmega=self.mrmega)


class _Writer:
    """Tab-separated text appended part by part (header once) to a temporary name.

    The text is formatted and written by a thread of its own while the next
    part is combined (polars formats without holding the GIL): at 2M variants
    writing is the largest cost after reading. Parts are written in the order
    given; at most two wait, so memory holds at most three parts of output.
    """

    def __init__(self, path: Path, stack: ExitStack, *, gz: bool):
        self.tmp = path.with_name(f".{path.name}.tmp")
        self.path = path
        # The output is not read again here: written around the page cache (see uncached.py).
        self.fh = stack.enter_context(open_gzip_writer(self.tmp, uncached=True) if gz
                                      else UncachedFile(self.tmp))
        self.header_written = False
        self.last_empty: pl.DataFrame | None = None
        self.error: BaseException | None = None
        self.queue: queue.Queue = queue.Queue(maxsize=2)
        self.thread = threading.Thread(target=self._run, name=f"write {path.name}", daemon=True)
        self.thread.start()
        stack.callback(self._stop)  # before the file closes (last in, first out)

    def write(self, df: pl.DataFrame) -> None:
        if self.error is not None:
            raise self.error
        if df.height == 0:
            # A part with no rows has no say in the header (a whole table without rows
            # lacks rsid, for one): written only if no part has rows.
            self.last_empty = df
            return
        include_header = not self.header_written
        self.header_written = True
        if self.thread.is_alive():
            self.queue.put((df, include_header))
        else:
            self._write(df, include_header)

    def _write(self, df: pl.DataFrame, include_header: bool) -> None:
        df.write_csv(self.fh, separator="\t", null_value="NA", float_precision=None,
                     include_header=include_header)

    def _run(self) -> None:
        while (item := self.queue.get()) is not None:
            if self.error is not None:
                continue  # drain, so that the producer never blocks on a dead writer
            try:
                self._write(*item)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
                self.error = exc

    def _stop(self) -> None:
        if self.thread.is_alive():
            self.queue.put(None)
            self.thread.join()

    def finish(self) -> None:
        if not self.header_written and self.last_empty is not None:
            if self.thread.is_alive():
                self.queue.put((self.last_empty, True))
            else:
                self._write(self.last_empty, True)
        self._stop()
        if self.error is not None:
            raise self.error


def meta_analyse_to_file(
    source: Parts | Callable[[], Parts],
    cohorts: list[str],
    out: str | Path,
    *,
    method: str = "fixed",
    gc: bool = False,
    cohort_order: list[str] | None = None,
    eaf_max_diff: float = EAF_MAX_DIFF,
    n_in: dict[str, int] | None = None,
    tbl: str | Path | None = None,
    loo_threshold: float | None = None,
    pcs: int = DEFAULT_AXES,
    gco: bool = False,
) -> StreamedMeta:
    """:func:`~crosscohort.central.meta.meta_analyse` + :func:`~crosscohort.central.meta.write_meta`, one chromosome at a time.

    Parameters
    ----------
    source
        :func:`memory_parts` or :func:`file_parts` of the cohorts.
    cohorts
        The cohort ids (any order; arithmetic runs in sorted order as in
        ``meta_analyse``).
    out
        Output table (``.tsv``, ``.tsv.gz``; ``.parquet`` is written whole
        from the collected parts); ``out.summary.json`` beside it. Both
        appear only when complete (temporary name, then rename).
    method, gc, cohort_order, eaf_max_diff
        As :func:`~crosscohort.central.meta.meta_analyse`.
    tbl
        Also write METAL's ``.tbl`` layout there (:func:`crosscohort.central.meta.tbl.write_tbl`).
    loo_threshold
        Keep the output rows with p below it (``significant``) and each
        cohort's rows at them (``loo_tables``), for the leave-one-out step.
    pcs, gco
        ``method="mrmega"``: axes of genetic variation and genomic control
        of the output, as :func:`~crosscohort.central.meta.meta_analyse`.

    Returns
    -------
    StreamedMeta

    Notes
    -----
    Passes over the parts: with ``gc`` or ``method="mrmega"``, a first one
    computes each cohort's λ (value rules and de-duplication applied, as the
    whole-table run does) and keeps the EAFs of MR-MEGA's axis markers (one
    per Mb bin: a few thousand rows, whatever the input's size), before the
    one that combines; with ``gco`` one more computes the association
    chi-squares for their median (one float per variant kept, as the meta
    λ's -log10 p are). Reading from files, which columns a cohort
    reports is taken from the headers; should a column that changes the
    output's columns (``rsid``, ``n``, ``n_cases``, ``n_controls``) turn out
    empty in every file, the pass is redone with that knowledge (rare: a
    header naming a column no row fills).
    """
    streamed, _ = _run(source, cohorts, Path(out), method=method, gc=gc,
                       cohort_order=cohort_order, eaf_max_diff=eaf_max_diff, n_in=n_in, tbl=tbl,
                       loo_threshold=loo_threshold, pcs=pcs, gco=gco)
    return streamed


def meta_analyse(
    tables: dict[str, pl.DataFrame],
    *,
    method: str = "fixed",
    gc: bool = False,
    cohort_order: list[str] | None = None,
    eaf_max_diff: float = EAF_MAX_DIFF,
    pcs: int = DEFAULT_AXES,
    gco: bool = False,
) -> MetaResult:
    """Fixed-effect, random-effects, sample-size and MR-MEGA meta-analysis of harmonised summary statistics.

    Parameters
    ----------
    tables
        Cohort id -> harmonised GWAS-SSF frame of one trait. Variants are
        matched on ``chromosome, base_pair_location, other_allele,
        effect_allele`` (harmonisation makes the alleles agree).
    method
        ``fixed``, ``random`` or ``samplesize``: which estimate the summary
        reports as primary. ``beta``/``standard_error`` are always the
        fixed-effect estimate and the ``*_random`` columns always filled.
        ``p_value``/``neg_log_10_p_value`` are the fixed-effect test's, except
        with ``samplesize``, where they are the sample-size Z test's
        (``z_samplesize``), as METAL's ``SCHEME SAMPLESIZE`` reports.
        ``mrmega`` adds MR-MEGA's meta-regression on ``pcs`` axes of genetic
        variation (:mod:`crosscohort.central.meta.mrmega`; ``mrmega_*`` columns) and
        puts its association test's p in ``p_value``/``neg_log_10_p_value``.
    gc
        Genomic control of the inputs, as METAL's ``GENOMICCONTROL ON``:
        each cohort with λ > 1 has its SEs multiplied by sqrt(λ) (and, in the
        sample-size scheme, its z divided by sqrt(λ)) before combining.
    cohort_order
        Order of the direction string (default: the order of ``tables``);
        must name every cohort once.
    eaf_max_diff
        A cohort's EAF is *far* when it differs from the other cohorts' EAF at
        the variant (their mean with the weights of ``effect_allele_frequency``
        below, i.e. n-weighted when every EAF has its n) by more than this;
        :data:`~crosscohort.central.harmonise.align.FLAG_EAF_FAR` marks variants with
        a far cohort (kept), and each cohort's ledger counts its far rows as
        ``changed.eaf_far_from_other_cohorts_flagged``.
    pcs
        ``mrmega`` only: number T of axes of genetic variation (MR-MEGA
        ``--pc``); needs at least T + 3 cohorts.
    gco
        ``mrmega`` only: genomic control of the association chi-squares on
        output (MR-MEGA ``--gco``, :func:`crosscohort.central.meta.mrmega.gco_lambda`).

    Returns
    -------
    MetaResult

    Raises
    ------
    ConfigError
        On an unknown method or a ``cohort_order`` not naming every cohort once.
    InputError
        When a table lacks a key, beta or SE column or holds text in a numeric one.

    Notes
    -----
    Per variant: fixed-effect inverse-variance weighted beta, SE, p (from z,
    with -log10 p in log space so |z| = 40 gives 349.1, not infinity);
    Cochran's Q, ``het_df``, ``het_p`` (chi2 survival; NA when df = 0),
    ``het_i2``; DerSimonian-Laird ``tau2`` and random effects (see
    :func:`~crosscohort.central.meta.estimators.ivw_arrays`). Sample-size
    scheme (:func:`~crosscohort.central.meta.estimators.samplesize_arrays`): per cohort ``z_i = sign(beta_i) * Phi^-1(1 - p_i/2)`` from
    ``neg_log_10_p_value`` (else ``p_value``), weights ``sqrt(n_i)``.
    ``n`` = sum of n; ``n_cases``/``n_controls``
    summed over the cohorts reporting them; ``n_effective`` = sum of
    4/(1/cases + 1/controls) where a cohort reports both, else its n.
    ``effect_allele_frequency`` = n-weighted mean EAF when every cohort with
    an EAF for the variant reports n, else the plain mean; ``eaf_min``,
    ``eaf_max``. λ_GC = median(z²)/0.4549364 (chi-square 1-df median), via
    :func:`crosscohort.contract.stats.lambda_gc`.

    Rows with neither chromosome nor position but a marker name (``rsid``),
    as METAL and GWAMA key them, are matched on (rsid, other allele, effect
    allele) and placed after every positioned variant, in marker-name order
    (null ``variant_id``); they never match a positioned row.

    Rows left out, counted per cohort in :attr:`MetaResult.ledgers` (first
    rule broken): ``bad_value_key`` (null allele, or null chromosome or
    position without a marker name),
    ``bad_value_beta`` (NA/NaN/inf beta: never read as 0),
    ``bad_value_standard_error`` (SE NA, <= 0 or inf); with ``samplesize``
    also ``bad_value_p_value`` (no finite -log10 p and no p in (0, 1]) and
    ``bad_value_n`` (n NA or <= 0); ``duplicate`` (same variant twice in a
    cohort: largest n, then smallest SE, then first in file kept). A cohort
    left with no rows, or sharing no variant with the others, contributes
    ``?`` to the direction string and nothing else.

    It is the driver of ``crosscohort meta`` (:func:`meta_analyse_to_file`) run
    over one part, the whole of ``tables`` (:func:`whole_part`), with the output
    rows collected instead of written: the code the command runs on each
    chromosome, and the reference its per-chromosome split is tested against.
    """
    samplesize = method == "samplesize"
    streamed, result = _run(
        lambda: whole_part(tables, sorted(tables), samplesize=samplesize), list(tables), None,
        method=method, gc=gc, cohort_order=cohort_order, eaf_max_diff=eaf_max_diff, n_in=None,
        tbl=None, loo_threshold=None, pcs=pcs, gco=gco)
    parts = result["tables"]
    # The streamed result's attributes, with the rows and their EAF spread collected.
    same = ("cohorts", "method", "lambda_gc", "lambda_meta", "gc_applied", "ledgers", "mrmega")
    return MetaResult(table=pl.concat(parts) if parts else result["empty_part"],
                      eaf_se=np.concatenate(result["eaf_se"]) if parts else np.empty(0),
                      **{name: getattr(streamed, name) for name in same})


def _run(source: Parts | Callable[[], Parts], cohorts: list[str], out: Path | None, *,
         method: str, gc: bool, cohort_order: list[str] | None, eaf_max_diff: float,
         n_in: dict[str, int] | None, tbl: str | Path | None, loo_threshold: float | None,
         pcs: int, gco: bool) -> tuple[StreamedMeta, dict]:
    """The driver behind :func:`meta_analyse_to_file` and :func:`meta_analyse`.

    Checks the options, then runs the passes over the parts (see
    :func:`meta_analyse_to_file`'s Notes). ``out=None``: the output rows are
    collected (the second value's ``tables``, ``eaf_se``, ``empty_part``),
    nothing is written.
    """
    from crosscohort.central.meta.tbl import tbl_frame

    if method not in METHODS:
        from crosscohort.contract.errors import ConfigError

        raise ConfigError(f"meta-analysis method must be one of {METHODS}; got {method!r}")
    check_eaf_max_diff(eaf_max_diff)
    order = check_cohort_order(dict.fromkeys(cohorts), cohort_order)
    canonical = sorted(order)
    samplesize = method == "samplesize"
    mrmega = method == "mrmega"
    if mrmega:
        check_axes(len(canonical), pcs)
    parts_of = source if callable(source) and not isinstance(source, Parts) else (lambda: source)
    src = parts_of()
    present = src.present
    passes = 0

    def z2_pass(src: Parts, present: dict | None, spill: _Spill | None
                ) -> tuple[list[list[np.ndarray]], dict, list[np.ndarray]]:
        z2: list[list[np.ndarray]] = [[] for _ in canonical]
        seen = dict.fromkeys(STUDY_COLUMNS, False)
        markers: list[np.ndarray] = []
        has_eaf = np.zeros(len(canonical), dtype=bool)

        def first(code: int, frames: list[pl.DataFrame]) -> tuple:
            stacked, ledgers = stack_frames(frames, [f.height for f in frames], canonical,
                                            samplesize=samplesize, present=present)
            if spill is not None:
                spill.save(code, frames, stacked, ledgers)
            eaf = stacked.arrays.get("effect_allele_frequency") if mrmega else None
            return (cohort_z2(stacked), axis_marker_eaf(stacked) if mrmega else None,
                    None if eaf is None else np.isfinite(eaf).any(axis=1), stacked.present_here)

        # One thread stacks (and spills) a part while this one parses the next; one
        # thread, so the parts are spilled in order. At most two parts wait.
        for zz, marker, eaf_here, present_here in ordered_map(
                lambda part: first(*part), src.parts(), workers=1, ahead=1):
            for j, z in enumerate(zz):
                z2[j].append(z)
            if marker is not None:
                markers.append(marker)
            if eaf_here is not None:
                has_eaf |= eaf_here
            seen = {c: seen[c] or present_here[c] for c in seen}
        if spill is not None:
            spill.complete = True
        if mrmega and not has_eaf.all():
            raise InputError(
                "MR-MEGA's axes of genetic variation need every cohort's effect_allele_frequency; "
                f"cohort(s) {[c for c, h in zip(canonical, has_eaf, strict=True) if not h]} "
                "report none")
        return z2, seen, markers

    factors = None
    lambdas = None
    model = None
    spill = None
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
    if mrmega and src.present is None and out is not None:
        # MR-MEGA's axes need a pass over every file before the one that combines: the
        # first pass keeps its parts, stacked, which the later passes read back instead
        # of parsing and stacking the text again (benchmarks/README.md, issue 23).
        spill = _Spill(out, len(canonical), frames=loo_threshold is not None)
    try:
        return _passes(src, parts_of, spill, out, canonical=canonical, order=order,
                       present=present, method=method, gc=gc, gco=gco, pcs=pcs,
                       mrmega=mrmega, samplesize=samplesize, eaf_max_diff=eaf_max_diff,
                       n_in=n_in, tbl=tbl, loo_threshold=loo_threshold, tbl_frame=tbl_frame,
                       z2_pass=z2_pass, passes=passes, lambdas=lambdas, factors=factors,
                       model=model)
    finally:
        if spill is not None:
            spill.remove()


class _SpilledFrames(list):
    """A part's frames read back from a :class:`_Spill`, with its first pass's stacking."""

    stacked: Stacked
    ledgers: dict[str, Ledger]


class _Spill:
    """The parts of a first pass kept in a directory beside the output (removed at the
    end) and read back by the later passes.

    Each part is kept stacked (:class:`~crosscohort.central.meta.stacking.Stacked`
    and its ledgers, pickled: the arrays are written as they are in memory), so
    the later passes neither parse nor stack it again; its frames are kept
    (LZ4-compressed Arrow) only when ``frames`` (the leave-one-out step reads
    the cohorts' rows), else only their columns. Disk and time per row in
    benchmarks/README.md (MR-MEGA, issue 23).
    """

    def __init__(self, out: Path, k: int, *, frames: bool):
        import tempfile

        self.dir = Path(tempfile.mkdtemp(prefix=f".{out.name}.parts.", dir=out.parent))
        self.k = k
        self.frames = frames
        self.codes: list[int] = []
        self.complete = False

    def save(self, code: int, frames: list[pl.DataFrame], stacked: Stacked,
             ledgers: dict[str, Ledger]) -> None:
        import pickle

        i = len(self.codes)
        if self.frames:
            for j, f in enumerate(frames):
                f.write_ipc(self.dir / f"{i}.{j}.arrow", compression="lz4")
        kept = None if self.frames else [f.clear() for f in frames]
        with open(self.dir / f"{i}.pickle", "wb") as fh:
            pickle.dump((stacked, ledgers, kept), fh, protocol=pickle.HIGHEST_PROTOCOL)
        self.codes.append(code)

    def reading(self, src: Parts) -> Parts:
        def parts() -> Iterator[tuple[int, list[pl.DataFrame]]]:
            import pickle

            for i, code in enumerate(self.codes):
                with open(self.dir / f"{i}.pickle", "rb") as fh:
                    stacked, ledgers, kept = pickle.load(fh)
                if kept is None:
                    kept = [pl.read_ipc(self.dir / f"{i}.{j}.arrow") for j in range(self.k)]
                frames = _SpilledFrames(kept)
                frames.stacked, frames.ledgers = stacked, ledgers
                yield code, frames

        return Parts(parts=parts, present=src.present, assumed=src.assumed)

    def remove(self) -> None:
        import shutil

        shutil.rmtree(self.dir, ignore_errors=True)


def _stacked(frames: list[pl.DataFrame], canonical: list[str], *, samplesize: bool,
             present: dict | None) -> tuple[Stacked, dict[str, Ledger]]:
    """:func:`stack_frames` of a part, or its first pass's stacking when read back from a spill."""
    if isinstance(frames, _SpilledFrames):
        return (with_present(frames.stacked, present or frames.stacked.present,
                             samplesize=samplesize),
                frames.ledgers)
    return stack_frames(frames, [f.height for f in frames], canonical, samplesize=samplesize,
                        present=present)


def _passes(src, parts_of, spill, out, *, canonical, order, present, method, gc, gco, pcs,
            mrmega, samplesize, eaf_max_diff, n_in, tbl, loo_threshold, tbl_frame, z2_pass,
            passes, lambdas, factors, model) -> StreamedMeta:
    """The passes of :func:`meta_analyse_to_file` after its checks (see its Notes)."""
    if gc or mrmega:
        z2, seen, markers = z2_pass(src, present, spill)
        if spill is not None and spill.complete:
            src = spill.reading(src)
        passes += 1
        present = present or seen
        lambdas, factors = gc_factors(canonical, z2, gc=gc)
        del z2
        if mrmega:
            model = MrMegaModel(axes=axes_from_eaf(np.concatenate(markers), pcs))
    if mrmega and gco:
        # The output's λ is a genome-wide median: known only once every part is fitted.
        chi2 = []
        for _code, frames in src.parts():
            stacked, _ = _stacked(frames, canonical, samplesize=False, present=present)
            chi2.append(mrmega_chi2(stacked, factors, canonical, model.axes))
        passes += 1
        model = MrMegaModel(axes=model.axes, lambda_gco=gco_lambda(np.concatenate(chi2), pcs))
        del chi2
    while True:
        passes += 1
        result = _combine_pass(src, out, canonical=canonical, order=order,
                               present=present or src.assumed, factors=factors, method=method,
                               eaf_max_diff=eaf_max_diff, tbl=tbl, loo_threshold=loo_threshold,
                               tbl_frame=tbl_frame, mrmega=model)
        used = present or src.assumed
        if all(used[c] == result["seen"][c] for c in _SCHEMA_COLUMNS):
            break
        # A header named a column no row fills: its output column must go. Again, knowing.
        present = result["seen"]
        src = parts_of()
    for tmp, final in result["renames"]:
        tmp.replace(final)
    ledgers = result["ledgers"]
    if n_in is not None:
        for c, lg in ledgers.items():
            if lg.n_in != n_in[c]:
                raise InputError(f"cohort {c}: {n_in[c]} rows in, {lg.n_in} met in the parts")
    if lambdas is None:
        lambdas, factors = result["lambdas"]
    lam_meta = result["lambda_meta"]
    streamed = StreamedMeta(
        cohorts=tuple(order), method=method,
        lambda_gc={c: lambdas[c] for c in order}, lambda_meta=lam_meta,
        gc_applied={c: factors[c] for c in order},
        ledgers={c: ledgers[c] for c in order}, counts=result["counts"],
        significant=result["significant"], loo_tables=result["loo_tables"], passes=passes,
        mrmega=None if model is None else model.summary(canonical),
    )
    if out is not None:
        write_json(out.with_name(out.name + ".summary.json"), streamed.summary())
    return streamed, result


def _combine_pass(src: Parts, out: Path | None, *, canonical, order, present, factors, method,
                  eaf_max_diff, tbl, loo_threshold, tbl_frame, mrmega=None) -> dict:
    """One pass over the parts: combine, write (to temporary names) or collect, count.

    Parts are stacked and combined by :data:`COMBINE_WORKERS` threads and
    taken in order, so the counts, ledgers and output are those of one part
    after the other (an error is raised when its part's turn comes).
    """
    from crosscohort.central.meta.ivw import MetaResult
    from crosscohort.contract.stats import neg_log10_p_of_table

    samplesize = method == "samplesize"
    ledgers = {c: Ledger(stage="meta", cohort=c) for c in canonical}
    z2: list[list[np.ndarray]] = [[] for _ in canonical]
    nlp: list[np.ndarray] = []
    counts: dict[str, int] = {}
    seen = dict.fromkeys(STUDY_COLUMNS, False)
    significant: list[pl.DataFrame] = []
    loo: list[list[pl.DataFrame]] = [[] for _ in canonical]
    collected: list[pl.DataFrame] = []  # output rows of parts with rows, when not written
    eaf_se: list[np.ndarray] = []
    parquet = out is not None and out.suffix == ".parquet"
    collect = out is None or parquet
    renames = []
    with ExitStack() as stack:
        writer = None if collect else _Writer(out, stack, gz=out.suffix == ".gz")
        tbl_writer = _Writer(Path(tbl), stack, gz=False) if tbl else None
        empty_table, empty_frames, empty_table_rows = None, None, 0
        empty_part = None

        def combined(frames: list[pl.DataFrame]) -> tuple:
            stacked, part_ledgers = _stacked(frames, canonical, samplesize=samplesize,
                                             present=present)
            zz = cohort_z2(stacked) if factors is None else None
            part = combine_part(stacked, part_ledgers, canonical=canonical, order=order,
                            factors=factors or dict.fromkeys(canonical, 1.0), method=method,
                            eaf_max_diff=eaf_max_diff, mrmega=mrmega)
            return stacked.present_here, zz, part, part_ledgers

        # Parts combined by COMBINE_WORKERS threads (numpy and polars release the GIL),
        # taken in order: at most COMBINE_WORKERS parts in flight besides the writer's.
        pool = stack.enter_context(ThreadPoolExecutor(COMBINE_WORKERS, "combine"))
        pending: collections.deque = collections.deque()

        def parts() -> Iterator[tuple[list[pl.DataFrame], tuple]]:
            for _code, frames in src.parts():
                pending.append((frames, pool.submit(combined, frames)))
                if len(pending) >= COMBINE_WORKERS:
                    frames, future = pending.popleft()
                    yield frames, future.result()
            while pending:
                frames, future = pending.popleft()
                yield frames, future.result()

        for frames, (present_here, zz, part, part_ledgers) in parts():
            if empty_frames is None:
                empty_frames = [f.clear() for f in frames]
            seen = {c: seen[c] or present_here[c] for c in seen}
            if zz is not None:
                for j, z in enumerate(zz):
                    z2[j].append(z)
            del zz
            for c, lg in part_ledgers.items():
                _add(ledgers[c], lg)
            nlp.append(part.nlp_main)
            # The fixed-effect -log10 p is nlp_main unless that is the sample-size scheme's or MR-MEGA's.
            fixed = None if method in ("samplesize", "mrmega") else part.nlp_main
            for name, v in summary_counts(part.table, nlp_fixed=fixed).items():
                counts[name] = counts.get(name, 0) + v
            table = order_columns(part.table)
            if empty_table is None or (empty_table_rows == 0 and table.height):
                # The columns of the first part with rows, as the writer's header (a part
                # without rows lacks rsid, for one); of the first part if none has rows.
                empty_table, empty_table_rows = table.clear(), table.height
                empty_part = part.table.clear()
            if not collect:
                writer.write(table)
            elif table.height:
                collected.append(part.table)
                eaf_se.append(part.eaf_se)
            if tbl_writer is not None:
                tbl_writer.write(tbl_frame(MetaResult(
                    table=part.table, cohorts=tuple(order), method=method, lambda_gc={},
                    lambda_meta=float("nan"), gc_applied={}, eaf_se=part.eaf_se)))
            if loo_threshold is not None and table.height:
                x = neg_log10_p_of_table(table)
                sig = table.with_columns(pl.Series("_nlp", x)).filter(
                    pl.col("_nlp") > -np.log10(loo_threshold)).drop("_nlp")
                if sig.height:
                    significant.append(sig)
                    for j, f in enumerate(frames):
                        loo[j].append(_rows_at(f, sig))
            del part, table, frames
        # The genome-wide medians while the writer formats the last parts.
        lambdas = None if factors is not None else gc_factors(canonical, z2, gc=False)
        lam_meta = (lambda_gc(np.concatenate(nlp)) if counts.get("n_variants")
                    else float("nan"))
        if writer is not None:
            writer.finish()
            renames.append((writer.tmp, writer.path))
        if tbl_writer is not None:
            tbl_writer.finish()
            renames.append((tbl_writer.tmp, tbl_writer.path))
    if parquet:
        tmp = out.with_name(f".{out.name}.tmp")
        (order_columns(pl.concat(collected)) if collected else empty_table).write_parquet(tmp)
        renames.append((tmp, out))
    for c in canonical:
        ledgers[c].check()
    sig_table, loo_tables = None, None
    if loo_threshold is not None:
        sig_table = pl.concat(significant) if significant else empty_table
        loo_tables = {c: pl.concat(loo[j]) if loo[j] else empty_frames[j]
                      for j, c in enumerate(canonical)}
    return {"ledgers": ledgers, "lambdas": lambdas, "lambda_meta": lam_meta, "counts": counts,
            "seen": seen, "significant": sig_table, "loo_tables": loo_tables,
            "renames": renames, "tables": collected, "eaf_se": eaf_se, "empty_part": empty_part}


def _rows_at(frame: pl.DataFrame, variants: pl.DataFrame) -> pl.DataFrame:
    """A cohort's rows at ``variants``: positioned ones by key, marker-name ones by name and alleles."""
    frame = frame.with_columns(pl.col("chromosome").cast(pl.Int64),
                               pl.col("base_pair_location").cast(pl.Int64))
    rows = frame.join(variants.select(*VARIANT_KEY).drop_nulls("chromosome"),
                      on=list(VARIANT_KEY), how="semi", maintain_order="left")
    if "rsid" in variants.columns and "rsid" in frame.columns:
        names = variants.filter(marker_only()).select("rsid", "other_allele", "effect_allele")
        if names.height:
            rows = pl.concat([rows, frame.filter(marker_only()).join(
                names, on=["rsid", "other_allele", "effect_allele"], how="semi",
                maintain_order="left")])
    return rows


def _add(total: Ledger, part: Ledger) -> None:
    total.n_in += part.n_in
    total.n_kept += part.n_kept
    for r, v in part.removed.items():
        total.remove(r, v)
    for r, v in part.changed.items():
        total.change(r, v)
