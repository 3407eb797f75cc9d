"""The contract's error responses: a stable code, a sentence a visitor can act on, and more; and
which of them answers each error the submission path raises."""

from __future__ import annotations

from dataclasses import dataclass, field
from http import HTTPStatus

from enquiries.captcha import CaptchaFailed
from enquiries.errors import EnquiriesError, Unavailable
from enquiries.field_messages import MESSAGES as FIELD_MESSAGES
from enquiries.intake import IdempotencyKeyReused, RateLimited
from enquiries.validation import InvalidEnquiry

# Seconds a visitor (or the form script) should wait before resending after a 503.
RETRY_AFTER_SECONDS = 30

MESSAGES = {
    "bad_request": "We could not read the enquiry that was sent. Please reload the page and try again.",
    "origin_not_allowed": "This website is not allowed to send enquiries to this address.",
    "not_found": "There is nothing at this address. Enquiries are sent with POST to /enquiries.",
    "method_not_allowed": "Enquiries are sent with POST to this address.",
    "payload_too_large": "The enquiry is too large to send. Please shorten your message and try again.",
    "unsupported_media_type": (
        "Send the enquiry as JSON (application/json) or as an HTML form "
        "(application/x-www-form-urlencoded or multipart/form-data)."
    ),
    "validation_failed": "Some details need correcting before the enquiry can be sent.",
    "idempotency_key_reused": (
        "This enquiry came with the Idempotency-Key of an earlier, different enquiry, so it has not "
        "been saved. Please send it again."
    ),
    "rate_limited": "You have sent several enquiries in the last hour. Please try again later.",
    "unavailable": "We could not save your enquiry just now. Please try again in a minute.",
    "internal_error": (
        "Something went wrong on our side and your enquiry was not saved. Please try again later."
    ),
}


@dataclass
class ApiError(EnquiriesError):
    """A response the contract defines for a failure. Raised anywhere below the router; rendered once."""

    status: int
    code: str
    message: str = ""
    fields: dict[str, str] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    # Safe to log: why this happened (an AWS error code, a parse failure kind), never visitor content.
    reason: str = ""

    def __post_init__(self) -> None:
        self.message = self.message or MESSAGES[self.code]
        super().__init__(f"{self.status} {self.code}: {self.reason or self.message}")


def error_body(error: ApiError, *, reference: str | None, clinic_phone: str | None) -> dict[str, object]:
    """The JSON body of an error: `error`, `message`, and `fields` or (on 5xx) `reference`."""
    message = error.message
    body: dict[str, object] = {"error": error.code, "message": message}
    if error.fields:
        body["fields"] = error.fields
    if error.status >= HTTPStatus.INTERNAL_SERVER_ERROR:
        if clinic_phone:
            body["message"] = f"{message.rstrip('.')}, or call us on {clinic_phone}."
        body["reference"] = reference or "unknown"
    return body


def rate_limited_message(retry_after: int) -> str:
    minutes = max(1, round(retry_after / 60))
    return (
        "You have sent several enquiries from this connection within the hour. "
        f"Please try again in about {minutes} minute{'s' if minutes != 1 else ''}."
    )


def contract_error(error: Exception) -> ApiError | None:  # noqa: PLR0911 - one answer per kind of error
    """The contract's answer to an error the submission path raises; None for one it does not
    expect (a bug, a missing permission, an enquiry id in use), which is a 500."""
    if isinstance(error, ApiError):
        return error
    if isinstance(error, InvalidEnquiry):
        return ApiError(422, "validation_failed", fields=error.fields, reason="fields")
    if isinstance(error, IdempotencyKeyReused):
        return ApiError(422, "idempotency_key_reused", reason="idempotency_key_reused")
    if isinstance(error, CaptchaFailed):
        return ApiError(
            422, "validation_failed", fields={"captcha": FIELD_MESSAGES["captcha"]}, reason="captcha_failed"
        )
    if isinstance(error, RateLimited):
        return ApiError(
            429,
            "rate_limited",
            headers={"Retry-After": str(error.retry_after)},
            message=rate_limited_message(error.retry_after),
            reason="rate_limit",
        )
    if isinstance(error, Unavailable):
        # Throttled, down or timing out, or a secret the deployment cannot read (logged once, by
        # name): "try again soon", with Retry-After, never a 500.
        return ApiError(503, "unavailable", reason=error.reason)
    return None
