"""The notification email: plain text and HTML holding every field, built with the standard library.

`EmailMessage` encodes headers (a non-ASCII name in the Subject, a display name in From) and
refuses a CR or LF in any header; visitor text is also folded to one line before it gets there.
Every visitor value in the HTML part passes through `html.escape`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from html import escape
from typing import Any

from enquiries.notify.mail_settings import MailSettings

FIELD_LABELS = (
    ("name", "Name"),
    ("email", "Email"),
    ("phone", "Phone"),
    ("service", "Service"),
)


def one_line(text: str) -> str:
    """Collapse every run of white space (CR and LF included) into one space."""
    return " ".join(text.split())


def header_text(text: str) -> str:
    """Visitor text made safe for a header: one line, and no RFC 2047 encoded-word (`=?...?=`),
    which the email package would decode, CR and LF included, into the header it builds."""
    return one_line(text).replace("=?", "= ?")


def subject_for(item: Mapping[str, Any]) -> str:
    subject = f"New enquiry from {header_text(str(item['name']))}"
    if item.get("service"):
        subject += f" - {header_text(str(item['service']))}"
    return subject


def received_at(item: Mapping[str, Any], mail: MailSettings) -> str:
    """`created_at` in the clinic's time zone, e.g. "Saturday 21 November 2026, 10:15 GMT"."""
    created = datetime.fromisoformat(str(item["created_at"]).replace("Z", "+00:00")).astimezone(mail.timezone)
    return f"{created:%A} {created.day} {created:%B %Y, %H:%M} {created.tzname()}"


def _phone_display(e164: str) -> str:
    import phonenumbers

    try:
        return str(
            phonenumbers.format_number(phonenumbers.parse(e164), phonenumbers.PhoneNumberFormat.INTERNATIONAL)
        )
    except phonenumbers.NumberParseException:
        return e164


def _reply_to(item: Mapping[str, Any]) -> Address:
    import idna

    local, _, domain = str(item["email"]).rpartition("@")
    if not domain.isascii():
        # An internationalised domain, as DNS knows it (IDNA 2008, as email-validator checked it:
        # IDNA 2003 would turn "straße.de" into another domain, "strasse.de").
        domain = idna.encode(domain, uts46=True).decode("ascii")
    return Address(display_name=header_text(str(item["name"])), username=local, domain=domain)


def text_body(item: Mapping[str, Any], mail: MailSettings) -> str:
    lines = [subject_for(item), ""]
    for key, label in FIELD_LABELS:
        if item.get(key):
            value = _phone_display(str(item[key])) if key == "phone" else one_line(str(item[key]))
            lines.append(f"{label + ':':<9} {value}")
    if "consent" in item:
        lines.append(f"{'Consent:':<9} {'Yes' if item['consent'] else 'No'}")
    lines += ["", "Message:", str(item["message"]), ""]
    lines.append(f"Received:   {received_at(item, mail)}")
    lines.append(f"Enquiry id: {item['id']}")
    lines += ["", f"Reply to this email to answer {one_line(str(item['name']))} directly."]
    return "\n".join(lines) + "\n"


_CELL = (
    'style="padding:6px 12px 6px 0;vertical-align:top;font-family:Arial,Helvetica,sans-serif;font-size:15px;'
)
_LABEL = _CELL + 'color:#555555;white-space:nowrap;"'
_VALUE = _CELL + 'color:#1b1b1b;"'


def html_body(item: Mapping[str, Any], mail: MailSettings) -> str:
    rows = []
    for key, label in FIELD_LABELS:
        if not item.get(key):
            continue
        value = str(item[key])
        if key == "email":
            cell = f'<a href="mailto:{escape(value, quote=True)}" style="color:#0b5cad;">{escape(value)}</a>'
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
    return f"""<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(subject_for(item))}</title></head>
<body style="margin:0;padding:0;background:#f4f4f4;">
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" style="background:#f4f4f4;">
<tr><td style="padding:24px 12px;">
<table role="presentation" width="600" cellpadding="0" cellspacing="0" align="center"
 style="max-width:600px;width:100%;background:#ffffff;border:1px solid #dddddd;">
<tr><td style="padding:20px 24px;font-family:Arial,Helvetica,sans-serif;">
<h1 style="margin:0 0 16px 0;font-size:20px;color:#1b1b1b;">New enquiry from {name}</h1>
<table role="presentation" cellpadding="0" cellspacing="0">
{chr(10).join(rows)}
</table>
<h2 style="margin:20px 0 8px 0;font-size:16px;color:#1b1b1b;">Message</h2>
<p style="margin:0;padding:12px;background:#f7f7f7;border-left:4px solid #0b5cad;font-size:15px;
 line-height:1.5;color:#1b1b1b;font-family:Arial,Helvetica,sans-serif;">{message}</p>
<p style="margin:20px 0 0 0;font-size:13px;color:#555555;">Received {escape(received_at(item, mail))}<br>
Enquiry id {escape(str(item["id"]))}</p>
<p style="margin:12px 0 0 0;font-size:13px;color:#555555;">Reply to this email to answer {name} directly.</p>
</td></tr></table>
</td></tr></table>
</body>
</html>
"""


def compose(item: Mapping[str, Any], mail: MailSettings, now: datetime | None = None) -> EmailMessage:
    """The email for one stored enquiry (an item as the table holds it)."""
    message = EmailMessage()
    message["From"] = mail.sender
    message["To"] = mail.recipients
    message["Reply-To"] = _reply_to(item)
    message["Subject"] = subject_for(item)
    message["Date"] = format_datetime(now or datetime.now(UTC))
    message["X-Enquiry-Id"] = header_text(str(item["id"]))
    # Quoted-printable keeps every line 7-bit and short, as all mail relays accept.
    message.set_content(text_body(item, mail), cte="quoted-printable")
    message.add_alternative(html_body(item, mail), subtype="html", cte="quoted-printable")
    return message
