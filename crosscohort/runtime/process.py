"""Process settings of the ``crosscohort`` command: threads and allocators, in one place.

Nothing here changes a result; each setting changes only where a process
spends its time or memory, and each was taken because a benchmark showed it
(the figures are in ``benchmarks/README.md``, in the section named beside
the setting; none are repeated here). The user's own value of every
variable wins: each is set only when absent.

Two moments matter. Variables that numpy, OpenBLAS and polars read when
they load must be set before the subcommand's modules are imported
(:func:`set_environment`, called by :func:`crosscohort.cli.main` before it
builds the parser); glibc's ``mallopt`` applies from the call on
(:func:`retain_freed_memory`, called once the arguments are parsed).

Settings, and the benchmark behind each:

``OPENBLAS_NUM_THREADS=1`` (harmonise, meta)
    numpy's and scipy's OpenBLAS start a worker thread per core at import,
    which spin-wait for linear algebra these commands never do.
    ``benchmarks/bench_meta.py``; README "Meta-analysis (issue 6)", commit 3bbea55.
``NUMPY_MADVISE_HUGEPAGE=0`` (harmonise, meta)
    numpy asks for transparent huge pages for every array of 4 MiB or more;
    where the host backs memory on first touch (cloud TREs, the benchmark
    machine) each such fault clears 2 MiB at once, for temporaries the heap
    would have reused anyway. ``benchmarks/bench_meta.py`` and
    ``bench_harmonise.py``; README "Meta-analysis (issue 6)", commit d3011da.
``_RJEM_MALLOC_CONF`` = :data:`JEMALLOC_CONF` (harmonise, meta)
    polars' jemalloc returns freed pages to the kernel after 0.5 s, then
    again after 1 s; reading one cohort's file takes longer than that, so
    each file's parse faulted in fresh pages for what the previous one had
    just freed. Freed pages are kept for jemalloc's own default decay and
    returned at once, in one arena for all threads (so that pages one
    thread frees serve the next thread's allocation). ``benchmarks/bench_meta.py``;
    README "Meta-analysis (issue 6)", commits 7749b95, e401493, 1834a9a.
    A meta-analysis of raw files (harmonisation and meta-analysis in one
    process) asks for :data:`JEMALLOC_CONF_STAGED` instead
    (:func:`release_freed_pages_sooner`): 1 s is still long enough for the
    next file's parse, which starts while this one is finished, to reuse
    the pages, and short enough that the pages harmonisation frees are not
    still held when the meta-analysis allocates its own. README
    "Meta-analysis on unsorted files (issue 20)".
``mallopt`` thresholds (every command)
    glibc hands blocks above a dynamic threshold to ``mmap`` and returns
    them on ``free``, and trims the heap top; the per-chromosome and
    per-block temporaries of megabytes are freed and re-allocated many
    times, so each came back as fresh pages. :func:`retain_freed_memory`
    keeps them in the heap for reuse (they stay counted in the RSS, at most
    :data:`TRIM_THRESHOLD` beyond what is live). ``benchmarks/bench_meta.py``;
    README "Meta-analysis (issue 6)", commit 830f4b2.
``mallopt(M_ARENA_MAX, 1)`` (harmonise, meta)
    glibc gives each new thread an arena, each keeping up to the trim
    threshold of freed memory; meta combines in worker threads.
    ``benchmarks/bench_meta.py``; README "Meta-analysis (issue 6)", commit 3f204e3.
``OMP_WAIT_POLICY=PASSIVE`` (the compiled kernels: assoc, qc, pca, clump)
    The association scan runs one short parallel region per kernel and
    chunk; idle OpenMP workers spinning between them took CPU from the main
    thread on a loaded machine. Set by :func:`passive_openmp_workers` when
    numba is first loaded (``crosscohort.tre._bed.set_threads_from_env``).
    ``benchmarks/bench_assoc.py``; README "Association engine", "Idle OpenMP
    workers sleep".
"""

from __future__ import annotations

import ctypes
import os
import sys

__all__ = [
    "TUNED_COMMANDS",
    "JEMALLOC_CONF",
    "JEMALLOC_CONF_STAGED",
    "release_freed_pages_sooner",
    "set_environment",
    "retain_freed_memory",
    "arena_max",
    "passive_openmp_workers",
]

#: Commands without linear algebra whose time goes to reading, aligning and writing tables.
TUNED_COMMANDS: tuple[str, ...] = ("harmonise", "meta")

#: polars' jemalloc for :data:`TUNED_COMMANDS`: jemalloc's own dirty decay (polars
#: shortens it), no muzzy stage, one arena for all threads.
JEMALLOC_CONF = "dirty_decay_ms:10000,muzzy_decay_ms:0,narenas:1"
#: :data:`JEMALLOC_CONF` for a process of two stages, the first freeing its working set
#: before the second allocates (:func:`release_freed_pages_sooner`).
JEMALLOC_CONF_STAGED = "dirty_decay_ms:1000,muzzy_decay_ms:0,narenas:1"

#: mallopt parameters (malloc.h).
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_ARENA_MAX = -1, -3, -8
#: Blocks below this come from the heap (glibc's largest dynamic threshold).
MMAP_THRESHOLD = 32 << 20
#: Free memory kept at the heap top before it is returned.
TRIM_THRESHOLD = 128 << 20
#: The user's own glibc settings win.
_USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES")


def set_environment(command: str | None) -> dict[str, str]:
    """Set the variables libraries read at load for ``command``; the ones set, by name.

    Call before numpy or polars is imported: a variable for a library that
    is already loaded is left alone (it would not be read). Variables the
    user set keep the user's value.
    """
    if command not in TUNED_COMMANDS:
        return {}
    wanted = {}
    if "numpy" not in sys.modules:
        wanted["OPENBLAS_NUM_THREADS"] = "1"
        wanted["NUMPY_MADVISE_HUGEPAGE"] = "0"
    if "polars" not in sys.modules:
        wanted["_RJEM_MALLOC_CONF"] = JEMALLOC_CONF
    done = {}
    for name, value in wanted.items():
        if name not in os.environ:
            os.environ[name] = done[name] = value
    return done


def release_freed_pages_sooner() -> bool:
    """Polars' jemalloc keeps freed pages 1 s (:data:`JEMALLOC_CONF_STAGED`) rather than
    :data:`JEMALLOC_CONF`'s 10 s; ``True`` if it took the setting.

    For a command that runs one stage after another in one process (``meta`` on
    raw files: harmonisation, then the meta-analysis), so that the first
    stage's freed pages do not sit beside the second's. Call before polars is
    imported; a no-op when it is, or when the variable is not the one
    :func:`set_environment` set (the user's own value wins).
    """
    if "polars" in sys.modules or os.environ.get("_RJEM_MALLOC_CONF") != JEMALLOC_CONF:
        return False
    os.environ["_RJEM_MALLOC_CONF"] = JEMALLOC_CONF_STAGED
    return True


def passive_openmp_workers() -> None:
    """Idle OpenMP workers sleep rather than spin (``OMP_WAIT_POLICY=PASSIVE``, unless set).

    libgomp reads the variable when numba's OpenMP layer loads: call before
    the first parallel kernel runs.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def arena_max(command: str | None) -> int | None:
    """The malloc arena limit for ``command`` (None: glibc's default)."""
    return 1 if command in TUNED_COMMANDS else None


def retain_freed_memory(*, mmap_threshold: int = MMAP_THRESHOLD,
                        trim_threshold: int = TRIM_THRESHOLD, arena_max: int | None = None) -> bool:
    """Ask glibc's malloc to keep freed blocks for reuse; ``True`` if it took the settings.

    A no-op (``False``) off Linux, under a C library without ``mallopt``
    (musl's accepts nothing), or when the user set glibc's own variables.

    Parameters
    ----------
    mmap_threshold
        Bytes; blocks below this come from the heap.
    trim_threshold
        Bytes of free memory kept at the heap top.
    arena_max
        At most this many malloc arenas (``MALLOC_ARENA_MAX``, unless the
        user set it): a command whose threads allocate numpy arrays keeps
        one heap for all of them.
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
