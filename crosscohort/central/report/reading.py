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

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from crosscohort.contract.stats import neg_log10_p_of_table
from crosscohort.contract.sumstats import SumstatsError, marker_only, schema_for
from crosscohort.contract.table_io import (
    Block,
    Blocks,
    check_header,
    header_line,
    header_names,
    ordered_map,
    parse_block,
)

__all__ = ["TableDigest", "read_digest", "read_header"]

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
        Decompressed bytes per block (default
        :data:`crosscohort.contract.table_io.BLOCK_BYTES`).
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
    header = header_names(header_line(path))
    check_header(path, header, required=required)
    schema = schema_for(header)
    wanted = [h for h in header if h in set(columns)]
    # The p columns decide which rows are kept whole; parse them even when not kept.
    parsed = wanted + [c for c in _P_COLUMNS if c in header and c not in wanted] \
        if line is not None else list(wanted)
    by_name = names.len() > 0 and set(_NAMED_KEY) <= set(header)
    if by_name:
        parsed += [c for c in _NAMED_KEY if c not in parsed]

    def digest(block: Block) -> tuple[pl.DataFrame, pl.DataFrame | None, pl.DataFrame | None, int]:
        df = parse_block(block, path=path, schema=schema, columns=parsed)
        sig = named = None
        if line is not None and {*_P_COLUMNS} & set(df.columns):
            # as distance_loci filters: NaN (no p-value) is not significant
            nlp = pl.Series("_nlp", neg_log10_p_of_table(df))
            mask = nlp.is_not_nan() & (nlp > line)
            if mask.any():
                sig = parse_block(block, path=path, schema=schema, columns=header).filter(mask)
        if by_name:
            mask = _named_mask(df, names)
            if mask.any():
                named = parse_block(block, path=path, schema=schema, columns=header).filter(mask)
        return df.select(wanted), sig, named, df.height

    kept: list[pl.DataFrame] = []
    sig: list[pl.DataFrame] = []
    named: list[pl.DataFrame] = []
    n_rows = 0
    # Blocks digested by worker threads while the next is read, taken in file order.
    for df, s, n, height in ordered_map(digest, Blocks(path, block_bytes=block_bytes)):
        kept.append(df)
        sig += [s] if s is not None else []
        named += [n] if n is not None else []
        n_rows += height
        del df, s, n
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
    if path.suffix == ".parquet" and path.exists():
        try:
            return pl.read_parquet_schema(path).names()
        except (OSError, pl.exceptions.PolarsError) as exc:
            raise SumstatsError(f"{path}: cannot read header ({exc})") from exc
    return header_names(header_line(path))


def _digest_parquet(path: Path, *, columns: Sequence[str], line: float | None,
                    required: Sequence[str], names: pl.Series) -> TableDigest:
    try:
        header = pl.read_parquet_schema(path).names()
        wanted = [c for c in header if c in set(columns)]
        check_header(path, header, required=required)
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
