"""Sample identifiers: reading them from TRE files, and scanning released files for them.

The identifier rule (:data:`ID_RULE`, stated in every audit), in one sentence:
every FID, IID and SID (plink2's ``.psam``) of the ``--ids-from`` files
(except PLINK's missing code ``0``) that has 5 or more characters and is not purely numeric, or that
holds a character other than a letter or digit, is searched as a
case-insensitive substring of every released text value and file name;
every other ID (purely numeric, or letters and digits shorter than 5) is
searched as a whole token, a token being a maximal run of letters and
digits, compared case-insensitively. Both sides are compared in their
folded form (:func:`fold`: NFKC, case folding, Unicode format characters
such as zero-width spaces and soft hyphens removed), so ``ＮＡ１２８７８``,
``NA1<zero-width space>2878`` and ``straße7`` (for ``Strasse7``) are caught.

So ``rs<IID>``, ``<IID>.1``, ``<FID>_<IID>``, an ID in lower case, or an ID
that itself contains ``:`` are caught for IDs of 5 or more characters; ID
``12`` is caught in ``12_x`` or ``x.12`` but not in ``rs12`` or ``123``.

What is a "released text value" (and what is not compared):

* Tables (``.tsv.gz``): the header and every value of the text columns
  (``variant_id``, ``rsid``, alleles). Typed numeric columns (positions,
  counts, statistics) and the chromosome and position fields of
  ``variant_id`` (and of an ``rsid`` written ``chrom:pos:...``, PLINK's name
  for an unnamed variant) are numbers, not text: a purely numeric ID (``1`` .. ``N``,
  the common PLINK convention) cannot be told from a coordinate and is not
  compared there. Nor in a column outside the registry whose every value is
  a number (the sums of the sufficient statistics).
* JSON and YAML: every key and every string value, except the gate's own
  fixed text (rule descriptions, this rule, its software name, timestamps,
  hex digests it computed or was given), which the caller passes as
  ``own``. Numbers are the gate's own counts and thresholds; they obey the
  count rules instead.
* Markdown: every token that is not purely numeric, after the gate's own
  fixed text is taken out (the gate renders ``audit.md`` from
  ``audit.json`` and checks that it did, so its numbers are those of the
  JSON).

Per-person tables: a released table with a column named like a person
identifier (``fid``, ``iid``, ``sample``, ``eid``, ``participant``...) is
refused, and so is one with exactly as many rows as the cohort has samples,
whatever its columns (the gate only ever writes allow-listed columns, so
the row count is what can betray a table of people).
"""

from __future__ import annotations

import gzip
import json
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import yaml

from crosscohort.contract.errors import GateBlock, GateError, InputError
from crosscohort.contract.sumstats import ALL_COLUMNS

__all__ = [
    "GateBlock",
    "SampleIds",
    "read_sample_ids",
    "scan_released",
    "scan_texts",
    "tokens",
    "redact",
    "fold",
    "PERSON_COLUMN",
    "ID_RULE",
    "SCAN_RULE",
    "SUBSTRING_MIN_LENGTH",
]

#: IDs at least this long (and not purely numeric) are searched as substrings.
SUBSTRING_MIN_LENGTH = 5
#: A token: a maximal run of letters and digits (Unicode; ``_`` is a delimiter).
_TOKEN = re.compile(r"[^\W_]+")
_NUMERIC = re.compile(r"^[0-9]+$")
_ALNUM = re.compile(r"^[^\W_]+$")
#: A text cell shaped like a variant ID, ``chrom:pos:...`` (lower case).
_COORDINATES = r"^(chr)?([0-9]{1,2}|x|y|m|mt|xy):[0-9]+(:|$)"
#: Rows of a released table scanned at once (bounds the scan's memory).
_SCAN_BLOCK_ROWS = 1_000_000
#: Column names that hold person identifiers.
PERSON_COLUMN = re.compile(
    r"(?i)^#?(fid|iid|pid|mid|eid|sample|samples|sample_?id|s_?id|subject|subject_?id|"
    r"participant|participant_?id|person|person_?id|individual|individual_?id|indiv)$"
)
ID_RULE = (
    "Every FID, IID and SID of the sample files given to the gate (except PLINK's missing code 0) "
    "that has 5 or more characters and is not purely numeric, or that holds a character other "
    "than a letter or digit, was searched as a case-insensitive substring of every released text "
    "value and file name; every other ID (purely numeric, or letters and digits shorter than 5) "
    "was searched as a whole token, a token being a maximal run of letters and digits, compared "
    "case-insensitively. Texts and IDs are compared after Unicode NFKC normalisation and case "
    "folding, with invisible format characters (zero-width spaces, soft hyphens) removed, so "
    "fullwidth or invisibly split forms of an ID are found."
)
SCAN_RULE = (
    ID_RULE + " Released text values: every file name; the header and the text columns "
    "(variant_id, rsid, alleles) of each table; every key and string of the JSON and YAML files; "
    "every non-numeric token of the Markdown. Not compared: typed numbers (positions, counts, "
    "statistics, the chromosome and position fields of variant_id and of an rsid written "
    "chrom:pos:..., the numbers of a column outside the registry whose every value is a number, "
    "such as the sums of the sufficient statistics), the gate's own fixed text (registry column names, "
    "rule descriptions, software name, timestamps, hex digests). A table with a column named like "
    "a person identifier, or with as many rows as the cohort has samples, is refused."
)




def fold(text: str) -> str:
    """``text`` as the identifier scan compares it: NFKC, case-folded, format characters removed.

    So a fullwidth ``ＮＡ１２８７８``, an ID with an invisible zero-width
    space or soft hyphen inside (Unicode category Cf), and ``straße7`` for
    ``Strasse7`` compare equal to the ID. ASCII text is only lower-cased
    (the same result, without the Unicode passes).
    """
    if text.isascii():
        return text.lower()
    t = unicodedata.normalize("NFKC", text)
    t = "".join(ch for ch in t if unicodedata.category(ch) != "Cf")
    return unicodedata.normalize("NFKC", t.casefold())


def _fold_series(s: pl.Series) -> pl.Series:
    """:func:`fold` of every text of ``s`` (nulls as ""): lower-cased column-wise, the rare non-ASCII texts one by one."""
    s = s.fill_null("")
    low = s.str.to_lowercase()
    odd = (s.str.len_bytes() != s.str.len_chars()).arg_true()
    if odd.len():
        low = low.scatter(odd, [fold(t) for t in s.gather(odd).to_list()])
    return low


def tokens(text: str) -> list[str]:
    """Whole tokens of ``text``: maximal runs of letters and digits."""
    return _TOKEN.findall(text)


@dataclass(frozen=True)
class SampleIds:
    """Forbidden identifier strings, each with where it was first seen (for messages).

    ``where`` maps each ID to e.g. ``"IID at line 3 of --ids-from file 1"``
    (a neutral name: the message may be released in a blocked audit).
    """

    where: dict[str, str] = field(default_factory=dict)
    n_samples: int = 0
    sources: tuple[str, ...] = ()
    #: Every count of people the ID files give (each file's, and all files' together): a
    #: released table with one of these many rows is taken for a table of people.
    person_counts: frozenset[int] = frozenset()
    #: lower-cased ID -> ID, for IDs searched as substrings.
    substrings: dict[str, str] = field(default_factory=dict, init=False, repr=False)
    #: lower-cased ID -> ID, for IDs compared as whole tokens.
    whole: dict[str, str] = field(default_factory=dict, init=False, repr=False)
    #: The first ``gram`` characters of each substring ID -> those IDs (lower case).
    prefixes: dict[str, list[str]] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.person_counts and self.n_samples:
            object.__setattr__(self, "person_counts", frozenset({self.n_samples}))
        for i in self.where:
            low = fold(i)
            if (len(low) >= SUBSTRING_MIN_LENGTH and not _NUMERIC.match(low)) or not _ALNUM.match(low):
                self.substrings.setdefault(low, i)
            else:
                self.whole.setdefault(low, i)
        k = self.gram  # once: it is a minimum over all IDs
        for low in self.substrings:
            self.prefixes.setdefault(low[:k], []).append(low)

    @property
    def gram(self) -> int:
        """Length of the prefix by which substring IDs are first looked up (their shortest length)."""
        return min((len(i) for i in self.substrings), default=SUBSTRING_MIN_LENGTH)

    def __contains__(self, token: str) -> bool:
        return token in self.where

    def find(self, text: str, *, skip_numeric: bool = False) -> str | None:
        """The ID that ``text`` holds under the identifier rule, else None."""
        hit = scan_texts([text], self, skip_numeric=skip_numeric)
        return None if hit is None else hit[1]


def scan_texts(
    texts: Iterable[str], ids: SampleIds, *, skip_numeric: bool = False
) -> tuple[int, str] | None:
    """``(index, ID)`` of the first of ``texts`` holding a sample ID under the rule, else None.

    ``skip_numeric`` leaves purely numeric tokens uncompared (Markdown, whose
    numbers are the gate's own and also stand in the JSON it is rendered from).
    """
    s = _fold_series(pl.Series("t", list(texts), dtype=pl.String))
    if s.len() == 0:
        return None
    first = _first_substring(s, ids)
    if ids.whole:
        toks = (
            s.to_frame().with_row_index("row")
            .select("row", pl.col("t").str.extract_all(_TOKEN.pattern)).explode("t")
        )
        keep = pl.col("t").is_in(list(ids.whole))
        if skip_numeric:
            keep = keep & ~pl.col("t").str.contains(r"^[0-9]+$")
        hit = toks.filter(keep).head(1)
        if hit.height and (first is None or hit["row"][0] < first[0]):
            first = (int(hit["row"][0]), ids.whole[hit["t"][0]])
    return first


#: Offsets of a text compared column-wise; longer texts (long indel alleles) are walked in Python.
_MAX_VECTOR_OFFSETS = 48


def _first_substring(s: pl.Series, ids: SampleIds, *, offset: int = 0) -> tuple[int, str] | None:
    """``(index + offset, ID)`` of the first lower-cased text in ``s`` holding a substring ID.

    Every window of ``ids.gram`` characters is looked up among the IDs'
    prefixes (a hash look-up per window, column by column: one pass per
    window offset); the rare texts with a matching window are then compared
    with the IDs of that prefix. Linear in the IDs and the text, unlike an
    automaton built per call (polars' ``contains_any`` builds in about
    quadratic time: 15 s for 100,000 IDs).
    """
    if not ids.substrings or s.len() == 0:
        return None
    # Only texts holding the first character of some ID can hold an ID: one pass finds them
    # (sumstats text is digits, ':' and ACGT; IDs mostly start with a letter of their own).
    firsts = "".join(sorted({re.escape(g[0]) for g in ids.prefixes}))
    maybe = s.str.contains(f"[{firsts}]").fill_null(False)
    if not maybe.any():
        return None
    rows = maybe.arg_true()
    s = s.filter(maybe)
    k = ids.gram
    grams = pl.Series(list(ids.prefixes), dtype=pl.String)
    lengths = s.str.len_chars()
    longest = int(lengths.max() or 0)
    cand = pl.Series([False] * s.len())
    for o in range(0, min(longest - k + 1, _MAX_VECTOR_OFFSETS)):
        cand = cand | (s.str.slice(o, k).is_in(grams.implode()) & (lengths >= o + k)).fill_null(False)
    if longest - k + 1 > _MAX_VECTOR_OFFSETS:
        cand = cand | (lengths >= _MAX_VECTOR_OFFSETS + k).fill_null(False)
    for i in cand.arg_true().to_list():
        text = s[i]
        for o in range(len(text) - k + 1):
            for low in ids.prefixes.get(text[o : o + k], ()):
                if text.startswith(low, o):
                    return int(rows[i]) + offset, ids.substrings[low]
    return None


_VCF_SUFFIXES = (".vcf", ".vcf.gz", ".vcf.bgz")


def _vcf_sample_ids(path: Path, k: int, where: dict[str, str], samples: set[tuple[str, str]]) -> None:
    """The sample columns of a VCF's ``#CHROM`` header line (plain, gzip or BGZF), as IIDs.

    Only the header is read: the scan stops at the ``#CHROM`` line. A VCF
    without one is refused (it cannot say whose genotypes it holds).
    """
    opener = gzip.open if path.name.endswith((".gz", ".bgz")) else open
    try:
        with opener(path, "rt", encoding="utf-8", errors="surrogateescape") as fh:
            for lineno, line in enumerate(fh, 1):
                if line.startswith("#CHROM"):
                    fields = line.rstrip("\r\n").split("\t")
                    for iid in fields[9:]:
                        samples.add(("", iid))
                        if iid and iid not in where:
                            if not _TOKEN.search(iid):
                                raise InputError(
                                    f"{path}, line {lineno}: sample {iid!r} has no letter or digit; the "
                                    "identifier scan cannot search for it (rule: IDs hold at least one "
                                    "letter or digit)"
                                )
                            where[iid] = f"IID at line {lineno} of --ids-from file {k}"
                    return
                if not line.startswith("##"):
                    break
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise InputError(f"{path}: cannot read the VCF header ({exc})") from None
    raise InputError(f"{path}: no '#CHROM' header line; a VCF names its samples there")


def read_sample_ids(paths: list[str | Path]) -> SampleIds:
    """Every FID, IID and SID value in ``paths`` (``.fam``, ``.psam``, BGEN ``.sample``, VCF header, ``#FID IID`` tables, ID lists).

    An ID is recorded with a neutral origin (``"IID at line 3 of --ids-from
    file 1"``): the origin may be written into a blocked audit, and a TRE
    file's name may not leave it.

    Raises
    ------
    InputError
        A file is missing, empty, has no FID/IID column, or an ID without a
        letter or digit (it could not be searched for).
    """
    where: dict[str, str] = {}
    per_file: list[set[tuple[str, str]]] = []
    for k, p in enumerate(paths, 1):
        samples: set[tuple[str, str]] = set()
        per_file.append(samples)
        path = Path(p)
        if not path.is_file():
            raise InputError(f"{path}: no such file (--ids-from)")
        if path.name.endswith(_VCF_SUFFIXES):
            _vcf_sample_ids(path, k, where, samples)
            continue
        raw = path.read_bytes()
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            # Not UTF-8: Latin-1 maps every byte to the character such tools meant (replacement
            # characters would make an accented ID unfindable in the UTF-8 bundle).
            text = raw.decode("latin-1")
        lines = text.splitlines()
        first = next((i for i, ln in enumerate(lines) if ln.strip()), None)
        if first is None:
            raise InputError(f"{path}: empty file; --ids-from needs sample IDs")
        head = [h.lstrip("#").upper() for h in lines[first].split()]
        sid_col = None
        if path.suffix == ".fam":
            fid_col, iid_col, start = 0, 1, first
        elif "IID" in head:
            fid_col = head.index("FID") if "FID" in head else None
            sid_col = head.index("SID") if "SID" in head else None  # plink2 .psam: source/sequencing ID
            iid_col, start = head.index("IID"), first + 1
        elif head[:2] == ["ID_1", "ID_2"]:
            # Oxford .sample (BGEN): a header, then a line of column types (0 0 0 D ...).
            fid_col, iid_col = 0, 1
            types = lines[first + 1].split() if first + 1 < len(lines) else []
            start = first + (2 if types[:2] == ["0", "0"] else 1)
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
            if max(c for c in (fid_col, iid_col, sid_col) if c is not None) >= len(parts):
                raise InputError(
                    f"{path}, line {lineno + 1}: expected FID and IID fields"
                    f"{' and SID' if sid_col is not None else ''}; got {len(parts)} field(s)"
                )
            iid = parts[iid_col]
            fid = parts[fid_col] if fid_col is not None else ""
            sid = parts[sid_col] if sid_col is not None else ""
            samples.add((fid, iid))  # SID is a forbidden string, not part of the count (a .fam has none)
            for label, value in (("IID", iid), ("FID", fid), ("SID", sid)):
                if not value or value == "0" or value in where:
                    continue
                if not _TOKEN.search(value):
                    raise InputError(
                        f"{path}, line {lineno + 1}: {label} has no letter or digit; the identifier "
                        "scan cannot search for it (rule: IDs hold at least one letter or digit)"
                    )
                where[value] = f"{label} at line {lineno + 1} of --ids-from file {k}"
    every = set().union(*per_file)
    if not every:
        raise InputError(f"{paths}: no sample IDs found in --ids-from files")
    # A file without FIDs (#IID pheno, VCF) names the same people as a .fam with FIDs: across
    # files a person is then known by IID alone, so one person is not counted twice.
    if any(fid == "" for fid, _ in every):
        n = len({iid for _, iid in every})
    else:
        n = len(every)
    counts = frozenset({n, *(len(s) for s in per_file if s)})
    return SampleIds(where=where, n_samples=n, sources=tuple(Path(p).name for p in paths), person_counts=counts)


def redact(text: str, ids: SampleIds) -> str:
    """``text`` with every sample ID (under the identifier rule) replaced by ``<sample-id>``.

    Non-ASCII text is returned in its folded form (:func:`fold`), in which the ID was found.
    """
    if not text.isascii():
        text = fold(text)
    for _ in range(len(text) + 1):
        hit = scan_texts([text], ids)
        if hit is None:
            return text
        low, bad = text.lower(), fold(hit[1])
        if bad in ids.substrings:
            i = low.index(bad)
        else:
            i = next(m.start() for m in _TOKEN.finditer(low) if m.group(0) == bad)
        text = text[:i] + "<sample-id>" + text[i + len(bad):]
    return text


def _refuse(path: Path, where: str, ids: SampleIds, found: str) -> GateBlock:
    # Neither message echoes the ID; both say where it came from instead.
    what = f"holds a sample identifier (the {ids.where[found]}); export blocked, nothing released"
    return GateBlock(
        f"{path}, {where}: {what}",
        released=f"{redact(path.name, ids)}, {where}: {what} [rule: identifier scan]",
    )


def _scan_name(path: Path, ids: SampleIds) -> None:
    found = ids.find(path.name)
    if found is not None:
        raise _refuse(path, "file name", ids, found)


def _walk(obj: object, path: str = "") -> Iterable[tuple[str, str]]:
    """``(key path, string)`` for every key and string value of a parsed JSON/YAML document."""
    if isinstance(obj, str):
        yield path, obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield f"{path}.{k}" if path else str(k), str(k)
            yield from _walk(v, f"{path}.{k}" if path else str(k))
    elif isinstance(obj, list | tuple):
        for i, v in enumerate(obj):
            yield from _walk(v, f"{path}[{i}]")


def _line_of(text: str, needle: str) -> int:
    for i, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return i
    return 0


def _scan_document(path: Path, ids: SampleIds, own: frozenset[str]) -> None:
    text = path.read_text(encoding="utf-8")
    if path.suffix in (".json", ".yaml"):
        doc = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
        items = [(k, s) for k, s in _walk(doc) if s not in own]
        hit = scan_texts([s for _, s in items], ids)
        if hit is not None:
            key, s = items[hit[0]]
            needle = json.dumps(s) if path.suffix == ".json" else s
            raise _refuse(path, f"line {_line_of(text, needle)} (key {redact(key, ids)})", ids, hit[1])
        return
    # Markdown: the gate's own fixed text out first (longest first), then every line.
    lines = text.splitlines()
    cleaned = []
    for line in lines:
        for s in sorted(own, key=len, reverse=True):
            if s and s in line:
                line = line.replace(s, " ")
        cleaned.append(line)
    hit = scan_texts(cleaned, ids, skip_numeric=True)
    if hit is not None:
        raise _refuse(path, f"line {hit[0] + 1}", ids, hit[1])


def _per_person(path: Path, rows: int, ids: SampleIds) -> GateBlock:
    what = (
        f"{rows} rows, exactly as many as the cohort's samples: looks like a table of people "
        "(rule: per-person table); export blocked"
    )
    return GateBlock(f"{path}: {what}", released=f"{redact(path.name, ids)}: {what}")


def _scan_table(path: Path, ids: SampleIds) -> None:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        header = fh.readline().rstrip("\n").split("\t")
    # Registry column names are the gate's own text ("neg_log_10_p_value" is not sample 10).
    hit = scan_texts([h for h in header if h not in ALL_COLUMNS], ids)
    if hit is not None:
        raise _refuse(path, "line 1 (header)", ids, hit[1])
    person = [h for h in header if PERSON_COLUMN.match(h)]
    if person:
        what = f"column(s) {person} are named like person identifiers (rule: per-person table); export blocked"
        raise GateBlock(f"{path}, line 1: {what}", released=f"{redact(path.name, ids)}, line 1: {what}")
    text_cols = [c for c in header if c not in ALL_COLUMNS or ALL_COLUMNS[c].dtype == pl.String]
    # Only the text columns are compared, so only they are read (as text); the
    # numeric ones would be ~3x the gzip'd file as strings at 10^7 rows.
    df = pl.read_csv(
        path, separator="\t", infer_schema=False, null_values=["NA"], quote_char=None,
        columns=text_cols or header[:1],
    )
    if df.height in ids.person_counts:
        raise _per_person(path, df.height, ids)
    whole = list(ids.whole)
    for c in text_cols:
        # A column outside the registry whose every value is a number (the sums of the
        # sufficient statistics) holds numbers, not text: its numeric tokens are not compared.
        numbers = c not in ALL_COLUMNS and (
            df[c].str.strip_chars().cast(pl.Float64, strict=False).null_count() == df[c].null_count()
        )
        for start in range(0, df.height, _SCAN_BLOCK_ROWS):
            block = pl.DataFrame({"t": _fold_series(df[c].slice(start, _SCAN_BLOCK_ROWS))}).with_row_index(
                "row", offset=start
            )
            first = _first_substring(block["t"], ids, offset=start)
            if whole:
                toks = block.with_columns(
                    pl.col("t").str.contains(_COORDINATES).alias("coords"),
                    pl.col("t").str.extract_all(_TOKEN.pattern),
                ).explode("t")
                keep = pl.col("t").is_in(whole)
                if numbers:
                    keep = keep & ~pl.col("t").str.contains(r"^[0-9]+$")
                if c in ("variant_id", "rsid"):
                    # chrom:pos:ref:alt (also PLINK's rsid for unnamed variants): the first two
                    # fields are coordinates, numbers rather than text.
                    k = pl.int_range(pl.len()).over("row")
                    keep = keep & ((k >= 2) | ~pl.col("coords") | ~pl.col("t").str.contains(r"^[0-9]+$"))
                h = toks.filter(keep).head(1)
                if h.height and (first is None or h["row"][0] < first[0]):
                    first = (h["row"][0], ids.whole[h["t"][0]])
            if first is not None:
                raise _refuse(path, f"line {first[0] + 2}, column {c}", ids, first[1])


def scan_released(
    directory: str | Path, ids: SampleIds, *, own: Iterable[str] = ()
) -> list[str]:
    """Names of the files scanned in ``directory``; raises on the first sample identifier.

    Parameters
    ----------
    directory
        The bundle (or its staging directory).
    ids
        The cohort's sample IDs.
    own
        The gate's own fixed strings (rule descriptions, software name,
        timestamps, digests): not compared in JSON, YAML and Markdown.

    Raises
    ------
    GateBlock
        Naming the file and line (or ``file name``) where a sample ID, a
        person-ID column or a per-person table was found. The ID itself is
        not echoed; the message names the ``--ids-from`` file (by position)
        and line it comes from.
    GateError
        A file type outside the bundle allow-list.
    """
    directory = Path(directory)
    own = frozenset(own)
    files = sorted(p for p in directory.iterdir())
    for p in files:
        _scan_name(p, ids)
    for p in files:
        if p.name.endswith(".tsv.gz"):
            _scan_table(p, ids)
        elif p.suffix in (".json", ".yaml", ".md"):
            _scan_document(p, ids, own)
        else:
            raise GateError(f"{p}: file type not on the bundle allow-list (.tsv.gz .yaml .json .md)")
    return [p.name for p in files]
