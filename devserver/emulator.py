"""The embedded AWS emulator: moto's server in a thread of this process, and the resources on it.

The handlers reach it over HTTP through AWS_ENDPOINT_URL, exactly as they reach AWS when deployed;
the local server itself reads moto's in-memory state for what AWS has no API for (sent emails).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from email.utils import parseaddr
from typing import Any

from devserver.environment import DUMMY_CREDENTIAL
from devserver.template_tables import create_table_from_template

log = logging.getLogger(__name__)


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

    # One line per emulated AWS call is noise next to the local server's own request log.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def provision(emulator: Emulator, *, table_name: str, sender: str) -> None:
    """Create what the template deploys and the handlers need: the table, and the verified sender."""
    create_table_from_template(emulator.client("dynamodb"), table_name)
    address = parseaddr(sender)[1] or sender
    emulator.client("ses").verify_email_identity(EmailAddress=address)
    log.info("created table %s and verified sender %s in the emulator", table_name, address)
