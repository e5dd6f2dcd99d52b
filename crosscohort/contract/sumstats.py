"""The one registry of summary-statistics column names, types and checks.

Every file that leaves a stage uses the GWAS Catalog GWAS-SSF column names
declared here; no other module spells them. Readers and writers in the rest
of the package go through :func:`read_sumstats` and :func:`write_sumstats`.

References
----------
GWAS Catalog summary statistics standard (GWAS-SSF), Hayhurst et al. 2023,
https://github.com/EBISPOT/gwas-summary-statistics-standard
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import polars as pl

from crosscohort.contract.errors import InputError

__all__ = [
    "Column",
    "COLUMNS",
    "REQUIRED",
    "META_COLUMNS",
    "INTERNAL_COLUMNS",
    "FLAG_COLUMNS",
    "CHROM_CODES",
    "SumstatsError",
    "chrom_code",
    "chrom_label",
    "marker_only",
    "float_column",
    "variant_id",
    "header_line",
    "header_names",
    "read_sumstats",
    "write_sumstats",
    "open_gzip_writer",
    "validate",
]


@dataclass(frozen=True)
class Column:
    """One declared column: its name, polars dtype and meaning."""

    name: str
    dtype: type[pl.DataType] | pl.DataType
    meaning: str


def _declare(*cols: Column) -> dict[str, Column]:
    return {c.name: c for c in cols}


#: GWAS-SSF columns (mandatory first, then optional ones we produce).
COLUMNS: dict[str, Column] = _declare(
    Column("chromosome", pl.Int64, "1-22, X=23, Y=24, MT=25"),
    Column("base_pair_location", pl.Int64, "1-based position on the declared build"),
    Column("effect_allele", pl.String, "the counted (ALT) allele; beta is per copy of it"),
    Column("other_allele", pl.String, "the non-effect (REF) allele"),
    Column("beta", pl.Float64, "per-allele effect; log-odds for binary traits"),
    Column("standard_error", pl.Float64, "standard error of beta"),
    Column("effect_allele_frequency", pl.Float64, "frequency of the effect allele in the analysed samples"),
    Column("p_value", pl.Float64, "two-sided p-value (may underflow to 0; see neg_log_10_p_value)"),
    Column("neg_log_10_p_value", pl.Float64, "-log10 p, computed in log space; authoritative when p underflows"),
    Column("variant_id", pl.String, "chrom:pos:ref:alt (other_allele:effect_allele)"),
    Column("rsid", pl.String, "the input's variant identifier (rsID where known)"),
    Column("n", pl.Int64, "samples in the fit of this variant"),
    Column("n_cases", pl.Int64, "cases in the fit (binary traits)"),
    Column("n_controls", pl.Int64, "controls in the fit (binary traits)"),
    Column("info", pl.Float64, "imputation quality"),
)

#: Columns without which a file is not summary statistics.
REQUIRED: tuple[str, ...] = (
    "chromosome",
    "base_pair_location",
    "effect_allele",
    "other_allele",
    "beta",
    "standard_error",
    "effect_allele_frequency",
    "p_value",
)

#: Columns added by the meta-analysis (DESIGN.md "Meta-analysis output").
META_COLUMNS: dict[str, Column] = _declare(
    Column("n_studies", pl.Int64, "cohorts contributing to the variant"),
    Column("direction", pl.String, "one of + - ? per cohort, in cohort order"),
    Column("het_q", pl.Float64, "Cochran's Q"),
    Column("het_df", pl.Int64, "degrees of freedom of Q (n_studies - 1)"),
    Column("het_p", pl.Float64, "p-value of Q against chi2(het_df)"),
    Column("het_i2", pl.Float64, "Higgins' I^2, in [0, 1]"),
    Column("tau2", pl.Float64, "DerSimonian-Laird between-study variance"),
    Column("beta_random", pl.Float64, "random-effects (DerSimonian-Laird) beta"),
    Column("standard_error_random", pl.Float64, "random-effects standard error"),
    Column("p_value_random", pl.Float64, "random-effects p-value"),
    Column("neg_log_10_p_value_random", pl.Float64, "random-effects -log10 p"),
    Column("eaf_min", pl.Float64, "smallest cohort effect allele frequency"),
    Column("eaf_max", pl.Float64, "largest cohort effect allele frequency"),
    Column("n_effective", pl.Float64, "sum of 4/(1/n_cases + 1/n_controls) for binary traits, else n"),
    Column("z_samplesize", pl.Float64, "sample-size weighted Z (METAL SCHEME SAMPLESIZE); its p is p_value"),
    # MR-MEGA meta-regression (meta --method mrmega; crosscohort/central/meta/mrmega.py): its
    # association test's p is p_value; beta/standard_error stay the fixed-effect IVW's.
    *(col for j in range(11) for col in (
        Column(f"mrmega_beta_{j}", pl.Float64,
               "MR-MEGA intercept (effect at the axes' origin)" if j == 0
               else f"MR-MEGA slope of the effect on axis {j} of genetic variation"),
        Column(f"mrmega_standard_error_{j}", pl.Float64, f"standard error of mrmega_beta_{j}"),
    )),
    Column("mrmega_chi2_association", pl.Float64,
           "MR-MEGA association chi-square (T+1 df); its p is p_value"),
    Column("mrmega_chi2_ancestry_het", pl.Float64,
           "MR-MEGA heterogeneity correlated with ancestry, chi-square (T df)"),
    Column("mrmega_neg_log_10_p_ancestry_het", pl.Float64,
           "-log10 p of mrmega_chi2_ancestry_het, in log space"),
    Column("mrmega_chi2_residual_het", pl.Float64,
           "MR-MEGA residual heterogeneity chi-square (mrmega_df_residual_het df)"),
    Column("mrmega_df_residual_het", pl.Int64, "n_studies - T - 1"),
    Column("mrmega_neg_log_10_p_residual_het", pl.Float64,
           "-log10 p of mrmega_chi2_residual_het, in log space"),
    Column("mrmega_ln_bf", pl.Float64, "MR-MEGA log Bayes factor: (chi2_association - (T+1) ln n_studies) / 2"),
)

#: Columns the association engine writes for the export gate's rules only.
#: They never leave a TRE: the gate uses and then strips them.
INTERNAL_COLUMNS: dict[str, Column] = _declare(
    Column("mac", pl.Float64, "minor allele count in the fit"),
    Column("mac_cases", pl.Float64, "minor allele count among cases"),
    Column("mac_controls", pl.Float64, "minor allele count among controls"),
    Column("residual_df", pl.Int64, "residual degrees of freedom of the fit"),
    Column("error_code", pl.String, "why a fit produced no estimate (empty when it did)"),
    Column("firth", pl.Boolean, "the estimate is Firth-penalised (the logistic fit failed)"),
)

#: Quality flags that harmonisation adds to a cohort's aligned table (flagged
#: rows are kept and counted in the ledger, never dropped silently).
FLAG_COLUMNS: dict[str, Column] = _declare(
    Column(
        "flag_p_inconsistent",
        pl.Boolean,
        "the z implied by the file's p differs from |beta/SE| by > 5 % (floor 1); row kept",
    ),
    Column(
        "flag_eaf_far",
        pl.Boolean,
        "aligned EAF > 0.2 from the reference panel's (harmonise) or, in the meta table, a "
        "cohort's EAF > 0.2 from the other cohorts' n-weighted EAF; row kept",
    ),
)

ALL_COLUMNS: dict[str, Column] = {**COLUMNS, **META_COLUMNS, **FLAG_COLUMNS, **INTERNAL_COLUMNS}

CHROM_CODES: dict[str, int] = {
    **{str(i): i for i in range(1, 23)},
    "X": 23,
    "Y": 24,
    "XY": 23,  # PLINK's pseudo-autosomal code is reported on X
    "MT": 25,
    "M": 25,
}


class SumstatsError(InputError):
    """A summary-statistics file breaks the contract; the message names file, row or column."""


def chrom_code(label: str | int) -> int:
    """Numeric chromosome code of a label (``chr1``, ``1``, ``X``, ``23``, ``MT``...)."""
    s = str(label).strip().upper()
    if s.startswith("CHR"):
        s = s[3:]
    if s in CHROM_CODES:
        return CHROM_CODES[s]
    if s.isdigit() and 1 <= int(s) <= 26:
        return 25 if int(s) == 26 else int(s)
    raise SumstatsError(f"unknown chromosome label {label!r}; expected 1-22, X, Y, MT or 23-25")


def chrom_label(code: int) -> str:
    """Display label of a numeric chromosome code (23 -> ``X``)."""
    return {23: "X", 24: "Y", 25: "MT"}.get(int(code), str(int(code)))


def marker_only() -> pl.Expr:
    """Rows keyed by marker name only, as METAL and GWAMA files key variants: no chromosome,
    no position, an ``rsid``. Harmonisation keeps them apart from the position rules and the
    meta-analysis matches them on ``rsid`` and alleles; needs all three columns."""
    return (pl.col("chromosome").is_null() & pl.col("base_pair_location").is_null()
            & pl.col("rsid").is_not_null())


def variant_id(chrom: pl.Expr, pos: pl.Expr, ref: pl.Expr, alt: pl.Expr) -> pl.Expr:
    """Polars expression building ``chrom:pos:ref:alt``."""
    return pl.concat_str(
        [chrom.cast(pl.String), pos.cast(pl.String), ref, alt], separator=":"
    ).alias("variant_id")


def _schema_for(names: list[str]) -> dict[str, pl.DataType]:
    out: dict[str, pl.DataType] = {}
    for n in names:
        col = ALL_COLUMNS.get(n)
        out[n] = col.dtype if col is not None else pl.String
    return out


def header_line(path: str | Path) -> bytes:
    """The first line of a GWAS-SSF text table, plain or gzip (told by its magic bytes), as read.

    Raises
    ------
    SumstatsError
        When the file is missing, unreadable (a damaged gzip stream), empty, or
        its header is not UTF-8 text, naming the file, line 1 and the rule.
        A leading UTF-8 byte-order mark is not part of the returned line.
    """
    path = Path(path)
    if not path.exists():
        raise SumstatsError(f"{path}: no such file")
    try:
        with open_binary(path) as fh:
            line = fh.readline()
    except (OSError, EOFError) as exc:  # truncated or not gzip
        raise SumstatsError(f"{path}: cannot read header ({exc})") from exc
    try:
        line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SumstatsError(f"{path}: line 1: header is not UTF-8 text ({exc.reason} at byte "
                            f"{exc.start}); rule: tab-separated text, plain or gzip") from exc
    if not line.strip():
        raise SumstatsError(f"{path}: empty file, expected a tab-separated header line")
    # A UTF-8 byte-order mark (Excel's "UTF-8" export) is read through, as polars does:
    # left in, it would rename the first column and lose it (chromosome -> "\ufeffchromosome").
    return line.removeprefix(b"\xef\xbb\xbf")


def header_names(line: bytes) -> list[str]:
    """Column names of a header line read by :func:`header_line`."""
    return line.decode("utf-8").rstrip("\n").rstrip("\r").split("\t")


def read_sumstats(
    path: str | Path,
    *,
    required: tuple[str, ...] = REQUIRED,
    chromosome_labels: bool = False,
    columns: tuple[str, ...] | None = None,
) -> pl.DataFrame:
    """Read a GWAS-SSF tab-separated file (``.tsv``, ``.tsv.gz`` or ``.parquet``).

    Columns are cast to their declared types; ``NA``, ``NaN`` and empty
    fields are missing, never zero. With ``chromosome_labels=True`` the
    ``chromosome`` column is read as text (``chr1``, ``X``...) for the caller
    to normalise (harmonisation does, through :func:`chrom_code`). With
    ``columns``, only those of them present in the file are parsed and kept
    (a reader of 10M-row tables that needs a few columns never holds the
    rest); ``required`` is still checked against the whole header.

    Raises
    ------
    SumstatsError
        When the file cannot be read, lacks a required column, or a value
        cannot be parsed as its column's type (naming the column).
    """
    path = Path(path)
    if not path.exists():
        raise SumstatsError(f"{path}: no such file")
    if path.suffix == ".parquet":
        header = pl.read_parquet_schema(path).names()
        wanted = header if columns is None else [c for c in header if c in columns]
        df = pl.read_parquet(path, columns=wanted)
    else:
        header = header_names(header_line(path))
        dup = {h for h in header if header.count(h) > 1}
        if dup:
            raise SumstatsError(f"{path}: duplicated column(s) {sorted(dup)} in header")
        try:
            df = pl.read_csv(
                path,
                separator="\t",
                columns=None if columns is None else [c for c in header if c in columns],
                schema_overrides={
                    **_schema_for(header),
                    **({"chromosome": pl.String} if chromosome_labels else {}),
                },
                null_values=["NA", "NaN", "nan", ""],
                infer_schema=False,
            )
        except (pl.exceptions.ComputeError, pl.exceptions.PolarsError, OSError, EOFError) as exc:
            raise SumstatsError(f"{path}: {_first_line(exc)}") from exc
    missing = [c for c in required if c not in header]
    if missing:
        raise SumstatsError(
            f"{path}: missing required column(s) {missing}; present: {df.columns}"
        )
    return df


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def order_columns(df: pl.DataFrame) -> pl.DataFrame:
    """Put declared columns first, in registry order, then any others."""
    known = [c for c in ALL_COLUMNS if c in df.columns]
    rest = [c for c in df.columns if c not in ALL_COLUMNS]
    return df.select(known + rest)


def write_sumstats(df: pl.DataFrame, path: str | Path) -> Path:
    """Write ``df`` atomically as ``.tsv``, ``.tsv.gz`` or ``.parquet`` (by extension).

    Floats are written with 17 significant digits (exact round trip) and
    missing values as ``NA``. The file appears under its name only once
    complete (write to a temporary name, then rename).

    Notes
    -----
    ``.tsv.gz`` is streamed: polars writes the text in batches straight into
    an ISA-L gzip stream (``isal.igzip``, level 2), so no whole-table string
    exists. On 2,000,000 rows x 9 columns that takes 1.4-2.0 s and no memory
    beyond the table, where zlib level 6 on one whole-table string took 25 s
    and 570 MB more; the file is ~5 % larger. ``mtime=0`` and no file name in
    the header: identical content gives identical bytes (stable checksums).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    df = order_columns(df)
    if path.suffix == ".parquet":
        df.write_parquet(tmp)
    elif path.suffix != ".gz":
        df.write_csv(tmp, separator="\t", null_value="NA", float_precision=None)
    else:
        with open_gzip_writer(tmp) as fh:
            df.write_csv(fh, separator="\t", null_value="NA", float_precision=None)
    tmp.replace(path)
    return path


def open_binary(path: str | Path) -> BinaryIO:
    """``path`` opened for binary reading, decompressed (ISA-L) when it starts with gzip's magic."""
    with open(path, "rb") as fh:
        gz = fh.read(2) == b"\x1f\x8b"
    if gz:
        from isal import igzip

        return igzip.open(path, "rb")
    return open(path, "rb")  # noqa: SIM115 - returned to the caller's with block


def chromosome_parts(
    streams: Sequence[Iterator[tuple[int, pl.DataFrame]]], empty: Sequence[pl.DataFrame]
) -> Iterator[tuple[int, list[pl.DataFrame]]]:
    """Several cohorts' ``(chromosome code, rows)`` streams taken one chromosome at a time.

    Each stream yields its parts in increasing chromosome code; a cohort with
    no rows on a chromosome contributes its ``empty`` frame. Only the current
    part of every stream is held, so memory is set by the largest chromosome.
    """
    heads = [next(g, None) for g in streams]
    while any(h is not None for h in heads):
        code = min(h[0] for h in heads if h is not None)
        frames = []
        for i, h in enumerate(heads):
            if h is not None and h[0] == code:
                frames.append(h[1])
                heads[i] = None  # drop the reference before reading ahead
                heads[i] = next(streams[i], None)
            else:
                frames.append(empty[i])
        yield code, frames


def line_blocks(fh: BinaryIO, block_bytes: int, *, prefix: bytes = b"") -> Iterator[bytes]:
    """The rest of ``fh`` in blocks of whole lines, about ``block_bytes`` each, each after ``prefix``.

    Every block but the last ends at a line end; the last holds what follows
    the file's last line end, if anything. A line longer than a block is
    read on until its end. Each block is one copy of what was read: the
    prefix (a header line, for a parser), the previous read's partial line and
    this read up to its last line end, joined. Read errors (a damaged gzip
    stream) propagate.
    """
    carry = b""
    while True:
        buf = fh.read(block_bytes)
        if not buf:
            if carry:
                yield prefix + carry
            return
        cut = buf.rfind(b"\n")
        if cut < 0:  # no line end in this read: a line longer than a block
            carry += buf
            continue
        block = b"".join((prefix, carry, memoryview(buf)[:cut + 1]))
        carry = buf[cut + 1:]
        del buf
        yield block


@contextmanager
def open_gzip_writer(path: str | Path, *, level: int = 2, uncached: bool = False) -> Iterator[BinaryIO]:
    """A binary gzip stream to ``path`` (ISA-L), byte-reproducible: no mtime, no name.

    A context manager; both the gzip stream and the file are closed on exit.
    Callers own atomicity (write a temporary name, then rename). ``uncached``:
    write around the page cache (:class:`crosscohort.runtime.uncached.UncachedFile`).
    """
    from isal import igzip

    from crosscohort.runtime.uncached import UncachedFile

    with (UncachedFile(path) if uncached else open(path, "wb")) as raw, igzip.IGzipFile(
        filename="", fileobj=raw, mode="wb", compresslevel=level, mtime=0
    ) as fh:
        yield fh


def validate(df: pl.DataFrame, *, source: str = "sumstats") -> dict[str, int]:
    """Count rows that break the value rules; returns ``{reason: count}``.

    Rules: finite beta, standard_error > 0, 0 <= p_value <= 1 (0 allowed
    only as underflow), effect_allele_frequency in [0, 1], n > 0.
    Missing values are counted separately under ``missing_<column>``.
    """
    counts: dict[str, int] = {}
    checks = {
        "beta_not_finite": ~pl.col("beta").is_finite(),
        "standard_error_not_positive": ~(pl.col("standard_error") > 0)
        | ~pl.col("standard_error").is_finite(),
        "p_value_out_of_range": (pl.col("p_value") < 0) | (pl.col("p_value") > 1),
        "eaf_out_of_range": (pl.col("effect_allele_frequency") < 0)
        | (pl.col("effect_allele_frequency") > 1),
    }
    if "n" in df.columns:
        checks["n_not_positive"] = pl.col("n") <= 0
    for reason, expr in checks.items():
        counts[reason] = int(df.select(expr.fill_null(False).sum()).item())
    for c in REQUIRED:
        if c in df.columns:
            counts[f"missing_{c}"] = int(df[c].null_count())
    return {k: v for k, v in counts.items() if v}


def float_column(name: str, values: np.ndarray) -> pl.Series:
    """A Float64 column of ``values`` with NaN as null (missing, written ``NA``).

    The constructor's own NaN test: ``Series(...).fill_nan(None)`` is an
    expression run on polars' thread pool (16x slower at 110k values, and it
    queues behind the output being formatted there).
    """
    return pl.Series(name, np.asarray(values, dtype=np.float64), nan_to_null=True)


def neg_log10_p_from_z(z: np.ndarray) -> np.ndarray:
    """Two-sided -log10 p of a standard normal z, exact in the far tail.

    Computed as ``-(log 2 + log Phi(-|z|)) / log 10`` with ``scipy.special.log_ndtr``
    so |z| = 40 gives 349.136 (p = 7.3e-350) rather than infinity.
    """
    from scipy.special import log_ndtr

    z = np.asarray(z, dtype=float)
    return -(np.log(2.0) + log_ndtr(-np.abs(z))) / np.log(10.0)


def neg_log10_p_from_t(t: np.ndarray, df: np.ndarray) -> np.ndarray:
    """Two-sided -log10 p of a Student t statistic: ``-log10(2 stdtr(df, -|t|))``.

    The same numbers as ``scipy.stats.t.logsf`` (whose log survival function
    of the t distribution is ``log(stdtr(df, -t))``), without importing
    ``scipy.stats`` (0.5-1.5 s of every command's start-up; benchmarks/README.md,
    "Start-up").
    """
    from scipy.special import stdtr

    t = np.asarray(t, dtype=float)
    with np.errstate(divide="ignore"):
        return -(np.log(2.0) + np.log(stdtr(df, -np.abs(t)))) / np.log(10.0)
