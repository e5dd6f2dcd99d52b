"""A write-only binary file that bypasses the page cache (``O_DIRECT``), for large final outputs.

A meta-analysis writes hundreds of megabytes of text that no later step of
the same process reads. Written through the page cache, every 4 KiB of it
first claims a fresh page of memory; on virtual machines whose memory the
host backs on first touch (cloud TREs, and the benchmark machine), that
costs more than formatting the text, against little for the same bytes
written with ``O_DIRECT`` from one reused, page-aligned buffer
(``benchmarks/bench_meta.py``; benchmarks/README.md, "Meta-analysis", e346f17).

:class:`UncachedFile` collects writes in an 8 MiB aligned buffer and writes
it whole; the last, partial block is padded to the alignment and the file
truncated to its true length on close. Where ``O_DIRECT`` is not available
(macOS, tmpfs, some network file systems refuse it at open or at the first
write) it falls back to ordinary writes, without losing or repeating a byte.
"""

from __future__ import annotations

import errno
import io
import mmap
import os
from pathlib import Path

__all__ = ["UncachedFile"]

#: Alignment of the buffer's address, of every write's length and offset (a page: it
#: covers 512-byte and 4 KiB logical blocks).
ALIGN = mmap.PAGESIZE
#: Bytes gathered before a write (a multiple of ALIGN).
CHUNK = 8 << 20


class UncachedFile(io.RawIOBase):
    """``open(path, "wb")`` without the page cache where the file system allows it.

    ``direct`` tells whether writes currently bypass the cache (tests check
    both paths; ``use_direct=False`` forces ordinary writes).
    """

    def __init__(self, path: str | Path, *, chunk: int = CHUNK, use_direct: bool = True):
        super().__init__()
        if chunk <= 0 or chunk % ALIGN:
            raise ValueError(f"chunk must be a positive multiple of {ALIGN}, got {chunk}")
        self.name = str(path)
        self._buf = mmap.mmap(-1, chunk)  # anonymous maps are page-aligned
        self._view = memoryview(self._buf)
        self._fill = 0  # bytes waiting in the buffer
        self._size = 0  # bytes in the file (with padding while direct)
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0)
        odirect = getattr(os, "O_DIRECT", 0) if use_direct else 0
        self.direct = False
        self._fd = -1
        if odirect:
            try:
                self._fd = os.open(self.name, flags | odirect, 0o666)
                self.direct = True
            except OSError as exc:
                if exc.errno != errno.EINVAL:
                    self._release()
                    raise
        if self._fd < 0:
            try:
                self._fd = os.open(self.name, flags, 0o666)
            except OSError:
                self._release()
                raise

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._fd

    def write(self, data) -> int:  # noqa: ANN001 - any bytes-like object
        if self.closed:
            raise ValueError("write to closed file")
        src = memoryview(data).cast("B")
        n = len(src)
        done = 0
        room = len(self._buf)
        while done < n:
            take = min(n - done, room - self._fill)
            self._view[self._fill:self._fill + take] = src[done:done + take]
            self._fill += take
            done += take
            if self._fill == room:
                self._write_out(self._view[:room])
                self._fill = 0
        return n

    def _write_out(self, view: memoryview) -> None:
        """Write all of ``view`` at the end of the file (aligned, when direct)."""
        while len(view):
            try:
                k = os.write(self._fd, view)
            except OSError as exc:
                if self.direct and exc.errno == errno.EINVAL:
                    self._fall_back()  # refused at the first write: nothing was written
                    continue
                raise
            self._size += k
            view = view[k:]
            if self.direct and len(view):
                self._fall_back()  # a short write leaves the offset unaligned

    def _fall_back(self) -> None:
        """Continue with ordinary writes where the direct ones stopped."""
        fd = os.open(self.name, os.O_WRONLY | getattr(os, "O_CLOEXEC", 0))
        os.close(self._fd)
        self._fd = fd
        os.lseek(fd, self._size, os.SEEK_SET)
        self.direct = False

    def close(self) -> None:
        if self.closed:
            return
        try:
            if self._fill:
                tail = self._fill
                if self.direct:
                    padded = -(-tail // ALIGN) * ALIGN
                    self._view[tail:padded] = bytes(padded - tail)
                    true_size = self._size + tail
                    self._write_out(self._view[:padded])
                    if self._size != true_size:
                        os.ftruncate(self._fd, true_size)
                        self._size = true_size
                else:
                    self._write_out(self._view[:tail])
                self._fill = 0
        finally:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
            self._release()
            super().close()

    def _release(self) -> None:
        self._view.release()
        try:
            self._buf.close()
        except BufferError:
            pass  # a traceback still holds a slice of it: freed with the traceback
