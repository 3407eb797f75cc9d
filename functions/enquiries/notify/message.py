"""The notification email: plain text and HTML holding every field, built with the standard library.

The headers that carry visitor text (Reply-To and Subject) come from `headers`, which proves that
each comes back from the wire exactly as given. Validation refuses any name or address that would
not; for an enquiry stored before that rule, the email leaves the text out of the header (Reply-To
the bare address, or none; a Subject without the name) and says so to staff in the body.
Every visitor value in the HTML part passes through `html.escape`, and the enquirer's address is
percent-encoded in its `mailto:` link.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from html import escape
from typing import Any
from urllib.parse import quote

from enquiries.log import logger
from enquiries.notify import headers
from enquiries.notify.headers import UnsafeHeader, one_line
from enquiries.notify.html_page import email_page
from enquiries.notify.mail_settings import MailSettings
from enquiries.timestamps import parse_table_time

FIELD_LABELS = (
    ("name", "Name"),
    ("email", "Email"),
    ("phone", "Phone"),
    ("service", "Service"),
)

NAME_LEFT_OUT = (
    "The name given could not be put in this email's Subject and Reply-To safely, so they leave it out."
)
ADDRESS_LEFT_OUT = (
    "The email address given could not be used as Reply-To safely, so replying to this email will not"
    " reach the enquirer: check the address before writing to it."
)


@dataclass(frozen=True)
class VisitorHeaders:
    """The headers built from visitor text, and a sentence for staff when some text was left out."""

    subject: str
    reply_to: Address | None
    notice: str | None = None


def visitor_headers(item: Mapping[str, Any]) -> VisitorHeaders:
    """The Subject and Reply-To for a stored enquiry, leaving out what would not survive as given."""
    service = str(item["service"]) if item.get("service") else None
    left_out: list[str] = []
    name: str | None = str(item["name"])
    try:
        headers.check_name(str(item["name"]))
    except UnsafeHeader:
        name = None
        left_out.append("name")
    try:
        reply_to: Address | None = headers.reply_to(name or "", str(item["email"]))
    except UnsafeHeader:
        reply_to = None
        left_out.append("email")
    try:
        subject = headers.subject(name, service)
    except UnsafeHeader:  # the service, from SERVICES: a configuration the deployer chose
        subject = "New enquiry"
    if left_out:
        logger.warning(
            "visitor text left out of headers", extra={"enquiry_id": str(item["id"]), "fields": left_out}
        )
    notice = " ".join({"name": NAME_LEFT_OUT, "email": ADDRESS_LEFT_OUT}[field] for field in left_out)
    return VisitorHeaders(subject, reply_to, notice or None)


def mailto_uri(address: str) -> str:
    """A `mailto:` URI for exactly this one address (RFC 6068 section 2): in the local part, every
    character but letters, digits and `-._~!$'*+` percent-encoded, so that `?`, `&`, `=`, `#`, `%`,
    `/` and `,` cannot start header fields (cc, bcc, body) or another address; the domain as DNS
    knows it. https://www.rfc-editor.org/rfc/rfc6068#section-2"""
    local, _, domain = address.rpartition("@")
    with contextlib.suppress(UnsafeHeader):  # if not, percent-encoded UTF-8, which RFC 6068 allows too
        domain = headers.ascii_domain(domain)
    return "mailto:" + quote(local, safe="!$'*+") + "@" + quote(domain, safe="")


def local_time(table_time: str, zone: tzinfo, *, short: bool = False) -> str:
    """A time as the table stores it (ISO 8601, UTC) in `zone`, as staff read it: "Saturday 21 November
    2026, 10:15 GMT", or `short` for a listing, "Sat 21 Nov 2026 10:15 GMT". The email and the
    operator's command both show times this way."""
    moment = parse_table_time(table_time).astimezone(zone)
    if short:
        return f"{moment:%a} {moment.day:>2} {moment:%b %Y %H:%M} {moment.tzname()}"
    return f"{moment:%A} {moment.day} {moment:%B %Y, %H:%M} {moment.tzname()}"


def received_at(item: Mapping[str, Any], mail: MailSettings) -> str:
    """`created_at` in the clinic's time zone, e.g. "Saturday 21 November 2026, 10:15 GMT"."""
    return local_time(str(item["created_at"]), mail.timezone)


def _phone_display(e164: str) -> str:
    import phonenumbers

    try:
        return str(
            phonenumbers.format_number(phonenumbers.parse(e164), phonenumbers.PhoneNumberFormat.INTERNATIONAL)
        )
    except phonenumbers.NumberParseException:
        return e164


def text_body(item: Mapping[str, Any], mail: MailSettings, visitor: VisitorHeaders) -> str:
    lines = [visitor.subject, ""]
    if visitor.notice:
        lines += [visitor.notice, ""]
    for key, label in FIELD_LABELS:
        if item.get(key):
            value = _phone_display(str(item[key])) if key == "phone" else one_line(str(item[key]))
            lines.append(f"{label + ':':<9} {value}")
    if "consent" in item:
        lines.append(f"{'Consent:':<9} {'Yes' if item['consent'] else 'No'}")
    lines += ["", "Message:", str(item["message"]), ""]
    lines.append(f"Received:   {received_at(item, mail)}")
    lines.append(f"Enquiry id: {item['id']}")
    if visitor.reply_to is not None:
        lines += ["", f"Reply to this email to answer {one_line(str(item['name']))} directly."]
    return "\n".join(lines) + "\n"


_CELL = (
    'style="padding:6px 12px 6px 0;vertical-align:top;font-family:Arial,Helvetica,sans-serif;font-size:15px;'
)
_LABEL = _CELL + 'color:#555555;white-space:nowrap;"'
_VALUE = _CELL + 'color:#1b1b1b;"'
_SMALL = "margin:12px 0 0 0;font-size:13px;color:#555555;"


def html_body(item: Mapping[str, Any], mail: MailSettings, visitor: VisitorHeaders) -> str:
    rows = []
    for key, label in FIELD_LABELS:
        if not item.get(key):
            continue
        value = str(item[key])
        if key == "email":
            link = escape(mailto_uri(value), quote=True)
            cell = f'<a href="{link}" style="color:#0b5cad;">{escape(value)}</a>'
        elif key == "phone":
            shown = escape(_phone_display(value))
            cell = f'<a href="tel:{escape(value, quote=True)}" style="color:#0b5cad;">{shown}</a>'
        else:
            cell = escape(one_line(value))
        rows.append(f"<tr><td {_LABEL}>{label}</td><td {_VALUE}>{cell}</td></tr>")
    if "consent" in item:
        rows.append(
            f"<tr><td {_LABEL}>Consent</td><td {_VALUE}>{'Yes' if item['consent'] else 'No'}</td></tr>"
        )
    message = escape(str(item["message"])).replace("\r\n", "\n").replace("\n", "<br>\n")
    name = escape(one_line(str(item["name"])))
    notice = (
        f'\n<p style="margin:0 0 16px 0;color:#b3261e;">{escape(visitor.notice)}</p>'
        if visitor.notice
        else ""
    )
    reply = ""
    if visitor.reply_to is not None:
        reply = f'\n<p style="{_SMALL}">Reply to this email to answer {name} directly.</p>'
    content = f"""{notice}
<table role="presentation" cellpadding="0" cellspacing="0">
{chr(10).join(rows)}
</table>
<h2 style="margin:20px 0 8px 0;font-size:16px;color:#1b1b1b;">Message</h2>
<p dir="auto" style="margin:0;padding:12px;background:#f7f7f7;border-left:4px solid #0b5cad;font-size:15px;
 line-height:1.5;color:#1b1b1b;font-family:Arial,Helvetica,sans-serif;">{message}</p>
<p style="margin:20px 0 0 0;font-size:13px;color:#555555;">Received {escape(received_at(item, mail))}<br>
Enquiry id {escape(str(item["id"]))}</p>{reply}"""
    return email_page(escape(visitor.subject), f"New enquiry from {name}", content)


def compose(item: Mapping[str, Any], mail: MailSettings, now: datetime | None = None) -> EmailMessage:
    """The email for one stored enquiry (an item as the table holds it)."""
    visitor = visitor_headers(item)
    message = EmailMessage()
    message["From"] = mail.sender
    message["To"] = mail.recipients
    if visitor.reply_to is not None:
        message["Reply-To"] = visitor.reply_to
    message["Subject"] = visitor.subject
    message["Date"] = format_datetime(now or datetime.now(UTC))
    # Our own id (a ULID): anything else is not put in a header.
    enquiry_id = str(item["id"])
    message["X-Enquiry-Id"] = enquiry_id if enquiry_id.isascii() and enquiry_id.isalnum() else "invalid"
    # Quoted-printable keeps every line 7-bit and short, as all mail relays accept.
    message.set_content(text_body(item, mail, visitor), cte="quoted-printable")
    message.add_alternative(html_body(item, mail, visitor), subtype="html", cte="quoted-printable")
    return message
