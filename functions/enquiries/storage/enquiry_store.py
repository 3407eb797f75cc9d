"""Stores enquiries in DynamoDB, mapping AWS failures to the two outcomes callers act on."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from enquiries.aws_clients import dynamodb_client

# Errors that mean "not now": the visitor should resend later (503 with Retry-After).
TRANSIENT_ERROR_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "ServiceUnavailable",
        "InternalServerError",
        "InternalFailure",
        "LimitExceededException",
        "TransactionInProgressException",
    }
)


class StorageUnavailable(Exception):
    """DynamoDB is throttling, failing or unreachable; `reason` is safe to log (no enquiry content)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class IdAlreadyUsed(Exception):
    """An item with this id exists already (the conditional write refused to overwrite it)."""


class AlreadyNotified(Exception):
    """The item was marked notified already (by an earlier delivery of the same record)."""


class NotificationLedger(Protocol):
    def get(self, enquiry_id: str) -> dict[str, Any] | None:
        """The item as stored now (a consistent read), or None if it is gone."""

    def mark_notified(self, enquiry_id: str, notified_at: str, ses_message_id: str) -> None:
        """Record the sent email on the item; raise AlreadyNotified if it was recorded before."""


def _plain(attribute: dict[str, Any]) -> Any:
    if "S" in attribute:
        return attribute["S"]
    if "N" in attribute:
        number = attribute["N"]
        return int(number) if number.lstrip("-").isdigit() else float(number)
    if "BOOL" in attribute:
        return bool(attribute["BOOL"])
    if "NULL" in attribute:
        return None
    raise TypeError(f"unexpected attribute type {sorted(attribute)}")


def plain_item(item: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A DynamoDB item (low-level attribute maps) as plain Python values."""
    return {key: _plain(value) for key, value in item.items()}


def attribute_map(item: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Plain values as a DynamoDB item (low-level attribute maps)."""
    return {key: _attribute(value) for key, value in item.items()}


def _attribute(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int):
        return {"N": str(value)}
    if isinstance(value, str):
        return {"S": value}
    raise TypeError(f"cannot store a {type(value).__name__}")


class DynamoEnquiryStore:
    """The DynamoDB table `table_name`; the client is created on first use unless one is given."""

    def __init__(self, table_name: str, client_factory: Callable[[], Any] = dynamodb_client) -> None:
        self.table_name = table_name
        self._client_factory = client_factory

    def get(self, enquiry_id: str) -> dict[str, Any] | None:
        response = self._call(
            "get_item", TableName=self.table_name, Key={"id": {"S": enquiry_id}}, ConsistentRead=True
        )
        return plain_item(response["Item"]) if "Item" in response else None

    def mark_notified(self, enquiry_id: str, notified_at: str, ses_message_id: str) -> None:
        self._call(
            "update_item",
            on_condition_failed=AlreadyNotified(enquiry_id),
            TableName=self.table_name,
            Key={"id": {"S": enquiry_id}},
            UpdateExpression="SET notified_at = :at, ses_message_id = :mid",
            ConditionExpression="attribute_exists(id) AND attribute_not_exists(notified_at)",
            ExpressionAttributeValues={":at": {"S": notified_at}, ":mid": {"S": ses_message_id}},
        )

    def _call(self, operation: str, on_condition_failed: Exception | None = None, **request: Any) -> Any:
        return aws_call(self._client_factory(), operation, on_condition_failed, **request)


def aws_call(
    client: Any, operation: str, on_condition_failed: Exception | None = None, **request: Any
) -> Any:
    """Call a DynamoDB operation, mapping "not now" failures to StorageUnavailable and a failed
    condition to `on_condition_failed`; anything else (a bug, a missing permission) propagates."""
    from botocore.exceptions import ClientError, HTTPClientError
    from botocore.exceptions import ConnectionError as AwsConnectionError

    try:
        return getattr(client, operation)(**request)
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "Unknown")
        if code == "ConditionalCheckFailedException" and on_condition_failed is not None:
            raise on_condition_failed from None
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if code in TRANSIENT_ERROR_CODES or status >= 500:
            raise StorageUnavailable(code) from error
        raise
    except (AwsConnectionError, HTTPClientError) as error:
        # Connect/read timeouts and dropped connections: the call may not have completed. Callers
        # retry with care (a new enquiry gets a fresh id; the notifier re-reads before sending).
        raise StorageUnavailable(type(error).__name__) from error
