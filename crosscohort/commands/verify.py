"""``crosscohort verify``: check an export bundle against its cohort, signature and manifest (central side)."""

from __future__ import annotations

import argparse

from crosscohort.commands import add_command
from crosscohort.commands.gate_options import add_gate_rule_options


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_command(
        subparsers,
        "verify",
        description=(
            "Refuses (exit 2) a bundle whose manifest names another cohort than its folder "
            "(and --cohort); that is unsigned or wrongly signed when --public-key is given; "
            "whose files differ from manifest.json in SHA-256 or size, that holds a file the "
            "manifest does not list or lacks one it lists, has a damaged .gz or non-UTF-8 text, "
            "a file type or column outside the allow-list; whose declared gate rules are below "
            "the study's required ones (--min-count ... below); or with a row breaking a gate "
            "rule. On success writes a verification record."
        ),
    )
    p.add_argument("--bundle", required=True, help="bundle directory, e.g. exports/C (named for its cohort)")
    p.add_argument("--out", required=True, help="verification record JSON, e.g. results/verify/C.json")
    p.add_argument("--cohort", help="the cohort sheet's id for this bundle; the manifest must name it")
    p.add_argument("--public-key", metavar="FILE",
                   help="the cohort's Ed25519 public key (cohort sheet column public_key); when given, "
                        "the bundle must carry a valid manifest.sig.json by that key")
    req = p.add_argument_group(
        "required gate rules",
        "the study's minimum thresholds (central config export_gate); a bundle whose manifest "
        "declares a lower one is refused, whatever its rows. Defaults: the gate's defaults.",
    )
    add_gate_rule_options(req)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from crosscohort.central.verify import verify_bundle, write_record
    from crosscohort.contract.release import GateRules

    required = GateRules.from_options(args)
    verified = verify_bundle(args.bundle, cohort=args.cohort, required=required, public_key=args.public_key)
    out = write_record(verified, args.out)
    print(
        f"{args.bundle}: ok ({len(verified.files)} files, traits {sorted(verified.traits)}, "
        f"signature {verified.signature.status}); record {out}"
    )
    return 0
