"""The rate limit's buckets (functions/enquiries/storage/rate_limit.py) and how the store writes them.

The limit through the handler (429s, Retry-After, hour boundaries, races, what does not count) is in
test_duplicates_and_abuse.py; here are the estimate, the expressions DynamoDB is sent, and the
store's attempts.
"""

from __future__ import annotations

import contextlib
import re
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError
from support import GUARD_TABLE_NAME, TABLE_NAME

from enquiries.intake import RateLimited
from enquiries.storage.intake_store import DynamoIntakeStore
from enquiries.storage.rate_limit import (
    BUCKET_SECONDS,
    RateWindow,
    counting_update,
    estimate,
    retry_after,
)

NINE = datetime(2026, 11, 21, 9, 0, tzinfo=UTC).timestamp()  # a bucket boundary
MINUTE = 60


def at(minutes: float, limit: int = 3) -> RateWindow:
    return RateWindow("hashed-address", limit, NINE + minutes * MINUTE)


def bucket(minutes: int, kind: str = "a") -> str:
    return f"{kind}{int(NINE) + minutes * MINUTE}"


# --- the estimate --------------------------------------------------------------------------------


def test_rate_estimate_counts_the_oldest_overlapping_bucket_whole() -> None:
    # Given counts at 09:00 (2) and 09:20 (1), seen at 10:05, when 09:00-09:10 is partly in the last hour
    counters = {bucket(0): 2, bucket(20): 1}

    # When the estimate is taken at 10:05, and at 10:10 when the 09:00 bucket has left the last hour
    # entirely
    at_1005, at_1010 = estimate(at(65), counters), estimate(at(70), counters)

    # Then the partly covered bucket counts whole (3), and not at all once it is out (1)
    assert (at_1005, at_1010) == (3, 1)


def test_rate_retry_after_is_when_enough_old_buckets_have_left() -> None:
    # Given a limit of 2 and counts at 09:00 (1) and 09:20 (2), refused at 09:45
    counters = {bucket(0): 1, bucket(20): 2}

    # When Retry-After is computed
    seconds = retry_after(at(45, limit=2), counters)

    # Then it waits for both to leave: 09:00 leaves at 10:10 (still 2), 09:20 at 10:30
    assert seconds == 45 * MINUTE


def test_rate_retry_after_with_one_old_bucket_to_leave() -> None:
    # Given a limit of 3 and counts at 09:00 (2) and 09:20 (1), refused at 09:45
    counters = {bucket(0): 2, bucket(20): 1}

    # When Retry-After is computed
    seconds = retry_after(at(45), counters)

    # Then it is until 10:10, when the bucket of 09:00 stops counting
    assert seconds == 25 * MINUTE


def test_rate_trap_hits_count_only_for_trap_hits() -> None:
    # Given two accepted enquiries and one trap hit in the last hour, with a limit of 3
    counters = {bucket(0): 1, bucket(10): 1, bucket(10, "c"): 1}

    # When the estimate is taken for an enquiry and for a trap hit
    for_enquiry, for_trap_hit = estimate(at(15), counters), estimate(at(15), counters, caught=True)

    # Then the trap hit used none of the enquiries' allowance, but trap hits see it all
    assert (for_enquiry, for_trap_hit) == (2, 3)


# --- the expressions -------------------------------------------------------------------------------


def _paths(expression: str) -> set[str]:
    return set(re.findall(r"[#:][A-Za-z0-9_]+", expression))


@pytest.mark.parametrize(
    ("counters", "caught"),
    [
        pytest.param(None, False, id="first-attempt"),
        pytest.param({}, False, id="record-gone"),
        pytest.param(
            {bucket(-130): 1, bucket(-70): 2, bucket(-60): 1, bucket(0): 1}, False, id="stale-and-live"
        ),
        pytest.param({bucket(-20): 1, bucket(-20, "c"): 2, bucket(-90, "c"): 1}, True, id="trap-hit"),
    ],
)
def test_rate_update_uses_every_placeholder_and_only_top_level_attributes(
    counters: dict[str, int] | None, caught: bool
) -> None:
    # Given the Update for a record in some state
    update = counting_update(at(5), GUARD_TABLE_NAME, counters, caught)

    # When its expressions and placeholders are compared
    used = _paths(update["UpdateExpression"]) | _paths(update["ConditionExpression"])
    given = set(update.get("ExpressionAttributeNames", {})) | set(update["ExpressionAttributeValues"])

    # Then every placeholder given is used and every one used is given (DynamoDB refuses unused
    # ones), and no path goes into a map: ADD works on top-level attributes only in DynamoDB,
    # whatever moto accepts
    assert used == given
    assert "." not in update["UpdateExpression"] + update["ConditionExpression"]
    assert update["ReturnValuesOnConditionCheckFailure"] == "ALL_OLD"


# --- the store's attempts ---------------------------------------------------------------------------


class Recording:
    """A moto-backed client that records each transaction and, as DynamoDB does, refuses a
    ClientRequestToken reused with other parameters (IdempotentParameterMismatch)."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.calls: Counter[str] = Counter()
        self.tokens: dict[str, Any] = {}

    def __getattr__(self, name: str) -> Any:
        self.calls[name] += 1
        return getattr(self._client, name)

    def transact_write_items(self, **request: Any) -> Any:
        self.calls["transact_write_items"] += 1
        token = request["ClientRequestToken"]
        if token in self.tokens and self.tokens[token] != request["TransactItems"]:
            error = {"Error": {"Code": "IdempotentParameterMismatchException", "Message": "token reused"}}
            raise ClientError(error, "TransactWriteItems")
        self.tokens[token] = request["TransactItems"]
        return self._client.transact_write_items(**request)


def _item(enquiry_id: str) -> dict[str, Any]:
    return {"id": enquiry_id, "name": "Jane", "email": "jane@example.com", "message": "Hi", "consent": True}


def test_rate_first_enquiry_from_an_address_is_one_call_and_a_later_one_two(dynamodb: Any) -> None:
    # Given the store and an address with no record
    client = Recording(dynamodb)
    store = DynamoIntakeStore(TABLE_NAME, GUARD_TABLE_NAME, client_factory=lambda: client)

    # When it accepts a first enquiry from the address, then a second
    store.accept(_item("01KAPX4Q7N3Y8Z2M5R6T9V1W0A"), {"body": "1"}, [], at(1))
    first = dict(client.calls)
    store.accept(_item("01KAPX4Q7N3Y8Z2M5R6T9V1W0B"), {"body": "2"}, [], at(2))

    # Then the first cost one transaction and nothing else; the second a cancelled first try (which
    # returned the record) and a second one with a new request token, and still no read
    assert first == {"transact_write_items": 1}
    assert dict(client.calls) == {"transact_write_items": 3}
    assert len(client.tokens) == 3


def test_rate_record_keeps_only_the_buckets_that_can_still_count(dynamodb: Any) -> None:
    # Given an address with a limit of 3 that sends every 25 minutes for five hours
    store = DynamoIntakeStore(TABLE_NAME, GUARD_TABLE_NAME)
    for n in range(12):
        with contextlib.suppress(RateLimited):
            store.accept(_item(f"01KAPX4Q7N3Y8Z2M5R6T9V1W{n:02d}"), {"body": str(n)}, [], at(25 * n))

    # When its record is read
    [record] = [
        item
        for item in dynamodb.scan(TableName=GUARD_TABLE_NAME)["Items"]
        if item["id"]["S"] == "rate#hashed-address"
    ]

    # Then it holds only buckets of the last 70 minutes, and expires 70 minutes after the newest
    last = at(25 * 11)
    buckets = sorted(int(name[1:]) for name in record if re.fullmatch(r"[ac]\d+", name))
    assert buckets
    assert all(last.current - 6 * BUCKET_SECONDS <= start <= last.current for start in buckets)
    assert int(record["expiration"]["N"]) == last.current + 7 * BUCKET_SECONDS
