"""Simulated multi-ancestry demo cohorts: genotypes, phenotypes, covariates and the truth.

:func:`simulate_demo` writes five PLINK 1 cohorts (``biobank_eur``,
``admixed_afr``, ``biobank_eas``, ``admixed_amr``, ``study_eur``) whose
genomes come from a coalescent simulation of the three-population
Out-of-Africa model (Gutenkunst et al. 2009) plus two recently admixed
populations: an African-American-like one (AFR/EUR) and a Latino-like one
(AFR/EUR/EAS, the EAS component standing in for Native American ancestry as
in Browning et al. 2018), with two traits of known genetic architecture
(``ldl``, quantitative; ``cad``, binary), planted QC failures, a reference
panel's allele frequencies and the truth tables a test or report needs to
check that the pipeline recovers what was put in. ``ldl`` has one causal
variant whose allele is common only in EAS ancestry and one, common
everywhere, whose effect exists only in AFR ancestry: what a fixed-effect
meta-analysis and MR-MEGA's meta-regression see differently.

Everything is a function of ``(seed, scale)``: the same pair gives
byte-identical files.

References
----------
.. [1] Gutenkunst RN, Hernandez RD, Williamson SH, Bustamante CD (2009).
   Inferring the joint demographic history of multiple populations from
   multidimensional SNP frequency data. PLoS Genet 5(10): e1000695.
   Parameters from Table 1 (the YRI/CEU/CHB model), as also coded in
   stdpopsim's ``HomSap/OutOfAfrica_3G09``.
.. [2] Baharian S et al. (2016). The Great Migration and African-American
   genomic diversity. PLoS Genet 12(5): e1006059 (about 80 % African ancestry,
   admixture some 10-15 generations ago).
.. [3] Browning SR, Browning BL, Daviglus ML et al. (2018). Ancestry-specific
   recent effective population size in the Americas. PLoS Genet 14(5):
   e1007385; as stdpopsim's ``HomSap/AmericanAdmixture_4B18``: an admixed
   American population founded 12 generations ago from 1/6 AFR, 1/3 EUR and
   1/2 East Asian-like (Native American proxy) ancestry, size 30,000 growing
   5 % a generation.
.. [4] Baumdicker F et al. (2022). Efficient ancestry and mutation simulation
   with msprime 1.0. Genetics 220(3): iyab229.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from crosscohort.contract.errors import ConfigError
from crosscohort.contract.ledger import Ledger
from crosscohort.contract.sumstats import COLUMNS, write_sumstats

if TYPE_CHECKING:  # msprime is imported when a simulation runs, not on `crosscohort --help`
    import msprime

__all__ = [
    "COHORTS",
    "POPULATIONS",
    "SCALES",
    "CohortSimulation",
    "SimulationResult",
    "ooa_admixed_demography",
    "simulate_demo",
]

# Column names shared with the summary-statistics contract come from its registry.
_CHR = COLUMNS["chromosome"].name
_POS = COLUMNS["base_pair_location"].name
_EA = COLUMNS["effect_allele"].name
_OA = COLUMNS["other_allele"].name
_BETA = COLUMNS["beta"].name
_VID = COLUMNS["variant_id"].name
_RSID = COLUMNS["rsid"].name

#: Cohort ids, in the order the cohort sheet lists them.
COHORTS: tuple[str, ...] = ("biobank_eur", "admixed_afr", "biobank_eas", "admixed_amr", "study_eur")
#: Population labels of simulated individuals (``ADMIX`` = recent AFR/EUR admixture,
#: ``AMR`` = recent AFR/EUR/EAS admixture, the EAS part a Native American proxy).
POPULATIONS: tuple[str, ...] = ("AFR", "EUR", "EAS", "ADMIX", "AMR")

# --- population history ------------------------------------------------------
GENERATION_TIME_YEARS = 25.0
#: Per-bp per-generation rates; the mutation rate is the one Gutenkunst et al. fitted.
MUTATION_RATE = 1.29e-8
RECOMBINATION_RATE = 1e-8

# Gutenkunst et al. 2009, Table 1 (YRI/CEU/CHB), maximum-likelihood values.
_N_A = 7_300  # ancestral human population
_N_AF = 12_300  # African population after the expansion at T_AF
_N_B = 2_100  # Out-of-Africa bottleneck
_N_EU0 = 1_000  # CEU founders at the EUR/EAS split
_N_AS0 = 510  # CHB founders at the EUR/EAS split
_R_EU = 0.004  # per-generation growth of CEU since the split
_R_AS = 0.0055  # per-generation growth of CHB since the split
_T_AF = 220e3 / GENERATION_TIME_YEARS  # ancestral expansion (generations ago)
_T_B = 140e3 / GENERATION_TIME_YEARS  # Out-of-Africa split
_T_EU_AS = 21.2e3 / GENERATION_TIME_YEARS  # EUR/EAS split
_M_AF_B = 25e-5  # migration AFR <-> OOA bottleneck
_M_AF_EU = 3e-5
_M_AF_AS = 1.9e-5
_M_EU_AS = 9.6e-5
# Recent admixture (Baharian et al. 2016): ~12 generations, 80 % AFR / 20 % EUR.
_T_ADMIX = 12.0
_ADMIX_AFR = 0.8
_N_ADMIX = 30_000
_R_ADMIX = 0.05
# Latino-like admixture (Browning et al. 2018; stdpopsim AmericanAdmixture_4B18): 12
# generations ago, 1/6 AFR, 1/3 EUR, 1/2 EAS-like; size and growth as ADMIX's.
_AMR_PROPORTIONS = (1.0 / 6.0, 1.0 / 3.0, 1.0 / 2.0)
# Lineages are recorded just before (backwards in time) the admixture event, to
# read off each admixed genome's AFR fraction.
_T_CENSUS = _T_ADMIX + 0.5


def ooa_admixed_demography() -> msprime.Demography:
    """The msprime demography of the demo: Gutenkunst et al. 2009 plus two recently admixed populations.

    Populations: ``AFR`` (YRI-like), ``EUR`` (CEU-like), ``EAS`` (CHB-like),
    ``ADMIX`` (formed 12 generations ago from 80 % AFR and 20 % EUR), ``AMR``
    (formed 12 generations ago from 1/6 AFR, 1/3 EUR and 1/2 EAS, the EAS part
    standing in for Native American ancestry as in Browning et al. 2018), and
    the ancestral ``OOA`` and ``ANC``. Times are in generations (25 years).

    Returns
    -------
    msprime.Demography
        Sorted, validated demography.

    References
    ----------
    Gutenkunst et al. (2009), PLoS Genet 5: e1000695, Table 1.
    """
    import msprime

    d = msprime.Demography()
    n_eu = _N_EU0 * math.exp(_R_EU * _T_EU_AS)  # present size after exponential growth
    n_as = _N_AS0 * math.exp(_R_AS * _T_EU_AS)
    d.add_population(name="AFR", initial_size=_N_AF, description="YRI-like African")
    d.add_population(name="EUR", initial_size=n_eu, growth_rate=_R_EU, description="CEU-like European")
    d.add_population(name="EAS", initial_size=n_as, growth_rate=_R_AS, description="CHB-like East Asian")
    d.add_population(name="ADMIX", initial_size=_N_ADMIX, growth_rate=_R_ADMIX,
                     description="African-American-like AFR/EUR admixed")
    d.add_population(name="AMR", initial_size=_N_ADMIX, growth_rate=_R_ADMIX,
                     description="Latino-like AFR/EUR/EAS admixed (EAS a Native American proxy)")
    d.add_population(name="OOA", initial_size=_N_B, description="Out-of-Africa bottleneck")
    d.add_population(name="ANC", initial_size=_N_AF, description="ancestral humans")
    d.set_symmetric_migration_rate(["AFR", "EUR"], _M_AF_EU)
    d.set_symmetric_migration_rate(["AFR", "EAS"], _M_AF_AS)
    d.set_symmetric_migration_rate(["EUR", "EAS"], _M_EU_AS)
    d.add_admixture(time=_T_ADMIX, derived="ADMIX", ancestral=["AFR", "EUR"],
                    proportions=[_ADMIX_AFR, 1.0 - _ADMIX_AFR])
    d.add_admixture(time=_T_ADMIX, derived="AMR", ancestral=["AFR", "EUR", "EAS"],
                    proportions=list(_AMR_PROPORTIONS))
    d.add_census(time=_T_CENSUS)
    d.add_population_split(time=_T_EU_AS, derived=["EUR", "EAS"], ancestral="OOA")
    d.add_symmetric_migration_rate_change(time=_T_EU_AS, populations=["AFR", "OOA"], rate=_M_AF_B)
    d.add_population_split(time=_T_B, derived=["AFR", "OOA"], ancestral="ANC")
    d.add_population_parameters_change(time=_T_AF, initial_size=_N_A, population="ANC")
    d.sort_events()
    d.validate()
    return d


# --- scales ------------------------------------------------------------------
@dataclass(frozen=True)
class _Scale:
    #: cohort -> {population: individuals}
    cohorts: Mapping[str, Mapping[str, int]]
    #: reference panel individuals per population
    reference: Mapping[str, int]
    #: chromosome lengths in bp, chromosomes numbered 1..len
    chromosomes: tuple[int, ...]


#: Each cohort's size at demo scale and its make-up by population: a European-heavy
#: biobank with small admixed and East Asian minorities, an African-American-like
#: cohort, an East Asian biobank, a Latino-like cohort and a second, smaller
#: European study (the kind of cohort a consortium adds late).
_DEMO_COHORTS: dict[str, tuple[int, dict[str, float]]] = {
    "biobank_eur": (1800, {"EUR": 0.90, "ADMIX": 0.05, "EAS": 0.05}),
    "admixed_afr": (1200, {"ADMIX": 0.90, "EUR": 0.10}),
    "biobank_eas": (1300, {"EAS": 0.90, "EUR": 0.10}),
    "admixed_amr": (1000, {"AMR": 0.90, "EUR": 0.10}),
    "study_eur": (700, {"EUR": 1.0}),
}


def _scale(fraction: float, *, reference: int, chromosomes: tuple[int, ...]) -> _Scale:
    """The demo's cohorts at ``fraction`` of their size; rounding's remainder goes to each one's first population."""
    cohorts: dict[str, dict[str, int]] = {}
    for c, (n, shares) in _DEMO_COHORTS.items():
        total = round(n * fraction)
        minor = {p: round(total * f) for p, f in list(shares.items())[1:]}
        cohorts[c] = {next(iter(shares)): total - sum(minor.values()), **minor}
    return _Scale(cohorts=cohorts, reference=dict.fromkeys(POPULATIONS, reference),
                  chromosomes=chromosomes)


#: Sample sizes and genome per scale. ``demo`` is the default run, ``small`` the test suite's.
SCALES: dict[str, _Scale] = {
    "demo": _scale(1.0, reference=200, chromosomes=(5_000_000, 4_800_000, 4_600_000, 4_400_000,
                                                   4_200_000, 4_000_000)),
    "small": _scale(0.5, reference=80, chromosomes=(2_200_000, 2_000_000, 1_800_000)),
}

_ID_PREFIX = {"biobank_eur": "EUR", "admixed_afr": "AFA", "biobank_eas": "EAS", "admixed_amr": "AMA",
              "study_eur": "EUS"}
_ANCESTRY = {"biobank_eur": "EUR>AFR,EAS", "admixed_afr": "AFR/EUR admixed>EUR", "biobank_eas": "EAS>EUR",
             "admixed_amr": "Latino-like AFR/EUR/EAS admixed>EUR", "study_eur": "EUR"}

# --- traits ------------------------------------------------------------------
_MIN_MAC = 5
_LDL_MEAN, _LDL_SD = 3.4, 0.9  # mmol/L
#: Variance explained (pooled cohorts) by the shared ldl causal SNVs, largest first.
#: Expected meta-analysis chi2 ~ N h: at demo N = 6000, 1.2-3 % gives 70-180 (p < 5e-8
#: always), 0.06-0.25 % gives 4-15 (below 5e-8 unless the draw is lucky).
_LDL_H2 = (0.030, 0.024, 0.019, 0.015, 0.012, 0.0025, 0.0020, 0.0015, 0.0012, 0.0010, 0.0008, 0.0006)
#: Variance explained within biobank_eas by the EAS-specific variant (chi2 ~ 45 at N = 1,300).
_LDL_EAS_H2 = 0.035
#: Variance of ldl within admixed_afr of the variant whose effect exists only in AFR
#: ancestry (per allele, beta times the carrier's AFR fraction). Adjusted for ancestry, the
#: per-allele effect there is beta x 0.8: chi2 ~ 70 at demo scale (N = 1,200), ~35 at small
#: scale; in the other cohorts it is near zero, so the fixed-effect mean is diluted some
#: 3-fold in chi2 while MR-MEGA's AFR axis follows it.
_LDL_AFR_EFFECT_H2 = 0.10
_LDL_AGE, _LDL_MALE = 0.02, 0.12  # per year; male vs female (mmol/L)
_LDL_AFR_SHIFT, _LDL_EAS_SHIFT = -0.25, 0.15  # ancestry-correlated means: why PCs matter
_CAD_PREVALENCE = 0.22
#: cad liability variance explained: (ldl rank shared, h2) then its own SNVs' h2.
_CAD_SHARED = ((1, 0.025), (4, 0.004), (8, 0.003))
_CAD_OWN_H2 = (0.030, 0.018, 0.005, 0.003, 0.002)
_CAD_AGE, _CAD_MALE, _CAD_AFR = 0.03, 0.35, 0.10  # liability-scale (sd 1)
_PHENO_MISSING = 0.01

# --- planted QC failures -----------------------------------------------------
_CALL_MISSING = 0.005  # random missing calls everywhere
_BAD_VARIANT_FRACTION = 0.005  # variants with 20-35 % missing calls
_BAD_SAMPLE_FRACTION = 0.005  # samples with 20-35 % missing calls
_HWE_FRACTION = 0.001  # common variants with every heterozygote called homozygous
_BAD_MISSING_RANGE = (0.20, 0.35)


# --- results -----------------------------------------------------------------
@dataclass(frozen=True)
class CohortSimulation:
    """One simulated cohort's files and counts."""

    cohort: str
    bfile: Path
    pheno: Path
    covar: Path
    n_samples: int
    composition: dict[str, int]
    n_cases: int
    n_controls: int
    planted_missing_variants: int
    planted_missing_samples: int
    planted_hwe_variants: int


@dataclass(frozen=True)
class SimulationResult:
    """What :func:`simulate_demo` wrote, and how many variants it dropped and why."""

    out_dir: Path
    seed: int
    scale: str
    cohorts: tuple[CohortSimulation, ...]
    cohort_sheet: Path
    reference: Path
    causal_truth: Path
    samples_truth: Path
    qc_truth: Path
    ledger_path: Path
    n_chromosomes: int
    n_sites_simulated: int
    n_variants: int
    n_dropped_multiple_mutations: int
    n_dropped_non_acgt: int
    n_dropped_duplicate_position: int
    n_dropped_low_mac: int
    ledger: Ledger = field(compare=False)
    elapsed_seconds: float = field(compare=False, default=0.0)

    def cohort(self, name: str) -> CohortSimulation:
        """The :class:`CohortSimulation` of cohort ``name``."""
        for c in self.cohorts:
            if c.cohort == name:
                return c
        raise ConfigError(f"no simulated cohort {name!r}; cohorts are {list(COHORTS)}")


# --- simulation --------------------------------------------------------------
def _seed(seed: int, *tags: int) -> int:
    """A msprime seed (1..2**32-1) derived from the main seed and ``tags``."""
    state = np.random.SeedSequence([seed, *tags]).generate_state(1, dtype=np.uint32)[0]
    return int(state) % (2**32 - 1) + 1


def _rng(seed: int, *tags: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, *tags]))


@dataclass(frozen=True)
class _Chromosome:
    chrom: int
    pos: np.ndarray  # int64, 1-based
    ref: np.ndarray  # <U1
    alt: np.ndarray  # <U1
    dosage: np.ndarray  # int8 (variants x individuals in layout order), ALT allele counts
    afr_length: np.ndarray  # float64 per individual (layout order): bp of AFR ancestry, admixed only
    eas_length: np.ndarray  # float64 per individual (layout order): bp of EAS ancestry, admixed only
    n_sites: int
    n_multi: int
    n_non_acgt: int
    n_dup: int
    n_low_mac: int


_ACGT = np.array(list("ACGT"))


def _simulate_chromosome(
    chrom: int,
    length: int,
    *,
    demography: msprime.Demography,
    sample_sets: list[msprime.SampleSet],
    node_order: np.ndarray,
    n_cohort_haps: int,
    admix_nodes: np.ndarray,
    seed: int,
) -> _Chromosome:
    """One chromosome's biallelic SNVs; genotypes in ``node_order`` (pairs of haplotypes, then REF's)."""
    import msprime

    ts = msprime.sim_ancestry(
        samples=sample_sets,
        demography=demography,
        sequence_length=length,
        recombination_rate=RECOMBINATION_RATE,
        random_seed=_seed(seed, 1, chrom),
    )
    # Default model: JC69 nucleotides on a discrete genome (one site per bp).
    last = ts.individual(ts.num_individuals - 1).nodes
    if ts.num_samples != len(node_order) or list(last) != [node_order[-1]]:
        raise RuntimeError("msprime numbered sample nodes unexpectedly; the REF haplotype is not the last node")
    ts = msprime.sim_mutations(ts, rate=MUTATION_RATE, random_seed=_seed(seed, 2, chrom))
    n_sites = ts.num_sites
    mut_site = ts.mutations_site

    n_muts = np.bincount(mut_site, minlength=n_sites)
    multi = n_muts != 1
    anc = np.asarray(ts.sites_ancestral_state).astype("<U1")
    # The one mutation of each single-mutation site: its node and derived allele.
    single = np.flatnonzero(n_muts[mut_site] == 1)
    mut_node = np.full(n_sites, -1, dtype=np.int64)
    mut_node[mut_site[single]] = ts.mutations_node[single]
    derived = np.full(n_sites, "N", dtype="<U1")
    derived[mut_site[single]] = np.asarray(ts.mutations_derived_state)[single]
    non_acgt = ~multi & ~(np.isin(anc, _ACGT) & np.isin(derived, _ACGT))
    pos0 = ts.sites_position.astype(np.int64)
    # tskit stores one site per position, so this never fires; it stays to keep the rule explicit.
    first = np.ones(n_sites, dtype=bool)
    first[1:] = pos0[1:] != pos0[:-1]
    dup = ~multi & ~non_acgt & ~first

    # Derived-allele counts among cohort haplotypes, read off the trees (cheap), so that
    # only variants passing the MAC rule are decoded into genotypes.
    counts = np.zeros(n_sites, dtype=np.int64)
    candidates = ~(multi | non_acgt | dup)
    tree_of_site = np.searchsorted(ts.breakpoints(as_array=True), ts.sites_position, side="right") - 1
    site_lo = np.searchsorted(tree_of_site, np.arange(ts.num_trees), side="left")
    site_hi = np.searchsorted(tree_of_site, np.arange(ts.num_trees), side="right")
    cohort_nodes = np.sort(node_order[:n_cohort_haps]).astype(np.int32)
    for tree in ts.trees(tracked_samples=cohort_nodes):
        t = tree.index
        for s in range(site_lo[t], site_hi[t]):
            if candidates[s]:
                counts[s] = tree.num_tracked_samples(mut_node[s])
    mac = np.minimum(counts, n_cohort_haps - counts)
    low_mac = candidates & (mac < _MIN_MAC)
    keep = candidates & ~low_mac

    # AFR and EAS ancestry of each admixed haplotype: its segments' census ancestors' population.
    names = [p.metadata["name"] for p in ts.populations()]
    census = np.flatnonzero((ts.nodes_flags & msprime.NODE_IS_CEN_EVENT) != 0)
    edges = ts.tables.link_ancestors(admix_nodes, census)
    span = edges.right - edges.left
    hap_afr, hap_eas = (
        np.bincount(edges.child, weights=span * (ts.nodes_population[edges.parent] == names.index(p)),
                    minlength=ts.num_nodes)[node_order[: len(node_order) - 1]]
        for p in ("AFR", "EAS")
    )

    ts_kept = ts.delete_sites(np.flatnonzero(~keep))
    haps = np.empty((ts_kept.num_sites, len(node_order)), dtype=np.int8)
    for i, var in enumerate(ts_kept.variants(samples=node_order, copy=False)):
        haps[i] = var.genotypes
    # Columns come in pairs per individual; the last is the haploid "reference
    # genome", whose allele is REF (as GRCh38's is, site by site).
    n_dip = (len(node_order) - 1) // 2
    dosage = haps[:, 0 : 2 * n_dip : 2] + haps[:, 1 : 2 * n_dip : 2]
    ref_is_derived = haps[:, -1] == 1
    del haps
    dosage[ref_is_derived] = 2 - dosage[ref_is_derived]
    anc_k, der_k = anc[keep], derived[keep]
    return _Chromosome(
        chrom=chrom,
        pos=pos0[keep] + 1,
        ref=np.where(ref_is_derived, der_k, anc_k),
        alt=np.where(ref_is_derived, anc_k, der_k),
        dosage=dosage,
        afr_length=hap_afr[0::2] + hap_afr[1::2],
        eas_length=hap_eas[0::2] + hap_eas[1::2],
        n_sites=n_sites,
        n_multi=int(multi.sum()),
        n_non_acgt=int(non_acgt.sum()),
        n_dup=int(dup.sum()),
        n_low_mac=int(low_mac.sum()),
    )


# --- trait helpers -------------------------------------------------------------
def _spaced_choice(candidates: np.ndarray, taken: list[int], loc: np.ndarray, *, n: int,
                   min_gap: float, rng: np.random.Generator) -> list[int]:
    """Pick ``n`` of ``candidates`` at least ``min_gap`` (genome coordinate) from each other and ``taken``."""
    out: list[int] = []
    chosen = list(taken)
    for i in rng.permutation(candidates):
        if all(abs(loc[i] - loc[j]) >= min_gap for j in chosen):
            out.append(int(i))
            chosen.append(int(i))
            if len(out) == n:
                return out
    raise RuntimeError(f"could only place {len(out)} of {n} causal variants {min_gap:.0f} bp apart")


def _beta_for(h2: float, var_total: float, p: float) -> float:
    """Per-allele effect explaining ``h2`` of ``var_total`` at allele frequency ``p``."""
    return math.sqrt(h2 * var_total / (2.0 * p * (1.0 - p)))


# --- writing -------------------------------------------------------------------
_BED_MAGIC = bytes([0x6C, 0x1B, 0x01])


def _pack_bed(dosage: np.ndarray) -> bytes:
    """Variant-major PLINK 1 .bed bytes (without magic) of an int8 variants x samples matrix (-1 = missing).

    Codes with A1 = ALT: 2 ALT -> 00, 1 -> 10, 0 -> 11, missing -> 01; four
    samples a byte, the first in the lowest bits; padding bits 0.
    """
    n_var, n_samp = dosage.shape
    u = np.zeros((n_var, n_samp + (-n_samp) % 4), dtype=np.uint8)
    u[:, :n_samp] = dosage.view(np.uint8) & 3  # 0, 1, 2, and 3 for missing (-1)
    # [0, 1, 2, 3] -> [0b11, 0b10, 0b00, 0b01] without a lookup table.
    codes = (3 - u) ^ (u >> 1)
    codes[:, n_samp:] = 0
    packed = codes[:, 0::4] | (codes[:, 1::4] << 2) | (codes[:, 2::4] << 4) | (codes[:, 3::4] << 6)
    return packed.tobytes()


def _write_text(path: Path, lines: list[str]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("".join(line + "\n" for line in lines))
    tmp.replace(path)


# --- the driver ----------------------------------------------------------------
def simulate_demo(out_dir: str | Path, *, seed: int = 42, scale: str = "demo") -> SimulationResult:
    """Simulated multi-ancestry cohorts with known causal variants, written to ``out_dir``.

    Writes, per cohort ``C`` in :data:`COHORTS`: ``C.bed/.bim/.fam`` (PLINK 1,
    A1 = ALT), ``C.pheno.tsv`` (``#FID IID ldl cad``, cad 1 = control,
    2 = case, ``NA`` missing) and ``C.covar.tsv`` (``#FID IID age sex``);
    plus ``cohorts.tsv`` (the cohort sheet, absolute paths),
    ``reference/variants.tsv.gz`` (reference-panel ALT frequencies of every
    written variant) and under ``truth/``: ``causal.tsv``, ``samples.tsv``,
    ``qc_planted.tsv`` and ``variants.ledger.json``.

    Parameters
    ----------
    out_dir
        Directory to write into (created; existing files of the same names are replaced).
    seed
        Main random seed (non-negative). Each chromosome's ancestry and
        mutations, the sample assignment, traits and QC artefacts use
        independent seeds derived from it.
    scale
        ``"demo"`` (6,000 individuals in five cohorts, 6 chromosomes of 4-5
        Mb) or ``"small"`` (3,000 individuals, 3 chromosomes of ~2 Mb; the
        test suite's).

    Returns
    -------
    SimulationResult
        Paths written, per-cohort counts (including planted QC failures) and
        the variant ledger of the simulation (sites simulated = written +
        dropped per reason).

    Raises
    ------
    ConfigError
        For an unknown ``scale`` or a negative ``seed``.

    Notes
    -----
    Genomes: msprime 1.x coalescent under :func:`ooa_admixed_demography`,
    recombination 1e-8 and mutation 1.29e-8 per bp per generation, one
    ``sim_ancestry`` call per chromosome. Kept: biallelic SNVs with A/C/G/T
    alleles (palindromic A/T, C/G included), one mutation per site, minor
    allele count >= 5 over all cohort samples. REF is the allele of one
    extra simulated admixed haplotype (the "reference genome"), so ALT is
    sometimes the major allele, as in real data.

    ``ldl`` (mmol/L) = 3.4 + shared SNV effects (12 SNVs explaining
    0.06-3 % of variance each in the pooled cohorts) + one EAS-specific SNV
    (allele common only in EAS ancestry, so in ``biobank_eas`` and, at about
    half the frequency, ``admixed_amr``; 3.5 % of variance within
    ``biobank_eas``) + one SNV common in every cohort whose effect is
    ``beta`` times the carrier's AFR ancestry fraction (10 % of the variance
    within ``admixed_afr``, near none elsewhere) + 0.02/yr age + male effect
    + ancestry-correlated shifts + noise, total sd ~0.9. ``cad``: liability
    threshold at 22 % prevalence with 3 SNVs shared with ``ldl`` and 5 of
    its own, age, sex and ancestry effects. Effects are per ALT allele;
    ``cad``'s on the liability scale (sd 1).

    ``truth/causal.tsv``: one row per (trait, causal variant) with GWAS-SSF
    names for the variant columns, ``beta``, ``ancestry_specific`` (empty or
    ``EAS``: the allele is common only in that ancestry), ``effect_ancestry``
    (empty or ``AFR``: the effect per ALT allele is ``beta`` times the
    carrier's AFR ancestry fraction), ``var_explained_pooled``,
    ``eaf_{AFR,EUR,EAS,ADMIX,AMR}`` (ALT
    frequency over all simulated individuals of that population, cohorts and
    reference panel), ``eaf_{cohort}`` (over the written, non-missing calls)
    and ``expected_rank`` (1 = largest variance explained in the pooled
    cohorts). ``truth/qc_planted.tsv``: ``cohort, kind, id, missing_rate,
    n_het`` with kind ``variant_missing``, ``sample_missing`` or
    ``variant_hwe``. ``truth/samples.tsv``: each sample's cohort, population
    and genome-wide AFR and EAS ancestry fractions. Besides the planted ones, plink2 ``--hwe 1e-15`` also
    removes genuine Wahlund-effect failures: alleles common only in a
    cohort's 5-10 % minority ancestry (a few at small scale, some 0.1-0.2 %
    of variants at demo scale), as in real mixed-ancestry biobanks.
    """
    t0 = time.perf_counter()
    if scale not in SCALES:
        raise ConfigError(f"--scale {scale!r}: unknown scale; expected one of {sorted(SCALES)}")
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"--seed {seed!r}: the seed must be a non-negative integer")
    import msprime

    seed = int(seed)
    sc = SCALES[scale]
    out = Path(out_dir).resolve()
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out-dir {out}: exists and is not a directory")
    (out / "truth").mkdir(parents=True, exist_ok=True)
    (out / "reference").mkdir(parents=True, exist_ok=True)

    # Individuals per population: cohorts' needs plus the reference panel.
    need = {p: sc.reference.get(p, 0) + sum(c.get(p, 0) for c in sc.cohorts.values()) for p in POPULATIONS}
    pops = [p for p in POPULATIONS if need[p]]
    sample_sets = [msprime.SampleSet(need[p], population=p, ploidy=2) for p in pops]
    sample_sets.append(msprime.SampleSet(1, population="ADMIX", ploidy=1))  # the reference genome
    ind_pop = np.concatenate([np.full(need[p], p, dtype="<U5") for p in pops])
    n_diploid = len(ind_pop)

    # Assign simulated individuals to cohorts and the reference panel at random within
    # population; within a group, rows are in random order (real files are not sorted by ancestry).
    rng_assign = _rng(seed, 3)
    parts: dict[str, list[np.ndarray]] = {g: [] for g in (*COHORTS, "reference")}
    for p in pops:
        idx = np.flatnonzero(ind_pop == p)
        idx = idx[rng_assign.permutation(len(idx))]
        start = 0
        for group in parts:
            k = (sc.reference if group == "reference" else sc.cohorts[group]).get(p, 0)
            parts[group].append(idx[start : start + k])
            start += k
    groups = {g: np.concatenate(v) for g, v in parts.items()}
    groups = {g: v[rng_assign.permutation(len(v))] for g, v in groups.items()}
    # Genotype columns follow this layout: the cohorts in sheet order, then the reference
    # panel, so every group is a contiguous block.
    layout = np.concatenate([groups[g] for g in (*COHORTS, "reference")])
    block: dict[str, slice] = {}
    start = 0
    for g in (*COHORTS, "reference"):
        block[g] = slice(start, start + len(groups[g]))
        start += len(groups[g])
    n_cohort = block[COHORTS[-1]].stop
    node_order = np.empty(2 * n_diploid + 1, dtype=np.int32)
    node_order[0 : 2 * n_diploid : 2] = 2 * layout
    node_order[1 : 2 * n_diploid : 2] = 2 * layout + 1
    node_order[-1] = 2 * n_diploid  # msprime numbers sample nodes in sample-set order
    admix_ind = np.flatnonzero(np.isin(ind_pop, ["ADMIX", "AMR"]))
    admix_nodes = np.sort(np.concatenate([2 * admix_ind, 2 * admix_ind + 1])).astype(np.int32)

    demography = ooa_admixed_demography()
    chroms = [
        _simulate_chromosome(
            c, length, demography=demography, sample_sets=sample_sets, node_order=node_order,
            n_cohort_haps=2 * n_cohort, admix_nodes=admix_nodes, seed=seed,
        )
        for c, length in enumerate(sc.chromosomes, start=1)
    ]
    pop = ind_pop[layout]  # population of each genotype column
    admixed = np.isin(pop, ["ADMIX", "AMR"])
    afr_len = sum(ch.afr_length for ch in chroms) / (2.0 * sum(sc.chromosomes))
    eas_len = sum(ch.eas_length for ch in chroms) / (2.0 * sum(sc.chromosomes))
    afr_fraction = np.where(pop == "AFR", 1.0, np.where(admixed, afr_len, 0.0))
    eas_fraction = np.where(pop == "EAS", 1.0, np.where(admixed, eas_len, 0.0))

    # Genome-wide variant table.
    chrom_arr = np.concatenate([np.full(len(ch.pos), ch.chrom, dtype=np.int64) for ch in chroms])
    pos = np.concatenate([ch.pos for ch in chroms])
    ref = np.concatenate([ch.ref for ch in chroms])
    alt = np.concatenate([ch.alt for ch in chroms])
    dosage = np.concatenate([ch.dosage for ch in chroms], axis=0)  # variants x layout
    drops = {
        "multiple_mutations_at_site": sum(ch.n_multi for ch in chroms),
        "non_acgt_allele": sum(ch.n_non_acgt for ch in chroms),
        "duplicate_position": sum(ch.n_dup for ch in chroms),
        f"mac_below_{_MIN_MAC}": sum(ch.n_low_mac for ch in chroms),
    }
    n_sites = sum(ch.n_sites for ch in chroms)
    del chroms  # the per-chromosome copies of the genotypes
    n_var = len(pos)
    offsets = np.concatenate([[0], np.cumsum(sc.chromosomes)[:-1]])
    loc = offsets[chrom_arr - 1] + pos  # genome coordinate, for spacing causal variants
    rng_ids = _rng(seed, 4)
    rsid = np.char.add("rs", (rng_ids.choice(199_000_000, size=n_var, replace=False) + 1_000_000).astype(str))
    vid = np.array([f"{c}:{p}:{r}:{a}" for c, p, r, a in
                    zip(chrom_arr.tolist(), pos.tolist(), ref.tolist(), alt.tolist(), strict=True)])

    # ALT frequencies of the true genotypes (before QC artefacts).
    alt_count = {g: dosage[:, block[g]].sum(axis=1, dtype=np.int64) for g in block}
    cohort_p = {c: alt_count[c] / (2.0 * len(groups[c])) for c in COHORTS}
    pooled_p = sum(alt_count[c] for c in COHORTS) / (2.0 * n_cohort)
    ref_p = alt_count["reference"] / (2.0 * len(groups["reference"]))

    def pop_freq(rows: np.ndarray) -> dict[str, np.ndarray]:
        return {p: dosage[np.ix_(rows, np.flatnonzero(pop == p))].sum(axis=1, dtype=np.int64)
                / (2.0 * need[p]) for p in pops}

    def maf(p: np.ndarray) -> np.ndarray:
        return np.minimum(p, 1.0 - p)

    # --- causal variants ---
    rng_tr = _rng(seed, 5)
    maf_c = {c: maf(cohort_p[c]) for c in COHORTS}
    n_causal = len(_LDL_H2) + len(_CAD_OWN_H2) + 1
    min_gap = min(1_000_000.0, sum(sc.chromosomes) / (2.5 * n_causal))
    # Ancestry-specific: common in biobank_eas, near-monomorphic in the other cohorts and populations.
    # (admixed_amr carries it too, through its EAS-like ancestry.)
    rows = np.flatnonzero((maf_c["biobank_eas"] > 0.12) & (maf_c["biobank_eur"] < 0.008)
                          & (maf_c["admixed_afr"] < 0.008) & (maf_c["study_eur"] < 0.008))
    pf = pop_freq(rows)
    other = [p for p in ("AFR", "EUR", "ADMIX") if p in pf]
    eas_cands = rows[np.max([maf(pf[p]) for p in other], axis=0) < 0.01] if len(rows) else rows
    if len(eas_cands) == 0:  # small genomes: the most EAS-specific variant there is
        score = maf_c["biobank_eas"] - 20 * np.maximum(maf_c["biobank_eur"], maf_c["admixed_afr"])
        eas_cands = np.argsort(-score, kind="stable")[:1]
    eas_idx = int(rng_tr.choice(eas_cands))
    # Effect only in AFR ancestry: an allele common in every cohort (so MR-MEGA fits it).
    everywhere = np.flatnonzero(np.all([maf_c[c] > 0.1 for c in COHORTS], axis=0))
    (afr_idx,) = _spaced_choice(everywhere, [eas_idx], loc, n=1, min_gap=min_gap, rng=rng_tr)
    common = np.flatnonzero((maf(pooled_p) > 0.1) & (maf_c["biobank_eur"] > 0.05))
    ldl_idx = _spaced_choice(common, [eas_idx, afr_idx], loc, n=len(_LDL_H2), min_gap=min_gap, rng=rng_tr)
    cad_own_idx = _spaced_choice(common, [eas_idx, afr_idx, *ldl_idx], loc, n=len(_CAD_OWN_H2),
                                 min_gap=min_gap, rng=rng_tr)

    # --- traits, for the cohort individuals (layout columns 0..n_cohort-1) ---
    rng_cov = _rng(seed, 6)
    age = np.round(rng_cov.uniform(40.0, 70.0, n_cohort), 1)
    sex = rng_cov.integers(1, 3, n_cohort)  # 1 = male, 2 = female
    male = (sex == 1).astype(np.float64)
    afr_f = afr_fraction[:n_cohort]
    eas_f = eas_fraction[:n_cohort]

    def x(i: int) -> np.ndarray:
        return dosage[i, :n_cohort].astype(np.float64)

    var_ldl = _LDL_SD**2
    ldl_sign = rng_tr.choice([-1.0, 1.0], size=len(_LDL_H2))
    ldl_beta = [s * _beta_for(h, var_ldl, pooled_p[i]) for s, h, i in zip(ldl_sign, _LDL_H2, ldl_idx, strict=True)]
    eas_beta = float(rng_tr.choice([-1.0, 1.0])) * _beta_for(_LDL_EAS_H2, var_ldl, cohort_p["biobank_eas"][eas_idx])
    # The AFR-ancestry effect: per ALT allele afr_beta times the carrier's AFR fraction.
    afr_dose = afr_f * x(afr_idx)
    afr_beta = float(rng_tr.choice([-1.0, 1.0])) * math.sqrt(_LDL_AFR_EFFECT_H2 * var_ldl
                                                             / afr_dose[block["admixed_afr"]].var())
    ldl_fixed = (sum(b * x(i) for b, i in zip(ldl_beta, ldl_idx, strict=True)) + eas_beta * x(eas_idx)
                 + afr_beta * afr_dose)
    ldl_fixed = (ldl_fixed + _LDL_AGE * (age - 55.0) + _LDL_MALE * male + _LDL_AFR_SHIFT * afr_f
                 + _LDL_EAS_SHIFT * eas_f)
    noise_var = max(var_ldl - ldl_fixed.var(), 0.3 * var_ldl)
    ldl = _LDL_MEAN + ldl_fixed - ldl_fixed.mean() + rng_tr.normal(0.0, math.sqrt(noise_var), n_cohort)
    ldl = np.round(ldl, 2)

    cad_idx = [ldl_idx[r - 1] for r, _ in _CAD_SHARED] + cad_own_idx
    cad_h2 = [h for _, h in _CAD_SHARED] + list(_CAD_OWN_H2)
    # Shared variants raise cad where they raise ldl (the LDL-CAD causal direction).
    cad_sign = [ldl_sign[r - 1] for r, _ in _CAD_SHARED] + list(rng_tr.choice([-1.0, 1.0], size=len(_CAD_OWN_H2)))
    cad_beta = [s * _beta_for(h, 1.0, pooled_p[i]) for s, h, i in zip(cad_sign, cad_h2, cad_idx, strict=True)]
    liab = sum(b * x(i) for b, i in zip(cad_beta, cad_idx, strict=True))
    liab = liab + _CAD_AGE * (age - 55.0) + _CAD_MALE * male + _CAD_AFR * afr_f
    liab = liab - liab.mean() + rng_tr.normal(0.0, math.sqrt(max(1.0 - liab.var(), 0.3)), n_cohort)
    case = liab > np.quantile(liab, 1.0 - _CAD_PREVALENCE)
    # A person missed at the phenotype visit lacks both traits, so a cohort analyses its traits
    # on the same people. Missing independently, the traits' sets differed by a few people, and
    # the exact sums of the federated pooled fit (whose n cannot be coarsened) of one trait
    # were refused by the export gate (rule sufficient_difference_between_traits).
    ldl_na = rng_tr.random(n_cohort) < _PHENO_MISSING
    cad_na = ldl_na

    # Sample IDs: cohort prefix + 7 digits, unique, in no particular order (like TRE pseudo-IDs).
    ids: dict[str, list[str]] = {}
    for k, c in enumerate(COHORTS):
        num = _rng(seed, 7, k).choice(9_000_000, size=len(groups[c]), replace=False) + 1_000_000
        ids[c] = [f"{_ID_PREFIX[c]}{v}" for v in num.tolist()]

    # --- per-cohort files, with QC artefacts ---
    causal_rows = np.array(sorted({*ldl_idx, eas_idx, afr_idx, *cad_own_idx}))
    non_causal = np.setdiff1d(np.arange(n_var), causal_rows)
    cm = pos * RECOMBINATION_RATE * 100.0  # uniform map: 1 cM per Mb
    bim_text = "".join(
        f"{c}\t{r}\t{g:.6f}\t{p}\t{a}\t{b}\n" for c, r, g, p, a, b in
        zip(chrom_arr.tolist(), rsid.tolist(), cm.tolist(), pos.tolist(), alt.tolist(), ref.tolist(), strict=True))
    sheet = ["cohort\tgenotypes\tgenotype_format\tpheno\tcovar\tbuild\tancestry\tduo_codes"]
    qc_rows = ["cohort\tkind\tid\tmissing_rate\tn_het"]
    cohort_results = []
    written_p: dict[str, dict[int, float]] = {}
    for k, c in enumerate(COHORTS):
        sl = block[c]
        n = sl.stop - sl.start
        rng_qc = _rng(seed, 8, k)
        g = dosage[:, sl].copy()  # variants x cohort samples, modified below
        bad_v = np.sort(rng_qc.choice(non_causal, size=max(2, round(_BAD_VARIANT_FRACTION * n_var)), replace=False))
        bad_s = np.sort(rng_qc.choice(n, size=max(2, round(_BAD_SAMPLE_FRACTION * n)), replace=False))
        hwe_pool = np.setdiff1d(non_causal[maf_c[c][non_causal] > 0.2], bad_v)
        hwe_v = np.sort(rng_qc.choice(hwe_pool, size=max(3, round(_HWE_FRACTION * n_var)), replace=False))
        # Calling artefact: heterozygotes called as either homozygote, so HWE fails badly.
        sub = g[hwe_v]
        het = sub == 1
        sub[het] = np.where(rng_qc.random(int(het.sum())) < 0.5, 0, 2)
        g[hwe_v] = sub
        g.flat[rng_qc.integers(0, g.size, rng_qc.binomial(g.size, _CALL_MISSING))] = -1
        for v in bad_v:
            g[v, rng_qc.random(n) < rng_qc.uniform(*_BAD_MISSING_RANGE)] = -1
        for s in bad_s:
            g[rng_qc.random(n_var) < rng_qc.uniform(*_BAD_MISSING_RANGE), s] = -1
        written_p[c] = {}
        for i in causal_rows.tolist():
            called = g[i][g[i] >= 0]
            written_p[c][i] = called.sum() / (2.0 * len(called))
        for v in bad_v:
            qc_rows.append(f"{c}\tvariant_missing\t{rsid[v]}\t{(g[v] < 0).mean():.6f}\t{int((g[v] == 1).sum())}")
        for s in bad_s:
            qc_rows.append(f"{c}\tsample_missing\t{ids[c][s]}\t{(g[:, s] < 0).mean():.6f}\tNA")
        for v in hwe_v:
            qc_rows.append(f"{c}\tvariant_hwe\t{rsid[v]}\t{(g[v] < 0).mean():.6f}\t{int((g[v] == 1).sum())}")

        prefix = out / c
        bed = out / f"{c}.bed"
        tmp = bed.with_name(f".{bed.name}.tmp")
        with open(tmp, "wb") as fh:
            fh.write(_BED_MAGIC)
            for s0 in range(0, n_var, 20_000):  # bounded memory for the 2-bit codes
                fh.write(_pack_bed(g[s0 : s0 + 20_000]))
        tmp.replace(bed)
        del g
        bim = out / f"{c}.bim"
        tmp = bim.with_name(f".{bim.name}.tmp")
        tmp.write_text(bim_text)
        tmp.replace(bim)
        sx = sex[sl].tolist()
        _write_text(out / f"{c}.fam", [f"{i}\t{i}\t0\t0\t{s}\t-9" for i, s in zip(ids[c], sx, strict=True)])
        pheno_lines = ["#FID\tIID\tldl\tcad"]
        for i, y, na1, cs, na2 in zip(ids[c], ldl[sl].tolist(), ldl_na[sl].tolist(),
                                      case[sl].tolist(), cad_na[sl].tolist(), strict=True):
            pheno_lines.append(f"{i}\t{i}\t{'NA' if na1 else f'{y:.2f}'}\t{'NA' if na2 else (2 if cs else 1)}")
        pheno = out / f"{c}.pheno.tsv"
        _write_text(pheno, pheno_lines)
        covar = out / f"{c}.covar.tsv"
        _write_text(covar, ["#FID\tIID\tage\tsex"] + [
            f"{i}\t{i}\t{a:.1f}\t{s}" for i, a, s in zip(ids[c], age[sl].tolist(), sx, strict=True)])
        sheet.append(f"{c}\t{prefix}\tbfile\t{pheno}\t{covar}\tGRCh38\t{_ANCESTRY[c]}\tGRU")
        observed = ~cad_na[sl]
        cohort_results.append(CohortSimulation(
            cohort=c, bfile=prefix, pheno=pheno, covar=covar, n_samples=n,
            composition=dict(sc.cohorts[c]),
            n_cases=int((case[sl] & observed).sum()), n_controls=int((~case[sl] & observed).sum()),
            planted_missing_variants=len(bad_v), planted_missing_samples=len(bad_s),
            planted_hwe_variants=len(hwe_v),
        ))

    sheet_path = out / "cohorts.tsv"
    _write_text(sheet_path, sheet)
    qc_path = out / "truth" / "qc_planted.tsv"
    _write_text(qc_path, qc_rows)

    reference = write_sumstats(
        pl.DataFrame({_CHR: chrom_arr, _POS: pos, "ref": ref, "alt": alt, "alt_frequency": ref_p}),
        out / "reference" / "variants.tsv.gz",
    )

    # --- truth tables ---
    def var_explained(b: float, i: int, var_total: float) -> float:
        if i == afr_idx:  # the effect varies between carriers: its variance within cohorts, pooled
            return sum(float(np.var(b * afr_dose[block[c]])) * len(groups[c]) for c in COHORTS) / (
                n_cohort * var_total)
        return b * b * 2.0 * pooled_p[i] * (1.0 - pooled_p[i]) / var_total

    pop_p = pop_freq(causal_rows)
    pop_at = {int(i): k for k, i in enumerate(causal_rows.tolist())}
    rows_out = []
    for trait, idxs, betas, spec, var_total in (
        ("ldl", [*ldl_idx, eas_idx, afr_idx], [*ldl_beta, eas_beta, afr_beta],
         [""] * len(ldl_idx) + ["EAS", ""], var_ldl),
        ("cad", cad_idx, cad_beta, [""] * len(cad_idx), 1.0),
    ):
        ves = [var_explained(b, i, var_total) for b, i in zip(betas, idxs, strict=True)]
        rank = np.argsort(-np.asarray(ves), kind="stable").argsort() + 1
        for i, b, ve, sp, rk in zip(idxs, betas, ves, spec, rank, strict=True):
            row = {
                "trait": trait, _CHR: int(chrom_arr[i]), _POS: int(pos[i]), _VID: str(vid[i]),
                _RSID: str(rsid[i]), _EA: str(alt[i]), _OA: str(ref[i]), _BETA: round(float(b), 6),
                "ancestry_specific": sp,
                "effect_ancestry": "AFR" if trait == "ldl" and i == afr_idx else "",
                "var_explained_pooled": round(float(ve), 6),
            }
            row |= {f"eaf_{p}": round(float(pop_p[p][pop_at[i]]), 6) for p in pops}
            row |= {f"eaf_{c}": round(float(written_p[c][i]), 6) for c in COHORTS}
            row["expected_rank"] = int(rk)
            rows_out.append(row)
    causal = pl.DataFrame(rows_out).sort("trait", "expected_rank", descending=[True, False])
    causal_path = out / "truth" / "causal.tsv"
    causal.write_csv(causal_path, separator="\t", null_value="NA", quote_style="never")

    samples_lines = ["cohort\tFID\tIID\tpopulation\tafr_fraction\teas_fraction"]
    for c in COHORTS:
        sl = block[c]
        for i, p, f, e in zip(ids[c], pop[sl].tolist(), afr_fraction[sl].tolist(),
                              eas_fraction[sl].tolist(), strict=True):
            samples_lines.append(f"{c}\t{i}\t{i}\t{p}\t{f:.4f}\t{e:.4f}")
    samples_path = out / "truth" / "samples.tsv"
    _write_text(samples_path, samples_lines)

    ledger = Ledger(stage="simulate", cohort="all", unit="variants", n_in=n_sites, n_kept=n_var)
    for reason, count in drops.items():
        ledger.remove(reason, count)
    ledger_path = ledger.write(out / "truth" / "variants.ledger.json")

    return SimulationResult(
        out_dir=out, seed=seed, scale=scale, cohorts=tuple(cohort_results),
        cohort_sheet=sheet_path, reference=reference, causal_truth=causal_path,
        samples_truth=samples_path, qc_truth=qc_path, ledger_path=ledger_path,
        n_chromosomes=len(sc.chromosomes), n_sites_simulated=n_sites, n_variants=n_var,
        n_dropped_multiple_mutations=ledger.removed["multiple_mutations_at_site"],
        n_dropped_non_acgt=ledger.removed["non_acgt_allele"],
        n_dropped_duplicate_position=ledger.removed["duplicate_position"],
        n_dropped_low_mac=ledger.removed[f"mac_below_{_MIN_MAC}"],
        ledger=ledger, elapsed_seconds=time.perf_counter() - t0,
    )
