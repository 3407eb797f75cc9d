"""`make sam-check`: `sam validate --lint` and `sam build`, as a SAM user would run them.

Run by the SAM CLI's own virtualenv (.sam-venv, requirements-sam.txt: the SAM CLI pins its own boto3).
`sam build` needs the template's Python (Runtime: python3.13) on PATH. This finds a working one, a
pyenv version included (pyenv's shim on PATH fails unless that version is selected), and puts it
first on PATH. A machine without it still builds, from a copy of the template whose Runtime,
BuildMethod and CompatibleRuntimes name a Python it has (and LAMBDA_PYTHON_VERSION, which the build
makefiles read, set to it): it says so, and template.yaml is unchanged.

Then it checks what the build made (scripts/build_checks.py): bytecode for every .py of every function
and layer, unchecked-hash and of the runtime's Python version, and the submission function's zip under
1 MiB. It prints each zip's size.
Only the standard library, so either virtualenv can run it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from scripts.build_checks import (
    MAGIC_NUMBERS,
    ZIP_BYTES_LIMIT,
    bytecode_problems,
    forms_problems,
    zipped_bytes,
)

REPO = Path(__file__).resolve().parent.parent
TEMPLATE = REPO / "template.yaml"
# A folder of the check's own: `sam deploy` reads .aws-sam/build, and a check build (for another Python on
# a machine without the template's) must never be what a deploy uploads next. Its own cache too: SAM's
# default cache (.aws-sam/cache) is shared with the reader's builds.
CHECK_DIR = REPO / ".aws-sam" / "check"
BUILD_DIR = CHECK_DIR / "build"
CACHE_DIR = CHECK_DIR / "cache"
# Lambda's Python runtimes to fall back on, nearest to the template's first (python3.13).
FALLBACK_VERSIONS = ("3.12", "3.11", "3.10", "3.9", "3.14")
PROBE_TIMEOUT_SECONDS = 20
MAGIC_NUMBER_PROBE = "import importlib.util as u; print(int.from_bytes(u.MAGIC_NUMBER[:2], 'little'))"
# Only the keys that name the runtime a function runs on or a layer is built for.
RUNTIME_KEYS = re.compile(r"^(\s*(?:Runtime|BuildMethod|CompatibleRuntimes)\s*:.*)$", re.MULTILINE)
PYTHON_RUNTIME = re.compile(r"\bpython(\d+\.\d+)\b")
# The template's functions and layers: `sam build` puts each in <build dir>/<LogicalId>/.
BUILT_RESOURCE = re.compile(r"^  (\w+):\n    Type: AWS::Serverless::(Function|LayerVersion)$", re.MULTILINE)
# The function whose zip a visitor waits for on a cold start (issue 14: at most 1 MiB, with bytecode).
SIZE_LIMITED_FUNCTION = "SubmitEnquiryFunction"
# The functions that read the forms at init (functions/Makefile compiles forms/ into each).
FORMS_FUNCTIONS = ("SubmitEnquiryFunction", "NotifyEnquiryFunction")
FORMS_DIR = REPO / "forms"


@dataclass(frozen=True)
class Python:
    version: str  # "3.13"
    executable: Path  # the interpreter itself, not a shim: sys.executable as it reports it
    full_version: str  # "3.13.0"


def template_python_versions(text: str) -> set[str]:
    """The Python versions ("3.13") the template's runtime keys name."""
    return {version for line in RUNTIME_KEYS.findall(text) for version in PYTHON_RUNTIME.findall(line)}


def with_python_version(text: str, version: str) -> str:
    """The template with every runtime key naming python<version>; the rest of the text unchanged."""
    return RUNTIME_KEYS.sub(lambda line: PYTHON_RUNTIME.sub(f"python{version}", line.group(1)), text)


def candidates(version: str, path: str, pyenv_root: Path) -> list[Path]:
    """Where a python<version> may be: each PATH entry, then pyenv's installed versions, newest first."""
    name = f"python{version}"
    found = [Path(entry) / name for entry in path.split(os.pathsep) if entry]
    pyenv_versions = pyenv_root / "versions"
    if pyenv_versions.is_dir():
        installed = sorted(pyenv_versions.glob(f"{version}*/bin/{name}"), reverse=True)
        found.extend(installed)
    return found


def probe(executable: Path, version: str) -> Python | None:
    """The interpreter behind `executable`, if it runs, is that version and has pip (sam build uses it).

    A pyenv shim on PATH runs only when its version is selected."""
    if not os.access(executable, os.X_OK) or executable.is_dir():
        return None
    try:
        answer = subprocess.run(  # noqa: S603 - a fixed argument list
            [
                str(executable),
                "-c",
                "import platform, sys, pip; print(sys.executable); print(platform.python_version())",
            ],
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    try:
        reported, full_version = answer.stdout.splitlines()
    except ValueError:  # the shim's complaint, or nothing
        return None
    if answer.returncode != 0 or not full_version.startswith(f"{version}."):
        return None
    return Python(version, Path(reported), full_version)


def find_python(versions: Iterable[str], path: str, pyenv_root: Path) -> Python | None:
    """The first of `versions` this machine can run, looked for on PATH and among pyenv's versions."""
    for version in versions:
        for executable in candidates(version, path, pyenv_root):
            python = probe(executable, version)
            if python:
                return python
    return None


def built_resources(text: str) -> list[str]:
    """The logical ids of the template's functions and layers, in the template's order."""
    return [logical_id for logical_id, _ in BUILT_RESOURCE.findall(text)]


def interpreter_magic_number(executable: Path) -> int:
    """The .pyc magic number of the interpreter at `executable`, for a Python MAGIC_NUMBERS lacks."""
    answer = subprocess.run(  # noqa: S603 - an interpreter probe() accepted, fixed arguments
        [str(executable), "-c", MAGIC_NUMBER_PROBE],
        capture_output=True,
        text=True,
        timeout=PROBE_TIMEOUT_SECONDS,
        check=True,
    )
    return int(answer.stdout)


def check_build(build_dir: Path, resources: Sequence[str], version: str, magic_number: int) -> list[str]:
    """What is wrong with the build of `resources` under `build_dir` for Python `version` (whose .pyc
    magic number is `magic_number`): each line one problem. Prints each one's zipped size."""
    problems: list[str] = []
    for logical_id in resources:
        root = build_dir / logical_id
        if not root.is_dir():
            problems.append(f"{logical_id}: not built ({root} is missing)")
            continue
        size = zipped_bytes(root)
        print(f"sam-check: {logical_id}: {size:,} bytes zipped", flush=True)
        if logical_id == SIZE_LIMITED_FUNCTION and size > ZIP_BYTES_LIMIT:
            problems.append(f"{logical_id}: the zip is {size:,} bytes, over {ZIP_BYTES_LIMIT:,} (1 MiB)")
        problems += [
            f"{logical_id}: {problem.path.relative_to(root)}: {problem.reason}"
            for problem in bytecode_problems(root, version, magic_number)
        ]
        if logical_id in FORMS_FUNCTIONS:
            problems += [f"{logical_id}: {problem}" for problem in forms_problems(root, FORMS_DIR)]
    return problems


def run(step: str, command: Sequence[str], env: dict[str, str]) -> float:
    """Run one SAM command from the repository root; its duration in seconds, or exit on failure."""
    print(f"sam-check: {step}: {' '.join(command)}", flush=True)
    started = time.monotonic()
    completed = subprocess.run(command, cwd=REPO, env=env, check=False)  # noqa: S603 - fixed arguments
    if completed.returncode != 0:
        raise SystemExit(f"sam-check: {step} failed (exit {completed.returncode})")
    return time.monotonic() - started


def main() -> int:
    sam = str(Path(sys.executable).with_name("sam"))
    env = {**os.environ, "SAM_CLI_TELEMETRY": "0"}
    text = TEMPLATE.read_text(encoding="utf-8")
    wanted = template_python_versions(text)
    if len(wanted) != 1:
        raise SystemExit(f"sam-check: expected one Python runtime in template.yaml, found {sorted(wanted)}")
    [version] = wanted
    pyenv_root = Path(env.get("PYENV_ROOT") or Path.home() / ".pyenv")

    validated = run("validate", [sam, "validate", "--lint", "--template-file", str(TEMPLATE)], env)

    template = TEMPLATE
    python = find_python([version], env.get("PATH", ""), pyenv_root)
    if python:
        print(f"sam-check: building with Python {python.full_version} at {python.executable}", flush=True)
    else:
        python = find_python(FALLBACK_VERSIONS, env.get("PATH", ""), pyenv_root)
        if not python:
            raise SystemExit(f"sam-check: no python{version} on this machine, nor any of {FALLBACK_VERSIONS}")
        template = CHECK_DIR / f"template.python{python.version}.yaml"
        template.parent.mkdir(parents=True, exist_ok=True)
        template.write_text(with_python_version(text, python.version), encoding="utf-8")
        notes = [
            f"this machine has no working python{version} (with pip), the template's runtime: building with",
            f"Python {python.full_version} at {python.executable}, from {template.relative_to(REPO)}, a copy",
            f"of template.yaml with Runtime and CompatibleRuntimes set to python{python.version} (and",
            f"LAMBDA_PYTHON_VERSION={python.version} for the build makefiles).",
            f"template.yaml is unchanged. Deploy a build made with python{version}.",
        ]
        print("\n".join(f"sam-check: NOTE: {note}" for note in notes), flush=True)
    # The Python the build makefiles compile for (functions/Makefile): the runtime of the template built.
    env["LAMBDA_PYTHON_VERSION"] = python.version
    # First on PATH, so that sam build's python<version> is this interpreter and not a shim.
    env["PATH"] = os.pathsep.join([str(python.executable.parent), env.get("PATH", "")])
    built = run(
        "build",
        [
            sam,
            "build",
            "--template-file",
            str(template),
            "--base-dir",
            str(REPO),  # the copy's CodeUri and ContentUri are relative to the repository, as the template's
            "--build-dir",
            str(BUILD_DIR),
            "--cache-dir",
            str(CACHE_DIR),
            "--config-file",
            str(REPO / "samconfig.toml"),
        ],
        env,
    )
    magic_number = MAGIC_NUMBERS.get(python.version) or interpreter_magic_number(python.executable)
    problems = check_build(BUILD_DIR, built_resources(text), python.version, magic_number)
    if problems:
        print("\n".join(f"sam-check: FAILED: {problem}" for problem in problems[:50]), flush=True)
        raise SystemExit(f"sam-check: the build is not what Lambda should run ({len(problems)} problems)")
    print(
        f"sam-check: passed: validate {validated:.0f} s, build {built:.0f} s with Python "
        f"{python.full_version} ({python.executable}){'' if template == TEMPLATE else ', from a copy'}",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
