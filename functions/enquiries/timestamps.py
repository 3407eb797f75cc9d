"""The table's time format (`created_at`, `notified_at`, `acknowledged_at`): ISO 8601 in UTC, to the
millisecond, with a Z (2026-11-21T10:15:00.000Z); written and read here only."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal


def table_time(moment: datetime, timespec: Literal["milliseconds", "seconds"] = "milliseconds") -> str:
    """`moment` (time-zone aware) in the table's format."""
    return moment.astimezone(UTC).isoformat(timespec=timespec).replace("+00:00", "Z")


def epoch_table_time(epoch: float) -> str:
    """Epoch seconds in the table's format."""
    return table_time(datetime.fromtimestamp(epoch, UTC))


def parse_table_time(text: str) -> datetime:
    """A time in the table's format (or any ISO 8601 with an offset) as an aware datetime; raises
    ValueError for anything else."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
