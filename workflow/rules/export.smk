# The export gate: the only door out of a TRE. Reads the cohort's association
# results from disk in its own process and writes exports/{cohort}/, signed
# with the TRE's key where one is configured (and in the demo, with a key it
# generates per cohort under results/keys/: never committed, never shipped).


rule export:
    input:
        unpack(export_inputs),
    output:
        **signature_output(),
        **wgr_export_output(),
        sumstats=expand("exports/{{cohort}}/{trait}.tsv.gz", trait=TRAITS),
        meta=expand("exports/{{cohort}}/{trait}.meta.yaml", trait=TRAITS),
        audit_json="exports/{cohort}/audit.json",
        audit_md="exports/{cohort}/audit.md",
        manifest="exports/{cohort}/manifest.json",
    log:
        "logs/export/{cohort}.log",
    benchmark:
        "results/benchmarks/export/{cohort}.tsv"
    conda:
        "../../envs/tre.yaml"
    threads: 1
    resources:
        mem_mb=central_mem_mb("export"),
        runtime=table_runtime,
    params:
        sumstats=lambda wc, input: " ".join(
            f"--sumstats {t}={p}" for t, p in zip(TRAITS, input.sumstats)
        ),
        trait_types=trait_type_args(),
        ids=lambda wc, input: " ".join(f"--ids-from {p}" for p in input.ids),
        build=lambda wc: sheet(wc.cohort, "build"),
        ancestry=lambda wc: shlex.quote(sheet(wc.cohort, "ancestry")),
        rules=lambda wc: STUDY.gate_rules(wc.cohort),
        digest=lambda wc: config_digest(tre_config(wc.cohort)),
        sufficient=sufficient_args,
        out_dir=lambda wildcards, output: Path(output.manifest).parent,
        signing=signing_args,
        wgr=wgr_export_args,
    shell:
        "python -m crosscohort export --cohort {wildcards.cohort} {params.sumstats} {params.trait_types}"
        " {params.ids} --build {params.build} --ancestry {params.ancestry}"
        " --config-digest {params.digest} --qc-ledger {input.ledger}"
        " --min-count {params.rules[min_count]} --round-n {params.rules[round_n]}"
        " --min-mac {params.rules[min_mac]} --min-mac-group {params.rules[min_mac_group]}"
        " --min-residual-df {params.rules[min_residual_df]} {params.signing} {params.sufficient}"
        " --release-n {params.rules[release_n]} {params.wgr}"
        " --out-dir {params.out_dir} 2> {log}"


if MODE == "demo":

    # Only the demo makes keys: a real TRE makes its own once (crosscohort
    # keygen) and keeps it; a central run must never invent a cohort's key.
    rule keygen:
        output:
            key="results/keys/{cohort}.key",
            public_key="results/keys/{cohort}.pub",
        log:
            "logs/keygen/{cohort}.log",
        benchmark:
            "results/benchmarks/keygen/{cohort}.tsv"
        conda:
            "../../envs/tre.yaml"
        threads: 1
        resources:
            mem_mb=IMPORT_MB,
            runtime=5,
        shell:
            "python -m crosscohort keygen --key {output.key} --public-key {output.public_key} > {log} 2>&1"
