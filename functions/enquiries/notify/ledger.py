"""The notifier's ledger: an enquiry as stored now, the claim to send its email, and the mark that
its email was sent.

The claim (`sending_until`, `sending_claim`) and the mark (`notified_at`, `ses_message_id`) are
written on the enquiry's own item with conditional updates. Every delivery takes the claim before it
sends, the stream's and the operator's resend alike, and only while no other delivery holds one:
two deliveries of one enquiry can never both be sending. A claim is let go by the mark (or after a
failed send), and one left by a process that died stops counting after CLAIM_SECONDS.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from enquiries.aws import aws_call, plain_item
from enquiries.aws_clients import dynamodb_client
from enquiries.errors import EnquiriesError

# Longer than a delivery holds its claim at worst, from the claim to the mark: the send (9 s) and
# the mark (8 s) of `delivery` (RECORD_MAX_SECONDS covers them), with room to spare.
CLAIM_SECONDS = 60


class AlreadyNotified(EnquiriesError):
    """The item was marked notified already (by an earlier delivery of the same record)."""


class ClaimRefused(EnquiriesError):
    """Another delivery holds the enquiry's claim, or it was notified (or deleted) since it was read."""


class NotificationLedger(Protocol):
    def get(self, enquiry_id: str) -> dict[str, Any] | None:
        """The item as stored now (a consistent read), or None if it is gone."""

    def claim(self, enquiry_id: str, claim: str, now: int, *, again: bool) -> None:
        """Take the claim to send the enquiry's email, as `claim`, until `now` + CLAIM_SECONDS; raise
        ClaimRefused if another live claim holds it, or (unless `again`) it is marked notified."""

    def release(self, enquiry_id: str, claim: str) -> None:
        """Let go of `claim` without marking (the send failed); nothing if it is no longer ours."""

    def mark_notified(self, enquiry_id: str, notified_at: str, ses_message_id: str, claim: str) -> None:
        """Record the sent email on the item and let go of `claim`; raise AlreadyNotified if the
        claim is no longer ours (it expired and another delivery took it)."""


class DynamoNotificationLedger:
    """The enquiries table `table_name`; the client is created on first use unless one is given.
    Every call raises StorageUnavailable when DynamoDB is throttling, failing or unreachable."""

    def __init__(self, table_name: str, client_factory: Callable[[], Any] = dynamodb_client) -> None:
        self.table_name = table_name
        self._client_factory = client_factory

    def get(self, enquiry_id: str) -> dict[str, Any] | None:
        response = aws_call(
            self._client_factory(),
            "get_item",
            TableName=self.table_name,
            Key={"id": {"S": enquiry_id}},
            ConsistentRead=True,
        )
        return plain_item(response["Item"]) if "Item" in response else None

    def claim(self, enquiry_id: str, claim: str, now: int, *, again: bool) -> None:
        # A claim past its time may still be there: it no longer counts.
        condition = "attribute_exists(id) AND (attribute_not_exists(sending_until) OR sending_until <= :now)"
        if not again:
            condition += " AND attribute_not_exists(notified_at)"
        aws_call(
            self._client_factory(),
            "update_item",
            on_condition_failed=ClaimRefused(enquiry_id),
            TableName=self.table_name,
            Key={"id": {"S": enquiry_id}},
            UpdateExpression="SET sending_until = :until, sending_claim = :claim",
            ConditionExpression=condition,
            ExpressionAttributeValues={
                ":until": {"N": str(now + CLAIM_SECONDS)},
                ":claim": {"S": claim},
                ":now": {"N": str(now)},
            },
        )

    def release(self, enquiry_id: str, claim: str) -> None:
        aws_call(
            self._client_factory(),
            "update_item",
            on_condition_failed=ClaimRefused(enquiry_id),
            TableName=self.table_name,
            Key={"id": {"S": enquiry_id}},
            UpdateExpression="REMOVE sending_until, sending_claim",
            ConditionExpression="sending_claim = :claim",
            ExpressionAttributeValues={":claim": {"S": claim}},
        )

    def mark_notified(self, enquiry_id: str, notified_at: str, ses_message_id: str, claim: str) -> None:
        aws_call(
            self._client_factory(),
            "update_item",
            on_condition_failed=AlreadyNotified(enquiry_id),
            TableName=self.table_name,
            Key={"id": {"S": enquiry_id}},
            UpdateExpression=(
                "SET notified_at = :at, ses_message_id = :mid REMOVE sending_until, sending_claim"
            ),
            ConditionExpression="attribute_exists(id) AND sending_claim = :claim",
            ExpressionAttributeValues={
                ":at": {"S": notified_at},
                ":mid": {"S": ses_message_id},
                ":claim": {"S": claim},
            },
        )
