"""Example cohorts in the shape consortia hand them over (README, "Run on your own cohorts").

Writes into OUT (default ``my_study``)::

    cohort1.bed/.bim/.fam   PLINK 1 genotypes, 300 people; numbered families, FID 1..150
                            (two people each), IIDs like HG00096
    cohort2.bed/.bim/.fam   260 people; FID 0 for everyone (no family information), numeric IIDs;
                            a fifth of the variants with their alleles in the other order
    cohort3.bed/.bim/.fam   280 people; FID = IID, numeric; a tenth of the variants not typed
    study.txt               ONE space-separated phenotype + covariate file for all three
                            cohorts, header without '#': FID IID hdl t2d ldl cad age centre
                            ancestry. hdl quantitative; t2d case/control coded 0/1; ldl and
                            cad are in the file but not in the study; age with NA and nan;
                            centre (assessment centre) is text, so categorical, missing as
                            NONE; ancestry is a text label nobody asks for.
    cohorts.tsv             the cohort sheet
    study.yaml              the study config (the same text as the README shows)

Genotypes: 400 variants on chromosomes 1 and 2, people drawn from two
populations (Balding-Nichols, F_ST 0.1) in cohort-specific admixture
proportions, so that ancestry PCs matter; 0.5% missing calls; sex 1/2 in the
.fam, a few 0 (unknown). Each trait has three causal variants. Pure numpy
(no simulator, no test dependency): a newcomer runs it as the README says.

Usage::

    python tests/make_cohorts.py [OUT] [--seed 19]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

#: The study config the README shows, written as OUT/study.yaml.
STUDY_YAML = """\
# my_study/study.yaml: the whole study; nothing is merged from config/config.yaml.
cohorts: cohorts.tsv          # the cohort sheet, relative to --directory
study:
  name: example-study
traits:                       # exactly the traits analysed and exported
  hdl: {type: quantitative, description: "HDL cholesterol (mmol/L)"}
  t2d: {type: binary, description: "type 2 diabetes (0 = control, 1 = case)"}
covariates: [age, sex, centre]  # sex from the .fam; centre is categorical
pca:
  n_pcs: 3                    # in-cohort ancestry PCs, added to the covariates
association:
  scatter: 1                  # one association job per cohort (small cohorts)
"""

SHEET_HEADER = "cohort\tgenotypes\tgenotype_format\tpheno\tcovar\tbuild\tancestry\tduo_codes"
COHORTS = {  # id: (people, mean share of population A, centres)
    "cohort1": (300, 0.8, ["leeds", "bristol", "glasgow"]),
    "cohort2": (260, 0.5, ["oxford", "cardiff"]),
    "cohort3": (280, 0.2, ["bristol", "newcastle"]),
}
M = 400
FIRST_FAMILY = 1
ALLELES = [("A", "G"), ("C", "T"), ("A", "C"), ("G", "T"), ("A", "T"), ("C", "G")]


def _bed_bytes(dosage: np.ndarray) -> bytes:
    """PLINK 1 .bed (variant-major) of a samples x variants ALT-count matrix (NaN = missing)."""
    n, m = dosage.shape
    # .bed codes with A1 counted: 2 -> 00, 1 -> 10, 0 -> 11, missing -> 01
    code = np.full((m, n + (-n) % 4), 0, dtype=np.uint8)
    d = dosage.T
    code[:, :n] = np.where(np.isnan(d), 1, np.where(d == 2, 0, np.where(d == 1, 2, 3)))
    packed = code[:, 0::4] | (code[:, 1::4] << 2) | (code[:, 2::4] << 4) | (code[:, 3::4] << 6)
    return bytes([0x6C, 0x1B, 0x01]) + packed.astype(np.uint8).tobytes()


def make_cohorts(out: str | Path, *, seed: int = 19) -> Path:
    """Write the example cohorts, the shared phenotype file, the sheet and the study config."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    chrom = np.repeat([1, 2], M // 2)
    pos = np.concatenate([np.sort(rng.choice(50_000_000, M // 2, replace=False)) + 10_000 for _ in (1, 2)])
    rsid = [f"rs{1000 + 7 * j}" for j in range(M)]
    pairs = [ALLELES[k] for k in rng.integers(0, len(ALLELES), M)]
    p = rng.uniform(0.08, 0.5, M)
    fst = 0.1
    a, b = p * (1 - fst) / fst, (1 - p) * (1 - fst) / fst
    pop = rng.beta(a, b, size=(2, M)).clip(0.02, 0.98)  # allele frequencies of populations A and B
    causal = {"hdl": [20, 150, 310], "t2d": [45, 260, 330], "ldl": [70, 200, 390], "cad": [90, 240, 350]}
    effect = {"hdl": [0.35, -0.3, 0.25], "t2d": [0.6, -0.5, 0.45], "ldl": [0.3, 0.3, -0.3],
              "cad": [0.5, 0.4, -0.4]}
    table = ["FID IID hdl t2d ldl cad age centre ancestry"]
    sheet = [SHEET_HEADER]
    for k, (cohort, (n, share, centres)) in enumerate(COHORTS.items()):
        q = rng.beta(share * 8 + 0.5, (1 - share) * 8 + 0.5, n)  # each person's share of population A
        freq = q[:, None] * pop[0] + (1 - q[:, None]) * pop[1]
        g = rng.binomial(2, freq).astype(np.float64)
        keep = np.ones(M, dtype=bool)
        if cohort == "cohort3":
            keep[rng.choice(M, M // 10, replace=False)] = False
        swapped = np.zeros(M, dtype=bool)
        if cohort == "cohort2":
            swapped[rng.choice(M, M // 5, replace=False)] = True
        if cohort == "cohort1":
            # Families numbered 1..N, the PLINK habit that the gate once blocked (it scanned
            # its own audit text, where "2" and "10" occur): the export must pass with them.
            fid = [str(i // 2 + FIRST_FAMILY) for i in range(n)]
            iid = [f"HG{i + 96:05d}" for i in range(n)]
        elif cohort == "cohort2":
            fid = ["0"] * n
            iid = [str(2_000_001 + i) for i in range(n)]
        else:
            fid = iid = [str(3_000_001 + i) for i in range(n)]
        sex = rng.integers(1, 3, n)
        sex[rng.choice(n, 3, replace=False)] = 0
        age = rng.normal(57, 8, n)
        centre = rng.integers(0, len(centres), n)
        centre_effect = rng.normal(0, 0.3, len(centres))[centre]
        traits = {}
        for t in ("hdl", "ldl"):
            traits[t] = (1.4 + 0.01 * age + 0.3 * (sex == 2) + centre_effect + 0.8 * q
                         + g[:, causal[t]] @ effect[t] + rng.normal(0, 0.6, n))
        for t in ("t2d", "cad"):
            eta = -1.2 + 0.04 * (age - 57) + centre_effect + 0.5 * q + g[:, causal[t]] @ effect[t]
            traits[t] = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(int)
        g[rng.random(g.shape) < 0.005] = np.nan
        counted = np.where(swapped, 2 - g, g)  # the .bim lists the other allele first
        a1 = [pairs[j][1] if swapped[j] else pairs[j][0] for j in range(M)]
        a2 = [pairs[j][0] if swapped[j] else pairs[j][1] for j in range(M)]
        prefix = out / cohort
        prefix.with_suffix(".bed").write_bytes(_bed_bytes(counted[:, keep]))
        prefix.with_suffix(".bim").write_text("".join(
            f"{chrom[j]}\t{rsid[j]}\t0\t{pos[j]}\t{a1[j]}\t{a2[j]}\n" for j in np.flatnonzero(keep)))
        prefix.with_suffix(".fam").write_text("".join(
            f"{fid[i]} {iid[i]} 0 0 {sex[i]} -9\n" for i in range(n)))
        labels = ["EUR", "AFR", "SAS", "admixed"]
        for i in range(n):
            hdl = "NA" if i % 53 == 7 else f"{traits['hdl'][i]:.3f}"
            t2d = "NA" if i % 61 == 11 else str(traits["t2d"][i])
            ldl = f"{traits['ldl'][i]:.3f}"
            cad = str(traits["cad"][i] + 1)  # 1/2, as plink2 codes case/control
            ag = "NA" if i % 47 == 5 else "nan" if i % 59 == 9 else f"{age[i]:.1f}"
            ce = "NONE" if i % 43 == 13 else centres[centre[i]]
            table.append(f"{fid[i]} {iid[i]} {hdl} {t2d} {ldl} {cad} {ag} {ce} {labels[(i + k) % 4]}")
        sheet.append(f"{cohort}\t{cohort}\tbfile\tstudy.txt\tstudy.txt\tGRCh38\t"
                     f"{['EUR>AFR', 'AFR/EUR', 'AFR>EUR'][k]}\tGRU")
    (out / "study.txt").write_text("\n".join(table) + "\n")
    (out / "cohorts.tsv").write_text("\n".join(sheet) + "\n")
    (out / "study.yaml").write_text(STUDY_YAML)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", nargs="?", default="my_study", help="output directory (default my_study)")
    parser.add_argument("--seed", type=int, default=19)
    args = parser.parse_args(argv)
    out = make_cohorts(args.out, seed=args.seed)
    print(f"wrote {', '.join(sorted(p.name for p in out.iterdir()))} to {out}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
