"""The notification email's rendering: every field, escaped HTML, encoded headers, no header injection."""

from __future__ import annotations

import email
import email.policy
import re
from email.message import EmailMessage
from html import unescape
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit
from zoneinfo import ZoneInfo

import pytest

from enquiries.notify.mail_settings import mail_settings
from enquiries.notify.message import compose
from enquiries.settings import load_settings
from enquiries.validation import FieldRules, validate_enquiry

MAIL = mail_settings(
    load_settings(
        {
            "TABLE_NAME": "t",
            "CLINIC_EMAIL": "frontdesk@clinic.example",
            "SENDER_EMAIL": "Clinique Zoë <enquiries@clinic.example>",
        }
    )
)
ITEM: dict[str, Any] = {
    "id": "01KAPX4Q7N3Y8Z2M5R6T9V1W0A",
    "name": "Jane Doe",
    "email": "jane.doe@example.com",
    "phone": "+448009875336",
    "service": "Sports Massage",
    "message": "Line one\nLine two",
    "consent": True,
    "created_at": "2026-07-01T09:05:00.000Z",
    "expires_at": 1,
}
VALID = {"name": "Jane Doe", "email": "jane@example.com", "message": "Hello", "consent": True}


def wire(item: dict[str, Any]) -> EmailMessage:
    """The message as SES receives it, parsed back as a mail client would."""
    raw = compose(item, MAIL).as_bytes(policy=email.policy.SMTP)
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def parts(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None
    assert html is not None
    return text.get_content(), html.get_content()


def test_message_has_every_field_in_both_parts() -> None:
    # When an enquiry is rendered
    text, html = parts(wire(ITEM))

    # Then both parts hold every field, the id and the time in the clinic's zone (BST in July)
    for part in (text, html):
        for expected in (
            "Jane Doe",
            "jane.doe@example.com",
            "+44 800 987 5336",
            "Sports Massage",
            "Line one",
            "Line two",
            ITEM["id"],
            "Wednesday 1 July 2026, 10:05 BST",
        ):
            assert expected in part
    assert "Line one<br>" in html


def test_message_phone_extension_is_shown_and_dialled() -> None:
    # Given an enquiry whose phone number has an extension, as validation stores it
    phone = validate_enquiry(dict(VALID, phone="07700 900123 ext 2"), FieldRules(services=())).phone
    assert phone is not None

    # When it is rendered
    text, html = parts(wire(dict(ITEM, phone=phone)))

    # Then both parts show the extension, and the link dials it (RFC 3966's ";ext=")
    assert "+44 7700 900123 x2" in text
    assert "+44 7700 900123 x2" in html
    assert 'href="tel:+447700900123;ext=2"' in html


def test_message_html_escapes_script_and_attributes() -> None:
    # Given fields crafted to break out of HTML text and attributes
    item = dict(
        ITEM,
        name='<script>alert("x")</script>',
        message='<img src=x onerror="alert(1)"> & more',
        service='Osteopathy"><script>',
        email='"><script>@example.com',
        phone='+44800"onmouseover="x',
    )

    # When it is rendered
    _, html = parts(wire(item))

    # Then no markup from the visitor survives, in text or in attributes
    assert "<script>" not in html
    assert "<img" not in html
    assert 'onerror="' not in html
    assert '"onmouseover="' not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt; &amp; more" in html


@pytest.mark.parametrize("field", ["name", "service", "message", "phone", "id"])
def test_message_crlf_in_any_field_never_becomes_a_header(field: str) -> None:
    # Given a field carrying an attempted header injection
    item = dict(ITEM, **{field: "Jane\r\nBcc: victim@evil.example\r\nX-Injected: yes"})

    # When it is rendered and parsed back
    message = wire(item)

    # Then there is no Bcc or injected header, and To is only the clinic
    assert message["Bcc"] is None
    assert message["X-Injected"] is None
    assert [a.addr_spec for a in message["To"].addresses] == ["frontdesk@clinic.example"]
    assert len(message["Reply-To"].addresses) == 1


def test_message_unicode_name_in_subject_and_display_names() -> None:
    # Given a non-ASCII name
    item = dict(ITEM, name="Zoë Łukasiewicz", service=None)

    # When it is rendered
    raw = compose(item, MAIL).as_bytes(policy=email.policy.SMTP)
    message = email.message_from_bytes(raw, policy=email.policy.default)

    # Then the headers on the wire are ASCII (RFC 2047) and decode to the right text
    raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
    assert message["Subject"] == "New enquiry from Zoë Łukasiewicz"
    assert message["Reply-To"].addresses[0].display_name == "Zoë Łukasiewicz"
    assert message["From"].addresses[0].display_name == "Clinique Zoë"


def test_message_internationalised_domain_reply_to_is_ascii() -> None:
    # Given an enquirer at an internationalised domain
    message = wire(dict(ITEM, email="jane@bücher.example"))

    # Then Reply-To reaches the same address in its DNS form
    assert message["Reply-To"].addresses[0].addr_spec == "jane@xn--bcher-kva.example"


def test_message_time_zone_follows_settings() -> None:
    # Given a clinic in Sydney
    sydney = mail_settings(
        load_settings(
            {
                "TABLE_NAME": "t",
                "CLINIC_EMAIL": "a@b.example",
                "SENDER_EMAIL": "c@b.example",
                "TIMEZONE": "Australia/Sydney",
            }
        )
    )

    # When the enquiry is rendered
    text = compose(ITEM, sydney).get_body(("plain",)).get_content()  # type: ignore[union-attr]

    # Then the received time is Sydney's
    assert sydney.timezone == ZoneInfo("Australia/Sydney")
    assert "Wednesday 1 July 2026, 19:05 AEST" in text


# --- enquiries stored before the header rules ---------------------------------------------------


def header_block(item: dict[str, Any]) -> bytes:
    return compose(item, MAIL).as_bytes(policy=email.policy.SMTP).split(b"\r\n\r\n", 1)[0]


@pytest.mark.parametrize(
    "address",
    [
        "=?utf-8?q?attacker=40evil=2Eexample=3E=2C_=3Cx?=@example.com",
        "=?UTF-8?B?YXR0YWNrZXJAZXZpbC5leGFtcGxlPiwgPHg=?=@example.com",
        "=?utf-8?q?a=0D=0ABcc=3A_x=40evil.example?=@example.com",
        "=?utf-8?q?a=00b?=@example.com",
    ],
)
def test_message_stored_address_that_would_change_gets_no_reply_to(address: str) -> None:
    # Given an enquiry stored before validation refused such addresses
    item = dict(ITEM, email=address)

    # When it is rendered and parsed back as a mail client would
    message = wire(item)
    text, html = parts(message)

    # Then no header reaches another address, and staff are told why Reply-To is missing
    assert message["Reply-To"] is None
    assert message["Bcc"] is None
    assert b"evil" not in header_block(item)
    assert b"\x00" not in header_block(item)
    assert [a.addr_spec for a in message["To"].addresses] == ["frontdesk@clinic.example"]
    for part in (text, html):
        assert "could not be used as Reply-To safely" in part
        assert "Reply to this email to answer" not in part


@pytest.mark.parametrize(
    "name",
    [
        "=?utf-8?q?Eve_=3Ceve=40evil=2Eexample=3E=2C?=",
        "=?utf-8?q?x=0D=0ABcc=3A_evil=40attacker.example?=",
        "Jane\u202eevil.example",
        "Jane\u200bDoe",
    ],
)
def test_message_stored_name_that_would_change_is_left_out_of_the_headers(name: str) -> None:
    # Given an enquiry stored before validation refused such names
    item = dict(ITEM, name=name)

    # When it is rendered
    message = wire(item)
    text, html = parts(message)

    # Then Subject and Reply-To leave the name out, Reply-To still reaches the enquirer, and staff
    # are told why
    assert message["Subject"] == "New enquiry - Sports Massage"
    [reply_to] = message["Reply-To"].addresses
    assert (reply_to.display_name, reply_to.addr_spec) == ("", "jane.doe@example.com")
    assert b"evil" not in header_block(item)
    assert "could not be put in this email's Subject and Reply-To" in text
    assert "could not be put in this email&#x27;s Subject and Reply-To" in html


def test_message_name_and_address_come_back_exactly_as_stored() -> None:
    # Given text with every character that means something in an address header
    item = dict(ITEM, name='Doe, Jane "JD" <x@evil.example>; g: (c) \\', email="o'brien!$*+@example.com")

    # When it is rendered and parsed back
    message = wire(item)

    # Then Reply-To is that one address with that display name, and the Subject shows the name (once
    # unfolded: a Subject folded before its first word starts with that white space)
    [reply_to] = message["Reply-To"].addresses
    assert (reply_to.display_name, reply_to.addr_spec) == (item["name"], item["email"])
    assert message["Subject"].strip() == f"New enquiry from {item['name']} - Sports Massage"


# --- the mailto: link ------------------------------------------------------------------------------


def mailto_links(html: str) -> list[str]:
    return [unescape(href) for href in re.findall(r'href="(mailto:[^"]*)"', html)]


def read_mailto(uri: str) -> tuple[list[str], dict[str, list[str]], str]:
    """What a mail client takes from a mailto: URI (RFC 6068 section 2): the addresses of the path,
    split at commas, the header fields of the query, and the fragment."""
    parts = urlsplit(uri)
    assert parts.scheme == "mailto"
    return [unquote(address) for address in parts.path.split(",")], parse_qs(parts.query), parts.fragment


@pytest.mark.parametrize(
    "address",
    [
        "patient?cc=x@evil.example",
        "patient?bcc=x%40evil.example&body=hi@example.com",
        "a&cc=x@example.com",
        "a#b@example.com",
        "a%3Fcc=x@example.com",  # already percent-encoded: decoded once, it is still this address
        "a%2C@example.com",
        "a/b@example.com",
        "{a}|b^c`d~e=f@example.com",
        "o'brien!$*+@example.com",
    ],
)
def test_message_mailto_link_holds_exactly_the_one_address(address: str) -> None:
    # Given an address email-validator accepts, with characters that mean something in a URI
    assert validate_enquiry(dict(VALID, email=address), FieldRules(services=("X",))).email == address

    # When its enquiry is rendered
    _, html = parts(wire(dict(ITEM, email=address)))

    # Then the link gives a mail client that address alone: no cc, bcc, body or second address
    [link] = mailto_links(html)
    assert read_mailto(link) == ([address], {}, "")


def test_message_mailto_link_uses_the_domain_as_dns_knows_it() -> None:
    # Given an enquirer at an internationalised domain
    _, html = parts(wire(dict(ITEM, email="jane@straße.de")))

    # Then the link is ASCII, to the same domain as Reply-To
    assert mailto_links(html) == ["mailto:jane@xn--strae-oqa.de"]
