# Resource models of the crosscohort workflow: threads, mem_mb and runtime
# (minutes) of every rule, computed from its input. Only functions and their
# constants here; the rules name them in their `resources:`.

import os

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
    m = n_variants_of(wildcards)
    return _association_mb(
        n_samples_of(wildcards), m / N_PARTS, len(TRAITS), m, attempt
    )


def _association_mb(n, m_part, n_traits, m_bim, attempt):
    """association_mem_mb's model: n samples, m_part variants x n_traits results, a .bim of m_bim."""
    chunk = config["association"]["chunk_size"]
    chunk_mb = 6 * min(n * chunk * 8, 16 * 2**20) / 1e6
    results_mb = 2 * m_part * n_traits * 25 * 8 / 1e6
    bim_mb = 3 * m_bim * BIM_BYTES_PER_VARIANT / 1e6
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
    return _association_minutes(n_samples_of(wildcards) * m_part * len(TRAITS), attempt)


def _association_minutes(work, attempt):
    """Minutes of work = samples x variants x traits at the measured speed, x2."""
    return int((10 + 2 * work * SECONDS_PER_SAMPLE_VARIANT / 60) * attempt)


def _stacked_size(input):
    """(samples, variants) of the filled filesets a job stacks: .fam lines, the first .bim's size.

    Raises FileNotFoundError naming an input while it is only planned (the
    resource is then <TBD> until the job is ready).
    """
    fams = [f for f in input.genotypes if f.endswith(".fam")]
    bim = next(f for f in input.genotypes if f.endswith(".bim"))
    return sum(_lines(f) for f in fams), int(
        os.stat(bim).st_size / BIM_BYTES_PER_VARIANT
    )


def individual_fit_mem_mb(wildcards, input, attempt):
    """Memory of the individual-level fit of the federated model: one trait's association of the
    opted-in cohorts' filled filesets over all their variants (not scattered), as association_mem_mb.
    """
    n, m = _stacked_size(input)
    return _association_mb(n, m, 1, m, attempt)


def individual_fit_runtime(wildcards, input, attempt):
    """Minutes of that fit: samples x variants of one trait at the measured speed, x2."""
    n, m = _stacked_size(input)
    return _association_minutes(n * m, attempt)


def wgr_mem_mb(wildcards, input, attempt):
    """Memory of step 1, x1.5.

    Each trait's level-1 features (samples x blocks x 5 float64) plus one
    block of genotypes and its level-0 work (~6 samples x bsize arrays).
    """
    n, bsize = n_samples_of(wildcards), WGR["bsize"]
    n_blocks = n_variants_of(wildcards) / bsize + 22
    feats_mb = n * n_blocks * 5 * 8 * len(TRAITS) / 1e6
    block_mb = 6 * n * bsize * 8 / 1e6
    return int((IMPORT_MB + 1.5 * (feats_mb + block_mb)) * attempt)


def wgr_runtime(wildcards, input, attempt):
    """Minutes of step 1: one pass over the genotypes plus the level-0 solves, as an association scan x3."""
    work = n_samples_of(wildcards) * n_variants_of(wildcards) * max(1, len(TRAITS))
    return int((10 + 3 * work * SECONDS_PER_SAMPLE_VARIANT / 60) * attempt)


def genotype_scan_mem_mb(wildcards, input, attempt):
    """Memory of QC, PCA and clumping: chunked scans over the genotypes.

    A 2,000-variant chunk of float64 dosages and ~3 derived arrays
    (4 x samples x 2,000 x 8 bytes), KING's row block (at most 512 MB of
    float32 counts, 20 bytes a pair, crosscohort.tre.relatedness) with the
    float64 kinship temporaries of that block (~40 bytes a pair more:
    5,000 samples, one block, measured 1.76 GB peak for qc with KING, issue
    22), per-variant statistics (~3x the .bim text). Safety x1.5.
    """
    n = n_samples_of(wildcards)
    chunk_mb = 4 * n * 2000 * 8 / 1e6
    king_mb = min(n * n, 512e6 / 20) * 60 / 1e6
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
