"""Enquiries are health information: nothing a visitor typed may reach a log line, whatever happens."""

from __future__ import annotations

import base64
import io
import sys
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import boto3
import pytest
from botocore.stub import Stubber
from conftest import GUARD_TABLE_NAME, REGION, TABLE_NAME, Handler, load_event, log_records, with_json_body

from enquiries.api.app import build_app
from enquiries.settings import load_settings
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


@pytest.mark.parametrize("code", ["ThrottlingException", "AccessDeniedException"])
def test_logs_never_contain_enquiry_content_when_storage_fails(
    make_handler: Callable[..., Handler], monkeypatch: pytest.MonkeyPatch, log_output: io.StringIO, code: str
) -> None:
    # Given a storage failure (503) or an unexpected one (500)
    handler = make_handler()
    client = boto3.client("dynamodb", region_name=REGION)
    stubber = Stubber(client)
    stubber.add_client_error("transact_write_items", service_error_code=code, http_status_code=400)
    stubber.activate()
    app = build_app(
        load_settings(), DynamoIntakeStore(TABLE_NAME, GUARD_TABLE_NAME, client_factory=lambda: client)
    )
    monkeypatch.setattr(sys.modules["enquiries.api.submit"], "app", app)

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
