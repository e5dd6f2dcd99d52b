"""Readers of other meta-analysis tools' input formats, into GWAS-SSF frames.

Only what the conformance tests and users migrating from those tools need:
GWAMA's per-study input (Mägi & Morris 2010).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
from scipy.special import ndtr

from crosscohort.errors import InputError
from crosscohort.harmonise.alleles import complement, normalise_allele

__all__ = ["read_gwama_input"]

#: z of a 95 % two-sided interval; GWAMA derives SE from OR_95L/OR_95U this way.
_Z975 = 1.959963984540054


def read_gwama_input(
    path: str | Path,
    *,
    marker_map: pl.DataFrame | None = None,
    name_marker: str = "MARKERNAME",
    name_ea: str = "EA",
    name_nea: str = "NEA",
) -> pl.DataFrame:
    """A GWAMA study file as a GWAS-SSF frame (``rsid`` = marker name), ready for harmonisation.

    Parameters
    ----------
    path
        Whitespace- or tab-separated GWAMA input: marker, effect and
        non-effect allele, ``BETA``/``SE`` (quantitative) or ``OR``,
        ``OR_95L``, ``OR_95U`` (binary), optional ``N``, ``EAF``, ``STRAND``,
        ``CHR``/``POS``. ``NA`` is missing; ``-9`` is missing in ``N`` and ``EAF``.
    marker_map
        ``rsid, chromosome, base_pair_location`` for files without ``CHR``/``POS``
        (GWAMA's ``--map``). Markers without a position get null chromosome and
        position, which harmonisation counts as ``bad_value_chromosome``.
    name_marker, name_ea, name_nea
        Header names of the marker and allele columns (GWAMA's ``--name_*`` options).

    Returns
    -------
    polars.DataFrame
        ``chromosome`` (text label), ``base_pair_location``, ``effect_allele``,
        ``other_allele``, ``beta``, ``standard_error``, ``effect_allele_frequency``,
        ``p_value`` (two-sided, from beta/SE), ``n``, ``rsid``. Alleles on the
        ``-`` strand are complemented, as GWAMA does; OR inputs become
        ``beta = ln OR`` and ``SE = (ln OR_95U - ln OR_95L) / (2 * 1.96)``.

    Raises
    ------
    InputError
        When a required column is missing or a numeric column holds text.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file (GWAMA input)")
    lines = path.read_text().splitlines()
    rows = [ln.split() for ln in lines if ln.strip()]
    if not rows:
        raise InputError(f"{path}: empty file, expected a GWAMA header line")
    header, body = rows[0], rows[1:]
    for i, r in enumerate(body, start=2):
        if len(r) != len(header):
            raise InputError(f"{path}: line {i}: {len(r)} fields, header has {len(header)}")
    raw = pl.DataFrame(
        {h: [r[j] for r in body] for j, h in enumerate(header)},
        schema={h: pl.String for h in header},
    )
    binary = "BETA" not in header
    need = [name_marker, name_ea, name_nea, *(("OR", "OR_95L", "OR_95U") if binary else ("BETA", "SE"))]
    missing = [c for c in need if c not in header]
    if missing:
        raise InputError(f"{path}: GWAMA input lacks column(s) {missing}; header is {header}")

    def num(name: str, *, minus9_missing: bool = False) -> pl.Expr:
        col = pl.col(name).replace({"NA": None, "nan": None, "NaN": None})
        if minus9_missing:
            col = col.replace({"-9": None})
        return col.cast(pl.Float64, strict=True)

    try:
        if binary:
            lo, hi = num("OR_95L").log(), num("OR_95U").log()
            effect = [num("OR").log().alias("beta"), ((hi - lo) / (2 * _Z975)).alias("standard_error")]
        else:
            effect = [num("BETA").alias("beta"), num("SE").alias("standard_error")]
        extra = [
            (num("EAF", minus9_missing=True) if "EAF" in header else pl.lit(None, pl.Float64))
            .alias("effect_allele_frequency"),
            (num("N", minus9_missing=True).cast(pl.Int64) if "N" in header else pl.lit(None, pl.Int64))
            .alias("n"),
        ]
        df = raw.select(
            pl.col(name_marker).alias("rsid"),
            normalise_allele(pl.col(name_ea)).alias("effect_allele"),
            normalise_allele(pl.col(name_nea)).alias("other_allele"),
            (pl.col("STRAND") if "STRAND" in header else pl.lit("+")).alias("_strand"),
            *effect,
            *extra,
            (pl.col("CHR") if "CHR" in header else pl.lit(None, pl.String)).alias("chromosome"),
            (num("POS").cast(pl.Int64) if "POS" in header else pl.lit(None, pl.Int64))
            .alias("base_pair_location"),
        )
    except pl.exceptions.PolarsError as exc:
        raise InputError(f"{path}: a numeric GWAMA column holds text ({str(exc).splitlines()[0]})") from exc

    minus = pl.col("_strand") == "-"
    df = df.with_columns(
        pl.when(minus).then(complement(pl.col("effect_allele"))).otherwise(pl.col("effect_allele"))
        .alias("effect_allele"),
        pl.when(minus).then(complement(pl.col("other_allele"))).otherwise(pl.col("other_allele"))
        .alias("other_allele"),
    ).drop("_strand")
    if marker_map is not None:
        df = df.join(
            marker_map.select(
                "rsid",
                pl.col("chromosome").cast(pl.String).alias("_chr"),
                pl.col("base_pair_location").cast(pl.Int64).alias("_pos"),
            ),
            on="rsid",
            how="left",
        ).with_columns(
            pl.coalesce("chromosome", "_chr").alias("chromosome"),
            pl.coalesce("base_pair_location", "_pos").alias("base_pair_location"),
        ).drop("_chr", "_pos")
    z = (df.get_column("beta") / df.get_column("standard_error")).to_numpy()
    with np.errstate(invalid="ignore"):
        p = 2.0 * ndtr(-np.abs(z))
    return df.with_columns(pl.Series("p_value", p, dtype=pl.Float64).fill_nan(None))
