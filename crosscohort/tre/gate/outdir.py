"""The bundle directory: what the gate may replace, and how a bundle appears whole.

``--out-dir`` is replaced as a whole, so the gate first proves that every
file in it is its own earlier output, and otherwise refuses before writing
anything:

- absent, or an empty directory: used;
- an earlier bundle: ``manifest.json`` written by crosscohort, and every
  other file listed in it with the size and SHA-256 it lists (plus the
  manifest's signature, :data:`crosscohort.contract.signature.SIGNATURE`);
- an earlier blocked export: exactly ``audit.json`` and ``audit.md``, the JSON
  with status ``blocked`` and the SHA-256 of the Markdown beside it;
- anything else (a user's table, notes, a config, a sub-directory, a file
  edited after the export): :class:`~crosscohort.contract.errors.ConfigError` naming
  the files; nothing is touched.

The new bundle is written into a fresh hidden sibling (``.{name}.*.staging``)
and moved into place by renames: the old directory aside, the new one in,
the old one removed. At every moment ``out_dir`` is the old bundle, absent,
or the new bundle, never a mix; a failure removes the staging directory.
Because the directory itself is renamed, it cannot be the working directory
or one of its parents (``--out-dir .``): that is refused.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from crosscohort.contract.bundle import AUDIT_JSON, AUDIT_MD, MANIFEST, file_digest
from crosscohort.contract.errors import ConfigError
from crosscohort.contract.signature import SIGNATURE

__all__ = ["OutDir", "claim_out_dir"]


def _load_json(path: Path) -> dict | None:
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return obj if isinstance(obj, dict) else None


def _ours_as_bundle(directory: Path, names: set[str]) -> list[str] | None:
    """Files of ``directory`` the earlier bundle's manifest does not vouch for (None: not a bundle)."""
    manifest = _load_json(directory / MANIFEST)
    if manifest is None or not str(manifest.get("software", "")).startswith("crosscohort"):
        return None
    files = manifest.get("files")
    if not isinstance(files, list):
        return None
    listed: dict[str, dict] = {}
    for f in files:
        if isinstance(f, dict) and isinstance(f.get("path"), str) and Path(f["path"]).name == f["path"]:
            listed[f["path"]] = f
    foreign = []
    for name in sorted(names - {MANIFEST, SIGNATURE}):
        p = directory / name
        f = listed.get(name)
        if (f is None or not p.is_file() or p.is_symlink() or p.stat().st_size != f.get("size")
                or file_digest(p) != f.get("sha256")):
            foreign.append(name)
    if SIGNATURE in names and not (directory / SIGNATURE).is_file():
        foreign.append(SIGNATURE)
    return foreign


def _ours_as_blocked(directory: Path, names: set[str]) -> bool:
    if names != {AUDIT_JSON, AUDIT_MD}:
        return False
    audit = _load_json(directory / AUDIT_JSON)
    md = directory / AUDIT_MD
    return (
        audit is not None
        and audit.get("status") == "blocked"
        and str(audit.get("software", "")).startswith("crosscohort")
        and md.is_file()
        and not md.is_symlink()
        and audit.get("audit_md_sha256") == file_digest(md)
    )


def _snapshot(directory: Path) -> dict[str, tuple[int, int]]:
    if not directory.is_dir():
        return {}
    return {p.name: (p.lstat().st_size, p.lstat().st_mtime_ns) for p in directory.iterdir()}


@dataclass(frozen=True)
class OutDir:
    """A bundle directory the gate has checked it may replace.

    ``shown`` is the path as the user gave it (used in messages), ``path``
    the resolved one the renames act on, ``snapshot`` the names, sizes and
    modification times found when it was claimed.
    """

    shown: Path
    path: Path
    snapshot: dict[str, tuple[int, int]]

    def staging(self) -> Path:
        """A new, empty hidden directory beside ``path`` (same file system, so renames are atomic)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        d = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.", suffix=".staging", dir=self.path.parent))
        umask = os.umask(0)
        os.umask(umask)
        d.chmod(0o777 & ~umask)  # mkdtemp's 0700 would otherwise become the bundle's mode
        return d

    def publish(self, staging: Path) -> None:
        """Move the complete ``staging`` directory into place, replacing the claimed contents.

        Raises
        ------
        ConfigError
            When the directory changed after it was claimed (a file added,
            removed or rewritten meanwhile); ``staging`` is removed and
            ``out_dir`` left as it is.
        """
        if _snapshot(self.path) != self.snapshot:
            shutil.rmtree(staging, ignore_errors=True)
            raise ConfigError(
                f"{self.shown}: --out-dir changed while the gate ran; nothing was replaced, rerun the export"
            )
        if self.path.is_dir():
            old = self.path.with_name(f".{self.path.name}.{uuid.uuid4().hex[:12]}.old")
            os.rename(self.path, old)
            try:
                os.rename(staging, self.path)
            except BaseException:
                os.rename(old, self.path)  # the earlier bundle back under its name
                shutil.rmtree(staging, ignore_errors=True)
                raise
            shutil.rmtree(old)  # only the files claim_out_dir recognised as the gate's own
        else:
            os.rename(staging, self.path)


def claim_out_dir(out_dir: str | Path, *, inputs: list[str | Path] = ()) -> OutDir:
    """Check that the gate may write its bundle to ``out_dir`` (see the module docstring).

    Parameters
    ----------
    out_dir
        The bundle directory (``--out-dir``).
    inputs
        The export's input files; none may lie inside ``out_dir``, which is replaced.

    Returns
    -------
    OutDir

    Raises
    ------
    ConfigError
        ``out_dir`` is a file, the working directory or one of its parents,
        holds an input of this export, or holds anything the gate did not
        write itself. Nothing has been written or removed.
    """
    shown = Path(out_dir)
    path = shown.resolve()
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{shown}: --out-dir exists and is not a directory")
    cwd = Path.cwd().resolve()
    if path == cwd or path in cwd.parents:
        raise ConfigError(
            f"{shown}: --out-dir is the working directory or one of its parents; the gate replaces the "
            "bundle directory as a whole, so give it a directory of its own, e.g. --out-dir exports/COHORT"
        )
    for p in inputs:
        rp = Path(p).resolve()
        if path in rp.parents:
            raise ConfigError(
                f"{shown}: --out-dir holds {p}, an input of this export; the bundle directory is replaced "
                "as a whole, so write it elsewhere"
            )
    if not path.is_dir():
        return OutDir(shown=shown, path=path, snapshot={})
    names = {p.name for p in path.iterdir()}
    if not names:
        return OutDir(shown=shown, path=path, snapshot={})
    if _ours_as_blocked(path, names):
        return OutDir(shown=shown, path=path, snapshot=_snapshot(path))
    foreign = _ours_as_bundle(path, names)
    if foreign is None:
        foreign = sorted(names)
    if foreign:
        raise ConfigError(
            f"{shown}: --out-dir holds {len(foreign)} file(s) the export gate did not write, e.g. "
            f"{foreign[:5]} (an earlier bundle's files must match its manifest.json, an earlier blocked "
            "export must be exactly audit.json and audit.md); nothing was written or removed: choose an "
            "empty or new directory"
        )
    return OutDir(shown=shown, path=path, snapshot=_snapshot(path))
