"""Cloudflare Turnstile, checked server-side when TURNSTILE_SECRET is set.

A failed check is the visitor's to fix (422 on `captcha`); an unreachable verifier is ours (503),
never an acceptance, since accepting unverified posts is exactly what a bot would want.
"""

from __future__ import annotations

import json
from urllib.error import URLError
from urllib.parse import urlencode
from urllib.request import Request, urlopen

DEFAULT_VERIFY_URL = "https://challenges.cloudflare.com/turnstile/v0/siteverify"
TIMEOUT_SECONDS = 3
# siteverify error codes that mean the operator's secret or Cloudflare is at fault.
OPERATOR_ERROR_CODES = frozenset({"missing-input-secret", "invalid-input-secret", "internal-error"})


class CaptchaFailed(Exception):
    """The token was missing, wrong, expired or already used."""


class CaptchaUnavailable(Exception):
    """The verifier could not be asked or gave no usable answer; `reason` is safe to log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TurnstileVerifier:
    def __init__(self, secret: str, verify_url: str | None = None) -> None:
        self._secret = secret
        self._url = verify_url or DEFAULT_VERIFY_URL

    def verify(self, token: str, remote_ip: str | None) -> None:
        """Return if Cloudflare confirms the token; raise CaptchaFailed or CaptchaUnavailable."""
        form = {"secret": self._secret, "response": token}
        if remote_ip:
            form["remoteip"] = remote_ip
        request = Request(  # noqa: S310 - the URL is the operator's setting, http(s) checked at start
            self._url,
            data=urlencode(form).encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            method="POST",
        )
        try:
            with urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310
                answer = json.loads(response.read())
        except (URLError, TimeoutError, OSError) as error:
            raise CaptchaUnavailable(f"turnstile:{type(error).__name__}") from None
        except ValueError:
            raise CaptchaUnavailable("turnstile:bad_answer") from None
        if not isinstance(answer, dict) or not isinstance(answer.get("success"), bool):
            raise CaptchaUnavailable("turnstile:bad_answer")
        if not answer["success"]:
            codes = answer.get("error-codes") or []
            ours = [str(code) for code in codes if code in OPERATOR_ERROR_CODES]
            if ours:
                # Our secret or Cloudflare is at fault, not the visitor: a 503, and a reason that
                # names it in the log, rather than a check every visitor would fail.
                raise CaptchaUnavailable("turnstile:" + ",".join(ours))
            raise CaptchaFailed
