"""One module per ``crosscohort`` subcommand (see :mod:`crosscohort.cli`)."""

from __future__ import annotations

from crosscohort.contract.errors import ConfigError


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
