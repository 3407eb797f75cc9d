"""`python -m bench --importtime`: where the handler's import time goes, from `python -X importtime`.

Imports the handler module in a fresh interpreter with the benchmark environment and lists the most
expensive imports by cumulative time (a module's own time plus everything it imported first).
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass

from bench.harness import REPO

# "import time:       self [us] |   cumulative | imported package"
_LINE = re.compile(r"^import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s*)(\S+)\s*$")
IMPORTTIME_TIMEOUT_SECONDS = 120


@dataclass(frozen=True)
class ImportCost:
    module: str
    self_us: int
    cumulative_us: int
    depth: int


def import_costs(module: str, environ: dict[str, str]) -> list[ImportCost]:
    """Every import made while importing `module` in a fresh interpreter, as -X importtime reports."""
    completed = subprocess.run(  # noqa: S603 - our own interpreter, fixed arguments
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        capture_output=True,
        text=True,
        env=environ,
        cwd=REPO,
        timeout=IMPORTTIME_TIMEOUT_SECONDS,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"importing {module} failed:\n{completed.stderr[-3000:]}")
    costs = []
    for line in completed.stderr.splitlines():
        match = _LINE.match(line)
        if match:
            self_us, cumulative_us, indent, name = match.groups()
            costs.append(ImportCost(name, int(self_us), int(cumulative_us), (len(indent) - 1) // 2))
    return _subtree(costs, module)


def _subtree(costs: list[ImportCost], module: str) -> list[ImportCost]:
    """The lines of `import module` (its packages, itself and all they imported), without the
    interpreter's startup: -X importtime prints a module once its imports are done, nested one level
    deeper than its importer, so `module`'s subtree is the run of deeper lines just before it."""
    ends = [index for index, cost in enumerate(costs) if cost.depth == 0 and cost.module == module]
    if not ends:
        raise RuntimeError(f"-X importtime did not report {module}")
    first = ends[-1]
    while first > 0 and costs[first - 1].depth > 0:
        first -= 1
    return costs[first : ends[-1] + 1]


def report(module: str, environ: dict[str, str], top: int = 25) -> str:
    costs = import_costs(module, environ)
    total = sum(cost.cumulative_us for cost in costs if cost.depth == 0)
    lines = [
        f"python -X importtime -c 'import {module}' (Python {sys.version.split()[0]}): "
        f"{len(costs)} modules, {total / 1000:.1f} ms in all",
        f"{top} most expensive imports by cumulative time:",
        f"{'cumulative ms':>14} {'self ms':>8}  module (indented by import depth)",
    ]
    for cost in sorted(costs, key=lambda cost: -cost.cumulative_us)[:top]:
        indent = "  " * cost.depth
        lines.append(f"{cost.cumulative_us / 1000:>14.1f} {cost.self_us / 1000:>8.1f}  {indent}{cost.module}")
    lines.append("10 largest self times (the module's own code, not its imports):")
    for cost in sorted(costs, key=lambda cost: -cost.self_us)[:10]:
        lines.append(f"{cost.cumulative_us / 1000:>14.1f} {cost.self_us / 1000:>8.1f}  {cost.module}")
    lines.append("(-X importtime itself slows imports down: compare modules with each other, not with bench)")
    return "\n".join(lines)
