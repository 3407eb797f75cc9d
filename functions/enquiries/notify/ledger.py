"""The notifier's ledger: an enquiry as stored now, and the mark that its email was sent.

The mark is written on the enquiry's own item (`notified_at`, `ses_message_id`), on condition that
it is not there yet, so that two deliveries of one stream record cannot both record a send.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from enquiries.aws import aws_call, plain_item
from enquiries.aws_clients import dynamodb_client


class AlreadyNotified(Exception):
    """The item was marked notified already (by an earlier delivery of the same record)."""


class NotificationLedger(Protocol):
    def get(self, enquiry_id: str) -> dict[str, Any] | None:
        """The item as stored now (a consistent read), or None if it is gone."""

    def mark_notified(self, enquiry_id: str, notified_at: str, ses_message_id: str) -> None:
        """Record the sent email on the item; raise AlreadyNotified if it was recorded before."""


class DynamoNotificationLedger:
    """The enquiries table `table_name`; the client is created on first use unless one is given.
    Both calls raise StorageUnavailable when DynamoDB is throttling, failing or unreachable."""

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

    def mark_notified(self, enquiry_id: str, notified_at: str, ses_message_id: str) -> None:
        aws_call(
            self._client_factory(),
            "update_item",
            on_condition_failed=AlreadyNotified(enquiry_id),
            TableName=self.table_name,
            Key={"id": {"S": enquiry_id}},
            UpdateExpression="SET notified_at = :at, ses_message_id = :mid",
            ConditionExpression="attribute_exists(id) AND attribute_not_exists(notified_at)",
            ExpressionAttributeValues={":at": {"S": notified_at}, ":mid": {"S": ses_message_id}},
        )
