"""Every field rule of the contract, checked on the validation layer directly."""

from __future__ import annotations

from typing import Any

import pytest

from enquiries.field_messages import MESSAGES
from enquiries.settings import DEFAULT_SERVICES
from enquiries.validation import FieldRules, InvalidEnquiry, validate_enquiry

RULES = FieldRules(services=DEFAULT_SERVICES)
VALID: dict[str, Any] = {"name": "Jane Doe", "email": "jane@example.com", "message": "Hello", "consent": "on"}


def failing_fields(data: dict[str, Any], rules: FieldRules = RULES) -> dict[str, str]:
    with pytest.raises(InvalidEnquiry) as raised:
        validate_enquiry(data, rules)
    return raised.value.fields


@pytest.mark.parametrize(
    ("field", "value", "stored"),
    [
        ("name", "  Jane  ", "Jane"),
        ("name", "J", "J"),
        ("name", "x" * 120, "x" * 120),
        ("email", "Jane.Doe@EXAMPLE.com", "Jane.Doe@example.com"),
        ("email", "jane+clinic@example.co.uk", "jane+clinic@example.co.uk"),
        ("phone", "0800 987 5336", "+448009875336"),
        ("phone", "+44 (0)20 7946 0958", "+442079460958"),
        ("phone", "+1 415 555 2671", "+14155552671"),
        ("phone", "07700 900123 ext 2", "+447700900123;ext=2"),
        ("phone", "020 7946 0958 x 123", "+442079460958;ext=123"),
        ("phone", "+1 415 555 2671 #7", "+14155552671;ext=7"),
        ("service", "osteopathy", "Osteopathy"),
        ("service", "SPORTS MASSAGE", "Sports Massage"),
        ("message", "  Hello\nthere  ", "Hello\nthere"),
        ("message", "m" * 5000, "m" * 5000),
        ("consent", True, True),
        ("consent", "true", True),
        ("consent", "ON", True),
        ("consent", "yes", True),
        ("consent", "1", True),
    ],
)
def test_validation_accepts_and_normalises(field: str, value: Any, stored: Any) -> None:
    # Given a valid enquiry with one field varied
    data = dict(VALID, **{field: value})

    # When it is validated
    enquiry = validate_enquiry(data, RULES)

    # Then the field is stored in its normal form
    assert enquiry.stored_fields()[field] == stored


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("name", None, "Enter your name."),
        ("name", "   ", "Enter your name."),
        ("name", "x" * 121, "Enter your name in at most 120 characters."),
        ("name", "Jane\x00Doe", "Enter your name without special control characters."),
        ("name", "Jane\r\nBcc: x@example.com", "Enter your name without special control characters."),
        ("name", 42, "Enter this as text."),
        ("name", ["Jane", "Joan"], "Send this field only once."),
        ("email", None, "Enter an email address like name@example.com."),
        ("email", "jane", "Enter an email address like name@example.com."),
        ("email", "jane@", "Enter an email address like name@example.com."),
        ("email", "jane@example", "Enter an email address like name@example.com."),
        (
            "email",
            "a" * 64 + "@" + ("b" * 60 + ".") * 3 + "example.com",
            "Enter an email address of at most 254 characters.",
        ),
        ("phone", "12", "Enter a phone number like 01632 960123 or +44 1632 960123, or leave it blank."),
        ("phone", "call me", "Enter a phone number like 01632 960123 or +44 1632 960123, or leave it blank."),
        # Possible only as a local number (no area code), which nobody outside the area could call
        ("phone", "12345", MESSAGES["phone"]),
        ("phone", "7946 0958", MESSAGES["phone"]),
        ("service", "Reiki", "Choose one of: " + ", ".join(DEFAULT_SERVICES) + "."),
        ("message", "", "Enter your message."),
        ("message", "m" * 5001, "Shorten your message to at most 5,000 characters."),
        ("consent", None, "Tick the box to agree that we may use your details to reply to your enquiry."),
        ("consent", "no", "Tick the box to agree that we may use your details to reply to your enquiry."),
        ("consent", False, "Tick the box to agree that we may use your details to reply to your enquiry."),
    ],
)
def test_validation_rejects_with_plain_words(field: str, value: Any, expected: str) -> None:
    # Given a valid enquiry with one field broken (None means left out)
    data = dict(VALID, **{field: value})
    if value is None:
        del data[field]

    # When it is validated
    fields = failing_fields(data)

    # Then exactly that field fails, with a sentence a visitor can act on
    assert fields == {field: expected}


def test_validation_reports_every_failing_field_at_once() -> None:
    # Given an empty form
    fields = failing_fields({})

    # Then every required field is named
    assert set(fields) == {"name", "email", "message", "consent"}


def test_validation_names_unknown_fields() -> None:
    # Given a field the contract does not know
    fields = failing_fields(dict(VALID, website="https://spam.example", cf_turnstile_response="x"))

    # Then it is named rather than silently dropped
    assert set(fields) == {"website", "cf_turnstile_response"}


def test_validation_empty_optional_fields_are_absent() -> None:
    # Given empty optional fields
    enquiry = validate_enquiry(dict(VALID, phone="", service="  ", _gotcha="", _next=""), RULES)

    # Then they are not stored at all
    assert set(enquiry.stored_fields()) == {"name", "email", "message", "consent"}
    assert enquiry.gotcha is None


def test_validation_consent_optional_when_not_required() -> None:
    # Given REQUIRE_CONSENT=false
    rules = FieldRules(services=DEFAULT_SERVICES, require_consent=False)

    # When consent is left out
    enquiry = validate_enquiry({k: v for k, v in VALID.items() if k != "consent"}, rules)

    # Then the enquiry is valid and stores no consent
    assert "consent" not in enquiry.stored_fields()


def test_validation_phone_region_reads_national_numbers() -> None:
    # Given a US clinic
    rules = FieldRules(services=DEFAULT_SERVICES, default_phone_region="US")

    # When a national US number is given
    enquiry = validate_enquiry(dict(VALID, phone="(415) 555-2671"), rules)

    # Then it is read in that region
    assert enquiry.phone == "+14155552671"


def test_validation_services_come_from_settings() -> None:
    # Given a clinic with its own services
    rules = FieldRules(services=("Pilates", "Physiotherapy"))

    # Then its services are accepted in any case and others are not
    assert validate_enquiry(dict(VALID, service="pilates"), rules).service == "Pilates"
    assert failing_fields(dict(VALID, service="Osteopathy"), rules) == {
        "service": "Choose one of: Pilates, Physiotherapy."
    }


# --- names and messages that would show something else -------------------------------------------

NAME_FORMAT = (
    "Enter your name without invisible formatting characters, such as right-to-left marks:"
    " type it rather than paste it."
)
NAME_HEADER = 'Enter your name without the characters "=?", which email reads as a code.'
EMAIL_HEADER = 'Enter an email address without the characters "=?", which email reads as a code.'

# The format controls that reorder text (UAX #9) and other invisible format characters (category Cf).
DISPLAY_CONTROLS = {
    "right-to-left override": "\u202e",
    "left-to-right override": "\u202d",
    "right-to-left embedding": "\u202b",
    "left-to-right embedding": "\u202a",
    "pop directional formatting": "\u202c",
    "left-to-right isolate": "\u2066",
    "right-to-left isolate": "\u2067",
    "first strong isolate": "\u2068",
    "pop directional isolate": "\u2069",
    "left-to-right mark": "\u200e",
    "right-to-left mark": "\u200f",
    "arabic letter mark": "\u061c",
    "zero width space": "\u200b",
    "word joiner": "\u2060",
    "byte order mark": "\ufeff",
    "soft hyphen": "\u00ad",
    "interlinear annotation anchor": "\ufff9",
    "tag latin capital letter a": "\U000e0041",
}


@pytest.mark.parametrize("control", DISPLAY_CONTROLS.values(), ids=DISPLAY_CONTROLS.keys())
def test_validation_name_with_an_invisible_format_character_is_refused(control: str) -> None:
    # Given a name that would show in another order, or hide a part, in the Subject staff read
    fields = failing_fields(dict(VALID, name=f"Jane{control}evil.example"))

    # Then the visitor is told what to change
    assert fields == {"name": NAME_FORMAT}


@pytest.mark.parametrize(
    "name",
    [
        "نیک\u200cنام",  # Persian: the non-joiner keeps two letter forms apart
        "क्\u200dष",  # Devanagari: the joiner asks for a half form
        "Priya \U0001f469\u200d\U0001f52c",  # an emoji sequence joined by ZWJ
        "محمد بن عبد الله",  # right-to-left letters need no control at all
    ],
)
def test_validation_name_with_joiners_is_stored_as_typed(name: str) -> None:
    # Given a name whose script or emoji needs ZERO WIDTH (NON-)JOINER, which reorders nothing
    enquiry = validate_enquiry(dict(VALID, name=name), RULES)

    # Then it is accepted as typed
    assert enquiry.name == name


INVISIBLE_ONLY = {
    "zero width space": "\u200b",
    "hangul filler": "\u3164",
    "halfwidth hangul filler": "\uffa0",
    "hangul choseong and jungseong fillers": "\u115f\u1160",
    "braille blank": "\u2800",
    "joiners and spaces": "\u200c \u200d\u00a0\u3000",
    "byte order mark": "\ufeff",
    "line separator": "\u2028",
    "variation selector": "\ufe0f",
    "bidi controls": "\u202e\u2066\u200f",
}


@pytest.mark.parametrize("field", ["name", "message"])
@pytest.mark.parametrize("blank", INVISIBLE_ONLY.values(), ids=INVISIBLE_ONLY.keys())
def test_validation_name_or_message_of_invisible_characters_is_empty(field: str, blank: str) -> None:
    # Given a field that shows nothing, though it is not empty
    fields = failing_fields(dict(VALID, **{field: blank}))

    # Then it counts as not filled in
    assert fields == {field: {"name": "Enter your name.", "message": "Enter your message."}[field]}


def test_validation_message_keeps_direction_controls_as_typed() -> None:
    # Given a message mixing scripts, with the marks and isolates right-to-left writers use: the email
    # shows a message as a block (a paragraph a line in plain text), so they reorder only its own text
    message = "\u0645\u0631\u062d\u0628\u0627 \u200f(10:30)\u200f\nRoom \u2067\u0662\u0663\u2069 please\u202e"

    # When it is validated
    enquiry = validate_enquiry(dict(VALID, message=message), RULES)

    # Then it is stored as typed
    assert enquiry.message == message


ENCODED_WORDS = {
    "q, second address": "=?utf-8?q?attacker=40evil=2Eexample=3E=2C_=3Cx?=",
    "b, second address": "=?UTF-8?B?YXR0YWNrZXJAZXZpbC5leGFtcGxlPiwgPHg=?=",
    "q upper case": "=?UTF-8?Q?ATTACKER=40EVIL=2EEXAMPLE?=",
    "crlf and bcc": "=?utf-8?q?a=0D=0ABcc=3A_x=40evil.example?=",
    "nul": "=?utf-8?q?a=00b?=",
    "group": "=?utf-8?q?g=3Aa=40evil.example=3B?=",
    "comma, latin-1": "=?iso-8859-1?q?a=2Cb?=",
    "language tag": "=?utf-8*en?q?x=40evil.example?=",
    "harmless text": "=?utf-8?q?Jane?=",
}


@pytest.mark.parametrize("word", ENCODED_WORDS.values(), ids=ENCODED_WORDS.keys())
def test_validation_encoded_word_before_the_at_is_refused(word: str) -> None:
    # Given an address whose local part the email package would decode into other text
    fields = failing_fields(dict(VALID, email=f"{word}@example.com"))

    # Then it is refused in plain words
    assert fields == {"email": EMAIL_HEADER}


@pytest.mark.parametrize(
    "name",
    [
        *ENCODED_WORDS.values(),
        *(f"Jane {word} Doe" for word in ENCODED_WORDS.values()),
        "=?utf-8?q? attacker=40evil=2Eexample=3E=2C_=3Cx?=",  # split by white space: still decoded
        "=?utf-8?b?RXZlIDxldmVAZXZpbC5leGFtcGxlPiw=?=",
    ],
)
def test_validation_encoded_word_in_the_name_is_refused(name: str) -> None:
    # Given a name the email package would decode into other text, or another address
    fields = failing_fields(dict(VALID, name=name))

    # Then it is refused in plain words
    assert fields == {"name": NAME_HEADER}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", 'Jane "JD" Doe'),
        ("name", "Doe, Jane <jane@evil.example>"),
        ("name", "team: a@evil.example, b@evil.example;"),
        ("name", "O'Brien (née Smith) \\ Jr."),
        ("name", "a =? b"),
        ("name", "Zoë Ångström-Łukasiewicz " + "ą" * 80),
        ("email", "patient?cc=x@evil.example"),
        ("email", "{a}|b^c`d~e=f#g&h%41/i@example.com"),
        ("email", "o'brien!$*+@straße.de"),
    ],
)
def test_validation_punctuation_that_headers_quote_is_accepted(field: str, value: str) -> None:
    # Given text with the characters that have a meaning in address headers, which the email
    # package quotes rather than reads
    enquiry = validate_enquiry(dict(VALID, **{field: value}), RULES)

    # Then it is accepted as typed
    assert enquiry.stored_fields()[field] == value
