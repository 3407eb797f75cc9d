"""AWS plumbing every caller shares: what a failed call means, the DynamoDB call wrapper, and the
item codec between DynamoDB's attribute maps and plain values.

One classifier decides what "transient" means for every AWS call this code makes (DynamoDB,
Secrets Manager, SES): an error a later try of the same call is likely to get past. What a caller
does with it differs, and says so where it is done: a DynamoDB call becomes StorageUnavailable (a
503 for a visitor, a retried stream record for the notifier), an SES send a transient or permanent
SendFailed, a secret SecretUnavailable whatever the error (stored_secret.py).

botocore is imported inside the functions: importing this module costs nothing.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from http import HTTPStatus
from typing import Any

from enquiries.errors import Unavailable

# AWS error codes that mean "not now". A code belongs to one service's vocabulary, so one list serves
# them all: no code here means anything else in another service this code calls.
TRANSIENT_CODES = frozenset(
    {
        # DynamoDB and Secrets Manager (throttling, capacity, AWS failing):
        # https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Programming.Errors.html
        # https://docs.aws.amazon.com/secretsmanager/latest/apireference/CommonErrors.html
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "LimitExceededException",
        "TransactionInProgressException",
        "InternalServerError",
        "InternalFailure",
        "ServiceUnavailable",
        "InternalServiceError",  # Secrets Manager's, documented with HTTP status 400
        # SES v2: https://docs.aws.amazon.com/ses/latest/APIReference-V2/CommonErrors.html
        "TooManyRequestsException",
        "Throttling",
        # The per-item reasons of a cancelled TransactWriteItems (CancellationReasons):
        # https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html
        # ("TransactionConflict" is left to the caller: another transaction on the same items, which
        # storage/intake_store.py waits for rather than giving up.)
        "ThrottlingError",
        "ProvisionedThroughputExceeded",
    }
)


@dataclass(frozen=True)
class AwsFailure:
    """A failed AWS call: AWS's error code (or botocore's exception name), safe to log, and whether
    the same call is likely to work a little later."""

    code: str
    transient: bool


def is_transient_code(code: str) -> bool:
    return code in TRANSIENT_CODES


def classify(error: BaseException) -> AwsFailure | None:
    """What a failed AWS call's exception means; None for one that is neither an AWS answer nor the
    network failing (no credentials, invalid parameters, a bug), which callers let propagate."""
    from botocore.exceptions import ClientError, HTTPClientError
    from botocore.exceptions import ConnectionError as AwsConnectionError

    if isinstance(error, ClientError):
        code = str(error.response.get("Error", {}).get("Code") or "Unknown")
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        return AwsFailure(code, is_transient_code(code) or status >= HTTPStatus.INTERNAL_SERVER_ERROR)
    if isinstance(error, AwsConnectionError | HTTPClientError):
        # Connect and read timeouts, dropped connections: the call may or may not have completed.
        return AwsFailure(type(error).__name__, transient=True)
    return None


class StorageUnavailable(Unavailable):
    """DynamoDB is throttling, failing or unreachable; `reason` is safe to log (no enquiry content)."""


def aws_call(
    client: Any, operation: str, on_condition_failed: Exception | None = None, **request: Any
) -> Any:
    """Call `operation` on `client`, turning a transient failure into StorageUnavailable and a failed
    condition into `on_condition_failed`; anything else (a bug, a missing permission) propagates.
    Callers retry with care: a timed-out call may have completed (a new enquiry has a fresh id, the
    notifier re-reads before sending). Within a request's budget, a call starts only while the most
    it can take is left (request_budget.py)."""
    from enquiries.aws_clients import AWS_CALL_SECONDS
    from enquiries.request_budget import require

    require(AWS_CALL_SECONDS, operation)
    try:
        return getattr(client, operation)(**request)
    except Exception as error:
        failure = classify(error)
        if failure is None:
            raise
        if failure.code == "ConditionalCheckFailedException" and on_condition_failed is not None:
            raise on_condition_failed from None
        if failure.transient:
            raise StorageUnavailable(failure.code) from error
        raise


@dataclass(frozen=True)
class Cancellation:
    """A cancelled transaction: one reason code per write, in order ("None" for a write that was not
    the cause), and the item a failed condition saw (ReturnValuesOnConditionCheckFailure), if any.
    https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_CancellationReason.html"""

    reasons: list[str]
    old_items: list[dict[str, Any] | None]

    def failed(self, index: int) -> bool:
        """Whether the write at `index` was cancelled by its condition."""
        return index < len(self.reasons) and self.reasons[index] == "ConditionalCheckFailed"


def transact_write(client: Any, **request: Any) -> Cancellation | None:
    """TransactWriteItems through `aws_call`: None if it was written, its Cancellation if DynamoDB
    cancelled it (TransactionCanceledException); any other failure as `aws_call` raises it."""
    try:
        aws_call(client, "transact_write_items", **request)
    except Exception as error:
        # botocore's exceptions are imported only when a call fails (aws_json.py: a cold start's cost).
        from botocore.exceptions import ClientError

        if (
            not isinstance(error, ClientError)
            or error.response.get("Error", {}).get("Code") != "TransactionCanceledException"
        ):
            raise
        reasons = error.response.get("CancellationReasons", [])
        return Cancellation([str(r.get("Code", "None")) for r in reasons], [r.get("Item") for r in reasons])
    return None


# --- the item codec ------------------------------------------------------------------------------


def _number(text: str) -> int | float:
    number = Decimal(text)
    return int(number) if number == number.to_integral_value() else float(number)


def _binary(value: bytes | str) -> str:
    # botocore hands binary values over as bytes; a stream event's JSON holds them in base64 already.
    return base64.b64encode(value).decode("ascii") if isinstance(value, bytes | bytearray) else value


def plain_value(attribute: Mapping[str, Any]) -> Any:
    """One DynamoDB attribute value as plain JSON: numbers int where whole, sets as sorted lists,
    binary as base64 text."""
    [(kind, value)] = attribute.items()
    convert = _PLAIN.get(kind)
    if convert is None:
        raise TypeError(f"unknown DynamoDB attribute type {kind!r}")
    return convert(value)


def plain_item(item: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """A DynamoDB item (low-level attribute maps) as plain JSON values."""
    return {name: plain_value(attribute) for name, attribute in item.items()}


# Each attribute type's reading: https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_AttributeValue.html
_PLAIN: dict[str, Callable[[Any], Any]] = {
    "S": str,
    "N": _number,
    "BOOL": bool,
    "NULL": lambda _: None,
    "B": _binary,
    "SS": sorted,
    "NS": lambda members: sorted(_number(member) for member in members),
    "BS": lambda members: sorted(_binary(member) for member in members),
    "L": lambda members: [plain_value(member) for member in members],
    "M": plain_item,
}


def attribute_map(item: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Plain values (text, whole numbers, booleans: all an enquiry holds) as a DynamoDB item."""
    return {name: _attribute(value) for name, value in item.items()}


def _attribute(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int):
        return {"N": str(value)}
    if isinstance(value, str):
        return {"S": value}
    raise TypeError(f"cannot store a {type(value).__name__}")
