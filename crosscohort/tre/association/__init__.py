"""Per-cohort association: linear and logistic regression of each trait on each variant's dosage.

The public entry points are :func:`run_assoc` (file paths in, one GWAS-SSF
table per trait out, as ``crosscohort assoc`` runs it), and the two steps it
is made of: :func:`build_designs` (which samples and covariates enter each
trait's fit) and :func:`scan` (the chunked variant loop).
"""

from crosscohort.tre.association.engine import (
    ERROR_CODES,
    AssocResult,
    TraitDesign,
    build_designs,
    part_slice,
    run_assoc,
    scan,
)

__all__ = [
    "ERROR_CODES",
    "AssocResult",
    "TraitDesign",
    "build_designs",
    "part_slice",
    "run_assoc",
    "scan",
]
