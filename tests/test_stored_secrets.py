"""Secrets the submission function reads (the address-hashing key, the Turnstile key): read at init, a
failure named once in the log, a 503 with Retry-After for each request that needs the secret (never a
500), and healed without a redeploy once the secret can be read again.

AWS errors come from a botocore Stubber (every documented GetSecretValue error, and AccessDenied) or
from moto (a secret deleted or never created); connection errors from an endpoint where nothing listens.
https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_GetSecretValue.html#API_GetSecretValue_Errors
"""

from __future__ import annotations

import io
import socket
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.stub import Stubber
from support import (
    GUARD_TABLE_NAME,
    REGION,
    SECRET_NAME,
    SECRET_VALUE,
    TABLE_NAME,
    MakeHandler,
    body_of,
    load_event,
    log_records,
    stored_items,
)

from enquiries import stored_secret
from enquiries.api.services import Services
from enquiries.client_address import AddressHasher
from enquiries.settings import SettingsError, load_settings
from enquiries.storage.intake_store import DynamoIntakeStore
from enquiries.stored_secret import RETRY_SECONDS, SecretUnavailable, StoredSecret, read_at_init

REQUEST_ID = "Vx3kQjmOLPEEMvw="  # requestContext.requestId of events/submit-json.json
STUB_ARN = f"arn:aws:secretsmanager:{REGION}:123456789012:secret:x-AbCdEf"

# GetSecretValue's documented errors, AccessDenied (IAM or the KMS key) and throttling.
SECRET_ERRORS = [
    ("AccessDeniedException", 400),
    ("ResourceNotFoundException", 400),
    ("DecryptionFailure", 400),
    ("InvalidRequestException", 400),
    ("InvalidParameterException", 400),
    ("ThrottlingException", 400),
    ("InternalServiceError", 500),
]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def stubbed_secrets(*outcomes: str) -> tuple[Any, Stubber]:
    """A Secrets Manager client answering GetSecretValue with each outcome in turn: an error code, or
    a value."""
    client = boto3.client("secretsmanager", region_name=REGION)
    stubber = Stubber(client)
    for outcome in outcomes:
        if outcome.endswith(("Exception", "Failure", "Error")):
            status = 500 if outcome == "InternalServiceError" else 400
            stubber.add_client_error("get_secret_value", service_error_code=outcome, http_status_code=status)
        else:
            stubber.add_response(
                "get_secret_value",
                {
                    "ARN": f"arn:aws:secretsmanager:{REGION}:123456789012:secret:x-AbCdEf",
                    "SecretString": outcome,
                },
            )
    stubber.activate()
    return client, stubber


def unavailable_lines(log_output: io.StringIO) -> list[dict[str, Any]]:
    return [r for r in log_records(log_output) if r.get("message") == "secret unreadable"]


# --- through the real handler ------------------------------------------------------------------------


@pytest.mark.parametrize(("code", "http_status"), SECRET_ERRORS)
def test_submit_unreadable_address_key_is_503_with_retry_after(
    make_handler: MakeHandler,
    log_output: io.StringIO,
    code: str,
    http_status: int,
) -> None:
    # Given Secrets Manager refuses the address-hashing key with this error
    client, _ = stubbed_secrets(code)
    services = Services(
        store=DynamoIntakeStore(TABLE_NAME, GUARD_TABLE_NAME),
        hasher=AddressHasher(SECRET_NAME, client_factory=lambda: client),
    )
    handler = make_handler(services, CLINIC_PHONE="01632 960000")

    # When an enquiry is submitted
    response = handler(load_event("submit-json.json"))

    # Then the visitor is told to try again later, with the clinic's phone and a reference (never a
    # 500), and the log names the setting and AWS's error code
    assert response["statusCode"] == 503
    assert int(response["headers"]["Retry-After"]) > 0
    body = body_of(response)
    assert body["error"] == "unavailable"
    assert "01632 960000" in body["message"]
    assert body["reference"] == REQUEST_ID
    [failure] = unavailable_lines(log_output)
    assert (failure["setting"], failure["aws_error"]) == ("CLIENT_ADDRESS_SECRET_ARN", code)
    [request] = [r for r in log_records(log_output) if r.get("message") == "request handled"]
    assert request["reason"] == f"secret:CLIENT_ADDRESS_SECRET_ARN:{code}"


def test_submit_deleted_address_key_fails_at_init_once_then_503_until_restored(
    make_handler: MakeHandler,
    dynamodb: Any,
    monkeypatch: pytest.MonkeyPatch,
    log_output: io.StringIO,
) -> None:
    # Given the address-hashing secret scheduled for deletion before the function starts
    secrets = boto3.client("secretsmanager", region_name=REGION)
    secrets.delete_secret(SecretId=SECRET_NAME, RecoveryWindowInDays=7)
    handler = make_handler()
    at_init = unavailable_lines(log_output)

    # When enquiries come, the secret is restored, and more come once the retry interval has passed
    before = [handler(load_event("submit-json.json")) for _ in range(3)]
    secrets.restore_secret(SecretId=SECRET_NAME)
    monkeypatch.setattr(stored_secret, "RETRY_SECONDS", 0)
    after = handler(load_event("submit-json.json"))

    # Then init logged one line naming the setting and the error, each enquiry got a 503 with
    # Retry-After (never a 500), and the restored secret served the next one without a redeploy
    assert [(r["level"], r["setting"], r["aws_error"]) for r in at_init] == [
        ("ERROR", "CLIENT_ADDRESS_SECRET_ARN", "InvalidRequestException")
    ]
    assert [r["statusCode"] for r in before] == [503, 503, 503]
    assert all(int(r["headers"]["Retry-After"]) > 0 for r in before)
    assert len(unavailable_lines(log_output)) == 1
    assert after["statusCode"] == 201
    assert len(stored_items(dynamodb)) == 1
    assert SECRET_VALUE not in log_output.getvalue()


def test_submit_missing_turnstile_secret_is_named_at_init_and_503(
    make_handler: MakeHandler, dynamodb: Any, log_output: io.StringIO
) -> None:
    # Given a Turnstile secret ARN that names no secret
    arn = f"arn:aws:secretsmanager:{REGION}:123456789012:secret:enquiries/turnstile-AbCdEf"
    handler = make_handler(TURNSTILE_SECRET_ARN=arn)

    # When a valid enquiry with a token comes
    event = load_event("submit-json.json")
    event["body"] = event["body"][:-1] + ', "cf-turnstile-response": "XXXX.DUMMY.TOKEN.XXXX"}'
    response = handler(event)

    # Then the failure was named at init, and the visitor gets a 503, not a 500 or a captcha error
    [failure] = unavailable_lines(log_output)
    assert (failure["setting"], failure["aws_error"]) == ("TURNSTILE_SECRET_ARN", "ResourceNotFoundException")
    assert response["statusCode"] == 503
    assert body_of(response)["error"] == "unavailable"
    assert stored_items(dynamodb) == []


def test_submit_secret_is_read_at_init_not_on_the_first_request(
    make_handler: MakeHandler, dynamodb: Any
) -> None:
    # Given a function started while its address-hashing secret could be read
    handler = make_handler()

    # When the secret then becomes unreadable, and an enquiry comes
    boto3.client("secretsmanager", region_name=REGION).delete_secret(
        SecretId=SECRET_NAME, ForceDeleteWithoutRecovery=True
    )
    response = handler(load_event("submit-json.json"))

    # Then the key read at init serves it (once per container: no call on the request's path)
    assert response["statusCode"] == 201


def test_submit_unreadable_address_key_still_reports_field_errors(
    make_handler: MakeHandler, dynamodb: Any
) -> None:
    # Given the address-hashing secret is gone when the function starts
    boto3.client("secretsmanager", region_name=REGION).delete_secret(
        SecretId=SECRET_NAME, ForceDeleteWithoutRecovery=True
    )
    handler = make_handler()

    # When an enquiry with fields to fix comes
    response = handler(load_event("submit-invalid-fields.json"))

    # Then the visitor still learns what to fix: the key is needed only once the fields are valid
    assert response["statusCode"] == 422
    assert body_of(response)["error"] == "validation_failed"


def test_settings_refuse_both_turnstile_secrets_naming_them() -> None:
    # Given both the plain Turnstile key and the ARN of a secret holding it
    environ = {"TABLE_NAME": "t", "TURNSTILE_SECRET": "0x4AAA-key", "TURNSTILE_SECRET_ARN": "arn:x"}

    # When settings are loaded
    with pytest.raises(SettingsError) as raised:
        load_settings(environ)

    # Then the error names both variables, and not the key
    assert "TURNSTILE_SECRET and TURNSTILE_SECRET_ARN" in str(raised.value)
    assert "0x4AAA-key" not in str(raised.value)


# --- the stored secret itself ------------------------------------------------------------------------


@pytest.mark.parametrize(("code", "http_status"), SECRET_ERRORS)
def test_stored_secret_error_is_secret_unavailable_naming_setting_and_code(
    log_output: io.StringIO, code: str, http_status: int
) -> None:
    # Given Secrets Manager answers with this error
    client, stubber = stubbed_secrets(code)
    secret = StoredSecret("CLIENT_ADDRESS_SECRET_ARN", "arn:x", client_factory=lambda: client)

    # When the value is asked for
    with pytest.raises(SecretUnavailable) as raised:
        secret.value()

    # Then the reason names the setting and the code, and the one log line says what to check
    assert raised.value.reason == f"secret:CLIENT_ADDRESS_SECRET_ARN:{code}"
    [line] = unavailable_lines(log_output)
    assert line["level"] == "ERROR"
    assert line["hint"]
    stubber.assert_no_pending_responses()


def test_stored_secret_unreachable_endpoint_is_secret_unavailable(aws_env: dict[str, str]) -> None:
    # Given a Secrets Manager endpoint where nothing listens
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[1]
    client = boto3.client(
        "secretsmanager",
        region_name=REGION,
        endpoint_url=f"http://127.0.0.1:{dead}",
        config=Config(connect_timeout=1, retries={"mode": "standard", "total_max_attempts": 1}),
    )
    secret = StoredSecret("CLIENT_ADDRESS_SECRET_ARN", "arn:x", client_factory=lambda: client)

    # When the value is asked for
    with pytest.raises(SecretUnavailable) as raised:
        secret.value()

    # Then it is unavailable, named by the connection error
    assert raised.value.reason == "secret:CLIENT_ADDRESS_SECRET_ARN:EndpointConnectionError"


def test_stored_secret_binary_only_is_unavailable() -> None:
    # Given a secret that holds bytes (SecretBinary), not text
    client = boto3.client("secretsmanager", region_name=REGION)
    stubber = Stubber(client)
    stubber.add_response("get_secret_value", {"ARN": STUB_ARN, "SecretBinary": b"\x00\x01"})
    stubber.activate()
    secret = StoredSecret("TURNSTILE_SECRET_ARN", "arn:x", client_factory=lambda: client)

    # When the value is asked for
    with pytest.raises(SecretUnavailable) as raised:
        secret.value()

    # Then it is unavailable, named
    assert raised.value.reason == "secret:TURNSTILE_SECRET_ARN:NoSecretString"


def test_stored_secret_retries_at_most_once_per_interval_and_heals(log_output: io.StringIO) -> None:
    # Given a secret that cannot be read, then can
    client, stubber = stubbed_secrets("AccessDeniedException", "AccessDeniedException", "the-key")
    clock = Clock()
    secret = StoredSecret("CLIENT_ADDRESS_SECRET_ARN", "arn:x", client_factory=lambda: client, clock=clock)

    # When it is asked for again and again, as requests come, while time passes
    outcomes = []
    for seconds in (0, 1, RETRY_SECONDS - 2, RETRY_SECONDS, RETRY_SECONDS * 2 + 1, 0):
        clock.now += seconds
        try:
            outcomes.append(secret.value())
        except SecretUnavailable as unavailable:
            outcomes.append(unavailable.reason)

    # Then AWS is asked once per interval at most (three calls for six asks), the restored value is
    # served, one error line was logged for the outage and one line when it healed
    denied = "secret:CLIENT_ADDRESS_SECRET_ARN:AccessDeniedException"
    assert outcomes == [denied, denied, denied, denied, "the-key", "the-key"]
    stubber.assert_no_pending_responses()
    messages = [r["message"] for r in log_records(log_output)]
    assert messages == ["secret unreadable", "secret readable again"]
    assert "the-key" not in log_output.getvalue()


def test_stored_secret_retry_interval_is_shorter_than_retry_after() -> None:
    # Given the Retry-After a 503 sends
    from enquiries.api.errors import RETRY_AFTER_SECONDS

    # Then a visitor who waits as told always gets a fresh read of the secret
    assert RETRY_SECONDS < RETRY_AFTER_SECONDS


def test_read_at_init_leaves_secrets_past_its_budget_to_the_first_request() -> None:
    # Given two secrets, the first of which takes longer than init's budget to read
    clock = Clock()
    slow_client, slow = stubbed_secrets("first-key")
    fast_client, fast = stubbed_secrets("second-key")

    def slow_read() -> Any:
        clock.now += 5
        return slow_client

    first = StoredSecret("CLIENT_ADDRESS_SECRET_ARN", "arn:1", client_factory=slow_read, clock=clock)
    second = StoredSecret("TURNSTILE_SECRET_ARN", "arn:2", client_factory=lambda: fast_client, clock=clock)

    # When init reads them, within its budget
    read_at_init([first, second], clock=clock)

    # Then the first was read, the second was not (Lambda's init has 10 s), and is read when needed
    slow.assert_no_pending_responses()
    with pytest.raises(AssertionError):
        fast.assert_no_pending_responses()
    assert second.value() == "second-key"
