"""Central verification of an export bundle before anything else reads it.

:func:`verify_bundle` accepts a bundle only when

- it comes from the cohort it claims: the manifest's ``cohort`` is the
  bundle folder's name and the cohort sheet's id (``--cohort``), so cohort
  B's bundle in cohort A's folder cannot be counted twice;
- it is authentic, when the cohort sheet lists the cohort's public key: the
  Ed25519 signature of ``manifest.json`` (``manifest.sig.json``) is valid
  for that key (:mod:`crosscohort.contract.signature`);
- its directory holds exactly the files its ``manifest.json`` lists (plus
  the manifest and its signature), each regular, of an allow-listed type,
  with the listed size and SHA-256; every file is UTF-8 text and every
  ``.gz`` decompresses to its end;
- its gate met the study's *required* rules: every threshold the manifest
  declares (``gate_rules``) is at least the study's (central config
  ``export_gate``), because a bundle's claims about itself prove nothing;
- its tables have only GWAS-SSF columns, parse with the declared types, and
  pass the rules that can be re-checked from released values (counts, MAC
  from eaf and n, rounding) at those thresholds;
- its step-1 summary of whole-genome regression, when the manifest lists
  one (``wgr``), has only the released allow-list's keys
  (:func:`crosscohort.contract.release_wgr.check_released_wgr`).

Any failure is an :class:`~crosscohort.contract.errors.InputError` or
:class:`~crosscohort.contract.errors.GateError` naming the file (and line or key)
and the rule; a malformed manifest never becomes a traceback.
"""

from __future__ import annotations

import codecs
import gzip
import json
import re
import zlib
from dataclasses import dataclass, fields
from datetime import datetime, timezone
from pathlib import Path

import polars as pl
import yaml

from crosscohort import __version__
from crosscohort.contract.bundle import MANIFEST, file_digest, has_allowed_suffix
from crosscohort.contract.errors import GateError, InputError
from crosscohort.contract.release import COUNT_COLUMNS, GateRules, released_violations
from crosscohort.contract.release_sums import read_sums_table, released_sums_violations
from crosscohort.contract.signature import (
    SIGNATURE,
    SignatureCheck,
    check_signature,
    load_public_key,
)
from crosscohort.contract.sums import BLOCK_SUFFIX, VARIANT_SUFFIX
from crosscohort.contract.sumstats import COLUMNS, read_sumstats
from crosscohort.runtime.atomic import write_json

__all__ = ["VerifiedBundle", "check_required_rules", "verify_bundle", "write_record"]

_MANIFEST_KEYS = ("cohort", "traits", "files", "config_digest", "gate_rules", "crosscohort_version", "created")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_RULE_FIELDS = tuple(f.name for f in fields(GateRules))


def _is_number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


#: Thresholds (numbers: a larger one is stricter); any other rule field must equal the study's.
_NUMERIC_RULES = tuple(k for k in _RULE_FIELDS if _is_number(getattr(GateRules(), k)))


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
    required_rules: GateRules
    signature: SignatureCheck

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
            "signature": self.signature.to_dict(),
            "bundle_crosscohort_version": self.manifest.get("crosscohort_version"),
            "config_digest": self.manifest.get("config_digest"),
            "gate_rules": self.manifest.get("gate_rules"),
            "required_gate_rules": self.required_rules.to_dict(),
            "verified_by": f"crosscohort {__version__}",
            "verified": datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
        }


def _read_manifest(bundle: Path) -> dict:
    path = bundle / MANIFEST
    if not path.is_file():
        raise InputError(f"{path}: no manifest; a bundle must hold manifest.json (written last by the gate)")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text (byte {exc.start}: {exc.reason})") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}, line {exc.lineno}, column {exc.colno}: not valid JSON ({exc.msg})") from None
    if not isinstance(manifest, dict):
        raise InputError(f"{path}: expected a JSON object; got {type(manifest).__name__}")
    missing = [k for k in _MANIFEST_KEYS if k not in manifest]
    if missing:
        raise InputError(f"{path}: missing key(s) {missing}")
    for key in ("cohort", "config_digest", "crosscohort_version", "created"):
        if not isinstance(manifest[key], str) or not manifest[key]:
            raise InputError(f"{path}: key {key!r} must be a non-empty string; got {manifest[key]!r}")
    if not isinstance(manifest["files"], list):
        raise InputError(f"{path}: key 'files' must be a list; got {type(manifest['files']).__name__}")
    if not isinstance(manifest["traits"], dict):
        raise InputError(f"{path}: key 'traits' must be an object; got {type(manifest['traits']).__name__}")
    return manifest


def _listed_files(manifest: dict, where: Path) -> dict[str, dict]:
    listed: dict[str, dict] = {}
    for i, f in enumerate(manifest["files"]):
        if not isinstance(f, dict) or not {"path", "sha256", "size"} <= set(f):
            raise InputError(f"{where}: files[{i}] needs path, sha256 and size")
        name, digest, size = f["path"], f["sha256"], f["size"]
        if not isinstance(name, str) or Path(name).name != name or name in (MANIFEST, SIGNATURE, ".", ".."):
            raise InputError(f"{where}: files[{i}] path {name!r} must be a plain file name in the bundle")
        if not isinstance(digest, str) or not _SHA256.match(digest):
            raise InputError(f"{where}: files[{i}] ({name}) sha256 must be 64 lower-case hex digits; got {digest!r}")
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise InputError(f"{where}: files[{i}] ({name}) size must be a whole number of bytes; got {size!r}")
        if name in listed:
            raise InputError(f"{where}: files[{i}] lists {name} a second time")
        listed[name] = f
    return listed


def _declared_rules(manifest: dict, where: Path) -> GateRules:
    declared = manifest["gate_rules"]
    if not isinstance(declared, dict):
        raise InputError(f"{where}: key 'gate_rules' must be an object; got {declared!r}")
    missing = [k for k in _RULE_FIELDS if k not in declared]
    unknown = sorted(set(declared) - set(_RULE_FIELDS))
    if missing or unknown:
        raise InputError(f"{where}: gate_rules must have exactly {list(_RULE_FIELDS)}; missing {missing}, unknown {unknown}")
    for k in _RULE_FIELDS:
        v, default = declared[k], getattr(GateRules(), k)
        if k in _NUMERIC_RULES:
            if not _is_number(v) or not v >= 0:
                raise InputError(f"{where}: gate_rules.{k} must be a number >= 0; got {v!r}")
        elif type(v) is not type(default):
            raise InputError(f"{where}: gate_rules.{k} must be a {type(default).__name__}; got {v!r}")
    try:
        return GateRules(**declared)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{where}: gate_rules not accepted ({exc})") from None


def check_required_rules(declared: GateRules, required: GateRules, *, where: str | Path) -> None:
    """Refuse a bundle whose gate ran with any threshold below the study's required one.

    Every numeric threshold is a minimum: ``min_count``, ``min_mac``,
    ``min_mac_group``, ``min_residual_df`` (0 = off) and ``round_n`` (0 = no
    rounding) must each be at least the required value. ``release_n``:
    ``"trait"`` (one n per trait) meets any requirement, ``"per_variant"``
    only a study that allows it. Any other rule that is not a number must
    equal the required one: fail closed, since no order between its values
    is assumed.

    Raises
    ------
    GateError
        Naming each lowered (or differing) rule with both values.
    """
    low = []
    for k in _RULE_FIELDS:
        d, r = getattr(declared, k), getattr(required, k)
        if k in _NUMERIC_RULES and d < r:
            low.append(f"{k} {d:g} < required {r:g}")
        elif k == "release_n":
            # "trait" (one n per trait) releases less than "per_variant": it meets either requirement.
            if d != r and d != "trait":
                low.append(f"{k} {d!r} releases more than required {r!r}")
        elif k not in _NUMERIC_RULES and d != r:
            low.append(f"{k} {d!r} != required {r!r}")
    if low:
        raise GateError(
            f"{where}: gate_rules below the study's required minimum ({'; '.join(low)}); the bundle was "
            "exported under weaker disclosure rules than the study requires (central config export_gate)"
        )


def _line_at(path: Path, offset: int) -> int:
    """1-based line of the decompressed byte ``offset`` of ``path`` (counted only when reporting)."""
    opener = gzip.open if path.name.endswith(".gz") else open
    line, seen = 1, 0
    with opener(path, "rb") as fh:
        while seen < offset and (block := fh.read(min(1 << 20, offset - seen))):
            line += block.count(b"\n")
            seen += len(block)
    return line


def _check_stream(path: Path) -> None:
    """Every byte of ``path`` (decompressed when ``.gz``) is UTF-8 text, and a ``.gz`` ends properly."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0  # decompressed bytes before the current block
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rb") as fh:
            while block := fh.read(1 << 20):
                try:
                    decoder.decode(block)
                except UnicodeDecodeError as exc:
                    # exc.start is within block + the decoder's buffered partial character (< 4 bytes).
                    at = max(offset + exc.start - len(exc.object) + len(block), offset)
                    raise InputError(
                        f"{path}, line {_line_at(path, at)}: not UTF-8 text ({exc.reason}); "
                        "a bundle holds UTF-8 text only"
                    ) from None
                offset += len(block)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{path}, line {_line_at(path, offset)}: not UTF-8 text ({exc.reason} at the end of the file)"
        ) from None
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(f"{path}: gzip stream is damaged or truncated ({exc})") from None


def _unrounded(df: pl.DataFrame, round_n: int) -> int:
    cols = [c for c in COUNT_COLUMNS if c in df.columns]
    if round_n <= 0 or not cols:
        return 0
    return int(df.select(pl.any_horizontal([(pl.col(c) % round_n) != 0 for c in cols]).fill_null(False).sum()).item())


def _check_sufficient(bundle: Path, manifest: dict, listed: dict[str, dict], rules: GateRules, where: Path) -> None:
    """Re-check the released sums of each opted-in trait from released values (not only their hashes)."""
    suff = manifest.get("sufficient", {})
    if not isinstance(suff, dict):
        raise InputError(f"{where}: key 'sufficient' must be an object of trait -> [block, sums]; got {suff!r}")
    for trait, names in suff.items():
        if names == []:
            continue  # the gate refused this trait's sums: nothing was released
        if (not isinstance(names, list) or len(names) != 2 or not all(isinstance(n, str) for n in names)
                or not names[0].endswith(BLOCK_SUFFIX) or not names[1].endswith(VARIANT_SUFFIX)):
            raise InputError(f"{where}: sufficient[{trait!r}] must be [{trait}{BLOCK_SUFFIX}, "
                             f"{trait}{VARIANT_SUFFIX}] (or [] when refused); got {names!r}")
        missing = [n for n in names if n not in listed]
        if missing:
            raise InputError(f"{where}: sufficient[{trait!r}] file(s) {missing} not in the bundle")
        block_path, sums_path = bundle / names[0], bundle / names[1]
        try:
            block = json.loads(block_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise InputError(f"{block_path}, line {exc.lineno}: not valid JSON ({exc.msg})") from None
        if not isinstance(block, dict):
            raise InputError(f"{block_path}: expected a JSON object")
        if "internal" in block:
            raise GateError(f"{block_path}: carries the block's internal counts (key 'internal'); they never "
                            "leave a TRE")
        bad = released_sums_violations(block, read_sums_table(sums_path), rules=rules)
        if bad:
            raise GateError(f"{sums_path}: rows breaking the sufficient-statistics rules at thresholds "
                            f"{rules.to_dict()}: {bad}")


def verify_bundle(
    path: str | Path,
    *,
    cohort: str | None = None,
    required: GateRules | None = None,
    public_key: str | Path | None = None,
) -> VerifiedBundle:
    """Check a bundle against its cohort, its signature, its manifest and the study's rules.

    Parameters
    ----------
    path
        The bundle directory (``exports/{cohort}``); its name must be the
        manifest's cohort id.
    cohort
        The cohort id from the cohort sheet this bundle is read as; the
        manifest's cohort must equal it. ``None`` checks the folder name only.
    required
        The study's minimum gate rules (central config ``export_gate``, with
        the cohort's overrides). Default: :class:`GateRules`'s defaults.
    public_key
        The cohort's Ed25519 public key file (cohort sheet ``public_key``);
        when given, an unsigned or wrongly signed bundle is refused.

    Returns
    -------
    VerifiedBundle

    Raises
    ------
    InputError
        Missing or malformed manifest (naming the key); another cohort's
        bundle; a missing, malformed or wrong signature; a listed file
        missing, of another size or SHA-256; a file not in the manifest; a
        symlink or directory; text that is not UTF-8 (naming the line); a
        damaged ``.gz``; a sumstats file that does not parse.
    GateError
        Gate rules below the required ones; a file type outside the
        allow-list, a column outside the GWAS-SSF allow-list, or a released
        row breaking a re-checkable gate rule.
    ConfigError
        The public key file is missing or not an Ed25519 key.
    """
    bundle = Path(path)
    required = required if required is not None else GateRules()
    key = load_public_key(public_key) if public_key is not None else None
    if not bundle.is_dir():
        raise InputError(f"{bundle}: no such bundle directory")
    where = bundle / MANIFEST
    manifest = _read_manifest(bundle)
    claimed = manifest["cohort"]
    folder = bundle.resolve().name
    if claimed != folder:
        raise InputError(
            f"{where}: cohort {claimed!r} is not the bundle folder's {folder!r}; a bundle lives in "
            "exports/<its cohort id> (another cohort's bundle here would be counted twice)"
        )
    if cohort is not None and claimed != cohort:
        raise InputError(
            f"{where}: cohort {claimed!r} is not the cohort sheet's {cohort!r} this bundle is read as"
        )
    signature = check_signature(bundle, key)
    listed = _listed_files(manifest, where)

    present = {p.name: p for p in bundle.iterdir()}
    for name, p in sorted(present.items()):
        if name in (MANIFEST, SIGNATURE) or name in listed:
            if p.is_symlink() or not p.is_file():
                raise InputError(f"{p}: not a regular file (a symlink or directory); a bundle holds plain files")
            continue
        raise InputError(f"{p}: file not listed in {MANIFEST}; a bundle holds only its manifest's files")
    for name, f in listed.items():
        p = bundle / name
        if name not in present:
            raise InputError(f"{p}: listed in {MANIFEST} but missing from the bundle")
        if not has_allowed_suffix(name):
            raise GateError(f"{p}: file type not on the bundle allow-list (.tsv.gz .yaml .json .md)")
        size = p.stat().st_size
        if size != f["size"]:
            raise InputError(f"{p}: size {size} bytes, manifest says {f['size']}; file changed after export")
        digest = file_digest(p)
        if digest != f["sha256"]:
            raise InputError(f"{p}: SHA-256 {digest} differs from the manifest's {f['sha256']}; file changed after export")
        _check_stream(p)

    declared = _declared_rules(manifest, where)
    check_required_rules(declared, required, where=where)
    traits = manifest["traits"]
    _check_wgr(bundle, manifest, listed, where)
    rows: dict[str, int] = {}
    for trait, entry in traits.items():
        if not isinstance(entry, dict):
            raise InputError(f"{where}: traits[{trait!r}] must be an object with sumstats and metadata")
        for k, suffix in (("sumstats", ".tsv.gz"), ("metadata", ".yaml")):
            if not isinstance(entry.get(k), str) or entry[k] not in listed:
                raise InputError(f"{where}: trait {trait!r} {k} file {entry.get(k)!r} not in the bundle")
            if not entry[k].endswith(suffix):
                raise InputError(f"{where}: trait {trait!r} {k} file {entry[k]!r} must be a {suffix} file")
        ss = bundle / entry["sumstats"]
        with gzip.open(ss, "rt", encoding="utf-8") as fh:
            header = fh.readline().rstrip("\n").split("\t")
        extra = [c for c in header if c not in COLUMNS]
        if extra:
            raise GateError(f"{ss}, line 1: column(s) {extra} outside the GWAS-SSF allow-list")
        df = read_sumstats(ss)
        bad = released_violations(df, rules=declared)
        unrounded = _unrounded(df, declared.round_n)
        if unrounded:
            bad["round_n"] = unrounded
        if bad:
            raise GateError(f"{ss}: rows breaking gate rules at thresholds {declared.to_dict()}: {bad}")
        rows[trait] = df.height
        meta_path = bundle / entry["metadata"]
        try:
            yaml.safe_load(meta_path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise InputError(f"{meta_path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    _check_sufficient(bundle, manifest, listed, declared, where)
    return VerifiedBundle(
        path=bundle,
        cohort=claimed,
        traits=dict(traits),
        files=tuple(listed[n] for n in sorted(listed)),
        manifest=manifest,
        manifest_sha256=file_digest(where),
        rows=rows,
        required_rules=required,
        signature=signature,
    )


def write_record(verified: VerifiedBundle, out: str | Path) -> Path:
    """Write the verification record JSON of ``verified`` to ``out`` (atomically)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    return write_json(out, verified.record(), sort_keys=False)


def _check_wgr(bundle: Path, manifest: dict, listed: dict[str, dict], where: Path) -> None:
    """Re-check the released step-1 summary of whole-genome regression, when the manifest names one."""
    from crosscohort.contract.release_wgr import check_released_wgr

    if "wgr" not in manifest:
        return
    name = manifest["wgr"]
    if not isinstance(name, str) or name not in listed or not name.endswith(".json"):
        raise InputError(f"{where}: key 'wgr' must name a .json file of the bundle; got {name!r}")
    check_released_wgr(bundle / name, traits=list(manifest["traits"]))
