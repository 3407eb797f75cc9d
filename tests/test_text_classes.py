"""The Unicode character classes visitor text is judged by (enquiries/text_classes.py), checked against
Unicode's own lists, and the field rules built on them, over the classes with Hypothesis."""

from __future__ import annotations

import unicodedata
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from support import Handler, body_of, load_event, stored_items

from enquiries.field_messages import MESSAGES
from enquiries.settings import DEFAULT_SERVICES
from enquiries.text_classes import (
    EMOJI_VARIATION_SELECTORS,
    JOINERS,
    is_control_format_or_separator,
    is_default_ignorable,
)
from enquiries.validation import FieldRules, InvalidEnquiry, validate_enquiry

RULES = FieldRules(services=DEFAULT_SERVICES)
VALID: dict[str, Any] = {"name": "Jane Doe", "email": "jane@example.com", "message": "Hello", "consent": "on"}

# Default_Ignorable_Code_Point as DerivedCoreProperties.txt lists it, the same from Unicode 14.0 to 16.0
# (https://www.unicode.org/Public/16.0.0/ucd/DerivedCoreProperties.txt), copied here by hand: the module
# derives it from the definition instead, and this list checks the derivation.
DERIVED_DEFAULT_IGNORABLE = (
    (0x00AD, 0x00AD),
    (0x034F, 0x034F),
    (0x061C, 0x061C),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x206F),
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),
    (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0),
    (0xFFF0, 0xFFF8),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0000, 0xE0FFF),
)
DEFAULT_IGNORABLE = [chr(code) for low, high in DERIVED_DEFAULT_IGNORABLE for code in range(low, high + 1)]
# Hidden in a name: every default-ignorable but the joiners and the emoji variation selectors.
HIDDEN_IN_NAMES = [char for char in DEFAULT_IGNORABLE if char not in JOINERS | EMOJI_VARIATION_SELECTORS]
NAME_CONTROL = MESSAGES["name_control"]
NAME_FORMAT = MESSAGES["name_format"]
PROPERTY = settings(max_examples=200, deadline=None)
PROPERTY_WITH_FIXTURES = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def failing_fields(data: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(InvalidEnquiry) as raised:
        validate_enquiry(data, RULES)
    return raised.value.fields


# --- the classes against Unicode's lists ---------------------------------------------------------


def test_text_classes_default_ignorable_is_unicodes_list_for_every_code_point() -> None:
    # Given Unicode's list of default-ignorable code points
    listed = set(DEFAULT_IGNORABLE)

    # When every code point is classed by the module's derivation
    wrong = [
        f"U+{code:04X}"
        for code in range(0x110000)
        if is_default_ignorable(chr(code)) != (chr(code) in listed)
    ]

    # Then they agree everywhere
    assert wrong == [], f"Unicode {unicodedata.unidata_version}"


# The review's characters, each with its class.
REVIEWED = {
    "U+034F combining grapheme joiner": ("\u034f", "default-ignorable"),
    "U+FE0F variation selector 16": ("\ufe0f", "default-ignorable"),
    "U+17B4 khmer vowel inherent aq": ("\u17b4", "default-ignorable"),
    "U+E0100 variation selector 17": ("\U000e0100", "default-ignorable"),
    "U+2028 line separator": ("\u2028", "separator"),
    "U+2029 paragraph separator": ("\u2029", "separator"),
    "U+0085 next line": ("\x85", "control"),
    "U+009B control sequence introducer": ("\x9b", "control"),
}


@pytest.mark.parametrize(("char", "kind"), REVIEWED.values(), ids=REVIEWED.keys())
def test_text_classes_reviewed_characters_are_in_their_class(char: str, kind: str) -> None:
    # Given a character the review found accepted, and its Unicode class
    # Then the module classes it so
    if kind == "default-ignorable":
        assert is_default_ignorable(char)
        assert char in DEFAULT_IGNORABLE
    else:
        assert unicodedata.category(char) in {"separator": ("Zl", "Zp"), "control": ("Cc",)}[kind]
        assert is_control_format_or_separator(char)


# --- names ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("Jane\u2028Bcc: x", NAME_CONTROL),
        ("Jane\u2029Doe", NAME_CONTROL),
        ("Jane\x85Doe", NAME_CONTROL),
        ("Ja\u034fne", NAME_FORMAT),
        ("Jane\ufe0f", NAME_FORMAT),
        ("Jane\u17b4Doe", NAME_FORMAT),
        ("Jane\U000e0100", NAME_FORMAT),
        ("Jane\u3164Doe", NAME_FORMAT),
    ],
)
def test_validation_name_with_a_reviewed_character_is_refused(name: str, message: str) -> None:
    # Given a name with a line separator, a control or a character that shows as nothing
    # When it is validated
    # Then the visitor is told what to change
    assert failing_fields(dict(VALID, name=name)) == {"name": message}


@pytest.mark.parametrize(
    "name", ["Ali \u2764\ufe0f", "Jo \u263a\ufe0e", "Team 1\ufe0f\u20e3", "Priya \U0001f469\u200d\U0001f52c"]
)
def test_validation_name_with_an_emoji_variation_selector_after_a_symbol_is_stored_as_typed(
    name: str,
) -> None:
    # Given a name with an emoji drawn in emoji or text style (the selector after the symbol)
    # When it is validated
    # Then it is stored as typed
    assert validate_enquiry(dict(VALID, name=name), RULES).name == name


@PROPERTY
@given(
    char=st.characters(categories=["Cc", "Zl", "Zp"]),
    before=st.text(alphabet=st.characters(categories=["L"]), min_size=1, max_size=5),
)
def test_validation_name_with_any_control_or_separator_inside_is_refused(char: str, before: str) -> None:
    # Given a name with any control character or line/paragraph separator between its letters
    name = f"{before}{char}Doe"

    # When it is validated
    # Then it is refused as holding control characters
    assert failing_fields(dict(VALID, name=name)) == {"name": NAME_CONTROL}


@PROPERTY
@given(
    char=st.one_of(st.sampled_from(HIDDEN_IN_NAMES), st.characters(categories=["Cf"])).filter(
        lambda char: char not in JOINERS
    ),
    before=st.text(alphabet=st.characters(categories=["L"]), min_size=1, max_size=5),
)
def test_validation_name_with_any_format_or_default_ignorable_character_is_refused(
    char: str, before: str
) -> None:
    # Given a name with any format or default-ignorable character after a letter, other than a joiner
    name = f"{before}{char}Doe"

    # When it is validated
    # Then it is refused as holding invisible characters
    assert failing_fields(dict(VALID, name=name)) == {"name": NAME_FORMAT}


# --- messages ------------------------------------------------------------------------------------


@PROPERTY
@given(char=st.characters(categories=["Cc"]).filter(lambda char: char not in "\t\n\r"))
def test_validation_message_with_any_other_control_character_is_refused(char: str) -> None:
    # Given a message with a control character other than a line break or tab (ESC, BEL, CSI, ...)
    message = f"Hello {char}[31mthere"

    # When it is validated
    # Then the visitor is told to remove it, and it is never stored
    assert failing_fields(dict(VALID, message=message)) == {"message": MESSAGES["message_control"]}


def test_validation_message_with_terminal_escapes_is_refused() -> None:
    # Given the review's message: an OSC title, an SGR colour and a C1 CSI
    message = "x \x1b]0;PWNED\x07 \x1b[31mRED \x9b31m"

    # When it is validated
    # Then it is refused in plain words
    assert failing_fields(dict(VALID, message=message)) == {
        "message": "Remove the special control characters (such as escape codes) from your message:"
        " line breaks and tabs are fine."
    }


@pytest.mark.parametrize(
    ("message", "stored"),
    [
        ("Line one\r\nLine two\r\n\r\nEnd", "Line one\nLine two\n\nEnd"),
        ("Old Mac\rline", "Old Mac\nline"),
        ("Name:\tJane\nAge:\t40", "Name:\tJane\nAge:\t40"),
        ("Dear clinic,\u2028thanks", "Dear clinic,\u2028thanks"),
    ],
)
def test_validation_message_line_breaks_are_stored_as_line_feeds(message: str, stored: str) -> None:
    # Given a message with line breaks as a browser posts them (CR LF), or tabs
    # When it is validated
    # Then line breaks are stored as LF, tabs and other text as typed
    assert validate_enquiry(dict(VALID, message=message), RULES).message == stored


# --- the Idempotency-Key -------------------------------------------------------------------------


@PROPERTY_WITH_FIXTURES
@given(char=st.characters(categories=["Cc", "Cf", "Zl", "Zp"]))
@example(char="\x85").via("the review's next line")
@example(char="\u2028").via("the review's line separator")
def test_submit_idempotency_key_with_any_control_format_or_separator_is_400(
    handler: Handler, dynamodb: Any, char: str
) -> None:
    # Given an Idempotency-Key holding any control, format or line/paragraph separator character
    event = load_event("submit-json.json", headers={"idempotency-key": f"key-{char}-1"})

    # When it is handled
    response = handler(event)

    # Then it is a 400 naming the header, and nothing is stored
    assert response["statusCode"] == 400
    assert "Idempotency-Key" in body_of(response)["message"]
    assert stored_items(dynamodb) == []
