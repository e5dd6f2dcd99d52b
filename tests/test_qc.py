"""In-cohort QC (``crosscohort qc``): conformance with plink2 and the exact HWE test."""

from __future__ import annotations

import gzip
import json
import subprocess
from fractions import Fraction
from math import factorial
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from bed_reader import to_bed
from hypothesis import given, settings
from hypothesis import strategies as st

from crosscohort.cli import main
from crosscohort.contract.errors import InputError
from crosscohort.contract.ledger import read_ledgers
from crosscohort.tre.genotypes import Genotypes
from crosscohort.tre.qc import VARIANT_REASONS, QcThresholds, hwe_exact_p, run_qc

N_BAD_SAMPLES = 20  # 20% missing calls: fail --mind 0.1
N_FOUNDERS = 501  # one of them fails --mind: 500 remain
N_NONFOUNDERS = 10  # counted in call rates, not in frequencies/HWE (plink2's rule)
N_VARIANTS = 2000


def _planted_cohort(tmp_path: Path, seed: int = 7) -> Path:
    """Write a .bed with planted failures; returns its prefix.

    Samples: 20 with 20% missing calls (fail --mind 0.1), one at exactly 10%
    (passes), one at 10% + 1 call (fails), 10 nonfounders. Variants: 60 with
    20% missing calls, 60 with a strong heterozygote deficit, 150 rare, 20
    monomorphic, and exact-boundary cases for --geno, --maf and --mac.
    """
    rng = np.random.default_rng(seed)
    n = N_BAD_SAMPLES + N_FOUNDERS + N_NONFOUNDERS
    p = rng.uniform(0.05, 0.5, N_VARIANTS)
    p[100:250] = rng.uniform(0.001, 0.03, 150)  # rare: some fail maf, some mac
    p[250:270] = 0.0  # monomorphic
    g = rng.binomial(2, p, size=(n, N_VARIANTS)).astype(np.float64)
    # heterozygote deficit: inbred-like genotypes (F = 0.8) at p = 0.5
    inbred = rng.random((n, 60)) < 0.8
    g[:, 300:360] = np.where(inbred, 2.0 * rng.binomial(1, 0.5, (n, 60)), rng.binomial(2, 0.5, (n, 60)))
    good = np.arange(N_BAD_SAMPLES, n)  # samples that pass --mind
    # 0.2% background missingness among good samples, off the boundary variants
    bg = rng.random((n, N_VARIANTS)) < 0.002
    bg[: N_BAD_SAMPLES] = False
    bg[:, 400:420] = False
    g[bg] = np.nan
    # variants with 20% missing calls
    g[:, 500:560][rng.random((n, 60)) < 0.2] = np.nan
    # --geno boundary among the 510 good samples: 51 missing = 10% (kept), 52 removed
    for j, k in ((400, 51), (401, 52)):
        g[good[:k], j] = np.nan
    # --maf/--mac boundaries among the 500 founders left (1000 alleles), all called
    founders = good[:N_FOUNDERS]
    for j, alt in ((402, 10), (403, 9), (404, 20), (405, 19)):
        g[founders, j] = 0.0
        g[founders[:alt], j] = 1.0
    g[founders, 406] = 2.0  # ALT is the major allele: 990 copies, minor count 10
    g[founders[:10], 406] = 1.0
    # bad samples: 20% missing
    g[:N_BAD_SAMPLES][rng.random((N_BAD_SAMPLES, N_VARIANTS)) < 0.2] = np.nan
    # --mind boundary: exactly 10% of calls missing passes, one more fails
    for i, k in ((good[N_FOUNDERS - 2], 200), (good[N_FOUNDERS - 1], 201)):
        g[i, :] = np.where(np.isnan(g[i, :]), 0.0, g[i, :])
        g[i, :k] = np.nan
    iid = [f"s{i}" for i in range(n)]
    father = ["0"] * n
    for i in good[N_FOUNDERS:]:
        father[i] = "dad1"  # a parent not in the data still makes a nonfounder
    prefix = tmp_path / "cohort"
    to_bed(
        prefix.with_suffix(".bed"),
        g,
        properties={
            "fid": ["f1"] * n,
            "iid": iid,
            "father": father,
            "chromosome": ["1"] * N_VARIANTS,
            "sid": [f"v{j}" for j in range(N_VARIANTS)],
            "bp_position": np.arange(1, N_VARIANTS + 1) * 1000,
            "allele_1": ["A"] * N_VARIANTS,
            "allele_2": ["G"] * N_VARIANTS,
        },
        num_threads=1,
    )
    return prefix


def _run(cmd: list[str]) -> str:
    res = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return res.stdout


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> Path:
    return _planted_cohort(tmp_path_factory.mktemp("qc"))


def _hwe_exact_rational(het: int, hom1: int, hom2: int) -> float:
    """Wigginton et al. (2005) p from the closed form, in exact rational arithmetic."""
    n = het + hom1 + hom2
    rare = 2 * min(hom1, hom2) + het
    if n == 0 or rare == 0:
        return 1.0

    def prob(h: int) -> Fraction:
        homr = (rare - h) // 2
        homc = n - h - homr
        num = factorial(n) * 2**h * factorial(rare) * factorial(2 * n - rare)
        return Fraction(num, factorial(h) * factorial(homr) * factorial(homc) * factorial(2 * n))

    probs = [prob(h) for h in range(rare % 2, rare + 1, 2)]
    assert sum(probs) == 1
    obs = prob(het)
    return float(sum(q for q in probs if q <= obs))


def test_hwe_exact_p__matches_exact_rational_closed_form():
    rng = np.random.default_rng(3)
    cases = [(0, 0, 0), (0, 10, 0), (1, 0, 0), (0, 5, 5), (10, 0, 0), (2, 3, 40), (57, 14, 29)]
    cases += [tuple(int(x) for x in rng.integers(0, 40, 3)) for _ in range(40)]
    het, h1, h2 = (np.array(c) for c in zip(*cases, strict=True))
    got = hwe_exact_p(het, h1, h2)
    want = np.array([_hwe_exact_rational(*c) for c in cases])
    np.testing.assert_allclose(got, want, rtol=1e-12)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 60), st.integers(0, 60), st.integers(0, 60))
def test_hwe_exact_p__symmetric_in_homozygotes_and_a_probability(het, h1, h2):
    p = hwe_exact_p(np.array([het]), np.array([h1]), np.array([h2]))
    q = hwe_exact_p(np.array([het]), np.array([h2]), np.array([h1]))
    assert p[0] == q[0]
    assert 0.0 < p[0] <= 1.0


def test_hwe_exact_p__binomial_sanity_for_one_het_or_none():
    # one sample: any genotype is the only one possible for its allele count
    assert hwe_exact_p(np.array([1]), np.array([0]), np.array([0]))[0] == 1.0
    # n=2, one copy of the rare allele: het count is forced to 1
    assert hwe_exact_p(np.array([1]), np.array([0]), np.array([1]))[0] == 1.0


@pytest.mark.oracle
def test_qc__kept_sets_match_plink2(planted, tmp_path, plink2):
    out = tmp_path / "plink2"
    # Oracle (plink2 applies --mind first, then --geno, --hwe, --maf/--mac: see its log):
    cmd = [plink2, "--bfile", str(planted), "--mind", "0.1", "--geno", "0.1", "--hwe", "1e-15",
           "--maf", "0.01", "--mac", "20", "--write-snplist", "--write-samples",
           "--threads", "1", "--out", str(out)]
    _run(cmd)
    log = Path(f"{out}.log").read_text()
    assert log.index("--mind") < log.index("--geno:") < log.index("--hwe:") < log.index("--maf/")

    ours = tmp_path / "ours"
    assert main(["qc", "--bfile", str(planted), "--out-prefix", str(ours), "--geno", "0.1",
                 "--mind", "0.1", "--maf", "0.01", "--mac", "20", "--hwe", "1e-15",
                 "--chunk-size", "300"]) == 0

    want_samples = [tuple(r.split("\t")) for r in Path(f"{out}.id").read_text().splitlines()[1:]]
    got_lines = Path(f"{ours}.samples.keep").read_text().splitlines()
    assert got_lines[0] == "#FID\tIID"
    assert [tuple(r.split("\t")) for r in got_lines[1:]] == want_samples
    assert len(want_samples) == N_FOUNDERS + N_NONFOUNDERS - 1  # the 10%+1 sample fails

    want_variants = Path(f"{out}.snplist").read_text().split()
    got_variants = Path(f"{ours}.variants.keep").read_text().split()
    assert got_variants == want_variants
    # boundary cases behave as plink2 says (and as the rules read)
    for vid, kept in (("v400", True), ("v401", False), ("v402", False), ("v404", True),
                      ("v405", False), ("v406", False)):
        assert (vid in want_variants) is kept, vid

    with gzip.open(f"{ours}.variant_stats.tsv.gz", "rt") as fh:
        stats = pl.read_csv(fh.read().encode(), separator="\t", null_values="NA")
    reason = dict(zip(stats["id"], stats["qc_reason"].fill_null(""), strict=True))
    # MAF exactly 0.01 passes --maf and is caught by --mac; one copy fewer fails --maf
    assert [reason[v] for v in ("v402", "v403", "v405", "v406")] == [
        "mac_below", "maf_below", "mac_below", "mac_below"]
    ledgers = read_ledgers([f"{ours}.ledger.json"])  # checks in = kept + removed
    samples, variants = ledgers
    assert (samples.unit, variants.unit) == ("samples", "variants")
    # unrelated samples: the default --king-cutoff removes none
    assert samples.removed == {"call_rate_below_mind": N_BAD_SAMPLES + 1, "related_above_king_cutoff": 0}
    assert set(variants.removed) == set(VARIANT_REASONS)
    assert variants.n_kept == len(want_variants)
    assert variants.cohort == "cohort"
    # plink2's own per-rule counts (its log), same first-failing-rule order
    geno = int(log.split("--geno: ")[1].split()[0])
    hwe = int(log.split("--hwe: ")[1].split()[0])
    freq = int(log.split(" variants removed due to allele frequency")[0].rsplit("\n", 1)[1])
    assert variants.removed["call_rate_below_geno"] == geno
    assert variants.removed["hwe_below"] == hwe
    assert variants.removed["maf_below"] + variants.removed["mac_below"] == freq
    assert min(variants.removed.values()) > 0  # every planted failure kind is present


@pytest.mark.oracle
def test_qc__hwe_p_and_frequencies_match_plink2_hardy_and_freq(planted, tmp_path, plink2):
    keep = tmp_path / "ours"
    assert main(["qc", "--bfile", str(planted), "--out-prefix", str(keep)]) == 0
    # Oracle: plink2 --bfile X --keep ours.samples.keep --hardy --freq --out O
    out = tmp_path / "o"
    _run([plink2, "--bfile", str(planted), "--keep", f"{keep}.samples.keep", "--hardy", "--freq",
          "--threads", "1", "--out", str(out)])
    hardy = pl.read_csv(f"{out}.hardy", separator="\t")
    freq = pl.read_csv(f"{out}.afreq", separator="\t")
    with gzip.open(f"{keep}.variant_stats.tsv.gz", "rt") as fh:
        stats = pl.read_csv(fh.read().encode(), separator="\t", null_values="NA")
    assert stats.columns == ["id", "n_called", "alt_freq", "mac", "missing_rate", "hwe_p", "qc_reason"]
    assert stats["id"].to_list() == hardy["ID"].to_list() == freq["ID"].to_list()
    p_plink = hardy["P"].to_numpy()
    p_ours = stats["hwe_p"].to_numpy()
    sel = p_plink > 1e-300
    # plink2 prints 6 significant digits: relative rounding error up to 5e-6
    np.testing.assert_allclose(p_ours[sel], p_plink[sel], rtol=5e-6)
    assert (p_plink < 1e-15).sum() >= 50  # the planted het deficits are tested
    # --freq reports the ALT frequency; our alt_freq counts the .bim A1 (= plink2's ALT)
    np.testing.assert_allclose(stats["alt_freq"].to_numpy(), freq["ALT_FREQS"].to_numpy(),
                               rtol=1e-5, atol=1e-12)
    f, obs = freq["ALT_FREQS"].to_numpy(), freq["OBS_CT"].to_numpy()
    np.testing.assert_allclose(stats["mac"].to_numpy(), np.minimum(f, 1 - f) * obs, atol=0.01)


def test_qc__two_filesets_stack_samples_and_ledger_adds_up(tmp_path):
    rng = np.random.default_rng(11)
    prefixes = []
    for k in range(2):
        g = rng.binomial(2, 0.3, size=(40, 50)).astype(float)
        g[0, :20] = np.nan  # one sample per set with 40% missing
        p = tmp_path / f"set{k}"
        to_bed(p.with_suffix(".bed"), g, properties={"iid": [f"k{k}_{i}" for i in range(40)],
                                                     "sid": [f"v{j}" for j in range(50)]},
               num_threads=1)
        prefixes.append(p)
    res = run_qc(Genotypes(prefixes), cohort="c", thresholds=QcThresholds(mac=1), chunk_size=7)
    assert res.sample_ledger.n_in == 80
    assert res.sample_ledger.removed == {"call_rate_below_mind": 2, "related_above_king_cutoff": 0}
    v = res.variant_ledger
    assert v.n_in == 50 == v.n_kept + sum(v.removed.values())


def test_qc__duplicate_variant_ids_is_a_clear_error(tmp_path):
    p = tmp_path / "dup"
    to_bed(p.with_suffix(".bed"), np.zeros((4, 3)), properties={"sid": ["a", "b", "a"]}, num_threads=1)
    with pytest.raises(InputError, match="variant ID 'a' appears 2 times"):
        run_qc(Genotypes([p]), cohort="c")


def test_qc_cli__bad_threshold_exits_2_naming_the_flag(tmp_path, capsys):
    p = tmp_path / "x"
    to_bed(p.with_suffix(".bed"), np.zeros((4, 3)), num_threads=1)
    assert main(["qc", "--bfile", str(p), "--out-prefix", str(tmp_path / "o"), "--geno", "1.5"]) == 2
    assert "--geno must be in [0, 1]; got 1.5" in capsys.readouterr().err


def test_qc_cli__ledger_json_is_a_list_of_two_with_zero_counts(tmp_path):
    p = tmp_path / "clean"
    g = np.random.default_rng(1).binomial(2, 0.4, size=(60, 30)).astype(float)
    to_bed(p.with_suffix(".bed"), g, num_threads=1)
    assert main(["qc", "--bfile", str(p), "--out-prefix", str(tmp_path / "o"), "--mac", "1",
                 "--cohort", "cohortA"]) == 0
    data = json.loads((tmp_path / "o.ledger.json").read_text())
    assert [d["unit"] for d in data] == ["samples", "variants"]
    assert data[1]["removed"] == {r: 0 for r in VARIANT_REASONS}
    assert {d["cohort"] for d in data} == {"cohortA"}
