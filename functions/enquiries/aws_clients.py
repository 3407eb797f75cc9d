"""boto3 clients, created lazily and once per process, with timeouts chosen for a web request.

A visitor is waiting, and API Gateway gives up at 30 s with a bare error, so a slow DynamoDB must
turn into our own 503 well before that and before the function's 10 s timeout: 1 s to connect, 2 s
to read, and at most 2 attempts in botocore's "standard" retry mode (which backs off on throttling).
Worst case about 7 s, then the visitor gets a clear "try again" with Retry-After.
"""

from __future__ import annotations

import functools
from typing import Any


def _request_config() -> Any:
    from botocore.config import Config

    return Config(
        connect_timeout=1,
        read_timeout=2,
        retries={"mode": "standard", "total_max_attempts": 2},
        # Keep the connection warm between requests of a warm container.
        tcp_keepalive=True,
    )


@functools.cache
def dynamodb_client() -> Any:
    import boto3

    return boto3.client("dynamodb", config=_request_config())


@functools.cache
def secretsmanager_client() -> Any:
    import boto3

    return boto3.client("secretsmanager", config=_request_config())
