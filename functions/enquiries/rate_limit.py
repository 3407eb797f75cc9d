"""At most RATE_LIMIT_PER_HOUR accepted enquiries per client address in any hour (a sliding window).

One item per hashed address holds the times of its recent acceptances. A slot is reserved with a
conditional write on the item's version, so concurrent requests cannot both take the last slot,
and released again if the enquiry is then not stored. Items expire by TTL an hour after their
last acceptance.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from enquiries.aws_clients import dynamodb_client
from enquiries.storage.enquiry_store import StorageUnavailable, aws_call

WINDOW_SECONDS = 3600
_WRITE_ATTEMPTS = 5


class RateLimited(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__(f"rate limited for {retry_after} s")
        self.retry_after = retry_after


@dataclass(frozen=True)
class Reservation:
    client_key: str
    at: float


class VersionConflict(Exception):
    pass


class RateLimiter:
    def __init__(
        self, table_name: str, limit: int, client_factory: Callable[[], Any] = dynamodb_client
    ) -> None:
        self.table_name = table_name
        self.limit = limit
        self._client_factory = client_factory

    def _item_key(self, client_key: str) -> dict[str, Any]:
        return {"id": {"S": f"rate#{client_key}"}}

    def _read(self, client_key: str) -> tuple[list[float], int]:
        response = aws_call(
            self._client_factory(),
            "get_item",
            TableName=self.table_name,
            Key=self._item_key(client_key),
            ConsistentRead=True,
        )
        item = response.get("Item")
        if not item:
            return [], 0
        times = [float(entry["N"]) for entry in item.get("accepted", {}).get("L", [])]
        return times, int(item["version"]["N"])

    def _write(self, client_key: str, times: list[float], version: int) -> None:
        expires = math.ceil(max(times, default=0) + WINDOW_SECONDS)
        aws_call(
            self._client_factory(),
            "put_item",
            on_condition_failed=VersionConflict(),
            TableName=self.table_name,
            Item={
                **self._item_key(client_key),
                "accepted": {"L": [{"N": f"{t:.3f}"} for t in times]},
                "version": {"N": str(version + 1)},
                "expiration": {"N": str(expires)},
            },
            ConditionExpression="attribute_not_exists(id) OR version = :v",
            ExpressionAttributeValues={":v": {"N": str(version)}},
        )

    def reserve(self, client_key: str, now: float) -> Reservation:
        """Take a slot for `client_key`, or raise RateLimited with the seconds until one frees."""
        for _ in range(_WRITE_ATTEMPTS):
            times, version = self._read(client_key)
            recent = sorted(t for t in times if t > now - WINDOW_SECONDS)
            if len(recent) >= self.limit:
                # The oldest acceptance in the window leaves it first, and frees a slot.
                oldest_needed = recent[len(recent) - self.limit]
                raise RateLimited(max(1, math.ceil(oldest_needed + WINDOW_SECONDS - now)))
            try:
                self._write(client_key, [*recent, now], version)
            except VersionConflict:
                continue
            return Reservation(client_key, now)
        raise StorageUnavailable("rate_limit_contention")

    def release(self, reservation: Reservation) -> None:
        """Give the slot back (the enquiry was not stored after all). Best effort: a lost release
        only makes the limit stricter for an hour."""
        for _ in range(_WRITE_ATTEMPTS):
            times, version = self._read(reservation.client_key)
            if reservation.at not in times:
                return
            remaining = list(times)
            remaining.remove(reservation.at)
            try:
                self._write(reservation.client_key, remaining, version)
            except VersionConflict:
                continue
            return
