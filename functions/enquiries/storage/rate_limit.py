"""The per-address rate limit: at most `limit` accepted enquiries in any 60 minutes, checked and
counted inside the transaction that stores the enquiry.

Counts are kept per 10-minute bucket, in ONE guard record per hashed address (`rate#<hash>`), one
top-level number attribute per bucket: `a<bucket start>` for accepted enquiries and `c<bucket start>`
for robot-trap hits (below).

The bucket arithmetic (the estimate, its tolerance, robot-trap hits) is in `enquiries/rate_window.py`.

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

Only top-level attributes: DynamoDB's ADD works on top-level attributes only (UpdateExpression in
https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_UpdateItem.html), and a SET on a
path in a map fails when the map is absent; moto accepts both, so nested paths would pass locally and
fail on AWS. What is used here (ADD, SET and REMOVE of top-level attributes, `attribute_not_exists`,
`=`, `<`, AND, OR) moto evaluates as DynamoDB does (moto/dynamodb/parsing/executors.py and
moto/dynamodb/comparisons.py in https://github.com/getmoto/moto, checked against moto 5.2.5).
"""

from __future__ import annotations

from typing import Any

from enquiries.rate_window import (
    ACCEPTED,
    BUCKET_SECONDS,
    CAUGHT,
    SPAN_BUCKETS,
    WINDOW_SECONDS,
    Counters,
    RateWindow,
    bucket_start,
    counted_buckets,
    counters_of,
    estimate,
    retry_after,
)

# The arithmetic's names stay importable from here, where they were first.
__all__ = [
    "ACCEPTED",
    "BUCKET_SECONDS",
    "CAUGHT",
    "SPAN_BUCKETS",
    "WINDOW_SECONDS",
    "Counters",
    "RateWindow",
    "counters_of",
    "counting_update",
    "estimate",
    "retry_after",
]


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
        counted = set(counted_buckets(window, counters, caught))
        others = sorted(({f"{kind}{start}" for kind in kinds for start in span} | counted) - {counter})
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
        stale = sorted(name for name in counters if bucket_start(name) < window.oldest)
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
