"""The submission API: routing, the Origin check, the error boundary, rendering, and the one log line
per request. What becomes of a submission is the submission service's to decide
(`enquiries/submission.py`); here it is read from HTTP and its answer written back.

`build_app` takes the settings, the services and a clock, so tests hand it fakes or moto-backed ones.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from http import HTTPStatus
from typing import Any

from enquiries import canary, request_budget
from enquiries.api.body import FORM_TYPES, media_type, read_form
from enquiries.api.errors import ApiError, contract_error
from enquiries.api.http import Cors, Request, Response
from enquiries.api.responses import (
    ALLOWED_METHODS,
    Responses,
    from_replayable,
    serialised_origin,
    to_replayable,
)
from enquiries.api.services import Services
from enquiries.field_rules import field_rules
from enquiries.forms import Form, Forms, deployment_forms
from enquiries.ids import new_enquiry_id
from enquiries.intake import IntakeStore, Replayable
from enquiries.log import logger
from enquiries.settings import FIELDS_BY_VARIABLE, Settings
from enquiries.submission import Answer, Submission, SubmissionService, utc_now
from enquiries.text_classes import is_control_format_or_separator

ENQUIRIES_PATH = "/enquiries"
# A preflight allows POST (the only route) with these request headers, as the contract and the
# template's CorsConfiguration say (tests/test_cors.py compares them).
CORS_ALLOW_HEADERS = ("Content-Type", "Idempotency-Key")
ALLOWED_METHODS_LIST = ("OPTIONS", "POST")
CORS_EXPOSE_HEADERS = ("Retry-After",)
CORS_MAX_AGE_SECONDS = 600
IDEMPOTENCY_KEY_MAX = 128
FORMS_PREFIX = "/forms/"
# The field names a log line may show beside the forms' own (forms/*.yaml).
REQUEST_FIELDS = ("_gotcha", "_next", "captcha", "cf-turnstile-response")


def _wants_html(request: Request) -> bool:
    """An HTML form post from a browser: it should get pages and redirects, not JSON."""
    kind, _ = media_type(request.header("content-type"))
    return kind in FORM_TYPES and "text/html" in (request.header("accept") or "")


def _idempotency_key(request: Request) -> str | None:
    key = request.header("idempotency-key")
    if key is not None and (
        not key or len(key) > IDEMPOTENCY_KEY_MAX or any(is_control_format_or_separator(char) for char in key)
    ):
        raise ApiError(
            400,
            "bad_request",
            message=f"Idempotency-Key must be 1 to {IDEMPOTENCY_KEY_MAX} printable characters.",
            reason="idempotency_key",
        )
    return key


def contract_cors(origins: list[str]) -> Cors:
    """The contract's CORS, the same as the template's HttpApi CorsConfiguration."""
    return Cors(
        allowed_origins=frozenset(origins),
        allow_methods=ALLOWED_METHODS_LIST,
        allow_headers=CORS_ALLOW_HEADERS,
        # The form script reads Retry-After on a 429 or 503 to know when to offer a resend.
        expose_headers=CORS_EXPOSE_HEADERS,
        max_age_seconds=CORS_MAX_AGE_SECONDS,
    )


# The setting that admits a site, as the refusal's log line names it (from the settings table).
ORIGINS_SETTING = next(name for name, field in FIELDS_BY_VARIABLE.items() if field == "allowed_origins")


def _log_request(
    request: Request, outcome: Outcome, status: int, started: float, known: frozenset[str]
) -> None:
    logger.info(
        "request handled",
        extra={
            "status": status,
            "method": request.method,
            # Only our path as it is: a bot's (or a visitor's) other paths could carry anything.
            "path": request.path if outcome.form is not None else "(other)",
            "form": outcome.form,
            "outcome": outcome.outcome,
            "reason": outcome.reason,
            "enquiry_id": outcome.enquiry_id,
            # Field names only, and only ours: a bot's made-up names could carry anything.
            "invalid_fields": sorted(
                name if name in known else "(unknown)" for name in outcome.invalid_fields or {}
            ),
            "reference": request.request_id if status >= HTTPStatus.INTERNAL_SERVER_ERROR else None,
            # A site's address, not a person's (and only as a browser could send it): without it, a
            # site left out of the setting looks to its developer like a network failure (issue 23).
            "refused_origin": outcome.refused_origin,
            "allowed_by": ORIGINS_SETTING if outcome.refused_origin else None,
            "duration_ms": round((time.perf_counter() - started) * 1000, 1),
        },
    )


@dataclass
class Outcome:
    """What the request's log line says became of it (never visitor content)."""

    outcome: str = "ok"
    reason: str | None = None
    enquiry_id: str | None = None
    invalid_fields: dict[str, str] | None = None
    form: str | None = None  # the id of a form the path names (ours: safe to log)
    refused_origin: str | None = None


def _as_contract_error(request: Request, outcome: Outcome, error: Exception) -> ApiError:
    """The one place that turns any failure into the contract's answer, and a bug into its 500."""
    answer = contract_error(error)
    if answer is not None:
        outcome.outcome, outcome.reason, outcome.invalid_fields = answer.code, answer.reason, answer.fields
        return answer
    # The traceback's frames, without the exception's message, which could echo visitor input.
    frames = "".join(traceback.format_tb(error.__traceback__))
    logger.error(
        "unexpected failure",
        extra={"reference": request.request_id, "error_type": type(error).__name__, "stack": frames},
    )
    outcome.outcome, outcome.reason = "internal_error", type(error).__name__
    return ApiError(500, "internal_error")


class SubmissionApi:
    """POST /enquiries and POST /forms/<form-id>, their CORS preflight, and the contract's 403/404/405
    for everything else."""

    def __init__(
        self,
        settings: Settings,
        services: Services,
        clock: Callable[[], datetime],
        forms: Forms,
    ) -> None:
        self.forms = forms
        self.known_fields = frozenset((*forms.all_field_names(), *REQUEST_FIELDS))
        origins = list(settings.allowed_origins)
        self.allowed_origins = frozenset(origins)  # serialised by the settings, as browsers send them
        self.cors = contract_cors(origins) if origins else None
        self.responses = Responses(self.allowed_origins, settings.success_url, settings.clinic_phone)
        self.clock = clock
        self.hasher = services.hasher
        self.service = SubmissionService(
            store=services.store,
            rules=field_rules(settings, captcha_required=services.verifier is not None),
            hasher=services.hasher,
            verifier=services.verifier,
            rate_limit_per_hour=settings.rate_limit_per_hour,
            retention_days=settings.retention_days,
        )

    def resolve(self, event: dict[str, Any], context: object = None) -> dict[str, Any]:
        """The Lambda result for one HTTP API event (payload format 2.0)."""
        started = time.perf_counter()
        request = Request.from_event(event)
        form = self._form(request.path)
        outcome = Outcome(form=form.id if form is not None else None)
        origin = request.header("origin")
        try:
            if origin is not None and serialised_origin(origin) not in self.allowed_origins:
                outcome.refused_origin = serialised_origin(origin) or "(not an origin)"
                raise ApiError(403, "origin_not_allowed", reason="origin")
            # Every outbound call starts only while the request's budget allows (request_budget.py).
            with request_budget.within(request_budget.REQUEST_BUDGET_SECONDS):
                response = self._route(request, outcome, form)
        except Exception as error:  # the error boundary: every failure gets the contract's answer
            response = self.responses.error(
                _as_contract_error(request, outcome, error),
                html=_wants_html(request),
                referer=request.header("referer"),
                request_id=request.request_id,
                form=form or self.forms.default,
            )
        response.headers["Vary"] = "Origin"
        response.headers["Cache-Control"] = "no-store"
        _log_request(request, outcome, response.status_code, started, self.known_fields)
        if self.cors is not None:
            response.headers.update(self.cors.headers(origin))
        return response.as_result()

    def _form(self, path: str) -> Form | None:
        """The form a path names: /enquiries the default, /forms/<form-id> each form."""
        if path == ENQUIRIES_PATH:
            return self.forms.default
        if path.startswith(FORMS_PREFIX):
            return self.forms.by_id.get(path.removeprefix(FORMS_PREFIX))
        return None

    def _route(self, request: Request, outcome: Outcome, form: Form | None) -> Response:
        if form is None:
            raise ApiError(404, "not_found", reason="path")
        method = request.method.upper()
        if method == "POST":
            return self._submit(request, outcome, form)
        if method == "OPTIONS":
            if self.cors is not None:  # a browser's preflight
                return Response(204, headers={"Access-Control-Allow-Methods": self.cors.methods})
            # No ALLOWED_ORIGINS, so no preflight to answer; still say what the path allows.
            return Response(204, headers={"Allow": ALLOWED_METHODS})
        raise ApiError(405, "method_not_allowed", reason="method")

    def _submit(self, request: Request, outcome: Outcome, form: Form) -> Response:
        key = _idempotency_key(request)

        def answered(answer: Answer) -> Response:
            outcome.outcome, outcome.enquiry_id = answer.outcome, answer.enquiry_id
            return from_replayable(answer.response)

        try:
            _, fields = read_form(request.body, request.is_base64_encoded, request.header("content-type"))
        except ApiError:
            # A repeated key gets the first answer, whatever this body holds.
            earlier = self.service.earlier_answer(key)
            if earlier is None:
                raise
            return answered(earlier)

        def render_success(enquiry_id: str, next_url: str | None) -> Replayable:
            response = self.responses.success(
                enquiry_id,
                next_url,
                html=_wants_html(request),
                referer=request.header("referer"),
                noun=form.noun,
            )
            return to_replayable(response, enquiry_id)

        # The id is made here, once: the answer names it before the write that stores both.
        now = self.clock()
        canary_proof = self._is_canary(request, key, now)
        submission = Submission(
            fields, key, request.source_ip, now, new_enquiry_id(), form, canary=canary_proof
        )
        return answered(self.service.submit(submission, render_success))

    def _is_canary(self, request: Request, key: str | None, now: datetime) -> bool:
        """Whether the request carries the stack's own canary proof (enquiries/canary.py). Asked only
        of a request with the proof's header; without the address key nothing is a canary."""
        proof = request.header(canary.HEADER)
        if proof is None or self.hasher is None:
            return False
        return canary.is_canary(proof, self.hasher.canary_key(), idempotency_key=key, now=now.timestamp())


def build_app(
    settings: Settings,
    services: Services | IntakeStore,
    clock: Callable[[], datetime] = utc_now,
    forms: Forms | None = None,
) -> SubmissionApi:
    """The API for POST /enquiries and POST /forms/<form-id>. `services` may be a bare store (no
    duplicates, limits or captcha); `forms` defaults to the deployment's (forms.py), checked against
    the settings (a route to a service SERVICES does not list is a FormError)."""
    if not isinstance(services, Services):
        services = Services(store=services)
    if forms is None:
        forms = deployment_forms()
    forms.check_routes(settings.services)
    return SubmissionApi(settings, services, clock, forms)
