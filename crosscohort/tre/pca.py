"""Ancestry principal components of one cohort: LD pruning, then PCA of standardised genotypes.

PCs are individual-level data: they are computed and used inside the TRE (as
association covariates) and never leave it.

The steps follow plink2: founders' ALT frequencies ``p``; autosomal variants
with MAF >= ``maf``; greedy windowed pairwise-r² pruning like
``--indep-pairwise W S R2`` (window and step counted in variants); then the top
eigenvectors of the genomic relationship matrix ``K = Z Z^T / M`` with
``Z = (g - 2p) / sqrt(2p(1-p))`` and missing calls set to 0 (mean
imputation), as ``plink2 --pca``. Eigenvectors have unit length and
eigenvalues are those of ``K``, as in plink2's ``.eigenvec``/``.eigenval``.

Any genotype container gives the same PCs for the same hard calls. From
dosages (``.pgen``, BGEN, VCF ``DS``), as plink2: frequencies and ``Z`` use
the dosages, LD pruning uses hard calls (``--indep-pairwise`` r² is on
unphased hard calls; :func:`crosscohort.tre.genotypes.hard_calls`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from crosscohort.contract.errors import InputError
from crosscohort.contract.sumstats import SumstatsError, genotype_chrom_code
from crosscohort.schemas import default as schema_default
from crosscohort.tre.genotypes import Genotypes
from crosscohort.tre.qc import founder_mask

__all__ = [
    "PruneResult",
    "PcaResult",
    "autosomal_mask",
    "ld_prune",
    "randomized_eigh",
    "run_pca",
    "write_pca",
]

# Above this many samples the N x N relationship matrix is not formed; the
# randomized subspace iteration streams genotype chunks instead.
_EXACT_MAX_SAMPLES = 5000
# plink's relative tolerance when comparing two MAFs (kSmallEpsilon).
_EPS = 2.0**-44


@dataclass(frozen=True)
class PruneResult:
    """Which variants the PCA uses and why the others were left out.

    ``n_in = n_non_autosomal + n_maf_below + n_ld_pruned + n_used``.
    """

    used: np.ndarray  # indices into the genotypes' variants, file order
    used_ids: tuple[str, ...]  # their .bim IDs
    n_in: int
    n_non_autosomal: int
    n_maf_below: int
    n_ld_pruned: int

    @property
    def n_used(self) -> int:
        return int(len(self.used))

    def to_dict(self) -> dict[str, int]:
        return {"n_in": self.n_in, "n_non_autosomal": self.n_non_autosomal,
                "n_maf_below": self.n_maf_below, "n_ld_pruned": self.n_ld_pruned,
                "n_used": self.n_used}


@dataclass(frozen=True)
class PcaResult:
    """Top principal components of the kept samples."""

    samples: pl.DataFrame  # fid, iid of the kept samples, genotype order
    eigenvectors: np.ndarray  # (n_samples, n_pcs), unit columns
    eigenvalues: np.ndarray  # (n_pcs,), of K = Z Z^T / M, decreasing
    prune: PruneResult
    method: str  # "exact" or "randomized"


def autosomal_mask(chrom: pl.Series) -> np.ndarray:
    """True where the ``.bim`` chromosome label is an autosome (1-22)."""
    def code(label: str) -> int:
        try:
            return genotype_chrom_code(label)
        except SumstatsError:  # unplaced (0) or contigs: not autosomal
            return 0

    codes = {c: code(c) for c in chrom.unique().to_list()}
    return np.array([1 <= codes[c] <= 22 for c in chrom.to_list()], dtype=bool)


def _pairwise_r2(x: np.ndarray) -> np.ndarray:
    """Squared Pearson correlations of columns over pairwise-complete samples."""
    m = (~np.isnan(x)).astype(np.float64)
    x0 = np.where(m > 0, x, 0.0)
    n = m.T @ m
    sx = x0.T @ m  # sum of x_i over samples where x_j is called
    sxx = (x0 * x0).T @ m
    sxy = x0.T @ x0
    with np.errstate(invalid="ignore", divide="ignore"):
        cov = sxy - sx * sx.T / n
        vx = sxx - sx * sx / n
        r2 = cov * cov / (vx * vx.T)
    return np.nan_to_num(r2, nan=0.0, posinf=0.0)


def ld_prune(
    read: Callable[[np.ndarray], np.ndarray],
    chrom: np.ndarray,
    maf: np.ndarray,
    *,
    window: int = schema_default("pca.prune_window"),
    step: int = schema_default("pca.prune_step"),
    r2: float = schema_default("pca.prune_r2"),
) -> np.ndarray:
    """Greedy windowed pairwise-r² pruning; returns a keep mask over the candidates.

    Parameters
    ----------
    read
        ``read(positions) -> dosages (samples x len(positions))`` of candidate
        positions (0-based, increasing).
    chrom
        Chromosome label of each candidate (windows never span two).
    maf
        Minor allele frequency of each candidate.
    window, step, r2
        As plink's ``--indep-pairwise window step r2`` (variant counts).

    Notes
    -----
    As plink 1.9: within each window, for each kept variant ``a`` in order and
    each later kept ``b`` with r² > threshold, the one of lower MAF is pruned
    (``b`` on a tie); once ``a`` is pruned it is not compared further. The
    window then moves by ``step``. r² is over pairwise-complete samples.
    Only one window of dosages is held in memory.
    """
    if window < 2 or step < 1 or step > window or not (0 < r2 <= 1):
        raise InputError(f"--prune-window/--prune-step/--prune-r2 must satisfy window >= 2, "
                         f"1 <= step <= window, 0 < r2 <= 1; got {window}, {step}, {r2}")
    n = len(chrom)
    pruned = np.zeros(n, dtype=bool)
    bounds = np.flatnonzero(np.r_[True, chrom[1:] != chrom[:-1], True]) if n else np.array([0])
    for c0, c1 in zip(bounds[:-1], bounds[1:], strict=True):
        buf_start, buf = c0, read(np.arange(c0, min(c0 + window, c1)))
        s = c0
        while True:
            e = min(s + window, c1)
            if e > buf_start + buf.shape[1]:  # extend the buffer, drop columns before s
                new = read(np.arange(buf_start + buf.shape[1], e))
                buf = np.hstack([buf[:, s - buf_start:], new])
                buf_start = s
            live = np.flatnonzero(~pruned[s:e])
            if len(live) > 1:
                r = _pairwise_r2(buf[:, s - buf_start + live])
                pos = s + live
                for a in range(len(live) - 1):
                    if pruned[pos[a]]:
                        continue
                    later = np.flatnonzero((r[a, a + 1:] > r2) & ~pruned[pos[a + 1:]]) + a + 1
                    if not len(later):
                        continue
                    lose_a = maf[pos[a]] < (1 - _EPS) * maf[pos[later]]
                    first = int(np.argmax(lose_a)) if lose_a.any() else len(later)
                    pruned[pos[later[:first]]] = True
                    if first < len(later):
                        pruned[pos[a]] = True
            if e == c1:
                break
            s += step
    return ~pruned


def randomized_eigh(
    matmul: Callable[[np.ndarray], np.ndarray],
    n: int,
    k: int,
    *,
    oversample: int = 10,
    n_iter: int = 8,
    seed: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """Top ``k`` eigenpairs of a symmetric PSD ``n x n`` operator given only ``matmul(Q) = K @ Q``.

    Returns
    -------
    (values, vectors)
        Decreasing eigenvalues ``(k,)`` and orthonormal eigenvectors ``(n, k)``.

    Notes
    -----
    Randomized subspace iteration with a Rayleigh-Ritz step (Halko, Martinsson
    & Tropp 2011, algorithms 4.4 and 5.3): ``Q = qr(K^q G)`` with re-orthonormalisation
    after each product, then the eigenpairs of ``Q^T K Q``. Each iteration is
    one ``matmul``, i.e. one pass over the genotypes.
    """
    rng = np.random.default_rng(seed)
    ell = min(n, k + oversample)
    q, _ = np.linalg.qr(rng.standard_normal((n, ell)))
    for _ in range(n_iter):
        q, _ = np.linalg.qr(matmul(q))
    b = q.T @ matmul(q)
    vals, vecs = np.linalg.eigh((b + b.T) / 2)
    order = np.argsort(vals)[::-1][:k]
    u = q @ vecs[:, order]
    assert u.shape == (n, k)
    return vals[order], u


def _standardised_chunks(
    genotypes: Genotypes, used: np.ndarray, sample_index: np.ndarray, p: np.ndarray, chunk_size: int
) -> Iterator[np.ndarray]:
    """Yield ``Z`` column blocks: (g - 2p)/sqrt(2p(1-p)), missing -> 0."""
    for s, (_, dos) in zip(range(0, len(used), chunk_size),
                           genotypes.chunks(used, chunk_size, sample_index), strict=True):
        pc = p[s : s + dos.shape[1]]
        z = (dos - 2 * pc) / np.sqrt(2 * pc * (1 - pc))
        yield np.nan_to_num(z, nan=0.0)


def run_pca(
    genotypes: Genotypes,
    *,
    keep: pl.DataFrame | None = None,
    extract: list[str] | None = None,
    n_pcs: int = schema_default("pca.n_pcs"),
    maf: float = schema_default("pca.maf"),
    window: int = schema_default("pca.prune_window"),
    step: int = schema_default("pca.prune_step"),
    r2: float = schema_default("pca.prune_r2"),
    seed: int = 1,
    method: str = "auto",
    chunk_size: int = 2000,
    nonfounders: bool = False,
) -> PcaResult:
    """Top ``n_pcs`` ancestry PCs of the kept samples on an LD-pruned autosomal variant set.

    Parameters
    ----------
    genotypes
        The cohort's genotypes.
    keep, extract
        Samples (``fid``, ``iid``; ``fid`` null = match on IID) and variant IDs
        to use, e.g. the outputs of ``crosscohort qc``; all when None.
    n_pcs
        Number of components.
    maf
        Variants with founders' MAF below this are not used.
    window, step, r2
        LD pruning as plink's ``--indep-pairwise window step r2``.
    seed
        Seed of the randomized eigensolver's start.
    method
        ``"exact"`` (eigendecomposition of the N x N matrix), ``"randomized"``
        (streamed subspace iteration) or ``"auto"`` (exact up to 5000 samples).
    chunk_size
        Variants read per chunk.
    nonfounders
        Use every sample, not only founders, for the allele frequencies.

    Raises
    ------
    InputError
        When keep/extract name IDs absent from the genotypes, or there are
        fewer kept samples or used variants than ``n_pcs + 1``.
    """
    if n_pcs < 1:
        raise InputError(f"--n-pcs must be at least 1; got {n_pcs}")
    if method not in ("auto", "exact", "randomized"):
        raise InputError(f"method must be auto, exact or randomized; got {method!r}")
    sample_index = genotypes.sample_index(keep, require_all=True)
    variant_index = genotypes.variant_index(extract)
    if extract is not None and len(variant_index) < len(set(extract)):
        known = set(genotypes.variants.get_column("id").to_list())
        missing = [v for v in extract if v not in known]
        raise InputError(f"--extract lists {len(missing)} variant ID(s) absent from the .bim, "
                         f"e.g. {missing[0]!r}")
    n_samples = len(sample_index)
    if n_samples < n_pcs + 1:
        raise InputError(f"PCA needs more kept samples than --n-pcs: got {n_samples} samples "
                         f"for {n_pcs} PCs (need at least {n_pcs + 1})")
    founders = np.ones(n_samples, dtype=bool) if nonfounders else founder_mask(genotypes.samples)[sample_index]
    if not founders.any():
        raise InputError("no founder among the kept samples to estimate allele frequencies "
                         "(use --nonfounders)")

    bim = genotypes.variants[variant_index]
    auto = autosomal_mask(bim.get_column("chrom"))
    cand = variant_index[auto]
    p = np.empty(len(cand))
    for s, (_, dos) in zip(range(0, len(cand), chunk_size),
                           genotypes.chunks(cand, chunk_size, sample_index), strict=True):
        f = dos[founders]
        with np.errstate(invalid="ignore"):
            p[s : s + dos.shape[1]] = np.nanmean(f, axis=0) / 2
    mafs = np.minimum(p, 1 - p)
    ok = mafs >= maf * (1 - _EPS)  # NaN (no founder call) fails
    cand, p, mafs = cand[ok], p[ok], mafs[ok]
    chrom = genotypes.variants.get_column("chrom").to_numpy()[cand]

    def read(pos: np.ndarray) -> np.ndarray:
        # plink2 --indep-pairwise: unphased hard-call r²; the PCA below uses dosages
        return genotypes.read_hard_calls(cand[pos], sample_index)

    keep_ld = ld_prune(read, chrom, mafs, window=window, step=step, r2=r2)
    ids = genotypes.variants.get_column("id")
    prune = PruneResult(used=cand[keep_ld], used_ids=tuple(ids.gather(cand[keep_ld]).to_list()),
                        n_in=len(variant_index),
                        n_non_autosomal=int((~auto).sum()), n_maf_below=int((~ok).sum()),
                        n_ld_pruned=int((~keep_ld).sum()))
    m = prune.n_used
    if m < n_pcs + 1:
        raise InputError(f"PCA needs more variants than --n-pcs after pruning: got {m} variants "
                         f"for {n_pcs} PCs (need at least {n_pcs + 1}); {prune.to_dict()}")
    p_used = p[keep_ld]

    if method == "auto":
        method = "exact" if n_samples <= _EXACT_MAX_SAMPLES else "randomized"
    if method == "exact":
        grm = np.zeros((n_samples, n_samples))
        for z in _standardised_chunks(genotypes, prune.used, sample_index, p_used, chunk_size):
            grm += z @ z.T
        from scipy.linalg import eigh

        vals, vecs = eigh(grm / m, subset_by_index=[n_samples - n_pcs, n_samples - 1])
        order = np.argsort(vals)[::-1]
        vals, vecs = vals[order], vecs[:, order]
    else:
        def matmul(q: np.ndarray) -> np.ndarray:
            out = np.zeros_like(q)
            for z in _standardised_chunks(genotypes, prune.used, sample_index, p_used, chunk_size):
                out += z @ (z.T @ q)
            return out / m

        vals, vecs = randomized_eigh(matmul, n_samples, n_pcs, seed=seed)
    # a fixed sign: the largest-magnitude entry of each PC is positive
    sign = np.sign(vecs[np.argmax(np.abs(vecs), axis=0), np.arange(vecs.shape[1])])
    vecs = vecs * np.where(sign == 0, 1.0, sign)
    samples = genotypes.samples[sample_index].select("fid", "iid")
    return PcaResult(samples, vecs, vals, prune, method)


def write_pca(result: PcaResult, out: str | Path, *, params: dict | None = None) -> dict[str, Path]:
    """Write ``F`` (plink2 ``.eigenvec`` layout), ``F.eigenval``, ``F.prune.json`` and ``F.prune.in``."""
    out = Path(out)
    paths = {"eigenvec": out, "eigenval": Path(f"{out}.eigenval"),
             "prune_json": Path(f"{out}.prune.json"), "prune_in": Path(f"{out}.prune.in")}
    k = result.eigenvectors.shape[1]
    table = result.samples.rename({"fid": "#FID", "iid": "IID"}).with_columns(
        [pl.Series(f"PC{j + 1}", result.eigenvectors[:, j]) for j in range(k)]
    )
    texts = {
        "eigenvec": table.write_csv(separator="\t", float_precision=None),
        "eigenval": "".join(f"{v!r}\n" for v in result.eigenvalues.tolist()),
        "prune_json": json.dumps({**result.prune.to_dict(), "method": result.method,
                                  **(params or {})}, indent=2, sort_keys=True) + "\n",
        # the variant IDs used: for reruns and for plink2 --extract
        "prune_in": "".join(f"{v}\n" for v in result.prune.used_ids),
    }
    for kind, path in paths.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(texts[kind])
        tmp.replace(path)
    return paths
