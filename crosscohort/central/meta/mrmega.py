"""MR-MEGA: meta-regression of cohorts' effects on axes of genetic variation (Mägi et al. 2017).

Trans-ancestry meta-analysis in three steps, in the order of the paper:

1. **Axes of genetic variation** from the cohorts' effect allele frequencies
   (:func:`axis_marker_rows`, :func:`eaf_distances`, :func:`mds_axes`):
   variants with an EAF in every cohort and MAF > 1 % in all, one per 1 Mb
   bin; the mean squared EAF difference of each pair of cohorts; classical
   multidimensional scaling of that matrix (double centring,
   eigendecomposition), whose first T coordinates are the axes.
2. **Per variant, a weighted regression** of the cohorts' betas on the axes,
   weights 1/SE^2 (:func:`mrmega_arrays`): intercept and T slopes with their
   SEs; the association chi-square (T+1 df), the ancestry-correlated
   heterogeneity chi-square (T df), the residual heterogeneity chi-square
   (K-T-1 df) and the log Bayes factor.
3. **Genomic control**: of each cohort's SEs (MR-MEGA ``--gc``, the same rule
   as the IVW meta-analysis') and of the association chi-squares on output
   (``--gco``, :func:`gco_lambda`).

Everything here is pure numpy on dense arrays; the bookkeeping (stacking
cohorts, passes over chromosomes, output columns) is the meta driver's
(:mod:`crosscohort.central.meta.ivw`, :mod:`crosscohort.central.meta.stream`).

Where this departs from the C++ original, and why: p-values are computed in
log space (:func:`crosscohort.contract.stats.neg_log10_p_from_chi2`), where the
original prints p = 0 once the chi-square exceeds ~1400; fewer than T+3 cohorts is refused with an
error (:func:`check_axes`) where the original writes every row as
``SmallCohortCount`` and exits 0; the sign of each axis is fixed (its
largest coordinate is positive) where an eigensolver's is arbitrary.
MR-MEGA's marker numbering skips the very first marker of the input as "no
marker" (a bin pointer of 0); that accident is not reproduced.

References
----------
Mägi R, Horikoshi M, Sofer T, et al. (2017) Trans-ethnic meta-regression of
genome-wide association studies accounting for ancestry increases power for
discovery and improves fine-mapping resolution. Hum Mol Genet 26:3639-3650.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crosscohort.central.meta._batched_wls import batched_wls
from crosscohort.contract.errors import ConfigError, InputError
from crosscohort.contract.stats import neg_log10_p_from_chi2, p_and_neg_log10_p_from_chi2

__all__ = [
    "AXIS_BIN_BP",
    "AXIS_MIN_MAF",
    "DEFAULT_AXES",
    "Axes",
    "MrMegaArrays",
    "MrMegaModel",
    "axes_from_eaf",
    "axis_marker_rows",
    "check_axes",
    "eaf_distances",
    "gco_lambda",
    "mds_axes",
    "mrmega_arrays",
    "mrmega_columns",
]

#: Axes of genetic variation by default. MR-MEGA's own default is 4, which
#: needs at least 7 cohorts; 2 axes fit the 5 cohorts of the demo.
DEFAULT_AXES = 2
#: A marker for the axes has MAF above this in every cohort (MR-MEGA: 1 %).
AXIS_MIN_MAF = 0.01
#: One marker per bin of this many base pairs (MR-MEGA: 1 Mb).
AXIS_BIN_BP = 1_000_000
#: MR-MEGA's bins: chromosomes 1-23 (X = 23), positions below 299 Mb.
_AXIS_CHROMOSOMES = (1, 23)
_AXIS_BINS = 299


def check_axes(n_cohorts: int, n_axes: int) -> None:
    """Refuse a regression on ``n_axes`` axes that ``n_cohorts`` cohorts cannot support.

    Raises
    ------
    ConfigError
        When ``n_axes < 1`` or ``n_cohorts < n_axes + 3``: T axes and an
        intercept leave K - T - 1 degrees of freedom for the residual
        heterogeneity, and MR-MEGA requires at least 2.
    """
    if n_axes < 1:
        raise ConfigError(f"MR-MEGA needs at least 1 axis of genetic variation; got --pcs {n_axes}")
    if n_cohorts < n_axes + 3:
        raise ConfigError(
            f"MR-MEGA with T = {n_axes} axes needs at least T + 3 = {n_axes + 3} cohorts "
            f"(K - T - 1 >= 2 residual degrees of freedom); got K = {n_cohorts}. "
            f"Use --pcs {max(n_cohorts - 3, 1)} or fewer"
            + ("" if n_cohorts >= 4 else ", or another method: MR-MEGA needs 4 cohorts at least")
        )


def axis_marker_rows(
    chromosome: np.ndarray, position: np.ndarray, eaf: np.ndarray, *, min_maf: float = AXIS_MIN_MAF
) -> np.ndarray:
    """Rows of the markers MR-MEGA computes the axes from: the last eligible one of each 1 Mb bin.

    Parameters
    ----------
    chromosome, position
        Per variant, shape ``(m,)``, sorted by chromosome then position (as
        the meta-analysis stacks them); NaN or negative for marker-name rows.
    eaf
        Effect allele frequencies, shape ``(k cohorts, m)``; NaN = missing.
    min_maf
        A marker is eligible when every cohort has an EAF strictly between
        ``min_maf`` and ``1 - min_maf``, its chromosome is 1-23 and its
        position is positive and below 299 Mb (MR-MEGA's bins).

    Returns
    -------
    numpy.ndarray
        Row indices (int64, ascending), one per (chromosome, position // 1 Mb)
        bin holding an eligible marker: the last eligible one in row order,
        as MR-MEGA keeps the last marker it meets in each bin.
    """
    chrom = np.asarray(chromosome, dtype=np.float64)
    pos = np.asarray(position, dtype=np.float64)
    eaf = np.asarray(eaf, dtype=np.float64)
    if eaf.ndim != 2 or eaf.shape[1] != chrom.size or pos.size != chrom.size:
        raise ValueError(f"eaf must be (k, m) with m = {chrom.size}; got {eaf.shape}")
    with np.errstate(invalid="ignore"):
        common = ((eaf > min_maf) & (eaf < 1.0 - min_maf)).all(axis=0)
        bins = np.floor(pos / AXIS_BIN_BP)
        placed = (
            (chrom >= _AXIS_CHROMOSOMES[0])
            & (chrom <= _AXIS_CHROMOSOMES[1])
            & (pos > 0)
            & (bins < _AXIS_BINS)
        )
    rows = np.flatnonzero(common & placed)
    if rows.size == 0:
        return rows.astype(np.int64)
    key = chrom[rows].astype(np.int64) * _AXIS_BINS + bins[rows].astype(np.int64)
    last = np.r_[key[1:] != key[:-1], True]
    return rows[last].astype(np.int64)


def eaf_distances(eaf: np.ndarray) -> np.ndarray:
    """Mean squared EAF difference of every pair of cohorts: ``D_ij = mean_m (f_im - f_jm)^2``.

    Parameters
    ----------
    eaf
        ``(n markers, k cohorts)`` effect allele frequencies, no NaN.

    Returns
    -------
    numpy.ndarray
        ``(k, k)`` symmetric, zero diagonal.
    """
    eaf = np.asarray(eaf, dtype=np.float64)
    if eaf.ndim != 2 or eaf.shape[0] == 0:
        raise ValueError(f"eaf must be a non-empty (markers, cohorts) array; got {eaf.shape}")
    diff = eaf[:, :, None] - eaf[:, None, :]
    d = np.mean(diff * diff, axis=0)
    assert d.shape == (eaf.shape[1], eaf.shape[1])
    return d


@dataclass(frozen=True)
class Axes:
    """Axes of genetic variation of K cohorts (classical MDS of their EAF distances).

    Attributes
    ----------
    coordinates
        ``(K, T)``: cohort k's position on axis t (in the cohorts' canonical order).
    eigenvalues
        All K eigenvalues of the double-centred matrix, largest first.
    distances
        ``(K, K)`` mean squared EAF differences (:func:`eaf_distances`).
    n_markers
        Markers the distances are averaged over.
    """

    coordinates: np.ndarray
    eigenvalues: np.ndarray
    distances: np.ndarray
    n_markers: int

    @property
    def n_axes(self) -> int:
        return int(self.coordinates.shape[1])


def mds_axes(distances: np.ndarray, n_axes: int) -> tuple[np.ndarray, np.ndarray]:
    """Classical multidimensional scaling: the first ``n_axes`` principal coordinates.

    ``B = -1/2 (D - r_i - c_j + g)`` (D double-centred with its row means r,
    column means c and grand mean g); ``B = Q Λ Q^T``; coordinates
    ``Q_t sqrt(λ_t)`` for the T largest eigenvalues. D is used as given:
    MR-MEGA's distances are already mean *squared* differences.

    Returns
    -------
    coordinates, eigenvalues
        ``(K, T)`` coordinates, each axis signed so that its coordinate of
        largest magnitude is positive; all K eigenvalues, descending.

    Raises
    ------
    InputError
        When one of the T largest eigenvalues is not positive: the cohorts'
        frequencies span fewer than T dimensions (identical cohorts, say).
    """
    d = np.asarray(distances, dtype=np.float64)
    k = d.shape[0]
    if d.shape != (k, k):
        raise ValueError(f"distances must be square; got {d.shape}")
    b = -0.5 * (d - d.mean(axis=1, keepdims=True) - d.mean(axis=0, keepdims=True) + d.mean())
    values, vectors = np.linalg.eigh(b)
    order = np.argsort(values)[::-1]
    values, vectors = values[order], vectors[:, order]
    top = values[:n_axes]
    # Eigenvalues of a double-centred matrix are exactly 0 only in theory: relative tolerance.
    if (top <= 1e-12 * max(abs(values[0]), np.finfo(float).tiny)).any():
        raise InputError(
            f"MR-MEGA: the cohorts' allele frequencies give only {int((values > 0).sum())} "
            f"axis/axes of variation with a positive eigenvalue, fewer than the {n_axes} "
            f"requested (eigenvalues {np.round(values, 12).tolist()}); use fewer --pcs"
        )
    coords = vectors[:, :n_axes] * np.sqrt(top)
    flip = np.sign(coords[np.argmax(np.abs(coords), axis=0), np.arange(n_axes)])
    coords = coords * np.where(flip == 0, 1.0, flip)
    assert coords.shape == (k, n_axes)
    return coords, values


def axes_from_eaf(marker_eaf: np.ndarray, n_axes: int) -> Axes:
    """:class:`Axes` from the ``(markers, K)`` EAFs of the markers of :func:`axis_marker_rows`.

    Raises
    ------
    InputError
        When there is no marker (no variant with MAF > 1 % in every cohort
        and a position on chromosomes 1-23), or the axes are degenerate.
    """
    marker_eaf = np.asarray(marker_eaf, dtype=np.float64)
    if marker_eaf.shape[0] == 0:
        raise InputError(
            "MR-MEGA: no variant has an effect allele frequency in every cohort with MAF > "
            f"{AXIS_MIN_MAF} in all and a position on chromosomes 1-23 below 299 Mb: the axes "
            "of genetic variation cannot be computed (do all cohorts report "
            "effect_allele_frequency?)"
        )
    d = eaf_distances(marker_eaf)
    coords, values = mds_axes(d, n_axes)
    return Axes(
        coordinates=coords, eigenvalues=values, distances=d, n_markers=int(marker_eaf.shape[0])
    )


@dataclass(frozen=True)
class MrMegaArrays:
    """Per-variant results of :func:`mrmega_arrays` (length m; NaN where not estimable).

    ``beta`` and ``standard_error`` are ``(T+1, m)``: row 0 the intercept
    (the effect at the origin of the axes), row t the slope on axis t.
    """

    beta: np.ndarray
    standard_error: np.ndarray
    chi2_association: np.ndarray
    chi2_ancestry_het: np.ndarray
    chi2_residual_het: np.ndarray
    df_residual_het: np.ndarray
    ln_bf: np.ndarray
    n_studies: np.ndarray

    @property
    def n_axes(self) -> int:
        return self.beta.shape[0] - 1


def mrmega_arrays(beta: np.ndarray, se: np.ndarray, axes: np.ndarray) -> MrMegaArrays:
    """MR-MEGA's weighted regression of each variant's cohort effects on the axes.

    Parameters
    ----------
    beta, se
        ``(m variants, K cohorts)`` effects and standard errors (after any
        genomic control); a cohort is used for a variant when both are finite
        and ``se > 0``. Pass ``x.T`` of a ``(K, m)`` array to avoid a copy.
    axes
        ``(K, T)`` axes of genetic variation (:attr:`Axes.coordinates`).

    Returns
    -------
    MrMegaArrays
        For a variant in ``K_v`` cohorts, ``X = [1, axes]`` (rows of those
        cohorts), ``W = diag(1/se^2)``, ``y`` their betas:
        ``b = (X'WX)^-1 X'Wy``; ``RSS = sum w (y - Xb)^2``,
        ``TSS0 = sum w y^2``, ``TSS = sum w (y - ybar)^2`` with the weighted
        mean ybar; ``chi2_association = |TSS0 - RSS|`` (T+1 df),
        ``chi2_ancestry_het = |TSS - RSS|`` (T df), ``chi2_residual_het =
        RSS`` (``K_v - T - 1`` df); ``se(b) = sqrt(diag((X'WX)^-1) RSS /
        (K_v - T - 1))``; ``ln_bf = (chi2_association - (T+1) ln K_v) / 2``.
        Variants with ``K_v < T + 3`` (MR-MEGA's ``SmallCohortCount``) or a
        singular ``X'WX`` get NaN everywhere but ``n_studies``.

    References
    ----------
    Mägi et al. (2017) Hum Mol Genet 26:3639-3650, Methods ("Meta-regression model").
    """
    beta = np.asarray(beta, dtype=np.float64)
    se = np.asarray(se, dtype=np.float64)
    axes = np.asarray(axes, dtype=np.float64)
    if beta.shape != se.shape or beta.ndim != 2:
        raise ValueError(
            f"beta and se must be (m, k) arrays of one shape; got {beta.shape}, {se.shape}"
        )
    m, k = beta.shape
    if axes.ndim != 2 or axes.shape[0] != k:
        raise ValueError(f"axes must be (k, T) with k = {k}; got {axes.shape}")
    t_axes = axes.shape[1]
    p = t_axes + 1
    x = np.hstack([np.ones((k, 1)), axes])  # (k, p): the design of the cohorts

    bt, st = np.ascontiguousarray(beta.T), np.ascontiguousarray(se.T)  # (k, m)
    ok = np.isfinite(bt) & np.isfinite(st) & (st > 0)
    n = ok.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.where(ok, 1.0 / (st * st), 0.0)
        y = np.where(ok, bt, 0.0)
    # The (T+1) x (T+1) normal equations of every variant at once, in closed form.
    res = batched_wls(x, y, w, n >= t_axes + 3)
    nf = n.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mse = res.rss / (nf - p)
        est_se = np.sqrt(res.inv_diag * mse)
        chi2_assoc = np.abs(res.tss0 - res.rss)
        chi2_anc = np.abs(res.tss - res.rss)
        chi2_res = np.abs(res.rss)
        ln_bf = (chi2_assoc - p * np.log(nf)) / 2.0
    est = res.coef
    df_res = np.where(np.isfinite(chi2_res), n - p, np.nan).astype(np.float64)
    return MrMegaArrays(
        beta=est,
        standard_error=est_se,
        chi2_association=chi2_assoc,
        chi2_ancestry_het=chi2_anc,
        chi2_residual_het=chi2_res,
        df_residual_het=df_res,
        ln_bf=ln_bf,
        n_studies=n.astype(np.int64),
    )


def gco_lambda(chi2_association: np.ndarray, n_axes: int) -> float:
    """MR-MEGA's ``--gco`` factor: median association chi-square over the chi2(T+1) median.

    The median is over the finite, positive chi-squares, as MR-MEGA takes it;
    the association chi-squares are divided by it (whether above 1 or not,
    as MR-MEGA does) and their p-values recomputed. NaN when there is none.
    """
    x = np.asarray(chi2_association, dtype=np.float64)
    x = x[np.isfinite(x) & (x > 0)]
    if x.size == 0:
        return float("nan")
    from scipy.special import chdtri

    return float(np.median(x) / chdtri(n_axes + 1.0, 0.5))


@dataclass(frozen=True)
class MrMegaModel:
    """What the per-variant regression needs from the whole input: the axes and the ``--gco`` factor.

    ``lambda_gco`` is None when the output is not genomic-controlled.
    """

    axes: Axes
    lambda_gco: float | None = None

    def summary(self, cohorts: list[str]) -> dict:
        """JSON-ready: the axes per cohort, the distance matrix, eigenvalues, markers, dfs, λ_gco.

        ``cohorts``: the cohort ids in the order of the axes' rows (canonical order).
        """
        a = self.axes
        t = a.n_axes

        def num(x: float) -> float | None:
            return float(x) if np.isfinite(x) else None

        return {
            "n_axes": t,
            "n_markers": a.n_markers,
            "marker_rule": f"EAF in every cohort with MAF > {AXIS_MIN_MAF} in all; the last "
            f"such variant of each {AXIS_BIN_BP // 1_000_000} Mb bin",
            "axes": {c: [float(v) for v in a.coordinates[i]] for i, c in enumerate(cohorts)},
            "eigenvalues": [float(v) for v in a.eigenvalues],
            "distances": {
                c: {c2: float(a.distances[i, j]) for j, c2 in enumerate(cohorts)}
                for i, c in enumerate(cohorts)
            },
            "df_association": t + 1,
            "df_ancestry_het": t,
            "lambda_gco": None if self.lambda_gco is None else num(self.lambda_gco),
        }


def mrmega_columns(
    beta: np.ndarray, se: np.ndarray, model: MrMegaModel
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """The MR-MEGA output columns of ``(K, m)`` cohort betas and SEs, and the association test.

    Returns
    -------
    columns, p, neg_log_10_p
        Column name -> values (float; ``mrmega_df_residual_het`` float with
        NaN for NA), named as :data:`crosscohort.contract.sumstats.META_COLUMNS`
        declares them; the association test's p and -log10 p (after
        ``--gco`` when ``model.lambda_gco`` is set), NaN where not estimable.
    """
    res = mrmega_arrays(beta.T, se.T, model.axes.coordinates)
    t = res.n_axes
    chi2 = res.chi2_association
    if model.lambda_gco is not None and np.isfinite(model.lambda_gco):
        chi2 = chi2 / model.lambda_gco
    p, nlp = p_and_neg_log10_p_from_chi2(chi2, t + 1.0)
    cols: dict[str, np.ndarray] = {}
    for j in range(t + 1):
        cols[f"mrmega_beta_{j}"] = res.beta[j]
        cols[f"mrmega_standard_error_{j}"] = res.standard_error[j]
    cols["mrmega_chi2_association"] = chi2
    cols["mrmega_chi2_ancestry_het"] = res.chi2_ancestry_het
    cols["mrmega_neg_log_10_p_ancestry_het"] = neg_log10_p_from_chi2(res.chi2_ancestry_het, t)
    cols["mrmega_chi2_residual_het"] = res.chi2_residual_het
    cols["mrmega_df_residual_het"] = res.df_residual_het
    cols["mrmega_neg_log_10_p_residual_het"] = neg_log10_p_from_chi2(
        res.chi2_residual_het, np.where(np.isfinite(res.df_residual_het), res.df_residual_het, 1.0)
    )
    cols["mrmega_ln_bf"] = res.ln_bf
    return cols, p, nlp
