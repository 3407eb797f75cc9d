"""scripts/sam_check.py: the Python it finds for `sam build`, and its copy of the template."""

from __future__ import annotations

import difflib
import os
from pathlib import Path

from support import REPO

from scripts.sam_check import find_python, template_python_versions, with_python_version

TEMPLATE_TEXT = (REPO / "template.yaml").read_text(encoding="utf-8")


def fake_python(directory: Path, name: str, *, prints: str = "", status: int = 0) -> Path:
    """An executable that answers the probe as an interpreter would, or fails as a pyenv shim does."""
    directory.mkdir(parents=True, exist_ok=True)
    executable = directory / name
    executable.write_text(f"#!/bin/sh\nprintf '{prints}'\nexit {status}\n", encoding="utf-8")
    executable.chmod(0o755)
    return executable


def test_sam_check_reads_the_template_runtime() -> None:
    # Given the template
    # When the Python versions its runtime keys name are read
    versions = template_python_versions(TEMPLATE_TEXT)

    # Then there is one, the functions' and the layers'
    assert versions == {"3.13"}


def test_sam_check_template_copy_changes_only_the_runtime_keys() -> None:
    # Given the template
    # When a copy is made for a machine that has Python 3.11 only
    copy = with_python_version(TEMPLATE_TEXT, "3.11")

    # Then only the function runtime and the layers' compatible runtimes differ
    changed = [
        line.strip()
        for line in difflib.unified_diff(TEMPLATE_TEXT.splitlines(), copy.splitlines(), lineterm="", n=0)
        if line.startswith("+") and not line.startswith("+++")
    ]
    assert changed == [
        "+    Runtime: python3.11",
        "+      CompatibleRuntimes: [python3.11]",
        "+      CompatibleRuntimes: [python3.11]",
    ]
    assert template_python_versions(copy) == {"3.11"}


def test_sam_check_skips_a_failing_shim_for_the_pyenv_install(tmp_path: Path) -> None:
    # Given a pyenv shim first on PATH that fails (its version is not selected), and pyenv's own install
    shims = tmp_path / "shims"
    fake_python(shims, "python3.13", status=127)
    installed = fake_python(
        tmp_path / "pyenv" / "versions" / "3.13.0" / "bin",
        "python3.13",
        prints="/opt/pyenv/versions/3.13.0/bin/python3.13\\n3.13.0\\n",
    )

    # When the template's Python is looked for
    python = find_python(["3.13"], os.pathsep.join([str(shims), "/nonexistent"]), tmp_path / "pyenv")

    # Then pyenv's install is chosen, named by the path it reports (put first on PATH for sam build)
    assert installed.exists()
    assert python is not None
    assert (python.version, python.full_version) == ("3.13", "3.13.0")
    assert python.executable == Path("/opt/pyenv/versions/3.13.0/bin/python3.13")


def test_sam_check_refuses_an_interpreter_of_another_version(tmp_path: Path) -> None:
    # Given a python3.13 on PATH that reports another version, and no pyenv
    bin_dir = tmp_path / "bin"
    fake_python(bin_dir, "python3.13", prints="/usr/bin/python3.12\\n3.12.4\\n")

    # When the template's Python is looked for
    python = find_python(["3.13"], str(bin_dir), tmp_path / "no-pyenv")

    # Then none is found (sam-check then builds from a copy of the template, and says so)
    assert python is None


def test_sam_check_falls_back_in_the_order_given(tmp_path: Path) -> None:
    # Given a machine with Python 3.11 and 3.10, and no 3.13 or 3.12
    bin_dir = tmp_path / "bin"
    fake_python(bin_dir, "python3.10", prints="/usr/bin/python3.10\\n3.10.14\\n")
    fake_python(bin_dir, "python3.11", prints="/usr/bin/python3.11\\n3.11.2\\n")

    # When a fallback is looked for, nearest to the template's first
    python = find_python(["3.13", "3.12", "3.11", "3.10"], str(bin_dir), tmp_path / "no-pyenv")

    # Then the nearest the machine has is chosen
    assert python is not None
    assert python.full_version == "3.11.2"


def test_sam_check_builds_where_sam_deploy_never_reads() -> None:
    # Given the folder `sam deploy` uploads from after a plain `sam build` (SAM's default build dir)
    deployed_from = REPO / ".aws-sam" / "build"

    # When the check's build folder, its cache and the bench's default input are compared with it
    from bench import layout
    from scripts import sam_check

    # Then none is that folder or inside it: a check build (for another Python) is never deployed
    for folder in (sam_check.BUILD_DIR, sam_check.CACHE_DIR, layout.BUILD_DIR):
        assert not folder.is_relative_to(deployed_from), folder
    assert layout.BUILD_DIR == sam_check.BUILD_DIR
