"""What `make sam-check` checks in what `sam build` made: bytecode Lambda's Python uses, the zip's size,
and the forms (forms/*.yaml) compiled into each function.

Lambda's /var/task and /opt are read-only, so a module without bytecode in the zip or layer is compiled
from source on every cold start. The build (functions/Makefile, layers/*/Makefile) compiles every module
with the runtime's Python into unchecked-hash .pyc files (PEP 552, https://peps.python.org/pep-0552/):
"For unchecked hash-based .pyc files, Python simply assumes the cache file is valid if it exists"
(https://docs.python.org/3/reference/import.html#cached-bytecode-invalidation). That is what a deployed
package needs: SAM zips every file with the date 1980-01-01 (zipfile.ZipInfo's default,
https://github.com/aws/aws-sam-cli/blob/develop/samcli/lib/package/utils.py), which no timestamp-based
.pyc matches, and a deployed function's files never change, so there is nothing to check a .pyc against.

Only the standard library, so either virtualenv can run it.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

# The first two bytes of a .pyc, per Python version: MAGIC_NUMBER in each version's
# Lib/importlib/_bootstrap_external.py (3.13: 3571, since 3.13b1; fixed for a release series),
# https://github.com/python/cpython/blob/3.13/Lib/importlib/_bootstrap_external.py
MAGIC_NUMBERS = {"3.9": 3425, "3.10": 3439, "3.11": 3495, "3.12": 3531, "3.13": 3571}
# The .pyc header's flags word (PEP 552): bit 0 set for hash-based, bit 1 for "check the source".
UNCHECKED_HASH_FLAGS = 0b01
HEADER_BYTES = 16
# Lambda's limit is 50 MB zipped; this project's goal for the submission function is 1 MiB (issue 14).
ZIP_BYTES_LIMIT = 1024 * 1024


@dataclass(frozen=True)
class PycProblem:
    path: Path
    reason: str


def cached_pyc(source: Path, version: str) -> Path:
    """Where Python `version` looks for the bytecode of `source` (importlib.util.cache_from_source)."""
    major, minor = version.split(".")
    return source.parent / "__pycache__" / f"{source.stem}.cpython-{major}{minor}.pyc"


def header_problem(header: bytes, version: str, magic_number: int) -> str | None:
    """Why a .pyc with this header is not unchecked-hash bytecode for Python `version` (whose magic
    number is `magic_number`), or None."""
    if len(header) < HEADER_BYTES:
        return "truncated header"
    magic = int.from_bytes(header[:2], "little")
    if header[2:4] != b"\r\n" or magic != magic_number:
        return f"magic number {magic}, not Python {version}'s {magic_number}"
    flags = int.from_bytes(header[4:8], "little")
    if flags != UNCHECKED_HASH_FLAGS:
        kind = {0: "timestamp-based", 0b11: "checked-hash"}.get(flags, f"flags {flags:#x}")
        return f"{kind}, not unchecked-hash"
    return None


def _files(root: Path, suffix: str) -> Iterator[Path]:
    for directory, subdirectories, files in os.walk(root):
        subdirectories.sort()
        yield from (Path(directory) / name for name in sorted(files) if name.endswith(suffix))


def bytecode_problems(root: Path, version: str, magic_number: int) -> list[PycProblem]:
    """Every .py under `root` without unchecked-hash bytecode for Python `version` (whose .pyc files
    start with `magic_number`), and every .pyc that is not such bytecode (another version's, a
    timestamp-based one)."""
    problems = [
        PycProblem(source, f"no {cached_pyc(source, version).name}")
        for source in _files(root, ".py")
        if not cached_pyc(source, version).is_file()
    ]
    for pyc in _files(root, ".pyc"):
        with pyc.open("rb") as handle:
            reason = header_problem(handle.read(HEADER_BYTES), version, magic_number)
        if reason:
            problems.append(PycProblem(pyc, reason))
    return problems


def zipped_bytes(root: Path) -> int:
    """The size of `root` zipped as `sam deploy` zips it: each file deflated, dated 1980-01-01."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for directory, subdirectories, files in os.walk(root, followlinks=True):
            subdirectories.sort()
            for name in sorted(files):
                path = Path(directory) / name
                entry = zipfile.ZipInfo(path.relative_to(root).as_posix())
                archive.writestr(entry, path.read_bytes(), compress_type=zipfile.ZIP_DEFLATED)
    return len(buffer.getvalue())


# The forms compiled by the build (functions/Makefile) into each function's package.
COMPILED_FORMS = Path("enquiries") / "forms.json"


def forms_problems(root: Path, forms_dir: Path) -> list[str]:
    """Why the function built under `root` does not carry the forms of `forms_dir` (forms/*.yaml),
    compiled: each problem one line (none when every form file is in its forms.json)."""
    compiled = root / COMPILED_FORMS
    if not compiled.is_file():
        return [f"{COMPILED_FORMS}: missing: the function would serve no forms"]
    try:
        sources = set(json.loads(compiled.read_text(encoding="utf-8")))
    except ValueError:
        return [f"{COMPILED_FORMS}: not JSON"]
    wanted = {f"forms/{path.name}" for path in forms_dir.glob("*.yaml")}
    problems = [f"{COMPILED_FORMS}: {name} is missing" for name in sorted(wanted - sources)]
    problems += [f"{COMPILED_FORMS}: {name} is not in forms/" for name in sorted(sources - wanted)]
    return problems
