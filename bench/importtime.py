"""`python -m bench --importtime`: where the handler's import time goes, from `python -X importtime`.

Imports the handler module in a fresh child of the runtime's Python, in the benchmark's layout (sys.path
set, and the runtime's bootstrap imports made, as bench/lambda_child.py does before a cold start; no
bytecode written in the deployed layout), and lists the most expensive imports by cumulative time (a
module's own time plus everything it imported first).
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass

from bench.harness import HANDLER_MODULE, SIDES, task_roots
from bench.layout import Layout

# "import time:       self [us] |   cumulative | imported package"
_LINE = re.compile(r"^import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s*)(\S+)\s*$")
IMPORTTIME_TIMEOUT_SECONDS = 120


@dataclass(frozen=True)
class ImportCost:
    module: str
    self_us: int
    cumulative_us: int
    depth: int


def import_costs(layout: Layout, module: str, environ: dict[str, str]) -> list[ImportCost]:
    """Every import made while importing `module` in a fresh child, as -X importtime reports."""
    side = next(side for side, name in SIDES.items() if name == module)
    roots = task_roots(layout, [side])
    code = (
        f"import sys; sys.path.insert(0, {str(layout.runtime)!r}); import lambda_child; "
        f"lambda_child.set_lambda_sys_path(); import {module}"
    )
    bytecode = [] if layout.write_bytecode else ["-B"]
    completed = subprocess.run(  # noqa: S603 - the runtime's interpreter, fixed arguments
        [layout.python, *bytecode, "-X", "importtime", "-c", code],
        capture_output=True,
        text=True,
        env={**environ, **layout.sys_path(roots)},
        cwd=roots[-1],
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


def report(layout: Layout, environ: dict[str, str], module: str = HANDLER_MODULE, top: int = 25) -> str:
    costs = import_costs(layout, module, environ)
    total = sum(cost.cumulative_us for cost in costs if cost.depth == 0)
    lines = [
        f"python -X importtime, import {module}, {layout.kind} layout (Python {layout.python_version}): "
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
