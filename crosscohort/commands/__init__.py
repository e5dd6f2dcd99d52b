"""One module per ``crosscohort`` subcommand (see :mod:`crosscohort.cli`)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from crosscohort.contract.errors import ConfigError
from crosscohort.schemas import default


def add_schema_option(p: argparse.ArgumentParser | argparse._ArgumentGroup, key: str, *,
                      type: Callable[[str], Any], help: str, **kwargs: Any) -> None:
    """Add ``--NAME`` (the last part of the config ``key``, dashed) with the schema's default.

    The help ends with ``(default X)``: the one default of the config schema
    (:mod:`crosscohort.schemas`), which the workflow's config takes too.
    """
    value = default(key)
    if type in (int, float):
        value = type(value)
    name = key.rpartition(".")[2].replace("_", "-")
    shown = f"{value:g}" if isinstance(value, float) else value
    p.add_argument(f"--{name}", type=type, default=value, help=f"{help} (default {shown})", **kwargs)


def key_value_pairs(values: list[str] | None, flag: str, *, key: str = "COHORT") -> dict[str, str]:
    """``KEY=VALUE`` arguments as an ordered dict; a malformed or repeated key is a one-line error."""
    out: dict[str, str] = {}
    for v in values or []:
        k, sep, val = v.partition("=")
        if not sep or not k or not val:
            raise ConfigError(f"{flag} expects {key}=VALUE; got {v!r}")
        if k in out:
            raise ConfigError(f"{flag} given twice for {key.lower()} {k!r}")
        out[k] = val
    return out
