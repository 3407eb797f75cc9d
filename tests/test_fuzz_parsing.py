"""Property tests of body parsing and validation, and of the real handler (moto), with arbitrary input.

Whatever arrives (any bytes or text, any content type in any case with any parameters and charset,
base64 or not, valid base64 or not, any fields and values, any method, path and headers), the answer
is one the contract defines: an ApiError with a contract status and code, an InvalidEnquiry naming
fields in plain words, or a normal result; through the handler, never a 5xx and never an exception.
FUZZ_EXAMPLES sets the examples per test (default 100; `make fuzz` runs 1000).
"""

from __future__ import annotations

import base64
import json
import os
import string
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from support import (
    ALLOWED_ORIGIN,
    CONTRACT_ERRORS,
    FUZZ_MEDIA_TYPES,
    Handler,
    contract_codes,
    load_event,
    stored_items,
    with_json_body,
)

from enquiries.api.body import MAX_RAW_BODY_BYTES, read_form
from enquiries.api.errors import ApiError
from enquiries.field_messages import EMAIL_MAX, MESSAGE_MAX, NAME_MAX
from enquiries.field_messages import MESSAGES as FIELD_MESSAGES
from enquiries.settings import DEFAULT_SERVICES
from enquiries.validation import FieldRules, InvalidEnquiry, validate_enquiry

T = TypeVar("T")
FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "100"))
FUZZ = settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# Function-scoped fixtures are built once per test, not per example: the handler and its moto tables
# serve every example of the test.
FUZZ_WITH_FIXTURES = settings(
    FUZZ, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)

READ_FORM_STATUSES = {400, 413, 415, 422}
# Every sentence a visitor can read about a field is ours, never a library's.
OUR_MESSAGES = set(FIELD_MESSAGES.values())
FIELD_NAMES = ["name", "email", "phone", "service", "message", "consent", "_gotcha", "_next"]
CHARSETS = ["utf-8", "UTF8", "us-ascii", "latin-1", "iso-8859-1", "utf-16", "", '"utf-8"', "\x00"]
ORIGIN = ALLOWED_ORIGIN


# -- strategies ----------------------------------------------------------------------------------------


def _random_case(draw: st.DrawFn, text: str) -> str:
    return "".join(c.upper() if draw(st.booleans()) else c for c in text)


@st.composite
def content_types(draw: st.DrawFn) -> str | None:
    """None, junk, or a media type in random case with random parameters (charset, boundary, junk)."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.one_of(st.none(), st.text(max_size=40)))
    kind = _random_case(draw, draw(st.sampled_from(FUZZ_MEDIA_TYPES)))
    parameters = draw(
        st.lists(
            st.one_of(
                st.sampled_from(CHARSETS).map(lambda charset: f"charset={charset}"),
                st.sampled_from(["boundary=b", 'boundary="b"', "boundary=", "BOUNDARY=b"]),
                st.text(string.printable, max_size=12),
            ),
            max_size=3,
        )
    )
    parameters = [_random_case(draw, parameter) for parameter in parameters]
    spaces = draw(st.sampled_from(["; ", ";", " ; "]))
    return spaces.join([kind, *parameters])


# Lone surrogates: JSON escapes such as "\ud800" decode to them; they are not text.
surrogate_text = st.text(st.characters(categories=["Cs", "Ll", "Zs"]), min_size=1, max_size=5)
field_values = st.one_of(
    st.none(),
    st.text(max_size=40),
    surrogate_text,
    st.sampled_from(["", " ", "true", "ON", "0", "jane@example.com", "0800 987 5336", "osteopathy"]),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.lists(st.text(max_size=5), max_size=3),
    st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=2),
)
field_names = st.one_of(
    st.sampled_from([*FIELD_NAMES, "cf-turnstile-response", "captcha"]), st.text(max_size=12)
)
# Values that are valid, or nearly: so that many requests get as far as storage.
plausible_values: dict[str, st.SearchStrategy[Any]] = {
    "name": st.one_of(st.text(min_size=1, max_size=121), surrogate_text, st.just("Jane Doe")),
    "email": st.one_of(st.emails(), st.just("jane@example.com"), st.text(max_size=20)),
    "phone": st.one_of(st.sampled_from(["", "0800 987 5336", "+1 415 555 2671", "12"]), st.text(max_size=15)),
    "service": st.one_of(st.sampled_from(DEFAULT_SERVICES).map(str.upper), st.just(""), st.text(max_size=8)),
    "message": st.one_of(st.text(min_size=1, max_size=300), surrogate_text),
    "consent": st.sampled_from([True, "on", "Yes", "1", "", "no", 1, None]),
    "_gotcha": st.sampled_from(["", "", "", "I am a bot"]),
    "_next": st.sampled_from(
        [
            "",
            ORIGIN + "/thanks/",
            "https://elsewhere.example/",
            "javascript:alert(1)",
            # fullwidth letters, which browsers map to the ASCII host (UTS #46): in ASCII in Location
            "https://ｗｗｗ.clinic.example/merci/é?à=1",
        ]
    ),
}


@st.composite
def enquiry_fields(draw: st.DrawFn) -> dict[str, Any]:
    """Fields of an enquiry: valid or nearly (each known field plausible or absent), plus random ones."""
    fields: dict[str, Any] = {"name": "Jane Doe", "email": "jane@example.com", "message": "Hello"}
    fields["consent"] = True
    for name, values in plausible_values.items():
        choice = draw(st.sampled_from(["keep", "keep", "plausible", "absent"]))
        if choice == "plausible":
            fields[name] = draw(values)
        elif choice == "absent":
            fields.pop(name, None)
    fields.update(draw(st.dictionaries(field_names, field_values, max_size=3)))
    return fields


def _multipart(fields: dict[str, Any], boundary: str) -> bytes:
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        for name, value in fields.items()
    ]
    return "".join([*parts, f"--{boundary}--\r\n"]).encode("utf-8", "surrogatepass")


@st.composite
def requests(draw: st.DrawFn) -> tuple[str | None, bytes]:
    """A content type and a body: a well-formed JSON, form or multipart enquiry under its own type, or
    random bytes, or any body under any content type."""
    fields = draw(enquiry_fields())
    kind = draw(st.sampled_from(["json", "form", "multipart", "mismatch"]))
    if kind == "json":
        content_type = _random_case(draw, "application/json") + draw(st.sampled_from(["", "; charset=UTF-8"]))
        return content_type, json.dumps(fields).encode()
    if kind == "form":
        values = {name: "true" if value is True else str(value) for name, value in fields.items()}
        content_type = _random_case(draw, "application/x-www-form-urlencoded")
        return content_type, urlencode(values, errors="surrogatepass").encode()
    if kind == "multipart":
        boundary = draw(st.sampled_from(["b", "----WebKitFormBoundary7MA4YWxk"]))
        content_type = f"multipart/form-data; boundary={boundary}"
        return content_type, _multipart({k: v for k, v in fields.items() if v is not None}, boundary)
    shapes = [
        st.binary(max_size=512),
        st.just(json.dumps(fields).encode()),
        st.just(json.dumps(list(fields)).encode()),
        st.just(urlencode({k: str(v) for k, v in fields.items()}, errors="surrogatepass").encode()),
        st.text(max_size=200).map(lambda text: text.encode("utf-8", "surrogatepass")),
        st.just(_multipart(fields, "b")),
        st.integers(0, 400).map(lambda length: _multipart(fields, "b")[:length]),
        st.integers(MAX_RAW_BODY_BYTES - 2, MAX_RAW_BODY_BYTES + 2).map(
            lambda size: b"{" + b" " * (size - 2) + b"}"
        ),
    ]
    return draw(content_types()), draw(st.one_of(shapes))


@st.composite
def event_bodies(draw: st.DrawFn, raw: bytes) -> tuple[str | None, bool]:
    """What API Gateway could hand over for `raw`: no body, text, base64, or broken base64."""
    choice = draw(st.sampled_from(["text", "text", "base64", "base64", "none", "bad_base64", "surrogates"]))
    if choice == "none":
        return None, draw(st.booleans())
    if choice == "base64":
        return base64.b64encode(raw).decode("ascii"), True
    if choice == "bad_base64":
        return draw(st.text(max_size=80)), True
    if choice == "surrogates":  # an event's JSON can carry lone surrogates in the body string itself
        return draw(st.text(st.characters(categories=["Cs", "Lu", "Nd"]), max_size=20)), False
    return raw.decode("utf-8", "replace"), False  # API Gateway passes only UTF-8 text unencoded


field_rules = st.builds(
    FieldRules,
    services=st.one_of(
        st.just(DEFAULT_SERVICES),
        st.lists(st.text(min_size=1, max_size=10), min_size=1, max_size=4).map(tuple),
    ),
    require_consent=st.booleans(),
    default_phone_region=st.one_of(
        st.sampled_from(["GB", "US", "FR", "DE"]), st.from_regex(r"[A-Z]{2}", fullmatch=True)
    ),
    captcha_required=st.booleans(),
)


# -- helpers -------------------------------------------------------------------------------------------


def outcome(call: Callable[[], T]) -> T | ApiError | InvalidEnquiry:
    """What `call` returns, or the contract exception it raises (anything else propagates: a failure)."""
    try:
        return call()
    except (ApiError, InvalidEnquiry) as refused:
        return refused


def assert_contract_error(error: ApiError, statuses: set[int]) -> None:
    assert error.status in statuses, error
    assert CONTRACT_ERRORS[error.status] == error.code, error
    assert error.message.strip(), error
    if error.fields is not None:
        assert error.status == 422, error
        assert error.fields, error
        for name, message in error.fields.items():
            assert isinstance(name, str), error
            assert message.strip(), error


# -- read_form -----------------------------------------------------------------------------------------


@pytest.mark.fuzz
@FUZZ
@given(request=requests(), data=st.data())
@example(request=("Application/JSON; Charset=UTF-8", b"{}"), data=None)
@example(request=("application/json", b'{"name": "\\ud800"}'), data=None)
@example(request=("multipart/form-data; boundary=b; charset=utf-16", b"--b\r\n"), data=None)
def test_read_form_never_fails_outside_the_contract(
    request: tuple[str | None, bytes], data: st.DataObject | None
) -> None:
    # Given any body (as text, base64 or broken base64) under any content type
    content_type, raw = request
    text, is_base64 = data.draw(event_bodies(raw)) if data else (raw.decode(), False)
    # When it is read
    result = outcome(lambda: read_form(text, is_base64, content_type))
    # Then it is refused with a contract status and code, and a message
    if isinstance(result, ApiError):
        assert_contract_error(result, READ_FORM_STATUSES)
        return
    # Or it is read into named fields of a supported type, all of them text (valid Unicode)
    assert not isinstance(result, InvalidEnquiry)
    kind, fields = result
    assert kind in {"application/json", "application/x-www-form-urlencoded", "multipart/form-data"}
    assert isinstance(fields, dict)
    assert all(isinstance(name, str) for name in fields)
    json.dumps(fields, ensure_ascii=False).encode("utf-8")  # raises on a lone surrogate


@pytest.mark.fuzz
@FUZZ
@given(
    fields=st.dictionaries(st.text(max_size=12), st.text(max_size=40), max_size=12),
    content_type=st.sampled_from(
        [
            "application/json",
            "APPLICATION/X-WWW-FORM-URLENCODED; charset=UTF-8",
            "multipart/form-data; boundary=b",
        ]
    ),
    as_base64=st.booleans(),
    cut=st.one_of(st.none(), st.integers(min_value=0)),
)
def test_read_form_reads_back_what_a_client_sends(
    fields: dict[str, str], content_type: str, as_base64: bool, cut: int | None
) -> None:
    # Given text fields encoded as a client would, as JSON, a form or multipart, base64 or not, and
    # perhaps cut short (JSON and multipart have an end to miss; a cut urlencoded body is just shorter)
    kind = content_type.split(";")[0].lower()
    if kind == "application/json":
        raw = json.dumps(fields).encode()
    elif kind == "application/x-www-form-urlencoded":
        raw = urlencode(fields).encode("utf-8", "surrogatepass")
    else:
        names = [name for name in fields if name and not set(name) & set('"\r\n\\')]
        fields = {name: fields[name] for name in names if not set(fields[name]) & set("\r\n")}
        raw = (
            b"".join(
                f'--b\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode(
                    "utf-8", "surrogatepass"
                )
                for name, value in fields.items()
            )
            + b"--b--\r\n"
        )
    length = len(raw) if cut is None or kind == "application/x-www-form-urlencoded" else cut % (len(raw) + 1)
    truncated = length < len(raw)
    raw = raw[:length]
    # (as text, a character cut in two is lost)
    body = base64.b64encode(raw).decode() if as_base64 else raw.decode("utf-8", "ignore")
    # When it is read
    result = outcome(lambda: read_form(body, as_base64, content_type))
    # Then only a body cut short is refused, as unreadable
    if isinstance(result, ApiError):
        assert truncated, result
        assert (result.status, result.code) == (400, "bad_request"), result
        return
    # Or every field comes back as sent: none is lost, even from a body cut short
    assert not isinstance(result, InvalidEnquiry)
    assert result[1] == fields


# -- validate_enquiry ----------------------------------------------------------------------------------


@pytest.mark.fuzz
@FUZZ
@given(
    data=st.dictionaries(field_names, field_values, max_size=10),
    valid_base=st.booleans(),
    rules=field_rules,
)
def test_validate_enquiry_accepts_or_names_every_problem(
    data: dict[str, Any], valid_base: bool, rules: FieldRules
) -> None:
    # Given any fields with any values (on top of a valid enquiry, or not) and any field rules
    base: dict[str, Any] = (
        {"name": "Jane Doe", "email": "jane@example.com", "message": "Hello", "consent": "on"}
        if valid_base
        else {}
    )
    fields = {**base, **data}
    # When they are validated
    result = outcome(lambda: validate_enquiry(fields, rules))
    # Then the failure names fields that were sent, or required ones, each with one of our sentences
    if isinstance(result, InvalidEnquiry):
        assert result.fields
        allowed = set(fields) | {"name", "email", "message", "consent", "captcha"}
        for name, message in result.fields.items():
            assert name in allowed, (name, fields)
            assert isinstance(message, str), (name, message)
            assert message in OUR_MESSAGES or message.startswith("Choose one of: "), (name, message)
        return
    # Or the enquiry holds the contract's normalised values
    assert not isinstance(result, ApiError)
    stored = result.stored_fields()
    assert 1 <= len(stored["name"]) <= NAME_MAX
    assert stored["name"] == stored["name"].strip()
    assert 1 <= len(stored["message"]) <= MESSAGE_MAX
    assert stored["message"] == stored["message"].strip()
    assert len(stored["email"]) <= EMAIL_MAX
    assert "@" in stored["email"]
    assert stored.get("consent") is True or not rules.require_consent
    phone, _, extension = stored.get("phone", "+0").partition(";ext=")
    assert phone.startswith("+")
    assert phone[1:].isdigit()
    assert extension.isdigit() or not extension
    assert stored.get("service") in (None, *rules.services)
    assert set(stored) <= {"name", "email", "phone", "service", "message", "consent"}


# -- the real handler ----------------------------------------------------------------------------------


@st.composite
def events(draw: st.DrawFn) -> dict[str, Any]:
    """An HTTP API event with a random method, path, headers and body."""
    event = load_event("submit-json.json")
    # Mostly what a form sends (POST /enquiries), so that many requests get as far as storage.
    other_methods, other_paths = ["OPTIONS", "GET", "PUT", "HEAD"], ["/", "/enquiries/x", "/Enquiries"]
    method = "POST" if draw(st.integers(0, 5)) else draw(st.sampled_from(other_methods))
    path = "/enquiries" if draw(st.integers(0, 5)) else draw(st.sampled_from(other_paths))
    event["rawPath"] = path
    event["requestContext"]["http"]["method"] = method
    event["requestContext"]["http"]["path"] = path
    event["requestContext"]["http"]["sourceIp"] = str(draw(st.ip_addresses()))
    headers: dict[str, str] = {"accept": draw(st.sampled_from(["application/json", "text/html", "*/*"]))}
    content_type, raw = draw(requests())
    if content_type is not None:
        headers["content-type"] = content_type
    header_text = st.text(
        st.characters(min_codepoint=32, max_codepoint=0x10FFFF, exclude_categories=["Cs"]), max_size=40
    )
    optional = {
        "origin": st.integers(0, 5).flatmap(
            lambda n: st.sampled_from([ORIGIN, ORIGIN.upper()]) if n else header_text
        ),
        "idempotency-key": st.one_of(st.uuids().map(str), header_text, st.text(min_size=129, max_size=140)),
        "referer": st.one_of(st.just(ORIGIN + "/contact/"), header_text),
        "Content-Type": st.just("application/json"),
    }
    for name, values in optional.items():
        if draw(st.booleans()):
            headers[name] = draw(values)
    event["headers"] = headers
    body, is_base64 = draw(event_bodies(raw))
    event["isBase64Encoded"] = is_base64
    if body is None:
        event.pop("body", None)
    else:
        event["body"] = body
    return event


@pytest.mark.fuzz
@FUZZ_WITH_FIXTURES
@given(event=events())
def test_handler_answers_any_event_with_a_contract_response(handler: Handler, event: dict[str, Any]) -> None:
    # Given the real submission handler on moto (one for all examples), and any request
    # When it is handled
    response = handler(event)
    # Then the status is a contract status below 500
    status = response["statusCode"]
    # ... every header value is ASCII, on one line (a header is not valid otherwise)
    for value in (response.get("headers") or {}).values():
        assert value.isascii(), response
        assert not {"\r", "\n"} & set(value), response
    assert status in {200, 201, 204, 303, *CONTRACT_ERRORS}, response
    assert status < 500, response
    # And an error in JSON carries the code for its status and a message
    content_type = (response.get("headers") or {}).get("Content-Type", "")
    if status >= 400 and content_type.startswith("application/json"):
        body = json.loads(response["body"])
        assert body["error"] in contract_codes(status), response
        assert body["message"].strip(), response
    elif status >= 400:
        assert content_type.startswith("text/html"), response


# -- regressions found by these tests ------------------------------------------------------------------


def test_read_form_json_with_a_lone_surrogate_escape_is_400() -> None:
    # Given a JSON body, valid UTF-8, whose escape "\ud800" decodes to a lone surrogate (not text)
    raw = '{"name": "Jane \\ud800 Doe"}'
    # When it is read
    result = outcome(lambda: read_form(raw, False, "application/json"))
    # Then it is refused as unreadable, like any other bad encoding
    assert isinstance(result, ApiError)
    assert (result.status, result.code) == (400, "bad_request")


def test_read_form_json_with_an_escaped_surrogate_pair_is_read() -> None:
    # Given a JSON body with an emoji written as an escaped surrogate pair (as some encoders do)
    raw = '{"message": "Thanks \\ud83d\\ude00"}'
    # When it is read
    _, fields = read_form(raw, False, "application/json")
    # Then the pair is one character
    assert fields == {"message": "Thanks \U0001f600"}


def test_handler_json_enquiry_with_a_lone_surrogate_is_400_and_stores_nothing(
    handler: Handler, dynamodb: Any
) -> None:
    # Given an otherwise valid JSON enquiry whose name holds a lone surrogate escape (it was a 500)
    enquiry = {"name": "Jane \ud800", "email": "jane@example.com", "message": "Hi", "consent": True}
    event = with_json_body("submit-json.json", enquiry)
    # When it is submitted
    response = handler(event)
    # Then it is a 400 bad_request, and nothing is stored
    assert response["statusCode"] == 400
    assert json.loads(response["body"])["error"] == "bad_request"
    assert stored_items(dynamodb) == []


def _multipart_enquiry(boundary: str, *, cut_last_part: bool) -> bytes:
    fields = {"name": "Jane Doe", "email": "jane@example.com", "message": "Hi", "consent": "on"}
    body = _multipart({**fields, "phone": "0800 987 5336"}, boundary)
    return body[: body.index(b"5336") + 2] if cut_last_part else body


def test_read_form_multipart_cut_short_is_400() -> None:
    # Given a multipart body whose last part (phone) is cut off before the closing boundary
    raw = _multipart_enquiry("b", cut_last_part=True)
    # When it is read
    body = base64.b64encode(raw).decode()
    result = outcome(lambda: read_form(body, True, "multipart/form-data; boundary=b"))
    # Then it is refused as unreadable (the parser used to drop the cut part, and the phone with it)
    assert isinstance(result, ApiError)
    assert (result.status, result.code) == (400, "bad_request")


@pytest.mark.parametrize("boundary", ["b", "----WebKitFormBoundary7MA4YWxk"])
def test_read_form_multipart_with_its_closing_boundary_is_read_whole(boundary: str) -> None:
    # Given a whole multipart body, with a quoted boundary parameter and text after the close
    raw = _multipart_enquiry(boundary, cut_last_part=False) + b"an epilogue, ignored"
    # When it is read
    _, fields = read_form(base64.b64encode(raw).decode(), True, f'multipart/form-data; boundary="{boundary}"')
    # Then every part is there
    assert fields["phone"] == "0800 987 5336"
    assert len(fields) == 5


def test_handler_multipart_enquiry_cut_short_is_400_and_stores_nothing(
    handler: Handler, dynamodb: Any
) -> None:
    # Given a multipart enquiry cut off inside its last part (it was stored without the phone)
    raw = _multipart_enquiry("b", cut_last_part=True)
    event = load_event(
        "submit-multipart.json",
        body=base64.b64encode(raw).decode(),
        isBase64Encoded=True,
        headers={"content-type": "multipart/form-data; boundary=b", "accept": "application/json"},
    )
    # When it is submitted
    response = handler(event)
    # Then it is a 400 bad_request, and nothing is stored
    assert response["statusCode"] == 400
    assert json.loads(response["body"])["error"] == "bad_request"
    assert stored_items(dynamodb) == []
