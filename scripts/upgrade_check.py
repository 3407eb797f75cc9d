"""Try the newest release of every pinned library, in a scratch virtualenv, before anyone bumps a pin.

`make upgrade-check` (worth running monthly, and before a release) reads the pins of requirements.txt
and the files it includes, asks pip for the newest version of each (`pip index versions`), installs
those into a scratch virtualenv and runs the unit tests there, without touching `.venv`. It prints one
line per library whose newest release differs from its pin, then pytest's result. The places that
refuse or break on an upgrade say what to check: the moto transactions patch
(`emulator/moto_transactions.py`, `TESTED_MOTO_VERSIONS`), the Powertools subpackages the layer build
leaves out (`layers/libraries/Makefile`, checked by `tests/test_build.py`), and the tests that read
Powertools' behaviour.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ROOT_REQUIREMENTS = REPO / "requirements.txt"
_PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(?P<extras>\[[^\]]*\])?==(?P<version>\S+)")


def pins(path: Path = ROOT_REQUIREMENTS) -> dict[str, tuple[str, str]]:
    """Every `name==version` of `path` and the files it includes with `-r`: name -> (extras, version)."""
    found: dict[str, tuple[str, str]] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if line.startswith("-r "):
            found.update(pins(path.parent / line[3:].strip()))
            continue
        match = _PIN.match(line)
        if match:
            found[match["name"].lower()] = (match["extras"] or "", match["version"])
    return found


def newest(python: Path, name: str) -> str | None:
    """The newest release pip can find for `name`, or None when pip cannot say."""
    result = subprocess.run(  # noqa: S603 - a fixed command line of our own
        [str(python), "-m", "pip", "index", "versions", name, "--disable-pip-version-check"],
        capture_output=True,
        text=True,
        check=False,
    )
    match = re.search(rf"^{re.escape(name)} \(([^)]+)\)", result.stdout, flags=re.I | re.M)
    return match.group(1) if match else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pytest_args", nargs="*", default=["-x", "-q", "-m", "not browser"])
    options = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="upgrade-check-") as scratch:
        venv = Path(scratch) / "venv"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)  # noqa: S603
        python = venv / "bin" / "python"
        wanted: list[str] = []
        for name, (extras, pinned) in sorted(pins().items()):
            latest = newest(python, name) or pinned
            if latest != pinned:
                print(f"{name}: pinned {pinned}, newest {latest}")
            wanted.append(f"{name}{extras}=={latest}")
        subprocess.run(  # noqa: S603
            [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *wanted],
            check=True,
        )
        subprocess.run(  # noqa: S603
            [str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--editable", str(REPO)], check=True
        )
        tests = [str(python), "-m", "pytest", *options.pytest_args]
        return subprocess.run(tests, cwd=REPO, check=False).returncode  # noqa: S603


if __name__ == "__main__":
    raise SystemExit(main())
