# The embedded demo: simulated multi-ancestry cohorts (demo mode only).


if MODE == "demo":

    rule simulate_demo:
        output:
            genotypes=[
                p + ext
                for c in COHORTS
                for p in bfile_prefixes(c)
                for ext in (".bed", ".bim", ".fam")
            ],
            pheno=[sheet(c, "pheno") for c in COHORTS],
            covar=[sheet(c, "covar") for c in COHORTS],
            reference=f"{DEMO_DIR}/reference/variants.tsv.gz",
            truth=f"{DEMO_DIR}/truth/causal.tsv",
        log:
            "logs/simulate/demo.log",
        benchmark:
            "results/benchmarks/simulate/demo.tsv"
        conda:
            "../../envs/simulate.yaml"
        threads: 1
        resources:
            mem_mb=simulate_mem_mb,
            runtime=simulate_runtime,
        params:
            seed=config["demo"]["seed"],
            scale=config["demo"]["scale"],
            outdir=lambda wildcards, output: Path(output.reference).parent.parent,
        shell:
            "python -m crosscohort simulate --out-dir {params.outdir} --seed {params.seed} --scale {params.scale} 2> {log}"
