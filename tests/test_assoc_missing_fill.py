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
import subprocess
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
                       "chromosome": ["1"] * M, "bp_position": np.arange(M) * 100 + 1,
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


def test_assoc_missing__fill_with_pred_is_refused_naming_the_option(cohort, capsys):
    d = cohort
    (d / "pred.list").write_text("qt x.loco\n")
    assert main(["assoc", "--bfile", str(d / "c"), "--pheno", str(d / "pheno.tsv"), "--pred", str(d / "pred.list"),
                 "--missing", "fill", "--out", str(d / "x.tsv")]) == 2
    assert "--missing fill: not available with --pred" in capsys.readouterr().err


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
