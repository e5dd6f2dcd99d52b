# LD-based loci where genotypes are at hand: the pooled arm of the demo.


rule clump:
    input:
        genotypes=genotype_files,
        samples=rules.qc.output.samples,
        sumstats="results/association/{cohort}/{trait}.tsv.gz",
    output:
        clumps="results/clump/{cohort}/{trait}.tsv",
        counts="results/clump/{cohort}/{trait}.json",
    log:
        "logs/clump/{cohort}/{trait}.log",
    benchmark:
        "results/benchmarks/clump/{cohort}/{trait}.tsv"
    conda:
        "../../envs/tre.yaml"
    threads: 1
    resources:
        mem_mb=genotype_scan_mem_mb,
        runtime=genotype_scan_runtime,
    params:
        genotypes=genotype_args,
        p1=config["report"]["threshold"],
        kb=config["report"]["window_kb"],
    shell:
        "python -m crosscohort clump {params.genotypes} --keep {input.samples}"
        " --sumstats {input.sumstats} --clump-p1 {params.p1} --clump-kb {params.kb}"
        " --out {output.clumps} 2> {log}"
