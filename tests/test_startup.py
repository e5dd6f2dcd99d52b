"""Small jobs start fast: numpy twins of the kernels instead of loading numba (crosscohort.runtime.jit).

The twins must give what the compiled kernels give: a whole association run
in both modes, and the decoder on odd sample counts and subsets. The compiled
kernels keep their own oracle tests (tests/test_association_speedpaths.py);
figures in benchmarks/README.md ("Start-up"), not timed here.
"""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from crosscohort.runtime.jit import small_job
from crosscohort.tre import _bed
from crosscohort.tre.association import engine, run_assoc
from tests.test_association_categorical import _simulate

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("n", [1, 5, 8, 11])
def test_decode__numpy_twin_equals_the_compiled_decoder(n):
    rng = np.random.default_rng(n)
    packed = rng.integers(0, 256, size=(7, _bed.bytes_per_variant(n)), dtype=np.uint8)
    subset = rng.permutation(n)[: max(1, n // 2)]
    for samples in (None, subset):
        compiled = _bed.decode_dosages(packed, n, samples=samples)
        with small_job(True):
            twin = _bed.decode_dosages(packed, n, samples=samples)
        np.testing.assert_array_equal(twin, compiled)


def test_run_assoc__small_job_twins_equal_the_compiled_kernels(tmp_path, monkeypatch):
    prefix = _simulate(tmp_path)
    study = tmp_path / "study.txt"
    kw = dict(pheno_names=["ldl", "cad"], covar=[study], covar_names=["age", "centre", "sex", "PC1-PC3"],
              trait_types={"cad": "binary"}, chunk_size=17, log=io.StringIO())
    small = run_assoc([prefix], study, **kw).tables
    # every job "large": the compiled kernels
    monkeypatch.setattr(engine, "SMALL_JOB_CELLS", 0)
    monkeypatch.setattr(engine, "SMALL_BINARY_JOB_CELLS", 0)
    compiled = run_assoc([prefix], study, **kw).tables
    for trait in ("ldl", "cad"):
        a, b = small[trait], compiled[trait]
        assert a.columns == b.columns and a["error_code"].to_list() == b["error_code"].to_list()
        for col in ("beta", "standard_error", "p_value", "effect_allele_frequency", "mac"):
            x, y = a[col].to_numpy(), b[col].to_numpy()
            np.testing.assert_allclose(x, y, rtol=1e-11, atol=0, err_msg=f"{trait} {col}")
        assert (a["n"] == b["n"]).all()


def test_assoc__small_job_never_imports_numba_nor_scipy_stats(tmp_path):
    prefix = _simulate(tmp_path)
    study = tmp_path / "study.txt"
    code = (
        "import sys; from crosscohort.cli import main; "
        f"rc = main(['assoc', '--bfile', {str(prefix)!r}, '--pheno', {str(study)!r}, '--pheno-name', 'ldl', "
        f"'cad', '--trait-type', 'cad=binary', '--covar', {str(study)!r}, '--covar-name', 'age', 'centre', "
        f"'--out', {str(tmp_path / 'o.{trait}.tsv')!r}]); "
        "print(rc, 'numba' in sys.modules, 'scipy.stats' in sys.modules)"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                          env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert proc.stdout.split() == ["0", "False", "False"], proc.stdout + proc.stderr[-2000:]


def test_qc_and_pca__small_cohort_never_imports_numba_and_decodes_the_same(tmp_path):
    prefix = _simulate(tmp_path)
    code = (
        "import sys; from crosscohort.cli import main; "
        f"a = main(['qc', '--bfile', {str(prefix)!r}, '--out-prefix', {str(tmp_path / 'qc')!r}]); "
        f"b = main(['pca', '--bfile', {str(prefix)!r}, '--n-pcs', '2', '--maf', '0.01', "
        f"'--out', {str(tmp_path / 'pcs.eigenvec')!r}]); "
        "print(a, b, 'numba' in sys.modules)"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                          env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert proc.stdout.split() == ["0", "0", "False"], proc.stdout + proc.stderr[-2000:]
    from crosscohort.tre.genotypes import Genotypes

    geno = Genotypes([prefix])
    compiled = geno.read(np.arange(geno.n_variants))
    with small_job(True):
        np.testing.assert_array_equal(geno.read(np.arange(geno.n_variants)), compiled)


#: Libraries whose import dominates a small job's start-up (benchmarks/README.md, "Start-up").
HEAVY = ("numpy", "polars", "scipy", "numba", "matplotlib", "pyarrow")


def test_help__loads_no_numeric_or_table_library():
    """``crosscohort COMMAND --help`` builds its parser from the command module and the
    schema alone: stage code (and numpy, polars, scipy) is imported inside ``run``.

    Every command's help runs in one fresh interpreter, in turn; while none has loaded a
    heavy library, the next one's check is as in a fresh process, and the first to load
    one is named.
    """
    code = (
        "import sys\nfrom crosscohort.cli import COMMANDS, main\n"
        "for c in COMMANDS:\n"
        "    try:\n        main([c, '--help'])\n    except SystemExit as e:\n        assert e.code == 0, c\n"
        f"    print('LOADED', c, *sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    from crosscohort.cli import COMMANDS

    loaded = [line.split()[1:] for line in proc.stdout.splitlines() if line.startswith("LOADED ")]
    assert [row[0] for row in loaded] == list(COMMANDS)
    assert [row for row in loaded if len(row) > 1] == []
