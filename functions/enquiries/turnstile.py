"""Cloudflare Turnstile, checked server-side when TURNSTILE_SECRET or TURNSTILE_SECRET_ARN is set.

A failed check is the visitor's to fix (422 on `captcha`); an unreachable verifier, or an answer that
is not one siteverify documents, is ours (503), never an acceptance, since accepting unverified posts
is exactly what a bot would want.
https://developers.cloudflare.com/turnstile/get-started/server-side-validation/
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from http import HTTPStatus
from http.client import HTTPException
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode
from urllib.request import Request, urlopen

from enquiries.captcha import CaptchaFailed, CaptchaUnavailable

if TYPE_CHECKING:
    from enquiries.stored_secret import StoredSecret

DEFAULT_VERIFY_URL = "https://challenges.cloudflare.com/turnstile/v0/siteverify"
TIMEOUT_SECONDS = 3
# A real answer is a few hundred bytes; anything much larger is not siteverify's, and is not read.
MAX_ANSWER_BYTES = 16 * 1024
# "A Turnstile token can have up to 2048 characters": a longer one is refused without asking, so a
# visitor cannot make Cloudflare answer `bad-request`, which would read as our fault.
MAX_TOKEN_CHARS = 2048
# siteverify's documented error codes: the token's fault (the visitor's to fix) ...
VISITOR_ERROR_CODES = frozenset({"missing-input-response", "invalid-input-response", "timeout-or-duplicate"})
# ... and the operator's secret, our request, or Cloudflare at fault.
OPERATOR_ERROR_CODES = frozenset(
    {"missing-input-secret", "invalid-input-secret", "bad-request", "internal-error"}
)
# siteverify documents seven error codes: an answer with more than 16 is not its answer.
MAX_ERROR_CODES = 16
# The documented fields this code does not act on: each is text when present.
OPTIONAL_TEXT_FIELDS = ("challenge_ts", "hostname", "action", "cdata")
# A documented answer nests two levels (its `metadata`); far deeper is not siteverify's answer.
MAX_NESTING = 200


@dataclass(frozen=True, slots=True)
class SiteverifyAnswer:
    """What this code acts on in siteverify's answer."""

    success: bool
    error_codes: tuple[str, ...] = ()


class MalformedAnswer(ValueError):
    """The verifier's answer is not one siteverify documents."""


def parse_answer(body: bytes) -> SiteverifyAnswer:
    """siteverify's answer as documented: a UTF-8 JSON object with strict JSON types (no "true" for true,
    no string for a list), and the fields this code does not act on ignored (Cloudflare says answers may
    carry more). Anything else raises MalformedAnswer."""
    try:
        document = json.loads(body.decode("utf-8"))
    # Not UTF-8, not JSON, a number too long for int(), or nested deeper than json's recursion limit.
    except (ValueError, RecursionError):
        raise MalformedAnswer from None
    if not isinstance(document, dict) or not _within_limits(document):
        raise MalformedAnswer
    success = document.get("success")
    codes = document.get("error-codes", [])
    if (
        not isinstance(success, bool)
        or not isinstance(codes, list)
        or len(codes) > MAX_ERROR_CODES
        or not all(isinstance(code, str) for code in codes)
        or not all(isinstance(document.get(name), str | None) for name in OPTIONAL_TEXT_FIELDS)
    ):
        raise MalformedAnswer
    return SiteverifyAnswer(success, tuple(codes))


def _within_limits(document: dict[str, Any]) -> bool:
    """Whether the document nests at most MAX_NESTING levels below the answer and every string is Unicode
    text (no unpaired surrogate escape such as "\\ud800", which I-JSON forbids, RFC 7493 section 2.1).
    The depth is bounded here because json's own bound is the interpreter's recursion limit, which
    varies between Python versions. The walk is iterative, so it cannot overflow itself."""
    pending: list[tuple[object, int]] = [(document, 0)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, str):
            if not value.isascii() and not _unicode_text(value):
                return False
        elif isinstance(value, dict | list):
            if depth > MAX_NESTING:
                return False
            children = [*value.keys(), *value.values()] if isinstance(value, dict) else value
            pending.extend((child, depth + 1) for child in children)
    return True


def _unicode_text(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class TurnstileVerifier:
    """Asks siteverify about a token. The secret is the key itself (TURNSTILE_SECRET) or a stored secret
    (TURNSTILE_SECRET_ARN), read once per container; an unreadable one raises SecretUnavailable."""

    def __init__(self, secret: str | StoredSecret, verify_url: str | None = None) -> None:
        self._secret = secret
        self._url = verify_url or DEFAULT_VERIFY_URL

    @property
    def stored_secret(self) -> StoredSecret | None:
        return None if isinstance(self._secret, str) else self._secret

    def _secret_key(self) -> str:
        if isinstance(self._secret, str):
            return self._secret
        # A secret written from a file often ends in a newline, which Cloudflare would refuse.
        return self._secret.value().strip()

    def verify(self, token: str, remote_ip: str | None) -> None:
        """Return if Cloudflare confirms the token; raise CaptchaFailed or CaptchaUnavailable."""
        if not token or len(token) > MAX_TOKEN_CHARS:
            raise CaptchaFailed
        form = {"secret": self._secret_key(), "response": token}
        if remote_ip:
            form["remoteip"] = remote_ip
        answer = _classify(self._ask(form))
        if answer is not None:
            raise answer

    def _ask(self, form: dict[str, str]) -> SiteverifyAnswer:
        request = Request(  # noqa: S310 - the URL is the operator's setting, http(s) checked at start
            self._url,
            data=urlencode(form).encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            method="POST",
        )
        try:
            with urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310
                status = response.status
                content_type = response.headers.get_content_type()
                body = response.read(MAX_ANSWER_BYTES + 1)
        # URLError (HTTPError for a 4xx or 5xx), timeouts and resets are OSErrors; a cut-off body is an
        # HTTPException.
        except (OSError, HTTPException) as error:
            raise CaptchaUnavailable(f"turnstile:{type(error).__name__}") from None
        if status != HTTPStatus.OK:
            raise CaptchaUnavailable(f"turnstile:http_{status}")
        if content_type != "application/json":  # "the response type will always be application/json"
            raise CaptchaUnavailable("turnstile:not_json")
        if len(body) > MAX_ANSWER_BYTES:
            raise CaptchaUnavailable("turnstile:answer_too_large")
        try:
            return parse_answer(body)
        except MalformedAnswer:
            raise CaptchaUnavailable("turnstile:bad_answer") from None


def _classify(answer: SiteverifyAnswer) -> CaptchaFailed | CaptchaUnavailable | None:
    """None for a pass; what to raise otherwise. Only documented answers count as a verdict."""
    codes = set(answer.error_codes)
    if answer.success:
        return None if not codes else CaptchaUnavailable("turnstile:bad_answer")
    if not codes or not codes <= VISITOR_ERROR_CODES | OPERATOR_ERROR_CODES:
        return CaptchaUnavailable("turnstile:bad_answer")
    ours = sorted(codes & OPERATOR_ERROR_CODES)
    if ours:
        # Our secret, our request or Cloudflare is at fault, not the visitor: a 503, and a reason that
        # names it in the log, rather than a check every visitor would fail.
        return CaptchaUnavailable("turnstile:" + ",".join(ours))
    return CaptchaFailed()
