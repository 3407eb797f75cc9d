"""Where each acknowledgement is decided once: its limits in the guard table, its outcome on the enquiry.

- `reserve` claims the enquirer's address for 24 hours and counts one against the day's cap, in one
  DynamoDB transaction: both or neither. The address record (`ack#<keyed hash of the address>`)
  names the enquiry that claimed it and expires by TTL; one past its `expiration` that TTL has not
  deleted yet no longer counts. The day's count (`ack-day#YYYY-MM-DD`, a UTC day) goes only up to the
  cap, and expires the day after.
- `record` writes the outcome on the enquiry (`acknowledgement`, and for a sent one `acknowledged_at`
  and `ack_message_id`) with a conditional update: the first outcome stays.

A reservation is made before the send and never undone, so the address limit also makes the send
happen at most once: if the process dies between reserving and recording, or the record fails, a
redelivered stream record finds the address claimed by its own enquiry and sends nothing
(`Reservation.INTERRUPTED`). An acknowledgement is a courtesy; a second copy of it is what a spam
relay would send, so a lost one is the better failure.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Any

from enquiries.aws import StorageUnavailable, aws_call, transact_write
from enquiries.aws_clients import dynamodb_client
from enquiries.errors import EnquiriesError
from enquiries.notify import day_count

ADDRESS_WINDOW_SECONDS = 24 * 3600


class Reservation(StrEnum):
    RESERVED = "reserved"
    # Another enquiry from this address was acknowledged (or attempted) within 24 hours.
    ADDRESS_LIMIT = "address_limit"
    # This enquiry reserved the address before and its outcome was never recorded.
    INTERRUPTED = "interrupted"
    DAILY_CAP = "daily_cap"


class AlreadyDecided(EnquiriesError):
    """The enquiry has an acknowledgement outcome already (or is gone)."""


def address_record_id(address_key: str) -> str:
    return f"ack#{address_key}"


DAY_PREFIX = "ack-day#"


def day_record_id(now: float) -> str:
    return day_count.day_record_id(DAY_PREFIX, now)


class DynamoAcknowledgementStore:
    """The enquiries table `table_name`, and the guard table `guard_table_name` holding the address
    claims and the day's count, which stops at `daily_cap`."""

    def __init__(
        self,
        table_name: str,
        guard_table_name: str,
        daily_cap: int,
        client_factory: Callable[[], Any] = dynamodb_client,
    ) -> None:
        self.table_name = table_name
        self.guard_table_name = guard_table_name
        self.daily_cap = daily_cap
        self._client_factory = client_factory

    def reserve(self, enquiry_id: str, address_key: str, now: float) -> Reservation:
        """Claim the address and a place under the day's cap for `enquiry_id`, or say why not;
        StorageUnavailable when DynamoDB cannot answer (nothing is written then)."""
        second = int(now)
        claim_address = {
            "TableName": self.guard_table_name,
            "Key": {"id": {"S": address_record_id(address_key)}},
            "UpdateExpression": "SET enquiry_id = :enquiry, expiration = :until",
            "ConditionExpression": "attribute_not_exists(id) OR expiration <= :now",
            "ExpressionAttributeValues": {
                ":enquiry": {"S": enquiry_id},
                ":until": {"N": str(second + ADDRESS_WINDOW_SECONDS)},
                ":now": {"N": str(second)},
            },
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
        count_today = day_count.count_one(
            self.guard_table_name, DAY_PREFIX, "acknowledgements", self.daily_cap, now
        )
        cancelled = transact_write(
            self._client_factory(), TransactItems=[{"Update": claim_address}, {"Update": count_today}]
        )
        if cancelled is None:
            return Reservation.RESERVED
        if cancelled.failed(0):
            holder = (cancelled.old_items[0] or {}).get("enquiry_id", {}).get("S")
            return Reservation.INTERRUPTED if holder == enquiry_id else Reservation.ADDRESS_LIMIT
        if cancelled.failed(1):
            return Reservation.DAILY_CAP
        # Throttling, a conflict with a concurrent transaction on the day's count: nothing written.
        raise StorageUnavailable("transaction_cancelled:" + ",".join(cancelled.reasons))

    def record(
        self, enquiry_id: str, outcome: str, at: str | None = None, ses_message_id: str | None = None
    ) -> None:
        """Write the acknowledgement's outcome on the enquiry (and, when sent, when and SES's message
        id), unless it has one already (AlreadyDecided)."""
        update = "SET acknowledgement = :outcome"
        values = {":outcome": {"S": outcome}}
        if at is not None and ses_message_id is not None:
            update += ", acknowledged_at = :at, ack_message_id = :mid"
            values.update({":at": {"S": at}, ":mid": {"S": ses_message_id}})
        aws_call(
            self._client_factory(),
            "update_item",
            on_condition_failed=AlreadyDecided(enquiry_id),
            TableName=self.table_name,
            Key={"id": {"S": enquiry_id}},
            UpdateExpression=update,
            ConditionExpression="attribute_exists(id) AND attribute_not_exists(acknowledgement)",
            ExpressionAttributeValues=values,
        )
