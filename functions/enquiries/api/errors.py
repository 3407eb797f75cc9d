"""The contract's error responses: a stable code, a sentence a visitor can act on, and more."""

from __future__ import annotations

from dataclasses import dataclass, field

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
    "rate_limited": "You have sent several enquiries in the last hour. Please try again later.",
    "unavailable": "We could not save your enquiry just now. Please try again in a minute.",
    "internal_error": (
        "Something went wrong on our side and your enquiry was not saved. Please try again later."
    ),
}


@dataclass
class ApiError(Exception):
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
    if error.status >= 500:
        if clinic_phone:
            body["message"] = f"{message.rstrip('.')}, or call us on {clinic_phone}."
        body["reference"] = reference or "unknown"
    return body
