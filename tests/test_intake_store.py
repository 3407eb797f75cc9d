"""The intake store on DynamoDB (storage/intake_store.py): how a cancelled transaction is read, with
DynamoDB's answers given by a botocore Stubber.

A transaction cancelled with `TransactionConflict` means another request is writing the same records
at that moment (a double click's twin): the store waits for it and tries again, within a bound.
https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html
"""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber
from support import GUARD_TABLE_NAME, REGION, TABLE_NAME, MakeHandler, body_of, load_event

from enquiries.api.services import Services
from enquiries.aws import StorageUnavailable
from enquiries.intake import ReplayKey
from enquiries.storage import intake_store
from enquiries.storage.intake_store import DynamoIntakeStore
from enquiries.storage.rate_limit import RateWindow

ENQUIRY_ID = "01KAPX4Q7N3Y8Z2M5R6T9V1W0A"
ITEM = {"id": ENQUIRY_ID, "name": "Jane Doe", "message": "Hello", "created_at": "2026-11-21T10:15:30.000Z"}
ANSWER = {"status_code": 201, "body": "{}", "enquiry_id": ENQUIRY_ID}
KEY = ReplayKey("double-submit", "f" * 64, 600)
RATE = RateWindow("hashed-address", 10, 1_795_256_130.0)
# The transaction's writes, in order: the enquiry, its replay record, the rate count.
CONFLICT = ["None", "TransactionConflict", "None"]


def stubbed_transactions(*outcomes: list[str] | None) -> tuple[Any, Stubber]:
    """A DynamoDB client whose TransactWriteItems calls answer in turn: cancelled for these reasons
    (a list), or written (None); each call is checked to carry its own attempt's token."""
    client = boto3.client("dynamodb", region_name=REGION)
    stubber = Stubber(client)
    for attempt, reasons in enumerate(outcomes, start=1):
        expected = {"TransactItems": ANY, "ClientRequestToken": f"{ENQUIRY_ID}-{attempt}"}
        if reasons is None:
            stubber.add_response("transact_write_items", {}, expected)
        else:
            stubber.add_client_error(
                "transact_write_items",
                service_error_code="TransactionCanceledException",
                expected_params=expected,
                modeled_fields={"CancellationReasons": [{"Code": reason} for reason in reasons]},
            )
    stubber.activate()
    return client, stubber


def test_intake_store_transaction_conflict_is_waited_for_then_written(aws_env: dict[str, str]) -> None:
    # Given another request writing the same records for the first two attempts
    client, stubber = stubbed_transactions(CONFLICT, CONFLICT, None)
    store = DynamoIntakeStore(TABLE_NAME, GUARD_TABLE_NAME, client_factory=lambda: client)

    # When the enquiry is accepted
    store.accept(dict(ITEM), ANSWER, [KEY], RATE)

    # Then the store waited and tried again, each attempt with its own token, until it was written
    stubber.assert_no_pending_responses()


def test_intake_store_transaction_conflict_past_the_wait_is_unavailable(
    aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a conflict that outlasts the wait (none is left)
    monkeypatch.setattr(intake_store, "CONFLICT_WAIT_SECONDS", -1.0)
    client, stubber = stubbed_transactions(CONFLICT)
    store = DynamoIntakeStore(TABLE_NAME, GUARD_TABLE_NAME, client_factory=lambda: client)

    # When the enquiry is accepted
    with pytest.raises(StorageUnavailable) as unavailable:
        store.accept(dict(ITEM), ANSWER, [KEY], RATE)

    # Then the store gives up with a reason to log, after one attempt
    assert unavailable.value.reason == "transaction_conflict"
    stubber.assert_no_pending_responses()


def test_intake_store_conflict_that_never_ends_is_a_503_for_the_visitor(
    make_handler: MakeHandler, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a table where another transaction holds the records past the wait
    monkeypatch.setattr(intake_store, "CONFLICT_WAIT_SECONDS", -1.0)
    client = boto3.client("dynamodb", region_name=REGION)
    stubber = Stubber(client)
    stubber.add_client_error(
        "transact_write_items",
        service_error_code="TransactionCanceledException",
        modeled_fields={"CancellationReasons": [{"Code": "None"}, {"Code": "TransactionConflict"}]},
    )
    stubber.activate()
    store = DynamoIntakeStore(TABLE_NAME, GUARD_TABLE_NAME, client_factory=lambda: client)
    handler = make_handler(Services(store=store))

    # When an enquiry is submitted
    response = handler(load_event("submit-json.json", headers={"idempotency-key": "a-fresh-key"}))

    # Then the visitor is told to try again soon, never a 500
    assert response["statusCode"] == 503
    assert body_of(response)["error"] == "unavailable"
    assert int(response["headers"]["Retry-After"]) > 0
