# The report: one self-contained HTML file per trait.


def report_inputs(wildcards):
    t = wildcards.trait
    inputs = {
        "meta": f"results/meta/{t}.tsv.gz",
        "meta_summary": f"results/meta/{t}.tsv.gz.summary.json",
        "cohorts": expand("results/harmonise/{trait}/{cohort}.tsv.gz", trait=t, cohort=COHORTS),
        "ledgers": [f"results/harmonise/{t}/ledger.json"]
        + expand("results/qc/{cohort}/qc.ledger.json", cohort=STUDY.run_cohorts),
        "audits": expand("exports/{cohort}/audit.json", cohort=COHORTS),
        "manifests": expand("exports/{cohort}/manifest.json", cohort=COHORTS),
    }
    if RUN_POOLED:
        inputs["pooled"] = f"results/association/{POOLED}/{t}.tsv.gz"
        inputs["compare"] = f"results/compare/{t}.json"
        inputs["compare_table"] = f"results/compare/{t}.tsv"
    return inputs


def report_args(wildcards, input):
    args = [f"--cohort {c}={p}" for c, p in zip(COHORTS, input.cohorts)]
    args += [f"--ledger {p}" for p in input.ledgers]
    args += [f"--audit {p}" for p in input.audits]
    args += [f"--manifest {p}" for p in input.manifests]
    if RUN_POOLED:
        args += [
            f"--pooled {input.pooled}",
            f"--compare {input.compare}",
            f"--compare-table {input.compare_table}",
        ]
    return " ".join(args)


rule report:
    input:
        unpack(report_inputs),
    output:
        html=report(
            "results/report/{trait}.html",
            caption="../report/report.rst",
            category="Report",
            labels={"trait": "{trait}"},
        ),
    params:
        args=report_args,
        threshold=config["report"]["threshold"],
        digest=config_digest(config),
    log:
        "logs/report/{trait}.log",
    benchmark:
        "results/benchmarks/report/{trait}.tsv"
    conda:
        "../../envs/report.yaml"
    shell:
        "{CC} report --trait {wildcards.trait} --meta {input.meta}"
        " --meta-summary {input.meta_summary} {params.args}"
        " --threshold {params.threshold} --config-digest {params.digest}"
        " --out {output.html} 2> {log}"
