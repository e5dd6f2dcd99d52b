# Helpers of the crosscohort workflow: config validation at load, the cohort
# sheet, input functions and the list of final outputs. Only helpers here;
# rules live in one .smk per stage.

import shlex
from pathlib import Path

# The package is installed (README: pip install -e ".[workflow]"); the main process
# imports it from there, the jobs run this checkout's code (shell.prefix below).
from crosscohort.config import config_digest, load_study, study_config
from crosscohort.contract.errors import UserError
from crosscohort.tre.genotype_formats import container_files, vcf_sample_sidecar

# A study config given with --configfile states the study completely: it replaces
# config/config.yaml (the demo's study) rather than being merged into it, so the
# demo's traits, reference panel and QC settings never leak into a real study;
# keys it leaves out take the schema defaults (crosscohort.config.study_config).
_STUDY_FILES = [str(f) for f in workflow.overwrite_configfiles]
_config = study_config(
    config,
    overrides=workflow.config_settings.overwrite_config,
    configfiles=_STUDY_FILES,
)
if _config is not config:
    config.clear()
    config.update(_config)

# The file and column checks read the cohort's tables: once, in the main process,
# not again in every job a cluster executor spawns.
_SOURCE = ", ".join(_STUDY_FILES) or "config"
_CHECK = not workflow.remote_exec
try:
    STUDY = load_study(config, workdir=".", source=_SOURCE, check_files=_CHECK)
except UserError as _err:
    raise WorkflowError(str(_err)) from None

MODE = STUDY.mode
COHORTS = STUDY.cohorts
TRAITS = list(config["traits"])
POOLED = "pooled"
RUN_POOLED = STUDY.run_pooled
# TRE-side analysis units: real cohorts run here, plus the pooled pseudo-cohort.
ANALYSIS_UNITS = STUDY.run_cohorts + ([POOLED] if RUN_POOLED else [])
N_PARTS = config["association"]["scatter"]
# Association model: whole-genome regression (step 1 per cohort, LOCO offsets in step 2)
# or the fixed-effects scan; auto = wgr when relatives are kept (no KING cutoff).
ASSOC_MODEL = config["association"].get("model", "auto")
if ASSOC_MODEL == "auto":
    ASSOC_MODEL = "wgr" if config["qc"].get("king_cutoff") is None else "glm"
WGR = config["association"]["wgr"]
# wgr's step 2 calibrates quantitative traits for relatives' correlated LOCO
# residuals (crosscohort assoc --relatives) from the KING pairs qc writes
# (results/qc/{cohort}/qc.king.tsv: individual-level, never an export input).
WGR_RELATIVES = (
    ASSOC_MODEL == "wgr"
    and WGR["relatives"]
    and any(spec["type"] == "quantitative" for spec in config["traits"].values())
)
PARTS = [f"{i}of{N_PARTS}" for i in range(1, N_PARTS + 1)]
DEMO_DIR = config["demo"]["outdir"]
REFERENCE = config["harmonise"]["reference"]
# Exports are signed (manifest.sig.json) with a key per cohort that the demo
# generates under results/keys/, or in cohort mode with the TRE's own key.
SIGNS = MODE == "demo" or bool(config["export_gate"]["signing_key"])

# Cohorts that opted in to the federated pooled fit (sheet column `sufficient`).
SUFFICIENT = STUDY.sufficient_cohorts

# Rules run the package as `python -m crosscohort`: this checkout's code,
# whichever Python runs the job (the envs/*.yaml conda environments hold the
# package's dependencies, not the package).
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


def unit_cohorts(cohort):
    """Cohorts of an analysis unit: itself, or all cohorts for the pooled arm."""
    return COHORTS if cohort == POOLED else [cohort]


def bfile_prefixes(cohort):
    """Genotype paths (sheet column `genotypes`) of an analysis unit; PLINK 1 prefixes in the demo."""
    return [sheet(c, "genotypes") for c in unit_cohorts(cohort)]


def vcf_psam(cohort):
    """The .psam beside a VCF cohort's file (FIDs, parents, sex), or None when absent."""
    side = vcf_sample_sidecar(sheet(cohort, "genotypes"))
    return str(side) if side.exists() else None


def cohort_genotype_files(cohort):
    """The files one cohort's genotypes are read from, per its `genotype_format`."""
    fmt = sheet(cohort, "genotype_format")
    sample = vcf_psam(cohort) if fmt == "vcf" else None
    return container_files(fmt, sheet(cohort, "genotypes"), sample=sample)


def genotype_files(wildcards):
    """The genotype files an analysis unit reads (.bed/.bim/.fam, .pgen/.pvar/.psam, ...)."""
    return [f for c in unit_cohorts(wildcards.cohort) for f in cohort_genotype_files(c)]


def genotype_args(wildcards):
    """The `crosscohort` genotype options of an analysis unit, from the sheet's `genotype_format`."""
    members = unit_cohorts(wildcards.cohort)
    formats = sorted({sheet(c, "genotype_format") for c in members})
    if len(formats) > 1 or (formats == ["bgen"] and len(members) > 1):
        raise WorkflowError(
            f"{wildcards.cohort}: the pooled arm stacks one genotype format, one file per cohort "
            f"(bfile, pfile or vcf); the sheet has {formats} for {members}"
        )
    args = []
    for c in members:
        fmt, path = sheet(c, "genotype_format"), shlex.quote(sheet(c, "genotypes"))
        args.append(f"--{fmt} {path}")
        if fmt == "vcf" and vcf_psam(c):
            args.append(f"--psam {shlex.quote(vcf_psam(c))}")
    return " ".join(args)


# association.smk's name for the same options
bfile_args = genotype_args


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


def wgr_pred(wildcards):
    """The step-1 prediction list of an analysis unit (model wgr), else nothing."""
    if ASSOC_MODEL != "wgr":
        return []
    return f"results/association/{wildcards.cohort}/wgr/step1_pred.list"


def qc_relatives_output():
    """qc's related-pairs table, declared only where wgr's step 2 reads it."""
    return {"relatives": "results/qc/{cohort}/qc.king.tsv"} if WGR_RELATIVES else {}


def qc_relatives_args(wildcards):
    """`crosscohort qc --relatives-min-kinship`: the config's floor where the pairs are read, else none."""
    floor = config["qc"]["relatives_min_kinship"] if WGR_RELATIVES else "none"
    return f"--relatives-min-kinship {floor}"


def wgr_relatives(wildcards):
    """The related pairs an analysis unit's step 2 calibrates for (the pooled arm: every cohort's), else nothing."""
    if not WGR_RELATIVES:
        return []
    return f"results/qc/{wildcards.cohort}/qc.king.tsv"


def wgr_step2_args(wildcards, input):
    """`crosscohort assoc` options of step 2 (model wgr): the LOCO list, the relatives' pairs, the binary correction."""
    if ASSOC_MODEL != "wgr":
        return ""
    correction = WGR["correction"]
    fix = {
        "firth": "--firth --approx",
        "firth-exact": "--firth",
        "spa": "--spa",
        "none": "",
    }[correction]
    relatives = f" --relatives {input.relatives}" if WGR_RELATIVES else ""
    return f"--pred {input.pred}{relatives} {fix} --pThresh {WGR['pthresh']}"


def wgr_export_output():
    """The export's released step-1 summary, declared only with model wgr."""
    return {"wgr": "exports/{cohort}/wgr.json"} if ASSOC_MODEL == "wgr" else {}


def wgr_export_args(wildcards, input):
    """`crosscohort export --wgr-summary` of step 1's summary (model wgr), else nothing."""
    return f"--wgr-summary {input.wgr_summary}" if ASSOC_MODEL == "wgr" else ""


def tre_config(cohort):
    """The part of the config that shapes a cohort's export (its digest goes in the manifest)."""
    keys = ("study", "traits", "covariates", "qc", "pca", "association")
    return {**{k: config[k] for k in keys}, "export_gate": STUDY.gate_rules(cohort)}


# ---------------------------------------------------------------- exports
def bundle_files(cohort):
    """Every file of a cohort's export bundle (the manifest last).

    The signature is listed where this run signs; central mode leaves it to
    verify, which refuses a missing one with a clearer message than a
    missing input.
    """
    files = [f"exports/{cohort}/{t}.tsv.gz" for t in TRAITS]
    files += [f"exports/{cohort}/{t}.meta.yaml" for t in TRAITS]
    files += [f"exports/{cohort}/audit.json", f"exports/{cohort}/audit.md"]
    if SIGNS and MODE != "central":
        files.append(f"exports/{cohort}/manifest.sig.json")
    return files + [f"exports/{cohort}/manifest.json"]


def signature_output():
    """The export's named signature output, declared only where this run signs."""
    return {"signature": "exports/{cohort}/manifest.sig.json"} if SIGNS else {}


def signing_key(cohort):
    """The private key that signs a cohort's export ('' = unsigned): the demo's own, or the TRE's."""
    if MODE == "demo":
        return f"results/keys/{cohort}.key"
    return config["export_gate"]["signing_key"]


def signing_args(wildcards, input):
    """`--signing-key FILE` of the export, or nothing for an unsigned one."""
    return f"--signing-key {shlex.quote(input.signing_key)}" if SIGNS else ""


def public_key_files(wildcards):
    """The cohort sheet's public key of a cohort (column public_key), or none."""
    key = sheet(wildcards.cohort, "public_key")
    return [key] if key else []


def verify_args(wildcards, input):
    """verify's checks of one bundle: the sheet's cohort id and key, the study's required rules."""
    rules = STUDY.gate_rules(wildcards.cohort)
    args = [f"--cohort {wildcards.cohort}"]
    args += [f"--public-key {shlex.quote(p)}" for p in input.public_key]
    args += [f"--{k.replace('_', '-')} {v}" for k, v in rules.items()]
    return " ".join(args)


def cohort_pairs(pattern, **kw):
    """`cohort=path` arguments, in sheet order (the order of the direction string)."""
    return " ".join(f"{c}={pattern.format(cohort=c, **kw)}" for c in COHORTS)


def mrmega_options():
    """`crosscohort meta`'s MR-MEGA options from config `meta` (none unless method is mrmega)."""
    meta = config["meta"]
    if meta["method"] != "mrmega":
        return ""
    return f"--pcs {meta['pcs']}" + (" --gco" if meta["gco"] else "")


# ---------------------------------------------------------------- stage inputs
def sample_id_files(cohort):
    """The genotype files naming a cohort's samples, for the gate's ID scan.

    .fam, .psam, BGEN .sample, and a VCF itself (its #CHROM header line).
    """
    files = cohort_genotype_files(cohort)
    return [
        f
        for f in files
        if f.endswith((".fam", ".psam", ".sample", ".vcf", ".vcf.gz", ".vcf.bgz"))
    ]


def export_inputs(wildcards):
    c = wildcards.cohort
    inputs = {
        "sumstats": expand(
            "results/association/{cohort}/{trait}.tsv.gz", cohort=c, trait=TRAITS
        ),
        "ledger": f"results/qc/{c}/qc.ledger.json",
        "ids": sample_id_files(c) + [sheet(c, "pheno"), sheet(c, "covar")],
        "sufficient": (
            expand(
                "results/sufficient/{cohort}/{trait}.block.json", cohort=c, trait=TRAITS
            )
            if c in SUFFICIENT
            else []
        ),
    }
    if SIGNS:
        inputs["signing_key"] = signing_key(c)
    if ASSOC_MODEL == "wgr":
        inputs["wgr_summary"] = f"results/association/{c}/wgr/step1.wgr.json"
    return inputs


def difference_cap(wildcards):
    """`sufficient --difference-cap`: differences counted up to the cohort's gate min_count."""
    return max(1, int(STUDY.gate_rules(wildcards.cohort)["min_count"]))


def sufficient_args(wildcards, input):
    """`--sufficient TRAIT=DIR` of an opted-in cohort's export, else nothing."""
    return " ".join(
        f"--sufficient {t}={Path(p).parent}" for t, p in zip(TRAITS, input.sufficient)
    )


def missing_args(wildcards):
    """`assoc --missing fill` for a cohort that releases sums (the gate checks it), else plink2's drop."""
    return "--missing fill" if wildcards.cohort in SUFFICIENT else ""


def trait_type(wildcards):
    """The trait's type in the config: quantitative or binary."""
    return config["traits"][wildcards.trait]["type"]


def filled_source(wildcards):
    """The PLINK 1 prefix whose missing calls individual_fit_fill fills (the demo's cohorts are .bed)."""
    if sheet(wildcards.cohort, "genotype_format") != "bfile":
        raise WorkflowError(
            f"{wildcards.cohort}: the individual-level fit of the federated model fills PLINK 1 "
            f"hard calls (genotype_format bfile); the sheet has {sheet(wildcards.cohort, 'genotype_format')}"
        )
    return shlex.quote(sheet(wildcards.cohort, "genotypes"))


def individual_fit_covariates(wildcards):
    """Covariates of the individual-level fit of pool_fit's model (columns of `pool --specific`).

    Cohort intercepts (indicators after the first opted-in cohort), each
    cohort's PCs as PCk_COHORT, and the study's covariates: shared for a
    quantitative trait (pool_fit --shared), cohort-specific NAME_COHORT for a
    binary one (pool_fit's one-step null keeps every covariate per cohort).
    """
    pcs = [f"PC{i}" for i in range(1, config["pca"]["n_pcs"] + 1)]
    names = [f"cohort_{c}" for c in SUFFICIENT[1:]]
    if trait_type(wildcards) == "quantitative":
        names = list(config["covariates"]) + names
        per_cohort = pcs
    else:
        per_cohort = list(config["covariates"]) + pcs
    names += [f"{x}_{c}" for c in SUFFICIENT for x in per_cohort]
    return ",".join(names)


def pool_fit_dirs(wildcards):
    """The verified bundle directories of the opted-in cohorts, in sheet order."""
    return " ".join(f"{c}=exports/{c}" for c in SUFFICIENT)


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
        if SUFFICIENT:
            inputs["federated_compare"] = f"results/compare/federated/{t}.json"
            inputs["individual_fit_compare"] = (
                f"results/compare/individual_fit/{t}.json"
            )
    elif SUFFICIENT:
        # No individual-level pooled arm (central mode): the report's pooled arm is
        # the federated pooled fit of the cohorts that opted in.
        inputs["pooled"] = f"results/poolfit/{t}.tsv.gz"
        inputs["compare"] = f"results/compare/federated/{t}.json"
        inputs["compare_table"] = f"results/compare/federated/{t}.tsv"
        inputs["compare_loci"] = f"results/compare/federated/{t}.loci.tsv"
    return inputs


def report_args(wildcards, input):
    args = [f"--cohort {c}={p}" for c, p in zip(COHORTS, input.cohorts)]
    args += [f"--ledger {p}" for p in input.ledgers]
    args += [f"--audit {p}" for p in input.audits]
    args += [f"--manifest {p}" for p in input.manifests]
    args += [f"--loo {input.loo}"]
    if REFERENCE:
        args += [f"--reference {input.reference}"]
    if RUN_POOLED or SUFFICIENT:
        args += [
            f"--pooled {input.pooled}",
            f"--compare {input.compare}",
            f"--compare-table {input.compare_table}",
            f"--compare-loci {input.compare_loci}",
        ]
    if RUN_POOLED and SUFFICIENT:
        args += [f"--federated-compare {input.federated_compare}"]
        args += [f"--individual-fit-compare {input.individual_fit_compare}"]
    return " ".join(args)


# ---------------------------------------------------------------- targets
def final_outputs():
    """What `rule all` builds in the configured mode."""
    if MODE == "cohort":
        return bundle_files(config["cohort"])
    reports = expand("results/report/{trait}.html", trait=TRAITS)
    if SUFFICIENT:
        reports += expand("results/compare/federated/{trait}.json", trait=TRAITS)
    if SUFFICIENT and RUN_POOLED:
        reports += expand("results/compare/individual_fit/{trait}.json", trait=TRAITS)
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
