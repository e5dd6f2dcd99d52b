"""``crosscohort pool-fit``: the pooled regression solved centrally from the cohorts' released sums."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from crosscohort.commands import add_command
from crosscohort.contract.errors import InputError

_DESCRIPTION = """\
Solve the pooled model of one trait from the sums each cohort released
(crosscohort sufficient, then the export gate): the fit an individual-level
regression of all cohorts' samples stacked would give, without the samples.

Quantitative traits, exactly (least squares): one intercept per cohort, the
--shared covariates with one effect across cohorts, every other covariate
(e.g. each cohort's own PCs) cohort-specific; t test with N - p residual
degrees of freedom. Binary traits: a one-step logistic estimate from the null
(score / information; cohort-specific intercepts and covariate effects); its
z is the pooled score test; beta and SE approximate the logistic fit.

Each COHORT=DIR is a directory holding TRAIT.block.json and
TRAIT.sufficient.tsv.gz (a bundle's sufficient/ directory). Variants are
matched on chromosome, position and allele pair; a variant is fitted over
the cohorts that released it.
"""


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``pool-fit`` subcommand to ``subparsers``."""
    p = add_command(
        subparsers,
        "pool-fit",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--trait", required=True, help="trait name (the files' TRAIT)")
    p.add_argument("--shared", type=_shared_names, default=[], metavar="C1[,C2...]",
                   help="covariates with one effect across cohorts (quantitative traits; e.g. age,sex); "
                        "default none: every covariate cohort-specific")
    p.add_argument("--out", required=True, metavar="PATH", help="output .tsv, .tsv.gz or .parquet")
    p.add_argument("dirs", nargs="+", metavar="[COHORT=]DIR", help="each cohort's sufficient/ directory")
    p.set_defaults(func=run)
    return p


def _shared_names(text: str) -> list[str]:
    names = [x.strip() for x in text.split(",") if x.strip()]
    if not names:
        raise argparse.ArgumentTypeError("expected covariate names separated by commas, e.g. age,sex")
    return names


def _refused(bundle: Path, trait: str) -> bool:
    """Whether ``bundle``'s manifest lists the trait's sums as refused by its gate (``[]``)."""
    import json

    try:
        manifest = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    suff = manifest.get("sufficient") if isinstance(manifest, dict) else None
    return isinstance(suff, dict) and suff.get(trait) == []


def run(args: argparse.Namespace) -> int:
    """Read, align, solve and write the pooled table and its summary (OUT.summary.json)."""
    from crosscohort.central.pooled.driver import pool_fit, pool_fit_to_file, sufficient_paths
    from crosscohort.contract.sumstats import write_sumstats
    from crosscohort.runtime.atomic import write_json

    inputs = []
    for item in args.dirs:
        d = item.partition("=")[2] if "=" in item else item
        block, sums = sufficient_paths(d, args.trait)
        if not block.is_file() and _refused(Path(d), args.trait):
            raise InputError(f"{Path(d) / 'manifest.json'}: the export gate refused the sufficient "
                             f"statistics of trait {args.trait!r} (audit.md says by which rule); "
                             f"the pooled fit needs them from every cohort given: leave {item} out")
        for f in (block, sums):
            if not f.is_file():
                raise InputError(f"{f}: no such file (pool-fit {item}: a sufficient/ directory of trait "
                                 f"{args.trait!r} holds {block.name} and {sums.name})")
        inputs.append((block, sums))
    if args.out.endswith(".parquet"):
        res = pool_fit(inputs, shared=args.shared, log=sys.stderr)
        out = write_sumstats(res.table, args.out)
    else:  # written one chromosome at a time
        res = pool_fit_to_file(inputs, args.out, shared=args.shared, log=sys.stderr)
        out = args.out
    write_json(Path(f"{args.out}.summary.json"), {"trait": args.trait, "method": res.method,
                                                  "shared": list(args.shared), **res.n_variants})
    print(f"pool-fit: {res.n_variants['variants']} rows -> {out}", file=sys.stderr)
    return 0
