# Central: align every cohort's summary statistics to one orientation.


def harmonise_inputs(wildcards):
    inputs = {
        "verified": expand("results/verify/{cohort}.json", cohort=COHORTS),
        "sumstats": expand("exports/{cohort}/{trait}.tsv.gz", cohort=COHORTS, trait=wildcards.trait),
    }
    if REFERENCE:
        inputs["reference"] = REFERENCE
    return inputs


rule harmonise:
    input:
        unpack(harmonise_inputs),
    output:
        sumstats=expand("results/harmonise/{{trait}}/{cohort}.tsv.gz", cohort=COHORTS),
        ledger="results/harmonise/{trait}/ledger.json",
    params:
        reference=f"--reference {REFERENCE}" if REFERENCE else "",
        palindrome_max_maf=config["harmonise"]["palindrome_max_maf"],
        cohorts=lambda wc: cohort_pairs("exports/{cohort}/{trait}.tsv.gz", trait=wc.trait),
    log:
        "logs/harmonise/{trait}.log",
    benchmark:
        "results/benchmarks/harmonise/{trait}.tsv"
    conda:
        "../../envs/central.yaml"
    shell:
        "{CC} harmonise --trait {wildcards.trait} {params.reference}"
        " --palindrome-max-maf {params.palindrome_max_maf}"
        " --out-dir results/harmonise/{wildcards.trait} {params.cohorts} 2> {log}"
