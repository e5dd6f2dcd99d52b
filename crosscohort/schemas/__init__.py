"""The study config's JSON Schema, the one place each default and valid range is written.

``config.schema.yaml`` (package data, beside this file) validates
``config/config.yaml`` and fills its defaults (:mod:`crosscohort.config`); the
commands' argparse defaults and the library's dataclass defaults read the
same values here (:func:`default`), and the range checks of QC thresholds
and gate rules read the schema's bounds (:func:`out_of_range`), so that the
workflow, the command line and the Python API cannot disagree.

The schema is parsed once per process, on first use (libyaml's parser
where present), so a command's ``--help`` stays cheap. This module imports
nothing of the package: both sides of the gate may read it.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

__all__ = ["SCHEMA_DIR", "config_schema", "property_schema", "default", "out_of_range", "describe_range"]

SCHEMA_DIR = Path(__file__).resolve().parent

_MISSING = object()


@functools.cache
def _load(name: str) -> dict[str, Any]:
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load((SCHEMA_DIR / name).read_text(), Loader=loader)


def config_schema() -> dict[str, Any]:
    """The parsed config schema (a copy: callers may change it)."""
    return copy.deepcopy(_load("config.schema.yaml"))


def property_schema(key: str) -> dict[str, Any]:
    """The schema of one config key, dotted (``"qc.hwe"``, ``"export_gate.min_count"``).

    Raises
    ------
    KeyError
        Naming the key when the schema has no such property.
    """
    node = _load("config.schema.yaml")
    for part in key.split("."):
        props = node.get("properties", {})
        if part not in props:
            raise KeyError(f"config schema has no key {key!r} (no {part!r} under it)")
        node = props[part]
    return node


def default(key: str) -> Any:
    """The schema's default of one config key (``default("qc.hwe")`` -> ``1e-15``).

    Raises
    ------
    KeyError
        When the key is not in the schema or has no default.
    """
    node = property_schema(key)
    value = node.get("default", _MISSING)
    if value is _MISSING:
        raise KeyError(f"config schema key {key!r} has no default")
    return copy.deepcopy(value)


def describe_range(key: str) -> str:
    """The schema's bounds of a number key as an interval: ``[0, 1)``, ``[0, inf)``."""
    node = property_schema(key)
    if "exclusiveMinimum" in node:
        low = f"({node['exclusiveMinimum']:g}"
    else:
        low = f"[{node['minimum']:g}" if "minimum" in node else "(-inf"
    if "exclusiveMaximum" in node:
        high = f"{node['exclusiveMaximum']:g})"
    else:
        high = f"{node['maximum']:g}]" if "maximum" in node else "inf)"
    return f"{low}, {high}"


def out_of_range(key: str, value: float) -> str | None:
    """None when ``value`` is within the schema's bounds for ``key``, else the rule it breaks.

    The rule reads ``must be in [0, 1)`` (the interval of :func:`describe_range`),
    or ``must be >= 0`` for a key bounded below only; a NaN is out of every range.
    """
    node = property_schema(key)
    ok = value == value  # NaN
    if ok and "minimum" in node:
        ok = value >= node["minimum"]
    if ok and "exclusiveMinimum" in node:
        ok = value > node["exclusiveMinimum"]
    if ok and "maximum" in node:
        ok = value <= node["maximum"]
    if ok and "exclusiveMaximum" in node:
        ok = value < node["exclusiveMaximum"]
    if ok:
        return None
    if "maximum" in node or "exclusiveMaximum" in node:
        return f"must be in {describe_range(key)}"
    if "exclusiveMinimum" in node:
        return f"must be > {node['exclusiveMinimum']:g}"
    return f"must be >= {node.get('minimum', float('-inf')):g}"
