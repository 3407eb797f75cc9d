"""The submission logic: turn a valid enquiry into a stored item. Storage is passed in."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from enquiries.ids import new_enquiry_id
from enquiries.storage.enquiry_store import EnquiryStore, IdAlreadyUsed
from enquiries.validation import Enquiry

# A fresh ULID colliding is practically impossible; one retry covers a clock or randomness oddity.
_ID_ATTEMPTS = 2


@dataclass(frozen=True)
class Receipt:
    """What the visitor is told: the enquiry id. `stored` is False for a honeypot hit."""

    enquiry_id: str
    stored: bool


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
    store: EnquiryStore,
    *,
    retention_days: int,
    now: datetime,
    new_id: Callable[[], str] = new_enquiry_id,
) -> Receipt:
    """Store the enquiry and return its receipt; StorageUnavailable propagates to the caller.

    A filled honeypot (`_gotcha`) gets a receipt that looks exactly like a real one, so a bot
    learns nothing, but nothing is stored (and so nothing is emailed).
    """
    if enquiry.gotcha:
        return Receipt(enquiry_id=new_id(), stored=False)
    for _ in range(_ID_ATTEMPTS):
        enquiry_id = new_id()
        try:
            store.put_new(enquiry_item(enquiry, enquiry_id, now, retention_days))
        except IdAlreadyUsed:
            continue
        return Receipt(enquiry_id=enquiry_id, stored=True)
    raise RuntimeError("no unused enquiry id after retrying")
