"""QC, KING, PCA and clumping give the same results from every genotype container (issue 3).

Oracle: plink2 converts the small simulated demo's admixed cohort (its
chromosome 1, to keep the file short) from ``.bed`` to ``.pgen``, BGEN v1.2
and bgzipped VCF (commands in ``demo_containers``); ``crosscohort qc``,
``pca`` and ``clump`` on each must write what they write for the ``.bed``:
the same kept samples and variants, ledgers, per-variant statistics and KING
table, byte for byte, and the same PCs (|r| = 1 per PC) and eigenvalues.

For containers holding fractional dosages, plink2 itself is the oracle of
what is computed from hard calls and what from dosages
(``test_qc__dosage_vcf_follows_plink2_hard_call_and_dosage_rules``).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from crosscohort.cli import main
from crosscohort.tre.genotype_formats import GenotypeSource
from crosscohort.tre.genotypes import Genotypes, hard_calls
from crosscohort.tre.qc import run_qc

COHORT = "admixed_afr"


@pytest.fixture(scope="module")
def demo_containers(tmp_path_factory) -> dict[str, Path]:
    from crosscohort.demo.simulate import simulate_demo
    from tests.conftest import require_tool

    plink2 = require_tool("plink2")
    root = tmp_path_factory.mktemp("containers")
    simulate_demo(root / "demo", scale="small")  # seed 42, as the workflow's demo

    def run(*args: str) -> None:
        subprocess.run([plink2, *args], check=True, capture_output=True)

    bed = root / "c"
    # Oracle commands (plink2 v2.00a3.5):
    run("--bfile", str(root / "demo" / COHORT), "--chr", "1", "--make-bed", "--out", str(bed))
    run("--bfile", str(bed), "--make-pgen", "--out", str(root / "pg"))
    run(
        "--bfile",
        str(bed),
        "--export",
        "bgen-1.2",
        "bits=8",
        "ref-first",
        "--out",
        str(root / "bf"),
    )
    # id-paste=iid: the VCF holds the IIDs; FIDs (and sex) come back through --psam
    run("--bfile", str(bed), "--export", "vcf", "bgz", "id-paste=iid", "--out", str(root / "v"))
    return {"root": root, "bed": bed, "demo": root / "demo"}


GENO_ARGS = {
    "bed": lambda d: ["--bfile", str(d["bed"])],
    "pgen": lambda d: ["--pfile", str(d["root"] / "pg")],
    "bgen": lambda d: [
        "--bgen",
        str(d["root"] / "bf.bgen"),
        "--sample",
        str(d["root"] / "bf.sample"),
    ],
    "vcf": lambda d: ["--vcf", str(d["root"] / "v.vcf.gz"), "--psam", str(d["root"] / "pg.psam")],
}


def _qc(d: dict, container: str) -> Path:
    out = d["root"] / f"qc_{container}" / "qc"
    if not out.with_name("qc.ledger.json").exists():
        out.parent.mkdir()
        # the default KING cutoff: on this 2 Mb genome many pairs exceed it (see config.yaml),
        # which gives a long KING table to compare
        assert (
            main(["qc", *GENO_ARGS[container](d), "--cohort", COHORT, "--out-prefix", str(out)])
            == 0
        )
    return out


def _pca(d: dict, container: str) -> Path:
    qc = _qc(d, "bed")  # the same QC'd sets for every container: PCs are compared, not QC
    out = d["root"] / f"pca_{container}.eigenvec"
    if not out.exists():
        assert (
            main(
                [
                    "pca",
                    *GENO_ARGS[container](d),
                    "--keep",
                    f"{qc}.samples.keep",
                    "--extract",
                    f"{qc}.variants.keep",
                    "--n-pcs",
                    "5",
                    "--out",
                    str(out),
                ]
            )
            == 0
        )
    return out


@pytest.mark.oracle
@pytest.mark.parametrize("container", ["pgen", "bgen", "vcf"])
def test_qc__every_container_writes_the_bed_kept_sets_ledgers_stats_and_king_table(
    demo_containers, container
):
    ref, got = _qc(demo_containers, "bed"), _qc(demo_containers, container)
    for ext in (".samples.keep", ".variants.keep", ".ledger.json", ".king.tsv"):
        assert Path(f"{got}{ext}").read_bytes() == Path(f"{ref}{ext}").read_bytes(), (
            container,
            ext,
        )
    a = pl.read_csv(f"{ref}.variant_stats.tsv.gz", separator="\t", null_values="NA")
    b = pl.read_csv(f"{got}.variant_stats.tsv.gz", separator="\t", null_values="NA")
    assert a.equals(b), container
    # the comparison has teeth: every rule removed something and KING found pairs
    removed = {k: v for k, v in a.group_by("qc_reason").len().iter_rows()}
    assert all(removed.get(r, 0) > 0 for r in ("call_rate_below_geno", "maf_below", "mac_below")), (
        removed
    )
    assert len(Path(f"{ref}.king.tsv").read_text().splitlines()) > 100
    assert len(Path(f"{ref}.samples.keep").read_text().splitlines()) - 1 < 800


@pytest.mark.oracle
@pytest.mark.parametrize("container", ["pgen", "bgen", "vcf"])
def test_pca__every_container_gives_the_bed_pcs(demo_containers, container):
    ref, got = _pca(demo_containers, "bed"), _pca(demo_containers, container)
    a = pl.read_csv(ref, separator="\t")
    b = pl.read_csv(got, separator="\t")
    assert a.select("#FID", "IID").equals(b.select("#FID", "IID"))
    for k in range(1, 6):
        r = np.corrcoef(a[f"PC{k}"].to_numpy(), b[f"PC{k}"].to_numpy())[0, 1]
        assert abs(r) == pytest.approx(1.0, abs=1e-10), (container, k, r)
    np.testing.assert_allclose(
        np.loadtxt(f"{got}.eigenval"), np.loadtxt(f"{ref}.eigenval"), rtol=1e-10
    )
    assert Path(f"{got}.prune.in").read_text() == Path(f"{ref}.prune.in").read_text()


def _sumstats(d: dict) -> Path:
    """GWAS-SSF p-values over the cohort's variants: a few planted leads, the rest uniform."""
    path = d["root"] / "ss.tsv"
    if path.exists():
        return path
    bim = Genotypes([d["bed"]]).variants
    rng = np.random.default_rng(3)
    p = rng.uniform(size=bim.height)
    p[rng.choice(bim.height, 6, replace=False)] = 10.0 ** -rng.uniform(9, 20, 6)
    pl.DataFrame(
        {
            "chromosome": bim["chrom"].cast(pl.Int64),
            "base_pair_location": bim["pos"],
            "effect_allele": bim["a1"],
            "other_allele": bim["a2"],
            "p_value": p,
        }
    ).write_csv(path, separator="\t")
    return path


@pytest.mark.oracle
@pytest.mark.parametrize("container", ["pgen", "bgen", "vcf"])
def test_clump__every_container_gives_the_bed_clumps(demo_containers, container):
    d = demo_containers
    ss = _sumstats(d)
    outs = {}
    for c in ("bed", container):
        out = d["root"] / f"clump_{container}_{c}.tsv"
        assert (
            main(
                [
                    "clump",
                    *GENO_ARGS[c](d),
                    "--sumstats",
                    str(ss),
                    "--clump-p2",
                    "0.05",
                    "--out",
                    str(out),
                ]
            )
            == 0
        )
        outs[c] = out
    assert outs[container].read_bytes() == outs["bed"].read_bytes()
    clumps = pl.read_csv(outs["bed"], separator="\t")
    # six planted leads (two may share a clump); LD was read and used
    assert clumps.height >= 4 and clumps["n_members"].sum() > 0


# ------------------------------------------------------------ dosage containers
def _dosage_vcf(path: Path, n: int = 80, m: int = 40) -> np.ndarray:
    """A VCF with FORMAT DS only: hard-call-like, near-integer and fractional dosages, some missing."""
    rng = np.random.default_rng(8)
    p = rng.uniform(0.1, 0.5, m)
    g = rng.binomial(2, p, size=(n, m)).astype(float)
    # multiples of 1/16: exact in decimal text and in plink2's 1/16384 dosage units, so both
    # tools sum the same numbers; within 0.1 of an integer (a hard call) or not (none)
    noise = rng.choice(
        [0.0, 0.0625, -0.0625, 0.125, 0.375, -0.4375],
        size=(n, m),
        p=[0.6, 0.1, 0.1, 0.05, 0.1, 0.05],
    )
    ds = np.clip(g + noise, 0, 2)
    ds[rng.random((n, m)) < 0.03] = np.nan
    lines = [
        "##fileformat=VCFv4.2",
        "##contig=<ID=1,length=10000000>",
        '##FORMAT=<ID=DS,Number=A,Type=Float,Description="ALT dosage">',
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\t"
        + "\t".join(f"s{i}" for i in range(n)),
    ]
    for j in range(m):
        cells = ["." if np.isnan(v) else f"{v:.4f}" for v in ds[:, j]]
        lines.append(f"1\t{1000 * (j + 1)}\tv{j}\tA\tG\t.\t.\t.\tDS\t" + "\t".join(cells))
    path.write_text("\n".join(lines) + "\n")
    return ds


def test_hard_calls__plink2_threshold_rule():
    d = np.array([0.0, 0.1, 0.1001, 0.5, 0.9, 1.1, 1.11, 1.9, 2.0, np.nan])
    np.testing.assert_array_equal(hard_calls(d), [0, 0, np.nan, np.nan, 1, 1, np.nan, 2, 2, np.nan])


@pytest.mark.oracle
def test_qc__dosage_vcf_follows_plink2_hard_call_and_dosage_rules(tmp_path, plink2):
    """Call rates and HWE from hard calls, frequencies from dosages: plink2's own split."""
    vcf = tmp_path / "ds.vcf"
    ds = _dosage_vcf(vcf)
    assert (np.abs(ds - np.rint(ds)) > 0.1).sum() > 100  # dosages without a hard call are present
    # Oracle command (plink2 v2.00a3.5):
    subprocess.run(
        [
            plink2,
            "--vcf",
            str(vcf),
            "dosage=DS",
            "--freq",
            "--hardy",
            "--missing",
            "--out",
            str(tmp_path / "o"),
        ],
        check=True,
        capture_output=True,
    )
    res = run_qc(
        Genotypes([GenotypeSource("vcf", str(vcf))]),
        cohort="ds",
        king_cutoff=None,
        thresholds=_no_thresholds(),
    )
    st = res.variant_stats
    afreq = pl.read_csv(tmp_path / "o.afreq", separator="\t")
    np.testing.assert_allclose(st["alt_freq"].to_numpy(), afreq["ALT_FREQS"].to_numpy(), rtol=1e-5)
    vmiss = pl.read_csv(tmp_path / "o.vmiss", separator="\t")
    np.testing.assert_allclose(
        st["missing_rate"].to_numpy(), vmiss["F_MISS"].to_numpy(), rtol=1e-6, atol=1e-9
    )
    hardy = pl.read_csv(tmp_path / "o.hardy", separator="\t")
    np.testing.assert_allclose(st["hwe_p"].to_numpy(), hardy["P"].to_numpy(), rtol=1e-4)
    smiss = pl.read_csv(tmp_path / "o.smiss", separator="\t")
    np.testing.assert_allclose(
        res.samples["missing_rate"].to_numpy(), smiss["F_MISS"].to_numpy(), rtol=1e-6
    )
    # dosage-based: a fractional MAC, as plink2 --mac counts dosages
    assert (st["mac"].to_numpy() % 1 != 0).any()
    # hard-call based: a dosage 0.125+ from every integer counts as missing in the call rate
    dosage_missing = np.isnan(ds).mean(axis=0)
    extra = st["missing_rate"].to_numpy() - dosage_missing
    assert (extra >= 0).all() and extra.mean() > 0.1, extra


def _no_thresholds():
    from crosscohort.tre.qc import QcThresholds

    return QcThresholds(geno=1.0, mind=1.0, maf=0.0, mac=0.0, hwe=0.0)
