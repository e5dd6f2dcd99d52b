"""Central meta-analysis of harmonised summary statistics (fixed, random effects, sample size)."""

from crosscohort.central.meta.ivw import (
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
from crosscohort.central.meta.stream import (
    StreamedMeta,
    file_parts,
    memory_parts,
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
