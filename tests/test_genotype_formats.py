"""Genotype containers: the same genotypes as .bed, .pgen, BGEN v1.2 and VCF/BCF give the same results.

Oracle: plink2 converts one PLINK 1 fileset into every other container (the
exact commands are beside each conversion); ``crosscohort assoc`` on each
must then reproduce the .bed results to 1e-10 (beta, SE, p), with the same
``n`` and alleles. Missing calls must survive each conversion as NaN.
Chromosome X (males 0/2 in the ``.bed``, haploid in plink2's VCF; sex from
the ``.psam`` or, for a VCF, ``--psam``) gives the ``.bed`` association too.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from bed_reader import to_bed

from crosscohort.cli import main
from crosscohort.contract.errors import InputError
from crosscohort.tre.genotype_formats import GenotypeSource
from crosscohort.tre.genotypes import Genotypes

N, M = 240, 60


def _dataset(root: Path) -> dict[str, Path]:
    """A PLINK 1 fileset with 5 % missing calls, a quantitative and a case/control trait, a covariate."""
    rng = np.random.default_rng(11)
    maf = rng.uniform(0.05, 0.5, M)
    g = rng.binomial(2, maf, size=(N, M)).astype(np.float64)
    g[rng.random((N, M)) < 0.05] = np.nan
    bases = np.array(list("ACGT"))
    a1 = rng.integers(0, 4, M)
    a2 = (a1 + rng.integers(1, 4, M)) % 4
    prefix = root / "c"
    # FID 0 = "no family ID" to plink2, so its VCF/.psam exports keep the IID alone and a
    # phenotype file written for the .fam matches every container.
    to_bed(prefix.with_suffix(".bed"), g, count_A1=True, num_threads=1, properties={
        "fid": ["0"] * N, "iid": [f"s{i}" for i in range(N)], "sex": rng.integers(1, 3, N),
        "chromosome": ["1"] * (M // 2) + ["2"] * (M - M // 2),
        "sid": [f"rs{1000 + j}" for j in range(M)],
        "bp_position": np.arange(1, M + 1) * 1000 + 17,
        "allele_1": bases[a1].tolist(), "allele_2": bases[a2].tolist(),
    })
    dos = np.nan_to_num(g, nan=1.0)
    q = dos[:, 3] * 0.5 + rng.normal(size=N)
    b = (rng.random(N) < 1 / (1 + np.exp(-(dos[:, 7] - 1)))).astype(int) + 1
    age = rng.normal(50, 10, N)
    pheno = root / "p.tsv"
    pheno.write_text("#FID\tIID\tq\tb\n" + "".join(f"0\ts{i}\t{q[i]:.6f}\t{b[i]}\n" for i in range(N)))
    covar = root / "cov.tsv"
    covar.write_text("#FID\tIID\tage\n" + "".join(f"0\ts{i}\t{age[i]:.4f}\n" for i in range(N)))
    return {"bfile": prefix, "pheno": pheno, "covar": covar, "truth": g}


@pytest.fixture(scope="module")
def converted(tmp_path_factory, request) -> dict[str, Path]:
    from tests.conftest import require_tool

    plink2 = require_tool("plink2")
    root = tmp_path_factory.mktemp("formats")
    d = _dataset(root)
    b = str(d["bfile"])

    def run(*args: str) -> None:
        subprocess.run([plink2, "--bfile", b, *args], check=True, capture_output=True)

    # Oracle commands (plink2 v2.00a3.5):
    run("--make-pgen", "--out", str(root / "pg"))                                 # -> pg.pgen/.pvar/.psam
    run("--export", "bgen-1.2", "bits=8", "ref-first", "--out", str(root / "bf"))  # REF first: 2nd allele = ALT
    run("--export", "bgen-1.2", "bits=8", "--out", str(root / "bl"))               # plink2's default: ALT first
    run("--export", "vcf", "--out", str(root / "v"))                               # GT only
    run("--export", "vcf", "bgz", "vcf-dosage=DS-force", "--out", str(root / "vds"))  # GT:DS, bgzipped
    run("--export", "bcf", "--out", str(root / "b"))                               # BCF, GT
    d.update(pfile=root / "pg", bgen_first=root / "bf.bgen", bgen_last=root / "bl.bgen",
             vcf=root / "v.vcf", vcf_ds=root / "vds.vcf.gz", bcf=root / "b.bcf", root=root)
    return d


CONTAINERS = {
    "pfile": lambda d: ["--pfile", str(d["pfile"])],
    "bgen_ref_first": lambda d: ["--bgen", str(d["bgen_first"]), "--sample", str(d["root"] / "bf.sample")],
    "bgen_ref_last": lambda d: ["--bgen", str(d["bgen_last"]), "--sample", str(d["root"] / "bl.sample"),
                                "--bgen-ref", "last"],
    "vcf_gt": lambda d: ["--vcf", str(d["vcf"])],
    "vcf_ds": lambda d: ["--vcf", str(d["vcf_ds"]), "--vcf-field", "DS"],
    "bcf_gt": lambda d: ["--vcf", str(d["bcf"])],
}


def _assoc(d: dict, geno_args: list[str], out: Path) -> dict[str, pl.DataFrame]:
    rc = main(["assoc", *geno_args, "--pheno", str(d["pheno"]), "--covar", str(d["covar"]),
               "--chunk-size", "16", "--out", str(out / "{trait}.tsv")])
    assert rc in (0, None)
    return {t: pl.read_csv(out / f"{t}.tsv", separator="\t", infer_schema_length=None) for t in ("q", "b")}


@pytest.fixture(scope="module")
def bed_results(converted) -> dict[str, pl.DataFrame]:
    out = converted["root"] / "out_bed"
    out.mkdir()
    return _assoc(converted, ["--bfile", str(converted["bfile"])], out)


@pytest.mark.oracle
@pytest.mark.parametrize("container", list(CONTAINERS))
def test_assoc__every_container_of_the_same_genotypes_gives_the_bed_results(converted, bed_results, container):
    out = converted["root"] / f"out_{container}"
    out.mkdir()
    got = _assoc(converted, CONTAINERS[container](converted), out)
    for trait in ("q", "b"):
        ref, res = bed_results[trait], got[trait]
        assert res.height == ref.height == M
        for col in ("chromosome", "base_pair_location", "effect_allele", "other_allele", "n"):
            assert res.get_column(col).to_list() == ref.get_column(col).to_list(), (trait, col)
        if trait == "b":
            assert res.get_column("n_cases").to_list() == ref.get_column("n_cases").to_list()
        for col in ("beta", "standard_error", "p_value", "effect_allele_frequency"):
            np.testing.assert_allclose(res.get_column(col).to_numpy(), ref.get_column(col).to_numpy(),
                                       rtol=1e-10, atol=1e-12, err_msg=f"{container} {trait} {col}")
        assert ref.get_column("n").min() < N  # missing calls reached the fits: n differs per variant


@pytest.mark.oracle
@pytest.mark.parametrize("container", ["pfile", "bgen_ref_first", "bgen_ref_last", "vcf_gt", "vcf_ds", "bcf_gt"])
def test_read__missing_calls_stay_nan_and_dosages_count_alt(converted, container):
    d = converted
    src = {
        "pfile": GenotypeSource("pfile", str(d["pfile"])),
        "bgen_ref_first": GenotypeSource("bgen", str(d["bgen_first"])),
        "bgen_ref_last": GenotypeSource("bgen", str(d["bgen_last"]), bgen_ref_first=False),
        "vcf_gt": GenotypeSource("vcf", str(d["vcf"])),
        "vcf_ds": GenotypeSource("vcf", str(d["vcf_ds"])),
        "bcf_gt": GenotypeSource("vcf", str(d["bcf"])),
    }[container]
    geno, bed = Genotypes([src]), Genotypes([d["bfile"]])
    assert geno.variants.select("chrom", "id", "pos", "a1", "a2").equals(
        bed.variants.select("chrom", "id", "pos", "a1", "a2"))
    assert geno.samples.select("fid", "iid").equals(bed.samples.select("fid", "iid"))
    np.testing.assert_array_equal(geno.read(np.arange(M)), d["truth"])
    # A sample subset and a non-contiguous, unordered variant list (the VCF reader reopens).
    si, vi = np.array([1, 5, 6, 100, 239]), np.array([40, 2, 3, 59])
    np.testing.assert_array_equal(geno.read(vi, si), d["truth"][np.ix_(si, vi)])


def test_bgen__sex_from_sample_file_and_counts(converted):
    geno = Genotypes([GenotypeSource("bgen", str(converted["bgen_first"]))])
    bed = Genotypes([converted["bfile"]])
    assert geno.samples.get_column("sex").to_list() == bed.samples.get_column("sex").to_list()


@pytest.mark.parametrize("missing, container", [
    (".pvar", "pfile"), (".psam", "pfile"), (".pgen", "pfile"), (".sample", "bgen"),
])
def test_open__missing_side_file_names_it(converted, tmp_path, missing, container):
    if container == "pfile":
        for ext in (".pgen", ".pvar", ".psam"):
            if ext != missing:
                shutil.copy(converted["root"] / f"pg{ext}", tmp_path / f"pg{ext}")
        src = GenotypeSource("pfile", str(tmp_path / "pg"))
    else:
        shutil.copy(converted["bgen_first"], tmp_path / "bf.bgen")
        src = GenotypeSource("bgen", str(tmp_path / "bf.bgen"))
    with pytest.raises(InputError, match=rf"{tmp_path}/\w+\{missing}: no such file"):
        Genotypes([src])


def _truncate(src: Path, dst: Path, keep: float = 0.6) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * keep)])
    return dst


def test_open__truncated_pgen_is_an_input_error_naming_it(converted, tmp_path):
    for ext in (".pvar", ".psam"):
        shutil.copy(converted["root"] / f"pg{ext}", tmp_path / f"pg{ext}")
    pgen = _truncate(converted["root"] / "pg.pgen", tmp_path / "pg.pgen")
    with pytest.raises(InputError, match=rf"{pgen}"):
        Genotypes([GenotypeSource("pfile", str(tmp_path / "pg"))]).read(np.arange(M))


def test_open__truncated_bgen_is_an_input_error_naming_it(converted, tmp_path):
    shutil.copy(converted["root"] / "bf.sample", tmp_path / "t.sample")
    bgen = _truncate(converted["bgen_first"], tmp_path / "t.bgen")
    with pytest.raises(InputError, match=rf"{bgen}"):
        Genotypes([GenotypeSource("bgen", str(bgen))]).read(np.arange(M))


@pytest.mark.parametrize("name", ["vds.vcf.gz", "b.bcf", "v.vcf"])
def test_open__truncated_vcf_is_an_input_error_naming_it(converted, tmp_path, name):
    vcf = _truncate(converted["root"] / name, tmp_path / name)
    with pytest.raises(InputError, match=rf"{vcf}"):
        Genotypes([GenotypeSource("vcf", str(vcf))]).read(np.arange(M))


def test_assoc_cli__sample_without_bgen_is_refused(converted, tmp_path, capsys):
    rc = main(["assoc", "--pfile", str(converted["pfile"]), "--sample", "x.sample",
               "--pheno", str(converted["pheno"]), "--out", str(tmp_path / "{trait}.tsv")])
    assert rc == 2
    assert "--sample x.sample: only used with --bgen" in capsys.readouterr().err


def test_assoc_cli__missing_psam_is_a_one_line_error_naming_it(converted, tmp_path, capsys):
    for ext in (".pgen", ".pvar"):
        shutil.copy(converted["root"] / f"pg{ext}", tmp_path / f"pg{ext}")
    rc = main(["assoc", "--pfile", str(tmp_path / "pg"), "--pheno", str(converted["pheno"]),
               "--out", str(tmp_path / "{trait}.tsv")])
    assert rc == 2
    assert f"{tmp_path}/pg.psam: no such file" in capsys.readouterr().err


# ------------------------------------------------------------------ chromosome X
def _chrx_dataset(root: Path) -> dict[str, Path]:
    """Autosomal and chromosome X variants; males' X calls homozygous (0/2), a few samples of unknown sex."""
    rng = np.random.default_rng(23)
    n, m_auto, m_x = 300, 10, 30
    sex = rng.integers(1, 3, n)
    sex[:6] = 0  # unknown: left out of the chrX fits, as plink2 does
    p = rng.uniform(0.1, 0.5, m_auto + m_x)
    g = rng.binomial(2, p, size=(n, m_auto + m_x)).astype(np.float64)
    male = sex == 1
    g[np.ix_(male, np.arange(m_auto, m_auto + m_x))] = 2.0 * rng.binomial(1, p[m_auto:], size=(male.sum(), m_x))
    g[rng.random(g.shape) < 0.03] = np.nan
    bases = np.array(list("ACGT"))
    a1 = rng.integers(0, 4, g.shape[1])
    a2 = (a1 + rng.integers(1, 4, g.shape[1])) % 4
    prefix = root / "x"
    to_bed(prefix.with_suffix(".bed"), g, count_A1=True, num_threads=1, properties={
        "fid": ["0"] * n, "iid": [f"s{i}" for i in range(n)], "sex": sex,
        "chromosome": ["1"] * m_auto + ["X"] * m_x,
        "sid": [f"x{j}" for j in range(g.shape[1])],
        # X positions outside the pseudo-autosomal regions (plink2 would split them off)
        "bp_position": np.r_[np.arange(1, m_auto + 1) * 1000, 5_000_000 + np.arange(1, m_x + 1) * 1000],
        "allele_1": bases[a1].tolist(), "allele_2": bases[a2].tolist(),
    })
    dos = np.nan_to_num(g, nan=0.0)
    q = 0.4 * dos[:, m_auto + 2] + 0.5 * (sex == 1) + rng.normal(size=n)
    pheno = root / "x.pheno.tsv"
    pheno.write_text("#FID\tIID\tq\n" + "".join(f"0\ts{i}\t{q[i]:.6f}\n" for i in range(n)))
    return {"bfile": prefix, "pheno": pheno, "truth": g, "male": male, "m_auto": m_auto}


@pytest.fixture(scope="module")
def chrx(tmp_path_factory) -> dict:
    from tests.conftest import require_tool

    plink2 = require_tool("plink2")
    root = tmp_path_factory.mktemp("chrx")
    d = _chrx_dataset(root)
    b = str(d["bfile"])
    # Oracle commands (plink2 v2.00a3.5): males' X calls become haploid in the VCF;
    # the VCF holds no sex, which comes back through --psam (the .pgen's)
    for args in (["--make-pgen", "--out", str(root / "xp")],
                 ["--export", "vcf", "bgz", "--out", str(root / "xv")]):
        subprocess.run([plink2, "--bfile", b, *args], check=True, capture_output=True)
    d.update(root=root, pfile=root / "xp", vcf=root / "xv.vcf.gz", psam=root / "xp.psam")
    return d


@pytest.mark.oracle
@pytest.mark.parametrize("container", ["pfile", "vcf"])
def test_assoc__chrx_through_pgen_and_vcf_equals_the_bed(chrx, container):
    d = chrx
    args = {"pfile": ["--pfile", str(d["pfile"])],
            "vcf": ["--vcf", str(d["vcf"]), "--psam", str(d["psam"])]}[container]
    src = {"pfile": GenotypeSource("pfile", str(d["pfile"])),
           "vcf": GenotypeSource("vcf", str(d["vcf"]), sample=str(d["psam"]))}[container]
    geno = Genotypes([src])
    # the VCF's haploid male calls count 0/2, like the .bed's homozygous ones
    x = geno.read(np.arange(d["m_auto"], geno.n_variants))
    np.testing.assert_array_equal(x, d["truth"][:, d["m_auto"]:])
    assert set(np.unique(x[d["male"]][~np.isnan(x[d["male"]])])) == {0.0, 2.0}
    assert geno.samples["sex"].to_list() == Genotypes([d["bfile"]]).samples["sex"].to_list()
    res = {}
    for label, geno_args in (("bed", ["--bfile", str(d["bfile"])]), (container, args)):
        out = d["root"] / f"{container}_{label}.tsv"
        assert main(["assoc", *geno_args, "--pheno", str(d["pheno"]), "--out", str(out)]) == 0
        res[label] = pl.read_csv(out, separator="\t", infer_schema_length=None)
    ref, got = res["bed"], res[container]
    assert got.get_column("n").to_list() == ref.get_column("n").to_list()
    on_x = (ref.get_column("chromosome") == 23).to_numpy()
    assert on_x.sum() == 30
    # unknown-sex samples are out of the X fits only
    called = ~np.isnan(d["truth"])
    known = Genotypes([d["bfile"]]).samples["sex"].to_numpy() > 0
    expected_n = np.where(on_x, (called & known[:, None]).sum(axis=0), called.sum(axis=0))
    assert ref.get_column("n").to_list() == expected_n.tolist()
    for col in ("beta", "standard_error", "p_value", "effect_allele_frequency"):
        np.testing.assert_allclose(got.get_column(col).to_numpy(), ref.get_column(col).to_numpy(),
                                   rtol=1e-10, atol=1e-12, err_msg=f"{container} {col}")


def test_vcf__psam_of_other_samples_is_refused_naming_both_files(chrx, tmp_path):
    psam = tmp_path / "bad.psam"
    lines = chrx["psam"].read_text().splitlines()
    psam.write_text("\n".join([lines[0], lines[2], lines[1], *lines[3:]]) + "\n")
    with pytest.raises(InputError, match=rf"{psam}: sample 1 is IID 's1', but {chrx['vcf']} has 's0'"):
        Genotypes([GenotypeSource("vcf", str(chrx["vcf"]), sample=str(psam))])


def test_cli__psam_without_vcf_is_refused(chrx, tmp_path, capsys):
    rc = main(["qc", "--pfile", str(chrx["pfile"]), "--psam", str(chrx["psam"]),
               "--out-prefix", str(tmp_path / "q")])
    assert rc == 2
    assert "--psam" in capsys.readouterr().err


@pytest.mark.parametrize(("reader", "name"), [("read_psam", "g.psam"), ("read_bgen_sample", "g.sample"),
                                              ("read_pvar", "g.pvar")])
def test_sample_and_variant_files__a_directory_or_latin1_is_an_input_error(tmp_path, reader, name):
    """Before: IsADirectoryError / UnicodeDecodeError tracebacks from open()/read_text()."""
    from crosscohort.tre import genotype_formats

    read = getattr(genotype_formats, reader)
    (tmp_path / name).mkdir()
    with pytest.raises(InputError, match=rf"{name}: is a directory"):
        read(tmp_path / name)
    if reader == "read_pvar":
        return
    other = tmp_path / "l1" / name
    other.parent.mkdir()
    text = ("#FID\tIID\tSEX\nF1\tI1\t1\nF2\tJos\xe9\t2\n" if reader == "read_psam"
            else "ID_1 ID_2 missing sex\n0 0 0 D\nF1 I1 0 1\nF2 Jos\xe9 0 2\n")
    other.write_bytes(text.encode("latin-1"))
    with pytest.raises(InputError, match=rf"{name}, line 3: not UTF-8 text" if reader == "read_psam"
                       else rf"{name}, line 4: not UTF-8 text"):
        read(other)


def test_vcf__latin1_sample_ids_are_an_input_error_not_a_traceback(tmp_path):
    """Before: cyvcf2's UnicodeDecodeError from VCF.samples (a traceback from 'assoc --vcf')."""
    from crosscohort.tre.genotype_formats import GenotypeSource, open_container

    p = tmp_path / "l1.vcf"
    p.write_bytes("##fileformat=VCFv4.2\n##contig=<ID=1>\n"
                  '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n'
                  "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tA1\tJos\xe9\n"
                  "1\t10\trs1\tA\tC\t.\t.\t.\tGT\t0/1\t1/1\n".encode("latin-1"))
    with pytest.raises(InputError, match=r"l1\.vcf: the #CHROM header line's sample IDs are not UTF-8"):
        open_container(GenotypeSource("vcf", str(p)))


@pytest.mark.parametrize(("lines", "bad_line"), [
    (["##fileformat=PVARv1.0", "#CHROM\tPOS\tID\tREF\tALT", "1\t10\trs1\tA\tC",
      "1\t20\trs2-Jos\xe9\tA\tG"], 4),
    (["##source=Jos\xe9's pipeline", "#CHROM\tPOS\tID\tREF\tALT", "1\t10\trs1\tA\tC"], 1),
])
def test_read_pvar__latin1_text_names_its_line(tmp_path, lines, bad_line):
    """Before: a data line gave polars' 'invalid utf-8 sequence' with no line, and a ## line
    a UnicodeDecodeError traceback from the header scan."""
    from crosscohort.tre.genotype_formats import read_pvar

    pvar = tmp_path / "g.pvar"
    pvar.write_bytes(("\n".join(lines) + "\n").encode("latin-1"))
    with pytest.raises(InputError, match=rf"g\.pvar: line {bad_line}: not UTF-8 text \(byte 0xe9 "
                                         r"at column \d+\); rule: UTF-8 text"):
        read_pvar(pvar)
