"""The submission logic: turn a valid enquiry into a stored item with its guards. Storage is passed in."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from enquiries.ids import new_enquiry_id
from enquiries.storage.enquiry_store import IdAlreadyUsed
from enquiries.storage.intake_store import IntakeStore, Replayable, ReplayKey
from enquiries.storage.rate_limit import RateWindow
from enquiries.validation import Enquiry

# A fresh ULID colliding is practically impossible; one retry covers a clock or randomness oddity.
_ID_ATTEMPTS = 2


@dataclass(frozen=True)
class Accepted:
    enquiry_id: str
    response: Replayable


def utc_now() -> datetime:
    return datetime.now(UTC)


def enquiry_item(enquiry: Enquiry, enquiry_id: str, now: datetime, retention_days: int) -> dict[str, Any]:
    """The DynamoDB item: the stored fields, `created_at` (ISO 8601 UTC) and the TTL `expires_at`."""
    received = now.astimezone(UTC)
    return {
        "id": enquiry_id,
        **enquiry.stored_fields(),
        "created_at": received.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "expires_at": int((received + timedelta(days=retention_days)).timestamp()),
    }


def accept_enquiry(
    enquiry: Enquiry,
    store: IntakeStore,
    *,
    respond: Callable[[str], Replayable],
    keys: list[ReplayKey],
    rate: RateWindow | None,
    retention_days: int,
    now: datetime,
    new_id: Callable[[], str] = new_enquiry_id,
) -> Accepted:
    """Store the enquiry with the response `respond(id)` gives, remembered under `keys`.

    Raises Replayed (a repeat: the first response), RateLimited or StorageUnavailable; in each
    case nothing was stored.
    """
    for _ in range(_ID_ATTEMPTS):
        enquiry_id = new_id()
        response = respond(enquiry_id)
        try:
            store.accept(enquiry_item(enquiry, enquiry_id, now, retention_days), response, keys, rate)
        except IdAlreadyUsed:
            continue
        return Accepted(enquiry_id, response)
    raise RuntimeError("no unused enquiry id after retrying")


def answer_caught(
    store: IntakeStore,
    *,
    respond: Callable[[str], Replayable],
    keys: list[ReplayKey],
    rate: RateWindow | None,
    new_id: Callable[[], str] = new_enquiry_id,
) -> Accepted:
    """A robot-trap hit: the answer an accepted enquiry would get, with a fresh id, remembered under
    `keys` and counted in `rate` like one, and nothing stored. Raises what accept_enquiry raises."""
    enquiry_id = new_id()
    response = respond(enquiry_id)
    store.accept_caught(enquiry_id, response, keys, rate)
    return Accepted(enquiry_id, response)
