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
import sys

from crosscohort import __version__
from crosscohort.commands import COMMANDS, add_command
from crosscohort.contract.errors import UserError
from crosscohort.runtime.process import arena_max, retain_freed_memory, set_environment


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
    for name in COMMANDS:
        if name == chosen:
            importlib.import_module(f"crosscohort.commands.{name.replace('-', '_')}").register(sub)
        else:
            add_command(sub, name)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``crosscohort`` with ``argv`` (default: the command line); the exit status.

    Process settings (threads, allocators; :mod:`crosscohort.runtime.process`)
    are applied first, before the subcommand's modules load.
    """
    command = _chosen(sys.argv[1:] if argv is None else argv)
    set_environment(command)
    args = build_parser(argv).parse_args(argv)
    retain_freed_memory(arena_max=arena_max(command))
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"crosscohort {args.command}: error: {exc}", file=sys.stderr)
        return 2
