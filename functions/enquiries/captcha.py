"""The captcha check the submission service asks for, and its two failures. The one verifier is
Cloudflare Turnstile (turnstile.py), imported only where it is configured; this module costs nothing
to import, so the API can name the failures without it."""

from __future__ import annotations

from typing import Protocol


class CaptchaFailed(Exception):
    """The token was missing, wrong, expired or already used: the visitor's to fix."""


class CaptchaUnavailable(Exception):
    """The verifier could not be asked or gave no usable answer; `reason` is safe to log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class CaptchaVerifier(Protocol):
    def verify(self, token: str, remote_ip: str | None) -> None:
        """Return if the token passes; raise CaptchaFailed, CaptchaUnavailable or SecretUnavailable."""
