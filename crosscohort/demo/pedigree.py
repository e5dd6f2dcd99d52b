"""A simulated cohort of families with a polygenic trait: the calibration data of whole-genome regression.

Extended families of three generations (two grandparents, two children each
with an unrelated spouse, two grandchildren per couple) give siblings,
parent-offspring, avuncular and first-cousin pairs, as in a biobank that
recruits relatives. Founders' genotypes are drawn under Hardy-Weinberg from
allele frequencies uniform on [0.05, 0.5]; every child receives one allele of
each parent at random, independently per variant (unlinked variants: the
point is the relatedness, not the LD). People are listed in random order, as
in a biobank, not family by family. The trait is ``y = G b + e`` with
``n_causal`` causal variants of equal expected variance and SNP heritability
``h2``; a case/control version thresholds it at the (1 - prevalence)
quantile. Covariates: sex and a noise covariate ``age``.

Used by ``tests/test_wgr_calibration.py`` (lambda_GC of null variants with
``wgr`` and ``glm``) and ``benchmarks/wgr_families.py`` (the BOLT-LMM
comparison).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from crosscohort.demo.simulate import _BED_MAGIC, _pack_bed

__all__ = ["FamilyCohort", "simulate_families"]

#: People per extended family: 2 grandparents, 2 children, 2 spouses, 4 grandchildren.
FAMILY_SIZE = 10


@dataclass(frozen=True)
class FamilyCohort:
    """Paths and truth of a simulated family cohort."""

    prefix: Path
    pheno: Path
    covar: Path
    causal: np.ndarray  # indices of the causal variants
    n_samples: int
    n_variants: int


def simulate_families(out_prefix: str | Path, *, n_families: int = 300, n_unrelated: int = 0, n_chrom: int = 10,
                      variants_per_chrom: int = 1000, n_causal: int = 500, h2: float = 0.6,
                      prevalence: float = 0.2, seed: int = 1) -> FamilyCohort:
    """Write ``PREFIX.bed/.bim/.fam``, ``PREFIX.pheno.tsv`` (``y``, ``cc``) and ``PREFIX.covar.tsv``.

    Parameters
    ----------
    n_families
        Extended families of 10 people (siblings, parent-offspring, cousins).
    n_unrelated
        Unrelated people added (each a family of one), as in a biobank where a
        fraction of participants have relatives.
    n_chrom, variants_per_chrom
        Genome layout (unlinked variants, positions 1000 bp apart).
    n_causal, h2
        Causal variants (chosen at random) and SNP heritability of ``y``.
    prevalence
        Case fraction of the binary trait ``cc`` (1 = case, 0 = control: declare it binary).
    """
    if not 0 < h2 < 1:
        raise ValueError(f"h2 must be in (0, 1); got {h2}")
    rng = np.random.default_rng(seed)
    m = n_chrom * variants_per_chrom
    freq = rng.uniform(0.05, 0.5, size=m)

    def founder(k: int) -> np.ndarray:  # (k, 2, m) haplotypes
        return (rng.random((k, 2, m)) < freq).astype(np.int8)

    def child(mother: np.ndarray, father: np.ndarray) -> np.ndarray:
        pick_m = rng.integers(0, 2, size=m)
        pick_f = rng.integers(0, 2, size=m)
        idx = np.arange(m)
        return np.stack([mother[pick_m, idx], father[pick_f, idx]])

    haps: list[np.ndarray] = []
    fids: list[str] = []
    iids: list[str] = []
    pats: list[str] = []
    mats: list[str] = []
    sexes: list[int] = []
    for f in range(n_families + n_unrelated):
        fid = f"F{f + 1}"
        gp = founder(2)
        members = [("gpa", gp[0], "0", "0", 1), ("gma", gp[1], "0", "0", 2)]
        for c in (1, 2):
            kid = child(gp[1], gp[0])
            kid_sex = 1 if c == 1 else 2
            spouse = founder(1)[0]
            members += [(f"c{c}", kid, "gpa", "gma", kid_sex), (f"s{c}", spouse, "0", "0", 3 - kid_sex)]
            mother, father = (spouse, kid) if kid_sex == 1 else (kid, spouse)
            mname, pname = (f"s{c}", f"c{c}") if kid_sex == 1 else (f"c{c}", f"s{c}")
            for g in (1, 2):
                members.append((f"g{c}{g}", child(mother, father), pname, mname, int(rng.integers(1, 3))))
        if f >= n_families:
            members = [("p", founder(1)[0], "0", "0", int(rng.integers(1, 3)))]
        for name, h, pat, mat, sex in members:
            haps.append(h)
            fids.append(fid)
            iids.append(f"{fid}_{name}")
            pats.append(f"{fid}_{pat}" if pat != "0" else "0")
            mats.append(f"{fid}_{mat}" if mat != "0" else "0")
            sexes.append(sex)
    # Biobank order, not family order: relatives fall in different cross-validation folds.
    order = rng.permutation(len(haps))
    haps = [haps[i] for i in order]
    fids, iids, pats, mats, sexes = ([v[i] for i in order] for v in (fids, iids, pats, mats, sexes))
    g = np.stack([h.sum(axis=0) for h in haps]).astype(np.int8)  # (n, m)
    n = g.shape[0]

    causal = np.sort(rng.choice(m, size=n_causal, replace=False))
    gc = g[:, causal].astype(np.float64)
    gc = (gc - gc.mean(0)) / np.where(gc.std(0) > 0, gc.std(0), 1.0)
    genetic = gc @ rng.normal(size=n_causal)
    genetic *= np.sqrt(h2) / genetic.std()
    y = genetic + rng.normal(scale=np.sqrt(1 - h2), size=n)
    cc = (y > np.quantile(y, 1 - prevalence)).astype(int)
    age = rng.normal(50, 10, size=n)

    prefix = Path(out_prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    with open(prefix.with_name(prefix.name + ".bed"), "wb") as fh:
        fh.write(_BED_MAGIC)
        fh.write(_pack_bed(np.ascontiguousarray(g.T)))
    bim = [f"{c + 1}\tv{c + 1}_{j + 1}\t0\t{(j + 1) * 1000}\tA\tG"
           for c in range(n_chrom) for j in range(variants_per_chrom)]
    prefix.with_name(prefix.name + ".bim").write_text("\n".join(bim) + "\n")
    fam = [f"{a} {b} {c} {d} {s} -9" for a, b, c, d, s in zip(fids, iids, pats, mats, sexes, strict=True)]
    prefix.with_name(prefix.name + ".fam").write_text("\n".join(fam) + "\n")
    pheno = prefix.with_name(prefix.name + ".pheno.tsv")
    pheno.write_text("#FID\tIID\ty\tcc\n" + "".join(
        f"{a}\t{b}\t{v!r}\t{c}\n" for a, b, v, c in zip(fids, iids, y.tolist(), cc.tolist(), strict=True)))
    covar = prefix.with_name(prefix.name + ".covar.tsv")
    covar.write_text("#FID\tIID\tsex\tage\n" + "".join(
        f"{a}\t{b}\t{s}\t{v!r}\n" for a, b, s, v in zip(fids, iids, sexes, age.tolist(), strict=True)))
    return FamilyCohort(prefix, pheno, covar, causal, n, m)
