"""MR-MEGA meta-regression (crosscohort/central/meta/mrmega.py) against its oracles.

- GWASLab's reimplementation (``gwaslab/extension/mrmega/mrmega.py``, stated to
  match the C++ MR-MEGA exactly), run on the same cohorts as our product path
  (``crosscohort meta --method mrmega`` on harmonised tables), every column.
- statsmodels WLS for the regression itself (coefficients, SEs, sums of squares).
- mpmath for -log10 p of chi-squares far beyond the double range: tests/test_stats.py
  (the helper is :func:`crosscohort.contract.stats.neg_log10_p_from_chi2`).

GWASLab differs from MR-MEGA in one accident: it drops the first eligible
marker of the input from the axes (MR-MEGA drops the first marker of the file,
eligible or not). The fixtures put two eligible markers in the first bin, so
both rules pick the same markers. Axes are compared up to each axis' sign
(an eigensolver's choice; ours is fixed: largest coordinate positive), the
slopes on them with the same sign.
"""

from __future__ import annotations

import json
import os
import re
from types import SimpleNamespace

import numpy as np
import polars as pl
import pytest

from crosscohort.central.meta import meta_analyse
from crosscohort.central.meta.mrmega import (
    axis_marker_rows,
    eaf_distances,
    mds_axes,
    mrmega_arrays,
)
from crosscohort.central.meta.tbl import mrmega_result_columns
from crosscohort.central.report.mrmega import ivw_neglog10p
from crosscohort.central.report.sections import format_p
from crosscohort.cli import main
from crosscohort.contract.sumstats import read_sumstats, write_sumstats

COHORTS = ("afr", "eas", "eur1", "eur2", "sas")


def _cohorts(
    seed: int = 7, m: int = 1200, *, missing: bool = False, inflate: bool = False
) -> dict[str, pl.DataFrame]:
    """Five harmonised cohorts with ancestry-structured EAFs and an ancestry-dependent effect."""
    rng = np.random.default_rng(seed)
    k = len(COHORTS)
    chrom = np.repeat([1, 2, 3], m // 3)
    # ~3 variants per Mb bin; the first bin holds several (see the module docstring).
    pos = np.tile(np.sort(rng.choice(np.arange(1, 130_000_000), m // 3, replace=False)), 3)
    base = rng.uniform(0.02, 0.98, m)
    drift = np.array([0.12, -0.10, 0.01, 0.0, 0.05])[:, None]
    eaf = np.clip(
        base + drift * rng.normal(1, 0.3, (k, m)) + rng.normal(0, 0.02, (k, m)), 0.003, 0.997
    )
    n = rng.integers(2000, 20000, (k, 1)).astype(float) * np.ones((1, m))
    se = rng.uniform(0.95, 1.05, (k, m)) / np.sqrt(2 * eaf * (1 - eaf) * n)
    beta = rng.normal(0, 1, (k, m)) * se * (1.15 if inflate else 1.0)
    # Effects that follow ancestry (afr strongest), one shared, one in afr only.
    beta[:, 10] += np.array([0.20, 0.02, 0.08, 0.08, 0.05])
    beta[:, 20] += 0.06
    beta[0, 30] += 0.25
    if missing:
        drop = rng.random((k, m)) < 0.15
        drop[:, :5] = False  # the first bin's markers stay eligible
    tables = {}
    for j, c in enumerate(COHORTS):
        keep = ~drop[j] if missing else np.ones(m, bool)
        tables[c] = pl.DataFrame(
            {
                "chromosome": chrom[keep],
                "base_pair_location": pos[keep],
                "effect_allele": "A",
                "other_allele": "G",
                "beta": beta[j][keep],
                "standard_error": se[j][keep],
                "effect_allele_frequency": eaf[j][keep],
                "p_value": 0.5,
                "n": n[j][keep].astype(np.int64),
            }
        ).sort("chromosome", "base_pair_location")
    return tables


def _require_gwaslab():
    """GWASLab's MR-MEGA module; skip locally without it, fail under CI (.ci/run installs it)."""
    try:
        import gwaslab.extension.mrmega.mrmega as mr
    except ImportError as exc:
        msg = f"oracle gwaslab not importable ({exc}); .ci/run installs it"
        if os.environ.get("CI") == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    return mr


def _gwaslab(
    tables: dict[str, pl.DataFrame],
    *,
    pcs: int,
    gc: bool,
    gco: bool,
    cohorts: tuple[str, ...] = COHORTS,
):
    """GWASLab's MR-MEGA on the same cohorts (its SumstatsMulti's wide layout, duck-typed)."""
    mr = _require_gwaslab()
    import pandas as pd

    wide = None
    for i, c in enumerate(cohorts, start=1):
        t = tables[c].select(
            pl.col("chromosome").alias("CHR"),
            pl.col("base_pair_location").alias("POS"),
            pl.col("beta").alias(f"BETA_{i}"),
            pl.col("standard_error").alias(f"SE_{i}"),
            pl.col("effect_allele_frequency").alias(f"EAF_{i}"),
            pl.col("n").cast(pl.Float64).alias(f"N_{i}"),
        )
        wide = t if wide is None else wide.join(t, on=["CHR", "POS"], how="full", coalesce=True)
    wide = wide.sort("CHR", "POS").with_columns(
        (pl.col("CHR").cast(pl.String) + ":" + pl.col("POS").cast(pl.String)).alias("SNPID"),
        pl.lit("A").alias("EA"),
        pl.lit("G").alias("NEA"),
    )
    multi = SimpleNamespace(
        meta={"gwaslab": {"number_of_studies": len(cohorts)}},
        engine="pandas",
        data=wide.to_pandas(),
    )
    with np.errstate(all="ignore"):  # its sqrt of tiny negative eigenvalues, masked after
        out = mr.meta_regress_mrmega_python(
            multi, num_pcs=pcs, use_genomic_control=gc, use_gco=gco, verbose=False
        )
    return pd.DataFrame(out.data).sort_values(["CHR", "POS"]).reset_index(drop=True)


def _run_cli(tmp_path, tables, *extra: str) -> tuple[pl.DataFrame, dict]:
    args = []
    for c, t in tables.items():
        write_sumstats(t, tmp_path / f"{c}.tsv.gz")
        args.append(f"{c}={tmp_path / f'{c}.tsv.gz'}")
    out = tmp_path / "meta.tsv.gz"
    assert main(["meta", "--method", "mrmega", *extra, "--out", str(out), *args]) == 0
    return read_sumstats(out), json.loads((tmp_path / "meta.tsv.gz.summary.json").read_text())


def _axis_signs(ours: pl.DataFrame, gw, pcs: int) -> np.ndarray:
    """Sign of each of GWASLab's axes relative to ours, read off the slopes (one per axis)."""
    signs = []
    for j in range(1, pcs + 1):
        a = ours.get_column(f"mrmega_beta_{j}").to_numpy()
        b = gw[f"beta_{j}"].to_numpy()
        ok = np.isfinite(a) & np.isfinite(b) & (np.abs(a) > 1e-6)
        signs.append(np.sign(np.median(b[ok] / a[ok])))
    return np.array(signs)


def _compare_gwaslab(ours: pl.DataFrame, gw, pcs: int, *, rtol: float) -> None:
    assert ours.height == len(gw)
    np.testing.assert_array_equal(
        ours.get_column("base_pair_location").to_numpy(), gw["POS"].to_numpy()
    )
    signs = _axis_signs(ours, gw, pcs)
    assert set(np.abs(signs)) == {1.0}

    def same(col: str, theirs, *, sign: float = 1.0, atol: float = 0.0) -> None:
        a = ours.get_column(col).cast(pl.Float64).to_numpy()
        b = np.asarray(theirs, dtype=np.float64) * sign
        np.testing.assert_array_equal(np.isnan(a), np.isnan(b), err_msg=col)
        ok = ~np.isnan(a)
        np.testing.assert_allclose(a[ok], b[ok], rtol=rtol, atol=atol, err_msg=col)

    same("mrmega_beta_0", gw["beta_0"])
    same("mrmega_standard_error_0", gw["se_0"])
    for j in range(1, pcs + 1):
        same(f"mrmega_beta_{j}", gw[f"beta_{j}"], sign=signs[j - 1])
        same(f"mrmega_standard_error_{j}", gw[f"se_{j}"])
    same("mrmega_chi2_association", gw["chisq_association"])
    same("mrmega_chi2_ancestry_het", gw["chisq_ancestry_het"])
    same("mrmega_chi2_residual_het", gw["chisq_residual_het"])
    same("mrmega_df_residual_het", gw["ndf_residual_het"])
    # ln BF is a difference (chi2 - (T+1) ln K): its error is absolute, that of chi2.
    chi2 = gw["chisq_association"].to_numpy()
    same("mrmega_ln_bf", gw["lnBF"], atol=rtol * np.nanmax(chi2))
    same("p_value", gw["P-value_association"])
    same("mrmega_neg_log_10_p_ancestry_het", -np.log10(gw["P-value_ancestry_het"].to_numpy()))
    same("mrmega_neg_log_10_p_residual_het", -np.log10(gw["P-value_residual_het"].to_numpy()))
    # EAF (n-weighted) and N over the cohorts used; direction per cohort in id order.
    has = ours.get_column("n_studies").to_numpy() >= pcs + 3
    np.testing.assert_allclose(
        ours.get_column("effect_allele_frequency").to_numpy()[has],
        gw["EAF"].to_numpy()[has],
        rtol=1e-12,
    )
    np.testing.assert_array_equal(
        ours.get_column("n").to_numpy()[has], gw["Nsample"].to_numpy()[has]
    )
    assert ours.get_column("direction").to_list() == [
        e if e else d
        for e, d in zip(gw["Effects"].tolist(), ours.get_column("direction").to_list(), strict=True)
    ]


def test_mrmega__cli_matches_gwaslab_every_column(tmp_path):
    tables = _cohorts()
    ours, summary = _run_cli(tmp_path, tables)
    gw = _gwaslab(tables, pcs=2, gc=False, gco=False)
    _compare_gwaslab(ours, gw, 2, rtol=1e-9)
    assert not list(tmp_path.glob(".*parts*"))  # the first pass's parts are removed
    mr = summary["mrmega"]
    assert mr["n_axes"] == 2 and summary["method"] == "mrmega"
    assert sorted(mr["axes"]) == sorted(COHORTS) and len(mr["distances"]["afr"]) == 5
    # The ancestry-dependent effect is ancestry-heterogeneous, the shared one is not.
    nlp_anc = ours.get_column("mrmega_neg_log_10_p_ancestry_het").to_numpy()
    assert nlp_anc[10] > 5 and nlp_anc[20] < 2


def test_mrmega__missing_cohorts_gc_and_gco_match_gwaslab(tmp_path):
    # Variants in 3-5 cohorts (fewer than T + 3 = 5: NA, MR-MEGA's SmallCohortCount),
    # inflated cohorts (--gc) and the output's genomic control (--gco).
    tables = _cohorts(seed=11, missing=True, inflate=True)
    ours, summary = _run_cli(
        tmp_path, tables, "--pcs", "2", "--gc", "--gco", "--tbl", str(tmp_path / "meta.result")
    )
    gw = _gwaslab(tables, pcs=2, gc=True, gco=True)
    # GWASLab (and MR-MEGA) divide the median chi-square by 0.4549364, ours by the chi2(1)
    # median to 15 digits (0.454936423119572): lambda differs by 5.1e-8 relatively.
    _compare_gwaslab(ours, gw, 2, rtol=2e-7)
    assert summary["mrmega"]["lambda_gco"] > 1.0
    assert min(summary["gc_applied"].values()) > 1.0
    few = ours.get_column("n_studies").to_numpy() < 5
    assert few.any() and np.isnan(ours.get_column("p_value").to_numpy()[few]).all()
    # MR-MEGA's own layout on request.
    res = pl.read_csv(
        tmp_path / "meta.result", separator="\t", null_values="NA", infer_schema_length=None
    )
    assert tuple(res.columns) == mrmega_result_columns(2)
    np.testing.assert_allclose(
        res.get_column("chisq_association").to_numpy()[~few],
        gw["chisq_association"].to_numpy()[~few],
        rtol=1e-9,
    )
    assert set(res.get_column("Comments").fill_null("").to_numpy()[few]) == {"SmallCohortCount"}


def test_mrmega__regression_matches_statsmodels_wls():
    import statsmodels.api as sm

    rng = np.random.default_rng(3)
    k, t, m = 7, 3, 40
    axes = rng.normal(0, 0.1, (k, t))
    se = rng.uniform(0.02, 0.2, (m, k))
    beta = rng.normal(0, 1, (m, k)) * se + (axes @ rng.normal(0, 0.3, (t, m))).T
    beta[5, 2] = np.nan  # one cohort missing: its row left out of that fit
    res = mrmega_arrays(beta, se, axes)
    for v in range(m):
        ok = np.isfinite(beta[v])
        x = np.column_stack([np.ones(ok.sum()), axes[ok]])
        fit = sm.WLS(beta[v, ok], x, weights=1.0 / se[v, ok] ** 2).fit()
        np.testing.assert_allclose(res.beta[:, v], fit.params, rtol=1e-10)
        np.testing.assert_allclose(res.standard_error[:, v], fit.bse, rtol=1e-10)
        np.testing.assert_allclose(res.chi2_residual_het[v], fit.ssr, rtol=1e-10)
        np.testing.assert_allclose(
            res.chi2_association[v], fit.uncentered_tss - fit.ssr, rtol=1e-10
        )
        np.testing.assert_allclose(res.chi2_ancestry_het[v], fit.centered_tss - fit.ssr, rtol=1e-10)
        assert res.df_residual_het[v] == fit.df_resid
        np.testing.assert_allclose(
            res.ln_bf[v],
            (fit.uncentered_tss - fit.ssr - (t + 1) * np.log(ok.sum())) / 2,
            rtol=1e-10,
        )


def test_mrmega__collinear_axes_among_a_variants_cohorts_give_nan_not_noise():
    rng = np.random.default_rng(4)
    k, m = 6, 4
    axes = rng.normal(0, 0.1, (k, 2))
    # Cohorts 0-4 lie on one line of the axes' plane: without cohort 5, X'WX is singular.
    axes[:5, 1] = 2.0 * axes[:5, 0] + 0.01
    se = rng.uniform(0.02, 0.2, (m, k))
    beta = rng.normal(0, 0.05, (m, k))
    beta[1, 5] = np.nan  # variant 1: five cohorts, all on the line
    beta[2, 4:] = np.nan  # variant 2: four cohorts, fewer than T + 3
    res = mrmega_arrays(beta, se, axes)
    assert res.n_studies.tolist() == [6, 5, 4, 6]
    for name in ("chi2_association", "chi2_ancestry_het", "chi2_residual_het", "ln_bf"):
        v = getattr(res, name)
        assert np.isfinite(v[[0, 3]]).all() and np.isnan(v[[1, 2]]).all(), name
    assert np.isnan(res.beta[:, [1, 2]]).all() and np.isnan(res.standard_error[:, [1, 2]]).all()


def test_mrmega__axes_are_classical_mds_of_eaf_distances():
    rng = np.random.default_rng(5)
    pts = rng.normal(0, 1, (6, 2))  # cohorts at known points in the plane
    d = ((pts[:, None, :] - pts[None, :, :]) ** 2).sum(axis=2)
    coords, values = mds_axes(d, 2)
    # Classical MDS recovers the points up to rotation and translation: same distances.
    got = ((coords[:, None, :] - coords[None, :, :]) ** 2).sum(axis=2)
    np.testing.assert_allclose(got, d, rtol=1e-10, atol=1e-12)
    assert values[0] >= values[1] > 0 and abs(values[2:]).max() < 1e-10
    assert (coords[np.argmax(np.abs(coords), axis=0), [0, 1]] > 0).all()
    eaf = rng.uniform(0.1, 0.9, (50, 3))
    np.testing.assert_allclose(eaf_distances(eaf)[0, 2], np.mean((eaf[:, 0] - eaf[:, 2]) ** 2))


def test_mrmega__axis_markers_last_eligible_per_mb_bin():
    chrom = np.array([1, 1, 1, 1, 1, 2, 2, 24, np.nan])
    pos = np.array([10, 500_000, 999_999, 1_000_000, 1_500_000, 5, 299_000_001, 10, np.nan])
    eaf = np.full((2, chrom.size), 0.3)
    eaf[1, 2] = 0.995  # MAF 0.5 % in one cohort: not eligible
    eaf[0, 4] = np.nan  # missing in one cohort
    rows = axis_marker_rows(chrom, pos, eaf)
    # bin (1, 0): rows 0-1 eligible, the last kept; (1, 1): row 3; (2, 0): row 5;
    # 299 Mb and beyond, chromosome 24 and marker-name rows are outside MR-MEGA's bins.
    assert rows.tolist() == [1, 3, 5]


def test_mrmega__cohort_order_changes_only_direction():
    tables = _cohorts(seed=2, m=300)
    a = meta_analyse(tables, method="mrmega").table
    b = meta_analyse({c: tables[c] for c in reversed(COHORTS)}, method="mrmega").table
    assert a.drop("direction").equals(b.drop("direction"))


def test_mrmega__too_few_cohorts_refused_with_the_rule(tmp_path, capsys):
    tables = {c: t for c, t in list(_cohorts(m=90).items())[:4]}
    args = []
    for c, t in tables.items():
        write_sumstats(t, tmp_path / f"{c}.tsv")
        args.append(f"{c}={tmp_path / f'{c}.tsv'}")
    rc = main(["meta", "--method", "mrmega", "--pcs", "2", "--out", str(tmp_path / "m.tsv"), *args])
    err = capsys.readouterr().err
    assert rc == 2 and "T + 3 = 5 cohorts" in err and "K = 4" in err and "Traceback" not in err
    assert not (tmp_path / "m.tsv").exists()
    # One axis fits four cohorts.
    assert (
        main(["meta", "--method", "mrmega", "--pcs", "1", "--out", str(tmp_path / "m.tsv"), *args])
        == 0
    )


def test_mrmega__streamed_file_run_equals_in_memory_meta_analyse(tmp_path):
    tables = _cohorts(seed=4, m=600, missing=True)
    ours, summary = _run_cli(tmp_path, tables, "--gco", "--gc")
    whole = meta_analyse(tables, method="mrmega", gc=True, gco=True)
    want = whole.table
    # The summary too: counts (IVW's from beta/SE, MR-MEGA's from p_value), axes, lambda_gco.
    assert summary == json.loads(json.dumps(whole.summary()))
    nlp_ivw = ivw_neglog10p(ours)
    assert summary["n_genome_wide_fixed"] == int((nlp_ivw > -np.log10(5e-8)).sum())
    for col in want.columns:
        a, b = ours.get_column(col), want.get_column(col)
        if a.dtype.is_float():
            np.testing.assert_array_equal(a.to_numpy(), b.to_numpy(), err_msg=col)
        else:
            assert a.cast(pl.String).to_list() == b.cast(pl.String).to_list(), col


def test_mrmega__report_shows_axes_and_where_mrmega_and_ivw_disagree(tmp_path):
    from crosscohort.central.report import build_report

    tables = _cohorts(seed=9, m=900)
    # Opposite effects in the two ancestry poles: IVW's mean is ~0, MR-MEGA's slope is not.
    for c, b in zip(COHORTS, (0.12, -0.12, -0.02, -0.02, 0.03), strict=True):
        t = tables[c]
        tables[c] = t.with_columns(
            pl.when(pl.int_range(t.height) == 600)
            .then(pl.col("beta") + b)
            .otherwise(pl.col("beta"))
            .alias("beta")
        )
    # A strong effect carried by two cohorts only: MR-MEGA cannot fit it (fewer than T + 3).
    for c in ("afr", "eas", "eur1"):
        tables[c] = tables[c].filter(~pl.int_range(pl.len()).is_in([750, 820]))
    for c in ("eur2", "sas"):
        tables[c] = tables[c].with_columns(
            pl.when(pl.int_range(pl.len()).is_in([750, 820]))
            .then(pl.col("beta") + 0.25)
            .otherwise(pl.col("beta"))
            .alias("beta")
        )
    ours, summary = _run_cli(tmp_path, tables, "--loo-threshold", "5e-8")
    nlp_ivw = ivw_neglog10p(ours)
    # Leave-one-out still works: the leads of MR-MEGA's p, each cohort left out in turn.
    loo = pl.read_csv(tmp_path / "meta.tsv.gz.loo.tsv", separator="\t", null_values="NA")
    assert loo.height >= 5 and loo.height % 5 == 0
    pos600 = ours.get_column("base_pair_location")[600]
    assert loo.filter(pl.col("base_pair_location") == pos600).height == 5
    nlp_mr = ours.get_column("neg_log_10_p_value").to_numpy()
    assert nlp_mr[600] > 7.3 > nlp_ivw[600]
    thr = -np.log10(5e-8)
    assert summary["n_genome_wide_fixed"] == int((nlp_ivw > thr).sum())
    assert summary["n_genome_wide_mrmega"] == summary["n_genome_wide"] == int((nlp_mr > thr).sum())
    # Any arm with the same variants serves as the pooled one here: eur2's, with the p of its z.
    from scipy.stats import norm

    pooled_path = tmp_path / "pooled.tsv.gz"
    eur2 = (
        tables["eur2"]
        .with_columns(
            p_value=pl.Series(
                2 * norm.sf(np.abs(tables["eur2"]["beta"] / tables["eur2"]["standard_error"]))
            )
        )
        .drop("neg_log_10_p_value", strict=False)
    )
    write_sumstats(eur2, pooled_path)
    out = build_report(
        trait="t",
        meta_path=tmp_path / "meta.tsv.gz",
        meta_summary_path=tmp_path / "meta.tsv.gz.summary.json",
        cohort_paths={c: tmp_path / f"{c}.tsv.gz" for c in COHORTS},
        out_path=tmp_path / "r.html",
        loo_path=tmp_path / "meta.tsv.gz.loo.tsv",
        pooled_path=pooled_path,
    )
    html = out.read_text()
    meta_section = html[html.index('<section id="meta"') : html.index('<section id="pooled"')]
    assert (
        'id="meta-mrmega-axes"' in meta_section and "cohorts on the first two axes" in meta_section
    )
    # Where each test finds what the other misses: in the comparison section.
    comparison = html[html.index('<section id="comparison"') : html.index('<section id="cohorts"')]
    loci = comparison[comparison.index('id="comparison-mrmega-ivw"') :]
    loci = loci[: loci.index("</figure>")]
    assert "mrmega only" in loci and "ivw only" in loci
    assert "no MR-MEGA fit" in loci
    # The pooled arm's p at each lead, beside both tests': here eur2's p of the lead.
    assert "<th>pooled p</th>" in loci
    rows = loci.split("<tr>")[2:]
    assert len(rows) == 6, loci
    for r in rows:
        cells = re.findall(r"<td[^>]*>(.*?)</td>", r)
        chrom, pos = cells[1].replace(",", "").split(":")
        p = eur2.filter(
            (pl.col("chromosome") == int(chrom)) & (pl.col("base_pair_location") == int(pos))
        )["p_value"].item()
        assert cells[5] == format_p(-np.log10(p)), (cells, p)


def test_mrmega__compare_carries_ancestry_heterogeneity_to_loci_and_variants():
    from crosscohort.central.compare import compare_arms

    tables = _cohorts(seed=7, m=300)
    meta = meta_analyse(tables, method="mrmega").table
    # Any arm with the same variants serves as the pooled one here.
    cmp = compare_arms(meta, tables["eur1"], cohorts=tables)
    assert cmp.loci.height > 0
    for t in (cmp.loci, cmp.variants):
        assert "mrmega_neg_log_10_p_ancestry_het" in t.columns
    lead = cmp.loci.row(0, named=True)
    row = meta.filter(pl.col("base_pair_location") == lead["base_pair_location"]).row(0, named=True)
    assert lead["mrmega_neg_log_10_p_ancestry_het"] == row["mrmega_neg_log_10_p_ancestry_het"]


def _demo_shaped_cohorts(tmp_path) -> tuple[dict[str, pl.DataFrame], dict]:
    """Five cohorts' raw sumstats with allele frequencies from the demo's coalescent model.

    The demo's Out-of-Africa + admixture history (crosscohort.demo.simulate, msprime): a
    European-heavy biobank, an African-admixed cohort, an East Asian cohort, a
    South-Asian-like EUR/EAS admixed group and a second European cohort, each cohort's
    EAF its populations' mixture plus sampling noise; effects: one causal variant whose
    effect grows with African ancestry, one present only where AFR ancestry is.
    """
    import msprime

    from crosscohort.demo.simulate import ooa_admixed_demography

    demography = ooa_admixed_demography()
    pops = ("AFR", "EUR", "EAS", "ADMIX")
    samples = [msprime.SampleSet(80, population=p, ploidy=1) for p in pops]
    freq, chrom, pos = [], [], []
    for c in (1, 2, 3):
        ts = msprime.sim_ancestry(
            samples,
            demography=demography,
            sequence_length=4_000_000,
            recombination_rate=1e-8,
            random_seed=10 + c,
            ploidy=1,
        )
        ts = msprime.sim_mutations(
            ts,
            rate=1.29e-8,
            random_seed=20 + c,
            model=msprime.BinaryMutationModel(),
            discrete_genome=True,
        )
        g = ts.genotype_matrix()  # (sites, 320)
        site_pos = ts.tables.sites.position.astype(np.int64) + 1
        keep = np.r_[True, site_pos[1:] != site_pos[:-1]]
        freq.append(np.stack([g[keep, 80 * i : 80 * (i + 1)].mean(axis=1) for i in range(4)]))
        chrom.append(np.full(keep.sum(), c))
        pos.append(site_pos[keep])
    f = dict(zip(pops, np.concatenate(freq, axis=1), strict=True))
    chrom, pos = np.concatenate(chrom), np.concatenate(pos)
    mix = {
        "biobank_eur": {"EUR": 0.9, "ADMIX": 0.05, "EAS": 0.05},
        "admixed_afr": {"ADMIX": 0.9, "EUR": 0.1},
        "biobank_eas": {"EAS": 1.0},
        "admixed_sas": {"EUR": 0.55, "EAS": 0.45},
        "cohort_eur2": {"EUR": 1.0},
    }
    afr_share = {
        "biobank_eur": 0.04,
        "admixed_afr": 0.72,
        "biobank_eas": 0.0,
        "admixed_sas": 0.0,
        "cohort_eur2": 0.0,
    }
    rng = np.random.default_rng(23)
    common = (f["AFR"] > 0.2) & (f["AFR"] < 0.8) & (f["EUR"] > 0.2) & (f["EAS"] > 0.2)
    grows = int(np.flatnonzero(common)[len(np.flatnonzero(common)) // 2])
    afr_only = int(np.flatnonzero((f["ADMIX"] > 0.15) & (f["EUR"] == 0) & (f["EAS"] == 0))[0])
    pairs = np.array([("A", "G"), ("C", "T"), ("G", "A"), ("T", "C")])[rng.integers(0, 4, pos.size)]
    tables = {}
    for c, w in mix.items():
        n = int(rng.integers(4000, 30000))
        p = sum(share * f[pop] for pop, share in w.items())
        p = rng.binomial(2 * n, p) / (2 * n)
        ok = (p > 0) & (p < 1)  # monomorphic in the cohort: QC drops it
        se = 1.0 / np.sqrt(2 * n * p * (1 - p) + 1e-12) * rng.uniform(0.97, 1.03, p.size)
        beta = rng.normal(0, 1, p.size) * se
        beta[grows] += 0.02 + 0.12 * afr_share[c]
        beta[afr_only] += 0.15
        tables[c] = pl.DataFrame(
            {
                "chromosome": chrom[ok],
                "base_pair_location": pos[ok],
                "effect_allele": pairs[ok, 0],
                "other_allele": pairs[ok, 1],
                "beta": beta[ok],
                "standard_error": se[ok],
                "effect_allele_frequency": p[ok],
                "p_value": 0.5,
                "n": n,
            }
        )
    return tables, {
        "grows": (int(chrom[grows]), int(pos[grows])),
        "afr_only": (int(chrom[afr_only]), int(pos[afr_only])),
    }


def test_mrmega__demo_shaped_harmonised_inputs_match_gwaslab(tmp_path):
    raw, truth = _demo_shaped_cohorts(tmp_path)
    args = []
    for c, t in raw.items():
        t.write_csv(tmp_path / f"{c}.raw.tsv", separator="\t")
        args.append(f"{c}={tmp_path / f'{c}.raw.tsv'}")
    # The product path: harmonise, then meta-analyse the harmonised tables.
    assert main(["harmonise", "--format", "gwas-ssf", "--out-dir", str(tmp_path / "h"), *args]) == 0
    harmonised = {c: read_sumstats(tmp_path / "h" / f"{c}.tsv.gz") for c in raw}
    out = tmp_path / "meta.tsv.gz"
    assert (
        main(
            [
                "meta",
                "--method",
                "mrmega",
                "--pcs",
                "2",
                "--cohort-order",  # GWASLab's direction string is in sorted cohort order
                ",".join(sorted(raw)),
                "--out",
                str(out),
                *(f"{c}={tmp_path / 'h' / f'{c}.tsv.gz'}" for c in raw),
            ]
        )
        == 0
    )
    ours = read_sumstats(out)
    # GWASLab on the same harmonised tables (its wide layout by position: one allele pair a site).
    gw = _gwaslab(harmonised, pcs=2, gc=False, gco=False, cohorts=tuple(sorted(raw)))
    assert ours.height > 2000
    _compare_gwaslab(ours, gw, 2, rtol=1e-9)
    summary = json.loads((tmp_path / "meta.tsv.gz.summary.json").read_text())["mrmega"]
    axes = summary["axes"]
    # The first axis separates the African-admixed cohort from the others.
    first = {c: v[0] for c, v in axes.items()}
    assert max(first, key=lambda c: abs(first[c])) == "admixed_afr"

    def at(chrom_pos):
        return ours.filter(
            (pl.col("chromosome") == chrom_pos[0]) & (pl.col("base_pair_location") == chrom_pos[1])
        ).row(0, named=True)

    grows = at(truth["grows"])
    assert grows["mrmega_neg_log_10_p_ancestry_het"] > 3
    # The AFR-only variant is in fewer than T + 3 cohorts: IVW sees it, MR-MEGA cannot fit it.
    only = at(truth["afr_only"])
    assert only["n_studies"] < 5 and only["p_value"] is None


def test_mrmega__cohort_without_eaf_is_named(tmp_path, capsys):
    tables = _cohorts(m=90)
    tables["eas"] = tables["eas"].with_columns(
        pl.lit(None, pl.Float64).alias("effect_allele_frequency")
    )
    args = []
    for c, t in tables.items():
        write_sumstats(t, tmp_path / f"{c}.tsv")
        args.append(f"{c}={tmp_path / f'{c}.tsv'}")
    rc = main(["meta", "--method", "mrmega", "--out", str(tmp_path / "m.tsv"), *args])
    err = capsys.readouterr().err
    assert rc == 2 and "['eas'] report none" in err and "Traceback" not in err
    # The first pass's parts, kept on disk for the combining pass, are gone (on error too).
    assert not list(tmp_path.glob(".*parts*"))


def test_mrmega__unsorted_file_falls_back_to_the_same_result(tmp_path):
    tables = _cohorts(seed=5, m=300)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    want, _ = _run_cli(tmp_path / "a", tables)
    # Chromosomes interleaved: not readable one chromosome at a time (the first pass,
    # which keeps its parts on disk, stops; the tables are read whole instead).
    shuffled = dict(tables)
    shuffled["eas"] = tables["eas"].sample(fraction=1.0, shuffle=True, seed=1)
    got, _ = _run_cli(tmp_path / "b", shuffled)
    assert got.equals(want)
    assert not list((tmp_path / "b").glob(".*parts*"))
