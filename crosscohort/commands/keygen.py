"""``crosscohort keygen``: the TRE's Ed25519 key pair for signing export manifests."""

from __future__ import annotations

import argparse

from crosscohort.commands import add_command


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_command(
        subparsers,
        "keygen",
        description=(
            "Writes a new Ed25519 private key (PEM, mode 0600: it stays in the TRE and is given "
            "to 'crosscohort export --signing-key') and its public key (PEM: send it to the "
            "consortium, whose cohort sheet lists it in the public_key column so that "
            "'crosscohort verify --public-key' refuses unsigned or forged bundles). Never "
            "overwrites an existing file. Prints the key's fingerprint (SHA-256 of the raw "
            "public key) to compare over a second channel."
        ),
    )
    p.add_argument("--key", required=True, metavar="FILE", help="private key to create, e.g. tre.key")
    p.add_argument("--public-key", required=True, metavar="FILE", help="public key to create, e.g. tre.pub")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from crosscohort.contract.signature import generate_keypair

    fingerprint = generate_keypair(args.key, args.public_key)
    print(f"private key {args.key} (keep inside the TRE), public key {args.public_key}")
    print(f"public key SHA-256 fingerprint: {fingerprint}")
    return 0
