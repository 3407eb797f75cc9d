"""The AWS plumbing every caller shares (enquiries/aws.py): one classifier of failed calls, used
alike by DynamoDB's callers, the SES mailer and the secrets; the call wrapper; the item codec."""

from __future__ import annotations

import json
from email.message import EmailMessage
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError, ReadTimeoutError
from botocore.stub import Stubber
from support import EVENTS, REGION

from enquiries.aws import (
    StorageUnavailable,
    attribute_map,
    aws_call,
    classify,
    plain_item,
)
from enquiries.notify.mailer import SendFailed, SesMailer
from enquiries.stored_secret import SecretUnavailable, StoredSecret

# (AWS error code, HTTP status, transient?)
FAILURES = [
    ("ThrottlingException", 400, True),
    ("ProvisionedThroughputExceededException", 400, True),
    ("RequestLimitExceeded", 400, True),
    ("TooManyRequestsException", 429, True),
    ("Throttling", 400, True),
    ("InternalServerError", 500, True),
    ("ServiceUnavailable", 503, True),
    ("InternalServiceError", 400, True),
    ("AnythingElse", 502, True),
    ("AccessDeniedException", 400, False),
    ("ValidationException", 400, False),
    ("MessageRejected", 400, False),
    ("ResourceNotFoundException", 400, False),
]


def client_error(code: str, status: int, operation: str = "GetItem") -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}}, operation
    )


class Failing:
    """A client whose every call raises `error`."""

    def __init__(self, error: Exception) -> None:
        self._error = error

    def __getattr__(self, name: str) -> Any:
        def call(**request: Any) -> Any:
            raise self._error

        return call


# --- the classifier -----------------------------------------------------------------------------


@pytest.mark.parametrize(("code", "status", "transient"), FAILURES)
def test_classify_aws_answer_is_transient_by_its_code_or_a_5xx(
    code: str, status: int, transient: bool
) -> None:
    # Given an error AWS answered with
    # When it is classified
    failure = classify(client_error(code, status))

    # Then its code is kept for the log, and it is transient exactly when a retry may pass
    assert failure is not None
    assert (failure.code, failure.transient) == (code, transient)


@pytest.mark.parametrize(
    "error",
    [EndpointConnectionError(endpoint_url="https://dynamodb.example"), ReadTimeoutError(endpoint_url="x")],
)
def test_classify_network_failure_is_transient(error: Exception) -> None:
    # When a call never got AWS's answer
    failure = classify(error)

    # Then it is transient, named by botocore's exception
    assert failure is not None
    assert failure.transient
    assert failure.code == type(error).__name__


@pytest.mark.parametrize("error", [NoCredentialsError(), ValueError("a bug"), KeyError("Item")])
def test_classify_what_is_not_a_failed_call_is_none(error: Exception) -> None:
    # Then a missing credential or a bug is left to propagate, never taken for AWS failing
    assert classify(error) is None


@pytest.mark.parametrize(("code", "status", "transient"), FAILURES)
def test_every_aws_caller_reads_a_failure_the_same_way(
    aws_env: dict[str, str], code: str, status: int, transient: bool
) -> None:
    # Given the same AWS error, met by a DynamoDB call, an SES send and a secret's read
    error = client_error(code, status)
    message = EmailMessage()
    message["From"] = "enquiries@clinic.example"
    message["To"] = "frontdesk@clinic.example"
    message.set_content("x")

    # When each caller meets it
    with pytest.raises((StorageUnavailable, ClientError)) as stored:
        aws_call(Failing(error), "get_item", TableName="t", Key={})
    with pytest.raises(SendFailed) as sent:
        SesMailer(client_factory=lambda: Failing(error)).send(message)
    with pytest.raises(SecretUnavailable) as read:
        StoredSecret("CLIENT_ADDRESS_SECRET_ARN", "arn", client_factory=lambda: Failing(error)).value()

    # Then all three read it alike: storage is unavailable (503) exactly when the send is retried,
    # and a secret is unavailable either way, never as storage
    assert isinstance(stored.value, StorageUnavailable) is transient
    assert sent.value.permanent is not transient
    assert not isinstance(read.value, StorageUnavailable)
    assert read.value.reason == f"secret:CLIENT_ADDRESS_SECRET_ARN:{code}"


def test_stored_secret_hint_says_whether_a_retry_may_pass(aws_env: dict[str, str], caplog: Any) -> None:
    # Given a secret that Secrets Manager throttles, and one read without credentials
    from enquiries.log import logger

    throttled = StoredSecret(
        "A", "arn", client_factory=lambda: Failing(client_error("ThrottlingException", 400))
    )
    unsigned = StoredSecret("B", "arn", client_factory=lambda: Failing(NoCredentialsError()))

    # When each is read
    with caplog.at_level("ERROR", logger=logger.name):
        for secret in (throttled, unsigned):
            with pytest.raises(SecretUnavailable):
                secret.value()

    # Then the operator's hint says the first often passes, and points at the configuration for the other
    hints = {record.setting: record.hint for record in caplog.records if record.msg == "secret unreadable"}
    assert hints["A"].startswith("often passing")
    assert "configuration" in hints["B"]


# --- the call wrapper ---------------------------------------------------------------------------


def test_aws_call_failed_condition_is_the_callers_error() -> None:
    # Given a conditional write refused by its condition
    refused = Failing(client_error("ConditionalCheckFailedException", 400, "UpdateItem"))

    # When it is called with the caller's error for that case
    # Then that error is raised, not a storage failure
    with pytest.raises(LookupError):
        aws_call(refused, "update_item", on_condition_failed=LookupError("taken"), TableName="t", Key={})


def test_aws_call_passes_the_answer_through(aws_env: dict[str, str]) -> None:
    # Given DynamoDB answering a read
    client = boto3.client("dynamodb", region_name=REGION)
    stubber = Stubber(client)
    stubber.add_response("get_item", {"Item": {"id": {"S": "a"}}})
    stubber.activate()

    # When it is called, Then its answer comes back unchanged
    assert aws_call(client, "get_item", TableName="t", Key={"id": {"S": "a"}}) == {"Item": {"id": {"S": "a"}}}


# --- the item codec -----------------------------------------------------------------------------


def test_plain_item_reads_every_dynamodb_type_as_plain_json() -> None:
    # Given an item with each DynamoDB type, as botocore returns it
    item: dict[str, Any] = {
        "s": {"S": "text"},
        "whole": {"N": "1767312000"},
        "fraction": {"N": "2.5"},
        "written_whole": {"N": "3.0"},
        "yes": {"BOOL": True},
        "nothing": {"NULL": True},
        "bytes": {"B": b"\x00\x01"},
        "strings": {"SS": ["b", "a"]},
        "numbers": {"NS": ["10", "9"]},
        "list": {"L": [{"S": "x"}, {"N": "1"}]},
        "map": {"M": {"inner": {"BOOL": False}}},
    }

    # When it is made plain
    plain = plain_item(item)

    # Then it is plain JSON: whole numbers int, sets sorted lists, binary base64
    assert plain == {
        "s": "text",
        "whole": 1767312000,
        "fraction": 2.5,
        "written_whole": 3,
        "yes": True,
        "nothing": None,
        "bytes": "AAE=",
        "strings": ["a", "b"],
        "numbers": [9, 10],
        "list": ["x", 1],
        "map": {"inner": False},
    }
    assert json.loads(json.dumps(plain)) == plain


def test_plain_item_reads_a_stream_image_as_the_submission_wrote_it() -> None:
    # Given what the submission function stores, and the stream's image of an enquiry
    stored = {
        "id": "01KAPX4Q7N3Y8Z2M5R6T9V1W0A",
        "name": "Jane Doe",
        "consent": True,
        "expires_at": 1826844385,
    }
    image = json.loads((EVENTS / "stream-insert.json").read_text())["Records"][0]["dynamodb"]["NewImage"]

    # When each is read back
    # Then the codec's two directions agree, and the stream's numbers are numbers
    assert plain_item(attribute_map(stored)) == stored
    assert isinstance(plain_item(image)["expires_at"], int)


def test_attribute_map_refuses_a_value_an_enquiry_never_holds() -> None:
    # Then a float (which DynamoDB would round-trip as a Decimal) is refused, not stored approximately
    with pytest.raises(TypeError):
        attribute_map({"score": 0.1})
