"""The emulator's moto server (emulator/moto_server.py) and what it provisions (emulator/provision.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from moto.backends import get_backend

from emulator.moto_server import Emulator, forget_shard_iterator, latest_stream_arn, running_moto
from emulator.provision import create_dead_letter_queue, provision

REGION = "eu-west-2"


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with running_moto() as endpoint:
        yield Emulator(endpoint=endpoint, region=REGION)


def provisioned(emulator: Emulator) -> dict[str, str]:
    """Names of freshly provisioned resources (the server is shared by this module's tests)."""
    suffix = uuid.uuid4().hex[:8]
    names = {
        "table_name": f"enquiries-{suffix}",
        "guard_table_name": f"enquiries-guard-{suffix}",
        "address_secret": f"address-key-{suffix}",
        "sender": f"Clinic website <enquiries-{suffix}@example.com>",
    }
    provision(emulator, **names)
    return names


def test_running_moto_listens_on_loopback_only(emulator: Emulator) -> None:
    # Given the emulator running
    # When its endpoint is read
    # Then it is a loopback address, out of reach of the network
    assert emulator.endpoint.startswith("http://127.0.0.1:")


def test_provision_creates_what_the_template_deploys(emulator: Emulator) -> None:
    # Given the running emulator
    # When it is provisioned
    names = provisioned(emulator)
    # Then both tables exist (the enquiries table with its stream), the address-hashing secret holds a
    # key, and the sender's address (without its display name) may send
    assert latest_stream_arn(emulator, names["table_name"]) is not None
    assert latest_stream_arn(emulator, names["guard_table_name"]) is None
    secret = emulator.client("secretsmanager").get_secret_value(SecretId=names["address_secret"])
    assert len(secret["SecretString"]) == 64
    verified = emulator.client("ses").list_verified_email_addresses()["VerifiedEmailAddresses"]
    assert names["sender"].split("<")[1].rstrip(">") in verified


def test_provision_generates_a_new_address_key_each_run(emulator: Emulator) -> None:
    # Given two provisionings, as two runs of the local server
    first, second = provisioned(emulator), provisioned(emulator)
    # When their address-hashing secrets are read
    secrets = emulator.client("secretsmanager")
    keys = [secrets.get_secret_value(SecretId=n["address_secret"])["SecretString"] for n in (first, second)]
    # Then they differ, as the template generates one per stack
    assert keys[0] != keys[1]


def test_create_dead_letter_queue_returns_a_queue_that_takes_messages(emulator: Emulator) -> None:
    # Given the running emulator
    # When the notifier's dead-letter queue is created
    url = create_dead_letter_queue(emulator, f"dead-letters-{uuid.uuid4().hex[:8]}")
    # Then a record sent to it can be read back
    sqs = emulator.client("sqs")
    sqs.send_message(QueueUrl=url, MessageBody='{"DDBStreamBatchInfo": {}}')
    assert sqs.receive_message(QueueUrl=url)["Messages"][0]["Body"] == '{"DDBStreamBatchInfo": {}}'


def test_forget_shard_iterator_drops_it_from_motos_memory(emulator: Emulator) -> None:
    # Given a shard iterator on a provisioned table's stream
    names = provisioned(emulator)
    stream_arn = latest_stream_arn(emulator, names["table_name"])
    streams = emulator.client("dynamodbstreams")
    shard = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(
        StreamArn=stream_arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]

    def held() -> bool:
        return any(
            iterator in backend.shard_iterators
            for accounts in get_backend("dynamodbstreams").values()
            for backend in accounts.values()
        )

    assert held()
    # When it is forgotten
    forget_shard_iterator(iterator)
    # Then moto no longer keeps it
    assert not held()
