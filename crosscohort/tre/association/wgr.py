"""Whole-genome regression (REGENIE-class): step 1 LOCO predictions and step 2 association with them as offset.

Relatives and population structure make a fixed-effects scan (plink2
``--glm``) inflated unless relatives are removed. Whole-genome regression
(Mbatchou et al. 2021, Nat Genet 53:1097; REGENIE) captures the polygenic
signal in a leave-one-chromosome-out (LOCO) prediction that step 2 subtracts
(quantitative traits) or uses as a logistic offset (binary traits), so
relatives can stay.

**Step 1** (:func:`run_step1`, ``crosscohort wgr``): genotype blocks of
``bsize`` consecutive variants of one chromosome are streamed one at a time
(memory grows with samples x blocks, not with variants); each is mean-imputed,
residualised on the covariates and standardised, and its level-0 ridge
predictions at REGENIE's shrinkage grid ``M (1 - h2) / h2`` are kept
out-of-sample (K-fold, or leave-one-out with ``loocv``). The level-1 model
(ridge, or logistic ridge with the covariates' offset) stacks them; its
shrinkage is chosen by cross-validation (mean squared error, or mean negative
log-likelihood), and the per-chromosome parts of its out-of-sample
predictions give the LOCO predictions. All traits share each block's
genotype pass; a trait's missing phenotypes only mask its own rows. As
REGENIE does for a run with binary traits, fewer than 5,000 analysed samples
switch the run (every trait of it) to leave-one-out CV.

**Step 2** (:func:`run_step2`, ``crosscohort assoc --pred LIST``): for a
quantitative trait, y minus the LOCO prediction (rescaled to y's
covariate-residual standard deviation) goes through the same linear kernel
as ``--glm`` (chunks, parts, every genotype format, chromosome X model); for
a binary trait, the score test of :mod:`crosscohort.tre.association._offset_tests`
with the LOCO offset, and below ``pthresh`` Firth (exact: covariates and
variant fitted under Firth's penalty, REGENIE ``--firth``; approximate:
covariates fixed at the Firth null fit, ``--firth --approx``) or SPA.
With a table of related pairs (``--relatives``), a quantitative trait's
statistics are divided by ``r' Phi r / r'r`` per chromosome
(:func:`relatives_calibration`): a LOCO prediction informed by relatives'
phenotypes leaves their residuals negatively correlated, which deflates the
test of a variant they share.

The numbered cross-checks against REGENIE's own example are in
``tests/test_wgr_regenie.py``.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TextIO

import numpy as np
import polars as pl

from crosscohort.contract.errors import InputError
from crosscohort.contract.ledger import Ledger
from crosscohort.contract.stats import (
    neg_log10_p,
    neg_log10_p_from_t,
    neg_log10_p_from_z,
    p_from_chi2,
)
from crosscohort.contract.sumstats import float_column, variant_id
from crosscohort.contract.table_io import read_text
from crosscohort.tre.association import _firth as F
from crosscohort.tre.association import _kernels as K
from crosscohort.tre.association import _offset_tests as O
from crosscohort.tre.association import _ridge as R
from crosscohort.tre.association import regenie_files as RF
from crosscohort.tre.association._firth import FIRTH_CONVERGE_FAIL
from crosscohort.tre.association.engine import (
    MISSING_MODES,
    X_LABELS,
    AssocResult,
    TraitDesign,
    _aligned,
    _chromosome_codes,
    chrx_designs,
    read_step,
    read_study,
    sample_selection,
    scan,
    select_variants,
    variant_ledger,
)
from crosscohort.tre.genotypes import Genotypes, read_id_list
from crosscohort.tre.phenotypes import TraitType

__all__ = ["Step1Result", "TraitSummary", "run_step1", "write_step1", "run_step2", "sample_selection",
           "read_relatives", "relatives_calibration"]

#: Binary-trait corrections of step 2 (REGENIE ``--firth``, ``--firth --approx``, ``--spa``).
CORRECTIONS = ("firth-exact", "firth", "spa")

#: REGENIE switches binary traits to leave-one-out CV below this many analysed samples.
LOOCV_BELOW = 5000


@dataclass(frozen=True)
class TraitSummary:
    """One trait's step-1 model: what the report shows.

    Attributes
    ----------
    level1_h2
        The level-1 heritability grid; ``best`` indexes the chosen one.
    criterion
        CV mean squared error (quantitative) or mean negative log-likelihood (binary) per level-1 value.
    r2
        CV squared correlation of prediction and phenotype per level-1 value.
    lambda_gc_no_loco
        λGC of the step-1 variants tested without the LOCO offset
        (:func:`marginal_chi2`); NaN when no variant was tested.
    """

    name: str
    trait_type: TraitType
    n: int
    best: int
    level1_h2: tuple[float, ...]
    level1_shrinkage: tuple[float, ...]
    criterion: tuple[float, ...]
    r2: tuple[float, ...]
    lambda_gc_no_loco: float = float("nan")

    def to_dict(self) -> dict:
        return {
            "trait": self.name, "trait_type": self.trait_type, "n": self.n,
            "chosen_level1_h2": self.level1_h2[self.best],
            "chosen_level1_shrinkage": self.level1_shrinkage[self.best],
            "cv_r2": self.r2[self.best], "cv_criterion": self.criterion[self.best],
            "criterion_name": "mse" if self.trait_type == "quantitative" else "neg_loglik_per_sample",
            "level1_h2": list(self.level1_h2), "level1_shrinkage": list(self.level1_shrinkage),
            "criterion": list(self.criterion), "r2": list(self.r2),
            "lambda_gc_no_loco": self.lambda_gc_no_loco,
        }


@dataclass(frozen=True)
class Step1Result:
    """LOCO predictions of every trait, in REGENIE's ``.loco`` meaning.

    Attributes
    ----------
    keys
        ``FID_IID`` of the analysed samples (genotype order).
    loco
        Trait -> (n, 23) LOCO prediction per sample and chromosome 1..23 (X = 23), NaN where missing.
    """

    keys: tuple[str, ...]
    traits: tuple[TraitSummary, ...]
    loco: dict[str, np.ndarray]
    n_variants: int
    n_blocks: int
    block_size: int
    cv: str
    level0_h2: tuple[float, ...]
    level0_shrinkage: tuple[float, ...]
    ledgers: tuple[Ledger, ...] = field(default_factory=tuple)
    level1: str = "blocks"

    def summary(self) -> dict:
        return {
            "n_samples": len(self.keys), "n_variants": self.n_variants, "n_blocks": self.n_blocks,
            "block_size": self.block_size, "cv": self.cv, "level0_h2": list(self.level0_h2),
            "level0_shrinkage": list(self.level0_shrinkage), "level1": self.level1,
            "traits": [t.to_dict() for t in self.traits],
        }


def marginal_chi2(g: np.ndarray, y_std: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """1-df score statistics of each block variant for each trait, without the LOCO offset.

    The genotypes ``g`` (n x m) are those step 1 already holds: mean-imputed,
    residualised on the covariates and standardised; ``y_std`` (n x T) are
    the phenotypes residualised on the covariates over each trait's own
    samples, at unit residual variance, zero where missing; ``masks`` (n x T,
    bool) marks each trait's samples. The statistic is
    ``(g'y)^2 / (g_t'g_t)``, ``g_t`` the genotypes on the trait's samples:
    the score test of the covariates-only model (no offset), which equals
    the ``--glm`` t^2 to O(1/n) near the null. For binary traits it is the
    linear (Armitage-trend-type) score on the covariate residuals, not the
    logistic score; both have the same null median.

    Why here and not in step 2: the median of these statistics is the λGC
    *without* LOCO that the report sets beside step 2's λGC *with* LOCO.
    Step 1 already streams every step-1 variant (in the workflow, the same
    QC'd set step 2 tests), residualised and standardised, so the statistic
    costs two n x m x T products per block beside level 0's n x m x m
    cross-product; step 2 stays exactly as fast as before (no second scan
    without the offset). A trait with missing values keeps the numerator
    exact (its y is orthogonal to the covariates on its own samples) and a
    denominator residualised over all step-1 samples.

    Returns
    -------
    numpy.ndarray
        m x T statistics (NaN where a variant does not vary on a trait's samples).
    """
    score = g.T @ y_std
    # Sums of squares without an n x m temporary (the block is step 1's memory): all rows,
    # minus each trait's missing rows (few, copied alone).
    sumsq = np.einsum("ij,ij->j", g, g)
    den = np.repeat(sumsq[:, None], y_std.shape[1], axis=1)
    for t in range(y_std.shape[1]):
        out_rows = ~masks[:, t]
        if out_rows.any():
            rest = g[out_rows]
            den[:, t] -= np.einsum("ij,ij->j", rest, rest)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = score * score / den
    out[~np.isfinite(out) | (den <= 0)] = np.nan
    return out


def _variant_selection(geno: Genotypes, extract: str | Path | None, exclude: str | Path | None,
                       log: TextIO) -> np.ndarray:
    vidx = np.arange(geno.n_variants)
    if extract is not None:
        vidx = geno.variant_index(read_id_list(extract))
        print(f"wgr: --extract {extract}: {vidx.size} variants", file=log)
    if exclude is not None:
        drop = set(read_id_list(exclude))
        ids = geno.variants.get_column("id").to_numpy()[vidx]
        vidx = vidx[~np.isin(ids, list(drop))]
        print(f"wgr: --exclude {exclude}: {vidx.size} variants left", file=log)
    if vidx.size == 0:
        raise InputError("wgr: no variant left for step 1 after --extract/--exclude")
    return vidx


def _covariate_matrix(samples: pl.DataFrame, covars: Sequence[pl.DataFrame], names: Sequence[str] | None,
                      rows: np.ndarray, sources: Sequence[str]) -> np.ndarray:
    """Intercept + raw covariates of the given genotype rows (complete by construction of the designs)."""
    cols: dict[str, np.ndarray] = {}
    for i, table in enumerate(covars):
        _, al = _aligned(samples, table, source=sources[i] if i < len(sources) else f"covariate file {i + 1}")
        for name in table.columns:
            if name not in ("fid", "iid"):
                cols[name] = al.get_column(name).cast(pl.Float64).fill_null(np.nan).to_numpy()
    if names is not None:
        cols = {c: cols[c] for c in names}
    x = np.column_stack([np.ones(rows.size)] + [v[rows] for v in cols.values()])
    return x


def _orthonormal(x: np.ndarray) -> np.ndarray:
    q, r = np.linalg.qr(x)
    keep = np.abs(np.diag(r)) > 1e-8 * max(1.0, float(np.abs(np.diag(r)).max()))
    return q[:, keep]


def _chrom_blocks(codes: np.ndarray, bsize: int) -> list[tuple[int, np.ndarray]]:
    """(chromosome code, positions into the selected variants) per block: bsize consecutive variants of one chromosome."""
    blocks: list[tuple[int, np.ndarray]] = []
    for c in sorted(set(codes.tolist())):
        pos = np.flatnonzero(codes == c)
        for s in range(0, pos.size, bsize):
            blocks.append((int(c), pos[s : s + bsize]))
    return blocks


def run_step1(
    bfiles: Sequence,
    pheno: str | Path,
    *,
    pheno_names: Sequence[str] | None = None,
    covar: Sequence[str | Path] = (),
    covar_names: Sequence[str] | None = None,
    keep: str | Path | None = None,
    remove: str | Path | None = None,
    extract: str | Path | None = None,
    exclude: str | Path | None = None,
    trait_types: Mapping[str, TraitType] | None = None,
    bsize: int = 1000,
    cv_folds: int = 5,
    loocv: bool = False,
    level0_h2: Sequence[float] = R.DEFAULT_H2,
    level1_h2: Sequence[float] = R.DEFAULT_H2,
    level1: str = "blocks",
    cohort: str | None = None,
    log: TextIO | None = None,
) -> Step1Result:
    """Step 1: LOCO predictions of every trait by two-level ridge regression.

    Parameters
    ----------
    bfiles
        Genotype inputs (PLINK 1 prefixes or :class:`~crosscohort.tre.genotype_formats.GenotypeSource`).
    pheno, pheno_names, covar, covar_names, keep, trait_types
        As ``crosscohort assoc``; ``remove`` drops listed samples (REGENIE ``--remove``);
        ``extract``/``exclude`` select the step-1 variants by ID.
    bsize
        Variants per genotype block (REGENIE ``--bsize``); blocks never span chromosomes.
    cv_folds
        K of K-fold cross-validation (REGENIE ``--cv``, default 5) unless ``loocv``.
    loocv
        Leave-one-out cross-validation (REGENIE ``--loocv``); forced for the
        whole run when a trait is binary and fewer than 5,000 samples are
        analysed, as REGENIE does.
    level0_h2, level1_h2
        Assumed heritabilities of the shrinkage grids (REGENIE's ``--l0``/``--l1`` grids).
    level1
        ``"blocks"`` (REGENIE): level 1 stacks every block's level-0
        predictions, one coefficient per block and shrinkage. ``"pooled"``:
        one coefficient per level-0 shrinkage, shared by all blocks (level 1
        stacks each shrinkage's predictions summed over the blocks, the
        block-wise approximation of the whole-genome ridge at that
        shrinkage). With many relatives every block's prediction carries the
        same kinship signal, and B x L free coefficients add noise to the LOCO
        residuals that L shared ones do not (benchmarks/README.md, issue 22);
        with few, large loci the per-block weights fit better.

    Returns
    -------
    Step1Result

    Raises
    ------
    InputError
        As :func:`crosscohort.tre.association.build_designs`; no variant selected;
        a block size below 1; fewer samples than folds.
    """
    log = log if log is not None else sys.stderr
    if bsize < 1:
        raise InputError(f"--bsize must be at least 1; got {bsize}")
    study = read_study(bfiles, pheno, pheno_names=pheno_names, covar=covar, covar_names=covar_names, keep=keep,
                       remove=remove, trait_types=trait_types, cohort=cohort, log=log)
    geno, designs, cohort = study.genotypes, list(study.designs), study.cohort
    rows = np.unique(np.concatenate([d.rows for d in designs]))
    n = rows.size
    masks = [np.isin(rows, d.rows) for d in designs]
    x = _covariate_matrix(geno.samples, study.tables.covar, study.tables.covar_names, rows, study.covar_sources)
    q = _orthonormal(x)
    k = q.shape[1]

    # Phenotypes: residualised on the covariates over each trait's own samples, scaled to
    # unit residual variance (N - K denominator); zero where missing.
    y_std = np.zeros((n, len(designs)))
    for j, (d, m) in enumerate(zip(designs, masks, strict=True)):
        qm = _orthonormal(x[m])
        r = d.y - qm @ (qm.T @ d.y)
        y_std[m, j] = r / (np.linalg.norm(r) / np.sqrt(m.sum() - qm.shape[1]))

    binary = [d.trait_type == "binary" for d in designs]
    use_loocv = loocv
    if any(binary) and not loocv and n < LOOCV_BELOW:
        use_loocv = True
        print(f"wgr: {n} analysed samples (< {LOOCV_BELOW}) with a binary trait: leave-one-out CV "
              f"instead of {cv_folds}-fold, as REGENIE", file=log)
    sizes = None if use_loocv else R.fold_sizes(n, cv_folds)

    vidx = _variant_selection(geno, extract, exclude, log)
    codes = _chromosome_codes(geno.variants.get_column("chrom")[vidx], "the genotype variants").to_numpy()
    blocks = _chrom_blocks(codes, bsize)
    m_total = int(vidx.size)
    lam = R.level0_shrinkage(tuple(level0_h2), m_total)
    n_l0 = lam.size
    print(f"wgr: step 1 on {n} samples, {m_total} variants in {len(blocks)} blocks of up to {bsize}; "
          f"{'leave-one-out' if use_loocv else f'{cv_folds}-fold'} CV; {len(designs)} trait(s)", file=log)
    if level1 not in ("blocks", "pooled"):
        raise InputError(f"level-1 stacking must be 'blocks' or 'pooled'; got {level1!r}")
    pooled = level1 == "pooled"
    chroms = sorted(set(int(c) for c, _ in blocks))
    if pooled:  # raw level-0 predictions summed per chromosome: (n, C, L) per trait
        feats = [np.zeros((n, len(chroms), n_l0)) for _ in designs]
    else:
        feats = [np.zeros((n, len(blocks) * n_l0)) for _ in designs]
    ledger = Ledger(stage="wgr", cohort=cohort, unit="variants", n_in=m_total)
    n_const = 0
    block_chrom = np.empty(len(blocks), dtype=np.int64)
    mask_matrix = np.column_stack(masks)
    # float32: one value per step-1 variant and trait, for the medians only.
    no_loco: list[np.ndarray] = []
    for b, (chrom, pos) in enumerate(blocks):
        # In place where possible: one samples x bsize array is the block's memory.
        g = geno.read(vidx[pos], rows)
        missing = np.isnan(g)
        n_obs = g.shape[0] - missing.sum(axis=0)
        mean = np.where(n_obs > 0, np.nansum(g, axis=0) / np.maximum(n_obs, 1), 0.0)
        np.copyto(g, np.broadcast_to(mean, g.shape), where=missing)
        del missing
        g -= q @ (q.T @ g)
        sd = np.linalg.norm(g, axis=0) / np.sqrt(n - k)
        ok = sd > 1e-6
        n_const += int((~ok).sum())
        if not ok.all():
            g = g[:, ok]
        g /= sd[ok]
        block_chrom[b] = chrom
        if g.shape[1] == 0:
            continue
        no_loco.append(marginal_chi2(g, y_std, mask_matrix).astype(np.float32))
        pred = R.level0_loocv(g, y_std, lam) if use_loocv else R.level0_kfold(g, y_std, sizes, lam)
        for j, m in enumerate(masks):
            if pooled:
                feats[j][:, chroms.index(chrom), :] += pred[:, :, j] * m[:, None]
            else:
                feats[j][:, b * n_l0 : (b + 1) * n_l0] = R.standardise_predictions(pred[:, :, j], m)
    ledger.remove("no_variance_after_covariates", n_const)
    ledger.n_kept = m_total - n_const
    ledger.check()
    if n_const:
        print(f"wgr: {n_const} variants constant after removing the covariates: left out of step 1", file=log)

    groups = [np.concatenate([np.arange(b * n_l0, (b + 1) * n_l0) for b in np.flatnonzero(block_chrom == c)])
              for c in chroms]
    summaries: list[TraitSummary] = []
    loco: dict[str, np.ndarray] = {}
    stats = np.concatenate(no_loco) if no_loco else np.full((0, len(designs)), np.nan)
    del no_loco
    for j, (d, m) in enumerate(zip(designs, masks, strict=True)):
        if pooled:
            xj, groups = _pooled_features(feats[j], m)
            tau = R.level1_shrinkage(tuple(level1_h2), n_l0, binary=binary[j])
        else:
            xj = feats[j]
            tau = R.level1_shrinkage(tuple(level1_h2), len(blocks) * n_l0, binary=binary[j])
        if binary[j]:
            null = K.logistic_model(d.y, d.design)
            if not null.converged:
                raise InputError(f"trait {d.name!r}: the covariates-only logistic model did not converge in "
                                 f"{null.iterations} iterations (covariates separate cases from controls?)")
            offset = d.design @ null.beta_null
            try:
                if use_loocv:
                    fit = R.level1_logistic_loocv(xj[m], d.y, offset, tau, groups[m] if pooled else groups)
                    parts = np.zeros((n, len(chroms)))
                    parts[m] = fit.chrom_pred
                else:
                    y01 = np.zeros(n)
                    y01[m] = d.y
                    off = np.zeros(n)
                    off[m] = offset
                    fit = R.level1_logistic_kfold(xj, y01, off, m, sizes, tau, groups)
                    parts = fit.chrom_pred
            except (ArithmeticError, np.linalg.LinAlgError) as exc:
                raise InputError(f"trait {d.name!r}: level-1 logistic ridge failed ({exc}); REGENIE writes no "
                                 "LOCO predictions for such a trait: analyse it with glm, or try --loocv") from None
        elif use_loocv:
            fit = R.level1_linear_loocv(xj, y_std[:, j], m, tau, groups)
            parts = fit.chrom_pred
        else:
            fit = R.level1_linear_kfold(xj, y_std[:, j], m, sizes, tau, groups)
            parts = fit.chrom_pred
        total = parts.sum(axis=1)
        out = np.repeat(total[:, None], RF.N_CHROM, axis=1)
        for ci, c in enumerate(chroms):
            if 1 <= c <= RF.N_CHROM:
                out[:, c - 1] -= parts[:, ci]
        out[~m] = np.nan
        loco[d.name] = out
        summaries.append(TraitSummary(d.name, d.trait_type, int(m.sum()), fit.best, tuple(level1_h2),
                                      tuple(float(t) for t in tau), tuple(float(v) for v in fit.criterion),
                                      tuple(float(v) for v in fit.r2), _lambda(stats[:, j])))
        print(f"wgr: trait {d.name}: level-1 h2 {level1_h2[fit.best]} chosen; CV "
              f"{'MSE' if not binary[j] else '-logLik/N'} {fit.criterion[fit.best]:.4f}, "
              f"R2 {fit.r2[fit.best]:.4f}", file=log)
    fam = geno.samples
    keys = tuple(RF.sample_key(f, i) for f, i in zip(fam.get_column("fid").to_numpy()[rows],
                                                     fam.get_column("iid").to_numpy()[rows], strict=True))
    return Step1Result(keys, tuple(summaries), loco, m_total, len(blocks), bsize,
                       "loocv" if use_loocv else f"{cv_folds}-fold", tuple(level0_h2),
                       tuple(float(v) for v in lam), (*(d.ledger for d in designs), ledger), level1)


def _pooled_features(per_chrom: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Level-1 features of pooled stacking: each shrinkage's prediction summed over all blocks, standardised
    over the trait's samples, and its per-chromosome parts on the same scale (they sum to it).

    Parameters
    ----------
    per_chrom
        (n, C, L) level-0 predictions summed over each chromosome's blocks (0 where the trait is missing).
    mask
        (n,) the trait's samples.

    Returns
    -------
    tuple
        (n, L) features and (n, C, L) per-chromosome parts (0 where the trait is missing).
    """
    m = mask.astype(np.float64)
    n_eff = float(mask.sum())
    part_mean = (per_chrom * m[:, None, None]).sum(axis=0) / n_eff  # (C, L)
    parts = (per_chrom - part_mean[None]) * m[:, None, None]
    total = parts.sum(axis=1)
    sd = np.sqrt((total * total).sum(axis=0) / (n_eff - 1.0))
    sd = np.where(sd > 0, sd, 1.0)
    return total / sd, parts / sd


def _lambda(chi2_values: np.ndarray) -> float:
    """λGC of 1-df statistics (NaN ignored): median over the χ²₁ median."""
    from crosscohort.contract.stats import CHI2_1_MEDIAN

    x = chi2_values[np.isfinite(chi2_values)]
    return float(np.median(x.astype(float)) / CHI2_1_MEDIAN) if x.size else float("nan")


def write_step1(result: Step1Result, out: str | Path, *, gz: bool = False) -> dict[str, Path]:
    """Write ``OUT_pred.list``, ``OUT_<k>.loco[.gz]`` per trait and ``OUT.wgr.json`` (the step-1 summary).

    Returns
    -------
    dict
        ``pred_list``, ``summary`` and ``loco:<trait>`` paths.
    """
    from crosscohort.runtime.atomic import write_json

    out = str(out)
    paths: dict[str, Path] = {}
    loco_paths: dict[str, Path] = {}
    for i, t in enumerate(result.traits, start=1):
        p = Path(f"{out}_{i}.loco" + (".gz" if gz else ""))
        RF.write_loco(p, result.keys, result.loco[t.name])
        loco_paths[t.name] = p
        paths[f"loco:{t.name}"] = p
    paths["pred_list"] = RF.write_pred_list(f"{out}_pred.list", loco_paths)
    paths["summary"] = write_json(f"{out}.wgr.json", result.summary())
    return paths


# ------------------------------------------------------------------ step 2


def _loco_for(designs: Sequence[TraitDesign], genotypes: Genotypes, pred: str | Path
              ) -> dict[str, np.ndarray]:
    """Trait -> (n_genotyped, 23) LOCO predictions from a ``_pred.list`` (NaN where absent)."""
    listed = RF.read_pred_list(pred)
    missing = [d.name for d in designs if d.name not in listed]
    if missing:
        raise InputError(f"--pred {pred}: no LOCO predictions for trait(s) {missing}; it lists {list(listed)}")
    fam = genotypes.samples
    keys = [RF.sample_key(f, i) for f, i in zip(fam.get_column("fid").to_list(), fam.get_column("iid").to_list(),
                                                strict=True)]
    return {d.name: RF.read_loco(listed[d.name]).aligned(keys) for d in designs}


def _with_loco(d: TraitDesign, loco: np.ndarray, log: TextIO) -> TraitDesign:
    """The design restricted to samples that have LOCO predictions (counted in its ledger)."""
    has = ~np.isnan(loco[d.rows]).any(axis=1)
    if has.all():
        return d
    led = Ledger(stage=d.ledger.stage, cohort=d.ledger.cohort, trait=d.ledger.trait, unit=d.ledger.unit,
                 n_in=d.ledger.n_in, removed=dict(d.ledger.removed))
    led.remove("no_loco_prediction", int((~has).sum()))
    led.n_kept = int(has.sum())
    led.check()
    print(f"assoc: trait {d.name}: {int((~has).sum())} samples without a LOCO prediction left out", file=log)
    if not has.any():
        raise InputError(f"trait {d.name!r}: no analysed sample has a LOCO prediction (FID_IID mismatch with --pred?)")
    return TraitDesign(d.name, d.trait_type, d.rows[has], d.y[has], d.design[has], d.covariate_names, led)


def run_step2(
    bfiles: Sequence,
    pheno: str | Path,
    *,
    pred: str | Path,
    pheno_names: Sequence[str] | None = None,
    covar: Sequence[str | Path] = (),
    covar_names: Sequence[str] | None = None,
    keep: str | Path | None = None,
    remove: str | Path | None = None,
    extract: str | Path | None = None,
    trait_types: Mapping[str, TraitType] | None = None,
    chunk_size: int = 1000,
    part: tuple[int, int] | None = None,
    max_vif: float = 50.0,
    correction: str | None = "firth",
    pthresh: float = 0.05,
    relatives: str | Path | None = None,
    cohort: str | None = None,
    missing: str = "drop",
    log: TextIO | None = None,
) -> AssocResult:
    """Step 2: association of every variant with the step-1 LOCO predictions as offset.

    Parameters mirror :func:`crosscohort.tre.association.run_assoc`, plus
    ``pred`` (a ``_pred.list``, ours or REGENIE's), ``remove`` (samples to
    drop), ``correction`` (``"firth"`` = approximate Firth, ``"firth-exact"``
    = exact Firth with the LOCO offset, ``"spa"``, or None)
    and ``pthresh``: binary-trait rows whose score p-value is below it are
    corrected (REGENIE ``--pThresh``, default 0.05). ``relatives``: a table
    of related pairs with their kinship (plink2 ``.kin0`` columns, e.g.
    ``crosscohort qc``'s ``king.tsv``): quantitative traits' statistics are
    then calibrated for the correlation of relatives' LOCO residuals
    (:func:`relatives_calibration`). ``missing="fill"``: each missing call
    is filled as :func:`crosscohort.tre.association.run_assoc` fills it
    (hard call of the mean over the ``keep`` minus ``remove`` samples), for
    a cohort that releases the sums of ``crosscohort sufficient`` beside.

    Returns
    -------
    AssocResult
        Tables in the layout of ``crosscohort assoc`` (binary traits: ``firth``
        True on corrected rows, SPA or Firth).
    """
    log = log if log is not None else sys.stderr
    if correction is not None and correction not in CORRECTIONS:
        raise InputError(f"correction must be one of {list(CORRECTIONS)} or none; got {correction!r}")
    if not 0 < pthresh <= 1:
        raise InputError(f"--pThresh must be in (0, 1]; got {pthresh}")
    if missing not in MISSING_MODES:
        raise InputError(f"--missing must be one of {list(MISSING_MODES)}; got {missing!r}")
    study = read_study(bfiles, pheno, pheno_names=pheno_names, covar=covar, covar_names=covar_names, keep=keep,
                       remove=remove, trait_types=trait_types, cohort=cohort, log=log)
    geno, cohort = study.genotypes, study.cohort
    ref = geno.sample_index(study.keep) if missing == "fill" else None
    loco = _loco_for(study.designs, geno, pred)
    designs = [_with_loco(d, loco[d.name], log) for d in study.designs]
    vidx = select_variants(geno, extract=extract, part=part, log=log)
    pairs = read_relatives(relatives, geno, log=log) if relatives is not None else None
    if pairs is not None and any(d.trait_type == "binary" for d in designs):
        print("assoc: --relatives calibrates quantitative traits only; binary traits' tests are not rescaled",
              file=log)
    labels = geno.variants.get_column("chrom")[vidx]
    codes = _chromosome_codes(labels, "the genotype variants").to_numpy()
    tables: dict[str, pl.DataFrame] = {}
    for d in designs:
        pieces: list[pl.DataFrame] = []
        order: list[np.ndarray] = []
        for c in sorted(set(codes.tolist())):
            pos = np.flatnonzero(codes == c)
            col = c - 1 if 1 <= c <= RF.N_CHROM else None
            off = loco[d.name][:, col] if col is not None else np.zeros(geno.n_samples)
            if d.trait_type == "quantitative":
                pieces.append(_linear_with_offset(geno, d, off, vidx[pos], chunk_size=chunk_size,
                                                  max_vif=max_vif, pairs=pairs, chrom=c, fill_reference=ref,
                                                  log=log))
            else:
                pieces.append(_binary_with_offset(geno, d, off, vidx[pos], labels[pos].str.to_uppercase()
                                                  .is_in(list(X_LABELS)).any(), chunk_size=chunk_size,
                                                  correction=correction, pthresh=pthresh, fill_reference=ref,
                                                  log=log))
            order.append(pos)
        table = pl.concat(pieces, how="vertical_relaxed")
        back = np.argsort(np.concatenate(order), kind="stable")
        tables[d.name] = table[back]
    ledgers: list[Ledger] = [d.ledger for d in designs]
    for d in designs:
        t = tables[d.name]
        led = variant_ledger(t, cohort=cohort, trait=d.name)
        ledgers.append(led)
        n_corr = int(t.get_column("firth").sum()) if "firth" in t.columns else 0
        print(f"assoc: trait {d.name}: {led.n_kept} of {led.n_in} variants tested with the LOCO offset"
              + (f" ({n_corr} {correction}-corrected below p = {pthresh:g})" if n_corr else ""), file=log)
    return AssocResult(tables, tuple(designs), tuple(ledgers))


def _linear_with_offset(geno: Genotypes, d: TraitDesign, loco: np.ndarray, vidx: np.ndarray, *,
                        chunk_size: int, max_vif: float, pairs: tuple[np.ndarray, ...] | None = None,
                        chrom: int = 0, fill_reference: np.ndarray | None = None, log: TextIO) -> pl.DataFrame:
    """The ``--glm`` linear scan of y minus the LOCO prediction on its scale (residual SD of y on the covariates),
    its statistics divided by the relatives' calibration factor when related pairs are given."""
    r = d.y - d.design @ np.linalg.lstsq(d.design, d.y, rcond=None)[0]
    scale = np.linalg.norm(r) / np.sqrt(d.n - np.linalg.matrix_rank(d.design))
    shifted = replace(d, y=d.y - scale * loco[d.rows])
    table = scan(geno, [shifted], variant_index=vidx, chunk_size=chunk_size, max_vif=max_vif,
                 fill_reference=fill_reference, log=log)[d.name]
    if pairs is None:
        return table
    resid = shifted.y - d.design @ np.linalg.lstsq(d.design, shifted.y, rcond=None)[0]
    pos = np.full(geno.n_samples, -1, dtype=np.int64)
    pos[d.rows] = np.arange(d.rows.size)
    gamma = relatives_calibration(resid, pos[pairs[0]], pos[pairs[1]], pairs[2])
    print(f"assoc: trait {d.name}, chromosome {chrom}: relatives' calibration factor {gamma:.4f}", file=log)
    se = table.get_column("standard_error").to_numpy() * np.sqrt(gamma)
    t = table.get_column("beta").to_numpy() / se
    df = table.get_column("residual_df").to_numpy().astype(np.float64)
    nlp = neg_log10_p_from_t(t, df)
    return table.with_columns(float_column("standard_error", se), float_column("p_value", 10.0 ** -nlp),
                              float_column("neg_log_10_p_value", nlp))


def relatives_calibration(resid: np.ndarray, i: np.ndarray, j: np.ndarray, kinship: np.ndarray) -> float:
    """The factor by which relatives' correlated LOCO residuals change a variant test's variance.

    Retrospectively (the residual ``r`` fixed, a null variant's standardised
    genotypes ``x`` random, correlated between relatives as their
    relationship ``Phi``, ``Phi_ij = 2 kinship_ij``), ``Var(x'r) =
    r' Phi r``, while the linear test assumes ``r'r``. So

        gamma = r' Phi r / r'r = 1 + 2 sum_{pairs i<j} 2 kinship_ij r_i r_j / r'r,

    and dividing the test's chi2 by gamma (its SE times sqrt(gamma)) makes it
    calibrated. A LOCO prediction informed by relatives' phenotypes leaves
    their residuals negatively correlated: gamma < 1, the test deflated
    otherwise (the GRAMMAR bias; BOLT-LMM calibrates its retrospective
    statistic by such a constant). Pairs below the table's kinship threshold
    are taken as unrelated.

    Parameters
    ----------
    resid
        (n,) LOCO residuals of the analysed samples, residualised on the covariates.
    i, j
        Positions of each pair's two samples in ``resid`` (-1: not analysed; such pairs are left out).
    kinship
        Kinship coefficient of each pair.
    """
    ok = (i >= 0) & (j >= 0) & (i != j)
    rr = float(resid @ resid)
    gamma = 1.0 + 4.0 * float(np.sum(kinship[ok] * resid[i[ok]] * resid[j[ok]])) / rr
    if not gamma > 0:
        raise InputError(f"relatives' calibration factor is not positive ({gamma:g}): kinships above 0.5 "
                         "or a pair table that does not describe these samples?")
    return gamma


def read_relatives(path: str | Path, genotypes: Genotypes, *, log: TextIO) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Related pairs of a plink2 ``.kin0``-layout table as genotype rows and kinship.

    Columns (tab- or space-separated, header first): ``#FID1``/``FID1``,
    ``IID1``, ``FID2``, ``IID2``, ``KINSHIP`` (others ignored). Pairs with a
    sample not among the genotype samples are counted in the log and left out.

    Raises
    ------
    InputError
        A missing column, a kinship that is not a number in [-1, 1], naming the file and line.
    """
    path = Path(path)
    lines = read_text(path, "--relatives pair table").splitlines()
    if not lines:
        raise InputError(f"{path}: empty (the --relatives pair table needs a header)")
    head = [h.lstrip("#").upper() for h in lines[0].split()]
    need = ("FID1", "IID1", "FID2", "IID2", "KINSHIP")
    missing = [c for c in need if c not in head]
    if missing:
        raise InputError(f"{path}, line 1: column(s) {missing} missing (plink2 .kin0 header: "
                         "#FID1 IID1 FID2 IID2 ... KINSHIP)")
    col = {c: head.index(c) for c in need}
    fam = genotypes.samples
    row = {(f, i): k for k, (f, i) in enumerate(zip(fam.get_column("fid").to_list(),
                                                     fam.get_column("iid").to_list(), strict=True))}
    a: list[int] = []
    b: list[int] = []
    kin: list[float] = []
    unknown = 0
    for lineno, line in enumerate(lines[1:], start=2):
        f = line.split()
        if not f:
            continue
        if len(f) < len(head):
            raise InputError(f"{path}, line {lineno}: {len(f)} fields, the header has {len(head)}")
        try:
            k = float(f[col["KINSHIP"]])
        except ValueError:
            raise InputError(f"{path}, line {lineno}: KINSHIP {f[col['KINSHIP']]!r} is not a number") from None
        if not -1.0 <= k <= 1.0:
            raise InputError(f"{path}, line {lineno}: KINSHIP {k:g} outside [-1, 1]")
        p1 = row.get((f[col["FID1"]], f[col["IID1"]]))
        p2 = row.get((f[col["FID2"]], f[col["IID2"]]))
        if p1 is None or p2 is None:
            unknown += 1
            continue
        a.append(p1)
        b.append(p2)
        kin.append(k)
    print(f"assoc: --relatives {path}: {len(kin)} related pairs"
          + (f"; {unknown} pairs with a sample not genotyped, left out" if unknown else ""), file=log)
    return np.array(a, dtype=np.int64), np.array(b, dtype=np.int64), np.array(kin)


def _exact_firth_rows(d: TraitDesign, off: np.ndarray, null: O.OffsetNull, g: np.ndarray, todo: np.ndarray,
                      beta: np.ndarray, se: np.ndarray, p_value: np.ndarray, nlp: np.ndarray,
                      err: np.ndarray) -> None:
    """Exact Firth with the LOCO offset for the rows ``todo`` (dosages ``g``, n x len(todo)), in place.

    REGENIE ``--firth`` (without ``--approx``): ``logit p = offset + C gamma +
    g b`` fitted by Firth-penalised likelihood; the statistic is the penalised
    likelihood-ratio test against the fit with ``b = 0`` under the same
    design's penalty; BETA the penalised estimate, SE the Wald SE from the
    unpenalised information at it (REGENIE's default; not ``--firth-se``).
    A row whose full or null fit does not converge is NA with
    ``FIRTH_CONVERGE_FAIL`` (no score-test p-value below pThresh is released
    uncorrected).
    """
    obs = np.ones(g.shape, dtype=bool)
    full = F.firth_chunk(d.design, d.y, g, obs, start=null.gamma, offset=off)
    rest = F.firth_chunk(d.design, d.y, g, obs, start=null.gamma, offset=off, fit_dosage=False)
    ok = full.converged & rest.converged
    lrt = np.maximum(2.0 * (full.penalised_loglik - rest.penalised_loglik), 0.0)
    beta[todo] = np.where(ok, full.beta, np.nan)
    se[todo] = np.where(ok, full.standard_error, np.nan)
    with np.errstate(invalid="ignore"):
        p_value[todo] = np.where(ok, p_from_chi2(lrt, 1), np.nan)
        nlp[todo] = np.where(ok, neg_log10_p_from_z(np.sign(full.beta) * np.sqrt(lrt)), np.nan)
    err[todo[~ok]] = FIRTH_CONVERGE_FAIL


def _binary_with_offset(geno: Genotypes, d: TraitDesign, loco: np.ndarray, vidx: np.ndarray, on_x: bool, *,
                        chunk_size: int, correction: str | None, pthresh: float,
                        fill_reference: np.ndarray | None = None, log: TextIO) -> pl.DataFrame:
    """Score test with the LOCO offset, corrected below ``pthresh`` (one chromosome's variants)."""
    if on_x:
        d = chrx_designs([d], geno.samples.get_column("sex").to_numpy(), log=log)[0]
    off = loco[d.rows]
    try:
        null = O.null_fit(d.y, d.design, off)
    except (ArithmeticError, np.linalg.LinAlgError):
        raise InputError(f"trait {d.name!r}: the covariates-plus-LOCO logistic null model did not converge") from None
    firth_off = None
    cols: dict[str, list[np.ndarray]] = {}

    def put(**kw: np.ndarray) -> None:
        for k_, v in kw.items():
            cols.setdefault(k_, []).append(v)

    rows = d.rows if fill_reference is None else np.union1d(d.rows, fill_reference)
    step = read_step(chunk_size, rows.size)
    for _vi, dos in geno.chunks(vidx, step, rows):
        if fill_reference is not None:  # --missing fill, over the reference samples (as run_assoc)
            # Imported here: crosscohort.tre.sufficient imports this package.
            from crosscohort.tre.sufficient import fill_missing, hard_call_fill

            dos = fill_missing(dos, hard_call_fill(dos[np.searchsorted(rows, fill_reference)]))
            dos = dos[np.searchsorted(rows, d.rows)]
        chunk = K.prepare_chunk(dos, cases=d.y)
        beta, se, stat, gt = O.score_chunk(null, chunk.centred)
        m = dos.shape[1]
        p_value = p_from_chi2(stat, 1)
        z = np.sign(beta) * np.sqrt(stat)
        nlp = neg_log10_p_from_z(z)
        err = np.full(m, None, dtype=object)
        err[chunk.constant] = K.CONST_ALLELE
        corrected = np.zeros(m, dtype=bool)
        todo = np.flatnonzero((p_value < pthresh) & ~chunk.constant) if correction else np.empty(0, int)
        if todo.size and correction == "firth":
            if firth_off is None:
                try:
                    firth_off = off + d.design @ O.firth_null(null)
                except (ArithmeticError, np.linalg.LinAlgError):
                    firth_off = False  # no Firth null fit: every row to correct fails below
                    print(f"assoc: trait {d.name}: the Firth-penalised null model did not converge; rows to "
                          f"correct are NA ({FIRTH_CONVERGE_FAIL})", file=log)
            for j in todo:
                b, s, lrt, ok = (O.firth_approx(d.y, firth_off, gt[:, j]) if firth_off is not False
                                 else (np.nan, np.nan, np.nan, False))
                corrected[j] = True
                if ok:
                    beta[j], se[j] = b, s
                    p_value[j] = p_from_chi2(lrt, 1)
                    nlp[j] = neg_log10_p_from_z(np.array([np.sign(b) * np.sqrt(lrt)]))[0]
                else:  # no score-test p-value below pThresh is released uncorrected
                    beta[j] = se[j] = p_value[j] = nlp[j] = np.nan
                    err[j] = FIRTH_CONVERGE_FAIL
        elif todo.size and correction == "firth-exact":
            _exact_firth_rows(d, off, null, chunk.centred[:, todo], todo, beta, se, p_value, nlp, err)
            corrected[todo] = True
        elif todo.size and correction == "spa":
            u = beta / (se * se)
            v = 1.0 / (se * se)
            pv = O.spa_pvalues(null, gt[:, todo], u[todo], v[todo])
            p_value[todo] = pv
            nlp[todo] = neg_log10_p(pv)
            corrected[todo] = True
        for arr in (beta, se, p_value, nlp):
            arr[chunk.constant] = np.nan
        n_obs = chunk.n_obs
        alt = chunk.alt_count
        with np.errstate(invalid="ignore", divide="ignore"):
            eaf = np.where(n_obs > 0, alt / (2.0 * n_obs), np.nan)
        alt_is_minor = alt <= 2.0 * n_obs - alt
        n_cases, alt_cases = chunk.n_cases, chunk.alt_cases
        n_controls = n_obs - n_cases
        alt_controls = alt - alt_cases
        put(beta=beta, standard_error=se, effect_allele_frequency=eaf, p_value=p_value,
            neg_log_10_p_value=nlp, n=n_obs.astype(np.int64),
            n_cases=np.rint(n_cases).astype(np.int64), n_controls=np.rint(n_controls).astype(np.int64),
            mac=np.minimum(alt, 2.0 * n_obs - alt),
            mac_cases=np.where(alt_is_minor, alt_cases, 2.0 * n_cases - alt_cases),
            mac_controls=np.where(alt_is_minor, alt_controls, 2.0 * n_controls - alt_controls),
            residual_df=(n_obs - d.design.shape[1] - 1).astype(np.int64), error_code=err, firth=corrected)
    bim = geno.variants[vidx]
    base = pl.DataFrame({
        "chromosome": _chromosome_codes(bim.get_column("chrom"), "the genotype variants"),
        "base_pair_location": bim.get_column("pos"),
        "effect_allele": bim.get_column("a1"),
        "other_allele": bim.get_column("a2"),
        "rsid": bim.get_column("id"),
    }).with_columns(variant_id(pl.col("chromosome"), pl.col("base_pair_location"), pl.col("other_allele"),
                               pl.col("effect_allele")))
    stats: dict[str, pl.Series] = {}
    for name, parts in cols.items():
        arr = np.concatenate(parts) if parts else np.empty(0)
        if name == "error_code":
            stats[name] = pl.Series(name, arr.tolist(), dtype=pl.String)
        elif name in ("n", "n_cases", "n_controls", "residual_df"):
            stats[name] = pl.Series(name, arr, dtype=pl.Int64)
        elif name == "firth":
            stats[name] = pl.Series(name, arr, dtype=pl.Boolean)
        else:
            stats[name] = float_column(name, arr)
    table = pl.concat([base, pl.DataFrame(list(stats.values()))], how="horizontal")
    order = ["chromosome", "base_pair_location", "effect_allele", "other_allele", "beta", "standard_error",
             "effect_allele_frequency", "p_value", "neg_log_10_p_value", "variant_id", "rsid", "n", "n_cases",
             "n_controls", "mac", "mac_cases", "mac_controls", "residual_df", "error_code", "firth"]
    return table.select([c for c in order if c in table.columns])

