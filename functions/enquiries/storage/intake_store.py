"""Accepting an enquiry in one DynamoDB round trip: the enquiry, the records that let a repeat get
the same answer, and the address's rate-limit count, written together in one transaction.

- Replay records (`replay#<scope>#<hash>` on the guard table) hold the response the visitor got.
  They are written only with a stored enquiry (or a robot-trap hit's make-believe one), so failures
  are never remembered; a repeat whose record exists gets that response back. Scopes: an
  Idempotency-Key (24 hours) and a fingerprint of the normalised fields and hashed address
  (10 minutes).
- The rate-limit count (`rate#<hashed address>`, see rate_limit.py) is incremented only while the
  address is under its limit for the last 60 minutes.
- A robot-trap hit goes through the same transaction without the enquiry: its replay records and
  its own rate count, so that its repeats and its limit look like a real enquiry's.
- `ClientRequestToken` makes a transaction botocore retries after a lost answer idempotent, so a
  timeout can never store one enquiry twice. Each attempt of ours gets its own token: a token reused
  with other parameters within 10 minutes is refused (IdempotentParameterMismatch, see
  ClientRequestToken in https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html).

Two writes per request (as Powertools idempotency makes) plus a read and a write for a sliding
rate limit cost five round trips; this costs one (two when the address has a recent count).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from enquiries.aws_clients import dynamodb_client
from enquiries.storage.enquiry_store import IdAlreadyUsed, StorageUnavailable, attribute_map, aws_call
from enquiries.storage.rate_limit import RateWindow, counters_of, counting_update, estimate, retry_after

Replayable = dict[str, Any]

IDEMPOTENCY_KEY_SECONDS = 24 * 3600
DOUBLE_SUBMIT_SECONDS = 10 * 60
# Concurrent repeats race for the same records; DynamoDB cancels all but one transaction. A
# request waits at most this long for the others before answering a 503.
_CONFLICT_WAIT_SECONDS = 3.0
_CONFLICT_PAUSE_SECONDS = 0.05
_TRANSIENT_REASONS = frozenset(
    {"ThrottlingError", "ProvisionedThroughputExceeded", "RequestLimitExceeded", "InternalServerError"}
)


@dataclass(frozen=True)
class ReplayKey:
    """A record that makes a repeat of this request get the same response. A read-only key is
    looked for but never written: the request gets its response if it is there."""

    scope: str
    digest: str
    ttl_seconds: int
    read_only: bool = False

    @property
    def record_id(self) -> str:
        return f"replay#{self.scope}#{self.digest}"


class Replayed(Exception):
    """A repeat: here is the response the first request got."""

    def __init__(self, key: ReplayKey, response: Replayable) -> None:
        super().__init__(f"replay of {key.scope}")
        self.key = key
        self.response = response


class RateLimited(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__(f"rate limited for {retry_after} s")
        self.retry_after = retry_after


class IntakeStore(Protocol):
    def accept(
        self, item: dict[str, Any], response: Replayable, keys: list[ReplayKey], rate: RateWindow | None
    ) -> None:
        """Store the enquiry with its guards, or raise Replayed, RateLimited, IdAlreadyUsed or
        StorageUnavailable (nothing is written then)."""

    def accept_caught(
        self, enquiry_id: str, response: Replayable, keys: list[ReplayKey], rate: RateWindow | None
    ) -> None:
        """A robot-trap hit answered as if enquiry `enquiry_id` were stored: remember `response`
        under `keys` and count the hit in `rate`, storing no enquiry; or raise Replayed,
        RateLimited or StorageUnavailable (nothing is written then)."""

    def recall(self, keys: list[ReplayKey]) -> tuple[ReplayKey, Replayable] | None:
        """The first remembered response among `keys`, if any."""

    def remember(self, key: ReplayKey, response: Replayable) -> None:
        """Remember `response` under `key` too, unless it already holds one."""


class DynamoIntakeStore:
    def __init__(
        self,
        table_name: str,
        guard_table_name: str,
        client_factory: Callable[[], Any] = dynamodb_client,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.table_name = table_name
        self.guard_table_name = guard_table_name
        self._client_factory = client_factory
        self._clock = clock

    def _replay_put(self, key: ReplayKey, response: Replayable, now: int) -> dict[str, Any]:
        return {
            "TableName": self.guard_table_name,
            "Item": {
                "id": {"S": key.record_id},
                "response": {"S": json.dumps(response)},
                "expiration": {"N": str(now + key.ttl_seconds)},
            },
            # A record past its expiry may still be there (TTL deletes lazily): it no longer counts.
            "ConditionExpression": "attribute_not_exists(id) OR expiration < :now",
            "ExpressionAttributeValues": {":now": {"N": str(now)}},
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }

    def _replay_write(self, key: ReplayKey, response: Replayable, now: int) -> dict[str, Any]:
        put = self._replay_put(key, response, now)
        if not key.read_only:
            return {"Put": put}
        # The same condition, checked without writing: it fails, returning the record, if one is there.
        check = {name: value for name, value in put.items() if name != "Item"}
        return {"ConditionCheck": {**check, "Key": {"id": put["Item"]["id"]}}}

    def accept(
        self, item: dict[str, Any], response: Replayable, keys: list[ReplayKey], rate: RateWindow | None
    ) -> None:
        enquiry_put = {
            "TableName": self.table_name,
            "Item": attribute_map(item),
            "ConditionExpression": "attribute_not_exists(id)",
        }
        self._transact(str(item["id"]), enquiry_put, response, keys, rate)

    def accept_caught(
        self, enquiry_id: str, response: Replayable, keys: list[ReplayKey], rate: RateWindow | None
    ) -> None:
        self._transact(enquiry_id, None, response, keys, rate)

    def _transact(
        self,
        enquiry_id: str,
        enquiry_put: dict[str, Any] | None,
        response: Replayable,
        keys: list[ReplayKey],
        rate: RateWindow | None,
    ) -> None:
        from botocore.exceptions import ClientError

        now = int(self._clock())
        caught = enquiry_put is None
        writes: list[dict[str, Any]] = [{"Put": enquiry_put}] if enquiry_put is not None else []
        first_key = len(writes)
        writes += [self._replay_write(key, response, now) for key in keys]
        # What the rate record held when last seen; None: assume there is none (the common case).
        counters = None
        deadline = time.monotonic() + _CONFLICT_WAIT_SECONDS
        attempt = 0
        while True:
            attempt += 1
            rate_write = (
                []
                if rate is None
                else [{"Update": counting_update(rate, self.guard_table_name, counters, caught)}]
            )
            if not writes + rate_write:
                return
            try:
                # The enquiry id is fresh per call, and each attempt here writes something else (a
                # new rate condition), so each gets its own token; botocore's resends of one
                # attempt keep it, and so cannot store anything twice.
                aws_call(
                    self._client_factory(),
                    "transact_write_items",
                    TransactItems=writes + rate_write,
                    ClientRequestToken=f"{enquiry_id}-{attempt}",
                )
                return
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                    raise
                reasons = [str(r.get("Code", "None")) for r in error.response.get("CancellationReasons", [])]
                old_items = [r.get("Item") for r in error.response.get("CancellationReasons", [])]
            # Checked in order of what the visitor should see: a repeat is a repeat, even if the
            # address is now over its limit.
            for index, key in enumerate(keys, start=first_key):
                if index < len(reasons) and reasons[index] == "ConditionalCheckFailed":
                    remembered = old_items[index] or self._get(key)
                    if remembered is not None:
                        raise Replayed(key, _response_of(remembered))
            if (
                rate is not None
                and len(reasons) == len(writes) + 1
                and reasons[-1] == "ConditionalCheckFailed"
            ):
                # The rate record is not what this attempt assumed: read it from the cancellation.
                counters = counters_of(old_items[-1])
                if estimate(rate, counters, caught) >= rate.limit:
                    raise RateLimited(retry_after(rate, counters, caught))
                if time.monotonic() > deadline:
                    raise StorageUnavailable("rate_contention")
                continue
            if enquiry_put is not None and reasons and reasons[0] == "ConditionalCheckFailed":
                raise IdAlreadyUsed(enquiry_id)
            transient = [reason for reason in reasons if reason in _TRANSIENT_REASONS]
            if transient:
                raise StorageUnavailable(transient[0])
            if "TransactionConflict" not in reasons:
                raise StorageUnavailable("transaction_cancelled:" + ",".join(reasons))
            # Another request is writing the same records right now: wait for it, then look again.
            if time.monotonic() > deadline:
                raise StorageUnavailable("transaction_conflict")
            time.sleep(_CONFLICT_PAUSE_SECONDS)

    def _get(self, key: ReplayKey) -> dict[str, Any] | None:
        found = aws_call(
            self._client_factory(),
            "get_item",
            TableName=self.guard_table_name,
            Key={"id": {"S": key.record_id}},
            ConsistentRead=True,
        ).get("Item")
        if not found or int(found.get("expiration", {}).get("N", "0")) < int(self._clock()):
            return None
        return dict(found)

    def recall(self, keys: list[ReplayKey]) -> tuple[ReplayKey, Replayable] | None:
        for key in keys:
            found = self._get(key)
            if found is not None:
                return key, _response_of(found)
        return None

    def remember(self, key: ReplayKey, response: Replayable) -> None:
        from botocore.exceptions import ClientError

        try:
            aws_call(
                self._client_factory(), "put_item", **self._replay_put(key, response, int(self._clock()))
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise


def _response_of(record: dict[str, Any]) -> Replayable:
    response: Replayable = json.loads(record["response"]["S"])
    return response
