"""The export gate's rule options, shared by ``export`` (the rules applied) and ``verify`` (the rules required).

Defaults and choices are the config schema's ``export_gate`` keys
(:mod:`crosscohort.schemas`); the options' names are :class:`GateRules`'s
fields with dashes, so ``GateRules.from_options(args)`` reads them back.
"""

from __future__ import annotations

import argparse

from crosscohort.schemas import default, property_schema

__all__ = ["add_gate_rule_options"]


#: The numeric rules: name, type, help (``{v}``: the default).
_NUMERIC = (
    ("min_count", int, "released counts must be 0 or > this (All of Us: no counts 1-20; default {v})"),
    ("round_n", int, "round n/n_cases/n_controls to the nearest multiple (default {v}; 0 = no rounding)"),
    ("min_mac", float, "minimum overall minor allele count (default {v:g})"),
    ("min_mac_group", float, "binary traits: minimum MAC among cases and among controls (default {v:g}; 0 = off)"),
    ("min_residual_df", int, "minimum residual degrees of freedom of the fit (default {v}; 0 = off)"),
)


def add_gate_rule_options(p: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """Add ``--min-count``, ``--round-n``, ``--min-mac``, ``--min-mac-group``, ``--min-residual-df``, ``--release-n``."""
    for name, kind, text in _NUMERIC:
        v = kind(default(f"export_gate.{name}"))
        p.add_argument(f"--{name.replace('_', '-')}", type=kind, default=v, help=text.format(v=v))
    release_n = default("export_gate.release_n")
    p.add_argument("--release-n", choices=property_schema("export_gate.release_n")["enum"],
                   default=release_n,
                   help="trait: one n (and n_cases/n_controls) per trait in every row; "
                        "per_variant: each variant's own counts, rounded (needs --round-n above "
                        "--min-count, so that two counts never differ by 1..min-count); "
                        f"default {release_n}. A bundle released with 'trait' also satisfies a study "
                        "that allows 'per_variant'")
