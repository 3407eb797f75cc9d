"""Whether an invocation of the notifier has time to take one more record.

A batch is at most ten records, handled one after another, and one record can take up to
`RECORD_MAX_SECONDS` when AWS is slow: the read (7 s), the claim (7 s), the send (9 s) and the mark
(8 s), each
bounded by its client's timeouts and retries. A Lambda timeout would fail the whole batch with no
partial response, and one striking between a send and its mark would email the clinic twice. So a
record is started only while the time left covers its worst case and the answer. The first record
of an invocation is always started: deferring it would gain nothing, as the next invocation has the
same timeout, which the template sets above this worst case.
"""

from __future__ import annotations

from typing import Protocol

from enquiries.errors import EnquiriesError
from enquiries.log import logger
from enquiries.notify.delivery import DYNAMODB_CALL_MAX_SECONDS, MARK_BUDGET_SECONDS
from enquiries.notify.mailer import SES_CALL_MAX_SECONDS

RECORD_MAX_SECONDS = 2 * DYNAMODB_CALL_MAX_SECONDS + SES_CALL_MAX_SECONDS + MARK_BUDGET_SECONDS
# Time kept back beyond a record's worst case: the response, the metrics and the log flush.
RESPONSE_MARGIN_SECONDS = 1
RECORD_START_MIN_MILLIS = (RECORD_MAX_SECONDS + RESPONSE_MARGIN_SECONDS) * 1000


class NotEnoughTime(EnquiriesError):
    """The invocation has too little time left to handle this record at worst; a later one will."""


class RemainingTime(Protocol):
    def get_remaining_time_in_millis(self) -> int: ...


class RecordBudget:
    """Lets records start, in one invocation, while the time left covers the worst case of one."""

    def __init__(self, context: RemainingTime) -> None:
        self._context = context
        self._started = 0

    def take(self, enquiry_id: str) -> None:
        """Count the record as started, or raise NotEnoughTime (the record then fails, for a retry)."""
        remaining = self._context.get_remaining_time_in_millis()
        if self._started and remaining < RECORD_START_MIN_MILLIS:
            logger.info("record deferred", extra={"enquiry_id": enquiry_id, "remaining_ms": remaining})
            raise NotEnoughTime(f"{remaining} ms left")
        self._started += 1
