"""Exactly one email per stored enquiry, whatever the stream redelivers, and one more per resend.

Before sending, a consistent read skips an enquiry already marked notified (a stream batch is
retried from its first failed record, so records after it arrive again), unless the operator asked
to send it again (`again`, the `enquiries resend` command). Then the delivery takes the enquiry's
claim (`ledger`), a conditional write that only one delivery at a time can make: a resend and the
stream's own delivery (or its retry) never both send. A delivery that finds the claim held fails its
record, so the stream tries it again later, when the email is marked sent or the claim has expired.
After sending, a conditional update marks the item and lets go of the claim, retried a few times
over about a second if DynamoDB is throttling (an unmarked item is emailed again if the stream
delivers its record again), but only while another try still fits in MARK_BUDGET_SECONDS, so that
one record has a bounded worst case. What remains: if the process dies after SES accepted the email
and before the mark is written, or the mark still fails after its retries and the record's batch is
then retried for another record's sake, the clinic gets a second copy. A mark that fails is logged by
id and never fails the record: failing it would make that second copy certain.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from enum import StrEnum
from typing import Any, Protocol

from enquiries.aws import StorageUnavailable
from enquiries.aws_clients import (
    CONNECT_TIMEOUT_SECONDS,
    MAX_ATTEMPTS,
    READ_TIMEOUT_SECONDS,
    RETRY_BACKOFF_SECONDS,
)
from enquiries.log import logger
from enquiries.notify.ledger import AlreadyNotified, ClaimRefused, NotificationLedger
from enquiries.notify.notification_cap import NotificationCap
from enquiries.timestamps import table_time

# One DynamoDB call gives up after at most 7 s: the clients of `enquiries.aws_clients` make 2 attempts
# of (1 s to connect + 2 s to read), with at most 1 s of backoff between them (as mailer.py counts SES's).
DYNAMODB_CALL_MAX_SECONDS = (
    MAX_ATTEMPTS * (CONNECT_TIMEOUT_SECONDS + READ_TIMEOUT_SECONDS) + RETRY_BACKOFF_SECONDS
)
# Pauses between tries to mark an item notified after its email was sent; a try is made only if it
# would end within MARK_BUDGET_SECONDS of the first, so marking takes at most that long.
MARK_RETRY_PAUSES = (0.2, 0.4, 0.8)
MARK_BUDGET_SECONDS = 8.0


# The key of a stream record (in the notifier's input) with which `enquiries resend` marks its own
# records: RESEND_AGAIN asks for the email even when it was sent; either way the daily cap is not
# applied. Lambda's stream records never have it, and only the operator may invoke the notifier
# (template.yaml, OperatorPolicy).
RESEND_KEY = "enquiriesResend"
RESEND_AGAIN = "again"
RESEND_UNNOTIFIED = "unnotified"
# The key of the notifier's answer to a resend under which each record that failed (by its sequence
# number, as in batchItemFailures) has its reason: an AWS error code, such as SES's MessageRejected.
RESEND_REASONS_KEY = "enquiriesResendReasons"


class SentElsewhere(StorageUnavailable):
    """Another delivery holds the enquiry's claim and may be sending it now: the record fails, and the
    stream's retry finds it marked, or the claim expired."""

    def __init__(self) -> None:
        super().__init__("claimed_by_another_delivery")


def _mark_notified(
    ledger: NotificationLedger, enquiry_id: str, notified_at: str, message_id: str, claim: str
) -> None:
    started = time.monotonic()
    for pause in (*MARK_RETRY_PAUSES, None):
        try:
            ledger.mark_notified(enquiry_id, notified_at, message_id, claim)
            return
        except StorageUnavailable:
            elapsed = time.monotonic() - started
            if pause is None or elapsed + pause + DYNAMODB_CALL_MAX_SECONDS > MARK_BUDGET_SECONDS:
                raise
            time.sleep(pause)


class Mailer(Protocol):
    def send(self, message: EmailMessage) -> str:
        """Send; return the provider's message id, or raise SendFailed."""


class Outcome(StrEnum):
    SENT = "sent"
    ALREADY_NOTIFIED = "already_notified"
    GONE = "gone"
    SENT_UNMARKED = "sent_unmarked"
    # Over NOTIFICATION_DAILY_CAP: stored, not emailed, left unnotified for the operator's resend.
    CAPPED = "capped"


@dataclass(frozen=True)
class Delivery:
    outcome: Outcome
    ses_message_id: str | None = None
    # The enquiry as read before sending (None when it is gone): what the acknowledgement needs.
    item: Mapping[str, Any] | None = None


def deliver(  # noqa: PLR0913 - the keyword-only ones are the operator's and the cap's
    enquiry_id: str,
    ledger: NotificationLedger,
    mailer: Mailer,
    compose: Callable[[Mapping[str, Any]], EmailMessage],
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    *,
    again: bool = False,
    cap: NotificationCap | None = None,
) -> Delivery:
    """Email the clinic about one enquiry unless that was done before (or, `again`, even so), and
    (with a `cap`) unless the day's clinic emails reached it.
    SendFailed and storage errors before the send propagate, so the record fails and is retried;
    SentElsewhere (a StorageUnavailable) when another delivery holds the enquiry's claim."""
    item = ledger.get(enquiry_id)
    if item is None:
        return Delivery(Outcome.GONE)  # deleted (by staff or TTL) before we got to it: nothing to send
    if item.get("notified_at") and not again:
        return Delivery(Outcome.ALREADY_NOTIFIED, item=item)
    if cap is not None and not cap.take(clock().timestamp()):
        return Delivery(Outcome.CAPPED)
    claim = uuid.uuid4().hex
    try:
        ledger.claim(enquiry_id, claim, int(clock().timestamp()), again=again)
    except ClaimRefused:
        return _claim_refused(ledger, enquiry_id, again=again)
    try:
        message_id = mailer.send(compose(item))
    except Exception:
        _release(ledger, enquiry_id, claim)
        raise
    notified_at = table_time(clock())
    try:
        _mark_notified(ledger, enquiry_id, notified_at, message_id, claim)
    except AlreadyNotified:
        # Our claim expired and another delivery took it before our mark.
        logger.warning(
            "enquiry emailed twice", extra={"enquiry_id": enquiry_id, "ses_message_id": message_id}
        )
    except StorageUnavailable as unavailable:
        logger.error(
            "emailed but not marked notified",
            extra={"enquiry_id": enquiry_id, "ses_message_id": message_id, "reason": unavailable.reason},
        )
        return Delivery(Outcome.SENT_UNMARKED, message_id, item)
    return Delivery(Outcome.SENT, message_id, item)


def _claim_refused(ledger: NotificationLedger, enquiry_id: str, *, again: bool) -> Delivery:
    """Why the claim was refused: the enquiry is gone or was notified since the read, or (raised as
    SentElsewhere) another delivery holds it."""
    now = ledger.get(enquiry_id)
    if now is None:
        return Delivery(Outcome.GONE)
    if now.get("notified_at") and not again:
        return Delivery(Outcome.ALREADY_NOTIFIED, item=now)
    raise SentElsewhere()


def _release(ledger: NotificationLedger, enquiry_id: str, claim: str) -> None:
    """Let go of the claim after a failed send, so a retry need not wait for it to expire; a claim
    that cannot be let go expires by itself."""
    try:
        ledger.release(enquiry_id, claim)
    except (ClaimRefused, StorageUnavailable):
        logger.warning("sending claim not released", extra={"enquiry_id": enquiry_id})
