"""Phenotype, covariate and sample-list files in plink2's layout, as cohorts hand them over.

A table is a header line ``#FID IID name...`` (``FID IID ...``, ``#IID ...``
and ``IID ...`` are accepted too) followed by one line per sample, tab- or
space-separated (runs of spaces are one separator; a tab-separated file may
hold empty fields). ``NA``, ``nan``, ``-9`` (plink2's default missing code,
which plink2 applies to covariates as well), ``NONE`` (plink2's missing
category) and empty fields are missing.

A column is numeric when every non-missing value reads as a finite number,
else it is a *text* column (an ancestry label, an assessment centre, sex as
M/F). Text columns are read, not refused: a column nobody asks for is
ignored whatever it holds; a text covariate is categorical (dummy-coded by
the association engine as plink2 does); a trait or a covariate that must be
a number (:func:`require_numeric`) is an error naming file, line, column and
value.

Binary traits follow plink2: a column whose non-missing values are only 1 and
2 is case/control with 2 = case. A 0/1 coding is accepted only when the trait
is declared binary (1 = case). Unlike plink2, 0 is never a missing code: a
column holding 0, 1 and 2 is quantitative unless declared, and declaring it
binary is an error naming the values found.

Column lists follow plink2's ``--pheno-name``/``--covar-name``
(:func:`expand_names`): names separated by spaces or commas, and ranges
``PC1-PC10`` (the header's columns from PC1 to PC10, or PC1, PC2, ... PC10).

Quantitative traits may be replaced by their rank-based inverse-normal
transform (:func:`inverse_normal_transform`, ``crosscohort assoc
--pheno-transform int``), computed per trait over the samples that trait
analyses, as REGENIE's ``--apply-rint`` and plink2's
``--pheno-quantile-normalize`` do.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import polars as pl

from crosscohort.contract.errors import InputError
from crosscohort.contract.sumstats import float_column
from crosscohort.contract.table_io import read_text

__all__ = [
    "MISSING_CODES",
    "TraitType",
    "read_header",
    "read_table",
    "require_numeric",
    "expand_names",
    "read_study_tables",
    "check_study_columns",
    "read_sample_list",
    "detect_trait_type",
    "case_control_outcome",
    "PhenoTransform",
    "BLOM_OFFSET",
    "inverse_normal_transform",
]

#: Strings read as a missing value (plink2's defaults, its missing category NONE, the empty field).
MISSING_CODES: tuple[str, ...] = ("NA", "na", "nan", "NaN", "-nan", "-9", "NONE", "")

TraitType = Literal["quantitative", "binary"]
#: Phenotype transforms of ``crosscohort assoc --pheno-transform``.
PhenoTransform = Literal["int"]
#: Blom's offset c in (rank - c) / (n - 2c + 1) (Blom 1958; REGENIE, most GWAS pipelines).
BLOM_OFFSET = 3.0 / 8.0


def _split(line: str, tabbed: bool, width: int | None = None) -> list[str]:
    line = line.rstrip("\n").rstrip("\r")
    if not tabbed:
        return line.split()
    # A tab-separated file may hold empty fields (missing); whitespace files cannot. A line
    # of a tab-headed file that is space-separated (files edited by hand) splits on spaces.
    fields = [f.strip() for f in line.split("\t")]
    if width is not None and len(fields) != width and len(line.split()) == width:
        return line.split()
    return fields


def _id_columns(header: list[str], path: Path) -> int:
    """How many leading identifier columns the header declares (2 = FID IID, 1 = IID only)."""
    if len(header) >= 2 and (header[0].upper(), header[1].upper()) in {("#FID", "IID"), ("FID", "IID")}:
        return 2
    if header and header[0].upper() in {"#IID", "IID"}:
        return 1
    raise InputError(
        f"{path}, line 1: header must start with '#FID IID' (or 'FID IID', '#IID'); "
        f"got {' '.join(header[:3])!r}"
    )


def read_header(path: str | Path, *, kind: Literal["phenotype", "covariate"] = "phenotype") -> list[str]:
    """The data column names of a phenotype or covariate file (after ``FID IID`` or ``IID``).

    Raises
    ------
    InputError
        Missing file, empty file or a header that does not start with the sample identifiers.
    """
    path = Path(path)
    text = read_text(path, f"{kind} file")
    first = text[: text.find("\n") + 1] if "\n" in text else text
    if not first.strip():
        raise InputError(f"{path}: empty {kind} file; expected a '#FID IID name...' header line")
    header = _split(first, "\t" in first)
    return header[_id_columns(header, path):]


def read_table(path: str | Path, *, kind: Literal["phenotype", "covariate"] = "phenotype",
               numeric: Sequence[str] = (), columns: Sequence[str] | None = None) -> pl.DataFrame:
    """Read a plink2-style phenotype or covariate file: numeric columns as numbers, others as text.

    Parameters
    ----------
    path
        Tab- or space-separated file with a ``#FID IID ...`` header
        (``FID IID``, ``#IID`` and ``IID`` also accepted).
    kind
        ``"phenotype"`` or ``"covariate"``; only used in messages.
    numeric
        Columns that must be numeric (:func:`require_numeric`); others may be text.
    columns
        Data columns to keep (default all); the others are checked for their
        field count only, never converted, so a wide biobank file costs the
        memory of the columns used.

    Returns
    -------
    polars.DataFrame
        Columns ``fid`` (String; null when the file has no FID column),
        ``iid`` (String), then one column per data column in file order:
        Float64 when every non-missing value is a finite number, else
        String (a text column); missing values as null.

    Raises
    ------
    InputError
        Missing file, bad header, duplicated column or sample, a line with
        the wrong number of fields, or a ``numeric`` column holding a value
        that is not a number (naming file, line, column and value).
    """
    path = Path(path)
    text = read_text(path, f"{kind} file")
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise InputError(f"{path}: empty {kind} file; expected a '#FID IID name...' header line")
    tabbed = "\t" in lines[0]
    header = _split(lines[0], tabbed)
    n_id = _id_columns(header, path)
    names = header[n_id:]
    if not names:
        raise InputError(f"{path}, line 1: no {kind} columns after the sample identifiers")
    dup = sorted({h for h in names if names.count(h) > 1})
    if dup:
        raise InputError(f"{path}, line 1: duplicated column name(s) {dup}")
    width = len(header)
    wanted = set(names if columns is None else columns)
    keep = list(range(n_id)) + [n_id + j for j, name in enumerate(names) if name in wanted]
    kept_names = [name for name in names if name in wanted]
    rows: list[list[str]] = []
    for lineno, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = _split(line, tabbed, width)
        if len(fields) != width:
            raise InputError(
                f"{path}, line {lineno}: expected {width} fields as in the header, got {len(fields)}"
            )
        rows.append([fields[i] for i in keep])
    if not rows:
        raise InputError(f"{path}: header only, no sample lines")
    cols = list(zip(*rows, strict=True))
    del rows
    iid = pl.Series("iid", cols[n_id - 1], dtype=pl.String)
    fid = (
        pl.Series("fid", cols[0], dtype=pl.String)
        if n_id == 2
        else pl.Series("fid", [None] * len(cols[0]), dtype=pl.String)
    )
    data: list[pl.Series] = [fid, iid]
    for j, name in enumerate(kept_names):
        raw = pl.Series(name, cols[n_id + j], dtype=pl.String)
        missing = raw.is_in(list(MISSING_CODES))
        values = raw.cast(pl.Float64, strict=False)
        # A value counts as numeric only if it parses and is finite ('inf' is not a measurement).
        bad = ~missing & (values.is_null() | ~values.is_finite().fill_null(False))
        if bad.any():
            data.append(raw.set(missing, None))
            continue
        data.append(float_column(name, np.where(missing.to_numpy(), np.nan,
                                                values.fill_null(np.nan).to_numpy())))
    df = pl.DataFrame(data)
    key = ["fid", "iid"] if n_id == 2 else ["iid"]
    dups = df.group_by(key).len().filter(pl.col("len") > 1)
    if dups.height:
        first = dups.row(0, named=True)
        who = " ".join(f"{k.upper()}={first[k]}" for k in key)
        raise InputError(f"{path}: sample {who} appears {first['len']} times; one line per sample")
    for name in numeric:
        if name in df.columns:
            require_numeric(df, name, source=path, kind=kind)
    return df


def require_numeric(table: pl.DataFrame, column: str, *, source: str | Path, kind: str = "phenotype",
                    role: str = "") -> None:
    """Raise unless ``column`` of a :func:`read_table` table is numeric.

    Raises
    ------
    InputError
        Naming the file, the line of the first value that is not a number,
        the column and the value (the file is re-read to find the line).
    """
    if table.schema[column] != pl.String:
        return
    line, value = _first_text_value(Path(source), column)
    what = role or f"{kind} values"
    raise InputError(
        f"{source}, line {line}, column {column!r}: {what} must be numbers "
        f"(missing as {', '.join(c for c in MISSING_CODES if c) } or empty); got {value!r}"
    )


def _first_text_value(path: Path, column: str) -> tuple[int, str]:
    lines = read_text(path, "phenotype or covariate file").splitlines()
    tabbed = "\t" in lines[0]
    header = _split(lines[0], tabbed)
    j = header.index(column)
    for lineno, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        value = _split(line, tabbed, len(header))[j]
        if value in MISSING_CODES:
            continue
        try:
            ok = np.isfinite(float(value))
        except ValueError:
            ok = False
        if not ok:
            return lineno, value
    return 0, ""


_NUMBERED = re.compile(r"^(?P<stem>.*?)(?P<a>[0-9]+)-(?P=stem)(?P<b>[0-9]+)$")


@dataclass(frozen=True)
class StudyTables:
    """The phenotype and covariate tables an analysis reads, with the names resolved."""

    pheno: pl.DataFrame
    covar: list[pl.DataFrame]
    pheno_names: list[str] | None
    covar_names: list[str] | None


def read_study_tables(
    pheno: str | Path,
    covar: Sequence[str | Path] = (),
    *,
    pheno_names: Sequence[str] | None = None,
    covar_names: Sequence[str] | None = None,
) -> StudyTables:
    """The phenotype and covariate tables of one analysis, only the columns it uses.

    The one place where ``--pheno-name``/``--covar-name`` lists (plink2 syntax:
    spaces, commas, ranges) are resolved against the files' headers, for
    ``assoc``, ``wgr`` and ``sufficient`` alike. Names are resolved on the
    headers first, so that only the columns used are converted (a biobank's
    phenotype file may hold thousands, of any type).

    Parameters
    ----------
    pheno
        Phenotype file.
    covar
        Covariate files, joined on FID+IID downstream.
    pheno_names, covar_names
        The user's name lists (tokens), or None for every column. ``sex``
        without a ``sex`` column is the ``.fam``/``.psam`` sex (resolved by
        :func:`crosscohort.tre.association.build_designs`).

    Raises
    ------
    InputError
        A name not in the header(s), naming the files and their columns.
    """
    if pheno_names:
        pheno_names = expand_names(pheno_names, read_header(pheno, kind="phenotype"),
                                   option="--pheno-name", sources=str(pheno))
    pheno_table = read_table(pheno, kind="phenotype", columns=list(pheno_names) if pheno_names else None)
    if covar_names is not None:
        headers = list(dict.fromkeys(n for c in covar for n in read_header(c, kind="covariate")))
        if "sex" not in headers:
            headers.append("sex")  # from the .fam/.psam (build_designs)
        covar_names = expand_names(covar_names, headers, option="--covar-name",
                                   sources=", ".join(dict.fromkeys(map(str, covar))))
    covar_tables = [read_table(c, kind="covariate", columns=covar_names) for c in covar]
    return StudyTables(pheno_table, covar_tables,
                       list(pheno_names) if pheno_names else None,
                       list(covar_names) if covar_names is not None else None)


def expand_names(tokens: Sequence[str], available: Sequence[str], *, option: str,
                 sources: str = "") -> list[str]:
    """Column names of a plink2-style name list, resolved against the header(s).

    Parameters
    ----------
    tokens
        What the user wrote: names separated by spaces (separate tokens) or
        commas, and ranges ``A-B``.
    available
        The header's column names, in file order (several files: concatenated).
    option
        The option or key, for messages (``--covar-name``).
    sources
        The file(s) the names were looked up in, for messages.

    Returns
    -------
    list of str
        Names in the order given, each once. A range ``A-B`` is the columns
        from ``A`` to ``B`` in the header, as plink2 reads it; when ``A`` or
        ``B`` is not a column but both are a stem with a number (``PC1-PC10``),
        it is ``PC1, PC2, ..., PC10``. A name that is itself a column is
        never read as a range.

    Raises
    ------
    InputError
        Naming the names not found and the columns there are.
    """
    pos = {n: i for i, n in enumerate(available)}
    out: list[str] = []
    unknown: list[str] = []
    for tok in (t.strip() for token in tokens for t in token.split(",")):
        if not tok:
            continue
        if tok in pos:
            out.append(tok)
            continue
        names = _range(tok, pos, available)
        if names is None:
            unknown.append(tok)
            continue
        missing = [n for n in names if n not in pos]
        if missing:
            unknown.extend(missing)
        out.extend(names)
    if unknown:
        where = f" in {sources}" if sources else ""
        raise InputError(
            f"{option}: no column(s) {unknown}{where}; columns are {list(available)}"
        )
    return list(dict.fromkeys(out))


def _range(token: str, pos: dict[str, int], available: Sequence[str]) -> list[str] | None:
    """The names of range ``token`` (``A-B``), or None when it is not a range."""
    for i in range(1, len(token) - 1):
        if token[i] != "-":
            continue
        a, b = token[:i], token[i + 1:]
        if a in pos and b in pos and pos[a] <= pos[b]:
            return list(available[pos[a]:pos[b] + 1])
    m = _NUMBERED.match(token)
    if m and int(m["a"]) <= int(m["b"]):
        return [f"{m['stem']}{k}" for k in range(int(m["a"]), int(m["b"]) + 1)]
    return None


def check_study_columns(pheno: str | Path, covar: str | Path, *, traits: Mapping[str, TraitType],
                        covariates: Sequence[str], sex_from: str = "") -> None:
    """Check a cohort's phenotype and covariate files against the study before any job runs.

    Every trait must be a column of ``pheno`` holding numbers (binary: two
    values, 1/2 or 0/1, after missing codes); every covariate a column of
    ``covar`` with at least two distinct values (text columns are
    categorical), except ``sex``, which may come from the genotypes'
    ``.fam``/``.psam`` (``sex_from``).

    Raises
    ------
    InputError
        One line naming the file, the column (and line, for a value) and the rule.
    """
    columns = read_header(pheno, kind="phenotype")
    ccols = read_header(covar, kind="covariate")
    with_sex = ccols + (["sex"] if sex_from and "sex" not in ccols else [])
    names = expand_names(covariates, with_sex, option="covariates (config key 'covariates')",
                         sources=str(covar))
    ptab = read_table(pheno, kind="phenotype", columns=[t for t in traits if t in columns])
    ctab = read_table(covar, kind="covariate", columns=[n for n in names if n in ccols])
    for trait, ttype in traits.items():
        if trait not in ptab.columns:
            raise InputError(
                f"{pheno}, line 1: no column {trait!r} for the study's trait {trait!r} "
                f"(config key 'traits'); columns are {columns}"
            )
        require_numeric(ptab, trait, source=pheno, kind="phenotype", role=f"trait {trait!r} ({ttype}) values")
        values = ptab.get_column(trait).to_numpy()
        distinct = np.unique(values[~np.isnan(values)])
        if ttype == "binary":
            detect_trait_type(values, declared="binary", column=trait, source=str(pheno))
            if distinct.size != 2:
                raise InputError(
                    f"{pheno}, column {trait!r}: a binary trait needs two values (cases and controls) "
                    f"after missing codes; found {_value_list(distinct) or 'none'}"
                )
        elif distinct.size < 2:
            raise InputError(
                f"{pheno}, column {trait!r}: a quantitative trait needs at least two distinct values; "
                f"found {_value_list(distinct) or 'none'}"
            )
    for name in names:
        if name not in ccols:
            continue  # sex, from the .fam/.psam
        col = ctab.get_column(name)
        if col.drop_nulls().n_unique() < 2:
            raise InputError(
                f"{covar}, column {name!r}: a covariate needs at least two distinct values; "
                f"found {col.drop_nulls().unique().to_list()[:5] or 'none'}"
            )


def read_sample_list(path: str | Path) -> pl.DataFrame:
    """Read a ``--keep`` sample list: ``#FID IID`` lines (or IID only).

    Returns
    -------
    polars.DataFrame
        Columns ``fid`` (null when the list gives IIDs only) and ``iid``.
    """
    path = Path(path)
    text = read_text(path, "sample list (--keep, --remove)")
    fids: list[str | None] = []
    iids: list[str] = []
    n_fields: int | None = None
    for lineno, line in enumerate(text.splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        if parts[0].startswith("#") or (lineno == 1 and parts[0].upper() in {"FID", "IID"}):
            n_fields = 1 if parts[0].upper() in {"#IID", "IID"} else 2
            continue
        if n_fields is None:
            n_fields = min(len(parts), 2)
        if len(parts) < n_fields:
            raise InputError(f"{path}, line {lineno}: expected FID and IID, got {line.strip()!r}")
        if n_fields == 2:
            fids.append(parts[0])
            iids.append(parts[1])
        else:
            fids.append(None)
            iids.append(parts[0])
    if not iids:
        raise InputError(f"{path}: no sample listed (the --keep sample list)")
    return pl.DataFrame({"fid": fids, "iid": iids}, schema={"fid": pl.String, "iid": pl.String})


def _value_list(values: np.ndarray) -> str:
    shown = ", ".join(f"{v:g}" for v in values[:10])
    return shown + (f", ... ({values.size} distinct)" if values.size > 10 else "")


def detect_trait_type(values: np.ndarray, *, declared: TraitType | None = None, column: str = "",
                      source: str = "") -> TraitType:
    """The trait type of a phenotype column: plink2's detection, or the declared type checked.

    Parameters
    ----------
    values
        The column's values, float, NaN = missing.
    declared
        ``"quantitative"`` or ``"binary"`` to override detection (``--trait-type``).
    column, source
        Column name and file, for messages.

    Returns
    -------
    ``"binary"`` when declared so or when the non-missing values are only 1
    and 2 (plink2's case/control coding), else ``"quantitative"``.

    Raises
    ------
    InputError
        When declared binary but coded other than 1/2 or 0/1 (naming the values found).
    """
    v = np.asarray(values, dtype=np.float64)
    distinct = np.unique(v[~np.isnan(v)])
    if declared is None:
        return "binary" if distinct.size and set(distinct.tolist()) <= {1.0, 2.0} else "quantitative"
    if declared == "binary":
        found = set(distinct.tolist())
        if not (found <= {1.0, 2.0} or found <= {0.0, 1.0}):
            raise InputError(
                f"{source}, column {column!r}: a binary trait must be coded 1/2 (2 = case) or 0/1 "
                f"(1 = case), missing as NA or -9; found values {_value_list(distinct)}"
            )
        return "binary"
    if declared == "quantitative":
        return "quantitative"
    raise InputError(f"trait {column!r}: unknown trait type {declared!r}; expected quantitative or binary")


def case_control_outcome(values: np.ndarray, *, column: str = "", source: str = "") -> np.ndarray:
    """0/1 outcome (1 = case, NaN = missing) of a binary trait coded 1/2 or 0/1.

    A column holding only 1s is read as 1/2 coding (all controls), as plink2 does.
    """
    v = np.asarray(values, dtype=np.float64)
    detect_trait_type(v, declared="binary", column=column, source=source)
    distinct = set(np.unique(v[~np.isnan(v)]).tolist())
    if 2.0 in distinct or distinct <= {1.0}:
        return v - 1.0
    return v.copy()


def inverse_normal_transform(values: np.ndarray, *, offset: float = BLOM_OFFSET) -> np.ndarray:
    """Rank-based inverse-normal transform of a trait: ``Phi^-1((r - c) / (n - 2c + 1))``.

    Parameters
    ----------
    values
        (n,) trait values of the analysed samples; NaN (missing) stays NaN
        and does not count in ``n``.
    offset
        ``c``: 3/8 (Blom, the default), 1/2 (rankit, plink2's
        ``--pheno-quantile-normalize``), 0 (van der Waerden), 1/3 (Tukey).

    Returns
    -------
    numpy.ndarray
        float64, same shape; tied values share the average of their ranks
        and so one transformed value.

    Raises
    ------
    ValueError
        For an offset outside [0, 1/2] (the quantile would leave (0, 1)).

    Notes
    -----
    Apply it after sample selection (the per-trait complete cases): the
    transformed values depend on which samples are ranked together.

    References
    ----------
    Blom G (1958). Statistical estimates and transformed beta-variables.
    Beasley TM, Erickson S, Allison DB (2009). Rank-based inverse normal
    transformations are increasingly used, but are they merited? Behav Genet 39:580-595.
    """
    if not 0.0 <= offset <= 0.5:
        raise ValueError(f"offset must be in [0, 1/2]; got {offset}")
    v = np.asarray(values, dtype=np.float64)
    out = np.full(v.shape, np.nan)
    ok = ~np.isnan(v)
    n = int(ok.sum())
    if n:
        from scipy.special import ndtri  # lazy: start-up of commands that do not transform
        from scipy.stats import rankdata

        ranks = rankdata(v[ok], method="average")
        out[ok] = ndtri((ranks - offset) / (n - 2.0 * offset + 1.0))
    return out
