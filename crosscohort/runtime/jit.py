"""Compiled kernels loaded on first use, and the small-job switch to their numpy twins (private).

numba costs a process time to import and more CPU at its first compiled
call (its target context imports and installs every implementation
registry), even when the kernel comes from numba's on-disk cache; a scatter of
small association jobs paid that every time (issue 19; figures in
benchmarks/README.md, "Start-up", from ``benchmarks/bench_startup.py``). So kernels are declared with :func:`njit` (numba's options) and
imported, compiled or loaded from the cache only when first called; and a job
small enough that numpy does its whole work in less than that
(:func:`small_job`) runs the numpy twins of the genotype-decoding, linear and
logistic kernels instead, never loading numba at all. Both paths compute the same
sums, in a different order: equal to ~1e-15 relative.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any

__all__ = ["njit", "small_job", "is_small_job", "SMALL_JOB_CELLS", "SMALL_BINARY_JOB_CELLS"]

#: Samples x variants of a job up to which the numpy twins run: where the numpy run and the
#: compiled one with numba's loading cost the same CPU, one quantitative trait
#: (benchmarks/README.md, "Start-up").
SMALL_JOB_CELLS = 4_000_000
#: The same for a job with a case/control trait: numpy's batched Newton costs more per cell
#: than the compiled one, so loading numba pays for itself at half the cells
#: (benchmarks/README.md, "Start-up").
SMALL_BINARY_JOB_CELLS = 2_000_000

_SMALL: ContextVar[bool] = ContextVar("crosscohort_small_job", default=False)


@contextlib.contextmanager
def small_job(small: bool) -> Iterator[None]:
    """Within the block, kernels with a numpy twin use it when ``small`` (this thread only)."""
    token = _SMALL.set(bool(small))
    try:
        yield
    finally:
        _SMALL.reset(token)


def is_small_job() -> bool:
    """Whether the current block was marked a small job (:func:`small_job`)."""
    return _SMALL.get()


class LazyKernel:
    """A function compiled by ``numba.njit(**options)`` at its first call."""

    def __init__(self, func: Callable[..., Any], options: dict[str, Any]):
        self.py_func = func
        self.options = options
        self._dispatcher: Any = None
        functools.update_wrapper(self, func)

    def dispatcher(self) -> Any:
        """The numba dispatcher (imports numba and compiles or loads from cache on first use)."""
        if self._dispatcher is None:
            import numba

            module = self.py_func.__globals__
            module.setdefault("numba", numba)  # the kernels' `numba.prange`
            # Kernels this one calls must be numba dispatchers when it is typed.
            for name in self.py_func.__code__.co_names:
                other = module.get(name)
                if isinstance(other, LazyKernel):
                    module[name] = other.dispatcher()
            self._dispatcher = numba.njit(**self.options)(self.py_func)
        return self._dispatcher

    def __call__(self, *args: Any) -> Any:
        return self.dispatcher()(*args)


def njit(**options: Any) -> Callable[[Callable[..., Any]], LazyKernel]:
    """``numba.njit(**options)``, applied at the function's first call rather than at import."""

    def wrap(func: Callable[..., Any]) -> LazyKernel:
        return LazyKernel(func, options)

    return wrap
