"""The export gate's rule options, shared by ``export`` (the rules applied) and ``verify`` (the rules required).

Defaults and choices are the config schema's ``export_gate`` keys
(:mod:`crosscohort.schemas`); the options' names are :class:`GateRules`'s
fields with dashes, so ``GateRules.from_options(args)`` reads them back.
"""

from __future__ import annotations

import argparse

from crosscohort.schemas import default, property_schema

__all__ = ["add_gate_rule_options"]


def add_gate_rule_options(p: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """Add ``--min-count``, ``--round-n``, ``--release-n``, ``--min-mac``, ``--min-mac-group``, ``--min-residual-df``."""

    def value(name: str, kind: type) -> int | float:
        return kind(default(f"export_gate.{name}"))

    v = value("min_count", int)
    p.add_argument("--min-count", type=int, default=v,
                   help=f"released counts must be 0 or > this (All of Us: no counts 1-20; default {v})")
    v = value("round_n", int)
    p.add_argument("--round-n", type=int, default=v,
                   help=f"round n/n_cases/n_controls to the nearest multiple (default {v}; 0 = no rounding)")
    release_n = default("export_gate.release_n")
    p.add_argument("--release-n", choices=property_schema("export_gate.release_n")["enum"],
                   default=release_n,
                   help=f"trait: one n (and n_cases/n_controls) per trait in every row; "
                        "per_variant: each variant's own counts, rounded (needs --round-n above "
                        "--min-count, so that two counts never differ by 1..min-count); "
                        f"default {release_n}. A bundle released with 'trait' also satisfies a study "
                        "that allows 'per_variant'")
    v = value("min_mac", float)
    p.add_argument("--min-mac", type=float, default=v,
                   help=f"minimum overall minor allele count (default {v:g})")
    v = value("min_mac_group", float)
    p.add_argument("--min-mac-group", type=float, default=v,
                   help=f"binary traits: minimum MAC among cases and among controls (default {v:g}; 0 = off)")
    v = value("min_residual_df", int)
    p.add_argument("--min-residual-df", type=int, default=v,
                   help=f"minimum residual degrees of freedom of the fit (default {v}; 0 = off)")
