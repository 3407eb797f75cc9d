"""The emulator package stands on its own: the local server, the tests and bench/ import it, never
the other way round."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

EMULATOR = Path(__file__).resolve().parent.parent / "emulator"


def imported_packages(path: Path) -> set[str]:
    """The top-level packages a module imports, wherever in it the import is."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("module", sorted(EMULATOR.glob("*.py")), ids=lambda path: path.name)
def test_emulator_module_imports_nothing_from_the_local_server_or_the_tools(module: Path) -> None:
    # Given a module of the emulator package
    # When its imports are read
    imported = imported_packages(module)
    # Then none is the local server's, the scripts', the benchmark's or the tests'
    assert not imported & {"devserver", "scripts", "bench", "tests", "conftest"}
