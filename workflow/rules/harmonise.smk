# Central: align every cohort's summary statistics to one orientation.


rule harmonise:
    input:
        unpack(harmonise_inputs),
    output:
        sumstats=expand("results/harmonise/{{trait}}/{cohort}.tsv.gz", cohort=COHORTS),
        ledger="results/harmonise/{trait}/ledger.json",
    log:
        "logs/harmonise/{trait}.log",
    benchmark:
        "results/benchmarks/harmonise/{trait}.tsv"
    conda:
        "../../envs/central.yaml"
    threads: 1
    resources:
        mem_mb=central_mem_mb("harmonise"),
        runtime=table_runtime,
    params:
        reference=f"--reference {REFERENCE}" if REFERENCE else "",
        palindrome_max_maf=config["harmonise"]["palindrome_max_maf"],
        eaf_max_diff=config["harmonise"]["eaf_max_diff"],
        cohorts=lambda wc: cohort_pairs(
            "exports/{cohort}/{trait}.tsv.gz", trait=wc.trait
        ),
        out_dir=lambda wildcards, output: Path(output.ledger).parent,
    shell:
        "python -m crosscohort harmonise --trait {wildcards.trait} {params.reference}"
        " --palindrome-max-maf {params.palindrome_max_maf}"
        " --eaf-max-diff {params.eaf_max_diff}"
        " --out-dir {params.out_dir} {params.cohorts} 2> {log}"
