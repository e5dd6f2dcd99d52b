# Demo only (where pooling individuals is allowed), when cohorts opted in to the
# federated pooled fit: the individual-level fit of EXACTLY pool_fit's model over
# the same people and variants, and the two compared (issue 24). Each opted-in
# cohort's genotypes with missing calls filled as its sums fill them (its QC'd
# samples set the fill), stacked; the variants every such cohort's QC kept;
# cohort intercepts, each cohort's own PCs as cohort-specific covariates, the
# study's covariates shared (quantitative, as pool_fit --shared) or
# cohort-specific (binary: pool_fit's one-step null keeps every covariate per
# cohort). The pooled arm of rules pool_inputs/pool_qc (one joint model over all
# cohorts) is a different model and stays as it is.

if RUN_POOLED and SUFFICIENT:

    rule individual_fit_qc:
        input:
            ledgers=expand("results/qc/{cohort}/qc.ledger.json", cohort=SUFFICIENT),
            samples=expand("results/qc/{cohort}/qc.samples.keep", cohort=SUFFICIENT),
            variants=expand("results/qc/{cohort}/qc.variants.keep", cohort=SUFFICIENT),
            bim=sheet(SUFFICIENT[0], "genotypes") + ".bim",
        output:
            samples="results/individual_fit/qc.samples.keep",
            variants="results/individual_fit/qc.variants.keep",
            ledger="results/individual_fit/qc.ledger.json",
        log:
            "logs/individual_fit/qc.log",
        benchmark:
            "results/benchmarks/individual_fit/qc.tsv"
        conda:
            "../../envs/tre.yaml"
        threads: 1
        resources:
            mem_mb=table_mem_mb,
            runtime=table_runtime,
        params:
            qc=" ".join(f"{c}=results/qc/{c}/qc" for c in SUFFICIENT),
            prefix=lambda wildcards, output: output.samples.removesuffix(
                ".samples.keep"
            ),
        shell:
            "python -m crosscohort pool --qc {params.qc} --variants intersection --bim {input.bim}"
            " --out-qc-prefix {params.prefix} 2> {log}"

    rule individual_fit_fill:
        input:
            genotypes=genotype_files,
            samples=rules.qc.output.samples,
            variants=rules.individual_fit_qc.output.variants,
        # A copy of the cohort's genotypes at the fit's variants: removed once the fits have read it.
        output:
            bed=temp("results/individual_fit/filled/{cohort}.bed"),
            bim=temp("results/individual_fit/filled/{cohort}.bim"),
            fam=temp("results/individual_fit/filled/{cohort}.fam"),
        log:
            "logs/individual_fit/fill/{cohort}.log",
        benchmark:
            "results/benchmarks/individual_fit/fill/{cohort}.tsv"
        wildcard_constraints:
            cohort="|".join(SUFFICIENT),
        conda:
            "../../envs/tre.yaml"
        threads: 1
        resources:
            mem_mb=genotype_scan_mem_mb,
            runtime=genotype_scan_runtime,
        params:
            bfile=filled_source,
            prefix=lambda wildcards, output: output.bed.removesuffix(".bed"),
        shell:
            "python -m crosscohort pool --fill-missing {params.bfile} --keep {input.samples}"
            " --extract {input.variants} --out-bfile {params.prefix} 2> {log}"

    rule individual_fit_inputs:
        input:
            pheno=[sheet(c, "pheno") for c in SUFFICIENT],
            covar=[sheet(c, "covar") for c in SUFFICIENT],
            pcs=expand("results/pca/{cohort}/pcs.eigenvec", cohort=SUFFICIENT),
        output:
            pheno="results/individual_fit/pheno.tsv",
            covar="results/individual_fit/covar.tsv",
        log:
            "logs/individual_fit/inputs.log",
        benchmark:
            "results/benchmarks/individual_fit/inputs.tsv"
        conda:
            "../../envs/tre.yaml"
        threads: 1
        resources:
            mem_mb=table_mem_mb,
            runtime=table_runtime,
        params:
            pheno=" ".join(f"{c}={sheet(c, 'pheno')}" for c in SUFFICIENT),
            covar=" ".join(f"{c}={sheet(c, 'covar')}" for c in SUFFICIENT),
            # Each cohort's covariates and its PCs, as cohort-specific columns NAME_COHORT.
            specific=" ".join(
                f"{c}={sheet(c, 'covar')} {c}=results/pca/{c}/pcs.eigenvec"
                for c in SUFFICIENT
            ),
        shell:
            "python -m crosscohort pool --pheno {params.pheno} --covar {params.covar}"
            " --specific {params.specific}"
            " --out-pheno {output.pheno} --out-covar {output.covar} 2> {log}"

    rule individual_fit:
        input:
            genotypes=expand(
                "results/individual_fit/filled/{cohort}.{ext}",
                cohort=SUFFICIENT,
                ext=("bed", "bim", "fam"),
            ),
            samples=rules.individual_fit_qc.output.samples,
            variants=rules.individual_fit_qc.output.variants,
            pheno=rules.individual_fit_inputs.output.pheno,
            covar=rules.individual_fit_inputs.output.covar,
        output:
            sumstats="results/individual_fit/{trait}.tsv.gz",
        log:
            "logs/individual_fit/{trait}.log",
        benchmark:
            "results/benchmarks/individual_fit/{trait}.tsv"
        conda:
            "../../envs/tre.yaml"
        threads: 2
        resources:
            mem_mb=individual_fit_mem_mb,
            runtime=individual_fit_runtime,
        params:
            bfiles=" ".join(
                f"--bfile results/individual_fit/filled/{c}" for c in SUFFICIENT
            ),
            trait_type=lambda wildcards: f"--trait-type {wildcards.trait}={trait_type(wildcards)}",
            covar_names=individual_fit_covariates,
            # The one-step estimator's reference is the logistic maximum-likelihood fit:
            # no Firth refit (a failed fit stays NA and is counted, not compared).
            firth=lambda wildcards: (
                "--no-firth" if trait_type(wildcards) == "binary" else ""
            ),
            chunk_size=config["association"]["chunk_size"],
        shell:
            "python -m crosscohort assoc {params.bfiles} --keep {input.samples} --extract {input.variants}"
            " --pheno {input.pheno} --pheno-name {wildcards.trait} {params.trait_type}"
            " --covar {input.covar} --covar-name {params.covar_names} {params.firth}"
            " --chunk-size {params.chunk_size} --threads {threads}"
            " --out {output.sumstats} 2> {log}"

    rule compare_individual_fit:
        input:
            federated=rules.pool_fit.output.sumstats,
            individual=rules.individual_fit.output.sumstats,
        output:
            json="results/compare/individual_fit/{trait}.json",
        log:
            "logs/compare/individual_fit/{trait}.log",
        benchmark:
            "results/benchmarks/compare/individual_fit/{trait}.tsv"
        conda:
            "../../envs/central.yaml"
        threads: 1
        resources:
            mem_mb=table_mem_mb,
            runtime=table_runtime,
        params:
            trait_type=trait_type,
        shell:
            "python -m crosscohort compare --federated {input.federated} --individual {input.individual}"
            " --trait-type {params.trait_type} --out {output.json} 2> {log}"
