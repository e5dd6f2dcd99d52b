"""Central verification of an export bundle before anything else reads it.

:func:`verify_bundle` accepts a bundle only when its directory holds exactly
the files its ``manifest.json`` lists (plus the manifest), each with the
listed size and SHA-256; every file is of an allow-listed type; every
``.gz`` decompresses to its end; every sumstats file has only GWAS-SSF
columns, parses with the declared types, and passes the gate rules that can
be re-checked from released values (counts, MAC from eaf and n) at the
thresholds the manifest records.
"""

from __future__ import annotations

import gzip
import json
import zlib
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import yaml

from crosscohort import __version__
from crosscohort.atomic import write_json
from crosscohort.errors import GateError, InputError
from crosscohort.gate.bundle import MANIFEST, file_digest, has_allowed_suffix
from crosscohort.gate.rules import GateRules, released_violations
from crosscohort.sumstats import COLUMNS, read_sumstats

__all__ = ["VerifiedBundle", "verify_bundle", "write_record"]

_MANIFEST_KEYS = ("cohort", "traits", "files", "config_digest", "gate_rules", "crosscohort_version", "created")


@dataclass(frozen=True)
class VerifiedBundle:
    """A bundle whose files match their manifest and whose tables pass the content checks."""

    path: Path
    cohort: str
    traits: dict[str, dict]
    files: tuple[dict, ...]
    manifest: dict
    manifest_sha256: str
    rows: dict[str, int]

    def sumstats_path(self, trait: str) -> Path:
        """Path of the released sumstats of ``trait``."""
        return self.path / self.traits[trait]["sumstats"]

    def record(self) -> dict:
        """The verification record written by ``crosscohort verify``."""
        return {
            "status": "ok",
            "bundle": str(self.path),
            "cohort": self.cohort,
            "traits": {t: {**v, "rows": self.rows.get(t)} for t, v in self.traits.items()},
            "files": list(self.files),
            "manifest_sha256": self.manifest_sha256,
            "bundle_crosscohort_version": self.manifest.get("crosscohort_version"),
            "config_digest": self.manifest.get("config_digest"),
            "gate_rules": self.manifest.get("gate_rules"),
            "verified_by": f"crosscohort {__version__}",
            "verified": datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
        }


def _read_manifest(bundle: Path) -> dict:
    path = bundle / MANIFEST
    if not path.is_file():
        raise InputError(f"{path}: no manifest; a bundle must hold manifest.json (written last by the gate)")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(manifest, dict):
        raise InputError(f"{path}: expected a JSON object")
    missing = [k for k in _MANIFEST_KEYS if k not in manifest]
    if missing:
        raise InputError(f"{path}: missing key(s) {missing}")
    return manifest


def _check_gzip(path: Path) -> None:
    try:
        with gzip.open(path, "rb") as fh:
            while fh.read(1 << 20):
                pass
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(f"{path}: gzip stream is damaged or truncated ({exc})") from exc


def verify_bundle(path: str | Path) -> VerifiedBundle:
    """Check a bundle against its manifest and the released-content rules.

    Parameters
    ----------
    path
        The bundle directory (``exports/{cohort}``).

    Returns
    -------
    VerifiedBundle

    Raises
    ------
    InputError
        Missing or malformed manifest; a listed file missing, of another size
        or SHA-256; a file not in the manifest; a damaged ``.gz``; a
        sumstats file that does not parse.
    GateError
        A file type outside the allow-list, a column outside the GWAS-SSF
        allow-list, or a released row breaking a re-checkable gate rule.
    """
    bundle = Path(path)
    if not bundle.is_dir():
        raise InputError(f"{bundle}: no such bundle directory")
    manifest = _read_manifest(bundle)
    if not isinstance(manifest["files"], list) or not isinstance(manifest["traits"], dict):
        raise InputError(f"{bundle / MANIFEST}: 'files' must be a list and 'traits' an object")
    listed = {}
    for i, f in enumerate(manifest["files"]):
        if not isinstance(f, dict) or not {"path", "sha256", "size"} <= set(f):
            raise InputError(f"{bundle / MANIFEST}: files[{i}] needs path, sha256 and size")
        name = str(f["path"])
        if Path(name).name != name or name == MANIFEST:
            raise InputError(f"{bundle / MANIFEST}: files[{i}] path {name!r} must be a plain file name in the bundle")
        listed[name] = f

    present = {p.name: p for p in bundle.iterdir()}
    for name, p in sorted(present.items()):
        if name == MANIFEST:
            continue
        if name not in listed:
            raise InputError(f"{p}: file not listed in {MANIFEST}; a bundle holds only its manifest's files")
        if not p.is_file():
            raise InputError(f"{p}: not a regular file")
    for name, f in listed.items():
        p = bundle / name
        if name not in present:
            raise InputError(f"{p}: listed in {MANIFEST} but missing from the bundle")
        if not has_allowed_suffix(name):
            raise GateError(f"{p}: file type not on the bundle allow-list (.tsv.gz .yaml .json .md)")
        size = p.stat().st_size
        if size != int(f["size"]):
            raise InputError(f"{p}: size {size} bytes, manifest says {f['size']}; file changed after export")
        digest = file_digest(p)
        if digest != f["sha256"]:
            raise InputError(f"{p}: SHA-256 {digest} differs from the manifest's {f['sha256']}; file changed after export")
        if name.endswith(".gz"):
            _check_gzip(p)

    try:
        rules = GateRules(**manifest["gate_rules"])
    except TypeError as exc:
        raise InputError(f"{bundle / MANIFEST}: gate_rules {manifest['gate_rules']!r} not understood ({exc})") from exc
    traits = manifest["traits"]
    rows: dict[str, int] = {}
    for trait, entry in traits.items():
        if not isinstance(entry, dict):
            raise InputError(f"{bundle / MANIFEST}: traits[{trait!r}] must be an object with sumstats and metadata")
        for key in ("sumstats", "metadata"):
            if entry.get(key) not in listed:
                raise InputError(f"{bundle / MANIFEST}: trait {trait!r} {key} file {entry.get(key)!r} not in the bundle")
        ss = bundle / entry["sumstats"]
        with gzip.open(ss, "rt", encoding="utf-8") as fh:
            header = fh.readline().rstrip("\n").split("\t")
        extra = [c for c in header if c not in COLUMNS]
        if extra:
            raise GateError(f"{ss}, line 1: column(s) {extra} outside the GWAS-SSF allow-list")
        df = read_sumstats(ss)
        bad = released_violations(df, rules=rules)
        if bad:
            raise GateError(f"{ss}: rows breaking gate rules at the manifest's thresholds: {bad}")
        rows[trait] = df.height
        meta_path = bundle / entry["metadata"]
        try:
            yaml.safe_load(meta_path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise InputError(f"{meta_path}: not valid YAML ({str(exc).splitlines()[0]})") from exc
    return VerifiedBundle(
        path=bundle,
        cohort=str(manifest["cohort"]),
        traits=dict(traits),
        files=tuple(listed[n] for n in sorted(listed)),
        manifest=manifest,
        manifest_sha256=file_digest(bundle / MANIFEST),
        rows=rows,
    )


def write_record(verified: VerifiedBundle, out: str | Path) -> Path:
    """Write the verification record JSON of ``verified`` to ``out`` (atomically)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    return write_json(out, verified.record(), sort_keys=False)
