"""Read any cohort's summary statistics into one GWAS-SSF frame, values normalised.

:func:`read_summary_statistics` reads one delimited file (tab, space or
comma; gzipped or not) under a format preset, the header dictionary or a
``--columns`` mapping (:mod:`crosscohort.central.harmonise.formats`), and
normalises what the tools disagree on: OR -> log OR, OR CI -> SE, p from
-log10 p, z or beta/SE where missing, p underflow kept as
``neg_log_10_p_value``, a default N, numeric allele codes, ``-`` strands.
:func:`harmonise_files` is the command's whole pipeline: read, place
marker-only rows, check the build (and lift over), left-normalise indels,
align (:func:`crosscohort.central.harmonise.align.harmonise_cohort`), fold the
readers' counts into the ledger, and write, one cohort at a time.

Every pass is a polars expression over whole columns; a file is read by one
streamed query that keeps only the converted columns, never all its text.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import polars as pl
import yaml
from polars.io.plugins import register_io_source

from crosscohort.central.harmonise import files
from crosscohort.central.harmonise.align import (
    HarmonisedSet,
    check_harmonise_options,
    compact_reference,
    left_normalise,
    read_reference,
)
from crosscohort.central.harmonise.alleles import complement, is_upper_letters, normalise_allele
from crosscohort.central.harmonise.formats import (
    FORMAT_NAMES,
    HEADER_DICTIONARY,
    PRESETS,
    detect_format,
    header_key,
    resolve_columns,
)
from crosscohort.contract.errors import ConfigError, InputError
from crosscohort.contract.keys import EAF_MAX_DIFF, FLAG_EAF_FAR
from crosscohort.contract.stats import neg_log10_p_from_z, z_from_neg_log10_p
from crosscohort.contract.sumstats import (
    FLAG_COLUMNS,
    float_column,
    read_sumstats,
)
from crosscohort.contract.table_io import (
    FOREIGN_NA_TOKENS,
    Block,
    Blocks,
    SumstatsError,
    check_line_end,
    count_byte,
    open_binary,
    ordered_map,
    raise_first_non_utf8,
    utf8_line,
)

__all__ = [
    "FLAG_P_INCONSISTENT",
    "P_INCONSISTENT_REL",
    "InputSpec",
    "ReadResult",
    "harmonise_files",
    "parse_input",
    "read_column_map",
    "read_summary_statistics",
]

#: Boolean column: beta/SE disagrees with the file's own p (kept, not dropped).
FLAG_P_INCONSISTENT = FLAG_COLUMNS["flag_p_inconsistent"].name
#: beta/SE and p disagree when ``| z_from_p - |beta/SE| | > P_INCONSISTENT_REL * max(|beta/SE|, 1)``:
#: 5 % relative, with a floor of 1 so that p printed with few digits near 1 is not flagged.
P_INCONSISTENT_REL = 0.05
#: z of a 95 % two-sided interval (OR CI -> SE).
Z975 = 1.959963984540054
#: Legacy numeric allele codes (``--numeric-alleles``).
NUMERIC_ALLELES = {"1": "A", "2": "C", "3": "G", "4": "T"}

# Private per-row flags carried through alignment and summed on the kept rows
# into the ledger's ``changed`` (reason = name without the prefix).
_FLAG = "_rd_"
_LINE = "_line"
_NUMERIC = ("beta", "odds_ratio", "standard_error", "ci_lower", "ci_upper", "z", "chi_square",
            "p_value", "neg_log_10_p_value", "effect_allele_frequency", "info")
_COUNTS = ("n", "n_cases", "n_controls")
#: A byte that is not a line end: a block without one holds blank lines only.
_NOT_BLANK = re.compile(rb"[^\r\n]")
_MARKER_POSITION = r"^(?i:chr)?([0-9]{1,2}|[XxYy]|MT|mt|M|m)[:_](\d+)"
#: The smallest normal double. A p printed below it (BOLT-LMM prints p from log space,
#: "1.2E-500") parses as 0 or as a subnormal with few digits left: its -log10 p is read
#: from the text (:func:`_printed_neg_log10`).
P_FLOOR = 2.2250738585072014e-308
#: The column of those -log10 p, by row, from the reading to :func:`_values`.
_PRINTED_NLP = "_printed_neg_log_10_p"


@dataclass(frozen=True)
class InputSpec:
    """One command-line input: ``[COHORT=]PATH[:FORMAT]`` or ``[COHORT=]PATH:MAP.yaml``.

    ``options``: this file's own column map and options (:func:`read_column_map`:
    ``columns``, ``default_n``, ``numeric_alleles``, ``missing``), which replace
    the run's for this file only; ``None``: the run's apply. ``map_path``: the
    YAML they came from (named in errors).
    """

    cohort: str
    path: Path
    format: str
    options: dict | None = None
    map_path: Path | None = None


@dataclass(frozen=True)
class ReadResult:
    """One file read into GWAS-SSF columns.

    Attributes
    ----------
    table
        GWAS-SSF columns (``chromosome`` as text labels, for
        :func:`~crosscohort.contract.keys.normalise_chromosomes`), ``rsid`` (the
        marker name), :data:`FLAG_P_INCONSISTENT`, and private ``_rd_*`` flags.
    source
        The file name.
    format
        The preset used (``mapped`` for the header dictionary / mapping).
    columns
        Field -> header name used.
    removed
        Rows the reader did not pass on, by reason (``not_additive_test``).
    n_rows
        Data rows in the file (``table.height + sum(removed)``).
    """

    table: pl.DataFrame
    source: str
    format: str
    columns: dict[str, str]
    removed: dict[str, int] = field(default_factory=dict)
    n_rows: int = 0


def parse_input(item: str, *, default_format: str = "auto") -> InputSpec:
    """``COHORT=PATH``, ``PATH``, ``PATH:FMT`` or ``COHORT=PATH:FMT`` as an :class:`InputSpec`.

    Without ``COHORT=`` the cohort id is the file name up to its first dot.
    A trailing ``:FMT`` is a format only when FMT is one of :data:`FORMAT_NAMES`.
    """
    from crosscohort.contract.keys import check_cohort_name

    cohort, sep, rest = item.partition("=")
    if not sep:
        cohort, rest = "", item
    if sep and (not cohort or not rest):
        raise ConfigError(f"expected [COHORT=]PATH[:FORMAT], got {item!r}")
    fmt = default_format
    options, map_path = None, None
    head, colon, tail = rest.rpartition(":")
    if colon and head and tail.endswith((".yaml", ".yml")):
        # FILE:MAP.yaml: this file's own columns and options (METAL's per-file settings).
        options, map_path = read_column_map(tail), Path(tail)
        rest, fmt = head, options.get("format", default_format)
    elif colon and tail in FORMAT_NAMES:
        rest, fmt = head, tail
    elif colon and head and "/" not in tail and "." not in tail:
        raise ConfigError(
            f"{item!r}: unknown format {tail!r}; expected one of {list(FORMAT_NAMES)}"
        )
    if fmt not in FORMAT_NAMES:
        raise ConfigError(f"unknown format {fmt!r}; expected one of {list(FORMAT_NAMES)}")
    path = Path(rest)
    if not cohort:
        if not path.exists():
            # Most likely a malformed COHORT=FILE rather than a missing file: say both.
            raise ConfigError(
                f"expected COHORT=FILE (or an existing FILE), got {item!r}: no '=' and no such file"
            )
        cohort = path.name.split(".")[0]
    check_cohort_name(cohort)
    return InputSpec(cohort=cohort, path=path, format=fmt, options=options, map_path=map_path)


def read_column_map(path: str | Path) -> dict:
    """The ``--columns`` YAML: ``columns: {field: HEADER}`` plus optional ``format``,
    ``numeric_alleles``, ``default_n``, ``missing`` (extra NA tokens: a list, or one
    token; numbers as written, returned as a list of strings).

    Raises
    ------
    ConfigError
        On unknown keys or fields, or when ``columns`` is not a mapping of strings.
    """
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.MarkedYAMLError as exc:
        # One line with the position in the map (PyYAML's own text spans lines and
        # names "<unicode string>").
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ConfigError(
            f"{path}: {where}{exc.problem or exc.context}; rule: the column map is YAML "
            "(key: value lines, lists in [ ], e.g. columns: {beta: EFFECT})"
        ) from exc
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read the column mapping ({exc})") from exc
    except UnicodeDecodeError as exc:
        line = path.read_bytes().count(b"\n", 0, exc.start) + 1
        raise ConfigError(f"{path}: line {line}: the column mapping is not UTF-8 text ({exc.reason}); "
                          "rule: a YAML file in UTF-8 (e.g. iconv -f latin1 -t utf-8)") from exc
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: expected a mapping with key 'columns'")
    allowed = {"columns", "format", "numeric_alleles", "default_n", "missing"}
    unknown = sorted(set(doc) - allowed)
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {unknown}; allowed: {sorted(allowed)}")
    cols = doc.get("columns", {})
    if not isinstance(cols, dict) or not all(isinstance(v, str) for v in cols.values()):
        raise ConfigError(f"{path}: 'columns' must map field names to header names")
    bad = sorted(set(cols) - set(HEADER_DICTIONARY))
    if bad:
        raise ConfigError(
            f"{path}: unknown field(s) {bad} under columns; expected some of {sorted(HEADER_DICTIONARY)}"
        )
    if "format" in doc and doc["format"] not in FORMAT_NAMES:
        raise ConfigError(f"{path}: format {doc['format']!r} not one of {list(FORMAT_NAMES)}")
    n = doc.get("default_n")
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n <= 0):
        raise ConfigError(f"{path}: default_n must be a positive integer; got {n!r}")
    if not isinstance(doc.get("numeric_alleles", False), bool):
        raise ConfigError(f"{path}: numeric_alleles must be true or false; got "
                          f"{doc['numeric_alleles']!r}")
    if "missing" in doc:
        # The tokens as written: YAML reads -9 as a number and `missing: NR` as one string
        # (not the letters N and R); callers get a list of strings.
        tokens = doc["missing"]
        if isinstance(tokens, (str, int, float)) and not isinstance(tokens, bool):
            tokens = [tokens]
        if not isinstance(tokens, list) or not all(
                isinstance(t, (str, int, float)) and not isinstance(t, bool) for t in tokens):
            raise ConfigError(f"{path}: missing: a list of text or numbers read as missing "
                              f"(e.g. missing: [NR, -9]); got {tokens!r}")
        doc["missing"] = [str(t) for t in tokens]
    return doc


# --- reading ---------------------------------------------------------------------------

def _sniff(path: Path) -> tuple[list[str], str, int, bool]:
    """Header names, the separator (``\\t``, ``,`` or ``ws``), lines before the data, and
    whether a tab or space file quotes its fields (every header name in double quotes, as
    R's write.table writes by default).

    A UTF-8 byte-order mark before the first line (Excel's "UTF-8 CSV") is read
    through: it is not part of the first column's name.
    """
    try:
        with open_binary(path) as fh:
            for i, raw in enumerate(fh):
                if i == 0:
                    raw = raw.removeprefix(b"\xef\xbb\xbf")
                text = utf8_line(raw, path=path, line=i + 1).rstrip("\r\n")
                check_line_end(raw, path=path, line=i + 1)
                if not text.strip() or text.startswith("##"):
                    continue
                if "\t" in text:
                    sep, names = "\t", text.split("\t")
                elif "," in text:
                    sep, names = ",", [h.strip().strip('"') for h in text.split(",")]
                else:
                    sep, names = "ws", text.split()
                names = [h.strip() for h in names]
                quoted = sep != "," and all(len(h) > 1 and h[0] == h[-1] == '"' for h in names)
                return [h[1:-1] for h in names] if quoted else names, sep, i + 1, quoted
    except (OSError, EOFError) as exc:
        raise InputError(f"{path}: cannot read ({_reason(exc)}); rule: delimited text, plain "
                         "or a complete gzip or zstd stream") from exc
    raise InputError(f"{path}: empty file, expected a header line")


def _reason(exc: BaseException) -> str:
    """The first line of an exception's message (its type when it has none)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _scan_lines(path: Path, header: list[str], sep: str, skip: int,
                used: list[int], *, quoted: bool = False,
                sample: bool = True) -> tuple[pl.LazyFrame, int]:
    """The used fields of every data line as a lazy frame of text, and the number of data lines.

    The file is read in blocks (:class:`~crosscohort.contract.table_io.Blocks`)
    twice, never all of its text at once: a first pass counts each line's fields
    (the parser would fill short lines with nulls without a word) and refuses
    ragged lines; the frame returned is a lazy source that parses each block
    again when the caller's query streams it. Tab, comma and single-space files
    are split by polars' CSV parser; files aligned with runs of spaces after a
    regex clean-up (a file whose first lines, ``sample``-d, are single-spaced and a later
    line not, too). Blank lines are no rows; line numbers count them. ``quoted``
    (a tab or space file whose header is quoted): a field in double quotes is read
    without them.
    """
    sampled = sep == "ws" and sample and _single_spaced(path, skip)
    if sampled:
        sep = " "
    text = pl.col("_text").str.strip_chars_end("\r")
    if sep == "ws":
        text = text.str.strip_chars().str.replace_all(r"[ \t]+", "\t")
    n_fields = text.str.count_matches("\t" if sep == "ws" else sep, literal=True) + 1
    ragged = n_fields != len(header)
    # A comma file's field may be quoted (begin with a double quote; one inside a field is a
    # character of it); a quote left open would run on into the next lines.
    opens = text.str.contains(r'(^|,) *"') if sep == "," else pl.lit(False)
    unclosed = opens & (text.str.count_matches('"', literal=True) % 2 == 1)
    first_unclosed: int | None = None
    quotes = False
    firsts: list[int] = []  # each block's first line number, for the second pass
    blanks: list[list[int]] = []  # and its blank lines' numbers (rarely any)
    n = n_bad = 0
    first_bad: tuple[int, int] | None = None
    line = skip + 1
    try:
        for block in Blocks(path, skip=skip):
            firsts.append(line)
            lines, k = _text_lines(block.data, line)
            blanks.append([] if lines.height == k else sorted(
                set(range(line, line + k)) - set(lines.get_column(_LINE).to_list())))
            line += k
            counts = lines.select(
                pl.len().alias("n"), ragged.sum().alias("n_bad"),
                pl.col(_LINE).filter(ragged).first().alias("line"),
                n_fields.filter(ragged).first().alias("k"),
                pl.col(_LINE).filter(unclosed).first().alias("unclosed"),
                opens.any().alias("opens"),
            ).row(0, named=True)
            quotes = quotes or bool(counts["opens"])
            if first_unclosed is None:
                first_unclosed = counts["unclosed"]
            n += counts["n"]
            n_bad += counts["n_bad"]
            if first_bad is None and counts["n_bad"]:
                first_bad = (counts["line"], counts["k"])
    except SumstatsError:
        raise  # a damaged gzip stream, named with the line reached
    except (pl.exceptions.PolarsError, OSError, EOFError) as exc:
        if "utf-8" in str(exc).lower() or "utf8" in str(exc).lower():
            raise_first_non_utf8(path)
        raise InputError(f"{path}: cannot read ({_reason(exc)}); rule: delimited text, plain "
                         "or a complete gzip or zstd stream, UTF-8") from exc
    if first_unclosed is not None:
        raise InputError(f"{path}: line {first_unclosed}: a double quote opened and not closed; "
                         "rule: quoted fields of a comma-separated file close their quotes")
    if n_bad and sampled:
        # Single spaces in the sampled lines only: runs of spaces separate one field each.
        return _scan_lines(path, header, "ws", skip, used, quoted=quoted, sample=False)
    if n_bad:
        raise InputError(
            f"{path}: line {first_bad[0]}: {first_bad[1]} fields, header has {len(header)}; "
            f"rule: every row has as many fields as the header ({n_bad} such line(s))"
        )
    names = [f"_c{i}" for i in used]
    width = len(header)

    def fields(block: Block, first: int, blank: list[int]) -> pl.DataFrame:
        if sep == "ws":
            # Staged so that the clean-up and the split run once per line, not once per field.
            parts = _text_lines(block.data, first)[0].select(
                pl.col(_LINE), text.str.split_exact("\t", max(width - 1, 0)).alias("_parts"))
            return unquote(parts.select(pl.col(_LINE), *[pl.col("_parts").struct.field(f"field_{i}")
                                                         .alias(f"_c{i}") for i in used]))
        if not _NOT_BLANK.search(block.data):
            return pl.DataFrame(schema=schema)
        # The parser reads a blank line as a row of nulls, but takes a block's first line for
        # the number of fields: a blank one there would be one field ("missing_columns": the
        # rest as nulls, as for any short line, which the first pass has refused). Blank lines
        # are dropped by their numbers, not as rows of nulls: a line of empty fields is a row.
        df = pl.read_csv(
            block.data, has_header=False, separator=sep, quote_char='"' if quotes else None,
            schema={f"_c{i}": pl.String for i in range(width)}, missing_columns="insert",
        ).with_row_index(_LINE, offset=first).select(_LINE, *names)
        if blank:
            df = df.filter(~pl.col(_LINE).is_in(blank))
        strip = (pl.col(c).str.strip_chars() if sep == "," else pl.col(c).str.strip_chars_end("\r")
                 for c in names)
        return unquote(df.with_columns(strip))

    def unquote(df: pl.DataFrame) -> pl.DataFrame:
        if not quoted:
            return df
        return df.with_columns(pl.col(c).str.replace(r'^"(.*)"$', "${1}") for c in names)

    schema = {_LINE: pl.get_index_type(), **dict.fromkeys(names, pl.String)}

    def source(with_columns, predicate, n_rows, _batch_size) -> Iterator[pl.DataFrame]:
        left = n_rows
        for first, blank, block in zip(firsts, blanks, Blocks(path, skip=skip), strict=False):
            df = fields(block, first, blank)
            if predicate is not None:
                df = df.filter(predicate)
            if with_columns is not None:
                df = df.select(with_columns)
            if left is not None:
                df, left = df.head(left), left - min(left, df.height)
            yield df
            if left == 0:
                return

    return register_io_source(source, schema=schema), n


def _text_lines(data: bytes, first: int) -> tuple[pl.DataFrame, int]:
    """Each non-blank line of a block as ``_text``, numbered from ``first``, and the block's
    number of lines (blank ones included: the parser reads each as a null)."""
    if not _NOT_BLANK.search(data):  # blank lines only: the parser would find no column
        return (pl.DataFrame(schema={_LINE: pl.get_index_type(), "_text": pl.String}),
                data.count(b"\n"))
    lines = pl.read_csv(data, has_header=False, separator="\x1f", quote_char=None,
                        schema={"_text": pl.String}, truncate_ragged_lines=True)
    return (lines.with_row_index(_LINE, offset=first).filter(pl.col("_text").is_not_null()),
            lines.height)


def _read_typed(path: Path, *, n_fields: int, sep: str, skip: int, used: list[int],
                numeric: set[int], na: tuple[str, ...], p_field: int | None = None,
                ) -> tuple[pl.LazyFrame, int, bool, dict[int, float]] | None:
    """The used fields parsed straight to their types (lazy frame, data lines, unpadded,
    printed -log10 p), or ``None``.

    ``unpadded``: the file holds no white space that a field could begin or end
    with, so its text fields need no stripping. ``p_field``: the field holding p;
    where it parses below the float range, the -log10 p its text gives, by line
    (:func:`_printed_neg_log10`).

    The fast path for well-formed files: numeric fields become Float64 in the
    parser itself (no text column, no per-field cast). It is taken only when
    it provably reads what :func:`_scan_lines` would: no carriage return, as
    many rows as data lines (no blank line shifts the line numbers), no
    row with fewer fields than the header and, in a comma-separated file, no
    field that begins with a double quote (:func:`_block_facts`). Anything
    else (a parse error, a ragged or quoted row, padding spaces) returns
    ``None`` and the file goes through the checking path, whose errors name
    the line and column.

    The file (plain or gzip) is read once, in blocks cut at line ends: each
    block is parsed and its bytes checked by a worker thread (the main one
    only reads), so memory never holds the whole text (225 MB for 2M rows),
    only the parsed columns.
    """
    if sep == "ws":
        if not _single_spaced(path, skip):
            return None
        sep = " "
    if len(sep) != 1:
        return None
    sep_b = sep.encode()
    # Bytes a text field could begin or end with (the Unicode white space polars strips):
    # white space other than the separator and the line end (above ASCII: isascii).
    pad = tuple(c for c in (b" ", b"\t", b"\x0b", b"\x0c") if c != sep_b)
    # A row with fewer fields than the header has its last field null: when that field is
    # parsed anyway and a block holds no null in it, the block needs no separator count.
    last_field = f"_c{n_fields - 1}" if n_fields - 1 in used else None
    schema = {f"_c{i}": (pl.Float64 if i in numeric else pl.String) for i in range(n_fields)}
    read = dict(has_header=False, separator=sep, quote_char=None, schema=schema, columns=used)
    # A preset's or user's token may parse as a number (GWAMA's -9): then match them all.
    tokens_first = not set(na) <= set(FOREIGN_NA_TOKENS)
    blocks = Blocks(path, skip=skip)
    parse = dict(na=na, numeric=[f"_c{i}" for i in used if i in numeric],
                 text=[f"_c{i}" for i in used if i not in numeric], tokens_first=tokens_first,
                 sep=sep_b, n_fields=n_fields, last_field=last_field, pad=pad,
                 p_field=p_field if p_field in numeric else None)
    frames: list[pl.DataFrame] = []
    facts: list[_BlockFacts] = []
    # Blocks are parsed and checked by workers while the next one is read (both release
    # the GIL); a few blocks are in flight, so memory holds a few blocks.
    try:
        for df, fact in ordered_map(lambda b: _parse_block(b.data, read, **parse), blocks):
            frames.append(df)
            facts.append(fact)
    except (pl.exceptions.PolarsError, SumstatsError, OSError, EOFError, ValueError):
        return None
    if not blocks.header_ok:
        return None
    n_lines = sum(f.lines for f in facts) + (1 if blocks.last not in (b"", b"\n") else 0)
    if any(f.cr or f.short or f.quoted for f in facts):
        return None
    # No field can begin or end with white space (the Unicode kind polars strips) when
    # the file has none but its separator and line ends: no space, tab, VT or FF
    # besides the separator, and no byte above ASCII.
    unpadded = not any(f.padded for f in facts)
    df = (pl.concat(frames, rechunk=False) if frames
          else pl.DataFrame(schema={f"_c{i}": schema[f"_c{i}"] for i in used}))
    if df.height != n_lines:
        return None
    # One row per data line (checked above), so the line number is the row's position.
    df = df.with_row_index(_LINE, offset=skip + 1).select(_LINE, *[f"_c{i}" for i in used])
    printed, row = {}, skip + 1
    for frame, fact in zip(frames, facts, strict=True):
        printed.update((row + i, v) for i, v in fact.printed_p)
        row += frame.height
    # A row with every used field null: a blank line (no row; the checking path drops it by
    # its number) or a line of empty fields or missing tokens (a row, its bad values
    # counted); the parser cannot tell them apart here, so such a file takes the checking path.
    if df.select(pl.all_horizontal(pl.col(f"_c{i}").is_null() for i in used).any()).item():
        return None
    return df.lazy(), n_lines, unpadded, printed


@dataclass(frozen=True)
class _BlockFacts:
    """What the fast reader must know of a block's bytes besides its parsed rows.

    ``lines``: line ends; ``cr``: holds a carriage return; ``short``: some row
    has fewer fields than the header; ``padded``: holds a byte a text field
    could begin or end with (white space other than the separator, or a byte
    above ASCII); ``quoted``: a field of a comma-separated block begins with a
    double quote (R's write.csv quotes every text field; the checking path reads
    the quotes off, the typed read, with no quote character, would keep them);
    ``printed_p``: (row, -log10 p from the text) where p parsed below the float range.
    """

    lines: int
    cr: bool
    short: bool
    padded: bool
    quoted: bool = False
    printed_p: tuple[tuple[int, float], ...] = ()


def _block_facts(piece: bytes, df: pl.DataFrame, *, sep: bytes, n_fields: int,
                 last_field: str | None, pad: tuple[bytes, ...]) -> _BlockFacts:
    """:class:`_BlockFacts` of a block and its parsed rows (byte counts in numpy, tests by
    ``bytes`` methods: memchr-fast).

    The parser refuses a row with more fields than the header and gives a
    shorter one nulls for the fields it lacks, its last field among them. So
    when the last field is parsed and never null, no row is short; otherwise
    the separators are counted: exactly ``n_fields - 1`` per line (a blank
    line has none).
    """
    lines = count_byte(piece, b"\n")
    if last_field is not None and not df.get_column(last_field).null_count():
        short = False
    else:
        rows = lines + (1 if piece and not piece.endswith(b"\n") else 0)
        short = count_byte(piece, sep) != rows * (n_fields - 1)
    return _BlockFacts(lines=lines, cr=b"\r" in piece, short=short,
                       padded=not piece.isascii() or any(c in piece for c in pad),
                       quoted=sep == b"," and _opens_quote(piece))


def _opens_quote(piece: bytes) -> bool:
    """Whether a comma-separated block has a field that begins with a double quote (a quote
    inside a field, ``rs"1``, is a character of it)."""
    return piece.startswith((b'"', b' "')) or any(
        m in piece for m in (b',"', b', "', b'\n"', b'\n "'))


def _parse_block(piece: bytes, read: dict, *, na: tuple[str, ...], numeric: list[str],
                 text: list[str], tokens_first: bool, sep: bytes, n_fields: int,
                 last_field: str | None, pad: tuple[bytes, ...],
                 p_field: int | None = None) -> tuple[pl.DataFrame, _BlockFacts]:
    """One block of whole lines parsed to the typed columns, and its :class:`_BlockFacts`.

    Matching every field against the missing tokens costs the parser a third
    more CPU, so a block is first parsed without them: that succeeds exactly
    when no numeric field holds a token (a token such as NA does not parse;
    nan does, and is caught here), and the block is otherwise parsed again
    with them. Every token of FOREIGN_NA_TOKENS either fails to parse as a number or
    parses as NaN (tested). Then the text fields' tokens are nulled as the
    parser would have (an exact match of the whole field). Parse errors
    propagate (the caller gives up). The facts are those of the bytes parsed;
    where the p field (``p_field``) parsed below the float range, its text is
    read again for the -log10 p it prints.
    """
    df = None
    if not tokens_first:
        try:
            df = pl.read_csv(piece, **read)
            if any(df.get_column(c).is_nan().any() for c in numeric):
                df = None
        except pl.exceptions.PolarsError:
            df = None
    if df is None:
        df = pl.read_csv(piece, **read, null_values=list(na))
    else:
        tokens = list(na)
        df = df.with_columns(pl.when(pl.col(c).is_in(tokens)).then(None).otherwise(pl.col(c))
                             .alias(c) for c in text if df.get_column(c).is_in(tokens).any())
    facts = _block_facts(piece, df, sep=sep, n_fields=n_fields, last_field=last_field, pad=pad)
    if p_field is not None:
        p = df.get_column(f"_c{p_field}")
        tiny = ((p >= 0) & (p < P_FLOOR)).fill_null(False)
        if tiny.any():  # a few rows of a few files: the block's p read again as text
            texts = pl.read_csv(piece, **{**read, "schema": dict.fromkeys(read["schema"], pl.String),
                                          "columns": [p_field]}).get_column(f"_c{p_field}")
            rows = tiny.arg_true()
            facts = replace(facts, printed_p=tuple(
                (int(r), v) for r, v in zip(rows, _printed_neg_log10(texts.gather(rows)), strict=True)
                if v is not None))
    return df, facts


def _printed_neg_log10(text: pl.Series) -> list[float | None]:
    """-log10 of numbers printed as mantissa and exponent (``1.2E-500``), from the two
    (exact where the number underflows); ``None`` for any other text (``0``, ``NA``)."""
    parts = text.str.strip_chars().str.extract_groups(
        r"^\+?([0-9]*\.?[0-9]+)[eE]([-+]?[0-9]+)$")
    mantissa = parts.struct.field("1").cast(pl.Float64, strict=False)
    exponent = parts.struct.field("2").cast(pl.Float64, strict=False)
    return [None if m is None or e is None or not m > 0 else -(math.log10(m) + e)
            for m, e in zip(mantissa.to_list(), exponent.to_list(), strict=True)]


def _single_spaced(path: Path, skip: int, sample: int = 2000) -> bool:
    """Whether the first data lines separate fields by exactly one space (no runs, no tabs)."""
    with open_binary(path) as fh:
        for i, raw in enumerate(fh):
            if i < skip:
                continue
            if i >= skip + sample:
                break
            text = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            if not text:
                continue
            if "  " in text or "\t" in text or text[0] == " " or text[-1] == " ":
                return False
    return True


def _as_read(typed: pl.LazyFrame, col: str) -> bool:
    """Whether a text column of the typed read is already what :func:`_text_expr` makes of it.

    The typed read nulls the missing tokens (whole fields); what is left to do is
    stripping, and with it a token padded by spaces. Neither applies when no
    value begins or ends with white space (checked on the distinct values when
    there are few, as for chromosome labels).
    """
    series = typed.select(pl.col(col)).collect().to_series()
    if series.dtype != pl.String:
        return False
    probe = series.head(10_000).unique()
    if probe.len() < 1000:  # few labels: check the distinct values, not every row
        series = series.unique()
    return not bool(series.str.contains(r"^\s|\s$").fill_null(False).any())


def _text_expr(col: str, missing: tuple[str, ...]) -> pl.Expr:
    """A text column, stripped, with the missing tokens as null."""
    t = pl.col(col).str.strip_chars()
    return pl.when(t.is_in(list(missing))).then(None).otherwise(t)


def _number_expr(col: str, missing: tuple[str, ...]) -> tuple[pl.Expr, pl.Expr]:
    """(value as Float64, True where the text is neither a number nor a missing token)."""
    t = _text_expr(col, missing)
    num = t.cast(pl.Float64, strict=False)
    return num, (num.is_null() & t.is_not_null())


def read_summary_statistics(
    path: str | Path,
    *,
    format: str = "auto",
    columns: Mapping[str, str] | None = None,
    default_n: int | None = None,
    numeric_alleles: bool = False,
    missing: tuple[str, ...] = (),
) -> ReadResult:
    """One summary-statistics file, any supported format, as GWAS-SSF columns.

    Parameters
    ----------
    path
        Delimited text (tab, whitespace or comma, detected from the header
        line; ``##`` lines before it skipped; gzip detected from the bytes),
        or a GWAS-SSF ``.parquet``.
    format
        A preset of :data:`~crosscohort.central.harmonise.formats.PRESETS`, ``auto``
        (preset signature, else the header dictionary) or ``mapped``.
    columns
        Field -> header name; overrides the preset or dictionary.
    default_n
        N for rows (or files) without one.
    numeric_alleles
        Read alleles ``1/2/3/4`` as ``A/C/G/T``. Without it, numeric alleles are an error.
    missing
        Extra text read as missing (the preset's, e.g. GWAMA's ``-9``, are added).

    Returns
    -------
    ReadResult

    Raises
    ------
    InputError
        Naming the file and line or column: ragged rows, a missing required
        field, text in a numeric column, undeclared numeric alleles, an
        ambiguous header.
    ConfigError
        Unknown format or mapping field.

    Notes
    -----
    Values, per row, in this order (``changed`` reasons in brackets, counted
    on the rows harmonisation keeps):

    - beta = ln(OR) where there is no beta column [``beta_from_odds_ratio``];
    - SE = (ln U - ln L) / (2 * 1.959964) from the OR's 95 % CI where SE is
      missing [``se_from_ci``], else |beta / z| [``se_from_z``];
    - p = 10^-LOG10P where only -log10 p is given (0 on underflow; the
      -log10 p is kept); else 2 Phi(-|z|) [``p_from_z``]; else 2 Phi(-|beta/SE|)
      [``p_from_beta_se``]; p printed below the float range (``1.2E-500``) gets
      -log10 p from its printed mantissa and exponent, p printed as 0 from beta/SE;
    - :data:`FLAG_P_INCONSISTENT` where a given p and beta/SE disagree by more
      than :data:`P_INCONSISTENT_REL` [``p_inconsistent_flagged``];
    - n := ``default_n`` where missing [``n_default``]; alleles 1-4 -> ACGT
      [``numeric_alleles_decoded``]; ``STRAND`` ``-`` -> complemented alleles
      [``strand_minus_complemented``]; chromosome and position parsed from
      ``chr:pos...`` marker names where the file has none
      [``position_from_marker_name``].
    """
    return _finish_read(_parse_file(path, format=format, columns=columns, missing=missing),
                        default_n=default_n, numeric_alleles=numeric_alleles)


@dataclass
class _Parsed:
    """A file read as far as its parsed rows: :func:`_parse_file`'s half of a read.

    ``typed`` is :func:`_read_typed`'s result (``None``: the checking path
    reads the file in :func:`_finish_read`); ``frame`` a parquet file's whole table.
    """

    path: Path
    source: str
    fmt: str = "gwas-ssf"
    header: list[str] = field(default_factory=list)
    sep: str = "\t"
    skip: int = 0
    cols: dict[str, str] = field(default_factory=dict)
    na: tuple[str, ...] = ()
    extra: list[str] = field(default_factory=list)
    used: list[int] = field(default_factory=list)
    numeric: list[str] = field(default_factory=list)
    typed: tuple[pl.LazyFrame, int, bool, dict[int, float]] | None = None
    quoted: bool = False
    frame: pl.DataFrame | None = None


def _parse_file(path: str | Path, *, format: str = "auto", columns: Mapping[str, str] | None = None,
                missing: tuple[str, ...] = (), other_from_reference: bool = False,
                columns_from: Path | None = None) -> _Parsed:
    """The first half of :func:`read_summary_statistics`: header, columns and the parsed rows.

    Everything that reads the file's bytes and needs no other file: a
    prefetching caller runs it for the next file while this one is finished.
    ``other_from_reference``: a file with an effect allele and no other allele
    is read (the caller takes the other allele from its reference panel).
    """
    path = Path(path)
    source = str(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if format not in FORMAT_NAMES:
        raise ConfigError(f"unknown format {format!r}; expected one of {list(FORMAT_NAMES)}")
    if path.suffix == ".parquet":
        return _Parsed(path=path, source=source,
                       frame=read_sumstats(path, chromosome_labels=True, required=()))
    header, sep, skip, quoted = _sniff(path)
    dup = sorted({h for h in header if header.count(h) > 1})
    if dup:
        raise InputError(f"{path}: line {skip}: duplicated column(s) {dup} in header")
    fmt = detect_format(header) if format == "auto" else format
    cols = resolve_columns(header, format=fmt, mapping=dict(columns or {}), source=source,
                           mapping_from=str(columns_from) if columns_from else None)
    na = (*FOREIGN_NA_TOKENS, *(PRESETS[fmt].missing if fmt in PRESETS else ()), *missing)

    # GWAS-SSF and bundles: unknown columns pass through as text (nothing silently lost).
    extra = ([h for h in header if h not in cols.values() and h != "variant_id"]
             if fmt == "gwas-ssf" else [])
    index = {h: i for i, h in enumerate(header)}
    used = sorted({index[h] for h in (*cols.values(), *extra)})
    need_any = [("effect_allele",), ("beta", "odds_ratio"),
                ("standard_error", "ci_lower", "z", "chi_square", "p_value", "neg_log_10_p_value")]
    only_effect = ("effect_allele" in cols and "other_allele" not in cols
                   and not {"ref", "alt"} <= set(cols))
    if only_effect and not other_from_reference:
        raise InputError(
            f"{source}: missing required column for other_allele (format {fmt}); header is "
            f"{header}; rule: each row needs its other allele as well as its effect allele. "
            "A file that gives only the effect allele (plink 1.9 --linear/--logistic print A1 "
            "alone): give --reference, whose allele pair at the position supplies it, or add "
            "the second allele (A2 of the .bim) as a column"
        )
    if not {"marker", "chromosome"} & set(cols):
        need_any.append(("chromosome", "marker"))
    for group in need_any:
        if not any(f in cols for f in group):
            raise InputError(
                f"{source}: missing required column for {' or '.join(group)} (format {fmt}); "
                f"header is {header}; rule: effect/other allele, beta or OR, and SE (or CI, z, p) "
                f"are required; map them {f'in {columns_from}' if columns_from else 'with --columns'}"
            )

    numeric = [f for f in (*_NUMERIC, *_COUNTS, "base_pair_location") if f in cols]
    # Quoted tab or space files (R's write.table) are read off their quotes by the checking path.
    typed = None if quoted else _read_typed(
        path, n_fields=len(header), sep=sep, skip=skip, used=used,
        numeric={index[cols[f]] for f in numeric}, na=na,
        p_field=index[cols["p_value"]] if "p_value" in cols else None)
    return _Parsed(path=path, source=source, fmt=fmt, header=header, sep=sep, skip=skip,
                   cols=cols, na=na, extra=extra, used=used, numeric=numeric, typed=typed,
                   quoted=quoted)


def _finish_read(parsed: _Parsed, *, default_n: int | None = None,
                 numeric_alleles: bool = False) -> ReadResult:
    """The second half of :func:`read_summary_statistics`: values, alleles and checks."""
    if parsed.frame is not None:
        return _from_frame(parsed.frame, source=parsed.source, default_n=default_n)
    path, source, fmt, header, cols, na = (parsed.path, parsed.source, parsed.fmt, parsed.header,
                                           parsed.cols, parsed.na)
    sep, skip, extra, used, numeric, typed = (parsed.sep, parsed.skip, parsed.extra, parsed.used,
                                              parsed.numeric, parsed.typed)
    parsed.typed = None  # the parsed rows go once converted
    index = {h: i for i, h in enumerate(header)}

    def c(f: str) -> str:
        return f"_c{index[cols[f]]}"

    checks: dict[str, str] = {}
    removed: dict[str, int] = {}
    exprs: list[pl.Expr] = [pl.col(_LINE)]
    printed: dict[int, float] = {}
    again = pl.lit(False)
    if typed is not None:
        lf, n_rows, unpadded, printed = typed
        exprs += [pl.col(c(f)).alias(f) for f in numeric]
    else:
        lf, n_rows = _scan_lines(path, header, sep, skip, used, quoted=parsed.quoted)
        # The header again as a data line: parts concatenated with their headers (cat
        # chr*.glm.linear > all), the commonest way per-chromosome outputs are handed over.
        # (A file with one never takes the typed read: its numbers do not parse.) Marked
        # here, exempt from the number checks, removed after them.
        # Two columns tell it (a data row holding two header names); not every column:
        # a string comparison per field costs the checking read a tenth more CPU.
        again = pl.all_horizontal(pl.col(f"_c{i}").str.strip_chars() == header[i].strip()
                                  for i in used[:2]).fill_null(False)
        exprs.append(again.alias("_again"))
        for f in numeric:
            num, bad = _number_expr(c(f), na)
            exprs += [num.alias(f), bad.alias(f"_bad_{f}")]
            checks[f"_bad_{f}"] = f

    # One streamed query: the text columns are never all in memory, only the converted ones.
    if "test" in cols:
        add = (pl.col(c("test")).str.strip_chars().str.to_uppercase() == "ADD").fill_null(False)
        lf = lf.filter(add | again)
    errcodes: dict[str, int] = {}
    if "error_code" in cols:
        # Counted per code here; the rows go after the alleles are read (below: a
        # multi-allelic site's failed rows still name an allele plink2 fitted), carried as
        # one boolean, not their text.
        # The typed read has nulled '.' already: then no stripped copy of the column is made.
        code = (pl.col(c("error_code")) if typed is not None and (unpadded or _as_read(lf, c("error_code")))
                else _text_expr(c("error_code"), na))
        failed = code.is_not_null() & ~again
        if typed is not None:  # in memory: a query of its own costs no second read
            errcodes = _errcode_reasons(lf.filter(failed).group_by(code.alias("code")).len()
                                        .collect())
        else:  # the streamed read: the failed rows' codes ride along (nulls elsewhere)
            exprs.append(pl.when(failed).then(code).alias("_errcode_text"))
        # (A filter here, in the query, raised the peak memory of a 1M-row file by 50 MB.)
        exprs.append(failed.alias("_errcode"))
    if "test_note" in cols:
        # REGENIE's EXTRA: TEST_FAIL (the test did not run; BETA/SE/LOG10P print NA) among
        # other notes (DF=k of joint tests), which say nothing against the row's estimate.
        note = _text_expr(c("test_note"), na).str.to_uppercase()
        exprs.append((note.str.contains(r"(?:^|[^A-Z0-9_])TEST_FAIL(?:$|[^A-Z0-9_])")
                      .fill_null(False) & ~again).alias("_test_failed"))
    for f in ("chromosome", "marker", "strand", "imputed"):
        if f in cols:
            if typed is not None and (unpadded or _as_read(lf, c(f))):
                exprs.append(pl.col(c(f)).alias(f))
            else:
                exprs.append(_text_expr(c(f), na).alias(f))
    for f in ("effect_allele", "other_allele", "ref", "alt"):
        if f in cols:
            exprs.append(pl.col(c(f)).alias(f))
    for h in extra:
        exprs.append(pl.col(f"_c{index[h]}").alias(h))
    try:
        # The checking path streams its text (never all in memory); the typed frame is
        # in memory already, and the in-memory engine passes its columns on uncopied.
        df = lf.select(exprs).collect(engine="streaming" if typed is None else "in-memory")
    except (pl.exceptions.PolarsError, OSError, EOFError) as exc:
        if "utf-8" in str(exc).lower() or "utf8" in str(exc).lower():
            raise_first_non_utf8(path)
        raise InputError(f"{path}: cannot read ({_reason(exc)}); rule: delimited text, plain "
                         "or a complete gzip or zstd stream, UTF-8") from exc
    if "test" in cols:
        removed["not_additive_test"] = n_rows - df.height
    if "_errcode_text" in df.columns:
        errcodes = _errcode_reasons(df.filter(pl.col("_errcode")).group_by(
            pl.col("_errcode_text").alias("code")).len())
        df = df.drop("_errcode_text")
    if "_again" in df.columns:
        n_again = int(df.get_column("_again").sum())
        if n_again:
            df = df.filter(~pl.col("_again"))
            removed["repeated_header"] = n_again
        df = df.drop("_again")
    for flag, f in checks.items():
        bad = df.get_column(flag)
        if bad.any():
            line = df.get_column(_LINE)[int(bad.arg_max())]
            value = lf.filter(pl.col(_LINE) == line).select(c(f)).collect().item()
            raise InputError(
                f"{source}: line {line}: column {cols[f]} ({f}): {value!r} is not a number; "
                "rule: numeric fields hold numbers or NA"
            )
    df = df.drop(list(checks))
    if fmt == "gwas-ssf" and header_key(cols.get("marker", "")) == "variant_id":
        # variant_id as a marker (no rsid column): its rsIDs only; our chrom:pos:ref:alt
        # ids, or the spec's chr_pos_ref_alt ones, are rebuilt from the row, not names.
        m = pl.col("marker")
        df = df.with_columns(pl.when(m.str.contains(r"^rs[0-9]+$")).then(m).alias("marker"))
    relabel = dict(PRESETS[fmt].chromosome_labels) if fmt in PRESETS else {}
    if relabel and "chromosome" in df.columns and \
            df.get_column("chromosome").is_in(list(relabel)).any():  # a new column: when needed
        # The tool's own codes (PLINK 1's 25 = XY, 26 = MT), before GWAS-SSF's are applied.
        df = df.with_columns(pl.col("chromosome").replace(relabel))
    if typed is None and "p_value" in cols:
        # p printed below the float range (parsed as 0 or a subnormal): its text again.
        tiny = df.filter((pl.col("p_value") >= 0) & (pl.col("p_value") < P_FLOOR)).get_column(_LINE)
        if tiny.len():
            texts = lf.filter(pl.col(_LINE).is_in(tiny.implode())).select(
                _LINE, _text_expr(c("p_value"), na)).collect()
            printed = {line: v for line, v in zip(texts.get_column(_LINE).to_list(),
                                                  _printed_neg_log10(texts.to_series(1)),
                                                  strict=True) if v is not None}
    if printed:
        df = df.with_columns(pl.col(_LINE).replace_strict(
            list(printed), list(printed.values()), default=None, return_dtype=pl.Float64,
        ).alias(_PRINTED_NLP))
    # A preset's number that means missing in one field only (GWAMA's -9 in N and EAF).
    sentinels = [(f, v) for f, v in (PRESETS[fmt].sentinels if fmt in PRESETS else ())
                 if f in df.columns]
    if sentinels:
        df = df.with_columns(pl.when(pl.col(f) == v).then(None).otherwise(pl.col(f)).alias(f)
                             for f, v in sentinels)
    # Counts and positions become integers: a value no 64-bit integer holds (1e20, inf)
    # is an error naming its line, not a failed cast.
    for f in numeric:
        if f in (*_COUNTS, "base_pair_location"):
            v = pl.col(f)
            huge = (v.abs() >= 2.0**53) | v.is_infinite() | v.is_nan()
            hit = df.select(huge.fill_null(False).arg_true().first()).item()
            if hit is not None:
                raise InputError(
                    f"{source}: line {df.get_column(_LINE)[hit]}: column {cols[f]} ({f}): "
                    f"{df.get_column(f)[hit]!r} is out of range; rule: {f} is a whole number "
                    "below 2^53"
                )
    # A position is a whole number as printed (1e+06 is one); 1234.5 is none, and is not
    # rounded as a count (an effective sample size) is.
    if "base_pair_location" in numeric:
        v = pl.col("base_pair_location")
        hit = df.select((v != v.round()).fill_null(False).arg_true().first()).item()
        if hit is not None:
            raise InputError(
                f"{source}: line {df.get_column(_LINE)[hit]}: column {cols['base_pair_location']} "
                f"(base_pair_location): {df.get_column('base_pair_location')[hit]!r} is not a whole "
                "number; rule: base_pair_location is a whole number (a position)"
            )
    # METAL's Weight and some tools' N are effective sizes: rounded, not refused.
    df = df.with_columns(pl.col(f).round().cast(pl.Int64)
                         for f in numeric if f in (*_COUNTS, "base_pair_location"))
    if "effect_allele" in df.columns and not {"other_allele", "ref"} & set(df.columns):
        df = df.with_columns(pl.lit(None, pl.String).alias("other_allele"))  # the reference's
    df = _alleles(df, numeric_alleles=numeric_alleles, source=source, na=na)
    if "_errcode" in df.columns:
        # plink2 marks a fit it does not vouch for (ERRCODE other than '.'), and still prints
        # values for some (UNFINISHED: the iteration limit was reached): never combined.
        # Removed after the alleles: a multi-allelic site's failed rows still tell which
        # allele plink2 omitted.
        removed.update(errcodes)
        if errcodes:  # a copy of the table: only when there are rows to remove
            df = df.filter(~pl.col("_errcode"))
        df = df.drop("_errcode")
    if "_test_failed" in df.columns:
        # A failed test is its own reason, not a bad value: counted before the values are
        # checked (its NA beta would otherwise be counted bad_value_beta).
        n_failed = int(df.get_column("_test_failed").sum())
        removed["test_failed"] = n_failed
        if n_failed:
            df = df.filter(~pl.col("_test_failed"))
        df = df.drop("_test_failed")
    return ReadResult(table=_values(df, default_n=default_n), source=source, format=fmt,
                      columns=cols, removed=removed, n_rows=n_rows)


def _errcode_reasons(counts: pl.DataFrame) -> dict[str, int]:
    """``errcode_<code>`` -> rows, from a (code, len) frame: plink2's ERRCODE as a ledger reason."""
    return {f"errcode_{re.sub(r'[^a-z0-9]+', '_', k.lower()).strip('_')}": int(n)
            for k, n in sorted(counts.iter_rows())}


def _from_frame(df: pl.DataFrame, *, source: str, default_n: int | None) -> ReadResult:
    """A GWAS-SSF frame (parquet) through the same value normalisation."""
    df = df.with_row_index(_LINE, offset=2)
    if "rsid" in df.columns:
        df = df.rename({"rsid": "marker"})
    if "variant_id" in df.columns:
        df = df.drop("variant_id")
    for c in ("effect_allele", "other_allele"):
        if c in df.columns:
            df = df.with_columns(normalise_allele(pl.col(c).cast(pl.String)))
    return ReadResult(table=_values(df, default_n=default_n), source=source, format="gwas-ssf",
                      columns={c: c for c in df.columns}, n_rows=df.height)


def _omitted_allele(df: pl.DataFrame) -> pl.DataFrame:
    """plink2's multi-allelic rows: the other allele is the one allele plink2 omitted.

    plink2 ``--glm`` fits a site's alleles jointly and omits one (the major
    allele by default, REF with ``omit-ref``): each printed row's BETA is its
    A1 against the omitted allele, which is the one allele of REF and ALT that
    no row of the site has as A1. Neither REF nor AX (every non-A1 allele) says
    it. Rows of a site whose omitted allele is not exactly one (rows missing
    from the file) get none: a bad value, counted.
    """
    multi = pl.col("alt").str.contains(",", literal=True).fill_null(False)
    if not df.select(multi.any()).item():
        return df
    key = [c for c in ("chromosome", "base_pair_location", "marker", "ref", "alt") if c in df.columns]
    sites = (
        df.filter(multi).group_by(key)
        .agg(pl.col("effect_allele").unique().alias("_a1s"))
        .with_columns(pl.concat_list(pl.col("ref"), pl.col("alt").str.split(","))
                      .list.set_difference(pl.col("_a1s")).alias("_left"))
        .select(*key, pl.when(pl.col("_left").list.len() == 1)
                .then(pl.col("_left").list.first()).alias("_omitted"))
    )
    return (df.join(sites, on=key, how="left", nulls_equal=True, maintain_order="left")
            .with_columns(pl.when(multi).then(pl.col("_omitted"))
                          .otherwise(pl.col("other_allele")).alias("other_allele"))
            .drop("_omitted"))


def _alleles(df: pl.DataFrame, *, numeric_alleles: bool, source: str, na: tuple[str, ...]) -> pl.DataFrame:
    """Upper-case effect/other alleles; REF/ALT + A1 -> other allele; numeric codes; strand."""
    cols = set(df.columns)
    # "0" is PLINK 1's missing allele (monomorphic sites): missing, a bad value, not an allele.
    # Tokens match the normalised (upper-cased) allele in any case: None, nan(ind) and null
    # are missing, not the alleles NONE, NAN(IND) and NULL, whichever path read the file.
    tokens = list(dict.fromkeys(t.upper() for t in (*na, "0")))
    up = {c: pl.when(normalise_allele(pl.col(c)).is_in(tokens)).then(None)
          .otherwise(normalise_allele(pl.col(c))) for c in ("effect_allele", "other_allele", "ref", "alt")
          if c in cols}
    # Alleles already upper-case letters only (the usual file) are left as they are:
    # normalising is then the identity, they hold no comma and no numeric code, and only
    # the missing tokens made of capitals can match. One pass over each column, no copy.
    letters = [t for t in tokens if re.fullmatch("[A-Z]+", t)]
    clean = {c for c in ("effect_allele", "other_allele")
             if c in cols and not {"ref", "alt"} & cols and is_upper_letters(df.get_column(c))}
    for c in clean:
        hit = pl.col(c).is_in(letters)
        up[c] = pl.when(hit).then(None).otherwise(pl.col(c)) if letters and \
            df.select(hit.any()).item() else None
    df = df.with_columns(**{c: e for c, e in up.items() if e is not None})
    if "other_allele" not in cols and {"ref", "alt"} <= cols:
        # plink2: A1 is REF or the ALT; the other allele is the remaining one (multi-allelic
        # sites: below).
        df = df.with_columns(
            pl.when(pl.col("effect_allele") == pl.col("ref")).then(pl.col("alt"))
            .otherwise(pl.col("ref")).alias("other_allele")
        )
    if {"ref", "alt"} <= cols:
        df = _omitted_allele(df)
    # A list of alleles (plink2's AX of a multi-allelic site whose omitted allele is not
    # known, a VCF's several ALTs) is no single allele: such rows fail the allele rule
    # instead of being guessed, in either column.
    df = df.with_columns(
        pl.when(pl.col(a).str.contains(",", literal=True)).then(None).otherwise(pl.col(a)).alias(a)
        for a in ("effect_allele", "other_allele") if a in df.columns and a not in clean
    )
    df = df.drop([c for c in ("ref", "alt") if c in df.columns])
    pair = [pl.col("effect_allele"), pl.col("other_allele")]
    numeric = pl.any_horizontal([a.str.contains(r"^[1-4]$") for a in pair]).fill_null(False)
    if numeric_alleles:
        df = df.with_columns(
            *[a.replace(NUMERIC_ALLELES) for a in pair], numeric.alias(f"{_FLAG}numeric_alleles_decoded")
        )
    elif {"effect_allele", "other_allele"} <= clean:
        pass  # letters only: no numeric code
    elif df.select(numeric.any()).item():
        i = int(df.select(numeric.arg_max()).item())
        raise InputError(
            f"{source}: line {df.get_column(_LINE)[i]}: alleles "
            f"{df.get_column('effect_allele')[i]!r}/{df.get_column('other_allele')[i]!r} are numeric "
            "codes; rule: alleles are A/C/G/T (or indels); pass --numeric-alleles if 1/2/3/4 = A/C/G/T"
        )
    if "imputed" in df.columns:
        # GWAMA's IMPUTED/IMP: 1 imputed, 0 genotyped. It changes no value (GWAMA weighs
        # both alike); the ledger counts the imputed rows kept (changed.imputed_marked).
        df = df.with_columns(
            (pl.col("imputed").str.strip_chars() == "1").fill_null(False)
            .alias(f"{_FLAG}imputed_marked")).drop("imputed")
    if "strand" in df.columns:
        minus = (pl.col("strand") == "-").fill_null(False)
        df = df.with_columns(
            *[pl.when(minus).then(complement(a)).otherwise(a) for a in pair],
            minus.alias(f"{_FLAG}strand_minus_complemented"),
        ).drop("strand")
    return df


def _values(df: pl.DataFrame, *, default_n: int | None) -> pl.DataFrame:
    """OR, CI, z, p, -log10 p reconciled; N defaulted; chromosome from marker names."""
    cols = set(df.columns)

    def col(name: str) -> np.ndarray | None:
        # Read-only (no copy) where polars can lend its buffer; copied before any write.
        return np.asarray(df.get_column(name).cast(pl.Float64).to_numpy(), dtype=float) \
            if name in cols else None

    def writable(a: np.ndarray) -> np.ndarray:
        return a if a.flags.writeable else a.copy()

    m = df.height
    nan = np.full(m, np.nan)
    flags: dict[str, np.ndarray] = {}
    # Columns passed on as read (no value filled in) are not rebuilt from their arrays.
    changed = {"beta": "beta" not in cols, "standard_error": "standard_error" not in cols,
               "p_value": "p_value" not in cols, "neg_log_10_p_value": True}
    beta = col("beta")
    if beta is None:
        if col("odds_ratio") is None:
            raise InputError("summary statistics lack beta and odds_ratio")
        with np.errstate(divide="ignore", invalid="ignore"):
            beta = np.log(col("odds_ratio"))
        flags["beta_from_odds_ratio"] = ~np.isnan(beta)
    se = col("standard_error")
    se = nan.copy() if se is None else se
    z_given = col("z")
    chi_square = col("chi_square")
    if z_given is None and chi_square is not None:
        # A 1-df chi-square (plink 1.9 --assoc's allelic test) is z squared: its root is |z|,
        # which is all that SE = |beta / z| and p = 2 Phi(-|z|) use.
        with np.errstate(invalid="ignore"):
            z_given = np.sqrt(np.where(chi_square >= 0, chi_square, np.nan))
    with np.errstate(divide="ignore", invalid="ignore"):
        if col("ci_lower") is not None and col("ci_upper") is not None:
            from_ci = (np.log(col("ci_upper")) - np.log(col("ci_lower"))) / (2 * Z975)
            fill = np.isnan(se) & ~np.isnan(from_ci)
            se = np.where(fill, from_ci, se)
            flags["se_from_ci"] = fill
            changed["standard_error"] |= bool(fill.any())
        if z_given is not None:
            fill = np.isnan(se) & ~np.isnan(z_given) & (z_given != 0)
            se = np.where(fill, np.abs(beta / z_given), se)
            flags["se_from_z"] = fill
            changed["standard_error"] |= bool(fill.any())
    p = col("p_value")
    p = nan.copy() if p is None else p
    nlp = col("neg_log_10_p_value")
    nlp = nan.copy() if nlp is None else nlp
    printed = col(_PRINTED_NLP)
    if printed is not None:  # p printed below the float range: -log10 p from its text
        nlp = np.where(np.isnan(nlp) & ~np.isnan(printed), printed, nlp)
    p_given = ~np.isnan(p)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        # SE from p in a file with nothing else to give it (plink 1.9 --assoc fisher prints
        # OR and P only): the SE the two-sided normal p implies, |beta| / |z(p)|, which
        # gives the same p back. Not where p = 1 or beta = 0 (no SE is implied): a bad
        # value; nor in a row whose own SE, CI or z is missing (the tool failed there).
        no_se_column = not ({"standard_error", "ci_lower", "ci_upper"} & cols) and z_given is None
        fill = (np.isnan(se) & np.isfinite(beta) & (beta != 0) & (p_given | ~np.isnan(nlp))
                if no_se_column else np.zeros(m, dtype=bool))
        if fill.any():
            at = np.flatnonzero(fill)
            lp = np.where(np.isnan(nlp[at]), -np.log10(p[at]), nlp[at])
            z_p = np.abs(z_from_neg_log10_p(lp, np.ones_like(lp)))
            ok = np.isfinite(z_p) & (z_p > 0)
            se = writable(se)
            se[at[ok]] = np.abs(beta[at[ok]]) / z_p[ok]
            fill = np.zeros(m, dtype=bool)
            fill[at[ok]] = True
            changed["standard_error"] |= bool(ok.any())
        flags["se_from_p"] = fill
        z_bs = np.abs(beta / se)
        # p from -log10 p where only that is given (REGENIE): exact, 0 on underflow.
        from_nlp = np.isnan(p) & ~np.isnan(nlp)
        if from_nlp.any():
            p = np.where(from_nlp, 10.0 ** -nlp, p)
            changed["p_value"] = True
        if z_given is not None:
            fill = np.isnan(p) & ~np.isnan(z_given)
            lz = neg_log10_p_from_z(z_given)
            nlp = np.where(fill & np.isnan(nlp), lz, nlp)
            p = np.where(fill, 10.0 ** -lz, p)
            flags["p_from_z"] = fill
            changed["p_value"] |= bool(fill.any())
        # The tail functions only where their value is used (most files give every p):
        # element by element the same numbers as over the whole column.
        fill = np.isnan(p) & np.isfinite(z_bs)
        at = np.flatnonzero(fill)
        if at.size:
            lz = neg_log10_p_from_z(z_bs[at])
            nlp, p = writable(nlp), writable(p)
            nlp[at] = np.where(np.isnan(nlp[at]), lz, nlp[at])
            p[at] = 10.0 ** -lz
            changed["p_value"] = True
        flags["p_from_beta_se"] = fill
        # A printed p of 0 is an underflow: its -log10 p comes from beta/SE.
        at = np.flatnonzero((p == 0) & np.isnan(nlp) & np.isfinite(z_bs))
        if at.size:
            nlp = writable(nlp)
            nlp[at] = neg_log10_p_from_z(z_bs[at])
        # -log10 p wherever p is known and > 0, so the column is complete.
        need = np.isnan(nlp) & (p > 0)
        if need.all():
            nlp = -np.log10(p)
        elif need.any():
            at = np.flatnonzero(need)
            nlp = writable(nlp)
            nlp[at] = -np.log10(p[at])
        del need, at
        z_p = z_from_neg_log10_p(nlp, 1.0)
        inconsistent = (p_given & np.isfinite(z_bs) & np.isfinite(z_p)
                        & (np.abs(z_p - z_bs) > P_INCONSISTENT_REL * np.maximum(z_bs, 1.0)))
    flags["p_inconsistent_flagged"] = inconsistent
    new = {
        "beta": beta, "standard_error": se, "p_value": p, "neg_log_10_p_value": nlp,
    }
    # A column read and not filled is the file's own (NaN read as missing, as the arrays do).
    out = df.with_columns(
        [float_column(k, v) if changed[k]
         else df.get_column(k).cast(pl.Float64).fill_nan(None) for k, v in new.items()]
        + [pl.Series(FLAG_P_INCONSISTENT, inconsistent)]
    )
    del new, beta, se, p, nlp, z_bs, z_p
    if "effect_allele_frequency" not in out.columns:
        out = out.with_columns(pl.lit(None, pl.Float64).alias("effect_allele_frequency"))
    if default_n is not None:
        if default_n <= 0:
            raise ConfigError(f"--default-n must be a positive integer; got {default_n}")
        has = out.get_column("n").is_not_null() if "n" in out.columns else pl.Series([False] * m)
        out = out.with_columns(
            (pl.col("n") if "n" in out.columns else pl.lit(None, pl.Int64))
            .fill_null(default_n).cast(pl.Int64).alias("n"),
            (~has).alias(f"{_FLAG}n_default"),
        )
    if "chromosome" not in out.columns:
        out = out.with_columns(pl.lit(None, pl.String).alias("chromosome"))
    if "base_pair_location" not in out.columns:
        out = out.with_columns(pl.lit(None, pl.Int64).alias("base_pair_location"))
    out = out.with_columns(pl.col("chromosome").cast(pl.String))
    unplaced = pl.col("chromosome").is_null() & pl.col("base_pair_location").is_null()
    if "marker" in out.columns and not out.select(unplaced.any()).item():
        # Every row has a chromosome or a position: no marker name is parsed.
        out = out.with_columns(pl.lit(False).alias(f"{_FLAG}position_from_marker_name")
                               ).rename({"marker": "rsid"})
    elif "marker" in out.columns:
        parsed = pl.col("marker").str.extract_groups(_MARKER_POSITION)
        place = unplaced & pl.col("marker").str.contains(_MARKER_POSITION).fill_null(False)
        out = out.with_columns(parsed.alias("_mp"), place.alias(f"{_FLAG}position_from_marker_name"))
        out = out.with_columns(
            pl.when(place).then(pl.col("_mp").struct.field("1")).otherwise(pl.col("chromosome"))
            .alias("chromosome"),
            pl.when(place).then(pl.col("_mp").struct.field("2").cast(pl.Int64))
            .otherwise(pl.col("base_pair_location")).alias("base_pair_location"),
        ).drop("_mp").rename({"marker": "rsid"})
    out = out.with_columns(
        [pl.Series(f"{_FLAG}{k}", v) for k, v in flags.items() if k != "p_inconsistent_flagged"]
        + [pl.col(FLAG_P_INCONSISTENT).alias(f"{_FLAG}p_inconsistent_flagged")]
    )
    # An earlier harmonisation's EAF flag (a harmonised table harmonised again) is read as
    # text and is not this stage's judgement: it sets its own against its reference, if any.
    drop = [c for c in ("odds_ratio", "ci_lower", "ci_upper", "z", "chi_square", _LINE, FLAG_EAF_FAR,
                        _PRINTED_NLP)
            if c in out.columns]
    return out.drop(drop)


# --- the command's pipeline --------------------------------------------------------------

def reader_flags(columns: list[str]) -> dict[str, str]:
    """The reader's private flag columns among ``columns`` -> the ledger change each counts."""
    return {c: c[len(_FLAG):] for c in columns if c.startswith(_FLAG)}


def harmonise_files(
    inputs: list[InputSpec],
    *,
    reference: str | Path | None = None,
    fasta: str | Path | None = None,
    chain: str | Path | None = None,
    build: str | None = None,
    cohort_builds: Mapping[str, str] | None = None,
    columns: Mapping[str, str] | None = None,
    default_n: int | None = None,
    numeric_alleles: bool = False,
    missing: tuple[str, ...] = (),
    trait: str | None = None,
    palindrome_max_maf: float = 0.4,
    eaf_max_diff: float = EAF_MAX_DIFF,
    out_dir: str | Path | None = None,
    variant_ids: bool = True,
    keep: tuple[str, ...] | None = None,
    prefetch: bool = False,
) -> HarmonisedSet:
    """Files of any supported format in, one aligned table per cohort and its ledger out.

    Parameters
    ----------
    inputs
        One :class:`InputSpec` per cohort (:func:`parse_input`).
    reference
        Reference variant table (:func:`~crosscohort.central.harmonise.align.read_reference`);
        an ``rsid``/``id``/``variant_id`` column, when present, places marker-only rows.
    fasta, chain, build, cohort_builds
        Build check and liftover (:func:`crosscohort.central.harmonise.build.check_build`):
        ``build`` is the reference's (and the output's) build; each cohort's
        declared build comes from ``cohort_builds``, else its bundle's
        ``*.meta.yaml`` (``genome_assembly``), else is taken to be ``build``.
    columns, default_n, numeric_alleles, missing
        Passed to :func:`read_summary_statistics` for every file.
    trait, palindrome_max_maf, eaf_max_diff
        Passed to :func:`~crosscohort.central.harmonise.align.harmonise_cohort`.
    out_dir
        Write ``out_dir/{cohort}.tsv.gz`` as each cohort is done, and
        ``out_dir/ledger.json``; the returned set then holds the ledgers only,
        so memory never holds more than one cohort. Written into a staging
        folder and moved into ``out_dir`` only when every cohort succeeded
        (:class:`crosscohort.central.harmonise.files.Staging`).
    variant_ids
        ``False``: tables without ``variant_id`` (for the meta-analysis, which keys
        variants itself; a string per row saved).
    keep
        Columns to keep (those present) in the returned tables; ``None`` keeps
        all. For a caller that needs a few, so that memory holds only those
        (the meta-analysis): the returned tables are then de-duplicated but not
        sorted (without a reference, positioned rows stay in file order).
    prefetch
        Parse the next file in a worker thread while the current one's values are
        finished and the cohort aligned (polars parses without the GIL): faster on
        two or more cores, at the cost of one more file's parsed rows in memory.
        Tables, ledgers and the first error reported are those of the sequential loop.

    Returns
    -------
    crosscohort.central.harmonise.align.HarmonisedSet
        Ledgers count, per cohort, every data row of the file:
        ``n_in = n_kept + sum(removed)``, reader and build reasons included.

    Raises
    ------
    ConfigError
        Two cohorts given the same file (by content), or an output that is an
        input (:mod:`crosscohort.central.harmonise.files`).
    """
    check_harmonise_options(palindrome_max_maf=palindrome_max_maf, eaf_max_diff=eaf_max_diff)
    seen: set[str] = set()
    for spec in inputs:
        if spec.cohort in seen:
            raise ConfigError(f"cohort {spec.cohort!r} given twice")
        seen.add(spec.cohort)
    files.check_distinct_inputs({spec.cohort: spec.path for spec in inputs})
    if out_dir is not None:
        files.check_outputs_not_inputs(
            [Path(out_dir) / f"{spec.cohort}.tsv.gz" for spec in inputs]
            + [Path(out_dir) / files.LEDGER_NAME],
            [*(spec.path for spec in inputs), reference, fasta, chain], option="--out-dir")
        with files.Staging(out_dir) as staging:
            result = _harmonise_files(inputs, out_dir=staging.dir, reference=reference,
                                      fasta=fasta, chain=chain, build=build,
                                      cohort_builds=cohort_builds, columns=columns,
                                      default_n=default_n, numeric_alleles=numeric_alleles,
                                      missing=missing, trait=trait,
                                      palindrome_max_maf=palindrome_max_maf,
                                      eaf_max_diff=eaf_max_diff, variant_ids=variant_ids,
                                      keep=keep, prefetch=prefetch)
            staging.commit(spec.cohort for spec in inputs)
        return result
    return _harmonise_files(inputs, out_dir=None, reference=reference, fasta=fasta, chain=chain,
                            build=build, cohort_builds=cohort_builds, columns=columns,
                            default_n=default_n, numeric_alleles=numeric_alleles,
                            missing=missing, trait=trait, palindrome_max_maf=palindrome_max_maf,
                            eaf_max_diff=eaf_max_diff, variant_ids=variant_ids, keep=keep,
                            prefetch=prefetch)


def _harmonise_files(inputs: list[InputSpec], *, out_dir: Path | None, reference, fasta, chain,
                     build, cohort_builds, columns, default_n, numeric_alleles, missing, trait,
                     palindrome_max_maf, eaf_max_diff, variant_ids, keep,
                     prefetch) -> HarmonisedSet:
    """:func:`harmonise_files` after its checks; ``out_dir`` is the staging folder."""
    from crosscohort.central.harmonise import build as buildmod
    from crosscohort.central.harmonise.driver import harmonise_reads

    ref = read_reference(reference) if reference else None
    genome = buildmod.Genome(fasta) if fasta else None
    target = buildmod.normalise_build(build) if build else None
    if ref is not None and genome is not None:
        ref, _ = left_normalise(ref, genome, a="ref", b="alt")
        ref = ref.unique(subset=["chromosome", "base_pair_location", "ref", "alt"], keep="first",
                         maintain_order=True)
    if ref is not None:
        # Packed once (about 24 bytes a variant) and the frame let go: every cohort is
        # aligned against the packed panel (the frame when positions exceed 32 bits).
        ref = compact_reference(ref) or ref

    def parse(spec: InputSpec) -> _Parsed:
        if spec.options is not None:  # the file's own map replaces the run's
            return _parse_file(spec.path, format=spec.format,
                               columns=spec.options.get("columns"),
                               missing=tuple(spec.options.get("missing", ())),
                               other_from_reference=ref is not None, columns_from=spec.map_path)
        return _parse_file(spec.path, format=spec.format, columns=columns, missing=missing,
                           other_from_reference=ref is not None)

    def finish(spec: InputSpec, parsed: _Parsed) -> ReadResult:
        if spec.options is not None:
            rd = _finish_read(parsed, default_n=spec.options.get("default_n", default_n),
                              numeric_alleles=bool(spec.options.get("numeric_alleles",
                                                                    numeric_alleles)))
        else:
            rd = _finish_read(parsed, default_n=default_n, numeric_alleles=numeric_alleles)
        if ref is not None and not {"other_allele", "ref"} & set(rd.columns):
            rd = _other_allele_from_reference(rd, ref)
        return rd

    # One cohort at a time, written (when out_dir is given) before the next is read, so
    # memory holds one cohort's columns, not all of them; with ``prefetch`` the next file
    # is parsed in a worker thread while this one's values are finished and it is aligned
    # (one more file's parsed rows in memory).
    reads = _ordered_reads(parse, finish, inputs, prefetch=prefetch and len(inputs) > 1)
    try:
        return harmonise_reads(
            ((spec.cohort, spec.path, rd) for spec, rd in zip(inputs, reads, strict=True)),
            [spec.cohort for spec in inputs], reference=ref, reference_path=reference,
            genome=genome, chain=chain, target=target, cohort_builds=cohort_builds, trait=trait,
            palindrome_max_maf=palindrome_max_maf, eaf_max_diff=eaf_max_diff,
            variant_ids=variant_ids, keep=keep, keep_marker_only=True, out_dir=out_dir)
    finally:
        reads.close()


def _other_allele_from_reference(rd: ReadResult, panel) -> ReadResult:
    """A file that gives only the effect allele, its other allele taken from the panel.

    Rows the panel gives one (:func:`~crosscohort.central.harmonise.align.other_allele_from_panel`)
    are counted ``changed.other_allele_from_reference``; the rest are removed,
    counted ``other_allele_not_in_reference``.
    """
    from crosscohort.central.harmonise.align import other_allele_from_panel

    table = rd.table
    if "chromosome" not in table.columns or "base_pair_location" not in table.columns:
        other = pl.repeat(None, table.height, dtype=pl.String, eager=True).alias("other_allele")
    else:
        other = other_allele_from_panel(table, panel)
    placed = other.is_not_null()
    table = table.with_columns(other, placed.alias(f"{_FLAG}other_allele_from_reference"))
    kept = table.filter(placed)
    removed = {**rd.removed, "other_allele_not_in_reference": table.height - kept.height}
    return replace(rd, table=kept, removed=removed)


def _ordered_reads(parse, finish, inputs: list[InputSpec], *, prefetch: bool):
    """Each input's ``finish(spec, parse(spec))``, in command-line order.

    With ``prefetch``, the next file's ``parse`` runs in a thread from the
    moment this file's has returned, so it overlaps this file's ``finish`` and
    whatever the caller does with the result (alignment). The worker's
    exception is raised when its file's turn comes, so the first error
    reported is the one the sequential loop would report; closing the
    generator (an error while finishing or aligning an earlier cohort)
    cancels or waits out the parse ahead and drops its result or error.
    """
    if not prefetch:
        for spec in inputs:
            yield finish(spec, parse(spec))
        return
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="crosscohort-read")
    try:
        ahead = pool.submit(parse, inputs[0])
        for i in range(len(inputs)):
            # In a box, so that this frame holds no reference to a table once it is handed on.
            box = [ahead.result()]
            ahead = pool.submit(parse, inputs[i + 1]) if i + 1 < len(inputs) else None
            box = [finish(inputs[i], box.pop())]
            yield box.pop()
    finally:
        if ahead is not None:
            ahead.cancel()
        pool.shutdown(wait=True, cancel_futures=True)

