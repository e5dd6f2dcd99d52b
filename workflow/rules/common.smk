# Helpers of the crosscohort workflow: config validation at load, the cohort
# sheet, input functions and the list of final outputs. Only helpers here;
# rules live in one .smk per stage.

import json
import shlex
import sys
from pathlib import Path

sys.path.insert(0, workflow.basedir)

from crosscohort.config import config_digest, load_study
from crosscohort.errors import ConfigError

try:
    STUDY = load_study(config, workdir=".", source="config")
except ConfigError as _err:
    raise WorkflowError(str(_err)) from None

MODE = STUDY.mode
COHORTS = STUDY.cohorts
TRAITS = list(config["traits"])
POOLED = "pooled"
RUN_POOLED = STUDY.run_pooled
# TRE-side analysis units: real cohorts run here, plus the pooled pseudo-cohort.
ANALYSIS_UNITS = STUDY.run_cohorts + ([POOLED] if RUN_POOLED else [])
N_PARTS = config["association"]["scatter"]
PARTS = [f"{i}of{N_PARTS}" for i in range(1, N_PARTS + 1)]
DEMO_DIR = config["demo"]["outdir"]
REFERENCE = config["harmonise"]["reference"]

# Rules run the package as `python -m crosscohort`: this checkout's code,
# whichever Python (or conda environment) runs the job.
shell.prefix(
    f"set -euo pipefail; export PYTHONPATH={shlex.quote(workflow.basedir)}${{{{PYTHONPATH:+:$PYTHONPATH}}}}; "
)


wildcard_constraints:
    cohort="|".join(COHORTS + [POOLED]),
    trait="|".join(TRAITS),
    part="[0-9]+of[0-9]+",


# ---------------------------------------------------------------- the sheet
def sheet(cohort, column):
    """One cell of the cohort sheet."""
    return STUDY.row(cohort)[column]


def bfile_prefixes(cohort):
    """PLINK 1 fileset prefixes of an analysis unit (all cohorts for the pooled arm)."""
    members = COHORTS if cohort == POOLED else [cohort]
    return [sheet(c, "genotypes") for c in members]


def genotype_files(wildcards):
    """The .bed/.bim/.fam files an analysis unit reads."""
    return [
        p + ext
        for p in bfile_prefixes(wildcards.cohort)
        for ext in (".bed", ".bim", ".fam")
    ]


def bfile_args(wildcards):
    return " ".join(
        f"--bfile {shlex.quote(p)}" for p in bfile_prefixes(wildcards.cohort)
    )


def pheno_file(wildcards):
    if wildcards.cohort == POOLED:
        return rules.pool_inputs.output.pheno
    return sheet(wildcards.cohort, "pheno")


def covar_file(wildcards):
    if wildcards.cohort == POOLED:
        return rules.pool_inputs.output.covar
    return sheet(wildcards.cohort, "covar")


def covariate_names(wildcards):
    """Covariates of an association: the study's, the PCs, cohort indicators (pooled)."""
    names = list(config["covariates"])
    names += [f"PC{i}" for i in range(1, config["pca"]["n_pcs"] + 1)]
    if wildcards.cohort == POOLED:
        names += [f"cohort_{c}" for c in COHORTS[1:]]
    return ",".join(names)


def trait_type_args(wildcards=None):
    return " ".join(
        f"--trait-type {t}={spec['type']}" for t, spec in config["traits"].items()
    )


def tre_config(cohort):
    """The part of the config that shapes a cohort's export (its digest goes in the manifest)."""
    keys = ("study", "traits", "covariates", "qc", "pca", "association")
    return {**{k: config[k] for k in keys}, "export_gate": STUDY.gate_rules(cohort)}


# ---------------------------------------------------------------- exports
def bundle_files(cohort):
    """Every file of a cohort's export bundle (the manifest last)."""
    files = [f"exports/{cohort}/{t}.tsv.gz" for t in TRAITS]
    files += [f"exports/{cohort}/{t}.meta.yaml" for t in TRAITS]
    files += [f"exports/{cohort}/audit.json", f"exports/{cohort}/audit.md"]
    return files + [f"exports/{cohort}/manifest.json"]


def cohort_pairs(pattern, **kw):
    """`cohort=path` arguments, in sheet order (the order of the direction string)."""
    return " ".join(f"{c}={pattern.format(cohort=c, **kw)}" for c in COHORTS)


# ---------------------------------------------------------------- stage inputs
def export_inputs(wildcards):
    c = wildcards.cohort
    return {
        "sumstats": expand(
            "results/association/{cohort}/{trait}.tsv.gz", cohort=c, trait=TRAITS
        ),
        "ledger": f"results/qc/{c}/qc.ledger.json",
        "ids": [sheet(c, "genotypes") + ".fam", sheet(c, "pheno"), sheet(c, "covar")],
    }


def harmonise_inputs(wildcards):
    inputs = {
        "verified": expand("results/verify/{cohort}.json", cohort=COHORTS),
        "sumstats": expand(
            "exports/{cohort}/{trait}.tsv.gz", cohort=COHORTS, trait=wildcards.trait
        ),
    }
    if REFERENCE:
        inputs["reference"] = REFERENCE
    return inputs


def report_inputs(wildcards):
    t = wildcards.trait
    inputs = {
        "meta": f"results/meta/{t}.tsv.gz",
        "meta_summary": f"results/meta/{t}.tsv.gz.summary.json",
        "loo": f"results/meta/{t}.tsv.gz.loo.tsv",
        "cohorts": expand(
            "results/harmonise/{trait}/{cohort}.tsv.gz", trait=t, cohort=COHORTS
        ),
        "ledgers": [f"results/harmonise/{t}/ledger.json"]
        + expand("results/qc/{cohort}/qc.ledger.json", cohort=STUDY.run_cohorts),
        "audits": expand("exports/{cohort}/audit.json", cohort=COHORTS),
        "manifests": expand("exports/{cohort}/manifest.json", cohort=COHORTS),
    }
    if REFERENCE:
        inputs["reference"] = REFERENCE
    if RUN_POOLED:
        inputs["pooled"] = f"results/association/{POOLED}/{t}.tsv.gz"
        inputs["compare"] = f"results/compare/{t}.json"
        inputs["compare_table"] = f"results/compare/{t}.tsv"
        inputs["compare_loci"] = f"results/compare/{t}.loci.tsv"
    return inputs


def report_args(wildcards, input):
    args = [f"--cohort {c}={p}" for c, p in zip(COHORTS, input.cohorts)]
    args += [f"--ledger {p}" for p in input.ledgers]
    args += [f"--audit {p}" for p in input.audits]
    args += [f"--manifest {p}" for p in input.manifests]
    args += [f"--loo {input.loo}"]
    if REFERENCE:
        args += [f"--reference {input.reference}"]
    if RUN_POOLED:
        args += [
            f"--pooled {input.pooled}",
            f"--compare {input.compare}",
            f"--compare-table {input.compare_table}",
            f"--compare-loci {input.compare_loci}",
        ]
    return " ".join(args)


# ---------------------------------------------------------------- targets
def final_outputs():
    """What `rule all` builds in the configured mode."""
    if MODE == "cohort":
        return bundle_files(config["cohort"])
    reports = expand("results/report/{trait}.html", trait=TRAITS)
    if MODE == "central":
        return reports
    clumps = (
        expand("results/clump/{cohort}/{trait}.tsv", cohort=POOLED, trait=TRAITS)
        if RUN_POOLED
        else []
    )
    return reports + clumps + [f for c in COHORTS for f in bundle_files(c)]


def completion_message():
    """The line printed when a run succeeds: where to look."""
    outs = [f for f in final_outputs() if f.endswith((".html", "manifest.json"))]
    return "crosscohort: done. Outputs:\n" + "\n".join(
        f"  {Path(f).resolve()}" for f in outs
    )
