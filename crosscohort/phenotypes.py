"""Phenotype, covariate and sample-list files in plink2's layout.

A table is a header line ``#FID IID name...`` (``FID IID ...``, ``#IID ...``
and ``IID ...`` are accepted too) followed by one line per sample, tab- or
whitespace-separated. Values are numbers; ``NA``, ``nan`` and ``-9`` (plink2's
default missing code, which plink2 applies to covariates as well) and empty
fields are missing.

Binary traits follow plink2: a column whose non-missing values are only 1 and
2 is case/control with 2 = case. A 0/1 coding is accepted only when the trait
is declared binary (1 = case). Unlike plink2, 0 is never a missing code: a
column holding 0, 1 and 2 is quantitative unless declared, and declaring it
binary is an error naming the values found.

Quantitative traits may be replaced by their rank-based inverse-normal
transform (:func:`inverse_normal_transform`, ``crosscohort assoc
--pheno-transform int``), computed per trait over the samples that trait
analyses, as REGENIE's ``--apply-rint`` and plink2's
``--pheno-quantile-normalize`` do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import polars as pl
from scipy.special import ndtri
from scipy.stats import rankdata

from crosscohort.errors import InputError
from crosscohort.sumstats import float_column

__all__ = [
    "MISSING_CODES",
    "TraitType",
    "read_table",
    "read_sample_list",
    "detect_trait_type",
    "case_control_outcome",
    "PhenoTransform",
    "BLOM_OFFSET",
    "inverse_normal_transform",
]

#: Strings read as a missing value (plink2's defaults plus the empty field).
MISSING_CODES: tuple[str, ...] = ("NA", "na", "nan", "NaN", "-nan", "-9", "")

TraitType = Literal["quantitative", "binary"]
#: Phenotype transforms of ``crosscohort assoc --pheno-transform``.
PhenoTransform = Literal["int"]
#: Blom's offset c in (rank - c) / (n - 2c + 1) (Blom 1958; REGENIE, most GWAS pipelines).
BLOM_OFFSET = 3.0 / 8.0

def _split(line: str, tabbed: bool) -> list[str]:
    line = line.rstrip("\n").rstrip("\r")
    # A tab-separated file may hold empty fields (missing); whitespace files cannot.
    return [f.strip() for f in line.split("\t")] if tabbed else line.split()


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


def read_table(path: str | Path, *, kind: Literal["phenotype", "covariate"] = "phenotype") -> pl.DataFrame:
    """Read a plink2-style phenotype or covariate file into a numeric table.

    Parameters
    ----------
    path
        Tab- or whitespace-separated file with a ``#FID IID ...`` header
        (``FID IID``, ``#IID`` and ``IID`` also accepted).
    kind
        ``"phenotype"`` or ``"covariate"``; only used in messages.

    Returns
    -------
    polars.DataFrame
        Columns ``fid`` (String; null when the file has no FID column),
        ``iid`` (String), then one Float64 column per data column, in file
        order, missing values as null.

    Raises
    ------
    InputError
        Missing file, bad header, duplicated column or sample, a line with
        the wrong number of fields, or a value that is not a number (naming
        file, line, column and value).
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file (the {kind} file)")
    text = path.read_text()
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
    rows: list[list[str]] = []
    linenos: list[int] = []
    for lineno, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = _split(line, tabbed)
        if len(fields) != width:
            raise InputError(
                f"{path}, line {lineno}: expected {width} fields as in the header, got {len(fields)}"
            )
        rows.append(fields)
        linenos.append(lineno)
    if not rows:
        raise InputError(f"{path}: header only, no sample lines")
    cols = list(zip(*rows, strict=True))
    iid = pl.Series("iid", cols[n_id - 1], dtype=pl.String)
    fid = (
        pl.Series("fid", cols[0], dtype=pl.String)
        if n_id == 2
        else pl.Series("fid", [None] * len(rows), dtype=pl.String)
    )
    data: list[pl.Series] = [fid, iid]
    line_arr = np.asarray(linenos)
    for j, name in enumerate(names):
        raw = pl.Series(name, cols[n_id + j], dtype=pl.String)
        missing = raw.is_in(list(MISSING_CODES))
        values = raw.cast(pl.Float64, strict=False)
        # A value counts as numeric only if it parses and is finite ('inf' is not a measurement).
        bad = ~missing & (values.is_null() | ~values.is_finite().fill_null(False))
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise InputError(
                f"{path}, line {line_arr[i]}, column {name!r}: {kind} values must be numbers "
                f"(missing as NA, nan, -9 or empty); got {raw[i]!r}"
            )
        data.append(float_column(name, np.where(missing.to_numpy(), np.nan,
                                                values.fill_null(np.nan).to_numpy())))
    df = pl.DataFrame(data)
    key = ["fid", "iid"] if n_id == 2 else ["iid"]
    dups = df.group_by(key).len().filter(pl.col("len") > 1)
    if dups.height:
        first = dups.row(0, named=True)
        who = " ".join(f"{k.upper()}={first[k]}" for k in key)
        raise InputError(f"{path}: sample {who} appears {first['len']} times; one line per sample")
    return df


def read_sample_list(path: str | Path) -> pl.DataFrame:
    """Read a ``--keep`` sample list: ``#FID IID`` lines (or IID only).

    Returns
    -------
    polars.DataFrame
        Columns ``fid`` (null when the list gives IIDs only) and ``iid``.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file (the --keep sample list)")
    fids: list[str | None] = []
    iids: list[str] = []
    n_fields: int | None = None
    for lineno, line in enumerate(path.read_text().splitlines(), start=1):
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
        ranks = rankdata(v[ok], method="average")
        out[ok] = ndtri((ranks - offset) / (n - 2.0 * offset + 1.0))
    return out
