# Central: inverse-variance meta-analysis of the harmonised cohorts.


rule meta:
    input:
        sumstats=expand("results/harmonise/{{trait}}/{cohort}.tsv.gz", cohort=COHORTS),
    output:
        sumstats="results/meta/{trait}.tsv.gz",
        summary="results/meta/{trait}.tsv.gz.summary.json",
        loo="results/meta/{trait}.tsv.gz.loo.tsv",
    log:
        "logs/meta/{trait}.log",
    benchmark:
        "results/benchmarks/meta/{trait}.tsv"
    conda:
        "../../envs/central.yaml"
    threads: 1
    resources:
        mem_mb=central_mem_mb("meta"),
        runtime=table_runtime,
    params:
        method=config["meta"]["method"],
        gc="--gc" if config["meta"]["gc"] else "",
        mrmega=mrmega_options(),
        cohorts=lambda wc: cohort_pairs(
            "results/harmonise/{trait}/{cohort}.tsv.gz", trait=wc.trait
        ),
        order=",".join(COHORTS),
        loo_threshold=config["report"]["threshold"],
        window_kb=config["report"]["window_kb"],
        eaf_max_diff=config["harmonise"]["eaf_max_diff"],
    shell:
        "python -m crosscohort meta --method {params.method} {params.gc} {params.mrmega}"
        " --cohort-order {params.order} --eaf-max-diff {params.eaf_max_diff}"
        " --loo-threshold {params.loo_threshold} --loo-window-kb {params.window_kb}"
        " --out {output.sumstats} {params.cohorts} 2> {log}"
