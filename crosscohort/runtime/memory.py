"""Process-wide allocator settings for the ``crosscohort`` command.

glibc's malloc hands blocks above a threshold (dynamic, 128 KiB to 32 MiB)
to ``mmap`` and gives them back on ``free``, and trims the heap top when
more than a threshold is free. The pipeline's per-chromosome and
per-block temporaries are megabytes each and are freed and re-allocated
many times, so by default each comes back as fresh pages. On virtual
machines that back guest memory on first touch (the benchmark machine;
cloud TREs) a fresh 4 KiB page costs tens of microseconds, which made up
a third of the meta-analysis's system time (benchmarks/README.md).
:func:`retain_freed_memory` keeps such blocks in the heap for reuse: the
memory stays counted in the process's RSS until exit (at most the trim
threshold beyond what is live).
"""

from __future__ import annotations

import ctypes
import os
import sys

__all__ = ["retain_freed_memory"]

#: mallopt parameters (malloc.h).
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_ARENA_MAX = -1, -3, -8
#: Blocks below this come from the heap (glibc's largest dynamic threshold).
MMAP_THRESHOLD = 32 << 20
#: Free memory kept at the heap top before it is returned.
TRIM_THRESHOLD = 128 << 20
#: The user's own glibc settings win.
_USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES")


def retain_freed_memory(*, mmap_threshold: int = MMAP_THRESHOLD,
                        trim_threshold: int = TRIM_THRESHOLD, arena_max: int | None = None) -> bool:
    """Ask glibc's malloc to keep freed blocks for reuse; ``True`` if it took the settings.

    A no-op (``False``) off Linux, under a C library without ``mallopt``
    (musl's accepts nothing), or when the user set glibc's own variables.
    ``arena_max``: at most this many malloc arenas (``MALLOC_ARENA_MAX``, unless
    the user set it). glibc gives each new thread an arena of its own, up to
    8 per core, and each keeps up to the trim threshold of freed memory: a
    command whose threads allocate numpy arrays keeps one heap for all of them.
    """
    if not sys.platform.startswith("linux") or any(v in os.environ for v in _USER_SETTINGS):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    ok = bool(mallopt(M_MMAP_THRESHOLD, mmap_threshold)) & bool(
        mallopt(M_TRIM_THRESHOLD, trim_threshold))
    if arena_max is not None and "MALLOC_ARENA_MAX" not in os.environ:
        ok &= bool(mallopt(M_ARENA_MAX, arena_max))
    return ok
