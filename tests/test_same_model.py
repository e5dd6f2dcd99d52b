"""The demo's individual-level fit of the federated model: its inputs and its comparator (issue 24).

``crosscohort compare --federated`` (the product path), ``pool --qc --variants
intersection`` and ``pool --specific`` given a cohort twice. The comparator on
real pool-fit and assoc tables is tested in tests/test_pooled_fit.py
(``..._pool_then_assoc``) and on the demo in tests/test_workflow.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from crosscohort.cli import main
from crosscohort.contract.errors import InputError
from crosscohort.demo.pool import pool_qc
from crosscohort.demo.same_model import compare_same_model


def _table(rows: list[tuple]) -> pl.DataFrame:
    """GWAS-SSF rows (chromosome, position, effect, other, beta, se, p, n[, nlp])."""
    cols = ["chromosome", "base_pair_location", "effect_allele", "other_allele", "beta", "standard_error",
            "p_value", "n", "neg_log_10_p_value"]
    full = [r if len(r) == 9 else (*r, -np.log10(r[6]) if r[6] else None) for r in rows]
    return pl.DataFrame(full, schema=cols, orient="row")


def _write(df: pl.DataFrame, path: Path) -> Path:
    df.write_csv(path, separator="\t", null_value="NA")
    return path


FED = _table([
    (1, 100, "A", "G", 0.5, 0.1, 1e-6, 1000),
    (1, 200, "C", "T", -0.2, 0.05, 1e-4, 1000),       # alleles reversed in the individual table
    (1, 300, "A", "C", 0.01, 0.1, 0.9, 600),          # a cohort's gate withheld it: fewer people
    (1, 400, "A", "T", None, None, None, 1000),       # not estimable in the federated fit
    (2, 500, "G", "T", 0.3, 0.1, 0.003, 1000),        # federated only
])
IND = _table([
    (1, 100, "A", "G", 0.5 + 1e-12, 0.1 * (1 + 2e-12), 1e-6 * (1 + 3e-12), 1000),
    (1, 200, "T", "C", 0.2, 0.05, 1e-4, 1000),
    (1, 300, "A", "C", 0.02, 0.08, 0.8, 1000),
    (1, 400, "A", "T", 0.1, 0.1, 0.3, 1000),
    (2, 600, "G", "T", 0.3, 0.1, 0.003, 1000),        # individual only
])


def test_compare_same_model__every_variant_counted_once_and_differences_relative_to_the_individual_fit():
    r = compare_same_model(FED, IND, trait_type="quantitative")
    assert (r.n_union, r.n_compared, r.n_different_samples, r.n_not_estimable, r.n_federated_only,
            r.n_individual_only) == (6, 2, 1, 1, 1, 1)
    assert r.n_union == (r.n_compared + r.n_different_samples + r.n_not_estimable + r.n_federated_only
                         + r.n_individual_only)
    assert r.n_alleles_swapped == 1
    # The reversed variant is aligned (beta -0.2 both ways): only the first variant differs.
    assert r.max_rel_beta == pytest.approx(1e-12 / 0.5, rel=1e-3)
    assert r.max_rel_se == pytest.approx(2e-12 / (1 + 2e-12), rel=1e-3)
    assert r.max_rel_p == pytest.approx(3e-12 / (1 + 3e-12), rel=1e-3)
    assert r.worst_beta_variant == "1:100:A:G"
    assert r.tolerance == 1e-10 and r.within_tolerance is True


def test_compare_same_model__a_difference_above_1e10_fails_the_quantitative_claim_and_binary_makes_none():
    worse = IND.with_columns(pl.when(pl.col("base_pair_location") == 100).then(0.5 + 1e-8)
                             .otherwise(pl.col("beta")).alias("beta"))
    r = compare_same_model(FED, worse, trait_type="quantitative")
    assert r.within_tolerance is False and r.max_rel_beta == pytest.approx(2e-8, rel=1e-6)
    b = compare_same_model(FED, worse, trait_type="binary")
    assert b.tolerance is None and b.within_tolerance is None and b.max_rel_beta == r.max_rel_beta


def test_compare_same_model__beta_scaled_by_se_where_beta_is_near_zero():
    f = _table([(1, 100, "A", "G", 1e-9, 0.1, 0.99, 50)])
    i = _table([(1, 100, "A", "G", 2e-9, 0.1, 0.99, 50)])
    assert compare_same_model(f, i, trait_type="binary").max_rel_beta == pytest.approx(1e-8)


def test_compare_same_model__underflowed_p_compared_through_neg_log10_p():
    f = _table([(1, 100, "A", "G", 3.0, 0.05, 0.0, 50, 700.0)])
    i = _table([(1, 100, "A", "G", 3.0, 0.05, 0.0, 50, 700.0 + 1e-11)])
    r = compare_same_model(f, i, trait_type="quantitative")
    assert r.max_rel_p == pytest.approx(np.log(10) * 1e-11, rel=1e-3)
    with pytest.raises(InputError, match="no neg_log_10_p_value"):
        compare_same_model(f.with_columns(pl.lit(None, pl.Float64).alias("neg_log_10_p_value")), i,
                           trait_type="quantitative")


def test_compare_same_model__a_variant_twice_is_an_input_error_naming_it():
    twice = pl.concat([FED, FED.head(1)])
    with pytest.raises(InputError, match=r"federated table: variant 1:100:A:G appears 2 times"):
        compare_same_model(twice, IND, trait_type="quantitative")


def test_compare_cli_same_model__writes_the_json_and_refuses_mixed_or_missing_options(tmp_path, capsys):
    f, i = _write(FED, tmp_path / "fed.tsv"), _write(IND, tmp_path / "ind.tsv")
    out = tmp_path / "same.json"
    assert main(["compare", "--federated", str(f), "--individual", str(i), "--trait-type", "quantitative",
                 "--out", str(out)]) == 0
    got = json.loads(out.read_text())
    assert got["n_compared"] == 2 and got["federated"] == str(f) and got["within_tolerance"] is True
    assert main(["compare", "--federated", str(f), "--individual", str(i), "--out", str(out)]) == 2
    assert "needs --trait-type" in capsys.readouterr().err
    assert main(["compare", "--federated", str(f), "--individual", str(i), "--trait-type", "binary",
                 "--out", str(out), "--meta", str(f)]) == 2
    assert "--meta belong to the meta-vs-pooled mode" in capsys.readouterr().err
    assert main(["compare", "--federated", str(f), "--individual", str(tmp_path / "absent.tsv"),
                 "--trait-type", "binary", "--out", str(out)]) == 2
    assert "absent.tsv" in capsys.readouterr().err
    assert main(["compare", "--meta", str(f), "--pooled", str(i), "--out-prefix", str(tmp_path / "x"),
                 "--out", str(out)]) == 2
    assert "--out belong to the same-model mode" in capsys.readouterr().err
    assert main(["compare", "--pooled", str(i), "--out-prefix", str(tmp_path / "x")]) == 2
    assert "compare: --meta required" in capsys.readouterr().err


def _qc(tmp_path: Path, cohort: str, samples: list[str], variants: list[str]) -> Path:
    prefix = tmp_path / cohort / "qc"
    prefix.parent.mkdir()
    Path(f"{prefix}.samples.keep").write_text("#FID\tIID\n" + "".join(f"{s}\t{s}\n" for s in samples))
    Path(f"{prefix}.variants.keep").write_text("".join(f"{v}\n" for v in variants))
    Path(f"{prefix}.ledger.json").write_text(json.dumps(
        {"stage": "qc", "cohort": cohort, "unit": "samples", "n_in": len(samples) + 1, "n_kept": len(samples),
         "removed": {"mind": 1}}))
    return prefix


def test_pool_qc__intersection_keeps_what_every_cohort_kept_and_the_ledger_adds_up(tmp_path):
    bim = tmp_path / "c.bim"
    bim.write_text("".join(f"1\tv{k}\t0\t{k * 10 + 1}\tA\tG\n" for k in range(6)))
    prefixes = {"a": _qc(tmp_path, "a", ["a1", "a2"], ["v0", "v1", "v2", "v4"]),
                "b": _qc(tmp_path, "b", ["b1"], ["v1", "v2", "v3"])}
    samples, union, ledgers = pool_qc(prefixes, bim=bim)
    assert union == ["v0", "v1", "v2", "v3", "v4"] and samples.height == 3
    samples, both, ledgers = pool_qc(prefixes, bim=bim, variants="intersection")
    assert both == ["v1", "v2"]
    variants = next(lg for lg in ledgers if lg.unit == "variants")
    assert variants.removed == {"failed_qc_in_every_cohort": 1, "failed_qc_in_a_cohort": 3}
    assert variants.n_in == 6 and variants.n_kept == 2
    assert main(["pool", "--qc", *(f"{c}={p}" for c, p in prefixes.items()), "--variants", "intersection",
                 "--bim", str(bim), "--out-qc-prefix", str(tmp_path / "out" / "qc")]) == 0
    assert (tmp_path / "out" / "qc.variants.keep").read_text() == "v1\nv2\n"


def test_pool_specific__a_cohort_given_twice_has_its_tables_joined(tmp_path, capsys):
    def tsv(name: str, text: str) -> str:
        (tmp_path / name).write_text(text)
        return str(tmp_path / name)

    pheno = {c: tsv(f"{c}.pheno", f"#FID\tIID\ty\n{c}1\t{c}1\t1.5\n{c}2\t{c}2\t2.5\n") for c in "ab"}
    covar = {c: tsv(f"{c}.covar", f"#FID\tIID\tage\n{c}1\t{c}1\t40\n{c}2\t{c}2\t50\n") for c in "ab"}
    pcs = {c: tsv(f"{c}.pcs", f"#FID\tIID\tPC1\n{c}1\t{c}1\t0.1\n") for c in "ab"}  # {c}2 has no PC
    args = ["pool", "--pheno", *(f"{c}={p}" for c, p in pheno.items()),
            "--covar", *(f"{c}={p}" for c, p in covar.items()),
            "--out-pheno", str(tmp_path / "p.tsv"), "--out-covar", str(tmp_path / "c.tsv"), "--specific"]
    assert main([*args, f"a={covar['a']}", f"a={pcs['a']}", f"b={covar['b']}", f"b={pcs['b']}"]) == 0
    got = pl.read_csv(tmp_path / "c.tsv", separator="\t", infer_schema=False)
    assert got.columns == ["#FID", "IID", "age", "cohort_b", "age_a", "PC1_a", "age_b", "PC1_b"]
    assert got.row(0) == ("a1", "a1", "40", "0", "40", "0.1", "0", "0")
    assert got.row(1) == ("a2", "a2", "50", "0", "50", "NA", "0", "0")  # no PC of its own: left out
    assert got.row(3) == ("b2", "b2", "50", "1", "0", "0", "50", "NA")
    assert main([*args, f"a={covar['a']}", f"a={covar['a']}"]) == 2
    assert "column(s) ['age'] in two of its cohort-specific tables" in capsys.readouterr().err


def test_pool_fill_missing__extract_copies_those_variants_filled_as_the_whole(tmp_path, capsys):
    from bed_reader import to_bed

    from crosscohort.tre.genotypes import Genotypes

    g = np.array([[0, 2, 1], [np.nan, 2, np.nan], [2, np.nan, 1], [2, 1, 0]], dtype=float)
    ids = [f"s{i}" for i in range(4)]
    to_bed(tmp_path / "c.bed", g, count_A1=True, num_threads=1,
           properties={"fid": ids, "iid": ids, "sid": ["v0", "v1", "v2"], "chromosome": ["1"] * 3,
                       "bp_position": [1, 2, 3]})
    (tmp_path / "ext.txt").write_text("v2\nv0\n")
    assert main(["pool", "--fill-missing", str(tmp_path / "c"), "--out-bfile", str(tmp_path / "all")]) == 0
    assert main(["pool", "--fill-missing", str(tmp_path / "c"), "--extract", str(tmp_path / "ext.txt"),
                 "--out-bfile", str(tmp_path / "sub")]) == 0
    sub, whole = Genotypes([tmp_path / "sub"]), Genotypes([tmp_path / "all"])
    assert sub.variants.get_column("id").to_list() == ["v0", "v2"]  # the input's order
    np.testing.assert_array_equal(sub.read(np.arange(2)), whole.read(np.array([0, 2])))
    assert (tmp_path / "sub.bim").read_text().splitlines() == [
        ln for ln in (tmp_path / "c.bim").read_text().splitlines() if ln.split()[1] in ("v0", "v2")]
    (tmp_path / "bad.txt").write_text("v0\nrs9\n")
    assert main(["pool", "--fill-missing", str(tmp_path / "c"), "--extract", str(tmp_path / "bad.txt"),
                 "--out-bfile", str(tmp_path / "bad")]) == 2
    assert "bad.txt: 1 variant ID(s) not in" in capsys.readouterr().err and not (tmp_path / "bad.bed").exists()
