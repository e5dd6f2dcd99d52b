# Central: every bundle is checked against its manifest before anything reads it.


rule verify:
    input:
        bundle=lambda wc: bundle_files(wc.cohort),
    output:
        record="results/verify/{cohort}.json",
    log:
        "logs/verify/{cohort}.log",
    conda:
        "../../envs/central.yaml"
    threads: 1
    resources:
        mem_mb=table_mem_mb,
        runtime=stream_runtime,
    params:
        bundle=lambda wildcards, input: Path(input.bundle[-1]).parent,
    shell:
        "python -m crosscohort verify --bundle {params.bundle} --out {output.record} 2> {log}"
