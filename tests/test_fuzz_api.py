"""Fuzzing the local server from docs/openapi.json: no 5xx, and every response conforms to the document.

Schemathesis generates requests from the document (valid and invalid ones: examples, coverage and
fuzzing phases, positive and negative modes) and sends them to `python -m devserver`, started here as
a subprocess. Hypothesis also sends raw random bytes under random content types. FUZZ_EXAMPLES sets
how many examples each test generates: small in `make test`, 1000 in `make fuzz`.
"""

from __future__ import annotations

import http.client
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance
from support import CONTRACT_ERRORS, CONTRACT_OTHER_ERRORS, FUZZ_MEDIA_TYPES

from devserver.launcher import local_server
from enquiries.field_messages import MESSAGES as FIELD_MESSAGES
from enquiries.settings import DEFAULT_SERVICES
from enquiries.validation import FieldRules, InvalidEnquiry, validate_enquiry

# End to end: generated requests against a local server (`-m "not slow"` leaves them out).
pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
DOCUMENT = REPO / "docs" / "openapi.json"
FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "30"))
CONTRACT_ERROR_CODES = {
    *CONTRACT_ERRORS.values(),
    *(c for codes in CONTRACT_OTHER_ERRORS.values() for c in codes),
}
CONTRACT_STATUSES = {200, 201, 204, 303, 400, 403, 404, 405, 413, 415, 422, 429, 500, 503}

schema = schemathesis.openapi.from_path(DOCUMENT, config=schemathesis.Config())
# The running server's output, so that a failure can quote the server's log line for it.
SERVER_OUTPUT: list[str] = []


# -- the server ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    SERVER_OUTPUT.clear()
    with local_server() as server:
        # The running server's output, so that a failure can quote the server's log line for it.
        server.output = SERVER_OUTPUT
        yield server.url
    output = SERVER_OUTPUT
    tracebacks = [line for line in output if line.startswith("Traceback")]
    assert not tracebacks, "the local server logged a traceback:\n" + "".join(output[-200:])


# -- checks beyond schemathesis' own -------------------------------------------------------------------


def _error_problems(status: int, headers: dict[str, str], body: bytes) -> list[str]:
    """What is wrong with a response by the contract's rules (beyond the document's schemas).

    `headers` has lower-cased names."""
    problems: list[str] = []
    if status not in CONTRACT_STATUSES:
        problems.append(f"status {status} is not a contract status")
    if status >= 500 and not (status == 503 and headers.get("retry-after")):
        problems.append(f"a {status} (only a 503 with Retry-After may say 'try again')")
    if status >= 500:
        problems.extend(_server_log_for(body))
    content_type = (headers.get("content-type") or "").split(";")[0].strip().lower()
    if status >= 400 and content_type == "application/json":
        try:
            data = json.loads(body)
        except ValueError:
            return [*problems, f"a {status} with a body that is not JSON: {body[:200]!r}"]
        if not isinstance(data, dict) or data.get("error") not in CONTRACT_ERROR_CODES:
            problems.append(f"a {status} whose body is not a contract error: {body[:200]!r}")
        elif not str(data.get("message") or "").strip():
            problems.append(f"a {status} without a message: {body[:200]!r}")
    elif status >= 400 and content_type != "text/html":
        problems.append(f"a {status} as {content_type or 'no content type'}")
    return problems


def _server_log_for(body: bytes) -> list[str]:
    """The server's log lines for the request whose 5xx body carries this reference."""
    try:
        reference = str(json.loads(body).get("reference") or "")
    except (ValueError, AttributeError):
        return []
    lines = [line.strip() for line in list(SERVER_OUTPUT) if reference and reference in line]
    return [f"server log: {line}" for line in lines]


def contract_answer(ctx: schemathesis.CheckContext, response: schemathesis.Response, case: Any) -> bool:
    """No 5xx except a 503 with Retry-After; every error a contract code with a message."""
    headers = {name.lower(): values[0] for name, values in response.headers.items() if values}
    problems = _error_problems(response.status_code, headers, response.content)
    if problems:
        raise AssertionError("; ".join(problems))
    return True


def _unique_idempotency_key(case: Any) -> None:
    """A valid generated Idempotency-Key becomes unique, so no case gets the replayed answer of another
    (replays are what the key is for, and have their own tests); invalid keys are sent as generated."""
    headers = case.headers or {}
    for name in list(headers):
        if name.lower() == "idempotency-key":
            key = str(headers[name])
            if 0 < len(key) <= 128 and not any(ord(c) < 32 or ord(c) == 127 for c in key):
                headers[name] = f"fuzz-{uuid.uuid4()}"


# -- schemathesis --------------------------------------------------------------------------------------


BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
FUZZ_SETTINGS = settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)


def _send_and_validate(case: Any, base_url: str, accept: str) -> None:
    _unique_idempotency_key(case)
    # Every built-in check runs but three. not_a_server_error fails any 5xx; contract_answer replaces it,
    # failing any 5xx but a 503 with Retry-After (the contract's "try again", which the emulator should
    # never need). positive_data_acceptance and negative_data_rejection run in
    # test_api_accepts_valid_enquiries_and_refuses_invalid_ones_as_documented, which allows the
    # documented rules JSON Schema cannot say. Status, content type, header and body conformance hold
    # for every case.
    case.call_and_validate(
        base_url=base_url,
        headers={"Accept": accept},
        excluded_checks=[not_a_server_error, positive_data_acceptance, negative_data_rejection],
        additional_checks=[contract_answer],
        timeout=15,
    )


@pytest.mark.fuzz
@schema.parametrize()
@FUZZ_SETTINGS
def test_api_answers_every_generated_script_request_as_documented(case: Any, server_url: str) -> None:
    # Given a request generated from docs/openapi.json (valid or invalid body, headers, content type,
    # method), sent by a script that accepts JSON
    # When it is sent to the local server
    # Then the answer is documented (status, content type, headers, body schema), never a 5xx, and any
    # error carries a contract code and a message
    _send_and_validate(case, server_url, "application/json")


@pytest.mark.fuzz
@schema.parametrize()
@FUZZ_SETTINGS
def test_api_answers_every_generated_browser_request_as_documented(case: Any, server_url: str) -> None:
    # Given a request generated from docs/openapi.json, sent by a browser (form posts get pages and
    # redirects instead of JSON)
    # When it is sent to the local server
    # Then the answer is documented, never a 5xx, and any JSON error carries a contract code
    _send_and_validate(case, server_url, BROWSER_ACCEPT)


# -- valid data accepted, invalid refused ---------------------------------------------------------------

# What the document cannot say in JSON Schema, so a schema-valid enquiry may still be a 422 on these
# fields with these sentences (the Enquiry schema's description names them): an address
# email-validator refuses, a number libphonenumber finds impossible for its region, a name with "=?"
# (an encoded word in email), a name or message that shows nothing (U+2800 BRAILLE PATTERN BLANK).
DOCUMENTED_REFUSALS = {
    "email": {FIELD_MESSAGES[rule] for rule in ("email", "email_long", "email_ascii", "email_header")},
    "phone": {FIELD_MESSAGES["phone"]},
    "name": {FIELD_MESSAGES["name"], FIELD_MESSAGES["name_header"]},
    "message": {FIELD_MESSAGES["message"]},
}
ACCEPTANCE_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "15"))


def _documented_refusal(response: schemathesis.Response) -> bool:
    """A 422 only on what the document cannot say (DOCUMENTED_REFUSALS)."""
    if response.status_code != 422:
        return False
    fields = json.loads(response.content).get("fields") or {}
    return bool(fields) and all(
        message in DOCUMENTED_REFUSALS.get(field, set()) for field, message in fields.items()
    )


def _documented_acceptance(case: Any) -> bool:
    """An invalid-looking enquiry the handler accepts as documented: it is valid once normalised as
    validation stores it (trimmed, a service in another letter case, consent as 1 or "TRUE", a phone
    in any layout libphonenumber reads), or it filled the robot trap (which answers as a success)."""
    body = case.body
    if not isinstance(body, dict):
        return False
    if body.get("_gotcha"):
        return True
    try:
        stored = validate_enquiry(body, FieldRules(services=DEFAULT_SERVICES)).stored_fields()
    except InvalidEnquiry:
        return False
    media_type = (case.media_type or "application/json").split(";")[0]
    schema = ENQUIRY_SCHEMAS["Enquiry" if media_type == "application/json" else "EnquiryForm"]
    if media_type != "application/json":
        stored = {name: "true" if value is True else value for name, value in stored.items()}
    normalised = {**{k: v for k, v in body.items() if k in ("_next", "_gotcha")}, **stored}
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    return not list(validator.iter_errors(normalised))


ENQUIRY_SCHEMAS = json.loads(DOCUMENT.read_text(encoding="utf-8"))["components"]["schemas"]


@pytest.mark.fuzz
@schema.include(method="POST").parametrize()
@settings(
    max_examples=ACCEPTANCE_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)
def test_api_accepts_valid_enquiries_and_refuses_invalid_ones_as_documented(
    case: Any, acceptance_server_url: str
) -> None:
    # Given an enquiry generated from docs/openapi.json, valid (positive) or not (negative), sent to a
    # local server without a rate limit
    _unique_idempotency_key(case)
    # When it is sent by a script
    response = case.call(base_url=acceptance_server_url, headers={"Accept": "application/json"}, timeout=15)
    # Then a valid one is accepted and an invalid one refused, but for what the document says it
    # cannot express
    try:
        case.validate_response(response, checks=[positive_data_acceptance, negative_data_rejection])
    except BaseExceptionGroup:
        mode = case.meta.generation.mode
        documented = _documented_refusal(response) if mode.is_positive else _documented_acceptance(case)
        if not documented:
            raise


@pytest.fixture(scope="module")
def acceptance_server_url() -> Iterator[str]:
    with local_server({"RATE_LIMIT_PER_HOUR": "0"}) as server:
        yield server.url


# -- raw bytes -----------------------------------------------------------------------------------------

_MEDIA_TYPES = st.sampled_from(FUZZ_MEDIA_TYPES)
_CASES = st.sampled_from([str.lower, str.upper, str.title, lambda text: text])
_PARAMETERS = st.lists(
    st.sampled_from(
        [
            "charset=utf-8",
            'charset="UTF-8"',
            "charset=latin-1",
            "charset=utf-16",
            "boundary=xyz",
            'boundary="----fuzz"',
            "boundary=",
            "q=0.5",
            "=",
            ";",
        ]
    ),
    max_size=3,
)


@st.composite
def content_types(draw: st.DrawFn) -> str:
    """A content type: a documented or other media type in any case, with or without parameters."""
    kind = draw(_CASES)(draw(_MEDIA_TYPES))
    parameters = draw(_PARAMETERS)
    return "; ".join([kind, *parameters]) if parameters else kind


@st.composite
def bodies(draw: st.DrawFn, content_type: str) -> bytes:
    """Random bytes, or text shaped like the content type (JSON objects, forms, multipart parts)."""
    kind = content_type.split(";")[0].strip().lower()
    shaped: list[st.SearchStrategy[bytes]] = [st.binary(max_size=2048)]
    text = st.text(max_size=60)
    if kind == "application/json":
        values = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), text)
        shaped.append(st.dictionaries(text, values, max_size=8).map(lambda d: json.dumps(d).encode()))
    if kind == "application/x-www-form-urlencoded":
        shaped.append(
            st.lists(st.tuples(text, text), max_size=8).map(
                lambda pairs: "&".join(f"{k}={v}" for k, v in pairs).encode("utf-8", "surrogatepass")
            )
        )
    if kind == "multipart/form-data":
        part = st.tuples(text, st.binary(max_size=80), st.booleans()).map(
            lambda p: (
                b'------fuzz\r\nContent-Disposition: form-data; name="'
                + p[0].encode("utf-8", "surrogatepass")
                + (b'"; filename="f.txt"' if p[2] else b'"')
                + b"\r\n\r\n"
                + p[1]
                + b"\r\n"
            )
        )
        shaped.append(st.lists(part, max_size=5).map(lambda parts: b"".join(parts) + b"------fuzz--\r\n"))
    return draw(st.one_of(shaped))


def _post(base_url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    parts = urlsplit(base_url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=15)
    try:
        connection.request("POST", "/enquiries", body=body, headers=headers)
        response = connection.getresponse()
        headers = {name.lower(): value for name, value in response.getheaders()}
        return response.status, headers, response.read()
    finally:
        connection.close()


@pytest.mark.fuzz
@settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data(), accept_html=st.booleans())
def test_api_answers_random_bytes_with_a_contract_error(
    server_url: str, data: st.DataObject, accept_html: bool
) -> None:
    # Given random bytes (or text shaped like it) under a random content type, from a browser or not
    content_type = data.draw(content_types(), label="content_type")
    body = data.draw(bodies(content_type), label="body")
    headers = {"Accept": "text/html" if accept_html else "application/json"}
    if content_type:
        headers["Content-Type"] = content_type
    # When it is posted to the local server
    status, response_headers, response_body = _post(server_url, body, headers)
    # Then the answer is a contract status, never a 5xx, and an error carries a contract code
    problems = _error_problems(status, response_headers, response_body)
    assert not problems, f"{problems} for {content_type!r} {body[:200]!r}"


# -- regressions found by these tests ------------------------------------------------------------------


@pytest.mark.parametrize("method", ["TRACE", "QUERY"])
def test_api_other_methods_the_local_server_used_to_refuse_are_405_with_allow(
    server_url: str, method: str
) -> None:
    # Given the local server, which answered these methods itself with a bare 501
    parts = urlsplit(server_url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=15)
    # When one is sent to /enquiries
    try:
        connection.request(method, "/enquiries")
        response = connection.getresponse()
        status, allow, body = response.status, response.getheader("Allow"), response.read()
    finally:
        connection.close()
    # Then the handler answers, as for any other method: 405 with Allow
    assert status == 405
    assert allow == "OPTIONS, POST"
    assert json.loads(body)["error"] == "method_not_allowed"
