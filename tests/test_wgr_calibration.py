"""Whole-genome regression keeps relatives calibrated where the fixed-effects scan inflates.

A simulated cohort of 90 extended families (siblings, parent-offspring,
cousins) plus 600 unrelated people, 10 chromosomes x 500 unlinked variants,
a polygenic trait (200 causal variants, h2 = 0.6). Both scans run through the
product path (``crosscohort wgr`` + ``crosscohort assoc --pred``, and
``crosscohort assoc``) with relatives kept (no KING filter).
"""

from __future__ import annotations

import sys

import numpy as np
import polars as pl
import pytest
from scipy.stats import chi2

from crosscohort.cli import main
from crosscohort.demo.pedigree import simulate_families


def _lambda(p: np.ndarray) -> float:
    return float(np.median(chi2.isf(p, 1)) / chi2.ppf(0.5, 1))


def test_wgr_calibration__families_null_lambda_wgr_calibrated_glm_inflated(tmp_path):
    c = simulate_families(tmp_path / "fam", n_families=90, n_unrelated=600, n_chrom=10, variants_per_chrom=500,
                          n_causal=200, h2=0.6, seed=7)
    common = ["--bfile", str(c.prefix), "--pheno", str(c.pheno), "--pheno-name", "y", "--covar", str(c.covar)]
    assert main(["wgr", *common, "--bsize", "500", "--out", str(tmp_path / "fit")]) == 0
    assert main(["assoc", *common, "--pred", str(tmp_path / "fit_pred.list"), "--out", str(tmp_path / "wgr.tsv")]) == 0
    assert main(["assoc", *common, "--out", str(tmp_path / "glm.tsv")]) == 0
    null = np.ones(c.n_variants, dtype=bool)
    null[c.causal] = False
    p_wgr = pl.read_csv(tmp_path / "wgr.tsv", separator="\t", null_values="NA").get_column("p_value").to_numpy()
    p_glm = pl.read_csv(tmp_path / "glm.tsv", separator="\t", null_values="NA").get_column("p_value").to_numpy()
    lam_wgr, lam_glm = _lambda(p_wgr[null]), _lambda(p_glm[null])
    assert lam_glm > 1.15, (lam_wgr, lam_glm)
    assert lam_wgr <= 1.02, (lam_wgr, lam_glm)
    # Not over-corrected beyond the small deflation that testing residuals of a
    # relatives-informed prediction brings (GRAMMAR-like; see benchmarks/README.md).
    assert lam_wgr > 0.9, (lam_wgr, lam_glm)


def _kin0(out_prefix, prefix) -> str:
    """The related pairs as the workflow makes them: ``crosscohort qc``'s ``O.king.tsv`` (plink2 .kin0
    columns), relatives kept, QC rules that remove nothing; kinship floor 0.02 (beyond third degree,
    where this small simulated genome still has real sharing: 0.965 at the schema's 0.0442)."""
    assert main(["qc", "--bfile", str(prefix), "--geno", "1", "--mind", "1", "--maf", "0", "--mac", "0",
                 "--hwe", "0", "--king-cutoff", "none", "--relatives-min-kinship", "0.02",
                 "--out-prefix", str(out_prefix)]) == 0
    return f"{out_prefix}.king.tsv"


def test_wgr_relatives_calibration__pooled_loocv_deflation_removed_power_kept(tmp_path):
    c = simulate_families(tmp_path / "fam", n_families=90, n_unrelated=600, n_chrom=10, variants_per_chrom=500,
                          n_causal=200, h2=0.6, seed=7)
    kin0 = _kin0(tmp_path / "qc", c.prefix)
    common = ["--bfile", str(c.prefix), "--pheno", str(c.pheno), "--pheno-name", "y", "--covar", str(c.covar)]
    assert main(["wgr", *common, "--loocv", "--level1", "pooled", "--out", str(tmp_path / "fit")]) == 0
    pred = ["--pred", str(tmp_path / "fit_pred.list")]
    assert main(["assoc", *common, *pred, "--out", str(tmp_path / "raw.tsv")]) == 0
    assert main(["assoc", *common, *pred, "--relatives", kin0,
                 "--out", str(tmp_path / "cal.tsv")]) == 0
    null = np.ones(c.n_variants, dtype=bool)
    null[c.causal] = False
    p = {k: pl.read_csv(tmp_path / f"{k}.tsv", separator="\t", null_values="NA").get_column("p_value").to_numpy()
         for k in ("raw", "cal")}
    lam = {k: _lambda(v[null]) for k, v in p.items()}
    hits = {k: int((v[c.causal] < 1e-3).sum()) for k, v in p.items()}
    # Measured: λ 0.893 -> 0.972, causal variants at p < 1e-3 26 -> 33.
    assert lam["raw"] < 0.95, lam  # the deflation this corrects
    assert 0.965 <= lam["cal"] <= 1.02, lam
    assert hits["cal"] >= hits["raw"], hits


def test_relatives_calibration__equals_the_dense_quadratic_form_and_bad_tables_name_the_line(tmp_path):
    from crosscohort.contract.errors import InputError
    from crosscohort.tre.association.wgr import read_relatives, relatives_calibration
    from crosscohort.tre.genotypes import Genotypes

    rng = np.random.default_rng(1)
    r = rng.normal(size=12)
    i, j, k = np.array([0, 2, 5, -1]), np.array([1, 3, 9, 4]), np.array([0.25, 0.125, 0.05, 0.5])
    phi = np.eye(12)
    for a, b, kin in zip(i[:3], j[:3], k[:3], strict=True):
        phi[a, b] = phi[b, a] = 2 * kin
    assert relatives_calibration(r, i, j, k) == pytest.approx(r @ phi @ r / (r @ r), rel=1e-12)

    c = simulate_families(tmp_path / "fam", n_families=2, n_unrelated=2, n_chrom=1, variants_per_chrom=20,
                          n_causal=2, seed=3)
    geno = Genotypes([c.prefix])
    bad = tmp_path / "bad.kin0"
    bad.write_text("#FID1\tIID1\tFID2\tIID2\tKINSHIP\nF1\tF1_c1\tF1\tF1_c2\thalf\n")
    with pytest.raises(InputError, match=r"bad.kin0, line 2: KINSHIP 'half' is not a number"):
        read_relatives(bad, geno, log=sys.stderr)
    bad.write_text("#FID1\tIID1\tIID2\tKINSHIP\n")
    with pytest.raises(InputError, match=r"line 1: column\(s\) \['FID2'\] missing"):
        read_relatives(bad, geno, log=sys.stderr)


def test_read_relatives__a_directory_or_latin1_table_is_an_input_error(tmp_path):
    """Before: IsADirectoryError / UnicodeDecodeError tracebacks from read_text() (wgr --relatives)."""
    from crosscohort.contract.errors import InputError
    from crosscohort.tre.association.wgr import read_relatives

    (tmp_path / "d.kin0").mkdir()
    with pytest.raises(InputError, match=r"d\.kin0: is a directory"):
        read_relatives(tmp_path / "d.kin0", None, log=sys.stderr)
    bad = tmp_path / "l.kin0"
    bad.write_bytes("#FID1\tIID1\tFID2\tIID2\tKINSHIP\nF\tJos\xe9\tF\tB\t0.2\n".encode("latin-1"))
    with pytest.raises(InputError, match=r"l\.kin0, line 2: not UTF-8 text"):
        read_relatives(bad, None, log=sys.stderr)
