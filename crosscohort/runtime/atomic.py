"""Files that appear under their name only once complete: write a temporary name, then rename.

A job killed mid-write (scheduler pre-emption, SIGKILL) leaves at most a
``.<name>.tmp`` beside the target, never a truncated file under the name a
rerun or a later stage would trust.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["write_bytes", "write_text", "write_json"]


def write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (parent folders created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return path


def write_text(path: str | Path, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | Path, obj: Any, *, sort_keys: bool = True) -> Path:
    """Write ``obj`` as indented JSON with a final newline, atomically."""
    return write_text(path, json.dumps(obj, indent=2, sort_keys=sort_keys) + "\n")
