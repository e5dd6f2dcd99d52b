"""Adversarial tests of the sufficient-statistics gate: the recovery attacks it must refuse.

Each attack is first shown to work on the sums *before* the gate (so a test
cannot pass because the attack was wrong), then shown to find no count in
1..min_count in what the gate releases.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml
from bed_reader import to_bed

from crosscohort.cli import main
from crosscohort.contract.release import GateRules
from crosscohort.contract.release_sums import NOT_COVERED, gate_sufficient
from crosscohort.tre.sufficient import sufficient_model, variant_sums

MIN_COUNT = 20
RULES = GateRules(min_count=MIN_COUNT, min_mac=20, min_mac_group=20)
N = 400


def _table(sums: dict[str, np.ndarray]) -> pl.DataFrame:
    m = len(sums["n"])
    keys = {"chromosome": [1] * m, "base_pair_location": list(range(1, m + 1)),
            "effect_allele": ["A"] * m, "other_allele": ["C"] * m}
    return pl.DataFrame({**keys, **{k: np.asarray(v) for k, v in sums.items()}})


def _hom_alt_genotypes(rng: np.random.Generator, hom_alt: list[int], het: int = 120) -> np.ndarray:
    """Hard calls with exactly ``hom_alt[j]`` homozygous-ALT people and ``het`` heterozygotes."""
    g = np.zeros((N, len(hom_alt)))
    for j, h in enumerate(hom_alt):
        who = rng.permutation(N)
        g[who[:h], j] = 2
        g[who[h:h + het], j] = 1
    return g


def _attack_hom_alt(df: pl.DataFrame) -> np.ndarray:
    """An outsider's homozygous-ALT count from the released gg, sum_g and n (hard calls)."""
    n = df.get_column("n").to_numpy().astype(float)
    s = df.get_column("sum_g").to_numpy()
    gg_raw = df.get_column("gg").to_numpy() + s * s / n
    return (gg_raw - s) / 2


@pytest.fixture
def quantitative():
    rng = np.random.default_rng(11)
    age = rng.normal(50, 10, N)
    sex = np.where(np.arange(N) < N // 2, 1.0, 2.0)
    x = np.column_stack([age, sex])
    y = 0.02 * age + rng.normal(size=N)
    return rng, x, y


def test_hom_alt_counts__recoverable_before_gate_and_never_1_to_min_count_after(quantitative):
    rng, x, y = quantitative
    hom = [0, 1, 3, 20, 21, 40, 7]
    g = _hom_alt_genotypes(rng, hom)
    model = sufficient_model(y, x, cohort="c", trait="t", trait_type="quantitative",
                             covariate_names=["age", "sex"])
    table = _table(variant_sums(model, np.asfortranarray(g)))
    # The attack works on the raw sums: exact homozygous counts.
    np.testing.assert_allclose(_attack_hom_alt(table), hom, atol=1e-6)
    res = gate_sufficient(model.block, table, rules=RULES, cohort="c")
    released = res.released
    recovered = np.rint(_attack_hom_alt(released))
    assert not np.any((recovered >= 1) & (recovered <= MIN_COUNT))
    assert sorted(recovered.tolist()) == [0.0, 21.0, 40.0]
    assert res.ledger.removed["sufficient_genotype_count"] == 4  # 1, 3, 20, 7
    assert not set(released.columns) & {"n_hom_ref", "n_het", "n_hom_alt", "n_missing"}


def test_hom_alt_counts__with_missing_calls_the_internal_counts_still_decide(quantitative):
    rng, x, y = quantitative
    g = _hom_alt_genotypes(rng, [5, 30])
    g[:25, :] = np.nan  # missing calls, mean-imputed: gg no longer gives counts directly
    g[25:30, 0] = 2  # now 5..10 homozygous on variant 0 whatever the attack's algebra
    model = sufficient_model(y, x, cohort="c", trait="t", trait_type="quantitative",
                             covariate_names=["age", "sex"])
    res = gate_sufficient(model.block, _table(variant_sums(model, np.asfortranarray(g))),
                          rules=RULES, cohort="c")
    assert res.released.height == 1
    assert res.ledger.removed["sufficient_genotype_count"] == 1


def test_group_allele_count__derived_from_gx_is_refused_below_min_mac_group(quantitative):
    """Carriers concentrated in one sex: gx(sex) gives the allele count within each sex."""
    rng, x, y = quantitative
    sex = x[:, 1]
    g = np.zeros((N, 3))
    women = np.flatnonzero(sex == 2)
    men = np.flatnonzero(sex == 1)
    # Variant 0: 30 het men, 4 het women (women's MAC 4). Variant 1: 30 + 25. Variant 2: 60 het women, 0 men.
    g[men[:30], 0] = 1
    g[women[:4], 0] = 1
    g[men[:30], 1] = 1
    g[women[:25], 1] = 1
    g[women[:60], 2] = 1
    model = sufficient_model(y, x, cohort="c", trait="t", trait_type="quantitative",
                             covariate_names=["age", "sex"])
    table = _table(variant_sums(model, np.asfortranarray(g)))

    def attack(df: pl.DataFrame) -> np.ndarray:
        n = df.get_column("n").to_numpy().astype(float)
        n_women = float((sex == 2).sum())
        women_alt = df.get_column("gx__sex").to_numpy() / (2 - 1) + n_women * df.get_column("sum_g").to_numpy() / n
        return np.asarray(women_alt)

    np.testing.assert_allclose(attack(table), [4, 25, 60], atol=1e-9)
    res = gate_sufficient(model.block, table, rules=RULES, cohort="c")
    # Variant 0: women's MAC 4; variant 2: men's allele count 0 (MAC 0 < 20).
    assert res.released.get_column("base_pair_location").to_list() == [2]
    assert res.ledger.removed["sufficient_min_mac_group"] == 2


def test_block__covariate_level_of_few_people_refuses_the_trait(quantitative):
    """A 0/1 covariate with 5 ones: x'x would give the sum of age over those 5 people."""
    rng, x, y = quantitative
    smoker = np.zeros(N)
    smoker[:5] = 1
    xs = np.column_stack([x, smoker])
    model = sufficient_model(y, xs, cohort="c", trait="t", trait_type="quantitative",
                             covariate_names=["age", "sex", "smoker"])
    b = model.block
    # The attack on the block: sum of age over the 5 smokers from the centred cross-product.
    age_smokers = b.xx[0, 2] / (1 - 0) + 5 * b.sum_x[0] / b.n
    assert age_smokers == pytest.approx(x[:5, 0].sum(), rel=1e-10)
    g = _hom_alt_genotypes(rng, [40])
    res = gate_sufficient(b, _table(variant_sums(model, np.asfortranarray(g))), rules=RULES, cohort="c")
    assert res.status == "refused" and res.released is None
    assert any("smoker" in r for r in res.reasons)
    assert res.ledger.removed == {"sufficient_block_count": 1}


def test_block__joint_cell_of_two_binary_columns_in_1_to_min_count_refuses(quantitative):
    rng, x, y = quantitative
    a = np.zeros(N)
    a[:200] = 1
    b = np.zeros(N)
    b[195:300] = 1  # a & b: 5 people
    model = sufficient_model(y, np.column_stack([x, a, b]), cohort="c", trait="t",
                             trait_type="quantitative", covariate_names=["age", "sex", "a", "b"])
    g = _hom_alt_genotypes(rng, [40])
    res = gate_sufficient(model.block, _table(variant_sums(model, np.asfortranarray(g))), rules=RULES,
                          cohort="c")
    assert res.status == "refused"
    assert any("a x b" in r for r in res.reasons)


def test_block__count_rounding_cannot_release_exact_sums(quantitative):
    rng, x, y = quantitative
    model = sufficient_model(y, x, cohort="c", trait="t", trait_type="quantitative",
                             covariate_names=["age", "sex"])
    table = _table(variant_sums(model, np.asfortranarray(_hom_alt_genotypes(rng, [40]))))
    res = gate_sufficient(model.block, table, rules=GateRules(round_n=10), cohort="c")
    assert res.status == "refused"
    assert res.reasons[0].startswith("sufficient_round_n")


def test_binary__case_mac_below_min_mac_group_is_suppressed(quantitative):
    rng, x, _ = quantitative
    y = np.zeros(N)
    y[:100] = 1
    g = np.zeros((N, 2))
    g[100:160, 0] = 1
    g[:3, 0] = 1  # 3 case carriers
    g[100:160, 1] = 1
    g[:40, 1] = 1
    model = sufficient_model(y, x, cohort="c", trait="t", trait_type="binary", covariate_names=["age", "sex"])
    res = gate_sufficient(model.block, _table(variant_sums(model, np.asfortranarray(g))), rules=RULES,
                          cohort="c")
    assert res.released.get_column("base_pair_location").to_list() == [2]
    assert res.ledger.removed["sufficient_min_mac_group"] == 1
    assert "mac_cases" not in res.released.columns


# ------------------------------------------------------------------ through the bundle


def _bfile_and_age(d: Path, g: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Write ``d/c.{bed,bim,fam}`` of ``g`` (people s0.., variants v0.. on chromosome 1) and
    ``d/covar.tsv`` of a drawn age, which is returned."""
    n, m = g.shape
    ids = [f"s{i}" for i in range(n)]
    to_bed(d / "c.bed", g, count_A1=True, num_threads=1,
           properties={"fid": ids, "iid": ids, "sex": rng.integers(1, 3, n),
                       "sid": [f"v{j}" for j in range(m)], "chromosome": ["1"] * m,
                       "bp_position": np.arange(m) * 100 + 1})
    age = rng.normal(50, 8, n)
    (d / "covar.tsv").write_text("#FID\tIID\tage\n" + "".join(f"s{i}\ts{i}\t{age[i]:.2f}\n" for i in range(n)))
    return age


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("gate_sufficient")
    rng = np.random.default_rng(3)
    n, m = 300, 30
    g = rng.binomial(2, rng.uniform(0.2, 0.5, m), size=(n, m)).astype(float)
    g[:, 0] = (np.arange(n) < 3) * 2.0 + (np.arange(n) >= 250)  # 3 homozygous: must be refused
    age = _bfile_and_age(d, g, rng)
    qt = 0.02 * age + 0.3 * g[:, 5] + rng.normal(size=n)
    (d / "pheno.tsv").write_text("#FID\tIID\tqt\n" + "".join(f"s{i}\ts{i}\t{qt[i]:.5f}\n" for i in range(n)))
    common = ["--bfile", str(d / "c"), "--pheno", str(d / "pheno.tsv"), "--covar", str(d / "covar.tsv")]
    # Named as the workflow names them (plink2 lists, as assoc takes them).
    names = ["--pheno-name", "qt", "--covar-name", "age"]
    assert main(["sufficient", *common, *names, "--cohort", "c", "--out-dir", str(d / "suff")]) == 0
    assert main(["assoc", *common, "--out", str(d / "qt.tsv.gz")]) == 0
    return d


def _export(cohort: Path, out: Path, *extra: str) -> int:
    return main(["export", "--cohort", "c", "--sumstats", f"qt={cohort / 'qt.tsv.gz'}",
                 "--trait-type", "qt=quantitative", "--ids-from", str(cohort / "c.fam"), "--build", "GRCh38",
                 "--ancestry", "test", "--config-digest", "abcdef12", *extra, "--out-dir", str(out)])


def test_export__sufficient_released_in_the_bundle_listed_in_manifest_and_verified(cohort, tmp_path):
    out = tmp_path / "c"
    assert _export(cohort, out, "--sufficient", f"qt={cohort / 'suff'}") == 0
    manifest = json.loads((out / "manifest.json").read_text())
    names = {f["path"] for f in manifest["files"]}
    assert {"qt.block.json", "qt.sufficient.tsv.gz"} <= names
    assert manifest["sufficient"] == {"qt": ["qt.block.json", "qt.sufficient.tsv.gz"]}
    block = json.loads((out / "qt.block.json").read_text())
    assert "internal" not in block
    released = pl.read_csv(out / "qt.sufficient.tsv.gz", separator="\t")
    assert "v0" not in released.get_column("rsid").to_list()
    assert not set(released.columns) & {"n_hom_ref", "n_het", "n_hom_alt", "n_missing"}
    audit = json.loads((out / "audit.json").read_text())
    entry = audit["sufficient"]["qt"]
    assert entry["status"] == "released"
    assert entry["rows_in"] == entry["rows_released"] + sum(r["rows_suppressed"] for r in entry["rules"])
    assert "Sufficient statistics" in (out / "audit.md").read_text()
    assert main(["verify", "--bundle", str(out), "--out", str(tmp_path / "v.json")]) == 0


def test_export__off_by_default_no_sufficient_file_leaves(cohort, tmp_path):
    out = tmp_path / "c"
    assert _export(cohort, out) == 0
    assert not list(out.glob("*.sufficient.tsv.gz")) and not list(out.glob("*.block.json"))
    assert "sufficient" not in json.loads((out / "audit.json").read_text())


def test_export__refused_block_releases_no_sums_and_says_why(cohort, tmp_path):
    out = tmp_path / "c"
    # n = 300: with min_count 300 the block's n itself is too small a count.
    assert _export(cohort, out, "--sufficient", f"qt={cohort / 'suff'}", "--min-count", "300",
                   "--min-mac", "1") == 0
    assert not list(out.glob("qt.sufficient.tsv.gz")) and not list(out.glob("qt.block.json"))
    entry = json.loads((out / "audit.json").read_text())["sufficient"]["qt"]
    assert entry["status"] == "refused"
    assert "n (the trait's analysed samples) is at most min_count=300" in entry["reasons"][0]


def test_group_allele_count__two_valued_trait_analysed_as_linear_is_covered_by_gy(quantitative):
    """A 0/1 trait declared quantitative: g'y gives the allele count among the 1s."""
    rng, x, _ = quantitative
    y = np.zeros(N)
    y[150:250] = 1  # 50 men (rows < 200), 50 women
    g = np.zeros((N, 2))
    g[0:30, :] = 1  # men, y = 0
    g[260:320, :] = 1  # women, y = 0
    g[150:153, 0] = 1  # 3 carriers among the 1s; both sexes keep >= 20 alleles
    g[150:190, 1] = 1  # 40 carriers among the 1s
    model = sufficient_model(y, x, cohort="c", trait="t", trait_type="quantitative",
                             covariate_names=["age", "sex"])
    table = _table(variant_sums(model, np.asfortranarray(g)))
    ones_alt = table.get_column("gy").to_numpy() + 100 * table.get_column("sum_g").to_numpy() / N
    np.testing.assert_allclose(ones_alt, [3, 40], atol=1e-9)  # the attack works on the raw sums
    res = gate_sufficient(model.block, table, rules=RULES, cohort="c")
    assert res.released.get_column("base_pair_location").to_list() == [2]
    assert res.ledger.removed["sufficient_min_mac_group"] == 1


# ------------------------------------------------------------------ attacks on what a refusal says


def _numbers_in(text: str) -> set[int]:
    import re

    return {int(t) for t in re.findall(r"(?<![\w.])[0-9]+(?![\w.])", text)}


def test_export__a_refused_block_does_not_release_its_small_counts_in_the_audit(cohort, tmp_path):
    """A refusal must not say the count it refused: n = 300 with min_count 301 is a count 1..min_count.

    Failed before the fix: audit.json said ``"n": 300`` and ``n=300 <= min_count=301``.
    """
    out = tmp_path / "c"
    assert _export(cohort, out, "--sufficient", f"qt={cohort / 'suff'}", "--min-count", "301",
                   "--min-mac", "1") == 0
    entry = json.loads((out / "audit.json").read_text())["sufficient"]["qt"]
    assert entry["status"] == "refused"
    assert "n" not in entry
    assert 300 not in _numbers_in(json.dumps(entry))
    assert 300 not in _numbers_in((out / "audit.md").read_text())
    # A bundle whose sums were refused verifies (its manifest lists no sums files for the trait).
    from crosscohort.central.verify import verify_bundle

    assert json.loads((out / "manifest.json").read_text())["sufficient"] == {"qt": []}
    verify_bundle(out, required=GateRules(min_count=301, min_mac=1))


def test_block__refusal_reasons_name_the_rule_and_column_but_no_count(quantitative):
    """The joint cell of 5 people (a x b): its count must not be in the reason, which is released.

    Failed before the fix: the reason read ``joint cell count(s) [5] in 1..20``.
    """
    rng, x, y = quantitative
    a = np.zeros(N)
    a[:200] = 1
    b = np.zeros(N)
    b[195:300] = 1
    smoker = np.zeros(N)
    smoker[:7] = 1
    model = sufficient_model(y, np.column_stack([x, a, b, smoker]), cohort="c", trait="t",
                             trait_type="quantitative", covariate_names=["age", "sex", "a", "b", "smoker"])
    res = gate_sufficient(model.block, _table(variant_sums(model, np.asfortranarray(_hom_alt_genotypes(rng, [40])))),
                          rules=GateRules(min_count=MIN_COUNT, min_residual_df=N), cohort="c")
    assert res.status == "refused"
    text = " ".join(res.reasons)
    assert "a x b" in text and "smoker" in text and "sufficient_block_df" in text
    # Only thresholds and fixed wording ("1 to", "+ 2"): no 5 (cell), 7 (level), 393 (n - k - 2).
    assert _numbers_in(text) <= {1, 2, MIN_COUNT, N}
    assert "400 " not in text and "n=400" not in text


def _attack_missing_calls(df: pl.DataFrame, *, max_missing: int = 60) -> list[int | None]:
    """An outsider's missing-call count per row: sum_g = alt n / n_obs, alt an integer for hard calls."""
    out = []
    for n, s in zip(df.get_column("n").to_list(), df.get_column("sum_g").to_list(), strict=True):
        fits = [m for m in range(max_missing + 1) if abs(s * (n - m) / n - round(s * (n - m) / n)) < 1e-7]
        out.append(fits[0] if len(fits) == 1 else None)
    return out


def test_missing_calls__count_no_longer_recoverable_from_the_released_sums(quantitative):
    """sum_g = n x (ALT count / calls) gave each variant's missing-call count back exactly.

    Failed before the fix (missing calls filled with the mean, a fraction): the attack returned
    [3, 0, 25], the true counts, on what the gate released. Now a missing call is filled with
    its variant's hard call of the mean, so the sums of a variant with missing calls are exactly
    the sums of one with complete calls (the filled vector): nothing in them can tell m.
    """
    rng, x, y = quantitative
    g = _hom_alt_genotypes(rng, [30, 30, 30], het=101)
    g[:3, 0] = np.nan  # 3 missing calls
    g[:25, 2] = np.nan  # 25 missing calls
    model = sufficient_model(y, x, cohort="c", trait="t", trait_type="quantitative",
                             covariate_names=["age", "sex"])
    sums = variant_sums(model, np.asfortranarray(g))
    res = gate_sufficient(model.block, _table(sums), rules=RULES, cohort="c")
    assert res.released.height == 3
    recovered = _attack_missing_calls(res.released)
    assert recovered[0] != 3 and recovered[2] != 25
    # Released sums are those of a complete-call genotype vector: the missing calls filled
    # with the hard call of each variant's mean (0 here: EAF 0.2), and the counts say so.
    complete = np.where(np.isnan(g), 0.0, g)
    same = variant_sums(model, np.asfortranarray(complete))
    for col in ("sum_g", "gg", "gy", "gx__age", "gx__sex"):
        np.testing.assert_array_equal(sums[col], same[col])
    assert sums["n_missing"].tolist() == [3, 0, 25] and same["n_missing"].tolist() == [0, 0, 0]
    assert sums["n_hom_ref"].tolist() == same["n_hom_ref"].tolist()
    assert "missing-call count of each variant" not in NOT_COVERED


def test_missing_calls__filled_with_the_genotype_class_nearest_the_mean_halves_up():
    from crosscohort.tre.sufficient import hard_call_fill

    g = np.array([[0, 2, 1, 0, np.nan], [1, 2, 2, 1, np.nan], [np.nan, np.nan, np.nan, np.nan, np.nan]])
    # means 0.5 (half: up), 2, 1.5 (up), 0.5, no call (0)
    np.testing.assert_array_equal(hard_call_fill(g), [1.0, 2.0, 2.0, 1.0, 0.0])
    assert hard_call_fill(np.array([[0.0], [0.0], [1.0]])).tolist() == [0.0]


def test_export__sumstats_n_a_few_below_the_sums_exact_n_is_refused(cohort, tmp_path, capsys):
    """The sums release the trait's exact n; sumstats n 3 below it (every variant 3 calls short) count 3 people.

    First (fedpool2) named in the audit as a small difference between traits; now refused outright by
    rule sufficient_sumstats_fill (sumstats beside sums must have their n at every variant).
    """
    df = pl.read_csv(cohort / "qt.tsv.gz", separator="\t", null_values="NA")
    df.with_columns(pl.col("n") - 3).write_csv(tmp_path / "qt.tsv", separator="\t", null_value="NA")
    out = tmp_path / "c"
    assert main(["export", "--cohort", "c", "--sumstats", f"qt={tmp_path / 'qt.tsv'}",
                 "--trait-type", "qt=quantitative", "--ids-from", str(cohort / "c.fam"), "--build", "GRCh38",
                 "--ancestry", "test", "--config-digest", "abcdef12", "--sufficient", f"qt={cohort / 'suff'}",
                 "--out-dir", str(out)]) == 2
    assert "rule sufficient_sumstats_fill: 30 of 30 variants of trait qt" in capsys.readouterr().err
    assert json.loads((out / "audit.json").read_text())["status"] == "blocked"
    assert not list(out.glob("*.tsv.gz"))


def _write_gz(df: pl.DataFrame, path: Path) -> None:
    import gzip

    path.write_bytes(gzip.compress(df.write_csv(separator="\t", null_value="NA").encode()))


def _rehash(out: Path, name: str) -> None:
    import hashlib

    manifest = json.loads((out / "manifest.json").read_text())
    for f in manifest["files"]:
        if f["path"] == name:
            data = (out / name).read_bytes()
            f["sha256"], f["size"] = hashlib.sha256(data).hexdigest(), len(data)
    (out / "manifest.json").write_text(json.dumps(manifest))


def test_verify__released_sums_are_rechecked_not_only_hashed(cohort, tmp_path):
    """Central verify re-checks the sums from released values, as it does the sumstats.

    Failed before: a sums table carrying the internal n_hom_alt column, a row whose released
    sum_g gives MAC 5, or a block carrying its internal counts passed verify
    once the manifest was re-hashed (an unsigned bundle), since only the sumstats were re-checked.
    """
    from crosscohort.central.verify import verify_bundle
    from crosscohort.contract.errors import GateError

    out = tmp_path / "c"
    assert _export(cohort, out, "--sufficient", f"qt={cohort / 'suff'}") == 0
    verify_bundle(out)
    name = "qt.sufficient.tsv.gz"
    good = pl.read_csv(out / name, separator="\t", null_values="NA")
    raw = pl.read_csv(cohort / "suff" / name, separator="\t", null_values="NA")

    def tampered(df: pl.DataFrame) -> str:
        _write_gz(df, out / name)
        _rehash(out, name)
        with pytest.raises(GateError, match=r"qt\.sufficient\.tsv\.gz") as exc:
            verify_bundle(out)
        return str(exc.value)

    assert "columns_outside_allow_list" in tampered(
        good.join(raw.select("base_pair_location", "n_hom_alt"), on="base_pair_location"))
    # A row whose released sum_g gives 5 ALT alleles (MAC 5 < min_mac 20).
    assert "sufficient_min_mac" in tampered(good.with_columns(
        pl.when(pl.int_range(pl.len()) == 0).then(5.0).otherwise(pl.col("sum_g")).alias("sum_g")))
    block = json.loads((cohort / "suff" / "qt.block.json").read_text())
    assert "internal" in block
    _write_gz(good, out / name)
    _rehash(out, name)
    (out / "qt.block.json").write_text(json.dumps(block))
    _rehash(out, "qt.block.json")
    with pytest.raises(GateError, match=r"qt\.block\.json.*internal"):
        verify_bundle(out)


@pytest.mark.parametrize("extra", [(), ("--min-count", "301", "--min-mac", "1"), ("--min-residual-df", "299")])
def test_export__numeric_sample_ids_1_to_n_export_the_sums_without_a_false_block(cohort, tmp_path, extra):
    """PLINK's IDs 1..N (FID 0): the sums' own rule wording ("+ 2", "1 to 20") is not a sample ID.

    Failed before the fix: every export with --sufficient was blocked ("audit.json, key
    sufficient.qt.rules[...].description: holds a sample identifier"), released or refused.
    """
    fam = tmp_path / "numeric.fam"
    fam.write_text("".join(f"0\t{i}\t0\t0\t1\t-9\n" for i in range(1, 301)))
    out = tmp_path / "c"
    assert main(["export", "--cohort", "c", "--sumstats", f"qt={cohort / 'qt.tsv.gz'}",
                 "--trait-type", "qt=quantitative", "--ids-from", str(fam), "--build", "GRCh38",
                 "--ancestry", "test", "--config-digest", "abcdef12", "--sufficient", f"qt={cohort / 'suff'}",
                 *extra, "--out-dir", str(out)]) == 0
    assert json.loads((out / "audit.json").read_text())["status"] == "released"


def test_export__a_numeric_sample_id_in_a_covariate_name_still_blocks(cohort, tmp_path):
    """The fix exempts the gate's fixed wording only: a covariate named after sample 17 is still found."""
    import shutil

    suff = tmp_path / "suff"
    shutil.copytree(cohort / "suff", suff)
    block = json.loads((suff / "qt.block.json").read_text())
    block["covariates"] = ["age_17"]
    (suff / "qt.block.json").write_text(json.dumps(block))
    sums = pl.read_csv(suff / "qt.sufficient.tsv.gz", separator="\t", null_values="NA")
    _write_gz(sums.rename({"gx__age": "gx__age_17"}), suff / "qt.sufficient.tsv.gz")
    fam = tmp_path / "numeric.fam"
    fam.write_text("".join(f"0\t{i}\t0\t0\t1\t-9\n" for i in range(1, 301)))
    out = tmp_path / "c"
    assert main(["export", "--cohort", "c", "--sumstats", f"qt={cohort / 'qt.tsv.gz'}",
                 "--trait-type", "qt=quantitative", "--ids-from", str(fam), "--build", "GRCh38",
                 "--ancestry", "test", "--config-digest", "abcdef12", "--sufficient", f"qt={suff}",
                 "--out-dir", str(out)]) != 0
    audit = json.loads((out / "audit.json").read_text())
    assert audit["status"] == "blocked" and "holds a sample identifier" in audit["reason"]


# ------------------------------------------------------------------ differences between variants


def _pair_differences(g: np.ndarray, cols: list[int]) -> list[int]:
    """People in which each pair of the given variants differs, directly and mirrored (test's own count)."""
    out = []
    for a in range(len(cols)):
        for b in range(a + 1, len(cols)):
            ga, gb = g[:, cols[a]], g[:, cols[b]]
            out += [int((ga != gb).sum()), int((ga != 2 - gb).sum())]
    return out


def test_variant_difference__one_persons_trait_recovered_before_and_refused_after(quantitative):
    """Two variants differing in one person: subtracting their g'y gives that person's y.

    Failed before the rule (no difference check): every variant was released, and the pairs
    (a, b) and (a, near-mirror) differ in 1 and 3 people.
    """
    rng, x, y = quantitative
    a = rng.binomial(2, 0.3, N).astype(float)
    target = int(np.flatnonzero(a == 1)[0])
    b = a.copy()
    b[target] = 0  # differs from a in the target only
    mirror = 2.0 - a
    few = np.flatnonzero(a == 0)[:3]
    mirror[few] = 1.0  # 2 - a except in 3 people
    far = a.copy()
    far[np.flatnonzero(a == 0)[:30]] = 1.0  # differs in 30 > min_count people: releasable
    # a, a copy (0 people: nothing to subtract), then b, the near-mirror and the far one. (A copy
    # of a after b would be withheld too: it differs from b in one person, and the check errs
    # towards withholding whether or not b is released.)
    g = np.column_stack([a, a.copy(), b, mirror, far])
    model = sufficient_model(y, x, cohort="c", trait="t", trait_type="quantitative",
                             covariate_names=["age", "sex"])
    table = _table(variant_sums(model, np.asfortranarray(g)))
    # The attack works on the raw sums: the target's trait and age, exactly.
    gy = table.get_column("gy").to_numpy()
    gx = table.get_column("gx__age").to_numpy()
    assert gy[0] - gy[2] + y.mean() == pytest.approx(y[target], abs=1e-9)
    assert gx[0] - gx[2] + x[:, 0].mean() == pytest.approx(x[target, 0], abs=1e-9)
    res = gate_sufficient(model.block, table, rules=RULES, cohort="c")
    kept = [p - 1 for p in res.released.get_column("base_pair_location").to_list()]
    assert kept == [0, 1, 4]
    assert res.ledger.removed["sufficient_variant_difference"] == 2
    assert not any(1 <= d <= MIN_COUNT for d in _pair_differences(g, kept))
    assert "n_differ" not in res.released.columns


def test_variant_difference__a_pair_across_chunks_is_caught_through_the_cli(tmp_path):
    """``crosscohort sufficient --chunk-size 2`` then ``export``: the window spans chunk boundaries."""
    rng = np.random.default_rng(9)
    n, m = 200, 8
    g = rng.binomial(2, 0.4, size=(n, m)).astype(float)
    g[:, 4] = g[:, 1]
    g[np.flatnonzero(g[:, 1] == 2)[:2], 4] = 1  # variant 4 = variant 1 except in 2 people
    g[5, 6] = np.nan  # a missing call, filled
    ids = [f"s{i}" for i in range(n)]
    to_bed(tmp_path / "c.bed", g, count_A1=True, num_threads=1,
           properties={"fid": ids, "iid": ids, "sex": rng.integers(1, 3, n), "sid": [f"v{j}" for j in range(m)],
                       "chromosome": ["1"] * m, "bp_position": np.arange(m) * 100 + 1})
    age = rng.normal(50, 8, n)
    qt = 0.02 * age + rng.normal(size=n)
    (tmp_path / "p.tsv").write_text("#FID\tIID\tqt\n" + "".join(f"s{i}\ts{i}\t{qt[i]:.5f}\n" for i in range(n)))
    (tmp_path / "c.tsv").write_text("#FID\tIID\tage\n" + "".join(f"s{i}\ts{i}\t{age[i]:.2f}\n" for i in range(n)))
    common = ["--bfile", str(tmp_path / "c"), "--pheno", str(tmp_path / "p.tsv"), "--covar", str(tmp_path / "c.tsv")]
    assert main(["sufficient", *common, "--chunk-size", "2", "--cohort", "c", "--out-dir", str(tmp_path / "s")]) == 0
    raw = pl.read_csv(tmp_path / "s" / "qt.sufficient.tsv.gz", separator="\t")
    assert raw.get_column("n_differ").to_list()[4] == 2
    # The sumstats beside sums fill as the sums do (rule sufficient_sumstats_fill).
    assert main(["assoc", *common, "--missing", "fill", "--out", str(tmp_path / "qt.tsv.gz")]) == 0
    out = tmp_path / "bundle"
    assert main(["export", "--cohort", "c", "--sumstats", f"qt={tmp_path / 'qt.tsv.gz'}",
                 "--trait-type", "qt=quantitative", "--ids-from", str(tmp_path / "c.fam"), "--build", "GRCh38",
                 "--ancestry", "test", "--config-digest", "abcdef12", "--sufficient", f"qt={tmp_path / 's'}",
                 "--min-mac", "1", "--min-mac-group", "0", "--out-dir", str(out)]) == 0
    released = pl.read_csv(out / "qt.sufficient.tsv.gz", separator="\t").get_column("rsid").to_list()
    assert "v4" not in released and "v1" in released
    entry = json.loads((out / "audit.json").read_text())["sufficient"]["qt"]
    rule = [r for r in entry["rules"] if r["rule"] == "sufficient_variant_difference"]
    assert rule and rule[0]["rows_suppressed"] >= 1
    page = (out / "audit.md").read_text()
    assert "No rule on released per-variant linear sums closes this completely" in page
    # The cohort's missing-genotype handling is stated (the "with the handling stated").
    assert "Missing genotype calls: A missing genotype call is filled with its variant's hard call" in page
    assert "hard call of the mean" in entry["missing_calls"]


def test_variant_difference__a_cap_below_min_count_refuses_the_block(quantitative):
    rng, x, y = quantitative
    model = sufficient_model(y, x, cohort="c", trait="t", trait_type="quantitative",
                             covariate_names=["age", "sex"], difference_cap=10)
    table = _table(variant_sums(model, np.asfortranarray(_hom_alt_genotypes(rng, [40]))))
    res = gate_sufficient(model.block, table, rules=RULES, cohort="c")
    assert res.status == "refused"
    assert res.reasons[0].startswith("sufficient_difference_cap") and "--difference-cap 20" in res.reasons[0]


def test_nearest_differences__compiled_kernel_equals_the_plain_count(monkeypatch):
    """Sparse (rare) and dense (common) pairs, mirrors, dosages and ties, across the window's edge."""
    from crosscohort.tre import _differences
    from crosscohort.tre._differences import nearest_differences, nearest_differences_numpy

    monkeypatch.setattr(_differences, "SMALL_WORK", 0)  # the compiled path at this small size

    rng = np.random.default_rng(4)
    n, m = 3000, 160
    freq = np.where(rng.random(m) < 0.5, rng.uniform(0.002, 0.01, m), rng.uniform(0.05, 0.5, m))
    g = rng.binomial(2, freq, size=(n, m)).astype(float)
    for j in range(10, m, 7):  # near-duplicates and near-mirrors of earlier variants
        src = j - rng.integers(1, 30)
        g[:, j] = g[:, src] if j % 2 else 2.0 - g[:, src]
        who = rng.choice(n, rng.integers(1, 40), replace=False)
        g[who, j] = rng.integers(0, 3, who.size)
    g[:, 40] = g[:, 39]  # identical: 0 people
    g[:, 50] = np.round(g[:, 49] * 0.9 + 0.05, 2)  # dosages
    g = np.asfortranarray(g)
    for start, window, cap in ((0, 25, 20), (60, 100, 50), (150, 8, 5)):
        fast = nearest_differences(g, start, window=window, cap=cap)
        np.testing.assert_array_equal(fast, nearest_differences_numpy(g, start, window=window, cap=cap))
    assert (nearest_differences_numpy(g, 0, window=25, cap=20) <= 20).sum() > 5
    calls = np.asfortranarray(np.delete(g, 50, axis=1).astype(np.int8))  # hard calls compared as int8
    np.testing.assert_array_equal(nearest_differences(calls, 30, window=40, cap=20),
                                  nearest_differences_numpy(calls.astype(float), 30, window=40, cap=20))


def test_variant_sums__compiled_fill_and_counts_equal_the_numpy_version(monkeypatch, quantitative):
    """The one-pass kernel (tre/_fill.py) against the numpy path: missing calls, dosages, ties."""
    from crosscohort.tre import sufficient as S
    from crosscohort.tre._differences import DifferenceWindow

    rng, x, y = quantitative
    g = rng.binomial(2, rng.uniform(0.05, 0.6, 40), size=(N, 40)).astype(float)
    g[rng.random(g.shape) < 0.05] = np.nan
    g[:, 7] = np.round(rng.uniform(0, 2, N), 1)  # dosages, some exactly .5 (rounded half to even)
    g[:, 9] = np.nan  # no call at all
    g = np.asfortranarray(g)
    model = sufficient_model(y, x, cohort="c", trait="t", trait_type="quantitative",
                             covariate_names=["age", "sex"])
    prev = np.asfortranarray(rng.binomial(2, 0.3, size=(N, 5)).astype(np.int8))

    def sums() -> dict:
        window = DifferenceWindow(N, window=100, cap=20)
        window.push(prev)
        return variant_sums(model, g, window=window)

    monkeypatch.setattr(S, "_NUMPY_CELLS", 10**12)
    plain = sums()
    monkeypatch.setattr(S, "_NUMPY_CELLS", 0)
    fast = sums()
    assert plain.keys() == fast.keys()
    for key in plain:
        np.testing.assert_array_equal(fast[key], plain[key], err_msg=key)
    assert plain["n_missing"][9] == N and plain["n_hom_ref"][9] == N


def test_difference_window__chunk_by_chunk_equals_the_whole_at_once(monkeypatch):
    """The ring of buffer columns (slots reused, a dosage chunk turning int8 into float64)."""
    from crosscohort.tre import _differences
    from crosscohort.tre._differences import DifferenceWindow, nearest_differences_numpy

    rng = np.random.default_rng(12)
    n, m = 500, 90
    g = rng.binomial(2, rng.uniform(0.01, 0.5, m), size=(n, m)).astype(float)
    for j in range(5, m, 3):
        g[:, j] = g[:, j - rng.integers(1, 12)]
        g[rng.choice(n, rng.integers(1, 25), replace=False), j] = 1.0
    g[:, 61] = np.round(g[:, 60] * 0.8 + 0.1, 1)  # a dosage: the buffer becomes float64 there
    whole = nearest_differences_numpy(g, 0, window=10, cap=20)
    for small_work in (0, 10**12):  # compiled, then numpy
        monkeypatch.setattr(_differences, "SMALL_WORK", small_work)
        win = DifferenceWindow(n, window=10, cap=20)
        parts, at = [], 0
        for c in (7, 3, 16, 1, 30, 33):
            block = g[:, at:at + c]
            parts.append(win.push(block.astype(np.int8) if np.array_equal(block, np.rint(block)) else block))
            at += c
        assert at == m
        np.testing.assert_array_equal(np.concatenate(parts), whole)
    assert (whole <= 20).sum() > 10


def test_export__sums_of_two_traits_one_person_apart_are_not_both_released(tmp_path, capsys):
    """Two traits analysed on 300 and 299 people: their exact sums' n, both released, count one person.

    Failed before: the gate coarsened the sumstats' n (299 for both) and released both traits'
    sums (n 300 and 299), naming the difference in the audit only; the bundle then told the
    person missing one phenotype by subtraction (the demo's admixed_amr bundle: 985 vs 984).
    Now the sums of one trait are refused (rule sufficient_difference_between_traits) and no
    two counts the bundle releases differ by 1 to min_count.
    """
    from crosscohort.central.verify import verify_bundle

    rng = np.random.default_rng(8)
    n, m = 300, 30
    g = rng.binomial(2, rng.uniform(0.2, 0.5, m), size=(n, m)).astype(float)
    age = _bfile_and_age(tmp_path, g, rng)
    qt, qt2 = (0.02 * age + rng.normal(size=n) for _ in range(2))
    (tmp_path / "pheno.tsv").write_text("#FID\tIID\tqt\tqt2\n" + "".join(
        f"s{i}\ts{i}\t{qt[i]:.5f}\t{'NA' if i == 7 else f'{qt2[i]:.5f}'}\n" for i in range(n)))
    common = ["--bfile", str(tmp_path / "c"), "--pheno", str(tmp_path / "pheno.tsv"),
              "--covar", str(tmp_path / "covar.tsv")]
    assert main(["sufficient", *common, "--pheno-name", "qt", "qt2", "--covar-name", "age",
                 "--cohort", "c", "--out-dir", str(tmp_path / "suff")]) == 0
    assert main(["assoc", *common, "--out", str(tmp_path / "{trait}.tsv.gz")]) == 0
    out = tmp_path / "exports" / "c"
    assert main(["export", "--cohort", "c", "--sumstats", f"qt={tmp_path / 'qt.tsv.gz'}",
                 "--sumstats", f"qt2={tmp_path / 'qt2.tsv.gz'}", "--trait-type", "qt=quantitative",
                 "--trait-type", "qt2=quantitative", "--ids-from", str(tmp_path / "c.fam"),
                 "--build", "GRCh38", "--ancestry", "test", "--config-digest", "abcdef12",
                 "--sufficient", f"qt={tmp_path / 'suff'}", "--sufficient", f"qt2={tmp_path / 'suff'}",
                 "--out-dir", str(out)]) == 0
    audit = json.loads((out / "audit.json").read_text())
    manifest = json.loads((out / "manifest.json").read_text())
    released = [json.loads((out / f"{t}.block.json").read_text())["n"]
                for t, files in manifest["sufficient"].items() if files]
    released += [yaml.safe_load((out / f"{t}.meta.yaml").read_text())["sample_size"] for t in ("qt", "qt2")]
    assert not [(a, b) for a in released for b in released if 1 <= abs(a - b) <= MIN_COUNT]
    refused = [t for t, e in audit["sufficient"].items() if e["status"] == "refused"]
    assert refused == ["qt"] and manifest["sufficient"]["qt"] == []
    assert not (out / "qt.block.json").exists() and not (out / "qt.sufficient.tsv.gz").exists()
    assert "sufficient_difference_between_traits" in audit["sufficient"]["qt"]["reasons"][-1]
    assert manifest["sufficient"]["qt2"] and not audit["differences_between_traits"]
    verify_bundle(out)
    # The central pooled fit says which bundle refused the trait's sums, not "no such file".
    assert main(["pool-fit", "--trait", "qt", "--out", str(tmp_path / "p.tsv"), f"c={out}"]) == 2
    err = capsys.readouterr().err
    assert "the export gate refused the sufficient statistics of trait 'qt'" in err and "leave c=" in err
