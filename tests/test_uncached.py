"""UncachedFile: the bytes written are the bytes read back, direct or not, whatever the write sizes."""

from __future__ import annotations

import errno
import os

import numpy as np
import pytest

from crosscohort.runtime import uncached
from crosscohort.runtime.uncached import ALIGN, UncachedFile

CHUNK = 4 * ALIGN


def _payload(n: int, seed: int = 0) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


@pytest.mark.parametrize("use_direct", [True, False])
@pytest.mark.parametrize("sizes", [
    [], [1], [ALIGN], [CHUNK], [CHUNK + 1], [3 * CHUNK - 7],
    [5, ALIGN - 5, 1, CHUNK * 2, 333, 0, 17],
])
def test_round_trip(tmp_path, use_direct, sizes):
    data = _payload(sum(sizes), seed=len(sizes))
    path = tmp_path / "out.bin"
    with UncachedFile(path, chunk=CHUNK, use_direct=use_direct) as fh:
        at = 0
        for n in sizes:
            assert fh.write(memoryview(data)[at:at + n]) == n
            at += n
    assert path.read_bytes() == data
    assert fh.closed


def test_truncates_an_existing_file(tmp_path):
    path = tmp_path / "out.bin"
    path.write_bytes(b"x" * (3 * CHUNK))
    with UncachedFile(path, chunk=CHUNK) as fh:
        fh.write(b"short")
    assert path.read_bytes() == b"short"


def test_polars_writes_through_it(tmp_path):
    import polars as pl

    df = pl.DataFrame({"a": np.arange(50_000), "b": np.linspace(0, 1, 50_000)})
    path = tmp_path / "t.tsv"
    with UncachedFile(path, chunk=CHUNK) as fh:
        df.write_csv(fh, separator="\t")
    expected = tmp_path / "e.tsv"
    df.write_csv(expected, separator="\t")
    assert path.read_bytes() == expected.read_bytes()


def _flaky_write(monkeypatch, *, fail_on: int, mode: str):
    """os.write that refuses (EINVAL) or writes short on its ``fail_on``-th call."""
    real = os.write
    calls = {"n": 0}

    def write(fd, view):
        calls["n"] += 1
        if calls["n"] == fail_on:
            if mode == "einval":
                raise OSError(errno.EINVAL, "Invalid argument")
            return real(fd, memoryview(view)[: len(view) // 3])
        return real(fd, view)

    monkeypatch.setattr(uncached.os, "write", write)


@pytest.mark.parametrize("mode", ["einval", "short"])
@pytest.mark.parametrize("fail_on", [1, 2, 3])
def test_falls_back_without_losing_or_repeating_bytes(tmp_path, monkeypatch, mode, fail_on):
    data = _payload(2 * CHUNK + 1234)
    path = tmp_path / "out.bin"
    _flaky_write(monkeypatch, fail_on=fail_on, mode=mode)
    fh = UncachedFile(path, chunk=CHUNK)
    started_direct = fh.direct
    fh.write(data)
    fh.close()
    assert path.read_bytes() == data
    if started_direct:
        assert not fh.direct  # the refusal or short write switched it to ordinary writes


def test_other_errors_are_raised(tmp_path, monkeypatch):
    def write(fd, view):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(uncached.os, "write", write)
    fh = UncachedFile(tmp_path / "out.bin", chunk=CHUNK)
    with pytest.raises(OSError, match="No space"):
        fh.write(_payload(CHUNK))
    with pytest.raises(OSError, match="No space"):
        fh.close()  # the buffer still holds the bytes: close tries once more, and says so
    assert fh.closed


def test_open_refused_falls_back(tmp_path, monkeypatch):
    real = os.open

    def open_(path, flags, mode=0o777):
        if flags & getattr(os, "O_DIRECT", 0):
            raise OSError(errno.EINVAL, "Invalid argument")
        return real(path, flags, mode)

    monkeypatch.setattr(uncached.os, "open", open_)
    path = tmp_path / "out.bin"
    with UncachedFile(path, chunk=CHUNK) as fh:
        assert not fh.direct
        fh.write(b"abc" * 5000)
    assert path.read_bytes() == b"abc" * 5000


def test_missing_folder_is_an_os_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        UncachedFile(tmp_path / "no" / "out.bin")


def test_chunk_must_be_aligned(tmp_path):
    with pytest.raises(ValueError, match="multiple"):
        UncachedFile(tmp_path / "x", chunk=ALIGN + 1)
