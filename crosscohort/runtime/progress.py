"""Progress of long jobs: variants done, rate and ETA, to a rule's log or a terminal.

A Snakemake rule sends a job's stderr to its log file, so the same
:class:`Progress` writes a plain line there at most every ``every_s``
seconds (a log a user can ``tail -f`` without being flooded), and redraws a
single-line bar with ``\\r`` when stderr is a terminal (an analyst running
``crosscohort assoc`` by hand).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

__all__ = ["Progress", "format_progress"]

_BAR_WIDTH = 24


def _duration(seconds: float) -> str:
    """``26 s``, ``4 min 05 s``, ``2 h 03 min``: short enough for one log line."""
    s = int(round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {(s % 3600) // 60:02d} min"


def format_progress(done: int, total: int, elapsed: float, *, label: str, unit: str = "variants") -> str:
    """One progress line: ``assoc: 40,000/100,000 variants (40%), 2,350 variants/s, ETA 26 s``.

    Parameters
    ----------
    done, total
        Units finished and expected.
    elapsed
        Seconds since the start (the rate is ``done / elapsed``).
    label
        What is running (the line's prefix).
    unit
        Plural name of what is counted.

    Returns
    -------
    str
        The line, without a newline. Rate and ETA are ``?`` until something is done.
    """
    pct = 100.0 * done / total if total > 0 else 100.0
    rate = done / elapsed if elapsed > 0 and done > 0 else None
    rate_s = f"{rate:,.0f} {unit}/s" if rate is not None else f"? {unit}/s"
    if done >= total:
        tail = f"done in {_duration(elapsed)}"
    elif rate is not None:
        tail = f"ETA {_duration((total - done) / rate)}"
    else:
        tail = "ETA ?"
    return f"{label}: {done:,}/{total:,} {unit} ({pct:.0f}%), {rate_s}, {tail}"


class Progress:
    """Count units of work and report rate and ETA every ``every_s`` seconds and at the end.

    Parameters
    ----------
    total
        Units expected (variants of a job's part).
    label
        Prefix of each line (``assoc``).
    stream
        Where to write; a terminal gets a bar redrawn in place, anything else
        (a rule's log) gets whole lines.
    every_s
        Minimum seconds between two lines (a terminal bar is redrawn at most
        every 0.2 s).
    unit
        Plural name of what is counted.
    clock
        Seconds as a float; injectable so tests need not sleep.

    Examples
    --------
    >>> p = Progress(100_000, label="assoc")   # doctest: +SKIP
    >>> for chunk in chunks:                   # doctest: +SKIP
    ...     p.update(len(chunk))
    >>> p.close()                              # doctest: +SKIP
    """

    def __init__(self, total: int, *, label: str, stream: TextIO | None = None, every_s: float = 10.0,
                 unit: str = "variants", clock: Callable[[], float] = time.monotonic) -> None:
        if total < 0:
            raise ValueError(f"Progress total must be >= 0; got {total}")
        self.total = int(total)
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.unit = unit
        self.clock = clock
        self.done = 0
        self.closed = False
        isatty = getattr(self.stream, "isatty", None)
        self.tty = bool(isatty()) if callable(isatty) else False
        # A bar is cheap to redraw; a log line every few seconds would bloat the log.
        self.every_s = min(every_s, 0.2) if self.tty else every_s
        self._start = clock()
        self._last = self._start

    def update(self, n: int) -> None:
        """Record ``n`` more units done; write a line (or redraw the bar) if ``every_s`` has passed.

        Reaching ``total`` writes the final line (once) whatever the time.
        """
        self.done += int(n)
        now = self.clock()
        if self.done >= self.total:
            self.close()
        elif now - self._last >= self.every_s:
            self._last = now
            self._write(now, final=False)

    def close(self) -> None:
        """Write the final line (idempotent); call it if ``total`` was never reached."""
        if self.closed:
            return
        self.closed = True
        self._write(self.clock(), final=True)

    def _write(self, now: float, *, final: bool) -> None:
        line = format_progress(self.done, self.total, now - self._start, label=self.label, unit=self.unit)
        if self.tty:
            frac = min(self.done / self.total, 1.0) if self.total > 0 else 1.0
            filled = int(round(frac * _BAR_WIDTH))
            bar = "#" * filled + "-" * (_BAR_WIDTH - filled)
            # \r and a clear-to-end-of-line: the bar shrinks without leftovers.
            self.stream.write(f"\r[{bar}] {line}\x1b[K" + ("\n" if final else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()
