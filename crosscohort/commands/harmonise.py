"""``crosscohort harmonise``: read cohorts' summary statistics in any format, align them to one orientation."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from crosscohort.commands import add_command, warn_empty_cohorts
from crosscohort.contract.errors import ConfigError
from crosscohort.schemas import default

__all__ = ["register", "run", "cohort_paths", "add_palindrome_max_maf", "add_eaf_max_diff"]


def cohort_paths(items: list[str]) -> dict[str, Path]:
    """``[COHORT=]FILE`` arguments as an ordered ``{cohort: path}``; :class:`ConfigError` when malformed.

    Without ``COHORT=`` the id is the file name up to its first dot, as for
    raw inputs (:func:`crosscohort.central.harmonise.readers.parse_input`).
    """
    from crosscohort.contract.keys import check_cohort_name

    out: dict[str, Path] = {}
    for item in items:
        cohort, sep, path = item.partition("=")
        if not sep and Path(item).is_file():
            cohort, path = Path(item).name.split(".")[0], item
        elif not sep or not cohort or not path:
            raise ConfigError(f"expected COHORT=FILE (or an existing FILE), got {item!r}")
        check_cohort_name(cohort)
        if cohort in out:
            raise ConfigError(f"cohort {cohort!r} given twice ({out[cohort]} and {path})")
        out[cohort] = Path(path)
    return out


def add_palindrome_max_maf(p: argparse.ArgumentParser, help: str) -> None:
    """``--palindrome-max-maf``, its default the config schema's ``harmonise.palindrome_max_maf``."""
    value = default("harmonise.palindrome_max_maf")
    p.add_argument("--palindrome-max-maf", type=float, default=value, metavar="MAF",
                   help=f"{help} (default {value:g})")


def add_eaf_max_diff(p: argparse.ArgumentParser, help: str) -> None:
    """``--eaf-max-diff``, its default the config schema's ``harmonise.eaf_max_diff``."""
    value = default("harmonise.eaf_max_diff")
    p.add_argument("--eaf-max-diff", type=float, default=value, metavar="D",
                   help=f"{help} (default {value:g}, EasyQC's allele-frequency check)")


def register(subparsers: argparse._SubParsersAction) -> None:
    # formats.py is plain data: it loads no table library (--help stays light).
    from crosscohort.central.harmonise.formats import FORMAT_NAMES

    formats = ", ".join(FORMAT_NAMES)
    p = add_command(
        subparsers,
        "harmonise",
        description=(
            "Read each cohort's summary statistics (our bundles/GWAS-SSF, PLINK 2 .glm.*[.zst], "
            "PLINK 1.9 .assoc*, REGENIE, SAIGE, BOLT-LMM, METAL, GWAMA, or any delimited file with --columns or "
            "a recognisable header), normalise values (OR -> log OR, CI -> SE, p/z/-log10 p), "
            "optionally check the genome build against --fasta and lift over with --chain, "
            "then check values, align alleles and de-duplicate. With --reference, the effect "
            "allele becomes the reference ALT (swaps negate beta and mirror EAF; strand flips "
            "are complemented; A/T and C/G SNPs by strand consensus, then EAF, or dropped). "
            "Without, each allele pair is put in byte order (other < effect), the same in every "
            "cohort. Writes OUT_DIR/{cohort}.tsv.gz and OUT_DIR/ledger.json (per cohort: in, "
            "kept, removed and changed by reason). Rules: docs/harmonisation.md."
        ),
    )
    p.add_argument("cohorts", nargs="+", metavar="[COHORT=]FILE[:FORMAT|:MAP.yaml]",
                   help=f"a cohort id and its file; FORMAT one of {formats} (default: --format); "
                        "MAP.yaml: this file's own column map and options (columns, format, "
                        "default_n, numeric_alleles, missing), replacing --columns for it; "
                        "without COHORT= the file name up to its first dot")
    p.add_argument("--format", default="auto", choices=FORMAT_NAMES,
                   help="format of files without their own :FORMAT (default auto: detected "
                        "from the header)")
    p.add_argument("--columns", metavar="MAP.yaml", type=Path,
                   help="column mapping, 'columns: {beta: EFFECT, standard_error: SE, ...}' "
                        "(fields: see docs/harmonisation.md); overrides the format's names")
    p.add_argument("--trait", help="trait name, recorded in the ledger")
    p.add_argument("--reference", metavar="REF.tsv.gz",
                   help="forward-strand panel: chromosome, base_pair_location, ref, alt, "
                        "alt_frequency (and optionally rsid/id to place marker-only rows); also gives "
                        "the other allele of files that print only the effect allele "
                        "(plink 1.9 --linear/--logistic)")
    p.add_argument("--fasta", metavar="FA",
                   help="reference genome of --build (pyfaidx): build check, indel left-normalisation")
    p.add_argument("--chain", metavar="FILE",
                   help="UCSC chain file from the cohorts' declared build to --build (liftover)")
    p.add_argument("--build", metavar="GRCh37|GRCh38",
                   help="build of --fasta/--reference and of the output (default: the declared one)")
    p.add_argument("--cohort-build", action="append", default=[], metavar="COHORT=BUILD",
                   help="a cohort's declared build (default: its bundle's meta.yaml "
                        "genome_assembly, else --build); repeatable")
    p.add_argument("--default-n", type=int, metavar="N",
                   help="sample size for rows and files without one")
    p.add_argument("--numeric-alleles", action="store_true",
                   help="read alleles 1/2/3/4 as A/C/G/T (legacy files); without it they are an error")
    add_palindrome_max_maf(p, "keep A/T and C/G SNPs only when the cohort MAF is at most this")
    add_eaf_max_diff(p, "with --reference: flag (flag_eaf_far, kept) rows whose aligned EAF "
                        "differs from the panel's by more than D")
    p.add_argument("--out-dir", required=True, type=Path, help="output directory")
    p.set_defaults(func=run)


def _cohort_builds(items: list[str]) -> dict[str, str]:
    from crosscohort.central.harmonise.build import normalise_build

    out: dict[str, str] = {}
    for item in items:
        cohort, sep, build = item.partition("=")
        if not sep or not cohort or not build:
            raise ConfigError(f"--cohort-build: expected COHORT=BUILD, got {item!r}")
        out[cohort] = normalise_build(build)
    return out


def run(args: argparse.Namespace) -> int:
    from crosscohort.central.harmonise.readers import harmonise_files, parse_input, read_column_map

    mapping = read_column_map(args.columns) if args.columns else {}
    default_format = mapping.get("format", args.format)
    specs = [parse_input(item, default_format=default_format) for item in args.cohorts]
    result = harmonise_files(
        specs,
        reference=args.reference,
        fasta=args.fasta,
        chain=args.chain,
        build=args.build,
        cohort_builds=_cohort_builds(args.cohort_build),
        columns=mapping.get("columns"),
        default_n=args.default_n if args.default_n is not None else mapping.get("default_n"),
        numeric_alleles=args.numeric_alleles or bool(mapping.get("numeric_alleles")),
        missing=tuple(mapping.get("missing", ())),
        trait=args.trait,
        palindrome_max_maf=args.palindrome_max_maf,
        eaf_max_diff=args.eaf_max_diff,
        out_dir=args.out_dir,
    )
    warn_empty_cohorts(result.ledgers, stage="harmonise",
                       files={s.cohort: s.path for s in specs})
    flagged = {c: lg.changed.get("eaf_far_from_reference_flagged", 0)
               for c, lg in result.ledgers.items()}
    if any(flagged.values()):
        # Shown, not only filed: a far EAF often means a mislabelled allele or another ancestry.
        print("EAF differs from the reference by more than "
              f"{args.eaf_max_diff} (flag_eaf_far, kept): "
              + ", ".join(f"{c} {k:,}" for c, k in flagged.items()), file=sys.stderr)
    return 0
