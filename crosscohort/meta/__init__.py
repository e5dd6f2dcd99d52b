"""Central meta-analysis of harmonised summary statistics (fixed, random effects, sample size)."""

from crosscohort.meta.ivw import (
    GENOME_WIDE,
    LEFT_OUT,
    METHODS,
    LeaveOneOut,
    MetaResult,
    ivw_arrays,
    leave_one_out,
    meta_analyse,
    samplesize_arrays,
    write_loo,
    write_meta,
)

__all__ = [
    "GENOME_WIDE",
    "LEFT_OUT",
    "METHODS",
    "LeaveOneOut",
    "MetaResult",
    "ivw_arrays",
    "leave_one_out",
    "meta_analyse",
    "samplesize_arrays",
    "write_loo",
    "write_meta",
]
