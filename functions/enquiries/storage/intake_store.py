"""The intake store on DynamoDB (`enquiries.intake.IntakeStore`): accepting an enquiry in one round
trip. The enquiry, the records that let a repeat get the same answer, and the address's rate-limit
count are written together in one transaction.

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
- A cancelled transaction is read from its CancellationReasons, one per write, in order: a failed
  replay condition is a repeat, a failed rate condition a limit (or a changed count, tried again),
  a failed enquiry condition an id in use (never overwritten), `TransactionConflict` another request
  writing the same records (waited for, up to CONFLICT_WAIT_SECONDS), anything else a 503.

Two writes per request (as Powertools idempotency makes) plus a read and a write for a sliding
rate limit cost five round trips; this costs one (two when the address has a recent count).
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable
from typing import Any

from enquiries.aws import (
    Cancellation,
    StorageUnavailable,
    attribute_map,
    aws_call,
    is_transient_code,
    transact_write,
)
from enquiries.aws_clients import submission_dynamodb
from enquiries.intake import IdAlreadyUsed, RateLimited, Replayable, Replayed, ReplayKey
from enquiries.storage.rate_limit import (
    Counters,
    RateWindow,
    counters_of,
    counting_update,
    estimate,
    retry_after,
)

# Concurrent repeats race for the same records; DynamoDB cancels all but one transaction. A
# request waits at most this long for the others before answering a 503.
CONFLICT_WAIT_SECONDS = 3.0
CONFLICT_PAUSE_SECONDS = 0.05


class DynamoIntakeStore:
    def __init__(
        self,
        table_name: str,
        guard_table_name: str,
        client_factory: Callable[[], Any] = submission_dynamodb,
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
            # Never an overwrite: a used id is refused (IdAlreadyUsed), not replaced.
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
        now = int(self._clock())
        caught = enquiry_put is None
        writes: list[dict[str, Any]] = [{"Put": enquiry_put}] if enquiry_put is not None else []
        first_key = len(writes)
        writes += [self._replay_write(key, response, now) for key in keys]
        # What the rate record held when last seen; None: assume there is none (the common case).
        counters: Counters | None = None
        deadline = time.monotonic() + CONFLICT_WAIT_SECONDS
        for attempt in itertools.count(1):
            rate_write = (
                []
                if rate is None
                else [{"Update": counting_update(rate, self.guard_table_name, counters, caught)}]
            )
            if not writes + rate_write:
                return
            # The enquiry id is fresh per request, and each attempt here writes something else (a new
            # rate condition), so each gets its own token; botocore's resends of one attempt keep it,
            # and so cannot store anything twice.
            cancelled = self._write(writes + rate_write, token=f"{enquiry_id}-{attempt}")
            if cancelled is None:
                return
            # Checked in order of what the visitor should see: a repeat is a repeat, even if the
            # address is now over its limit.
            self._raise_if_replayed(cancelled, keys, first_key)
            if rate is not None and cancelled.failed(len(writes)):
                # The rate record is not what this attempt assumed: read it from the cancellation.
                counters = counters_of(cancelled.old_items[len(writes)])
                if estimate(rate, counters, caught) >= rate.limit:
                    raise RateLimited(retry_after(rate, counters, caught))
                _wait_for_others(deadline, "rate_contention", pause=0)
                continue
            if enquiry_put is not None and cancelled.failed(0):
                raise IdAlreadyUsed(enquiry_id)
            _raise_unless_conflict(cancelled.reasons)
            # Another request is writing the same records right now: wait for it, then look again.
            _wait_for_others(deadline, "transaction_conflict", pause=CONFLICT_PAUSE_SECONDS)

    def _write(self, items: list[dict[str, Any]], token: str) -> Cancellation | None:
        """Run the transaction: None if it was written, its cancellation if it was not."""
        return transact_write(self._client_factory(), TransactItems=items, ClientRequestToken=token)

    def _raise_if_replayed(self, cancelled: Cancellation, keys: list[ReplayKey], first_key: int) -> None:
        for index, key in enumerate(keys, start=first_key):
            if cancelled.failed(index):
                remembered = cancelled.old_items[index] or self._get(key)
                if remembered is not None:
                    raise Replayed(key, _response_of(remembered))

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
        try:
            aws_call(
                self._client_factory(), "put_item", **self._replay_put(key, response, int(self._clock()))
            )
        except Exception as error:
            from botocore.exceptions import ClientError  # only when a call fails: see aws.transact_write

            if (
                not isinstance(error, ClientError)
                or error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException"
            ):
                raise


def _raise_unless_conflict(reasons: list[str]) -> None:
    """A cancellation for a reason other than another transaction on the same items: a 503."""
    transient = [reason for reason in reasons if is_transient_code(reason)]
    if transient:
        raise StorageUnavailable(transient[0])
    if "TransactionConflict" not in reasons:
        raise StorageUnavailable("transaction_cancelled:" + ",".join(reasons))


def _wait_for_others(deadline: float, reason: str, pause: float) -> None:
    if time.monotonic() > deadline:
        raise StorageUnavailable(reason)
    if pause:
        time.sleep(pause)


def _response_of(record: dict[str, Any]) -> Replayable:
    response: Replayable = json.loads(record["response"]["S"])
    return response
