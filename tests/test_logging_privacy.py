"""Enquiries are health information: nothing a visitor typed may reach a log line, whatever happens."""

from __future__ import annotations

import base64
import io
import json
import logging
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import boto3
import pytest
from botocore.stub import Stubber
from support import (
    EVENTS,
    GUARD_TABLE_NAME,
    REGION,
    TABLE_NAME,
    FakeContext,
    Handler,
    MakeHandler,
    MakeNotifier,
    load_event,
    log_records,
    with_json_body,
)

from enquiries.api.services import Services
from enquiries.storage.intake_store import DynamoIntakeStore

NAME = "Philippa Quennell-Tarrant"
EMAIL = "pq.tarrant.7731@example.org"
PHONE = "07700 900461"
PHONE_E164 = "+447700900461"
MESSAGE = "Sciatica flaring down my left leg since Tuesday, pain 8 of 10, zygapophyseal"
SECRETS = [NAME, EMAIL, PHONE, PHONE_E164, MESSAGE, "Quennell", "pq.tarrant", "900461", "zygapophyseal"]
DISTINCTIVE = {"name": NAME, "email": EMAIL, "phone": PHONE, "message": MESSAGE, "consent": "yes"}


def form_event(fields: dict[str, str]) -> dict[str, Any]:
    return load_event("submit-urlencoded.json", body=base64.b64encode(urlencode(fields).encode()).decode())


# Visitor text in the places of a multipart body that parsers read and may log: part header names
# and values, filenames, and the parameters of the part's and of the request's Content-Type.
HEADER_SECRET = "lumbosacral-radiculopathy-4417"
SECRETS.append(HEADER_SECRET)
BOUNDARY = "----WebKitFormBoundary7MA4YWxkTrZu0gW"


def multipart_event(
    parts: list[tuple[str, str]], content_type: str = f"multipart/form-data; boundary={BOUNDARY}"
) -> dict[str, Any]:
    """A multipart post from (part headers, part body) pairs."""
    body = "".join(f"--{BOUNDARY}\r\n{headers}\r\n\r\n{value}\r\n" for headers, value in parts)
    encoded = base64.b64encode(f"{body}--{BOUNDARY}--\r\n".encode()).decode()
    return load_event("submit-multipart.json", body=encoded, headers={"content-type": content_type})


def disposition(name: str, extra: str = "") -> str:
    return f'Content-Disposition: form-data; name="{name}"{extra}'


def distinctive_parts(**extra_headers: str) -> list[tuple[str, str]]:
    """The distinctive enquiry as parts; `extra_headers` adds a header line to the named field's part."""
    return [
        (disposition(name) + (f"\r\n{extra_headers[name]}" if name in extra_headers else ""), value)
        for name, value in DISTINCTIVE.items()
    ]


MULTIPART_SCENARIOS: dict[str, Callable[[], dict[str, Any]]] = {
    "part header value": lambda: multipart_event(
        distinctive_parts(message=f"Content-Transfer-Encoding: {HEADER_SECRET}")
    ),
    "part header name": lambda: multipart_event(
        distinctive_parts(message=f"X-{HEADER_SECRET}: {HEADER_SECRET}")
    ),
    "part content type parameters": lambda: multipart_event(
        distinctive_parts(message=f"Content-Type: text/x-{HEADER_SECRET}; charset={HEADER_SECRET}")
    ),
    "filename": lambda: multipart_event(
        [*distinctive_parts(), (disposition("scan", f'; filename="{HEADER_SECRET}.pdf"'), MESSAGE)]
    ),
    "request content type parameters": lambda: multipart_event(
        distinctive_parts(), f"multipart/form-data; boundary={BOUNDARY}; note={HEADER_SECRET}"
    ),
    "request content type unknown": lambda: load_event(
        "submit-multipart.json", headers={"content-type": f"multipart/x-{HEADER_SECRET}; boundary={BOUNDARY}"}
    ),
    "part without a name": lambda: multipart_event(
        [(f"Content-Disposition: form-data; {HEADER_SECRET}", MESSAGE)]
    ),
}


SCENARIOS: dict[str, Callable[[], dict[str, Any]]] = {
    "stored json": lambda: with_json_body("submit-json.json", DISTINCTIVE),
    "stored form": lambda: form_event(DISTINCTIVE),
    "invalid fields": lambda: with_json_body(
        "submit-json.json", dict(DISTINCTIVE, email=f"{NAME} {MESSAGE}")
    ),
    "unknown field named with content": lambda: with_json_body(
        "submit-json.json", dict(DISTINCTIVE, **{MESSAGE: NAME})
    ),
    "malformed json": lambda: load_event("submit-json.json", body='{"name": "' + NAME + '", ' + MESSAGE),
    "disallowed origin": lambda: with_json_body(
        "submit-json.json", DISTINCTIVE, headers={"origin": "https://x.example"}
    ),
}


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_logs_never_contain_enquiry_content(handler: Handler, log_output: io.StringIO, scenario: str) -> None:
    # Given a submission carrying distinctive personal and health details
    event = SCENARIOS[scenario]()

    # When it is handled
    handler(event)

    # Then something was logged, and none of those details appear in it
    logged = log_output.getvalue()
    assert log_records(log_output), "the request should have been logged"
    for secret in SECRETS:
        assert secret not in logged


@pytest.fixture
def every_record(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[logging.LogRecord]]:
    """Every log record any logger makes, at every level, as the handlers would get it; with every
    switch an operator could turn on to log more (Lambda's and Powertools' levels, Powertools' event
    logging and debug mode) turned on."""
    for name, value in {
        "AWS_LAMBDA_LOG_LEVEL": "DEBUG",
        "POWERTOOLS_LOG_LEVEL": "DEBUG",
        "POWERTOOLS_LOGGER_LOG_EVENT": "true",
        "POWERTOOLS_DEV": "true",
        "POWERTOOLS_DEBUG": "true",
        "POWERTOOLS_EVENT_HANDLER_DEBUG": "true",
    }.items():
        monkeypatch.setenv(name, value)
    records: list[logging.LogRecord] = []
    make_record = logging.getLogRecordFactory()

    def capture(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        records.append(record)
        return record

    loggers = [
        logging.getLogger(),
        *(lg for lg in logging.Logger.manager.loggerDict.values() if isinstance(lg, logging.Logger)),
    ]
    saved = [(lg, lg.level, lg.disabled) for lg in loggers]
    disabled_below = logging.root.manager.disable
    logging.disable(logging.NOTSET)
    for lg in loggers:
        lg.setLevel(logging.DEBUG)
        lg.disabled = False
    logging.setLogRecordFactory(capture)
    try:
        yield records
    finally:
        logging.setLogRecordFactory(make_record)
        logging.disable(disabled_below)
        for lg, level, disabled in saved:
            lg.setLevel(level)
            lg.disabled = disabled


def everything_in(record: logging.LogRecord) -> str:
    """All a record holds that any formatter could write: its message and every attribute."""
    formatted = logging.Formatter().formatException(record.exc_info) if record.exc_info else ""
    return "\n".join([record.getMessage(), formatted, repr(vars(record))])


@pytest.mark.parametrize("scenario", [*SCENARIOS, *MULTIPART_SCENARIOS])
def test_logs_of_every_logger_at_every_level_never_contain_enquiry_content(
    make_handler: MakeHandler,
    every_record: list[logging.LogRecord],
    capsys: pytest.CaptureFixture[str],
    scenario: str,
) -> None:
    # Given every logger at DEBUG and every logging switch on, and a submission carrying distinctive
    # details in its fields, its multipart headers, filenames or content type parameters
    handler = make_handler()
    event = ({**SCENARIOS, **MULTIPART_SCENARIOS})[scenario]()

    # When it is handled
    handler(event)

    # Then records were made, and none of them (the libraries' included: the submission path's AWS
    # client, aws_json, logs nothing at all), nor anything printed, holds any of those details
    printed = capsys.readouterr()
    assert every_record, "records were expected"
    for record in every_record:
        for secret in SECRETS:
            assert secret not in everything_in(record), (record.name, record.levelname)
    for secret in SECRETS:
        assert secret not in printed.out + printed.err


def test_logs_of_a_third_party_logger_keep_where_it_logged_and_what_failed(
    every_record: list[logging.LogRecord],
) -> None:
    # Given a library that logs visitor text with an exception
    try:
        raise ValueError(MESSAGE)
    except ValueError:
        logging.getLogger("somelibrary.parser").exception("could not parse %r", MESSAGE)

    # When its record is read
    [record] = [record for record in every_record if record.name == "somelibrary.parser"]

    # Then it says which logger, where and what kind of error, and holds none of the text
    assert "somelibrary.parser" in record.getMessage()
    assert "test_logging_privacy.py:" in record.getMessage()
    assert "ValueError" in record.getMessage()
    assert record.levelno == logging.ERROR
    assert MESSAGE not in everything_in(record)


@pytest.mark.parametrize("code", ["ThrottlingException", "AccessDeniedException"])
def test_logs_never_contain_enquiry_content_when_storage_fails(
    make_handler: MakeHandler, log_output: io.StringIO, code: str
) -> None:
    # Given a storage failure (503) or an unexpected one (500)
    client = boto3.client("dynamodb", region_name=REGION)
    stubber = Stubber(client)
    stubber.add_client_error("transact_write_items", service_error_code=code, http_status_code=400)
    stubber.activate()
    handler = make_handler(
        Services(store=DynamoIntakeStore(TABLE_NAME, GUARD_TABLE_NAME, client_factory=lambda: client))
    )

    # When a distinctive enquiry is submitted
    response = handler(with_json_body("submit-json.json", DISTINCTIVE))

    # Then the failure is logged without any of its content
    assert response["statusCode"] in {500, 503}
    logged = log_output.getvalue()
    assert code in logged or "ClientError" in logged
    for secret in SECRETS:
        assert secret not in logged


def test_logs_have_one_line_per_request_with_id_outcome_and_duration(
    handler: Handler, log_output: io.StringIO
) -> None:
    # Given a stored enquiry
    response = handler(load_event("submit-json.json"))

    # When its log is read
    [line] = [record for record in log_records(log_output) if record["message"] == "request handled"]

    # Then the line says which enquiry, what happened and how long it took
    assert line["status"] == 201
    assert line["outcome"] == "stored"
    assert line["enquiry_id"] in response["body"]
    assert line["duration_ms"] >= 0
    assert line["correlation_id"] == "Vx3kQjmOLPEEMvw="


def test_logs_name_only_the_enquiries_path(handler: Handler, log_output: io.StringIO) -> None:
    # Given a request to a path a visitor or a bot made up, holding an address and a symptom
    event = load_event("unknown-path.json")
    event["rawPath"] = event["requestContext"]["http"]["path"] = "/jane.doe@example.com/back-pain"

    # When it is answered and its log is read
    response = handler(event)
    [line] = [record for record in log_records(log_output) if record["message"] == "request handled"]

    # Then it is a 404, and the log says another path was asked for, not which
    assert response["statusCode"] == 404
    assert line["path"] == "(other)"
    assert "jane.doe" not in log_output.getvalue()
    assert "back-pain" not in log_output.getvalue()


def test_notifier_logs_of_every_logger_at_every_level_never_contain_enquiry_content(
    dynamodb: Any,
    make_notifier: MakeNotifier,
    lambda_context: Any,
    every_record: list[logging.LogRecord],
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given every logger at DEBUG and every logging switch on, and a stored enquiry's stream record
    from enquiries.notify.mailer import sesv2_client

    boto3.client("ses", region_name=REGION).verify_email_identity(EmailAddress="enquiries@clinic.example")
    notifier = make_notifier(CLINIC_EMAIL="frontdesk@clinic.example", SENDER_EMAIL="enquiries@clinic.example")
    event = json.loads((EVENTS / "stream-insert.json").read_text())
    image = event["Records"][0]["dynamodb"]["NewImage"]
    dynamodb.put_item(TableName=TABLE_NAME, Item=image)
    enquiry_text = ["Jane Doe", "jane.doe@example.com", "+448009875336", "half marathon", "assessment"]

    # When the notifier emails it (botocore logs each call's parameters at DEBUG: the email itself)
    result = notifier.lambda_handler(event, lambda_context)
    sesv2_client.cache_clear()

    # Then it was sent, and no record from any logger, nor anything printed, holds its content
    printed = capsys.readouterr()
    assert result == {"batchItemFailures": []}
    for record in every_record:
        for text in enquiry_text:
            assert text not in everything_in(record), (record.name, record.levelname)
    for text in enquiry_text:
        assert text not in printed.out + printed.err


def test_logs_of_each_handler_carry_its_own_function_name_when_both_run_in_one_process(
    make_handler: MakeHandler, make_notifier: MakeNotifier, log_output: io.StringIO
) -> None:
    # Given both handlers in one process, as the local server runs them, and a submission during
    # which the notifier runs in another thread (the stream poller's)
    notifier = make_notifier(CLINIC_EMAIL="frontdesk@clinic.example", SENDER_EMAIL="enquiries@clinic.example")

    def clock_while_the_notifier_runs() -> datetime:
        context = FakeContext(function_name="NotifyEnquiryFunction")
        poller = threading.Thread(
            target=notifier.lambda_handler, args=(load_event("stream-modify.json"), context)
        )
        poller.start()
        poller.join()
        return datetime.now(UTC)

    handler = make_handler(clock=clock_while_the_notifier_runs)

    # When an enquiry is submitted
    response = handler(load_event("submit-json.json"))

    # Then its log line names the submission function and its request, and the notifier's its own
    lines = log_records(log_output)
    [submitted] = [record for record in lines if record["message"] == "request handled"]
    [skipped] = [record for record in lines if record["message"] == "record skipped"]
    assert response["statusCode"] == 201
    assert submitted["function_name"] == "SubmitEnquiryFunction"
    assert submitted["correlation_id"] == "Vx3kQjmOLPEEMvw="
    assert skipped["function_name"] == "NotifyEnquiryFunction"
    assert "correlation_id" not in skipped


def test_logs_name_a_refused_origin_and_the_setting_that_admits_it(
    handler: Handler, log_output: io.StringIO
) -> None:
    # Given a post from a site the API does not allow (its Origin written in capitals, with a port)
    event = load_event("submit-disallowed-origin.json")
    event["headers"]["origin"] = "HTTPS://Evil.Example:443"

    # When it is refused
    response = handler(event)

    # Then the log line names the site, as browsers write it, and the setting to add it to
    assert response["statusCode"] == 403
    [line] = [record for record in log_records(log_output) if record["message"] == "request handled"]
    assert line["refused_origin"] == "https://evil.example"
    assert line["allowed_by"] == "ALLOWED_ORIGINS"


def test_logs_never_copy_an_origin_header_that_is_not_one(handler: Handler, log_output: io.StringIO) -> None:
    # Given an Origin header that carries words, not a site
    event = load_event("submit-disallowed-origin.json")
    event["headers"]["origin"] = "my back hurts since the fall"

    # When it is refused
    response = handler(event)

    # Then the log line says only that it was no origin
    assert response["statusCode"] == 403
    assert "back hurts" not in log_output.getvalue()
    [line] = [record for record in log_records(log_output) if record["message"] == "request handled"]
    assert line["refused_origin"] == "(not an origin)"


def test_terminal_filter_drops_library_info_but_shows_its_warnings_withheld() -> None:
    from enquiries.log import WITHHELD, announces_more_than_a_withholding

    # Given a terminal's handler with the filter, and a library that logs request content
    stream = io.StringIO()
    terminal = logging.StreamHandler(stream)
    terminal.addFilter(announces_more_than_a_withholding)
    library, own = logging.getLogger("somelibrary.client"), logging.getLogger("devserver.test")
    for each in (library, own):
        each.addHandler(terminal)
        each.setLevel(logging.INFO)
    try:
        # When it logs at INFO and at WARNING, and our own logger at INFO
        library.info("sending %s", MESSAGE)
        library.warning("failed to send %s", MESSAGE)
        own.info("POST /enquiries 201")
    finally:
        for each in (library, own):
            each.removeHandler(terminal)
            each.setLevel(logging.NOTSET)
    # Then only the warning shows, withheld, with our own line; the content never does
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("somelibrary.client (")
    assert lines[0].endswith(WITHHELD)
    assert lines[1] == "POST /enquiries 201"
    assert MESSAGE not in stream.getvalue()
