"""LD clumping (crosscohort.demo.clump) against plink 1.9 ``--clump`` on a small simulated fileset.

Genotypes have LD blocks (haplotypes copied along a Markov chain); the
phenotype has causal variants in several blocks, so clumps have members and
some significant variants sit outside any index's LD.
"""

from __future__ import annotations

import subprocess

import numpy as np
import polars as pl
import pytest
from bed_reader import to_bed
from scipy import stats

from crosscohort.contract.errors import ConfigError
from crosscohort.demo.clump import clump, dosage_r2, haplotype_r2
from crosscohort.tre.genotypes import Genotypes

N_SAMPLES = 600


def _fileset(tmp_path, seed: int = 7):
    rng = np.random.default_rng(seed)
    n_var = (260, 140)  # chromosome 1, chromosome 2
    chrom, pos, hap_blocks = [], [], []
    for c, m in zip((1, 2), n_var, strict=True):
        freq = rng.uniform(0.1, 0.5, m)
        haps = np.empty((2 * N_SAMPLES, m))
        haps[:, 0] = rng.random(2 * N_SAMPLES) < freq[0]
        for j in range(1, m):
            # Copy the previous variant's allele with high probability: LD decays along the chain.
            keep = rng.random(2 * N_SAMPLES) < (0.97 if j % 40 else 0.0)
            haps[:, j] = np.where(keep, haps[:, j - 1], rng.random(2 * N_SAMPLES) < freq[j])
        hap_blocks.append(haps)
        chrom.append(np.full(m, c))
        pos.append(np.arange(1, m + 1) * 5_000 + 10_000)
    haps = np.hstack(hap_blocks)
    geno = haps[:N_SAMPLES] + haps[N_SAMPLES:]
    chrom = np.concatenate(chrom)
    pos = np.concatenate(pos)
    m = geno.shape[1]
    ids = [f"v{i}" for i in range(m)]
    a1 = rng.choice(["A", "C"], size=m)
    a2 = np.where(a1 == "A", "G", "T")
    causal = [20, 95, 170, 300, 350]
    y = geno[:, causal] @ np.array([0.35, 0.25, 0.3, 0.3, -0.25]) + rng.normal(size=N_SAMPLES)
    prefix = tmp_path / "geno"
    to_bed(str(prefix) + ".bed", geno.astype(np.float32), count_A1=True,
           properties={"fid": [f"f{i}" for i in range(N_SAMPLES)], "iid": [f"i{i}" for i in range(N_SAMPLES)],
                       "chromosome": chrom.astype(str), "sid": ids, "bp_position": pos,
                       "allele_1": a1, "allele_2": a2, "cm_position": np.zeros(m)})
    # Simple linear regression per variant (the sumstats being clumped).
    p = np.array([stats.linregress(geno[:, j], y).pvalue for j in range(m)])
    ss = pl.DataFrame({"chromosome": chrom.astype(np.int64), "base_pair_location": pos.astype(np.int64),
                       "effect_allele": a1, "other_allele": a2, "p_value": p, "rsid": ids})
    return prefix, ss, geno


def _plink_clumped(plink19: str, prefix, ss: pl.DataFrame, tmp_path, **kw) -> dict[str, set[str]]:
    assoc = tmp_path / "assoc.txt"
    ss.select(pl.col("rsid").alias("SNP"), pl.col("p_value").alias("P")).write_csv(
        assoc, separator="\t", float_precision=None)
    out = tmp_path / "plink"
    cmd = [plink19, "--bfile", str(prefix), "--clump", str(assoc), "--clump-p1", str(kw["p1"]),
           "--clump-p2", str(kw["p2"]), "--clump-r2", str(kw["r2"]), "--clump-kb", str(kw["kb"]),
           "--allow-no-sex", "--out", str(out)]
    subprocess.run(cmd, check=True, capture_output=True)
    result: dict[str, set[str]] = {}
    lines = (tmp_path / "plink.clumped").read_text().splitlines()
    header = lines[0].split()
    for line in lines[1:]:
        f = line.split()
        if not f:
            continue
        row = dict(zip(header, f, strict=True))
        sp2 = row["SP2"]
        result[row["SNP"]] = set() if sp2 == "NONE" else {s.split("(")[0] for s in sp2.split(",")}
    return result


@pytest.mark.parametrize("p1,p2,r2,kb", [(1e-4, 1e-2, 0.5, 250), (1e-6, 1e-3, 0.2, 100)])
def test_clump__index_variants_and_members_match_plink19(plink19, tmp_path, p1, p2, r2, kb):
    prefix, ss, _ = _fileset(tmp_path)
    ours = clump(ss, Genotypes([prefix]), p1=p1, p2=p2, r2=r2, window_kb=kb)
    # oracle: plink1.9 --bfile geno --clump assoc.txt --clump-p1 P1 --clump-p2 P2 --clump-r2 R2
    #         --clump-kb KB --allow-no-sex --out plink   (columns SNP, SP2 of plink.clumped)
    theirs = _plink_clumped(plink19, prefix, ss, tmp_path, p1=p1, p2=p2, r2=r2, kb=kb)
    got = dict(zip(ours.clumps.get_column("rsid").to_list(),
                   (set(x) for x in ours.clumps.get_column("members").to_list()), strict=True))
    assert len(got) >= 3
    assert set(got) == set(theirs)
    assert got == theirs
    # Index variants come most significant first.
    p = ours.clumps.get_column("p_value").to_numpy()
    assert np.all(np.diff(p) >= 0)


def test_clump__variants_without_genotypes_are_counted_not_dropped(tmp_path):
    prefix, ss, _ = _fileset(tmp_path)
    extra = ss.head(1).with_columns(pl.lit(99_999_999, pl.Int64).alias("base_pair_location"),
                                    pl.lit(1e-30).alias("p_value"), pl.lit("ghost").alias("rsid"))
    res = clump(pl.concat([ss, extra]), Genotypes([prefix]))
    assert res.n_not_in_genotypes == 1 and len(res.not_in_genotypes) == 1
    assert "ghost" not in res.clumps.get_column("rsid").to_list()


def test_clump__swapped_alleles_still_find_their_genotype(tmp_path):
    prefix, ss, _ = _fileset(tmp_path)
    swapped = ss.rename({"effect_allele": "other_allele", "other_allele": "effect_allele"})
    a = clump(ss, Genotypes([prefix]))
    b = clump(swapped, Genotypes([prefix]))
    assert a.clumps.get_column("rsid").to_list() == b.clumps.get_column("rsid").to_list()
    assert b.n_not_in_genotypes == 0


def test_dosage_r2__matches_numpy_corrcoef_and_ignores_missing_pairwise(tmp_path):
    _, _, geno = _fileset(tmp_path)
    x, ys = geno[:, 10], geno[:, 11:15]
    want = np.array([np.corrcoef(x, ys[:, k])[0, 1] ** 2 for k in range(4)])  # oracle: numpy.corrcoef
    np.testing.assert_allclose(dosage_r2(x, ys), want, rtol=1e-10)
    xm = x.copy()
    xm[:50] = np.nan
    want_m = np.array([np.corrcoef(x[50:], ys[50:, k])[0, 1] ** 2 for k in range(4)])
    np.testing.assert_allclose(dosage_r2(xm, ys), want_m, rtol=1e-10)


def test_clump__p2_below_p1_is_a_config_error(tmp_path):
    prefix, ss, _ = _fileset(tmp_path)
    with pytest.raises(ConfigError, match="p2 must be >= p1"):
        clump(ss, Genotypes([prefix]), p1=1e-2, p2=1e-4)


def test_haplotype_r2__matches_plink19_r2_dprime(plink19, tmp_path):
    prefix, _, geno = _fileset(tmp_path)
    # oracle: plink1.9 --bfile geno --r2 dprime --ld-snp v20 --ld-window 30 --ld-window-kb 1000
    #         --ld-window-r2 0 --out ld   (column R2: EM haplotype r², 6 significant digits)
    subprocess.run([plink19, "--bfile", str(prefix), "--r2", "dprime", "--ld-snp", "v20", "--ld-window", "30",
                    "--ld-window-kb", "1000", "--ld-window-r2", "0", "--out", str(tmp_path / "ld")],
                   check=True, capture_output=True)
    rows = [line.split() for line in (tmp_path / "ld.ld").read_text().splitlines()[1:] if line.strip()]
    want = {r[5]: float(r[6]) for r in rows if r[5] != "v20"}
    idx = [int(s[1:]) for s in want]
    got = haplotype_r2(geno[:, 20], geno[:, idx])
    np.testing.assert_allclose(got, list(want.values()), atol=5e-6)
