"""The layers docs/architecture.md describes are the ones the code has: every module of
functions/enquiries is in the table, and none imports from a layer above its own."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "functions" / "enquiries"
_ROW = re.compile(r"^\| (?P<layer>\d+)\. [^|]+\|[^|]+\| (?P<modules>.+) \|$")


def _layers() -> dict[str, int]:
    """Each module's layer, as the table in the Layers section of docs/architecture.md gives it."""
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    section = text.split("## Layers", 1)[1].split("\n## ", 1)[0]
    layers: dict[str, int] = {}
    for line in section.splitlines():
        if match := _ROW.match(line):
            for module in re.findall(r"`([\w/]+)`", match["modules"]):
                layers["enquiries." + module.replace("/", ".")] = int(match["layer"])
    return layers


def _modules() -> dict[str, Path]:
    return {
        "enquiries." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts): path
        for path in PACKAGE.rglob("*.py")
        if path.name != "__init__.py"
    }


def _imports(path: Path, modules: set[str]) -> set[str]:
    """The package's modules `path` imports, at the top or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("enquiries"):
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                found.add(full if full in modules else node.module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("enquiries")}
    return found & modules


def test_layers_table_names_every_module() -> None:
    # Given the modules of the package and the layers' table
    modules, layers = set(_modules()), _layers()

    # Then each module is in exactly the table's modules
    assert sorted(modules - set(layers)) == [], "add these to the Layers table in docs/architecture.md"
    assert sorted(set(layers) - modules) == [], "the Layers table names modules that do not exist"


def test_layers_no_import_runs_up() -> None:
    # Given each module's layer
    modules, layers = _modules(), _layers()

    # When every import of every module is compared with it
    upward = [
        f"{name} (layer {layers[name]}) imports {imported} (layer {layers[imported]})"
        for name, path in sorted(modules.items())
        for imported in sorted(_imports(path, set(modules)))
        if name in layers and imported in layers and layers[imported] > layers[name]
    ]

    # Then none reaches a layer above its own
    assert upward == []
