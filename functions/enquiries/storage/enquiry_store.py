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


class EnquiryStore(Protocol):
    def put_new(self, item: dict[str, Any]) -> None:
        """Store a new enquiry; raise IdAlreadyUsed or StorageUnavailable."""


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

    def put_new(self, item: dict[str, Any]) -> None:
        from botocore.exceptions import ClientError, HTTPClientError
        from botocore.exceptions import ConnectionError as AwsConnectionError

        try:
            self._client_factory().put_item(
                TableName=self.table_name,
                Item={key: _attribute(value) for key, value in item.items()},
                # Never overwrite: an id is written once.
                ConditionExpression="attribute_not_exists(id)",
            )
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "Unknown")
            if code == "ConditionalCheckFailedException":
                raise IdAlreadyUsed(item["id"]) from None
            if (
                code in TRANSIENT_ERROR_CODES
                or error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) >= 500
            ):
                raise StorageUnavailable(code) from error
            raise
        except (AwsConnectionError, HTTPClientError) as error:
            # Connect/read timeouts and dropped connections: the write may not have happened, and the
            # id is fresh per attempt, so the visitor resending is safe (duplicates are caught upstream).
            raise StorageUnavailable(type(error).__name__) from error
