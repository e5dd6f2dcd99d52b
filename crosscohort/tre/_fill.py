"""One pass per variant: fill missing calls and count genotype classes (private).

:func:`crosscohort.tre.sufficient.variant_sums` is the public face; its
numpy version (isnan, copy, rint, three comparisons, a whole-number check)
read each chunk seven times, which cost the sums ~35 % over association
alone (benchmarks/README.md, "Federated pooled fit"). These kernels read it
once (threads over variants). Equal to the numpy version exactly (counts
and copies, no arithmetic beyond the mean of :func:`fill_values`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from crosscohort.runtime.jit import njit

if TYPE_CHECKING:  # imported at the first compiled call (crosscohort.runtime.jit)
    import numba

__all__ = ["fill_values", "fill_and_count"]


@njit(parallel=True, cache=True, nogil=True)
def _fill_values(g, out):  # pragma: no cover - compiled
    n, m = g.shape
    for t in numba.prange(m):
        total = 0.0
        calls = 0
        for r in range(n):
            v = g[r, t]
            if v == v:
                total += v
                calls += 1
        f = np.floor(total / calls + 0.5) if calls else 0.0
        out[t] = min(max(f, 0.0), 2.0)


def fill_values(dosages: np.ndarray) -> np.ndarray:
    """(m,) the hard call of each column's mean over its calls (halves up; 0 without a call)."""
    g = np.asfortranarray(dosages, dtype=np.float64)
    out = np.empty(g.shape[1], dtype=np.float64)
    if g.shape[1]:
        _fill_values(g, out)
    return out


@njit(parallel=True, cache=True, nogil=True)
def _fill_count(g, fill, out, missing, counts, whole):  # pragma: no cover - compiled
    n, m = g.shape
    for t in numba.prange(m):
        miss = c0 = c1 = c2 = 0
        ok = True
        f = fill[t]
        for r in range(n):
            v = g[r, t]
            if v != v:
                v = f
                miss += 1
            out[r, t] = v
            h = np.rint(v)
            if h == 0.0:
                c0 += 1
            elif h == 1.0:
                c1 += 1
            elif h == 2.0:
                c2 += 1
            if h != v:
                ok = False
        missing[t] = miss
        counts[t, 0], counts[t, 1], counts[t, 2] = c0, c1, c2
        whole[t] = ok


def fill_and_count(dosages: np.ndarray, fill: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    """Filled copy (Fortran), missing calls per column, (m, 3) counts of rounded 0/1/2, all whole."""
    g = np.asfortranarray(dosages, dtype=np.float64)
    n, m = g.shape
    out = np.empty((n, m), dtype=np.float64, order="F")
    missing = np.zeros(m, dtype=np.int64)
    counts = np.zeros((m, 3), dtype=np.int64)
    whole = np.ones(m, dtype=np.bool_)
    if n and m:
        _fill_count(g, np.ascontiguousarray(fill, dtype=np.float64), out, missing, counts, whole)
    return out, missing, counts, bool(whole.all())
