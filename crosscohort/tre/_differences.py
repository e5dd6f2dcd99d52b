"""How few people two nearby variants differ in: the kernel of the gate's difference rule (private).

:func:`crosscohort.tre.sufficient.variant_sums` is the public face. For
each variant j of a chunk and each of the ``window`` variants i before it,
the number of people whose (filled) dosage differs, g_j != g_i, and the same
against the mirrored i, g_j != 2 - g_i (an outsider flips a variant's sums
by negating them); the smallest such count that is at least 1 is kept, or
``cap + 1`` when none is at most ``cap``. Identical vectors (count 0) are
not a difference: subtracting their sums gives 0.

Why it is cheap enough to run beside the sums (O(n) per variant already):
a pair is skipped when a lower bound from per-variant counts already
reaches the best count so far (two variants differ in at least half the
L1 distance between their genotype-class histograms); a pair
of variants with few non-modal genotypes (rare variants, most pairs) is
compared by merging their lists of such people, O(carriers); and a full
comparison stops as soon as its count passes the best one so far. Only
near-duplicates (strong LD) are compared over all n people.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from crosscohort.runtime.jit import njit

if TYPE_CHECKING:  # imported at the first compiled call (crosscohort.runtime.jit)
    import numba

__all__ = ["nearest_differences", "nearest_differences_numpy"]

#: Work (samples x variants x window) up to which the numpy version runs (no numba load).
SMALL_WORK = 20_000_000


def nearest_differences_numpy(g: np.ndarray, start: int, *, window: int, cap: int) -> np.ndarray:
    """The plain version: for columns ``start..`` of (n, m) ``g``, every pair compared in full.

    Returns
    -------
    numpy.ndarray
        (m - start,) int64: the fewest people (1..cap) in which the column
        differs from one of the ``window`` columns before it or from its
        mirror, else ``cap + 1``.
    """
    g = np.asarray(g)
    m = g.shape[1]
    out = np.full(m - start, cap + 1, dtype=np.int64)
    for j in range(start, m):
        lo = max(0, j - window)
        if lo == j:
            continue
        prev = g[:, lo:j].astype(np.float64)
        col = g[:, j].astype(np.float64)[:, None]
        d = np.concatenate([(prev != col).sum(axis=0), (2.0 - prev != col).sum(axis=0)])
        d = d[(d >= 1) & (d <= cap)]
        if d.size:
            out[j - start] = d.min()
    return out


@njit(cache=True, nogil=True)
def _modes(g, mode, others, counts):  # pragma: no cover - compiled
    n, m = g.shape
    for t in range(m):
        c0 = c1 = c2 = 0
        for r in range(n):
            v = g[r, t]
            if v == 0:
                c0 += 1
            elif v == 1:
                c1 += 1
            elif v == 2:
                c2 += 1
        counts[t, 0], counts[t, 1], counts[t, 2], counts[t, 3] = c0, c1, c2, n - c0 - c1 - c2
        if c0 >= c1 and c0 >= c2:
            mode[t], others[t] = 0.0, n - c0
        elif c1 >= c2:
            mode[t], others[t] = 1.0, n - c1
        else:
            mode[t], others[t] = 2.0, n - c2


@njit(cache=True, nogil=True)
def _sparse_rows(g, mode, others, sparse_max, ptr, rows):  # pragma: no cover - compiled
    n, m = g.shape
    at = 0
    for t in range(m):
        ptr[t] = at
        if others[t] <= sparse_max:
            for r in range(n):
                if g[r, t] != mode[t]:
                    rows[at] = r
                    at += 1
    ptr[m] = at


@njit(parallel=True, cache=True, nogil=True)
def _nearest(g, start, window, cap, mode, others, counts, sparse_max, ptr, rows, out):  # pragma: no cover
    n, m = g.shape
    for jj in numba.prange(m - start):
        j = start + jj
        best = cap + 1
        lo = max(0, j - window)
        for i in range(lo, j):
            for mirror in range(2):
                mode_h = 2.0 - mode[i] if mirror else mode[i]
                # People whose genotype class differs: at least half the histograms' L1 distance.
                a0 = counts[i, 2] if mirror else counts[i, 0]
                a2 = counts[i, 0] if mirror else counts[i, 2]
                l1 = (abs(counts[j, 0] - a0) + abs(counts[j, 1] - counts[i, 1]) + abs(counts[j, 2] - a2)
                      + abs(counts[j, 3] - counts[i, 3]))
                if l1 >= 2 * best:
                    continue
                d = 0
                if mode_h == mode[j] and others[i] <= sparse_max and others[j] <= sparse_max:
                    a, b = ptr[j], ptr[i]
                    ea, eb = ptr[j + 1], ptr[i + 1]
                    while (a < ea or b < eb) and d < best:
                        ra = rows[a] if a < ea else n
                        rb = rows[b] if b < eb else n
                        if ra < rb:
                            d += 1
                            a += 1
                        elif rb < ra:
                            d += 1
                            b += 1
                        else:
                            h = 2.0 - g[rb, i] if mirror else g[rb, i]
                            if g[ra, j] != h:
                                d += 1
                            a += 1
                            b += 1
                else:
                    for r in range(n):
                        h = 2.0 - g[r, i] if mirror else g[r, i]
                        if g[r, j] != h:
                            d += 1
                            if d >= best:
                                break
                if 0 < d < best:
                    best = d
        out[jj] = best


def nearest_differences(g: np.ndarray, start: int, *, window: int, cap: int) -> np.ndarray:
    """For columns ``start..`` of (n, m) filled dosages ``g``: the fewest people in which each
    differs from one of the ``window`` columns before it (or its mirror), 1..cap, else cap + 1.

    ``g`` holds the preceding variants' columns first (``start`` of them)
    then the chunk's; no missing value. Equal to
    :func:`nearest_differences_numpy`, which small inputs run.
    """
    g = np.asfortranarray(g)
    n, m = g.shape
    if m <= start:
        return np.empty(0, dtype=np.int64)
    if n * (m - start) * min(window, m) <= SMALL_WORK:
        return nearest_differences_numpy(g, start, window=window, cap=cap)
    from crosscohort.tre._bed import set_threads_from_env

    set_threads_from_env()
    mode = np.empty(m, dtype=np.float64)
    others = np.empty(m, dtype=np.int64)
    counts = np.empty((m, 4), dtype=np.int64)
    _modes(g, mode, others, counts)
    sparse_max = max(2 * cap, n // 32)
    size = int(others[others <= sparse_max].sum())
    ptr = np.empty(m + 1, dtype=np.int64)
    rows = np.empty(size, dtype=np.int64)
    _sparse_rows(g, mode, others, sparse_max, ptr, rows)
    out = np.empty(m - start, dtype=np.int64)
    _nearest(g, start, window, cap, mode, others, counts, sparse_max, ptr, rows, out)
    return out
