"""``crosscohort pool-fit``: read the cohorts' released sums, align the variants, solve, write.

Variants are matched across cohorts on chromosome, position and the
unordered allele pair; the effect allele is the first cohort's (in the
order given). A cohort whose effect allele is the other one contributes its
sums mirrored (g -> 2 - g: g~ -> -g~, so every cross-product with g~
changes sign and ``gg``/``gwg`` do not; ``sum_g`` -> 2n - ``sum_g``). Alleles
are taken as given: the cohorts' bundles must be on one build and strand
(the export's reference), as harmonise would make them; strand flips and
palindromes are not resolved here.

A variant is fitted over the cohorts that released it (the gate may
suppress it in one cohort, or a cohort may not have it): variants are
grouped by the set of cohorts carrying them and each set is solved with its
own pooled covariate design, which equals the individual-level fit of those
cohorts' samples.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import numpy as np
import polars as pl

from crosscohort.errors import InputError
from crosscohort.pooled.blocks import BLOCK_SUFFIX, VARIANT_SUFFIX, CohortBlock, read_block
from crosscohort.pooled.fit import PooledFit, solve_linear, solve_logistic_onestep
from crosscohort.sumstats import float_column, variant_id

__all__ = ["PoolFitResult", "read_sums", "pool_fit", "sufficient_paths"]

#: Sum columns that change sign when the effect allele is the other one.
_EVEN = ("n", "sum_g", "gg", "gwg")


def sufficient_paths(directory: str | Path, trait: str) -> tuple[Path, Path]:
    """``(block, sums)`` paths of ``trait`` in a ``sufficient/`` directory."""
    d = Path(directory)
    return d / f"{trait}{BLOCK_SUFFIX}", d / f"{trait}{VARIANT_SUFFIX}"


def read_sums(path: str | Path, block: CohortBlock) -> pl.DataFrame:
    """Read a released ``{trait}.sufficient.tsv.gz`` and check its columns against ``block``.

    Raises
    ------
    InputError
        Unreadable file, or a column the block's trait type needs is absent.
    """
    from crosscohort.pooled.blocks import gwx_column, gx_column

    keys = {"chromosome": pl.Int64, "base_pair_location": pl.Int64, "effect_allele": pl.String,
            "other_allele": pl.String, "variant_id": pl.String, "rsid": pl.String, "n": pl.Int64}
    try:
        header = pl.read_csv(path, separator="\t", n_rows=0).columns
        schema = {c: keys.get(c, pl.Float64) for c in header}
        df = pl.read_csv(path, separator="\t", null_values="NA", schema=schema)
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise InputError(f"{path}: not a readable sufficient-statistics table ({str(exc).splitlines()[0]})") from None
    if block.trait_type == "quantitative":
        need = ["n", "sum_g", "gg", "gy", *(gx_column(c) for c in block.covariates)]
    else:
        need = ["n", "sum_g", "u", "gwg", gwx_column("1"), *(gwx_column(c) for c in block.covariates)]
    need = ["chromosome", "base_pair_location", "effect_allele", "other_allele", *need]
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise InputError(f"{path}: column(s) {missing} missing (a {block.trait_type} trait with covariates "
                         f"{list(block.covariates)} needs {need})")
    return df.select([c for c in df.columns if c in need or c in ("variant_id", "rsid")])


@dataclass(frozen=True)
class PoolFitResult:
    """The pooled table (GWAS-SSF + ``n_studies``, ``residual_df``) and the run's counts."""

    table: pl.DataFrame
    method: str
    n_variants: dict[str, int]


def _aligned(tables: Sequence[pl.DataFrame]) -> tuple[pl.DataFrame, list[pl.DataFrame]]:
    """The union of variants (first cohort's orientation) and each cohort's rows aligned to it."""
    keyed = []
    for i, t in enumerate(tables):
        keyed.append(t.select(
            "chromosome", "base_pair_location", "effect_allele", "other_allele",
            pl.min_horizontal("effect_allele", "other_allele").alias("_a"),
            pl.max_horizontal("effect_allele", "other_allele").alias("_b"),
            pl.lit(i).alias("_cohort"),
            *([pl.col("rsid")] if "rsid" in t.columns else [pl.lit(None, pl.String).alias("rsid")]),
        ))
    key = ["chromosome", "base_pair_location", "_a", "_b"]
    union = (pl.concat(keyed).sort("_cohort").unique(subset=key, keep="first", maintain_order=True)
             .sort("chromosome", "base_pair_location", "_a", "_b").drop("_cohort"))
    out = []
    for t in tables:
        tk = t.with_columns(pl.min_horizontal("effect_allele", "other_allele").alias("_a"),
                            pl.max_horizontal("effect_allele", "other_allele").alias("_b"),
                            pl.col("effect_allele").alias("_ea"))
        dup = tk.group_by(key).len().filter(pl.col("len") > 1)
        if dup.height:
            r = dup.row(0, named=True)
            raise InputError(f"variant {r['chromosome']}:{r['base_pair_location']} {r['_a']}/{r['_b']} appears "
                             f"{r['len']} times in one cohort's sums; each variant must be released once")
        sums = [c for c in t.columns if c not in ("chromosome", "base_pair_location", "effect_allele",
                                                  "other_allele", "variant_id", "rsid")]
        j = union.select(*key, "effect_allele").join(tk.drop("effect_allele", "other_allele", "variant_id", "rsid",
                                                             strict=False),
                                                     on=key, how="left", maintain_order="left")
        flip = pl.col("_ea") != pl.col("effect_allele")
        exprs = []
        for c in sums:
            if c == "sum_g":
                exprs.append(pl.when(flip).then(2.0 * pl.col("n") - pl.col(c)).otherwise(pl.col(c)).alias(c))
            elif c in _EVEN or c in ("n_hom_ref", "n_het", "n_hom_alt", "n_missing"):
                exprs.append(pl.col(c))
            else:
                exprs.append(pl.when(flip).then(-pl.col(c)).otherwise(pl.col(c)).alias(c))
        out.append(j.select(exprs))
    return union, out


def pool_fit(
    inputs: Sequence[tuple[str | Path, str | Path]],
    *,
    shared: Sequence[str] = (),
    log: TextIO | None = None,
) -> PoolFitResult:
    """The pooled fit of one trait from the cohorts' released blocks and sums.

    Parameters
    ----------
    inputs
        ``(block.json, sufficient.tsv.gz)`` per cohort, in cohort order.
    shared
        Covariates with one effect across cohorts (quantitative traits);
        every other covariate is cohort-specific. Binary traits: every
        covariate is cohort-specific (the one-step method's null).

    Returns
    -------
    PoolFitResult

    Raises
    ------
    InputError
        Blocks of different traits or trait types, or any error of the solvers.
    """
    log = log if log is not None else sys.stderr
    blocks = [read_block(b) for b, _ in inputs]
    traits = {(b.trait, b.trait_type) for b in blocks}
    if len(traits) != 1:
        raise InputError(f"pool-fit: the blocks are of different traits or trait types: {sorted(traits)}")
    cohorts = [b.cohort for b in blocks]
    if len(set(cohorts)) != len(cohorts):
        raise InputError(f"pool-fit: a cohort is given twice: {cohorts}")
    trait, ttype = traits.pop()
    if ttype == "binary" and shared:
        raise InputError("pool-fit: --shared applies to quantitative traits; the binary one-step fit keeps "
                         "every covariate cohort-specific")
    tables = [read_sums(t, b) for b, (_, t) in zip(blocks, inputs, strict=True)]
    union, aligned = _aligned(tables)
    m = union.height
    present = np.column_stack([a.get_column("n").is_not_null().to_numpy()
                               & np.isfinite(a.get_column("sum_g").fill_null(np.nan).to_numpy())
                               for a in aligned]) if m else np.zeros((0, len(blocks)), dtype=bool)
    beta, se, p, nlp = (np.full(m, np.nan) for _ in range(4))
    df_res = np.full(m, -1, dtype=np.int64)
    n = np.zeros(m, dtype=np.int64)
    n_studies = present.sum(axis=1).astype(np.int64)
    sum_g = np.zeros(m)
    for c, a in enumerate(aligned):
        sum_g += np.where(present[:, c], a.get_column("sum_g").fill_null(0.0).to_numpy(), 0.0)
    patterns, which = np.unique(present, axis=0, return_inverse=True) if m else (np.zeros((0, 0)), [])
    which = np.asarray(which).reshape(-1)
    for k, pattern in enumerate(patterns):
        cs = np.flatnonzero(pattern)
        if cs.size == 0:
            continue
        rows = np.flatnonzero(which == k)
        bl = [blocks[c] for c in cs]
        sums = [{col: aligned[c].get_column(col).to_numpy()[rows] for col in aligned[c].columns} for c in cs]
        fit: PooledFit = (solve_linear(bl, sums, shared=shared) if ttype == "quantitative"
                          else solve_logistic_onestep(bl, sums))
        beta[rows], se[rows], p[rows], nlp[rows] = fit.beta, fit.standard_error, fit.p_value, fit.neg_log_10_p_value
        df_res[rows], n[rows] = fit.residual_df, fit.n
        print(f"pool-fit: {rows.size} variants in cohort(s) {', '.join(cohorts[c] for c in cs)}", file=log)
    with np.errstate(invalid="ignore", divide="ignore"):
        eaf = np.where(n > 0, sum_g / (2.0 * n), np.nan)
    cols = {
        "chromosome": union.get_column("chromosome"),
        "base_pair_location": union.get_column("base_pair_location"),
        "effect_allele": union.get_column("effect_allele"),
        "other_allele": union.get_column("other_allele"),
        "beta": float_column("beta", beta),
        "standard_error": float_column("standard_error", se),
        "effect_allele_frequency": float_column("effect_allele_frequency", eaf),
        "p_value": float_column("p_value", p),
        "neg_log_10_p_value": float_column("neg_log_10_p_value", nlp),
        "rsid": union.get_column("rsid"),
        "n": pl.Series("n", n, dtype=pl.Int64),
        "n_studies": pl.Series("n_studies", n_studies, dtype=pl.Int64),
    }
    if ttype == "quantitative":
        cols["residual_df"] = pl.Series("residual_df", df_res, dtype=pl.Int64)
    table = pl.DataFrame(cols).with_columns(
        variant_id(pl.col("chromosome"), pl.col("base_pair_location"), pl.col("other_allele"),
                   pl.col("effect_allele")))
    method = ("linear least squares (exact)" if ttype == "quantitative"
              else "logistic one-step from the null (score / information)")
    counts = {"variants": m, "fitted": int(np.isfinite(beta).sum()),
              "not_estimable": int(m - np.isfinite(beta).sum())}
    print(f"pool-fit: trait {trait} ({method}): {counts['fitted']} of {m} variants fitted over "
          f"{len(blocks)} cohorts", file=log)
    return PoolFitResult(table, method, counts)
