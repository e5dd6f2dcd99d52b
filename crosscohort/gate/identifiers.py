"""Sample identifiers: reading them from TRE files, and scanning released files for them.

The scan rule (stated in every audit):

* Forbidden strings are every FID and IID value found in the ``--ids-from``
  files (``.fam``; ``.psam``/phenotype/covariate tables with a ``#FID IID``
  or ``#IID`` header; header-less files as ``FID IID`` lists), except
  PLINK's missing-value code ``0``.
* A released file is cut into *tokens*: maximal runs of characters other
  than tab, newline, carriage return, space, comma, colon, semicolon,
  quotes (`` " ' ` ``), ``=``, ``|``, ``/``, ``\\``, brackets and braces. An
  ID matches only a whole token: ID ``12`` does not match ``123456`` or
  ``rs12``.
* Scanned: every released file *name* (also split on ``.``); in
  ``.tsv.gz`` files (decompressed) the header and every field of a text
  column (``variant_id``, ``rsid``, alleles), except the chromosome and
  position parts of ``variant_id``; in ``.json``/``.yaml`` files every key
  and string value; in ``.md`` files every non-numeric token. Numbers that
  the gate itself computes or that are typed coordinates (positions, counts,
  statistics, sizes) are not compared, so a purely numeric sample ID
  (common: ``123456``) cannot collide with a base-pair position or a count;
  a numeric ID copied into any text field is still caught.
* Per-person tables: a released table with any column named like a person
  identifier (``fid``, ``iid``, ``sample``, ``eid``, ``participant``,
  ``person``, ``individual``...) is refused, as is one with exactly as many
  rows as the cohort has samples and a column outside the allow-list.
"""

from __future__ import annotations

import gzip
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import yaml

from crosscohort.errors import GateError, InputError
from crosscohort.sumstats import ALL_COLUMNS, COLUMNS

__all__ = [
    "SampleIds",
    "read_sample_ids",
    "scan_released",
    "tokens",
    "redact",
    "PERSON_COLUMN",
    "SCAN_RULE",
]

_DELIMS = r"\t\n\r ,:;\"'`=|/\\\[\]{}()<>"
_TOKEN = re.compile(rf"[^{_DELIMS}]+")
_NUMERIC = re.compile(r"^[0-9]+$")
#: Rows of a released table tokenised at once by the scan (bounds its memory).
_SCAN_BLOCK_ROWS = 1_000_000
#: Column names that hold person identifiers.
PERSON_COLUMN = re.compile(
    r"(?i)^#?(fid|iid|pid|mid|eid|sample|samples|sample_?id|s_?id|subject|subject_?id|"
    r"participant|participant_?id|person|person_?id|individual|individual_?id|indiv)$"
)
SCAN_RULE = (
    "Every FID and IID of the --ids-from files (except PLINK's missing code 0) was searched "
    "as a whole token (delimited by tab, newline, space, comma, colon, semicolon, quotes, "
    "= | / \\ and brackets) in every released file name, the header and text columns "
    "(variant_id alleles, rsid, alleles) of each sumstats file, every key and string of the "
    "JSON/YAML files and every non-numeric token of the Markdown; numeric coordinates, "
    "counts and statistics computed by the gate are not compared. Tables with a person-ID "
    "column name, or with as many rows as samples and a non-allow-listed column, are refused."
)


def tokens(text: str) -> list[str]:
    """Whole tokens of ``text`` under the scan rule's delimiters."""
    return _TOKEN.findall(text)


@dataclass(frozen=True)
class SampleIds:
    """Forbidden identifier strings, each with where it was first seen (for messages)."""

    where: dict[str, str] = field(default_factory=dict)
    n_samples: int = 0
    sources: tuple[str, ...] = ()

    def __contains__(self, token: str) -> bool:
        return token in self.where


def read_sample_ids(paths: list[str | Path]) -> SampleIds:
    """Every FID and IID value in ``paths`` (``.fam``, ``.psam``, ``#FID IID`` tables, ID lists).

    Raises
    ------
    InputError
        A file is missing, empty, or has no FID/IID column.
    """
    where: dict[str, str] = {}
    samples: set[tuple[str, str]] = set()
    for p in paths:
        path = Path(p)
        if not path.is_file():
            raise InputError(f"{path}: no such file (--ids-from)")
        with open(path, encoding="utf-8", errors="replace") as fh:
            lines = fh.read().splitlines()
        first = next((i for i, ln in enumerate(lines) if ln.strip()), None)
        if first is None:
            raise InputError(f"{path}: empty file; --ids-from needs sample IDs")
        head = [h.lstrip("#").upper() for h in lines[first].split()]
        if path.suffix == ".fam":
            fid_col, iid_col, start = 0, 1, first
        elif "IID" in head:
            fid_col = head.index("FID") if "FID" in head else None
            iid_col, start = head.index("IID"), first + 1
        elif lines[first].startswith("#"):
            raise InputError(
                f"{path}, line {first + 1}: header has no IID column; expected '#FID IID ...' or '#IID ...'"
            )
        else:
            fid_col, iid_col, start = 0, 1, first
        for lineno in range(start, len(lines)):
            parts = lines[lineno].split()
            if not parts or parts[0].startswith("#"):
                continue
            if iid_col >= len(parts) or (fid_col is not None and fid_col >= len(parts)):
                raise InputError(
                    f"{path}, line {lineno + 1}: expected FID and IID fields; got {len(parts)} field(s)"
                )
            iid = parts[iid_col]
            fid = parts[fid_col] if fid_col is not None else ""
            samples.add((fid, iid))
            for label, value in (("IID", iid), ("FID", fid)):
                if value and value != "0" and value not in where:
                    where[value] = f"{label} at line {lineno + 1} of {path.name}"
    if not samples:
        raise InputError(f"{paths}: no sample IDs found in --ids-from files")
    return SampleIds(where=where, n_samples=len(samples), sources=tuple(Path(p).name for p in paths))


def redact(text: str, ids: SampleIds) -> str:
    """``text`` with every token (or ``.``-separated part of one) that is a sample ID replaced."""

    def one(m: re.Match) -> str:
        return ".".join("<sample-id>" if part in ids else part for part in m.group(0).split("."))

    return _TOKEN.sub(one, text)


def _hit(ids: SampleIds, toks: list[str]) -> str | None:
    for t in toks:
        if t in ids.where:
            return t
    return None


def _refuse(path: Path, where: str, ids: SampleIds, tok: str) -> GateError:
    # The ID itself is not echoed: the message says where it came from instead.
    return GateError(
        f"{path}, {where}: holds a sample identifier (the {ids.where[tok]}); "
        "export blocked, nothing released"
    )


def _scan_name(path: Path, ids: SampleIds) -> None:
    toks = tokens(path.name) + [t for part in tokens(path.name) for t in part.split(".")]
    tok = _hit(ids, toks)
    if tok is not None:
        raise _refuse(path, "file name", ids, tok)


def _line_of(text: str, tok: str) -> int:
    for i, line in enumerate(text.splitlines(), 1):
        if tok in tokens(line):
            return i
    return 0


def _strings(obj: object) -> list[str]:
    out: list[str] = []
    stack = [obj]
    while stack:
        o = stack.pop()
        if isinstance(o, str):
            out.append(o)
        elif isinstance(o, dict):
            stack.extend(str(k) for k in o)
            stack.extend(o.values())
        elif isinstance(o, list | tuple):
            stack.extend(o)
    return out


def _scan_document(path: Path, ids: SampleIds) -> None:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        toks = [t for s in _strings(json.loads(text)) for t in tokens(s)]
    elif path.suffix == ".yaml":
        toks = [t for s in _strings(yaml.safe_load(text)) for t in tokens(s)]
    else:
        toks = [t for t in tokens(text) if not _NUMERIC.match(t)]
    tok = _hit(ids, toks)
    if tok is not None:
        raise _refuse(path, f"line {_line_of(text, tok)}", ids, tok)


def _scan_table(path: Path, ids: SampleIds) -> None:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        header = fh.readline().rstrip("\n").split("\t")
    tok = _hit(ids, [t for h in header for t in tokens(h)])
    if tok is not None:
        raise _refuse(path, "line 1 (header)", ids, tok)
    person = [h for h in header if PERSON_COLUMN.match(h)]
    if person:
        raise GateError(f"{path}, line 1: column(s) {person} are named like person identifiers; export blocked")
    text_cols = [
        c for c in header
        if c not in ALL_COLUMNS or ALL_COLUMNS[c].dtype == pl.String
    ]
    # Only the text columns are compared, so only they are read (as text); the
    # numeric ones would be ~3x the gzip'd file as strings at 10^7 rows.
    df = pl.read_csv(
        path, separator="\t", infer_schema=False, null_values=["NA"], quote_char=None,
        columns=text_cols or header[:1],
    )
    if df.height == ids.n_samples and any(c not in COLUMNS for c in header):
        raise GateError(
            f"{path}: {df.height} rows, as many as the cohort's samples, and column(s) outside "
            f"the allow-list {[c for c in header if c not in COLUMNS]}: looks per-person; export blocked"
        )
    numeric_ids = [i for i in ids.where if _NUMERIC.match(i)]
    other_ids = [i for i in ids.where if not _NUMERIC.match(i)]
    for c in text_cols:
        # In row blocks: one token row per token of a block, not of the whole
        # column (4 x 10^7 rows for variant_id at 10^7 variants).
        for start in range(0, df.height, _SCAN_BLOCK_ROWS):
            toks = (
                df.slice(start, _SCAN_BLOCK_ROWS)
                .select(pl.col(c).fill_null("").str.extract_all(_TOKEN.pattern).alias("t"))
                .with_row_index("row", offset=start)
                .explode("t")
            )
            if c == "variant_id":
                # chrom:pos:ref:alt: the first two parts are typed coordinates, not text.
                toks = toks.with_columns(pl.int_range(pl.len()).over("row").alias("k"))
                hits = toks.filter(
                    pl.col("t").is_in(other_ids) | (pl.col("t").is_in(numeric_ids) & (pl.col("k") >= 2))
                )
            else:
                hits = toks.filter(pl.col("t").is_in(list(ids.where)))
            if hits.height:
                row, tok = hits.row(0)[:2]
                raise _refuse(path, f"line {row + 2}, column {c}", ids, tok)


def scan_released(directory: str | Path, ids: SampleIds) -> list[str]:
    """Names of the files scanned in ``directory``; raises on the first sample identifier.

    Raises
    ------
    GateError
        Naming the file and line (or ``file name``) where a sample ID, a
        person-ID column or a per-person table was found. The ID itself is
        not echoed; the message names the ``--ids-from`` file and line it
        comes from.
    """
    directory = Path(directory)
    files = sorted(p for p in directory.iterdir())
    for p in files:
        _scan_name(p, ids)
    for p in files:
        if p.name.endswith(".tsv.gz"):
            _scan_table(p, ids)
        elif p.suffix in (".json", ".yaml", ".md"):
            _scan_document(p, ids)
        else:
            raise GateError(f"{p}: file type not on the bundle allow-list (.tsv.gz .yaml .json .md)")
    return [p.name for p in files]
