"""Errors a user can act on. Their message names the file, line or column and the rule."""

from __future__ import annotations

__all__ = ["UserError", "InputError", "ConfigError", "GateError"]


class UserError(ValueError):
    """Base of every error the CLI reports as one line with exit status 2."""


class InputError(UserError):
    """An input file breaks a rule (format, content, sample overlap...)."""


class ConfigError(UserError):
    """A config key or cohort-sheet row is wrong."""


class GateError(UserError):
    """The export gate refuses to release a bundle."""
