"""Generate the biobank-scale benchmark inputs (issue 9), once, into ``benchmarks/out/scale/``.

Three independent inputs (each skipped when already present)::

    cohort/   a cohort-sized association input, for ``crosscohort assoc`` as the
              workflow's ``association_part`` rule runs it:
              geno.bed/.bim/.fam   plink2 --dummy N x M (default 100,000 x 40,000)
              pheno.tsv            #FID IID ldl cad (cad coded 1/2, ~20 % cases)
              covar.tsv            #FID IID age sex
              pcs.eigenvec         #FID IID PC1..PC5 (plink2 .eigenvec layout)
              samples.keep         #FID IID (QC's keep list: everyone)
              variants.keep        one .bim ID a line (QC's extract list: everything)
    gate/     one cohort's association table of R rows (default 10,000,000), binary
              trait ``cad``, with the GWAS-SSF and internal columns the association
              engine writes (crosscohort/tre/association/engine.py column order), for
              ``crosscohort export``; its sample IDs come from cohort/geno.fam.
    central/  K cohorts x M variants (default 5 x 10,000,000) of GWAS-SSF tables as
              a bundle releases them (``c{i}.tsv.gz``; no manifest: verify is not
              timed), plus ``reference.tsv.gz``, a panel of the union (chromosome,
              base_pair_location, ref, alt, alt_frequency).

Central overlap: a union of ``M / 0.8`` variants; 70 % of the union is in
every cohort and each cohort draws the rest of its M from the remaining 30 %
(so a variant is in 1-5 cohorts, as imputed panels of different
depth give). Orientation per cohort and row is random: 50 % effect/other
swapped (beta negated, EAF mirrored), 5 % of non-palindromic SNPs on the
opposite strand; 3 % of the union are palindromic SNPs, 4 % indels. Floats
are written at full precision (what the gate writes), compressed with
``gzip -1`` (the tables are written by polars, then compressed in a pipe).

Gate table: MAFs drawn as in an imputed biobank panel (half the rows rare,
MAF < 1 %), so the MAC rules suppress a realistic share; 0.1 % of rows
carry an error code and no estimate; 0.5 % are Firth fits.

All generation is vectorised (numpy/polars). Usage::

    python benchmarks/make_scale_input.py [--what cohort,gate,central]
        [--samples 100000] [--variants 40000] [--gate-rows 10000000]
        [--cohorts 5] [--central-variants 10000000] [--seed 1]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl
from scipy.special import log_ndtr, ndtr

from crosscohort.contract.sumstats import COLUMNS, variant_id, write_sumstats

OUT = Path(__file__).resolve().parent / "out" / "scale"
BASES = np.array(list("ACGT"))
#: Chromosome lengths (GRCh38, Mb, rounded) set how many variants each chromosome gets.
CHROM_MB = np.array(
    [
        249,
        242,
        198,
        190,
        181,
        171,
        159,
        145,
        138,
        134,
        135,
        133,
        114,
        107,
        102,
        90,
        83,
        80,
        59,
        64,
        47,
        51,
    ]
)


def _log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- cohort side
def make_cohort(out: Path, *, samples: int, variants: int, seed: int, plink2: str) -> None:
    """The association input: plink2 --dummy genotypes, phenotypes, covariates, PCs, QC lists."""
    out.mkdir(parents=True, exist_ok=True)
    prefix = out / "geno"
    if not prefix.with_suffix(".bed").exists():
        # "0,0.01": half the variants with 1 % missing calls (both code paths run).
        cmd = [
            plink2,
            "--dummy",
            str(samples),
            str(variants),
            "0,0.01",
            "acgt",
            "--seed",
            str(seed),
            "--make-bed",
            "--threads",
            "2",
            "--out",
            str(prefix),
        ]
        _log("running: " + " ".join(cmd))
        subprocess.run(cmd, check=True, capture_output=True)
    fam = pl.read_csv(
        prefix.with_suffix(".fam"),
        separator="\t",
        has_header=False,
        new_columns=["FID", "IID", "PAT", "MAT", "SEX", "PHENO"],
        schema_overrides={"FID": pl.String, "IID": pl.String},
    )
    if fam.height != samples:
        raise SystemExit(f"{prefix}.fam: {fam.height} samples, expected {samples}")
    rng = np.random.default_rng(seed)
    n = samples
    age = rng.normal(55, 8, n)
    sex = rng.integers(1, 3, n)
    pcs = rng.normal(size=(n, 5))
    # Traits depend on covariates (a non-trivial logistic null); genotypes have no effect.
    eta = 0.02 * (age - 55) + 0.2 * (sex - 1.5) + pcs[:, :3] @ np.array([0.3, -0.2, 0.1])
    ldl = eta + rng.normal(size=n)
    cad = 1 + (rng.random(n) < 1 / (1 + np.exp(-(-1.4 + eta)))).astype(np.int64)
    ids = fam.select(pl.col("FID").alias("#FID"), "IID")
    ids.with_columns(ldl=pl.Series(ldl).round(6), cad=pl.Series(cad)).write_csv(
        out / "pheno.tsv", separator="\t"
    )
    ids.with_columns(age=pl.Series(age).round(3), sex=pl.Series(sex)).write_csv(
        out / "covar.tsv", separator="\t"
    )
    ids.with_columns([pl.Series(f"PC{i + 1}", pcs[:, i]).round(6) for i in range(5)]).write_csv(
        out / "pcs.eigenvec", separator="\t"
    )
    ids.write_csv(out / "samples.keep", separator="\t")
    bim = pl.read_csv(
        prefix.with_suffix(".bim"), separator="\t", has_header=False, infer_schema=False
    )
    bim.select(bim.columns[1]).write_csv(out / "variants.keep", include_header=False)
    _log(f"cohort input: {samples} samples x {variants} variants in {out}")


# ---------------------------------------------------------------- gate
def _positions(m: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Sorted (chromosome, position) of ``m`` distinct variants spread by chromosome length."""
    share = CHROM_MB / CHROM_MB.sum()
    counts = rng.multinomial(m, share)
    chrom = np.repeat(np.arange(1, 23), counts)
    pos = np.empty(m, dtype=np.int64)
    start = 0
    for c, k in enumerate(counts):
        span = int(CHROM_MB[c]) * 1_000_000
        # Distinct sorted positions without a Python loop over variants:
        # evenly spaced slots, each jittered within its own slot.
        slot = span // max(k, 1)
        pos[start : start + k] = (
            np.arange(k, dtype=np.int64) * slot + 1 + rng.integers(0, max(slot, 1), k)
        )
        start += k
    return chrom, pos


def _alleles(
    m: int, rng: np.random.Generator, *, palindromes: float, indels: float
) -> tuple[pl.Series, pl.Series, np.ndarray]:
    """REF and ALT allele strings; returns (ref, alt, is_snp)."""
    r = rng.integers(0, 4, m)
    a = (r + rng.integers(1, 4, m)) % 4  # any other base
    pal = rng.random(m) < palindromes
    # Non-palindromic unless drawn so (BASES index i pairs with 3 - i: A/T, C/G).
    a = np.where(pal, 3 - r, np.where(a == 3 - r, (a + 1) % 4, a))
    a = np.where(a == r, (r + 1) % 4, a)
    indel = ~pal & (rng.random(m) < indels)
    ref = pl.Series("ref", BASES[r])
    alt = pl.Series("alt", BASES[a])
    extra = pl.Series(BASES[rng.integers(0, 4, m)])
    alt = pl.select(
        pl.when(pl.lit(pl.Series(indel)))
        .then(pl.lit(alt) + pl.lit(extra) + pl.lit(extra))
        .otherwise(pl.lit(alt))
        .alias("alt")
    ).to_series()
    return ref, alt, ~indel


def _maf(m: int, rng: np.random.Generator) -> np.ndarray:
    """Minor allele frequencies as an imputed panel has them: half rare (< 1 %), half common."""
    rare = rng.random(m) < 0.5
    return np.where(rare, 10 ** rng.uniform(-5, -2, m), rng.uniform(0.01, 0.5, m))


def make_gate(out: Path, *, rows: int, samples: int, seed: int) -> None:
    """One cohort's association table (trait ``cad``, binary) with the internal columns."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / "cad.tsv.gz"
    if path.exists():
        return
    rng = np.random.default_rng(seed + 100)
    chrom, pos = _positions(rows, rng)
    ref, alt, _ = _alleles(rows, rng, palindromes=0.03, indels=0.04)
    maf = _maf(rows, rng)
    eaf = np.where(rng.random(rows) < 0.5, maf, 1 - maf)
    n_cases0, n_controls0 = round(samples * 0.2), samples - round(samples * 0.2)
    # Per-variant missingness: most rows complete, some lose up to 2 % of people.
    miss = np.where(rng.random(rows) < 0.5, 0.0, rng.uniform(0, 0.02, rows))
    n_cases = np.round(n_cases0 * (1 - miss)).astype(np.int64)
    n_controls = np.round(n_controls0 * (1 - miss)).astype(np.int64)
    n = n_cases + n_controls
    mac = 2 * n * np.minimum(eaf, 1 - eaf)
    mac_cases = np.round(rng.binomial(np.round(mac).astype(np.int64), n_cases / n)).astype(float)
    mac_controls = np.round(mac) - mac_cases
    se = 1 / np.sqrt(np.maximum(mac, 0.5) * 0.16)
    beta = rng.normal(0, se)
    z = beta / se
    p = 2 * ndtr(-np.abs(z))
    nlp = -(np.log(2) + log_ndtr(-np.abs(z))) / np.log(10)
    err = rng.random(rows) < 0.001
    firth = ~err & (rng.random(rows) < 0.005)
    df = (
        pl.DataFrame(
            {
                "chromosome": chrom,
                "base_pair_location": pos,
                "effect_allele": alt,
                "other_allele": ref,
                "beta": beta,
                "standard_error": se,
                "effect_allele_frequency": eaf,
                "p_value": p,
                "neg_log_10_p_value": nlp,
            }
        )
        .with_columns(
            variant_id(
                pl.col("chromosome"),
                pl.col("base_pair_location"),
                pl.col("other_allele"),
                pl.col("effect_allele"),
            ),
        )
        .with_columns(
            pl.col("variant_id").alias("rsid"),
            n=pl.Series(n),
            n_cases=pl.Series(n_cases),
            n_controls=pl.Series(n_controls),
            mac=pl.Series(mac),
            mac_cases=pl.Series(mac_cases),
            mac_controls=pl.Series(mac_controls),
            residual_df=pl.Series(n - 8),
            error_code=pl.when(pl.Series(err))
            .then(pl.lit("NOT_CONVERGED"))
            .otherwise(pl.lit(None)),
            firth=pl.Series(firth),
        )
        .with_columns(
            [
                pl.when(pl.Series(err)).then(None).otherwise(pl.col(c)).alias(c)
                for c in ("beta", "standard_error", "p_value", "neg_log_10_p_value")
            ]
        )
    )
    write_sumstats(df, path)
    _log(f"gate input: {rows} rows -> {path} ({path.stat().st_size / 1e6:.0f} MB)")


# ---------------------------------------------------------------- central
def make_central(out: Path, *, cohorts: int, variants: int, seed: int) -> None:
    """K cohorts' GWAS-SSF tables over a shared union, random orientation, and the union panel."""
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"c{i}.tsv.gz" for i in range(cohorts)]
    ref_path = out / "reference.tsv.gz"
    if ref_path.exists() and all(p.exists() for p in paths):
        return
    rng = np.random.default_rng(seed + 200)
    u = int(round(variants / 0.8))
    chrom, pos = _positions(u, rng)
    ref, alt, snp = _alleles(u, rng, palindromes=0.03, indels=0.04)
    panel = pl.DataFrame(
        {
            "chromosome": chrom,
            "base_pair_location": pos,
            "ref": ref,
            "alt": alt,
            "alt_frequency": rng.uniform(0.01, 0.99, u).round(4),
        }
    )
    if not ref_path.exists():
        write_sumstats(panel, ref_path)
        _log(f"reference panel: {u} variants -> {ref_path}")
    core = rng.random(u) < 0.7
    rest = np.flatnonzero(~core)
    comp = {"A": "T", "C": "G", "G": "C", "T": "A"}
    for i, path in enumerate(paths):
        if path.exists():
            continue
        pick = np.sort(
            np.concatenate(
                [
                    np.flatnonzero(core),
                    rng.choice(rest, size=variants - int(core.sum()), replace=False),
                ]
            )
        )
        m = pick.size
        swap = rng.random(m) < 0.5
        is_pal = (ref.gather(pick).replace_strict(comp, default="?") == alt.gather(pick)).to_numpy()
        flip = snp[pick] & ~is_pal & (rng.random(m) < 0.05)
        eaf = np.clip(
            panel["alt_frequency"].to_numpy()[pick] + rng.normal(0, 0.01, m), 0.001, 0.999
        )
        n = rng.integers(20_000, 400_000) * np.ones(m, dtype=np.int64)
        se = 1 / np.sqrt(2 * n * eaf * (1 - eaf))
        beta = rng.normal(0, se)
        z = beta / se
        t = pl.DataFrame(
            {
                "chromosome": chrom[pick],
                "base_pair_location": pos[pick],
                "ref": ref.gather(pick),
                "alt": alt.gather(pick),
                "swap": swap,
                "flip": flip,
                "beta": beta,
                "se": se,
                "eaf": eaf,
                "p": 2 * ndtr(-np.abs(z)),
                "nlp": -(np.log(2) + log_ndtr(-np.abs(z))) / np.log(10),
                "n": n,
            }
        )
        strand = {"A": "T", "C": "G", "G": "C", "T": "A"}
        t = (
            t.with_columns(
                [
                    pl.when(pl.col("flip"))
                    .then(pl.col(c).replace(strand))
                    .otherwise(pl.col(c))
                    .alias(c)
                    for c in ("ref", "alt")
                ]
            )
            .select(
                "chromosome",
                "base_pair_location",
                pl.when(pl.col("swap"))
                .then(pl.col("ref"))
                .otherwise(pl.col("alt"))
                .alias("effect_allele"),
                pl.when(pl.col("swap"))
                .then(pl.col("alt"))
                .otherwise(pl.col("ref"))
                .alias("other_allele"),
                pl.when(pl.col("swap"))
                .then(-pl.col("beta"))
                .otherwise(pl.col("beta"))
                .alias("beta"),
                pl.col("se").alias("standard_error"),
                pl.when(pl.col("swap"))
                .then(1 - pl.col("eaf"))
                .otherwise(pl.col("eaf"))
                .alias("effect_allele_frequency"),
                pl.col("p").alias("p_value"),
                pl.col("nlp").alias("neg_log_10_p_value"),
                "n",
            )
            .with_columns(
                variant_id(
                    pl.col("chromosome"),
                    pl.col("base_pair_location"),
                    pl.col("other_allele"),
                    pl.col("effect_allele"),
                ),
            )
            .with_columns(pl.col("variant_id").alias("rsid"))
        )
        t = t.select([c for c in COLUMNS if c in t.columns])  # the bundle's released columns
        write_sumstats(t, path)
        _log(
            f"central cohort {i}: {m} variants ({int(swap.sum())} swapped, {int(flip.sum())} flipped)"
            f" -> {path} ({path.stat().st_size / 1e6:.0f} MB)"
        )
        del t


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--what", default="cohort,gate,central", help="comma-separated: cohort, gate, central"
    )
    ap.add_argument("--samples", type=int, default=100_000)
    ap.add_argument("--variants", type=int, default=40_000, help="cohort-side variants (all parts)")
    ap.add_argument("--gate-rows", type=int, default=10_000_000)
    ap.add_argument("--cohorts", type=int, default=5)
    ap.add_argument("--central-variants", type=int, default=10_000_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out-dir", type=Path, default=OUT)
    ap.add_argument("--plink2", default=shutil.which("plink2") or "plink2")
    a = ap.parse_args(argv)
    what = set(a.what.split(","))
    unknown = what - {"cohort", "gate", "central"}
    if unknown:
        ap.error(f"--what: unknown {sorted(unknown)}")
    if "cohort" in what:
        make_cohort(
            a.out_dir / "cohort",
            samples=a.samples,
            variants=a.variants,
            seed=a.seed,
            plink2=a.plink2,
        )
    if "gate" in what:
        make_gate(a.out_dir / "gate", rows=a.gate_rows, samples=a.samples, seed=a.seed)
    if "central" in what:
        make_central(
            a.out_dir / "central", cohorts=a.cohorts, variants=a.central_variants, seed=a.seed
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
