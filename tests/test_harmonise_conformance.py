"""Alignment against GWAMA and plink 1.9 ``--meta-analysis``, and the cases where we differ on purpose.

Where the tools are right (allele swaps; strand flips for GWAMA) the sign of
every cohort's beta after our alignment equals the tool's, and the tool's
combined beta equals the inverse-variance mean of our aligned betas. The
deliberate differences are listed in docs/harmonisation.md, one test each.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from crosscohort.central.harmonise.readers import InputSpec, harmonise_files

pytestmark = pytest.mark.oracle

COMP = {"A": "T", "T": "A", "C": "G", "G": "C"}
NON_PAL = [("A", "G"), ("C", "T"), ("A", "C"), ("G", "T"), ("G", "A"), ("T", "C")]


def _run(cmd: list[str], cwd: Path) -> None:
    if "--meta-analysis" in cmd:  # plink reserves half the RAM by default; fails on a busy host
        cmd = [*cmd, "--memory", "1024"]
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _read_ws(path: Path) -> pl.DataFrame:
    rows = [ln.split() for ln in path.read_text().splitlines() if ln.strip()]
    return pl.DataFrame({h: [r[j] for r in rows[1:]] for j, h in enumerate(rows[0])})


def _panel(m: int, *, n_pal: int = 0, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    pairs = [NON_PAL[i % len(NON_PAL)] for i in range(m)] + [
        ("A", "T") if i % 2 else ("C", "G") for i in range(n_pal)]
    return pl.DataFrame({
        "chromosome": ["1"] * len(pairs), "base_pair_location": [1000 + 10 * i for i in range(len(pairs))],
        "ref": [r for r, _ in pairs], "alt": [a for _, a in pairs],
        "alt_frequency": rng.uniform(0.05, 0.35, len(pairs)),
        "rsid": [f"rs{i + 1}" for i in range(len(pairs))],
    })


def _cohorts(panel: pl.DataFrame, *, k: int = 3, seed: int = 1, flips: bool = True,
             reverse: tuple[int, ...] = ()) -> list[pl.DataFrame]:
    """k cohorts of the panel's variants: random swaps, strand flips (not cohort 0), drop-outs.

    ``reverse`` cohorts report every SNP on the reverse strand (palindromes included).
    Betas are at least 0.05 away from 0, so each sign is plain in 6 printed decimals.
    """
    rng = np.random.default_rng(seed)
    m = panel.height
    out = []
    for c in range(k):
        ref, alt = panel["ref"].to_list(), panel["alt"].to_list()
        pal = np.array([COMP[a] == r for r, a in zip(ref, alt, strict=True)])
        swap = (rng.random(m) < 0.4) & ~pal
        if c in reverse:
            flip = np.ones(m, dtype=bool)
        else:
            flip = (rng.random(m) < 0.3) & ~pal if (flips and c > 0) else np.zeros(m, dtype=bool)
        keep = (rng.random(m) > 0.1) | (c == 0) | pal
        beta = rng.uniform(0.05, 0.5, m) * rng.choice([-1, 1], m)
        se = rng.uniform(0.05, 0.2, m)
        eaf = panel["alt_frequency"].to_numpy()
        ea = [(r if s else a) for r, a, s in zip(ref, alt, swap, strict=True)]
        oa = [(a if s else r) for r, a, s in zip(ref, alt, swap, strict=True)]
        ea = [COMP[x] if f else x for x, f in zip(ea, flip, strict=True)]
        oa = [COMP[x] if f else x for x, f in zip(oa, flip, strict=True)]
        out.append(pl.DataFrame({
            "rsid": panel["rsid"], "chromosome": panel["chromosome"],
            "base_pair_location": panel["base_pair_location"],
            "effect_allele": ea, "other_allele": oa,
            "beta": np.where(swap, -beta, beta), "standard_error": se,
            "effect_allele_frequency": np.where(swap, 1 - eaf, eaf),
            "n": rng.integers(500, 5000, m), "_true_beta": beta, "_flip": flip, "_swap": swap,
        }).filter(pl.Series(keep)))
    return out


def _write_gwama(df: pl.DataFrame, path: Path) -> None:
    df.select(pl.col("rsid").alias("MARKERNAME"), pl.col("effect_allele").alias("EA"),
              pl.col("other_allele").alias("NEA"), pl.col("beta").alias("BETA"),
              pl.col("standard_error").alias("SE"), pl.col("n").alias("N"),
              pl.col("effect_allele_frequency").alias("EAF"), pl.lit("+").alias("STRAND"),
              ).write_csv(path, separator="\t", float_precision=None)


def _write_assoc(df: pl.DataFrame, path: Path) -> None:
    from scipy.stats import norm

    z = (df["beta"] / df["standard_error"]).to_numpy()
    df.select(pl.col("chromosome").alias("CHR"), pl.col("base_pair_location").alias("BP"),
              pl.col("rsid").alias("SNP"), pl.col("effect_allele").alias("A1"),
              pl.col("other_allele").alias("A2"), pl.col("beta").alias("BETA"),
              pl.col("standard_error").alias("SE"), pl.Series("P", 2 * norm.sf(np.abs(z))),
              ).write_csv(path, separator=" ")


def _ours(tmp_path: Path, cohorts: list[pl.DataFrame], panel: pl.DataFrame, writer, ext: str,
          *, reference: bool = True):
    ref = tmp_path / "panel.tsv"
    panel.write_csv(ref, separator="\t")
    specs = []
    for i, c in enumerate(cohorts):
        writer(c, tmp_path / f"c{i}.{ext}")
        specs.append(InputSpec(f"c{i}", tmp_path / f"c{i}.{ext}", "auto"))
    return harmonise_files(specs, reference=ref if reference else None)


def _gwama_out(gwama: str, tmp_path: Path, k: int) -> pl.DataFrame:
    (tmp_path / "gwama.in").write_text("".join(f"c{i}.gwama\n" for i in range(k)))
    # oracle: GWAMA -i gwama.in -qt -o out      (Debian gwama 2.2.2)
    _run([gwama, "-i", "gwama.in", "-qt", "-o", "out"], tmp_path)
    return pl.read_csv(tmp_path / "out.out", separator="\t", infer_schema=False)


def _sign_to_alt(allele: str, alt: str) -> int:
    """+1 when the tool's allele is the panel ALT (on either strand), else -1."""
    return 1 if allele in (alt, COMP.get(alt)) else -1


# --- agreement -----------------------------------------------------------------------------

def test_conformance_gwama__aligned_signs_and_combined_beta_agree(gwama, tmp_path):
    panel = _panel(150)
    cohorts = _cohorts(panel, flips=True)
    res = _ours(tmp_path, cohorts, panel, _write_gwama, "gwama")
    theirs = _gwama_out(gwama, tmp_path, len(cohorts))
    alt = dict(zip(panel["rsid"], panel["alt"], strict=True))
    ours = {c: dict(zip(t["rsid"], zip(t["beta"], t["standard_error"], strict=True), strict=True))
            for c, t in res.tables.items()}
    assert theirs.height == panel.height
    for r in theirs.iter_rows(named=True):
        s = _sign_to_alt(r["reference_allele"], alt[r["rs_number"]])
        rows = [ours[f"c{i}"].get(r["rs_number"]) for i in range(len(cohorts))]
        direction = "".join("?" if x is None else ("+" if s * x[0] > 0 else "-") for x in rows)
        assert direction == r["effects"], r["rs_number"]
        b = np.array([x[0] for x in rows if x]) * s
        w = 1 / np.array([x[1] for x in rows if x]) ** 2
        assert float(r["beta"]) == pytest.approx(float((w * b).sum() / w.sum()), abs=6e-7)
    # GWAMA warns once per strand-flipped marker (relative to the first study); we count them.
    warned = (tmp_path / "out.err.out").read_text().count("wrong strand")
    assert warned == sum(lg.changed["strand_flipped"] for lg in res.ledgers.values()) > 0
    for c, df in zip(res.tables, cohorts, strict=True):  # and against the planted truth
        truth = dict(zip(df["rsid"], df["_true_beta"], strict=True))
        assert all(ours[c][k][0] == truth[k] for k in ours[c])


def test_conformance_plink19__per_study_effects_equal_our_aligned_betas(plink19, tmp_path):
    panel = _panel(150, seed=2)
    cohorts = _cohorts(panel, flips=False, seed=3)
    res = _ours(tmp_path, cohorts, panel, _write_assoc, "assoc")
    files = [f"c{i}.assoc" for i in range(len(cohorts))]
    # oracle: plink1.9 --meta-analysis c0.assoc c1.assoc c2.assoc + qt study report-all --out pm
    _run([plink19, "--meta-analysis", *files, "+", "qt", "study", "report-all", "--out", "pm"],
         tmp_path)
    theirs = _read_ws(tmp_path / "pm.meta")
    assert not (tmp_path / "pm.prob").exists()
    alt = dict(zip(panel["rsid"], panel["alt"], strict=True))
    assert theirs.height == panel.height
    for r in theirs.iter_rows(named=True):
        s = _sign_to_alt(r["A1"], alt[r["SNP"]])
        for i in range(len(cohorts)):
            t = res.tables[f"c{i}"].filter(pl.col("rsid") == r["SNP"])
            if r[f"F{i}"] == "NA":
                assert t.height == 0
            else:  # plink prints 4 decimals
                assert float(r[f"F{i}"]) == pytest.approx(s * t["beta"][0], abs=5.1e-5)


# --- where we differ on purpose (docs/harmonisation.md) --------------------------------------------

def test_differs_gwama__indels_aligned_not_skipped_and_never_merged_by_strand(gwama, plink19, tmp_path):
    panel = pl.DataFrame({"chromosome": ["1"] * 2, "base_pair_location": [100, 200],
                          "ref": ["A", "C"], "alt": ["AT", "G"], "alt_frequency": [0.2, 0.3],
                          "rsid": ["rs1", "rs2"]})
    c0 = pl.DataFrame({"rsid": ["rs1", "rs2"], "chromosome": ["1", "1"], "base_pair_location": [100, 200],
                       "effect_allele": ["AT", "G"], "other_allele": ["A", "C"], "beta": [0.3, 0.2],
                       "standard_error": [0.1, 0.1], "effect_allele_frequency": [0.2, 0.3], "n": [1000, 1000]})
    c1 = c0.with_columns(pl.Series("effect_allele", ["TA", "G"]), pl.Series("other_allele", ["T", "C"]))
    res = _ours(tmp_path, [c0, c1], panel, _write_gwama, "gwama")
    _gwama_out(gwama, tmp_path, 2)
    # GWAMA: "has problem with alleles for marker rs1 ... Skipping marker!" in both studies.
    assert (tmp_path / "out.err.out").read_text().count("problem with alleles for marker rs1") == 2
    assert "rs1" not in (tmp_path / "out.out").read_text()
    # ours: the indel kept where it matches, and T/TA is not taken for A/AT's other strand
    assert res.tables["c0"]["variant_id"].to_list() == ["1:100:A:AT", "1:200:C:G"]
    assert res.ledgers["c1"].removed["allele_mismatch"] == 1
    assert res.tables["c1"]["rsid"].to_list() == ["rs2"]
    # plink 1.9 compares indels exactly too: the T/TA study is an ALLELE_MISMATCH there as well.
    for i, c in enumerate((c0, c1)):
        _write_assoc(c, tmp_path / f"p{i}.assoc")
    # oracle: plink1.9 --meta-analysis p0.assoc p1.assoc + qt --out pm
    _run([plink19, "--meta-analysis", "p0.assoc", "p1.assoc", "+", "qt", "--out", "pm"], tmp_path)
    assert "p1.assoc\trs1\tALLELE_MISMATCH" in (tmp_path / "pm.prob").read_text()


def test_differs_gwama_plink19__palindromes_of_a_reverse_strand_cohort_keep_their_sign(gwama, tmp_path):
    panel = _panel(120, n_pal=20, seed=4)
    c0 = _cohorts(panel, k=1, flips=False, seed=5)[0]
    # the same cohort reported on the reverse strand: every allele complemented, same betas
    c1 = c0.with_columns(pl.col("effect_allele").replace(COMP), pl.col("other_allele").replace(COMP))
    res = _ours(tmp_path, [c0, c1], panel, _write_gwama, "gwama")
    theirs = _gwama_out(gwama, tmp_path, 2)
    pal = panel.filter(pl.col("ref").is_in(["A", "T"]) & pl.col("alt").is_in(["A", "T"])
                       | pl.col("ref").is_in(["C", "G"]) & pl.col("alt").is_in(["C", "G"]))["rsid"]
    gw = theirs.filter(pl.col("rs_number").is_in(pal.implode()))
    # GWAMA reads the reverse-strand T/A as a swap of the forward A/T: opposite signs,
    # though both cohorts report the same effect.
    assert gw.height == 20 and set(gw["effects"].to_list()) <= {"+-", "-+"}
    # ours: the cohort's 120 other SNPs say "reverse strand", so the labels are complemented
    # and both cohorts give every palindrome the same aligned beta.
    b0, b1 = (res.tables[c].filter(pl.col("rsid").is_in(pal.implode())).sort("rsid")["beta"]
              for c in ("c0", "c1"))
    assert b0.len() == b1.len() == 20 and b0.to_list() == b1.to_list()
    assert res.ledgers["c1"].changed["strand_flipped"] == panel.height
    assert res.ledgers["c1"].removed["palindrome_ambiguous"] == 0


def test_differs__mismatched_alleles_counted_in_the_ledger_not_dropped_silently(gwama, plink19, tmp_path):
    panel = _panel(30, seed=6)
    c0 = _cohorts(panel, k=1, flips=False, seed=7)[0]
    # every 5th marker: the other allele becomes a base that is neither allele nor the
    # effect allele's complement (so no swap, flip or palindrome can explain it)
    third = [next(b for b in "ACGT" if b not in (ea, oa, COMP[ea]))
             for ea, oa in zip(c0["effect_allele"], c0["other_allele"], strict=True)]
    wrong = c0.with_columns(
        pl.when(pl.int_range(pl.len()) % 5 == 0).then(pl.Series(third))
        .otherwise(pl.col("other_allele")).alias("other_allele"))
    n_wrong = (wrong["other_allele"] != c0["other_allele"]).sum()
    res = _ours(tmp_path, [c0, wrong], panel, _write_gwama, "gwama")
    _gwama_out(gwama, tmp_path, 2)
    # GWAMA: "Marker rsN has wrong alleles. Marker dropped." only in its .err.out
    assert (tmp_path / "out.err.out").read_text().count("wrong alleles") == n_wrong
    for i, c in enumerate((c0, wrong)):
        _write_assoc(c, tmp_path / f"p{i}.assoc")
    # oracle: plink1.9 --meta-analysis p0.assoc p1.assoc + qt --out pm   (lists them in pm.prob)
    _run([plink19, "--meta-analysis", "p0.assoc", "p1.assoc", "+", "qt", "--out", "pm"], tmp_path)
    assert (tmp_path / "pm.prob").read_text().count("ALLELE_MISMATCH") == n_wrong
    # ours: counted per cohort and reason, with in = kept + removed
    lg = res.ledgers["c1"]
    assert lg.removed["allele_mismatch"] == n_wrong
    assert lg.n_in == lg.n_kept + sum(lg.removed.values())


def test_differs_plink19__strand_flips_aligned_not_reported_as_mismatch(plink19, tmp_path):
    panel = _panel(40, seed=8)
    c0, c1 = _cohorts(panel, k=2, flips=True, seed=9)
    n_flip = int(c1["_flip"].sum())
    res = _ours(tmp_path, [c0, c1], panel, _write_assoc, "assoc")
    # oracle: plink1.9 --meta-analysis c0.assoc c1.assoc + qt --out pm
    _run([plink19, "--meta-analysis", "c0.assoc", "c1.assoc", "+", "qt", "--out", "pm"], tmp_path)
    assert (tmp_path / "pm.prob").read_text().count("ALLELE_MISMATCH") == n_flip > 0
    assert res.ledgers["c1"].changed["strand_flipped"] == n_flip
    assert res.ledgers["c1"].n_kept == c1.height
