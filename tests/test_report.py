"""The HTML report: sections, planted loci, embedded PNGs, self-containment, size, CLI errors.

Inputs are synthetic and made here: three cohorts on chromosomes 1, 7 and X,
a meta-analysis table with three planted loci (one whose p underflows to 0
and is carried by neg_log_10_p_value), a pooled arm, comparison files,
ledgers, audits, manifests and GWAS-SSF metadata YAMLs. The oracles are the
planted design and scipy, never the report code.
"""

from __future__ import annotations

import base64
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml
from scipy import stats

from crosscohort.central.report import SECTION_IDS, format_p
from crosscohort.cli import main
from crosscohort.contract.ledger import Ledger
from crosscohort.contract.sumstats import chrom_label, write_sumstats

TRAIT = "ldl"
COHORTS = ("alpha", "beta", "gamma")
#: (chromosome code, position, -log10 p of the lead) of the planted loci.
PLANTED = ((1, 20_000_000, 30.0), (7, 50_000_000, 12.0), (23, 100_000_000, 350.0))
N_PER_CHROM = 1_500


def _variants(rng: np.random.Generator) -> pl.DataFrame:
    chrom, pos = [], []
    for c in (1, 7, 23):
        p = np.sort(rng.choice(np.arange(1, 150_000) * 1_000, size=N_PER_CHROM, replace=False))
        chrom.append(np.full(p.size, c))
        pos.append(p)
    chrom = np.concatenate(chrom)
    pos = np.concatenate(pos)
    # Each planted lead plus two members of its locus, 50 kb either side.
    for c, p0, _ in PLANTED:
        chrom = np.concatenate([chrom, [c, c, c]])
        pos = np.concatenate([pos, [p0 - 50_000, p0, p0 + 50_000]])
    df = pl.DataFrame({"chromosome": chrom.astype(np.int64), "base_pair_location": pos.astype(np.int64)})
    df = df.unique(subset=["chromosome", "base_pair_location"], keep="last").sort(
        "chromosome", "base_pair_location")
    n = df.height
    alleles = rng.choice(np.array(["A", "C"]), size=n)
    return df.with_columns(
        pl.Series("effect_allele", alleles),
        pl.Series("other_allele", np.where(alleles == "A", "G", "T")),
    )


def _with_p(df: pl.DataFrame, rng: np.random.Generator, *, planted: bool, n: int) -> pl.DataFrame:
    """Null p-values (kept above 1e-6, so nothing else is significant) plus the planted loci."""
    nlp = -np.log10(np.clip(rng.uniform(size=df.height), 1e-6, 1.0))
    if planted:
        chrom = df["chromosome"].to_numpy()
        pos = df["base_pair_location"].to_numpy()
        for c, p0, lead in PLANTED:
            nlp[(chrom == c) & (pos == p0)] = lead
            nlp[(chrom == c) & (np.abs(pos - p0) == 50_000)] = 9.0
    p = np.power(10.0, -nlp)  # 10**-350 underflows to 0: neg_log_10_p_value carries it
    se = np.full(df.height, 0.02)
    z = stats.norm.isf(np.maximum(p, 1e-300) / 2)
    beta = z * se * rng.choice([-1.0, 1.0], size=df.height)
    return df.with_columns(
        pl.Series("beta", beta), pl.Series("standard_error", se),
        pl.Series("effect_allele_frequency", rng.uniform(0.05, 0.95, df.height)),
        pl.Series("p_value", p), pl.Series("neg_log_10_p_value", nlp),
        pl.lit(n, pl.Int64).alias("n"),
        pl.lit(n // 2, pl.Int64).alias("n_cases"), pl.lit(n - n // 2, pl.Int64).alias("n_controls"),
    ).with_columns(
        pl.concat_str([pl.col("chromosome").cast(pl.String), pl.col("base_pair_location").cast(pl.String),
                       pl.col("other_allele"), pl.col("effect_allele")], separator=":").alias("variant_id"))


@pytest.fixture(scope="session")  # shared with test_report_sections and test_report_browser
def inputs(tmp_path_factory) -> dict:
    d = tmp_path_factory.mktemp("report")
    rng = np.random.default_rng(2024)
    variants = _variants(rng)
    cohort_paths = {}
    for i, c in enumerate(COHORTS):
        path = write_sumstats(_with_p(variants, rng, planted=False, n=1000 * (i + 1)),
                              d / "harmonised" / f"{c}.tsv.gz")
        cohort_paths[c] = path
    meta = _with_p(variants, rng, planted=True, n=6000).with_columns(
        pl.lit(3, pl.Int64).alias("n_studies"), pl.lit("+-+").alias("direction"),
        pl.lit(0.25).alias("het_i2"))
    meta_path = write_sumstats(meta, d / "meta" / f"{TRAIT}.tsv.gz")
    pooled = meta.with_columns(pl.col("beta") * 1.02)
    pooled_path = write_sumstats(pooled.drop("direction", "het_i2", "n_studies"), d / "pooled.tsv.gz")
    (d / "meta" / f"{TRAIT}.tsv.gz.summary.json").write_text(json.dumps(
        {"method": "fixed", "n_variants": meta.height, "cohorts": list(COHORTS), "lambda_gc": 1.01}))
    (d / "compare.json").write_text(json.dumps(
        {"trait": TRAIT, "metrics": {"r": 0.998, "slope": 1.02},
         "counts": {"both": 3, "meta_only": 0, "pooled_only": 0}}))
    (d / "compare.tsv").write_text("locus\tbeta_meta\tbeta_pooled\n1\t0.5\t0.51\n2\t0.3\t0.306\n")
    harmonise_ledgers = [
        Ledger(stage="harmonise", cohort=c, trait=TRAIT, n_in=5000 + i, n_kept=4000,
               removed={"palindrome_dropped": 600 + i, "duplicate": 400}, changed={"allele_swapped": 77})
        for i, c in enumerate(COHORTS)
    ]
    (d / "harmonise.ledger.json").write_text(json.dumps([led.to_dict() for led in harmonise_ledgers]))
    qc_ledger = d / "qc.ledger.json"
    qc_ledger.write_text(json.dumps([
        Ledger(stage="qc", cohort="alpha", unit="samples", n_in=1010, n_kept=1000,
               removed={"call_rate": 10}).to_dict(),
        Ledger(stage="qc", cohort="alpha", n_in=6000, n_kept=5000, removed={"hwe": 123, "mac": 877}).to_dict(),
    ]))
    audits, manifests = [], []
    for i, c in enumerate(COHORTS):
        b = d / "exports" / c
        b.mkdir(parents=True)
        # The layout crosscohort.tre.gate writes: per-trait rule rows under "traits".
        (b / "audit.json").write_text(json.dumps({
            "cohort": c, "status": "pass", "config_digest": "cafe1234",
            "traits": {
                TRAIT: {"rows_in": 5000, "rows_released": 4969 - i, "rules": [
                    {"rule": "min_mac", "threshold": 20, "rows_suppressed": 31 + i, "status": "pass"},
                    {"rule": "min_cell_count", "threshold": 10, "rows_suppressed": 0, "status": "pass"}]},
                "other_trait": {"rules": [{"rule": "rule_of_another_trait", "threshold": 1}]},
            },
            "identifier_scan": {"status": "pass", "ids_checked": 1000},
        }))
        (b / "manifest.json").write_text(json.dumps({
            "cohort": c, "config_digest": "cafe1234", "crosscohort_version": "0.1.0",
            "files": [{"path": f"{TRAIT}.tsv.gz", "sha256": "0" * 64, "size": 123}]}))
        (b / f"{TRAIT}.meta.yaml").write_text(yaml.safe_dump(
            {"trait_description": [TRAIT], "samples": [{"sample_size": 1000 * (i + 1),
                                                         "sample_ancestry": [f"ancestry-{c}"]}]}))
        audits.append(b / "audit.json")
        manifests.append(b / "manifest.json")
    out = d / "out" / f"{TRAIT}.html"
    argv = ["report", "--trait", TRAIT, "--meta", str(meta_path),
            "--meta-summary", str(d / "meta" / f"{TRAIT}.tsv.gz.summary.json"),
            "--pooled", str(pooled_path), "--compare", str(d / "compare.json"),
            "--compare-table", str(d / "compare.tsv"),
            *[a for c, p in cohort_paths.items() for a in ("--cohort", f"{c}={p}")],
            "--ledger", str(d / "harmonise.ledger.json"), str(qc_ledger),
            *[a for p in audits for a in ("--audit", str(p))],
            "--manifest", *map(str, manifests),
            "--out", str(out)]
    assert main(argv) == 0
    return {"dir": d, "out": out, "html": out.read_text(encoding="utf-8"), "meta": meta, "argv": argv}


class _Page(HTMLParser):
    """Ids, URL-bearing attributes, images and the rows of each table figure."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: list[str] = []
        self.urls: list[tuple[str, str, str]] = []
        self.imgs: list[str] = []
        self.tags: list[str] = []
        self.tables: dict[str, list[list[str]]] = {}
        self._figure: str | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append(tag)
        if "id" in a:
            self.ids.append(a["id"])
        for k in ("src", "href", "action", "data", "poster"):
            if k in a:
                self.urls.append((tag, k, a[k] or ""))
        if tag == "img":
            self.imgs.append(a.get("src", ""))
        if tag == "figure" and "id" in a:
            self._figure = a["id"]
            self.tables[self._figure] = []
        if tag == "tr" and self._figure:
            self.tables[self._figure].append([])
        if tag in ("td", "th") and self._figure:
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._figure and self._cell is not None:
            self.tables[self._figure][-1].append("".join(self._cell).strip())
            self._cell = None
        if tag == "figure":
            self._figure = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


@pytest.fixture(scope="module")
def page(inputs) -> _Page:
    p = _Page()
    p.feed(inputs["html"])
    return p


def _section(html: str, sid: str) -> str:
    start = html.index(f'<section id="{sid}">')
    return html[start:html.index("</section>", start)]


def test_report__has_every_section_id(page):
    assert set(SECTION_IDS) == {"summary", "meta", "pooled", "comparison", "cohorts", "ledger", "audit", "methods"}
    for sid in SECTION_IDS:
        assert sid in page.ids, sid


def test_report__loci_table_lists_exactly_the_planted_loci(page):
    rows = page.tables["meta-loci"]
    header, body = rows[0], rows[1:]
    assert header[:7] == ["locus", "lead variant", "chrom", "pos", "β", "SE", "p"]
    found = {(r[2], int(r[3])) for r in body}
    assert found == {(chrom_label(c), p) for c, p, _ in PLANTED}
    by_pos = {int(r[3]): r for r in body}
    # p printed from the planted -log10 p, including the one that underflows float64
    assert by_pos[20_000_000][6] == "1.00e-30"
    assert by_pos[100_000_000][6] == "1.00e-350"
    assert by_pos[50_000_000][7] == "+-+" and by_pos[50_000_000][8] == "25.0%"
    assert all(r[9] == "3" for r in body)  # lead plus the two planted neighbours
    assert by_pos[50_000_000][10] == "49950000–50050000"


def test_report__every_image_is_a_decodable_png(page):
    # meta (2) + pooled (2) + scatter (1) + three cohorts (Manhattan, QQ, EAF, SE·√N,
    # p against β/SE: 5 each) + a forest plot per planted locus (3)
    assert len(page.imgs) == 2 + 2 + 1 + 3 * 5 + len(PLANTED)
    for src in page.imgs:
        prefix = "data:image/png;base64,"
        assert src.startswith(prefix)
        png = base64.b64decode(src[len(prefix):], validate=True)
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        assert png[12:16] == b"IHDR"
        width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
        assert width > 0 and height > 0


def test_report__is_self_contained(inputs, page):
    for tag, attr, url in page.urls:
        assert not re.match(r"\s*(https?:)?//", url, re.IGNORECASE), (tag, attr, url)
        assert url.startswith(("data:image/png;base64,", "#")), (tag, attr, url[:40])
    assert "script" not in page.tags and "link" not in page.tags
    assert "@import" not in inputs["html"] and "url(" not in inputs["html"]


def test_report__is_smaller_than_10_mb(inputs):
    assert inputs["out"].stat().st_size < 10 * 1024 * 1024


def test_report__meta_lambda_matches_scipy(inputs):
    nlp = inputs["meta"]["neg_log_10_p_value"].to_numpy()
    oracle = np.median(stats.chi2.isf(10.0 ** -nlp, 1)) / stats.chi2.ppf(0.5, 1)
    m = re.search(r"λGC = ([0-9.]+)", _section(inputs["html"], "meta"))
    assert m and float(m.group(1)) == pytest.approx(oracle, abs=5e-5)


def test_report__summary_shows_cohort_sizes_ancestry_and_digest(page, inputs):
    rows = {r[0]: r for r in page.tables["summary-cohorts"][1:]}
    assert set(rows) == set(COHORTS)
    assert rows["beta"][1:4] == ["2,000", "1,000", "1,000"]  # N, cases, controls
    assert rows["gamma"][4] == "ancestry-gamma"  # from exports/gamma/ldl.meta.yaml
    summary = _section(inputs["html"], "summary")
    assert "cafe1234" in summary  # config digest from the manifests
    for lib in ("crosscohort", "python", "numpy", "polars"):
        assert lib in summary
    stages = page.tables["summary-stages"]
    assert stages[0] == ["cohort", "input", "after qc", "after harmonise", "harmonised file"]
    assert stages[1][:4] == ["alpha", "6,000", "5,000", "4,000"]  # pipeline order, not file order
    assert stages[2][:4] == ["beta", "5,001", "—", "4,000"]


def test_report__ledger_tables_show_in_kept_and_every_reason(page):
    harm = page.tables["ledger-harmonise"]
    assert harm[0] == ["cohort", "trait", "unit", "in", "kept", "removed: palindrome_dropped",
                       "removed: duplicate", "changed: allele_swapped"]
    assert harm[2] == ["beta", TRAIT, "variants", "5,001", "4,000", "601", "400", "77"]
    qc = page.tables["ledger-qc"]
    assert ["alpha", "—", "samples", "1,010", "1,000", "10", "—", "—"] in qc


def test_report__audit_rules_rendered(inputs):
    audit = _section(inputs["html"], "audit")
    for c in COHORTS:
        assert f"{c}: export gate audit" in audit
    assert audit.count("min_mac") == 3 and "min_cell_count" in audit
    assert "rule_of_another_trait" not in audit  # other traits' audits belong to their reports
    assert "ids_checked" in audit  # structure not known to the report is still shown


def test_report__comparison_metrics_and_scatter(inputs):
    comp = _section(inputs["html"], "comparison")
    assert "0.998" in comp and "pooled_only" in comp
    assert "Pearson r" in comp and comp.count("<img ") == 1


def test_report_cli__bad_cohort_argument_is_one_line_error(inputs, capsys):
    argv = [a if not a.startswith("alpha=") else "alpha-without-path" for a in inputs["argv"]]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "--cohort expects COHORT=FILE" in err and "alpha-without-path" in err


def test_report_cli__missing_meta_file_names_it(inputs, capsys, tmp_path):
    argv = list(inputs["argv"])
    argv[argv.index("--meta") + 1] = str(tmp_path / "absent.tsv.gz")
    argv[argv.index("--out") + 1] = str(tmp_path / "r.html")
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "absent.tsv.gz" in err and "no such file" in err
    assert not (tmp_path / "r.html").exists()


@pytest.mark.parametrize(("nlp", "text"), [(0.30103, "0.5"), (7.30103, "5.00e-8"), (350.5, "3.16e-351")])
def test_format_p__from_neg_log10_beyond_float_range(nlp, text):
    assert format_p(nlp) == text


def test_report__without_optional_inputs_still_has_every_section(tmp_path, inputs):
    d: Path = inputs["dir"]
    out = tmp_path / "minimal.html"
    assert main(["report", "--trait", TRAIT, "--meta", str(d / "meta" / f"{TRAIT}.tsv.gz"),
                 "--cohort", f"alpha={d / 'harmonised' / 'alpha.tsv.gz'}", "--out", str(out)]) == 0
    p = _Page()
    p.feed(out.read_text(encoding="utf-8"))
    assert set(SECTION_IDS) <= set(p.ids)
    # meta (2), one cohort (Manhattan, QQ, SE·√N, p against β/SE; no EAF view without a
    # reference or a second cohort), a forest plot per planted locus
    assert len(p.imgs) == 2 + 4 + len(PLANTED)


def test_report__same_inputs_and_source_date_epoch_give_identical_bytes(inputs, tmp_path, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    outs = []
    for name in ("a.html", "b.html"):
        argv = list(inputs["argv"])
        argv[argv.index("--out") + 1] = str(tmp_path / name)
        assert main(argv) == 0
        outs.append((tmp_path / name).read_bytes())
    assert outs[0] == outs[1]
    assert b"2023-11-14 22:13 UTC" in outs[0]


def test_report__ledgers_keyed_by_cohort_are_read_and_bad_counts_name_the_file(inputs, tmp_path, capsys):
    d: Path = inputs["dir"]
    keyed = tmp_path / "keyed.json"
    keyed.write_text(json.dumps({"alpha": Ledger(stage="verify", cohort="alpha", n_in=9, n_kept=9).to_dict()}))
    base = ["report", "--trait", TRAIT, "--meta", str(d / "meta" / f"{TRAIT}.tsv.gz"),
            "--cohort", f"alpha={d / 'harmonised' / 'alpha.tsv.gz'}"]
    assert main([*base, "--ledger", str(keyed), "--out", str(tmp_path / "ok.html")]) == 0
    p = _Page()
    p.feed((tmp_path / "ok.html").read_text(encoding="utf-8"))
    assert p.tables["ledger-verify"][1][:5] == ["alpha", "—", "variants", "9", "9"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"stage": "qc", "cohort": "alpha", "n_in": 10, "n_kept": 8, "removed": {"hwe": 1}}))
    assert main([*base, "--ledger", str(bad), "--out", str(tmp_path / "bad.html")]) == 2
    err = capsys.readouterr().err
    assert "bad.json" in err and "in=10" in err


def test_report__a_latin1_ledger_names_its_line_not_a_unicode_traceback(tmp_path):
    """Before: UnicodeDecodeError from read_text() ('crosscohort report --ledger' traceback)."""
    from crosscohort.central.report.build import ReportError, _read_ledger_file

    bad = tmp_path / "ledger.json"
    bad.write_bytes('[{"stage": "qc",\n "cohort": "M\xfcnchen", "n_in": 1, "n_kept": 1}]'.encode("latin-1"))
    with pytest.raises(ReportError, match=r"ledger\.json: line 2: ledger is not UTF-8 text"):
        _read_ledger_file(bad)


def test_report__federated_compare_metrics_shown_beside_the_pooled_arm(tmp_path, inputs):
    d: Path = inputs["dir"]
    fed = tmp_path / "federated.json"
    fed.write_text(json.dumps({"n_sig_pooled": 4321, "lambda_gc_pooled": 1.0123, "loci_table": [{"x": 1}]}))
    out = tmp_path / "fed.html"
    assert main(["report", "--trait", TRAIT, "--meta", str(d / "meta" / f"{TRAIT}.tsv.gz"),
                 "--cohort", f"alpha={d / 'harmonised' / 'alpha.tsv.gz'}", "--federated-compare", str(fed),
                 "--out", str(out)]) == 0
    html = out.read_text(encoding="utf-8")
    assert "meta-analysis vs federated pooled fit" in html
    assert "4,321" in html and "1.012" in html and "loci_table" not in html


def test_report__individual_fit_compare_shown_as_the_same_model_table(tmp_path, inputs, capsys):
    """The demo's federated-vs-individual comparison (compare --federated) in the comparison section:
    its maxima, the variants compared and not compared, and for a binary trait the one-step's error."""
    from crosscohort.demo.same_model import compare_same_model, write_same_model

    d: Path = inputs["dir"]
    cols = ["chromosome", "base_pair_location", "effect_allele", "other_allele", "beta", "standard_error",
            "p_value", "n"]
    fed = pl.DataFrame([(1, 10, "A", "G", 0.5, 0.1, 1e-6, 900), (1, 20, "A", "G", 0.1, 0.1, 0.3, 500)],
                       schema=cols, orient="row")
    ind = pl.DataFrame([(1, 10, "A", "G", 0.52, 0.1, 2e-6, 900), (1, 20, "A", "G", 0.1, 0.1, 0.3, 900)],
                       schema=cols, orient="row")
    base = ["report", "--trait", TRAIT, "--meta", str(d / "meta" / f"{TRAIT}.tsv.gz"),
            "--cohort", f"alpha={d / 'harmonised' / 'alpha.tsv.gz'}"]
    for trait_type in ("quantitative", "binary"):
        same = write_same_model(compare_same_model(fed, ind, trait_type=trait_type), tmp_path / f"{trait_type}.json")
        out = tmp_path / f"{trait_type}.html"
        assert main([*base, "--individual-fit-compare", str(same), "--out", str(out)]) == 0
        html = out.read_text(encoding="utf-8")
        comparison = html[html.index('<section id="comparison"'):html.index('<section id="cohorts"')]
        assert "federated pooled vs individual-level pooled (same model, 1 variants;" in comparison
        p = _Page()
        p.feed(html)
        rows = dict(r for r in p.tables["comparison-same-model"][1:])
        assert rows["max |Δβ| / max(|β|, SE)"] == "0.0385"  # 0.02 / 0.52
        assert rows["max relative SE difference"] == "0"
        assert rows["max relative p difference"] == "0.5"  # 1e-6 against 2e-6
        assert rows["not compared: different n (the federated fit summed fewer people, e.g. a cohort's gate "
                    "withheld the variant's sums)"] == "1"
        if trait_type == "quantitative":
            assert rows["all three within 1e-10"] == "NO" and "equal up to rounding" in comparison
        else:
            assert "all three within 1e-10" not in rows
            assert "one-step estimator&#39;s measured error against the individual-level logistic fit" in comparison
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"n_compared": 3}))
    assert main([*base, "--individual-fit-compare", str(bad), "--out", str(tmp_path / "bad.html")]) == 2
    err = capsys.readouterr().err
    assert "bad.json: not a same-model comparison" in err and "'max_rel_beta'" in err


@pytest.mark.parametrize(("text", "got"), [
    ('[{"method": "fixed"}]', "a JSON list"),
    ('{"trait": "ldl", "metrics": {"r": 0.99}}', "an object with keys ['metrics', 'trait']"),
])
def test_report_cli__a_json_that_is_not_a_meta_summary_is_refused(inputs, capsys, tmp_path, text, got):
    """Before: a list was shown as a table and another stage's JSON (compare.json given by
    mistake) as if it were the meta-analysis summary, with exit 0."""
    wrong = tmp_path / "wrong.json"
    wrong.write_text(text)
    argv = list(inputs["argv"])
    argv[argv.index("--meta-summary") + 1] = str(wrong)
    argv[argv.index("--out") + 1] = str(tmp_path / "r.html")
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert f"{wrong}: not a meta-analysis summary (got {got})" in err and "'method'" in err
    assert not (tmp_path / "r.html").exists()
