"""The ``crosscohort`` command: one subcommand per pipeline stage.

Each subcommand lives in ``crosscohort/commands/<name>.py`` and provides
``register(subparsers)`` (adds its parser, with ``--help``) and sets
``func`` to a callable taking the parsed arguments and returning an exit code.
Errors a user can fix (:class:`crosscohort.errors.UserError` and its kin) are
printed as one line naming the file, line or column and the rule, with exit
status 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from crosscohort import __version__
from crosscohort.errors import UserError

#: Subcommands in pipeline order.
COMMANDS = (
    "simulate",
    "qc",
    "pca",
    "assoc",
    "export",
    "verify",
    "harmonise",
    "meta",
    "compare",
    "report",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crosscohort",
        description=(
            "Cross-cohort federated GWAS. Inside a TRE: qc, pca, assoc, export. "
            "Centrally: verify, harmonise, meta, compare, report. "
            "Demo data: simulate."
        ),
    )
    parser.add_argument("--version", action="version", version=f"crosscohort {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"crosscohort.commands.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"crosscohort {args.command}: error: {exc}", file=sys.stderr)
        return 2
