"""Shared fixtures: events from events/, a moto-backed table built from template.yaml, the real handler."""

from __future__ import annotations

import copy
import importlib
import io
import json
import logging
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from devserver.environment import SETTING_NAMES
from emulator import moto_transactions
from emulator.template_tables import create_table_from_template

# DynamoDB transactions are atomic and isolated; moto's are not unless patched (see the module).
moto_transactions.install()

REPO = Path(__file__).resolve().parent.parent
EVENTS = REPO / "events"
TABLE_NAME = "enquiries-test"
GUARD_TABLE_NAME = "enquiries-guard-test"
SECRET_NAME = "enquiries-client-address-key"
REGION = "eu-west-2"
ALLOWED_ORIGIN = "https://www.example-clinic.co.uk"

BASE_ENV = {
    "TABLE_NAME": TABLE_NAME,
    "GUARD_TABLE_NAME": GUARD_TABLE_NAME,
    "CLIENT_ADDRESS_SECRET_ARN": SECRET_NAME,
    "ALLOWED_ORIGINS": ALLOWED_ORIGIN,
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
    "POWERTOOLS_SERVICE_NAME": "enquiries",
}
# Settings a developer's shell might carry that would change what the tests see.
_CLEARED = (*SETTING_NAMES, "AWS_ENDPOINT_URL", "AWS_PROFILE")


# Content types the fuzzers send: the three the contract accepts, near misses and nonsense.
FUZZ_MEDIA_TYPES = (
    "application/json",
    "application/x-www-form-urlencoded",
    "multipart/form-data",
    "text/plain",
    "application/xml",
    "application/octet-stream",
    "text/html",
    "application/jsonx",
    "multipart/mixed",
    "",
    " ",
)

# The contract's Responses table: the error code each status carries (the tests' own copy, so that
# the code and the OpenAPI document are checked against the contract, not against themselves).
CONTRACT_ERRORS = {
    400: "bad_request",
    403: "origin_not_allowed",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_failed",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}


def load_event(name: str, **changes: Any) -> dict[str, Any]:
    """An event from events/, with top-level keys replaced and `headers=` merged (None deletes)."""
    event: dict[str, Any] = json.loads((EVENTS / name).read_text())
    headers = changes.pop("headers", None)
    event.update(changes)
    for key, value in (headers or {}).items():
        if value is None:
            event["headers"].pop(key, None)
        else:
            event["headers"][key] = value
    return copy.deepcopy(event)


def with_json_body(name: str, body: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A JSON event from events/ with another body."""
    return load_event(name, body=json.dumps(body), isBase64Encoded=False, **changes)


@dataclass
class FakeContext:
    function_name: str = "SubmitEnquiryFunction"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:eu-west-2:123456789012:function:SubmitEnquiryFunction"
    aws_request_id: str = "6f1c2b9e-0d4a-4b8e-9a59-3f0e2f4c1a77"
    # A fresh invocation of the notifier, whose timeout (30 s) is the longer of the two functions'.
    remaining_millis: int = 30_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_millis


@pytest.fixture
def lambda_context() -> FakeContext:
    return FakeContext()


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name in _CLEARED:
        monkeypatch.delenv(name, raising=False)
    for name, value in BASE_ENV.items():
        monkeypatch.setenv(name, value)
    return dict(BASE_ENV)


@pytest.fixture
def dynamodb(aws_env: dict[str, str]) -> Iterator[Any]:
    """A moto DynamoDB with the enquiries and guard tables created from template.yaml's own
    properties, and the address-hashing secret the template would create."""
    from enquiries.aws_clients import aws_session, dynamodb_client, secretsmanager_client

    with mock_aws():
        aws_session.cache_clear()
        dynamodb_client.cache_clear()
        secretsmanager_client.cache_clear()
        client = boto3.client("dynamodb", region_name=REGION)
        create_table_from_template(client, TABLE_NAME)
        create_table_from_template(client, GUARD_TABLE_NAME, logical_id="GuardTable")
        boto3.client("secretsmanager", region_name=REGION).create_secret(
            Name=SECRET_NAME, SecretString="test-address-hash-key"
        )
        yield client
        aws_session.cache_clear()
        dynamodb_client.cache_clear()
        secretsmanager_client.cache_clear()


def stored_items(client: Any) -> list[dict[str, Any]]:
    from boto3.dynamodb.types import TypeDeserializer

    deserializer = TypeDeserializer()
    items = client.scan(TableName=TABLE_NAME)["Items"]
    return [{key: deserializer.deserialize(value) for key, value in item.items()} for item in items]


Handler = Callable[[dict[str, Any]], dict[str, Any]]


@pytest.fixture
def make_handler(
    dynamodb: Any, monkeypatch: pytest.MonkeyPatch, lambda_context: FakeContext
) -> Callable[..., Handler]:
    """The real submission handler, imported afresh with extra environment settings."""

    def make(**settings: str) -> Handler:
        for name, value in settings.items():
            monkeypatch.setenv(name, value)
        # Imported or reloaded: either way its init (settings, secrets) runs once, as on Lambda.
        name = "enquiries.api.submit"
        module = importlib.reload(sys.modules[name]) if name in sys.modules else importlib.import_module(name)
        return lambda event: module.lambda_handler(event, lambda_context)

    return make


@pytest.fixture
def handler(make_handler: Callable[..., Handler]) -> Handler:
    return make_handler()


def body_of(response: dict[str, Any]) -> Any:
    return json.loads(response["body"])


@pytest.fixture
def log_output() -> Iterator[io.StringIO]:
    """Everything the functions log, exactly as Powertools formats it (JSON lines)."""
    from enquiries.log import logger

    stream = io.StringIO()
    capture = logging.StreamHandler(stream)
    capture.setFormatter(logger.registered_formatter)
    stdlib_logger = logging.getLogger(logger.name)
    stdlib_logger.addHandler(capture)
    yield stream
    stdlib_logger.removeHandler(capture)


def log_records(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]
