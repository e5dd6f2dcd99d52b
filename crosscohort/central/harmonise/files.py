"""A central command's files: checked before anything is read, written all or nothing.

Three rules, for ``crosscohort harmonise`` and ``crosscohort meta``:

- **one file, one cohort**: the same summary statistics given under two
  cohort ids would be counted twice (the SE shrinks by about sqrt 2). Files
  are compared by content, not by name (a copy or a link is the same file):
  only files of equal size can be equal, and those are compared byte by
  byte (stopping at the first difference), so distinct files of a real run,
  whose sizes differ, cost one ``stat`` each.
- **an output is never an input**: a command refuses to write over a file it
  reads (``meta --out`` naming a cohort's table, ``harmonise --out-dir`` the
  folder of a cohort's ``{cohort}.tsv.gz``).
- **all or nothing**: ``harmonise --out-dir D`` writes its tables and ledger
  into a staging folder inside ``D`` and moves them into ``D`` only when every
  cohort is done (:class:`Staging`). A failure leaves ``D`` as it was (no new
  table beside stale ones); a success replaces the tables of the previous run
  that its ``ledger.json`` lists (files the command wrote), so ``D`` never
  mixes two runs. Any other file in ``D`` is never touched.
"""

from __future__ import annotations

import filecmp
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from crosscohort.contract.errors import ConfigError

__all__ = ["LEDGER_NAME", "Staging", "check_distinct_inputs", "check_outputs_not_inputs"]

#: The ledger harmonise writes beside its tables.
LEDGER_NAME = "ledger.json"


def check_distinct_inputs(paths: Mapping[str, str | Path]) -> None:
    """Raise :class:`ConfigError` when two cohorts' files hold the same bytes.

    Parameters
    ----------
    paths
        Cohort id -> file, in command-line order. Files that do not exist are
        left to the reader (its error names them).
    """
    by_size: dict[int, list[tuple[str, Path]]] = {}
    for cohort, p in paths.items():
        p = Path(p)
        try:
            size = p.stat().st_size
        except OSError:
            continue
        by_size.setdefault(size, []).append((cohort, p))
    for group in by_size.values():
        for i, (c1, p1) in enumerate(group):
            for c2, p2 in group[i + 1:]:
                if filecmp.cmp(p1, p2, shallow=False):
                    raise ConfigError(
                        f"cohorts {c1!r} ({p1}) and {c2!r} ({p2}) are the same file (identical "
                        "content); rule: each cohort's summary statistics are given once (a "
                        "cohort counted twice shrinks the SE by about sqrt 2)"
                    )


def check_outputs_not_inputs(outputs: Iterable[str | Path], inputs: Iterable[str | Path | None],
                             *, option: str) -> None:
    """Raise :class:`ConfigError` when an output path is one of the inputs.

    Paths are compared after resolving links and ``..``; an existing output
    that is the same file as an input under another name (a hard link) counts.
    """
    ins = [Path(p) for p in inputs if p is not None]
    resolved = {p.resolve(): p for p in ins}
    for out in outputs:
        out = Path(out)
        hit = resolved.get(out.resolve())
        if hit is None and out.exists():
            hit = next((p for p in ins if p.exists() and out.samefile(p)), None)
        if hit is not None:
            raise ConfigError(
                f"{option}: {out} is an input ({hit}); rule: an output never overwrites an "
                "input; choose another output name"
            )


class Staging:
    """A staging folder inside ``out_dir`` whose files replace the previous run's at once.

    Use as a context manager: ``dir`` is where to write; :meth:`commit` moves
    the files into ``out_dir``; leaving the block without a commit (an error)
    removes the staging folder and leaves ``out_dir`` as it was.
    """

    def __init__(self, out_dir: str | Path):
        self.out_dir = Path(out_dir)
        if self.out_dir.exists() and not self.out_dir.is_dir():
            raise ConfigError(f"--out-dir: {self.out_dir} exists and is not a folder")
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.dir = Path(tempfile.mkdtemp(prefix=".harmonise-staging-", dir=self.out_dir))

    def __enter__(self) -> Staging:
        return self

    def __exit__(self, *exc) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    def commit(self, cohorts: Iterable[str]) -> None:
        """Move the staged tables and ledger into ``out_dir`` (the ledger last).

        Tables of cohorts that the previous ``ledger.json`` lists and this run
        does not produce are removed (the command wrote them; kept, they would
        pass for results of this run).
        """
        new = set(cohorts)
        for cohort in _ledger_cohorts(self.out_dir / LEDGER_NAME) - new:
            stale = self.out_dir / f"{cohort}.tsv.gz"
            if stale.is_file():
                stale.unlink()
        staged = sorted(self.dir.iterdir(), key=lambda p: p.name == LEDGER_NAME)
        for f in staged:
            os.replace(f, self.out_dir / f.name)


def _ledger_cohorts(path: Path) -> set[str]:
    """Cohort ids of a harmonise ledger (empty when absent or not one)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return set()
    items = data if isinstance(data, list) else [data]
    return {d["cohort"] for d in items if isinstance(d, dict) and d.get("stage") == "harmonise"
            and isinstance(d.get("cohort"), str)}
