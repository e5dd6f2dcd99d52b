"""``crosscohort verify``: check an export bundle against its manifest (central side)."""

from __future__ import annotations

import argparse

from crosscohort.verify import verify_bundle, write_record


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "verify",
        help="verify an export bundle against its manifest (central)",
        description=(
            "Refuses (exit 2) a bundle whose files differ from manifest.json in SHA-256 or "
            "size, that holds a file the manifest does not list or lacks one it lists, has a "
            "damaged .gz, a file type or column outside the allow-list, or a row breaking a "
            "gate rule at the manifest's thresholds. On success writes a verification record."
        ),
    )
    p.add_argument("--bundle", required=True, help="bundle directory, e.g. exports/C")
    p.add_argument("--out", required=True, help="verification record JSON, e.g. results/verify/C.json")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    verified = verify_bundle(args.bundle)
    out = write_record(verified, args.out)
    print(f"{args.bundle}: ok ({len(verified.files)} files, traits {sorted(verified.traits)}); record {out}")
    return 0
