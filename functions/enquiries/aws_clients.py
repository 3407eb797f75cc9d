"""AWS clients, created lazily and once per process, with timeouts chosen for a web request.

A visitor is waiting, and API Gateway gives up at 30 s with a bare error, so a slow AWS call must
turn into our own 503 well before that: 1 s to connect, 2 s for each read, and at most 2 attempts
in botocore's "standard" retry mode (which backs off on throttling). AWS_CALL_SECONDS is the most one
call can take; the request's budget (request_budget.py) starts a call only while that much is left.

The submission path's two clients (`submission_dynamodb`, `submission_secrets`) are aws_json's: the
same calls, answers, errors, timeouts and retries as botocore's, without botocore's cost to a cold
start (aws_json.py). The notifier's, the canary's and the command's come from one botocore session,
not from boto3: a boto3 client is the same botocore client, but importing boto3 also imports
s3transfer and boto3's resource layer, about 20 ms of a cold start that nothing here uses.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

# Every client made here or elsewhere (lazy_client), so that drop_clients finds each one.
_LAZY_CLIENTS: list[functools._lru_cache_wrapper[Any]] = []


def lazy_client(make: Callable[[], Any]) -> functools._lru_cache_wrapper[Any]:
    """Decorate the function that makes a client: the client is made on first use, once per process,
    and drop_clients closes and forgets it."""
    cached = functools.cache(make)
    _LAZY_CLIENTS.append(cached)
    return cached


@functools.cache
def aws_session() -> Any:
    """The process's botocore session: its clients share loaded service data and credentials."""
    import botocore.session

    return botocore.session.get_session()


CONNECT_TIMEOUT_SECONDS = 1
READ_TIMEOUT_SECONDS = 2
MAX_ATTEMPTS = 2
# The standard mode's wait before a retry: at most 1 s (rand(0, 1) x 1 s for throttling on the first
# retry), raised to an `x-amz-retry-after` header's value but by at most 5 s more: see
# ExponentialBackoff.delay_amount in https://github.com/boto/botocore/blob/develop/botocore/retries/standard.py
RETRY_BACKOFF_SECONDS = 1
MAX_BACKOFF_SECONDS = RETRY_BACKOFF_SECONDS + 5
# Each attempt: a connection, the request, and the answer in a few reads of AWS's small JSON (each read
# bounded by the read timeout; AWS answers at once or not at all, it does not trickle bytes).
AWS_CALL_SECONDS = MAX_ATTEMPTS * (CONNECT_TIMEOUT_SECONDS + READ_TIMEOUT_SECONDS) + MAX_BACKOFF_SECONDS


def _request_config() -> Any:
    from botocore.config import Config

    return Config(
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        read_timeout=READ_TIMEOUT_SECONDS,
        retries={"mode": "standard", "total_max_attempts": MAX_ATTEMPTS},
        # Keep the connection warm between requests of a warm container.
        tcp_keepalive=True,
    )


@lazy_client
def dynamodb_client() -> Any:
    return aws_session().create_client("dynamodb", config=_request_config())


@lazy_client
def secretsmanager_client() -> Any:
    return aws_session().create_client("secretsmanager", config=_request_config())


def _json_client(service_name: str) -> Any:
    from enquiries import aws_json

    service = aws_json.DYNAMODB if service_name == "dynamodb" else aws_json.SECRETS_MANAGER
    region = aws_json.region_of()
    endpoint = aws_json.endpoint_of(service, region)
    timeouts = aws_json.Timeouts(CONNECT_TIMEOUT_SECONDS, READ_TIMEOUT_SECONDS)
    return aws_json.JsonClient(
        service,
        region=region,
        endpoint=endpoint,
        credentials=aws_json.environment_credentials(),
        transport=aws_json.HttpTransport(endpoint, timeouts),
        max_attempts=MAX_ATTEMPTS,
    )


@lazy_client
def submission_dynamodb() -> Any:
    """The submission path's DynamoDB client: aws_json's, not botocore's (a cold start's cost)."""
    return _json_client("dynamodb")


@lazy_client
def submission_secrets() -> Any:
    """The submission path's Secrets Manager client: aws_json's, not botocore's."""
    return _json_client("secretsmanager")


def drop_clients() -> None:
    """Close and forget every client made with lazy_client, and the credentials the session resolved:
    the next call of a client function makes a new client with fresh credentials and new connections.

    For a process restored from a Lambda SnapStart snapshot (enquiries/snapstart.py): the snapshot's
    pooled connections are not valid after a restore, and credentials resolved before it may have
    expired since. The session stays, with the service models it has loaded: a new client then takes
    about 10 ms instead of about 150 ms for the first one.
    """
    for factory in _LAZY_CLIENTS:
        if factory.cache_info().currsize:
            factory().close()  # its connection pool; botocore opens new connections after this
        factory.cache_clear()
    if aws_session.cache_info().currsize:
        # botocore has no public way to forget resolved credentials: Session.get_credentials resolves
        # them once into `_credentials` (https://github.com/boto/botocore/blob/develop/botocore/session.py),
        # and None makes it resolve them anew. The public alternatives cost more: set_credentials fixes
        # static keys (no refresh), and a new session, even sharing the loaded models (register_component
        # "data_loader"), took about 130 ms for the first client against 3 ms with this.
        aws_session()._credentials = None
