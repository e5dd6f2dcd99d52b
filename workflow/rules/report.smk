# The report: one self-contained HTML file per trait.


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
    log:
        "logs/report/{trait}.log",
    benchmark:
        "results/benchmarks/report/{trait}.tsv"
    conda:
        "../../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=central_mem_mb("report"),
        runtime=table_runtime,
    params:
        args=report_args,
        threshold=config["report"]["threshold"],
        digest=config_digest(config),
    shell:
        "python -m crosscohort report --trait {wildcards.trait} --meta {input.meta}"
        " --meta-summary {input.meta_summary} {params.args}"
        " --threshold {params.threshold} --config-digest {params.digest}"
        " --out {output.html} 2> {log}"
