# Per-cohort association, scattered over contiguous variant parts and gathered.
# With association.model wgr, step 1 (whole-genome regression, one job per
# cohort) writes LOCO predictions that every part uses as offset, and with
# association.wgr.relatives every part calibrates quantitative traits for
# the relatives in qc's KING pair table (--relatives; TRE-only file).


rule association_wgr_step1:
    input:
        genotypes=genotype_files,
        samples=rules.qc.output.samples,
        variants=rules.qc.output.variants,
        pheno=pheno_file,
        covar=covar_file,
        pcs=rules.pca.output.eigenvec,
    output:
        pred="results/association/{cohort}/wgr/step1_pred.list",
        loco=expand(
            "results/association/{{cohort}}/wgr/step1_{k}.loco",
            k=range(1, len(TRAITS) + 1),
        ),
        summary="results/association/{cohort}/wgr/step1.wgr.json",
        ledger="results/association/{cohort}/wgr/step1.ledger.json",
    log:
        "logs/association/{cohort}/wgr_step1.log",
    benchmark:
        "results/benchmarks/association/{cohort}/wgr_step1.tsv"
    conda:
        "../../envs/tre.yaml"
    threads: 2
    resources:
        mem_mb=wgr_mem_mb,
        runtime=wgr_runtime,
    params:
        bfiles=bfile_args,
        traits=",".join(TRAITS),
        trait_types=trait_type_args(),
        covar_names=covariate_names,
        bsize=WGR["bsize"],
        cv=WGR["cv"],
        loocv="--loocv" if WGR["loocv"] else "",
        level1=WGR["level1"],
        out=lambda wc: f"results/association/{wc.cohort}/wgr/step1",
    shell:
        "python -m crosscohort wgr {params.bfiles} --keep {input.samples} --extract {input.variants}"
        " --pheno {input.pheno} --pheno-name {params.traits} {params.trait_types}"
        " --covar {input.covar} --covar {input.pcs} --covar-name {params.covar_names}"
        " --bsize {params.bsize} --cv {params.cv} {params.loocv} --level1 {params.level1} --threads {threads}"
        " --ledger {output.ledger} --out {params.out} 2> {log}"


rule association_part:
    input:
        genotypes=genotype_files,
        samples=rules.qc.output.samples,
        variants=rules.qc.output.variants,
        pheno=pheno_file,
        covar=covar_file,
        pcs=rules.pca.output.eigenvec,
        pred=wgr_pred,
        relatives=wgr_relatives,
    output:
        sumstats=expand(
            "results/association/{{cohort}}/parts/{{part}}/{trait}.tsv.gz",
            trait=TRAITS,
        ),
    log:
        "logs/association/{cohort}/{part}.log",
    benchmark:
        "results/benchmarks/association/{cohort}/{part}.tsv"
    conda:
        "../../envs/tre.yaml"
    threads: 2
    resources:
        mem_mb=association_mem_mb,
        runtime=association_runtime,
    params:
        bfiles=bfile_args,
        traits=",".join(TRAITS),
        trait_types=trait_type_args(),
        covar_names=covariate_names,
        part=lambda wc: wc.part.replace("of", "/"),
        chunk_size=config["association"]["chunk_size"],
        out=lambda wc: f"results/association/{wc.cohort}/parts/{wc.part}/{{trait}}.tsv.gz",
        wgr=wgr_step2_args,
        missing=missing_args,
    shell:
        "python -m crosscohort assoc {params.bfiles} --keep {input.samples} --extract {input.variants}"
        " --pheno {input.pheno} --pheno-name {params.traits} {params.trait_types}"
        " --covar {input.covar} --covar {input.pcs} --covar-name {params.covar_names}"
        " --part {params.part} --chunk-size {params.chunk_size} --threads {threads}"
        " {params.wgr} {params.missing} --out {params.out} 2> {log}"


rule association_gather:
    input:
        parts=expand(
            "results/association/{{cohort}}/parts/{part}/{{trait}}.tsv.gz", part=PARTS
        ),
    output:
        sumstats="results/association/{cohort}/{trait}.tsv.gz",
    log:
        "logs/association/{cohort}/{trait}.gather.log",
    benchmark:
        "results/benchmarks/association/{cohort}/{trait}.gather.tsv"
    conda:
        "../../envs/tre.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=stream_runtime,
    shell:
        # Parts are contiguous and in order: header once, then every part's rows.
        # Written to a temporary name and renamed once whole (a killed job leaves
        # no truncated table under the final name).
        "(gzip -dc {input.parts[0]} | sed -n 1p;"
        " for f in {input.parts}; do gzip -dc $f | sed 1d; done) 2> {log}"
        " | gzip -n > {output.sumstats}.tmp && mv {output.sumstats}.tmp {output.sumstats}"


# Opted-in cohorts (sheet column `sufficient`): the sums of the federated pooled fit,
# over the same samples, variants and covariates as the association.


rule sufficient:
    input:
        genotypes=genotype_files,
        samples=rules.qc.output.samples,
        variants=rules.qc.output.variants,
        pheno=pheno_file,
        covar=covar_file,
        pcs=rules.pca.output.eigenvec,
    output:
        blocks=expand("results/sufficient/{{cohort}}/{trait}.block.json", trait=TRAITS),
        sums=expand(
            "results/sufficient/{{cohort}}/{trait}.sufficient.tsv.gz", trait=TRAITS
        ),
    log:
        "logs/sufficient/{cohort}.log",
    benchmark:
        "results/benchmarks/sufficient/{cohort}.tsv"
    conda:
        "../../envs/tre.yaml"
    threads: 2
    resources:
        mem_mb=sufficient_mem_mb,
        runtime=association_runtime,
    params:
        bfiles=bfile_args,
        traits=",".join(TRAITS),
        trait_types=trait_type_args(),
        covar_names=covariate_names,
        chunk_size=config["association"]["chunk_size"],
        difference_cap=difference_cap,
        difference_window=DIFFERENCE_WINDOW,
        out_dir=lambda wildcards, output: Path(output.blocks[0]).parent,
    shell:
        "python -m crosscohort sufficient {params.bfiles} --keep {input.samples} --extract {input.variants}"
        " --difference-cap {params.difference_cap} --difference-window {params.difference_window}"
        " --pheno {input.pheno} --pheno-name {params.traits} {params.trait_types}"
        " --covar {input.covar} --covar {input.pcs} --covar-name {params.covar_names}"
        " --chunk-size {params.chunk_size} --cohort {wildcards.cohort}"
        " --out-dir {params.out_dir} 2> {log}"
