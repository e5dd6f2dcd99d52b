"""The variant ledger: what each stage removed or changed, per cohort and reason.

Counts add up: ``n_in == n_kept + sum(removed.values())``. Changes that keep a
variant (allele swapped, strand flipped) are recorded under ``changed`` and do
not enter that sum.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from crosscohort.contract.errors import UserError
from crosscohort.runtime.atomic import write_json

__all__ = ["Ledger", "LedgerError", "read_ledgers", "write_ledgers"]


class LedgerError(UserError):
    """A ledger whose counts do not add up."""


@dataclass
class Ledger:
    """Counts of one stage for one cohort (and trait, where it applies)."""

    stage: str
    cohort: str
    trait: str | None = None
    unit: str = "variants"
    n_in: int = 0
    n_kept: int = 0
    removed: dict[str, int] = field(default_factory=dict)
    changed: dict[str, int] = field(default_factory=dict)

    def remove(self, reason: str, count: int) -> None:
        """Add ``count`` removals for ``reason`` (zero counts are kept, to show the rule ran)."""
        self.removed[reason] = self.removed.get(reason, 0) + int(count)

    def change(self, reason: str, count: int) -> None:
        self.changed[reason] = self.changed.get(reason, 0) + int(count)

    def check(self) -> Ledger:
        """Raise :class:`LedgerError` unless ``n_in == n_kept + sum(removed)``."""
        total = self.n_kept + sum(self.removed.values())
        if total != self.n_in:
            raise LedgerError(
                f"ledger of stage {self.stage!r}, cohort {self.cohort!r}: "
                f"in={self.n_in} but kept={self.n_kept} + removed={sum(self.removed.values())} = {total}"
            )
        return self

    def to_dict(self) -> dict:
        return asdict(self.check())

    def write(self, path: str | Path) -> Path:
        return write_json(path, self.to_dict())

    @classmethod
    def from_dict(cls, d: dict) -> Ledger:
        return cls(**d).check()


def write_ledgers(ledgers: Iterable[Ledger], path: str | Path) -> Path:
    """Write ledgers as one JSON list (the layout :func:`read_ledgers` reads), atomically."""
    return write_json(path, [lg.to_dict() for lg in ledgers])


def read_ledgers(paths: list[str | Path]) -> list[Ledger]:
    """Read ledger JSON files; a file may hold one ledger or a list of them."""
    out: list[Ledger] = []
    for p in paths:
        data = json.loads(Path(p).read_text())
        items = data if isinstance(data, list) else [data]
        out.extend(Ledger.from_dict(d) for d in items)
    return out
