"""Edge cases a second review found: each one a way to break the contract, now shut."""

from __future__ import annotations

import base64
import email
import email.policy
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import pytest
from support import ALLOWED_ORIGIN, Handler, body_of, load_event, stored_items

from enquiries.notify.mail_settings import mail_settings
from enquiries.notify.message import compose
from enquiries.settings import SettingsError, load_settings
from enquiries.validation import FieldRules, InvalidEnquiry, validate_enquiry

VALID = {"name": "Jane Doe", "email": "jane.doe@example.com", "message": "My back hurts.", "consent": True}
MAIL = mail_settings(
    load_settings(
        {"TABLE_NAME": "t", "CLINIC_EMAIL": "desk@clinic.example", "SENDER_EMAIL": "web@clinic.example"}
    )
)
ITEM = {
    "id": "01KAPX4Q7N3Y8Z2M5R6T9V1W0A",
    "name": "Jane Doe",
    "email": "jane.doe@example.com",
    "message": "Hello",
    "consent": True,
    "created_at": "2026-11-21T10:15:30.000Z",
    "expires_at": 1,
}


def form_event(fields: Mapping[str, object], **headers: str) -> dict[str, Any]:
    body = base64.b64encode(urlencode(fields).encode()).decode()
    return load_event("submit-urlencoded.json", body=body, headers=headers or None)


# --- the notification email ------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["name", "service"])
def test_message_encoded_word_in_visitor_text_cannot_add_a_header(field: str) -> None:
    # Given visitor text that is an RFC 2047 encoded-word hiding CR LF and a Bcc header
    item = dict(ITEM, **{field: "=?utf-8?q?x=0D=0ABcc:_evil@attacker.example?="})

    # When the email is built and parsed back as a mail server would
    raw = compose(item, MAIL).as_bytes(policy=email.policy.SMTP)
    message = email.message_from_bytes(raw, policy=email.policy.default)

    # Then no Bcc appears, and no header holds a CR or LF once decoded
    assert message["Bcc"] is None
    assert b"\r\nBcc:" not in raw.split(b"\r\n\r\n", 1)[0]
    for name in ("Subject", "Reply-To", "To", "From"):
        assert "\r" not in str(message[name])
        assert "\n" not in str(message[name])


def test_message_reply_to_uses_idna_2008_for_international_domains() -> None:
    # Given an enquirer at straße.de (IDNA 2003 would map it to strasse.de, another domain)
    message = compose(dict(ITEM, email="jane@straße.de"), MAIL)

    # Then Reply-To is the same domain in its DNS form
    assert message["Reply-To"].addresses[0].addr_spec == "jane@xn--strae-oqa.de"


def test_validation_email_with_accents_before_the_at_is_refused_in_plain_words() -> None:
    # Given an address only SMTPUTF8 mail systems could answer
    with pytest.raises(InvalidEnquiry) as raised:
        validate_enquiry(dict(VALID, email="josé@example.com"), FieldRules(services=("X",)))

    # Then the visitor is told what to change
    assert raised.value.fields == {
        "email": "Enter an email address without accents or symbols before the @, like name@example.com."
    }


def test_validation_consent_false_is_accepted_when_consent_is_not_required() -> None:
    # Given REQUIRE_CONSENT=false and a JSON client that sends consent: false
    enquiry = validate_enquiry(dict(VALID, consent=False), FieldRules(services=("X",), require_consent=False))

    # Then the enquiry is valid and no consent is stored
    assert "consent" not in enquiry.stored_fields()


# --- redirects and responses -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "next_url", [f"{ALLOWED_ORIGIN}/thanks\r\nSet-Cookie: injected=1", f"{ALLOWED_ORIGIN}/a\tb"]
)
def test_submit_next_with_control_characters_never_reaches_location(
    make_handler: Any, dynamodb: Any, next_url: str
) -> None:
    # Given a form post whose _next carries CR LF (urlsplit would silently drop them)
    handler = make_handler(SUCCESS_URL=f"{ALLOWED_ORIGIN}/enquiry-sent/")
    event = form_event(dict(VALID, consent="on", _next=next_url), accept="text/html")

    # When it is handled
    response = handler(event)

    # Then the browser goes to SUCCESS_URL, and no header carries the injected text
    assert response["statusCode"] == 303
    assert response["headers"]["Location"] == f"{ALLOWED_ORIGIN}/enquiry-sent/"
    assert all("injected" not in str(value) for value in response["headers"].values())


def test_submit_multipart_file_is_reported_with_every_other_failing_field(
    handler: Handler, dynamodb: Any
) -> None:
    # Given a multipart post with a file and no email or message
    boundary = "b0und4ry"
    raw = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="name"\r\n\r\nJane\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="scan"; filename="x.png"\r\n'
        f"Content-Type: image/png\r\n\r\nPNG\r\n--{boundary}--\r\n"
    ).encode()
    event = load_event(
        "submit-multipart.json",
        body=base64.b64encode(raw).decode(),
        headers={"content-type": f"multipart/form-data; boundary={boundary}", "accept": "application/json"},
    )

    # When it is handled
    response = handler(event)

    # Then one 422 names the file and every missing field
    assert response["statusCode"] == 422
    fields = body_of(response)["fields"]
    assert set(fields) == {"scan", "email", "message", "consent"}
    assert "Files cannot be sent" in fields["scan"]
    assert stored_items(dynamodb) == []


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("POST", "/enquiries/", 404),
        ("OPTIONS", "/contact", 404),
        ("GET", "/", 404),
        ("DELETE", "/enquiries", 405),
    ],
)
def test_submit_paths_other_than_enquiries_are_404(
    handler: Handler, method: str, path: str, status: int
) -> None:
    # Given a request to another path, or another method
    event = load_event("submit-json.json", rawPath=path)
    event["requestContext"]["http"]["method"] = method
    event["requestContext"]["http"]["path"] = path

    # When it is handled
    response = handler(event)

    # Then the contract's 404, or a 405 only for /enquiries itself
    assert response["statusCode"] == status
    assert ("Allow" in response["headers"]) == (status == 405)


def test_submit_options_without_allowed_origins_is_204_with_allow(make_handler: Any) -> None:
    # Given no ALLOWED_ORIGINS, and an OPTIONS request without Origin
    handler = make_handler(ALLOWED_ORIGINS="")
    event = load_event("preflight.json", headers={"origin": None})

    # When it is handled
    response = handler(event)

    # Then it says what the path allows, consistently with Allow on a 405
    assert response["statusCode"] == 204
    assert "POST" in response["headers"]["Allow"]


def test_submit_allowed_origin_written_in_capitals_still_gets_cors_headers(
    make_handler: Any, dynamodb: Any
) -> None:
    # Given ALLOWED_ORIGINS written with capitals, and a browser sending its origin in lower case
    handler = make_handler(ALLOWED_ORIGINS="https://www.Clinic.EXAMPLE")

    # When it posts
    response = handler(load_event("submit-json.json"))

    # Then the answer is readable by the page
    assert response["statusCode"] == 201
    assert response["headers"]["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN


# --- settings --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"TABLE_NAME": "t", "DEFAULT_PHONE_REGION": "UK"}, "DEFAULT_PHONE_REGION is invalid"),
        ({"TABLE_NAME": "t", "SUCCESS_URL": "https://"}, "SUCCESS_URL is invalid"),
        ({"TABLE_NAME": "t", "SUCCESS_URL": "https://example.com/a b"}, "SUCCESS_URL is invalid"),
    ],
)
def test_settings_unusable_values_stop_the_start(environ: dict[str, str], named: str) -> None:
    # When settings are loaded
    with pytest.raises(SettingsError) as raised:
        load_settings(environ)

    # Then the variable is named
    assert named in str(raised.value)


def test_settings_other_phone_regions_are_accepted() -> None:
    # Given a clinic in Ireland
    settings = load_settings({"TABLE_NAME": "t", "DEFAULT_PHONE_REGION": "IE"})

    # Then its region is kept
    assert settings.default_phone_region == "IE"
