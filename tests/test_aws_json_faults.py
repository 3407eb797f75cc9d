"""aws_json's client against botocore's, under the same faults: a differential test.

A small HTTP server on the loopback answers each request from a script (an answer, an answer after a
pause, a connection closed or reset without an answer). The same script is played to a botocore client
configured as aws_clients._request_config() configures the functions' clients, and to an aws_json
client made as aws_clients makes the submission path's, and what each caller would see is compared:
the exception (its class, `aws.classify`'s reading, `str()`, `.response`) or the parsed answer, how
many requests the server got, and the backoff each retry waited for. Issue 25 adopts aws_json only
if it behaves as botocore does under every fault injected here.

Where botocore fails on an answer (its parser on a body it cannot read, its checksum check on a
header that is not a number, a body cut short taken as the answer), aws_json does not follow it: the
tests at the end hold each such expected difference.

Backoffs are not slept: botocore's ExponentialBackoff.delay_amount is wrapped to record its delay,
with the jitter fixed at 1.0 (its upper bound, which tells throttling from other errors), and to wait
0 s; aws_json is given the same jitter and a recording `sleep`.
"""

from __future__ import annotations

import dataclasses
import functools
import http.server
import json
import random
import socket
import struct
import threading
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import botocore.session
import pytest
from botocore.config import Config
from botocore.retries.standard import ExponentialBackoff
from support import REGION, TABLE_NAME

from enquiries import aws, aws_clients, aws_json
from enquiries.sigv4 import Credentials

KEY_ID, SECRET_KEY = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
DDB = "com.amazonaws.dynamodb.v20120810#"
REQUEST_ID = "REQ0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789AB"
# Short deadlines for the timeout scenarios (the functions' are 1 s and 2 s): the same for both clients.
# (The read deadline leaves a loaded machine time to schedule the server's thread.)
CONNECT_SECONDS = 0.3
READ_SECONDS = 0.5
SLOW_SECONDS = 2.0  # longer than READ_SECONDS: the server's pause before a late answer


# --- the fault server ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """An HTTP answer, after `pause` seconds; `hang_up` closes the connection after it (without saying
    so in a Connection header, as a server closing an idle connection does)."""

    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    reason: str | None = None
    pause: float = 0.0
    hang_up: bool = False
    cut: int | None = None  # send only this many bytes of the body, then close
    stall: float = 0.0  # seconds between the headers and the body


@dataclass(frozen=True)
class Hangup:
    """No answer: the connection closed (FIN), or reset (RST) when `reset`."""

    reset: bool = False


Step = Reply | Hangup


class FaultServer(http.server.ThreadingHTTPServer):
    """Answers each POST with the script's next step, or `then` once the script is played out; counts
    the requests and connections since the last `play`, and the connections it has closed."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.script: list[Step] = []
        self.then: Step | None = None
        self.requests = 0
        self.connections = 0
        self.closed = threading.Semaphore(0)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def play(self, *steps: Step, then: Step | None = None) -> None:
        with self.lock:
            self.script, self.then, self.requests, self.connections = list(steps), then, 0, 0

    def next_step(self) -> Step:
        with self.lock:
            self.requests += 1
            if self.script:
                return self.script.pop(0)
            return self.then or Reply(599, b'{"__type":"ScriptPlayedOut"}')

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.lock:
            self.connections += 1
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        super().shutdown_request(request)
        self.closed.release()  # once the socket is closed: the client can see it

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that gave up (a read timeout) before the late answer: expected here


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as AWS's endpoints
    # The headers and the body go in two writes: without this, Nagle's algorithm holds the body for
    # the client's delayed ACK (40 ms a request).
    disable_nagle_algorithm = True
    server: FaultServer

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        step = self.server.next_step()
        if isinstance(step, Hangup):
            self.close_connection = True
            if step.reset:
                # SO_LINGER 0: close() sends a RST rather than a FIN.
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.connection.close()
            return
        if step.pause and self.server.stopping.wait(step.pause):
            self.close_connection = True
            return
        # No Server or Date header (send_response_only): the answers differ only as scripted.
        self.send_response_only(step.status, step.reason)
        for name, value in step.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(step.body)))
        self.end_headers()
        if step.stall and self.server.stopping.wait(step.stall):
            self.close_connection = True
            return
        self.wfile.write(step.body[: step.cut])
        self.close_connection = step.hang_up or step.cut is not None

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[FaultServer]:
    """The fault server on 127.0.0.1 (a free port), in a thread, stopped after the test."""
    made = FaultServer()
    thread = threading.Thread(target=made.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield made
    made.stopping.set()  # ends a pause: no handler outlives the test
    made.shutdown()
    made.server_close()
    thread.join()


@pytest.fixture
def refused_url() -> Iterator[str]:
    """An address where nothing listens: a bound socket that does not listen refuses connections."""
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{bound.getsockname()[1]}"


# --- the two clients -----------------------------------------------------------------------------


@functools.cache
def _session() -> Any:
    # One session for the module: its loaded service models make each new client cheap.
    return botocore.session.get_session()


@dataclass
class Backoffs:
    """Each client's recorded backoff delays (jitter 1.0: their upper bounds)."""

    botocore: list[float] = field(default_factory=list)
    aws_json: list[float] = field(default_factory=list)


@pytest.fixture
def backoffs(monkeypatch: pytest.MonkeyPatch) -> Backoffs:
    recorded = Backoffs()
    delay_amount = ExponentialBackoff.delay_amount

    def recording(self: ExponentialBackoff, context: Any) -> float:
        # ExponentialBackoff binds random.random when it is made (its `random` default argument):
        # patching the module's random.random would not reach it, its own attribute does.
        self._random = lambda: 1.0
        recorded.botocore.append(delay_amount(self, context))
        return 0.0  # endpoint.py sleeps this: the test does not wait

    monkeypatch.setattr(ExponentialBackoff, "delay_amount", recording)
    return recorded


def botocore_client(service: str, url: str) -> Any:
    config = aws_clients._request_config().merge(
        Config(connect_timeout=CONNECT_SECONDS, read_timeout=READ_SECONDS)
    )
    return _session().create_client(
        service,
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id=KEY_ID,
        aws_secret_access_key=SECRET_KEY,
        config=config,
    )


def aws_json_client(service: str, url: str, backoffs: Backoffs) -> aws_json.JsonClient:
    return aws_json.JsonClient(
        aws_json.DYNAMODB if service == "dynamodb" else aws_json.SECRETS_MANAGER,
        region=REGION,
        endpoint=url,
        credentials=lambda: Credentials(KEY_ID, SECRET_KEY),
        transport=aws_json.HttpTransport(url, aws_json.Timeouts(CONNECT_SECONDS, READ_SECONDS)),
        max_attempts=aws_clients.MAX_ATTEMPTS,
        sleep=backoffs.aws_json.append,
        jitter=lambda: 1.0,
    )


# --- what a caller sees --------------------------------------------------------------------------


def _class_of(value: object) -> tuple[str, ...]:
    # botocore makes a modeled error's class per client (errorfactory.py): the same name, module and
    # bases is what "the same class" can mean across two clients.
    return tuple(f"{kind.__module__}.{kind.__qualname__}" for kind in type(value).__mro__)


def _seen(answer: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(answer, default=repr))  # type: ignore[no-any-return]


@dataclass
class Outcome:
    """One call as its caller sees it."""

    raised: tuple[str, ...] | None
    classified: aws.AwsFailure | None
    text: str
    answer: dict[str, Any] | None
    requests: int
    delays: list[float]


@dataclass
class Side:
    """One client, and the backoffs its retries recorded."""

    client: Any
    delays: list[float]

    def call(self, operation: str, params: dict[str, Any], server: FaultServer | None = None) -> Outcome:
        before = len(self.delays)
        try:
            answer = getattr(self.client, operation)(**params)
        except Exception as error:
            response = getattr(error, "response", None)
            return Outcome(
                _class_of(error),
                aws.classify(error),
                str(error),
                _seen(response) if isinstance(response, dict) else None,
                server.requests if server else 0,
                self.delays[before:],
            )
        return Outcome(None, None, "", _seen(answer), server.requests if server else 0, self.delays[before:])


@dataclass
class Clients:
    botocore: Side
    aws_json: Side


@pytest.fixture
def make_clients(backoffs: Backoffs) -> Iterator[Callable[[str, str], Clients]]:
    """Makes a botocore and an aws_json client of a service at a URL; closes them after the test."""
    made: list[Clients] = []

    def make(service: str, url: str) -> Clients:
        clients = Clients(
            Side(botocore_client(service, url), backoffs.botocore),
            Side(aws_json_client(service, url, backoffs), backoffs.aws_json),
        )
        made.append(clients)
        return clients

    yield make
    for clients in made:
        clients.botocore.client.close()
        clients.aws_json.client.close()


def both(clients: Clients, server: FaultServer, call: tuple[str, dict[str, Any]], *steps: Step) -> Outcome:
    """Plays the script to botocore, then again to aws_json, and returns aws_json's outcome once it
    has been found equal to botocore's."""
    operation, params = call
    server.play(*steps)
    expected = clients.botocore.call(operation, params, server)
    server.play(*steps)
    actual = clients.aws_json.call(operation, params, server)
    assert actual == expected
    return actual


# --- the scripted answers ------------------------------------------------------------------------


def _json_headers(body: bytes, service: str, crc32: int | None = None) -> tuple[tuple[str, str], ...]:
    version = "1.0" if service == "dynamodb" else "1.1"
    headers = [("Content-Type", f"application/x-amz-json-{version}"), ("x-amzn-RequestId", REQUEST_ID)]
    if service == "dynamodb":  # DynamoDB signs its bodies with a CRC32 (RetryDDBChecksumError)
        headers.append(("x-amz-crc32", str(zlib.crc32(body) if crc32 is None else crc32)))
    return tuple(headers)


def aws_error(
    status: int, code: str, service: str = "dynamodb", extra: tuple[tuple[str, str], ...] = (), **fields: Any
) -> Reply:
    namespace = DDB if service == "dynamodb" else ""
    body = json.dumps({"__type": f"{namespace}{code}", **fields}).encode()
    return Reply(status, body, _json_headers(body, service) + extra)


def raw(status: int, body: bytes, reason: str | None = None) -> Reply:
    return Reply(status, body, (("x-amzn-RequestId", REQUEST_ID),), reason)


ITEM = {"id": {"S": "e-1"}, "status": {"S": "new"}, "attempts": {"N": "2"}}
GOT = json.dumps({"Item": ITEM}).encode()
SECRET = json.dumps(
    {
        "ARN": "arn:aws:secretsmanager:eu-west-2:123456789012:secret:key-AbCdEf",
        "Name": "key",
        "VersionId": "EXAMPLE1-90ab-cdef-fedc-ba987EXAMPLE",
        "SecretString": "s3cret",
        "VersionStages": ["AWSCURRENT"],
    }
).encode()
GET_ITEM = ("get_item", {"TableName": TABLE_NAME, "Key": {"id": {"S": "e-1"}}})
PUT_ITEM = (
    "put_item",
    {
        "TableName": TABLE_NAME,
        "Item": ITEM,
        "ConditionExpression": "attribute_not_exists(id)",
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    },
)
TRANSACT = (
    "transact_write_items",
    {
        "TransactItems": [
            {
                "Put": {
                    "TableName": TABLE_NAME,
                    "Item": ITEM,
                    "ConditionExpression": "attribute_not_exists(id)",
                }
            },
            {"Put": {"TableName": TABLE_NAME, "Item": {"id": {"S": "guard"}}}},
            {"Delete": {"TableName": TABLE_NAME, "Key": {"id": {"S": "old"}}}},
        ],
        "ClientRequestToken": "token-1",
    },
)
GET_SECRET = ("get_secret_value", {"SecretId": "key"})


def ok(service: str = "dynamodb", body: bytes = GOT) -> Reply:
    return Reply(200, body, _json_headers(body, service))


def bad_crc() -> Reply:
    return Reply(200, GOT, _json_headers(GOT, "dynamodb", crc32=zlib.crc32(GOT) ^ 1))


HTML = b"<html><body><b>Http/1.1 Service Unavailable</b></body></html>"
CANCELLED = aws_error(
    400,
    "TransactionCanceledException",
    Message="Transaction cancelled, please refer cancellation reasons for specific reasons "
    "[ConditionalCheckFailed, TransactionConflict, None]",
    CancellationReasons=[
        {"Code": "ConditionalCheckFailed", "Message": "The conditional request failed", "Item": ITEM},
        {"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"},
        {"Code": "None"},
    ],
)
THROTTLED = aws_error(400, "ThrottlingException", message="Rate of requests exceeds the allowed throughput.")
SLOW = Reply(200, GOT, _json_headers(GOT, "dynamodb"), pause=SLOW_SECONDS)


@dataclass(frozen=True)
class Scenario:
    steps: tuple[Step, ...]
    call: tuple[str, dict[str, Any]] = GET_ITEM
    service: str = "dynamodb"


def _error_scenarios() -> dict[str, Scenario]:
    """AWS's own errors."""
    made: dict[str, Scenario] = {}
    for code in sorted(aws.TRANSIENT_CODES):
        made[f"400 {code}"] = Scenario((aws_error(400, code, message=f"{code} happened"),))
    for status in (500, 502, 503, 504):
        json_error = aws_error(status, "InternalServerError", message="Internal server error")
        made[f"{status} json"] = Scenario((json_error, json_error))
        made[f"{status} empty"] = Scenario((raw(status, b""), raw(status, b"")))
        # A proxy's page, with a reason phrase of its own: botocore names the status by the standard one.
        made[f"{status} html"] = Scenario((raw(status, HTML, "Proxy Says No"),) * 2)
        made[f"{status} json without __type"] = Scenario((raw(status, b'{"message":"no code"}'),) * 2)
    made["ConditionalCheckFailedException with Item"] = Scenario(
        (
            aws_error(
                400, "ConditionalCheckFailedException", message="The conditional request failed", Item=ITEM
            ),
        ),
        PUT_ITEM,
    )
    made["ConditionalCheckFailedException without Item"] = Scenario(
        (aws_error(400, "ConditionalCheckFailedException", message="The conditional request failed"),),
        PUT_ITEM,
    )
    made["TransactionCanceledException"] = Scenario((CANCELLED,), TRANSACT)
    made["ValidationException"] = Scenario((aws_error(400, "ValidationException", message="One or more..."),))
    made["ResourceNotFoundException"] = Scenario(
        (aws_error(400, "ResourceNotFoundException", message="Requested resource not found"),)
    )
    made["AccessDeniedException"] = Scenario(
        (
            aws_error(
                400, "AccessDeniedException", Message="User is not authorized to perform: dynamodb:GetItem"
            ),
        )
    )
    made["IdempotentParameterMismatchException"] = Scenario(
        (aws_error(400, "IdempotentParameterMismatchException", Message="token reused"),), TRANSACT
    )
    made["ReplicatedWriteConflictException on PutItem"] = Scenario(
        (aws_error(400, "ReplicatedWriteConflictException", message="conflict"), ok()), PUT_ITEM
    )
    # Retryable in the model for the operations that list it only (ModeledRetryableChecker).
    made["ReplicatedWriteConflictException on GetItem"] = Scenario(
        (aws_error(400, "ReplicatedWriteConflictException", message="conflict"), ok())
    )
    made["ThrottlingException with ThrottlingReasons"] = Scenario(
        (
            aws_error(
                400,
                "ThrottlingException",
                message="Throughput exceeds the current capacity",
                throttlingReasons=[{"reason": "TableReadProvisionedThroughputExceeded", "resource": "arn"}],
            ),
        )
        * 2
    )
    made["unknown fields and nulls"] = Scenario(
        (aws_error(400, "ConditionalCheckFailedException", message="failed", Item=None, Extra="x"),), PUT_ITEM
    )
    for code, status in (
        ("ResourceNotFoundException", 400),
        ("DecryptionFailure", 400),
        ("InternalServiceError", 400),
        ("InternalServiceError", 500),
        ("InvalidRequestException", 400),
    ):
        error = aws_error(status, code, "secretsmanager", Message=f"{code} happened")
        made[f"secretsmanager {status} {code}"] = Scenario((error, error), GET_SECRET, "secretsmanager")
    return made


def _odd_answer_scenarios() -> dict[str, Scenario]:
    """Answers no AWS service means to send, as a proxy, a cut connection or a bug might."""
    made: dict[str, Scenario] = {}
    # A code's namespace and a ":" suffix are not part of it (parsers.py's _do_error_parse).
    made["__type with a URL after a colon"] = Scenario(
        (
            raw(
                400,
                b'{"__type":"com.amazon.coral.validate#ValidationException:http://internal/","message":"x"}',
            ),
        )
    )
    made["400 not JSON"] = Scenario((raw(400, b"Bad Request: not JSON"),))
    made["400 whitespace"] = Scenario((raw(400, b"  \n"),))
    made["429 empty"] = Scenario((raw(429, b""),) * 2)
    # A 429 whose code the operation models is the model's to judge (ThrottlingStatusCodeChecker).
    made["429 modeled non-retryable code"] = Scenario(
        (aws_error(429, "ResourceNotFoundException", message="gone"), ok())
    )
    made["429 unmodeled code"] = Scenario((aws_error(429, "SomethingNew", message="new"), ok()))
    made["__type empty"] = Scenario((raw(400, b'{"__type": "", "message": "x"}'),))
    # A code translated by an x-amzn-query-error header (botocore reads it from any JSON service).
    made["x-amzn-query-error"] = Scenario(
        (
            aws_error(
                400,
                "ValidationException",
                extra=(("x-amzn-query-error", "AWS.Queue.Gone;Sender"),),
                message="x",
            ),
        )
    )
    made["x-amzn-query-error malformed"] = Scenario(
        (aws_error(400, "ValidationException", extra=(("x-amzn-query-error", "A;B;C"),), message="x"),)
    )
    made["300"] = Scenario((raw(300, GOT),))  # parsed as a success, raised as an error
    made["307 redirect"] = Scenario((raw(307, b""),))
    made["404 html"] = Scenario((raw(404, b"<html>nope</html>"),))
    made["500 whitespace then success"] = Scenario((raw(500, b"   "), ok()))
    made["500 <HTML> in capitals then success"] = Scenario((raw(500, b"<HTML>x</HTML>"), ok()))
    # Cut short by the server closing: botocore takes what came (enforce_content_length=False), and
    # DynamoDB's CRC32 then tells it is not the answer.
    made["200 cut short then success"] = Scenario(
        (Reply(200, GOT, _json_headers(GOT, "dynamodb"), cut=20), ok())
    )
    made["400 cut short then success"] = Scenario(
        (Reply(400, THROTTLED.body, THROTTLED.headers, cut=20), ok())
    )
    made["repeated header"] = Scenario(
        (Reply(200, GOT, (*_json_headers(GOT, "dynamodb"), ("x-extra", "a"), ("x-extra", "b"))),)
    )
    made["success, unknown member and null"] = Scenario((raw(200, b'{"Item": null, "Other": 1}'),))
    made["success, a list"] = Scenario((raw(200, b"[]"),))  # both fail alike (an AttributeError)
    made["success, not JSON"] = Scenario((raw(200, HTML),))
    return made


def _retry_scenarios() -> dict[str, Scenario]:
    """A failure, then what botocore's retry makes of it; and successes."""
    made: dict[str, Scenario] = {}
    failures: dict[str, Step] = {
        "throttling": THROTTLED,
        "ProvisionedThroughputExceededException": aws_error(
            400, "ProvisionedThroughputExceededException", message="exceeded"
        ),
        "transient code": aws_error(400, "RequestTimeoutException", message="timed out"),
        "500 json": aws_error(500, "InternalServerError", message="Internal server error"),
        "503 html": raw(503, HTML),
        "429 empty": raw(429, b""),
        "read timeout": SLOW,
        "read timeout in the body": Reply(200, GOT, _json_headers(GOT, "dynamodb"), stall=SLOW_SECONDS),
        "connection closed": Hangup(),
        "connection reset": Hangup(reset=True),
        "bad crc32": bad_crc(),
    }
    for name, failure in failures.items():
        made[f"{name} then success"] = Scenario((failure, ok()))
    made["bad crc32 twice"] = Scenario((bad_crc(), bad_crc()))
    made["secretsmanager bad crc32 is not checked"] = Scenario(
        (Reply(200, SECRET, (*_json_headers(SECRET, "secretsmanager"), ("x-amz-crc32", "1"))),),
        GET_SECRET,
        "secretsmanager",
    )
    made["read timeout twice"] = Scenario((SLOW, SLOW))
    made["connection closed twice"] = Scenario((Hangup(), Hangup()))
    made["connection reset twice"] = Scenario((Hangup(reset=True), Hangup(reset=True)))
    retry_after = (("x-amz-retry-after", "1500"),)
    made["throttling with x-amz-retry-after"] = Scenario(
        (aws_error(400, "ThrottlingException", extra=retry_after, message="slow down"), ok())
    )
    made["500 with x-amz-retry-after"] = Scenario(
        (aws_error(500, "InternalServerError", extra=(("x-amz-retry-after", "2000"),), message="x"), ok())
    )
    made["x-amz-retry-after beyond 5 s more"] = Scenario(
        (aws_error(400, "ThrottlingException", extra=(("x-amz-retry-after", "60000"),), message="x"), ok())
    )
    for value in ("soon", "-5", ""):
        made[f"x-amz-retry-after {value!r} ignored"] = Scenario(
            (aws_error(400, "ThrottlingException", extra=(("x-amz-retry-after", value),), message="x"), ok())
        )
    made["success"] = Scenario((ok(),))
    made["success, no body"] = Scenario((Reply(200, b"", _json_headers(b"", "dynamodb")),), PUT_ITEM)
    made["secretsmanager success"] = Scenario((ok("secretsmanager", SECRET),), GET_SECRET, "secretsmanager")
    return made


SCENARIOS = {**_error_scenarios(), **_odd_answer_scenarios(), **_retry_scenarios()}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_aws_json_answers_each_fault_as_botocore_does(
    name: str, server: FaultServer, make_clients: Callable[[str, str], Clients]
) -> None:
    # Given the same scripted answers for a botocore client and an aws_json client
    scenario = SCENARIOS[name]
    clients = make_clients(scenario.service, server.url)

    # When each makes the call
    outcome = both(clients, server, scenario.call, *scenario.steps)

    # Then they raise or answer alike, after as many requests and the same backoffs (both() compares),
    # and the script was played to its end or the call stopped where botocore stops
    assert 1 <= outcome.requests <= aws_clients.MAX_ATTEMPTS


@pytest.fixture
def full_backlog_url() -> Iterator[str]:
    """An address that never completes a connection: a listener with a backlog of 0 whose one queued
    connection is never accepted, so Linux drops the next SYNs and a connect times out."""
    with socket.socket() as listener, socket.socket() as queued, socket.socket() as probe:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        queued.connect(listener.getsockname())
        probe.settimeout(0.05)
        with pytest.raises(TimeoutError):  # the premise: a connect here times out
            probe.connect(listener.getsockname())
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


@pytest.mark.parametrize("address", ["refused_url", "full_backlog_url"])
def test_aws_json_fails_to_connect_as_botocore_does(
    address: str, request: pytest.FixtureRequest, make_clients: Callable[[str, str], Clients]
) -> None:
    # Given an address that refuses connections, or one that never completes them
    clients = make_clients("dynamodb", request.getfixturevalue(address))

    # When each client calls it
    expected = clients.botocore.call(*GET_ITEM)
    actual = clients.aws_json.call(*GET_ITEM)

    # Then both raise the same network error after one retry (a connection error is transient)
    assert actual == expected
    assert actual.classified == aws.AwsFailure(
        {"refused_url": "EndpointConnectionError", "full_backlog_url": "ConnectTimeoutError"}[address],
        transient=True,
    )
    assert len(actual.delays) == aws_clients.MAX_ATTEMPTS - 1


def test_aws_json_spends_the_retry_quota_as_botocore_does(
    server: FaultServer, make_clients: Callable[[str, str], Clients]
) -> None:
    # Given a DynamoDB that answers every request with a 500
    clients = make_clients("dynamodb", server.url)
    failing = aws_error(500, "InternalServerError", message="Internal server error")

    # When each client makes 60 calls in a row
    outcomes = {}
    for name, side in (("botocore", clients.botocore), ("aws_json", clients.aws_json)):
        server.play(then=failing)
        outcomes[name] = [side.call(*GET_ITEM, server) for _ in range(60)]
        outcomes[name] = [
            dataclasses.replace(outcome, requests=count)
            for outcome, count in zip(outcomes[name], _per_call(outcomes[name]), strict=True)
        ]

    # Then both stop retrying at the same call (the quota of 500 spent 14 a retry), the server sees the
    # same requests, and the calls after say the quota was reached as botocore's do
    assert outcomes["aws_json"] == outcomes["botocore"]
    counts = [outcome.requests for outcome in outcomes["aws_json"]]
    assert counts == sorted(counts, reverse=True)
    assert set(counts) == {1, 2}
    last = outcomes["aws_json"][-1].answer
    assert last is not None
    assert last["ResponseMetadata"].get("RetryQuotaReached") is True


def _per_call(outcomes: list[Outcome]) -> list[int]:
    # The server's count is cumulative within one play: each call's own share.
    totals = [outcome.requests for outcome in outcomes]
    return [total - previous for total, previous in zip(totals, [0, *totals], strict=False)]


def test_aws_json_refills_the_retry_quota_as_botocore_does(
    server: FaultServer, make_clients: Callable[[str, str], Clients]
) -> None:
    # Given a seeded run of answers, mostly failures that are retried (throttling costs 5, others 14),
    # with successes that give back what their retry took (or 1)
    clients = make_clients("dynamodb", server.url)
    choices = [
        ok(),
        THROTTLED,
        aws_error(500, "InternalServerError", message="Internal server error"),
        raw(503, HTML),
        raw(429, b""),
        aws_error(400, "ValidationException", message="bad"),
    ]
    answers = random.Random(25).choices(choices, weights=[3, 2, 4, 2, 1, 1], k=400)

    # When each client makes calls until the answers run out
    outcomes: dict[str, list[Outcome]] = {}
    for name, side in (("botocore", clients.botocore), ("aws_json", clients.aws_json)):
        server.play(*answers, then=ok())
        outcomes[name] = []
        while server.requests < len(answers) and len(outcomes[name]) < len(answers):
            outcomes[name].append(side.call(*GET_ITEM, server))

    # Then both retried the same calls, with the same backoffs, and were refused by the quota alike
    assert outcomes["aws_json"] == outcomes["botocore"]
    metadata = [outcome.answer["ResponseMetadata"] for outcome in outcomes["aws_json"] if outcome.answer]
    refused = [index for index, seen in enumerate(metadata) if seen.get("RetryQuotaReached")]
    assert refused  # the quota bit
    assert any(seen["RetryAttempts"] for seen in metadata[refused[0] :])  # and refilled enough to retry


def test_aws_json_reuses_its_connection(
    server: FaultServer, make_clients: Callable[[str, str], Clients]
) -> None:
    # Given a server that keeps connections open
    clients = make_clients("dynamodb", server.url)

    for side in (clients.botocore, clients.aws_json):
        # When a client makes two calls
        server.play(ok(), ok())
        first, second = side.call(*GET_ITEM), side.call(*GET_ITEM)

        # Then both succeed over one TCP connection
        assert first.raised is None
        assert second.raised is None
        assert (server.requests, server.connections) == (2, 1)


def test_aws_json_replaces_an_idle_connection_the_server_closed(
    server: FaultServer, make_clients: Callable[[str, str], Clients]
) -> None:
    # Given a server that closes the connection after its first answer, while it is idle in the pool
    clients = make_clients("dynamodb", server.url)

    seen = []
    for side in (clients.botocore, clients.aws_json):
        server.play(Reply(200, GOT, _json_headers(GOT, "dynamodb"), hang_up=True), ok())
        first = side.call(*GET_ITEM, server)
        assert server.closed.acquire(timeout=5)  # the server has closed it

        # When the client makes its next call
        second = side.call(*GET_ITEM, server)

        # Then it opens a new connection rather than spend an attempt on the closed one
        assert first.raised is None
        assert second.raised is None
        assert second.answer is not None
        assert second.answer["ResponseMetadata"]["RetryAttempts"] == 0
        assert (server.requests, server.connections) == (2, 2)
        seen.append((first, second))
    assert seen[1] == seen[0]


def test_aws_json_secret_created_date_stays_a_number(
    server: FaultServer, make_clients: Callable[[str, str], Clients]
) -> None:
    # Given a secret's answer with its CreatedDate (seconds since the epoch, as Secrets Manager sends it)
    clients = make_clients("secretsmanager", server.url)
    body = json.dumps({**json.loads(SECRET), "CreatedDate": 1.765e9}).encode()

    # When each client reads it
    server.play(ok("secretsmanager", body))
    expected = clients.botocore.client.get_secret_value(SecretId="key")
    server.play(ok("secretsmanager", body))
    actual = clients.aws_json.client.get_secret_value(SecretId="key")

    # Then the answers are the same but for the expected difference aws_json's docstring states: botocore
    # turns the timestamp into a datetime, aws_json leaves it a number (nothing here reads it)
    assert actual.pop("CreatedDate") == expected.pop("CreatedDate").timestamp()
    assert actual == expected


def test_aws_json_service_tables_match_botocore_model() -> None:
    # Given botocore's models of the two services
    for service in (aws_json.DYNAMODB, aws_json.SECRETS_MANAGER):
        # When each is read as aws_json's tables read it
        model = _session().get_service_model(service.name)
        errors = {shape.name: set(shape.members) for shape in model.error_shapes}
        retryable = {shape.name for shape in model.error_shapes if shape.metadata.get("retryable")}
        throttling = {
            name for name in retryable if model.shape_for(name).metadata["retryable"].get("throttling")
        }

        # Then aws_json's tables say the same: every modeled error and its members, each operation's
        # errors and output members, what is retryable, and nothing retryable is a throttling error
        assert {code: set(members) for code, members in service.errors.items()} == errors
        assert all(shape.error_code == shape.name for shape in model.error_shapes)
        assert service.retryable_codes == retryable
        assert not throttling
        assert (service.target_prefix, service.json_version) == (
            model.metadata["targetPrefix"],
            model.metadata["jsonVersion"],
        )
        for operation in service.operations.values():
            operation_model = model.operation_model(operation)
            assert service.operation_errors[operation] == {
                shape.name for shape in operation_model.error_shapes
            }
            assert set(service.outputs[operation]) == set(operation_model.output_shape.members)


# --- expected differences: where botocore fails on an answer, aws_json does not follow it ------------


@pytest.mark.parametrize(
    "body",
    [b"\xff\xfe not UTF-8", b"[1, 2]", b"null", b'{"__type": 5, "message": "x"}'],
    ids=["not UTF-8", "a list", "null", "__type not text"],
)
def test_aws_json_reads_an_error_body_botocore_cannot_parse_as_its_status(
    body: bytes, server: FaultServer, make_clients: Callable[[str, str], Clients]
) -> None:
    # Given a 400 whose body botocore's JSON error parser fails on
    clients = make_clients("dynamodb", server.url)

    # When each client gets it
    server.play(raw(400, body))
    expected = clients.botocore.call(*GET_ITEM, server)
    server.play(raw(400, body))
    actual = clients.aws_json.call(*GET_ITEM, server)

    # Then (an expected difference) botocore raises its parser's own failure (a UnicodeDecodeError,
    # AttributeError or TypeError from parsers.py), which no caller classifies: a visitor's 500. aws_json
    # raises the ClientError botocore raises for a body without a code: coded with the status
    assert expected.raised is not None
    assert expected.raised[0].startswith("builtins.")
    assert expected.classified is None
    assert actual.classified == aws.AwsFailure("400", transient=False)
    assert actual.requests == expected.requests == 1


def test_aws_json_ignores_a_crc32_that_is_not_a_number(
    server: FaultServer, make_clients: Callable[[str, str], Clients]
) -> None:
    # Given a DynamoDB answer whose x-amz-crc32 header is not a number
    clients = make_clients("dynamodb", server.url)
    answer = Reply(200, GOT, (("x-amz-crc32", "abc"),))

    # When each client gets it
    server.play(answer)
    expected = clients.botocore.call(*GET_ITEM, server)
    server.play(answer)
    actual = clients.aws_json.call(*GET_ITEM, server)

    # Then (an expected difference) botocore's RetryDDBChecksumError fails on int("abc") (retries/special.py):
    # a ValueError no caller classifies; aws_json takes the answer as one without a checksum
    assert expected.raised is not None
    assert expected.raised[0] == "builtins.ValueError"
    assert actual.raised is None
    assert actual.answer is not None
    assert actual.answer["Item"] == ITEM


def test_aws_json_passes_nested_members_as_aws_sends_them(
    server: FaultServer, make_clients: Callable[[str, str], Clients]
) -> None:
    # Given a cancelled transaction whose reason has a member botocore's model does not know
    clients = make_clients("dynamodb", server.url)
    reasons = [{"Code": "None", "Unmodeled": 1}]
    answer = aws_error(400, "TransactionCanceledException", Message="cancelled", CancellationReasons=reasons)

    # When each client gets it
    server.play(answer)
    expected = clients.botocore.call(*TRANSACT, server)
    server.play(answer)
    actual = clients.aws_json.call(*TRANSACT, server)

    # Then (an expected difference, in aws_json's docstring) botocore keeps a nested structure's modeled
    # members only; aws_json reads the top level as botocore does and passes what is inside as AWS sent it
    assert expected.answer is not None
    assert actual.answer is not None
    assert expected.answer.pop("CancellationReasons") == [{"Code": "None"}]
    assert actual.answer.pop("CancellationReasons") == reasons
    assert actual == expected


def test_aws_json_retries_an_answer_cut_short(
    server: FaultServer, make_clients: Callable[[str, str], Clients]
) -> None:
    # Given a secret's answer cut short (the server closes after 20 of its bytes), then the whole answer
    clients = make_clients("secretsmanager", server.url)
    steps = (
        Reply(200, SECRET, _json_headers(SECRET, "secretsmanager"), cut=20),
        ok("secretsmanager", SECRET),
    )

    # When each client reads the secret
    server.play(*steps)
    expected = clients.botocore.call(*GET_SECRET, server)
    server.play(*steps)
    actual = clients.aws_json.call(*GET_SECRET, server)

    # Then (an expected difference) botocore takes the 20 bytes as the answer (httpsession.py sends with
    # enforce_content_length=False; they are not JSON, so it answers without a SecretString, which
    # stored_secret.py reports as NoSecretString); aws_json reads the connection as closed before the
    # answer (http.client's IncompleteRead: ConnectionClosedError), retries, and gets the secret.
    # (For DynamoDB, whose CRC32 tells a cut answer, both retry: "200 cut short then success" above.)
    assert expected.answer is not None
    assert "SecretString" not in expected.answer
    assert expected.requests == 1
    assert actual.answer is not None
    assert actual.answer["SecretString"] == "s3cret"
    assert actual.requests == 2  # the cut answer and the retry


def test_aws_json_retries_a_kept_connection_closed_without_an_answer(
    server: FaultServer, make_clients: Callable[[str, str], Clients]
) -> None:
    # Given a server that answers a first call, then closes the kept connection on the next request
    clients = make_clients("dynamodb", server.url)

    seen = []
    for side in (clients.botocore, clients.aws_json):
        server.play(ok(), Hangup(), ok())
        first = side.call(*GET_ITEM, server)

        # When the client makes its next call on that connection
        second = side.call(*GET_ITEM, server)

        # Then the lost answer costs an attempt, retried on a new connection, as botocore does
        assert second.raised is None
        assert second.answer is not None
        assert second.answer["ResponseMetadata"]["RetryAttempts"] == 1
        assert (server.requests, server.connections) == (3, 2)
        seen.append((first, second))
    assert seen[1] == seen[0]
