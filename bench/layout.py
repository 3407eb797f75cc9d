"""Where `python -m bench` runs each side: the submission function as `sam build` made it, laid out as
Lambda runs it, or (`--layout source`) this checkout and this virtualenv.

The deployed layout, in a fresh temporary directory per run:
- var/task: the function's build (make sam-check's, .aws-sam/check/build/SubmitEnquiryFunction), zipped
  as `sam deploy` zips it and unzipped again, so its files carry the zip's 1980 timestamps, as on Lambda.
- opt: the function's layers in the order template.yaml gives them (its Layers after SAM's Globals
  merge, read with SAM's own translator), each zipped and unzipped over the previous one, as Lambda
  extracts layers into /opt. A layer resource of the template comes from its build directory; a layer
  `sam build` does not make (the public Powertools layer) is stood in for by the same packages
  installed the way its publisher builds it (STAND_INS).
- the runtime's Python: a virtualenv of the template's Python (3.13) with the pinned boto3, installed
  with its bytecode, as the runtime provides boto3 in its site-packages.
All of it read-only, and the children run with -B (as root, file modes alone would not stop Python
from writing bytecode): an import that finds no usable bytecode compiles the source, every cold
start, as on Lambda. A native extension built for Lambda's arm64 is swapped for this machine's build
of the same distribution and version (and said so); every other file is as built.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scripts.sam_check import BUILD_DIR as SAM_CHECK_BUILD_DIR

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
TEMPLATE = REPO / "template.yaml"
# What `make sam-check` built (its own folder, never the one `sam deploy` reads).
BUILD_DIR = SAM_CHECK_BUILD_DIR
CACHE = REPO / ".bench-cache"
REQUIREMENTS = REPO / "requirements.txt"
FUNCTION = "SubmitEnquiryFunction"
LAYER_TYPES = ("AWS::Serverless::LayerVersion", "AWS::Lambda::LayerVersion")
# What the children import, copied beside them as the runtime's own code is in /var/runtime.
CHILD_FILES = (
    BENCH / "lambda_child.py",
    BENCH / "sdk_share_child.py",
    REPO / "emulator" / "lambda_context.py",
)
REFERENCE_HANDLERS = ("baseline.py", "floor.py")
PIP_TIMEOUT_SECONDS = 900
# sam build's inputs: a file newer than the build means the build is stale.
BUILD_INPUTS = ("template.yaml", "functions", "layers")

Progress = Callable[[str], None]


@dataclass(frozen=True)
class StandIn:
    """How to make a layer `sam build` does not build: the packages its publisher installs, and what
    its publisher's build then deletes (patterns relative to python/)."""

    requirements: tuple[str, ...]  # names in requirements.txt; the first may carry extras
    extras: str
    removed: tuple[str, ...]
    source: str


# The public Powertools layer: `pip install -t python "aws-lambda-powertools[all]==<version>"`, then the
# runtime's packages, tests and all bytecode deleted (its Dockerfile:
# https://github.com/aws-powertools/powertools-lambda-python/blob/develop/layer_v3/docker/Dockerfile).
STAND_INS = {
    "PowertoolsLayerArn": StandIn(
        requirements=("aws-lambda-powertools", "pydantic"),
        extras="[all]",
        removed=("boto*", "s3transfer*", "*dateutil*", "urllib3*", "six*", "jmespath*"),
        source="aws-lambda-powertools[all] as its layer build installs it, without bytecode",
    )
}


class LayoutError(RuntimeError):
    """The layout cannot be made (no build, a layer that cannot be stood in for, pip failed)."""


@dataclass
class Layer:
    name: str  # the template's logical id or parameter
    directory: Path  # the layer zip's root (python/ inside)
    built: bool  # made by sam build (False: a stand-in)
    note: str
    zip_bytes: int = 0


@dataclass
class Layout:
    kind: str  # "deployed" or "source"
    python: str  # the interpreter the children run
    python_version: str  # its full version
    runtime: Path  # the children's own files (as /var/runtime)
    task: Path  # the function's code root (as /var/task)
    opt: Path  # the layers (as /opt)
    handlers: dict[str, Path]  # the reference handlers' code roots: "baseline", "floor"
    write_bytecode: bool
    layers: list[Layer] = field(default_factory=list)
    zip_bytes: int | None = None
    notes: list[str] = field(default_factory=list)
    build_dir: Path | None = None

    @property
    def layer_bytes(self) -> int | None:
        return sum(layer.zip_bytes for layer in self.layers) if self.kind == "deployed" else None

    def sys_path(self, task_roots: list[Path], opt: Path | None = None) -> dict[str, str]:
        """The environment that has a child set sys.path as the runtime's bootstrap does (the last
        code root is the function's, LAMBDA_TASK_ROOT)."""
        return {
            "BENCH_TASK_ROOTS": os.pathsep.join(str(root) for root in task_roots),
            "BENCH_OPT_ROOT": str(opt or self.opt),
            "LAMBDA_TASK_ROOT": str(task_roots[-1]),
            "LAMBDA_RUNTIME_DIR": str(self.runtime),
        }


# --- the template -----------------------------------------------------------------------------------


def function_properties(template: dict[str, Any], function: str = FUNCTION) -> dict[str, Any]:
    """The function's properties as deployed: SAM's Globals merged in by SAM's own translator (a list,
    such as Layers, is the Globals' followed by the function's; a scalar, such as CodeUri, the
    function's own when it has one)."""
    from samtranslator.plugins.globals.globals import Globals

    resource = template["Resources"][function]
    merged: dict[str, Any] = Globals(template).merge(
        resource["Type"], dict(resource.get("Properties", {})), function, resource.get("IgnoreGlobals")
    )
    return merged


def function_layers(template: dict[str, Any], function: str = FUNCTION) -> list[Any]:
    return list(function_properties(template, function).get("Layers", []))


def layer_name(entry: Any) -> str:
    """The logical id or parameter a Layers entry names (a literal ARN names itself)."""
    if isinstance(entry, dict) and set(entry) == {"Ref"}:
        return str(entry["Ref"])
    if isinstance(entry, str):
        return entry
    raise LayoutError(f"a Layers entry the benchmark cannot follow: {entry!r}")


def is_layer_resource(template: dict[str, Any], name: str) -> bool:
    return template.get("Resources", {}).get(name, {}).get("Type") in LAYER_TYPES


# --- zips as sam deploy makes them, unzipped as Lambda does ------------------------------------------


def zip_directory(directory: Path, archive: Path) -> int:
    """Zip `directory` as `sam deploy` does (every file under it, ZIP_DEFLATED at zlib's default level,
    entries with ZipInfo's default 1980-01-01 timestamp: samcli/lib/package/utils.py,
    make_zip_with_permissions, https://github.com/aws/aws-sam-cli); its size in bytes."""
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        for root, _, files in sorted(os.walk(directory, followlinks=True)):
            for name in sorted(files):
                path = Path(root) / name
                info = zipfile.ZipInfo(path.relative_to(directory).as_posix())
                info.compress_type = zipfile.ZIP_DEFLATED
                zipped.writestr(info, path.read_bytes())
    return archive.stat().st_size


def unzip_over(archive: Path, target: Path) -> None:
    """Extract `archive` into `target`, over what is there, each file with its entry's timestamp."""
    with zipfile.ZipFile(archive) as zipped:
        for info in zipped.infolist():
            path = Path(zipped.extract(info, target))
            stamp = _timestamp(info.date_time)
            os.utime(path, (stamp, stamp))


def _timestamp(date_time: tuple[int, int, int, int, int, int]) -> float:
    import datetime

    return datetime.datetime(*date_time, tzinfo=datetime.UTC).timestamp()


def make_read_only(root: Path) -> None:
    for directory, _, files in os.walk(root):
        for name in files:
            path = Path(directory) / name
            path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
        Path(directory).chmod(Path(directory).stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def make_writable(root: Path) -> None:
    for directory, _, files in os.walk(root):
        Path(directory).chmod(Path(directory).stat().st_mode | stat.S_IWUSR)
        for name in files:
            path = Path(directory) / name
            if not path.is_symlink():
                path.chmod(path.stat().st_mode | stat.S_IWUSR)


def bytecode_files(root: Path) -> int:
    return sum(1 for _ in root.rglob("*.pyc"))


# The flags word of a .pyc (PEP 552, https://peps.python.org/pep-0552/): bit 0 says hash-based, bit 1
# says check the hash against the source.
PYC_KINDS = {0: "timestamp", 1: "unchecked-hash", 3: "checked-hash"}


def bytecode_summary(root: Path, python_version: str) -> str:
    """How many modules under `root` have bytecode for `python_version` ("3.13.0"), and of which kind:
    beside their source (__pycache__/<name>.cpython-313.pyc), or in place of it (<name>.pyc)."""
    tag = "cpython-" + "".join(python_version.split(".")[:2])
    sources = [path for path in root.rglob("*.py") if path.is_file()]
    cached = [path.parent / "__pycache__" / f"{path.stem}.{tag}.pyc" for path in sources]
    sourceless = [path for path in root.rglob("*.pyc") if path.parent.name != "__pycache__"]
    kinds: dict[str, int] = {}
    for path in [*(path for path in cached if path.is_file()), *sourceless]:
        with path.open("rb") as stream:
            flags = int.from_bytes(stream.read(8)[4:8], "little")
        kind = PYC_KINDS.get(flags, f"flags {flags}")
        kinds[kind] = kinds.get(kind, 0) + 1
    summary = f"{len(sources) + len(sourceless)} modules ({len(sourceless)} as bytecode only), "
    summary += f"{sum(kinds.values())} with bytecode"
    if kinds:
        summary += ": " + ", ".join(f"{kind} {count}" for kind, count in sorted(kinds.items()))
    if "timestamp" in kinds:
        summary += " (timestamp bytecode never matches the zip's 1980 times: compiled again)"
    return summary


# --- native extensions built for another machine -----------------------------------------------------

ELF_MAGIC = b"\x7fELF"


def elf_machine(path: Path) -> int | None:
    """The e_machine of an ELF file (62 x86-64, 183 AArch64), or None when it is not ELF."""
    with path.open("rb") as stream:
        header = stream.read(20)
    if len(header) < 20 or not header.startswith(ELF_MAGIC):  # noqa: PLR2004 - the ELF header's size
        return None
    return int.from_bytes(header[18:20], "little" if header[5] == 1 else "big")


def foreign_binaries(root: Path, machine: int) -> list[Path]:
    """The ELF files under `root` built for another machine than `machine`."""
    found = []
    for path in sorted(root.rglob("*.so*")):
        if path.is_file() and not path.is_symlink():
            found_machine = elf_machine(path)
            if found_machine is not None and found_machine != machine:
                found.append(path)
    return found


@dataclass(frozen=True)
class Distribution:
    name: str
    version: str
    site: Path  # the directory its RECORD's paths are relative to
    files: tuple[str, ...]


def distribution_of(path: Path, sites: list[Path]) -> Distribution:
    """The installed distribution whose RECORD lists `path`."""
    for site in sites:
        if not path.is_relative_to(site):
            continue
        relative = path.relative_to(site).as_posix()
        for record in site.glob("*.dist-info/RECORD"):
            files = tuple(line.split(",", 1)[0] for line in record.read_text(encoding="utf-8").splitlines())
            if relative in files:
                metadata = (record.parent / "METADATA").read_text(encoding="utf-8")
                name = re.search(r"^Name: (.+)$", metadata, re.MULTILINE)
                version = re.search(r"^Version: (.+)$", metadata, re.MULTILINE)
                if name and version:
                    return Distribution(name[1].strip(), version[1].strip(), site, files)
    raise LayoutError(f"{path} is built for another machine, and no installed distribution lists it")


Download = Callable[[str, str], Path]  # (name, version) -> a wheel for this machine


def swap_native_files(distribution: Distribution, wheel: Path) -> int:
    """Replace every ELF file of `distribution` by the ELF files of `wheel` (the same distribution and
    version, built for this machine); the rest of the distribution (its Python and bytecode) stays as
    built. Returns the number of files written."""
    for relative in distribution.files:
        path = distribution.site / relative
        if path.is_file() and elf_machine(path) is not None:
            path.unlink()
    written = 0
    with zipfile.ZipFile(wheel) as zipped:
        for info in zipped.infolist():
            if not info.is_dir() and zipped.read(info).startswith(ELF_MAGIC):
                zipped.extract(info, distribution.site)
                written += 1
    return written


def pip_download(python: str) -> Download:
    def download(name: str, version: str) -> Path:
        target = CACHE / "wheels"
        target.mkdir(parents=True, exist_ok=True)
        _run_pip(
            python,
            ["download", "--no-deps", "--only-binary=:all:", "--dest", str(target), f"{name}=={version}"],
        )
        normalised = re.sub(r"[-_.]+", "_", name).lower()
        for wheel in sorted(target.glob("*.whl")):
            if wheel.name.lower().startswith(f"{normalised}-{version}-") and _runs_here(python, wheel):
                return wheel
        raise LayoutError(f"pip downloaded no wheel of {name}=={version} for this machine")

    return download


def _runs_here(python: str, wheel: Path) -> bool:
    """Whether one of the wheel's tags is one the interpreter accepts (pip's own tag list)."""
    probe = subprocess.run(  # noqa: S603 - the runtime's interpreter, fixed arguments
        [
            python,
            "-c",
            "from pip._vendor.packaging.tags import sys_tags; print('\\n'.join(map(str, sys_tags())))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    accepted = set(probe.stdout.split())
    _, _, python_tags, abi_tags, platform_tags = wheel.stem.split("-")[-5:]
    return any(
        f"{p}-{a}-{plat}" in accepted
        for p in python_tags.split(".")
        for a in abi_tags.split(".")
        for plat in platform_tags.split(".")
    )


def make_native(roots: list[Path], sites: list[Path], download: Download, progress: Progress) -> list[str]:
    """Swap the native extensions built for another machine (the build's arm64) for this machine's."""
    machine = elf_machine(Path(sys.executable).resolve())
    if machine is None:
        return []
    swapped: dict[str, Distribution] = {}
    for root in roots:
        for path in foreign_binaries(root, machine):
            distribution = distribution_of(path, sites)
            swapped.setdefault(f"{distribution.name}=={distribution.version}", distribution)
    notes = []
    for label, distribution in swapped.items():
        progress(f"{label}: the build's native files are for another machine; using this machine's")
        written = swap_native_files(distribution, download(distribution.name, distribution.version))
        notes.append(
            f"{label}: its {written} native file(s) swapped for this machine's build of the same "
            "version (Lambda runs the arm64 build); its Python files and bytecode as built"
        )
    return notes


# --- the runtime's Python and the stand-ins ------------------------------------------------------------


def requirement_lines(path: Path) -> list[str]:
    """The lines of a requirements file and of the files it includes (`-r other.txt`), in order."""
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        included = re.match(r"^-r\s+(\S+)", line.strip())
        lines += requirement_lines(path.parent / included[1]) if included else [line.strip()]
    return lines


def pinned(names: tuple[str, ...] | list[str]) -> dict[str, str]:
    """The versions requirements.txt (with the files it includes) pins for `names`: one place for pins."""
    wanted = {name.lower() for name in names}
    pins = {}
    for line in requirement_lines(REQUIREMENTS):
        match = re.match(r"^([A-Za-z0-9_.-]+)(\[[^\]]*\])?==([^\s;#]+)", line)
        if match and match[1].lower() in wanted:
            pins[match[1].lower()] = match[3]
    missing = [name for name in names if name.lower() not in pins]
    if missing:
        raise LayoutError(f"requirements.txt pins no version of {', '.join(missing)}")
    return pins


def template_python() -> str:
    """The Python version ("3.13") the template's runtime keys name."""
    from scripts.sam_check import template_python_versions

    versions = template_python_versions(TEMPLATE.read_text(encoding="utf-8"))
    if len(versions) != 1:
        raise LayoutError(f"expected one Python runtime in template.yaml, found {sorted(versions)}")
    return versions.pop()


@dataclass(frozen=True)
class Runtime:
    python: str  # the virtualenv's interpreter
    version: str  # "3.13.0"
    note: str | None  # set when it is not the template's Python


def runtime_python(progress: Progress) -> Runtime:
    """A virtualenv of the template's Python (or, failing that, this one's) with the pinned boto3
    installed as pip installs it, bytecode included: the runtime's own site-packages."""
    from scripts.sam_check import find_python

    wanted = template_python()
    pyenv_root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    found = find_python([wanted], os.environ.get("PATH", ""), pyenv_root)
    note = None
    if found:
        base, full_version = str(found.executable), found.full_version
    else:
        base, full_version = sys.executable, ".".join(map(str, sys.version_info[:3]))
        note = (
            f"no python{wanted} on this machine: the children run Python {full_version}, which ignores "
            f"bytecode compiled for {wanted}"
        )
    boto3 = pinned(["boto3"])["boto3"]
    venv = CACHE / f"runtime-python{full_version}-boto3-{boto3}"
    python = venv / "bin" / "python"
    if not (venv / ".ready").exists():
        progress(
            f"a Python {full_version} virtualenv with boto3 {boto3}, as the runtime provides it (once) ..."
        )
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([base, "-m", "venv", str(venv)], check=True, capture_output=True)  # noqa: S603
        _run_pip(str(python), ["install", f"boto3=={boto3}"])
        (venv / ".ready").touch()
    return Runtime(str(python), full_version, note)


def _run_pip(python: str, arguments: list[str]) -> None:
    command = [python, "-m", "pip", "--disable-pip-version-check", "--quiet", *arguments]
    completed = subprocess.run(  # noqa: S603 - the runtime's interpreter, fixed arguments
        command, capture_output=True, text=True, timeout=PIP_TIMEOUT_SECONDS, check=False
    )
    if completed.returncode != 0:
        raise LayoutError(f"{' '.join(command[3:])} failed:\n{completed.stderr[-2000:]}")


def stand_in(name: str, runtime: Runtime, progress: Progress) -> Layer:
    """The layer `name` (not made by sam build), from its STAND_INS recipe, made once per pin."""
    recipe = STAND_INS.get(name)
    if recipe is None:
        raise LayoutError(
            f"the function's layer {name} is not built by sam build and the benchmark has no stand-in for it"
        )
    pins = pinned(recipe.requirements)
    requirements = [
        f"{requirement}{recipe.extras if index == 0 else ''}=={pins[requirement.lower()]}"
        for index, requirement in enumerate(recipe.requirements)
    ]
    digest = hashlib.sha256(repr((requirements, recipe, runtime.version)).encode()).hexdigest()[:12]
    directory = CACHE / f"layer-{name}-{digest}"
    if not (directory / ".ready").exists():
        progress(f"a stand-in for {name}: {' '.join(requirements)} (once) ...")
        shutil.rmtree(directory, ignore_errors=True)
        target = directory / "content" / "python"
        _run_pip(runtime.python, ["install", "--no-compile", "--target", str(target), *requirements])
        for pattern in recipe.removed:
            for path in target.glob(pattern):
                shutil.rmtree(path) if path.is_dir() else path.unlink()
        for path in [*target.rglob("__pycache__"), *target.rglob("tests")]:
            shutil.rmtree(path, ignore_errors=True)
        for path in target.rglob("*.py[co]"):
            path.unlink()
        (directory / ".ready").touch()
    note = f"not made by sam build (a public layer): stand-in, {recipe.source}: {', '.join(requirements)}"
    return Layer(name, directory / "content", built=False, note=note)


# --- the layouts ---------------------------------------------------------------------------------------


def stale_inputs(build_dir: Path) -> list[str]:
    """sam build's inputs changed since the build (by modification time)."""
    built = (build_dir / "template.yaml").stat().st_mtime
    newer = []
    for name in BUILD_INPUTS:
        path = REPO / name
        candidates = (
            [path] if path.is_file() else [p for p in path.rglob("*") if "__pycache__" not in p.parts]
        )
        newer += [
            p.relative_to(REPO).as_posix() for p in candidates if p.is_file() and p.stat().st_mtime > built
        ]
    return newer


def build_layers(
    template: dict[str, Any], build_dir: Path, runtime: Runtime, progress: Progress
) -> list[Layer]:
    """The function's layers, in order: a layer resource of the built template from where that template
    says its content is (the build directory sam build made for it), any other from its stand-in."""
    layers = []
    for entry in function_layers(template):
        name = layer_name(entry)
        if is_layer_resource(template, name):
            content = template["Resources"][name].get("Properties", {}).get("ContentUri")
            directory = build_dir / str(content)
            if not isinstance(content, str) or not directory.is_dir():
                raise LayoutError(f"the layer {name} has no content in {build_dir}: run `make sam-check`")
            layers.append(Layer(name, directory, built=True, note=f"as sam build made it ({content}/)"))
        else:
            layers.append(stand_in(name, runtime, progress))
    return layers


def _copy_children(root: Path) -> tuple[Path, dict[str, Path]]:
    runtime = root / "var" / "runtime"
    runtime.mkdir(parents=True)
    for path in CHILD_FILES:
        shutil.copy(path, runtime / path.name)
    handlers = {}
    for name in REFERENCE_HANDLERS:
        directory = root / "reference" / Path(name).stem
        directory.mkdir(parents=True)
        shutil.copy(BENCH / name, directory / name)
        handlers[Path(name).stem] = directory
    return runtime, handlers


def deployed(root: Path, progress: Progress, build_dir: Path = BUILD_DIR) -> Layout:
    """The deployed layout under `root` (an empty directory), from the build in `build_dir` and the
    template sam build wrote there (what `sam deploy` reads)."""
    from emulator.template_tables import load_template

    built_template = build_dir / "template.yaml"
    if not built_template.is_file():
        raise LayoutError(f"no sam build output in {build_dir}: run `make sam-check` (or `make bench`)")
    template = load_template(built_template)
    code = function_properties(template).get("CodeUri")
    function_dir = build_dir / str(code)
    if not isinstance(code, str) or not function_dir.is_dir():
        raise LayoutError(f"{FUNCTION} has no code in {build_dir}: run `make sam-check` (or `make bench`)")
    runtime = runtime_python(progress)
    notes = [runtime.note] if runtime.note else []
    stale = stale_inputs(build_dir)
    if stale:
        notes.append(
            f"the build is older than {', '.join(stale[:5])}{' ...' if len(stale) > 5 else ''}: "  # noqa: PLR2004
            "it measures the code as last built (`make bench` builds first)"
        )
    layers = build_layers(template, build_dir, runtime, progress)

    task, opt, zips = root / "var" / "task", root / "opt", root / "zips"
    for directory in (task, opt, zips):
        directory.mkdir(parents=True)
    zip_bytes = zip_directory(function_dir, zips / "function.zip")
    unzip_over(zips / "function.zip", task)
    for index, layer in enumerate(layers):
        archive = zips / f"layer-{index}.zip"
        layer.zip_bytes = zip_directory(layer.directory, archive)
        unzip_over(archive, opt)
    shutil.rmtree(zips)
    version = f"python{'.'.join(runtime.version.split('.')[:2])}"
    sites = [task, opt / "python" / "lib" / version / "site-packages", opt / "python"]
    notes += make_native([task, opt], sites, pip_download(runtime.python), progress)
    runtime_dir, handlers = _copy_children(root)
    make_read_only(root)
    return Layout(
        kind="deployed",
        python=runtime.python,
        python_version=runtime.version,
        runtime=runtime_dir,
        task=task,
        opt=opt,
        handlers=handlers,
        write_bytecode=False,
        layers=layers,
        zip_bytes=zip_bytes,
        notes=notes,
        build_dir=build_dir,
    )


def source(root: Path) -> Layout:
    """This checkout and this virtualenv, with their bytecode caches: what the benchmark measured before
    issue 14 (the children run from bench/ itself, so that coverage sees them)."""
    return Layout(
        kind="source",
        python=sys.executable,
        python_version=".".join(map(str, sys.version_info[:3])),
        runtime=BENCH,
        task=REPO / "functions",
        opt=root / "opt",  # absent: no layers, the virtualenv has everything
        handlers={Path(name).stem: BENCH for name in REFERENCE_HANDLERS},
        write_bytecode=True,
        notes=["--layout source: functions/ and this virtualenv's packages, their bytecode written and used"],
    )


@contextlib.contextmanager
def prepared(kind: str, progress: Progress, build_dir: Path = BUILD_DIR) -> Iterator[Layout]:
    """The layout of `kind` for the duration of the block, in a temporary directory removed after."""
    root = Path(tempfile.mkdtemp(prefix="enquiries-bench-"))
    try:
        yield deployed(root, progress, build_dir) if kind == "deployed" else source(root)
    finally:
        make_writable(root)
        shutil.rmtree(root, ignore_errors=True)
