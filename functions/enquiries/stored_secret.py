"""A secret the function needs from Secrets Manager, read once per container.

Whether a secret can be read depends on the deployment (the secret exists, the role may read it, its
key can decrypt it), so it is read at init and a failure is named there: one error line with the
setting and AWS's error code, never the value. Each request that needs the secret then answers the
contract's 503 with Retry-After, never a 500. A failed read is tried again at most once every
RETRY_SECONDS, on a request that needs it, so a restored secret heals without a redeploy.
(Not named `secrets`: that would read as the standard library's module.)
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from typing import Any

from enquiries.aws import AwsFailure, classify
from enquiries.aws_clients import AWS_CALL_SECONDS, submission_secrets
from enquiries.errors import Unavailable
from enquiries.log import logger
from enquiries.request_budget import require

# Less than the Retry-After of a 503 (30 s), so a visitor's resend always gets a fresh read.
RETRY_SECONDS = 10
# Lambda's init phase has 10 s. One read takes tens of milliseconds, but about 7 s when Secrets
# Manager does not answer (two attempts of a 1 s connect and a 2 s read timeout, and a backoff of up to
# 1 s). Once this much of init has gone, the remaining secrets are left to the first request that needs
# them, so init stays under about 1 + 7 s plus the imports.
# https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html
INIT_BUDGET_SECONDS = 1.0

# What an operator should check for each GetSecretValue error. Every error is a 503 for the visitor;
# these say which ones a redeploy or a change in AWS must fix.
# https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_GetSecretValue.html#API_GetSecretValue_Errors
_HINTS = {
    "AccessDeniedException": "the function's role may not read this secret or use its KMS key",
    "ResourceNotFoundException": "no secret has this ARN in this account and Region",
    "InvalidRequestException": "the secret is deleted or scheduled for deletion: restore it",
    "DecryptionFailure": "Secrets Manager cannot decrypt the secret with its KMS key",
    "InvalidParameterException": "the setting is not a secret ARN or name",
    "NoSecretString": "the secret has no text value (SecretString)",
}
_PASSING = "often passing (throttling, Secrets Manager or the network failing): tried again"
_OTHER = "not one of the errors above: check the function's role, Region and configuration; tried again"


class SecretUnavailable(Unavailable):
    """A secret could not be read, whatever the reason (a 503 for the visitor, never a storage
    failure); `reason` (the setting and AWS's error code) is safe to log."""


class StoredSecret:
    """The text value of one secret, named by the setting that holds its ARN (for the log)."""

    def __init__(
        self,
        setting: str,
        secret_id: str,
        client_factory: Callable[[], Any] = submission_secrets,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.setting = setting
        self._secret_id = secret_id
        self._client_factory = client_factory
        self._clock = clock
        self._value: str | None = None
        self._failed_code: str | None = None
        self._failed_at = 0.0

    def forget(self) -> None:
        """Drop the value and any failure: the next value() reads the secret again, as in a new
        container (a process restored from a SnapStart snapshot is one: enquiries/snapstart.py)."""
        self._value = None
        self._failed_code = None
        self._failed_at = 0.0

    def value(self) -> str:
        """The secret's value, or SecretUnavailable: at once, without a call, within RETRY_SECONDS of
        a failed read."""
        if self._value is not None:
            return self._value
        if self._failed_code is not None and self._clock() - self._failed_at < RETRY_SECONDS:
            raise SecretUnavailable(self._reason(self._failed_code))
        require(AWS_CALL_SECONDS, "get_secret_value")  # within a request: only while its time is left
        value = self._read()
        if isinstance(value, AwsFailure):
            if self._failed_code is None:  # one error line per outage and container, not one a request
                logger.error(
                    "secret unreadable",
                    extra={"setting": self.setting, "aws_error": value.code, "hint": _hint(value)},
                )
            self._failed_code, self._failed_at = value.code, self._clock()
            raise SecretUnavailable(self._reason(value.code))
        if self._failed_code is not None:
            logger.info("secret readable again", extra={"setting": self.setting})
            self._failed_code = None
        self._value = value
        return value

    def _reason(self, code: str) -> str:
        return f"secret:{self.setting}:{code}"

    def _read(self) -> str | AwsFailure:
        """The value, or why it could not be read."""
        try:
            answer = self._client_factory().get_secret_value(SecretId=self._secret_id)
        except Exception as error:
            from botocore.exceptions import BotoCoreError, ClientError  # only when a call fails

            if not isinstance(error, ClientError | BotoCoreError):
                raise
            # Every failure leaves the secret unavailable, transient or not (the classifier says which,
            # for the operator's hint); without AWS's code (no credentials), botocore's exception name.
            return classify(error) or AwsFailure(type(error).__name__, transient=False)
        value = answer.get("SecretString")
        if not isinstance(value, str):  # a SecretBinary secret (a SecretString is never empty)
            return AwsFailure("NoSecretString", transient=False)
        return value


def _hint(failure: AwsFailure) -> str:
    return _HINTS.get(failure.code) or (_PASSING if failure.transient else _OTHER)


def read_at_init(
    secrets: Sequence[StoredSecret],
    budget_seconds: float = INIT_BUDGET_SECONDS,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Read each secret now (Lambda's init phase), within the budget; a failure is logged, not raised."""
    started = clock()
    for secret in secrets:
        if clock() - started > budget_seconds:
            return
        with contextlib.suppress(SecretUnavailable):
            secret.value()
