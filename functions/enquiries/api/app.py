"""The submission API: routes, origin check, error rendering and the one log line per request.

`build_app` takes the settings, the store and a clock, so tests hand it fakes or moto-backed ones.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, CORSConfig, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware

from enquiries.api.body import FORM_TYPES, media_type, read_form
from enquiries.api.errors import RETRY_AFTER_SECONDS, ApiError, error_body
from enquiries.client_address import AddressHasher
from enquiries.log import logger
from enquiries.origins import serialise_origin
from enquiries.settings import Settings
from enquiries.storage.enquiry_store import StorageUnavailable
from enquiries.storage.intake_store import (
    DOUBLE_SUBMIT_SECONDS,
    IDEMPOTENCY_KEY_SECONDS,
    DynamoIntakeStore,
    IntakeStore,
    RateLimited,
    Replayable,
    Replayed,
    ReplayKey,
)
from enquiries.storage.rate_limit import RateWindow
from enquiries.stored_secret import SecretUnavailable, StoredSecret
from enquiries.submission import accept_enquiry, answer_caught, utc_now
from enquiries.validation import MESSAGES as FIELD_MESSAGES
from enquiries.validation import Enquiry, FieldRules, InvalidEnquiry, validate_enquiry

if TYPE_CHECKING:
    from enquiries.turnstile import TurnstileVerifier

ENQUIRIES_PATH = "/enquiries"
ALLOWED_METHODS = "OPTIONS, POST"
# A preflight allows POST (the only route) with these request headers, as the contract and the
# template's CorsConfiguration say (tests/test_cors.py compares them).
CORS_ALLOW_HEADERS = ("Content-Type", "Idempotency-Key")
CORS_EXPOSE_HEADERS = ("Retry-After",)
CORS_MAX_AGE_SECONDS = 600
SUCCESS_MESSAGE = "Thank you: your enquiry has been sent. We will reply by email as soon as we can."
IDEMPOTENCY_KEY_MAX = 128
JSON_TYPE = "application/json"
HTML_TYPE = "text/html; charset=utf-8"
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
CAPTCHA_MESSAGE = FIELD_MESSAGES["captcha"]


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
    # urlsplit silently drops CR, LF and tab, so they are refused here: they must never reach Location.
    if any(char.isspace() or ord(char) < 32 or ord(char) == 127 for char in url):
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc or "@" in parts.netloc or "\\" in url:
        return None
    return _serialised_origin(f"{parts.scheme}://{parts.netloc}")


def _serialised_origin(origin: str) -> str | None:
    """The origin as browsers write it (so https://Clinic.example:443 matches), or None if it is none."""
    try:
        return serialise_origin(origin)
    except ValueError:
        return None


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


@dataclass
class Services:
    """What the submission path talks to. Tests hand in fakes or moto-backed ones. Without a
    hasher there is no double-submit detection and no rate limit (both key on the address);
    without a verifier, no captcha."""

    store: IntakeStore
    hasher: AddressHasher | None = None
    verifier: TurnstileVerifier | None = None


def services_from(settings: Settings) -> Services:
    """The real services for these settings, each creating its AWS client on first use."""
    return Services(
        store=DynamoIntakeStore(settings.table_name, settings.guard_table_name or ""),
        hasher=AddressHasher(settings.client_address_secret_arn)
        if settings.client_address_secret_arn
        else None,
        verifier=_turnstile(settings),
    )


def stored_secrets(services: Services) -> list[StoredSecret]:
    """The Secrets Manager secrets these services read, for the init phase to read first."""
    secrets = [services.hasher.secret] if services.hasher is not None else []
    if services.verifier is not None and services.verifier.stored_secret is not None:
        secrets.append(services.verifier.stored_secret)
    return secrets


def _turnstile(settings: Settings) -> TurnstileVerifier | None:
    if not (settings.turnstile_secret or settings.turnstile_secret_arn):
        return None
    # Imported only when configured: urllib.request is not needed otherwise.
    from enquiries.turnstile import TurnstileVerifier

    if settings.turnstile_secret_arn:
        return TurnstileVerifier(
            StoredSecret("TURNSTILE_SECRET_ARN", settings.turnstile_secret_arn), settings.turnstile_verify_url
        )
    return TurnstileVerifier(settings.turnstile_secret or "", settings.turnstile_verify_url)


def submission_fingerprint(enquiry: Enquiry, client_key: str, caught: bool = False) -> str:
    """Same normalised fields from the same client address: the same submission. A robot-trap hit
    never matches a real enquiry, so a real one is never answered with a trap hit's make-believe."""
    fingerprinted: dict[str, object] = {
        "fields": enquiry.stored_fields(),
        "next": enquiry.next_url,
        "client": client_key,
    }
    if caught:
        fingerprinted["caught"] = True
    material = json.dumps(fingerprinted, sort_keys=True)
    return hashlib.sha256(material.encode()).hexdigest()


def to_replayable(response: Response[str], enquiry_id: str | None) -> Replayable:
    return {
        "status_code": response.status_code,
        "content_type": response.headers.get("Content-Type"),
        "headers": {k: v for k, v in response.headers.items() if k != "Content-Type"},
        "body": response.body,
        "enquiry_id": enquiry_id,
    }


def from_replayable(replayable: Replayable) -> Response[str]:
    return Response(
        status_code=int(replayable["status_code"]),
        content_type=replayable.get("content_type"),
        body=replayable.get("body") or "",
        headers=dict(replayable.get("headers") or {}),
    )


def rate_limited_message(retry_after: int) -> str:
    minutes = max(1, round(retry_after / 60))
    return (
        "You have sent several enquiries from this connection within the hour. "
        f"Please try again in about {minutes} minute{'s' if minutes != 1 else ''}."
    )


def verify_captcha(verifier: TurnstileVerifier, token: str, remote_ip: str) -> None:
    from enquiries.turnstile import CaptchaFailed, CaptchaUnavailable

    try:
        verifier.verify(token, remote_ip or None)
    except CaptchaFailed:
        raise ApiError(
            422, "validation_failed", fields={"captcha": CAPTCHA_MESSAGE}, reason="captcha_failed"
        ) from None
    except CaptchaUnavailable as unavailable:
        raise ApiError(503, "unavailable", reason=unavailable.reason) from None


def count_spam_blocked() -> None:
    from aws_lambda_powertools.metrics import MetricUnit, single_metric

    with single_metric(name="SpamBlocked", unit=MetricUnit.Count, value=1, namespace="Enquiries") as metric:
        metric.add_dimension(name="service", value="enquiries")


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


def build_app(
    settings: Settings,
    services: Services | IntakeStore,
    clock: Callable[[], datetime] = utc_now,
) -> APIGatewayHttpResolver:
    """The resolver for POST /enquiries. `services` may be a bare store (no duplicates, limits or captcha)."""
    if not isinstance(services, Services):
        services = Services(store=services)
    origins = list(settings.allowed_origins)
    cors = _contract_cors(origins) if origins else None
    # debug=False whatever POWERTOOLS_DEV says: in debug mode the resolver prints every event, body
    # and all, to the function's log.
    app = APIGatewayHttpResolver(cors=cors, debug=False)
    rules = FieldRules(
        services=settings.services,
        require_consent=settings.require_consent,
        default_phone_region=settings.default_phone_region,
        captcha_required=services.verifier is not None,
    )
    allowed_origins = set(origins)  # serialised by the settings, as browsers send them

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
            if origin is not None and _serialised_origin(origin) not in allowed_origins:
                raise ApiError(403, "origin_not_allowed", reason="origin")
            if app.current_event.raw_path != ENQUIRIES_PATH and app.current_event.http_method == "OPTIONS":
                # Powertools would answer any path's preflight; only /enquiries exists.
                raise ApiError(404, "not_found", reason="path")
            response = next_middleware(app)
        except (StorageUnavailable, SecretUnavailable) as unavailable:  # AWS or its configuration failing
            # Throttled, down or timing out, or a secret the deployment cannot read (logged once, by
            # name): "try again soon", with Retry-After, never a 500.
            app.context.update(outcome="unavailable", reason=unavailable.reason)
            response = render_error(ApiError(503, "unavailable", reason=unavailable.reason))
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
        if app.current_event.raw_path != ENQUIRIES_PATH:
            raise ApiError(404, "not_found", reason="path")
        if app.current_event.request_context.http.method.upper() == "OPTIONS":
            # No ALLOWED_ORIGINS, so no preflight to answer; still say what the path allows.
            return Response(status_code=204, content_type=None, body="", headers={"Allow": ALLOWED_METHODS})
        raise ApiError(405, "method_not_allowed", reason="method")

    def success(enquiry_id: str, next_url: str | None) -> Response[str]:
        if _wants_html(app):
            target = allowed_url(next_url) or settings.success_url
            if target:
                return Response(
                    status_code=303, content_type=HTML_TYPE, body="", headers={"Location": target}
                )
            from enquiries.api.pages import thank_you_page

            return Response(status_code=200, content_type=HTML_TYPE, body=thank_you_page(enquiry_id))
        return _json(201, {"id": enquiry_id, "message": SUCCESS_MESSAGE})

    def replay(replayable: Replayable, outcome: str) -> Response[str]:
        app.context.update(outcome=outcome, enquiry_id=replayable.get("enquiry_id"))
        return from_replayable(replayable)

    def recalled(keys: list[ReplayKey]) -> Response[str] | None:
        """The response remembered for a repeat of this request, if any.

        It is asked only where the request has an answer of its own without it: its field errors,
        or a captcha check followed by the transaction, which finds repeats itself. So a lookup
        that fails (throttled, down) answers "none": it must not turn that answer into a 503."""
        if not keys:
            return None
        try:
            found = services.store.recall(keys)
        except StorageUnavailable as unavailable:
            logger.warning("replay lookup unavailable", extra={"reason": unavailable.reason})
            return None
        return replay(found[1], f"replay:{found[0].scope}") if found else None

    def submission(idempotency_key: str | None) -> Response[str]:
        keys: list[ReplayKey] = []
        if idempotency_key is not None:
            digest = hashlib.sha256(idempotency_key.encode()).hexdigest()
            keys.append(ReplayKey("idempotency-key", digest, IDEMPOTENCY_KEY_SECONDS))
        event = app.current_event
        try:
            _, fields = read_form(event.body, bool(event.is_base64_encoded), _header(app, "content-type"))
            try:
                enquiry = validate_enquiry(fields, rules)
            except InvalidEnquiry as invalid:
                raise ApiError(422, "validation_failed", fields=invalid.fields, reason="fields") from None
        except ApiError:
            # A repeated key gets the first response, whatever this body holds.
            earlier = recalled(keys)
            if earlier is not None:
                return earlier
            raise
        # A robot filled the hidden field. It goes the way a real enquiry goes (field errors,
        # captcha, repeats, rate limit) up to the write, where nothing is stored or sent: only
        # what lets its repeats get the same answer, as a real enquiry's would.
        caught = enquiry.gotcha is not None
        now = clock()
        rate = None
        if services.hasher is not None:
            client_key = services.hasher.hash(source_ip())
            if caught:
                # A trap hit that repeats a real enquiry gets the real one's answer, as a double
                # click would; a real enquiry never gets a trap hit's.
                real = submission_fingerprint(enquiry, client_key)
                keys.append(ReplayKey("double-submit", real, DOUBLE_SUBMIT_SECONDS, read_only=True))
            fingerprint = submission_fingerprint(enquiry, client_key, caught)
            keys.append(ReplayKey("double-submit", fingerprint, DOUBLE_SUBMIT_SECONDS))
            if settings.rate_limit_per_hour > 0:
                rate = RateWindow(client_key, settings.rate_limit_per_hour, now.timestamp())
        if services.verifier is not None:
            # A Turnstile token works once: a repeat must get its first answer before the check.
            earlier = recalled(keys)
            if earlier is not None:
                return earlier
            verify_captcha(services.verifier, enquiry.captcha_token or "", source_ip())

        def respond(enquiry_id: str) -> Replayable:
            return to_replayable(success(enquiry_id, enquiry.next_url), enquiry_id)

        try:
            if caught:
                count_spam_blocked()
                accepted = answer_caught(services.store, respond=respond, keys=keys, rate=rate)
            else:
                accepted = accept_enquiry(
                    enquiry,
                    services.store,
                    respond=respond,
                    keys=keys,
                    rate=rate,
                    retention_days=settings.retention_days,
                    now=now,
                )
        except Replayed as repeat:
            if repeat.key.scope == "double-submit" and idempotency_key is not None:
                # Remember the answer under this key too, so its retries keep getting it after 10 minutes.
                with contextlib.suppress(StorageUnavailable):
                    services.store.remember(keys[0], repeat.response)
            return replay(repeat.response, f"replay:{repeat.key.scope}")
        except RateLimited as limited:
            raise ApiError(
                429,
                "rate_limited",
                headers={"Retry-After": str(limited.retry_after)},
                message=rate_limited_message(limited.retry_after),
                reason="rate_limit",
            ) from None
        app.context.update(enquiry_id=accepted.enquiry_id, outcome="honeypot" if caught else "stored")
        return from_replayable(accepted.response)

    @app.post(ENQUIRIES_PATH)
    def submit() -> Response[str]:
        key = _header(app, "idempotency-key")
        if key is not None and (
            not key or len(key) > IDEMPOTENCY_KEY_MAX or any(ord(c) < 32 or ord(c) == 127 for c in key)
        ):
            raise ApiError(
                400,
                "bad_request",
                message=f"Idempotency-Key must be 1 to {IDEMPOTENCY_KEY_MAX} printable characters.",
                reason="idempotency_key",
            )
        return submission(key)

    def source_ip() -> str:
        return str(app.current_event.request_context.http.source_ip or "")

    return app
