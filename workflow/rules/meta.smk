# Central: inverse-variance meta-analysis of the harmonised cohorts.


rule meta:
    input:
        sumstats=expand("results/harmonise/{{trait}}/{cohort}.tsv.gz", cohort=COHORTS),
    output:
        sumstats="results/meta/{trait}.tsv.gz",
        summary="results/meta/{trait}.tsv.gz.summary.json",
    log:
        "logs/meta/{trait}.log",
    benchmark:
        "results/benchmarks/meta/{trait}.tsv"
    conda:
        "../../envs/central.yaml"
    params:
        method=config["meta"]["method"],
        gc="--gc" if config["meta"]["gc"] else "",
        cohorts=lambda wc: cohort_pairs(
            "results/harmonise/{trait}/{cohort}.tsv.gz", trait=wc.trait
        ),
        order=",".join(COHORTS),
    shell:
        "python -m crosscohort meta --method {params.method} {params.gc} --cohort-order {params.order}"
        " --out {output.sumstats} {params.cohorts} 2> {log}"
