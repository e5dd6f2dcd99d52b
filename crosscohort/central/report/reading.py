"""Summary-statistics tables read block by block for the report: the few columns its views use.

At 10^7 variants a whole GWAS-SSF table costs GBs twice over: polars
decompresses a ``.tsv.gz`` into one buffer before parsing it, then holds every
column. The report's plots need three to ten numeric columns of every row and
all columns only of the rows above the significance line (the loci). Here the
file is decompressed in blocks (ISA-L), each block is parsed with the
registry's types, the wanted columns are kept and, where a block holds rows
above the line, those rows are parsed whole. Memory is one block plus what is
kept; values and row order are those of :func:`crosscohort.contract.sumstats.read_sumstats`.
A value is checked against its column's type where it is parsed: the kept
columns of every row and every column of the rows read whole; the rest (an
``rsid`` far from any locus, say) is not the report's to check, the stage that
wrote the file did.
"""

from __future__ import annotations

import io
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from crosscohort.contract.stats import neg_log10_p_of_table
from crosscohort.contract.sumstats import (
    ALL_COLUMNS,
    SumstatsError,
    line_blocks,
    marker_only,
    open_binary,
)

__all__ = ["TableDigest", "read_digest", "read_header"]

#: Decompressed bytes parsed at a time (a block's frame is a few times this).
BLOCK_BYTES = 1 << 26
_NULLS = ["NA", "NaN", "nan", ""]
_P_COLUMNS = ("p_value", "neg_log_10_p_value")
#: What tells a marker-name row and its name.
_NAMED_KEY = ("chromosome", "base_pair_location", "rsid")


@dataclass(frozen=True)
class TableDigest:
    """What the report keeps of one summary-statistics table.

    Attributes
    ----------
    table
        The requested columns present in the file, every row, in file order.
    significant
        Every column of the rows whose -log10 p (``neg_log_10_p_value``, else
        ``p_value``; as :func:`crosscohort.central.loci.distance_loci` computes it) is
        above ``line``, in file order; empty when ``line`` is None or the file
        has no p-value column.
    header
        The file's columns.
    n_rows
        Data rows read.
    named
        Every column of the rows without a chromosome (marker-name rows, as
        METAL and GWAMA key variants) whose ``rsid`` is one of the ``names``
        asked for, in file order; empty when none was asked.
    """

    table: pl.DataFrame
    significant: pl.DataFrame
    header: tuple[str, ...]
    n_rows: int
    named: pl.DataFrame = field(default_factory=pl.DataFrame)


def read_digest(path: str | Path, *, columns: Sequence[str], line: float | None = None,
                required: Sequence[str] = (), block_bytes: int | None = None,
                names: Collection[str] = ()) -> TableDigest:
    """Read ``columns`` of every row and whole rows above ``line`` from a GWAS-SSF table.

    Parameters
    ----------
    path
        Tab-separated GWAS-SSF table, plain or gzip'd (detected from its
        bytes), or ``.parquet``.
    columns
        Columns to keep of every row; those absent from the file are skipped
        (the caller checks what it needs against ``header``).
    line
        -log10 p above which rows are kept whole (the loci's threshold), or None.
    required
        Columns the header must have.
    block_bytes
        Decompressed bytes per block (default :data:`BLOCK_BYTES`).
    names
        Marker names whose rows without a chromosome are kept whole
        (:attr:`TableDigest.named`): a marker-name lead's rows.

    Raises
    ------
    SumstatsError
        When the file is missing or unreadable, lacks a required column, or a
        value cannot be parsed as its column's declared type (naming the line,
        the column and the value).
    """
    path = Path(path)
    if not path.exists():
        raise SumstatsError(f"{path}: no such file")
    names = pl.Series("names", sorted(set(names)), dtype=pl.String)
    if path.suffix == ".parquet":
        return _digest_parquet(path, columns=columns, line=line, required=required, names=names)
    with open_binary(path) as fh:
        try:
            head = fh.readline()
        except (OSError, EOFError) as exc:
            raise SumstatsError(f"{path}: cannot read header ({exc})") from exc
        header = head.decode("utf-8", errors="replace").rstrip("\n").rstrip("\r").split("\t")
        if not head.strip():
            raise SumstatsError(f"{path}: empty file, expected a tab-separated header line")
        dup = sorted({h for h in header if header.count(h) > 1})
        if dup:
            raise SumstatsError(f"{path}: duplicated column(s) {dup} in header")
        _check_required(path, header, required)
        schema = {h: _dtype(h) for h in header}
        wanted = [h for h in header if h in set(columns)]
        # The p columns decide which rows are kept whole; parse them even when not kept.
        parsed = wanted + [c for c in _P_COLUMNS if c in header and c not in wanted] \
            if line is not None else list(wanted)
        by_name = names.len() > 0 and set(_NAMED_KEY) <= set(header)
        if by_name:
            parsed += [c for c in _NAMED_KEY if c not in parsed]
        kept: list[pl.DataFrame] = []
        sig: list[pl.DataFrame] = []
        named: list[pl.DataFrame] = []
        n_rows = 0
        for first_line, block in _blocks(fh, path, block_bytes or BLOCK_BYTES):
            df = _parse(block, path=path, first_line=first_line, schema=schema, columns=parsed)
            n_rows += df.height
            if line is not None and {*_P_COLUMNS} & set(df.columns):
                # as distance_loci filters: NaN (no p-value) is not significant
                nlp = pl.Series("_nlp", neg_log10_p_of_table(df))
                mask = nlp.is_not_nan() & (nlp > line)
                if mask.any():
                    whole = _parse(block, path=path, first_line=first_line, schema=schema, columns=header)
                    sig.append(whole.filter(mask))
            if by_name:
                mask = _named_mask(df, names)
                if mask.any():
                    whole = _parse(block, path=path, first_line=first_line, schema=schema, columns=header)
                    named.append(whole.filter(mask))
            kept.append(df.select(wanted))
            del df, block
    table = pl.concat(kept, rechunk=False) if kept else pl.DataFrame(schema={c: schema[c] for c in wanted})
    del kept
    significant = pl.concat(sig) if sig else pl.DataFrame(schema=schema)
    return TableDigest(table, significant, tuple(header), n_rows,
                       pl.concat(named) if named else pl.DataFrame(schema=schema))


def _named_mask(df: pl.DataFrame, names: pl.Series) -> pl.Series:
    """Marker-name rows (:func:`~crosscohort.contract.sumstats.marker_only`) named one of ``names``."""
    return df.select((marker_only() & pl.col("rsid").is_in(names.implode()))
                     .fill_null(False)).to_series()


def read_header(path: str | Path) -> list[str]:
    """Column names of a GWAS-SSF table (the first line of a text file, the schema of a parquet)."""
    path = Path(path)
    if not path.exists():
        raise SumstatsError(f"{path}: no such file")
    try:
        if path.suffix == ".parquet":
            return pl.read_parquet_schema(path).names()
        with open_binary(path) as fh:
            head = fh.readline()
    except (OSError, EOFError, pl.exceptions.PolarsError) as exc:
        raise SumstatsError(f"{path}: cannot read header ({exc})") from exc
    if not head.strip():
        raise SumstatsError(f"{path}: empty file, expected a tab-separated header line")
    return head.decode("utf-8", errors="replace").rstrip("\n").rstrip("\r").split("\t")


def _dtype(name: str) -> pl.DataType:
    col = ALL_COLUMNS.get(name)
    return col.dtype if col is not None else pl.String


def _check_required(path: Path, header: Sequence[str], required: Sequence[str]) -> None:
    missing = [c for c in required if c not in header]
    if missing:
        raise SumstatsError(f"{path}: missing required column(s) {missing}; present: {list(header)}")


def _blocks(fh: io.BufferedIOBase, path: Path, block_bytes: int) -> Iterator[tuple[int, bytes]]:
    """(file line number of its first line, whole lines) blocks of the data after the header."""
    line_no = 2
    blocks = line_blocks(fh, block_bytes)
    while True:
        try:
            block = next(blocks, None)
        except (OSError, EOFError) as exc:  # truncated or corrupt gzip
            raise SumstatsError(f"{path}: cannot decompress past line {line_no} ({exc})") from exc
        if block is None:
            return
        if not block.endswith(b"\n") and not block.strip():
            return  # white space after the last line end
        yield line_no, block
        line_no += block.count(b"\n")


def _parse(block: bytes, *, path: Path, first_line: int, schema: dict[str, pl.DataType],
           columns: Sequence[str]) -> pl.DataFrame:
    try:
        return pl.read_csv(io.BytesIO(block), has_header=False, separator="\t", schema=schema,
                           columns=_indices(schema, columns), null_values=_NULLS, quote_char='"')
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise SumstatsError(_locate(block, path=path, first_line=first_line, schema=schema,
                                    columns=columns, exc=exc)) from exc


def _indices(schema: dict[str, pl.DataType], columns: Sequence[str]) -> list[int]:
    names = list(schema)
    return [names.index(c) for c in columns]


def _locate(block: bytes, *, path: Path, first_line: int, schema: dict[str, pl.DataType],
            columns: Sequence[str], exc: BaseException) -> str:
    """The first line, column and value of ``block`` that its column's type rejects, as a message."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    try:
        text = pl.read_csv(io.BytesIO(block), has_header=False, separator="\t",
                           schema={c: pl.String for c in schema}, columns=_indices(schema, columns),
                           null_values=_NULLS, quote_char='"')
    except pl.exceptions.PolarsError:
        last = first_line + block.count(b"\n") - 1
        return f"{path}: lines {first_line}-{last}: {first}"
    for c in columns:
        dtype = schema[c]
        if dtype == pl.String:
            continue
        s = text.get_column(c)
        bad = (s.cast(dtype, strict=False).is_null() & s.is_not_null()).to_numpy()
        hits = np.flatnonzero(bad)
        if hits.size:
            i = int(hits[0])
            return (f"{path}: line {first_line + i}: column {c}: {s[i]!r} is not a valid "
                    f"{dtype} (the column's declared type)")
    last = first_line + block.count(b"\n") - 1
    return f"{path}: lines {first_line}-{last}: {first}"


def _digest_parquet(path: Path, *, columns: Sequence[str], line: float | None,
                    required: Sequence[str], names: pl.Series) -> TableDigest:
    try:
        header = pl.read_parquet_schema(path).names()
        wanted = [c for c in header if c in set(columns)]
        _check_required(path, header, required)
        table = pl.read_parquet(path, columns=wanted)
        significant = pl.DataFrame()
        if line is not None and {*_P_COLUMNS} & set(header):
            p = pl.read_parquet(path, columns=[c for c in _P_COLUMNS if c in header])
            nlp = pl.Series("_nlp", neg_log10_p_of_table(p))
            mask = nlp.is_not_nan() & (nlp > line)
            significant = pl.read_parquet(path).filter(mask)
        elif line is not None:
            significant = pl.read_parquet(path, n_rows=0)
        named = pl.read_parquet(path, n_rows=0)
        if names.len() and set(_NAMED_KEY) <= set(header):
            mask = _named_mask(pl.read_parquet(path, columns=list(_NAMED_KEY)), names)
            if mask.any():
                named = pl.read_parquet(path).filter(mask)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise SumstatsError(f"{path}: {str(exc).strip().splitlines()[0]}") from exc
    return TableDigest(table, significant, tuple(header), table.height, named)
