"""Errors a user can act on. Their message names the file, line or column and the rule."""

from __future__ import annotations

__all__ = ["UserError", "InputError", "ConfigError", "GateError", "GateBlock"]


class UserError(ValueError):
    """Base of every error the CLI reports as one line with exit status 2."""


class InputError(UserError):
    """An input file breaks a rule (format, content, sample overlap...)."""


class ConfigError(UserError):
    """A config key or cohort-sheet row is wrong."""


class GateError(UserError):
    """The export gate refuses to release a bundle."""


class GateBlock(GateError):
    """A refusal of the gate whose ``released`` text may go into the blocked audit.

    ``str(exc)`` is for the analyst inside the TRE (it may name TRE paths);
    ``exc.released`` names only bundle file names (with IDs redacted), line
    and column numbers and the rule: never a path, never the identifier.
    """

    def __init__(self, message: str, *, released: str) -> None:
        super().__init__(message)
        self.released = released
