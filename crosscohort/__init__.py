"""crosscohort: cross-cohort federated GWAS meta-analysis.

Per-cohort association inside each trusted research environment, an export
gate that lets only summary statistics out, and central harmonisation,
meta-analysis, meta-versus-pooled comparison and reporting.
"""

__version__ = "0.1.0"
