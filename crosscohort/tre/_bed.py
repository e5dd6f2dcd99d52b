"""Hot kernels for PLINK 1 ``.bed`` files: read variant-major blocks, decode 2-bit calls (private).

:class:`crosscohort.tre.genotypes.Genotypes` is the public face; this module only
moves bytes. A variant-major ``.bed`` stores each variant as
``ceil(n_samples / 4)`` bytes, four samples a byte, lowest two bits first:
``00`` homozygous for the ``.bim`` A1 allele, ``01`` missing, ``10``
heterozygous, ``11`` homozygous A2. Dosages count A1 (the ALT, effect
allele): 2, NaN, 1, 0.

Blocks are read with plain file reads, not a memory map: a map's touched
pages count towards the process's resident set, which would then grow with
the file instead of staying at one chunk.

References
----------
PLINK 1 binary format: https://www.cog-genomics.org/plink/1.9/formats#bed
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from crosscohort.runtime.jit import is_small_job, njit
from crosscohort.runtime.process import passive_openmp_workers

if TYPE_CHECKING:  # imported at the first compiled call (crosscohort.runtime.jit)
    import numba

__all__ = ["DOSAGE_OF_CODE", "read_packed", "decode_dosages", "set_threads_from_env"]

#: Dosage of the A1 allele for each 2-bit code (index = code).
DOSAGE_OF_CODE = np.array([2.0, np.nan, 1.0, 0.0])


def bytes_per_variant(n_samples: int) -> int:
    """Bytes one variant occupies in a variant-major ``.bed``."""
    return (n_samples + 3) // 4


def read_packed(bed: str | Path, variant_index: np.ndarray, n_samples: int) -> np.ndarray:
    """Packed bytes of the given variants, (m, bytes_per_variant) uint8, in the order given.

    Runs of consecutive variants are read with one ``readinto`` each, so a
    contiguous chunk costs one system call and no copy.
    """
    vi = np.asarray(variant_index, dtype=np.int64)
    nb = bytes_per_variant(n_samples)
    out = np.empty((vi.size, nb), dtype=np.uint8)
    if vi.size == 0:
        return out
    # Boundaries of runs of consecutive indices.
    breaks = np.flatnonzero(np.diff(vi) != 1) + 1
    starts = np.concatenate([[0], breaks])
    stops = np.concatenate([breaks, [vi.size]])
    flat = out.reshape(-1)
    with open(bed, "rb", buffering=0) as fh:
        for a, b in zip(starts.tolist(), stops.tolist(), strict=True):
            fh.seek(3 + int(vi[a]) * nb)
            view = memoryview(flat[a * nb : b * nb])
            got = fh.readinto(view)
            if got != (b - a) * nb:
                raise OSError(f"{bed}: short read at variant {int(vi[a])} ({got} of {(b - a) * nb} bytes)")
    return out


@njit(parallel=True, cache=True, nogil=True)
def _decode_all(packed: np.ndarray, n: int, lut: np.ndarray, out: np.ndarray, row0: int) -> None:
    m, nb = packed.shape
    full = n // 4
    for v in numba.prange(m):
        src = packed[v]
        dst = out[v]
        for b in range(full):
            byte = src[b]
            o = row0 + 4 * b
            dst[o] = lut[byte & 3]
            dst[o + 1] = lut[(byte >> 2) & 3]
            dst[o + 2] = lut[(byte >> 4) & 3]
            dst[o + 3] = lut[(byte >> 6) & 3]
        for s in range(4 * full, n):
            dst[row0 + s] = lut[(src[s >> 2] >> (2 * (s & 3))) & 3]


@njit(parallel=True, cache=True, nogil=True)
def _decode_subset(packed: np.ndarray, samples: np.ndarray, lut: np.ndarray, out: np.ndarray,
                   row0: int) -> None:
    m = packed.shape[0]
    k = samples.size
    for v in numba.prange(m):
        src = packed[v]
        dst = out[v]
        for j in range(k):
            s = samples[j]
            dst[row0 + j] = lut[(src[s >> 2] >> (2 * (s & 3))) & 3]


def _decode_numpy(packed: np.ndarray, n_samples: int, samples: np.ndarray | None) -> np.ndarray:
    """The numpy twin of the compiled decoders (small jobs): (m, samples) A1 dosages."""
    if samples is None:
        codes = (packed[:, :, None] >> np.array([0, 2, 4, 6], dtype=np.uint8)) & 3
        codes = codes.reshape(packed.shape[0], -1)[:, :n_samples]
    else:
        s = np.asarray(samples, dtype=np.int64)
        codes = (packed[:, s >> 2] >> (2 * (s & 3)).astype(np.uint8)) & 3
    return DOSAGE_OF_CODE[codes]


def decode_dosages(packed: np.ndarray, n_samples: int, *, samples: np.ndarray | None = None,
                   out: np.ndarray | None = None, row0: int = 0) -> np.ndarray:
    """Decode packed variants into A1 dosages, variant-major: (m, samples) float64, NaN = missing.

    Parameters
    ----------
    packed
        (m, bytes_per_variant(n_samples)) uint8 from :func:`read_packed`.
    n_samples
        Samples in the fileset (the ``.fam`` lines).
    samples
        Sample positions to decode, in output order (all when None).
    out
        (m, >= row0 + n_out) float64 C-contiguous array to write into at
        columns ``row0:row0 + n_out`` (stacked filesets share one); a new
        one when None.
    row0
        First column of ``out`` written.

    Returns
    -------
    numpy.ndarray
        ``out``; its transpose is the samples x variants dosage matrix, in
        Fortran order (each variant's dosages contiguous).
    """
    packed = np.ascontiguousarray(packed, dtype=np.uint8)
    n_out = n_samples if samples is None else int(samples.size)
    if out is None:
        out = np.empty((packed.shape[0], n_out), dtype=np.float64)
    assert out.shape[0] == packed.shape[0] and out.shape[1] >= row0 + n_out, (out.shape, row0, n_out)
    if packed.shape[0] == 0 or n_out == 0:
        return out
    if samples is not None:
        sel = np.asarray(samples, dtype=np.int64)
        if sel.min() < 0 or sel.max() >= n_samples:
            raise IndexError(f"sample index out of range 0..{n_samples - 1}")
    if is_small_job():
        out[:, row0:row0 + n_out] = _decode_numpy(packed, n_samples, samples)
        return out
    set_threads_from_env()
    if samples is None:
        _decode_all(packed, n_samples, DOSAGE_OF_CODE, out, row0)
    else:
        _decode_subset(packed, np.ascontiguousarray(sel), DOSAGE_OF_CODE, out, row0)
    return out


_THREADS_SET: list[int] = []


def set_threads_from_env() -> int:
    """Limit the compiled kernels' threads to ``OMP_NUM_THREADS`` when that is set lower.

    ``crosscohort assoc --threads T`` sets ``OMP_NUM_THREADS`` (and the BLAS
    variables); numba reads only ``NUMBA_NUM_THREADS`` at import, so the
    limit is applied here, once, before the first parallel kernel runs.
    Returns the number of threads the kernels use.

    It also makes idle OpenMP workers sleep rather than spin
    (:func:`crosscohort.runtime.process.passive_openmp_workers`).
    """
    if not _THREADS_SET:
        import numba

        # Read by libgomp when numba's OpenMP layer loads, i.e. at the first launch below.
        passive_openmp_workers()
        limit = numba.config.NUMBA_NUM_THREADS
        env = os.environ.get("OMP_NUM_THREADS", "")
        if env.isdigit() and 0 < int(env) < limit:
            limit = int(env)
        numba.set_num_threads(limit)
        _THREADS_SET.append(limit)
    return _THREADS_SET[0]
