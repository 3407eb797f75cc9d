"""AWS Signature Version 4 for the submission path's requests (aws_json.py): an HTTPS POST of a JSON body
to a service's root path, with no query string.

Written from AWS's description (https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html)
and held to botocore's `SigV4Auth` by tests/test_aws_json_signing.py, which signs generated requests both ways
and requires the same Authorization header, byte for byte. Only the standard library: importing
botocore's signer (botocore.auth) imports most of botocore, about as much as a botocore client's
import costs (docs/performance.md).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass

ALGORITHM = "AWS4-HMAC-SHA256"
# botocore leaves these unsigned (SIGNED_HEADERS_BLACKLIST in botocore/auth.py, as of 1.44.18): a proxy
# or the HTTP library may change them on the way.
UNSIGNED_HEADERS = frozenset(
    {
        "baggage",
        "connection",
        "expect",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "traceparent",
        "tracestate",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "user-agent",
        "x-amzn-trace-id",
    }
)


@dataclass(frozen=True)
class Credentials:
    """An access key, its secret and the session token that temporary credentials carry."""

    access_key: str
    secret_key: str = ""
    token: str | None = None

    def __repr__(self) -> str:  # never print the secret or the token
        return f"Credentials(access_key={self.access_key!r})"


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()


def _canonical_value(value: str) -> str:
    # Trimmed, with runs of spaces made one (botocore's _header_value).
    return " ".join(value.split())


def authorization(  # noqa: PLR0913 - SigV4's inputs, by name
    credentials: Credentials,
    *,
    region: str,
    service: str,
    amz_date: str,
    headers: Mapping[str, str],
    body: bytes,
) -> str:
    """The Authorization header for a POST to "/" with these `headers` (Host and X-Amz-Date among
    them, and X-Amz-Security-Token when the credentials carry a token) and `body`, at `amz_date`
    (YYYYMMDD'T'HHMMSS'Z', UTC)."""
    signed = sorted(
        (name.lower(), _canonical_value(value))
        for name, value in headers.items()
        if name.lower() not in UNSIGNED_HEADERS
    )
    signed_names = ";".join(name for name, _ in signed)
    canonical_request = "\n".join(
        [
            "POST",
            "/",
            "",
            "".join(f"{name}:{value}\n" for name, value in signed),
            signed_names,
            hashlib.sha256(body).hexdigest(),
        ]
    )
    scope = f"{amz_date[:8]}/{region}/{service}/aws4_request"
    string_to_sign = "\n".join(
        [ALGORITHM, amz_date, scope, hashlib.sha256(canonical_request.encode("utf-8")).hexdigest()]
    )
    key = _hmac(("AWS4" + credentials.secret_key).encode("utf-8"), amz_date[:8])
    for part in (region, service, "aws4_request"):
        key = _hmac(key, part)
    signature = hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
    return (
        f"{ALGORITHM} Credential={credentials.access_key}/{scope}, "
        f"SignedHeaders={signed_names}, Signature={signature}"
    )
