"""The exceptions form the one tree that enquiries/errors.py draws, and the API answers every kind of
Unavailable with the contract's 503."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

from enquiries import errors
from enquiries.api.errors import contract_error
from enquiries.aws import StorageUnavailable
from enquiries.captcha import CaptchaUnavailable
from enquiries.errors import EnquiriesError, Unavailable
from enquiries.request_budget import OverBudget
from enquiries.stored_secret import SecretUnavailable

PACKAGE = Path(errors.__file__).parent
# "<indent><bullet> Name[(reason)] (module)": one class of the drawing.
_DRAWN = re.compile(r"^(?P<indent> *)[*+\-.] (?P<name>\w+)(?:\(\w+\))?(?: \((?P<module>[\w.]+)\))?")
# Public exceptions that are not in the tree yet, with why.
OUTSIDE: dict[str, str] = {}


def _drawing() -> list[tuple[str, str, str]]:
    """(name, module, parent) for each class the docstring draws, EnquiriesError's parent empty."""
    drawn: list[tuple[str, str, str]] = []
    parents: dict[int, str] = {}
    for line in (errors.__doc__ or "").splitlines():
        match = _DRAWN.match(line)
        if not match:
            continue
        depth = len(match["indent"])
        drawn.append((match["name"], match["module"] or "errors", parents.get(depth - 2, "")))
        parents[depth] = match["name"]
    return drawn


def test_errors_drawing_matches_the_classes() -> None:
    # Given the tree the errors module's docstring draws
    drawn = _drawing()
    assert len(drawn) > 2

    # Then each class is importable from the module named, directly under the class drawn above it
    for name, module, parent in drawn:
        cls = getattr(importlib.import_module(f"enquiries.{module}"), name)
        assert issubclass(cls, Exception), name
        if parent:
            assert parent in {base.__name__ for base in cls.__bases__}, f"{name} is not under {parent}"


def test_errors_every_public_exception_is_drawn() -> None:
    # Given every public class in the package that derives from an exception
    drawn = {name for name, _, _ in _drawing()}
    exceptions = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                bases = {ast.unparse(base).rsplit(".", 1)[-1] for base in node.bases}
                if bases & (drawn | {"Exception", "ValueError", "RuntimeError"}):
                    exceptions.add(node.name)

    # Then each is in the drawing (so under EnquiriesError), but for those known to be outside
    assert exceptions - set(OUTSIDE) == drawn


@pytest.mark.parametrize(
    "error",
    [StorageUnavailable("x"), OverBudget("x"), SecretUnavailable("x"), CaptchaUnavailable("x")],
    ids=lambda error: type(error).__name__,
)
def test_errors_every_unavailable_is_a_503_with_its_reason(error: Unavailable) -> None:
    # Given an error that says a dependency did not answer
    assert isinstance(error, EnquiriesError)

    # When the API answers it
    answer = contract_error(error)

    # Then it is the contract's 503, the reason kept for the log
    assert answer is not None
    assert (answer.status, answer.code, answer.reason) == (503, "unavailable", "x")
