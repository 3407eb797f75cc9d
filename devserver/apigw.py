"""What API Gateway (HTTP API, payload format 2.0) does around a Lambda function, as pure functions.

`build_event` turns an HTTP request into the event API Gateway would send; `to_http_response` turns
what the function returns into the HTTP response API Gateway would send back. Neither does I/O, so
both are unit-tested directly.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

LOCAL_ACCOUNT_ID = "123456789012"
LOCAL_API_ID = "local"

# API Gateway hands these bodies to the function base64-encoded (they are not "text" to it).
_BASE64_CONTENT_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")


@dataclass(frozen=True)
class HttpResponse:
    """A response ready to write: status, header lines (names may repeat) and the body bytes."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        """The first value of header `name` (case-insensitive), or None."""
        wanted = name.lower()
        return next((value for key, value in self.headers if key.lower() == wanted), None)


def _needs_base64(content_type: str, body: bytes) -> bool:
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type in _BASE64_CONTENT_TYPES:
        return True
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


@dataclass(frozen=True)
class HttpRequest:
    """One request as the server read it.

    `target` is the request target as sent (path and query string, still percent-encoded);
    `headers` are the request's header lines in order, names in any case, names possibly repeated.
    """

    method: str
    target: str
    headers: Iterable[tuple[str, str]]
    body: bytes
    source_ip: str
    domain_name: str


def build_event(
    request: HttpRequest, *, now: float | None = None, request_id: str | None = None
) -> dict[str, Any]:
    """The API Gateway HTTP API (payload 2.0) event for `request`."""
    method, target, headers, body = request.method, request.target, request.headers, request.body
    source_ip, domain_name = request.source_ip, request.domain_name
    now = time.time() if now is None else now
    request_id = request_id or str(uuid.uuid4())
    raw_path, _, raw_query = target.partition("?")

    # Header names are lowercased; repeated headers are joined with commas, except cookies, which
    # API Gateway moves to `cookies` (one entry per cookie) and leaves out of `headers`.
    joined: dict[str, list[str]] = {}
    cookies: list[str] = []
    for name, value in headers:
        lowered = name.lower()
        if lowered == "cookie":
            cookies.extend(part.strip() for part in value.split(";") if part.strip())
        else:
            joined.setdefault(lowered, []).append(value)
    event_headers = {name: ",".join(values) for name, values in joined.items()}
    # As in AWS, the client address is appended to any X-Forwarded-For the client sent.
    forwarded = event_headers.get("x-forwarded-for")
    event_headers["x-forwarded-for"] = f"{forwarded}, {source_ip}" if forwarded else source_ip
    event_headers.setdefault("x-forwarded-proto", "http")
    port = domain_name.rpartition(":")[2]
    event_headers.setdefault("x-forwarded-port", port if port.isdigit() else "80")

    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": raw_path,
        "rawQueryString": raw_query,
        "headers": event_headers,
    }
    if cookies:
        event["cookies"] = cookies
    if raw_query:
        parameters: dict[str, list[str]] = {}
        for key, value in parse_qsl(raw_query, keep_blank_values=True):
            parameters.setdefault(key, []).append(value)
        event["queryStringParameters"] = {key: ",".join(values) for key, values in parameters.items()}
    event["requestContext"] = {
        "accountId": LOCAL_ACCOUNT_ID,
        "apiId": LOCAL_API_ID,
        "domainName": domain_name,
        "domainPrefix": domain_name.split(".", 1)[0].split(":", 1)[0],
        "http": {
            "method": method.upper(),
            "path": raw_path,
            "protocol": "HTTP/1.1",
            "sourceIp": source_ip,
            "userAgent": event_headers.get("user-agent", ""),
        },
        "requestId": request_id,
        "routeKey": "$default",
        "stage": "$default",
        "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
        "timeEpoch": int(now * 1000),
    }
    # Like API Gateway, `body` is absent when the request has none.
    encoded = False
    if body:
        encoded = _needs_base64(event_headers.get("content-type", ""), body)
        event["body"] = base64.b64encode(body).decode("ascii") if encoded else body.decode("utf-8")
    event["isBase64Encoded"] = encoded
    return event


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def to_http_response(result: Any) -> HttpResponse:
    """The HTTP response API Gateway sends for what the function returned (payload 2.0 rules).

    A dict with `statusCode` is a full response; anything else is taken as a JSON body with status 200.
    """
    if not isinstance(result, Mapping) or "statusCode" not in result:
        text = result if isinstance(result, str) else json.dumps(result)
        return HttpResponse(200, [("Content-Type", "application/json")], text.encode("utf-8"))

    headers: list[tuple[str, str]] = [
        (str(name), _text(value)) for name, value in (result.get("headers") or {}).items()
    ]
    seen = {name.lower() for name, _ in headers}
    for name, values in (result.get("multiValueHeaders") or {}).items():
        if str(name).lower() in seen:
            continue
        headers.extend((str(name), _text(value)) for value in values)
    headers.extend(("Set-Cookie", str(cookie)) for cookie in result.get("cookies") or [])

    raw_body = result.get("body")
    if raw_body is None:
        body = b""
    elif result.get("isBase64Encoded"):
        try:
            body = base64.b64decode(str(raw_body), validate=True)
        except (binascii.Error, ValueError):
            # API Gateway answers a malformed integration response with a bare 500.
            return internal_server_error()
    else:
        body = str(raw_body).encode("utf-8")
    return HttpResponse(int(result["statusCode"]), headers, body)


def internal_server_error() -> HttpResponse:
    """What API Gateway answers when the function fails (raises, times out, returns garbage)."""
    return HttpResponse(500, [("Content-Type", "application/json")], b'{"message":"Internal Server Error"}')
