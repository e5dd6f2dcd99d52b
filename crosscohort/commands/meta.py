"""``crosscohort meta``: fixed-effect, random-effects and sample-size meta-analysis.

Two uses: the workflow's (``COHORT=FILE`` arguments are harmonised GWAS-SSF
tables, ``--format harmonised``, the default) and METAL's (raw files of any
supported format, harmonised in the same call: any other ``--format``, or
``--columns``/``--reference``).

Both combine one chromosome of every cohort at a time and write the output as
they go (:mod:`crosscohort.central.meta.stream`): harmonised tables are read from disk
chromosome by chromosome, so memory follows the largest chromosome, not the
genome; raw inputs are harmonised whole (one cohort at a time) first.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from crosscohort.commands import add_command, warn_empty_cohorts
from crosscohort.commands.harmonise import add_eaf_max_diff, add_palindrome_max_maf, cohort_paths
from crosscohort.contract.errors import ConfigError
from crosscohort.runtime.process import release_freed_pages_sooner
from crosscohort.schemas import default

__all__ = ["register", "run"]

#: ``--format`` value for tables that are already harmonised (the workflow's call).
HARMONISED = "harmonised"


def register(subparsers: argparse._SubParsersAction) -> None:
    # formats.py is plain data: it loads no table library (--help stays light).
    from crosscohort.central.harmonise.formats import FORMAT_NAMES

    p = add_command(
        subparsers,
        "meta",
        description=(
            "Combine summary statistics of one trait, matching variants on chromosome, "
            "position and alleles. Inputs are harmonised GWAS-SSF tables (output of "
            "`crosscohort harmonise`) unless --format names another format (or auto), or "
            "--columns/--reference is given: then each file is read, checked and aligned "
            "(crosscohort harmonise's rules) before combining, in one call, as METAL users "
            "do. Writes OUT (GWAS-SSF: fixed-effect beta/SE and p; with --method samplesize "
            "p is METAL's sample-size Z test's, Z in z_samplesize; plus n_studies, direction, "
            "Cochran's Q, I^2, DerSimonian-Laird tau2 and random-effects columns, EAF range, "
            "n_effective) and OUT.summary.json (variants, per-cohort and meta lambda_GC, "
            "genome-wide hits, per-cohort ledgers)."
        ),
    )
    p.add_argument("cohorts", nargs="+", metavar="[COHORT=]FILE",
                   help="a cohort id and its file; without COHORT= the id is the file name "
                        "up to its first dot. FILE:FMT sets one file's format, FILE:MAP.yaml "
                        "its own column map and options (raw inputs)")
    method = default("meta.method")
    # Checked in run against crosscohort.central.meta.METHODS, which --help does not load.
    p.add_argument("--method", default=method, metavar="{fixed,random,samplesize,mrmega}",
                   help=f"primary estimate (default {method}). fixed and random write the same "
                        "table (both models); samplesize puts the sample-size Z test's p in "
                        "p_value/neg_log_10_p_value (needs n and p per cohort); mrmega adds "
                        "MR-MEGA's meta-regression on --pcs axes of genetic variation "
                        "(mrmega_* columns; axes and EAF distances in OUT.summary.json) and "
                        "puts its association test's p there (needs EAF per cohort and at "
                        "least --pcs + 3 cohorts)")
    p.add_argument("--pcs", type=int, metavar="T",
                   help=f"--method mrmega: axes of genetic variation (MR-MEGA --pc; default "
                        f"{default('meta.pcs')}; needs T + 3 cohorts or more)")
    p.add_argument("--gco", action="store_true",
                   help="--method mrmega: genomic control of the association chi-squares on "
                        "output (MR-MEGA --gco); --gc corrects each cohort's SEs as MR-MEGA's --gc")
    p.add_argument("--gc", action="store_true",
                   help="genomic control: multiply SEs of cohorts with lambda_GC > 1 by "
                        "sqrt(lambda) before combining (METAL GENOMICCONTROL ON)")
    p.add_argument("--cohort-order", metavar="C1,C2,...",
                   help="order of the direction string (default: argument order)")
    p.add_argument("--format", default=HARMONISED, metavar="FMT",
                   help="input format: 'harmonised' (default; GWAS-SSF from crosscohort "
                        "harmonise, used as is), 'auto' (detect per file), or one of "
                        f"{', '.join(f for f in FORMAT_NAMES if f != 'auto')}")
    p.add_argument("--columns", metavar="MAP.yaml",
                   help="column mapping for raw inputs (see crosscohort harmonise --help); "
                        "implies --format auto unless a format is given")
    p.add_argument("--reference", metavar="REF.tsv.gz",
                   help="align raw inputs to this forward-strand panel (else byte order); "
                        "implies --format auto unless a format is given")
    add_palindrome_max_maf(p, "raw inputs: keep A/T and C/G SNPs only when the cohort MAF is at most this")
    p.add_argument("--default-n", type=int, metavar="N",
                   help="raw inputs: sample size for rows and files without one")
    p.add_argument("--numeric-alleles", action="store_true",
                   help="raw inputs: read alleles 1/2/3/4 as A/C/G/T (legacy files)")
    add_eaf_max_diff(p, "flag (flag_eaf_far, kept) variants where a cohort's EAF differs from "
                        "the other cohorts' n-weighted EAF by more than D; raw inputs with "
                        "--reference are also checked against the panel")
    p.add_argument("--loo-threshold", type=float, metavar="P",
                   help="write OUT.loo.tsv: leave-one-cohort-out fixed-effect beta/SE/p for "
                        "the lead variant of each locus with p < P (e.g. 5e-8)")
    window = float(default("report.window_kb"))
    p.add_argument("--loo-window-kb", type=float, default=window, metavar="KB",
                   help=f"locus window for --loo-threshold leads (default {window:g})")
    p.add_argument("--tbl", type=Path, metavar="PATH",
                   help="also write METAL's .tbl layout (MarkerName Allele1 Allele2 Freq1 ... "
                        "HetPVal; lower-case alleles) to PATH; with --method mrmega, MR-MEGA's "
                        ".result layout (MarkerName Chromosome Position EA NEA EAF ... lnBF "
                        "Comments)")
    p.add_argument("--out", required=True, type=Path, help="output table (.tsv, .tsv.gz, .parquet)")
    p.set_defaults(func=run)


def _harmonise_raw(args: argparse.Namespace, fmt: str) -> tuple[dict, list]:
    """Raw inputs: cohort id -> harmonised table (meta columns only), and the harmonisation ledgers."""
    from crosscohort.central.harmonise.readers import harmonise_files, parse_input, read_column_map
    from crosscohort.central.meta.ivw import meta_input_columns

    mapping: dict = read_column_map(args.columns) if args.columns else {}
    if args.format == HARMONISED:
        fmt = mapping.get("format", fmt)
    inputs = [parse_input(item, default_format=fmt) for item in args.cohorts]
    h = harmonise_files(inputs, reference=args.reference, columns=mapping.get("columns"),
                        default_n=(args.default_n if args.default_n is not None
                                   else mapping.get("default_n")),
                        numeric_alleles=(args.numeric_alleles
                                         or bool(mapping.get("numeric_alleles", False))),
                        missing=tuple(mapping.get("missing", ())),
                        palindrome_max_maf=args.palindrome_max_maf,
                        eaf_max_diff=args.eaf_max_diff, variant_ids=False,
                        keep=meta_input_columns(samplesize=args.method == "samplesize"),
                        # The next file parsed while this one's values are finished and
                        # it is aligned (benchmarks/README.md, "Meta-analysis", 2cf79c0).
                        prefetch=True)
    return dict(h.tables), list(h.ledgers.values())


def _has_map(item: str) -> bool:
    """Whether a ``[C=]FILE:MAP.yaml`` argument carries its own column map (a raw input)."""
    return item.rpartition(":")[2].endswith((".yaml", ".yml"))


def _check_files(args: argparse.Namespace, fmt: str) -> dict:
    """One file per cohort (by content), and no output that is an input; cohort id -> file."""
    from crosscohort.central.harmonise.files import check_distinct_inputs, check_outputs_not_inputs
    from crosscohort.central.harmonise.readers import parse_input

    if fmt == HARMONISED:
        paths = cohort_paths(args.cohorts)
    else:
        paths = {s.cohort: s.path for s in (parse_input(i, default_format=fmt)
                                            for i in args.cohorts)}
    check_distinct_inputs(paths)
    outputs = [args.out, *(args.out.with_name(args.out.name + x) for x in
                           (".summary.json", ".loo.tsv", ".harmonise.json")), args.tbl]
    check_outputs_not_inputs([o for o in outputs if o is not None],
                             [*paths.values(), args.reference, args.columns], option="--out")
    return paths


def run(args: argparse.Namespace) -> int:
    fmt = args.format
    if fmt == HARMONISED and (args.columns or args.reference or args.default_n is not None
                              or args.numeric_alleles
                              or any(_has_map(i) for i in args.cohorts)):
        fmt = "auto"
    if fmt != HARMONISED:
        # Harmonisation then the meta-analysis in this process: before polars loads.
        release_freed_pages_sooner()
    from crosscohort.central.meta import METHODS, leave_one_out, write_loo
    from crosscohort.central.meta.ivw import meta_input_columns
    from crosscohort.central.meta.stream import (
        Unsorted,
        file_parts,
        memory_parts,
        meta_analyse_to_file,
    )
    from crosscohort.contract.sumstats import read_sumstats

    if args.method not in METHODS:
        raise ConfigError(f"--method must be one of {', '.join(METHODS)}; got {args.method!r}")
    files = _check_files(args, fmt)
    order = [c.strip() for c in args.cohort_order.split(",")] if args.cohort_order else None
    samplesize = args.method == "samplesize"
    keep = meta_input_columns(samplesize=samplesize)
    if args.method != "mrmega" and (args.gco or args.pcs is not None):
        raise ConfigError(f"--gco and --pcs apply to --method mrmega only; got --method {args.method}")
    pcs = default("meta.pcs") if args.pcs is None else args.pcs
    options = dict(method=args.method, gc=args.gc, cohort_order=order,
                   eaf_max_diff=args.eaf_max_diff, tbl=args.tbl,
                   loo_threshold=args.loo_threshold, pcs=pcs, gco=args.gco)
    harmonise_ledgers = None
    if fmt == HARMONISED:
        # The workflow's call: one chromosome of every cohort in memory at a time, read
        # from the files as they are combined, so memory does not grow with the genome
        # (benchmarks/README.md, "Meta-analysis"). Only the columns meta_analyse reads are parsed.
        try:
            result = meta_analyse_to_file(
                lambda: file_parts(files, sorted(files), keep=keep, samplesize=samplesize),
                list(files), args.out, **options)
        except Unsorted as exc:
            print(f"{exc}: reading the tables whole instead of one chromosome at a time",
                  file=sys.stderr)
            tables = {c: read_sumstats(p, columns=keep) for c, p in files.items()}
            parts = memory_parts(tables, sorted(tables), samplesize=samplesize, take=True)
            del tables
            result = meta_analyse_to_file(parts, list(files), args.out, **options)
            del parts
    else:
        tables, harmonise_ledgers = _harmonise_raw(args, fmt)
        cohorts = list(tables)
        parts = memory_parts(tables, sorted(tables), samplesize=samplesize, take=True)
        del tables  # the parts hold what is needed, cut to the meta columns
        result = meta_analyse_to_file(parts, cohorts, args.out, **options)
        del parts
    if harmonise_ledgers is None:
        warn_empty_cohorts(result.ledgers, stage="meta", files=files)
    else:
        warn_empty_cohorts({lg.cohort: lg for lg in harmonise_ledgers}, stage="harmonise", files=files)
    far = {c: lg.changed.get("eaf_far_from_other_cohorts_flagged", 0)
           for c, lg in result.ledgers.items()}
    if any(far.values()):
        # Shown, not only filed: a far EAF often means a mislabelled allele or another ancestry.
        print(f"EAF differs from the other cohorts' by more than {args.eaf_max_diff} "
              "(flag_eaf_far, kept): " + ", ".join(f"{c} {k:,}" for c, k in far.items()),
              file=sys.stderr)
    if harmonise_ledgers is not None:
        path = args.out.with_name(args.out.name + ".harmonise.json")
        path.write_text(json.dumps([lg.to_dict() for lg in harmonise_ledgers], indent=2,
                                   sort_keys=True) + "\n")
    if args.loo_threshold is not None:
        from crosscohort.central.loci import distance_loci

        # Loci from the significant rows only (the others cannot lead or join a locus),
        # leave-one-out from each cohort's rows at them: kept while streaming.
        leads = distance_loci(result.significant, threshold=args.loo_threshold,
                              window_kb=args.loo_window_kb)
        loo = leave_one_out(result.loo_tables, leads,
                            cohort_order=list(result.cohorts), se_factors=result.gc_applied)
        write_loo(loo, args.out.with_name(args.out.name + ".loo.tsv"))
    return 0
