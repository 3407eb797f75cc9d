"""What went wrong, in one line for the person at the terminal: never a traceback, never enquiry text."""

from __future__ import annotations

from enquiries_cli.functions_adapter import StorageUnavailable

_POLICY_HINT = "attach the stack's OperatorPolicyArn policy to your role (README: For the clinic)"


def describe(error: Exception) -> str:
    """One line about `error` (an AWS or botocore failure, or anything unexpected)."""
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        ConnectTimeoutError,
        EndpointConnectionError,
        NoCredentialsError,
        NoRegionError,
        ProfileNotFound,
        ReadTimeoutError,
        TokenRetrievalError,
    )

    if isinstance(error, StorageUnavailable):
        return f"DynamoDB is not answering now ({error.reason}): try again in a minute"
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        code = str(details.get("Code", "Unknown"))
        operation = error.operation_name
        if "AccessDenied" in code or code in ("UnauthorizedOperation", "AuthorizationError"):
            return f"AWS refused {operation} ({code}): {_POLICY_HINT}"
        if code in (
            "ExpiredToken",
            "ExpiredTokenException",
            "UnrecognizedClientException",
            "InvalidClientTokenId",
        ):
            return (
                f"AWS did not accept your credentials ({code}): sign in again (aws sso login, or a new key)"
            )
        if "Throttl" in code or code in ("TooManyRequestsException", "RequestLimitExceeded"):
            return f"AWS is throttling {operation} ({code}): try again in a minute"
        message = " ".join(str(details.get("Message", "")).split())
        return f"{operation} failed: {code}" + (f": {message}" if message else "")
    if isinstance(error, NoCredentialsError):
        return (
            "no AWS credentials: sign in (aws configure or aws sso login); pass --profile or set AWS_PROFILE"
        )
    if isinstance(error, TokenRetrievalError):
        return "your AWS sign-in has expired: sign in again (aws sso login)"
    if isinstance(error, NoRegionError):
        return "no AWS region: pass --region, or set AWS_REGION or a profile's region"
    if isinstance(error, ProfileNotFound):
        return f"{error}: check --profile or AWS_PROFILE"
    if isinstance(error, (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError)):
        return f"cannot reach AWS ({type(error).__name__}): check the network, then try again"
    if isinstance(error, BotoCoreError):
        return f"{type(error).__name__}: {error}"
    # Not str(error): an unexpected error's text could quote what it was working on.
    return f"unexpected failure ({type(error).__name__}); what was done so far is printed above"
