"""Cohort side of the federated pooled fit: a trait's blocks once, then per-variant sums.

Inside a TRE, for each trait, over exactly the association's analysed
samples and phenotype preprocessing (:func:`crosscohort.tre.association.build_designs`),
this computes the :class:`~crosscohort.contract.sums.CohortBlock` once and
streams the genotypes in chunks for the per-variant sums (layout:
:mod:`crosscohort.contract.sums`). Memory is bounded by the chunk, as in
association, plus each trait's difference window (below).

Why raw covariates: the pooled model shares the effects of covariates such
as age across cohorts, so a shared covariate must be on the same scale in
every cohort; the association engine standardises covariates per cohort
(which changes no genotype estimate within a cohort but would across
cohorts). The values are therefore taken from the covariate files; a design
column with no such file column (e.g. a derived one) is kept standardised
and marked so, and the central fit refuses to share it.

Missing genotype calls are filled with the variant's *hard call of the
mean* (:func:`hard_call_fill`): the genotype class 0, 1 or 2 nearest to the
variant's mean ALT dosage over the cohort's genotyped samples with a call
(after ``--keep``; halves up), so that every variant's sums are over the
same n people and the cohort block applies to all of them. Why a hard call
and not the mean itself: the mean, a fraction, made ``sum_g = ALT count x n
/ calls`` give the missing-call count of every variant exactly (the one
count of calls that makes the ALT count whole), a count of 1..min_count
people that the gate could not withhold without withholding nearly every
variant. With a whole-number fill, the sums of a variant with m missing
calls are exactly the sums of a variant with complete calls (the filled
one), so they cannot tell m. The genotype-class counts the gate checks are
those of the filled calls (what the sums describe). The reference set is the
cohort's genotyped samples, not a trait's analysed ones, so that the fill
is a property of the genotypes (one per variant, whatever the traits) and
the individual-level pooled reference (:func:`crosscohort.demo.pool.fill_missing_calls`)
fills the same calls with the same values, as does ``crosscohort assoc
--missing fill`` (the association of a cohort that releases these sums; the
gate checks it, :func:`crosscohort.contract.release_sums.check_sumstats_filled`).
(Exact per-variant exclusion, plink2's and ``assoc``'s default, would need
sums over the few people with a missing call, which the gate could not
release.)

For the gate's difference rule, each variant's filled dosages are compared
with those of the ``difference_window`` variants before it (and with 2
minus them): the fewest people, 1..``difference_cap``, in which they
differ is the internal column ``n_differ``
(:class:`crosscohort.tre._differences.DifferenceWindow`; samples x
window bytes per trait for hard calls). Subtracting two released rows whose
genotypes differ in a few people gives sums over those people alone.

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
from crosscohort.runtime.jit import is_small_job
from crosscohort.runtime.progress import Progress
from crosscohort.tre._differences import DifferenceWindow
from crosscohort.tre._fill import fill_and_count, fill_values
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
    "hard_call_fill",
    "fill_missing",
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


#: Chunk cells up to which the numpy versions of the fill and counts run (no numba load).
_NUMPY_CELLS = 2_000_000

#: Variants before each one that the difference rule compares it with (and its mirror).
DIFFERENCE_WINDOW = 1000
#: Differences counted up to this many people (the gate's ``min_count`` may not exceed it).
DIFFERENCE_CAP = 20

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
    difference_window: int = DIFFERENCE_WINDOW,
    difference_cap: int = DIFFERENCE_CAP,
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
    difference_window, difference_cap
        The difference check of :func:`variant_sums` (recorded in the
        block's internal entry for the gate).

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
    internal["differences"] = {"window": int(difference_window), "cap": int(difference_cap)}
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


def hard_call_fill(dosages: np.ndarray) -> np.ndarray:
    """Each variant's fill for a missing call: the genotype class nearest its mean dosage.

    Parameters
    ----------
    dosages
        (n, m) ALT dosages of the reference samples, NaN for a missing call.

    Returns
    -------
    numpy.ndarray
        (m,) ``floor(mean + 0.5)`` of the calls (0, 1 or 2; halves up), 0
        for a variant with no call.
    """
    g = np.asarray(dosages, dtype=np.float64)
    if not is_small_job() and g.size > _NUMPY_CELLS:
        return fill_values(g)
    calls = np.sum(~np.isnan(g), axis=0)
    total = np.nansum(g, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(calls > 0, total / np.maximum(calls, 1), 0.0)
    return np.clip(np.floor(mean + 0.5), 0.0, 2.0)


def fill_missing(dosages: np.ndarray, fill: np.ndarray) -> np.ndarray:
    """(n, m) dosages with each missing call replaced by its variant's ``fill`` (Fortran order)."""
    g = np.asarray(dosages, dtype=np.float64)
    missing = np.isnan(g)
    if not missing.any():
        return np.asfortranarray(g)
    fill = np.asarray(fill, dtype=np.float64)
    assert fill.shape == (g.shape[1],), (fill.shape, g.shape)
    out = np.array(g, dtype=np.float64, order="F", copy=True)
    np.copyto(out, np.broadcast_to(fill, g.shape), where=missing)
    return out


def variant_sums(model: SufficientModel, dosages: np.ndarray, *, fill: np.ndarray | None = None,
                 window: DifferenceWindow | None = None) -> dict[str, np.ndarray]:
    """Per-variant sums of one chunk: (n, m) ALT dosages (NaN missing) -> columns of length m.

    Parameters
    ----------
    model
        From :func:`sufficient_model`.
    dosages
        (n, m) the trait's analysed samples' dosages, NaN for a missing call.
    fill
        (m,) the value of a missing call (:func:`hard_call_fill` of the
        cohort's genotyped samples); default the hard call of these samples' mean.
    window
        The variants before this chunk, which the difference check
        compares the chunk's with (the chunk then joins it); default a new
        one (the chunk's own variants only).

    Returns
    -------
    dict
        ``n``, ``sum_g``, ``gg`` (quantitative) or ``gwg`` (binary), the
        columns of ``model.names``, and the internal counts: the classes of
        the filled hard calls, ``n_missing``, ``n_differ`` (the fewest
        people, 1..cap, in which the variant's filled dosages differ from
        those of one of the window's variants before it or their mirror,
        2 - g; cap + 1 when none: :mod:`crosscohort.tre._differences`)
        (plus ``mac_cases``/``mac_controls`` for binary traits).
    """
    raw = np.asarray(dosages, dtype=np.float64)
    fill = hard_call_fill(raw) if fill is None else fill
    if not is_small_job() and raw.size > _NUMPY_CELLS:
        dosages, n_missing, classes, whole = fill_and_count(raw, fill)
    else:
        n_missing = np.isnan(raw).sum(axis=0)
        dosages = fill_missing(raw, fill)
        calls = np.rint(dosages)
        classes = np.column_stack([(calls == k).sum(axis=0) for k in (0, 1, 2)]).reshape(-1, 3)
        whole = np.array_equal(calls, dosages)
    chunk = K.prepare_chunk(dosages, cases=model.cases)
    g = chunk.centred  # no missing call left: every sample counts in every variant
    n = g.shape[0]
    assert np.all(chunk.n_obs == n), "fill_missing left a missing call"
    out: dict[str, np.ndarray] = {}
    out["sum_g"] = chunk.alt_count
    out["n"] = np.full(g.shape[1], n, dtype=np.int64)
    prods = K._cross(model.rows, g)
    assert prods.shape == (len(model.names), g.shape[1]), prods.shape
    if model.weights is None:
        out["gg"] = K._sum_sq(chunk)
    else:
        out["gwg"] = K._cross(model.weights[None, :], g * g)[0]
    for name, row in zip(model.names, prods, strict=True):
        out[name] = row
    out["n_hom_ref"], out["n_het"], out["n_hom_alt"] = classes[:, 0], classes[:, 1], classes[:, 2]
    out["n_missing"] = n_missing
    if window is None:
        diff = model.block.internal["differences"]
        window = DifferenceWindow(n, window=diff["window"], cap=diff["cap"])
    # Hard calls compared as int8: the window of earlier variants is then 1 byte a genotype.
    out["n_differ"] = window.push(dosages.astype(np.int8) if whole else dosages)
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
            "n_hom_ref", "n_het", "n_hom_alt", "n_missing", "n_differ",
            *(() if quantitative else ("mac_cases", "mac_controls"))]


def scan_sufficient(genotypes: Genotypes, models: Sequence[SufficientModel], rows: Sequence[np.ndarray], *,
                    variant_index: np.ndarray, reference: np.ndarray | None = None,
                    chunk_size: int = 1000, log: TextIO | None = None) -> dict[str, pl.DataFrame]:
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
    reference
        The cohort's genotyped samples (after ``--keep``) whose calls set
        each variant's fill of a missing call (:func:`hard_call_fill`);
        default the union of ``rows``.

    Returns
    -------
    dict
        Trait -> table: the key columns of :data:`crosscohort.contract.sums.KEY_COLUMNS`
        then the sums, one row per variant.
    """
    log = log if log is not None else sys.stderr
    variant_index = np.asarray(variant_index, dtype=np.int64)
    union = np.unique(np.concatenate([np.asarray(r) for r in rows])) if rows else np.empty(0, np.int64)
    reference = union if reference is None else np.unique(np.asarray(reference, dtype=np.int64))
    union = np.union1d(union, reference)
    positions = [np.searchsorted(union, r) for r in rows]
    ref_pos = np.searchsorted(union, reference)
    all_samples = union.size == genotypes.n_samples
    store: list[dict[str, list[np.ndarray]]] = [{c: [] for c in _columns(m)} for m in models]
    progress = Progress(variant_index.size, label="sufficient", stream=log)
    step = read_step(chunk_size, union.size)
    # Each trait's window of earlier variants: the difference check spans chunks.
    windows = [DifferenceWindow(pos.size, window=m.block.internal["differences"]["window"],
                                cap=m.block.internal["differences"]["cap"]) for m, pos in zip(models, positions, strict=True)]
    if variant_index.size:
        for vi, dos in genotypes.chunks(variant_index, step, None if all_samples else union):
            fill = hard_call_fill(dos if ref_pos.size == dos.shape[0] else dos[ref_pos])
            for t, (model, pos, acc) in enumerate(zip(models, positions, store, strict=True)):
                g = dos if pos.size == dos.shape[0] else dos[pos]
                sums = variant_sums(model, g, fill=fill, window=windows[t])
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
            if c in ("n", "n_hom_ref", "n_het", "n_hom_alt", "n_missing", "n_differ"):
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
    difference_window: int = DIFFERENCE_WINDOW,
    difference_cap: int = DIFFERENCE_CAP,
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
                                       covariate_names=d.covariate_names, scale=scale,
                                       difference_window=difference_window, difference_cap=difference_cap))
    vidx = select_variants(geno, extract=extract, part=part, stage="sufficient", log=log)
    on_x = _is_x(geno.variants[vidx].get_column("chrom"))
    tables = scan_sufficient(geno, models, [d.rows for d in designs], variant_index=vidx[~on_x],
                             reference=geno.sample_index(study.keep), chunk_size=chunk_size, log=log)
    ledgers = [d.ledger for d in designs]
    for d in designs:
        led = Ledger(stage="sufficient", cohort=cohort, trait=d.name, unit="variants", n_in=int(vidx.size),
                     n_kept=tables[d.name].height)
        led.remove("chromosome_x", int(on_x.sum()))
        ledgers.append(led.check())
        print(f"sufficient: trait {d.name}: sums of {led.n_kept} of {led.n_in} variants over {d.n} samples"
              + (f"; {int(on_x.sum())} chromosome X variants not summed" if on_x.any() else ""), file=log)
    return SufficientResult({m.block.trait: m.block for m in models}, tables, tuple(ledgers))
