"""Central meta-analysis of harmonised summary statistics (fixed, random effects, sample size, MR-MEGA).

Modules, from the formulas out: :mod:`.estimators` (the estimators as in the
papers, pure numpy), :mod:`.stacking` (cohort tables to dense arrays: value
rules, duplicates, the variant union), :mod:`.ivw` (one part's output
columns), :mod:`.mrmega` (MR-MEGA's meta-regression), :mod:`.loo`
(leave-one-cohort-out), :mod:`.stream` (the driver: :func:`meta_analyse` in
memory and :func:`meta_analyse_to_file` for the command are one driver over
one chromosome at a time), :mod:`.tbl` (METAL's and MR-MEGA's layouts).
"""

from crosscohort.central.meta.estimators import ivw_arrays, samplesize_arrays
from crosscohort.central.meta.ivw import GENOME_WIDE, METHODS, MetaResult, write_meta
from crosscohort.central.meta.loo import LEFT_OUT, LeaveOneOut, leave_one_out, write_loo
from crosscohort.central.meta.stream import (
    StreamedMeta,
    file_parts,
    memory_parts,
    meta_analyse,
    meta_analyse_to_file,
)

__all__ = [
    "GENOME_WIDE",
    "LEFT_OUT",
    "METHODS",
    "LeaveOneOut",
    "MetaResult",
    "StreamedMeta",
    "file_parts",
    "ivw_arrays",
    "leave_one_out",
    "memory_parts",
    "meta_analyse",
    "meta_analyse_to_file",
    "samplesize_arrays",
    "write_loo",
    "write_meta",
]
