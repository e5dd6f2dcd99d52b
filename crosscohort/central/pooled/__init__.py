"""The pooled arm without pooling: exact pooled regression from per-cohort sums.

:mod:`crosscohort.tre.sufficient` runs inside a TRE and computes, per
trait, the cohort-level blocks once and the per-variant sums;
:mod:`crosscohort.central.pooled.fit` runs centrally and solves the pooled model
from the blocks that passed the export gate
(:mod:`crosscohort.contract.release_sums`). Neither side imports the other; the
file layout they share is :mod:`crosscohort.contract.sums`.
"""
