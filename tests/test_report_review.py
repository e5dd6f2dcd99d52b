"""The report read as a reviewer and an output checker read it: what each section claims is
what its inputs hold, and odd runs (an MR-MEGA table without its summary, a cohort with no
variant, one cohort, a binary trait) are said plainly rather than shown as NaN, empty
plots or a traceback.

The inputs are tiny and made here (two or three cohorts of 400 variants on two
chromosomes, one planted locus); each test builds one report in about a second.
"""

from __future__ import annotations

import json
import re
from html import unescape
from pathlib import Path

import numpy as np
import polars as pl
from scipy import stats

from crosscohort.central.report import build_report
from crosscohort.contract.ledger import Ledger
from crosscohort.contract.sumstats import write_sumstats
from tests.test_report import _Page

TRAIT = "t"
N_VARIANTS = 400
LEAD = (1, 5_000_000)


def _table(seed: int, *, n: int = 1000, cases: int | None = None, lead_nlp: float = 0.0) -> pl.DataFrame:
    """A harmonised-looking table: null p-values above 1e-4, and the planted lead at ``lead_nlp``."""
    rng = np.random.default_rng(seed)
    chrom = np.repeat([1, 2], N_VARIANTS // 2)
    pos = np.tile(np.arange(1, N_VARIANTS // 2 + 1) * 50_000, 2)
    nlp = -np.log10(np.clip(rng.uniform(size=N_VARIANTS), 1e-4, 1.0))
    lead = (chrom == LEAD[0]) & (pos == LEAD[1])
    if lead_nlp:
        nlp[lead] = lead_nlp
    p = 10.0 ** -nlp
    se = np.full(N_VARIANTS, 0.05)
    beta = stats.norm.isf(p / 2) * se * np.where(rng.uniform(size=N_VARIANTS) < 0.5, -1.0, 1.0)
    df = pl.DataFrame({
        "chromosome": chrom, "base_pair_location": pos,
        "effect_allele": ["A"] * N_VARIANTS, "other_allele": ["G"] * N_VARIANTS,
        "beta": beta, "standard_error": se,
        "effect_allele_frequency": rng.uniform(0.1, 0.9, N_VARIANTS),
        "p_value": p, "neg_log_10_p_value": nlp, "n": np.full(N_VARIANTS, n),
    })
    if cases is not None:
        df = df.with_columns(pl.lit(cases).alias("n_cases"), pl.lit(n - cases).alias("n_controls"))
    return df.with_columns(pl.format("{}:{}:G:A", "chromosome", "base_pair_location").alias("variant_id"))


def _cohorts(d: Path, names: tuple[str, ...] = ("c1", "c2"), **kw) -> dict[str, Path]:
    return {c: write_sumstats(_table(10 + i, **kw), d / "harmonised" / f"{c}.tsv.gz")
            for i, c in enumerate(names)}


def _meta(d: Path, *, mrmega: bool = False, name: str = "meta.tsv.gz") -> Path:
    """A meta-analysis table with one locus; with ``mrmega`` its p is MR-MEGA's, not β/SE's."""
    df = _table(1, n=2000, lead_nlp=12.0).with_columns(
        pl.lit(2, pl.Int64).alias("n_studies"), pl.lit("++").alias("direction"),
        pl.lit(0.1).alias("het_i2"), pl.lit(0.5).alias("het_p"), pl.lit(1.0).alias("het_q"))
    if mrmega:
        # MR-MEGA's association p is the table's; β and SE stay the fixed-effect IVW's (here z ~ 1).
        lead = (pl.col("chromosome") == LEAD[0]) & (pl.col("base_pair_location") == LEAD[1])
        df = df.with_columns(
            pl.when(lead).then(0.05).otherwise(pl.col("beta")).alias("beta"),
            pl.lit(3.0).alias("mrmega_chi2_association"),
            pl.lit(0.3).alias("mrmega_neg_log_10_p_ancestry_het"))
    return write_sumstats(df, d / "meta" / name)


def _build(**kw) -> Path:
    """build_report at a low resolution: these tests read the page's text and tables, not its pixels."""
    return build_report(**{"dpi": 30, **kw})


def _page(path: Path) -> _Page:
    p = _Page()
    p.feed(path.read_text(encoding="utf-8"))
    return p


def _section(html: str, sid: str) -> str:
    start = html.index(f'<section id="{sid}">')
    return html[start:html.index("</section>", start)]


def _text(html: str) -> str:
    return unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)))


def test_report_mrmega__without_the_meta_summary_says_the_axes_are_unknown(tmp_path):
    """Before: ValueError ("Cannot specify ',' with 's'") from the axes table's '?' markers."""
    out = _build(trait=TRAIT, meta_path=_meta(tmp_path, mrmega=True), cohort_paths=_cohorts(tmp_path),
                       out_path=tmp_path / "r.html")
    meta = _text(_section(out.read_text(encoding="utf-8"), "meta"))
    assert "axes of genetic variation: not known without the meta-analysis summary" in meta
    assert "?" not in meta


def test_report_cohort__with_no_variant_says_so_without_nan_or_empty_plots(tmp_path):
    """Before: 'λGC = nan' and five empty plots whose captions described content."""
    cohorts = _cohorts(tmp_path)
    empty = tmp_path / "harmonised" / "c3.tsv.gz"
    write_sumstats(_table(3).clear(), empty)
    out = _build(trait=TRAIT, meta_path=_meta(tmp_path), cohort_paths={**cohorts, "c3": empty},
                       out_path=tmp_path / "r.html")
    html = out.read_text(encoding="utf-8")
    cohorts_html = _section(html, "cohorts")
    c3 = cohorts_html[cohorts_html.index(">c3</h3>"):]
    assert "nan" not in _text(html).lower().split()
    assert "λGC = nan" not in html
    assert "<img" not in c3  # c1 and c2 come before it; nothing is drawn for c3
    assert "no variant: its harmonised file has no rows" in _text(c3)
    rows = {r[0]: r for r in _page(out).tables["summary-cohorts"][1:]}
    assert rows["c3"][5:] == ["0", "—"]


def _gate_audit(d: Path, cohort: str, *, rows_in: int, kept: int, qc_in: int) -> Path:
    """An export audit in the gate's layout: the trait's ledger, the released QC ledgers."""
    removed = {"no_estimate": 0, "min_count": 0, "min_mac": rows_in - kept - 7, "min_mac_group": 7,
               "min_residual_df": 0, "released_mac": 0}
    audit = {
        "cohort": cohort, "status": "released", "software": "crosscohort 0.1.0", "created": "20261207T000000Z",
        "config_digest": "ab" * 32, "gate_rules": {"min_count": 20, "min_mac": 20.0},
        "traits": {TRAIT: {
            "trait_type": "binary", "rows_in": rows_in, "rows_released": kept, "rows_suppressed": rows_in - kept,
            "rules": [{"rule": k, "threshold": 20, "description": k, "rows_suppressed": v, "status": "pass"}
                      for k, v in removed.items()],
            "ledger": Ledger(stage="export_gate", cohort=cohort, trait=TRAIT, n_in=rows_in, n_kept=kept,
                             removed=removed).to_dict()}},
        "qc_ledgers": [
            {"stage": "qc", "unit": "samples", "trait": None, "counts": "withheld: counts of people ..."},
            {"stage": "qc", "unit": "variants", "trait": None, "n_in": qc_in, "n_kept": rows_in,
             "removed": {"maf_below": qc_in - rows_in}, "changed": {}}],
    }
    path = d / "exports" / cohort / "audit.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(audit))
    return path


def test_report_ledgers__the_gate_and_released_qc_counts_close_the_stage_table(tmp_path):
    """Before: 'after qc' 500 then harmonise's input 400 with nothing between: the export gate's
    suppressions (in each audit's ledger) were in no ledger table, and without the TRE's own QC
    ledger files (central mode) the released QC ledgers of the audits were not read either."""
    cohorts = _cohorts(tmp_path, cases=300)
    kept = {"c1": 400, "c2": 400}
    audits = [_gate_audit(tmp_path, c, rows_in=500, kept=kept[c], qc_in=900) for c in cohorts]
    harmonise = tmp_path / "harmonise.ledger.json"
    harmonise.write_text(json.dumps([Ledger(stage="harmonise", cohort=c, trait=TRAIT, n_in=kept[c],
                                            n_kept=N_VARIANTS).to_dict() for c in cohorts]))
    out = _build(trait=TRAIT, meta_path=_meta(tmp_path), cohort_paths=cohorts, out_path=tmp_path / "r.html",
                       ledger_paths=[harmonise], audit_paths=[str(a) for a in audits])
    page = _page(out)
    stages = page.tables["summary-stages"]
    assert stages[0] == ["cohort", "input", "after qc", "after export gate", "after harmonise", "harmonised file"]
    assert stages[1] == ["c1", "900", "500", "400", "400", "400"]
    gate = page.tables["ledger-export_gate"]
    assert ["c1", TRAIT, "variants", "500", "400", "0", "0", "93", "7", "0", "0"] in gate
    assert ["c1", "—", "variants", "900", "500", "400"] in page.tables["ledger-qc"]


def test_report_audit__shows_the_gates_warnings_rules_limits_and_sufficient_statistics(tmp_path):
    """Before: the audit's lists (count rules, what the gate cannot detect, the warning on sizes
    of two traits 1..min_count apart) were not shown, and its sufficient-statistics block was an
    empty table captioned 'c1: sufficient': an output checker's warning hidden from the reviewer."""
    cohorts = _cohorts(tmp_path, cases=300)
    path = _gate_audit(tmp_path, "c1", rows_in=500, kept=400, qc_in=900)
    audit = json.loads(path.read_text())
    warning = (f"sample_size of traits other and {TRAIT} (sufficient statistics) differ by 1 to 20: the "
               "difference counts people; leave out the sufficient statistics of one of them")
    audit |= {
        "count_rules": ["Every released count of people is 0 or more than 20."],
        "differences_between_traits": [warning],
        "limits": ["An identifier encoded or transformed is not found."],
        "sufficient": {TRAIT: {
            "trait_type": "binary", "status": "released", "reasons": [], "n": 985, "rows_in": 500,
            "rows_released": 123, "rules": [
                {"rule": "sufficient_genotype_count", "description": "genotype counts 0 or > min_count",
                 "rows_suppressed": 377}],
            "sumstats_fill": {"rule": "sufficient_sumstats_fill", "status": "pass", "variants_compared": 500},
            "not_covered": "Differences between variants are checked pairwise only."},
            "other": {"trait_type": "binary", "status": "released", "rules": [
                {"rule": "rule_of_another_trait", "description": "x", "rows_suppressed": 1}]}},
    }
    path.write_text(json.dumps(audit))
    out = _build(trait=TRAIT, meta_path=_meta(tmp_path), cohort_paths=cohorts, out_path=tmp_path / "r.html",
                       audit_paths=[str(path)])
    html = out.read_text(encoding="utf-8")
    section = _text(_section(html, "audit"))
    assert warning in section and "Warning" in section
    assert "Every released count of people is 0 or more than 20." in section
    assert "An identifier encoded or transformed is not found." in section
    page = _page(out)
    suff = page.tables["audit-c1-sufficient"]
    assert ["sufficient_genotype_count", "377", "genotype counts 0 or > min_count"] in suff
    assert "rows in 500, released 123" in section and "n = 985" in section
    assert "Differences between variants are checked pairwise only." in section
    assert "rule_of_another_trait" not in section  # another trait's sums belong to its report
    # No table is shown empty: every table figure has rows or says why not.
    for caption, body in re.findall(r'<figure class="table"[^>]*>\s*<figcaption>(.*?)</figcaption>(.*?)</figure>',
                                    html, flags=re.S):
        assert "<tr>" in body or 'class="note"' in body, caption


def test_report_mrmega__loci_and_forest_say_beta_is_ivw_and_p_is_mrmega(tmp_path):
    """Before: the loci table of an MR-MEGA run headed 'β, SE, p' over the IVW β and SE beside
    MR-MEGA's p (z = β/SE gives another p), and the forest plots called IVW's β 'meta-analysis'."""
    out = _build(trait=TRAIT, meta_path=_meta(tmp_path, mrmega=True), cohort_paths=_cohorts(tmp_path),
                       out_path=tmp_path / "r.html")
    page = _page(out)
    header, lead = page.tables["meta-loci"][0], page.tables["meta-loci"][1]
    assert header[4:7] == ["β (fixed-effect IVW)", "SE (fixed-effect IVW)", "p (MR-MEGA)"]
    assert lead[6] == "1.00e-12" and float(lead[4]) / float(lead[5]) == 1.0  # z = 1: not this p
    assert any(r[1] == "fixed-effect IVW" and r[2] == "summary" for r in page.tables["meta-forest"][1:])
    assert not any(r[1] == "meta-analysis" for r in page.tables["meta-forest"][1:])
    html = out.read_text(encoding="utf-8")
    assert "MR-MEGA has no single effect size" in _text(_section(html, "meta"))


def test_report_forest__caption_names_only_the_rows_drawn(tmp_path):
    """Before: every forest caption read 'leave-one-out estimates (file), meta-analysis and pooled β',
    also for one cohort (no leave-one-out row) and without a pooled arm."""
    cohorts = _cohorts(tmp_path, names=("c1",))
    out = _build(trait=TRAIT, meta_path=_meta(tmp_path), cohort_paths=cohorts, out_path=tmp_path / "r.html")
    captions = re.findall(r'<img src="data:[^"]*" alt="forest plot of [^"]*"><figcaption>(.*?)</figcaption>',
                          out.read_text(encoding="utf-8"))
    assert captions == ["1:5000000:G:A: per-cohort β with 95% CI and the meta-analysis β."]
    rows = [r[1] for r in _page(out).tables["meta-forest"][1:]]
    assert rows == ["c1", "meta-analysis"]


def test_report_summary__run_and_bundle_config_digests_are_told_apart(tmp_path):
    """Before: the run summary's one 'config digest' was the central run's (--config-digest), while
    every bundle's manifest and audit, shown further down, records another (the TRE's part of the
    config): the demo's report showed 8fc3... above and 2e90... below with nothing to say why."""
    cohorts = _cohorts(tmp_path)
    manifests = []
    for c in cohorts:
        m = tmp_path / "exports" / c / "manifest.json"
        m.parent.mkdir(parents=True, exist_ok=True)
        m.write_text(json.dumps({"cohort": c, "config_digest": "bb" * 32, "files": []}))
        manifests.append(str(m))
    out = _build(trait=TRAIT, meta_path=_meta(tmp_path), cohort_paths=cohorts, out_path=tmp_path / "r.html",
                       manifest_paths=manifests, config_digest="aa" * 32)
    facts = dict(re.findall(r"<dt>(.*?)</dt><dd>(.*?)</dd>", _section(out.read_text(encoding="utf-8"), "summary")))
    assert facts["config digest of this run (--config-digest)"] == "aa" * 32
    assert facts["config digest of the exports (bundle manifests)"] == f"{'bb' * 32} (c1, c2)"
    out = _build(trait=TRAIT, meta_path=_meta(tmp_path), cohort_paths=cohorts, out_path=tmp_path / "r2.html",
                       manifest_paths=manifests)
    facts = dict(re.findall(r"<dt>(.*?)</dt><dd>(.*?)</dd>", _section(out.read_text(encoding="utf-8"), "summary")))
    assert facts["config digest of this run (--config-digest)"] == "not given"


def test_report_cohort__se_view_of_a_binary_trait_names_its_expected_peak_not_a_residual_sd(tmp_path):
    """Before: the SE·√N caption said SE·√(2p(1−p)N) 'should peak at the trait's residual SD' for
    a binary trait too; for logistic regression it peaks near 1/√(φ(1−φ)), φ the case fraction."""
    cohorts = _cohorts(tmp_path, cases=300)
    out = _build(trait=TRAIT, meta_path=_meta(tmp_path), cohort_paths=cohorts, out_path=tmp_path / "r.html")
    captions = re.findall(r'alt="SE times root N of (\w+)"><figcaption>(.*?)</figcaption>',
                          out.read_text(encoding="utf-8"))
    assert [c for c, _ in captions] == ["c1", "c2"]
    for _, caption in captions:
        assert "residual SD" not in caption
        # 1 / sqrt(0.3 * 0.7) with 300 cases of 1,000
        assert "1/√(φ(1−φ)) = 2.18 (φ = 300/1,000 cases)" in caption
    quantitative = _build(trait=TRAIT, meta_path=_meta(tmp_path), cohort_paths=_cohorts(tmp_path / "q"),
                                out_path=tmp_path / "q.html").read_text(encoding="utf-8")
    assert "residual SD" in quantitative


def _boxes(fig, artists):
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    return [a.get_window_extent(r) for a in artists if a.get_visible() and a.get_text()]


def _overlaps(boxes) -> list[tuple[int, int]]:
    return [(i, j) for i in range(len(boxes)) for j in range(i + 1, len(boxes)) if boxes[i].overlaps(boxes[j])]


def test_report_mrmega__axes_plot_tick_labels_and_cohort_names_are_readable():
    """Before: on the demo's axes (-0.075..0.107) the x tick labels ran into each other
    ('-0.075-0.050-0.025 0.000 ...') and the rightmost cohort's name ran past the frame."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from crosscohort.central.report.mrmega import axes_figure

    summary = {"axes": {"admixed_afr": [-0.00184, 0.1112], "admixed_amr": [0.03055, -0.006563],
                        "biobank_eas": [0.1066, -0.03863], "biobank_eur": [-0.06018, -0.02912],
                        "study_eur": [-0.07513, -0.03687]},
               "eigenvalues": [0.0216, 0.0161, 1e-4, 7e-5, 0.0], "n_markers": 29, "n_axes": 2}
    fig = axes_figure(summary)
    FigureCanvasAgg(fig)
    ax = fig.axes[0]
    assert _overlaps(_boxes(fig, ax.get_xticklabels())) == []
    assert _overlaps(_boxes(fig, ax.get_yticklabels())) == []
    frame = ax.get_window_extent(fig.canvas.get_renderer())
    for box in _boxes(fig, ax.texts):  # the cohort names, inside the axes' frame
        assert frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1


def test_report_manhattan__variant_count_note_does_not_cover_a_lead_label():
    """Before: the note '37,106 variants' sat on the top right corner of the axes, where the
    label of a strong lead at the end of the last chromosome was drawn (the demo's biobank_eur)."""
    from crosscohort.central.loci import distance_loci
    from crosscohort.central.report.plots import manhattan

    df = _table(5, lead_nlp=0.0)
    last = (pl.col("chromosome") == 2) & (pl.col("base_pair_location") == df["base_pair_location"].max())
    df = df.with_columns(pl.when(last).then(16.0).otherwise(pl.col("neg_log_10_p_value")).alias("neg_log_10_p_value"),
                         pl.lit("rs21075759").alias("rsid")).drop("p_value")
    loci = distance_loci(df.filter(pl.col("neg_log_10_p_value") > 7.3), threshold=5e-8, window_kb=500)
    fig = manhattan(df, title="t", loci=loci)
    ax = fig.axes[0]
    note = [t for t in ax.texts if t.get_gid() == "note"]
    labels = [t for t in ax.texts if t.get_gid() == "lead_label"]
    assert len(note) == 1 and len(labels) == 1
    assert _overlaps(_boxes(fig, note + labels)) == []
    for other in _boxes(fig, [*ax.get_xticklabels(), ax.xaxis.label]):  # nor the axis' own text
        assert not _boxes(fig, note)[0].overlaps(other)


def test_report_miami__variant_count_note_is_off_the_bottom_axis_tick_labels():
    """Before: the pooled arm's note hung from the bottom axis' lower right corner, over its last
    chromosome's tick label (the demo's '73,372 variants' over '6')."""
    from crosscohort.central.report.plots import miami

    meta, pooled = _table(5), _table(6)
    fig = miami(meta, pooled)
    bottom = fig.axes[-1]
    notes = [t for ax in fig.axes for t in ax.texts if t.get_gid() == "note"]
    assert len(notes) == 1 and "meta-analysis: 400 variants; pooled: 400 variants" in notes[0].get_text()
    for other in _boxes(fig, [*bottom.get_xticklabels(), bottom.xaxis.label]):
        assert not _boxes(fig, notes)[0].overlaps(other)


def test_report_comparison__genomic_control_counts_the_variants_its_lambda_is_of(tmp_path):
    """Before: 'meta-analysis 73,288 variants, λGC 1.2154' in the demo, where λGC was the median of
    the 23,181 MR-MEGA p-values (variants in fewer than T + 3 cohorts have none)."""
    meta = _meta(tmp_path, mrmega=True)
    df = pl.read_csv(meta, separator="\t", null_values="NA")
    no_fit = pl.int_range(pl.len()) % 4 == 0  # a quarter of the rows without MR-MEGA p
    df = df.with_columns(*(pl.when(no_fit).then(None).otherwise(pl.col(c)).alias(c)
                           for c in ("p_value", "neg_log_10_p_value")))
    write_sumstats(df, meta)
    pooled = write_sumstats(_table(7), tmp_path / "pooled.tsv.gz")
    compare = tmp_path / "compare.json"
    compare.write_text(json.dumps({"all_shared": {"n": N_VARIANTS}, "n_sig_both": 0, "n_meta": N_VARIANTS,
                                   "n_pooled": N_VARIANTS, "lambda_gc_meta": 1.1, "lambda_gc_pooled": 1.0}))
    out = _build(trait=TRAIT, meta_path=meta, cohort_paths=_cohorts(tmp_path), out_path=tmp_path / "r.html",
                       pooled_path=pooled, compare_path=compare)
    gc = _page(out).tables["comparison-lambda"]
    assert gc[0] == ["arm", "variants with a p-value (of rows)", "λGC"]
    assert gc[1] == ["meta-analysis", f"300 (of {N_VARIANTS})", "1.1000"]
    assert gc[2] == ["pooled", f"{N_VARIANTS} (of {N_VARIANTS})", "1.0000"]


def test_audit_md__lists_the_qc_ledgers_the_bundle_releases(tmp_path):
    """Before: audit.md said 'ledgers that count variants are released as counts of variants' but
    did not show them (they were in audit.json and the metadata only): the output checker, who
    reads audit.md, could not see every count that leaves."""
    from tests.test_gate import _export_small
    from tests.test_gate import _table as gate_table

    led = tmp_path / "qc.ledger.json"
    led.write_text(json.dumps([
        Ledger(stage="qc", cohort="c1", unit="samples", n_in=1013, n_kept=1000,
               removed={"call_rate_below_mind": 13}).to_dict(),
        Ledger(stage="qc", cohort="c1", n_in=9876, n_kept=5432, removed={"maf_below": 4444}).to_dict()]))
    out = _export_small(tmp_path, gate_table([{}]), qc_ledgers=[led])
    md = (out / "audit.md").read_text()
    section = md[md.index("## QC ledgers released"):]
    section = section[:section.index("\n## ", 1)]
    assert "| qc | variants | all traits | 9876 | 5432 | maf_below 4444 |" in section
    assert "| qc | samples | all traits | withheld | withheld | withheld |" in section
    assert "1013" not in md and "13 |" not in section  # the people counts stay in the TRE


def _methods_for(tmp_path: Path, method: str, *, mrmega: bool = False) -> str:
    d = tmp_path / method
    meta = _meta(d, mrmega=mrmega)
    summary = d / "meta.summary.json"
    summary.write_text(json.dumps({"method": method, "cohorts": ["c1"]}))
    out = _build(trait=TRAIT, meta_path=meta, meta_summary_path=summary, cohort_paths=_cohorts(d, names=("c1",)),
                 out_path=d / "r.html")
    return _text(_section(out.read_text(encoding="utf-8"), "methods"))


def test_report_methods__name_the_test_whose_p_the_plots_loci_and_lambda_use(tmp_path):
    """Before: every method read 'inverse-variance weighted fixed effects, with DerSimonian–Laird
    random effects alongside': with --method samplesize the table's p is METAL's sample-size Z,
    with mrmega MR-MEGA's association test, and with random still the fixed-effect test's."""
    used = "The p-value of the plots, the loci and λGC is"
    fixed = _methods_for(tmp_path, "fixed")
    assert f"{used} the fixed-effect IVW test's." in fixed
    random = _methods_for(tmp_path, "random")
    assert f"{used} the fixed-effect IVW test's" in random and "not the random-effects test's" in random
    samplesize = _methods_for(tmp_path, "samplesize")
    assert f"{used} METAL's sample-size weighted Z test's" in samplesize
    mrmega = _methods_for(tmp_path, "mrmega", mrmega=True)
    assert f"{used} MR-MEGA's association test's" in mrmega
    for text in (random, samplesize, mrmega):
        assert "β and SE are the fixed-effect IVW's" in text


def test_report_forest__says_when_it_shows_only_the_most_significant_leads(tmp_path):
    """Before: with more loci than forest plots (12) the rest were left out without a word."""
    from crosscohort.central.report.sections import MAX_FORESTS

    meta = _table(1, n=2000).with_columns(pl.lit(2, pl.Int64).alias("n_studies"), pl.lit("++").alias("direction"))
    lead = pl.col("base_pair_location") % 1_000_000 == 0  # 1 Mb apart: one locus each, 2 x 10 of them
    meta = meta.with_columns(pl.when(lead).then(20.0 + pl.int_range(pl.len()) / 100)
                             .otherwise(pl.col("neg_log_10_p_value")).alias("neg_log_10_p_value")).drop("p_value")
    n_leads = meta.filter(lead).height
    assert n_leads > MAX_FORESTS
    out = _build(trait=TRAIT, meta_path=write_sumstats(meta, tmp_path / "meta.tsv.gz"),
                       cohort_paths=_cohorts(tmp_path), out_path=tmp_path / "r.html")
    html = out.read_text(encoding="utf-8")
    assert len(re.findall(r'alt="forest plot of ', html)) == MAX_FORESTS
    meta_text = _text(_section(html, "meta"))
    assert f"Forest plots of the lead variants: the {MAX_FORESTS} most significant of {n_leads} leads" in meta_text


def test_report_ledgers__the_meta_analysis_ledgers_of_its_summary_are_ledger_tables(tmp_path):
    """Before: the summary's ledgers (what the meta-analysis itself removed and flagged per cohort)
    were shown only as JSON text in 'meta-analysis summary › ledgers', not in the ledger section."""
    cohorts = _cohorts(tmp_path)
    summary = tmp_path / "meta.summary.json"
    summary.write_text(json.dumps({"method": "fixed", "cohorts": list(cohorts), "ledgers": [
        Ledger(stage="meta", cohort=c, n_in=N_VARIANTS, n_kept=N_VARIANTS - 3, removed={"duplicate": 3},
               changed={"eaf_far_from_other_cohorts_flagged": 5}).to_dict() for c in cohorts]}))
    out = _build(trait=TRAIT, meta_path=_meta(tmp_path), meta_summary_path=summary, cohort_paths=cohorts,
                       out_path=tmp_path / "r.html")
    page = _page(out)
    assert ["c1", "—", "variants", "400", "397", "3", "5"] in page.tables["ledger-meta"]
    assert page.tables["summary-stages"][1] == ["c1", "400", "397", "400"]
    assert "meta-analysis summary › ledgers" not in out.read_text(encoding="utf-8")


def test_report_loci__lead_names_its_rsid_as_the_manhattan_label_does(tmp_path):
    """Before: the Manhattan plot labels a lead by its rsid, the loci table by chrom:pos:ref:alt
    only: a reviewer could not tell which row is which label."""
    meta = pl.read_csv(_meta(tmp_path), separator="\t", null_values="NA").with_columns(
        pl.format("rs{}", pl.int_range(pl.len()) + 1).alias("rsid"))
    path = write_sumstats(meta, tmp_path / "meta" / "named.tsv.gz")
    out = _build(trait=TRAIT, meta_path=path, cohort_paths=_cohorts(tmp_path), out_path=tmp_path / "r.html")
    rsid = meta.filter((pl.col("chromosome") == LEAD[0]) & (pl.col("base_pair_location") == LEAD[1]))["rsid"].item()
    assert _page(out).tables["meta-loci"][1][1] == f"1:5000000:G:A ({rsid})"


def test_report_comparison__no_discordant_locus_is_said_once_without_a_dash_median():
    """Before: '0 discordant loci; median I² —. every locus is found by both arms ...'."""
    from crosscohort.central.report.sections import comparison_section

    loci = pl.DataFrame({"chromosome": [1], "base_pair_location": [5], "variant_id": ["1:5:G:A"],
                         "class": ["both"], "cohort_specific": [False]})
    tables, _ = comparison_section({"all_shared": {"n": 1}, "n_sig_both": 1, "discordant_het": {"n_loci": 0}},
                                   loci=loci, meta=None, pooled=None, threshold=5e-8, dpi=50)
    disc = next(t for t in tables if t.id == "comparison-discordant")
    assert disc.rows == ()
    assert disc.note == "No discordant or cohort-specific locus: every locus is found by both arms and carried by " \
                        "more than one cohort."


def test_report_summary__cohorts_the_meta_analysis_combined_but_the_report_was_not_given_are_named(tmp_path):
    """Before: a report given two of a meta-analysis' five cohorts listed 'cohorts: c1, c2' as if the
    meta-analysis were of those two; ledger rows of the others sat in the stage table unmarked."""
    cohorts = _cohorts(tmp_path)
    summary = tmp_path / "meta.summary.json"
    summary.write_text(json.dumps({"method": "fixed", "cohorts": ["c1", "c2", "c3"]}))
    harmonise = tmp_path / "harmonise.ledger.json"
    harmonise.write_text(json.dumps([Ledger(stage="harmonise", cohort=c, trait=TRAIT, n_in=9, n_kept=9).to_dict()
                                     for c in ("c1", "c2", "c3")]))
    out = _build(trait=TRAIT, meta_path=_meta(tmp_path), meta_summary_path=summary, cohort_paths=cohorts,
                       ledger_paths=[harmonise], out_path=tmp_path / "r.html")
    html = out.read_text(encoding="utf-8")
    facts = dict((unescape(k), unescape(v))
                 for k, v in re.findall(r"<dt>(.*?)</dt><dd>(.*?)</dd>", _section(html, "summary")))
    assert facts["cohorts"] == "c1, c2"
    assert facts["cohorts in the meta-analysis but not in this report"] == "c3 (its summary lists c1, c2, c3)"
    assert _page(out).tables["summary-stages"][3][0] == "c3 (not in this report)"


def test_report_meta_summary__per_cohort_lambda_says_it_is_of_beta_over_se(tmp_path):
    """Before: 'meta-analysis summary › lambda_gc' gave biobank_eur 1.158 a screen above the cohorts
    table's 1.157 with nothing to tell them apart: meta's λ is of (β/SE)², the report's of each p
    (a t-test's p at small N); and 'gc_applied' 1 did not say it is a factor, 1 = none."""
    cohorts = _cohorts(tmp_path)
    summary = tmp_path / "meta.summary.json"
    summary.write_text(json.dumps({"method": "fixed", "cohorts": list(cohorts),
                                   "lambda_gc": {"c1": 1.158, "c2": 1.05}, "gc_applied": {"c1": 1.0, "c2": 1.0}}))
    out = _build(trait=TRAIT, meta_path=_meta(tmp_path), meta_summary_path=summary, cohort_paths=cohorts,
                       out_path=tmp_path / "r.html")
    meta = _text(_section(out.read_text(encoding="utf-8"), "meta"))
    assert "λGC per cohort, of (β/SE)² (what --gc corrects by; the cohorts table's is of each file's p)" in meta
    assert "SE factor per cohort applied by --gc (√λGC where λGC > 1; 1 = not corrected)" in meta


def test_audit_md__sumstats_fill_rule_says_it_checked_the_rows_before_release_not_the_released_file():
    """Before: audit.md said 'the trait's sumstats have the sums' n and ALT allele count at all 45915
    variants in both' and 'the sumstats' n, EAF and beta are those the sums give', while the demo's
    released admixed_amr ldl.tsv.gz has n 984 beside the sums' exact n 985 (the trait's n is lowered
    to cad's between traits) and EAFs rounded: the rule checks the association rows the gate reads."""
    from crosscohort.contract.release import GateRules
    from crosscohort.contract.release_sums import audit_md

    entry = {"trait_type": "quantitative", "status": "released", "reasons": [], "n": 985, "rows_in": 10,
             "rows_released": 5, "rules": [], "columns_released": [], "columns_internal_stripped": [],
             "columns_dropped": [],
             "sumstats_fill": {"rule": "sufficient_sumstats_fill", "status": "pass", "variants_compared": 10}}
    md = "\n".join(audit_md({"ldl": entry}, GateRules()))
    assert "the trait's sumstats have the sums' n" not in md
    assert "so the sumstats' n, EAF and beta are those the sums give" not in md
    assert ("the trait's association rows, as the gate read them before its release rules, have the sums' n "
            "and ALT allele count at all 10 variants in both") in md
    assert "the released sumstats carry the trait's released n and a rounded EAF" in md


def test_report_forest__axis_of_a_binary_trait_says_log_odds():
    """Before: a binary trait's forest plots read 'β (95% CI)', with no unit: its β is a log odds ratio."""
    from crosscohort.central.report.sections import forest_images

    leads = _table(1).filter((pl.col("chromosome") == LEAD[0]) & (pl.col("base_pair_location") == LEAD[1]))
    for cases in (300, None):
        cohorts = {c: _table(10 + i, cases=cases) for i, c in enumerate(("c1", "c2"))}
        images, _ = forest_images(leads, cohorts, loo=None, pooled_leads=None, dpi=30)
        assert len(images) == 1
        # the axis reads 'β, log odds ratio (95% CI)' from the same flag
        assert ("β is the log odds ratio per effect allele." in images[0].caption) == (cases is not None)


def test_report_summary__cohort_sizes_are_said_to_be_the_released_ones(tmp_path):
    """Before: 'N (max n)' per cohort and 'pooled analysis N' 5,899 above five cohorts summing to 5,897
    in the demo, with nothing to say that the gate lowers a trait's released n (to another trait's
    within min_count) while the pooled arm counts the people it analysed."""
    out = _build(trait=TRAIT, meta_path=_meta(tmp_path), cohort_paths=_cohorts(tmp_path), out_path=tmp_path / "r.html")
    table = _page(out).tables["summary-cohorts"]
    assert table[0][1] == "N (released)"
    summary = _text(_section(out.read_text(encoding="utf-8"), "summary"))
    assert "may sum to less than the pooled arm's N" in summary
