"""One module per ``crosscohort`` subcommand (see :mod:`crosscohort.cli`)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from crosscohort.contract.errors import ConfigError
from crosscohort.schemas import default

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
    "meta": "central: meta-analysis (fixed and random effects, sample size, MR-MEGA)",
    "pool-fit": "central: pooled regression from the cohorts' released sums (no pooling)",
    "pool": "demo: stack cohorts' phenotype and covariate files for the pooled arm",
    "compare": "demo: compare the meta-analysis with the pooled analysis",
    "clump": "LD-based loci of summary statistics against genotypes (plink1.9 --clump)",
    "report": "central: self-contained HTML report per trait",
}


def add_command(subparsers: argparse._SubParsersAction, name: str, **kwargs: Any) -> argparse.ArgumentParser:
    """Add the subcommand ``name``'s parser, its one-line help from :data:`COMMANDS`."""
    return subparsers.add_parser(name, help=COMMANDS[name], **kwargs)


def add_schema_option(p: argparse.ArgumentParser | argparse._ArgumentGroup, key: str, *,
                      type: Callable[[str], Any], help: str, **kwargs: Any) -> None:
    """Add ``--NAME`` (the last part of the config ``key``, dashed) with the schema's default.

    The help ends with ``(default X)``: the one default of the config schema
    (:mod:`crosscohort.schemas`), which the workflow's config takes too.
    """
    value = default(key)
    if type in (int, float):
        value = type(value)
    name = key.rpartition(".")[2].replace("_", "-")
    shown = f"{value:g}" if isinstance(value, float) else value
    p.add_argument(f"--{name}", type=type, default=value, help=f"{help} (default {shown})", **kwargs)


def key_value_lists(values: list[str] | None, flag: str, *, key: str = "COHORT") -> dict[str, list[str]]:
    """``KEY=VALUE`` arguments grouped by key (a key may be given more than once), in order;
    a malformed one is a one-line error."""
    out: dict[str, list[str]] = {}
    for v in values or []:
        k, sep, val = v.partition("=")
        if not sep or not k or not val:
            raise ConfigError(f"{flag} expects {key}=VALUE; got {v!r}")
        out.setdefault(k, []).append(val)
    return out


def key_value_pairs(values: list[str] | None, flag: str, *, key: str = "COHORT") -> dict[str, str]:
    """``KEY=VALUE`` arguments as an ordered dict; a malformed or repeated key is a one-line error."""
    out: dict[str, str] = {}
    for k, vals in key_value_lists(values, flag, key=key).items():
        if len(vals) > 1:
            raise ConfigError(f"{flag} given twice for {key.lower()} {k!r}")
        out[k] = vals[0]
    return out


def warn_empty_cohorts(ledgers, *, stage: str, files=None) -> None:
    """Say on stderr which cohorts contribute no variants: a file with no data lines (a
    header only: a wrong or cut file, as a rule) or one whose every row was removed.

    ``ledgers``: cohort id -> :class:`~crosscohort.contract.ledger.Ledger` of the
    ``stage`` named in the message; ``files``: cohort id -> its input file, named
    too when given. The run goes on: the other cohorts' results stand, and the
    ledger holds the counts.
    """
    import sys

    for cohort, lg in ledgers.items():
        where = f" ({files[cohort]})" if files and cohort in files else ""
        if lg.n_in == 0:
            print(f"cohort {cohort}{where}: no data lines (a header only): it contributes no "
                  "variants", file=sys.stderr)
        elif lg.n_kept == 0:
            print(f"cohort {cohort}{where}: none of its {lg.n_in:,} rows kept by {stage} (the "
                  "ledger gives each reason): it contributes no variants", file=sys.stderr)
