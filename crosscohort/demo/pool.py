"""Inputs of the pooled arm: all cohorts' phenotypes and covariates in one table each.

The pooled arm (demo settings only, where pooling individual data is
allowed) analyses every cohort's individuals together with the same engine,
plus one indicator covariate per cohort after the first, so that a
meta-versus-pooled difference is a difference of method, not of data.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from crosscohort.contract.errors import InputError
from crosscohort.contract.ledger import write_ledgers
from crosscohort.runtime.atomic import write_text

__all__ = ["read_plink_table", "pool_tables", "join_tables", "cohort_specific", "write_plink_table",
           "fill_missing_calls"]


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


def join_tables(tables: list[pl.DataFrame], *, cohort: str) -> pl.DataFrame:
    """One cohort's tables (e.g. its covariate file and its PCs) joined on ``#FID IID``.

    A sample absent from one table gets ``NA`` in that table's columns (left
    out of any fit that uses them, as in the cohort's own analysis).

    Raises
    ------
    InputError
        A column other than ``#FID IID`` in two of the tables.
    """
    out = tables[0]
    for t in tables[1:]:
        clash = [c for c in t.columns if c in out.columns and c not in ("#FID", "IID")]
        if clash:
            raise InputError(f"cohort {cohort!r}: column(s) {clash} in two of its cohort-specific tables")
        out = out.join(t, on=["#FID", "IID"], how="full", coalesce=True)
    return out.with_columns(pl.exclude("#FID", "IID").fill_null("NA"))


def cohort_specific(pooled: pl.DataFrame, tables: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """``pooled`` plus each cohort's own covariates as cohort-specific columns (block-diagonal).

    Column ``x`` of cohort ``c``'s table becomes ``x_c``: its value for
    cohort ``c``'s samples, 0 for every other cohort's, so that each cohort
    keeps its own effect of, e.g., its own ancestry PCs: the model of the
    federated pooled fit (``crosscohort pool-fit``). A sample of cohort
    ``c`` absent from its table gets ``NA`` (left out, as in the cohort's
    own analysis).

    Raises
    ------
    InputError
        A resulting column name already in ``pooled``, or a sample in two cohorts' tables.
    """
    parts = []
    for c, t in tables.items():
        renamed = t.rename({col: f"{col}_{c}" for col in t.columns if col not in ("#FID", "IID")})
        clash = [col for col in renamed.columns if col in pooled.columns and col not in ("#FID", "IID")]
        if clash:
            raise InputError(f"cohort {c!r}: cohort-specific column(s) {clash} already in the pooled covariates")
        parts.append(renamed)
    specific = pl.concat(parts, how="diagonal").fill_null("0")
    dup = specific.group_by("#FID", "IID").len().filter(pl.col("len") > 1)
    if dup.height:
        raise InputError(f"sample {dup.row(0)[:2]} is in more than one cohort's cohort-specific table")
    new = [col for col in specific.columns if col not in ("#FID", "IID")]
    return pooled.join(specific, on=["#FID", "IID"], how="left").with_columns(pl.col(new).fill_null("NA"))


def write_plink_table(df: pl.DataFrame, path: str | Path) -> Path:
    """Write a plink2-layout table atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    df.write_csv(tmp, separator="\t")
    tmp.replace(path)
    return path


def pool_qc(qc_prefixes: dict[str, str | Path], *, bim: str | Path,
            variants: str = "union") -> tuple[pl.DataFrame, list[str], list]:
    """The pooled arm's QC: the union of the cohorts' own QC results.

    The pooled arm must analyse the same people and variants as the
    per-cohort arm, so it takes each cohort's kept samples and the union of
    the cohorts' kept variants (a variant enters the meta-analysis when it
    passes QC in at least one cohort). Re-running QC on the pooled
    multi-ancestry sample instead would remove thousands of variants by
    Hardy-Weinberg tests that fail only through the Wahlund effect, a
    difference of data preparation rather than of method.

    With ``variants="intersection"`` only the variants every cohort's QC
    kept: the individual-level reference of the federated pooled fit, which
    sums a variant in a cohort only where that cohort's QC kept it (a
    variant another cohort's QC removed would enter the stacked fit with
    genotypes the federated fit never saw).

    Returns
    -------
    (samples, variant_ids, ledgers)
        Kept samples (``fid``, ``iid``), kept variant IDs in ``.bim`` order,
        and the pooled samples and variants ledgers.
    """
    from crosscohort.contract.ledger import Ledger, read_ledgers
    from crosscohort.tre.genotypes import read_bim, read_id_list

    if variants not in ("union", "intersection"):
        raise InputError(f"pool --variants must be union or intersection; got {variants!r}")
    samples, kept_ids = [], set()
    in_every: set | None = None
    n_samples_in = 0
    for cohort, prefix in qc_prefixes.items():
        prefix = str(prefix)
        keep = read_plink_table(prefix + ".samples.keep").rename({"#FID": "fid", "IID": "iid"})
        samples.append(keep.select("fid", "iid"))
        ids_kept = set(read_id_list(prefix + ".variants.keep"))
        kept_ids.update(ids_kept)
        in_every = ids_kept if in_every is None else in_every & ids_kept
        ledgers = [lg for lg in read_ledgers([prefix + ".ledger.json"]) if lg.unit == "samples"]
        if len(ledgers) != 1:
            raise InputError(f"{prefix}.ledger.json: expected one samples ledger for cohort {cohort!r}, found {len(ledgers)}")
        n_samples_in += ledgers[0].n_in
    pooled = pl.concat(samples)
    ids = read_bim(bim).get_column("id").to_list()
    unknown = kept_ids.difference(ids)
    if unknown:
        raise InputError(f"{bim}: {len(unknown)} variant(s) kept by a cohort's QC are not in this .bim, e.g. {sorted(unknown)[0]!r}")
    union = [v for v in ids if v in kept_ids]
    kept = union if variants == "union" else [v for v in union if v in in_every]
    sample_ledger = Ledger(stage="qc", cohort="pooled", unit="samples", n_in=n_samples_in, n_kept=pooled.height)
    sample_ledger.remove("removed_by_cohort_qc", n_samples_in - pooled.height)
    variant_ledger = Ledger(stage="qc", cohort="pooled", unit="variants", n_in=len(ids), n_kept=len(kept))
    variant_ledger.remove("failed_qc_in_every_cohort", len(ids) - len(union))
    if variants == "intersection":
        variant_ledger.remove("failed_qc_in_a_cohort", len(union) - len(kept))
    return pooled, kept, [sample_ledger.check(), variant_ledger.check()]


def write_pooled_qc(samples: pl.DataFrame, variants: list[str], ledgers: list, out_prefix: str | Path) -> None:
    """Write the pooled QC files in the layout of ``crosscohort qc`` (``O.samples.keep`` ...)."""

    prefix = str(out_prefix)
    write_plink_table(samples.rename({"fid": "#FID", "iid": "IID"}), prefix + ".samples.keep")
    write_text(prefix + ".variants.keep", "".join(f"{v}\n" for v in variants))
    write_ledgers(ledgers, prefix + ".ledger.json")


#: 2-bit ``.bed`` code of each A1 dosage 0, 1, 2 (``crosscohort.tre._bed``: 00 = two A1, 10 = het, 11 = no A1).
_CODE_OF_DOSAGE = np.array([0b11, 0b10, 0b00], dtype=np.uint8)


def fill_missing_calls(bfile: str | Path, out_prefix: str | Path, *, keep: str | Path | None = None,
                       extract: str | Path | None = None, chunk_size: int = 4096) -> dict[str, int]:
    """Write a copy of a PLINK 1 fileset with every missing call filled as the federated sums fill it.

    The individual-level reference of the federated pooled fit: each
    missing call becomes its variant's hard call of the mean over the
    fileset's samples in ``keep`` (all when None) with a call
    (:func:`crosscohort.tre.sufficient.hard_call_fill`, the fill
    ``crosscohort sufficient`` uses with the same ``--keep``). The pooled
    association (``pool --specific`` + ``assoc``) of the filled filesets then
    has the federated fit's samples in every variant, so the two agree to
    rounding.

    Parameters
    ----------
    bfile
        Input fileset prefix (hard calls).
    out_prefix
        Output prefix: ``.bed`` written, ``.bim`` and ``.fam`` copied.
    keep
        The cohort's ``--keep`` list (its QC'd samples).
    extract
        Variant IDs to copy (one a line, as ``.variants.keep``; default
        all), in the input's order: the fill is per variant, so a subset
        is filled exactly as the whole. Cohorts filled with one list on one
        ``.bim`` stack.

    Returns
    -------
    dict
        ``variants``, ``filled_calls`` and ``variants_with_missing``.

    Raises
    ------
    InputError
        Output prefix equal to the input's (a file this did not write would be
        overwritten), or an ``extract`` ID not in the input's ``.bim``.
    """
    import shutil

    from crosscohort.tre.genotypes import Genotypes, read_id_list
    from crosscohort.tre.phenotypes import read_sample_list
    from crosscohort.tre.sufficient import fill_missing, hard_call_fill

    src, dst = Path(bfile), Path(out_prefix)
    if src.resolve() == dst.resolve():
        raise InputError(f"{dst}: the filled fileset must not replace its input {src}")
    geno = Genotypes([src])
    ref = geno.sample_index(read_sample_list(keep) if keep is not None else None)
    vidx = np.arange(geno.n_variants)
    if extract is not None:
        wanted = set(read_id_list(extract))
        ids = geno.variants.get_column("id").to_list()
        vidx = np.array([i for i, v in enumerate(ids) if v in wanted], dtype=np.int64)
        unknown = wanted.difference(ids)
        if unknown:
            raise InputError(f"{extract}: {len(unknown)} variant ID(s) not in {src}.bim, e.g. {sorted(unknown)[0]!r}")
    n, m = geno.n_samples, int(vidx.size)
    nb = (n + 3) // 4
    filled = with_missing = 0
    dst.parent.mkdir(parents=True, exist_ok=True)
    bed = dst.with_name(dst.name + ".bed")
    tmp = bed.with_name(f".{bed.name}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(bytes([0x6C, 0x1B, 0x01]))
        for vi, dos in geno.chunks(vidx, chunk_size):
            missing = np.isnan(dos)
            g = fill_missing(dos, hard_call_fill(dos[ref]))
            if not np.all(np.isin(g, (0.0, 1.0, 2.0))):
                raise InputError(f"{src}.bed: dosages that are not hard calls; only PLINK 1 hard calls can be filled")
            filled += int(missing.sum())
            with_missing += int(missing.any(axis=0).sum())
            codes = np.zeros((vi.size, nb * 4), dtype=np.uint8)
            codes[:, :n] = _CODE_OF_DOSAGE[g.T.astype(np.int64)]
            quads = codes.reshape(vi.size, nb, 4)
            packed = quads[:, :, 0] | (quads[:, :, 1] << 2) | (quads[:, :, 2] << 4) | (quads[:, :, 3] << 6)
            fh.write(np.ascontiguousarray(packed, dtype=np.uint8).tobytes())
    tmp.replace(bed)
    shutil.copyfile(src.with_name(src.name + ".fam"), dst.with_name(dst.name + ".fam"))
    bim = src.with_name(src.name + ".bim")
    if extract is None:
        shutil.copyfile(bim, dst.with_name(dst.name + ".bim"))
    else:
        lines = bim.read_text().splitlines(keepends=True)
        write_text(dst.with_name(dst.name + ".bim"), "".join(lines[i] for i in vidx))
    return {"variants": m, "filled_calls": filled, "variants_with_missing": with_missing}
