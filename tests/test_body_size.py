"""The 32 KiB limit is on the form's content, so the same enquiry is accepted however it is encoded
(JSON, JSON with \\u escapes, a plain HTML form, multipart), while the raw body is bounded before it
is parsed."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import pytest
from support import Handler, body_of, load_event

from enquiries.api.body import MAX_RAW_BODY_BYTES

CONTENT_LIMIT = 32 * 1024  # the contract's 32 KiB
BOUNDARY = "----WebKitFormBoundary7MA4YWxkTrZu0gW"
# Every value is text, so each encoding below carries exactly the same content.
FIELDS = {"name": "Jane Doe", "email": "jane.doe@example.com", "consent": "yes"}
PHRASES = {
    "Greek": "Πονάω στη μέση από τον Σεπτέμβριο. ",
    "Cyrillic": "У меня болит поясница с сентября. ",
    "Chinese": "我的腰从九月开始一直很痛。",
}


def content_of(fields: dict[str, str]) -> int:
    """The contract's measure: the UTF-8 bytes of every field name and value, once decoded."""
    return sum(len(name.encode()) + len(value.encode()) for name, value in fields.items())


def message_of(phrase: str, characters: int) -> str:
    return (phrase * (characters // len(phrase) + 1))[:characters].strip()


def as_json(fields: dict[str, str]) -> dict[str, Any]:
    return load_event("submit-json.json", body=json.dumps(fields, ensure_ascii=False), isBase64Encoded=False)


def as_escaped_json(fields: dict[str, str]) -> dict[str, Any]:
    return load_event("submit-json.json", body=json.dumps(fields), isBase64Encoded=False)


def as_form(fields: dict[str, str]) -> dict[str, Any]:
    body = base64.b64encode(urlencode(fields).encode()).decode()
    return load_event("submit-urlencoded.json", body=body, isBase64Encoded=True, headers={"accept": "*/*"})


def as_multipart(fields: dict[str, str]) -> dict[str, Any]:
    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        for name, value in fields.items()
    ]
    body = base64.b64encode(("".join(parts) + f"--{BOUNDARY}--\r\n").encode()).decode()
    return load_event("submit-multipart.json", body=body, isBase64Encoded=True, headers={"accept": "*/*"})


ENCODINGS: dict[str, Callable[[dict[str, str]], dict[str, Any]]] = {
    "json": as_json,
    "json with \\u escapes": as_escaped_json,
    "urlencoded": as_form,
    "multipart": as_multipart,
}


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("script", PHRASES)
def test_body_size_same_long_message_is_accepted_in_every_encoding(
    handler: Handler, script: str, encoding: str
) -> None:
    # Given a 4,000-character message in a non-Latin script (up to 12 KB of content, up to 36 KB
    # once percent-encoded), sent the way a JSON client, an escaping one or a plain form sends it
    fields = dict(FIELDS, message=message_of(PHRASES[script], 4000))
    event = ENCODINGS[encoding](fields)

    # When it is handled
    response = handler(event)

    # Then it is stored, whatever the encoding
    assert response["statusCode"] == 201, response["body"]


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_body_size_longest_valid_message_in_the_widest_characters_fits_every_encoding(
    handler: Handler, encoding: str
) -> None:
    # Given the longest message the contract accepts, in 4-byte characters (12 bytes each as a JSON
    # escape, 12 percent-encoded): the widest any valid enquiry gets
    fields = dict(FIELDS, message="𝄞" * 5000)
    event = ENCODINGS[encoding](fields)

    # When it is handled
    response = handler(event)

    # Then the raw bound is wide enough for it
    assert response["statusCode"] == 201, response["body"]


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("script", PHRASES)
def test_body_size_content_over_32_kib_is_413_in_every_encoding(
    handler: Handler, script: str, encoding: str
) -> None:
    # Given content just over 32 KiB, in each script and each encoding (all under the raw bound)
    message = ""
    while content_of(dict(FIELDS, message=message)) <= CONTENT_LIMIT:
        message += PHRASES[script]
    event = ENCODINGS[encoding](dict(FIELDS, message=message))

    # When it is handled
    response = handler(event)

    # Then it is refused as too large
    assert response["statusCode"] == 413
    assert body_of(response)["error"] == "payload_too_large"


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_body_size_content_of_exactly_32_kib_is_read_and_one_byte_more_is_413(
    handler: Handler, encoding: str
) -> None:
    # Given content of exactly 32 KiB in 2-byte characters (96 KiB once percent-encoded; a message
    # too long to store, so it is read and named) and the same with one byte more
    room = CONTENT_LIMIT - content_of(dict(FIELDS, message=""))
    at_limit = dict(FIELDS, message="é" * (room // 2) + "a" * (room % 2))
    over = dict(at_limit, message=at_limit["message"] + "a")
    assert content_of(at_limit) == CONTENT_LIMIT

    # When each is handled
    read = handler(ENCODINGS[encoding](at_limit))
    refused = handler(ENCODINGS[encoding](over))

    # Then the first is read (its message is too long: a 422 naming it) and the second is a 413
    assert read["statusCode"] == 422
    assert "message" in body_of(read)["fields"]
    assert refused["statusCode"] == 413


def test_body_size_json_padding_is_not_content(handler: Handler) -> None:
    # Given a small enquiry padded with 64 KiB of JSON whitespace (over 32 KiB raw, tiny content)
    body = json.dumps(dict(FIELDS, message="Is Saturday possible?"))[:-1] + " " * 64 * 1024 + "}"

    # When it is handled
    response = handler(load_event("submit-json.json", body=body, isBase64Encoded=False))

    # Then it is stored: only the content counts
    assert len(body.encode()) > 64 * 1024
    assert response["statusCode"] == 201


@pytest.mark.parametrize(
    ("event_name", "unparseable"),
    [
        ("submit-json.json", b'{"message": "' + b"\\" * (MAX_RAW_BODY_BYTES + 1)),
        ("submit-urlencoded.json", b"message=" + b"%FF" * (MAX_RAW_BODY_BYTES // 3 + 1)),
        ("submit-multipart.json", b"--nonsense\r\n" + b"\r\n" * (MAX_RAW_BODY_BYTES // 2)),
    ],
)
@pytest.mark.parametrize("base64_encoded", [False, True])
def test_body_size_raw_body_over_the_raw_bound_is_413_before_it_is_parsed(
    handler: Handler, event_name: str, unparseable: bytes, base64_encoded: bool
) -> None:
    # Given a body over the raw bound that no parser could read (a parser would say 400)
    body = base64.b64encode(unparseable).decode() if base64_encoded else unparseable.decode()
    event = load_event(event_name, body=body, isBase64Encoded=base64_encoded, headers={"accept": "*/*"})

    # When it is handled
    response = handler(event)

    # Then it is refused for its size, before any parsing
    assert len(unparseable) > MAX_RAW_BODY_BYTES
    assert response["statusCode"] == 413
    assert body_of(response)["error"] == "payload_too_large"
