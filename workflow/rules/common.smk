# Helpers of the crosscohort workflow: config validation at load, the cohort
# sheet, input functions and the list of final outputs. Only helpers here;
# rules live in one .smk per stage.

import json
import os
import shlex
import sys
from pathlib import Path

sys.path.insert(0, workflow.basedir)

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
WGR = config["association"].get("wgr", {})
PARTS = [f"{i}of{N_PARTS}" for i in range(1, N_PARTS + 1)]
DEMO_DIR = config["demo"]["outdir"]
REFERENCE = config["harmonise"]["reference"]
# Exports are signed (manifest.sig.json) with a key per cohort that the demo
# generates under results/keys/, or in cohort mode with the TRE's own key.
SIGNS = MODE == "demo" or bool(config["export_gate"]["signing_key"])

# Cohorts that opted in to the federated pooled fit (sheet column `sufficient`).
SUFFICIENT = STUDY.sufficient_cohorts

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


def wgr_step2_args(wildcards, input):
    """`crosscohort assoc` options of step 2 (model wgr): the LOCO list and the binary correction."""
    if ASSOC_MODEL != "wgr":
        return ""
    correction = WGR.get("correction", "firth")
    fix = {"firth": "--firth --approx", "spa": "--spa", "none": ""}[correction]
    return f"--pred {input.pred} {fix} --pThresh {WGR.get('pthresh', 0.05)}"


def wgr_export_output():
    """The export's released step-1 summary, declared only with model wgr."""
    return {"wgr": "exports/{cohort}/wgr.json"} if ASSOC_MODEL == "wgr" else {}


def wgr_export_args(wildcards, input):
    """`crosscohort export --wgr-summary` of step 1's summary (model wgr), else nothing."""
    return f"--wgr-summary {input.wgr_summary}" if ASSOC_MODEL == "wgr" else ""


def wgr_mem_mb(wildcards, input, attempt):
    """Memory of step 1, x1.5.

    Each trait's level-1 features (samples x blocks x 5 float64) plus one
    block of genotypes and its level-0 work (~6 samples x bsize arrays).
    """
    n, bsize = n_samples_of(wildcards), WGR.get("bsize", 1000)
    n_blocks = n_variants_of(wildcards) / bsize + 22
    feats_mb = n * n_blocks * 5 * 8 * len(TRAITS) / 1e6
    block_mb = 6 * n * bsize * 8 / 1e6
    return int((IMPORT_MB + 1.5 * (feats_mb + block_mb)) * attempt)


def wgr_runtime(wildcards, input, attempt):
    """Minutes of step 1: one pass over the genotypes plus the level-0 solves, as an association scan x3."""
    work = n_samples_of(wildcards) * n_variants_of(wildcards) * max(1, len(TRAITS))
    return int((10 + 3 * work * SECONDS_PER_SAMPLE_VARIANT / 60) * attempt)


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
    """The genotype side file listing a cohort's sample IDs (.fam, .psam), for the gate's ID scan."""
    files = cohort_genotype_files(cohort)
    return [f for f in files if f.endswith((".fam", ".psam"))]


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
    return " ".join(args)


# ---------------------------------------------------------------- targets
def final_outputs():
    """What `rule all` builds in the configured mode."""
    if MODE == "cohort":
        return bundle_files(config["cohort"])
    reports = expand("results/report/{trait}.html", trait=TRAITS)
    if SUFFICIENT:
        reports += expand("results/compare/federated/{trait}.json", trait=TRAITS)
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


# ---------------------------------------------------------------- resources
# Every rule declares threads, mem_mb and runtime (minutes) computed from its
# input, so one profile serves a laptop and a biobank without per-rule tuning.
# Each formula is a deliberate over-estimate derived below; the `benchmark:`
# files (results/benchmarks/**, column max_rss) are how to check them on real
# data. A retried job (attempt 2, 3) gets proportionally more of both, so a
# job killed for memory by the scheduler succeeds on its retry.

# A job's floor: Python with numpy, scipy, polars and crosscohort imported is
# 191 MB RSS; with the association's numba kernels loaded, the small demo's
# association parts peak at 336-513 MB (results/benchmarks, max_rss).
IMPORT_MB = 500
# A .bim line ("1 rs123 0 12345 A G") is rarely shorter than this; a short
# guess over-counts variants, i.e. over-estimates memory and runtime.
BIM_BYTES_PER_VARIANT = 30
# Polars holds a parsed table in ~3x its uncompressed text; gzip'd GWAS-SSF
# inflates ~3-4x: ~10x the .tsv.gz size in memory.
TABLE_MB_PER_GZ_MB = 10
# The association engine's measured speed (benchmarks/README.md, issue 3):
# logistic ~1.5 ms CPU per variant at 20,000 samples = 7.5e-8 s per
# sample x variant; linear ~3e-8. 1e-7 per trait covers both, under load.
SECONDS_PER_SAMPLE_VARIANT = 1e-7


# BGEN and bgzipped VCF/BCF of hard calls hold ~0.15-0.25 bytes per sample and
# variant (the small demo's cohorts converted by plink2); 0.1 over-counts variants.
COMPRESSED_BYTES_PER_CALL = 0.1


def _lines(path):
    with open(path, "rb") as fh:
        return sum(1 for line in fh if line.strip())


def n_samples_of(wildcards):
    """Genotyped samples of an analysis unit: lines of its .fam/.psam/.sample files (a VCF's header).

    Raises FileNotFoundError while a file is only planned: Snakemake then
    shows the resource as <TBD> and evaluates it when the job is ready.
    """
    n = 0
    for c in unit_cohorts(wildcards.cohort):
        fmt, path = sheet(c, "genotype_format"), sheet(c, "genotypes")
        if fmt == "bfile":
            n += _lines(f"{path}.fam")
        elif fmt == "pfile":
            n += _lines(f"{path}.psam") - 1
        elif fmt == "bgen":
            n += _lines(cohort_genotype_files(c)[1]) - 2
        else:
            from cyvcf2 import VCF  # reads the header only

            n += len(VCF(path).samples)
    return n


def n_variants_of(wildcards):
    """Variants of an analysis unit, estimated from its .bim/.pvar size (cheap for 10^7 lines)."""
    c = unit_cohorts(wildcards.cohort)[0]
    fmt, path = sheet(c, "genotype_format"), sheet(c, "genotypes")
    if fmt in ("bfile", "pfile"):
        table = f"{path}.bim" if fmt == "bfile" else f"{path}.pvar"
        return int(os.stat(table).st_size / BIM_BYTES_PER_VARIANT)
    n = max(1, n_samples_of(wildcards) // len(unit_cohorts(wildcards.cohort)))
    return int(os.stat(path).st_size / (COMPRESSED_BYTES_PER_CALL * n))


def association_mem_mb(wildcards, input, attempt):
    """Memory of one association part.

    The engine holds one chunk of dosages (samples x chunk_size float64,
    capped at 16 MiB by crosscohort.tre.association.engine.read_step) and, per
    trait in turn, ~5 derived arrays of that shape (centred, observed, the
    trait's rows, Firth's working copies): 6 arrays (measured peak 368 MB in
    all at 20,000 samples x 100,000 variants for a binary trait, 396 MB at
    200,000). Results
    accumulate at ~25 float64 columns per variant and trait, written once
    more by polars (x2); the .bim table is ~3x its text. Safety x1.5.
    """
    n, chunk = n_samples_of(wildcards), config["association"]["chunk_size"]
    m_part = n_variants_of(wildcards) / N_PARTS
    chunk_mb = 6 * min(n * chunk * 8, 16 * 2**20) / 1e6
    results_mb = 2 * m_part * len(TRAITS) * 25 * 8 / 1e6
    bim_mb = 3 * m_part * N_PARTS * BIM_BYTES_PER_VARIANT / 1e6
    return int((IMPORT_MB + 1.5 * (chunk_mb + results_mb + bim_mb)) * attempt)


# `crosscohort sufficient --difference-window`: variants each one is compared with (its default).
DIFFERENCE_WINDOW = 1000


def sufficient_mem_mb(wildcards, input, attempt):
    """Memory of a cohort's sufficient job: an association's, plus each trait's difference window.

    The window (crosscohort.tre._differences.DifferenceWindow) holds
    samples x (window + read chunk) int8 genotypes and, per column, the rows
    of a rare variant's non-modal calls (up to samples/32 int32). Safety x1.5.
    """
    n, chunk = n_samples_of(wildcards), config["association"]["chunk_size"]
    step = max(16, min(chunk, 16 * 2**20 // (8 * max(n, 1))))
    window_mb = (
        len(TRAITS) * (DIFFERENCE_WINDOW + step) * (n + 4 * max(40, n // 32)) / 1e6
    )
    return association_mem_mb(wildcards, input, attempt) + int(
        1.5 * window_mb * attempt
    )


def association_runtime(wildcards, input, attempt):
    """Minutes of one association part: samples x variants x traits at the measured speed, x2."""
    m_part = n_variants_of(wildcards) / N_PARTS
    work = n_samples_of(wildcards) * m_part * len(TRAITS)
    return int((10 + 2 * work * SECONDS_PER_SAMPLE_VARIANT / 60) * attempt)


def genotype_scan_mem_mb(wildcards, input, attempt):
    """Memory of QC, PCA and clumping: chunked scans over the genotypes.

    A 2,000-variant chunk of float64 dosages and ~3 derived arrays
    (4 x samples x 2,000 x 8 bytes), KING's row-block budget (512 MB,
    crosscohort.tre.relatedness), per-variant statistics (~3x the .bim text).
    Safety x1.5.
    """
    n = n_samples_of(wildcards)
    chunk_mb = 4 * n * 2000 * 8 / 1e6
    king_mb = 512
    bim_mb = 3 * n_variants_of(wildcards) * BIM_BYTES_PER_VARIANT / 1e6
    return int((IMPORT_MB + 1.5 * (chunk_mb + king_mb + bim_mb)) * attempt)


def genotype_scan_runtime(wildcards, input, attempt):
    """Minutes of QC, PCA or clumping: a few passes over samples x variants, x2.

    KING re-reads the genotypes once per row block of samples; PCA's
    randomised SVD passes ~10 times over the pruned set. 10 passes at the
    association's per-cell speed bound both.
    """
    work = 10 * n_samples_of(wildcards) * n_variants_of(wildcards)
    return int((10 + 2 * work * SECONDS_PER_SAMPLE_VARIANT / 60) * attempt)


def table_mem_mb(wildcards, input, attempt):
    """Memory of a job that parses its (summary statistics) inputs whole with polars.

    ~10x the gzip'd input in memory (TABLE_MB_PER_GZ_MB), twice (inputs
    and the joined or aligned output), plus the interpreter.
    """
    return int((IMPORT_MB + 2 * TABLE_MB_PER_GZ_MB * input.size_mb) * attempt)


def table_runtime(wildcards, input, attempt):
    """Minutes of a table job: 10 plus 1 per 10 MB of input (polars parses ~100 MB/s; x10 margin)."""
    return int((10 + input.size_mb / 10) * attempt)


def stream_runtime(wildcards, input, attempt):
    """Minutes of a streaming job (gzip/sha256 over the input at >= 20 MB/s), plus 5."""
    return int((5 + input.size_mb / 20 / 60) * attempt)


# Peak RSS per MB of gzip'd input of the central table stages, measured at
# biobank scale (benchmarks/README.md, "Biobank scale": 5 cohorts x 10M
# variants, a 10M-row gate input), x1.25 for safety: harmonise --reference
# 3.76 GB on 3.28 GB (1.15; packed panel since 2026-12-02, was 7.13 GB, 2.2;
# without --reference 2.92 GB), meta 2.16 GB on 3.03 GB (0.71; one chromosome of
# every cohort at a time since 2026-12-02, was 13.5 GB, 4.5), export gate 4.19 GB
# on 0.91 GB (4.6), report 5.42 GB on 4.56 GB (1.19; columns read in blocks,
# one cohort at a time since 2026-12-02, was 9.10 GB, 1.9). Rows of GWAS-SSF at 17
# significant digits compress only ~2.5x, so "10x the gzip" over-declared
# these jobs to 61-255 GB, which no node schedules.
MEMORY_PER_GZ_MB = {"harmonise": 1.5, "meta": 0.9, "export": 5.75, "report": 1.5}


def central_mem_mb(stage):
    """The mem_mb function of a central table stage: IMPORT_MB + its measured factor x input."""
    factor = MEMORY_PER_GZ_MB[stage]

    def mem_mb(wildcards, input, attempt):
        return int((IMPORT_MB + factor * input.size_mb) * attempt)

    return mem_mb


def simulate_mem_mb(wildcards, attempt):
    """Memory of the demo simulation: fixed by `demo.scale` (no input to scale with)."""
    return {"small": 2000, "demo": 8000}.get(config["demo"]["scale"], 8000) * attempt


def simulate_runtime(wildcards, attempt):
    """Minutes of the demo simulation (msprime): fixed by `demo.scale`."""
    return {"small": 10, "demo": 60}.get(config["demo"]["scale"], 60) * attempt
