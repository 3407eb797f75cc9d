"""The deployment zip of the submission function, built as Lambda would get it, to report its size.

`sam build` copies the CodeUri (functions/) and pip-installs functions/requirements.txt beside it
with a Python of the template's runtime (python3.13), for its architecture (arm64). This does the same
with pip's cross-platform download (manylinux2014_aarch64, CPython 3.13, wheels only), run by a Python
3.13 when this machine has one (BENCH_LAMBDA_PYTHON names one; else python3.13 on PATH, or one under
pyenv), because pip evaluates a requirement's environment markers (`python_version < '3.12'`) for the
interpreter it runs in, not for --python-version. It leaves out what the Lambda runtime already
provides (boto3, botocore, s3transfer), drops bytecode caches, and zips it all with ZIP_DEFLATED
level 9. The notifier's time zone layer
(layers/timezone-data/) is not part of the submission function, so it is not counted.

The installed dependencies are zipped once per requirements file, platform and pip interpreter under
.bench-cache/; functions/ is added afresh on every run.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CODE_ROOT = REPO / "functions"
REQUIREMENTS = CODE_ROOT / "requirements.txt"
CACHE = REPO / ".bench-cache"

LAMBDA_PLATFORM = ("manylinux2014_aarch64", "cp", "3.13")
# Packages the Lambda Python runtime provides (and that requirements.txt deliberately leaves out).
RUNTIME_PROVIDED = re.compile(r"^(boto3|botocore|s3transfer)(-[^/]*\.dist-info)?$", re.IGNORECASE)
PIP_TIMEOUT_SECONDS = 600


@dataclass
class ZipReport:
    path: Path
    zip_bytes: int
    platform: str
    note: str | None
    # Compressed bytes per top-level entry (package, module, dist-info folders summed per project).
    contributions: list[tuple[str, int]]


def _lambda_python() -> str | None:
    """A Python 3.13 that runs, to let pip evaluate environment markers as sam build's would."""
    pyenv_root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    candidates = [os.environ.get("BENCH_LAMBDA_PYTHON"), shutil.which("python3.13")]
    candidates += sorted(glob.glob(os.path.join(pyenv_root, "versions", "3.13*", "bin", "python3.13")))
    for candidate in candidates:
        if not candidate:
            continue
        probe = subprocess.run(  # noqa: S603 - an interpreter found above, fixed arguments
            [candidate, "-c", "import sys, pip; print(sys.version_info[:2] == (3, 13))"],
            capture_output=True,
            text=True,
            check=False,
        )
        if probe.returncode == 0 and probe.stdout.strip() == "True":
            return candidate
    return None


def _pip_install(target: Path, cross_platform: bool, python: str) -> subprocess.CompletedProcess[str]:
    command = [
        python,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-compile",
        "--target",
        str(target),
        "-r",
        str(REQUIREMENTS),
    ]
    if cross_platform:
        platform, implementation, version = LAMBDA_PLATFORM
        command += [
            "--platform",
            platform,
            "--implementation",
            implementation,
            "--python-version",
            version,
            "--only-binary=:all:",
        ]
    return subprocess.run(  # noqa: S603 - our own interpreter's pip, fixed arguments
        command, capture_output=True, text=True, timeout=PIP_TIMEOUT_SECONDS, check=False
    )


def _files_under(root: Path) -> list[Path]:
    """Every file under `root`, sorted, without bytecode caches."""
    found: list[Path] = []
    for directory, subdirectories, files in os.walk(root):
        subdirectories[:] = sorted(name for name in subdirectories if name != "__pycache__")
        found.extend(Path(directory) / name for name in sorted(files) if not name.endswith(".pyc"))
    return sorted(found)


def _dependencies_zip(progress: Callable[[str], None]) -> tuple[Path, dict[str, str | None]]:
    """The zipped dependencies for this requirements.txt, built on first use; and how they were built."""
    lambda_python = _lambda_python()
    python = lambda_python or sys.executable
    digest = hashlib.sha256(
        REQUIREMENTS.read_bytes() + repr((LAMBDA_PLATFORM, lambda_python)).encode()
    ).hexdigest()[:16]
    cached = CACHE / f"dependencies-{digest}.zip"
    meta_path = CACHE / f"dependencies-{digest}.json"
    if cached.exists() and meta_path.exists():
        return cached, json.loads(meta_path.read_text(encoding="utf-8"))

    CACHE.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE, prefix="build-") as scratch:
        target = Path(scratch) / "package"
        progress("installing functions/requirements.txt for python3.13 / manylinux2014_aarch64 (once) ...")
        completed = _pip_install(target, cross_platform=True, python=python)
        platform, note = f"python3.13 manylinux2014_aarch64 (as deployed; pip run by {python})", None
        if lambda_python is None:
            note = (
                f"no Python 3.13 found: pip ran under {sys.version_info.major}.{sys.version_info.minor}, "
                "so dependencies marked for older Pythons only (typing_extensions) may be counted"
            )
        if completed.returncode != 0:
            shutil.rmtree(target, ignore_errors=True)
            progress("pip could not fetch the Lambda platform's wheels; falling back to this platform")
            completed = _pip_install(target, cross_platform=False, python=sys.executable)
            if completed.returncode != 0:
                raise RuntimeError(f"pip install -r {REQUIREMENTS} failed:\n{completed.stderr[-2000:]}")
            platform = f"this machine's platform (python{sys.version_info.major}.{sys.version_info.minor})"
            note = "FALLBACK: pip could not download the arm64 / python3.13 wheels; sizes are of local wheels"
        excluded = sorted(entry.name for entry in target.iterdir() if RUNTIME_PROVIDED.match(entry.name))
        for name in excluded:
            shutil.rmtree(target / name)
        partial = Path(scratch) / "dependencies.zip"
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
            for path in _files_under(target):
                archive.write(path, path.relative_to(target).as_posix())
        meta: dict[str, str | None] = {
            "platform": platform,
            "note": note,
            "excluded": ", ".join(excluded) or "nothing (functions/requirements.txt pulls none of them)",
        }
        partial.replace(cached)
    meta_path.write_text(json.dumps(meta), encoding="utf-8")
    return cached, meta


def _project(entry: str) -> str:
    """Group `pydantic_core/` with `pydantic_core-2.x.dist-info/`, and so on."""
    name = entry.split("-", 1)[0] if entry.endswith(".dist-info") else entry.removesuffix(".py")
    return name.lower().replace("-", "_")


def build_zip(progress: Callable[[str], None]) -> ZipReport:
    """The function's zip: the cached dependencies plus functions/ as it is now."""
    dependencies, meta = _dependencies_zip(progress)
    output = CACHE / "submit-function.zip"
    shutil.copyfile(dependencies, output)
    with zipfile.ZipFile(output, "a", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for path in _files_under(CODE_ROOT):
            archive.write(path, path.relative_to(CODE_ROOT).as_posix())
    sizes: dict[str, int] = defaultdict(int)
    with zipfile.ZipFile(output) as archive:
        for info in archive.infolist():
            sizes[_project(info.filename.split("/", 1)[0])] += info.compress_size
    note = meta.get("note")
    excluded = (
        f"left out (provided by the runtime): {meta.get('excluded')}; aws-lambda-powertools and "
        "pydantic are not in functions/requirements.txt: the template's public Powertools layer "
        "provides them; tzdata is in the notifier's own layer, not in this function"
    )
    return ZipReport(
        path=output,
        zip_bytes=output.stat().st_size,
        platform=str(meta.get("platform")),
        note=f"{note}; {excluded}" if note else excluded,
        contributions=sorted(sizes.items(), key=lambda item: -item[1]),
    )
