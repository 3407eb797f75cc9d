"""The emulator (moto, as the tests and the local server patch it): a conditional write is one atomic
step, as in DynamoDB. The notifier's "mark notified once" and the operator's resend claims rely on it."""

from __future__ import annotations

import sys
import threading

import boto3
from moto import mock_aws
from support import REGION


def test_emulator_lets_exactly_one_of_simultaneous_conditional_puts_through(aws_env: dict[str, str]) -> None:
    # Given a table in moto, and thread switches forced as often as possible
    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        with mock_aws():
            client = boto3.client("dynamodb", region_name=REGION)
            client.create_table(
                TableName="claims",
                KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
            )
            rounds_with_two_winners = 0
            for round_number in range(40):
                # When six writers put the same key at once, each only if it is not there yet
                winners = _simultaneous_conditional_puts(f"claim-{round_number}", writers=6)
                rounds_with_two_winners += len(winners) != 1
    finally:
        sys.setswitchinterval(switch_interval)
    # Then in every round exactly one writer succeeded
    assert rounds_with_two_winners == 0


def _simultaneous_conditional_puts(key: str, writers: int) -> list[int]:
    """The writers whose conditional put of `key` succeeded, when all start at the same moment."""
    winners: list[int] = []
    start = threading.Barrier(writers)

    def put(writer: int) -> None:
        client = boto3.client("dynamodb", region_name=REGION)
        start.wait()
        try:
            client.put_item(
                TableName="claims",
                Item={"id": {"S": key}, "writer": {"N": str(writer)}},
                ConditionExpression="attribute_not_exists(id)",
            )
            winners.append(writer)
        except client.exceptions.ConditionalCheckFailedException:
            pass

    threads = [threading.Thread(target=put, args=(writer,)) for writer in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return winners
