# Demo: the meta-analysis against the pooled analysis of the same individuals.


rule compare:
    input:
        meta=rules.meta.output.sumstats,
        pooled="results/association/pooled/{trait}.tsv.gz",
    output:
        json="results/compare/{trait}.json",
        tsv="results/compare/{trait}.tsv",
    params:
        threshold=config["report"]["threshold"],
        window_kb=config["report"]["window_kb"],
        prefix="results/compare/{trait}",
    log:
        "logs/compare/{trait}.log",
    conda:
        "../../envs/central.yaml"
    shell:
        "{CC} compare --meta {input.meta} --pooled {input.pooled}"
        " --threshold {params.threshold} --window-kb {params.window_kb}"
        " --out-prefix {params.prefix} 2> {log}"
