"""The subject access document as a letter a practice manager can send: each enquiry in words, what
else is kept and until when (dates in the clinic's time zone, not epoch seconds), who received it,
and then the same document as JSON, for the record."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from enquiries_cli.dates import clinic_time
from enquiries_cli.output import json_text
from enquiries_cli.scanning import ENQUIRY_COLUMNS

_LABELS = {
    "id": "Reference",
    "created_at": "Received",
    "name": "Name",
    "email": "Email",
    "phone": "Phone",
    "service": "Service",
    "consent": "Consent given",
    "notified_at": "Emailed to the clinic",
}
# Stored for the service's own bookkeeping, explained once in words rather than shown as values.
_BOOKKEEPING = frozenset({"expires_at", "ses_message_id", "sending_until", "sending_claim"})


def _when(value: Any) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return clinic_time(datetime.fromtimestamp(value, UTC).isoformat(), short=False)
    return clinic_time(str(value), short=False)


def _value(key: str, value: Any) -> str:
    if key in ("created_at", "notified_at"):
        return _when(value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _indented(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines() or [""])


def _enquiry(number: int, total: int, item: Mapping[str, Any]) -> list[str]:
    lines = [f"Enquiry {number} of {total}"]
    for key in ENQUIRY_COLUMNS:
        if key == "message":
            continue
        if key == "notified_at" and not item.get(key):
            lines.append(f"  {_LABELS[key] + ':':<24}not yet")
        elif item.get(key) not in (None, ""):
            lines.append(f"  {_LABELS[key] + ':':<24}{_value(key, item[key])}")
    if item.get("message"):
        lines += ["  Message:", _indented(str(item["message"]))]
    others = [key for key in sorted(item) if key not in ENQUIRY_COLUMNS and key not in _BOOKKEEPING]
    lines += [f"  {key + ':':<24}{_value(key, item[key])}" for key in others]
    if item.get("expires_at") is not None:
        lines.append(f"  {'Deleted automatically:':<24}{_when(item['expires_at'])}")
    return lines


def _bullet(text: str) -> str:
    return textwrap.fill(text, width=96, initial_indent="  - ", subsequent_indent="    ")


def _record(record: Mapping[str, Any]) -> str:
    kind = (
        "that the acknowledgement email was sent to this address"
        if str(record.get("record", "")).startswith("ack#")
        else "of the answer given when it was submitted, so that a repeated submission gets the same one"
    )
    expires = record.get("expires_at")
    until = f", deleted by {clinic_time(str(expires), short=False)}" if expires else ""
    return _bullet(f"A record {kind} (enquiry {record.get('enquiry_id') or 'unknown'}){until}.")


def letter(document: Mapping[str, Any], recipients: Sequence[str]) -> str:
    """The letter for a subject access document (`cli.subject_access`), with the document after it."""
    about = document["subject_access"]
    enquiries: list[Mapping[str, Any]] = document["enquiries"]
    records: list[Mapping[str, Any]] = document["request_records"]
    count = len(enquiries)
    held = "no enquiries" if not count else ("1 enquiry" if count == 1 else f"{count} enquiries")
    lines = [
        "Subject access request: the clinic's website enquiries",
        "",
        f"Email address:  {about['email']} (and the same address in any letter case)",
        f"Prepared:       {clinic_time(str(about['generated_at']), short=False)}",
        "",
        f"We hold {held} sent from this address through our website's contact form.",
    ]
    for number, item in enumerate(enquiries, start=1):
        lines += ["", *_enquiry(number, count, item)]
    lines += ["", "What else we keep, and for how long"]
    if records:
        lines += [_record(record) for record in records]
    else:
        lines.append(_bullet("No short-lived records about these enquiries remain."))
    inbox = f"the clinic's inbox ({', '.join(recipients)})" if recipients else "the clinic's inbox"
    lines += [
        _bullet(
            "Each enquiry is kept until the date shown above, then deleted automatically. We record when "
            "it was emailed to the clinic, and the email's reference, to send it only once."
        ),
        "",
        "Who received it",
        _bullet(
            f"Each enquiry was emailed to {inbox}. The copies there are kept as the clinic keeps its "
            "email, and are not in this document."
        ),
        _bullet("Amazon Web Services stores the enquiries and sends the emails for us, as our processor."),
        _bullet("The service's logs hold enquiry references and never the details above."),
        _bullet(
            "If an email to this address bounced or was marked as spam, Amazon SES may hold the address "
            "on its suppression list, so that no more email is sent to it."
        ),
        "",
        "The same information, as data (JSON):",
        "",
        json_text(document),
    ]
    return "\n".join(lines) + "\n"
