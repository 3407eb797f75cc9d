"""The command's one link to the functions' code (functions/enquiries).

The command reuses what the functions know about their data instead of copying it: the DynamoDB item
codec and the mapping of "not now" AWS failures (aws), the consistent read of one enquiry (the
notifier's own), how an address is normalised before it is stored (validation), which guard-table
records name an enquiry (intake), the event the notifier takes and the deployment's forms (forms).
Nothing else in enquiries_cli
imports from `enquiries`: when functions/ changes shape, this is the module to update, and
tests/test_operator_adapter.py checks it against the functions' code.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from enquiries import canary, canary_metric, canary_run, timestamps
from enquiries.aws import StorageUnavailable, aws_call, plain_item
from enquiries.client_address import keyed_hash
from enquiries.forms import DEFAULT_FORM_ID, Form, FormError, FormField, Forms, deployment_forms
from enquiries.notify.ack_store import address_record_id
from enquiries.notify.acknowledgement import address_hash_text
from enquiries.notify.delivery import RESEND_AGAIN, RESEND_KEY, RESEND_REASONS_KEY, RESEND_UNNOTIFIED
from enquiries.notify.ledger import DynamoNotificationLedger
from enquiries.notify.message import local_time
from enquiries.settings import DEFAULT_SERVICES, Settings

__all__ = [
    "DEFAULT_FORM_ID",
    "REPLAY_RECORD_PREFIX",
    "Form",
    "FormError",
    "FormField",
    "Forms",
    "StorageUnavailable",
    "acknowledgement_record_id",
    "address_key",
    "aws_call",
    "canary",
    "canary_metric",
    "canary_run",
    "clinic_timezone",
    "deployment_forms",
    "failed_enquiry_ids",
    "failure_reasons",
    "get_enquiry",
    "linked_enquiry_id",
    "local_time",
    "notifier_event",
    "plain_item",
    "services_setting",
    "timestamps",
]

# intake.ReplayKey.record_id is "replay#<scope>#<digest>"; its `response` is the JSON the visitor
# got, with the stored enquiry's id in "enquiry_id" (api.responses.to_replayable). Rate-limit counts
# ("rate#<hashed address>", storage/rate_limit.py) name no enquiry.
REPLAY_RECORD_PREFIX = "replay#"


def clinic_timezone(environ: Mapping[str, str]) -> ZoneInfo:
    """The time zone the clinic reads times in: TIMEZONE, as the notifier reads it for its emails, or
    the same default. ValueError names the variable when it is not a time zone."""
    default = next(f.default for f in dataclasses.fields(Settings) if f.name == "timezone")
    name = environ.get("TIMEZONE", "").strip() or str(default)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"TIMEZONE is invalid: {name!r} is not a time zone, like Europe/London") from None


def get_enquiry(client: Any, table_name: str, enquiry_id: str) -> dict[str, Any] | None:
    """One enquiry as stored now (a consistent read, as the notifier reads it), or None."""
    return DynamoNotificationLedger(table_name, client_factory=lambda: client).get(enquiry_id)


def linked_enquiry_id(record: Mapping[str, Any]) -> str | None:
    """The enquiry a guard-table record (plain values) was written with, if it names one."""
    if not str(record.get("id", "")).startswith(REPLAY_RECORD_PREFIX):
        return None
    try:
        response = json.loads(str(record.get("response", "")))
    except ValueError:
        return None
    enquiry_id = response.get("enquiry_id") if isinstance(response, dict) else None
    return str(enquiry_id) if enquiry_id else None


def acknowledgement_record_id(hashing_key: bytes, address: str) -> str:
    """The guard-table record that claims `address` for its acknowledgement (`ack#<keyed hash>`,
    naming the enquiry that claimed it, for 24 hours), computed as the notifier computes it, with the
    stack's address-hashing key."""
    return address_record_id(keyed_hash(hashing_key, address_hash_text(address)))


def address_key(address: str) -> str:
    """What two addresses are compared by: the form validation stores (email-validator's normalised
    address: the domain in lower case, an internationalised domain in Unicode), in lower case.

    An address validation would refuse is compared as typed, in lower case: it can match nothing
    stored, but a search for it must still answer "none" rather than fail.
    """
    from email_validator import EmailNotValidError, validate_email

    text = address.strip()
    with contextlib.suppress(EmailNotValidError):
        # The options validation.py uses for the `email` field.
        text = validate_email(text, check_deliverability=False, allow_smtputf8=False).normalized
    return text.lower()


def notifier_event(
    enquiry_ids: Sequence[str], *, region: str, source: str, again: bool = False
) -> dict[str, Any]:
    """The notifier's input for these enquiries: one DynamoDB stream INSERT record each, as Lambda
    delivers them (https://docs.aws.amazon.com/lambda/latest/dg/with-ddb.html), holding only the key.
    The notifier reads the item itself (a consistent read) and skips one already marked notified,
    unless `again` asks it to email the clinic once more; each record carries RESEND_KEY, which also
    keeps the stream's daily cap off the operator's resends.

    Each record's SequenceNumber is its position, which is what the notifier names in
    `batchItemFailures` for a record it could not send (see `failed_enquiry_ids`).
    """
    now = int(datetime.now(UTC).timestamp())
    return {
        "Records": [
            {
                "eventID": str(uuid.uuid4()),
                "eventName": "INSERT",
                "eventVersion": "1.1",
                "eventSource": "aws:dynamodb",
                "awsRegion": region,
                "dynamodb": {
                    "ApproximateCreationDateTime": now,
                    "Keys": {"id": {"S": enquiry_id}},
                    "SequenceNumber": str(position),
                    "SizeBytes": len(enquiry_id),
                    "StreamViewType": "NEW_IMAGE",
                },
                "eventSourceARN": source,
                RESEND_KEY: RESEND_AGAIN if again else RESEND_UNNOTIFIED,
            }
            for position, enquiry_id in enumerate(enquiry_ids)
        ]
    }


def failed_enquiry_ids(enquiry_ids: Sequence[str], result: Any) -> list[str]:
    """The enquiries of a `notifier_event` that the notifier reported as not sent."""
    failures = result.get("batchItemFailures") if isinstance(result, Mapping) else None
    failed: list[str] = []
    for failure in failures or []:
        identifier = str(failure.get("itemIdentifier", "")) if isinstance(failure, Mapping) else ""
        if identifier.isdigit() and int(identifier) < len(enquiry_ids):
            failed.append(enquiry_ids[int(identifier)])
    return failed


def failure_reasons(enquiry_ids: Sequence[str], result: Any) -> dict[str, str]:
    """Why the notifier could not send each failed enquiry of a `notifier_event`, as it answers the
    operator's resend (an AWS error code, such as SES's MessageRejected); an enquiry it gave no
    reason for (an older notifier) is left out."""
    reasons = result.get(RESEND_REASONS_KEY) if isinstance(result, Mapping) else None
    found: dict[str, str] = {}
    for identifier, reason in (reasons or {}).items() if isinstance(reasons, Mapping) else ():
        if str(identifier).isdigit() and int(identifier) < len(enquiry_ids) and reason:
            found[enquiry_ids[int(identifier)]] = str(reason)
    return found


def services_setting() -> tuple[str, ...]:
    """SERVICES as the functions read it (comma-separated), or its default."""
    import os

    given = tuple(item.strip() for item in os.environ.get("SERVICES", "").split(",") if item.strip())
    return given or DEFAULT_SERVICES
