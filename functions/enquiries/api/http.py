"""The HTTP API's event (payload format 2.0) read into a `Request`, and a `Response` written back as the
result the HTTP API expects, with the contract's CORS headers.

The function has one route, so this replaces a router: Powertools' APIGatewayHttpResolver cost about
60 ms of every cold start to import (its package brings the AppSync, Bedrock and VPC Lattice
resolvers and asyncio; docs/performance.md). The shapes are AWS's:
https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-integrations-lambda.html
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Request:
    """What the submission path reads of one HTTP API request."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: str | None
    is_base64_encoded: bool
    source_ip: str
    request_id: str

    @classmethod
    def from_event(cls, event: Mapping[str, Any]) -> Request:
        # The path as sent (rawPath): the template's API has only the $default stage, so no stage
        # name precedes it.
        context = event.get("requestContext") or {}
        http = context.get("http") or {}
        return cls(
            method=str(http.get("method") or "").upper(),
            path=str(event.get("rawPath") or http.get("path") or "/"),
            headers=event.get("headers") or {},
            body=event.get("body"),
            is_base64_encoded=bool(event.get("isBase64Encoded")),
            source_ip=str(http.get("sourceIp") or ""),
            request_id=str(context.get("requestId") or "unknown"),
        )

    def header(self, name: str) -> str | None:
        """A header's value by its lower-case name. The HTTP API lower-cases header names (and joins a
        repeated header's values with commas); other callers, such as tests, may not."""
        value = self.headers.get(name)
        if value is None:
            value = next((v for k, v in self.headers.items() if k.lower() == name), None)
        return value


@dataclass
class Response:
    """A response; `content_type` becomes the Content-Type header unless one is given."""

    status_code: int
    content_type: str | None = None
    body: str = ""
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.content_type:
            self.headers.setdefault("Content-Type", self.content_type)

    def as_result(self) -> dict[str, Any]:
        """The Lambda result an HTTP API turns into the HTTP response (payload format 2.0)."""
        return {
            "statusCode": self.status_code,
            "body": self.body,
            "isBase64Encoded": False,
            "headers": dict(self.headers),
            "cookies": [],
        }


@dataclass(frozen=True)
class Cors:
    """The contract's CORS, the same as the template's HttpApi CorsConfiguration (which API Gateway
    serves when deployed; this is what the local server and `sam local` serve). Headers go only to an
    Origin that is exactly one of the allowed ones, as browsers send it."""

    allowed_origins: frozenset[str]
    allow_methods: tuple[str, ...]
    allow_headers: tuple[str, ...]
    expose_headers: tuple[str, ...]
    max_age_seconds: int

    @property
    def methods(self) -> str:
        """A preflight's Access-Control-Allow-Methods."""
        return ",".join(sorted(self.allow_methods))

    def headers(self, origin: str | None) -> dict[str, str]:
        """The CORS headers of any response to `origin` (none to an origin not allowed)."""
        if origin is None or origin not in self.allowed_origins:
            return {}
        return {
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Headers": ",".join(sorted(self.allow_headers)),
            "Access-Control-Expose-Headers": ",".join(self.expose_headers),
            "Access-Control-Max-Age": str(self.max_age_seconds),
        }
