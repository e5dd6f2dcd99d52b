"""The export bundle: sumstats, GWAS-SSF metadata, the gate's audit and the manifest.

:func:`export_bundle` runs the whole gate for one cohort: read each trait's
association file from disk, apply :mod:`crosscohort.gate.rules`, write the
bundle into a staging directory, re-read and re-check its own output, scan
every file for sample identifiers (:mod:`crosscohort.gate.identifiers`),
write ``manifest.json`` last, and only then move the bundle into place. When
any check fails, ``out_dir`` holds only ``audit.json`` and ``audit.md``
saying why (with identifiers redacted) and :class:`GateError` is raised.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

import yaml

from crosscohort import __version__
from crosscohort.errors import ConfigError, GateError, UserError
from crosscohort.gate.identifiers import (
    SCAN_RULE,
    SampleIds,
    read_sample_ids,
    redact,
    scan_released,
)
from crosscohort.gate.rules import (
    RULE_DESCRIPTIONS,
    RULE_ORDER,
    GateResult,
    GateRules,
    apply_gate,
    released_violations,
)
from crosscohort.gate.sufficient import audit_md as sufficient_audit_md
from crosscohort.gate.sufficient import export_sufficient
from crosscohort.ledger import Ledger, read_ledgers
from crosscohort.sumstats import read_sumstats, write_sumstats

__all__ = [
    "ALLOWED_SUFFIXES",
    "MANIFEST",
    "ExportResult",
    "export_bundle",
    "file_digest",
    "software_name",
]

#: File types a bundle may hold.
ALLOWED_SUFFIXES: tuple[str, ...] = (".tsv.gz", ".yaml", ".json", ".md")
MANIFEST = "manifest.json"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,99}$")
_HEX = re.compile(r"^[0-9a-fA-F]{8,128}$")


def software_name() -> str:
    """``crosscohort <version>``, as recorded in metadata and manifests."""
    return f"crosscohort {__version__}"


def file_digest(path: str | Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def has_allowed_suffix(name: str) -> bool:
    """True when ``name`` ends with one of :data:`ALLOWED_SUFFIXES`."""
    return any(name.endswith(s) for s in ALLOWED_SUFFIXES)


@dataclass(frozen=True)
class ExportResult:
    """A released bundle: where it is, and each trait's gate result.

    ``traits[t].released`` is emptied (columns kept) once its file is written
    and re-checked: the bundle's ``{t}.tsv.gz`` is the released table, and a
    multi-trait export at biobank scale should not hold every trait's copy.
    """

    out_dir: Path
    cohort: str
    traits: dict[str, GateResult]
    files: tuple[str, ...]


def _utc_now() -> str:
    """UTC time in ISO 8601 basic format (``20261124T111224Z``).

    One token under the identifier scan's delimiters: the extended form's
    colons would split it into hour, minute and second, and a short numeric
    sample ID such as ``12`` would then match the export's own timestamp.
    """
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def _check_name(kind: str, value: str) -> None:
    if not _NAME.match(value):
        raise ConfigError(
            f"{kind} {value!r} must start with a letter or digit and use only letters, digits, "
            "'_', '.', '+', '-' (it becomes a file name)"
        )


def _prepare_out_dir(out_dir: Path) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"{out_dir}: --out-dir exists and is not a directory")
    if out_dir.is_dir():
        foreign = [p.name for p in out_dir.iterdir() if not (p.is_file() and has_allowed_suffix(p.name))]
        if foreign:
            # Only an earlier bundle (or blocked audit) is ours to replace.
            raise ConfigError(
                f"{out_dir}: --out-dir holds {sorted(foreign)[:5]}, which is not an earlier export "
                "bundle; choose an empty or new directory"
            )


def _replace_dir(staging: Path, out_dir: Path) -> None:
    if out_dir.is_dir():
        for p in out_dir.iterdir():
            p.unlink()
        out_dir.rmdir()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging.replace(out_dir)


def _metadata(
    trait: str,
    result: GateResult,
    *,
    cohort: str,
    build: str,
    ancestry: str,
    data_file: Path,
    rules: GateRules,
    qc: list[Ledger],
) -> dict:
    rel = result.released
    binary = result.trait_type == "binary"

    def top(col: str) -> int | None:
        # The largest released (rounded, rule-checked) count: never a count the gate withheld.
        if col not in rel.columns or rel.height == 0 or rel[col].null_count() == rel.height:
            return None
        return int(rel[col].max())

    sample = {
        "sample_size": top("n"),
        "sample_ancestry": [ancestry],
        "case_control_study": binary,
    }
    if binary:
        sample["case_count"] = top("n_cases")
        sample["control_count"] = top("n_controls")
    meta = {
        "data_file_name": data_file.name,
        "file_type": "GWAS-SSF v1.0",
        "data_file_md5sum": file_digest(data_file, "md5"),
        "data_file_sha256sum": file_digest(data_file),
        "is_harmonised": False,
        "genome_assembly": build,
        "coordinate_system": "1-based",
        "trait_description": [trait],
        "cohort": [cohort],
        "analysis_software": software_name(),
        "case_control_study": binary,
        "sample_size": sample["sample_size"],
        "samples": [sample],
        "date_last_modified": _utc_now()[:10],
    }
    if binary:
        meta["case_count"] = sample["case_count"]
        meta["control_count"] = sample["control_count"]
    meta["data_qc"] = [
        {"stage": q.stage, "unit": q.unit, "trait": q.trait, "n_in": q.n_in, "n_kept": q.n_kept,
         "removed": dict(q.removed)}
        for q in qc if q.trait in (None, trait)
    ]
    meta["export_gate"] = {
        "rows_in": result.ledger.n_in,
        "rows_released": result.ledger.n_kept,
        "rows_suppressed": dict(result.ledger.removed),
        "rules": rules.to_dict(),
    }
    return meta


def _trait_audit(trait: str, result: GateResult, rules: GateRules, input_name: str) -> dict:
    binary = result.trait_type == "binary"
    rows = []
    for rule in RULE_ORDER:
        applies = not (
            (rule == "min_mac_group" and (not binary or rules.min_mac_group == 0))
            or (rule == "min_residual_df" and rules.min_residual_df == 0)
        )
        rows.append({
            "rule": rule,
            "threshold": rules.threshold(rule),
            "description": RULE_DESCRIPTIONS[rule],
            "rows_suppressed": result.ledger.removed.get(rule, 0),
            # "pass": no released row breaks the rule (enforced, then re-checked on the file).
            "status": "pass" if applies else "not applicable",
        })
    return {
        "trait_type": result.trait_type,
        "input_file": input_name,
        "released_file": f"{trait}.tsv.gz",
        "rows_in": result.ledger.n_in,
        "rows_released": result.ledger.n_kept,
        "rows_suppressed": sum(result.ledger.removed.values()),
        "rules": rows,
        "columns_released": list(result.columns_released),
        "columns_internal_stripped": list(result.columns_internal_stripped),
        "columns_dropped": list(result.columns_dropped),
        "ledger": result.ledger.to_dict(),
    }


def _audit_md(audit: dict) -> str:
    out = [
        f"# Export gate audit: cohort {audit['cohort']}",
        "",
        f"- Status: **{audit['status'].upper()}**",
        f"- Software: {audit['software']}; created {audit['created']} (UTC)",
        f"- Configuration digest: `{audit['config_digest']}`",
        "",
    ]
    if audit["status"] != "released":
        out += ["## Why the export was blocked", "", audit["reason"], "",
                "Nothing was released: this directory holds only this audit.", ""]
    for trait, t in audit.get("traits", {}).items():
        out += [
            f"## Trait {trait} ({t['trait_type']})",
            "",
            f"Rows in: {t['rows_in']}; released: {t['rows_released']}; suppressed: {t['rows_suppressed']}.",
            "",
            "| rule | threshold | rows suppressed | status | what it checks |",
            "|---|---|---|---|---|",
        ]
        for r in t["rules"]:
            thr = "-" if r["threshold"] is None else r["threshold"]
            out.append(f"| {r['rule']} | {thr} | {r['rows_suppressed']} | {r['status']} | {r['description']} |")
        out += [
            "",
            f"Columns released: {', '.join(t['columns_released'])}.",
            f"Internal columns used and stripped: {', '.join(t['columns_internal_stripped']) or 'none'}.",
            f"Other input columns dropped (never released): {', '.join(t['columns_dropped']) or 'none'}.",
            "",
        ]
    if "sufficient" in audit:
        out += sufficient_audit_md(audit["sufficient"], GateRules(**audit["gate_rules"]))
    if "summary" in audit:
        s = audit["summary"]
        out += [
            "## Summary",
            "",
            f"Traits: {s['traits']}; rows in: {s['rows_in']}; released: {s['rows_released']}; "
            f"suppressed: {s['rows_suppressed']} (in = released + suppressed).",
            "",
        ]
    out += [
        "## Identifier scan",
        "",
        audit["identifier_scan"]["rule"],
        "",
        f"Sample IDs checked: {audit['identifier_scan']['ids_checked']} from "
        f"{audit['identifier_scan']['n_samples']} samples; result: {audit['identifier_scan']['status']}.",
        "",
        "Bundle files allowed: " + ", ".join(ALLOWED_SUFFIXES) + ". Released counts contain no value "
        "between 1 and the min_count threshold; QC ledgers are copied as counts only.",
        "",
    ]
    return "\n".join(out)


def _write_json(obj: dict, path: Path) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n", encoding="utf-8")


def _write_audit(audit: dict, directory: Path) -> None:
    _write_json(audit, directory / "audit.json")
    (directory / "audit.md").write_text(_audit_md(audit), encoding="utf-8")


def export_bundle(
    sumstats: dict[str, str | Path],
    *,
    cohort: str,
    trait_types: dict[str, str],
    ids_from: list[str | Path],
    build: str,
    ancestry: str,
    config_digest: str,
    out_dir: str | Path,
    rules: GateRules | None = None,
    qc_ledgers: list[str | Path] = (),
    sufficient: dict[str, str | Path] | None = None,
) -> ExportResult:
    """Run the export gate on one cohort's association files and write the bundle.

    Parameters
    ----------
    sumstats
        ``{trait: path}`` of association results (GWAS-SSF + internal columns).
    cohort
        Cohort id (used in file contents and the ledger).
    trait_types
        ``{trait: "quantitative" | "binary"}``; every trait needs one.
    ids_from
        Files holding the cohort's sample IDs (``.fam``, ``#FID IID`` tables).
    build, ancestry
        Genome assembly (e.g. ``GRCh38``) and sample ancestry text for the metadata.
    config_digest
        Hex digest of the configuration used (recorded in the manifest).
    out_dir
        Bundle directory; must be absent, empty or an earlier bundle.
    rules
        Gate thresholds (defaults: :class:`GateRules`).
    qc_ledgers
        Ledger JSON files to copy, as counts, into the audit and metadata.
    sufficient
        ``{trait: directory}`` of ``crosscohort sufficient`` output to gate
        and release beside the sumstats (the cohort opted in to the
        federated pooled fit; rules: :mod:`crosscohort.gate.sufficient`).

    Returns
    -------
    ExportResult

    Raises
    ------
    ConfigError
        Bad cohort/trait names, trait types, build, digest or output directory.
    GateError
        A sample identifier, a person-ID column or a per-person table was found
        in the output, or the re-check of the written files failed; ``out_dir``
        then holds only the audit saying why.
    """
    rules = rules or GateRules()
    out_dir = Path(out_dir)
    _check_name("cohort", cohort)
    if not sumstats:
        raise ConfigError("no --sumstats TRAIT=PATH given; nothing to export")
    for trait in sumstats:
        _check_name("trait", trait)
        if trait not in trait_types:
            raise ConfigError(
                f"trait {trait!r} has no --trait-type {trait}=quantitative|binary "
                "(the binary rules depend on it, so there is no default)"
            )
    extra = sorted(set(trait_types) - set(sumstats))
    if extra:
        raise ConfigError(f"--trait-type given for trait(s) {extra} without --sumstats")
    if not _HEX.match(config_digest):
        raise ConfigError(f"--config-digest must be 8-128 hexadecimal characters; got {config_digest!r}")
    if not build.strip():
        raise ConfigError("--build must name the genome assembly (e.g. GRCh38)")
    _prepare_out_dir(out_dir)
    ids = read_sample_ids(list(ids_from))
    qc = read_ledgers(list(qc_ledgers))

    created = _utc_now()
    audit: dict = {
        "cohort": cohort,
        "status": "released",
        "software": software_name(),
        "created": created,
        "config_digest": config_digest,
        "gate_rules": rules.to_dict(),
        "rule_order": list(RULE_ORDER),
        "traits": {},
    }
    staging = out_dir.parent / f".{out_dir.name}.staging"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    results: dict[str, GateResult] = {}
    try:
        for trait, path in sumstats.items():
            path = Path(path)
            # One trait's tables at a time: at 10^7 variants each copy is GBs, so
            # the input goes as soon as the gate has run, the re-read as soon as
            # it is checked, and the released table once written and described.
            res = apply_gate(read_sumstats(path), trait_type=trait_types[trait], rules=rules,
                             cohort=cohort, trait=trait, source=str(path))
            data_file = write_sumstats(res.released, staging / f"{trait}.tsv.gz")
            # Re-read what is on disk, as the outside world will, and re-check it.
            back = read_sumstats(data_file)
            bad = released_violations(back, rules=rules)
            n_back = back.height
            del back
            if bad or n_back != res.ledger.n_kept:
                raise GateError(
                    f"{out_dir / data_file.name}: re-check of the written file failed "
                    f"(violations {bad}, rows {n_back} vs {res.ledger.n_kept} released); export blocked"
                )
            meta = _metadata(trait, res, cohort=cohort, build=build, ancestry=ancestry,
                             data_file=data_file, rules=rules, qc=qc)
            (staging / f"{trait}.meta.yaml").write_text(
                yaml.safe_dump(meta, sort_keys=False, allow_unicode=True), encoding="utf-8"
            )
            audit["traits"][trait] = _trait_audit(trait, res, rules, path.name)
            results[trait] = replace(res, released=res.released.clear())
            del res
        if sufficient:
            audit["sufficient"] = {
                t: export_sufficient(d, t, staging, rules=rules, cohort=cohort) for t, d in sufficient.items()
            }
        audit["summary"] = {
            "traits": len(results),
            "rows_in": sum(r.ledger.n_in for r in results.values()),
            "rows_released": sum(r.ledger.n_kept for r in results.values()),
            "rows_suppressed": sum(sum(r.ledger.removed.values()) for r in results.values()),
        }
        audit["qc_ledgers"] = [q.to_dict() for q in qc]
        audit["identifier_scan"] = {
            "rule": SCAN_RULE,
            "id_sources": list(ids.sources),
            "ids_checked": len(ids.where),
            "n_samples": ids.n_samples,
            "status": "pass",
        }
        _write_audit(audit, staging)
        scan_released(staging, ids)
        manifest = {
            "cohort": cohort,
            "traits": {t: {"trait_type": r.trait_type, "sumstats": f"{t}.tsv.gz",
                           "metadata": f"{t}.meta.yaml"} for t, r in results.items()},
            "software": software_name(),
            "crosscohort_version": __version__,
            "config_digest": config_digest,
            "genome_assembly": build,
            "gate_rules": rules.to_dict(),
            "rule_order": list(RULE_ORDER),
            **({"sufficient": {t: e["files"] for t, e in audit["sufficient"].items()}}
               if "sufficient" in audit else {}),
            "created": created,
            "files": [
                {"path": p.name, "sha256": file_digest(p), "size": p.stat().st_size}
                for p in sorted(staging.iterdir())
            ],
        }
        _write_json(manifest, staging / MANIFEST)
        scan_released(staging, ids)
    except UserError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(exc, GateError):
            _write_blocked(out_dir, audit, ids, str(exc).replace(str(staging), str(out_dir)))
            raise GateError(str(exc).replace(str(staging), str(out_dir))) from None
        raise
    _replace_dir(staging, out_dir)
    return ExportResult(
        out_dir=out_dir, cohort=cohort, traits=results, files=tuple(sorted(p.name for p in out_dir.iterdir()))
    )


def _write_blocked(out_dir: Path, audit: dict, ids: SampleIds, reason: str) -> None:
    blocked = {
        k: audit[k] for k in ("cohort", "software", "created", "config_digest", "gate_rules") if k in audit
    }
    blocked["cohort"] = redact(str(blocked.get("cohort", "")), ids)
    blocked.update({
        "status": "blocked",
        "reason": redact(reason, ids),
        "identifier_scan": {
            "rule": SCAN_RULE,
            "ids_checked": len(ids.where),
            "n_samples": ids.n_samples,
            "status": "fail" if "identifier" in reason or "person" in reason else "not completed",
        },
        "traits": {},
    })
    staging = out_dir.parent / f".{out_dir.name}.blocked"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    _write_audit(blocked, staging)
    _replace_dir(staging, out_dir)
