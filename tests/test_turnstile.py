"""Cloudflare Turnstile answers, through the real submission handler and a fake siteverify on loopback.

Only an answer siteverify documents is a verdict: a pass (201), or a token the visitor must redo (422 on
`captcha`). Anything else, however it is malformed, is "verifier unavailable": the contract's 503 with
Retry-After, never a 500 and never a 422 read out of a malformed answer.
https://developers.cloudflare.com/turnstile/get-started/server-side-validation/
"""

from __future__ import annotations

import http.server
import io
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import boto3
import pytest
from support import REGION, Handler, body_of, log_records, stored_items, with_json_body

TURNSTILE_KEY = "0x4AAAAAAAturnstile-test-key"
VALID = {
    "name": "Jane Doe",
    "email": "jane.doe@example.com",
    "message": "My lower back hurts after running.",
    "consent": True,
}


DUMMY_TOKEN = "XXXX.DUMMY.TOKEN.XXXX"  # what Cloudflare's test site keys give the browser


def token_event(token: str = DUMMY_TOKEN) -> dict[str, Any]:
    return with_json_body("submit-json.json", dict(VALID, **{"cf-turnstile-response": token}))


class FakeSiteverify(http.server.BaseHTTPRequestHandler):
    """siteverify on loopback, answering whatever the test sets: status, content type and raw body."""

    status: ClassVar[int] = 200
    content_type: ClassVar[str] = "application/json"
    body: ClassVar[bytes] = b'{"success": true, "error-codes": []}'
    received: ClassVar[list[dict[str, list[str]]]] = []

    def do_POST(self) -> None:
        from urllib.parse import parse_qs

        form = parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
        FakeSiteverify.received.append(form)
        self.send_response(FakeSiteverify.status)
        self.send_header("Content-Type", FakeSiteverify.content_type)
        self.send_header("Content-Length", str(len(FakeSiteverify.body)))
        self.end_headers()
        self.wfile.write(FakeSiteverify.body)

    def log_message(self, *args: Any) -> None:
        pass


@dataclass
class Siteverify:
    url: str

    def answer(self, body: Any, status: int = 200, content_type: str = "application/json") -> None:
        """Answer `body` (JSON-encoded unless bytes) from now on."""
        FakeSiteverify.body = body if isinstance(body, bytes) else json.dumps(body).encode()
        FakeSiteverify.status, FakeSiteverify.content_type = status, content_type

    @property
    def received(self) -> list[dict[str, list[str]]]:
        return FakeSiteverify.received


@pytest.fixture
def siteverify() -> Iterator[Siteverify]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeSiteverify)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    FakeSiteverify.received = []
    fake = Siteverify(f"http://127.0.0.1:{server.server_address[1]}/turnstile/v0/siteverify")
    fake.answer({"success": True, "error-codes": []})
    yield fake
    server.shutdown()
    server.server_close()


@pytest.fixture
def answering(make_handler: Callable[..., Handler], siteverify: Siteverify) -> Callable[..., Handler]:
    """The real handler with Turnstile on, whose verifier answers as `Siteverify.answer` is told."""

    def make(body: Any, status: int = 200, content_type: str = "application/json") -> Handler:
        siteverify.answer(body, status, content_type)
        return make_handler(TURNSTILE_SECRET=TURNSTILE_KEY, TURNSTILE_VERIFY_URL=siteverify.url)

    return make


DEEP = 5_000  # far past any parser's recursion limit, and still under the bounded read
UNDOCUMENTED_ANSWERS = {
    "error-codes as objects": {"success": False, "error-codes": [{"code": "invalid-input-response"}]},
    "error-codes as nested lists": {"success": False, "error-codes": [["invalid-input-response"]]},
    "error-codes as a string": {"success": False, "error-codes": "invalid-input-response"},
    "error-codes as a number": {"success": False, "error-codes": 7},
    "error-codes null": {"success": False, "error-codes": None},
    "an undocumented error code": {"success": False, "error-codes": ["you-shall-not-pass"]},
    "a failure without a code": {"success": False, "error-codes": []},
    "a success with error codes": {"success": True, "error-codes": ["invalid-input-response"]},
    "success as a string": {"success": "true"},
    "success as a number": {"success": 1},
    "no success": {"error-codes": []},
    "hostname as an object": {"success": True, "hostname": {"name": "example.com"}},
    "a list": [{"success": True}],
    "null": None,
    "a string": "success",
    "a very deep body": b'{"success": true, "x": ' + b"[" * DEEP + b"]" * DEEP + b"}",
    "a very deep list": b"[" * DEEP + b"]" * DEEP,
    "nested past any answer": b'{"success": true, "x": ' + b"[" * 300 + b"]" * 300 + b"}",
    "an unpaired surrogate": b'{"success": true, "x": ["\\ud800"]}',
    "a number too long to read": b'{"success": true, "x": 1' + b"0" * 5_000 + b"}",
    "a body past the bounded read": b'{"success": true, "x": "' + b"a" * 100_000 + b'"}',
    "not JSON": b"<html><body>Bad gateway</body></html>",
    "invalid UTF-8": b'{"success": true, "hostname": "\xff"}',
    "empty": b"",
}


@pytest.mark.parametrize("body", UNDOCUMENTED_ANSWERS.values(), ids=UNDOCUMENTED_ANSWERS.keys())
def test_turnstile_undocumented_answer_is_503_unavailable(
    answering: Callable[..., Handler], dynamodb: Any, log_output: io.StringIO, body: Any
) -> None:
    # Given a verifier whose answer is not one siteverify documents
    handler = answering(body)

    # When a valid enquiry with a token is submitted
    response = handler(token_event())

    # Then the visitor is told to try again later (never a 500, never a 422 read out of the answer),
    # nothing is stored, and the log says the verifier's answer was the cause
    assert response["statusCode"] == 503
    assert body_of(response)["error"] == "unavailable"
    assert int(response["headers"]["Retry-After"]) > 0
    assert stored_items(dynamodb) == []
    [line] = [r for r in log_records(log_output) if r.get("message") == "request handled"]
    assert line["reason"].startswith("turnstile:")


@pytest.mark.parametrize(
    ("status", "content_type", "body"),
    [
        (500, "application/json", {"success": True, "error-codes": []}),
        (429, "application/json", {"success": False, "error-codes": ["internal-error"]}),
        (202, "application/json", {"success": True, "error-codes": []}),
        (200, "text/html", {"success": True, "error-codes": []}),
    ],
    ids=["http 500", "http 429", "http 202", "not application/json"],
)
def test_turnstile_answer_that_is_not_a_200_json_document_is_503(
    answering: Callable[..., Handler], dynamodb: Any, status: int, content_type: str, body: Any
) -> None:
    # Given a verifier that answers with another status or content type, even with a passing body
    handler = answering(body, status=status, content_type=content_type)

    # When a valid enquiry with a token is submitted
    response = handler(token_event())

    # Then it is not accepted: the verifier is unavailable
    assert response["statusCode"] == 503
    assert body_of(response)["error"] == "unavailable"
    assert stored_items(dynamodb) == []


def test_turnstile_documented_pass_with_more_fields_is_accepted(
    answering: Callable[..., Handler], dynamodb: Any
) -> None:
    # Given Cloudflare's documented pass, with fields this code does not act on ("the response may
    # also contain additional fields")
    handler = answering(
        {
            "success": True,
            "challenge_ts": "2026-11-21T10:15:29.123Z",
            "hostname": "www.clinic.example",
            "error-codes": [],
            "action": "",
            "cdata": "",
            "metadata": {"interactive": False},
        }
    )

    # When a valid enquiry with a token is submitted
    response = handler(token_event())

    # Then it is stored
    assert response["statusCode"] == 201
    assert len(stored_items(dynamodb)) == 1


@pytest.mark.parametrize(
    ("codes", "status"),
    [
        (["invalid-input-response"], 422),
        (["timeout-or-duplicate"], 422),
        (["missing-input-response"], 422),
        (["invalid-input-secret"], 503),
        (["missing-input-secret"], 503),
        (["bad-request"], 503),
        (["internal-error"], 503),
        (["invalid-input-response", "internal-error"], 503),
    ],
)
def test_turnstile_documented_failure_is_the_visitors_or_ours_by_its_codes(
    answering: Callable[..., Handler], dynamodb: Any, codes: list[str], status: int
) -> None:
    # Given a documented failure
    handler = answering({"success": False, "error-codes": codes})

    # When a valid enquiry with a token is submitted
    response = handler(token_event())

    # Then a token's fault is a 422 on `captcha`; the secret's, our request's or Cloudflare's is a 503
    assert response["statusCode"] == status
    if status == 422:
        assert body_of(response)["fields"] == {"captcha": "Complete the check that you are not a robot."}
    else:
        assert body_of(response)["error"] == "unavailable"
    assert stored_items(dynamodb) == []


def test_turnstile_overlong_token_is_422_without_asking_the_verifier(
    answering: Callable[..., Handler], siteverify: Siteverify
) -> None:
    # Given a verifier that would pass anything, and a token longer than Turnstile's 2,048 characters
    handler = answering({"success": True, "error-codes": []})

    # When it is submitted
    response = handler(token_event("x" * 2049))

    # Then the check fails on the token, and Cloudflare is not asked (it could only answer bad-request)
    assert response["statusCode"] == 422
    assert set(body_of(response)["fields"]) == {"captcha"}
    assert siteverify.received == []


def test_turnstile_secret_arn_sends_the_stored_key_to_the_verifier(
    make_handler: Callable[..., Handler], siteverify: Siteverify, dynamodb: Any
) -> None:
    # Given the Turnstile key kept in Secrets Manager (written from a file: a trailing newline) and the
    # function given only its ARN
    arn = boto3.client("secretsmanager", region_name=REGION).create_secret(
        Name="enquiries/turnstile", SecretString=TURNSTILE_KEY + "\n"
    )["ARN"]
    handler = make_handler(TURNSTILE_SECRET_ARN=arn, TURNSTILE_VERIFY_URL=siteverify.url)

    # When a valid enquiry with a token is submitted
    response = handler(token_event())

    # Then the verifier was asked with the stored key, and the enquiry stored
    assert response["statusCode"] == 201
    assert [form["secret"] for form in siteverify.received] == [[TURNSTILE_KEY]]
