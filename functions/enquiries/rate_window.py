"""The per-address rate limit's arithmetic: at most `limit` accepted enquiries in any 60 minutes,
estimated from 10-minute buckets. Pure values; storage/rate_limit.py turns them into the DynamoDB
write that checks and counts inside the transaction storing the enquiry.

Counts are kept per 10-minute bucket: `a<bucket start>` for accepted enquiries and `c<bucket start>`
for robot-trap hits (below).

- **The estimate** at time t is the sum of the buckets that overlap the last 60 minutes: the
  current bucket, the five before it and the oldest, partly covered one counted whole. It is never
  less than the true count of the last 60 minutes, so an enquiry is accepted only while fewer than
  `limit` were accepted in the 60 minutes before it: never more than `limit` in any 60-minute span.
- **The tolerance**: the estimate may count up to one bucket (10 minutes) more than the last 60
  minutes, so a visitor may have to wait at most 10 minutes longer than a true sliding window would
  make them wait. Put the other way: a refusal means `limit` were accepted within the last 70 minutes.
  Retry-After is exact for this estimate: the seconds until it drops below the limit.
- **Robot-trap hits** never use up a visitor's allowance: they are counted in their own `c`
  buckets, which only they read. A trapped robot is refused (429) when accepted enquiries and trap
  hits together reach the limit, as it would be if its enquiries had been accepted, so the limit
  does not tell it apart either.
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


def bucket_start(name: str) -> int:
    return int(name[1:])


def counted_buckets(window: RateWindow, counters: Counters, caught: bool) -> Counters:
    """The counts the estimate adds up: accepted ones, and for a trap hit the trap hits too. A
    bucket ahead of the current one (another instance's clock) counts as well."""
    kinds = (ACCEPTED, CAUGHT) if caught else (ACCEPTED,)
    return {
        name: count
        for name, count in counters.items()
        if name[0] in kinds and bucket_start(name) >= window.oldest
    }


def estimate(window: RateWindow, counters: Counters, caught: bool = False) -> int:
    return sum(counted_buckets(window, counters, caught).values())


def retry_after(window: RateWindow, counters: Counters, caught: bool = False) -> int:
    """Seconds until the estimate is below the limit again, if nothing more is counted meanwhile."""
    counted = counted_buckets(window, counters, caught)
    left = sum(counted.values())
    for start in sorted({bucket_start(name) for name in counted}):
        left -= sum(count for name, count in counted.items() if bucket_start(name) == start)
        if left < window.limit:
            # A bucket stops counting when the bucket SPAN_BUCKETS after it begins.
            return max(1, math.ceil(start + SPAN_BUCKETS * BUCKET_SECONDS - window.now))
    return 1  # not reached: with every bucket gone the estimate is 0
