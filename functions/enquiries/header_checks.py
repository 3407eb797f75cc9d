"""The email headers built from what a visitor typed, each proven by parsing it back.

Python's email package decodes RFC 2047 encoded words (`=?utf-8?q?...?=`) wherever it parses a
header: in a display name, and in the local part of an address, where email-validator accepts them
as ordinary characters. Text can therefore come out of `EmailMessage` as something else: a second
Reply-To address, a group, a NUL or, on Python 3.11, a CR LF and a new header such as Bcc. Rather
than list such syntax, each header is built as the notification builds it, serialised as SES gets
it (policy SMTP), parsed back as a mail client would (policy default), and must come back as the
same one address, display name or subject, on lines of printable ASCII. Validation refuses what
fails (a 422 naming the field); the notification checks again, for enquiries stored before.

A header also may not hold the invisible format characters that reorder or hide text (see
`enquiries.text_classes`). Display names and subjects are compared without their white space: when a
long non-ASCII name is folded into several encoded words, Python's parser adds a space between
them (and Python 3.11's folder can drop one) where mail clients, as RFC 2047 section 6.2 says,
show none. Addresses are compared exactly.
"""

from __future__ import annotations

from collections.abc import Callable
from email import message_from_bytes
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.policy import default as default_policy
from typing import Any

from enquiries.errors import EnquiriesError
from enquiries.text_classes import hidden_characters

# A stand-in address, to check a name on its own.
_PLAIN_ADDRESS = ("visitor", "example.com")


class UnsafeHeader(EnquiriesError, ValueError):
    """A header would not show what was given. `field` ("name" or "email") says which value."""

    def __init__(self, field: str) -> None:
        super().__init__(f"the {field} does not survive as an email header")
        self.field = field


def one_line(text: str) -> str:
    """Collapse every run of white space (CR and LF included) into one space."""
    return " ".join(text.split())


def ascii_domain(domain: str) -> str:
    """The domain as DNS and SES know it: internationalised labels as punycode (IDNA 2008, as
    email-validator checked it; IDNA 2003 would turn "straße.de" into another domain, "strasse.de")."""
    if domain.isascii():
        return domain
    import idna

    try:
        return str(idna.encode(domain, uts46=True).decode("ascii"))
    except (idna.IDNAError, UnicodeError):
        raise UnsafeHeader("email") from None


def _squeezed(text: str) -> str:
    return "".join(text.split())


# A header line's bytes: printable ASCII (space to tilde) and horizontal tab (RFC 5322 section 2.2).
_SPACE, _TILDE, _TAB = 0x20, 0x7E, 0x09


def _printable_ascii_lines(head: bytes) -> bool:
    """Header lines of printable ASCII, CRLF-separated, each continuation starting with white space."""
    lines = head.split(b"\r\n")
    return all(
        line
        and all(_SPACE <= byte <= _TILDE or byte == _TAB for byte in line)
        and (index == 0 or line[0] in b" \t")
        for index, line in enumerate(lines)
    )


def _survives(header: str, value: Address | str, same: Callable[[Any], bool]) -> bool:
    """Whether `value`, set as `header`, serialised for SMTP and parsed back, passes `same`."""
    message = EmailMessage()
    try:
        message[header] = value
        raw = message.as_bytes(policy=SMTP)
        head, end_of_headers, body = raw.partition(b"\r\n\r\n")
        if body or not end_of_headers or not _printable_ascii_lines(head):
            return False
        parsed = message_from_bytes(raw, policy=default_policy)
        return parsed.keys() == [header] and same(parsed[header])
    except Exception:  # whatever the email package cannot build or read back is unsafe
        return False


def _one_address(parsed: Any, display_name: str, username: str, domain: str) -> bool:
    [group] = parsed.groups
    [address] = group.addresses
    return bool(
        group.display_name is None
        and address.username == username
        and address.domain == domain
        and _squeezed(address.display_name) == _squeezed(display_name)
    )


def _checked_address(display_name: str, username: str, domain: str, field: str) -> Address:
    address = Address(display_name=display_name, username=username, domain=domain)
    if not _survives(
        "Reply-To", address, lambda parsed: _one_address(parsed, display_name, username, domain)
    ):
        raise UnsafeHeader(field)
    return address


def _checked_name(name: str) -> str:
    display_name = one_line(name)
    if hidden_characters(display_name):
        raise UnsafeHeader("name")
    return display_name


def reply_to(name: str, email: str) -> Address:
    """The Reply-To header for an enquirer, exactly as the notification sets it; raises UnsafeHeader
    naming the field ("email" first) that would not come back as given."""
    username, at, domain = email.rpartition("@")
    if not at or not username.isascii():
        raise UnsafeHeader("email")
    domain = ascii_domain(domain)
    _checked_address("", username, domain, "email")
    return _checked_address(_checked_name(name), username, domain, "name")


def subject(name: str | None, service: str | None, kind: str = "New enquiry") -> str:
    """The Subject, "New enquiry from <name> - <service>" (each part when given; another form's
    `kind` names it), exactly as the notification sets it; raises UnsafeHeader("name") if it would
    not come back as given."""
    text = kind
    if name is not None:
        text += f" from {_checked_name(name)}"
    if service:
        text += f" - {one_line(service)}"
    if not _survives("Subject", text, lambda parsed: _squeezed(str(parsed)) == _squeezed(text)):
        raise UnsafeHeader("name" if name is not None else "service")
    return text


def check_name(name: str) -> None:
    """Raise UnsafeHeader("name") unless `name` survives as a display name and in the Subject."""
    _checked_address(_checked_name(name), *_PLAIN_ADDRESS, "name")
    subject(name, None)


def check_email(email: str) -> None:
    """Raise UnsafeHeader("email") unless `email` survives as the Reply-To address."""
    reply_to("", email)


def fixed_subject(text: str) -> str:
    """A Subject of the deployment's own words (no visitor text), on one line, exactly as mail clients
    will show it; raises UnsafeHeader("subject") if it would not come back as given."""
    line = one_line(text)
    if (
        not line
        or hidden_characters(line)
        or not _survives("Subject", line, lambda parsed: _squeezed(str(parsed)) == _squeezed(line))
    ):
        raise UnsafeHeader("subject")
    return line
