"""The TRE boundary is visible in the tree: who may import whom (docs/architecture.md, "The one rule").

Every module's imports are read with :mod:`ast` (imports inside functions too,
relative imports resolved, and ``importlib.import_module("crosscohort...")``
with a literal name), and checked against the layers:

- ``tre/`` and ``central/`` never import each other;
- ``contract/`` imports only ``contract/``, ``runtime/`` and ``schemas/``;
- ``runtime/`` and ``schemas/`` import nothing of ours;
- none of these library layers imports ``demo/``, ``commands/``, ``cli`` or ``config``.

The checker is run on the package and on synthetic trees that plant each
kind of violation, so that it is known to fail when the rule is broken.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "crosscohort"

#: Layer -> the layers of ours it may import (itself included). Layers not listed
#: (demo, commands, cli, config, the package's __init__) may import anything.
ALLOWED: dict[str, frozenset[str]] = {
    "runtime": frozenset({"runtime"}),
    "schemas": frozenset({"schemas"}),
    "contract": frozenset({"contract", "runtime", "schemas"}),
    "tre": frozenset({"tre", "contract", "runtime", "schemas"}),
    "central": frozenset({"central", "contract", "runtime", "schemas"}),
}


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_module(name: str, root: Path) -> bool:
    parts = name.split(".")
    if parts[0] != root.name:
        return False
    where = root.joinpath(*parts[1:])
    return where.with_suffix(".py").is_file() or (where / "__init__.py").is_file()


def imported_modules(path: Path, root: Path) -> list[tuple[int, str]]:
    """``(line, module)`` for every import in the file at ``path``, at any depth.

    Relative imports are resolved against the file's package; a call
    ``importlib.import_module("name")`` (or ``import_module("name")``) with a
    literal name counts as an import of ``name``.
    """
    tree = ast.parse(path.read_text(), filename=str(path))
    module = _module_name(path, root)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.append((node.lineno, target))
            # `from crosscohort import tre` imports the subpackage tre (a name, e.g.
            # `__version__`, is not a module)
            found += [(node.lineno, f"{target}.{a.name}") for a in node.names
                      if _is_module(f"{target}.{a.name}", root)]
        elif isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
            if name == "import_module" and node.args and isinstance(node.args[0], ast.Constant):
                if isinstance(node.args[0].value, str):
                    found.append((node.lineno, node.args[0].value))
    return found


def _layer(module: str, package: str) -> str | None:
    """The layer of one of our modules (``crosscohort.tre.qc`` -> ``tre``); None if not ours."""
    parts = module.split(".")
    if parts[0] != package:
        return None
    return parts[1] if len(parts) > 1 else ""


def violations(root: Path) -> list[str]:
    """Every import in the package at ``root`` that breaks :data:`ALLOWED`, as ``file:line: rule``."""
    package = root.name
    out = []
    for path in sorted(root.rglob("*.py")):
        source = _layer(_module_name(path, root), package)
        allowed = ALLOWED.get(source)
        if allowed is None:
            continue
        for line, target in imported_modules(path, root):
            layer = _layer(target, package)
            if layer is None or layer == "":
                # `from crosscohort import x` is checked through its x; the bare package is fine
                continue
            if layer not in allowed:
                out.append(
                    f"{path.relative_to(root.parent)}:{line}: {source}/ imports {target} "
                    f"({source}/ may import only {', '.join(sorted(allowed))})"
                )
    return out


def test_package__keeps_the_one_rule():
    assert violations(PACKAGE) == []


def test_checker__reads_the_whole_package():
    # the walk sees the known imports, including those inside functions and by importlib
    cli = imported_modules(PACKAGE / "cli.py", PACKAGE)
    assert any(m == "crosscohort.contract.errors" for _, m in cli)
    config = {m for _, m in imported_modules(PACKAGE / "config.py", PACKAGE)}
    assert "crosscohort.tre.genotype_formats" in config  # imported inside load_study


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "crosscohort"
    for layer in ("", "tre", "central", "contract", "runtime", "schemas", "demo", "commands"):
        (root / layer).mkdir(parents=True, exist_ok=True)
        (root / layer / "__init__.py").write_text("")
    for name, text in files.items():
        (root / name).write_text(text)
    return root


@pytest.mark.parametrize(
    ("name", "text", "rule"),
    [
        ("tre/qc.py", "from crosscohort.central.meta import ivw\n", "tre/ imports crosscohort.central.meta"),
        ("central/verify.py", "def f():\n    import crosscohort.tre.gate\n", "central/ imports crosscohort.tre.gate"),
        ("central/loci.py", "from ..tre import qc\n", "central/ imports crosscohort.tre"),
        ("central/x.py", "from crosscohort import tre\n", "central/ imports crosscohort.tre"),
        ("contract/stats.py", "from crosscohort.tre.qc import QcThresholds\n", "contract/ imports crosscohort.tre.qc"),
        ("contract/bundle.py", "from crosscohort.config import load_study\n", "contract/ imports crosscohort.config"),
        ("runtime/process.py", "from crosscohort.contract.errors import UserError\n", "runtime/ imports crosscohort.contract"),
        ("tre/pca.py", "import importlib\nimportlib.import_module('crosscohort.demo.simulate')\n",
         "tre/ imports crosscohort.demo.simulate"),
        ("central/report.py", "from crosscohort.commands import meta\n", "central/ imports crosscohort.commands"),
    ],
)
def test_checker__finds_a_planted_violation(tmp_path, name, text, rule):
    root = _tree(tmp_path, {name: text})
    found = violations(root)
    assert found and rule in found[0], found
    assert found[0].startswith(f"crosscohort/{name}:")


def test_checker__allows_what_the_rule_allows(tmp_path):
    root = _tree(tmp_path, {
        "tre/qc.py": "from crosscohort.contract import errors\nfrom crosscohort.runtime import jit\nfrom . import pca\n",
        "central/loci.py": "from crosscohort.contract.stats import neg_log10_p\nimport numpy\n",
        "contract/release.py": "from crosscohort.schemas import default\nfrom .errors import ConfigError\n",
        "demo/pool.py": "from crosscohort.tre import qc\nfrom crosscohort.central import loci\n",
        "commands/meta.py": "def run():\n    from crosscohort.central.meta import stream\n",
    })
    assert violations(root) == []
