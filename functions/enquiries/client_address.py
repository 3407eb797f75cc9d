"""A keyed hash of the client's address: rate limits and double-submit checks need to recognise an
address, never to know it. The key is a secret the template creates in Secrets Manager, read once
per container, so the hashes cannot be reversed by trying every IPv4 address."""

from __future__ import annotations

import functools
import hashlib
import hmac
from collections.abc import Callable
from typing import Any

from enquiries.aws_clients import secretsmanager_client
from enquiries.storage.enquiry_store import StorageUnavailable


class AddressHasher:
    def __init__(self, secret_id: str, client_factory: Callable[[], Any] = secretsmanager_client) -> None:
        self._secret_id = secret_id
        self._client_factory = client_factory

    @functools.cached_property
    def _key(self) -> bytes:
        from botocore.exceptions import ClientError, HTTPClientError
        from botocore.exceptions import ConnectionError as AwsConnectionError

        try:
            secret = self._client_factory().get_secret_value(SecretId=self._secret_id)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "Unknown")
            if code in {"ThrottlingException", "InternalServiceError"}:
                raise StorageUnavailable(f"secret:{code}") from error
            raise
        except (AwsConnectionError, HTTPClientError) as error:
            raise StorageUnavailable(f"secret:{type(error).__name__}") from error
        return str(secret["SecretString"]).encode()

    def hash(self, address: str) -> str:
        return hmac.new(self._key, address.encode(), hashlib.sha256).hexdigest()
