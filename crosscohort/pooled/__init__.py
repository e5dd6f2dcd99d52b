"""The pooled arm without pooling: exact pooled regression from per-cohort sums.

:mod:`crosscohort.pooled.sufficient` runs inside a TRE and computes, per
trait, the cohort-level blocks once and the per-variant sums;
:mod:`crosscohort.pooled.fit` runs centrally and solves the pooled model
from the blocks that passed the export gate
(:mod:`crosscohort.gate.sufficient`). Neither side imports the other; the
file layout they share is :mod:`crosscohort.pooled.blocks`.
"""
