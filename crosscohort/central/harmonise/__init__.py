"""Central harmonisation: align every cohort's alleles to one orientation, with a ledger.

:func:`harmonise` is the entry point (run by :mod:`.driver`); :mod:`.alleles` holds the allele
algebra, :mod:`.align` the rules, :mod:`.formats` readers of other tools'
input formats (GWAMA).
"""

from crosscohort.central.harmonise.align import (
    HarmonisedSet,
    harmonise,
    harmonise_cohort,
    read_reference,
    write_harmonised,
)

__all__ = [
    "HarmonisedSet",
    "harmonise",
    "harmonise_cohort",
    "read_reference",
    "write_harmonised",
]
