"""What a cohort's sufficient statistics hold: the cohort block and the per-variant columns.

One cohort, one trait, two files (the contract between
:mod:`crosscohort.tre.sufficient`, the gate and :mod:`crosscohort.central.pooled.fit`):

``{trait}.block.json``, the cohort block, computed once per trait over the
trait's analysed samples (the association's sample set and phenotype
preprocessing). With ``x`` the raw covariates and ``y`` the trait, centred
on the cohort's own means (``~``):

- ``n``; ``covariates`` (names), ``scale`` per covariate (``raw``: the
  file's values, may be shared across cohorts; ``standardised``: only
  cohort-specific use), ``sum_x`` (1'x), ``sum_y`` (1'y);
- ``xx`` = x~'x~, ``xy`` = x~'y~, ``yy`` = y~'y~ (quantitative traits);
- binary traits: ``n_cases`` and ``xwx`` = X'W0X with X = [1, x] and W0
  the weights mu0 (1 - mu0) of the cohort's covariates-only logistic fit.

``{trait}.sufficient.tsv.gz``, one row per variant (GWAS-SSF key columns
plus), with g the ALT dosage, a missing call filled with the variant's hard
call of the mean (the genotype class nearest its mean over the cohort's
genotyped samples with a call), g~ = g - mean:

- ``n``, ``sum_g`` = 1'g (= n x 2 x EAF);
- quantitative: ``gg`` = g~'g~, ``gy`` = g~'y~, ``gx__<covariate>`` = g~'x~;
- binary: ``u`` = g~'(y - mu0) (the score), ``gwg`` = g~'W0 g~,
  ``gwx__1`` = g~'W0 1 and ``gwx__<covariate>`` = g~'W0 x.

Internal columns (the gate uses and strips them; they never leave a TRE):
``n_hom_ref``, ``n_het``, ``n_hom_alt`` (the filled calls, the dosage
rounded), ``n_missing``, ``n_differ`` (the fewest people, 1..cap, in which
the variant's g differs from that of one of the ``window`` variants before
it or from 2 minus it; cap + 1 when none), and for binary traits
``mac_cases``, ``mac_controls``. The block's ``internal`` entry (level
counts of each covariate with at most three distinct values, joint cell
counts of each pair of them, and of a binary trait; ``differences``: the
window and cap of ``n_differ``) likewise.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from crosscohort.contract.errors import InputError
from crosscohort.runtime.atomic import write_text

__all__ = [
    "BLOCK_SUFFIX",
    "VARIANT_SUFFIX",
    "KEY_COLUMNS",
    "INTERNAL_VARIANT_COLUMNS",
    "CohortBlock",
    "gx_column",
    "gwx_column",
    "read_block",
    "write_block",
]

BLOCK_SUFFIX = ".block.json"
VARIANT_SUFFIX = ".sufficient.tsv.gz"

#: The variant key columns of a sufficient-statistics table (GWAS-SSF names).
KEY_COLUMNS: tuple[str, ...] = (
    "chromosome",
    "base_pair_location",
    "effect_allele",
    "other_allele",
    "variant_id",
    "rsid",
)

#: Per-variant columns that stay in the TRE (the gate's inputs).
INTERNAL_VARIANT_COLUMNS: tuple[str, ...] = (
    "n_hom_ref",
    "n_het",
    "n_hom_alt",
    "n_missing",
    "n_differ",
    "mac_cases",
    "mac_controls",
)


def gx_column(name: str) -> str:
    """Column of g~'x~ for covariate ``name``."""
    return f"gx__{name}"


def gwx_column(name: str) -> str:
    """Column of g~'W0 x for covariate ``name`` (``1`` for the intercept)."""
    return f"gwx__{name}"


@dataclass(frozen=True)
class CohortBlock:
    """One cohort's trait-level sums (see the module docstring for each field).

    Matrices are nested lists in the JSON and numpy arrays here.
    """

    cohort: str
    trait: str
    trait_type: str
    n: int
    covariates: tuple[str, ...]
    scale: tuple[str, ...]
    sum_x: np.ndarray
    sum_y: float
    xx: np.ndarray | None = None
    xy: np.ndarray | None = None
    yy: float | None = None
    n_cases: int | None = None
    xwx: np.ndarray | None = None
    internal: dict = field(default_factory=dict)

    @property
    def k(self) -> int:
        """Number of covariates (no intercept)."""
        return len(self.covariates)

    def to_json(self, *, with_internal: bool = True) -> dict:
        """The JSON object written to ``{trait}.block.json``."""
        out = {}
        for key, value in asdict(self).items():
            if key == "internal" and not with_internal:
                continue
            if isinstance(value, np.ndarray):
                value = value.tolist()
            elif isinstance(value, tuple):
                value = list(value)
            out[key] = value
        return out


def write_block(block: CohortBlock, path: str | Path, *, with_internal: bool = True) -> Path:
    """Write ``block`` as JSON (floats in repr form: exact round trip)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text(path, json.dumps(block.to_json(with_internal=with_internal), indent=1) + "\n")
    return path


def _array(obj: dict, key: str, shape: tuple[int, ...], source: str) -> np.ndarray | None:
    if obj.get(key) is None:
        return None
    try:
        arr = np.asarray(obj[key], dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"{source}: {key!r} must be numbers; got {str(obj[key])[:80]}") from None
    if arr.shape != shape:
        raise InputError(f"{source}: {key!r} must have shape {shape} for {shape[0]} covariates; got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise InputError(f"{source}: {key!r} has a value that is not finite")
    return arr


def read_block(path: str | Path) -> CohortBlock:
    """Read and check a ``{trait}.block.json``.

    Raises
    ------
    InputError
        Not JSON, a missing key, a matrix of the wrong shape, a trait type
        other than quantitative/binary, or a key its trait type needs absent.
    """
    source = str(path)
    try:
        obj = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{source}: not a readable cohort block JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise InputError(f"{source}: a cohort block is a JSON object (keys cohort, trait, ...); "
                         f"got a {type(obj).__name__}")
    missing = [k for k in ("cohort", "trait", "trait_type", "n", "covariates", "scale", "sum_x", "sum_y")
               if k not in obj]
    if missing:
        raise InputError(f"{source}: cohort block lacks key(s) {missing}")
    covs = tuple(str(c) for c in obj["covariates"])
    k = len(covs)
    scale = tuple(str(s) for s in obj["scale"])
    if len(scale) != k or any(s not in ("raw", "standardised") for s in scale):
        raise InputError(f"{source}: 'scale' must give raw or standardised for each of the {k} covariates; "
                         f"got {list(scale)}")
    ttype = obj["trait_type"]
    if ttype not in ("quantitative", "binary"):
        raise InputError(f"{source}: trait_type must be quantitative or binary; got {ttype!r}")
    block = CohortBlock(
        cohort=str(obj["cohort"]), trait=str(obj["trait"]), trait_type=ttype, n=int(obj["n"]),
        covariates=covs, scale=scale, sum_x=_array(obj, "sum_x", (k,), source),
        sum_y=float(obj["sum_y"]), xx=_array(obj, "xx", (k, k), source), xy=_array(obj, "xy", (k,), source),
        yy=None if obj.get("yy") is None else float(obj["yy"]),
        n_cases=None if obj.get("n_cases") is None else int(obj["n_cases"]),
        xwx=_array(obj, "xwx", (k + 1, k + 1), source), internal=dict(obj.get("internal") or {}),
    )
    need = ("xx", "xy", "yy") if ttype == "quantitative" else ("n_cases", "xwx")
    absent = [key for key in need if getattr(block, key) is None]
    if absent:
        raise InputError(f"{source}: a {ttype} trait's block needs {list(need)}; {absent} missing")
    return block
