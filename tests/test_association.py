"""Behaviour of the association engine and ``crosscohort assoc``: rows, parts, samples, errors.

Numbers are checked against plink2 and statsmodels in test_association_plink2.py;
here the oracles are invariances (chunking, scatter, stacking, allele swap)
and independent numpy computations.
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from bed_reader import to_bed
from hypothesis import given, settings
from hypothesis import strategies as st

from crosscohort.commands import assoc as assoc_cmd
from crosscohort.contract.errors import InputError
from crosscohort.contract.ledger import Ledger
from crosscohort.contract.sumstats import read_sumstats
from crosscohort.tre.association import _kernels as K
from crosscohort.tre.association import build_designs, part_slice, run_assoc


def _write_bfile(prefix: Path, g: np.ndarray, fid: list[str], iid: list[str]) -> Path:
    m = g.shape[1]
    to_bed(prefix.with_suffix(".bed"), g, count_A1=True, num_threads=1, properties={
        "fid": fid, "iid": iid, "chromosome": ["3"] * m, "sid": [f"v{j}" for j in range(m)],
        "bp_position": np.arange(1, m + 1) * 100, "allele_1": ["A"] * m, "allele_2": ["G"] * m,
    })
    return prefix


def _table(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    path.write_text("\t".join(header) + "\n" + "".join("\t".join(map(str, r)) + "\n" for r in rows))
    return path


@pytest.fixture
def small(tmp_path: Path) -> dict[str, object]:
    """200 samples x 40 variants; variant 0 monomorphic, variant 1 nearly all missing, missing calls."""
    rng = np.random.default_rng(7)
    n, m = 200, 40
    g = rng.binomial(2, rng.uniform(0.05, 0.5, m), size=(n, m)).astype(float)
    g[rng.random((n, m)) < 0.03] = np.nan
    g[:, 0] = 2.0
    g[3:, 1] = np.nan
    fid = [f"f{i}" for i in range(n)]
    iid = [f"s{i}" for i in range(n)]
    prefix = _write_bfile(tmp_path / "g", g, fid, iid)
    age, pc1 = rng.normal(40, 5, n), rng.normal(size=n)
    dose = np.nan_to_num(g[:, 5])
    qt = 0.3 * dose + 0.05 * age + rng.normal(size=n)
    bt = 1 + (rng.random(n) < 1 / (1 + np.exp(-(0.5 * dose - 0.5)))).astype(int)
    pheno = _table(tmp_path / "p.tsv", ["#FID", "IID", "qt", "bt"],
                   [[fid[i], iid[i], f"{qt[i]:.5f}", bt[i]] for i in range(n)])
    covar = _table(tmp_path / "c.tsv", ["#FID", "IID", "age", "pc1"],
                   [[fid[i], iid[i], f"{age[i]:.3f}", f"{pc1[i]:.5f}"] for i in range(n)])
    return {"prefix": prefix, "pheno": pheno, "covar": covar, "g": g, "fid": fid, "iid": iid,
            "age": age, "pc1": pc1, "dir": tmp_path}


def _run(small, **kw):
    return run_assoc([small["prefix"]], small["pheno"], covar=[small["covar"]], **kw)


def _assert_same(got: pl.DataFrame, ref: pl.DataFrame, rtol: float = 1e-10) -> None:
    """Same rows and columns; floats equal up to BLAS summation order, the rest exactly."""
    assert got.columns == ref.columns and got.height == ref.height
    for c in ref.columns:
        if ref[c].dtype == pl.Float64:
            np.testing.assert_allclose(got[c].to_numpy(), ref[c].to_numpy(), rtol=rtol, err_msg=c)
        else:
            assert got[c].to_list() == ref[c].to_list(), c


def test_assoc__every_variant_gets_a_row_and_unfittable_ones_an_error_code(small):
    res = _run(small)
    for trait in ("qt", "bt"):
        t = res.tables[trait]
        assert t.height == 40
        assert t["rsid"].to_list() == [f"v{j}" for j in range(40)]
        assert t.row(0, named=True)["error_code"] == "CONST_ALLELE"
        assert t.row(1, named=True)["error_code"] == "TOO_FEW_SAMPLES"
        assert t[:2]["beta"].null_count() == 2
        assert t[2:]["error_code"].null_count() == 38
    assert "n_cases" in res.tables["bt"].columns and "n_cases" not in res.tables["qt"].columns


def test_assoc__allele_counts_and_frequency_match_numpy(small):
    t = _run(small).tables["qt"]
    g = small["g"]
    n = (~np.isnan(g)).sum(axis=0)
    alt = np.nansum(g, axis=0)
    assert t["n"].to_list() == n.tolist()
    np.testing.assert_allclose(t["effect_allele_frequency"].to_numpy(), alt / (2 * n), rtol=1e-15)
    np.testing.assert_allclose(t["mac"].to_numpy(), np.minimum(alt, 2 * n - alt), rtol=1e-15)
    row = t.row(7, named=True)
    assert row["variant_id"] == "3:800:G:A" and row["chromosome"] == 3
    assert row["effect_allele"] == "A" and row["other_allele"] == "G"
    assert row["residual_df"] == row["n"] - 4  # intercept, age, pc1, dosage


def test_assoc__output_passes_the_sumstats_contract(small, tmp_path):
    from crosscohort.contract.sumstats import write_sumstats

    t = _run(small).tables["bt"]
    path = write_sumstats(t, tmp_path / "bt.tsv.gz")
    back = read_sumstats(path)
    assert back.height == 40
    # The central side's value rules (harmonisation's, the product path) remove no fitted row.
    from crosscohort.central.harmonise import harmonise_cohort

    fitted = back.filter(pl.col("error_code").is_null())
    kept, ledger = harmonise_cohort(fitted, cohort="bt")
    assert fitted.height > 0 and kept.height == fitted.height
    assert {r: k for r, k in ledger.removed.items() if k} == {}
    np.testing.assert_array_equal(back["beta"].to_numpy(), t["beta"].to_numpy())


@pytest.mark.parametrize("chunk_size", [1, 7])
def test_assoc__chunk_size_does_not_change_results(small, chunk_size):
    ref = _run(small, chunk_size=1000).tables
    got = _run(small, chunk_size=chunk_size).tables
    for trait in ref:
        _assert_same(got[trait], ref[trait])


def test_read_step__caps_the_chunk_by_bytes_with_a_floor():
    from crosscohort.tre.association.engine import read_step

    assert read_step(1000, 200) == 1000  # small cohort: --chunk-size as given
    assert read_step(1000, 20_000) == 16 * 2**20 // (8 * 20_000)  # 104 variants, 16 MiB
    assert read_step(1000, 10_000_000) == 16  # the floor
    assert read_step(5, 10_000_000) == 5  # never more than asked


def test_assoc__byte_capped_chunks_give_the_same_results(small, monkeypatch):
    from crosscohort.tre.association import engine

    ref = _run(small, chunk_size=1000).tables
    log = io.StringIO()
    # 200 samples x 8 bytes x 3 variants: the cap, not --chunk-size, sets the chunk.
    monkeypatch.setattr(engine, "_CHUNK_BYTES", 200 * 8 * 3)
    monkeypatch.setattr(engine, "_MIN_CHUNK", 1)
    got = _run(small, chunk_size=1000, log=log).tables
    assert "3 variants read at a time (--chunk-size 1000 capped" in log.getvalue()
    for trait in ref:
        _assert_same(got[trait], ref[trait])


def test_prepare_chunk__case_counts_match_numpy(small):
    g = small["g"]
    y = (np.random.default_rng(3).random(g.shape[0]) < 0.3).astype(float)
    c = K.prepare_chunk(g, cases=y)
    obs = ~np.isnan(g)
    np.testing.assert_array_equal(c.n_cases, obs.T.astype(float) @ y)
    np.testing.assert_array_equal(c.alt_cases, np.where(obs, g, 0.0).T @ y)
    assert K.prepare_chunk(g).n_cases is None
    with pytest.raises(ValueError, match="one value per sample"):
        K.prepare_chunk(g, cases=y[:-1])


def test_assoc__parts_concatenate_to_the_whole(small):
    whole = _run(small).tables["qt"]
    parts = [_run(small, part=(i, 3), pheno_names=["qt"]).tables["qt"] for i in (1, 2, 3)]
    assert [p.height for p in parts] == [13, 13, 14]
    _assert_same(pl.concat(parts), whole)


@given(st.integers(0, 10_000), st.integers(1, 50))
def test_part_slice__parts_are_contiguous_cover_everything_and_differ_by_at_most_one(m, n):
    slices = [part_slice(m, (i, n)) for i in range(1, n + 1)]
    assert slices[0].start == 0 and slices[-1].stop == m
    assert all(a.stop == b.start for a, b in zip(slices, slices[1:], strict=False))
    sizes = [s.stop - s.start for s in slices]
    assert max(sizes) - min(sizes) <= 1


def test_assoc__stacked_filesets_equal_one_fileset_with_all_samples(small, tmp_path):
    g, fid, iid = small["g"], small["fid"], small["iid"]
    a = _write_bfile(tmp_path / "a", g[:120], fid[:120], iid[:120])
    b = _write_bfile(tmp_path / "b", g[120:], fid[120:], iid[120:])
    stacked = run_assoc([a, b], small["pheno"], covar=[small["covar"]]).tables
    whole = _run(small).tables
    for trait in whole:
        _assert_same(stacked[trait], whole[trait])


def test_assoc__keep_and_extract_restrict_samples_and_variants(small, tmp_path):
    keep = _table(tmp_path / "keep", ["#FID", "IID"], [[small["fid"][i], small["iid"][i]] for i in range(0, 200, 2)])
    extract = tmp_path / "extract"
    extract.write_text("v30\nv4\nnot_there\nv12\n")
    t = _run(small, keep=keep, extract=extract, pheno_names=["qt"]).tables["qt"]
    assert t["rsid"].to_list() == ["v4", "v12", "v30"]  # .bim order, not list order
    g = small["g"][::2][:, [4, 12, 30]]
    assert t["n"].to_list() == (~np.isnan(g)).sum(axis=0).tolist()


def test_assoc__iid_only_covariate_file_matches_on_iid(small, tmp_path):
    rows = [[small["iid"][i], f"{small['age'][i]:.3f}", f"{small['pc1'][i]:.5f}"] for i in range(200)]
    cov = _table(tmp_path / "iid.tsv", ["#IID", "age", "pc1"], rows)
    got = run_assoc([small["prefix"]], small["pheno"], covar=[cov]).tables["qt"]
    _assert_same(got, _run(small).tables["qt"])


def test_assoc__zero_one_declared_binary_equals_one_two_coding(small, tmp_path):
    p = pl.read_csv(small["pheno"], separator="\t").with_columns((pl.col("bt") - 1).alias("bt01"))
    p.select("#FID", "IID", "bt01").write_csv(tmp_path / "p01.tsv", separator="\t")
    ref = _run(small, pheno_names=["bt"]).tables["bt"]
    got = run_assoc([small["prefix"]], tmp_path / "p01.tsv", covar=[small["covar"]],
                    trait_types={"bt01": "binary"}).tables["bt01"]
    _assert_same(got, ref)


def test_assoc__sample_ledger_counts_every_removed_sample(small, tmp_path):
    rows = [[small["fid"][i], small["iid"][i], "NA" if i < 5 else f"{i / 7:.4f}", 1 + i % 2] for i in range(190)]
    pheno = _table(tmp_path / "p2.tsv", ["#FID", "IID", "qt", "bt"], rows)
    cov_rows = [[small["fid"][i], small["iid"][i], "-9" if i == 50 else "1.5" if i % 3 else "2", i % 7]
                for i in range(200)]
    cov = _table(tmp_path / "c2.tsv", ["#FID", "IID", "age", "pc1"], cov_rows)
    res = run_assoc([small["prefix"]], pheno, covar=[cov], pheno_names=["qt"], extract=None)
    led: Ledger = res.ledgers[0]
    assert led.unit == "samples" and led.n_in == 200 and led.n_kept == 184
    assert led.removed == {"not_in_keep": 0, "no_phenotype_line": 10, "phenotype_missing": 5,
                           "no_covariate_line": 0, "covariate_missing": 1}
    variants = res.ledgers[1]
    assert variants.unit == "variants" and variants.n_in == 40 and variants.n_kept == 38
    assert variants.removed == {"CONST_ALLELE": 1, "TOO_FEW_SAMPLES": 1}


# ---------------------------------------------------------------------------- bad input


def test_assoc__no_overlapping_samples_reports_the_counts(small, tmp_path):
    pheno = _table(tmp_path / "other.tsv", ["#FID", "IID", "qt"], [["x", f"y{i}", 1.0 + i] for i in range(30)])
    with pytest.raises(InputError, match=r"no sample has genotype, phenotype and all covariates: "
                                         r"200 genotyped, 0 of them in .*other\.tsv"):
        run_assoc([small["prefix"]], pheno, covar=[small["covar"]])


def test_assoc__non_numeric_phenotype_names_file_and_line(small, tmp_path):
    text = small["pheno"].read_text().splitlines()
    text[4] = text[4].rsplit("\t", 2)[0] + "\tcase\t2"
    bad = tmp_path / "bad.tsv"
    bad.write_text("\n".join(text) + "\n")
    with pytest.raises(InputError, match=r"bad\.tsv, line 5, column 'qt': trait 'qt' values must be numbers.*'case'"):
        run_assoc([small["prefix"]], bad, pheno_names=["qt"], covar=[small["covar"]])
    # not requested (default: every numeric column): a text column is skipped, and said so
    log = io.StringIO()
    result = run_assoc([small["prefix"]], bad, covar=[small["covar"]], log=log)
    assert list(result.tables) == ["bt"]
    assert "text column(s) ['qt'] are not traits" in log.getvalue()


def test_assoc__binary_trait_coded_zero_three_is_an_error_naming_values(small, tmp_path):
    pheno = _table(tmp_path / "p03.tsv", ["#FID", "IID", "cc"],
                   [[small["fid"][i], small["iid"][i], 3 * (i % 2)] for i in range(200)])
    with pytest.raises(InputError, match=r"'cc'.*coded 1/2.*found values 0, 3"):
        run_assoc([small["prefix"]], pheno, covar=[small["covar"]], trait_types={"cc": "binary"})


def test_assoc__constant_covariate_is_named(small, tmp_path):
    cov = _table(tmp_path / "const.tsv", ["#FID", "IID", "age", "batch"],
                 [[small["fid"][i], small["iid"][i], f"{small['age'][i]:.3f}", 4] for i in range(200)])
    with pytest.raises(InputError, match=r"covariate\(s\) \['batch'\] constant among the 200"):
        run_assoc([small["prefix"]], small["pheno"], covar=[cov])


def test_assoc__collinear_covariates_are_named(small, tmp_path):
    age = small["age"]
    rows = [[small["fid"][i], small["iid"][i], f"{age[i]:.2f}", f"{small['pc1'][i]:.5f}",
             f"{2 * round(age[i], 2) + 1:.2f}"] for i in range(200)]
    cov = _table(tmp_path / "col.tsv", ["#FID", "IID", "age", "pc1", "age2"], rows)
    with pytest.raises(InputError, match=r"covariates \['age', 'age2'\] are collinear"):
        run_assoc([small["prefix"]], small["pheno"], covar=[cov])


def test_assoc__fewer_samples_than_parameters_is_an_error(small, tmp_path):
    keep = _table(tmp_path / "k", ["#FID", "IID"], [[small["fid"][i], small["iid"][i]] for i in range(4)])
    with pytest.raises(InputError, match=r"N=4, parameters=4"):
        run_assoc([small["prefix"]], small["pheno"], covar=[small["covar"]], keep=keep, pheno_names=["qt"])


def test_assoc__truncated_bed_reports_the_genotype_reader_message(small):
    bed = small["prefix"].with_suffix(".bed")
    bed.write_bytes(bed.read_bytes()[:-7])
    with pytest.raises(InputError, match=r"g\.bed: \d+ bytes, expected \d+ .*truncated"):
        _run(small)


def test_assoc__unknown_trait_or_covariate_name_is_an_error(small):
    with pytest.raises(InputError, match=r"--pheno-name: no column\(s\) \['nope'\] in .*; columns are"):
        _run(small, pheno_names=["nope"])
    with pytest.raises(InputError, match=r"--covar-name: no column\(s\) \['PC9'\] in .*; columns are"):
        _run(small, covar_names=["age", "PC9"])


def test_build_designs__standardised_design_with_intercept(small):
    from crosscohort.tre.genotypes import Genotypes
    from crosscohort.tre.phenotypes import read_table

    d = build_designs(Genotypes([small["prefix"]]).samples, read_table(small["pheno"]),
                      [read_table(small["covar"])], traits=["qt"], log=io.StringIO())[0]
    assert d.covariate_names == ("age", "pc1")
    np.testing.assert_allclose(d.design[:, 0], 1.0)
    np.testing.assert_allclose(d.design[:, 1:].mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(d.design[:, 1:].std(axis=0), 1.0, rtol=1e-12)


def test_build_designs__keep_ids_not_genotyped_are_counted_in_the_log(small):
    """Before: a --keep ID absent from the .fam vanished from the count with no word."""
    from crosscohort.tre.genotypes import Genotypes
    from crosscohort.tre.phenotypes import read_table

    keep = pl.DataFrame({"fid": [f"f{i}" for i in range(20)] + ["nobody", "nobody2"],
                         "iid": [f"s{i}" for i in range(20)] + ["x", "y"]})
    log = io.StringIO()
    build_designs(Genotypes([small["prefix"]]).samples, read_table(small["pheno"]), [], traits=["qt"],
                  keep=keep, log=log)
    assert "--keep: 20 genotyped samples listed, 2 listed sample(s) not among the genotype samples" in log.getvalue()


# ------------------------------------------------------------------------ kernel properties


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), binary=st.booleans())
def test_kernels__swapping_alleles_negates_beta_and_mirrors_frequency(seed, binary):
    rng = np.random.default_rng(seed)
    n, m = 150, 6
    g = rng.binomial(2, rng.uniform(0.1, 0.5, m), size=(n, m)).astype(float)
    g[rng.random((n, m)) < 0.05] = np.nan
    c = np.column_stack([np.ones(n), rng.normal(size=(n, 2))])
    if binary:
        y = (rng.random(n) < 0.4).astype(float)
        model, fit = K.logistic_model(y, c), K.logistic_chunk
    else:
        y = rng.normal(size=n)
        model, fit = K.linear_model(y, c), K.linear_chunk
    a, b = K.prepare_chunk(g), K.prepare_chunk(2.0 - g)
    fa, fb = fit(model, a), fit(model, b)
    ok = fa.error_code == None  # noqa: E711
    np.testing.assert_allclose(fb.beta[ok], -fa.beta[ok], rtol=1e-8)
    np.testing.assert_allclose(fb.standard_error[ok], fa.standard_error[ok], rtol=1e-8)
    np.testing.assert_allclose(fb.p_value[ok], fa.p_value[ok], rtol=1e-6)
    np.testing.assert_allclose(b.alt_count / (2 * b.n_obs), 1 - a.alt_count / (2 * a.n_obs), rtol=1e-12)


def test_assoc__results_do_not_depend_on_covariate_location_and_scale(small, tmp_path):
    # The same values as c.tsv (as written, 3 and 5 decimals), moved and rescaled.
    rows = [[small["fid"][i], small["iid"][i], f"{1e4 + 1e3 * round(small['age'][i], 3):.6f}",
             f"{-7 + 1e-3 * round(small['pc1'][i], 5):.11f}"] for i in range(200)]
    far = _table(tmp_path / "far.tsv", ["#FID", "IID", "age", "pc1"], rows)  # year-of-birth-like
    ref = _run(small).tables
    got = run_assoc([small["prefix"]], small["pheno"], covar=[far]).tables
    for trait in ref:
        _assert_same(got[trait], ref[trait], rtol=1e-8)


def test_kernels__logistic_separated_variant_is_flagged_not_estimated():
    rng = np.random.default_rng(11)
    n = 200
    y = (rng.random(n) < 0.5).astype(float)
    g = rng.binomial(2, 0.3, size=(n, 2)).astype(float)
    g[:, 1] = np.where(y == 1, 1.0, 0.0)  # carriers are exactly the cases: complete separation
    fit = K.logistic_chunk(K.logistic_model(y, np.ones((n, 1))), K.prepare_chunk(g))
    assert fit.error_code[0] is None and np.isfinite(fit.beta[0])
    assert fit.error_code[1] == "LOGISTIC_CONVERGE_FAIL" and np.isnan(fit.beta[1])


# ------------------------------------------------------------------------------------ CLI


def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="crosscohort")
    sub = parser.add_subparsers(dest="command", required=True)
    assoc_cmd.register(sub)
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_assoc__writes_one_file_per_trait_and_the_ledger(small, tmp_path, capsys):
    out = tmp_path / "res" / "{trait}.tsv.gz"
    rc = _cli(["assoc", "--bfile", str(small["prefix"]), "--pheno", str(small["pheno"]),
               "--covar", str(small["covar"]), "--chunk-size", "9", "--part", "2/2",
               "--ledger", str(tmp_path / "ledger.json"), "--out", str(out)])
    assert rc == 0
    qt = read_sumstats(tmp_path / "res" / "qt.tsv.gz")
    bt = read_sumstats(tmp_path / "res" / "bt.tsv.gz")
    assert qt.height == bt.height == 20 and qt["rsid"][0] == "v20"
    err = capsys.readouterr().err
    assert "200 genotyped samples" in err and "trait bt: binary" in err
    from crosscohort.contract.ledger import read_ledgers

    assert len(read_ledgers([tmp_path / "ledger.json"])) == 4


def test_cli_assoc__several_traits_need_trait_in_out_path(small, tmp_path):
    with pytest.raises(InputError, match=r"must contain \{trait\}"):
        _cli(["assoc", "--bfile", str(small["prefix"]), "--pheno", str(small["pheno"]),
              "--covar", str(small["covar"]), "--out", str(tmp_path / "x.tsv")])


def test_cli_assoc__parquet_output_and_trait_type_flag(small, tmp_path):
    rc = _cli(["assoc", "--bfile", str(small["prefix"]), "--pheno", str(small["pheno"]),
               "--pheno-name", "qt", "--covar", str(small["covar"]), "--covar-name", "age",
               "--trait-type", "qt=quantitative", "--out", str(tmp_path / "qt.parquet")])
    assert rc == 0
    t = pl.read_parquet(tmp_path / "qt.parquet")
    assert t.height == 40 and t["residual_df"][5] == t["n"][5] - 3


@pytest.mark.parametrize("bad", [["--part", "4/3"], ["--trait-type", "qt=ordinal"], ["--chunk-size", "0"]])
def test_cli_assoc__malformed_options_are_usage_errors(small, tmp_path, bad):
    with pytest.raises(SystemExit) as exc:
        _cli(["assoc", "--bfile", "x", "--pheno", "p", "--out", str(tmp_path / "o.tsv"), *bad])
    assert exc.value.code == 2
