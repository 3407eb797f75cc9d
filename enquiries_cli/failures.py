"""What went wrong, in one line for the person at the terminal: never a traceback, never enquiry text."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from enquiries_cli.functions_adapter import StorageUnavailable

if TYPE_CHECKING:
    from botocore.exceptions import ClientError

_POLICY_HINT = "attach the stack's OperatorPolicyArn policy to your role (docs/clinic.md)"
_NO_CREDENTIALS = (
    "no AWS credentials: sign in (aws configure or aws sso login); pass --profile or set AWS_PROFILE"
)
_DENIED_CODES = ("UnauthorizedOperation", "AuthorizationError")
_EXPIRED_CODES = (
    "ExpiredToken",
    "ExpiredTokenException",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
)
_THROTTLED_CODES = ("TooManyRequestsException", "RequestLimitExceeded")


def describe(error: Exception) -> str:
    """One line about `error` (an AWS or botocore failure, or anything unexpected)."""
    from botocore.exceptions import ClientError

    if isinstance(error, StorageUnavailable):
        return f"DynamoDB is not answering now ({error.reason}): try again in a minute"
    if isinstance(error, ClientError):
        return _describe_client_error(error)
    # The first kind `error` is an instance of says it; the order matters (BotoCoreError is the base
    # of the more specific botocore errors).
    for kinds, say in _botocore_descriptions():
        if isinstance(error, kinds):
            return say(error)
    # Not str(error): an unexpected error's text could quote what it was working on.
    return f"unexpected failure ({type(error).__name__}); what was done so far is printed above"


def _botocore_descriptions() -> list[tuple[tuple[type[Exception], ...], Callable[[Exception], str]]]:
    # botocore is imported here, not at the module's top, so that importing the command stays quick.
    from botocore.exceptions import (
        BotoCoreError,
        ConnectTimeoutError,
        EndpointConnectionError,
        NoCredentialsError,
        NoRegionError,
        ProfileNotFound,
        ReadTimeoutError,
        TokenRetrievalError,
    )

    return [
        (
            (NoCredentialsError,),
            lambda _: _NO_CREDENTIALS,
        ),
        ((TokenRetrievalError,), lambda _: "your AWS sign-in has expired: sign in again (aws sso login)"),
        ((NoRegionError,), lambda _: "no AWS region: pass --region, or set AWS_REGION or a profile's region"),
        ((ProfileNotFound,), lambda error: f"{error}: check --profile or AWS_PROFILE"),
        (
            (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError),
            lambda error: f"cannot reach AWS ({type(error).__name__}): check the network, then try again",
        ),
        ((BotoCoreError,), lambda error: f"{type(error).__name__}: {error}"),
    ]


def _describe_client_error(error: ClientError) -> str:
    details = error.response.get("Error", {})
    code = str(details.get("Code", "Unknown"))
    operation = error.operation_name
    if "AccessDenied" in code or code in _DENIED_CODES:
        return f"AWS refused {operation} ({code}): {_POLICY_HINT}"
    if code in _EXPIRED_CODES:
        return f"AWS did not accept your credentials ({code}): sign in again (aws sso login, or a new key)"
    if "Throttl" in code or code in _THROTTLED_CODES:
        return f"AWS is throttling {operation} ({code}): try again in a minute"
    message = " ".join(str(details.get("Message", "")).split())
    return f"{operation} failed: {code}" + (f": {message}" if message else "")
