"""The export bundle's fixed names and file rules, written by the gate and re-checked by verify.

A bundle is one directory: data files whose suffixes are in
:data:`ALLOWED_SUFFIXES`, ``manifest.json`` (every file with its SHA-256 and
size), optionally ``manifest.sig.json`` (:mod:`crosscohort.contract.signature`),
and the audit in ``audit.json`` / ``audit.md``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

__all__ = ["ALLOWED_SUFFIXES", "AUDIT_JSON", "AUDIT_MD", "MANIFEST", "file_digest", "has_allowed_suffix"]

MANIFEST = "manifest.json"
AUDIT_JSON = "audit.json"
AUDIT_MD = "audit.md"

#: File types a bundle may hold.
ALLOWED_SUFFIXES: tuple[str, ...] = (".tsv.gz", ".yaml", ".json", ".md")


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
