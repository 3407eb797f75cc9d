"""The emulator's DynamoDB transactions (emulator/moto_transactions.py): atomic, isolated, and cancelled
as DynamoDB documents it, on the moto versions the patch was tested with.

Cancellation reasons: one per item, in the order of TransactItems, with the codes
https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html lists
(`None`, `ConditionalCheckFailed`, `TransactionConflict`, ...).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import boto3
import moto
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from emulator import moto_transactions
from emulator.template_tables import create_table_from_template

REGION = "eu-west-2"
TABLE = "enquiries"
GUARD_TABLE = "enquiries-guard"
# The reason codes DynamoDB documents for a cancelled TransactWriteItems.
DOCUMENTED_CODES = {
    "None",
    "ConditionalCheckFailed",
    "ItemCollectionSizeLimitExceeded",
    "TransactionConflict",
    "ProvisionedThroughputExceeded",
    "ThrottlingError",
    "ValidationError",
}


@pytest.fixture
def dynamodb(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """moto's DynamoDB, patched, with both tables as template.yaml declares them."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    moto_transactions.install()
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        create_table_from_template(client, TABLE)
        create_table_from_template(client, GUARD_TABLE, logical_id="GuardTable")
        yield client


def put(item_id: str, **attributes: str) -> dict[str, Any]:
    """A Put of a new enquiry: cancelled if the id is taken."""
    return {
        "Put": {
            "TableName": TABLE,
            "Item": {"id": {"S": item_id}, **{name: {"S": value} for name, value in attributes.items()}},
            "ConditionExpression": "attribute_not_exists(id)",
        }
    }


def count(record_id: str, *, expected: int | None = None) -> dict[str, Any]:
    """An Update that adds one to a guard record's count, if it holds `expected` (None: any)."""
    update: dict[str, Any] = {
        "TableName": GUARD_TABLE,
        "Key": {"id": {"S": record_id}},
        "UpdateExpression": "ADD #count :one",
        "ExpressionAttributeNames": {"#count": "count"},
        "ExpressionAttributeValues": {":one": {"N": "1"}},
    }
    if expected is not None:
        update["ConditionExpression"] = "#count = :expected"
        update["ExpressionAttributeValues"][":expected"] = {"N": str(expected)}
    return {"Update": update}


def cancellation(dynamodb: Any, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The CancellationReasons of a transaction that must be cancelled."""
    with pytest.raises(ClientError) as cancelled:
        dynamodb.transact_write_items(TransactItems=items)
    assert cancelled.value.response["Error"]["Code"] == "TransactionCanceledException"
    reasons: list[dict[str, Any]] = cancelled.value.response["CancellationReasons"]
    return reasons


def ids_in(dynamodb: Any, table: str) -> set[str]:
    return {item["id"]["S"] for item in dynamodb.scan(TableName=table, ConsistentRead=True)["Items"]}


def stream_events(dynamodb: Any) -> list[tuple[str, str]]:
    """(eventName, id) of every record on the enquiries table's stream, oldest first."""
    streams = boto3.client("dynamodbstreams", region_name=REGION)
    arn = dynamodb.describe_table(TableName=TABLE)["Table"]["LatestStreamArn"]
    events: list[tuple[str, str]] = []
    for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
        iterator = streams.get_shard_iterator(
            StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        records = streams.get_records(ShardIterator=iterator)["Records"]
        events += [(record["eventName"], record["dynamodb"]["Keys"]["id"]["S"]) for record in records]
    return events


def test_transaction_applies_every_write_when_every_condition_holds(dynamodb: Any) -> None:
    # Given an empty table
    # When a transaction stores two enquiries and counts them
    dynamodb.transact_write_items(TransactItems=[put("a"), put("b"), count("rate")])
    # Then all three writes are there, and each new enquiry is on the stream
    assert ids_in(dynamodb, TABLE) == {"a", "b"}
    rate = dynamodb.get_item(TableName=GUARD_TABLE, Key={"id": {"S": "rate"}})["Item"]
    assert rate["count"] == {"N": "1"}
    assert stream_events(dynamodb) == [("INSERT", "a"), ("INSERT", "b")]


def test_cancelled_transaction_writes_nothing(dynamodb: Any) -> None:
    # Given an enquiry already stored, and a count of 1
    dynamodb.transact_write_items(TransactItems=[put("taken", message="first"), count("rate")])
    # When a transaction writes a new enquiry and the count, but also reuses the stored id
    cancellation(dynamodb, [put("new"), put("taken", message="second"), count("rate", expected=1)])
    # Then nothing it holds was written: no new enquiry, the first one as it was, the count unchanged,
    # and nothing new on the stream
    assert ids_in(dynamodb, TABLE) == {"taken"}
    taken = dynamodb.get_item(TableName=TABLE, Key={"id": {"S": "taken"}})["Item"]
    assert taken["message"] == {"S": "first"}
    rate = dynamodb.get_item(TableName=GUARD_TABLE, Key={"id": {"S": "rate"}})["Item"]
    assert rate["count"] == {"N": "1"}
    assert stream_events(dynamodb) == [("INSERT", "taken")]


def test_cancellation_reasons_follow_the_order_of_the_items(dynamodb: Any) -> None:
    # Given a stored enquiry and a count of 1
    dynamodb.transact_write_items(TransactItems=[put("taken", message="first"), count("rate")])
    taken_again = put("taken")
    taken_again["Put"]["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
    # When a transaction fails two conditions among four items
    reasons = cancellation(dynamodb, [put("new"), taken_again, count("other"), count("rate", expected=5)])
    # Then there is one reason per item, in the items' order, with DynamoDB's codes and message; the
    # item that asked for it gets the stored item back
    assert [reason["Code"] for reason in reasons] == [
        "None",
        "ConditionalCheckFailed",
        "None",
        "ConditionalCheckFailed",
    ]
    assert {reason["Code"] for reason in reasons} <= DOCUMENTED_CODES
    assert [reason.get("Message") for reason in reasons] == [
        None,
        "The conditional request failed",
        None,
        "The conditional request failed",
    ]
    assert reasons[1]["Item"] == {"id": {"S": "taken"}, "message": {"S": "first"}}
    assert "Item" not in reasons[3]


def test_stream_reader_goes_on_after_a_cancelled_transaction(dynamodb: Any) -> None:
    # Given a reader of the table's stream (as the local server's poller reads it), and a cancelled
    # transaction
    streams = boto3.client("dynamodbstreams", region_name=REGION)
    arn = dynamodb.describe_table(TableName=TABLE)["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
    dynamodb.transact_write_items(TransactItems=[put("first")])
    cancellation(dynamodb, [put("first")])
    # When another enquiry is stored after it
    dynamodb.transact_write_items(TransactItems=[put("second")])
    # Then the reader sees it (moto's own rollback put a copy of the table, and of its stream, in place,
    # so a reader saw nothing more)
    records = streams.get_records(ShardIterator=iterator["ShardIterator"])["Records"]
    assert [record["dynamodb"]["Keys"]["id"]["S"] for record in records] == ["first", "second"]


def test_two_operations_on_one_item_are_refused(dynamodb: Any) -> None:
    # Given a transaction that writes the same enquiry twice
    # When it is sent
    with pytest.raises(ClientError) as refused:
        dynamodb.transact_write_items(TransactItems=[put("a"), put("a")])
    # Then DynamoDB's validation error refuses it, and nothing is written
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert "multiple operations on one item" in refused.value.response["Error"]["Message"]
    assert ids_in(dynamodb, TABLE) == set()


def test_concurrent_transactions_never_interleave(dynamodb: Any) -> None:
    # Given many requests at once, each storing the same enquiry id and counting it
    outcomes: list[str] = []
    start = threading.Barrier(8)

    def submit() -> None:
        client = boto3.client("dynamodb", region_name=REGION)
        start.wait()
        try:
            client.transact_write_items(TransactItems=[put("same"), count("rate")])
            outcomes.append("stored")
        except ClientError as error:
            outcomes.append(error.response["Error"]["Code"])

    # When they all run
    threads = [threading.Thread(target=submit) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Then exactly one is stored and counted; every other is cancelled whole
    assert Counter(outcomes) == {"stored": 1, "TransactionCanceledException": 7}
    rate = dynamodb.get_item(TableName=GUARD_TABLE, Key={"id": {"S": "rate"}})["Item"]
    assert rate["count"] == {"N": "1"}


def test_install_refuses_a_moto_version_it_was_not_tested_with(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a moto version the patch was never tested with, and the patch not yet installed
    monkeypatch.setattr(moto, "__version__", "5.0.0")
    monkeypatch.setattr(moto_transactions, "_installed", False)
    # When the patch is installed
    # Then it fails, naming the version and the module that needs checking
    with pytest.raises(moto_transactions.UntestedMotoVersion) as refused:
        moto_transactions.install()
    assert "moto 5.0.0" in str(refused.value)
    assert "emulator.moto_transactions" in str(refused.value)


def test_installed_moto_is_one_the_patch_was_tested_with() -> None:
    # Given the moto that requirements pin and the virtualenv holds
    # When its version is checked
    # Then the patch accepts it
    moto_transactions.check_moto_version(moto.__version__)
