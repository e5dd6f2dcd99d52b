"""Harmonisation with the next file parsed in a worker thread: the sequential loop's results and errors."""

from __future__ import annotations

import threading

import numpy as np
import polars as pl
import pytest

from crosscohort.central.harmonise import driver, readers
from crosscohort.central.harmonise.readers import harmonise_files, parse_input
from crosscohort.contract.errors import InputError

BASES = np.array(list("ACGT"))
HEADER = ["chromosome", "base_pair_location", "effect_allele", "other_allele", "beta",
          "standard_error", "effect_allele_frequency", "p_value", "n"]


def _write_cohort(path, rng: np.random.Generator, m: int, *, n_bad: int = 0) -> int:
    """A GWAS-SSF text file of ``m`` rows, ``n_bad`` of them with SE = NA; returns ``m``."""
    pos = np.sort(rng.choice(np.arange(1, 50 * m), size=m, replace=False))
    ea = rng.integers(0, 4, m)
    oa = (ea + rng.integers(1, 4, m)) % 4  # never equal to the effect allele
    se = rng.uniform(0.01, 0.2, m).round(6).astype(str)
    se[rng.choice(m, size=n_bad, replace=False)] = "NA"
    lines = ["\t".join(HEADER)]
    for i in range(m):
        lines.append("\t".join([
            str(1 + i % 3), str(pos[i]), BASES[ea[i]], BASES[oa[i]],
            f"{rng.normal(0, 0.1):.6f}", se[i], f"{rng.uniform(0.05, 0.95):.4f}",
            f"{rng.uniform(1e-8, 1):.6g}", str(int(rng.integers(500, 5000))),
        ]))
    path.write_text("\n".join(lines) + "\n")
    return m


def _cohorts(tmp_path, sizes, bad=None):
    rng = np.random.default_rng(20261202)
    bad = bad or {}
    specs = []
    for k, m in enumerate(sizes):
        p = tmp_path / f"c{k}.tsv"
        _write_cohort(p, rng, m, n_bad=bad.get(k, 0))
        specs.append(parse_input(f"c{k}={p}", default_format="gwas-ssf"))
    return specs


def _parse_failures(monkeypatch) -> threading.Event:
    """An event set when a file's parse raises InputError (the parse is watched, not changed)."""
    failed = threading.Event()
    real_parse = readers._parse_file

    def parse(path, **kw):
        try:
            return real_parse(path, **kw)
        except InputError:
            failed.set()
            raise

    monkeypatch.setattr(readers, "_parse_file", parse)
    return failed


def _no_worker_left():
    return not any(t.name.startswith("crosscohort-read") for t in threading.enumerate())


@pytest.mark.parametrize("keep", [None, ("beta", "standard_error", "chromosome")])
def test_harmonise_overlap__tables_and_ledgers_equal_the_sequential_loop(tmp_path, keep):
    sizes, bad = [400, 250, 300, 10], {1: 7, 2: 3}
    specs = _cohorts(tmp_path, sizes, bad)
    seq = harmonise_files(specs, variant_ids=False, keep=keep, prefetch=False)
    pre = harmonise_files(specs, variant_ids=False, keep=keep, prefetch=True)
    assert list(pre.tables) == list(seq.tables) == [s.cohort for s in specs]
    for c in seq.tables:
        assert pre.tables[c].equals(seq.tables[c]), c
        assert pre.ledgers[c].to_dict() == seq.ledgers[c].to_dict(), c
    # Planted truth: every row counted, the NA standard errors removed and nothing else.
    for k, c in enumerate(seq.tables):
        lg = pre.ledgers[c].to_dict()
        assert lg["n_in"] == sizes[k]
        assert seq.tables[c].height == sizes[k] - bad.get(k, 0)
    assert _no_worker_left()


def _ragged(path, line: int):
    text = path.read_text().splitlines()
    text[line - 1] += "\textra"
    path.write_text("\n".join(text) + "\n")


@pytest.mark.parametrize("prefetch", [False, True])
def test_harmonise_overlap__first_bad_file_in_command_line_order_is_reported(tmp_path, prefetch):
    specs = _cohorts(tmp_path, [50, 60, 70])
    _ragged(specs[1].path, 5)
    specs[2].path.write_text("")  # also bad, but later on the command line
    with pytest.raises(InputError, match=r"c1\.tsv: line 5: 10 fields, header has 9") as exc:
        harmonise_files(specs, prefetch=prefetch)
    assert "c2.tsv" not in str(exc.value)
    assert _no_worker_left()


def test_harmonise_overlap__error_aligning_a_cohort_wins_over_a_later_files_read_error(
        tmp_path, monkeypatch):
    """The next file's read has already failed in the worker; the earlier cohort's error is shown."""
    specs = _cohorts(tmp_path, [40, 40, 40])
    specs[1].path.write_text("")
    failed = _parse_failures(monkeypatch)

    def align(box, *, cohort, **kw):
        assert failed.wait(30), "the worker never read the next file"
        raise InputError(f"{cohort}: planted alignment error")

    monkeypatch.setattr(driver, "_harmonise_cohort", align)
    with pytest.raises(InputError, match="c0: planted alignment error"):
        harmonise_files(specs, prefetch=True)
    assert _no_worker_left()


def test_harmonise_overlap__reads_run_ahead_by_one_file_at_most(tmp_path, monkeypatch):
    """Bounded memory: while cohort k is aligned, only file k + 1 has been parsed."""
    specs = _cohorts(tmp_path, [30, 30, 30, 30])
    started: list[str] = []
    real_read, real_align = readers._parse_file, driver._harmonise_cohort
    seen_at_align: dict[str, list[str]] = {}

    def read(path, **kw):
        started.append(pl.Series([str(path)]).str.extract(r"(c\d)\.tsv$").item())
        return real_read(path, **kw)

    def align(box, *, cohort, **kw):
        # Let a runaway worker show itself before the snapshot.
        threading.Event().wait(0.05)
        seen_at_align[cohort] = list(started)
        return real_align(box, cohort=cohort, **kw)

    monkeypatch.setattr(readers, "_parse_file", read)
    monkeypatch.setattr(driver, "_harmonise_cohort", align)
    harmonise_files(specs, prefetch=True)
    assert started == ["c0", "c1", "c2", "c3"]
    for k in range(4):
        assert seen_at_align[f"c{k}"] == [f"c{j}" for j in range(min(k + 2, 4))]


def test_harmonise_overlap__error_finishing_a_file_wins_over_the_next_files_parse_error(
        tmp_path, monkeypatch):
    """The values of c0 are finished while c1 is parsed ahead: c0's error (numeric alleles,
    raised while finishing) is reported, not c1's (an empty file, raised while parsing)."""
    specs = _cohorts(tmp_path, [40, 40, 40])
    lines = specs[0].path.read_text().splitlines()
    fields = lines[3].split("\t")
    fields[2:4] = ["1", "2"]
    lines[3] = "\t".join(fields)
    specs[0].path.write_text("\n".join(lines) + "\n")
    specs[1].path.write_text("")
    failed = _parse_failures(monkeypatch)
    real_finish = readers._finish_read

    def finish(parsed, **kw):
        if parsed.path == specs[0].path:
            assert failed.wait(30), "the worker never parsed the next file"
        return real_finish(parsed, **kw)

    monkeypatch.setattr(readers, "_finish_read", finish)
    with pytest.raises(InputError, match=r"c0\.tsv: line 4: alleles '1'/'2' are numeric") as exc:
        harmonise_files(specs, prefetch=True)
    assert "c1.tsv" not in str(exc.value)
    assert _no_worker_left()
