"""Storage failures: throttling, outages and timeouts are a 503 with Retry-After; bugs a 500."""

from __future__ import annotations

import io
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.stub import Stubber
from support import (
    GUARD_TABLE_NAME,
    REGION,
    TABLE_NAME,
    Handler,
    MakeHandler,
    body_of,
    load_event,
    log_records,
    stored_items,
)

from enquiries.api.services import Services
from enquiries.storage.intake_store import DynamoIntakeStore

REQUEST_ID = "Vx3kQjmOLPEEMvw="  # requestContext.requestId of events/submit-json.json


def store_on(client: Any) -> Services:
    """Only a store, on this DynamoDB client: no address key, so no double-submit or rate records."""
    return Services(store=DynamoIntakeStore(TABLE_NAME, GUARD_TABLE_NAME, client_factory=lambda: client))


@pytest.fixture
def handler_with_client(make_handler: MakeHandler) -> Callable[..., Handler]:
    """The real handler whose DynamoDB client is the one given (a Stubber's, or one aimed at a dead port)."""

    def make(client: Any, **settings: Any) -> Handler:
        return make_handler(store_on(client), **settings)

    return make


def _loopback_dynamodb(port: int, **timeouts: float) -> Any:
    """A DynamoDB client for a loopback port, with one attempt and the given timeouts."""
    config = Config(retries={"mode": "standard", "total_max_attempts": 1}, **timeouts)
    endpoint = f"http://127.0.0.1:{port}"
    return boto3.client("dynamodb", region_name=REGION, endpoint_url=endpoint, config=config)


def stubbed_client_failing_with(code: str, http_status: int) -> tuple[Any, Stubber]:
    client = boto3.client("dynamodb", region_name=REGION)
    stubber = Stubber(client)
    stubber.add_client_error("transact_write_items", service_error_code=code, http_status_code=http_status)
    stubber.activate()
    return client, stubber


@pytest.mark.parametrize(
    ("code", "http_status"),
    [
        ("ProvisionedThroughputExceededException", 400),
        ("ThrottlingException", 400),
        ("RequestLimitExceeded", 400),
        ("ServiceUnavailable", 503),
        ("InternalServerError", 500),
    ],
)
def test_submit_storage_throttled_or_down_is_503_with_retry_after(
    handler_with_client: Callable[..., Handler], code: str, http_status: int
) -> None:
    # Given DynamoDB answers the write with a throttling or outage error
    client, stubber = stubbed_client_failing_with(code, http_status)
    handler = handler_with_client(client, CLINIC_PHONE="01632 960000")

    # When an enquiry is submitted
    response = handler(load_event("submit-json.json"))

    # Then the visitor is told to retry later, with the clinic's phone and a reference
    assert response["statusCode"] == 503
    assert int(response["headers"]["Retry-After"]) > 0
    body = body_of(response)
    assert body["error"] == "unavailable"
    assert "01632 960000" in body["message"]
    assert body["reference"] == REQUEST_ID
    stubber.assert_no_pending_responses()


def test_submit_unexpected_aws_error_is_500_with_reference_in_the_log(
    handler_with_client: Callable[..., Handler], log_output: io.StringIO
) -> None:
    # Given DynamoDB refuses the write for a reason that is our bug (e.g. a missing permission)
    client, _ = stubbed_client_failing_with("AccessDeniedException", 400)
    handler = handler_with_client(client)

    # When an enquiry is submitted
    response = handler(load_event("submit-json.json"))

    # Then it is the contract's 500 with a reference that is also in the failure's log line
    assert response["statusCode"] == 500
    body = body_of(response)
    assert body["error"] == "internal_error"
    assert body["reference"] == REQUEST_ID
    assert "Traceback" not in response["body"]
    failures = [record for record in log_records(log_output) if record["message"] == "unexpected failure"]
    assert [record["reference"] for record in failures] == [REQUEST_ID]
    assert failures[0]["error_type"] == "ClientError"


def test_submit_id_already_in_use_is_a_500_and_never_an_overwrite(
    handler: Handler, dynamodb: Any, monkeypatch: pytest.MonkeyPatch, log_output: io.StringIO
) -> None:
    # Given a stored enquiry, and a new one given its id (a ULID collision, which never happens)
    import enquiries.api.app

    taken = "01KAPX4Q7N3Y8Z2M5R6T9V1W0A"
    dynamodb.put_item(TableName=TABLE_NAME, Item={"id": {"S": taken}, "message": {"S": "the first"}})
    monkeypatch.setattr(enquiries.api.app, "new_enquiry_id", lambda: taken)

    # When it is submitted
    response = handler(load_event("submit-json.json"))

    # Then the first enquiry is kept as it was, and the visitor gets the contract's 500 (the log
    # names the cause), never a success for an enquiry that was not stored
    assert response["statusCode"] == 500
    assert body_of(response)["error"] == "internal_error"
    assert stored_items(dynamodb) == [{"id": taken, "message": "the first"}]
    [failure] = [record for record in log_records(log_output) if record["message"] == "unexpected failure"]
    assert failure["error_type"] == "IdAlreadyUsed"


def test_submit_unreachable_storage_is_503(handler_with_client: Callable[..., Handler]) -> None:
    # Given a DynamoDB endpoint where nothing listens
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    handler = handler_with_client(_loopback_dynamodb(port, connect_timeout=0.5))

    # When an enquiry is submitted
    response = handler(load_event("submit-json.json"))

    # Then it is a 503 with Retry-After
    assert response["statusCode"] == 503
    assert "Retry-After" in response["headers"]


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A loopback port that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for connection in accepted:
        connection.close()
    server.close()


def test_submit_storage_timeout_is_503(
    handler_with_client: Callable[..., Handler], silent_server: int
) -> None:
    # Given a DynamoDB that accepts the connection but never answers
    handler = handler_with_client(_loopback_dynamodb(silent_server, read_timeout=0.3))

    # When an enquiry is submitted
    response = handler(load_event("submit-json.json"))

    # Then the visitor gets a 503 rather than waiting for Lambda's timeout
    assert response["statusCode"] == 503
    assert body_of(response)["error"] == "unavailable"


def test_submit_after_a_503_the_resend_is_stored(make_handler: MakeHandler, dynamodb: Any) -> None:
    # Given the table is throttled for one request only
    client, _ = stubbed_client_failing_with("ProvisionedThroughputExceededException", 400)
    throttled = make_handler(store_on(client))
    handler = make_handler()

    # When the first attempt is throttled and the visitor resends
    first = throttled(load_event("submit-json.json"))
    second = handler(load_event("submit-json.json"))

    # Then the first was a 503 and the resend is stored exactly once
    assert first["statusCode"] == 503
    assert second["statusCode"] == 201
    assert [item["id"] for item in stored_items(dynamodb)] == [body_of(second)["id"]]


def test_submit_html_form_post_storage_failure_page_offers_phone(
    handler_with_client: Callable[..., Handler],
) -> None:
    # Given a throttled table and a browser form post
    client, _ = stubbed_client_failing_with("ThrottlingException", 400)
    handler = handler_with_client(client, CLINIC_PHONE="01632 960000")

    # When the form is posted
    response = handler(load_event("submit-urlencoded.json"))

    # Then the page says to try again, offers the phone and the reference
    assert response["statusCode"] == 503
    assert response["headers"]["Content-Type"].startswith("text/html")
    assert "01632 960000" in response["body"]
    assert "Retry-After" in response["headers"]


@pytest.mark.parametrize("reason", ["ThrottlingError", "ProvisionedThroughputExceeded"])
def test_submit_transaction_cancelled_by_throttling_is_503(
    handler_with_client: Callable[..., Handler], reason: str
) -> None:
    # Given DynamoDB cancels the write transaction because one of its items is throttled
    client = boto3.client("dynamodb", region_name=REGION)
    stubber = Stubber(client)
    stubber.add_client_error(
        "transact_write_items",
        service_error_code="TransactionCanceledException",
        http_status_code=400,
        modeled_fields={"CancellationReasons": [{"Code": "None"}, {"Code": reason}]},
    )
    stubber.activate()
    handler = handler_with_client(client)

    # When an enquiry is submitted
    response = handler(load_event("submit-json.json"))

    # Then the visitor is told to try again shortly, not that something broke
    assert response["statusCode"] == 503
    assert "Retry-After" in response["headers"]
