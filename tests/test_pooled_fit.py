"""The federated pooled fit equals the individual-level pooled fit (issue 24).

Product path: ``crosscohort sufficient`` in each cohort, then ``crosscohort
pool-fit`` on the directories. Oracle: statsmodels on the stacked
individual-level data of the small simulated demo, with the same model
(cohort intercepts, shared age and sex, each cohort's own PCs, a missing call
filled with its variant's hard call of the cohort's mean): ``sm.OLS(y, X).fit()`` for the quantitative trait
(1e-10 relative), ``sm.Logit(y, X).fit()`` for the binary trait (the
one-step method's error is measured, not hidden).
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import statsmodels.api as sm
from bed_reader import to_bed

from crosscohort.central.pooled.driver import pool_fit, pool_fit_to_file
from crosscohort.central.pooled.fit import solve_linear
from crosscohort.cli import main
from crosscohort.contract.errors import InputError
from crosscohort.contract.sums import VARIANT_SUFFIX, read_block, write_block
from crosscohort.contract.sumstats import read_sumstats, write_sumstats
from crosscohort.demo.simulate import simulate_demo
from crosscohort.tre.genotypes import Genotypes
from crosscohort.tre.phenotypes import read_table
from crosscohort.tre.sufficient import sufficient_model, variant_sums

COHORTS = ("biobank_eur", "admixed_afr", "biobank_eas")
N_PCS = 3
N_VARIANTS = 60
#: Variants refitted by statsmodels' Logit (0.25 s each at 3,000 samples x 20 columns).
N_LOGIT = 15


def _pcs(prefix: Path, out: Path) -> None:
    """Three PCs of the cohort's common variants (any cohort-specific covariate does for the algebra)."""
    geno = Genotypes([prefix])
    g = geno.read(np.arange(0, geno.n_variants, 20))
    g = np.where(np.isnan(g), np.nanmean(g, axis=0), g)
    keep = g.std(axis=0) > 0.3
    z = (g[:, keep] - g[:, keep].mean(axis=0)) / g[:, keep].std(axis=0)
    u, _, _ = np.linalg.svd(z, full_matrices=False)
    s = geno.samples
    lines = ["#FID\tIID\t" + "\t".join(f"PC{k + 1}" for k in range(N_PCS))]
    lines += [f"{f}\t{i}\t" + "\t".join(f"{v:.6f}" for v in u[r, :N_PCS])
              for r, (f, i) in enumerate(zip(s["fid"], s["iid"], strict=True))]
    out.write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("fedpool")
    sim = simulate_demo(root / "sim", scale="small")
    d = sim.out_dir
    geno = Genotypes([d / COHORTS[0]])
    # Common variants spread over the genome; cohort 2 lacks every 5th (a presence pattern).
    every = np.arange(0, geno.n_variants, 10)
    freq = np.nanmean(geno.read(every), axis=0) / 2
    common = every[(freq > 0.1) & (freq < 0.9)]
    chosen = common[np.linspace(0, common.size - 1, N_VARIANTS).astype(int)]
    ids = geno.variants.get_column("id").to_numpy()[chosen]
    out: dict = {"root": root, "dirs": {}, "ids": ids}
    for j, c in enumerate(COHORTS):
        _pcs(d / c, root / f"{c}.pcs.tsv")
        ext = root / f"{c}.extract"
        ext.write_text("\n".join(ids[k] for k in range(ids.size) if not (j == 1 and k % 5 == 0)) + "\n")
        rc = main(["sufficient", "--bfile", str(d / c), "--pheno", str(d / f"{c}.pheno.tsv"),
                   "--covar", str(d / f"{c}.covar.tsv"), "--covar", str(root / f"{c}.pcs.tsv"),
                   "--extract", str(ext), "--cohort", c, "--out-dir", str(root / "suff" / c)])
        assert rc == 0
        out["dirs"][c] = root / "suff" / c
    out["sim"] = d
    return out


def _stacked(demo: dict, trait: str) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray], list[str]]:
    """Individual-level y, the design without the dosage, filled dosages, cohort of each row."""
    d = demo["sim"]
    ys, designs, doses, labels = [], [], {}, []
    n_spec = len(COHORTS) * (1 + N_PCS + (2 if trait == "cad" else 0))
    offset = 0
    gparts: list[np.ndarray] = []
    for j, c in enumerate(COHORTS):
        geno = Genotypes([d / c])
        t = (geno.samples.select("fid", "iid")
             .join(read_table(d / f"{c}.pheno.tsv"), on=["fid", "iid"], how="left")
             .join(read_table(d / f"{c}.covar.tsv", kind="covariate"), on=["fid", "iid"], how="left")
             .join(read_table(demo["root"] / f"{c}.pcs.tsv", kind="covariate"), on=["fid", "iid"], how="left")
             .with_row_index("_row"))
        t = t.drop_nulls([trait, "age", "sex", *(f"PC{k + 1}" for k in range(N_PCS))])
        rows = t.get_column("_row").to_numpy()
        y = t.get_column(trait).to_numpy().astype(float)
        if trait == "cad":
            y = y - 1.0
        n = y.size
        spec = np.zeros((n, n_spec))
        pcs = t.select([f"PC{k + 1}" for k in range(N_PCS)]).to_numpy()
        age, sex = t.get_column("age").to_numpy(), t.get_column("sex").to_numpy().astype(float)
        if trait == "cad":  # binary: everything cohort-specific
            block = np.column_stack([np.ones(n), age, sex, pcs])
            shared = np.empty((n, 0))
        else:
            block = np.column_stack([np.ones(n), pcs])
            shared = np.column_stack([age, sex])
        w = block.shape[1]
        spec[:, offset:offset + w] = block
        offset += w
        designs.append(np.column_stack([shared, spec]))
        ys.append(y)
        labels += [c] * n
        idx = geno.variant_index(list(demo["ids"]))
        # The fill: the genotype class nearest the mean over the cohort's genotyped samples
        # (no --keep), halves up; computed here from numpy, not by the product's function.
        g = geno.read(idx)
        g = np.where(np.isnan(g), np.floor(np.nanmean(g, axis=0) + 0.5), g)[rows]
        gparts.append(g)
        if j == 0:
            doses["ids"] = geno.variants.get_column("id").to_numpy()[idx]
    x = np.vstack(designs)
    x = x[:, np.abs(x).sum(axis=0) > 0]
    doses["g"] = gparts
    return np.concatenate(ys), x, doses, labels


def _pooled(demo: dict, trait: str, tmp_path: Path, *extra: str) -> pl.DataFrame:
    out = tmp_path / f"{trait}.pooled.tsv"
    rc = main(["pool-fit", "--trait", trait, *extra, "--out", str(out),
               *(f"{c}={demo['dirs'][c]}" for c in COHORTS)])
    assert rc == 0
    return read_sumstats(out)


def test_pool_fit_linear__equals_statsmodels_ols_on_stacked_demo_to_1e10(demo, tmp_path):
    res = _pooled(demo, "ldl", tmp_path, "--shared", "age,sex")
    y, x, doses, labels = _stacked(demo, "ldl")
    by_id = {r["rsid"]: r for r in res.iter_rows(named=True)}
    lab = np.asarray(labels)
    checked = 0
    for v, vid in enumerate(doses["ids"]):
        r = by_id[vid]
        present = [c for k, c in enumerate(COHORTS) if not (k == 1 and list(demo["ids"]).index(vid) % 5 == 0)]
        rows = np.isin(lab, present)
        g = np.concatenate([doses["g"][k][:, v] for k in range(len(COHORTS))])
        xs = x[rows][:, np.abs(x[rows]).sum(axis=0) > 0]
        fit = sm.OLS(y[rows], np.column_stack([g[rows], xs])).fit()
        assert r["n_studies"] == len(present)
        assert r["n"] == rows.sum()
        assert r["residual_df"] == fit.df_resid
        # beta relative to its own size or its SE, whichever is larger: a beta of 5e-6
        # (SE 0.05) agrees to 2e-15 absolute, 5e-10 of itself but 5e-14 of the SE.
        assert abs(r["beta"] - fit.params[0]) <= 1e-10 * max(abs(fit.params[0]), fit.bse[0])
        np.testing.assert_allclose(r["standard_error"], fit.bse[0], rtol=1e-10)
        np.testing.assert_allclose(r["p_value"], fit.pvalues[0], rtol=1e-10)
        checked += 1
    assert checked == N_VARIANTS


def test_pool_fit_logistic_onestep__error_against_statsmodels_logit_is_small(demo, tmp_path):
    res = _pooled(demo, "cad", tmp_path)
    y, x, doses, labels = _stacked(demo, "cad")
    by_id = {r["rsid"]: r for r in res.iter_rows(named=True)}
    lab = np.asarray(labels)
    ids = list(demo["ids"])
    err_beta, err_se = [], []
    for v, vid in enumerate(doses["ids"][:N_LOGIT]):
        present = [c for k, c in enumerate(COHORTS) if not (k == 1 and ids.index(vid) % 5 == 0)]
        rows = np.isin(lab, present)
        g = np.concatenate([doses["g"][k][:, v] for k in range(len(COHORTS))])
        xs = x[rows][:, np.abs(x[rows]).sum(axis=0) > 0]
        fit = sm.Logit(y[rows], np.column_stack([g[rows], xs])).fit(disp=0, tol=1e-12, maxiter=100)
        err_beta.append(abs(by_id[vid]["beta"] - fit.params[0]) / fit.bse[0])
        err_se.append(abs(by_id[vid]["standard_error"] / fit.bse[0] - 1))
    # The one-step is an approximation; its error grows with the effect. Measured on the small
    # demo (seed 42), these 15 variants: |dbeta| up to 0.22 SE (median 0.0034 SE), SE up to
    # 7.2 % off (median 0.4 %); benchmarks/bench_pooled.py measures more variants.
    print(f"one-step vs logit: max |dbeta|/SE {max(err_beta):.3g}, median {np.median(err_beta):.3g}; "
          f"max |SE/SE_mle - 1| {max(err_se):.3g}, median {np.median(err_se):.3g}")
    assert max(err_beta) < 0.3
    assert max(err_se) < 0.1
    assert np.median(err_beta) < 0.02


def test_solve_linear__allele_flip_and_missing_cohort_match_ols(tmp_path):
    """A cohort coding the other allele, and a variant one cohort lacks, through the file path."""
    rng = np.random.default_rng(5)
    m, blocks_dirs, stack = 12, [], []
    for c, n in enumerate((150, 120, 130)):
        age = rng.normal(40 + 10 * c, 8, n)
        pcs = rng.normal(size=(n, 2))
        g = rng.binomial(2, rng.uniform(0.1, 0.5, m), (n, m)).astype(float)
        g[rng.random((n, m)) < 0.03] = np.nan
        y = 0.03 * age + pcs @ [0.4, -0.3] + 0.2 * np.nan_to_num(g[:, 0]) + rng.normal(size=n) + c
        flip = c == 1
        mod = sufficient_model(y, np.column_stack([age, pcs]), cohort=f"c{c}", trait="t",
                               trait_type="quantitative", covariate_names=["age", "PC1", "PC2"])
        sums = variant_sums(mod, np.asfortranarray(2.0 - g if flip else g))
        keep = np.arange(m) != 3 if c == 2 else np.ones(m, dtype=bool)
        table = pl.DataFrame({
            "chromosome": [1] * m, "base_pair_location": list(range(1, m + 1)),
            "effect_allele": ["C" if flip else "A"] * m, "other_allele": ["A" if flip else "C"] * m,
            **{k: np.asarray(v) for k, v in sums.items()}}).filter(pl.Series(keep))
        d = tmp_path / f"c{c}"

        write_block(mod.block, d / "t.block.json")
        write_sumstats(table, d / f"t{VARIANT_SUFFIX}")
        blocks_dirs.append((d / "t.block.json", d / f"t{VARIANT_SUFFIX}"))
        coded = 2.0 - g if flip else g  # the cohort fills its own coding
        coded = np.where(np.isnan(coded), np.floor(np.nanmean(coded, axis=0) + 0.5), coded)
        stack.append((y, age, pcs, 2.0 - coded if flip else coded, keep))
    res = pool_fit(blocks_dirs, shared=["age"]).table
    assert res.get_column("effect_allele").to_list() == ["A"] * m
    for v in range(m):
        parts = [(k, s) for k, s in enumerate(stack) if s[4][v]]
        n_tot = sum(s[0].size for _, s in parts)
        dummies = np.zeros((n_tot, len(parts)))
        pcs = np.zeros((n_tot, 2 * len(parts)))
        at = 0
        for j, (_, s) in enumerate(parts):
            dummies[at:at + s[0].size, j] = 1
            pcs[at:at + s[0].size, 2 * j:2 * j + 2] = s[2]
            at += s[0].size
        design = np.column_stack([np.concatenate([s[3][:, v] for _, s in parts]), dummies,
                                  np.concatenate([s[1] for _, s in parts]), pcs])
        fit = sm.OLS(np.concatenate([s[0] for _, s in parts]), design).fit()
        row = res.row(v, named=True)
        assert row["n_studies"] == len(parts)
        assert abs(row["beta"] - fit.params[0]) <= 1e-10 * max(abs(fit.params[0]), fit.bse[0])
        np.testing.assert_allclose(row["standard_error"], fit.bse[0], rtol=1e-10)
        np.testing.assert_allclose(row["p_value"], fit.pvalues[0], rtol=1e-10)
    eaf = res.get_column("effect_allele_frequency").to_numpy()
    assert eaf[0] == pytest.approx(sum(np.nansum(s[3][:, 0]) for s in stack) / (2 * 400), rel=1e-12)


def test_solve_linear__shared_covariate_absent_in_a_cohort_is_an_input_error(demo):
    blocks = [read_block(demo["dirs"][c] / "ldl.block.json") for c in COHORTS]
    with pytest.raises(InputError, match=r"shared covariate\(s\) \['bmi'\] not among"):
        solve_linear(blocks, [{"gg": np.ones(1), "gy": np.ones(1)}] * 3, shared=["bmi"])


def test_pool_fit_cli__missing_directory_names_the_file(tmp_path, capsys):
    rc = main(["pool-fit", "--trait", "ldl", "--out", str(tmp_path / "o.tsv"), str(tmp_path / "nowhere")])
    assert rc == 2
    assert "ldl.block.json: no such file" in capsys.readouterr().err


def _two_chromosome_inputs(tmp_path: Path, *, unsorted: bool = False) -> list[tuple[Path, Path]]:
    rng = np.random.default_rng(8)
    m, out = 30, []
    for c, n in enumerate((120, 90)):
        age = rng.normal(50, 9, n)
        g = rng.binomial(2, rng.uniform(0.2, 0.5, m), (n, m)).astype(float)
        y = 0.02 * age + rng.normal(size=n)
        mod = sufficient_model(y, age[:, None], cohort=f"c{c}", trait="t", trait_type="quantitative",
                               covariate_names=["age"])
        chrom = [1] * 12 + [2] * 18 if not (unsorted and c == 1) else [2] * 18 + [1] * 12
        table = pl.DataFrame({"chromosome": chrom, "base_pair_location": list(range(1, m + 1)),
                              "effect_allele": ["A"] * m, "other_allele": ["C"] * m,
                              **{k: np.asarray(v) for k, v in variant_sums(mod, np.asfortranarray(g)).items()}})
        d = tmp_path / f"c{c}"
        write_block(mod.block, d / "t.block.json")
        write_sumstats(table, d / f"t{VARIANT_SUFFIX}")
        out.append((d / "t.block.json", d / f"t{VARIANT_SUFFIX}"))
    return out


def _edit_lines(path: Path, edit) -> None:
    """Rewrite a gzipped table after ``edit`` changed its list of lines in place."""
    lines = gzip.decompress(path.read_bytes()).decode().splitlines(keepends=True)
    edit(lines)
    path.write_bytes(gzip.compress("".join(lines).encode()))


def test_pool_fit__streamed_by_chromosome_in_small_blocks_equals_one_read(tmp_path):
    inputs = _two_chromosome_inputs(tmp_path)
    whole = pool_fit(inputs, shared=["age"]).table
    small = pool_fit(inputs, shared=["age"], block_bytes=300).table
    assert whole.get_column("chromosome").to_list() == [1] * 12 + [2] * 18
    assert small.equals(whole)
    res = pool_fit_to_file(inputs, tmp_path / "o.tsv.gz", shared=["age"], block_bytes=300)
    assert res.n_variants == {"variants": 30, "fitted": 30, "not_estimable": 0}
    back = read_sumstats(tmp_path / "o.tsv.gz")
    np.testing.assert_array_equal(back.get_column("beta").to_numpy(), whole.get_column("beta").to_numpy())


def test_pool_fit__chromosomes_out_of_order_name_the_file(tmp_path):
    inputs = _two_chromosome_inputs(tmp_path, unsorted=True)
    with pytest.raises(InputError, match=r"c1/t\.sufficient\.tsv\.gz: chromosome 1 after 2"):
        pool_fit(inputs, shared=["age"], block_bytes=300)


def test_pool_fit__a_value_that_is_not_a_number_names_its_line_and_column(tmp_path):
    """Sums are read by the contract's block parser: a damaged value names file, line and column."""
    inputs = _two_chromosome_inputs(tmp_path)

    def damage(lines: list[str]) -> None:
        header = lines[0].rstrip("\n").split("\t")
        row = lines[17].rstrip("\n").split("\t")  # line 18 of the file, on chromosome 2
        row[header.index("gy")] = "12,5"
        lines[17] = "\t".join(row) + "\n"

    _edit_lines(inputs[1][1], damage)
    with pytest.raises(InputError, match=r"c1/t\.sufficient\.tsv\.gz: line 18: column gy: '12,5'"):
        pool_fit(inputs, shared=["age"], block_bytes=300)


def test_pool_fit__a_blank_line_in_the_sums_is_no_row_not_a_traceback(tmp_path):
    """A blank line parsed as a row of nulls: pool-fit died on int(NaN) (ValueError), then named
    the line as an empty chromosome. Since the block reader's blank-line rule (7dc5e49: a blank
    line is no row, wherever the blocks are cut) it is no row: the fit is the one without it."""
    inputs = _two_chromosome_inputs(tmp_path)
    whole = pool_fit(inputs, shared=["age"]).table
    _edit_lines(inputs[1][1], lambda lines: lines.insert(10, "\n"))  # becomes line 11
    assert pool_fit(inputs, shared=["age"], block_bytes=300).table.equals(whole)


@pytest.mark.parametrize(("damage", "message"), [
    (lambda raw: raw[: len(raw) // 2], r"t\.sufficient\.tsv\.gz: cannot read header"),  # EOFError before
    (lambda raw: gzip.compress(b"\xef\xbb\xbf" + gzip.decompress(raw)), None),  # 'chromosome missing' before
])
def test_pool_fit__a_cut_gzip_or_a_byte_order_mark_in_the_sums(tmp_path, damage, message):
    """A gzip cut inside the header's stream was an EOFError traceback; a BOM renamed the first column."""
    inputs = _two_chromosome_inputs(tmp_path)
    whole = pool_fit(inputs, shared=["age"]).table
    path = inputs[0][1]
    path.write_bytes(damage(path.read_bytes()))
    if message is None:
        assert pool_fit(inputs, shared=["age"]).table.equals(whole)
    else:
        with pytest.raises(InputError, match=message):
            pool_fit(inputs, shared=["age"])


@pytest.mark.parametrize(("text", "message"), [
    ('{"cohort": "M\xfcnchen"}'.encode("latin-1"), r"t\.block\.json: not a readable cohort block JSON"),
    (b"5", r"t\.block\.json: a cohort block is a JSON object"),
])
def test_pool_fit__a_latin1_or_non_object_block_json_is_an_input_error(tmp_path, text, message):
    """Before: UnicodeDecodeError, and TypeError ('in' on an int), tracebacks from read_block."""
    inputs = _two_chromosome_inputs(tmp_path)
    inputs[0][0].write_bytes(text)
    with pytest.raises(InputError, match=message):
        pool_fit(inputs, shared=["age"])


def _id_table(path: Path, ids: list[str], columns: dict[str, list[str]]) -> Path:
    """A ``#FID IID`` table (FID = IID) of ``columns``, their values already text, one row per id."""
    path.write_text("#FID\tIID\t" + "\t".join(columns) + "\n" + "".join(
        f"{i}\t{i}\t" + "\t".join(v[k] for v in columns.values()) + "\n" for k, i in enumerate(ids)))
    return path


def _sums_and_filled(tmp_path: Path, c: str, *options: str) -> None:
    """A cohort's ``sufficient`` run on its fileset, pheno, covariate and PC files (written by the
    caller as ``{c}.pheno.tsv``, ``{c}.covar.tsv``, ``{c}.pcs.tsv``), and its filled fileset."""
    assert main(["sufficient", "--bfile", str(tmp_path / c), "--pheno", str(tmp_path / f"{c}.pheno.tsv"),
                 "--covar", str(tmp_path / f"{c}.covar.tsv"), "--covar", str(tmp_path / f"{c}.pcs.tsv"),
                 *options, "--cohort", c, "--out-dir", str(tmp_path / "suff" / c)]) == 0
    assert main(["pool", "--fill-missing", str(tmp_path / c), "--out-bfile", str(tmp_path / f"{c}.filled")]) == 0


def test_pool_fit__equals_the_individual_level_pooled_arm_pool_then_assoc(tmp_path):
    """The demo's individual-level arm with the same model: ``pool --fill-missing`` + ``pool --specific``
    + ``assoc`` on the stacked filled filesets equals ``sufficient`` + ``pool-fit``, with missing
    calls (3 %) and samples genotyped but without a phenotype (the fill's reference set is the
    genotyped samples, in both arms)."""
    rng = np.random.default_rng(21)
    m = 25
    freqs = rng.uniform(0.1, 0.5, m)
    args: dict[str, list[str]] = {"pheno": [], "covar": [], "specific": [], "bfile": [], "dirs": []}
    for c, n in (("ca", 150), ("cb", 120), ("cc", 110)):
        g = rng.binomial(2, freqs, size=(n, m)).astype(float)
        g[rng.random((n, m)) < 0.03] = np.nan
        ids = [f"{c}{i}" for i in range(n)]
        to_bed(tmp_path / f"{c}.bed", g, count_A1=True, num_threads=1,
               properties={"fid": ids, "iid": ids, "sex": rng.integers(1, 3, n),
                           "sid": [f"v{j}" for j in range(m)], "chromosome": ["1"] * m,
                           "bp_position": np.arange(m) * 100 + 1, "allele_1": ["A"] * m, "allele_2": ["G"] * m})
        age = rng.normal(45, 10, n)
        sex = rng.integers(1, 3, n)
        pcs = rng.normal(size=(n, 2))
        y = 0.03 * age + 0.2 * sex + pcs @ [0.5, -0.4] + 0.3 * np.nan_to_num(g[:, 2]) + rng.normal(size=n)
        _id_table(tmp_path / f"{c}.pheno.tsv", ids, {"qt": ["NA" if k < 6 else f"{v:.6f}" for k, v in enumerate(y)]})
        _id_table(tmp_path / f"{c}.covar.tsv", ids, {"age": [f"{v:.3f}" for v in age], "sex": [str(v) for v in sex]})
        _id_table(tmp_path / f"{c}.pcs.tsv", ids, {f"PC{j + 1}": [f"{v:.6f}" for v in pcs[:, j]] for j in range(2)})
        _sums_and_filled(tmp_path, c)
        args["pheno"].append(f"{c}={tmp_path / f'{c}.pheno.tsv'}")
        args["covar"].append(f"{c}={tmp_path / f'{c}.covar.tsv'}")
        args["specific"].append(f"{c}={tmp_path / f'{c}.pcs.tsv'}")
        args["bfile"] += ["--bfile", str(tmp_path / f"{c}.filled")]
        args["dirs"].append(str(tmp_path / "suff" / c))
    assert main(["pool-fit", "--trait", "qt", "--shared", "age,sex", "--out", str(tmp_path / "fed.tsv"),
                 *args["dirs"]]) == 0
    assert main(["pool", "--pheno", *args["pheno"], "--covar", *args["covar"], "--specific", *args["specific"],
                 "--out-pheno", str(tmp_path / "pooled.pheno.tsv"),
                 "--out-covar", str(tmp_path / "pooled.covar.tsv")]) == 0
    header = (tmp_path / "pooled.covar.tsv").read_text().splitlines()[0].split("\t")
    assert header == ["#FID", "IID", "age", "sex", "cohort_cb", "cohort_cc", "PC1_ca", "PC2_ca", "PC1_cb",
                      "PC2_cb", "PC1_cc", "PC2_cc"]
    assert main(["assoc", *args["bfile"], "--pheno", str(tmp_path / "pooled.pheno.tsv"),
                 "--covar", str(tmp_path / "pooled.covar.tsv"), "--out", str(tmp_path / "ind.tsv")]) == 0
    fed, ind = read_sumstats(tmp_path / "fed.tsv"), read_sumstats(tmp_path / "ind.tsv")
    assert fed.get_column("variant_id").to_list() == ind.get_column("variant_id").to_list()
    b_f, b_i = fed.get_column("beta").to_numpy(), ind.get_column("beta").to_numpy()
    s_f, s_i = fed.get_column("standard_error").to_numpy(), ind.get_column("standard_error").to_numpy()
    assert np.all(np.abs(b_f - b_i) <= 1e-10 * np.maximum(np.abs(b_i), s_i))
    np.testing.assert_allclose(s_f, s_i, rtol=1e-10)
    np.testing.assert_allclose(fed.get_column("p_value").to_numpy(), ind.get_column("p_value").to_numpy(),
                               rtol=1e-10)
    # The demo's comparator (compare --federated) on the same two tables: every variant compared, within 1e-10,
    # and its maxima are the ones computed here.
    assert main(["compare", "--federated", str(tmp_path / "fed.tsv"), "--individual", str(tmp_path / "ind.tsv"),
                 "--trait-type", "quantitative", "--out", str(tmp_path / "same.json")]) == 0
    same = json.loads((tmp_path / "same.json").read_text())
    assert (same["n_compared"], same["n_union"], same["within_tolerance"]) == (m, m, True)
    p_f, p_i = fed.get_column("p_value").to_numpy(), ind.get_column("p_value").to_numpy()
    assert same["max_rel_beta"] == pytest.approx(np.max(np.abs(b_f - b_i) / np.maximum(np.abs(b_i), s_i)), rel=1e-12)
    assert same["max_rel_se"] == pytest.approx(np.max(np.abs(s_f - s_i) / s_i), rel=1e-12)
    assert same["max_rel_p"] == pytest.approx(np.max(np.abs(p_f - p_i) / p_i), rel=1e-12)


def test_pool_fit_binary__onestep_error_against_the_individual_level_logistic_fit_of_the_same_model(tmp_path):
    """The demo's binary reference: ``pool --specific`` given each cohort's covariate file and PCs
    (every covariate cohort-specific, as the one-step null has them) + ``assoc --no-firth`` on the
    filled filesets, against ``sufficient`` + ``pool-fit``; ``compare --federated`` measures the
    one-step estimator's error (first-order: small against an SE, not 1e-10)."""
    rng = np.random.default_rng(5)
    m = 20
    freqs = rng.uniform(0.15, 0.5, m)
    args: dict[str, list[str]] = {"pheno": [], "covar": [], "specific": [], "bfile": [], "dirs": [], "names": []}
    for j, (c, n) in enumerate((("ca", 400), ("cb", 300))):
        g = rng.binomial(2, freqs, size=(n, m)).astype(float)
        g[rng.random((n, m)) < 0.02] = np.nan
        ids = [f"{c}{i}" for i in range(n)]
        to_bed(tmp_path / f"{c}.bed", g, count_A1=True, num_threads=1,
               properties={"fid": ids, "iid": ids, "sid": [f"v{k}" for k in range(m)], "chromosome": ["1"] * m,
                           "bp_position": np.arange(m) * 100 + 1, "allele_1": ["A"] * m, "allele_2": ["G"] * m})
        age, pcs = rng.normal(50, 8, n), rng.normal(size=(n, 2))
        eta = -0.5 + 0.3 * j + 0.02 * (age - 50) + pcs @ [0.4, -0.3] + 0.3 * np.nan_to_num(g[:, 1])
        y = 1 + (rng.random(n) < 1 / (1 + np.exp(-eta)))
        _id_table(tmp_path / f"{c}.pheno.tsv", ids, {"bt": [str(v) for v in y]})
        _id_table(tmp_path / f"{c}.covar.tsv", ids, {"age": [f"{v:.3f}" for v in age]})
        _id_table(tmp_path / f"{c}.pcs.tsv", ids, {f"PC{j + 1}": [f"{v:.6f}" for v in pcs[:, j]] for j in range(2)})
        _sums_and_filled(tmp_path, c, "--trait-type", "bt=binary")
        args["pheno"].append(f"{c}={tmp_path / f'{c}.pheno.tsv'}")
        args["covar"].append(f"{c}={tmp_path / f'{c}.covar.tsv'}")
        args["specific"] += [f"{c}={tmp_path / f'{c}.covar.tsv'}", f"{c}={tmp_path / f'{c}.pcs.tsv'}"]
        args["names"] += [f"{x}_{c}" for x in ("age", "PC1", "PC2")] + ([f"cohort_{c}"] if j else [])
        args["bfile"] += ["--bfile", str(tmp_path / f"{c}.filled")]
        args["dirs"].append(str(tmp_path / "suff" / c))
    assert main(["pool-fit", "--trait", "bt", "--out", str(tmp_path / "fed.tsv"), *args["dirs"]]) == 0
    assert main(["pool", "--pheno", *args["pheno"], "--covar", *args["covar"], "--specific", *args["specific"],
                 "--out-pheno", str(tmp_path / "p.tsv"), "--out-covar", str(tmp_path / "c.tsv")]) == 0
    assert main(["assoc", *args["bfile"], "--pheno", str(tmp_path / "p.tsv"), "--trait-type", "bt=binary",
                 "--covar", str(tmp_path / "c.tsv"), "--covar-name", ",".join(args["names"]), "--no-firth",
                 "--out", str(tmp_path / "ind.tsv")]) == 0
    assert main(["compare", "--federated", str(tmp_path / "fed.tsv"), "--individual", str(tmp_path / "ind.tsv"),
                 "--trait-type", "binary", "--out", str(tmp_path / "same.json")]) == 0
    same = json.loads((tmp_path / "same.json").read_text())
    assert same["n_compared"] == m and same["tolerance"] is None
    # One step from the null: beta within a small fraction of an SE, not equal (else the test says nothing).
    assert 1e-8 < same["max_rel_beta"] < 0.1 and same["max_rel_se"] < 0.05, same


def test_pool_fit__blocks_of_different_traits_are_an_input_error(tmp_path):
    inputs = _two_chromosome_inputs(tmp_path)
    block = json.loads(inputs[1][0].read_text())
    block["trait"] = "other"
    inputs[1][0].write_text(json.dumps(block))
    with pytest.raises(InputError, match=r"different traits or trait types: \[\('other', 'quantitative'\), "
                                         r"\('t', 'quantitative'\)\]"):
        pool_fit(inputs)


def test_read_block__wrong_matrix_shape_names_the_file_and_key(tmp_path):
    inputs = _two_chromosome_inputs(tmp_path)
    block = json.loads(inputs[0][0].read_text())
    block["xx"] = [[1.0, 2.0], [2.0, 1.0]]
    inputs[0][0].write_text(json.dumps(block))
    with pytest.raises(InputError, match=r"c0/t\.block\.json: 'xx' must have shape \(1, 1\)"):
        read_block(inputs[0][0])


def test_pool_fill_missing__keep_sets_the_fill_and_the_input_is_never_overwritten(tmp_path, capsys):
    """The fill is the hard call of the mean over the --keep samples only; the output cannot be the input."""
    g = np.array([[0, 2], [0, 2], [2, 1], [np.nan, np.nan], [2, 0]], dtype=float)
    ids = [f"s{i}" for i in range(5)]
    to_bed(tmp_path / "c.bed", g, count_A1=True, num_threads=1,
           properties={"fid": ids, "iid": ids, "sid": ["v0", "v1"], "chromosome": ["1", "1"], "bp_position": [1, 2]})
    (tmp_path / "keep.txt").write_text("s0 s0\ns1 s1\ns3 s3\n")  # means over s0, s1: 0 and 2
    assert main(["pool", "--fill-missing", str(tmp_path / "c"), "--out-bfile", str(tmp_path / "all")]) == 0
    assert main(["pool", "--fill-missing", str(tmp_path / "c"), "--keep", str(tmp_path / "keep.txt"),
                 "--out-bfile", str(tmp_path / "kept")]) == 0
    # All samples: means 1.0 and 1.25 -> 1 and 1; kept s0, s1: 0 and 2.
    np.testing.assert_array_equal(Genotypes([tmp_path / "all"]).read(np.arange(2))[3], [1.0, 1.0])
    np.testing.assert_array_equal(Genotypes([tmp_path / "kept"]).read(np.arange(2))[3], [0.0, 2.0])
    np.testing.assert_array_equal(Genotypes([tmp_path / "kept"]).read(np.arange(2))[[0, 1, 2, 4]], g[[0, 1, 2, 4]])
    before = (tmp_path / "c.bed").read_bytes()
    assert main(["pool", "--fill-missing", str(tmp_path / "c"), "--out-bfile", str(tmp_path / "c")]) == 2
    assert "must not replace its input" in capsys.readouterr().err
    assert (tmp_path / "c.bed").read_bytes() == before


def test_pool_fit__next_chromosome_not_read_while_the_current_one_is_fitted(tmp_path, monkeypatch):
    """Memory follows one chromosome: when chromosome 1 is fitted, no cohort has read chromosome 2
    beyond the parse block holding its first row (issue 24; before, every cohort's whole next
    chromosome was read before the current one was fitted)."""
    import crosscohort.central.pooled.driver as driver

    inputs = _two_chromosome_inputs(tmp_path)  # per cohort 12 rows on chromosome 1, 18 on chromosome 2
    rows_read: list[int] = []
    at_first_fit: list[list[int]] = []
    real_fit = driver._fit_part

    class CountedBlocks(driver.Blocks):
        def __iter__(self):
            k = len(rows_read)
            rows_read.append(0)
            for block in super().__iter__():
                rows_read[k] += block.data.count(b"\n")
                yield block

    def recorded_fit(*args, **kwargs):
        at_first_fit.append(list(rows_read))
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(driver, "Blocks", CountedBlocks)
    monkeypatch.setattr(driver, "_fit_part", recorded_fit)
    res = pool_fit_to_file(inputs, tmp_path / "o.tsv", shared=["age"], block_bytes=300)
    assert res.n_variants["variants"] == 30
    assert rows_read == [30, 30]  # everything was read in the end
    first = at_first_fit[0]
    assert len(first) == 2 and all(12 <= r <= 12 + 3 for r in first), first

