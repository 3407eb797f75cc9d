"""The developer's windows into the emulator: the stored enquiries and the emails sent.

Both are plain-JSON views (`GET /_dev/enquiries`, `GET /_dev/emails`) built from what moto holds.
"""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage
from typing import Any


def plain_items(raw_items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """DynamoDB items (attribute-value form) as plain JSON objects, oldest `created_at` first: the
    functions' own codec (`enquiries.aws.plain_item`), so the view shows what the notifier reads."""
    from enquiries.aws import plain_item

    items = [plain_item(raw) for raw in raw_items]
    return sorted(items, key=lambda item: (str(item.get("created_at", "")), str(item.get("id", ""))))


def stored_enquiries(dynamodb: Any, table_name: str) -> list[dict[str, Any]]:
    """Every item in the table, as `plain_items`."""
    raw: list[dict[str, Any]] = []
    for page in dynamodb.get_paginator("scan").paginate(TableName=table_name, ConsistentRead=True):
        raw.extend(page.get("Items", []))
    return plain_items(raw)


def _addresses(message: EmailMessage, header: str) -> list[str]:
    value = message[header]
    if value is None:
        return []
    return [str(address) for address in getattr(value, "addresses", ())] or [str(value)]


def _part(message: EmailMessage, subtype: str) -> str:
    part = message.get_body(preferencelist=(subtype,))
    if part is None or part.get_content_subtype() != subtype:
        return ""
    # Sent as SMTP wants it (CRLF line ends, as the notifier does); shown as a mail client shows it.
    return str(part.get_content()).replace("\r\n", "\n")


def email_view(sent: Any) -> dict[str, Any]:
    """A raw (MIME) message moto's SES recorded, as {"to", "from", "reply_to", "subject", "text", "html"}."""
    raw_data = sent.raw_data
    # moto keeps the raw message decoded from UTF-8; parsing bytes keeps 8-bit parts intact.
    data = raw_data if isinstance(raw_data, bytes) else str(raw_data).encode("utf-8", "surrogateescape")
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return {
        "to": _addresses(message, "To") or [str(address) for address in sent.destinations],
        "from": str(message["From"] or sent.source or ""),
        "reply_to": _addresses(message, "Reply-To"),
        "subject": str(message["Subject"] or ""),
        "text": _part(message, "plain"),
        "html": _part(message, "html"),
    }


def sent_emails() -> list[dict[str, Any]]:
    """Every email sent through the emulator's SES, in the order sent.

    The notifier sends only raw MIME through SES v2 (`Content.Raw`), which moto records as a raw
    message; moto's SES v1 and v2 share those records.
    """
    from moto.backends import get_backend

    views: list[dict[str, Any]] = []
    for account_backends in list(get_backend("ses").values()):
        for region_backend in list(account_backends.values()):
            views.extend(
                email_view(message)
                for message in list(region_backend.sent_messages)
                if getattr(message, "raw_data", None) is not None
            )
    return views
