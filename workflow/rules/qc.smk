# Sample and variant QC inside each cohort (and on the pooled individuals).


rule pool_inputs:
    input:
        pheno=[sheet(c, "pheno") for c in COHORTS],
        covar=[sheet(c, "covar") for c in COHORTS],
    output:
        pheno="results/pooled/pheno.tsv",
        covar="results/pooled/covar.tsv",
    log:
        "logs/pooled/pool_inputs.log",
    benchmark:
        "results/benchmarks/pooled/pool_inputs.tsv"
    conda:
        "../../envs/tre.yaml"
    threads: 1
    resources:
        mem_mb=table_mem_mb,
        runtime=table_runtime,
    params:
        pheno_args=" ".join(f"{c}={sheet(c, 'pheno')}" for c in COHORTS),
        covar_args=" ".join(f"{c}={sheet(c, 'covar')}" for c in COHORTS),
    shell:
        "python -m crosscohort pool --pheno {params.pheno_args} --covar {params.covar_args}"
        " --out-pheno {output.pheno} --out-covar {output.covar} 2> {log}"


rule pool_qc:
    input:
        ledgers=expand("results/qc/{cohort}/qc.ledger.json", cohort=COHORTS),
        samples=expand("results/qc/{cohort}/qc.samples.keep", cohort=COHORTS),
        variants=expand("results/qc/{cohort}/qc.variants.keep", cohort=COHORTS),
        bim=sheet(COHORTS[0], "genotypes") + ".bim",
    output:
        samples="results/qc/pooled/qc.samples.keep",
        variants="results/qc/pooled/qc.variants.keep",
        ledger="results/qc/pooled/qc.ledger.json",
    log:
        "logs/qc/pooled.log",
    benchmark:
        "results/benchmarks/qc/pooled.tsv"
    conda:
        "../../envs/tre.yaml"
    threads: 1
    resources:
        mem_mb=table_mem_mb,
        runtime=table_runtime,
    params:
        qc=" ".join(f"{c}=results/qc/{c}/qc" for c in COHORTS),
        prefix=lambda wildcards, output: output.samples.removesuffix(".samples.keep"),
    shell:
        "python -m crosscohort pool --qc {params.qc} --bim {input.bim}"
        " --out-qc-prefix {params.prefix} 2> {log}"


if WGR_RELATIVES and RUN_POOLED:

    # The pooled arm's related pairs: each cohort's (pairs across cohorts are
    # not looked for; the pooled arm stacks distinct cohorts). Header once.
    rule pool_relatives:
        input:
            pairs=expand("results/qc/{cohort}/qc.king.tsv", cohort=COHORTS),
        output:
            pairs="results/qc/pooled/qc.king.tsv",
        log:
            "logs/qc/pooled.relatives.log",
        benchmark:
            "results/benchmarks/qc/pooled.relatives.tsv"
        conda:
            "../../envs/tre.yaml"
        threads: 1
        resources:
            mem_mb=500,
            runtime=table_runtime,
        shell:
            "(sed -n 1p {input.pairs[0]}; for f in {input.pairs}; do sed 1d $f; done)"
            " > {output.pairs}.tmp 2> {log} && mv {output.pairs}.tmp {output.pairs}"


rule qc:
    input:
        genotypes=genotype_files,
    output:
        **qc_relatives_output(),
        samples="results/qc/{cohort}/qc.samples.keep",
        variants="results/qc/{cohort}/qc.variants.keep",
        ledger="results/qc/{cohort}/qc.ledger.json",
        stats="results/qc/{cohort}/qc.variant_stats.tsv.gz",
    log:
        "logs/qc/{cohort}.log",
    benchmark:
        "results/benchmarks/qc/{cohort}.tsv"
    wildcard_constraints:
        cohort="|".join(COHORTS),
    conda:
        "../../envs/tre.yaml"
    threads: 1
    resources:
        mem_mb=genotype_scan_mem_mb,
        runtime=genotype_scan_runtime,
    params:
        genotypes=genotype_args,
        qc=config["qc"],
        king=(
            "none"
            if config["qc"]["king_cutoff"] is None
            else config["qc"]["king_cutoff"]
        ),
        relatives=qc_relatives_args,
        prefix=lambda wildcards, output: output.samples.removesuffix(".samples.keep"),
    shell:
        "python -m crosscohort qc {params.genotypes} --cohort {wildcards.cohort}"
        " --geno {params.qc[geno]} --mind {params.qc[mind]} --maf {params.qc[maf]}"
        " --mac {params.qc[mac]} --hwe {params.qc[hwe]} --king-cutoff {params.king}"
        " {params.relatives} --out-prefix {params.prefix} 2> {log}"
