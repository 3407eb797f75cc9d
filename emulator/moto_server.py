"""moto's server in a thread of this process, with DynamoDB's atomic transactions, and clients for it.

The handlers reach it over HTTP through AWS_ENDPOINT_URL, exactly as they reach AWS when deployed;
the local server itself reads moto's in-memory state for what AWS has no API for (sent emails).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from emulator.served_hosts import host_is_served, is_cross_site

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


# The emulator answers only this machine's AWS clients (boto3 sends neither Origin nor Sec-Fetch-Site).
EMULATOR_HOST = "127.0.0.1"
EMULATOR_NAMES = (EMULATOR_HOST, "localhost")

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def only_its_own_clients(app: WsgiApp, port: int) -> WsgiApp:
    """moto's WSGI app, closed to web pages: a request for another `Host` (DNS rebinding) or from a
    browser page is refused, and no response carries a CORS header (moto's create_backend_app, in
    moto/moto_server/werkzeug_app.py, allows every origin through flask_cors), so no page can read it."""

    def guarded(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if not host_is_served(environ.get("HTTP_HOST"), EMULATOR_NAMES, port) or is_cross_site(
            environ.get("HTTP_ORIGIN"), environ.get("HTTP_SEC_FETCH_SITE"), ()
        ):
            body = b'{"message": "The emulator answers only this machine\'s AWS clients."}'
            start_response(
                "403 Forbidden", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
            )
            return [body]

        def without_cors(status: str, response_headers: list[tuple[str, str]], *rest: Any) -> Any:
            kept = [
                (name, value)
                for name, value in response_headers
                if not name.lower().startswith("access-control-")
            ]
            return start_response(status, kept, *rest)

        return app(environ, without_cors)

    return guarded


@contextlib.contextmanager
def running_moto() -> Iterator[str]:
    """Start moto's server on a free loopback port for the duration of the block; yields its URL."""
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    from emulator import moto_transactions

    moto_transactions.install()

    # One line per emulated AWS call is noise next to the local server's own request log.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    # moto's ThreadedMotoServer, with its app wrapped (it takes no middleware).
    moto_app = DomainDispatcherApplication(create_backend_app)
    server = make_server(EMULATOR_HOST, 0, moto_app, threaded=True, request_handler=MotoRequestHandler)
    port = int(server.server_address[1])
    server.app = only_its_own_clients(moto_app, port)  # the port is known only once bound
    thread = threading.Thread(target=server.serve_forever, name="moto", daemon=True)
    thread.start()
    try:
        yield f"http://{EMULATOR_HOST}:{port}"
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


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
