"""Harmonisation: allele alignment rules, value checks, duplicates, ledgers, CLI."""

from __future__ import annotations

import argparse
import json

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crosscohort.central.harmonise import harmonise, read_reference
from crosscohort.central.harmonise.alleles import complement
from crosscohort.commands import harmonise as harmonise_cmd
from crosscohort.contract.errors import ConfigError
from crosscohort.contract.sumstats import read_sumstats, write_sumstats

COMP = {"A": "T", "T": "A", "C": "G", "G": "C"}


def _row(chrom, pos, ea, oa, beta=0.1, se=0.05, eaf=0.2, p=0.5, n=1000):
    return {"chromosome": str(chrom), "base_pair_location": pos, "effect_allele": ea,
            "other_allele": oa, "beta": beta, "standard_error": se,
            "effect_allele_frequency": eaf, "p_value": p, "n": n}


def _frame(rows):
    return pl.DataFrame(rows, schema={
        "chromosome": pl.String, "base_pair_location": pl.Int64, "effect_allele": pl.String,
        "other_allele": pl.String, "beta": pl.Float64, "standard_error": pl.Float64,
        "effect_allele_frequency": pl.Float64, "p_value": pl.Float64, "n": pl.Int64})


def _ref(rows):
    return pl.DataFrame(rows, schema=["chromosome", "base_pair_location", "ref", "alt",
                                      "alt_frequency"], orient="row")


REF = _ref([
    ("1", 100, "A", "G", 0.2),
    ("1", 200, "C", "T", 0.3),
    ("1", 300, "A", "T", 0.1),   # palindromic, ALT frequency 0.1
    ("1", 400, "C", "G", 0.45),  # palindromic, common
    ("1", 500, "A", "AT", 0.2),  # indel
    ("23", 600, "G", "A", 0.2),
])


def test_harmonise_reference__exact_swap_flip_and_flip_swap():
    df = _frame([
        _row(1, 100, "G", "A", beta=0.1, eaf=0.2),   # exact
        _row(1, 200, "C", "T", beta=0.2, eaf=0.7),   # swapped: effect = REF
        _row(1, 100, "C", "T", beta=0.3, eaf=0.2),   # complement of G/A: flipped
        _row(1, 200, "G", "A", beta=0.4, eaf=0.7),   # complement of C/T: flipped and swapped
    ])
    # Two rows per site would be duplicates; split into cohorts.
    out = harmonise({"a": df[[0, 1]], "b": df[[2, 3]]}, reference=REF)
    a, b = out.tables["a"], out.tables["b"]
    assert a.get_column("effect_allele").to_list() == ["G", "T"]
    assert a.get_column("other_allele").to_list() == ["A", "C"]
    assert a.get_column("beta").to_list() == [0.1, -0.2]
    np.testing.assert_allclose(a.get_column("effect_allele_frequency").to_numpy(), [0.2, 0.3])
    assert b.get_column("effect_allele").to_list() == ["G", "T"]
    assert b.get_column("beta").to_list() == [0.3, -0.4]
    assert out.ledgers["a"].changed == {"allele_swapped": 1, "strand_flipped": 0,
                                        "palindrome_resolved_by_eaf": 0,
                                        "eaf_far_from_reference_flagged": 0}
    assert out.ledgers["b"].changed == {"allele_swapped": 1, "strand_flipped": 2,
                                        "palindrome_resolved_by_eaf": 0,
                                        "eaf_far_from_reference_flagged": 0}
    assert a.get_column("variant_id").to_list() == ["1:100:A:G", "1:200:C:T"]


def test_harmonise_reference__palindrome_resolved_by_eaf_or_dropped():
    df = _frame([
        _row(1, 300, "T", "A", beta=0.1, eaf=0.1),    # labels and EAF agree with the panel
        _row(1, 300, "A", "T", beta=0.2, eaf=0.1, n=5),  # other strand: labels swapped, EAF says keep sign
        _row(1, 400, "G", "C", beta=0.3, eaf=0.45),   # MAF 0.45 > 0.4: ambiguous
    ])
    out = harmonise({"a": df[[0]], "b": df[[1]], "c": df[[2]]}, reference=REF)
    assert out.tables["a"].get_column("beta").to_list() == [0.1]
    # The A/T row reports EAF 0.1 for its "A": that is the panel's T at 0.1, so the
    # cohort is on the other strand and beta keeps its sign.
    assert out.tables["b"].get_column("beta").to_list() == [0.2]
    assert out.tables["b"].get_column("effect_allele").to_list() == ["T"]
    assert out.ledgers["b"].changed["palindrome_resolved_by_eaf"] == 0
    assert out.tables["c"].height == 0
    assert out.ledgers["c"].removed["palindrome_ambiguous"] == 1
    swapped = _frame([_row(1, 300, "A", "T", beta=0.2, eaf=0.9)])  # a true swap
    res = harmonise({"d": swapped}, reference=REF)
    assert res.tables["d"].get_column("beta").to_list() == [-0.2]
    np.testing.assert_allclose(res.tables["d"].get_column("effect_allele_frequency"), [0.1])
    assert res.ledgers["d"].changed["palindrome_resolved_by_eaf"] == 1


def test_harmonise_reference__palindrome_threshold_is_an_option():
    df = _frame([_row(1, 400, "G", "C", beta=0.3, eaf=0.45)])  # panel ALT G at 0.45
    res = harmonise({"a": df}, reference=REF, palindrome_max_maf=0.5)
    assert res.tables["a"].get_column("beta").to_list() == [0.3]


def test_harmonise_reference__indels_never_strand_flipped():
    df = _frame([
        _row(1, 500, "AT", "A", beta=0.1),   # exact
        _row(1, 500, "TA", "T", beta=0.2),   # "complement" of an indel: mismatch, not a flip
    ])
    out = harmonise({"a": df[[0]], "b": df[[1]]}, reference=REF)
    assert out.tables["a"].get_column("beta").to_list() == [0.1]
    assert out.tables["b"].height == 0
    assert out.ledgers["b"].removed["allele_mismatch"] == 1


def test_harmonise_reference__not_in_reference_and_mismatch_counted():
    df = _frame([
        _row(1, 100, "G", "A"),
        _row(1, 101, "G", "A"),   # no panel row here
        _row(1, 200, "G", "T"),   # panel has C/T
        _row("chrX", 600, "A", "G"),
    ])
    out = harmonise({"a": df}, reference=REF, trait="height")
    lg = out.ledgers["a"]
    assert lg.removed["not_in_reference"] == 1
    assert lg.removed["allele_mismatch"] == 1
    assert lg.n_in == 4 and lg.n_kept == 2 and lg.trait == "height"
    assert out.tables["a"].get_column("chromosome").to_list() == [1, 23]


def test_harmonise_values__bad_values_dropped_with_reason_and_na_not_zero():
    rows = [
        _row(1, 10, "G", "A"),                        # good
        _row(1, 11, "G", "A", beta=float("nan")),
        _row(1, 12, "G", "A", beta=None),
        _row(1, 13, "G", "A", se=0.0),
        _row(1, 14, "G", "A", se=None),
        _row(1, 15, "G", "A", p=0.0),                 # p = 0 without -log10 p
        _row(1, 16, "G", "A", p=1.5),
        _row(1, 17, "G", "A", eaf=1.2),
        _row(1, 18, "G", "A", n=0),
        _row("chrUn_gl000220", 19, "G", "A"),
        _row(1, 20, "G", "G"),
        _row(1, 21, "G", "A", eaf=None, n=None),      # NA EAF and n are allowed
    ]
    out = harmonise({"a": _frame(rows)})
    lg = out.ledgers["a"]
    expected = {"bad_value_beta": 2, "bad_value_standard_error": 2, "bad_value_p_value": 2,
                "bad_value_effect_allele_frequency": 1, "bad_value_n": 1,
                "bad_value_chromosome": 1, "bad_value_alleles": 1}
    assert {k: v for k, v in lg.removed.items() if v} == expected
    kept = out.tables["a"]
    assert kept.get_column("base_pair_location").to_list() == [10, 21]
    assert kept.row(1, named=True)["effect_allele_frequency"] is None
    assert kept.row(1, named=True)["n"] is None


def test_harmonise_values__p_zero_allowed_with_neg_log10_p():
    df = _frame([_row(1, 10, "G", "A", p=0.0), _row(1, 11, "G", "A", p=0.0)]).with_columns(
        pl.Series("neg_log_10_p_value", [400.0, None]))
    out = harmonise({"a": df})
    assert out.tables["a"].get_column("base_pair_location").to_list() == [10]
    assert out.ledgers["a"].removed["bad_value_p_value"] == 1


def test_harmonise_duplicates__largest_n_then_smallest_se_kept():
    df = _frame([
        _row(1, 10, "G", "A", beta=0.1, se=0.05, n=900),
        _row(1, 10, "A", "G", beta=-0.2, se=0.06, n=1000),  # same variant once aligned; largest n
        _row(1, 10, "G", "A", beta=0.3, se=0.04, n=1000),   # same n, smaller SE: wins
        _row(1, 11, "G", "A", beta=0.4),
    ])
    out = harmonise({"a": df})
    t = out.tables["a"]
    assert t.height == 2 and out.ledgers["a"].removed["duplicate"] == 2
    assert t.filter(pl.col("base_pair_location") == 10).get_column("beta").to_list() == [0.3]


def test_harmonise_canonical__order_free_byte_order_rule():
    a = _frame([_row(1, 10, "A", "G", beta=0.1, eaf=0.3), _row(1, 20, "AT", "A", beta=0.2)])
    b = _frame([_row(1, 10, "G", "A", beta=-0.1, eaf=0.7), _row(1, 20, "A", "AT", beta=-0.2)])
    out1 = harmonise({"a": a, "b": b})
    out2 = harmonise({"b": b, "a": a})
    for out in (out1, out2):
        for c in ("a", "b"):
            t = out.tables[c]
            assert t.get_column("effect_allele").to_list() == ["G", "AT"]
            assert t.get_column("other_allele").to_list() == ["A", "A"]
            assert t.get_column("beta").to_list() == [-0.1, 0.2]
    assert out1.ledgers["a"].changed == {"allele_swapped": 1}
    assert out1.ledgers["b"].changed == {"allele_swapped": 1}


def test_harmonise_options__bad_palindrome_threshold_and_cohort_name_rejected():
    df = _frame([_row(1, 10, "G", "A")])
    with pytest.raises(ConfigError, match="palindrome_max_maf"):
        harmonise({"a": df}, palindrome_max_maf=0.7)
    with pytest.raises(ConfigError, match="cohort id"):
        harmonise({"a/b": df})


# --- property: re-encoding a cohort harmonises back to the same values -------------

_BASES = "ACGT"


def _base_table(rng: np.random.Generator, m: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """An aligned cohort (effect = ALT) and its panel; a fifth of SNPs palindromic, some indels."""
    chrom = rng.choice([1, 2, 23], size=m)
    pos = np.arange(1, m + 1) * 1000
    ref, alt = [], []
    for i in range(m):
        kind = i % 5
        if kind == 0:
            r = rng.choice(["A", "C"])
            a = COMP[r]            # A/T or C/G
        elif kind == 4:
            r, a = "A", "A" + "".join(rng.choice(list(_BASES), size=2))
        else:
            r, a = rng.choice(list(_BASES), size=2, replace=False)
            if COMP[r] == a:       # keep non-palindromic kinds non-palindromic
                a = next(b for b in _BASES if b not in (r, COMP[r]))
        ref.append(str(r))
        alt.append(str(a))
    af = rng.uniform(0.02, 0.3, size=m)
    af = np.where(rng.random(m) < 0.5, af, 1 - af)
    panel = pl.DataFrame({"chromosome": [str(c) for c in chrom], "base_pair_location": pos,
                          "ref": ref, "alt": alt, "alt_frequency": af})
    cohort = pl.DataFrame({
        "chromosome": chrom.astype(np.int64), "base_pair_location": pos,
        "effect_allele": alt, "other_allele": ref,
        "beta": rng.normal(0, 0.1, m), "standard_error": rng.uniform(0.01, 0.1, m),
        "effect_allele_frequency": af, "p_value": rng.uniform(0.001, 1, m),
        "n": rng.integers(100, 10_000, m),
    })
    return cohort, panel


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), m=st.integers(5, 60))
def test_harmonise_property__reencoded_cohort_harmonises_back_and_ledger_counts_plants(seed, m):
    rng = np.random.default_rng(seed)
    truth, panel = _base_table(rng, m)
    alt = truth.get_column("effect_allele").to_numpy()
    ref = truth.get_column("other_allele").to_numpy()
    pal = np.array([len(a) == 1 and COMP.get(a) == r for a, r in zip(alt, ref, strict=True)])
    snp = np.array([len(a) == 1 and len(r) == 1 for a, r in zip(alt, ref, strict=True)])
    swap = rng.random(m) < 0.5
    flip = snp & (rng.random(m) < 0.5)
    ea = np.where(swap, ref, alt)
    oa = np.where(swap, alt, ref)
    ea = np.array([COMP[a] if f else a for a, f in zip(ea, flip, strict=True)])
    oa = np.array([COMP[a] if f else a for a, f in zip(oa, flip, strict=True)])
    code = truth.get_column("chromosome").to_numpy()
    spellings = {1: ["1", "chr1", "CHR1"], 2: ["2", "chr2"], 23: ["X", "chrX", "23", "chr23"]}
    chrom = [spellings[c][rng.integers(len(spellings[c]))] for c in code]
    beta = truth.get_column("beta").to_numpy()
    eaf = truth.get_column("effect_allele_frequency").to_numpy()
    planted = truth.with_columns(
        pl.Series("chromosome", chrom), pl.Series("effect_allele", ea),
        pl.Series("other_allele", oa), pl.Series("beta", np.where(swap, -beta, beta)),
        pl.Series("effect_allele_frequency", np.where(swap, 1 - eaf, eaf)),
    ).sample(fraction=1.0, shuffle=True, seed=seed % 1000)

    out = harmonise({"c": planted}, reference=panel)
    got = out.tables["c"].sort("base_pair_location")
    want = truth.sort("base_pair_location")
    assert got.height == m
    for col in ("chromosome", "base_pair_location", "effect_allele", "other_allele", "beta",
                "standard_error", "n"):
        assert got.get_column(col).to_list() == want.get_column(col).to_list(), col
    np.testing.assert_allclose(got.get_column("effect_allele_frequency").to_numpy(),
                               want.get_column("effect_allele_frequency").to_numpy(),
                               rtol=0, atol=1e-15)
    lg = out.ledgers["c"]
    assert lg.changed == {
        "allele_swapped": int((swap & ~pal).sum()),
        "strand_flipped": int((flip & ~pal).sum()),
        # A flipped palindrome only looks swapped; beta is negated exactly when it was swapped.
        "palindrome_resolved_by_eaf": int((swap & pal).sum()),
        # Aligned EAFs equal the panel's: a swap or flip never raises the EAF flag.
        "eaf_far_from_reference_flagged": 0,
    }
    assert sum(lg.removed.values()) == 0 and lg.n_kept == m


def test_alleles__complement_is_an_involution_and_null_for_indels():
    s = pl.DataFrame({"a": ["A", "C", "G", "T", "AT", "-"]})
    got = s.select(complement(pl.col("a")).alias("c"), complement(complement(pl.col("a"))).alias("cc"))
    assert got.get_column("c").to_list() == ["T", "G", "C", "A", None, None]
    assert got.get_column("cc").to_list()[:4] == ["A", "C", "G", "T"]


# --- CLI -----------------------------------------------------------------------------

def _run_cli(module, argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    module.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_harmonise_cli__writes_aligned_tables_and_ledger(tmp_path):
    ref_path = tmp_path / "ref.tsv.gz"
    write_sumstats(REF, ref_path)
    a = _frame([_row("chr1", 100, "A", "G", beta=0.5, eaf=0.8), _row(1, 999, "A", "G")])
    write_sumstats(a, tmp_path / "a.tsv")
    b = _frame([_row("1", 200, "T", "C", beta=0.25, eaf=0.3)])
    write_sumstats(b, tmp_path / "b.tsv.gz")
    rc = _run_cli(harmonise_cmd, ["harmonise", "--trait", "ht", "--reference", str(ref_path),
                                  "--out-dir", str(tmp_path / "h"),
                                  f"a={tmp_path / 'a.tsv'}", f"b={tmp_path / 'b.tsv.gz'}"])
    assert rc == 0
    got_a = read_sumstats(tmp_path / "h" / "a.tsv.gz")
    assert got_a.get_column("beta").to_list() == [-0.5]
    assert got_a.get_column("variant_id").to_list() == ["1:100:A:G"]
    ledgers = json.loads((tmp_path / "h" / "ledger.json").read_text())
    assert [lg["cohort"] for lg in ledgers] == ["a", "b"]
    assert ledgers[0]["removed"]["not_in_reference"] == 1
    assert ledgers[0]["n_in"] == 2 and ledgers[0]["trait"] == "ht"
    assert read_reference(ref_path).height == REF.height


def test_harmonise_cli__malformed_cohort_argument_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="COHORT=FILE"):
        _run_cli(harmonise_cmd, ["harmonise", "--trait", "t", "--out-dir", str(tmp_path), "a.tsv"])


def test_harmonise_reference__far_eaf_flagged_counted_and_kept():
    # 40 rows at the panel's first two SNPs' kind (A/G ALT G; C/T ALT T), half of them
    # reported swapped (EAF mirrored), so the flag must look at the aligned EAF.
    rng = np.random.default_rng(11)
    m = 40
    pos = np.arange(1, m + 1) * 10
    af = rng.uniform(0.05, 0.95, m)
    panel = _ref([("1", int(p), "A", "G", float(f)) for p, f in zip(pos, af, strict=True)])
    far = np.zeros(m, dtype=bool)
    far[[3, 7, 8, 20, 33]] = True
    delta = np.where(far, 0.25, 0.15) * np.where(af > 0.5, -1.0, 1.0)  # 0.15 is within 0.2
    eaf = af + delta
    swap = np.arange(m) % 2 == 1
    df = _frame([_row(1, int(p), "A" if s else "G", "G" if s else "A",
                      eaf=float(1 - e if s else e))
                 for p, e, s in zip(pos, eaf, swap, strict=True)])
    out = harmonise({"c": df}, reference=panel)
    t = out.tables["c"]
    assert t.height == m  # flagged, never dropped
    assert t.get_column("flag_eaf_far").to_list() == far.tolist()
    assert out.ledgers["c"].changed["eaf_far_from_reference_flagged"] == far.sum() == 5
    # The threshold is an option: at 0.1 the 0.15 differences are far too.
    out = harmonise({"c": df}, reference=panel, eaf_max_diff=0.1)
    assert out.ledgers["c"].changed["eaf_far_from_reference_flagged"] == m
    with pytest.raises(ConfigError, match="eaf_max_diff"):
        harmonise({"c": df}, reference=panel, eaf_max_diff=0.0)


def test_harmonise_cli__far_eaf_shown_to_the_user(tmp_path, capsys):
    df = _frame([_row(1, 100, "G", "A", eaf=0.6), _row(1, 200, "T", "C", eaf=0.3)])
    write_sumstats(df, tmp_path / "a.tsv")
    REF.write_csv(tmp_path / "ref.tsv", separator="\t")
    rc = _run_cli(harmonise_cmd, ["harmonise", "--reference", str(tmp_path / "ref.tsv"),
                                  "--out-dir", str(tmp_path / "h"), f"a={tmp_path / 'a.tsv'}"])
    assert rc == 0
    assert "flag_eaf_far" in capsys.readouterr().err
    led = json.loads((tmp_path / "h" / "ledger.json").read_text())[0]
    assert led["changed"]["eaf_far_from_reference_flagged"] == 1
    flag = read_sumstats(tmp_path / "h" / "a.tsv.gz").get_column("flag_eaf_far")
    assert flag.cast(pl.String).to_list() == ["true", "false"]  # G/A at 100: 0.6 vs panel 0.2


def _chrom_by_label(labels: list) -> list:
    from crosscohort.contract.sumstats import SumstatsError, chrom_code

    out = []
    for x in labels:
        try:
            out.append(None if x is None else chrom_code(x))
        except SumstatsError:
            out.append(None)
    return out


@pytest.mark.parametrize("order", ["sorted", "shuffled"])
def test_normalise_chromosomes_run_and_hash_paths_agree_with_chrom_code(order):
    """Sorted labels take the run path (each run looked up once), shuffled ones the
    per-distinct-label path; both give chrom_code of every label, null where unknown."""
    from crosscohort.contract.keys import normalise_chromosomes

    labels = ["1", "chr1", "01", " 2", "X", "chrX", "23", "26", "MT", "chrUn_gl000220", "+3",
              "0", None, "y", "22"]
    rng = np.random.default_rng(7)
    rows = [lab for lab in labels for _ in range(rng.integers(1, 400))]
    if order == "shuffled":
        rows = [rows[i] for i in rng.permutation(len(rows))]
    s = pl.Series("chromosome", rows, dtype=pl.String)
    got = normalise_chromosomes(s)
    assert got.name == "chromosome" and got.dtype == pl.Int64
    assert got.to_list() == _chrom_by_label(rows)
    runs = s.rle().len()
    assert (runs <= 1024) is (order == "sorted")  # each path is the one exercised


@pytest.mark.parametrize("extra", [[], ["+3"], ["X"]])
def test_normalise_chromosomes__unsorted_numeric_labels_parse_as_chrom_code_reads_them(extra):
    """Unsorted numeric labels (a GWAS-SSF file sorted by p) take the integer parse; a sign
    or a non-numeric label among them sends the file to the lookup. Both are chrom_code."""
    from crosscohort.contract.keys import normalise_chromosomes

    labels = ["1", "01", "22", "23", "25", "26", "0", "27", "-1", None, *extra]
    rng = np.random.default_rng(11)
    rows = [labels[i] for i in rng.integers(0, len(labels), 30_000)]
    got = normalise_chromosomes(pl.Series("chromosome", rows, dtype=pl.String))
    assert got.dtype == pl.Int64
    assert got.to_list() == _chrom_by_label(rows)


def test_deduplicate__file_order_keeps_the_rows_the_sorted_path_keeps():
    """Without sorting, duplicates are found by hashing the keys: the same rows survive
    (by the duplicate rule), in file order, and the ledger counts the same."""
    from crosscohort.central.harmonise.align import _ROW, _deduplicate
    from crosscohort.contract.ledger import Ledger

    rng = np.random.default_rng(3)
    m = 5_000
    df = pl.DataFrame({
        "chromosome": rng.integers(1, 4, m), "base_pair_location": rng.integers(1, 400, m),
        "other_allele": rng.choice(["A", "C"], m), "effect_allele": rng.choice(["G", "T"], m),
        "n": rng.integers(1, 5, m), "standard_error": rng.choice([0.1, 0.2], m),
    }).with_row_index(_ROW)
    a, b = Ledger(stage="harmonise", cohort="c", n_in=m), Ledger(stage="harmonise", cohort="c", n_in=m)
    by_key = _deduplicate(df, a, sort=True)
    in_file = _deduplicate(df, b, sort=False)
    assert a.removed["duplicate"] == b.removed["duplicate"] > 0
    assert in_file.get_column(_ROW).is_sorted()
    assert in_file.sort(_ROW).equals(by_key.sort(_ROW))
    unique = df.unique(subset=["chromosome", "base_pair_location", "other_allele", "effect_allele"])
    assert _deduplicate(unique, Ledger(stage="harmonise", cohort="c"), sort=False).equals(unique)
