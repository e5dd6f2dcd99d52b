"""``crosscohort clump`` end to end against plink 1.9 ``--clump`` (index variants and member sets).

The fileset and the plink call are those of tests/test_compare_clump.py; here
the summary statistics go through the CLI as a GWAS-SSF file, with half the
rows' alleles swapped (matching must accept either orientation) and rows
absent from the genotypes (counted, never silently dropped).
"""

from __future__ import annotations

import json
import subprocess

import numpy as np
import polars as pl
import pytest

from crosscohort.cli import main
from tests.test_compare_clump import N_SAMPLES, _fileset, _plink_clumped


def _sumstats_file(tmp_path, ss: pl.DataFrame) -> tuple[pl.DataFrame, object]:
    """Write ``ss`` as GWAS-SSF with every other row's alleles swapped and two rows without genotype."""
    # p cubed: -log10 p grows about linearly with N, so this is the same study at
    # three times the sample size, enough for several loci at 5e-8 (order, hence LD
    # structure of the clumps, unchanged).
    ss = ss.with_columns(pl.col("p_value") ** 3)
    swap = np.arange(ss.height) % 2 == 1
    ss = ss.with_columns(
        pl.when(pl.Series(swap)).then(pl.col("other_allele")).otherwise(pl.col("effect_allele")).alias("effect_allele"),
        pl.when(pl.Series(swap)).then(pl.col("effect_allele")).otherwise(pl.col("other_allele")).alias("other_allele"))
    ghost = ss.head(1).with_columns(pl.lit(99_999_999, pl.Int64).alias("base_pair_location"),
                                    pl.lit(1e-30).alias("p_value"), pl.lit("ghost").alias("rsid"))
    # Same position as a genotyped variant, other alleles: a different variant, so not in the genotypes.
    other = ss.slice(20, 1).with_columns(pl.lit("T").alias("effect_allele"), pl.lit("TA").alias("other_allele"),
                                         pl.lit(1e-25).alias("p_value"), pl.lit("indel").alias("rsid"))
    full = pl.concat([ss, ghost, other])
    path = tmp_path / "sumstats.tsv"
    full.write_csv(path, separator="\t", float_precision=None)
    return full, path


def _ours(out_tsv, full: pl.DataFrame) -> dict[str, set[str]]:
    """Index rsid -> member rsids, read back from the CLI's TSV (members are variant_ids)."""
    got = pl.read_csv(out_tsv, separator="\t")
    vid = full.select(pl.concat_str([pl.col("chromosome"), pl.col("base_pair_location"), pl.col("other_allele"),
                                     pl.col("effect_allele")], separator=":").alias("vid"), "rsid")
    to_rsid = dict(zip(vid.get_column("vid").to_list(), vid.get_column("rsid").to_list(), strict=True))
    out = {}
    for row in got.iter_rows(named=True):
        assert to_rsid[row["variant_id"]] == row["rsid"] == row["bim_id"]
        mem = set() if row["members"] == "NONE" else {to_rsid[v] for v in row["members"].split(",")}
        assert len(mem) == row["n_members"]
        out[row["rsid"]] = mem
    return out


@pytest.mark.oracle
@pytest.mark.parametrize("p1,p2,r2,kb", [(5e-8, 1e-2, 0.1, 250), (1e-6, 1e-3, 0.2, 100)])
def test_clump_cli__clumps_equal_plink19_and_unmatched_rows_are_counted(plink19, tmp_path, p1, p2, r2, kb):
    prefix, ss, _ = _fileset(tmp_path)
    full, path = _sumstats_file(tmp_path, ss)
    out = tmp_path / "clumps.tsv"
    assert main(["clump", "--bfile", str(prefix), "--sumstats", str(path), "--clump-p1", str(p1),
                 "--clump-p2", str(p2), "--clump-r2", str(r2), "--clump-kb", str(kb), "--out", str(out)]) == 0
    ours = _ours(out, full)
    # oracle: plink1.9 --bfile geno --clump assoc.txt --clump-p1 P1 --clump-p2 P2 --clump-r2 R2
    #         --clump-kb KB --allow-no-sex --out plink   (SNP, SP2 of plink.clumped; plink
    #         warns about and skips 'ghost' and 'indel', absent from geno.bim)
    theirs = _plink_clumped(plink19, prefix, full, tmp_path, p1=p1, p2=p2, r2=r2, kb=kb)
    assert len(ours) >= 3
    assert ours == theirs
    table = pl.read_csv(out, separator="\t")
    p = table.get_column("p_value").to_numpy()
    assert np.all(np.diff(p) >= 0)  # most significant first
    pos = table.get_column("base_pair_location").to_numpy()
    assert np.all(table.get_column("span_start").to_numpy() <= pos)
    assert np.all(table.get_column("span_end").to_numpy() >= pos)
    assert np.all(table.get_column("span_end").to_numpy() - table.get_column("span_start").to_numpy()
                  < 2 * kb * 1000)
    counts = json.loads((tmp_path / "clumps.json").read_text())
    assert counts["rows_in"] == ss.height + 2
    assert counts["matched"] == ss.height
    assert counts["not_in_genotypes"] == 2
    assert counts["rows_in"] == counts["matched"] + counts["not_in_genotypes"]
    assert sorted(counts["not_in_genotypes_p2_ids"]) == sorted(
        [f"1:99999999:{full['other_allele'][-2]}:{full['effect_allele'][-2]}", "1:115000:TA:T"])
    assert counts["clumps"] == len(theirs)
    assert counts["clumped_members"] == sum(len(m) for m in theirs.values())


@pytest.mark.oracle
def test_clump_cli__keep_over_two_filesets_equals_plink19_keep(plink19, tmp_path):
    prefix, ss, _ = _fileset(tmp_path)
    full, path = _sumstats_file(tmp_path, ss)
    # Split the samples into two filesets (same .bim) and measure LD in every third sample but a few.
    halves = []
    for k, rng_ in enumerate(((0, N_SAMPLES // 2), (N_SAMPLES // 2, N_SAMPLES))):
        ids = tmp_path / f"half{k}.txt"
        ids.write_text("".join(f"f{i} i{i}\n" for i in range(*rng_)))
        subprocess.run([plink19, "--bfile", str(prefix), "--keep", str(ids), "--make-bed",
                        "--allow-no-sex", "--out", str(tmp_path / f"half{k}")], check=True, capture_output=True)
        halves.append(tmp_path / f"half{k}")
    keep = tmp_path / "keep.txt"
    keep.write_text("".join(f"f{i} i{i}\n" for i in range(N_SAMPLES) if i % 3 != 2))
    out = tmp_path / "clumps.tsv"
    kw = dict(p1=1e-6, p2=1e-3, r2=0.2, kb=150)
    assert main(["clump", "--bfile", str(halves[0]), "--bfile", str(halves[1]), "--keep", str(keep),
                 "--sumstats", str(path), "--clump-p1", str(kw["p1"]), "--clump-p2", str(kw["p2"]),
                 "--clump-r2", str(kw["r2"]), "--clump-kb", str(kw["kb"]), "--out", str(out)]) == 0
    # oracle: the same plink1.9 --clump call on the unsplit fileset with --keep keep.txt
    prefix_keep = tmp_path / "kept"
    subprocess.run([plink19, "--bfile", str(prefix), "--keep", str(keep), "--make-bed", "--allow-no-sex",
                    "--out", str(prefix_keep)], check=True, capture_output=True)
    theirs = _plink_clumped(plink19, prefix_keep, full, tmp_path, **kw)
    assert len(theirs) >= 3
    assert _ours(out, full) == theirs


def test_clump_cli__sumstats_without_p_is_a_one_line_error(tmp_path, capsys):
    prefix, ss, _ = _fileset(tmp_path)
    path = tmp_path / "nop.tsv"
    ss.drop("p_value").write_csv(path, separator="\t")
    assert main(["clump", "--bfile", str(prefix), "--sumstats", str(path), "--out", str(tmp_path / "o.tsv")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "p_value" in err and str(path) in err
