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

__all__ = ["DifferenceWindow", "nearest_differences", "nearest_differences_numpy"]

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


@njit(parallel=True, cache=True, nogil=True)
def _slot_stats(g, slots, mode, others, counts, sparse_max, srows):  # pragma: no cover - compiled
    n = g.shape[0]
    for q in numba.prange(slots.size):
        t = slots[q]
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
        if others[t] <= sparse_max:
            at = 0
            for r in range(n):
                if g[r, t] != mode[t]:
                    srows[t, at] = r
                    at += 1


@njit(parallel=True, cache=True, nogil=True)
def _nearest(g, order, start, window, cap, mode, others, counts, sparse_max, srows, out):  # pragma: no cover
    n = g.shape[0]
    m = order.size
    for jj in numba.prange(m - start):
        vj = start + jj
        j = order[vj]
        best = cap + 1
        for vi in range(max(0, vj - window), vj):
            i = order[vi]
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
                    a = b = 0
                    ea, eb = others[j], others[i]
                    while (a < ea or b < eb) and d < best:
                        ra = srows[j, a] if a < ea else n
                        rb = srows[i, b] if b < eb else n
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


class DifferenceWindow:
    """The last ``window`` variants' filled dosages, and their counts, kept from chunk to chunk.

    A ring of ``window + chunk`` buffer columns: each chunk is written into
    the columns the window does not hold, and only its own per-variant
    counts (class histogram, most common genotype, the people off it when
    few) are computed, so the window costs neither a copy nor a recount per
    chunk (at 400,000 samples a 1,000-variant window is 400 MB of int8).
    Hard calls are held as int8, dosages as float64.
    """

    def __init__(self, n: int, *, window: int, cap: int):
        self.n, self.window, self.cap = int(n), int(window), int(cap)
        self.sparse_max = max(2 * self.cap, self.n // 32)
        self.buf: np.ndarray | None = None
        self.order = np.empty(0, dtype=np.int64)  # buffer columns of the window's variants, oldest first
        self.compiled: bool | None = None

    def _allocate(self, columns: int, dtype: np.dtype) -> None:
        old, self.buf = self.buf, np.empty((self.n, columns), dtype=dtype, order="F")
        self.mode = np.zeros(columns)
        self.others = np.zeros(columns, dtype=np.int64)
        self.counts = np.zeros((columns, 4), dtype=np.int64)
        self.srows = np.zeros((columns, self.sparse_max if self.compiled else 0), dtype=np.int32)
        if old is not None and self.order.size:  # keep the window, at columns 0..w-1
            self.buf[:, : self.order.size] = old[:, self.order]
            self.order = np.arange(self.order.size, dtype=np.int64)
            if self.compiled:
                _slot_stats(self.buf, self.order, self.mode, self.others, self.counts, self.sparse_max, self.srows)

    def push(self, g: np.ndarray) -> np.ndarray:
        """``n_differ`` of the chunk's (n, c) filled dosages; the chunk then joins the window."""
        c = g.shape[1]
        whole = g.dtype == np.int8 or bool(np.array_equal(g, np.rint(g)))
        if self.compiled is None:
            self.compiled = self.n * self.window * c > SMALL_WORK
        dtype = np.dtype(np.int8) if whole and (self.buf is None or self.buf.dtype == np.int8) else np.dtype(np.float64)
        if self.buf is None or self.buf.dtype != dtype or self.buf.shape[1] < self.order.size + c:
            self._allocate(max(self.window + c, self.order.size + c), dtype)
        free = np.setdiff1d(np.arange(self.buf.shape[1]), self.order, assume_unique=True)[:c]
        self.buf[:, free] = g
        full = np.concatenate([self.order, free])
        if self.compiled:
            from crosscohort.tre._bed import set_threads_from_env

            set_threads_from_env()
            _slot_stats(self.buf, free, self.mode, self.others, self.counts, self.sparse_max, self.srows)
            out = np.empty(c, dtype=np.int64)
            _nearest(self.buf, full, self.order.size, self.window, self.cap, self.mode, self.others, self.counts,
                     self.sparse_max, self.srows, out)
        else:
            out = nearest_differences_numpy(self.buf[:, full], self.order.size, window=self.window, cap=self.cap)
        self.order = full[-self.window:] if self.window else full[:0]
        return out


def nearest_differences(g: np.ndarray, start: int, *, window: int, cap: int) -> np.ndarray:
    """For columns ``start..`` of (n, m) filled dosages ``g``: the fewest people in which each
    differs from one of the ``window`` columns before it (or its mirror), 1..cap, else cap + 1.

    Through a :class:`DifferenceWindow` (the columns before ``start`` pushed
    first); equal to :func:`nearest_differences_numpy`, which small inputs run.
    """
    g = np.asarray(g)
    n, m = g.shape
    if m <= start:
        return np.empty(0, dtype=np.int64)
    win = DifferenceWindow(n, window=window, cap=cap)
    win.compiled = n * (m - start) * min(window, m) > SMALL_WORK
    if start:
        win.push(g[:, :start])
    return win.push(g[:, start:])
