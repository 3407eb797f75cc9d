"""The submission API: routing, the Origin check, the error boundary, rendering, and the one log line
per request. What becomes of a submission is the submission service's to decide
(`enquiries/submission.py`); here it is read from HTTP and its answer written back.

`build_app` takes the settings, the services and a clock, so tests hand it fakes or moto-backed ones.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from datetime import datetime
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, CORSConfig, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware

from enquiries.api.body import FORM_TYPES, media_type, read_form
from enquiries.api.errors import ApiError, contract_error
from enquiries.api.responses import (
    ALLOWED_METHODS,
    Responses,
    from_replayable,
    is_control,
    serialised_origin,
    to_replayable,
)
from enquiries.api.services import Services
from enquiries.ids import new_enquiry_id
from enquiries.intake import IntakeStore, Replayable
from enquiries.log import logger
from enquiries.settings import Settings
from enquiries.submission import Answer, Submission, SubmissionService, utc_now
from enquiries.validation import FieldRules

ENQUIRIES_PATH = "/enquiries"
# A preflight allows POST (the only route) with these request headers, as the contract and the
# template's CorsConfiguration say (tests/test_cors.py compares them).
CORS_ALLOW_HEADERS = ("Content-Type", "Idempotency-Key")
CORS_EXPOSE_HEADERS = ("Retry-After",)
CORS_MAX_AGE_SECONDS = 600
IDEMPOTENCY_KEY_MAX = 128
KNOWN_FIELDS = frozenset(
    {
        "name",
        "email",
        "phone",
        "service",
        "message",
        "consent",
        "_gotcha",
        "_next",
        "captcha",
        "cf-turnstile-response",
    }
)


def _header(app: APIGatewayHttpResolver, name: str) -> str | None:
    headers = app.current_event.headers or {}
    value = headers.get(name)
    if value is None:  # HTTP API lower-cases header names; other callers may not.
        value = next((v for k, v in headers.items() if k.lower() == name), None)
    return value


def _wants_html(app: APIGatewayHttpResolver) -> bool:
    """An HTML form post from a browser: it should get pages and redirects, not JSON."""
    kind, _ = media_type(_header(app, "content-type"))
    return kind in FORM_TYPES and "text/html" in (_header(app, "accept") or "")


def _request_id(app: APIGatewayHttpResolver) -> str:
    return str(app.current_event.request_context.request_id or "unknown")


def _idempotency_key(app: APIGatewayHttpResolver) -> str | None:
    key = _header(app, "idempotency-key")
    if key is not None and (
        not key or len(key) > IDEMPOTENCY_KEY_MAX or any(is_control(char) for char in key)
    ):
        raise ApiError(
            400,
            "bad_request",
            message=f"Idempotency-Key must be 1 to {IDEMPOTENCY_KEY_MAX} printable characters.",
            reason="idempotency_key",
        )
    return key


def _contract_cors(origins: list[str]) -> CORSConfig:
    """The contract's CORS, the same as the template's HttpApi CorsConfiguration (which API Gateway
    serves when deployed; this one is what the local server and `sam local` serve)."""
    cors = CORSConfig(
        allow_origin=origins[0],
        extra_origins=origins[1:],
        # The form script reads Retry-After on a 429 or 503 to know when to offer a resend.
        expose_headers=list(CORS_EXPOSE_HEADERS),
        max_age=CORS_MAX_AGE_SECONDS,
    )
    # Exactly the contract's request headers: CORSConfig always adds Authorization, X-Api-Key,
    # X-Amz-Date and X-Amz-Security-Token to those it is given, which the API never reads.
    cors.allow_headers = set(CORS_ALLOW_HEADERS)
    return cors


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
            "reference": _request_id(app) if status >= HTTPStatus.INTERNAL_SERVER_ERROR else None,
            "duration_ms": round((time.perf_counter() - started) * 1000, 1),
        },
    )


def _as_contract_error(app: APIGatewayHttpResolver, error: Exception) -> ApiError:
    """The one place that turns any failure into the contract's answer, and a bug into its 500."""
    answer = contract_error(error)
    if answer is not None:
        app.context.update(outcome=answer.code, reason=answer.reason, invalid_fields=answer.fields)
        return answer
    # The traceback's frames, without the exception's message, which could echo visitor input.
    frames = "".join(traceback.format_tb(error.__traceback__))
    logger.error(
        "unexpected failure",
        extra={"reference": _request_id(app), "error_type": type(error).__name__, "stack": frames},
    )
    app.context.update(outcome="internal_error", reason=type(error).__name__)
    return ApiError(500, "internal_error")


def build_app(
    settings: Settings,
    services: Services | IntakeStore,
    clock: Callable[[], datetime] = utc_now,
) -> APIGatewayHttpResolver:
    """The resolver for POST /enquiries. `services` may be a bare store (no duplicates, limits or captcha)."""
    if not isinstance(services, Services):
        services = Services(store=services)
    origins = list(settings.allowed_origins)
    allowed_origins = frozenset(origins)  # serialised by the settings, as browsers send them
    # debug=False whatever POWERTOOLS_DEV says: in debug mode the resolver prints every event, body
    # and all, to the function's log.
    app = APIGatewayHttpResolver(cors=_contract_cors(origins) if origins else None, debug=False)
    responses = Responses(allowed_origins, settings.success_url, settings.clinic_phone)
    service = SubmissionService(
        store=services.store,
        rules=FieldRules(
            services=settings.services,
            require_consent=settings.require_consent,
            default_phone_region=settings.default_phone_region,
            captcha_required=services.verifier is not None,
        ),
        hasher=services.hasher,
        verifier=services.verifier,
        rate_limit_per_hour=settings.rate_limit_per_hour,
        retention_days=settings.retention_days,
    )

    def handle_request(app: APIGatewayHttpResolver, next_middleware: NextMiddleware) -> Response[Any]:
        started = time.perf_counter()
        origin = _header(app, "origin")
        try:
            if origin is not None and serialised_origin(origin) not in allowed_origins:
                raise ApiError(403, "origin_not_allowed", reason="origin")
            if app.current_event.raw_path != ENQUIRIES_PATH and app.current_event.http_method == "OPTIONS":
                # Powertools would answer any path's preflight; only /enquiries exists.
                raise ApiError(404, "not_found", reason="path")
            response = next_middleware(app)
        except Exception as error:  # the error boundary: every failure gets the contract's answer
            response = responses.error(
                _as_contract_error(app, error),
                html=_wants_html(app),
                referer=_header(app, "referer"),
                request_id=_request_id(app),
            )
        response.headers["Vary"] = "Origin"
        response.headers["Cache-Control"] = "no-store"
        _log_request(app, response.status_code, started)
        return response

    app.use(middlewares=[handle_request])

    @app.not_found
    def not_found(_: NotFoundError) -> Response[str]:
        if app.current_event.raw_path != ENQUIRIES_PATH:
            raise ApiError(404, "not_found", reason="path")
        if app.current_event.request_context.http.method.upper() == "OPTIONS":
            # No ALLOWED_ORIGINS, so no preflight to answer; still say what the path allows.
            return Response(status_code=204, content_type=None, body="", headers={"Allow": ALLOWED_METHODS})
        raise ApiError(405, "method_not_allowed", reason="method")

    def render_success(enquiry_id: str, next_url: str | None) -> Replayable:
        response = responses.success(enquiry_id, next_url, html=_wants_html(app))
        return to_replayable(response, enquiry_id)

    def answered(answer: Answer) -> Response[str]:
        app.context.update(outcome=answer.outcome, enquiry_id=answer.enquiry_id)
        return from_replayable(answer.response)

    @app.post(ENQUIRIES_PATH)
    def submit() -> Response[str]:
        key = _idempotency_key(app)
        event = app.current_event
        try:
            _, fields = read_form(event.body, bool(event.is_base64_encoded), _header(app, "content-type"))
        except ApiError:
            # A repeated key gets the first answer, whatever this body holds.
            earlier = service.earlier_answer(key)
            if earlier is None:
                raise
            return answered(earlier)
        address = str(event.request_context.http.source_ip or "")
        # The id is made here, once: the answer names it before the write that stores both.
        submission = Submission(fields, key, address, clock(), new_enquiry_id())
        return answered(service.submit(submission, render_success))

    return app
