"""retain_freed_memory: takes glibc's settings, leaves the user's own alone."""

from __future__ import annotations

import platform
import sys

import pytest

from crosscohort.memory import retain_freed_memory

GLIBC = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"


@pytest.mark.skipif(not GLIBC, reason="mallopt is glibc's")
def test_glibc_takes_the_settings(monkeypatch):
    for var in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES"):
        monkeypatch.delenv(var, raising=False)
    assert retain_freed_memory() is True


@pytest.mark.parametrize("var", ["MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES"])
def test_user_settings_win(monkeypatch, var):
    monkeypatch.setenv(var, "1")
    assert retain_freed_memory() is False


def test_the_command_applies_it_before_a_subcommand_runs(monkeypatch, tmp_path):
    import crosscohort.cli as cli

    calls = []
    monkeypatch.setattr(cli, "retain_freed_memory", lambda: calls.append(1) or True)
    # A subcommand that fails on its input: the settings were applied before it ran.
    assert cli.main(["verify", "--bundle", str(tmp_path / "no_such_bundle"),
                     "--out", str(tmp_path / "v.json")]) != 0
    assert calls == [1]
