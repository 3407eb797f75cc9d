"""Cloudflare Turnstile, checked server-side when TURNSTILE_SECRET or TURNSTILE_SECRET_ARN is set.

A failed check is the visitor's to fix (422 on `captcha`); an unreachable verifier, or an answer that
is not one siteverify documents, is ours (503), never an acceptance, since accepting unverified posts
is exactly what a bot would want.
https://developers.cloudflare.com/turnstile/get-started/server-side-validation/
"""

from __future__ import annotations

import io
import json
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from http.client import HTTPConnection, HTTPException, HTTPSConnection
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

from enquiries.captcha import CaptchaFailed, CaptchaUnavailable
from enquiries.errors import EnquiriesError
from enquiries.request_budget import require

if TYPE_CHECKING:
    from enquiries.stored_secret import StoredSecret

DEFAULT_VERIFY_URL = "https://challenges.cloudflare.com/turnstile/v0/siteverify"
# The whole exchange (connection, request, answer) ends within this, however slowly the verifier
# sends: a socket timeout alone bounds each read, and a verifier sending a byte a second would hold a
# request for minutes.
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


class MalformedAnswer(EnquiriesError, ValueError):
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
        require(TIMEOUT_SECONDS, "turnstile")  # within the request's budget (request_budget.py)
        try:
            status, content_type, body = _post(self._url, urlencode(form).encode(), TIMEOUT_SECONDS)
        # Connection failures, timeouts (the deadline's too) and resets are OSErrors; a malformed or
        # cut-off answer is an HTTPException.
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


class _Deadline:
    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._end = clock() + seconds

    def left(self) -> float:
        """The seconds left; TimeoutError (an OSError) when there are none."""
        left = self._end - self._clock()
        if left <= 0:
            raise TimeoutError("deadline passed")
        return left


class _DeadlineReader(io.RawIOBase):
    """A socket's input where each read waits at most for what is left of the deadline."""

    def __init__(self, sock: socket.socket, deadline: _Deadline) -> None:
        super().__init__()
        self._sock = sock
        self._deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        self._sock.settimeout(self._deadline.left())
        return self._sock.recv_into(buffer)


class _DeadlineSocket:
    """A connected socket as http.client uses it (sendall, makefile, close), every wait bounded by
    the deadline: so the status line, headers and body together end by it, a byte at a time or not."""

    def __init__(self, sock: socket.socket, deadline: _Deadline) -> None:
        self._sock = sock
        self._deadline = deadline

    def sendall(self, data: bytes) -> None:
        self._sock.settimeout(self._deadline.left())
        self._sock.sendall(data)

    def makefile(self, mode: str, *args: Any, **kwargs: Any) -> io.BufferedReader:
        return io.BufferedReader(_DeadlineReader(self._sock, self._deadline))

    def close(self) -> None:
        """Nothing: http.client closes the connection before the answer is read (HTTP/1.0 answers),
        which a plain socket survives while its file is open; `_post` closes the socket at the end."""

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


def _post(url: str, body: bytes, seconds: float) -> tuple[int, str, bytes]:
    """POST a form to `url`; the status, media type and at most MAX_ANSWER_BYTES + 1 bytes of the
    answer, all within `seconds` (TimeoutError past them). The connection, and for https the TLS
    handshake's few reads, each wait at most for the time left."""
    deadline = _Deadline(seconds)
    parts = urlsplit(url)
    kind = HTTPSConnection if parts.scheme == "https" else HTTPConnection
    connection = kind(parts.hostname or "", parts.port, timeout=deadline.left())
    raw: socket.socket | None = None
    try:
        connection.connect()
        raw = connection.sock
        connection.sock = _DeadlineSocket(raw, deadline)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        connection.request(
            "POST", path, body=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
        )
        response = connection.getresponse()
        answer = response.read(MAX_ANSWER_BYTES + 1)
        return response.status, response.headers.get_content_type(), answer
    finally:
        connection.close()
        if raw is not None:
            raw.close()


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
