# Central: every bundle is checked before anything reads it: its cohort against
# the folder and the sheet, its signature against the sheet's public key, its
# files against the manifest, its gate rules against the study's required ones.


rule verify:
    input:
        bundle=lambda wc: bundle_files(wc.cohort),
        public_key=public_key_files,
    output:
        record="results/verify/{cohort}.json",
    log:
        "logs/verify/{cohort}.log",
    benchmark:
        "results/benchmarks/verify/{cohort}.tsv"
    conda:
        "../../envs/central.yaml"
    threads: 1
    resources:
        mem_mb=table_mem_mb,
        runtime=stream_runtime,
    params:
        bundle=lambda wildcards, input: Path(input.bundle[-1]).parent,
        checks=verify_args,
    shell:
        "python -m crosscohort verify --bundle {params.bundle} {params.checks}"
        " --out {output.record} 2> {log}"
