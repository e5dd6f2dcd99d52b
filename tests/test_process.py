"""Process settings (crosscohort.runtime.process): glibc's malloc, OpenBLAS, numpy and jemalloc variables; the user's own win."""

from __future__ import annotations

import platform
import sys

import pytest

from crosscohort.runtime.process import retain_freed_memory

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
    monkeypatch.setattr(cli, "retain_freed_memory", lambda **kw: calls.append(kw) or True)
    # A subcommand that fails on its input: the settings were applied before it ran.
    assert cli.main(["verify", "--bundle", str(tmp_path / "no_such_bundle"),
                     "--out", str(tmp_path / "v.json")]) != 0
    # meta combines in worker threads: one malloc arena for all of them.
    assert cli.main(["meta", "--out", str(tmp_path / "m.tsv"), str(tmp_path / "none.tsv")]) != 0
    assert calls == [{"arena_max": None}, {"arena_max": 1}]


_ARENAS = """
import ctypes, os, sys, threading
import numpy as np
from crosscohort.runtime.process import retain_freed_memory
if sys.argv[1] == "1":
    assert retain_freed_memory(arena_max=1)
def work():
    for _ in range(20):
        a = np.ones(200_000)  # 1.6 MB: from a heap, below the mmap threshold
        del a
threads = [threading.Thread(target=work) for _ in range(4)]
for t in threads: t.start()
for t in threads: t.join()
libc = ctypes.CDLL(None)
libc.fopen.restype = ctypes.c_void_p
libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
libc.fclose.argtypes = [ctypes.c_void_p]
fh = libc.fopen(sys.argv[2].encode(), b"w")
libc.malloc_info(0, fh)
libc.fclose(fh)
print(open(sys.argv[2]).read().count("<heap nr="))
"""


@pytest.mark.skipif(not GLIBC, reason="malloc arenas are glibc's")
@pytest.mark.parametrize(("arena_max", "user", "one_heap"), [
    ("0", None, False), ("1", None, True), ("1", "4", False),
])
def test_arena_max_one_heap_for_every_thread(tmp_path, arena_max, user, one_heap):
    """Four threads allocating numpy arrays: one heap with arena_max=1, several without,
    and several when the user's own MALLOC_ARENA_MAX says so."""
    import os
    import subprocess

    env = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "GLIBC_"))}
    if user is not None:
        env["MALLOC_ARENA_MAX"] = user
    out = subprocess.run([sys.executable, "-c", _ARENAS, arena_max, str(tmp_path / "info.xml")],
                         env=env, capture_output=True, text=True, check=True).stdout
    heaps = int(out.split()[-1])
    assert (heaps == 1) is one_heap, heaps


def _after_main(command: str, variable: str, preset: str | None, then: str) -> str:
    """The last line ``then`` prints in a fresh interpreter, after ``crosscohort COMMAND --help``
    ran there with ``variable`` unset, or set to ``preset``."""
    import os
    import subprocess

    env = {k: v for k, v in os.environ.items() if k != variable}
    if preset is not None:
        env[variable] = preset
    code = ("import os, sys\nfrom crosscohort.cli import main\n"
            f"try:\n    main([{command!r}, '--help'])\nexcept SystemExit:\n    pass\n{then}\n")
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          check=True).stdout.splitlines()[-1]


@pytest.mark.parametrize(("command", "preset", "expected"), [
    ("meta", None, "1"), ("harmonise", None, "1"), ("assoc", None, None), ("meta", "2", "2"),
])
def test_openblas_threads_only_for_commands_without_linear_algebra(command, preset, expected):
    """meta and harmonise start numpy with one OpenBLAS thread (no spinning workers); others as set."""
    out = _after_main(command, "OPENBLAS_NUM_THREADS", preset,
                      "print(os.environ.get('OPENBLAS_NUM_THREADS'))")
    assert out == str(expected)


@pytest.mark.parametrize(("command", "preset", "expected"), [
    ("meta", None, "0"), ("harmonise", None, "0"), ("assoc", None, None), ("meta", "1", "1"),
])
def test_numpy_huge_pages_off_for_meta_and_harmonise(command, preset, expected):
    """meta and harmonise start numpy without its huge-page requests; others (and the user's
    own setting) as they were. numpy reads the variable at import, so it is set before."""
    out = _after_main(command, "NUMPY_MADVISE_HUGEPAGE", preset,
                      "from numpy._core.multiarray import _set_madvise_hugepage\n"
                      "print(os.environ.get('NUMPY_MADVISE_HUGEPAGE'), _set_madvise_hugepage(False))")
    # numpy's own state (the setter returns the previous one): off exactly when set to 0.
    assert out == f"{expected} {expected != '0'}"


@pytest.mark.parametrize(("command", "preset", "ours"), [
    ("meta", None, True), ("harmonise", None, True), ("assoc", None, False),
    ("meta", "dirty_decay_ms:100", False),
])
def test_jemalloc_keeps_freed_pages_for_meta_and_harmonise(command, preset, ours):
    """meta and harmonise hand polars' jemalloc a longer dirty decay and no muzzy stage
    (set before polars loads, which passes the variable on after its own defaults);
    other commands and a user's own setting are left as they were."""
    from crosscohort.runtime.process import JEMALLOC_CONF

    out = _after_main(command, "_RJEM_MALLOC_CONF", preset,
                      "import polars\nprint(os.environ.get('_RJEM_MALLOC_CONF'))")
    # jemalloc reads the options in order, the last of a name winning: ours after polars'.
    assert out.endswith("," + JEMALLOC_CONF) is ours
    if preset is not None:
        assert out.endswith("," + preset)


@pytest.mark.parametrize(("preset", "expected"), [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")])
def test_openmp_workers_sleep_unless_the_user_says_otherwise(monkeypatch, preset, expected):
    import os

    from crosscohort.runtime.process import passive_openmp_workers

    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    if preset is not None:
        monkeypatch.setenv("OMP_WAIT_POLICY", preset)
    passive_openmp_workers()
    assert os.environ["OMP_WAIT_POLICY"] == expected


@pytest.mark.parametrize(("fmt", "preset", "expected"), [
    ("gwas-ssf", None, "STAGED"), ("harmonised", None, "OURS"), ("gwas-ssf", "dirty_decay_ms:7", None),
])
def test_meta_on_raw_files_releases_freed_pages_sooner(tmp_path, fmt, preset, expected):
    """meta on raw files (harmonisation, then the meta-analysis, in one process) hands polars'
    jemalloc the 1 s decay before polars loads; on harmonised files the 10 s one stays, and a
    user's own setting is kept. Run in a fresh interpreter, as the command runs."""
    import os
    import subprocess

    from crosscohort.runtime.process import JEMALLOC_CONF, JEMALLOC_CONF_STAGED

    rows = "".join(f"1\t{100 * (i + 1)}\tA\tG\t0.01\t0.1\t0.3\t0.9\t1000\trs{i}\n" for i in range(5))
    header = ("chromosome\tbase_pair_location\teffect_allele\tother_allele\tbeta\tstandard_error\t"
              "effect_allele_frequency\tp_value\tn\trsid\n")
    for c in ("a", "b"):
        (tmp_path / f"{c}.tsv").write_text(header + rows.replace("0.01", "0.02" if c == "b" else "0.01"))
    env = {k: v for k, v in os.environ.items() if k != "_RJEM_MALLOC_CONF"}
    if preset is not None:
        env["_RJEM_MALLOC_CONF"] = preset
    code = ("import os, sys\nfrom crosscohort.cli import main\n"
            f"rc = main(['meta', '--format', {fmt!r}, '--out', {str(tmp_path / 'o.tsv')!r}, "
            f"'a={tmp_path / 'a.tsv'}', 'b={tmp_path / 'b.tsv'}'])\n"
            "print(rc, os.environ.get('_RJEM_MALLOC_CONF'))\n")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout.splitlines()[-1]
    rc, conf = out.split(" ", 1)
    assert rc == "0"
    want = {"STAGED": JEMALLOC_CONF_STAGED, "OURS": JEMALLOC_CONF, None: preset}[expected]
    # polars prepends its own defaults; jemalloc takes the last value of each option.
    assert conf.endswith("," + want)
