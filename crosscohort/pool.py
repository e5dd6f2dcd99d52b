"""Inputs of the pooled arm: all cohorts' phenotypes and covariates in one table each.

The pooled arm (demo settings only, where pooling individual data is
allowed) analyses every cohort's individuals together with the same engine,
plus one indicator covariate per cohort after the first, so that a
meta-versus-pooled difference is a difference of method, not of data.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from crosscohort.errors import InputError

__all__ = ["read_plink_table", "pool_tables", "write_plink_table"]


def read_plink_table(path: str | Path) -> pl.DataFrame:
    """Read a plink2-layout table (``#FID IID ...``, tab-separated) with every column as text."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    df = pl.read_csv(path, separator="\t", infer_schema=False)
    first = df.columns[0]
    if first not in ("#FID", "FID") or len(df.columns) < 2 or df.columns[1] != "IID":
        raise InputError(f"{path}, line 1: expected a header starting '#FID<TAB>IID', got {df.columns[:2]}")
    return df.rename({first: "#FID"})


def pool_tables(tables: dict[str, pl.DataFrame], *, indicators: bool) -> pl.DataFrame:
    """Stack per-cohort tables (same columns) and optionally add cohort indicators.

    Indicators are ``cohort_<id>`` = 1 for that cohort's rows, 0 otherwise, for
    every cohort but the first (the reference level).
    """
    cohorts = list(tables)
    cols = tables[cohorts[0]].columns
    for c in cohorts[1:]:
        if tables[c].columns != cols:
            raise InputError(
                f"cohort {c!r}: columns {tables[c].columns} differ from cohort {cohorts[0]!r}'s {cols}; "
                "the pooled arm needs the same columns in every cohort"
            )
    parts = []
    for c in cohorts:
        t = tables[c]
        if indicators:
            t = t.with_columns([pl.lit("1" if c == d else "0").alias(f"cohort_{d}") for d in cohorts[1:]])
        parts.append(t)
    return pl.concat(parts)


def write_plink_table(df: pl.DataFrame, path: str | Path) -> Path:
    """Write a plink2-layout table atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    df.write_csv(tmp, separator="\t")
    tmp.replace(path)
    return path
