"""In-memory stand-ins for the services the submission service talks to, for tests that need no AWS.

`InMemoryIntakeStore` keeps `enquiries.intake.IntakeStore`'s promises as `DynamoIntakeStore` does on
DynamoDB (tests/test_submission_service.py runs the same tests against both): a write happens whole
or not at all; a remembered answer is found until its TTL; a read-only key is looked for, never
written; the rate count uses the same buckets (`storage/rate_limit.py`); an id is never overwritten.
It can also be told to fail, as DynamoDB fails, to show what the service does then.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from enquiries.aws import StorageUnavailable
from enquiries.captcha import CaptchaFailed
from enquiries.intake import IdAlreadyUsed, RateLimited, Replayable, Replayed, ReplayKey
from enquiries.storage.rate_limit import ACCEPTED, CAUGHT, RateWindow, estimate, retry_after


@dataclass
class _Remembered:
    response: Replayable
    expires: int


class InMemoryIntakeStore:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.enquiries: dict[str, dict[str, Any]] = {}
        self.replays: dict[str, _Remembered] = {}
        self.rate_counts: dict[str, dict[str, int]] = {}
        self.failing: set[str] = set()  # methods that raise StorageUnavailable, as DynamoDB throttling
        self._clock = clock

    def fail(self, *methods: str) -> None:
        """Make these methods ("accept", "accept_caught", "recall", "remember") raise StorageUnavailable."""
        self.failing.update(methods)

    def _check(self, method: str) -> None:
        if method in self.failing:
            raise StorageUnavailable("ProvisionedThroughputExceededException")

    def accept(
        self, item: dict[str, Any], response: Replayable, keys: list[ReplayKey], rate: RateWindow | None
    ) -> None:
        self._check("accept")
        self._guard(response, keys, rate, caught=False)
        if item["id"] in self.enquiries:
            raise IdAlreadyUsed(item["id"])
        self._write(response, keys, rate, caught=False)
        self.enquiries[item["id"]] = dict(item)

    def accept_caught(
        self, enquiry_id: str, response: Replayable, keys: list[ReplayKey], rate: RateWindow | None
    ) -> None:
        self._check("accept_caught")
        self._guard(response, keys, rate, caught=True)
        self._write(response, keys, rate, caught=True)

    def recall(self, keys: list[ReplayKey]) -> tuple[ReplayKey, Replayable] | None:
        self._check("recall")
        for key in keys:
            found = self._found(key)
            if found is not None:
                return key, found
        return None

    def remember(self, key: ReplayKey, response: Replayable) -> None:
        self._check("remember")
        if self._found(key) is None:
            self.replays[key.record_id] = _Remembered(response, int(self._clock()) + key.ttl_seconds)

    def _found(self, key: ReplayKey) -> Replayable | None:
        remembered = self.replays.get(key.record_id)
        if remembered is None or remembered.expires < int(self._clock()):
            return None
        return remembered.response

    def _guard(
        self, response: Replayable, keys: list[ReplayKey], rate: RateWindow | None, caught: bool
    ) -> None:
        """What the transaction's conditions refuse, in the order the visitor should see it."""
        for key in keys:
            found = self._found(key)
            if found is not None:
                raise Replayed(key, found)
        if rate is not None:
            counters = self.rate_counts.get(rate.record_id, {})
            if estimate(rate, counters, caught) >= rate.limit:
                raise RateLimited(retry_after(rate, counters, caught))

    def _write(
        self, response: Replayable, keys: list[ReplayKey], rate: RateWindow | None, caught: bool
    ) -> None:
        expires_from = int(self._clock())
        for key in keys:
            if not key.read_only:
                self.replays[key.record_id] = _Remembered(response, expires_from + key.ttl_seconds)
        if rate is not None:
            counters = self.rate_counts.setdefault(rate.record_id, {})
            counter = f"{CAUGHT if caught else ACCEPTED}{rate.current}"
            counters[counter] = counters.get(counter, 0) + 1


@dataclass
class FixedHasher:
    """An address hash without a secret: the address itself, marked."""

    def hash(self, address: str) -> str:
        return f"hashed:{address}"


@dataclass
class OneTimeTokens:
    """A captcha verifier whose tokens pass once, as Turnstile's do; it records each check."""

    checked: list[tuple[str, str | None]] = field(default_factory=list)

    def verify(self, token: str, remote_ip: str | None) -> None:
        used = any(seen == token for seen, _ in self.checked)
        self.checked.append((token, remote_ip))
        if used or not token.startswith("pass"):
            raise CaptchaFailed
