"""Shared test fixtures.

Oracle tools (plink2, plink1.9, GWAMA, chromium, openssl) are installed by `.ci/run`.
A test needing one may skip locally with the reason, never under CI=true.
"""

from __future__ import annotations

import os
import shutil

import pytest


def require_tool(*names: str) -> str:
    """Path of the first of ``names`` on PATH; skip (locally) or fail (CI) when absent."""
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    msg = f"oracle tool {' or '.join(names)} not on PATH (.ci/run installs it)"
    if os.environ.get("CI") == "true":
        pytest.fail(msg)
    pytest.skip(msg)


@pytest.fixture
def plink2() -> str:
    return require_tool("plink2")


@pytest.fixture
def plink19() -> str:
    return require_tool("plink1.9", "plink")


@pytest.fixture
def gwama() -> str:
    return require_tool("GWAMA", "gwama")
