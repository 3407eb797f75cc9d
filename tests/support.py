"""What the tests share besides fixtures: names of the emulated resources, events from events/, the
contract's error codes, and readers of what the handlers stored, answered and logged.

Tests import these from here; conftest.py holds only fixtures (pytest imports it on its own)."""

from __future__ import annotations

import copy
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from emulator.lambda_context import LambdaContext

if TYPE_CHECKING:
    from enquiries.api.services import Services
    from enquiries.intake import IntakeStore
    from enquiries.notify.acknowledgement import RetargetableMailer
    from enquiries.notify.handler import Notifier
    from enquiries.notify.ledger import NotificationLedger
    from enquiries.notify.mail_settings import MailSettings

REPO = Path(__file__).resolve().parent.parent
EVENTS = REPO / "events"
TABLE_NAME = "enquiries-test"
GUARD_TABLE_NAME = "enquiries-guard-test"
SECRET_NAME = "enquiries-client-address-key"
SECRET_VALUE = "test-address-hash-key"
REGION = "eu-west-2"
ALLOWED_ORIGIN = "https://www.clinic.example"

BASE_ENV = {
    "TABLE_NAME": TABLE_NAME,
    "GUARD_TABLE_NAME": GUARD_TABLE_NAME,
    "CLIENT_ADDRESS_SECRET_ARN": SECRET_NAME,
    "ALLOWED_ORIGINS": ALLOWED_ORIGIN,
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
    "POWERTOOLS_SERVICE_NAME": "enquiries",
}

# Content types the fuzzers send: the three the contract accepts, near misses and nonsense.
FUZZ_MEDIA_TYPES = (
    "application/json",
    "application/x-www-form-urlencoded",
    "multipart/form-data",
    "text/plain",
    "application/xml",
    "application/octet-stream",
    "text/html",
    "application/jsonx",
    "multipart/mixed",
    "",
    " ",
)

# The contract's Responses table: the error code each status carries (the tests' own copy, so that
# the code and the OpenAPI document are checked against the contract, not against themselves).
CONTRACT_ERRORS = {
    400: "bad_request",
    403: "origin_not_allowed",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_failed",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}
# The contract's codes beyond a status's own: a used Idempotency-Key with another body (Duplicates).
CONTRACT_OTHER_ERRORS = {422: ("idempotency_key_reused",)}


def contract_codes(status: int) -> set[str]:
    """The error codes the contract allows with `status`."""
    return {CONTRACT_ERRORS[status], *CONTRACT_OTHER_ERRORS.get(status, ())}


Handler = Callable[[dict[str, Any]], dict[str, Any]]


class MakeHandler(Protocol):
    """conftest's `make_handler`: the real submission handler, with these services or this store,
    this clock, this Lambda context and these extra settings."""

    def __call__(
        self,
        services: Services | None = None,
        *,
        store: IntakeStore | None = None,
        clock: Callable[[], datetime] | None = None,
        context: Any = None,
        **settings: str,
    ) -> Handler: ...


# The notifier's Lambda handler: a stream event and a Lambda context (a FakeContext will do).
NotifyHandler = Callable[[dict[str, Any], Any], Any]


@dataclass(frozen=True)
class MadeNotifier:
    """What conftest's `make_notifier` made: the parts the notifier's init built, and its handler."""

    parts: Notifier
    lambda_handler: NotifyHandler


class MakeNotifier(Protocol):
    """conftest's `make_notifier`: the real notifier, initialised as on Lambda with these extra
    settings, and with this mailer, this ledger or this clock (the acknowledgements') if given."""

    def __call__(
        self,
        *,
        mailer_for: Callable[[MailSettings], RetargetableMailer] | None = None,
        ledger_for: Callable[[str], NotificationLedger] | None = None,
        clock: Callable[[], float] | None = None,
        **settings: str,
    ) -> MadeNotifier: ...


def load_event(name: str, **changes: Any) -> dict[str, Any]:
    """An event from events/, with top-level keys replaced and `headers=` merged (None deletes)."""
    event: dict[str, Any] = json.loads((EVENTS / name).read_text())
    headers = changes.pop("headers", None)
    event.update(changes)
    for key, value in (headers or {}).items():
        if value is None:
            event["headers"].pop(key, None)
        else:
            event["headers"][key] = value
    return copy.deepcopy(event)


def with_json_body(name: str, body: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A JSON event from events/ with another body."""
    return load_event(name, body=json.dumps(body), isBase64Encoded=False, **changes)


# Its default remaining time is a fresh invocation of the notifier, whose timeout (120 s) is the longer
# of the two functions'.
FakeContext = LambdaContext


def stored_items(client: Any, table_name: str = TABLE_NAME) -> list[dict[str, Any]]:
    """Every item in the table, as plain values (the functions' own codec)."""
    from enquiries.aws import plain_item

    return [plain_item(item) for item in client.scan(TableName=table_name, ConsistentRead=True)["Items"]]


def body_of(response: dict[str, Any]) -> Any:
    return json.loads(response["body"])


def log_records(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]
