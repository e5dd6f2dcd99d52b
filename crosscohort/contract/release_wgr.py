"""The step-1 summary of whole-genome regression, as the export gate releases it.

``crosscohort wgr`` writes ``OUT.wgr.json`` inside the TRE: the shrinkage
grids, the chosen level-1 shrinkage and CV R² per trait, the λGC of the
step-1 variants without the LOCO offset, and two counts of people (the
step-1 sample size and each trait's). The gate releases it as ``wgr.json``
(listed in the manifest under ``wgr``) only through an allow-list:

- every key is one this module names; a key it does not know blocks the
  export (an unknown key may carry anything, so nothing is guessed);
- counts of people (``n_samples``, each trait's ``n``) are withheld, not
  released: the released sample sizes are in ``{trait}.meta.yaml``, and the
  step-1 counts beside them would give differences that count people;
- every number is finite (else released as null) and of its declared kind;
  every string is one of a fixed set (CV scheme, trait type, criterion
  name) or an exported trait's name, so no free text can leave;
- the λGC *with* LOCO is computed here, from the released table of the
  trait (the step-2 statistics as exported), never taken from the input.

Numbers are checked for their kind, not their meaning: a count of people
written into a statistic's field (``cv_r2``: 7) is not recognised, as the
audit's limits say of statistics in general; the allow-list keeps the
fields to those ``crosscohort wgr`` writes. The file is then scanned for sample identifiers with every other released
file (:func:`crosscohort.tre.gate.identifiers.scan_released`).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

from crosscohort.contract.errors import GateBlock

__all__ = ["FIXED_STRINGS", "WGR_FILE", "WGR_WITHHELD", "check_released_wgr", "own_strings",
           "release_wgr_summary", "released_lambda"]

#: The released file's name in the bundle.
WGR_FILE = "wgr.json"

#: What the released summary says instead of the step-1 counts of people.
WGR_WITHHELD = (
    "withheld: the step-1 counts of people (n_samples, each trait's n) are not released; "
    "the released sample sizes are in each trait's metadata"
)

_CV = re.compile(r"^(loocv|[1-9][0-9]{0,3}-fold)$")
_CRITERIA = ("mse", "neg_loglik_per_sample")
_TRAIT_TYPES = ("quantitative", "binary")
#: Level-1 stacking of step 1 (``crosscohort wgr --level1``).
_LEVEL1 = ("blocks", "pooled")

#: Run-level keys: kind of value.
_RUN_KEYS = {
    "n_variants": "count_of_variants", "n_blocks": "count_of_variants", "block_size": "count_of_variants",
    "cv": "cv", "level0_h2": "numbers", "level0_shrinkage": "numbers", "traits": "traits", "level1": "level1",
}
#: Per-trait keys: kind of value.
_TRAIT_KEYS = {
    "trait": "trait", "trait_type": "trait_type", "chosen_level1_h2": "number",
    "chosen_level1_shrinkage": "number", "cv_r2": "number", "cv_criterion": "number",
    "criterion_name": "criterion", "level1_h2": "numbers", "level1_shrinkage": "numbers",
    "criterion": "numbers", "r2": "numbers", "lambda_gc_no_loco": "number",
}
#: Keys that count people: read, never released.
_WITHHELD_RUN = ("n_samples",)
_WITHHELD_TRAIT = ("n",)

#: Fixed text of the released file (not compared with sample IDs by the scan).
FIXED_STRINGS: tuple[str, ...] = (
    WGR_WITHHELD, WGR_FILE, "wgr", "wgr_allow_list", "model", "withheld", "lambda_gc_loco", "loocv", *_CRITERIA, *_LEVEL1,
    *_RUN_KEYS, *_TRAIT_KEYS,
)


def released_lambda(released) -> float:
    """λGC of a released table (its -log10 p, else its p-value); NaN when it has neither."""
    from crosscohort.contract.stats import lambda_gc, neg_log10_p

    if "neg_log_10_p_value" in released.columns:
        return lambda_gc(released.get_column("neg_log_10_p_value").to_numpy())
    if "p_value" in released.columns:
        return lambda_gc(neg_log10_p(released.get_column("p_value").to_numpy()))
    return float("nan")


def own_strings(released: dict) -> frozenset[str]:
    """The gate's own text in a released summary, not compared with sample IDs by the scan.

    :data:`FIXED_STRINGS` plus its CV scheme, which :func:`release_wgr_summary`
    only lets through as ``loocv`` or ``K-fold`` (a number of folds, not an
    identifier: with families numbered from 1, ``5-fold`` holds the token 5).
    Trait names are not included: they are compared, as everywhere in the bundle.
    """
    cv = released.get("cv")
    return frozenset((*FIXED_STRINGS, *([cv] if isinstance(cv, str) and _CV.match(cv) else [])))


def _block(path: Path, where: str, rule: str, *, detail: str = "") -> GateBlock:
    # The input path and the detail (a key) stay in the TRE log; the released audit names neither.
    return GateBlock(f"{path}: {where}{detail}: {rule}; export blocked",
                     released=f"{WGR_FILE}: {where}: {rule}; export blocked")


def _number(path: Path, where: str, v: object) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)) and v is not None:
        raise _block(path, where, f"must be a number (rule wgr_allow_list); got a {type(v).__name__}")
    if v is None or not math.isfinite(v):
        return None
    return float(v)


def _value(path: Path, where: str, kind: str, v: object, *, trait: str | None = None,
           trait_type: str | None = None) -> object:
    if kind == "number":
        return _number(path, where, v)
    if kind == "numbers":
        if not isinstance(v, list):
            raise _block(path, where, f"must be a list of numbers (rule wgr_allow_list); got a {type(v).__name__}")
        return [_number(path, f"{where}[{i}]", x) for i, x in enumerate(v)]
    if kind == "count_of_variants":
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise _block(path, where, "must be a whole number of variants (rule wgr_allow_list)")
        return v
    fixed = {"cv": None, "criterion": _CRITERIA, "level1": _LEVEL1, "trait_type": (trait_type,), "trait": (trait,)}[kind]
    ok = isinstance(v, str) and (_CV.match(v) if fixed is None else v in fixed)
    if not ok:
        # The value is not echoed: it may be what the rule keeps in.
        raise _block(path, where, f"value not allowed (rule wgr_allow_list: {kind} must be one of the "
                                  "fixed values or the exported trait's own)")
    return v


def release_wgr_summary(path: str | Path, *, trait_types: dict[str, str],
                        lambda_loco: dict[str, float]) -> dict:
    """The released form of a step-1 summary (``OUT.wgr.json`` of ``crosscohort wgr``).

    Parameters
    ----------
    path
        The step-1 summary written inside the TRE.
    trait_types
        ``{trait: type}`` of the traits exported in this bundle; the summary
        must describe exactly these traits, with these types.
    lambda_loco
        ``{trait: λGC}`` of each trait's released sumstats (step 2, with LOCO).

    Returns
    -------
    dict
        ``model`` (``"wgr"``), the allow-listed run keys, ``withheld``, and
        ``traits``: ``{trait: {allow-listed keys..., lambda_gc_loco}}``.

    Raises
    ------
    GateBlock
        Unreadable JSON, a key not on the allow-list, a value of the wrong
        kind, a string outside the fixed set, or traits other than the
        exported ones; the message names the key, never the offending value.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise GateBlock(f"{path}: not a readable step-1 summary ({type(exc).__name__}); export blocked",
                        released=f"{WGR_FILE}: input not a readable step-1 summary; export blocked") from None
    if not isinstance(data, dict):
        raise _block(path, "top level", "must be a JSON object (rule wgr_allow_list)")
    out: dict = {"model": "wgr"}
    for key, v in data.items():
        if key in _WITHHELD_RUN:
            continue
        if key not in _RUN_KEYS:
            raise _block(path, "a run-level key", "not on the allow-list of the step-1 summary "
                         "(rule wgr_allow_list)", detail=f" {key!r}")
        if key != "traits":
            out[key] = _value(path, key, _RUN_KEYS[key], v)
    entries = data.get("traits")
    if not isinstance(entries, list):
        raise _block(path, "traits", "must be a list of trait summaries (rule wgr_allow_list)")
    traits: dict[str, dict] = {}
    for i, entry in enumerate(entries):
        where = f"traits[{i}]"
        if not isinstance(entry, dict):
            raise _block(path, where, "must be an object (rule wgr_allow_list)")
        name = entry.get("trait")
        if not isinstance(name, str) or name not in trait_types or name in traits:
            raise _block(path, f"{where}.trait", "must name an exported trait once (rule wgr_allow_list)")
        released: dict = {}
        for key, v in entry.items():
            if key in _WITHHELD_TRAIT:
                continue
            if key not in _TRAIT_KEYS:
                raise _block(path, f"{where}: a key", "not on the allow-list of the step-1 summary "
                             "(rule wgr_allow_list)", detail=f" {key!r}")
            released[key] = _value(path, f"{where}.{key}", _TRAIT_KEYS[key], v, trait=name,
                                   trait_type=trait_types[name])
        lam = lambda_loco.get(name)
        released["lambda_gc_loco"] = lam if lam is not None and math.isfinite(lam) else None
        traits[name] = released
    missing = sorted(set(trait_types) - set(traits))
    if missing:
        raise _block(path, "traits", f"no step-1 summary for {len(missing)} exported trait(s) "
                                     "(rule wgr_allow_list: one per exported trait)")
    out["withheld"] = WGR_WITHHELD
    out["traits"] = traits
    return out


def check_released_wgr(path: str | Path, *, traits: list[str]) -> dict:
    """Re-check a released ``wgr.json`` centrally (a bundle's claims prove nothing).

    The keys must be those :func:`release_wgr_summary` writes (no count of
    people among them), the traits those of the bundle's manifest.

    Returns
    -------
    dict
        The parsed summary.

    Raises
    ------
    GateError
        Not a JSON object, a key outside the released allow-list, or a trait
        the manifest does not list; naming the file and the key.
    """
    from crosscohort.contract.errors import GateError

    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise GateError(f"{path}, line {exc.lineno}, column {exc.colno}: not valid JSON ({exc.msg})") from None
    if not isinstance(data, dict) or data.get("model") != "wgr" or not isinstance(data.get("traits"), dict):
        raise GateError(f"{path}: a released step-1 summary is an object with model 'wgr' and traits "
                        "(rule wgr_allow_list)")
    extra = sorted(set(data) - {*_RUN_KEYS, "model", "withheld"})
    if extra:
        raise GateError(f"{path}: key(s) {extra} outside the released allow-list (rule wgr_allow_list)")
    for name, entry in data["traits"].items():
        if name not in traits:
            raise GateError(f"{path}: traits[{name!r}] is not a trait of the bundle's manifest {traits}")
        if not isinstance(entry, dict):
            raise GateError(f"{path}: traits[{name!r}] must be an object")
        extra = sorted(set(entry) - {*_TRAIT_KEYS, "lambda_gc_loco"})
        if extra:
            raise GateError(f"{path}: traits[{name!r}] key(s) {extra} outside the released allow-list "
                            "(rule wgr_allow_list)")
    return data
