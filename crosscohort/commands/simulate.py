"""``crosscohort simulate``: write the simulated multi-ancestry demo cohorts."""

from __future__ import annotations

import argparse
from pathlib import Path

from crosscohort.commands import add_command

_DESCRIPTION = """\
Simulate five cohorts of different ancestry with known causal variants, ready for
`crosscohort qc`, `assoc` and the rest of the pipeline (the demo mode's input).

Genomes come from an msprime coalescent simulation of the Out-of-Africa model of
Gutenkunst et al. (2009) (AFR, EUR, EAS) plus two populations admixed 12
generations ago: AFR/EUR (80 % AFR, African-American-like) and AFR/EUR/EAS (1/6,
1/3, 1/2; Latino-like, EAS standing in for Native American ancestry as in
Browning et al. 2018), recombination 1e-8 and mutation 1.29e-8 per bp per
generation. Biallelic A/C/G/T SNVs with minor allele count >= 5 are kept.

Cohorts: biobank_eur (90 % EUR, 5 % AFR/EUR admixed, 5 % EAS), admixed_afr (AFR/EUR
admixed, 10 % EUR), biobank_eas (90 % EAS, 10 % EUR), admixed_amr (Latino-like, 10 %
EUR), study_eur (EUR). --scale demo: 1800/1200/1300/1000/700 individuals, 6
chromosomes of 4-5 Mb (about 30 s of CPU); --scale small: half the
people, 3 chromosomes of ~2 Mb (seconds; the test suite's).

Traits: ldl (mmol/L; shared causal SNVs, one SNV whose allele is common only in
EAS ancestry, one common SNV whose effect exists only in AFR ancestry, age, sex
and ancestry-correlated shifts) and cad (liability threshold, ~22 % cases, coded 1/2).
Planted QC failures: ~0.5 % random missing calls, ~0.5 % variants and samples with
20-35 % missing calls, ~0.1 % variants whose heterozygotes were called homozygous.

Written to OUT_DIR:
  {cohort}.bed/.bim/.fam     PLINK 1 (A1 = ALT, the counted/effect allele; sex 1/2)
  {cohort}.pheno.tsv         #FID IID ldl cad   (cad 1 = control, 2 = case; NA missing)
  {cohort}.covar.tsv         #FID IID age sex
  cohorts.tsv                the cohort sheet for these files (absolute paths)
  reference/variants.tsv.gz  reference-panel ALT frequencies of every variant
  truth/causal.tsv           causal variants, effects per ALT allele, EAFs, expected rank
  truth/samples.tsv          each sample's cohort, population, AFR and EAS ancestry fractions
  truth/qc_planted.tsv       the planted QC failures (variant or sample id, missing rate)
  truth/variants.ledger.json simulated sites = written + dropped per reason

The same --seed and --scale give byte-identical files.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``simulate`` subcommand."""
    p = add_command(
        subparsers,
        "simulate",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--out-dir", required=True, type=Path, metavar="DIR",
                   help="directory to write into (created; files of the same names are replaced)")
    p.add_argument("--seed", type=int, default=42, metavar="N",
                   help="random seed, a non-negative integer (default: %(default)s)")
    p.add_argument("--scale", choices=("demo", "small"), default="demo",
                   help="demo: 6000 individuals in 5 cohorts, 6 chromosomes; small: 3000, 3 (default: %(default)s)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Simulate, then print one line per cohort and the variant counts."""
    from crosscohort.demo.simulate import simulate_demo

    res = simulate_demo(args.out_dir, seed=args.seed, scale=args.scale)
    print(f"simulated {res.n_sites_simulated} sites on {res.n_chromosomes} chromosomes; "
          f"wrote {res.n_variants} variants (dropped: {res.n_dropped_low_mac} with MAC < 5, "
          f"{res.n_dropped_multiple_mutations} with several mutations) in {res.elapsed_seconds:.1f} s")
    for c in res.cohorts:
        print(f"  {c.cohort}: {c.n_samples} samples ({c.n_cases} cad cases), {c.bfile}.bed")
    print(f"cohort sheet: {res.cohort_sheet}")
    return 0
