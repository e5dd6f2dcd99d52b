"""Central meta-analysis of harmonised summary statistics (fixed and random effects)."""

from crosscohort.meta.ivw import GENOME_WIDE, MetaResult, ivw_arrays, meta_analyse, write_meta

__all__ = ["GENOME_WIDE", "MetaResult", "ivw_arrays", "meta_analyse", "write_meta"]
