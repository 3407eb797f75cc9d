"""The most clinic emails the stream's deliveries send in a UTC day (NOTIFICATION_DAILY_CAP).

A flood of accepted enquiries (a busy client within the API's throttle and the per-address rate
limit, from many addresses) would otherwise email the clinic without end, and pay SES for each. The
day's count is kept as the acknowledgements' is (`day_count`), in the guard table as
`notify-day#YYYY-MM-DD`. An enquiry over the cap is stored as ever and never lost: it is not emailed,
stays without `notified_at` (`enquiries list --unnotified` shows it), the notifier counts it in the
metric NotificationCapped, whose alarm tells the operator, and `enquiries resend --unnotified`
emails the clinic about it (the operator's resends are not capped). A send that fails and is retried
counts again, so the cap is a bound, not an exact count.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from enquiries.aws import aws_call
from enquiries.aws_clients import dynamodb_client
from enquiries.notify.day_count import count_one

DAY_PREFIX = "notify-day#"


class NotificationCap(Protocol):
    def take(self, now: float) -> bool:
        """Count one clinic email in the day of `now`; False when the day's cap is reached.
        StorageUnavailable when DynamoDB cannot answer (nothing is counted then)."""


class _Reached(Exception):
    pass


class DynamoNotificationCap:
    """The guard table `guard_table_name`'s day counts of clinic emails, up to `daily_cap`."""

    def __init__(
        self, guard_table_name: str, daily_cap: int, client_factory: Callable[[], Any] = dynamodb_client
    ) -> None:
        self.guard_table_name = guard_table_name
        self.daily_cap = daily_cap
        self._client_factory = client_factory

    def take(self, now: float) -> bool:
        try:
            aws_call(
                self._client_factory(),
                "update_item",
                on_condition_failed=_Reached(),
                **count_one(self.guard_table_name, DAY_PREFIX, "notifications", self.daily_cap, now),
            )
        except _Reached:
            return False
        return True
