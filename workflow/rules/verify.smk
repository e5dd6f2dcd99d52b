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
    shell:
        "{CC} verify --bundle exports/{wildcards.cohort} --out {output.record} 2> {log}"
