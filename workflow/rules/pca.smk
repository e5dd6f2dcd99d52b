# Ancestry principal components, computed in-cohort (jointly for the pooled arm).
# PCs are individual-level: they never leave the TRE.


rule pca:
    input:
        genotypes=genotype_files,
        samples=rules.qc.output.samples,
        variants=rules.qc.output.variants,
    output:
        eigenvec="results/pca/{cohort}/pcs.eigenvec",
    log:
        "logs/pca/{cohort}.log",
    benchmark:
        "results/benchmarks/pca/{cohort}.tsv"
    conda:
        "../../envs/tre.yaml"
    threads: 1
    resources:
        mem_mb=genotype_scan_mem_mb,
        runtime=genotype_scan_runtime,
    params:
        genotypes=genotype_args,
        pca=config["pca"],
    shell:
        "python -m crosscohort pca {params.genotypes} --keep {input.samples} --extract {input.variants}"
        " --n-pcs {params.pca[n_pcs]} --maf {params.pca[maf]}"
        " --prune-window {params.pca[prune_window]} --prune-step {params.pca[prune_step]}"
        " --prune-r2 {params.pca[prune_r2]} --out {output.eigenvec} 2> {log}"
