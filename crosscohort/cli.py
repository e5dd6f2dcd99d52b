"""The ``crosscohort`` command: one subcommand per pipeline stage.

Each subcommand lives in ``crosscohort/commands/<name>.py`` and provides
``register(subparsers)`` (adds its parser, with ``--help``) and sets
``func`` to a callable taking the parsed arguments and returning an exit code.
Only the chosen subcommand's module is imported, so a stage's conda
environment needs only that stage's dependencies.

Errors a user can fix (:class:`crosscohort.contract.errors.UserError`) are printed as
one line naming the file, line or column and the rule, with exit status 2;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from crosscohort import __version__
from crosscohort.contract.errors import UserError
from crosscohort.runtime.memory import retain_freed_memory

#: Subcommands in pipeline order, with their one-line summaries.
COMMANDS: dict[str, str] = {
    "simulate": "write the embedded multi-ancestry demo cohorts (PLINK 1 + phenotype/covariate TSVs)",
    "qc": "TRE: sample and variant QC (call rate, HWE, MAF, MAC) with a ledger",
    "pca": "TRE: ancestry principal components from an LD-pruned variant set",
    "wgr": "TRE: whole-genome ridge regression (REGENIE step 1): LOCO predictions for assoc --pred",
    "assoc": "TRE: linear/logistic association with covariates (plink2 --glm options)",
    "keygen": "TRE: create the Ed25519 key pair that signs export manifests",
    "sufficient": "TRE: per-cohort sums for the federated pooled fit (pool-fit)",
    "export": "TRE: the export gate; writes the summary-statistics bundle and its audit",
    "verify": "central: check an export bundle's cohort, signature, manifest and gate rules",
    "harmonise": "central: align cohorts' alleles, strands and builds, with a ledger",
    "meta": "central: inverse-variance (fixed and random effects) meta-analysis",
    "pool-fit": "central: pooled regression from the cohorts' released sums (no pooling)",
    "pool": "demo: stack cohorts' phenotype and covariate files for the pooled arm",
    "compare": "demo: compare the meta-analysis with the pooled analysis",
    "clump": "LD-based loci of summary statistics against genotypes (plink1.9 --clump)",
    "report": "central: self-contained HTML report per trait",
}


def _chosen(argv: list[str]) -> str | None:
    for a in argv:
        if not a.startswith("-"):
            return a if a in COMMANDS else None
    return None


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The argument parser; only the subcommand named in ``argv`` is fully loaded."""
    parser = argparse.ArgumentParser(
        prog="crosscohort",
        description=(
            "Cross-cohort federated GWAS. Inside a TRE: qc, pca, assoc, keygen, export. "
            "Centrally: verify, harmonise, meta, compare, report. Demo data: simulate. "
            "Run 'crosscohort COMMAND --help' for a command's options."
        ),
    )
    parser.add_argument("--version", action="version", version=f"crosscohort {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    chosen = _chosen(sys.argv[1:] if argv is None else argv)
    for name, summary in COMMANDS.items():
        if name == chosen:
            importlib.import_module(f"crosscohort.commands.{name.replace('-', '_')}").register(sub)
        else:
            sub.add_parser(name, help=summary)
    return parser


#: Commands without linear algebra: OpenBLAS's worker threads would only spin (see main).
_NO_BLAS = ("harmonise", "meta")
#: polars' jemalloc for those commands: freed pages kept for reuse over jemalloc's own default
#: of 10 s (polars shortens it to 0.5 s), then returned in one step; one arena for all
#: threads, so that pages one thread frees are reused by the next thread's allocation
#: rather than kept aside in its own arena (a new parse pool per file, polars' pool).
JEMALLOC_CONF = "dirty_decay_ms:10000,muzzy_decay_ms:0,narenas:1"


def main(argv: list[str] | None = None) -> int:
    tuned = _chosen(sys.argv[1:] if argv is None else argv) in _NO_BLAS
    if tuned and "numpy" not in sys.modules:
        # numpy's and scipy's OpenBLAS each start a worker thread per core at import, which
        # spin-wait for work these commands never give them (~0.2 s of a core at 3 x 2M
        # variants, perf). Read at import only, hence before the subcommand's imports.
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
        # numpy asks the kernel for transparent huge pages for every array of 4 MiB or
        # more; where memory is backed on first touch (this VM, cloud TREs) each such fault
        # clears 2 MiB at once for temporaries reused from the heap anyway. Without: 3 x 2M
        # meta median 8.8 -> 8.2 s, system 2.5 -> 2.1 s (benchmarks/README.md).
        os.environ.setdefault("NUMPY_MADVISE_HUGEPAGE", "0")
    if tuned and "polars" not in sys.modules:
        # polars' jemalloc returns freed pages to the kernel 0.5 s after they are freed,
        # half-way (MADV_FREE, still counted in RSS) then for good after another second. A
        # raw cohort takes ~1.5 s to read and harmonise, so each file's parse faulted in
        # fresh pages for what the previous file had just freed. Kept for jemalloc's own
        # default of 10 s, then returned at once. 3 x 2M meta: 3 s gave 8.52 -> 8.06 s;
        # 10 s a further -0.14 and -0.47 s (two sets of 5 pairs), system -0.2 s, peak RSS
        # 1.27-1.31 -> 1.30-1.37 GB (5M: 2.60 -> 2.67-2.73 GB). One arena then cut the
        # peak to 1.21-1.24 GB at the same speed (4 pairs: 8.10 -> 7.97 s). A user's own
        # _RJEM_MALLOC_CONF is used instead (benchmarks/README.md).
        os.environ.setdefault("_RJEM_MALLOC_CONF", JEMALLOC_CONF)
    args = build_parser(argv).parse_args(argv)
    # Megabyte temporaries freed and re-allocated per chromosome and per block: reused from
    # the heap rather than fresh pages each time (see crosscohort.runtime.memory). meta combines
    # parts in worker threads: one heap for all, not one kept per thread (3 x 2M: peak RSS
    # 1.44-1.50 -> 1.31-1.34 GB).
    retain_freed_memory(arena_max=1 if tuned else None)
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"crosscohort {args.command}: error: {exc}", file=sys.stderr)
        return 2
