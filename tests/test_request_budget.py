"""A request's time is bounded: every outbound call has a total deadline, and the request a budget
(enquiries/request_budget.py) below API Gateway's 30 s, past which the visitor gets the contract's
503 with Retry-After and nothing is half-done."""

from __future__ import annotations

import http.server
import io
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, ClassVar

import pytest
from fakes import FixedHasher
from support import GUARD_TABLE_NAME, TABLE_NAME, Handler, body_of, log_records, stored_items, with_json_body

from emulator.template_tables import TEMPLATE_PATH, load_template
from enquiries import request_budget
from enquiries.aws_clients import AWS_CALL_SECONDS, dynamodb_client
from enquiries.captcha import CaptchaUnavailable
from enquiries.settings import DEFAULT_SERVICES
from enquiries.storage.intake_store import DynamoIntakeStore
from enquiries.submission import Submission, SubmissionService
from enquiries.turnstile import TIMEOUT_SECONDS, TurnstileVerifier
from enquiries.validation import FieldRules

VALID = {"name": "Jane Doe", "email": "jane.doe@example.com", "message": "My back hurts.", "consent": True}
API_GATEWAY_SECONDS = 30  # an HTTP API's integration timeout, which cannot be raised
# https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-quotas.html
SLACK_SECONDS = 2  # thread start-up and the answer's own work, on a busy test machine


class TricklingSiteverify(http.server.BaseHTTPRequestHandler):
    """siteverify that answers a pass, one byte every `pause` seconds: each read is quick, the whole
    answer slow. `headers_first` sends the status line and headers at once and trickles the body."""

    pause: ClassVar[float] = 0.2
    headers_first: ClassVar[bool] = False

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        body = b'{"success": true, "error-codes": [], "hostname": "www.clinic.example"}'
        head = (
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
        )
        if self.headers_first:
            self.wfile.write(head)
            self.wfile.flush()
        trickled = body if self.headers_first else head + body
        try:
            for byte in trickled:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(self.pause)
        except OSError:  # the client gave up: what this test wants
            return

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(params=["all-trickled", "headers-then-trickled-body"])
def trickling_url(request: pytest.FixtureRequest) -> Iterator[str]:
    TricklingSiteverify.headers_first = request.param == "headers-then-trickled-body"
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), TricklingSiteverify)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/turnstile/v0/siteverify"
    server.shutdown()
    server.server_close()


def within(seconds: float, call: Callable[[], Any]) -> tuple[Any, float]:
    """`call()`'s result (or exception) and its duration; fails after `seconds` rather than waiting."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(call())
        except Exception as error:  # returned to the test, which asserts on it
            outcome.append(error)

    started = time.monotonic()
    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(seconds)
    assert outcome, f"still running after {seconds} s"
    return outcome[0], time.monotonic() - started


def test_turnstile_trickling_verifier_is_unavailable_within_its_deadline(trickling_url: str) -> None:
    # Given a verifier that answers a pass, a byte every 0.2 s (about 30 s in all)
    verifier = TurnstileVerifier("secret", trickling_url)

    # When a token is verified
    outcome, took = within(TIMEOUT_SECONDS + SLACK_SECONDS, lambda: verifier.verify("token", None))

    # Then it gives up at its total deadline: unavailable, never a pass
    assert isinstance(outcome, CaptchaUnavailable)
    assert took >= TIMEOUT_SECONDS - 0.5


def test_submit_with_trickling_verifier_is_503_with_retry_after_and_stores_nothing(
    make_handler: Callable[..., Handler], dynamodb: Any, trickling_url: str
) -> None:
    # Given Turnstile on, with a verifier that trickles its answer
    handler = make_handler(TURNSTILE_SECRET="secret", TURNSTILE_VERIFY_URL=trickling_url)
    event = with_json_body("submit-json.json", dict(VALID, **{"cf-turnstile-response": "token"}))

    # When an enquiry is submitted
    response, took = within(TIMEOUT_SECONDS + SLACK_SECONDS, lambda: handler(event))

    # Then the visitor gets the contract's 503 with Retry-After in time, and nothing is stored
    assert response["statusCode"] == 503
    assert body_of(response)["error"] == "unavailable"
    assert int(response["headers"]["Retry-After"]) > 0
    assert stored_items(dynamodb) == []
    assert took < TIMEOUT_SECONDS + SLACK_SECONDS


def test_submit_over_its_budget_is_503_with_retry_after_and_stores_nothing(
    make_handler: Callable[..., Handler],
    dynamodb: Any,
    monkeypatch: pytest.MonkeyPatch,
    log_output: io.StringIO,
) -> None:
    # Given a request whose budget is less than the most one AWS call can take
    monkeypatch.setattr(request_budget, "REQUEST_BUDGET_SECONDS", AWS_CALL_SECONDS - 1)
    handler = make_handler()

    # When an enquiry is submitted
    response = handler(with_json_body("submit-json.json", VALID))

    # Then the write is never started: a 503 with Retry-After, the reason logged, nothing stored
    assert response["statusCode"] == 503
    assert "Retry-After" in response["headers"]
    assert stored_items(dynamodb) == []
    [line] = [r for r in log_records(log_output) if r.get("message") == "request handled"]
    assert line["reason"] == "over_budget:transact_write_items"


def test_submit_budget_spent_after_the_write_keeps_it_and_gives_its_answer(dynamodb: Any) -> None:
    # Given a stored enquiry, and a DynamoDB that takes most of the budget to answer the next write
    now = [0.0]

    class SlowWrites:
        def __getattr__(self, name: str) -> Any:
            return getattr(dynamodb_client(), name)

        def transact_write_items(self, **request: Any) -> Any:
            try:
                return dynamodb_client().transact_write_items(**request)
            finally:
                now[0] += request_budget.REQUEST_BUDGET_SECONDS - AWS_CALL_SECONDS + 1

    store = DynamoIntakeStore(TABLE_NAME, GUARD_TABLE_NAME, client_factory=SlowWrites)
    service = SubmissionService(store, FieldRules(services=DEFAULT_SERVICES), hasher=FixedHasher())

    def submission(key: str | None, enquiry_id: str) -> Submission:
        return Submission(VALID, key, "203.0.113.24", datetime(2026, 11, 21, tzinfo=UTC), enquiry_id)

    def render(enquiry_id: str, next_url: str | None) -> dict[str, Any]:
        return {"status_code": 201, "body": enquiry_id, "enquiry_id": enquiry_id}

    with request_budget.within(clock=lambda: now[0]):
        first = service.submit(submission(None, "01KAPX4Q7N3Y8Z2M5R6T9V1W0A"), render)

    # When its double submit comes with a key, and the write that finds it takes most of the budget
    with request_budget.within(clock=lambda: now[0]):
        again = service.submit(submission("second-tab", "01KAPX4Q7N3Y8Z2M5R6T9V1W0B"), render)

    # Then the first answer is given (not a 503), and the key's record, a call past the budget, is
    # not written: nothing is half-done
    assert again.enquiry_id == first.enquiry_id == "01KAPX4Q7N3Y8Z2M5R6T9V1W0A"
    assert len(stored_items(dynamodb)) == 1
    guard = dynamodb.scan(TableName=GUARD_TABLE_NAME)["Items"]
    assert not [item for item in guard if item["id"]["S"].startswith("replay#idempotency-key#")]


def test_template_submit_timeout_is_above_the_request_budget_and_below_api_gateways() -> None:
    # Given the template's submission function and the code's request budget
    timeout = load_template()["Resources"]["SubmitEnquiryFunction"]["Properties"]["Timeout"]

    # Then the budget ends first, with room for the answer, and the function ends before API Gateway
    assert request_budget.REQUEST_BUDGET_SECONDS + SLACK_SECONDS <= timeout < API_GATEWAY_SECONDS
    # ... and the comment above the timeout states the code's figures
    text = TEMPLATE_PATH.read_text()
    comment = text[text.index("  SubmitEnquiryFunction:") :].split(f"Timeout: {timeout}")[0]
    assert f"REQUEST_BUDGET_SECONDS ({request_budget.REQUEST_BUDGET_SECONDS} s" in comment
    assert f"an AWS call {AWS_CALL_SECONDS} s" in comment
    assert f"Turnstile {TIMEOUT_SECONDS} s" in comment


def test_request_budget_refuses_a_call_that_could_outlast_it() -> None:
    # Given a request with 10 s of its budget, on a clock the test moves
    now = [0.0]
    with request_budget.within(10, clock=lambda: now[0]):
        # When 4 s have passed, a 5 s call may start; when 6 s have, it may not
        now[0] = 4
        request_budget.require(5, "quick")
        now[0] = 6
        with pytest.raises(request_budget.OverBudget) as refused:
            request_budget.require(5, "slow")
    # Then the refusal names the call, and outside a request every call may start
    assert refused.value.reason == "over_budget:slow"
    request_budget.require(1e9, "anything")


def test_stored_secret_read_is_not_started_past_the_budget() -> None:
    from enquiries.stored_secret import StoredSecret

    # Given a secret not read yet, and a request with less of its budget left than an AWS call takes
    calls: list[str] = []

    class Client:
        def get_secret_value(self, **request: Any) -> dict[str, str]:
            calls.append(request["SecretId"])
            return {"SecretString": "key"}

    secret = StoredSecret("CLIENT_ADDRESS_SECRET_ARN", "arn:secret", client_factory=Client)

    # When the request needs it
    with request_budget.within(AWS_CALL_SECONDS - 1), pytest.raises(request_budget.OverBudget):
        secret.value()

    # Then Secrets Manager was not asked, and a later request with time reads it
    assert calls == []
    with request_budget.within():
        assert secret.value() == "key"
