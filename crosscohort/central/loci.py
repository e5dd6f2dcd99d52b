"""Loci from summary statistics: distance-based grouping of significant variants."""

from __future__ import annotations

import numpy as np
import polars as pl

from crosscohort.contract.stats import neg_log10_p_of_table
from crosscohort.schemas import default as schema_default

__all__ = ["THRESHOLD", "WINDOW_KB", "distance_loci"]

#: Genome-wide significance (the config schema's report.threshold).
THRESHOLD: float = schema_default("report.threshold")
#: Distance-based locus window in kb (the config schema's report.window_kb).
WINDOW_KB: float = float(schema_default("report.window_kb"))

def distance_loci(df: pl.DataFrame, *, threshold: float = THRESHOLD, window_kb: float = WINDOW_KB,
                  neglog_column: str = "neg_log_10_p_value", p_column: str = "p_value") -> pl.DataFrame:
    """Group variants with p < ``threshold`` into loci around lead variants.

    Greedy, as in the GWAS Catalog and most consortium papers: take the most
    significant remaining variant as a lead, assign every significant variant
    within ±``window_kb`` on the same chromosome to its locus, repeat.

    Returns
    -------
    polars.DataFrame
        One row per locus, most significant first: ``locus`` (1-based), the
        lead's columns of ``df``, ``start``, ``end`` (span of member variants)
        and ``n_variants``.
    """
    x = neg_log10_p_of_table(df, p_column=p_column, neglog_column=neglog_column)
    # A row with no p-value is not significant (polars orders NaN above every
    # number, so a bare comparison would make it a lead).
    sig = df.with_columns(pl.Series("_nlp", x)).filter(
        pl.col("_nlp").is_not_nan() & (pl.col("_nlp") > -np.log10(threshold))
    )
    sig = sig.sort("_nlp", descending=True)
    if sig.height == 0:
        return sig.drop("_nlp").with_columns(
            pl.lit(None, pl.Int64).alias("locus"), pl.lit(None, pl.Int64).alias("start"),
            pl.lit(None, pl.Int64).alias("end"), pl.lit(None, pl.Int64).alias("n_variants"))
    # Marker-only rows (no chromosome or position, as METAL/GWAMA inputs allow)
    # cannot be grouped by distance: each significant one is a locus of its own,
    # with no start or end.
    located = (sig.get_column("chromosome").is_not_null()
               & sig.get_column("base_pair_location").is_not_null()).to_numpy()
    chrom = sig.get_column("chromosome").fill_null(-1).to_numpy()
    pos = sig.get_column("base_pair_location").fill_null(-1).to_numpy()
    assigned = np.zeros(sig.height, dtype=bool)
    leads, starts, ends, counts = [], [], [], []
    w = window_kb * 1000
    for i in range(sig.height):
        if assigned[i]:
            continue
        leads.append(i)
        if not located[i]:
            assigned[i] = True
            starts.append(None)
            ends.append(None)
            counts.append(1)
            continue
        member = (~assigned) & located & (chrom == chrom[i]) & (np.abs(pos - pos[i]) <= w)
        assigned |= member
        starts.append(int(pos[member].min()))
        ends.append(int(pos[member].max()))
        counts.append(int(member.sum()))
    out = sig[leads].drop("_nlp")
    return out.with_columns(
        pl.Series("locus", np.arange(1, len(leads) + 1)),
        pl.Series("start", starts, dtype=pl.Int64),
        pl.Series("end", ends, dtype=pl.Int64),
        pl.Series("n_variants", counts),
    )
