"""The export gate's rule options, shared by ``export`` (the rules applied) and ``verify`` (the rules required).

Defaults and choices are the config schema's ``export_gate`` keys
(:mod:`crosscohort.schemas`); the options' names are :class:`GateRules`'s
fields with dashes, so ``GateRules.from_options(args)`` reads them back.
"""

from __future__ import annotations

import argparse

from crosscohort.commands import add_schema_option
from crosscohort.schemas import property_schema

__all__ = ["add_gate_rule_options"]


#: The numeric rules: name, type, help.
_NUMERIC = (
    ("min_count", int, "released counts must be 0 or > this (All of Us: no counts 1-20)"),
    ("round_n", int, "round n/n_cases/n_controls to the nearest multiple (0 = no rounding)"),
    ("min_mac", float, "minimum overall minor allele count"),
    ("min_mac_group", float, "binary traits: minimum MAC among cases and among controls (0 = off)"),
    ("min_residual_df", int, "minimum residual degrees of freedom of the fit (0 = off)"),
)


def add_gate_rule_options(p: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """Add ``--min-count``, ``--round-n``, ``--min-mac``, ``--min-mac-group``, ``--min-residual-df``, ``--release-n``."""
    for name, kind, text in _NUMERIC:
        add_schema_option(p, f"export_gate.{name}", type=kind, help=text)
    add_schema_option(p, "export_gate.release_n", type=str,
                      choices=property_schema("export_gate.release_n")["enum"],
                      help="trait: one n (and n_cases/n_controls) per trait in every row; "
                           "per_variant: each variant's own counts, rounded (needs --round-n above "
                           "--min-count, so that two counts never differ by 1..min-count). A bundle "
                           "released with 'trait' also satisfies a study that allows 'per_variant'")
