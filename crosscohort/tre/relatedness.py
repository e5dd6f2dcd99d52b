"""KING-robust kinship and plink2's ``--king-cutoff``: who is related, and whom to remove.

The kinship of every pair of samples comes from genotype-count identities
(Manichaikul et al. 2010, the between-family estimator, as plink2
``--make-king-table`` computes it for all pairs)::

    phi_ij = 1/2 - (het_i + het_j - 2 hethet_ij + 4 ibs0_ij) / (4 min(het_i, het_j))

over the autosomal variants called in both samples (hard calls: a dosage
container's dosages are rounded as plink2 does,
:func:`crosscohort.tre.genotypes.hard_calls`), where ``hethet`` counts
variants heterozygous in both, ``ibs0`` those homozygous for opposite alleles
and ``het_i`` those heterozygous in sample i (among the variants called in
both). Degrees: > 0.354 duplicate/MZ twin, > 0.177 first degree, > 0.0884
second degree, > 0.0442 third degree.

Memory is bounded: the counts are matrix products of 0/1 indicator matrices
accumulated over variant chunks, for one block of rows (samples) at a time
against all samples, so peak memory is about ``20 * block * n`` bytes plus a
chunk of genotypes; each row block re-reads the genotypes once. The full
``n x n`` kinship matrix (:func:`king_kinship_matrix`, 8 bytes a pair) is
only formed on request, which is fine up to n ~ 20,000 (3.2 GB); the
pipeline keeps only pairs above a threshold.

References
----------
Manichaikul A, Mychaleckyj JC, Rich SS, Daly K, Sale M, Chen WM (2010).
Robust relationship inference in genome-wide association studies.
Bioinformatics 26:2867-2873.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import polars as pl

from crosscohort.contract.errors import InputError
from crosscohort.schemas import default as schema_default
from crosscohort.tre.genotypes import Genotypes, hard_calls

__all__ = [
    "KING_THIRD_DEGREE",
    "KingPairs",
    "king_autosomal_index",
    "king_kinship_matrix",
    "king_related_pairs",
    "king_cutoff_removal",
]

#: Kinship above which a pair is closer than third degree: 2^-3.5 (plink2's usual --king-cutoff),
#: the default QC cutoff (the config schema's ``qc.king_cutoff``).
KING_THIRD_DEGREE: float = schema_default("qc.king_cutoff")

# Counts are accumulated in float32: integers are exact below 2^24.
_MAX_VARIANTS = 2**24
# Bytes of accumulators per (row, column) cell: five float32 matrices.
_CELL_BYTES = 20


def king_autosomal_index(genotypes: Genotypes, variant_index: np.ndarray | None = None) -> np.ndarray:
    """Indices (into ``genotypes``' variants) of the autosomal ones (1-22), as plink2 KING uses."""
    labels = genotypes.variants.get_column("chrom").str.to_uppercase().str.replace("^CHR", "")
    auto = labels.is_in([str(i) for i in range(1, 23)]).to_numpy()
    idx = np.flatnonzero(auto)
    if variant_index is not None:
        idx = np.intersect1d(idx, np.asarray(variant_index))
    return idx


def _blocks(genotypes: Genotypes, sample_index: np.ndarray, variant_index: np.ndarray, *,
            chunk_size: int, memory_bytes: int
            ) -> Iterator[tuple[int, int, dict[str, np.ndarray]]]:
    """Yield ``(r0, r1, counts)`` for row blocks of samples against all samples.

    ``counts`` holds (r1-r0, n) float32 matrices: ``hethet``, ``ibs0``,
    ``het_row`` (row sample's hets where the column sample is called),
    ``het_col`` (column sample's hets where the row sample is called), ``nsnp``.
    """
    n = sample_index.size
    if variant_index.size >= _MAX_VARIANTS:
        raise InputError(f"KING: {variant_index.size} variants; at most {_MAX_VARIANTS - 1} "
                         "(use an LD-pruned or QC'd subset)")
    block = int(max(1, min(n, memory_bytes // (_CELL_BYTES * max(n, 1)))))
    for r0 in range(0, n, block):
        r1 = min(n, r0 + block)
        acc = {k: np.zeros((r1 - r0, n), dtype=np.float32)
               for k in ("hethet", "ibs0", "het_row", "het_col", "nsnp")}
        for _, dos in genotypes.chunks(variant_index, chunk_size, sample_index):
            if not genotypes.hard_calls_only:  # KING counts hard calls (plink2 on dosage data)
                dos = hard_calls(dos)
            het = (dos == 1.0).astype(np.float32)
            hom_ref = (dos == 0.0).astype(np.float32)
            hom_alt = (dos == 2.0).astype(np.float32)
            called = (~np.isnan(dos)).astype(np.float32)
            rows = slice(r0, r1)
            acc["hethet"] += het[rows] @ het.T
            acc["ibs0"] += hom_ref[rows] @ hom_alt.T
            acc["ibs0"] += hom_alt[rows] @ hom_ref.T
            acc["het_row"] += het[rows] @ called.T
            acc["het_col"] += called[rows] @ het.T
            acc["nsnp"] += called[rows] @ called.T
        yield r0, r1, acc


def _kinship(c: dict[str, np.ndarray]) -> np.ndarray:
    h_small = np.minimum(c["het_row"], c["het_col"]).astype(np.float64)
    num = (c["het_row"].astype(np.float64) + c["het_col"] - 2.0 * c["hethet"] + 4.0 * c["ibs0"])
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(h_small > 0, 0.5 - num / (4.0 * h_small), np.nan)


def king_kinship_matrix(genotypes: Genotypes, *, sample_index: np.ndarray | None = None,
                        variant_index: np.ndarray | None = None, chunk_size: int = 2000,
                        memory_bytes: int = 512 * 2**20) -> np.ndarray:
    """KING-robust kinship of every pair of samples, as an (n, n) float64 matrix.

    Parameters
    ----------
    genotypes
        The cohort's genotypes.
    sample_index
        Increasing sample indices to use (default all).
    variant_index
        Variants to use (default all); non-autosomal ones are dropped.
    chunk_size
        Variants per genotype read.
    memory_bytes
        Budget of the count accumulators (sets the row-block size).

    Returns
    -------
    numpy.ndarray
        Symmetric; the diagonal is 0.5; NaN for a pair without a heterozygous
        call in either sample among the variants called in both.
    """
    sidx = np.arange(genotypes.n_samples) if sample_index is None else np.asarray(sample_index)
    vidx = king_autosomal_index(genotypes, variant_index)
    out = np.empty((sidx.size, sidx.size))
    for r0, r1, c in _blocks(genotypes, sidx, vidx, chunk_size=chunk_size, memory_bytes=memory_bytes):
        out[r0:r1] = _kinship(c)
    np.fill_diagonal(out, 0.5)
    return out


@dataclass(frozen=True)
class KingPairs:
    """Pairs of samples above a kinship threshold, and the variants behind the estimate.

    ``pairs`` columns: ``i``, ``j`` (positions in the sample index, i < j),
    ``nsnp``, ``hethet``, ``ibs0`` (proportions of ``nsnp``, as plink2's
    ``.kin0``) and ``kinship``.
    """

    pairs: pl.DataFrame
    n_samples: int
    n_variants: int
    threshold: float


def king_related_pairs(genotypes: Genotypes, *, threshold: float = KING_THIRD_DEGREE,
                       sample_index: np.ndarray | None = None,
                       variant_index: np.ndarray | None = None, chunk_size: int = 2000,
                       memory_bytes: int = 512 * 2**20) -> KingPairs:
    """Pairs with KING-robust kinship above ``threshold`` (the input of ``--king-cutoff``).

    Parameters are those of :func:`king_kinship_matrix`; memory stays within
    ``memory_bytes`` plus a genotype chunk whatever the number of samples.

    Raises
    ------
    InputError
        When no autosomal variant is left to estimate kinship from.
    """
    sidx = np.arange(genotypes.n_samples) if sample_index is None else np.asarray(sample_index)
    vidx = king_autosomal_index(genotypes, variant_index)
    if vidx.size == 0:
        raise InputError("KING kinship: no autosomal variant among those passing QC "
                         "(plink2 uses chromosomes 1-22 only)")
    parts: list[pl.DataFrame] = []
    for r0, _r1, c in _blocks(genotypes, sidx, vidx, chunk_size=chunk_size, memory_bytes=memory_bytes):
        k = _kinship(c)
        ii, jj = np.nonzero(k > threshold)
        upper = (ii + r0) < jj
        ii, jj = ii[upper], jj[upper]
        nsnp = c["nsnp"][ii, jj].astype(np.float64)
        parts.append(pl.DataFrame({
            "i": (ii + r0).astype(np.int64), "j": jj.astype(np.int64),
            "nsnp": nsnp.astype(np.int64),
            "hethet": c["hethet"][ii, jj] / nsnp,
            "ibs0": c["ibs0"][ii, jj] / nsnp,
            "kinship": k[ii, jj],
        }))
    schema = {"i": pl.Int64, "j": pl.Int64, "nsnp": pl.Int64, "hethet": pl.Float64,
              "ibs0": pl.Float64, "kinship": pl.Float64}
    pairs = pl.concat(parts) if parts else pl.DataFrame(schema=schema)
    return KingPairs(pairs.sort("i", "j"), int(sidx.size), int(vidx.size), float(threshold))


def king_cutoff_removal(n_samples: int, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Samples to remove so that no related pair is left: plink2 ``--king-cutoff``'s greedy rule.

    Parameters
    ----------
    n_samples
        Number of samples.
    i, j
        Related pairs (indices into the samples).

    Returns
    -------
    numpy.ndarray
        Boolean mask of the removed samples.

    Notes
    -----
    plink's greedy pruning (plink 1.9 ``--rel-cutoff``, plink2 ``--king-cutoff``),
    which keeps more samples than removing the most-related first: while some
    sample has exactly one remaining relative, keep it and remove that
    relative (the first such sample in sample order); otherwise remove the
    first sample among those with the most remaining relatives. A
    parent-offspring trio loses the child; a sibling pair, the later sibling.
    """
    i = np.asarray(i, dtype=np.int64)
    j = np.asarray(j, dtype=np.int64)
    removed = np.zeros(n_samples, dtype=bool)
    if i.size == 0:
        return removed
    degree = np.bincount(i, minlength=n_samples) + np.bincount(j, minlength=n_samples)
    nbrs: dict[int, list[int]] = {}
    for a, b in zip(i.tolist(), j.tolist(), strict=True):
        nbrs.setdefault(a, []).append(b)
        nbrs.setdefault(b, []).append(a)

    def drop(s: int) -> None:
        removed[s] = True
        degree[s] = 0
        for t in nbrs[s]:
            if not removed[t]:
                degree[t] -= 1

    while degree.max() > 0:
        ones = np.flatnonzero(degree == 1)
        if ones.size:
            v = int(ones[0])
            drop(next(t for t in nbrs[v] if not removed[t]))
        else:
            drop(int(np.argmax(degree)))  # argmax: the first of the maxima
    return removed
