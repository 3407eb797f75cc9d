"""Run by tests/test_snapstart.py: the submission function's SnapStart init, then its before-snapshot
hook and a garbage collection, as Lambda runs them before it takes the snapshot.

The settings (and AWS_ENDPOINT_URL, an emulator holding the address key) come from the environment;
the key itself is never given to this process. Prints "snapshot" once the hook has run, then waits
for standard input to close, so the test can search this process's memory as the snapshot would hold it.
"""

from __future__ import annotations

import gc
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "functions"))

before_snapshot: list[tuple[Callable[..., None], tuple[Any, ...]]] = []


def _register_before_snapshot(func: Callable[..., None], *args: Any) -> None:
    before_snapshot.append((func, args))


# Lambda's runtime hook library, as the Python managed runtime provides it.
hooks = types.ModuleType("snapshot_restore_py")
hooks.register_before_snapshot = _register_before_snapshot  # type: ignore[attr-defined]
hooks.register_after_restore = lambda func, *args: None  # type: ignore[attr-defined]
sys.modules["snapshot_restore_py"] = hooks

import enquiries.api.submit  # noqa: E402, F401 - the init, at import, as on Lambda

for func, args in before_snapshot:
    func(*args)
gc.collect()
print("snapshot", flush=True)
sys.stdin.read()
