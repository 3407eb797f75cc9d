"""The submission API: routes, origin check, error rendering and the one log line per request.

`build_app` takes the settings, the store and a clock, so tests hand it fakes or moto-backed ones.
"""

from __future__ import annotations

import json
import time
import traceback
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, CORSConfig, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware

from enquiries.api.body import FORM_TYPES, media_type, read_form
from enquiries.api.errors import RETRY_AFTER_SECONDS, ApiError, error_body
from enquiries.log import logger
from enquiries.settings import Settings
from enquiries.storage.enquiry_store import EnquiryStore, StorageUnavailable
from enquiries.submission import accept_enquiry, utc_now
from enquiries.validation import FieldRules, InvalidEnquiry, validate_enquiry

ENQUIRIES_PATH = "/enquiries"
ALLOWED_METHODS = "OPTIONS, POST"
SUCCESS_MESSAGE = "Thank you: your enquiry has been sent. We will reply by email as soon as we can."
IDEMPOTENCY_KEY_MAX = 128
JSON_TYPE = "application/json"
HTML_TYPE = "text/html; charset=utf-8"
KNOWN_FIELDS = frozenset({"name", "email", "phone", "service", "message", "consent", "_gotcha", "_next"})


def _header(app: APIGatewayHttpResolver, name: str) -> str | None:
    headers = app.current_event.headers or {}
    value = headers.get(name)
    if value is None:  # HTTP API lower-cases header names; other callers may not.
        value = next((v for k, v in headers.items() if k.lower() == name), None)
    return value


def _origin_of(url: str) -> str | None:
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc or "@" in parts.netloc or "\\" in url:
        return None
    return f"{parts.scheme}://{parts.netloc}".lower()


def _wants_html(app: APIGatewayHttpResolver) -> bool:
    """An HTML form post from a browser: it should get pages and redirects, not JSON."""
    kind, _ = media_type(_header(app, "content-type"))
    return kind in FORM_TYPES and "text/html" in (_header(app, "accept") or "")


def _json(status: int, body: dict[str, object], headers: dict[str, str] | None = None) -> Response[str]:
    return Response(
        status_code=status,
        content_type=JSON_TYPE,
        body=json.dumps(body, ensure_ascii=False),
        headers=headers or {},
    )


def build_app(
    settings: Settings,
    store: EnquiryStore,
    clock: Callable[[], datetime] = utc_now,
) -> APIGatewayHttpResolver:
    origins = list(settings.allowed_origins)
    cors = (
        CORSConfig(
            allow_origin=origins[0], extra_origins=origins[1:], allow_headers=["Idempotency-Key"], max_age=600
        )
        if origins
        else None
    )
    app = APIGatewayHttpResolver(cors=cors)
    rules = FieldRules(
        services=settings.services,
        require_consent=settings.require_consent,
        default_phone_region=settings.default_phone_region,
    )
    allowed_origins = {origin.lower() for origin in origins}

    def allowed_url(url: str | None) -> str | None:
        return url if url and _origin_of(url) in allowed_origins else None

    def reference() -> str:
        return str(app.current_event.request_context.request_id or "unknown")

    def render_error(error: ApiError) -> Response[str]:
        ref = reference() if error.status >= 500 else None
        headers = dict(error.headers)
        if error.status == 405:
            headers["Allow"] = ALLOWED_METHODS
        if error.status == 503:
            headers.setdefault("Retry-After", str(RETRY_AFTER_SECONDS))
        body = error_body(error, reference=ref, clinic_phone=settings.clinic_phone)
        if _wants_html(app):
            from enquiries.api.pages import error_page

            back = allowed_url(_header(app, "referer"))
            page = error_page(str(body["message"]), error.fields, back, ref)
            return Response(status_code=error.status, content_type=HTML_TYPE, body=page, headers=headers)
        return _json(error.status, body, headers)

    def handle_request(app: APIGatewayHttpResolver, next_middleware: NextMiddleware) -> Response[Any]:
        started = time.perf_counter()
        origin = _header(app, "origin")
        try:
            if origin is not None and origin.lower() not in allowed_origins:
                raise ApiError(403, "origin_not_allowed", reason="origin")
            response = next_middleware(app)
        except ApiError as error:
            app.context.update(outcome=error.code, reason=error.reason, invalid_fields=error.fields)
            response = render_error(error)
        except Exception as unexpected:  # the one place that turns a bug into the contract's 500
            # The traceback's frames, without the exception's message, which could echo visitor input.
            frames = "".join(traceback.format_tb(unexpected.__traceback__))
            logger.error(
                "unexpected failure",
                extra={"reference": reference(), "error_type": type(unexpected).__name__, "stack": frames},
            )
            app.context.update(outcome="internal_error", reason=type(unexpected).__name__)
            response = render_error(ApiError(500, "internal_error"))
        response.headers["Vary"] = "Origin"
        response.headers["Cache-Control"] = "no-store"
        _log_request(app, response.status_code, started)
        return response

    def _log_request(app: APIGatewayHttpResolver, status: int, started: float) -> None:
        context = app.context
        invalid = context.get("invalid_fields") or {}
        logger.info(
            "request handled",
            extra={
                "status": status,
                "method": app.current_event.request_context.http.method,
                "path": app.current_event.raw_path,
                "outcome": context.get("outcome", "ok"),
                "reason": context.get("reason"),
                "enquiry_id": context.get("enquiry_id"),
                # Field names only, and only ours: a bot's made-up names could carry anything.
                "invalid_fields": sorted(name if name in KNOWN_FIELDS else "(unknown)" for name in invalid),
                "reference": reference() if status >= 500 else None,
                "duration_ms": round((time.perf_counter() - started) * 1000, 1),
            },
        )

    app.use(middlewares=[handle_request])

    @app.not_found
    def not_found(_: NotFoundError) -> Response[str]:
        if app.current_event.raw_path.rstrip("/") == ENQUIRIES_PATH:
            raise ApiError(405, "method_not_allowed", reason="method")
        raise ApiError(404, "not_found", reason="path")

    @app.post(ENQUIRIES_PATH)
    def submit() -> Response[str]:
        event = app.current_event
        key = _header(app, "idempotency-key")
        if key is not None and (
            len(key) > IDEMPOTENCY_KEY_MAX or any(ord(c) < 32 or ord(c) == 127 for c in key)
        ):
            raise ApiError(
                400,
                "bad_request",
                message=f"Idempotency-Key must be at most {IDEMPOTENCY_KEY_MAX} printable characters.",
                reason="idempotency_key",
            )
        _, fields = read_form(event.body, bool(event.is_base64_encoded), _header(app, "content-type"))
        try:
            enquiry = validate_enquiry(fields, rules)
        except InvalidEnquiry as invalid:
            raise ApiError(422, "validation_failed", fields=invalid.fields, reason="fields") from None
        try:
            receipt = accept_enquiry(enquiry, store, retention_days=settings.retention_days, now=clock())
        except StorageUnavailable as unavailable:
            raise ApiError(503, "unavailable", reason=unavailable.reason) from None
        app.context.update(enquiry_id=receipt.enquiry_id, outcome="stored" if receipt.stored else "honeypot")

        if _wants_html(app):
            target = allowed_url(enquiry.next_url) or settings.success_url
            if target:
                return Response(
                    status_code=303, content_type=HTML_TYPE, body="", headers={"Location": target}
                )
            from enquiries.api.pages import thank_you_page

            return Response(status_code=200, content_type=HTML_TYPE, body=thank_you_page(receipt.enquiry_id))
        return _json(201, {"id": receipt.enquiry_id, "message": SUCCESS_MESSAGE})

    return app
