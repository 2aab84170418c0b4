"""The package order holds: oci < store < frontends | emulation | registry < builder <
exporters < cli. A module imports from its own package and from packages below it only;
`bale.errors`, `bale.lazy`, `bale.mounts`, `bale.owner` and `bale.trees` are below
everything."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "bale"

BASE = {"errors", "lazy", "mounts", "owner", "trees", "__main__", "__init__"}
# What each package may import besides itself and the base modules.
ALLOWED: dict[str, set[str]] = {
    "oci": set(),
    "store": {"oci"},
    "frontends": {"oci", "store"},
    "emulation": {"oci", "store"},
    "registry": {"oci", "store"},
    "builder": {"oci", "store", "frontends", "emulation", "registry"},
    "exporters": {"oci", "store", "frontends", "emulation", "registry", "builder"},
    "cli": {"oci", "store", "frontends", "emulation", "registry", "builder", "exporters"},
}


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def import_edges(root: Path = SRC) -> list[tuple[str, str, int, str]]:
    """(importing file, imported module, line, package of the file) for every bale import,
    including those inside functions and under TYPE_CHECKING."""
    edges = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root.parent)
        module = ".".join(rel.with_suffix("").parts)
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                if name == "bale" or name.startswith("bale."):
                    edges.append((str(rel), name, node.lineno, _package(module)))
    return edges


def violations(root: Path = SRC) -> list[str]:
    out = []
    for where, name, line, package in import_edges(root):
        target = _package(name)
        if not target or target in BASE or target == package or package in BASE:
            continue
        if package not in ALLOWED:
            out.append(f"{where}:{line}: module outside the known packages imports {name}")
        elif target not in ALLOWED[package]:
            out.append(f"{where}:{line}: {package} must not import {name}")
    return out


def test_no_import_goes_against_the_package_order() -> None:
    assert violations() == []


def test_an_upward_import_is_caught(tmp_path: Path) -> None:
    # The check itself: a store module importing the builder is reported, at its line.
    pkg = tmp_path / "bale"
    (pkg / "store").mkdir(parents=True)
    (pkg / "store" / "x.py").write_text("import os\nfrom bale.builder.solve import Engine\n")
    (pkg / "oci").mkdir()
    (pkg / "oci" / "y.py").write_text("from bale.oci import digest\nfrom bale.errors import X\n")
    assert violations(pkg) == ["bale/store/x.py:2: store must not import bale.builder.solve"]
