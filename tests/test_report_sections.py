"""Report sections with content checked against independent oracles: forest rows (harmonised
files and statsmodels' fixed-effect combination), a leave-one-out file, the export audit as
rule rows, the comparison of ``crosscohort compare`` as tables, and the EAF view against a reference."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from statsmodels.stats.meta_analysis import combine_effects

from crosscohort.cli import main
from tests.test_report import COHORTS, PLANTED, TRAIT, _Page
from tests.test_report import inputs as report_inputs  # noqa: F401  (module fixture reused)


@pytest.fixture(scope="module")
def page(report_inputs):  # noqa: F811
    p = _Page()
    p.feed(report_inputs["html"])
    return p


def _lead_ids(meta: pl.DataFrame) -> list[str]:
    ids = []
    for c, pos, _ in PLANTED:
        r = meta.filter((pl.col("chromosome") == c) & (pl.col("base_pair_location") == pos))
        ids.append(r.get_column("variant_id")[0])
    return ids


def test_report_forest__cohort_rows_and_leave_one_out_match_statsmodels(page, report_inputs):  # noqa: F811
    rows = page.tables["meta-forest"][1:]
    d = report_inputs["dir"]
    tables = {c: pl.read_csv(d / "harmonised" / f"{c}.tsv.gz", separator="\t", null_values=["NA"])
              for c in COHORTS}
    for vid in _lead_ids(report_inputs["meta"]):
        mine = {r[1]: (float(r[3]), float(r[4])) for r in rows if r[0] == vid}
        b, v = [], []
        for c in COHORTS:
            t = tables[c].filter(pl.col("variant_id") == vid)
            b.append(t.get_column("beta")[0])
            v.append(t.get_column("standard_error")[0] ** 2)
            assert mine[c][0] == pytest.approx(b[-1], rel=1e-3)  # table shows 4 significant digits
        for k, c in enumerate(COHORTS):
            keep = [j for j in range(len(COHORTS)) if j != k]
            # oracle: statsmodels.stats.meta_analysis.combine_effects(b[-k], v[-k]) fixed effect
            fe = combine_effects(np.array(b)[keep], np.array(v)[keep]).summary_frame().loc["fixed effect"]
            assert mine[f"without {c}"][0] == pytest.approx(fe["eff"], rel=1e-3, abs=1e-6)
            assert mine[f"without {c}"][1] == pytest.approx(fe["sd_eff"], rel=1e-3)


def test_report_forest__leave_one_out_file_is_used_when_given(report_inputs, tmp_path):  # noqa: F811
    vid = _lead_ids(report_inputs["meta"])[0]
    loo = tmp_path / "meta.loo.tsv"
    pl.DataFrame({"variant_id": [vid] * 3, "left_out": list(COHORTS), "beta": [0.11, 0.22, 0.33],
                  "standard_error": [0.01, 0.02, 0.03], "p_value": [1e-5] * 3}).write_csv(loo, separator="\t")
    out = tmp_path / "r.html"
    argv = list(report_inputs["argv"])
    argv[argv.index("--out") + 1] = str(out)
    assert main([*argv, "--loo", str(loo)]) == 0
    p = _Page()
    p.feed(out.read_text(encoding="utf-8"))
    mine = {r[1]: r[3] for r in p.tables["meta-forest"][1:] if r[0] == vid}
    assert [mine[f"without {c}"] for c in COHORTS] == ["0.11", "0.22", "0.33"]


def test_report_audit__rules_are_rows_not_json(page):
    for i, c in enumerate(COHORTS):
        rows = page.tables[f"audit-{c}"]
        assert rows[0][:4] == ["rule", "threshold", "what it checks", "rows suppressed"]
        assert ["min_mac", "20", "", f"{31 + i}", "pass"] in rows
        assert not any("{" in cell for row in rows for cell in row)


def test_report_eaf__against_reference_counts_far_variants(report_inputs, tmp_path):  # noqa: F811
    d = report_inputs["dir"]
    alpha = pl.read_csv(d / "harmonised" / "alpha.tsv.gz", separator="\t", null_values=["NA"])
    # Reference: alt = effect allele with the cohort's EAF, except 25 variants off by 0.5,
    # and every 7th variant with ref/alt the other way round (frequency mirrored).
    eaf = alpha.get_column("effect_allele_frequency").to_numpy().copy()
    far = np.zeros(alpha.height, dtype=bool)
    far[:25] = True
    ref_f = np.where(far, (eaf + 0.5) % 1.0, eaf)
    flip = np.arange(alpha.height) % 7 == 0
    ref = pl.DataFrame({
        "chromosome": alpha.get_column("chromosome"), "base_pair_location": alpha.get_column("base_pair_location"),
        "ref": np.where(flip, alpha.get_column("effect_allele"), alpha.get_column("other_allele")),
        "alt": np.where(flip, alpha.get_column("other_allele"), alpha.get_column("effect_allele")),
        "alt_frequency": np.where(flip, 1 - ref_f, ref_f)})
    ref_path = tmp_path / "ref.tsv"
    ref.with_columns(pl.col("chromosome").cast(pl.String).replace({"23": "X"})).write_csv(ref_path, separator="\t")
    out = tmp_path / "r.html"
    assert main(["report", "--trait", TRAIT, "--meta", str(d / "meta" / f"{TRAIT}.tsv.gz"), "--cohort",
                 f"alpha={d / 'harmonised' / 'alpha.tsv.gz'}", "--reference", str(ref_path),
                 "--out", str(out)]) == 0
    html = out.read_text(encoding="utf-8")
    n_far = int((np.abs(ref_f - eaf) > 0.2).sum())
    assert f"{alpha.height:,} variants compared with the reference panel; {n_far:,} differ by &gt; 0.2" in html


def test_report_forest__marker_name_lead_is_named_and_gets_its_leave_one_out_rows(tmp_path):
    """A lead without chromosome and position (METAL/GWAMA marker-name input) is titled by its
    rsid and alleles, and its leave-one-out rows are matched on them (variant_id is NA)."""
    from crosscohort.central.report.sections import forest_images, read_loo

    leads = pl.DataFrame({
        "chromosome": pl.Series([None, 1], dtype=pl.Int64),
        "base_pair_location": pl.Series([None, 500], dtype=pl.Int64),
        "other_allele": ["A", "C"], "effect_allele": ["G", "T"],
        "variant_id": [None, "1_500_C_T"], "rsid": ["mk1", "rs5"],
        "beta": [0.5, 0.3], "standard_error": [0.05, 0.04]})
    loo = pl.DataFrame({
        "chromosome": pl.Series([None, None, None, None, 1, 1], dtype=pl.Int64),
        "base_pair_location": pl.Series([None, None, None, None, 500, 500], dtype=pl.Int64),
        "other_allele": ["A", "A", "G", "G", "C", "C"], "effect_allele": ["G", "G", "A", "A", "T", "T"],
        "variant_id": [None, None, None, None, "1_500_C_T", "1_500_C_T"],
        "rsid": ["mk1", "mk1", "mk1", "mk1", "rs5", "rs5"],
        "left_out_cohort": ["a", "b", "a", "b", "a", "b"],
        "beta": [0.11, 0.22, 9.0, 9.0, 0.33, 0.44], "standard_error": [0.01] * 6})
    path = tmp_path / "m.loo.tsv"
    loo.write_csv(path, separator="\t", null_value="NA")
    _, table = forest_images(leads, {}, loo=read_loo(path), pooled_leads=None, dpi=40)
    rows = {(r[0], r[1]): r[3] for r in table.rows}
    # mk1 with the other allele order (G/A) is another variant: its 9.0 rows are not shown.
    assert rows[("mk1 A/G", "without a")] == "0.11" and rows[("mk1 A/G", "without b")] == "0.22"
    assert rows[("1_500_C_T", "without a")] == "0.33" and rows[("1_500_C_T", "without b")] == "0.44"
    assert not any(label.startswith("None") for label, _ in rows)


def _marker_cohort(rng, betas: dict[str, float], *, reversed_mk1: bool = False) -> pl.DataFrame:
    """A harmonised cohort: 300 positioned null variants, a marker-name row mk1 A/G (its β
    given), a positioned row mk9 A/G and mk1 with other alleles. (A positioned row named
    mk1 would now give the marker-only mk1 its position: docs/harmonisation.md.)"""
    m = 300
    ea, oa = ("A", "G") if reversed_mk1 else ("G", "A")
    beta_mk1 = -betas["mk1"] if reversed_mk1 else betas["mk1"]
    return pl.DataFrame({
        "chromosome": pl.Series([1] * m + [None, 2, None], dtype=pl.Int64),
        "base_pair_location": pl.Series([*range(1000, 1000 + 100 * m, 100), None, 5000, None],
                                        dtype=pl.Int64),
        "effect_allele": ["T"] * m + [ea, "G", "T"],
        "other_allele": ["C"] * m + [oa, "A", "C"],
        "beta": [*rng.normal(0, 0.01, m), beta_mk1, 0.001, 0.7],
        "standard_error": [0.02] * m + [0.02, 0.02, 0.5],
        "effect_allele_frequency": [0.3] * (m + 3),
        "p_value": [*rng.uniform(0.05, 1, m), 1e-30, 0.9, 0.2],
        "n": [5000] * (m + 3),
        "rsid": [f"rs{i}" for i in range(m)] + ["mk1", "mk9", "mk1"],
    })


def test_report_forest__marker_name_lead_has_its_cohort_rows(tmp_path):
    """A marker-name lead's forest plot shows each cohort's β (found by rsid and alleles among
    the cohort's rows without a position, reversed alleles negated), not only its
    leave-one-out and meta rows; the same name with other alleles is another variant. Values checked against the cohort files and
    statsmodels' fixed-effect combination of them."""
    from crosscohort.contract.sumstats import write_sumstats

    rng = np.random.default_rng(11)
    betas = {"a": 0.30, "b": 0.26}
    paths = {}
    for c, rev in (("a", False), ("b", True)):
        paths[c] = tmp_path / f"{c}.tsv"
        write_sumstats(_marker_cohort(rng, {"mk1": betas[c]}, reversed_mk1=rev), paths[c])
    meta = tmp_path / "meta.tsv"
    # Raw GWAS-SSF in: harmonised in-process, so b's reversed mk1 is aligned to a's.
    assert main(["meta", "--format", "gwas-ssf", "--out", str(meta), "--loo-threshold", "5e-8",
                 *(f"{c}={p}" for c, p in paths.items())]) == 0
    out = tmp_path / "r.html"
    assert main(["report", "--trait", "t", "--meta", str(meta),
                 "--cohort", *(f"{c}={p}" for c, p in paths.items()),
                 "--loo", str(meta.with_name("meta.tsv.loo.tsv")), "--out", str(out)]) == 0
    page = _Page()
    page.feed(out.read_text(encoding="utf-8"))
    rows = {r[1]: (r[2], r[3], r[4]) for r in page.tables["meta-forest"][1:] if r[0] == "mk1 A/G"}
    assert rows["a"] == ("cohort", "0.3", "0.02")
    assert rows["b"] == ("cohort", "0.26", "0.02")  # written reversed (-0.26, G/A): aligned
    fixed = combine_effects(np.array([0.30, 0.26]), np.array([0.02, 0.02]) ** 2, use_t=False)
    assert float(rows["meta-analysis"][1]) == pytest.approx(float(fixed.mean_effect_fe), rel=1e-3)
    assert rows["without a"][1] == "0.26" and rows["without b"][1] == "0.3"
    assert set(rows) == {"a", "b", "without a", "without b", "meta-analysis"}
