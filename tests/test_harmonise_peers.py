"""The peers' own outputs through the product path, number for number.

Files the peer tools printed (tests/data/peers, README there with the exact
commands), or that a test has a peer tool print in ``tmp_path``, are read by
``crosscohort harmonise`` / ``crosscohort meta`` (:func:`crosscohort.cli.main`)
and compared with the values the peer printed: beta (log OR), SE, p, EAF,
N, the effect allele's orientation, and a ledger that counts every row not
kept with its reason.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import polars as pl
import pytest

from crosscohort.cli import main
from crosscohort.contract.sumstats import read_sumstats

PEERS = Path(__file__).parent / "data" / "peers"


def _rows(path: Path) -> list[dict[str, str]]:
    """The peer's printed table as text fields (whitespace-separated, the header's names)."""
    lines = [ln.split() for ln in path.read_text().splitlines() if ln.strip()]
    return [dict(zip(lines[0], f, strict=True)) for f in lines[1:]]


def _harmonise(tmp_path: Path, *inputs: str, options: tuple[str, ...] = (),
               out: str = "h") -> tuple[dict, dict]:
    """``crosscohort harmonise`` on ``inputs``: (cohort -> table, cohort -> ledger)."""
    out = tmp_path / out
    assert main(["harmonise", *options, "--out-dir", str(out), *inputs]) == 0
    ledgers = {lg["cohort"]: lg for lg in json.loads((out / "ledger.json").read_text())}
    return {c: read_sumstats(out / f"{c}.tsv.gz") for c in ledgers}, ledgers


def _check_plink2_values(table: pl.DataFrame, printed: list[dict[str, str]]) -> None:
    """Every kept row carries plink2's printed numbers, oriented on its effect allele."""
    by_id = {r["ID"]: r for r in printed if r.get("TEST", "ADD") == "ADD"}
    for row in table.iter_rows(named=True):
        r = by_id[row["rsid"]]
        assert r["A1"] in (row["effect_allele"], row["other_allele"])
        sign = 1.0 if row["effect_allele"] == r["A1"] else -1.0
        effect = float(r["BETA"]) if "BETA" in r else math.log(float(r["OR"]))
        assert row["beta"] == pytest.approx(sign * effect, rel=1e-12, abs=0)
        assert row["standard_error"] == float(r.get("SE") or r["LOG(OR)_SE"])
        assert row["p_value"] == float(r["P"])
        assert row["n"] == int(r["OBS_CT"])
        if "A1_FREQ" in r:
            f = float(r["A1_FREQ"])
            assert row["effect_allele_frequency"] == pytest.approx(f if sign > 0 else 1 - f,
                                                                  abs=1e-12)


# --- PLINK 2 --glm ---------------------------------------------------------------------------

def test_plink2_errcode__rows_plink2_marks_failed_are_removed_and_counted_per_code(tmp_path):
    # plink2 prints values for UNFINISHED fits (the Firth fallback stopped at its iteration
    # limit: OR 1.64, SE 2.31 for a singleton); they are not estimates and must not be combined.
    path = PEERS / "covar_rows.cad.glm.logistic.hybrid"
    printed = _rows(path)
    tables, ledgers = _harmonise(tmp_path, f"c={path}")
    lg, table = ledgers["c"], tables["c"]
    add = [r for r in printed if r["TEST"] == "ADD"]
    failed = [r for r in add if r["ERRCODE"] != "."]
    assert {r["ERRCODE"] for r in failed} == {"UNFINISHED", "CONST_OMITTED_ALLELE"}
    assert lg["n_in"] == len(printed)
    assert lg["removed"]["not_additive_test"] == len(printed) - len(add)
    for code in ("UNFINISHED", "CONST_OMITTED_ALLELE"):
        assert lg["removed"][f"errcode_{code.lower()}"] == sum(r["ERRCODE"] == code for r in add)
    assert lg["n_kept"] == len(add) - len(failed) == table.height
    assert lg["n_in"] == lg["n_kept"] + sum(lg["removed"].values())
    assert "rs10300674" not in table["rsid"].to_list()
    _check_plink2_values(table, printed)


def _plink2_dummy(plink2: str, tmp_path: Path, *glm: str) -> None:
    """plink2's own dummy cohort (200 people, 40 SNPs, a binary trait) and ``--glm`` on it."""
    import subprocess

    run = dict(cwd=tmp_path, capture_output=True, text=True, check=True)
    # --memory: plink2 otherwise reserves half the machine's RAM, which fails on a busy host.
    subprocess.run([plink2, "--dummy", "200", "40", "0.05", "acgt", "--seed", "3", "--memory", "1024",
                    "--out", "d"], **run)
    subprocess.run([plink2, "--pfile", "d", "--glm", "allow-no-covars", *glm, "--memory", "1024",
                    "--threads", "1", "--out", "o"], **run)


def test_plink2_zs__zstd_compressed_glm_output_reads_as_the_plain_one(plink2, tmp_path):
    # plink2 --dummy 200 40 0.05 acgt --seed 3; plink2 --pfile d --glm allow-no-covars [zs]
    _plink2_dummy(plink2, tmp_path, "cols=+a1freq")
    plain = tmp_path / "plain.glm.logistic.hybrid"
    (tmp_path / "o.PHENO1.glm.logistic.hybrid").rename(plain)
    _plink2_dummy(plink2, tmp_path, "cols=+a1freq", "zs")
    zst = tmp_path / "o.PHENO1.glm.logistic.hybrid.zst"
    assert zst.read_bytes()[:4] == b"\x28\xb5\x2f\xfd"
    tables, ledgers = _harmonise(tmp_path, f"plain={plain}", f"zs={zst}")
    assert tables["zs"].equals(tables["plain"]) and tables["zs"].height > 30
    assert {k: v for k, v in ledgers["zs"].items() if k != "cohort"} == \
        {k: v for k, v in ledgers["plain"].items() if k != "cohort"}
    _check_plink2_values(tables["zs"], _rows(plain))
    # and the raw meta path reads it too
    out = tmp_path / "m.tsv"
    assert main(["meta", "--format", "auto", "--out", str(out), f"zs={zst}"]) == 0
    assert read_sumstats(out).height == tables["zs"].height


def test_plink2_zs__truncated_zstd_stream_is_an_error_naming_the_file(plink2, tmp_path, capsys):
    _plink2_dummy(plink2, tmp_path, "zs")
    zst = tmp_path / "o.PHENO1.glm.logistic.hybrid.zst"
    cut = tmp_path / "cut.glm.logistic.hybrid.zst"
    data = zst.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    assert main(["harmonise", "--out-dir", str(tmp_path / "h"), str(cut)]) == 2
    err = capsys.readouterr().err
    assert str(cut) in err and "zstd" in err and "Traceback" not in err


# --- meta on the peers' files against plink 1.9 --meta-analysis on the same files -------------

COHORTS = ("biobank_eur", "admixed_afr", "study_eur")


def _half_unit(text: str) -> float:
    """Half a unit in the last digit plink 1.9 printed (its print precision)."""
    mantissa, _, exp = text.lower().partition("e")
    decimals = len(mantissa.partition(".")[2])
    return 0.5 * 10.0 ** (int(exp or 0) - decimals)


@pytest.mark.parametrize("trait", ["ldl.glm.linear", "cad.glm.logistic.hybrid"])
def test_meta_plink2_files__equal_plink19_meta_analysis_to_its_print_precision(trait, plink19,
                                                                             tmp_path):
    import subprocess

    files = [PEERS / f"{c}.{trait}" for c in COHORTS]
    logistic = trait.startswith("cad")
    # oracle: plink1.9 --meta-analysis F1 F2 F3 [+ qt] --meta-analysis-snp-field ID
    #   --meta-analysis-a1-field A1 --meta-analysis-a2-field AX --meta-analysis-chr-field '#CHROM'
    #   --meta-analysis-bp-field POS [--meta-analysis-se-field 'LOG(OR)_SE'] --out pm
    cmd = [plink19, "--meta-analysis", *map(str, files), *([] if logistic else ["+", "qt"]),
           "--meta-analysis-snp-field", "ID", "--meta-analysis-a1-field", "A1",
           "--meta-analysis-a2-field", "AX", "--meta-analysis-chr-field", "#CHROM",
           "--meta-analysis-bp-field", "POS",
           *(["--meta-analysis-se-field", "LOG(OR)_SE"] if logistic else []),
           "--memory", "1024", "--out", "pm"]
    subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, check=True)
    theirs = {r["SNP"]: r for r in _rows(tmp_path / "pm.meta")}
    out = tmp_path / "m.tsv"
    assert main(["meta", "--format", "auto", "--method", "random", "--out", str(out),
                 *(f"{c}={f}" for c, f in zip(COHORTS, files, strict=True))]) == 0
    ours = read_sumstats(out)
    # plink2 rows it marks failed (ERRCODE) but prints values for (UNFINISHED): plink 1.9
    # combines them, we drop them. (Failed rows printed NA are skipped by both.)
    failed = {r["ID"] for f in files for r in _rows(f)
              if r["ERRCODE"] != "." and r["OR" if logistic else "BETA"] != "NA"}
    compared = 0
    for row in ours.iter_rows(named=True):
        r = theirs.get(row["rsid"])
        if r is None:  # plink 1.9 prints variants of two files or more
            assert row["n_studies"] == 1 or row["rsid"] in failed
            continue
        if row["rsid"] in failed:
            assert row["n_studies"] < int(r["N"])
            continue
        assert row["n_studies"] == int(r["N"])
        sign = 1.0 if row["effect_allele"] == r["A1"] else -1.0
        assert sign > 0 or row["other_allele"] == r["A1"]
        for col, name in (("beta", "OR" if logistic else "BETA"),
                          ("beta_random", "OR(R)" if logistic else "BETA(R)")):
            value = math.exp(sign * row[col]) if logistic else sign * row[col]
            assert abs(value - float(r[name])) <= _half_unit(r[name]) * (1 + 1e-9), (row, r)
        for col, name in (("p_value", "P"), ("p_value_random", "P(R)"), ("het_p", "Q")):
            assert abs(row[col] - float(r[name])) <= _half_unit(r[name]) * (1 + 1e-9), (row, r)
        assert abs(100 * row["het_i2"] - float(r["I"])) <= _half_unit(r["I"]) * (1 + 1e-9)
        compared += 1
    assert compared >= 40
    if logistic:  # biobank_eur's UNFINISHED row is its only printed value: not combined
        assert "rs10300674" in failed and "rs10300674" not in ours["rsid"].to_list()


# --- PLINK 1.9 --assoc, --linear, --logistic --------------------------------------------------

def test_plink19_assoc__or_and_allelic_chisq_give_log_or_and_its_se(tmp_path):
    # plink1.9 --bfile g_biobank_eur --pheno ... --pheno-name cad --assoc (README in tests/data/peers)
    path = PEERS / "biobank_eur.cad.assoc"
    printed = _rows(path)
    tables, ledgers = _harmonise(tmp_path, f"c={path}")
    table, lg = tables["c"], ledgers["c"]
    usable = [r for r in printed
              if r["OR"] not in ("NA", "0", "inf") and float(r["CHISQ"]) > 0]
    assert table.height == lg["n_kept"] == len(usable) > 20
    assert lg["n_in"] == len(printed) == lg["n_kept"] + sum(lg["removed"].values())
    by_id = {r["SNP"]: r for r in usable}
    for row in table.iter_rows(named=True):
        r = by_id[row["rsid"]]
        assert {row["effect_allele"], row["other_allele"]} == {r["A1"], r["A2"]}
        sign = 1.0 if row["effect_allele"] == r["A1"] else -1.0
        log_or = math.log(float(r["OR"]))
        assert row["beta"] == pytest.approx(sign * log_or, rel=1e-12)
        # the SE the 1-df allelic test implies: |ln OR| / sqrt(CHISQ)
        assert row["standard_error"] == pytest.approx(abs(log_or) / math.sqrt(float(r["CHISQ"])),
                                                      rel=1e-12)
        assert row["p_value"] == float(r["P"])


def test_plink2_multiallelic__other_allele_is_the_one_plink2_omitted(tmp_path):
    # plink2 --glm hide-covar [omit-ref] cols=+ax,+a1freq on a set with multi-allelic SNPs
    # (tests/data/peers/README.md). Oracle: the omit-ref run's betas, all against REF.
    default = PEERS / "multiallelic.ldl.glm.linear"
    omit_ref = PEERS / "multiallelic_omit_ref.ldl.glm.linear"
    lines = [ln.split("\t") for ln in default.read_text().splitlines()]
    ax = lines[0].index("AX")
    no_ax = tmp_path / "no_ax.ldl.glm.linear"
    no_ax.write_text("".join("\t".join(f[:ax] + f[ax + 1:]) + "\n" for f in lines))
    against_ref: dict[tuple[str, str], float] = {}
    for r in _rows(omit_ref):
        against_ref[(r["ID"], r["REF"])] = 0.0
        if r["BETA"] != "NA":
            against_ref[(r["ID"], r["A1"])] = float(r["BETA"])
    tables, ledgers = _harmonise(tmp_path, f"default={default}", f"no_ax={no_ax}",
                                 f"omit_ref={omit_ref}")
    for cohort, table in tables.items():
        printed = [r for r in _rows(default if cohort != "omit_ref" else omit_ref)]
        with_values = [r for r in printed if r["ERRCODE"] == "."]
        assert table.height == len(with_values) == ledgers[cohort]["n_kept"], cohort
        assert ledgers[cohort]["removed"].get("errcode_const_allele") == 1
        for row in table.iter_rows(named=True):
            e = against_ref[(row["rsid"], row["effect_allele"])]
            o = against_ref[(row["rsid"], row["other_allele"])]
            # 6 significant digits printed: half a unit in the last, each term
            assert abs(row["beta"] - (e - o)) <= 5e-6 * (abs(e) + abs(o)) + 1e-12, (cohort, row)
    # the default run omitted the major ALT C of rs71121807: its G row is G against C
    g = tables["default"].filter(pl.col("rsid") == "rs71121807",
                                 pl.col("effect_allele").is_in(["G", "C"]),
                                 pl.col("other_allele").is_in(["G", "C"]))
    assert g.height == 1
    assert tables["no_ax"].equals(tables["default"])


@pytest.mark.parametrize("name", ["biobank_eur.ldl.assoc.linear", "biobank_eur.cad.assoc.logistic"])
def test_plink19_linear_logistic__other_allele_from_the_reference_and_values_carried(name,
                                                                                  tmp_path):
    # plink1.9 ... --linear --ci 0.95 / --logistic hide-covar (tests/data/peers/README.md): A1 only
    path = PEERS / name
    printed = _rows(path)
    panel = {int(r["base_pair_location"]): r for r in _rows(PEERS / "reference.tsv")}
    tables, ledgers = _harmonise(tmp_path, f"c={path}",
                                 options=("--reference", str(PEERS / "reference.tsv")))
    table, lg = tables["c"], ledgers["c"]
    add = [r for r in printed if r["TEST"] == "ADD"]
    usable = [r for r in add if r["P"] != "NA"]
    assert lg["n_in"] == len(printed) == lg["n_kept"] + sum(lg["removed"].values())
    assert lg["removed"]["not_additive_test"] == len(printed) - len(add)
    # A/T and C/G SNPs without an EAF cannot be oriented on the panel: dropped, counted
    assert lg["n_kept"] + lg["removed"].get("palindrome_ambiguous", 0) == len(usable)
    assert lg["n_kept"] == table.height > 5
    assert lg["changed"]["other_allele_from_reference"] == lg["n_kept"]
    by_id = {r["SNP"]: r for r in usable}
    for row in table.iter_rows(named=True):
        r, site = by_id[row["rsid"]], panel[row["base_pair_location"]]
        # with a reference the effect allele is the panel's ALT
        assert (row["effect_allele"], row["other_allele"]) == (site["alt"], site["ref"])
        sign = 1.0 if r["A1"] == site["alt"] else -1.0
        assert sign > 0 or r["A1"] == site["ref"]
        effect = float(r["BETA"]) if "BETA" in r else math.log(float(r["OR"]))
        assert row["beta"] == pytest.approx(sign * effect, rel=1e-12)
        se = float(r["SE"]) if "SE" in r else abs(effect / float(r["STAT"]))
        assert row["standard_error"] == pytest.approx(se, rel=1e-12)
        assert row["p_value"] == float(r["P"])
        assert row["n"] == int(r["NMISS"])


def test_plink19_linear__without_a_reference_the_missing_other_allele_is_a_clear_error(tmp_path,
                                                                                    capsys):
    path = PEERS / "biobank_eur.ldl.assoc.linear"
    assert main(["harmonise", "--out-dir", str(tmp_path / "h"), str(path)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "other_allele" in err and "--reference" in err


# --- REGENIE, and its GWAS-SSF made by the GWAS Catalog's own converter ------------------------

NUMERIC = {"1": "A", "2": "C", "3": "G", "4": "T"}


def test_regenie_example__values_carried_auto_and_explicit(tmp_path):
    # REGENIE's own example output (tests/data/peers/README.md); its alleles are 1/2 codes
    path = PEERS / "regenie_example.regenie"
    printed = {r["ID"]: r for r in _rows(path)}
    tables, ledgers = _harmonise(tmp_path, f"c={path}", options=("--numeric-alleles",))
    explicit, _ = _harmonise(tmp_path, f"c={path}:regenie", options=("--numeric-alleles",),
                             out="explicit")
    assert tables["c"].equals(explicit["c"])
    assert ledgers["c"]["n_kept"] == len(printed) == tables["c"].height
    for row in tables["c"].iter_rows(named=True):
        r = printed[row["rsid"]]
        sign = 1.0 if row["effect_allele"] == NUMERIC[r["ALLELE1"]] else -1.0
        assert row["other_allele"] == NUMERIC[r["ALLELE0" if sign > 0 else "ALLELE1"]]
        assert row["beta"] == sign * float(r["BETA"])
        assert row["standard_error"] == float(r["SE"])
        f = float(r["A1FREQ"])
        assert row["effect_allele_frequency"] == pytest.approx(f if sign > 0 else 1 - f, abs=1e-12)
        assert row["neg_log_10_p_value"] == pytest.approx(float(r["LOG10P"]), rel=1e-12)
        assert row["p_value"] == pytest.approx(10 ** -float(r["LOG10P"]), rel=1e-12)
        assert row["n"] == int(r["N"]) and row["info"] == float(r["INFO"])


def test_gwas_ssf_of_the_catalog_converter__reads_as_the_regenie_file_it_came_from(tmp_path):
    # gwas-ssf format regenie_example.regenie --apply_config --analysis_software REGENIE
    ssf, regenie = PEERS / "regenie_example.gwas_ssf.tsv", PEERS / "regenie_example.regenie"
    tables, ledgers = _harmonise(tmp_path, f"ssf={ssf}", f"regenie={regenie}",
                                 options=("--numeric-alleles",))
    a, b = tables["ssf"], tables["regenie"]
    assert ledgers["ssf"]["n_kept"] == ledgers["regenie"]["n_kept"] == a.height == 30
    for col in ("chromosome", "base_pair_location", "effect_allele", "other_allele", "beta",
                "standard_error", "effect_allele_frequency", "n", "info"):
        assert a[col].to_list() == b[col].to_list(), col
    for x, y in zip(a["p_value"], b["p_value"], strict=True):
        assert x == pytest.approx(y, rel=1e-12)


def test_gwas_ssf_with_a_test_column__only_additive_rows_are_read(tmp_path):
    # The converter passes REGENIE's TEST through; a REGENIE run with --test dominant prints
    # TEST = DOM rows, whose betas are not per-allele effects. Here the converted file's
    # rows 11-30 relabelled DOM (as such a run prints them): they must not be read as ADD.
    lines = (PEERS / "regenie_example.gwas_ssf.tsv").read_text().splitlines()
    t = lines[0].split("\t").index("TEST")
    out = [lines[0]] + [("\t".join(f[:t] + ["DOM"] + f[t + 1:]) if i > 10 else ln)
                        for i, ln in enumerate(lines[1:], 1) for f in [ln.split("\t")]]
    path = tmp_path / "dom.tsv"
    path.write_text("\n".join(out) + "\n")
    tables, ledgers = _harmonise(tmp_path, f"c={path}", options=("--numeric-alleles",))
    assert ledgers["c"]["removed"]["not_additive_test"] == 20
    assert tables["c"].height == ledgers["c"]["n_kept"] == 10
    assert ledgers["c"]["n_in"] == 30


# --- BOLT-LMM ------------------------------------------------------------------------------------

def test_bolt_stats__values_carried_and_monomorphic_rows_counted(tmp_path):
    # bolt --lmm ... --statsFile (tests/data/peers/README.md); BOLT prints no N
    path = PEERS / "biobank_eur.ldl.bolt.stats"
    printed = _rows(path)
    tables, ledgers = _harmonise(tmp_path, f"c={path}", options=("--default-n", "896"))
    table, lg = tables["c"], ledgers["c"]
    nan_se = [r for r in printed if r["SE"] == "-nan"]
    assert len(nan_se) == 10
    assert lg["removed"]["bad_value_standard_error"] == len(nan_se)
    assert lg["n_in"] == len(printed) == lg["n_kept"] + sum(lg["removed"].values())
    by_id = {r["SNP"]: r for r in printed}
    assert table.height == len(printed) - len(nan_se)
    for row in table.iter_rows(named=True):
        r = by_id[row["rsid"]]
        sign = 1.0 if row["effect_allele"] == r["ALLELE1"] else -1.0
        assert row["other_allele"] == (r["ALLELE0"] if sign > 0 else r["ALLELE1"])
        assert row["beta"] == sign * float(r["BETA"])
        assert row["standard_error"] == float(r["SE"])
        f = float(r["A1FREQ"])
        assert row["effect_allele_frequency"] == pytest.approx(f if sign > 0 else 1 - f, abs=1e-12)
        assert row["p_value"] == float(r["P_BOLT_LMM_INF"])  # the test BETA/SE belong to
        assert row["n"] == 896


@pytest.mark.parametrize(("name", "snp", "chrom"), [("xy_mt.cad.assoc", "SNP", "CHR"),
                                                    ("xy_mt.cad.glm.logistic.hybrid", "ID", "#CHROM")])
def test_plink_chromosome_codes__25_is_xy_on_x_and_26_is_mt(name, snp, chrom, tmp_path):
    # PLINK numbers X 23, Y 24, XY (pseudo-autosomal) 25, MT 26 (plink 1.9 always, plink2 with
    # --output-chr 26); GWAS-SSF's 25 is MT.
    path = PEERS / name
    printed = {r[snp]: r for r in _rows(path)}
    assert {r[chrom] for r in printed.values()} == {"1", "23", "25", "26"}
    tables, ledgers = _harmonise(tmp_path, f"c={path}")
    want = {"1": 1, "23": 23, "25": 23, "26": 25}
    table = tables["c"]
    assert table.height == ledgers["c"]["n_kept"] > 20
    for row in table.iter_rows(named=True):
        assert row["chromosome"] == want[printed[row["rsid"]][chrom]], row


def test_gwas_ssf_na__the_formats_own_missing_token_is_missing_not_an_error(tmp_path):
    # GWAS-SSF writes missing values as #NA (the converter did, for a REGENIE TEST_FAIL row)
    path = PEERS / "regenie_test_fail.gwas_ssf.tsv"
    assert "\t#NA\t" in path.read_text()
    tables, ledgers = _harmonise(tmp_path, f"c={path}", options=("--numeric-alleles",))
    lg = ledgers["c"]
    assert lg["n_in"] == 30 and lg["n_kept"] == 29 == tables["c"].height
    # its #NA beta/SE read as missing (no error); the row goes as the failed test it is
    assert lg["removed"]["test_failed"] == 1 and lg["removed"]["bad_value_beta"] == 0
    assert 3 not in tables["c"]["base_pair_location"].to_list()


def test_meta_plink19_files__a1_the_minor_allele_oriented_as_plink19_meta_analysis(plink19, tmp_path):
    # Three cohorts' plink 1.9 --logistic (A1 = each cohort's minor allele, no A2), combined by
    # crosscohort meta with the panel giving the other allele, against plink 1.9's own
    # --meta-analysis of the same files. Without A2 plink 1.9 cannot tell a cohort whose A1
    # differs from a wrong allele: it leaves that cohort out (ALLELE_MISMATCH in pm.prob),
    # where the panel lets us orient and combine it.
    import subprocess

    files = [PEERS / f"{c}.cad_ci.assoc.logistic" for c in COHORTS]
    a1 = [{r["SNP"]: r["A1"] for r in _rows(f)} for f in files]
    assert any(len({m[s] for m in a1}) > 1 for s in a1[0])  # A1 differs somewhere
    # oracle: plink1.9 --meta-analysis F1 F2 F3 --out pm
    subprocess.run([plink19, "--meta-analysis", *map(str, files), "--memory", "1024", "--out", "pm"],
                   cwd=tmp_path, capture_output=True, text=True, check=True)
    theirs = {r["SNP"]: r for r in _rows(tmp_path / "pm.meta")}
    prob = [ln.split() for ln in (tmp_path / "pm.prob").read_text().splitlines()]
    mismatched = {f[1]: sum(g[1] == f[1] and g[2] == "ALLELE_MISMATCH" for g in prob)
                  for f in prob if f[2] == "ALLELE_MISMATCH"}
    out = tmp_path / "m.tsv"
    assert main(["meta", "--format", "auto", "--method", "random", "--reference",
                 str(PEERS / "reference.tsv"), "--out", str(out),
                 *(f"{c}={f}" for c, f in zip(COHORTS, files, strict=True))]) == 0
    ours = {r["rsid"]: r for r in read_sumstats(out).iter_rows(named=True)}
    compared = flipped = 0
    for snp, r in theirs.items():
        if snp not in ours:  # an A/T or C/G SNP: no EAF to orient it on the panel
            continue
        row = ours[snp]
        if snp in mismatched:  # plink 1.9 left the cohorts whose A1 differs out; we did not
            assert row["n_studies"] == int(r["N"]) + mismatched[snp]
            flipped += 1
            continue
        assert row["n_studies"] == int(r["N"])
        sign = 1.0 if row["effect_allele"] == r["A1"] else -1.0
        assert sign > 0 or row["other_allele"] == r["A1"]
        for col, name in (("beta", "OR"), ("beta_random", "OR(R)")):
            assert abs(math.exp(sign * row[col]) - float(r[name])) <= _half_unit(r[name]) * (1 + 1e-9)
        for col, name in (("p_value", "P"), ("p_value_random", "P(R)"), ("het_p", "Q")):
            assert abs(row[col] - float(r[name])) <= _half_unit(r[name]) * (1 + 1e-9), (row, r)
        compared += 1
    assert compared >= 50 and flipped >= 3


def test_gwas_ssf_variant_id_holding_rsids__kept_as_rsid(tmp_path):
    # gwas-ssf format biobank_eur.ldl.bolt.stats --apply_config --analysis_software BOLT-LMM
    path = PEERS / "bolt.gwas_ssf.tsv"
    printed = _rows(path)
    tables, ledgers = _harmonise(tmp_path, f"c={path}")
    table = tables["c"]
    kept = [r for r in printed if r["standard_error"] != "-nan"]
    assert table.height == len(kept) == ledgers["c"]["n_kept"]
    assert table["rsid"].to_list() == [r["variant_id"] for r in kept]
    # the variant_id column itself is ours: chromosome:position:other:effect
    assert all(v.count(":") == 3 for v in table["variant_id"].to_list())


def test_plink19_dosage__frq_and_info_carried(tmp_path):
    # plink1.9 --dosage d.txt format=1 ... (tests/data/peers/README.md)
    path = PEERS / "study_eur.ldl.assoc.dosage"
    by_id = {r["SNP"]: r for r in _rows(path)}
    tables, ledgers = _harmonise(tmp_path, f"c={path}")
    table = tables["c"]
    assert table.height == ledgers["c"]["n_kept"] == len(by_id)
    for row in table.iter_rows(named=True):
        r = by_id[row["rsid"]]
        sign = 1.0 if row["effect_allele"] == r["A1"] else -1.0
        assert row["other_allele"] == (r["A2"] if sign > 0 else r["A1"])
        assert row["beta"] == sign * float(r["BETA"]) and row["standard_error"] == float(r["SE"])
        f = float(r["FRQ"])
        assert row["effect_allele_frequency"] == pytest.approx(f if sign > 0 else 1 - f, abs=1e-12)
        assert row["info"] == float(r["INFO"])


def test_plink2_a1_ref_or_alt_and_or_or_beta__one_fit_printed_three_ways_harmonises_alike(tmp_path):
    # plink2 --glm hide-covar [cols=+ax,+a1freq | omit-ref | cols=+a1freq,+beta] on one cohort
    names = {"default": "biobank_eur.cad.glm.logistic.hybrid",
             "omit_ref": "biobank_eur.cad_omit_ref.glm.logistic.hybrid",
             "beta": "biobank_eur.cad_beta.glm.logistic.hybrid"}
    a1 = {k: {r["ID"]: r["A1"] for r in _rows(PEERS / v)} for k, v in names.items()}
    assert any(a1["default"][s] != a1["omit_ref"][s] for s in a1["default"])  # A1 = REF here
    tables = {k: _harmonise(tmp_path, f"c={PEERS / v}", out=k)[0]["c"] for k, v in names.items()}
    for k, t in tables.items():
        _check_plink2_values(t, _rows(PEERS / names[k]))
    base = tables["default"]
    for k in ("omit_ref", "beta"):
        t = tables[k]
        for col in ("rsid", "effect_allele", "other_allele"):
            assert t[col].to_list() == base[col].to_list(), (k, col)
        # plink2 fits logistic models in single precision: coding A1 = REF instead of ALT
        # moves the 5th-6th digit; a wrong orientation would flip the sign.
        for x, y, se in zip(t["beta"], base["beta"], base["standard_error"], strict=True):
            assert abs(x - y) <= 1e-3 * se, (k, x, y)  # a flip: |x - y| = 2|y|
        for col in ("standard_error", "p_value"):
            for x, y in zip(t[col], base[col], strict=True):
                assert x == pytest.approx(y, rel=2e-4, abs=1e-4), (k, col)


def test_plink19_fisher__or_and_p_only_give_the_se_the_p_implies(tmp_path):
    # plink1.9 ... --assoc fisher: the file passes the header rule (p stands for the SE), so its
    # rows must not all be removed for a missing SE: SE = |ln OR| / |z(p)|.
    from scipy.stats import norm

    path = PEERS / "biobank_eur.cad.assoc.fisher"
    printed = _rows(path)
    tables, ledgers = _harmonise(tmp_path, f"c={path}")
    table, lg = tables["c"], ledgers["c"]
    usable = [r for r in printed if r["OR"] not in ("NA", "0", "inf") and float(r["OR"]) != 1
              and float(r["P"]) < 1]
    assert table.height == lg["n_kept"] == len(usable) > 20
    assert lg["changed"]["se_from_p"] == len(usable)
    by_id = {r["SNP"]: r for r in usable}
    for row in table.iter_rows(named=True):
        r = by_id[row["rsid"]]
        sign = 1.0 if row["effect_allele"] == r["A1"] else -1.0
        log_or = math.log(float(r["OR"]))
        assert row["beta"] == pytest.approx(sign * log_or, rel=1e-12)
        z = norm.isf(float(r["P"]) / 2)
        assert row["standard_error"] == pytest.approx(abs(log_or) / z, rel=1e-9)
        assert row["p_value"] == float(r["P"])


# --- files concatenated with their headers --------------------------------------------------------

def _split_with_header(path: Path, out: Path, at: int) -> Path:
    """``path``'s first ``at`` data lines, its header again, the rest: what ``cat`` makes of parts."""
    lines = path.read_text().splitlines(keepends=True)
    out.write_text("".join(lines[: at + 1] + lines[:1] + lines[at + 1:]))
    return out


@pytest.mark.parametrize("name", ["chr1_chr2_cat.ldl.glm.linear", "bolt"])
def test_concatenated_parts__a_repeated_header_line_is_counted_not_read_as_data(name, tmp_path):
    # cat chr1.glm.linear chr2.glm.linear > all (tests/data/peers/README.md); BOLT's stats cut
    # and concatenated the same way (it has no TEST column to hide the header behind).
    if name == "bolt":
        path = _split_with_header(PEERS / "biobank_eur.ldl.bolt.stats", tmp_path / "b.stats", 20)
        options: tuple[str, ...] = ("--default-n", "896")
    else:
        path, options = PEERS / name, ()
    lines = path.read_text().splitlines()
    assert lines.count(lines[0]) == 2
    tables, ledgers = _harmonise(tmp_path, f"c={path}", options=options)
    lg = ledgers["c"]
    assert lg["removed"]["repeated_header"] == 1
    assert lg["removed"].get("not_additive_test", 0) == 0
    assert lg["n_in"] == len(lines) - 1 == lg["n_kept"] + sum(lg["removed"].values())
    assert tables["c"].height == lg["n_kept"] > 20


def test_plink2_machr2__imputation_quality_carried_as_info(plink2, tmp_path):
    # plink2 --dummy 200 40 0.05 acgt --seed 3; plink2 --pfile d --glm allow-no-covars cols=+machr2
    _plink2_dummy(plink2, tmp_path, "cols=+machr2")
    path = tmp_path / "o.PHENO1.glm.logistic.hybrid"
    printed = {r["ID"]: r for r in _rows(path)}
    tables, _ = _harmonise(tmp_path, f"c={path}")
    table = tables["c"]
    assert table.height > 30
    assert table["info"].to_list() == [float(printed[i]["MACH_R2"]) for i in table["rsid"]]


# --- REGENIE >= 3: binary traits' case/control counts, failed tests --------------------------

# REGENIE 3.x step 2 on a binary trait with --af-cc prints this header (as in published
# runs' .regenie files): N_CASES and N_CONTROLS after N, A1FREQ_CASES/_CONTROLS after A1FREQ.
# (REGENIE is not installable here: no PyPI or Debian package.)
REGENIE_BT = ("CHROM GENPOS ID ALLELE0 ALLELE1 A1FREQ A1FREQ_CASES A1FREQ_CONTROLS INFO N "
              "N_CASES N_CONTROLS TEST BETA SE CHISQ LOG10P EXTRA")


def _regenie_bt(path: Path, rows: list[str]) -> Path:
    path.write_text("\n".join([REGENIE_BT, *rows]) + "\n")
    return path


def test_regenie_bt_counts__n_cases_n_controls_summed_and_n_effective_from_them(tmp_path):
    a = _regenie_bt(tmp_path / "a.regenie", [
        "1 100 rs1 A G 0.2 0.21 0.19 1 1000 200 800 ADD 0.1 0.05 4 1.3 NA",
        "1 300 rs3 A C 0.4 0.41 0.39 1 990 198 792 ADD 0.05 0.04 1.5 0.7 NA"])
    b = _regenie_bt(tmp_path / "b.regenie", [
        "1 100 rs1 A G 0.2 0.21 0.19 1 500 100 400 ADD 0.12 0.07 4 1.3 NA",
        "1 300 rs3 A C 0.4 0.41 0.39 1 500 50 450 ADD 0.02 0.06 1.5 0.7 NA"])
    out = tmp_path / "m.tsv.gz"
    for fmt in ("auto", "regenie"):
        assert main(["meta", "--format", fmt, "--out", str(out), str(a), str(b)]) == 0
        m = {r["rsid"]: r for r in read_sumstats(out).iter_rows(named=True)}
        assert (m["rs1"]["n_cases"], m["rs1"]["n_controls"], m["rs1"]["n"]) == (300, 1200, 1500)
        assert (m["rs3"]["n_cases"], m["rs3"]["n_controls"], m["rs3"]["n"]) == (248, 1242, 1490)
        # 4 / (1/cases + 1/controls) per cohort, summed (Willer et al. 2010's N_eff)
        assert m["rs1"]["n_effective"] == pytest.approx(4 / (1 / 200 + 1 / 800)
                                                        + 4 / (1 / 100 + 1 / 400), rel=1e-12)
        assert m["rs3"]["n_effective"] == pytest.approx(4 / (1 / 198 + 1 / 792)
                                                        + 4 / (1 / 50 + 1 / 450), rel=1e-12)


def test_regenie_test_fail__failed_tests_counted_test_failed_and_other_notes_kept(tmp_path):
    # REGENIE prints a failed test as NA values with EXTRA = TEST_FAIL (README: the awk line
    # that made regenie_test_fail.gwas_ssf.tsv's input). Other EXTRA values (DF=k of joint
    # tests; free notes) say nothing about the row's estimate: the row is kept as printed.
    lines = (PEERS / "regenie_example.regenie").read_text().splitlines()
    rows = [ln.split() for ln in lines[1:]]
    rows[2][9:14] = ["NA", "NA", "NA", "NA", "TEST_FAIL"]
    rows[3][13], rows[4][13], rows[5][13] = "DF=1", "Firth", "SPA;DF=1"
    path = tmp_path / "fail.regenie"
    path.write_text("\n".join([lines[0], *(" ".join(r) for r in rows)]) + "\n")
    ssf = PEERS / "regenie_test_fail.gwas_ssf.tsv"  # the converter's GWAS-SSF of the same failure
    tables, ledgers = _harmonise(tmp_path, f"r={path}", f"ssf={ssf}",
                                 options=("--numeric-alleles",))
    for cohort in ("r", "ssf"):
        lg = ledgers[cohort]
        assert lg["removed"]["test_failed"] == 1, lg
        assert lg["removed"]["bad_value_beta"] == 0
        assert lg["n_in"] == 30 == lg["n_kept"] + sum(lg["removed"].values())
        assert 3 not in tables[cohort]["base_pair_location"].to_list()
    kept = {r["base_pair_location"]: r for r in tables["r"].iter_rows(named=True)}
    for pos, r in ((4, rows[3]), (5, rows[4]), (6, rows[5])):
        assert abs(kept[pos]["beta"]) == abs(float(r[9])) and kept[pos]["standard_error"] == float(r[10])


def test_regenie_test_fail__counted_on_the_checking_read_too(tmp_path):
    # Parts concatenated with cat (a header line inside) are read by the checking path, not
    # the typed one: the failed test is counted there alike.
    lines = (PEERS / "regenie_example.regenie").read_text().splitlines()
    rows = [ln.split() for ln in lines[1:]]
    rows[2][9:14] = ["NA", "NA", "NA", "NA", "TEST_FAIL"]
    path = tmp_path / "fail.regenie"
    path.write_text("\n".join([lines[0], *(" ".join(r) for r in rows)]) + "\n")
    cat = _split_with_header(path, tmp_path / "cat.regenie", 10)
    _, ledgers = _harmonise(tmp_path, f"c={cat}", options=("--numeric-alleles",))
    lg = ledgers["c"]
    assert lg["removed"]["test_failed"] == 1 and lg["removed"]["repeated_header"] == 1
    assert lg["removed"]["bad_value_beta"] == 0 and lg["removed"]["not_additive_test"] == 0
    assert lg["n_in"] == 31 == lg["n_kept"] + sum(lg["removed"].values())
