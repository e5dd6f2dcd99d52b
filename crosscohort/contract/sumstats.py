"""The one registry of summary-statistics column names, types and checks.

Every file that leaves a stage uses the GWAS Catalog GWAS-SSF column names
declared here; no other module spells them. Readers and writers in the rest
of the package go through :func:`read_sumstats` and :func:`write_sumstats`.

References
----------
GWAS Catalog summary statistics standard (GWAS-SSF), Hayhurst et al. 2023,
https://github.com/EBISPOT/gwas-summary-statistics-standard
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

# The block reader and the gzip writer's stream live in table_io; their names are also
# this module's, where the readers of the package have always found them.
from crosscohort.contract.table_io import (
    Blocks,
    SumstatsError,
    check_header,
    header_line,
    header_names,
    line_blocks,
    open_binary,
    open_gzip_writer,
    ordered_map,
    parse_block,
)

__all__ = [
    "Column",
    "COLUMNS",
    "REQUIRED",
    "META_COLUMNS",
    "INTERNAL_COLUMNS",
    "FLAG_COLUMNS",
    "CHROM_CODES",
    "SumstatsError",
    "chrom_code",
    "genotype_chrom_code",
    "chrom_label",
    "marker_only",
    "float_column",
    "variant_id",
    "header_line",
    "header_names",
    "read_sumstats",
    "schema_for",
    "write_sumstats",
    "open_gzip_writer",
    "open_binary",
    "line_blocks",
]


@dataclass(frozen=True)
class Column:
    """One declared column: its name, polars dtype and meaning."""

    name: str
    dtype: type[pl.DataType] | pl.DataType
    meaning: str


def _declare(*cols: Column) -> dict[str, Column]:
    return {c.name: c for c in cols}


def _section(first: str, last: str) -> dict[str, Column]:
    """The registry's columns from ``first`` to ``last``, in declaration order."""
    names = list(ALL_COLUMNS)
    return {n: ALL_COLUMNS[n] for n in names[names.index(first):names.index(last) + 1]}


#: Every column a stage writes, declared once, in four sections (below).
ALL_COLUMNS: dict[str, Column] = _declare(
    # GWAS-SSF columns (mandatory first, then optional ones we produce).
    Column("chromosome", pl.Int64, "1-22, X=23, Y=24, MT=25"),
    Column("base_pair_location", pl.Int64, "1-based position on the declared build"),
    Column("effect_allele", pl.String, "the counted (ALT) allele; beta is per copy of it"),
    Column("other_allele", pl.String, "the non-effect (REF) allele"),
    Column("beta", pl.Float64, "per-allele effect; log-odds for binary traits"),
    Column("standard_error", pl.Float64, "standard error of beta"),
    Column("effect_allele_frequency", pl.Float64, "frequency of the effect allele in the analysed samples"),
    Column("p_value", pl.Float64, "two-sided p-value (may underflow to 0; see neg_log_10_p_value)"),
    Column("neg_log_10_p_value", pl.Float64, "-log10 p, computed in log space; authoritative when p underflows"),
    Column("variant_id", pl.String, "chrom:pos:ref:alt (other_allele:effect_allele)"),
    Column("rsid", pl.String, "the input's variant identifier (rsID where known)"),
    Column("n", pl.Int64, "samples in the fit of this variant"),
    Column("n_cases", pl.Int64, "cases in the fit (binary traits)"),
    Column("n_controls", pl.Int64, "controls in the fit (binary traits)"),
    Column("info", pl.Float64, "imputation quality"),
    # Columns added by the meta-analysis (DESIGN.md "Meta-analysis output").
    Column("n_studies", pl.Int64, "cohorts contributing to the variant"),
    Column("direction", pl.String, "one of + - ? per cohort, in cohort order"),
    Column("het_q", pl.Float64, "Cochran's Q"),
    Column("het_df", pl.Int64, "degrees of freedom of Q (n_studies - 1)"),
    Column("het_p", pl.Float64, "p-value of Q against chi2(het_df)"),
    Column("het_i2", pl.Float64, "Higgins' I^2, in [0, 1]"),
    Column("tau2", pl.Float64, "DerSimonian-Laird between-study variance"),
    Column("beta_random", pl.Float64, "random-effects (DerSimonian-Laird) beta"),
    Column("standard_error_random", pl.Float64, "random-effects standard error"),
    Column("p_value_random", pl.Float64, "random-effects p-value"),
    Column("neg_log_10_p_value_random", pl.Float64, "random-effects -log10 p"),
    Column("eaf_min", pl.Float64, "smallest cohort effect allele frequency"),
    Column("eaf_max", pl.Float64, "largest cohort effect allele frequency"),
    Column("n_effective", pl.Float64, "sum of 4/(1/n_cases + 1/n_controls) for binary traits, else n"),
    Column("z_samplesize", pl.Float64, "sample-size weighted Z (METAL SCHEME SAMPLESIZE); its p is p_value"),
    # MR-MEGA meta-regression (meta --method mrmega; crosscohort/central/meta/mrmega.py): its
    # association test's p is p_value; beta/standard_error stay the fixed-effect IVW's.
    *(col for j in range(11) for col in (
        Column(f"mrmega_beta_{j}", pl.Float64,
               "MR-MEGA intercept (effect at the axes' origin)" if j == 0
               else f"MR-MEGA slope of the effect on axis {j} of genetic variation"),
        Column(f"mrmega_standard_error_{j}", pl.Float64, f"standard error of mrmega_beta_{j}"),
    )),
    Column("mrmega_chi2_association", pl.Float64,
           "MR-MEGA association chi-square (T+1 df); its p is p_value"),
    Column("mrmega_chi2_ancestry_het", pl.Float64,
           "MR-MEGA heterogeneity correlated with ancestry, chi-square (T df)"),
    Column("mrmega_neg_log_10_p_ancestry_het", pl.Float64,
           "-log10 p of mrmega_chi2_ancestry_het, in log space"),
    Column("mrmega_chi2_residual_het", pl.Float64,
           "MR-MEGA residual heterogeneity chi-square (mrmega_df_residual_het df)"),
    Column("mrmega_df_residual_het", pl.Int64, "n_studies - T - 1"),
    Column("mrmega_neg_log_10_p_residual_het", pl.Float64,
           "-log10 p of mrmega_chi2_residual_het, in log space"),
    Column("mrmega_ln_bf", pl.Float64, "MR-MEGA log Bayes factor: (chi2_association - (T+1) ln n_studies) / 2"),
    # Quality flags that harmonisation adds to a cohort's aligned table (flagged
    # rows are kept and counted in the ledger, never dropped silently).
    Column(
        "flag_p_inconsistent",
        pl.Boolean,
        "the z implied by the file's p differs from |beta/SE| by > 5 % (floor 1); row kept",
    ),
    Column(
        "flag_eaf_far",
        pl.Boolean,
        "aligned EAF > 0.2 from the reference panel's (harmonise) or, in the meta table, a "
        "cohort's EAF > 0.2 from the other cohorts' n-weighted EAF; row kept",
    ),
    # Columns the association engine writes for the export gate's rules only.
    # They never leave a TRE: the gate uses and then strips them.
    Column("mac", pl.Float64, "minor allele count in the fit"),
    Column("mac_cases", pl.Float64, "minor allele count among cases"),
    Column("mac_controls", pl.Float64, "minor allele count among controls"),
    Column("residual_df", pl.Int64, "residual degrees of freedom of the fit"),
    Column("error_code", pl.String, "why a fit produced no estimate (empty when it did)"),
    Column("firth", pl.Boolean, "the estimate is Firth-penalised (the logistic fit failed)"),
)

#: GWAS-SSF columns (mandatory first, then optional ones we produce).
COLUMNS: dict[str, Column] = _section("chromosome", "info")
#: Columns added by the meta-analysis (DESIGN.md "Meta-analysis output").
META_COLUMNS: dict[str, Column] = _section("n_studies", "mrmega_ln_bf")
#: Columns the association engine writes for the export gate's rules only.
INTERNAL_COLUMNS: dict[str, Column] = _section("mac", "firth")
#: Quality flags that harmonisation adds to a cohort's aligned table.
FLAG_COLUMNS: dict[str, Column] = _section("flag_p_inconsistent", "flag_eaf_far")

#: Columns without which a file is not summary statistics.
REQUIRED: tuple[str, ...] = (
    "chromosome",
    "base_pair_location",
    "effect_allele",
    "other_allele",
    "beta",
    "standard_error",
    "effect_allele_frequency",
    "p_value",
)

CHROM_CODES: dict[str, int] = {
    **{str(i): i for i in range(1, 23)},
    "X": 23,
    "Y": 24,
    "XY": 23,  # PLINK's pseudo-autosomal code is reported on X
    "MT": 25,
    "M": 25,
}


def chrom_code(label: str | int) -> int:
    """Numeric chromosome code of a label (``chr1``, ``1``, ``X``, ``23``, ``MT``...)."""
    s = str(label).strip().upper()
    if s.startswith("CHR"):
        s = s[3:]
    if s in CHROM_CODES:
        return CHROM_CODES[s]
    if s.isdigit() and 1 <= int(s) <= 26:
        return 25 if int(s) == 26 else int(s)
    raise SumstatsError(f"unknown chromosome label {label!r}; expected 1-22, X, Y, MT or 23-25")


def genotype_chrom_code(label: str | int) -> int:
    """Numeric chromosome code of a genotype file's label (``.bim``, ``.pvar``, BGEN), in PLINK's numbering.

    PLINK numbers the pseudo-autosomal region ``25`` (``XY``) and the
    mitochondrion ``26``: a ``.bim`` written by PLINK 1.9 (UK Biobank's
    genotype calls among them) holds ``25`` for XY, which :func:`chrom_code`,
    reading summary statistics' codes (GWAS-SSF: 25 = MT), would take for MT.
    Here ``25`` is XY, reported on X as ``XY`` is; everything else as :func:`chrom_code`.
    """
    s = str(label).strip().upper()
    if s.removeprefix("CHR") == "25":
        return CHROM_CODES["XY"]
    return chrom_code(label)


def chrom_label(code: int) -> str:
    """Display label of a numeric chromosome code (23 -> ``X``)."""
    return {23: "X", 24: "Y", 25: "MT"}.get(int(code), str(int(code)))


def marker_only() -> pl.Expr:
    """Rows keyed by marker name only, as METAL and GWAMA files key variants: no chromosome,
    no position, an ``rsid``. Harmonisation keeps them apart from the position rules and the
    meta-analysis matches them on ``rsid`` and alleles; needs all three columns."""
    return (pl.col("chromosome").is_null() & pl.col("base_pair_location").is_null()
            & pl.col("rsid").is_not_null())


def variant_id(chrom: pl.Expr, pos: pl.Expr, ref: pl.Expr, alt: pl.Expr) -> pl.Expr:
    """Polars expression building ``chrom:pos:ref:alt``."""
    return pl.concat_str(
        [chrom.cast(pl.String), pos.cast(pl.String), ref, alt], separator=":"
    ).alias("variant_id")


def schema_for(names: Sequence[str]) -> dict[str, pl.DataType]:
    """Each column's declared type (:data:`ALL_COLUMNS`); text for a column the registry does not declare."""
    out: dict[str, pl.DataType] = {}
    for n in names:
        col = ALL_COLUMNS.get(n)
        out[n] = col.dtype if col is not None else pl.String
    return out


def read_sumstats(
    path: str | Path,
    *,
    required: tuple[str, ...] = REQUIRED,
    chromosome_labels: bool = False,
    columns: tuple[str, ...] | None = None,
) -> pl.DataFrame:
    """Read a GWAS-SSF tab-separated file (``.tsv``, ``.tsv.gz`` or ``.parquet``).

    Columns are cast to their declared types; ``NA``, ``NaN`` and empty
    fields are missing, never zero. With ``chromosome_labels=True`` the
    ``chromosome`` column is read as text (``chr1``, ``X``...) for the caller
    to normalise (harmonisation does, through :func:`chrom_code`). With
    ``columns``, only those of them present in the file are parsed and kept
    (a reader of 10M-row tables that needs a few columns never holds the
    rest); ``required`` is still checked against the whole header.

    Text is read in blocks (:class:`crosscohort.contract.table_io.Blocks`) parsed
    by worker threads: memory holds a few blocks of text and the parsed columns.

    Raises
    ------
    SumstatsError
        When the file cannot be read, names a column twice, lacks a required
        column, or a value cannot be parsed as its column's type (naming the
        line, the column and the value).
    """
    path = Path(path)
    if not path.exists():
        raise SumstatsError(f"{path}: no such file")
    if path.suffix == ".parquet":
        header = pl.read_parquet_schema(path).names()
        check_header(path, header, required=required)
        wanted = header if columns is None else [c for c in header if c in columns]
        return pl.read_parquet(path, columns=wanted)
    header = header_names(header_line(path))
    check_header(path, header, required=required)
    schema = schema_for(header)
    if chromosome_labels and "chromosome" in schema:
        schema["chromosome"] = pl.String
    wanted = header if columns is None else [c for c in header if c in columns]
    frames = list(ordered_map(lambda b: parse_block(b, path=path, schema=schema, columns=wanted),
                              Blocks(path)))
    if not frames:
        return pl.DataFrame(schema={c: schema[c] for c in wanted})
    return pl.concat(frames, rechunk=False) if len(frames) > 1 else frames[0]


def order_columns(df: pl.DataFrame) -> pl.DataFrame:
    """Put declared columns first, in registry order, then any others."""
    known = [c for c in ALL_COLUMNS if c in df.columns]
    rest = [c for c in df.columns if c not in ALL_COLUMNS]
    return df.select(known + rest)


def write_sumstats(df: pl.DataFrame, path: str | Path) -> Path:
    """Write ``df`` atomically as ``.tsv``, ``.tsv.gz`` or ``.parquet`` (by extension).

    Floats are written with 17 significant digits (exact round trip) and
    missing values as ``NA``. The file appears under its name only once
    complete (write to a temporary name, then rename).

    Notes
    -----
    ``.tsv.gz`` is streamed: polars writes the text in batches straight into
    an ISA-L gzip stream (``isal.igzip``, level 2), so no whole-table string
    exists. On 2,000,000 rows x 9 columns that takes 1.4-2.0 s and no memory
    beyond the table, where zlib level 6 on one whole-table string took 25 s
    and 570 MB more; the file is ~5 % larger. ``mtime=0`` and no file name in
    the header: identical content gives identical bytes (stable checksums).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    df = order_columns(df)
    if path.suffix == ".parquet":
        df.write_parquet(tmp)
    elif path.suffix != ".gz":
        df.write_csv(tmp, separator="\t", null_value="NA", float_precision=None)
    else:
        with open_gzip_writer(tmp) as fh:
            df.write_csv(fh, separator="\t", null_value="NA", float_precision=None)
    tmp.replace(path)
    return path


def chromosome_parts(
    streams: Sequence[Iterator[tuple[int, pl.DataFrame]]], empty: Sequence[pl.DataFrame]
) -> Iterator[tuple[int, list[pl.DataFrame]]]:
    """Several cohorts' ``(chromosome code, rows)`` streams taken one chromosome at a time.

    Each stream yields its parts in increasing chromosome code; a cohort with
    no rows on a chromosome contributes its ``empty`` frame. Only the current
    part of every stream is held, so memory is set by the largest chromosome.
    """
    heads = [next(g, None) for g in streams]
    while any(h is not None for h in heads):
        code = min(h[0] for h in heads if h is not None)
        frames = []
        for i, h in enumerate(heads):
            if h is not None and h[0] == code:
                frames.append(h[1])
                heads[i] = None  # drop the reference before reading ahead
                heads[i] = next(streams[i], None)
            else:
                frames.append(empty[i])
        yield code, frames




def float_column(name: str, values: np.ndarray) -> pl.Series:
    """A Float64 column of ``values`` with NaN as null (missing, written ``NA``).

    The constructor's own NaN test: ``Series(...).fill_nan(None)`` is an
    expression run on polars' thread pool (16x slower at 110k values, and it
    queues behind the output being formatted there).
    """
    return pl.Series(name, np.asarray(values, dtype=np.float64), nan_to_null=True)

