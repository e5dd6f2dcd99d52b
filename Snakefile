# crosscohort: cross-cohort federated GWAS meta-analysis.
# One workflow, three modes (config key `mode`): demo, cohort, central.
# See README.md and docs/architecture.md.

from snakemake.utils import min_version

min_version("8.20")


configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/resources.smk"
include: "workflow/rules/simulate.smk"
include: "workflow/rules/qc.smk"
include: "workflow/rules/pca.smk"
include: "workflow/rules/association.smk"
include: "workflow/rules/export.smk"
include: "workflow/rules/verify.smk"
include: "workflow/rules/harmonise.smk"
include: "workflow/rules/meta.smk"
include: "workflow/rules/compare.smk"
include: "workflow/rules/individual_fit.smk"
include: "workflow/rules/clump.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        final_outputs(),


onsuccess:
    print(completion_message())
