"""Progress of long jobs: lines for a rule's log, a redrawn bar for a terminal (fake clock, no sleeping)."""

from __future__ import annotations

import io

import numpy as np
import pytest

from crosscohort.runtime.progress import Progress, format_progress


class FakeClock:
    """Seconds that move only when the test says so."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_format_progress__matches_the_documented_line():
    # 40,000 of 100,000 in 17.02 s: 2,350 variants/s, 60,000 left -> 25.5 s -> "26 s"
    line = format_progress(40_000, 100_000, 40_000 / 2350, label="assoc")
    assert line == "assoc: 40,000/100,000 variants (40%), 2,350 variants/s, ETA 26 s"


def test_format_progress__long_etas_in_minutes_and_hours_and_nothing_done_yet():
    assert format_progress(1, 100, 10.0, label="x").endswith("ETA 16 min 30 s")
    assert format_progress(1, 1000, 10.0, label="x").endswith("ETA 2 h 46 min")
    assert format_progress(0, 10, 0.0, label="x") == "x: 0/10 variants (0%), ? variants/s, ETA ?"


def test_progress_log__one_line_per_interval_and_one_at_the_end():
    clock, log = FakeClock(), io.StringIO()
    p = Progress(10_000, label="assoc", stream=log, every_s=10, clock=clock)
    for _ in range(9):  # 1,000 variants per 2 s: a line every 5 chunks (10 s)
        clock.t += 2.0
        p.update(1_000)
    clock.t += 2.0
    p.update(1_000)  # reaches the total: final line whatever the interval
    p.close()        # idempotent
    lines = log.getvalue().splitlines()
    assert lines == [
        "assoc: 5,000/10,000 variants (50%), 500 variants/s, ETA 10 s",
        "assoc: 10,000/10,000 variants (100%), 500 variants/s, done in 20 s",
    ]
    assert "\r" not in log.getvalue()


def test_progress_log__close_reports_a_job_that_ends_short_of_its_total():
    clock, log = FakeClock(), io.StringIO()
    p = Progress(100, label="assoc", stream=log, every_s=10, clock=clock)
    clock.t += 1.0
    p.update(40)
    p.close()
    assert log.getvalue() == "assoc: 40/100 variants (40%), 40 variants/s, ETA 2 s\n"


def test_progress_terminal__bar_redrawn_in_place_with_carriage_returns():
    clock, term = FakeClock(), Terminal()
    p = Progress(4, label="assoc", stream=term, every_s=10, clock=clock)
    for _ in range(4):
        clock.t += 1.0  # > 0.2 s: every update redraws on a terminal
        p.update(1)
    out = term.getvalue()
    assert out.count("\r") == 4 and out.count("\n") == 1 and out.endswith("\n")
    frames = out.split("\r")[1:]
    assert frames[0].startswith("[" + "#" * 6 + "-" * 18 + "] assoc: 1/4 variants (25%)")
    assert frames[-1].startswith("[" + "#" * 24 + "] assoc: 4/4 variants (100%)")


def test_progress__negative_total_refused():
    with pytest.raises(ValueError, match="got -1"):
        Progress(-1, label="assoc")


def test_run_assoc__log_ends_the_scan_with_a_progress_line(tmp_path):
    """The engine hook: the log `crosscohort assoc` writes (a rule's log) reports variants done."""
    from bed_reader import to_bed

    from crosscohort.tre.association import run_assoc

    rng = np.random.default_rng(3)
    n, m = 60, 25
    g = rng.binomial(2, 0.3, size=(n, m)).astype(float)
    iid = [f"s{i}" for i in range(n)]
    to_bed(tmp_path / "g.bed", g, count_A1=True, num_threads=1, properties={
        "fid": iid, "iid": iid, "chromosome": ["1"] * m, "sid": [f"v{j}" for j in range(m)],
        "bp_position": np.arange(1, m + 1) * 100, "allele_1": ["A"] * m, "allele_2": ["G"] * m,
    })
    pheno = tmp_path / "p.tsv"
    pheno.write_text("#FID\tIID\tqt\n" + "".join(f"{i}\t{i}\t{v:.4f}\n" for i, v in zip(iid, rng.normal(size=n), strict=True)))
    log = io.StringIO()
    run_assoc([tmp_path / "g"], pheno, chunk_size=10, log=log)
    progress = [line for line in log.getvalue().splitlines() if " variants (" in line]
    # 3 chunks in well under 10 s: only the final line.
    assert len(progress) == 1 and progress[0].startswith("assoc: 25/25 variants (100%), ")
    assert "done in" in progress[0]
