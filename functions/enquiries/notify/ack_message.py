"""The acknowledgement email: a fixed text for the enquirer, holding nothing the visitor typed.

A contact form that mails the address typed into it is the classic spam relay: a bot puts a victim's
address in the email field and its advert in the name or the message. So this email is made only of
the deployment's own words (the settings below), whoever asks for it: the enquirer's address is its
recipient (To, and SES's Destination) and appears nowhere else, not even in the greeting. Replies go
to the clinic (Reply-To `CLINIC_EMAIL`), and `Auto-Submitted` asks other robots, such as holiday
replies, not to answer it (RFC 3834 section 5: https://www.rfc-editor.org/rfc/rfc3834#section-5).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from html import escape

from enquiries.notify.headers import UnsafeHeader, fixed_subject, one_line
from enquiries.notify.html_page import email_page
from enquiries.notify.mail_settings import MailSettings
from enquiries.settings import CLINIC_NAME_REQUIRED, Settings, configuration_error


@dataclass(frozen=True)
class AcknowledgementMail:
    """Everything in the acknowledgement but its recipient: the deployment's settings, checked."""

    sender: Address
    reply_to: tuple[Address, ...]
    subject: str
    clinic_name: str
    reply_within: str
    emergency_note: str
    clinic_phone: str | None = None
    phone_uri: str | None = None
    # The SES configuration set it is sent with: one that suppresses addresses that bounced or
    # complained (`MailSettings.acknowledgement_configuration_set`).
    configuration_set: str | None = None


def _tel_uri(phone: str, region: str) -> str | None:
    """A `tel:` URI for the clinic's phone (RFC 3966, E.164), or None if it is no number."""
    import phonenumbers

    try:
        number = phonenumbers.parse(phone, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return "tel:" + str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def _subject(clinic_name: str) -> str | None:
    """The acknowledgement's Subject, or None if the name cannot be put in one as written."""
    try:
        return fixed_subject(f"Your enquiry to {clinic_name} has been received")
    except UnsafeHeader:
        return None


def _unsafe_name(clinic_name: str) -> str:
    return (
        f"CLINIC_NAME is invalid: {clinic_name!r} cannot be put in a"
        " Subject as written (control or invisible formatting characters)"
    )


def problems(settings: Settings) -> list[str]:
    """The notifier's rule for load_settings: with ACKNOWLEDGE_ENQUIRER, a CLINIC_NAME a Subject can
    hold (a missing one is settings.py's rule)."""
    name = settings.clinic_name
    if not settings.acknowledge_enquirer or not name or _subject(name) is not None:
        return []
    return [_unsafe_name(name)]


def acknowledgement_mail(settings: Settings, mail: MailSettings) -> AcknowledgementMail:
    """The acknowledgement's fixed parts from the settings; SettingsError names the variable at fault."""
    if not settings.clinic_name:
        raise configuration_error([CLINIC_NAME_REQUIRED])
    subject = _subject(settings.clinic_name)
    if subject is None:
        raise configuration_error([_unsafe_name(settings.clinic_name)])
    phone = one_line(settings.clinic_phone) if settings.clinic_phone else None
    return AcknowledgementMail(
        sender=mail.sender,
        reply_to=mail.recipients,
        subject=subject,
        clinic_name=one_line(settings.clinic_name),
        reply_within=one_line(settings.acknowledgement_reply_within),
        emergency_note=one_line(settings.acknowledgement_emergency_note),
        clinic_phone=phone,
        phone_uri=_tel_uri(phone, settings.default_phone_region) if phone else None,
        configuration_set=mail.acknowledgement_configuration_set,
    )


def _paragraphs(
    ack: AcknowledgementMail, text: Callable[[str], str] = str, phone: Callable[[str], str] = str
) -> list[str]:
    """The message, one paragraph an item, the same in both parts: `text` writes the words and
    `phone` the clinic's number for the part (plain, or escaped HTML with a link)."""
    paragraphs = [
        text(
            f"Thank you for contacting {ack.clinic_name}. We have received your enquiry, and we usually"
            f" reply within {ack.reply_within}."
        )
    ]
    if ack.clinic_phone:
        call = text("If you would rather speak to us, call ")
        paragraphs.append(call + phone(ack.clinic_phone) + text("."))
    paragraphs.append(text(ack.emergency_note))
    paragraphs.append(text("To add something to your enquiry, reply to this email."))
    return paragraphs


# Said to whoever receives it: someone whose address a stranger typed should know why it came, and
# that ignoring it is enough.
WHY_THIS_EMAIL = (
    "This email was sent because this address was entered in the enquiry form on our website."
    " If you did not send an enquiry, you can ignore it."
)


def text_body(ack: AcknowledgementMail) -> str:
    return "\n\n".join([*_paragraphs(ack), WHY_THIS_EMAIL]) + "\n"


_PARAGRAPH = 'style="margin:0 0 14px 0;font-size:15px;line-height:1.5;color:#1b1b1b;"'
_SMALL = 'style="margin:20px 0 0 0;font-size:13px;line-height:1.4;color:#555555;"'


def html_body(ack: AcknowledgementMail) -> str:
    def phone(number: str) -> str:
        if not ack.phone_uri:
            return escape(number)
        return f'<a href="{escape(ack.phone_uri, quote=True)}" style="color:#0b5cad;">{escape(number)}</a>'

    body = "\n".join(f"<p {_PARAGRAPH}>{paragraph}</p>" for paragraph in _paragraphs(ack, escape, phone))
    content = f"""
{body}
<p {_SMALL}>{escape(WHY_THIS_EMAIL)}</p>"""
    return email_page(escape(ack.subject), escape(ack.clinic_name), content)


def compose_acknowledgement(
    recipient: Address, ack: AcknowledgementMail, now: datetime | None = None
) -> EmailMessage:
    """The acknowledgement to `recipient`: a bare address (no display name: the name is visitor text)."""
    message = EmailMessage()
    message["From"] = ack.sender
    message["To"] = Address(username=recipient.username, domain=recipient.domain)
    message["Reply-To"] = ack.reply_to
    message["Subject"] = ack.subject
    message["Date"] = format_datetime(now or datetime.now(UTC))
    message["Auto-Submitted"] = "auto-generated"
    # Outlook and Exchange do not answer it with their own automatic replies either.
    message["X-Auto-Response-Suppress"] = "All"
    # Quoted-printable keeps every line 7-bit and short, as all mail relays accept.
    message.set_content(text_body(ack), cte="quoted-printable")
    message.add_alternative(html_body(ack), subtype="html", cte="quoted-printable")
    return message
