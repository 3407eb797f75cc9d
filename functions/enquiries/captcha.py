"""The captcha check the submission service asks for, and its two failures. The one verifier is
Cloudflare Turnstile (turnstile.py), imported only where it is configured; this module costs nothing
to import, so the API can name the failures without it."""

from __future__ import annotations

from typing import Protocol

from enquiries.errors import EnquiriesError, Unavailable


class CaptchaFailed(EnquiriesError):
    """The token was missing, wrong, expired or already used: the visitor's to fix."""


class CaptchaUnavailable(Unavailable):
    """The verifier could not be asked or gave no usable answer; `reason` is safe to log."""


class CaptchaVerifier(Protocol):
    def verify(self, token: str, remote_ip: str | None) -> None:
        """Return if the token passes; raise CaptchaFailed, CaptchaUnavailable or SecretUnavailable."""
