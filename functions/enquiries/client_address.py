"""A keyed hash of the client's address: rate limits and double-submit checks need to recognise an
address, never to know it. The key is a secret the template creates in Secrets Manager, read once
per container, so the hashes cannot be reversed by trying every IPv4 address."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from typing import Any

from enquiries import canary
from enquiries.aws_clients import submission_secrets
from enquiries.stored_secret import StoredSecret

SETTING = "CLIENT_ADDRESS_SECRET_ARN"


class AddressHasher:
    def __init__(self, secret_id: str, client_factory: Callable[[], Any] = submission_secrets) -> None:
        self.secret = StoredSecret(SETTING, secret_id, client_factory)

    def hash(self, address: str) -> str:
        """The address's HMAC, or SecretUnavailable when the key cannot be read."""
        return keyed_hash(self.secret.value().encode(), address)

    def canary_key(self) -> bytes:
        """The canary proof's key, derived from the same secret (SecretUnavailable as above)."""
        return canary.derive_key(self.secret.value())


def keyed_hash(key: bytes, text: str) -> str:
    """HMAC-SHA256 of `text` under `key`, in hex: every keyed hash the stack stores (and the operator's
    command looks up) is this one."""
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()
