"""The per-address rate limit: at most `limit` accepted enquiries in any 60 minutes, checked and
counted inside the transaction that stores the enquiry.

Counts are kept per 10-minute bucket, in ONE guard record per hashed address (`rate#<hash>`), one
top-level number attribute per bucket: `a<bucket start>` for accepted enquiries and `c<bucket start>`
for robot-trap hits (below).

- **The estimate** at time t is the sum of the buckets that overlap the last 60 minutes: the
  current bucket, the five before it and the oldest, partly covered one counted whole. It is never
  less than the true count of the last 60 minutes, so an enquiry is accepted only while fewer than
  `limit` were accepted in the 60 minutes before it: never more than `limit` in any 60-minute span.
- **The tolerance**: the estimate may count up to one bucket (10 minutes) more than the last 60
  minutes, so a visitor may have to wait at most 10 minutes longer than a true sliding window would
  make them wait. Put the other way: a refusal means `limit` were accepted within the last 70 minutes.
  Retry-After is exact for this estimate: the seconds until it drops below the limit.
- **Concurrency**: the write adds 1 to the current bucket on condition that it holds less than
  `cap` = limit - (every other counted bucket), and that every other counted bucket still holds
  what the cap was computed from. So the condition is exactly "the estimate, as the record is when
  the transaction commits, is under the limit". Only the current bucket changes in practice (past
  buckets are frozen), so concurrent requests serialise on the cap and rarely need another attempt;
  a clock a little behind another instance's at a bucket boundary costs a retry, never the limit.
- **No extra read on the common path**: the first attempt assumes the address has no record (its
  first enquiry in 70 minutes): `attribute_not_exists(id)`. If one exists, the cancelled transaction
  returns it (ReturnValuesOnConditionCheckFailure=ALL_OLD), and the next attempt uses its buckets.
  Buckets older than the estimate's span are removed by that write, so a record holds at most 7 of
  each kind; it expires by TTL 70 minutes after its newest bucket.
- **Robot-trap hits** never use up a visitor's allowance: they are counted in their own `c`
  buckets, which only they read. A trapped robot is refused (429) when accepted enquiries and trap
  hits together reach the limit, as it would be if its enquiries had been accepted, so the limit
  does not tell it apart either.

Only top-level attributes: DynamoDB's ADD works on top-level attributes only (UpdateExpression in
https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_UpdateItem.html), and a SET on a
path in a map fails when the map is absent; moto accepts both, so nested paths would pass locally and
fail on AWS. What is used here (ADD, SET and REMOVE of top-level attributes, `attribute_not_exists`,
`=`, `<`, AND, OR) moto evaluates as DynamoDB does (moto/dynamodb/parsing/executors.py and
moto/dynamodb/comparisons.py in https://github.com/getmoto/moto, checked against moto 5.2.5).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

BUCKET_SECONDS = 10 * 60
WINDOW_SECONDS = 60 * 60
# The buckets that overlap any 60 minutes: six whole ones and the oldest, partly covered.
SPAN_BUCKETS = WINDOW_SECONDS // BUCKET_SECONDS + 1
ACCEPTED = "a"
CAUGHT = "c"
_COUNTER = re.compile(r"([ac])(\d+)")


@dataclass(frozen=True)
class RateWindow:
    """The limit for one hashed client address at `now` (epoch seconds)."""

    client_key: str
    limit: int
    now: float

    @property
    def record_id(self) -> str:
        return f"rate#{self.client_key}"

    @property
    def current(self) -> int:
        """The start of the current bucket."""
        return int(self.now // BUCKET_SECONDS) * BUCKET_SECONDS

    @property
    def oldest(self) -> int:
        """The start of the oldest bucket the estimate counts."""
        return self.current - (SPAN_BUCKETS - 1) * BUCKET_SECONDS

    @property
    def expires(self) -> int:
        """When the current bucket stops counting: the record's TTL after this write."""
        return self.current + SPAN_BUCKETS * BUCKET_SECONDS


Counters = dict[str, int]


def counters_of(record: dict[str, Any] | None) -> Counters:
    """The bucket counts in a guard record as DynamoDB returns it (none when there is no record)."""
    return {
        name: int(value["N"])
        for name, value in (record or {}).items()
        if _COUNTER.fullmatch(name) and "N" in value
    }


def _start(name: str) -> int:
    return int(name[1:])


def _counted(window: RateWindow, counters: Counters, caught: bool) -> Counters:
    """The counts the estimate adds up: accepted ones, and for a trap hit the trap hits too. A
    bucket ahead of the current one (another instance's clock) counts as well."""
    kinds = (ACCEPTED, CAUGHT) if caught else (ACCEPTED,)
    return {
        name: count for name, count in counters.items() if name[0] in kinds and _start(name) >= window.oldest
    }


def estimate(window: RateWindow, counters: Counters, caught: bool = False) -> int:
    return sum(_counted(window, counters, caught).values())


def retry_after(window: RateWindow, counters: Counters, caught: bool = False) -> int:
    """Seconds until the estimate is below the limit again, if nothing more is counted meanwhile."""
    counted = _counted(window, counters, caught)
    left = sum(counted.values())
    for start in sorted({_start(name) for name in counted}):
        left -= sum(count for name, count in counted.items() if _start(name) == start)
        if left < window.limit:
            # A bucket stops counting when the bucket SPAN_BUCKETS after it begins.
            return max(1, math.ceil(start + SPAN_BUCKETS * BUCKET_SECONDS - window.now))
    return 1  # not reached: with every bucket gone the estimate is 0


def counting_update(
    window: RateWindow, table_name: str, counters: Counters | None, caught: bool = False
) -> dict[str, Any]:
    """The transaction's Update that counts one more in the current bucket, on condition that the
    estimate stays within the limit. `counters` is what the record held when last seen, or None to
    assume there is no record (the first attempt). Only call it with an estimate under the limit."""
    counter = f"{CAUGHT if caught else ACCEPTED}{window.current}"
    names = {"#counter": counter}
    values: dict[str, Any] = {":one": {"N": "1"}, ":expires": {"N": str(window.expires)}}
    update = "ADD #counter :one SET expiration = :expires"
    if counters is None:
        condition = "attribute_not_exists(id)"
    else:
        kinds = (ACCEPTED, CAUGHT) if caught else (ACCEPTED,)
        span = range(window.oldest, window.current + BUCKET_SECONDS, BUCKET_SECONDS)
        others = sorted(
            ({f"{kind}{start}" for kind in kinds for start in span} | set(_counted(window, counters, caught)))
            - {counter}
        )
        clauses = []
        for index, name in enumerate(others):
            names[f"#b{index}"] = name
            if name in counters:
                values[f":b{index}"] = {"N": str(counters[name])}
                clauses.append(f"#b{index} = :b{index}")
            else:
                clauses.append(f"attribute_not_exists(#b{index})")
        cap = window.limit - sum(counters.get(name, 0) for name in others)
        values[":cap"] = {"N": str(cap)}
        clauses.append("(attribute_not_exists(#counter) OR #counter < :cap)")
        condition = " AND ".join(clauses)
        stale = sorted(name for name in counters if _start(name) < window.oldest)
        if stale:
            for index, name in enumerate(stale):
                names[f"#s{index}"] = name
            update += " REMOVE " + ", ".join(f"#s{index}" for index in range(len(stale)))
    return {
        "TableName": table_name,
        "Key": {"id": {"S": window.record_id}},
        "UpdateExpression": update,
        "ConditionExpression": condition,
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values,
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }
