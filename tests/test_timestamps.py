"""The table's one time format: written in UTC with a Z, to the millisecond, and read back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from enquiries.timestamps import epoch_table_time, parse_table_time, table_time


def test_timestamps_written_in_utc_with_a_z() -> None:
    # Given a moment in another time zone
    moment = datetime(2026, 11, 21, 11, 15, 0, 123456, tzinfo=timezone(timedelta(hours=1)))

    # When it is written in the table's format, and as epoch seconds
    written = table_time(moment)

    # Then it is UTC, to the millisecond, with a Z, however it was given
    assert written == "2026-11-21T10:15:00.123Z"
    assert epoch_table_time(moment.timestamp()) == written
    assert table_time(moment, "seconds") == "2026-11-21T10:15:00Z"


def test_timestamps_read_back_as_the_same_moment() -> None:
    # Given a time the table holds
    written = "2026-11-21T10:15:00.123Z"

    # When it is read
    moment = parse_table_time(written)

    # Then it is that moment, aware, and writes back the same
    assert moment == datetime(2026, 11, 21, 10, 15, 0, 123000, tzinfo=UTC)
    assert table_time(moment) == written


def test_timestamps_refuse_what_is_not_a_time() -> None:
    # Given a value that is no time, when it is read, then it is a ValueError (a stale record)
    with pytest.raises(ValueError, match="Invalid isoformat"):
        parse_table_time("yesterday")
