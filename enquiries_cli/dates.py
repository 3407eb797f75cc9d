"""Days as the clinic's staff write them (`--since`, `--until`), and times as they read them.

A DATE is a whole day in UTC, as the contract says, written `YYYY-MM-DD`, `DD/MM/YYYY` (the UK's
order), `today`, `yesterday` or `Nd` (N days before today). Anything else, a month-first date such as
`12/25/2026` included, is a usage error that names the forms, never a guess.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

import click

from enquiries_cli.errors import OperatorError
from enquiries_cli.functions_adapter import clinic_timezone, local_time

FORMS = "YYYY-MM-DD, DD/MM/YYYY (day first), today, yesterday, or Nd for N days ago (e.g. 7d)"

_ISO = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_UK = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})")
_DAYS_AGO = re.compile(r"(\d{1,5})d")


def parse_day(text: str, today: date) -> date:
    """The UTC day `text` names; ValueError with a sentence when it names none, or not clearly."""
    word = text.strip().lower()
    if word == "today":
        return today
    if word == "yesterday":
        return today - timedelta(days=1)
    if ago := _DAYS_AGO.fullmatch(word):
        return today - timedelta(days=int(ago.group(1)))
    if iso := _ISO.fullmatch(word):
        year, month, day = (int(part) for part in iso.groups())
    elif uk := _UK.fullmatch(word):
        day, month, year = (int(part) for part in uk.groups())
        if month > 12 and day <= 12:  # noqa: PLR2004 - months
            raise ValueError(
                f"{text!r} looks month first: write the day first ({month}/{day}/{year}); use {FORMS}"
            )
    else:
        raise ValueError(f"{text!r} is not a date: use {FORMS}")
    try:
        return date(year, month, day)
    except ValueError:
        raise ValueError(f"{text!r} is not a date on the calendar: use {FORMS}") from None


class Day(click.ParamType[datetime, Any]):
    """A DATE option: the day as a datetime at 00:00 UTC."""

    name = "date"

    def __init__(self, today: Callable[[], date] = lambda: datetime.now(UTC).date()) -> None:
        self._today = today

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> datetime:
        if isinstance(value, datetime):
            return value
        try:
            day = parse_day(str(value), self._today())
        except ValueError as reason:
            self.fail(str(reason), param, ctx)
        return datetime(day.year, day.month, day.day, tzinfo=UTC)


def clinic_time(table_time: str, *, short: bool = True, environ: Mapping[str, str] | None = None) -> str:
    """A stored time (created_at, notified_at) in the clinic's time zone (TIMEZONE), as the notification
    email shows it; the stored text as it is when it is not a time."""
    try:
        zone = clinic_timezone(os.environ if environ is None else environ)
    except ValueError as reason:
        raise OperatorError(str(reason)) from None
    try:
        return local_time(table_time, zone, short=short)
    except ValueError:
        return table_time
