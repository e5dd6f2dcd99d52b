"""Central harmonisation: align every cohort's alleles to one orientation, with a ledger.

:func:`harmonise` is the entry point (run by :mod:`.driver`); :mod:`.alleles` holds the allele
algebra, :mod:`.align` the rules, :mod:`.formats` readers of other tools'
input formats (GWAMA).
"""

import importlib

__all__ = [
    "HarmonisedSet",
    "harmonise",
    "harmonise_cohort",
    "read_reference",
    "write_harmonised",
]


def __getattr__(name: str):
    # The names of __all__ come from .align, loaded on first use (PEP 562): importing a
    # light submodule such as .formats (the command's --help) then loads no table library.
    if name in __all__:
        return getattr(importlib.import_module("crosscohort.central.harmonise.align"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
