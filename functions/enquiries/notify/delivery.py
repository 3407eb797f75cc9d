"""Exactly one email per stored enquiry, whatever the stream redelivers.

Before sending, a consistent read skips an enquiry already marked notified (a stream batch is
retried from its first failed record, so records after it arrive again). After sending, a
conditional update marks the item. What remains: if the process dies after SES accepted the
email and before the mark is written (milliseconds), the retry sends a second copy. A failed
mark after a successful send is logged, never retried, for the same reason.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from enum import StrEnum
from typing import Any, Protocol

from enquiries.log import logger
from enquiries.storage.enquiry_store import AlreadyNotified, NotificationLedger, StorageUnavailable


class Mailer(Protocol):
    def send(self, message: EmailMessage) -> str:
        """Send; return the provider's message id, or raise SendFailed."""


class Outcome(StrEnum):
    SENT = "sent"
    ALREADY_NOTIFIED = "already_notified"
    GONE = "gone"
    SENT_UNMARKED = "sent_unmarked"


@dataclass(frozen=True)
class Delivery:
    outcome: Outcome
    ses_message_id: str | None = None


def deliver(
    enquiry_id: str,
    ledger: NotificationLedger,
    mailer: Mailer,
    compose: Callable[[Mapping[str, Any]], EmailMessage],
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Delivery:
    """Email the clinic about one enquiry unless that was done before. SendFailed and storage errors
    before the send propagate, so the record fails and the stream retries it."""
    item = ledger.get(enquiry_id)
    if item is None:
        return Delivery(Outcome.GONE)  # deleted (by staff or TTL) before we got to it: nothing to send
    if item.get("notified_at"):
        return Delivery(Outcome.ALREADY_NOTIFIED)
    message_id = mailer.send(compose(item))
    notified_at = clock().astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    try:
        ledger.mark_notified(enquiry_id, notified_at, message_id)
    except AlreadyNotified:
        # Another delivery of the same record marked it between our read and our send.
        logger.warning(
            "enquiry emailed twice", extra={"enquiry_id": enquiry_id, "ses_message_id": message_id}
        )
    except StorageUnavailable as unavailable:
        logger.error(
            "emailed but not marked notified",
            extra={"enquiry_id": enquiry_id, "ses_message_id": message_id, "reason": unavailable.reason},
        )
        return Delivery(Outcome.SENT_UNMARKED, message_id)
    return Delivery(Outcome.SENT, message_id)
