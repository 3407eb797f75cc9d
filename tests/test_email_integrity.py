"""Email integrity through both handlers: what a visitor types reaches the clinic's email headers and
links exactly as typed, or is refused with a 422 in plain words."""

from __future__ import annotations

import copy
import email
import email.policy
import json
import re
from collections.abc import Callable
from email.message import EmailMessage
from html import unescape
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import boto3
import pytest
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends
from support import (
    EVENTS,
    REGION,
    TABLE_NAME,
    FakeContext,
    Handler,
    MakeNotifier,
    body_of,
    load_event,
    stored_items,
    with_json_body,
)

VALID = {"name": "Jane Doe", "email": "jane.doe@example.com", "message": "My back hurts.", "consent": True}


def squeezed(text: str) -> str:
    return "".join(text.split())


@pytest.fixture
def notify(dynamodb: Any, make_notifier: MakeNotifier) -> Callable[[str], EmailMessage]:
    """The real notifier, fed the INSERT record of a stored enquiry; returns the email SES got."""
    boto3.client("ses", region_name=REGION).verify_email_identity(EmailAddress="enquiries@clinic.example")
    notifier = make_notifier(
        CLINIC_EMAIL="Front desk <frontdesk@clinic.example>",
        SENDER_EMAIL="Clinic website <enquiries@clinic.example>",
    )

    def run(enquiry_id: str) -> EmailMessage:
        event = json.loads((EVENTS / "stream-insert.json").read_text())
        record = copy.deepcopy(event["Records"][0])
        item = dynamodb.get_item(TableName=TABLE_NAME, Key={"id": {"S": enquiry_id}})["Item"]
        record["dynamodb"].update(Keys={"id": item["id"]}, NewImage=item)
        assert notifier.lambda_handler({"Records": [record]}, FakeContext()) == {"batchItemFailures": []}
        raw = ses_backends[DEFAULT_ACCOUNT_ID][REGION].sent_messages[-1].raw_data
        message = email.message_from_string(raw, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        return message

    return run


def test_integrity_rewriting_name_address_and_blank_message_are_refused_in_plain_words(
    handler: Handler, dynamodb: Any
) -> None:
    # Given the review's enquiry: a name with a right-to-left override, an address whose local part
    # is an encoded word hiding a second address, and a message of invisible characters
    response = handler(load_event("submit-header-tricks.json"))

    # Then each field is refused with what to change, and nothing is stored
    assert response["statusCode"] == 422
    assert body_of(response)["fields"] == {
        "name": "Enter your name without invisible formatting characters, such as right-to-left marks:"
        " type it rather than paste it.",
        "email": 'Enter an email address without the characters "=?", which email reads as a code.',
        "message": "Enter your message.",
    }
    assert stored_items(dynamodb) == []


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("email", "=?UTF-8?B?YXR0YWNrZXJAZXZpbC5leGFtcGxlPiwgPHg=?=@example.com"),
        ("email", "=?utf-8?q?a=0D=0ABcc=3A_x=40evil.example?=@example.com"),
        ("name", "=?utf-8?q?Eve_=3Ceve=40evil=2Eexample=3E=2C?="),
        ("name", "Jane \u2067Doe\u2069"),
        ("name", "\u3164"),
    ],
)
def test_integrity_each_variant_is_a_422_on_its_field(
    handler: Handler, dynamodb: Any, field: str, value: str
) -> None:
    # When an enquiry carries one such value
    response = handler(with_json_body("submit-json.json", dict(VALID, **{field: value})))

    # Then only that field is refused
    assert response["statusCode"] == 422
    assert list(body_of(response)["fields"]) == [field]
    assert stored_items(dynamodb) == []


@pytest.mark.parametrize(
    ("name", "address"),
    [
        ('Doe, Jane "JD" <x@evil.example>; team: a@evil.example;', "patient?cc=x@evil.example"),
        ("Zoë Łukasiewicz-Ångström " + "ż" * 60, "o'brien!$*+&bcc=x@straße.de"),
        ("نیک\u200cنام", "a%2Cb#c@example.com"),
    ],
)
def test_integrity_accepted_text_reaches_the_email_exactly_as_stored(
    handler: Handler, notify: Any, dynamodb: Any, name: str, address: str
) -> None:
    # Given an enquiry whose name and address hold characters that mean something in headers and links
    response = handler(with_json_body("submit-json.json", dict(VALID, name=name, email=address)))
    assert response["statusCode"] == 201
    [item] = stored_items(dynamodb)

    # When the notifier emails it
    message = notify(item["id"])

    # Then Reply-To is that one address and name, the Subject shows the name, and the link in the
    # email writes to that one address, with no other recipient or header field (text compared
    # without white space: Python's email package moves spaces where it folds a long non-ASCII name)
    [reply_to] = message["Reply-To"].addresses
    assert item["name"] == name
    assert squeezed(reply_to.display_name) == squeezed(name)
    assert reply_to.username == address.rpartition("@")[0]
    assert squeezed(message["Subject"]) == squeezed(f"New enquiry from {name}")
    assert message["Cc"] is None
    assert message["Bcc"] is None
    html = message.get_body(("html",)).get_content()
    [link] = [unescape(href) for href in re.findall(r'href="(mailto:[^"]*)"', html)]
    parts = urlsplit(link)
    assert (parts.query, parts.fragment, parse_qs(parts.query)) == ("", "", {})
    assert [unquote(to) for to in parts.path.split(",")] == [reply_to.addr_spec]
