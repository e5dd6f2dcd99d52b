# Demo: the meta-analysis against the pooled analysis of the same individuals.


rule compare:
    input:
        meta=rules.meta.output.sumstats,
        pooled="results/association/pooled/{trait}.tsv.gz",
        cohorts=rules.harmonise.output.sumstats,
    output:
        json="results/compare/{trait}.json",
        tsv="results/compare/{trait}.tsv",
        loci=report(
            "results/compare/{trait}.loci.tsv",
            caption="../report/compare.rst",
            category="Comparison",
            labels={"trait": "{trait}", "table": "loci"},
        ),
    log:
        "logs/compare/{trait}.log",
    benchmark:
        "results/benchmarks/compare/{trait}.tsv"
    conda:
        "../../envs/central.yaml"
    threads: 1
    resources:
        mem_mb=table_mem_mb,
        runtime=table_runtime,
    params:
        threshold=config["report"]["threshold"],
        window_kb=config["report"]["window_kb"],
        prefix=lambda wildcards, output: output.json.removesuffix(".json"),
        cohorts=lambda wildcards: cohort_pairs(
            "results/harmonise/{trait}/{cohort}.tsv.gz",
            trait=wildcards.trait,
        ),
    shell:
        "python -m crosscohort compare --meta {input.meta} --pooled {input.pooled}"
        " --cohort {params.cohorts}"
        " --threshold {params.threshold} --window-kb {params.window_kb}"
        " --out-prefix {params.prefix} 2> {log}"


# Central, when cohorts opted in: the pooled fit from their released sums, and the
# meta-analysis against it (the pooled arm without pooling).


rule pool_fit:
    input:
        verified=expand("results/verify/{cohort}.json", cohort=SUFFICIENT),
    output:
        sumstats="results/poolfit/{trait}.tsv.gz",
        summary="results/poolfit/{trait}.tsv.gz.summary.json",
    log:
        "logs/poolfit/{trait}.log",
    benchmark:
        "results/benchmarks/poolfit/{trait}.tsv"
    conda:
        "../../envs/central.yaml"
    threads: 1
    resources:
        mem_mb=table_mem_mb,
        runtime=table_runtime,
    params:
        dirs=pool_fit_dirs,
        shared=lambda wildcards: (
            f"--shared {','.join(config['covariates'])}"
            if config["traits"][wildcards.trait]["type"] == "quantitative"
            and config["covariates"]
            else ""
        ),
    shell:
        "python -m crosscohort pool-fit --trait {wildcards.trait} {params.shared}"
        " --out {output.sumstats} {params.dirs} 2> {log}"


rule compare_federated:
    input:
        meta=rules.meta.output.sumstats,
        pooled=rules.pool_fit.output.sumstats,
        cohorts=rules.harmonise.output.sumstats,
    output:
        json="results/compare/federated/{trait}.json",
        tsv="results/compare/federated/{trait}.tsv",
        loci="results/compare/federated/{trait}.loci.tsv",
    log:
        "logs/compare/federated/{trait}.log",
    benchmark:
        "results/benchmarks/compare/federated/{trait}.tsv"
    conda:
        "../../envs/central.yaml"
    threads: 1
    resources:
        mem_mb=table_mem_mb,
        runtime=table_runtime,
    params:
        threshold=config["report"]["threshold"],
        window_kb=config["report"]["window_kb"],
        prefix=lambda wildcards, output: output.json.removesuffix(".json"),
        cohorts=lambda wildcards: cohort_pairs(
            "results/harmonise/{trait}/{cohort}.tsv.gz",
            trait=wildcards.trait,
        ),
    shell:
        "python -m crosscohort compare --meta {input.meta} --pooled {input.pooled}"
        " --cohort {params.cohorts}"
        " --threshold {params.threshold} --window-kb {params.window_kb}"
        " --out-prefix {params.prefix} 2> {log}"
