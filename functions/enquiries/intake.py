"""What the submission service asks of the store that takes enquiries in: the records that let a
repeat get the first answer, the outcomes of a write, and the store's interface.

`storage/intake_store.py` is the store on DynamoDB; the tests also have one in memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from enquiries.errors import EnquiriesError
from enquiries.rate_window import RateWindow

# An answer as it can be given again: the caller renders it, the store keeps it and hands it back.
# It holds the id of the enquiry it answered under "enquiry_id" (None for a refusal), and under
# REQUEST_FINGERPRINT the hash of the request's normalised fields, so that a key reused for another
# enquiry is told apart from a retry (records written before it was kept have none: they match).
Replayable = dict[str, Any]
REQUEST_FINGERPRINT = "request_fingerprint"

IDEMPOTENCY_KEY_SECONDS = 24 * 3600
DOUBLE_SUBMIT_SECONDS = 10 * 60


@dataclass(frozen=True)
class ReplayKey:
    """A record that makes a repeat of this request get the same answer. A read-only key is looked
    for but never written: the request gets its answer if it is there."""

    scope: str
    digest: str
    ttl_seconds: int
    read_only: bool = False

    @property
    def record_id(self) -> str:
        return f"replay#{self.scope}#{self.digest}"


class Replayed(EnquiriesError):
    """A repeat: here is the answer the first request got."""

    def __init__(self, key: ReplayKey, response: Replayable) -> None:
        super().__init__(f"replay of {key.scope}")
        self.key = key
        self.response = response


class IdempotencyKeyReused(EnquiriesError):
    """The Idempotency-Key answered an earlier request with other fields: this one is refused (422),
    never answered with that request's answer (the IETF Idempotency-Key draft, "Error Scenarios":
    https://datatracker.ietf.org/doc/draft-ietf-httpapi-idempotency-key-header/)."""


class RateLimited(EnquiriesError):
    def __init__(self, retry_after: int) -> None:
        super().__init__(f"rate limited for {retry_after} s")
        self.retry_after = retry_after


class IdAlreadyUsed(EnquiriesError):
    """An enquiry with this id exists already: the conditional write refused to overwrite it."""


class IntakeStore(Protocol):
    def accept(
        self, item: dict[str, Any], response: Replayable, keys: list[ReplayKey], rate: RateWindow | None
    ) -> None:
        """Store the enquiry with its guards, or raise Replayed, RateLimited, IdAlreadyUsed or
        StorageUnavailable (nothing is written then)."""

    def accept_caught(
        self, enquiry_id: str, response: Replayable, keys: list[ReplayKey], rate: RateWindow | None
    ) -> None:
        """A robot-trap hit answered as if enquiry `enquiry_id` were stored: remember `response`
        under `keys` and count the hit in `rate`, storing no enquiry; or raise Replayed,
        RateLimited or StorageUnavailable (nothing is written then)."""

    def recall(self, keys: list[ReplayKey]) -> tuple[ReplayKey, Replayable] | None:
        """The first remembered answer among `keys`, if any; StorageUnavailable if it cannot look."""

    def remember(self, key: ReplayKey, response: Replayable) -> None:
        """Remember `response` under `key` too, unless it already holds one."""
