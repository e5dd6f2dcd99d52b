"""Cohort side of the federated pooled fit: a trait's blocks once, then per-variant sums.

Inside a TRE, for each trait, over exactly the association's analysed
samples and phenotype preprocessing (:func:`crosscohort.tre.association.build_designs`),
this computes the :class:`~crosscohort.contract.sums.CohortBlock` once and
streams the genotypes in chunks for the per-variant sums (layout:
:mod:`crosscohort.contract.sums`). Memory is bounded by the chunk, as in
association.

Why raw covariates: the pooled model shares the effects of covariates such
as age across cohorts, so a shared covariate must be on the same scale in
every cohort; the association engine standardises covariates per cohort
(which changes no genotype estimate within a cohort but would across
cohorts). The values are therefore taken from the covariate files; a design
column with no such file column (e.g. a derived one) is kept standardised
and marked so, and the central fit refuses to share it.

Missing genotype calls are mean-imputed: the variant's mean dosage over the
trait's analysed samples with a call, so that every variant's sums are over
the same n people and the cohort block applies to all of them. (The
association engine instead leaves such samples out of that variant's fit,
as plink2 does; exact per-variant exclusion here would need sums over the
few people with a missing call, which the gate could not release.) The
individual-level pooled reference imputes the same way.

Centring on the cohort's own means changes no pooled estimate, because the
pooled model has one intercept per cohort, and it keeps the cross-products
well conditioned.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import numpy as np
import polars as pl
from scipy.special import expit

from crosscohort.contract.errors import InputError
from crosscohort.contract.ledger import Ledger
from crosscohort.contract.sums import CohortBlock, gwx_column, gx_column
from crosscohort.contract.sumstats import float_column, variant_id
from crosscohort.runtime.progress import Progress
from crosscohort.tre.association import _kernels as K
from crosscohort.tre.association.engine import (
    TraitDesign,
    _aligned,
    _chromosome_codes,
    _is_x,
    read_step,
    read_study,
    select_variants,
)
from crosscohort.tre.genotypes import Genotypes
from crosscohort.tre.phenotypes import (
    BLOM_OFFSET,
    PhenoTransform,
    TraitType,
)

__all__ = [
    "SufficientModel",
    "SufficientResult",
    "sufficient_model",
    "variant_sums",
    "raw_covariates",
    "scan_sufficient",
    "run_sufficient",
]


@dataclass(frozen=True)
class SufficientModel:
    """One trait's cohort block plus what every chunk needs (computed once per trait).

    Attributes
    ----------
    block
        The cohort block.
    rows
        (r, n) C-contiguous rows each chunk's centred dosages are multiplied
        with in one pass: x~' and y~ (quantitative), or y - mu0, W0, (W0 x)'
        (binary).
    names
        Output column of each row of ``rows``.
    weights
        (n,) W0 for ``gwg`` (binary), else None.
    cases
        (n,) 0/1 cases (binary), else None.
    """

    block: CohortBlock
    rows: np.ndarray
    names: tuple[str, ...]
    weights: np.ndarray | None
    cases: np.ndarray | None


#: Columns with at most this many distinct values have every level count derivable from
#: n, 1'x and x'x (two unknowns beyond n, two equations), so the gate checks each level.
_FEW_LEVELS = 3


def _levels(x: np.ndarray, names: Sequence[str], extra: Mapping[str, np.ndarray] | None = None) -> dict:
    """Level counts of the few-valued columns and the joint cells of each pair (the gate's input).

    A column with at most three distinct values has its level counts
    derivable from the released n, sum and sum of squares; the joint counts
    of two such columns are (partly) derivable from their cross-product. The
    gate checks both against ``min_count``.
    """
    cols = {name: x[:, j] for j, name in enumerate(names)}
    cols.update(extra or {})
    levels: dict[str, dict] = {}
    codes: dict[str, np.ndarray] = {}
    for name, col in cols.items():
        vals, inv, counts = np.unique(col, return_inverse=True, return_counts=True)
        if vals.size <= _FEW_LEVELS:
            levels[name] = {"values": vals.tolist(), "counts": counts.tolist()}
            codes[name] = (inv.reshape(-1), vals.size)
    cells = []
    keys = list(codes)
    for a in range(len(keys)):
        for b in range(a + 1, len(keys)):
            (ca, na), (cb, nb) = codes[keys[a]], codes[keys[b]]
            joint = np.bincount(ca * nb + cb, minlength=na * nb)
            cells.append({"columns": [keys[a], keys[b]], "counts": joint.tolist()})
    return {"levels": levels, "cells": cells}


def sufficient_model(
    y: np.ndarray,
    x: np.ndarray,
    *,
    cohort: str,
    trait: str,
    trait_type: TraitType,
    covariate_names: Sequence[str],
    scale: Sequence[str] | None = None,
) -> SufficientModel:
    """The cohort block of one trait and the per-chunk rows.

    Parameters
    ----------
    y
        (n,) the analysed samples' trait values (0/1 for binary traits).
    x
        (n, k) their covariates, no intercept (raw values where ``scale`` says raw).
    covariate_names
        k names.
    scale
        k of ``raw`` / ``standardised`` (default all raw).

    Returns
    -------
    SufficientModel

    Raises
    ------
    InputError
        Shapes that disagree, or (binary) a covariates-only logistic fit that does not converge.
    """
    y = np.asarray(y, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64).reshape(y.size, -1)
    n, k = x.shape
    names = tuple(covariate_names)
    if len(names) != k:
        raise InputError(f"trait {trait!r}: {k} covariate columns but {len(names)} names")
    scale = tuple(scale) if scale is not None else ("raw",) * k
    mx = x.mean(axis=0)
    xc = x - mx
    # The trait too: a few-valued quantitative trait (0/1 analysed as linear) has level
    # counts from 1'y and y'y, and allele counts per level from g'y, as a binary one.
    internal = _levels(x, names, {"<trait>": y})
    common = dict(cohort=cohort, trait=trait, trait_type=trait_type, n=n, covariates=names,
                  scale=scale, sum_x=x.sum(axis=0), sum_y=float(y.sum()))
    if trait_type == "binary":
        # The null fit on standardised columns (same fitted probabilities, better conditioned).
        sd = x.std(axis=0)
        sd[sd == 0] = 1.0
        design = np.column_stack([np.ones(n), xc / sd])
        null = K.logistic_model(y, design)
        if not null.converged:
            raise InputError(f"trait {trait!r}: the covariates-only logistic model did not converge in "
                             f"{null.iterations} iterations (covariates separate cases from controls?)")
        mu = expit(design @ null.beta_null)
        w = mu * (1.0 - mu)
        xi = np.column_stack([np.ones(n), x])
        block = CohortBlock(**common, n_cases=int(y.sum()), xwx=(xi * w[:, None]).T @ xi, internal=internal)
        rows = np.vstack([(y - mu)[None, :], w[None, :], (x * w[:, None]).T])
        out = ("u", gwx_column("1"), *(gwx_column(c) for c in names))
        return SufficientModel(block, np.ascontiguousarray(rows), out, w, y)
    yc = y - y.mean()
    block = CohortBlock(**common, xx=xc.T @ xc, xy=xc.T @ yc, yy=float(yc @ yc), internal=internal)
    rows = np.vstack([xc.T, yc[None, :]])
    return SufficientModel(block, np.ascontiguousarray(rows), (*(gx_column(c) for c in names), "gy"),
                           None, None)


def variant_sums(model: SufficientModel, dosages: np.ndarray) -> dict[str, np.ndarray]:
    """Per-variant sums of one chunk: (n, m) ALT dosages (NaN missing) -> columns of length m.

    Returns ``n``, ``sum_g``, ``gg`` (quantitative) or ``gwg`` (binary), the
    columns of ``model.names``, and the internal hard-call class counts
    (plus ``mac_cases``/``mac_controls`` for binary traits).
    """
    chunk = K.prepare_chunk(dosages, cases=model.cases)
    g = chunk.centred  # mean-imputed and centred: 0 where the call is missing
    n = g.shape[0]
    out: dict[str, np.ndarray] = {}
    with np.errstate(invalid="ignore", divide="ignore"):
        out["sum_g"] = np.where(chunk.n_obs > 0, chunk.alt_count * (n / chunk.n_obs), np.nan)
    out["n"] = np.full(g.shape[1], n, dtype=np.int64)
    prods = K._cross(model.rows, g)
    assert prods.shape == (len(model.names), g.shape[1]), prods.shape
    if model.weights is None:
        out["gg"] = K._sum_sq(chunk)
    else:
        out["gwg"] = K._cross(model.weights[None, :], g * g)[0]
    for name, row in zip(model.names, prods, strict=True):
        out[name] = row
    calls = np.rint(np.asarray(dosages, dtype=np.float64))
    out["n_hom_ref"] = (calls == 0).sum(axis=0)
    out["n_het"] = (calls == 1).sum(axis=0)
    out["n_hom_alt"] = (calls == 2).sum(axis=0)
    out["n_missing"] = n - chunk.n_obs
    if model.cases is not None:
        alt, alt_cases = chunk.alt_count, chunk.alt_cases
        alt_controls = alt - alt_cases
        n_cases, n_controls = chunk.n_cases, chunk.n_obs - chunk.n_cases
        out["mac_cases"] = np.minimum(alt_cases, 2.0 * n_cases - alt_cases)
        out["mac_controls"] = np.minimum(alt_controls, 2.0 * n_controls - alt_controls)
    return out


def raw_covariates(design: TraitDesign, samples: pl.DataFrame, covars: Sequence[pl.DataFrame], *,
                   covar_sources: Sequence[str] = ()) -> tuple[np.ndarray, tuple[str, ...]]:
    """The design's covariates on their file scale, and each one's scale.

    A design column found in a covariate file gets that file's values over
    the design's samples (``raw``); one that is not (derived by the engine)
    keeps the design's standardised values (``standardised``).
    """
    found: dict[str, np.ndarray] = {}
    for i, table in enumerate(covars):
        src = covar_sources[i] if i < len(covar_sources) else f"covariate file {i + 1}"
        _, al = _aligned(samples, table, source=src)
        for name in table.columns:
            if name in design.covariate_names and name not in found:
                found[name] = al.get_column(name).cast(pl.Float64).to_numpy()[design.rows]
    cols, scale = [], []
    for j, name in enumerate(design.covariate_names):
        if name in found:
            cols.append(found[name])
            scale.append("raw")
        else:
            cols.append(design.design[:, j + 1])
            scale.append("standardised")
    x = np.column_stack(cols) if cols else np.empty((design.n, 0))
    return x, tuple(scale)


def _columns(model: SufficientModel) -> list[str]:
    quantitative = model.weights is None
    return ["n", "sum_g", "gg" if quantitative else "gwg", *model.names,
            "n_hom_ref", "n_het", "n_hom_alt", "n_missing",
            *(() if quantitative else ("mac_cases", "mac_controls"))]


def scan_sufficient(genotypes: Genotypes, models: Sequence[SufficientModel], rows: Sequence[np.ndarray], *,
                    variant_index: np.ndarray, chunk_size: int = 1000,
                    log: TextIO | None = None) -> dict[str, pl.DataFrame]:
    """Per-variant sums of every variant in ``variant_index`` for every trait, streamed in chunks.

    Parameters
    ----------
    genotypes
        The genotype source.
    models
        From :func:`sufficient_model`, one per trait.
    rows
        Each trait's analysed samples (increasing indices among the genotype samples).
    variant_index
        Variant indices in output order (autosomal).

    Returns
    -------
    dict
        Trait -> table: the key columns of :data:`crosscohort.contract.sums.KEY_COLUMNS`
        then the sums, one row per variant.
    """
    log = log if log is not None else sys.stderr
    variant_index = np.asarray(variant_index, dtype=np.int64)
    union = np.unique(np.concatenate([np.asarray(r) for r in rows])) if rows else np.empty(0, np.int64)
    positions = [np.searchsorted(union, r) for r in rows]
    all_samples = union.size == genotypes.n_samples
    store: list[dict[str, list[np.ndarray]]] = [{c: [] for c in _columns(m)} for m in models]
    progress = Progress(variant_index.size, label="sufficient", stream=log)
    step = read_step(chunk_size, union.size)
    if variant_index.size:
        for vi, dos in genotypes.chunks(variant_index, step, None if all_samples else union):
            for model, pos, acc in zip(models, positions, store, strict=True):
                g = dos if pos.size == dos.shape[0] else dos[pos]
                sums = variant_sums(model, g)
                for c in acc:
                    acc[c].append(sums[c])
            progress.update(len(vi))
    progress.close()
    bim = genotypes.variants[variant_index]
    base = pl.DataFrame({
        "chromosome": _chromosome_codes(bim.get_column("chrom"), "the .bim chromosome column"),
        "base_pair_location": bim.get_column("pos"),
        "effect_allele": bim.get_column("a1"),
        "other_allele": bim.get_column("a2"),
        "rsid": bim.get_column("id"),
    }).with_columns(variant_id(pl.col("chromosome"), pl.col("base_pair_location"),
                               pl.col("other_allele"), pl.col("effect_allele")))
    base = base.select("chromosome", "base_pair_location", "effect_allele", "other_allele", "variant_id", "rsid")
    out: dict[str, pl.DataFrame] = {}
    for model, acc in zip(models, store, strict=True):
        cols = []
        for c, parts in acc.items():
            arr = np.concatenate(parts) if parts else np.empty(0)
            if c in ("n", "n_hom_ref", "n_het", "n_hom_alt", "n_missing"):
                cols.append(pl.Series(c, arr, dtype=pl.Int64))
            else:
                cols.append(float_column(c, arr))
        out[model.block.trait] = pl.concat([base, pl.DataFrame(cols)], how="horizontal")
    return out


@dataclass(frozen=True)
class SufficientResult:
    """Cohort blocks and per-variant tables (one per trait) and the ledgers of the run."""

    blocks: dict[str, CohortBlock]
    tables: dict[str, pl.DataFrame]
    ledgers: tuple[Ledger, ...]


def run_sufficient(
    sources: Sequence,
    pheno: str | Path,
    *,
    pheno_names: Sequence[str] | None = None,
    covar: Sequence[str | Path] = (),
    covar_names: Sequence[str] | None = None,
    keep: str | Path | None = None,
    extract: str | Path | None = None,
    trait_types: Mapping[str, TraitType] | None = None,
    chunk_size: int = 1000,
    part: tuple[int, int] | None = None,
    pheno_transform: PhenoTransform | None = None,
    int_offset: float = BLOM_OFFSET,
    cohort: str | None = None,
    log: TextIO | None = None,
) -> SufficientResult:
    """Run ``crosscohort sufficient`` from file paths (the options of ``crosscohort assoc``).

    The same samples, outcome and covariates per trait as
    :func:`crosscohort.tre.association.run_assoc` with the same options. Chromosome
    X variants are not summed (the association's X model adds sex and drops
    samples of unknown sex, a second design this does not yet build); they are
    counted in the variant ledger as ``chromosome_x``.

    Returns
    -------
    SufficientResult
    """
    log = log if log is not None else sys.stderr
    if chunk_size < 1:
        raise InputError(f"--chunk-size must be at least 1; got {chunk_size}")
    study = read_study(sources, pheno, pheno_names=pheno_names, covar=covar, covar_names=covar_names, keep=keep,
                       trait_types=trait_types, pheno_transform=pheno_transform, int_offset=int_offset,
                       cohort=cohort, log=log)
    geno, designs, cohort = study.genotypes, study.designs, study.cohort
    models = []
    for d in designs:
        x, scale = raw_covariates(d, geno.samples, study.tables.covar, covar_sources=list(study.covar_sources))
        models.append(sufficient_model(d.y, x, cohort=cohort, trait=d.name, trait_type=d.trait_type,
                                       covariate_names=d.covariate_names, scale=scale))
    vidx = select_variants(geno, extract=extract, part=part, stage="sufficient", log=log)
    on_x = _is_x(geno.variants[vidx].get_column("chrom"))
    tables = scan_sufficient(geno, models, [d.rows for d in designs], variant_index=vidx[~on_x],
                             chunk_size=chunk_size, log=log)
    ledgers = [d.ledger for d in designs]
    for d in designs:
        led = Ledger(stage="sufficient", cohort=cohort, trait=d.name, unit="variants", n_in=int(vidx.size),
                     n_kept=tables[d.name].height)
        led.remove("chromosome_x", int(on_x.sum()))
        ledgers.append(led.check())
        print(f"sufficient: trait {d.name}: sums of {led.n_kept} of {led.n_in} variants over {d.n} samples"
              + (f"; {int(on_x.sum())} chromosome X variants not summed" if on_x.any() else ""), file=log)
    return SufficientResult({m.block.trait: m.block for m in models}, tables, tuple(ledgers))
