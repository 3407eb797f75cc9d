"""The time a request may take, and the check every outbound call makes before it starts.

API Gateway answers a bare 503 when the function has not answered within 30 s, and the contract
wants its own 503 with Retry-After instead. So a request has REQUEST_BUDGET_SECONDS: each outbound
call (an AWS call, the Turnstile check) says the most it can take, and starts only while that much of
the budget is left; otherwise the request ends with OverBudget, the contract's 503. Nothing is left
half-done: a call that is not started writes nothing, and a write that was made stays, its answer
given (a best-effort call after it, such as remembering a replay under a key, is skipped).

The request's deadline is held in a context variable, so the stores and the verifier need no extra
argument: it is set for the length of one request (`within`), per thread, and absent elsewhere (the
notifier and the operator's command have budgets of their own), where every call may start.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from enquiries.aws import StorageUnavailable

# The one figure: template.yaml's SubmitFunction Timeout is above it (tests/test_template.py), with
# room for the request's own work, and API Gateway's 30 s is above both.
REQUEST_BUDGET_SECONDS = 20

_deadline: ContextVar[tuple[float, Callable[[], float]] | None] = ContextVar("request_deadline", default=None)


class OverBudget(StorageUnavailable):
    """Too little of the request's time is left to start a call: a 503, as storage being slow is."""


@contextmanager
def within(
    seconds: float = REQUEST_BUDGET_SECONDS, clock: Callable[[], float] = time.monotonic
) -> Iterator[None]:
    """Run the block as one request with `seconds` to spend."""
    token = _deadline.set((clock() + seconds, clock))
    try:
        yield
    finally:
        _deadline.reset(token)


def remaining() -> float | None:
    """Seconds left of the current request's budget; None outside a request."""
    current = _deadline.get()
    if current is None:
        return None
    deadline, clock = current
    return deadline - clock()


def require(seconds: float, call: str) -> None:
    """Raise OverBudget unless `seconds` (the most `call` can take) are left; `call` is for the log."""
    left = remaining()
    if left is not None and left < seconds:
        raise OverBudget(f"over_budget:{call}")
