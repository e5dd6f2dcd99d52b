"""``crosscohort assoc --missing fill``: the sumstats describe the genotypes the bundle's sums describe.

One small cohort with missing calls (5 % in a third of the variants), samples
outside ``--keep`` (all hom-alt, so that they would move the fill were they in
its reference set) and genotyped samples without a phenotype (in the
reference set, not analysed). Product paths only: ``assoc``, ``sufficient``,
``pool-fit``, ``pool --fill-missing`` and ``export`` through
:func:`crosscohort.cli.main`; oracles ``pool-fit`` of the cohort's own sums
(1e-10) and plink2 ``--glm`` on the fileset ``pool --fill-missing`` writes
(its 6 printed digits).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from bed_reader import to_bed

from crosscohort.cli import main
from crosscohort.contract.sumstats import read_sumstats
from crosscohort.tre.genotypes import Genotypes

N, M = 200, 30
OUTSIDE_KEEP = range(30)  # genotyped, not in --keep
NO_PHENO = range(190, 200)  # in --keep, no phenotype: in the fill's reference set only


def _cohort(d: Path, seed: int = 24) -> Path:
    rng = np.random.default_rng(seed)
    freqs = rng.uniform(0.15, 0.5, M)
    g = rng.binomial(2, freqs, size=(N, M)).astype(float)
    g[rng.random((N, M)) < np.where(np.arange(M) % 3 == 0, 0.05, 0.0)] = np.nan
    g[list(OUTSIDE_KEEP)] = 2.0
    ids = [f"s{i}" for i in range(N)]
    to_bed(d / "c.bed", g, count_A1=True, num_threads=1,
           properties={"fid": ids, "iid": ids, "sex": rng.integers(1, 3, N), "sid": [f"v{j}" for j in range(M)],
                       "chromosome": ["1"] * (M // 2) + ["2"] * (M - M // 2), "bp_position": np.arange(M) * 100 + 1,
                       "allele_1": ["A"] * M, "allele_2": ["G"] * M})
    age, sex, pcs = rng.normal(45, 10, N), rng.integers(1, 3, N), rng.normal(size=(N, 2))
    y = 0.03 * age + 0.2 * sex + pcs @ [0.5, -0.4] + 0.3 * np.nan_to_num(g[:, 3]) + rng.normal(size=N)
    (d / "pheno.tsv").write_text("#FID\tIID\tqt\n" + "".join(
        f"{i}\t{i}\t{'NA' if k in NO_PHENO else f'{y[k]:.6f}'}\n" for k, i in enumerate(ids)))
    (d / "covar.tsv").write_text("#FID\tIID\tage\tsex\n" + "".join(
        f"{i}\t{i}\t{age[k]:.3f}\t{sex[k]}\n" for k, i in enumerate(ids)))
    (d / "pcs.tsv").write_text("#FID\tIID\tPC1\tPC2\n" + "".join(
        f"{i}\t{i}\t{pcs[k, 0]:.6f}\t{pcs[k, 1]:.6f}\n" for k, i in enumerate(ids)))
    (d / "keep.txt").write_text("".join(f"{i} {i}\n" for k, i in enumerate(ids) if k not in OUTSIDE_KEEP))
    return d / "c"


def _assoc(d: Path, out: str, *extra: str) -> pl.DataFrame:
    assert main(["assoc", "--bfile", str(d / "c"), "--keep", str(d / "keep.txt"), "--pheno", str(d / "pheno.tsv"),
                 "--covar", str(d / "covar.tsv"), "--covar", str(d / "pcs.tsv"), *extra,
                 "--out", str(d / out)]) == 0
    return read_sumstats(d / out)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("fill")
    _cohort(d)
    assert main(["sufficient", "--bfile", str(d / "c"), "--keep", str(d / "keep.txt"),
                 "--pheno", str(d / "pheno.tsv"), "--covar", str(d / "covar.tsv"), "--covar", str(d / "pcs.tsv"),
                 "--cohort", "c", "--out-dir", str(d / "suff")]) == 0
    return d


def test_assoc_missing_fill__equals_pool_fit_of_the_cohorts_own_sums_to_1e10(cohort):
    """Failed before --missing fill: the drop-mode sumstats differ from the sums' fit wherever a call is missing."""
    d = cohort
    assert main(["pool-fit", "--trait", "qt", "--shared", "age,sex", "--out", str(d / "fed.tsv"),
                 str(d / "suff")]) == 0
    fed = read_sumstats(d / "fed.tsv")
    filled = _assoc(d, "fill.tsv", "--missing", "fill")
    drop = _assoc(d, "drop.tsv")
    assert fed.get_column("variant_id").to_list() == filled.get_column("variant_id").to_list()
    n_trait = N - len(OUTSIDE_KEEP) - len(NO_PHENO)
    assert filled.get_column("n").to_list() == [n_trait] * M
    b_f, b_a = fed.get_column("beta").to_numpy(), filled.get_column("beta").to_numpy()
    s_f, s_a = fed.get_column("standard_error").to_numpy(), filled.get_column("standard_error").to_numpy()
    assert np.all(np.abs(b_a - b_f) <= 1e-10 * np.maximum(np.abs(b_f), s_f))
    np.testing.assert_allclose(s_a, s_f, rtol=1e-10)
    np.testing.assert_allclose(filled.get_column("p_value").to_numpy(), fed.get_column("p_value").to_numpy(),
                               rtol=1e-10)
    # The default (plink2's drop) is what the sums' fit is not, exactly at the variants with a missing call.
    short = drop.get_column("n").to_numpy() < n_trait
    assert short.sum() >= 5 and not short[np.arange(M) % 3 != 0].any()
    b_d = drop.get_column("beta").to_numpy()
    assert np.all(np.abs(b_d - b_f)[short] > 1e-6 * s_f[short])
    np.testing.assert_allclose(b_d[~short], b_f[~short], rtol=1e-10)


@pytest.mark.oracle
def test_assoc_missing_fill__equals_plink2_glm_on_the_pool_fill_missing_fileset(cohort, plink2):
    d = cohort
    assert main(["pool", "--fill-missing", str(d / "c"), "--keep", str(d / "keep.txt"),
                 "--out-bfile", str(d / "filled")]) == 0
    # The fixture tells the reference sets apart: filled over all samples, some missing calls differ.
    assert main(["pool", "--fill-missing", str(d / "c"), "--out-bfile", str(d / "filled_all")]) == 0
    g_keep, g_all = (Genotypes([d / f]).read(np.arange(M)) for f in ("filled", "filled_all"))
    assert (g_keep != g_all).any()
    # plink2 takes one --covar file: the two joined.
    cov = pl.read_csv(d / "covar.tsv", separator="\t").join(pl.read_csv(d / "pcs.tsv", separator="\t"),
                                                             on=["#FID", "IID"])
    cov.write_csv(d / "covar_all.tsv", separator="\t")
    # Oracle command (omit-ref: A1 is the .bim A1/ALT allele, as in our output):
    cmd = [plink2, "--bfile", str(d / "filled"), "--keep", str(d / "keep.txt"), "--pheno", str(d / "pheno.tsv"),
           "--covar", str(d / "covar_all.tsv"), "--glm", "hide-covar", "omit-ref",
           "cols=+a1freq,+beta,+nobs,+err", "--out", str(d / "plink2")]
    subprocess.run(cmd, check=True, capture_output=True)
    theirs = pl.read_csv(d / "plink2.qt.glm.linear", separator="\t", null_values="NA", infer_schema_length=None)
    ours = _assoc(d, "fill_vs_plink2.tsv", "--missing", "fill")
    assert ours.get_column("rsid").to_list() == theirs.get_column("ID").to_list()
    assert (theirs.get_column("ERRCODE") == ".").all()
    assert ours.get_column("n").to_list() == theirs.get_column("OBS_CT").to_list()
    for mine, col in (("beta", "BETA"), ("standard_error", "SE"), ("p_value", "P"),
                      ("effect_allele_frequency", "A1_FREQ")):
        a, b = ours.get_column(mine).to_numpy(), theirs.get_column(col).to_numpy()
        # plink2 prints 6 significant digits: half a unit in the 6th digit is <= 5e-6 relative.
        assert (np.abs(a - b) / np.abs(b)).max() < 1e-5, col


def test_assoc_pred_missing_fill__equals_step2_on_the_pool_fill_missing_fileset(cohort):
    """WGR step 2 (--pred) fills as the glm scan does: quantitative and binary traits, same LOCO predictions."""
    d = cohort
    ph = pl.read_csv(d / "pheno.tsv", separator="\t", null_values="NA")
    ph.with_columns(bt=pl.when(pl.col("qt") > pl.col("qt").median()).then(2).otherwise(1)
                    .cast(pl.Int64).fill_null(-9)).write_csv(d / "pheno2.tsv", separator="\t", null_value="NA")
    assert main(["pool", "--fill-missing", str(d / "c"), "--keep", str(d / "keep.txt"),
                 "--out-bfile", str(d / "filled_w")]) == 0
    common = ["--keep", str(d / "keep.txt"), "--pheno", str(d / "pheno2.tsv"), "--covar", str(d / "covar.tsv"),
              "--covar", str(d / "pcs.tsv")]
    assert main(["wgr", "--bfile", str(d / "filled_w"), *common, "--bsize", "10", "--out", str(d / "s1")]) == 0
    got = {}
    for name, bfile, extra in (("fill", "c", ["--missing", "fill"]), ("ref", "filled_w", []), ("drop", "c", [])):
        assert main(["assoc", "--bfile", str(d / bfile), *common, "--pred", str(d / "s1_pred.list"), *extra,
                     "--out", str(d / f"s2_{name}.{{trait}}.tsv")]) == 0
        got[name] = {t: read_sumstats(d / f"s2_{name}.{t}.tsv") for t in ("qt", "bt")}
    for t in ("qt", "bt"):
        fill, ref, drop = got["fill"][t], got["ref"][t], got["drop"][t]
        assert fill.get_column("n").to_list() == ref.get_column("n").to_list()
        assert (drop.get_column("n") < fill.get_column("n")).sum() >= 5
        for c in ("beta", "standard_error", "p_value", "effect_allele_frequency"):
            np.testing.assert_allclose(fill.get_column(c).to_numpy(), ref.get_column(c).to_numpy(), rtol=1e-10)



def _export(d: Path, sumstats: Path, out: Path) -> int:
    return main(["export", "--cohort", "c", "--sumstats", f"qt={sumstats}", "--trait-type", "qt=quantitative",
                 "--ids-from", str(d / "c.fam"), "--build", "GRCh38", "--ancestry", "test",
                 "--config-digest", "abcdef12", "--sufficient", f"qt={d / 'suff'}", "--out-dir", str(out)])


def test_export__refuses_sums_beside_drop_mode_sumstats_and_releases_them_beside_filled(cohort, tmp_path, capsys):
    """Rule sufficient_sumstats_fill (failed before: the drop-mode sumstats went out beside the sums)."""
    d = cohort
    _assoc(d, "drop.tsv.gz")
    assert _export(d, d / "drop.tsv.gz", tmp_path / "drop") == 2
    err = capsys.readouterr().err
    assert "rule sufficient_sumstats_fill: 10 of 30 variants of trait qt have a sample size" in err
    assert "drop.tsv.gz" in err and "qt.sufficient.tsv.gz" in err and "--missing fill" in err
    assert not list((tmp_path / "drop").glob("*.tsv.gz"))  # blocked: the audit only
    assert json.loads((tmp_path / "drop" / "audit.json").read_text())["status"] == "blocked"
    _assoc(d, "fill.tsv.gz", "--missing", "fill")
    assert _export(d, d / "fill.tsv.gz", tmp_path / "fill") == 0
    entry = json.loads((tmp_path / "fill" / "audit.json").read_text())["sufficient"]["qt"]
    assert entry["sumstats_fill"] == {"rule": "sufficient_sumstats_fill", "status": "pass", "variants_compared": M}
    assert "sufficient_sumstats_fill" in entry["missing_calls"]
    assert "Rule sufficient_sumstats_fill: pass" in (tmp_path / "fill" / "audit.md").read_text()


def test_workflow_dag__opted_in_cohorts_association_gets_missing_fill(tmp_path):
    """The cohort sheet's `sufficient: yes` cohorts run assoc --missing fill; the others (and the pooled arm) drop."""
    repo = Path(__file__).resolve().parent.parent
    shutil.copytree(repo / "config", tmp_path / "config")
    sheet = tmp_path / "config" / "cohorts.tsv"
    rows = [r.split("\t") for r in sheet.read_text().splitlines()]
    col = rows[0].index("sufficient")
    for r in rows[1:]:
        r[col] = "no" if r[0] == "biobank_eas" else "yes"
    sheet.write_text("".join("\t".join(r) + "\n" for r in rows))
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(repo / "Snakefile"), "-n", "-p"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    fills: dict[str, set[bool]] = {}
    same_model: list[str] = []
    for line in proc.stdout.splitlines():
        if "crosscohort assoc " in line:
            if "--out results/individual_fit/" in line:
                same_model.append(line)
                continue
            unit = re.search(r"--out results/association/(\w+)/parts/", line).group(1)
            fills.setdefault(unit, set()).add("--missing fill" in line)
    cohorts = [r[0] for r in rows[1:]]
    assert fills == {**{c: {c != "biobank_eas"} for c in cohorts}, "pooled": {False}}
    # The demo's individual-level fit of the federated model reads the opted-in cohorts'
    # genotypes already filled as their sums fill them (pool --fill-missing), one job per trait.
    assert len(same_model) == 2
    for line in same_model:
        bfiles = re.findall(r"--bfile (\S+)", line)
        assert bfiles == [f"results/individual_fit/filled/{c}" for c in cohorts if c != "biobank_eas"]


def test_check_sumstats_filled__same_n_other_allele_count_is_refused_and_extra_variants_ignored():
    """A different fill (e.g. another reference set) keeps n but moves 2 n EAF off sum_g by a filled call."""
    from crosscohort.contract.errors import GateError
    from crosscohort.contract.release_sums import check_sumstats_filled

    sums = pl.DataFrame({"variant_id": ["a", "b"], "n": [100.0, 100.0], "sum_g": [40.0, 61.0]})
    good = pl.DataFrame({"variant_id": ["a", "b", "x"], "n": [100, 100, 7],
                         "effect_allele_frequency": [0.2, 0.305, 0.5]})
    kw = {"trait": "qt", "sums_source": "s.tsv", "sumstats_source": "a.tsv"}
    assert check_sumstats_filled(sums, good, **kw) == 2  # x (e.g. chromosome X) has no sums: not compared
    other_fill = good.with_columns(pl.when(pl.col("variant_id") == "b").then(0.31)
                                   .otherwise(pl.col("effect_allele_frequency")).alias("effect_allele_frequency"))
    with pytest.raises(GateError, match=r"a\.tsv: rule sufficient_sumstats_fill: 1 of 2 variants of trait qt .*\(e\.g\. "
                                        r"b: n 100 vs 100, ALT count 2 n EAF 62 vs sum_g 61"):
        check_sumstats_filled(sums, other_fill, **kw)
    with pytest.raises(GateError, match=r"a\.tsv: missing column\(s\) \['effect_allele_frequency'\]"):
        check_sumstats_filled(sums, good.drop("effect_allele_frequency"), **kw)
