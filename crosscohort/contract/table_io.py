"""The one block reader of summary-statistics text tables, and the gzip stream their writers use.

Every tab-separated table that crosses a stage (GWAS-SSF sumstats, harmonised
tables, meta-analysis output) and every foreign file harmonisation reads is
read here, in the same way:

- :func:`open_binary` opens a file plain, gzip or zstd (told by its magic
  bytes, never by its name; ISA-L decompresses gzip);
- :class:`Blocks` hands out its data lines in blocks of whole lines of about
  :data:`BLOCK_BYTES` each, with the file line number of each block's first
  line, so memory holds a block, never the whole text;
- :func:`parse_block` parses a block with explicit types (no inference) and,
  when a value does not parse, names the file, line, column and value;
- :func:`ordered_map` parses blocks in worker threads (polars parses without
  the GIL) while the next is read, in file order.

The header rules (:func:`header_line`, :func:`check_header`) and the missing
value tokens (:data:`NA_TOKENS`, :data:`FOREIGN_NA_TOKENS`) are declared here
once. Column types come from the registry
(:func:`crosscohort.contract.sumstats.schema_for`); this module knows no column.
"""

from __future__ import annotations

import io
import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, NamedTuple, TypeVar

import polars as pl

from crosscohort.contract.errors import InputError

__all__ = [
    "BLOCK_BYTES",
    "FOREIGN_NA_TOKENS",
    "NA_TOKENS",
    "PARSE_AHEAD",
    "PARSE_WORKERS",
    "Block",
    "Blocks",
    "SumstatsError",
    "check_header",
    "check_line_end",
    "count_byte",
    "header_line",
    "header_names",
    "line_blocks",
    "open_binary",
    "open_gzip_writer",
    "ordered_map",
    "parse_block",
    "raise_first_non_utf8",
    "read_text",
    "utf8_line",
]

#: Decompressed bytes read per block (then cut at the block's last line end). Blocks of
#: this size stay under glibc's mmap threshold, so their memory is reused rather than
#: faulted in anew (benchmarks/README.md, "Meta-analysis").
BLOCK_BYTES = 16 << 20
#: Threads parsing blocks, and blocks parsed or waiting beyond the one being read.
PARSE_WORKERS, PARSE_AHEAD = 2, 2
#: Text read as missing in a GWAS-SSF table (written ``NA``; never read as 0).
NA_TOKENS: tuple[str, ...] = ("NA", "NaN", "nan", "")
#: Text read as missing in any other tool's file (harmonisation's inputs): the GWAS-SSF
#: tokens and those other tools print (a format preset or the user may add more).
FOREIGN_NA_TOKENS: tuple[str, ...] = (
    "NA", "NaN", "nan", "NAN", "na", "N/A", ".", "", "null", "NULL", "None", "-nan", "nan(ind)",
    "#NA",  # GWAS-SSF's own (the GWAS Catalog's converter writes it)
)
_NOT_SPACE = re.compile(rb"\S")
#: bgzip's end-of-file block (SAM/BAM specification, 4.1.2), and the bytes of a gzip
#: member's header that hold the BGZF extra field.
BGZF_EOF = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")
_BGZF_HEAD = 14
#: Magic bytes of the compressions that are not read (named in the error, not taken for text).
_OTHER_COMPRESSION: dict[str, tuple[bytes, ...]] = {
    "bzip2": tuple(b"BZh%d" % k for k in range(1, 10)),
    "xz": (b"\xfd7zXZ\x00",), "zip": (b"PK\x03\x04",),
}
_T = TypeVar("_T")
_R = TypeVar("_R")


class SumstatsError(InputError):
    """A summary-statistics file breaks the contract; the message names file, row or column."""


#: The first bytes of a zstd frame (RFC 8878), as plink2 --glm zs writes them.
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


class _ZstdFrames(io.RawIOBase):
    """A zstd file's frames decompressed one after another, for :func:`open_binary`.

    Built on ``decompressobj`` rather than ``stream_reader``, which returns no
    bytes and no error for a stream cut inside a frame: here a stream that ends
    inside a frame raises :class:`EOFError`, a damaged one :class:`OSError`
    (the errors a damaged gzip stream raises), so readers name file and line.
    """

    def __init__(self, path: str | Path):
        import zstandard

        self._zstd = zstandard
        self._fh = open(path, "rb")  # noqa: SIM115 - closed by close()
        self._frame = None
        self._out = memoryview(b"")

    def readable(self) -> bool:
        return True

    def _fill(self) -> bool:
        """Decompress until some output is pending; False at the end of the stream."""
        while not self._out:
            data = (self._frame.unused_data if self._frame is not None and self._frame.eof
                    else b"")
            if not data:
                data = self._fh.read(1 << 20)
            if not data:
                if self._frame is not None and not self._frame.eof:
                    raise EOFError("the zstd stream ends inside a frame (a truncated file)")
                return False
            if self._frame is None or self._frame.eof:
                self._frame = self._zstd.ZstdDecompressor().decompressobj()
            try:
                self._out = memoryview(self._frame.decompress(data))
            except self._zstd.ZstdError as exc:
                raise OSError(f"damaged zstd stream: {exc}") from exc
        return True

    def readinto(self, buffer) -> int:
        if not self._fill():
            return 0
        k = min(len(buffer), len(self._out))
        buffer[:k] = self._out[:k]
        self._out = self._out[k:]
        return k

    def close(self) -> None:
        if not self.closed:
            self._fh.close()
        super().close()


def open_binary(path: str | Path) -> BinaryIO:
    """``path`` opened for binary reading, decompressed when it starts with gzip's magic
    (ISA-L) or zstd's (plink2 ``--glm zs`` output).

    Raises
    ------
    SumstatsError
        When the file is compressed otherwise (bzip2, xz, zip: named); or when
        it is bgzip's (gzip members with the BGZF extra field) and does not
        end with bgzip's end-of-file block: it was cut short, at a member's end, where
        gzip itself cannot tell (its lines would read as a complete, shorter table).
    """
    with open(path, "rb") as fh:
        head = fh.read(_BGZF_HEAD)
        gz = head[:2] == b"\x1f\x8b"
        other = next((k for k, m in _OTHER_COMPRESSION.items() if head.startswith(m)), None)
        if other:
            raise SumstatsError(f"{path}: {other}-compressed; rule: plain text, gzip (bgzip) "
                                "or zstd; decompress it first")
        if gz and head[3:4] == b"\x04" and head[12:14] == b"BC":
            fh.seek(max(fh.seek(0, 2) - len(BGZF_EOF), 0))
            if fh.read() != BGZF_EOF:
                raise SumstatsError(
                    f"{path}: bgzip file without its end-of-file block: cut short; rule: a "
                    "complete gzip stream (bgzip's ends with a 28-byte empty block)")
    if gz:
        from isal import igzip

        return igzip.open(path, "rb")
    if head.startswith(ZSTD_MAGIC):
        return io.BufferedReader(_ZstdFrames(path), buffer_size=1 << 20)
    return open(path, "rb")  # noqa: SIM115 - returned to the caller's with block


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


def header_line(path: str | Path) -> bytes:
    """The first line of a tab-separated text table, plain or gzip, as read.

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
    check_line_end(line, path=path, line=1)
    # A UTF-8 byte-order mark (Excel's "UTF-8" export) is read through, as polars does:
    # left in, it would rename the first column and lose it (chromosome -> "\ufeffchromosome").
    return line.removeprefix(b"\xef\xbb\xbf")


def check_line_end(raw: bytes, *, path: str | Path, line: int) -> None:
    """Raise :class:`SumstatsError` when a line read holds a carriage return before its end:
    text whose lines end with CR only (classic Mac, some spreadsheet exports) is one line."""
    if b"\r" in raw.rstrip(b"\r\n"):
        raise SumstatsError(
            f"{path}: line {line}: a carriage return inside the line (lines that end with CR "
            "only, as classic Mac text); rule: lines end with LF or CRLF (e.g. tr '\\r' '\\n')")


def read_text(path: str | Path, what: str) -> str:
    """The whole text of a small UTF-8 input file (a sample or ID list, a phenotype table), BOM dropped.

    ``what`` names the file in messages (``"phenotype file"``).

    Raises
    ------
    InputError
        When ``path`` is missing, a directory, or not UTF-8 text (naming the line).
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file (the {what})")
    if path.is_dir():
        raise InputError(f"{path}: is a directory; expected the {what}")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise InputError(f"{path}, line {line}: not UTF-8 text ({exc.reason} at byte {exc.start}); "
                         f"rule: the {what} is tab- or space-separated UTF-8 text") from exc
    # Excel's "UTF-8" export starts with a byte-order mark; left in, it renames the first column.
    return text.removeprefix("\ufeff")


def count_byte(data: bytes, byte: bytes) -> int:
    """How many times ``byte`` (one byte) occurs in ``data``: ``data.count(byte)``, in numpy.

    Faster than ``bytes.count`` of one byte, which also holds the GIL while the
    other parse workers wait; numpy's compare-and-count lets them run
    (benchmarks/README.md, "Meta-analysis on unsorted files (issue 20)").
    """
    import numpy as np

    if len(byte) != 1:
        raise ValueError(f"count_byte counts one byte; got {byte!r}")
    return int(np.count_nonzero(np.frombuffer(data, dtype=np.uint8) == byte[0]))


def utf8_line(raw: bytes, *, path: str | Path, line: int) -> str:
    """One line's bytes as text; :class:`InputError` naming the file, the line, the byte's
    column and the rule when they are not UTF-8."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{path}: line {line}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at column "
            f"{exc.start + 1}); rule: UTF-8 text (e.g. iconv -f latin1 -t utf-8)"
        ) from exc


def raise_first_non_utf8(path: str | Path) -> None:
    """Raise :func:`utf8_line`'s error for the first line of ``path`` (plain or gzip) that
    is not UTF-8; return when every line is (or the file cannot be read: the caller's
    own error stands). For after a parser refused a file: it reads the file again."""
    try:
        with open_binary(path) as fh:
            for i, raw in enumerate(fh):
                utf8_line(raw, path=path, line=i + 1)
    except (OSError, EOFError):
        return


def header_names(line: bytes) -> list[str]:
    """Column names of a header line read by :func:`header_line`."""
    return line.decode("utf-8").rstrip("\n").rstrip("\r").split("\t")


def check_header(path: str | Path, names: Sequence[str], *, required: Sequence[str] = ()) -> None:
    """The header rules: no column named twice, every ``required`` column present.

    Raises
    ------
    SumstatsError
        Naming the file and the duplicated or missing columns.
    """
    dup = sorted({h for h in names if names.count(h) > 1})
    if dup:
        raise SumstatsError(f"{path}: duplicated column(s) {dup} in header")
    missing = [c for c in required if c not in names]
    if missing:
        raise SumstatsError(f"{path}: missing required column(s) {missing}; present: {list(names)}")


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


class Block(NamedTuple):
    """Whole lines of a table: ``data`` (ending at a line end, but for a file's last block),
    found at byte ``start`` of the file's text (decompressed) at ``path``."""

    path: Path
    start: int
    data: bytes

    def first_line(self) -> int:
        """The file line number of the block's first line (the header is line 1).

        Counted when asked (an error message), not for every block read: counting
        line ends costs a pass over the text.
        """
        lines, left = 0, self.start
        with open_binary(self.path) as fh:
            while left > 0:
                buf = fh.read(min(left, BLOCK_BYTES))
                if not buf:
                    break
                lines += buf.count(b"\n")
                left -= len(buf)
        return lines + 1


class Blocks:
    """The data lines of a plain or gzip text table, in :class:`Block` s of whole lines.

    The first ``skip`` lines (the header) are passed over. Iterating yields
    blocks of about ``block_bytes`` (default :data:`BLOCK_BYTES`, read when
    iterating) ending at a line end (the last: at the file's end). Afterwards
    ``start`` is the data's byte offset, ``last`` its last byte, and
    ``header_ok`` whether the file has its first ``skip`` lines, each ended by
    a line end (when it has not, nothing is yielded).

    Raises
    ------
    SumstatsError
        While iterating, when the stream cannot be read on (a truncated or
        damaged gzip stream), naming the file and the line reached.
    """

    def __init__(self, path: str | Path, *, skip: int = 1, block_bytes: int | None = None):
        self.path, self.skip, self.block_bytes = Path(path), skip, block_bytes
        self.start = 0
        self.last = b""
        self.header_ok = False

    def __iter__(self) -> Iterator[Block]:
        at = 0
        try:
            with open_binary(self.path) as fh:
                for _ in range(self.skip):
                    head = fh.readline()
                    if not head.endswith(b"\n"):
                        return
                    self.start += len(head)
                self.header_ok = True
                at = self.start
                for data in line_blocks(fh, self.block_bytes or BLOCK_BYTES):
                    self.last = data[-1:]
                    yield Block(self.path, at, data)
                    at += len(data)
        except (OSError, EOFError) as exc:
            try:  # the text before ``at`` was read once: it reads again
                where = f"line {Block(self.path, at, b'').first_line()}" if at else "its header"
            except (OSError, EOFError):
                where = f"byte {at} of its text"
            raise SumstatsError(
                f"{self.path}: cannot read the text from {where} on ({_reason(exc)}); rule: plain text "
                "or a complete gzip or zstd stream") from exc


def parse_block(block: Block, *, path: str | Path, schema: dict[str, pl.DataType],
                columns: Sequence[str]) -> pl.DataFrame:
    """``columns`` of a block of a tab-separated table whose header is ``schema``'s keys.

    Each value is parsed as its column's type in ``schema`` (no inference);
    :data:`NA_TOKENS` are missing. A blank line (white space only) gives no row,
    wherever it is: alone in a block, inside one or at its start.

    Raises
    ------
    SumstatsError
        When a value does not parse as its column's type, naming the file, the
        line, the column and the value; or when a line does not parse at all
        (more or fewer fields than the header, not blank), naming the line.
    """
    if not _NOT_SPACE.search(block.data):  # no copy of the block to find out
        return pl.DataFrame(schema={c: schema[c] for c in columns})
    # The parser fills a short line's missing fields with nulls: a line cut in a damaged
    # transfer would pass with a value cut short (0.0824 for 0.08240962). Such a line's last
    # field is then null, so the schema's last column is parsed too and only a block where it
    # has a null (a cut line, a blank line or a missing value) has its lines' fields counted
    # and its blank lines found.
    last = next(reversed(schema))
    if last in columns:
        read, wanted = schema, columns
    else:  # read as text: a column not asked for is never refused for its values
        read, wanted = {**schema, last: pl.String}, [*columns, last]
    try:
        df = _read_block(block.data, read, wanted)
    except (pl.exceptions.PolarsError, OSError) as exc:
        blank = _check_fields(block, path=path, width=len(schema))
        if not blank:
            raise SumstatsError(_locate(block, path=path, schema=schema, columns=columns,
                                        exc=exc)) from exc
        # White space in a typed field ("  " as a position): parsed again, blank lines emptied.
        block = block._replace(data=_emptied(block.data, blank))
        try:
            df = _read_block(block.data, read, wanted)
        except (pl.exceptions.PolarsError, OSError) as again:
            raise SumstatsError(_locate(block, path=path, schema=schema, columns=columns,
                                        exc=again)) from again
    else:
        blank = _check_fields(block, path=path, width=len(schema), rows=df) \
            if df.get_column(last).null_count() else []
    if blank:  # row i is line i of the block: the parser reads a blank line as a row
        df = df.filter(~pl.int_range(pl.len()).is_in(blank))
    return df if last in columns else df.drop(last)


def _check_fields(block: Block, *, path: str | Path, width: int,
                  rows: pl.DataFrame | None = None) -> list[int]:
    """The blank lines of ``block`` (white space only; their places in the block); raise
    naming the first line that is not blank and has not ``width`` fields.

    ``rows``: the block as parsed, when it parsed; row i is line i.
    """
    import numpy as np

    # Every line has width - 1 tabs: counted first (numpy, no copy, without the GIL), the
    # lines are looked at one by one only when the counts disagree. A blank line has no
    # tab, but for one of tabs and spaces only: a row null in every typed column (white
    # space parses as missing) and null or white space in every text one, looked at.
    data = block.data
    codes = np.frombuffer(data, dtype=np.uint8)
    n_lines = int(np.count_nonzero(codes == 10)) + (not data.endswith(b"\n"))
    if int(np.count_nonzero(codes == 9)) == (width - 1) * n_lines:
        if rows is None or not rows.width:
            return []
        typed = [pl.col(c).is_null() for c, t in rows.schema.items() if t != pl.String]
        text = [pl.col(c).is_null() | (pl.col(c).str.strip_chars() == "")
                for c, t in rows.schema.items() if t == pl.String]
        # The typed columns first (cheap, and few rows left), then the text ones of those.
        at = rows.select(pl.all_horizontal(typed or text).arg_true()).to_series()
        if typed and text and not at.is_empty():
            at = at.gather(rows[at].select(pl.all_horizontal(text).arg_true()).to_series())
        if at.is_empty():
            return []
        lines = data.split(b"\n")
        return [i for i in at.to_list() if not _NOT_SPACE.search(lines[i])]
    del codes
    blank = []
    for i, line in enumerate(data.split(b"\n")):
        if not _NOT_SPACE.search(line):
            blank.append(i)
            continue
        n = line.count(b"\t") + 1
        if n != width:
            raise SumstatsError(
                f"{path}: line {block.first_line() + i}: {n} fields, header has "
                f"{width}; rule: every row has as many tab-separated fields as the header "
                "(a cut or damaged line)")
    return blank


def _emptied(data: bytes, lines: Sequence[int]) -> bytes:
    """``data`` with the given lines (places in ``data``) emptied, their line ends kept."""
    parts = data.split(b"\n")
    for i in lines:
        parts[i] = b""
    return b"\n".join(parts)


def _read_block(data: bytes, schema: dict[str, pl.DataType], columns: Sequence[str]) -> pl.DataFrame:
    # missing_columns: the parser takes a block's first line for the number of fields, so a
    # blank first line would be a table of one column; its other fields are nulls, as for
    # any short line (which _check_fields then names).
    names = list(schema)
    return pl.read_csv(data, has_header=False, separator="\t", schema=schema,
                       columns=[names.index(c) for c in columns], null_values=list(NA_TOKENS),
                       quote_char='"', missing_columns="insert")


def _locate(block: Block, *, path: str | Path, schema: dict[str, pl.DataType],
            columns: Sequence[str], exc: BaseException) -> str:
    """The first line, column and value of ``block`` that its column's type rejects, as a message."""
    import numpy as np

    first = _reason(exc)
    first_line = block.first_line()
    last = first_line + block.data.count(b"\n") - 1
    try:
        block.data.decode("utf-8")
    except UnicodeDecodeError as bad:
        line = first_line + block.data.count(b"\n", 0, bad.start)
        return (f"{path}: line {line}: not UTF-8 text ({bad.reason}, byte 0x{block.data[bad.start]:02x}); "
                "rule: UTF-8 text (e.g. iconv -f latin1 -t utf-8)")
    try:
        text = _read_block(block.data, {c: pl.String for c in schema}, columns)
    except pl.exceptions.PolarsError:
        return f"{path}: lines {first_line}-{last}: {first}"
    for c in columns:
        dtype = schema[c]
        if dtype == pl.String:
            continue
        s = text.get_column(c)
        hits = np.flatnonzero((s.cast(dtype, strict=False).is_null() & s.is_not_null()).to_numpy())
        if hits.size:
            i = int(hits[0])
            # Row i is line i of the block: the parser reads a blank line as a row of nulls.
            return (f"{path}: line {first_line + i}: column {c}: {s[i]!r} is not a valid {dtype} "
                    "(the column's declared type)")
    return f"{path}: lines {first_line}-{last}: {first}"


def ordered_map(fn: Callable[[_T], _R], items: Iterable[_T], *, workers: int = PARSE_WORKERS,
                ahead: int = PARSE_AHEAD) -> Iterator[_R]:
    """``fn`` of each item, in order, computed by ``workers`` threads while the next items are read.

    At most ``ahead`` results wait besides the one being computed, so memory
    holds a few items (blocks), not all. An exception is raised when its item's
    turn comes; the items in flight are then cancelled. ``workers=0``: in this
    thread, one item at a time.
    """
    if workers <= 0:
        for item in items:
            yield fn(item)
        return
    from concurrent.futures import ThreadPoolExecutor

    pending: deque = deque()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="crosscohort-parse") as pool:
        try:
            for item in items:
                pending.append(pool.submit(fn, item))
                del item
                while len(pending) > ahead:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for f in pending:
                f.cancel()


def _reason(exc: BaseException) -> str:
    """The first line of an exception's message (its type when it has none)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
