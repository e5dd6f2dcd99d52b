"""KING-robust kinship and ``--king-cutoff`` against plink2 on a cohort with planted relatives."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from bed_reader import to_bed

from crosscohort.cli import main
from crosscohort.tre.genotypes import Genotypes
from crosscohort.tre.relatedness import (
    KING_THIRD_DEGREE,
    king_cutoff_removal,
    king_kinship_matrix,
    king_related_pairs,
)

N_FOUNDERS, N_VARIANTS = 120, 3000
# Children of founder pairs: a trio (0 x 1), full sibs with both parents (2 x 3),
# half sibs (4 x 5, 4 x 6), three full sibs (7 x 8); and from parents left out of the
# data: a sibling pair and a sibling trio (ties in plink2's greedy removal).
KIDS = [(0, 1), (2, 3), (2, 3), (4, 5), (4, 6), (7, 8), (7, 8), (7, 8)]
HIDDEN_KIDS = [(0, 1), (0, 1), (2, 3), (2, 3), (2, 3)]


def _planted(d: Path, seed: int = 3) -> Path:
    """Unrelated founders plus their children (Mendelian transmission per variant), shuffled."""
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.05, 0.5, N_VARIANTS)

    def haps(k: int) -> np.ndarray:
        return (rng.random((k, N_VARIANTS)) < p).astype(np.int8)

    def child(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> tuple:
        t1, t2 = rng.random(N_VARIANTS) < 0.5, rng.random(N_VARIANTS) < 0.5
        return np.where(t1, a[0], a[1]), np.where(t2, b[0], b[1])

    people = list(zip(haps(N_FOUNDERS), haps(N_FOUNDERS), strict=True))
    ids = [(f"F{i}", f"s{i}") for i in range(N_FOUNDERS)]
    for k, (a, b) in enumerate(KIDS):
        people.append(child(people[a], people[b]))
        ids.append((f"K{k}", f"k{k}"))
    hidden = list(zip(haps(4), haps(4), strict=True))
    for k, (a, b) in enumerate(HIDDEN_KIDS):
        people.append(child(hidden[a], hidden[b]))
        ids.append((f"H{k}", f"h{k}"))
    g = np.array([a + b for a, b in people], dtype=np.float64)
    g[rng.random(g.shape) < 0.01] = np.nan  # missing calls: per-pair variant sets differ
    order = rng.permutation(len(g))
    g, ids = g[order], [ids[i] for i in order]
    n_x = 10  # chromosome X variants: KING (ours and plink2's) uses autosomes only
    prefix = d / "r"
    to_bed(prefix.with_suffix(".bed"), g, count_A1=True, num_threads=1,
           properties={"fid": [f for f, _ in ids], "iid": [i for _, i in ids],
                       "sid": [f"v{j}" for j in range(N_VARIANTS)],
                       "chromosome": ["1"] * 1500 + ["2"] * (N_VARIANTS - 1500 - n_x) + ["X"] * n_x,
                       "bp_position": np.arange(N_VARIANTS) + 1})
    return prefix


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _planted(tmp_path_factory.mktemp("king"))


@pytest.mark.oracle
def test_king_kinship__matches_plink2_make_king_table(cohort, plink2):
    out = cohort.parent / "p2"
    # Oracle command: plink2 --bfile r --make-king-table --out p2  (all pairs, .kin0)
    subprocess.run([plink2, "--bfile", str(cohort), "--make-king-table", "--out", str(out)],
                   check=True, capture_output=True)
    t = pl.read_csv(f"{out}.kin0", separator="\t")
    geno = Genotypes([cohort])
    n = geno.n_samples
    assert t.height == n * (n - 1) // 2
    # A small memory budget forces several row blocks.
    k = king_kinship_matrix(geno, chunk_size=700, memory_bytes=20 * n * 17)
    pos = {s: i for i, s in enumerate(geno.samples["iid"].to_list())}
    a = np.array([pos[x] for x in t["IID1"]])
    b = np.array([pos[x] for x in t["IID2"]])
    diff = np.abs(k[a, b] - t["KINSHIP"].to_numpy())
    # plink2 prints 6 significant digits: at most 5e-7 absolute for |kinship| < 0.5.
    assert diff.max() <= 5.0e-7 + 1e-12, diff.max()
    np.testing.assert_allclose(k, k.T)
    # the planted relatives are found and nobody else
    pairs = king_related_pairs(geno, chunk_size=700)
    assert pairs.pairs.height == int((t["KINSHIP"] > KING_THIRD_DEGREE).sum())
    # NSNP, HETHET, IBS0 as plink2 reports them
    p2 = t.filter(pl.col("KINSHIP") > KING_THIRD_DEGREE)
    key = {tuple(sorted((pos[x], pos[y]))): r for x, y, r in
           zip(p2["IID1"], p2["IID2"], p2.iter_rows(named=True), strict=True)}
    for row in pairs.pairs.iter_rows(named=True):
        ref = key[(row["i"], row["j"])]
        assert row["nsnp"] == ref["NSNP"]
        assert abs(row["hethet"] - ref["HETHET"]) < 5e-7 and abs(row["ibs0"] - ref["IBS0"]) < 5e-7


@pytest.mark.oracle
def test_qc_king_cutoff__removes_what_plink2_king_cutoff_removes(cohort, plink2, tmp_path):
    out = tmp_path / "p2"
    # Oracle command: plink2 --bfile r --king-cutoff 0.0884 --out p2
    subprocess.run([plink2, "--bfile", str(cohort), "--king-cutoff", "0.0884", "--out", str(out)],
                   check=True, capture_output=True)
    want = sorted(ln.split("\t")[1] for ln in Path(f"{out}.king.cutoff.out.id").read_text().splitlines()[1:])
    ours = tmp_path / "qc"
    # QC thresholds that remove nothing else, so the comparison is of KING alone.
    assert main(["qc", "--bfile", str(cohort), "--out-prefix", str(ours), "--mac", "1",
                 "--maf", "0", "--hwe", "0", "--king-cutoff", "0.0884"]) == 0
    kept = {ln.split("\t")[1] for ln in Path(f"{ours}.samples.keep").read_text().splitlines()[1:]}
    all_ids = set(Genotypes([cohort]).samples["iid"].to_list())
    assert sorted(all_ids - kept) == want
    led = json.loads(Path(f"{ours}.ledger.json").read_text())[0]
    assert led["removed"]["related_above_king_cutoff"] == len(want)
    assert led["n_in"] == led["n_kept"] + sum(led["removed"].values())
    pairs = pl.read_csv(f"{ours}.king.tsv", separator="\t")
    assert pairs.columns == ["#FID1", "IID1", "FID2", "IID2", "NSNP", "HETHET", "IBS0", "KINSHIP"]
    # The table holds every pair above the relatives' floor (third degree, 0.0442), the removed ones too.
    assert (pairs["KINSHIP"] > 0.0442).all() and (pairs["KINSHIP"] > 0.0884).sum() >= len(KIDS) + 4


def test_king_cutoff_removal__keeps_samples_with_one_relative_first():
    # trio: 0, 1 parents of 2; a sibling pair 3-4; a chain 5-6-7; a triangle 8-9-10;
    # a star 11 with leaves 12, 13, 14
    i = np.array([0, 1, 3, 5, 6, 8, 8, 9, 11, 11, 11])
    j = np.array([2, 2, 4, 6, 7, 9, 10, 10, 12, 13, 14])
    removed = king_cutoff_removal(15, i, j)
    # triangle: the first of the most related (8), then the partner of the first with one (9 -> 10)
    assert np.flatnonzero(removed).tolist() == [2, 4, 6, 8, 10, 11]


def test_qc_king_cutoff__off_keeps_relatives_and_ledger_counts_zero(cohort, tmp_path):
    ours = tmp_path / "qc"
    assert main(["qc", "--bfile", str(cohort), "--out-prefix", str(ours), "--mac", "1",
                 "--king-cutoff", "none", "--relatives-min-kinship", "none"]) == 0
    led = json.loads(Path(f"{ours}.ledger.json").read_text())[0]
    assert "related_above_king_cutoff" not in led["removed"]
    assert not Path(f"{ours}.king.tsv").exists()


@pytest.mark.oracle
def test_qc_relatives__pairs_above_the_floor_written_with_plink2_kinship_when_nobody_is_removed(
        cohort, plink2, tmp_path):
    out = tmp_path / "p2"
    # Oracle command: plink2 --bfile r --make-king-table --king-table-filter 0.0442 --out p2
    subprocess.run([plink2, "--bfile", str(cohort), "--make-king-table", "--king-table-filter", "0.0442",
                    "--out", str(out)], check=True, capture_output=True)
    want = pl.read_csv(f"{out}.kin0", separator="\t")
    ours = tmp_path / "qc"
    # QC thresholds that remove no variant; relatives kept (--king-cutoff none): the schema's floor.
    assert main(["qc", "--bfile", str(cohort), "--out-prefix", str(ours), "--mac", "1", "--maf", "0",
                 "--hwe", "0", "--king-cutoff", "none"]) == 0
    kept = Path(f"{ours}.samples.keep").read_text().splitlines()[1:]
    assert len(kept) == Genotypes([cohort]).n_samples  # nobody removed
    got = pl.read_csv(f"{ours}.king.tsv", separator="\t")
    assert got.columns == ["#FID1", "IID1", "FID2", "IID2", "NSNP", "HETHET", "IBS0", "KINSHIP"]
    key = {tuple(sorted((a, b))): k for a, b, k in zip(want["IID1"], want["IID2"], want["KINSHIP"], strict=True)}
    mine = {tuple(sorted((a, b))): k for a, b, k in zip(got["IID1"], got["IID2"], got["KINSHIP"], strict=True)}
    # The same pairs (the planted relatives and a few chance pairs just above 0.0442) ...
    assert sorted(mine) == sorted(key) and len(mine) > len(KIDS) + 4
    # ... with plink2's kinship to its print precision (6 significant digits).
    assert max(abs(mine[p] - key[p]) for p in key) <= 5.0e-7 + 1e-12
    # and the values of the full KING computation (the matrix, not the pair filter)
    geno = Genotypes([cohort])
    k = king_kinship_matrix(geno)
    pos = {s: i for i, s in enumerate(geno.samples["iid"].to_list())}
    np.testing.assert_allclose([mine[p] for p in mine], [k[pos[a], pos[b]] for a, b in mine], rtol=0, atol=1e-12)
    # what the ledger says: nobody removed for relatedness, no KING reason at all
    led = json.loads(Path(f"{ours}.ledger.json").read_text())[0]
    assert "related_above_king_cutoff" not in led["removed"]


def test_qc_relatives__no_autosomal_variant_gives_a_header_only_table_not_a_missing_file(tmp_path):
    # The workflow declares O.king.tsv as an output: KING that cannot run must still leave the table.
    rng = np.random.default_rng(1)
    g = rng.integers(0, 3, size=(30, 200)).astype(np.float64)
    prefix = tmp_path / "x"
    to_bed(prefix.with_suffix(".bed"), g, count_A1=True, num_threads=1,
           properties={"fid": [f"f{i}" for i in range(30)], "iid": [f"i{i}" for i in range(30)],
                       "sid": [f"v{j}" for j in range(200)], "chromosome": ["X"] * 200,
                       "bp_position": np.arange(200) + 1})
    out = tmp_path / "qc"
    assert main(["qc", "--bfile", str(prefix), "--out-prefix", str(out), "--mac", "1", "--hwe", "0",
                 "--king-cutoff", "none"]) == 0
    assert Path(f"{out}.king.tsv").read_text() == "#FID1\tIID1\tFID2\tIID2\tNSNP\tHETHET\tIBS0\tKINSHIP\n"
