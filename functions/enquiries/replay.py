"""Answer a repeated request with the first one's response, using Powertools idempotency.

Two scopes share the guard table: an `Idempotency-Key` (24 hours) and a double-submit fingerprint
(the normalised fields and hashed client address, 10 minutes). Only successes are remembered: a
failure raises through, Powertools deletes the in-progress record, and a corrected resend is
handled afresh. A request that arrives while the first is still in progress waits for its answer.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from enquiries.aws_clients import dynamodb_client
from enquiries.log import logger
from enquiries.storage.enquiry_store import StorageUnavailable

IDEMPOTENCY_KEY_SECONDS = 24 * 3600
DOUBLE_SUBMIT_SECONDS = 10 * 60
# How long a repeat waits for the first request's answer before giving up with a 503.
_WAIT_SECONDS = 8.0
_POLL_SECONDS = 0.1

Replayable = dict[str, Any]


class ResponseMemory:
    def __init__(self, table_name: str, client_factory: Callable[[], Any] = dynamodb_client) -> None:
        self._table_name = table_name
        self._client_factory = client_factory
        # One persistence layer per scope: Powertools fixes a layer's expiry the first time it is used.
        self._persistence: dict[str, Any] = {}

    def _store(self, scope: str) -> Any:
        if scope not in self._persistence:
            from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

            self._persistence[scope] = DynamoDBPersistenceLayer(
                table_name=self._table_name, key_attr="id", boto3_client=self._client_factory()
            )
        return self._persistence[scope]

    def once(
        self,
        scope: str,
        key: str,
        ttl_seconds: int,
        produce: Callable[[], Replayable],
        lambda_context: Any = None,
    ) -> tuple[Replayable, bool]:
        """The response for (scope, key): produced now, or replayed. Returns (response, replayed)."""
        from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function
        from aws_lambda_powertools.utilities.idempotency.exceptions import (
            IdempotencyAlreadyInProgressError,
            IdempotencyPersistenceLayerError,
        )

        config = IdempotencyConfig(event_key_jmespath="key", expires_after_seconds=ttl_seconds)
        if lambda_context is not None:
            # Lets an in-progress record expire with the invocation, so a crash never blocks the key.
            config.register_lambda_context(lambda_context)
        produced: list[Replayable] = []

        def remembered(request: dict[str, str]) -> Replayable:
            response = produce()
            produced.append(response)
            return response

        # The record id is "<scope>#<hash of key>".
        guarded = idempotent_function(
            data_keyword_argument="request",
            config=config,
            persistence_store=self._store(scope),
            key_prefix=scope,
        )(remembered)
        deadline = time.monotonic() + _WAIT_SECONDS
        while True:
            try:
                response = guarded(request={"key": key})
            except IdempotencyAlreadyInProgressError:
                if time.monotonic() > deadline:
                    raise StorageUnavailable(f"{scope}:still_in_progress") from None
                time.sleep(_POLL_SECONDS)
                continue
            except IdempotencyPersistenceLayerError as error:
                reason = f"{scope}:{type(error.__cause__).__name__}"
                if produced:
                    # The work is done (the enquiry is stored); only remembering its answer failed.
                    # A 503 now would have the visitor resend, and store and email it twice.
                    logger.warning("response not remembered", extra={"reason": reason})
                    return produced[0], False
                raise StorageUnavailable(reason) from error
            return response, not produced
