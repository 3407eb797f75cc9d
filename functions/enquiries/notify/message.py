"""The notification email: plain text and HTML holding every field of the enquiry's form, by its label
in the form file's order (a long text as a block of its own), built with the standard library.

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

from enquiries import canary
from enquiries.forms import DEFAULT_FORM_ID, RESERVED, Form, Forms, deployment_forms
from enquiries.log import logger
from enquiries.notify import headers
from enquiries.notify.headers import UnsafeHeader, one_line
from enquiries.notify.html_page import email_page
from enquiries.notify.mail_settings import MailSettings
from enquiries.timestamps import parse_table_time

# A label longer than this goes on its own line, its value under it, so the columns stay put.
LABEL_COLUMN_MAX = 24
VALUE_INDENT = " " * 4

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


def form_of(item: Mapping[str, Any], forms: Forms | None = None) -> Form:
    """The form an enquiry was sent with (items stored before forms were named: the default form).
    A form since removed from forms/ is read as the default one; its other fields still show."""
    forms = forms or deployment_forms()
    return forms.get(str(item.get("form") or DEFAULT_FORM_ID)) or forms.default


def _subject_kind(form: Form) -> str:
    """ "New enquiry" for the default form, else the form's title: "New call-back request"."""
    return f"New {form.noun}"


def visitor_headers(item: Mapping[str, Any], form: Form | None = None) -> VisitorHeaders:
    """The Subject and Reply-To for a stored enquiry, leaving out what would not survive as given."""
    form = form or form_of(item)
    service = str(item["service"]) if form.is_default and item.get("service") else None
    left_out: list[str] = []
    name_field = form.name_field
    given_name = item.get(name_field.name) if name_field is not None else None
    name: str | None = str(given_name) if given_name else None
    if name is not None:
        try:
            headers.check_name(name)
        except UnsafeHeader:
            name = None
            left_out.append("name")
    try:
        reply_to: Address | None = headers.reply_to(name or "", str(item[form.email_field.name]))
    except UnsafeHeader:
        reply_to = None
        left_out.append("email")
    kind = _subject_kind(form)
    try:
        subject = headers.subject(name, service, kind)
    except UnsafeHeader:  # the service, from SERVICES: a configuration the deployer chose
        subject = kind
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


def _shown_fields(item: Mapping[str, Any], form: Form) -> list[tuple[str, str, str]]:
    """(name, label, type) of each field to show, in the form file's order, then any attribute of the
    item the form no longer declares (a field since removed from its file), by its name."""
    shown = [(each.name, each.label, each.type) for each in form.fields]
    declared = {name for name, _, _ in shown}
    shown += [
        (key, key, "text") for key in item if key not in declared and key not in RESERVED and key != "id"
    ]
    return [(name, label, kind) for name, label, kind in shown if _is_given(item, name, kind)]


def _is_given(item: Mapping[str, Any], name: str, kind: str) -> bool:
    return name in item if kind == "consent" else bool(item.get(name))


def _plain_value(value: Any, kind: str) -> str:
    if kind == "consent":
        return "Yes" if value else "No"
    if kind == "phone":
        return _phone_display(str(value))
    return one_line(str(value))


def text_body(
    item: Mapping[str, Any], mail: MailSettings, visitor: VisitorHeaders, form: Form | None = None
) -> str:
    form = form or form_of(item)
    lines = [visitor.subject, ""]
    if visitor.notice:
        lines += [visitor.notice, ""]
    shown = _shown_fields(item, form)
    short = [
        len(label) + 1 for _, label, kind in shown if kind != "long-text" and len(label) < LABEL_COLUMN_MAX
    ]
    width = max(short, default=0)
    for name, label, kind in shown:
        if kind == "long-text":
            lines += ["", f"{label}:", str(item[name]), ""]
        elif len(label) + 1 > width:  # too long for the column: the value on the next line
            lines += [f"{label}:", VALUE_INDENT + _plain_value(item[name], kind)]
        else:
            lines.append(f"{label + ':':<{width}} {_plain_value(item[name], kind)}")
    if lines[-1]:
        lines.append("")
    lines.append(f"Received:   {received_at(item, mail)}")
    lines.append(f"Enquiry id: {item['id']}")
    if visitor.reply_to is not None:
        name_field = form.name_field
        given = item.get(name_field.name) if name_field is not None else None
        whom = one_line(str(given)) if given else "the enquirer"
        lines += ["", f"Reply to this email to answer {whom} directly."]
    return "\n".join(lines) + "\n"


_CELL = (
    'style="padding:6px 12px 6px 0;vertical-align:top;font-family:Arial,Helvetica,sans-serif;font-size:15px;'
)
_LABEL = _CELL + 'color:#555555;white-space:nowrap;"'
_VALUE = _CELL + 'color:#1b1b1b;"'
_SMALL = "margin:12px 0 0 0;font-size:13px;color:#555555;"


def _html_cell(value: Any, kind: str) -> str:
    text = str(value)
    if kind == "email":
        link = escape(mailto_uri(text), quote=True)
        return f'<a href="{link}" style="color:#0b5cad;">{escape(text)}</a>'
    if kind == "phone":
        shown = escape(_phone_display(text))
        return f'<a href="tel:{escape(text, quote=True)}" style="color:#0b5cad;">{shown}</a>'
    return escape(_plain_value(value, kind))


def _html_block(label: str, value: Any) -> str:
    text = escape(str(value)).replace("\r\n", "\n").replace("\n", "<br>\n")
    return f"""<h2 style="margin:20px 0 8px 0;font-size:16px;color:#1b1b1b;">{escape(label)}</h2>
<p dir="auto" style="margin:0;padding:12px;background:#f7f7f7;border-left:4px solid #0b5cad;font-size:15px;
 line-height:1.5;color:#1b1b1b;font-family:Arial,Helvetica,sans-serif;">{text}</p>"""


def html_body(
    item: Mapping[str, Any], mail: MailSettings, visitor: VisitorHeaders, form: Form | None = None
) -> str:
    form = form or form_of(item)
    parts: list[str] = []
    rows: list[str] = []
    for name, label, kind in _shown_fields(item, form):
        if kind == "long-text":
            if rows:
                parts.append(_table(rows))
                rows = []
            parts.append(_html_block(label, item[name]))
        else:
            cell = _html_cell(item[name], kind)
            rows.append(f"<tr><td {_LABEL}>{escape(label)}</td><td {_VALUE}>{cell}</td></tr>")
    if rows:
        parts.append(_table(rows))
    name_field = form.name_field
    given = item.get(name_field.name) if name_field is not None else None
    name = escape(one_line(str(given))) if given else "the enquirer"
    notice = (
        f'\n<p style="margin:0 0 16px 0;color:#b3261e;">{escape(visitor.notice)}</p>'
        if visitor.notice
        else ""
    )
    reply = ""
    if visitor.reply_to is not None:
        reply = f'\n<p style="{_SMALL}">Reply to this email to answer {name} directly.</p>'
    content = f"""{notice}
{chr(10).join(parts)}
<p style="margin:20px 0 0 0;font-size:13px;color:#555555;">Received {escape(received_at(item, mail))}<br>
Enquiry id {escape(str(item["id"]))}</p>{reply}"""
    heading = f"{escape(_subject_kind(form))} from {name}" if given else escape(_subject_kind(form))
    return email_page(escape(visitor.subject), heading, content)


def _table(rows: list[str]) -> str:
    return f"""<table role="presentation" cellpadding="0" cellspacing="0">
{chr(10).join(rows)}
</table>"""


def recipients(item: Mapping[str, Any], mail: MailSettings, form: Form) -> tuple[Address, ...]:
    """The form's recipients for this enquiry (its route's for the value chosen), else CLINIC_EMAIL.
    The form file's addresses are ASCII (forms.py checks them at start)."""
    if item.get(canary.ATTRIBUTE) is True:  # the canary's: to the simulator (notify/canary_mail.py)
        return mail.recipients
    chosen = form.recipients_for(item)
    return tuple(Address(addr_spec=address) for address in chosen) if chosen else mail.recipients


def compose(
    item: Mapping[str, Any], mail: MailSettings, now: datetime | None = None, forms: Forms | None = None
) -> EmailMessage:
    """The email for one stored enquiry (an item as the table holds it)."""
    form = form_of(item, forms)
    visitor = visitor_headers(item, form)
    message = EmailMessage()
    message["From"] = mail.sender
    message["To"] = recipients(item, mail, form)
    if visitor.reply_to is not None:
        message["Reply-To"] = visitor.reply_to
    message["Subject"] = visitor.subject
    message["Date"] = format_datetime(now or datetime.now(UTC))
    # Our own id (a ULID): anything else is not put in a header.
    enquiry_id = str(item["id"])
    message["X-Enquiry-Id"] = enquiry_id if enquiry_id.isascii() and enquiry_id.isalnum() else "invalid"
    # Quoted-printable keeps every line 7-bit and short, as all mail relays accept.
    message.set_content(text_body(item, mail, visitor, form), cte="quoted-printable")
    message.add_alternative(html_body(item, mail, visitor, form), subtype="html", cte="quoted-printable")
    return message
