"""moto's server in a thread of this process, with DynamoDB's atomic transactions, and clients for it.

The handlers reach it over HTTP through AWS_ENDPOINT_URL, exactly as they reach AWS when deployed;
the local server itself reads moto's in-memory state for what AWS has no API for (sent emails).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

DUMMY_CREDENTIAL = "testing"  # moto accepts any key; a real one must never be used here


@dataclass(frozen=True)
class Emulator:
    """A running moto server: its endpoint, and boto3 clients for it."""

    endpoint: str
    region: str

    def client(self, service: str) -> Any:
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=self.region,
            aws_access_key_id=DUMMY_CREDENTIAL,
            aws_secret_access_key=DUMMY_CREDENTIAL,
        )


@contextlib.contextmanager
def running_moto() -> Iterator[str]:
    """Start moto's server on a free loopback port for the duration of the block; yields its URL."""
    from moto.server import ThreadedMotoServer

    from emulator import moto_transactions

    moto_transactions.install()

    # One line per emulated AWS call is noise next to the local server's own request log.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def latest_stream_arn(emulator: Emulator, table_name: str) -> str | None:
    """The ARN of the table's stream, or None when the table has none."""
    table = emulator.client("dynamodb").describe_table(TableName=table_name)["Table"]
    arn = table.get("LatestStreamArn")
    return str(arn) if arn else None


def forget_shard_iterator(iterator: str) -> None:
    """Drop a used shard iterator from moto's memory.

    moto keeps every iterator it hands out, for the life of the process (about 2 KB each, four a
    second while a stream is polled); the poller never reuses one once it has read with it.
    """
    from moto.backends import get_backend

    for account_backends in list(get_backend("dynamodbstreams").values()):
        for region_backend in list(account_backends.values()):
            region_backend.shard_iterators.pop(iterator, None)
