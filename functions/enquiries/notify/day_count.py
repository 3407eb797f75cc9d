"""A count per UTC day in the guard table that stops at a cap: how the acknowledgements (`ack_store`)
and the clinic's emails (`notification_cap`) are limited a day.

The record `<prefix>YYYY-MM-DD` is added to, one at a time, only while it is under the cap (a
conditional update: concurrent deliveries cannot overshoot), and expires by the table's TTL the day
after its day ends.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any


def day_record_id(prefix: str, now: float) -> str:
    return f"{prefix}{datetime.fromtimestamp(now, UTC):%Y-%m-%d}"


def count_one(table_name: str, prefix: str, attribute: str, cap: int, now: float) -> dict[str, Any]:
    """The update (UpdateItem's or a transaction item's parameters) that counts one more in the day of
    `now`, on condition that the day's `attribute` is under `cap`."""
    tomorrow = datetime.fromtimestamp(int(now), UTC).date() + timedelta(days=1)
    day_ends = int(datetime(tomorrow.year, tomorrow.month, tomorrow.day, tzinfo=UTC).timestamp())
    return {
        "TableName": table_name,
        "Key": {"id": {"S": day_record_id(prefix, now)}},
        "UpdateExpression": "ADD #count :one SET expiration = :expires",
        "ConditionExpression": "attribute_not_exists(#count) OR #count < :cap",
        "ExpressionAttributeNames": {"#count": attribute},
        "ExpressionAttributeValues": {
            ":one": {"N": "1"},
            ":cap": {"N": str(cap)},
            ":expires": {"N": str(day_ends + 24 * 3600)},
        },
    }
