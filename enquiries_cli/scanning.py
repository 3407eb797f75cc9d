"""Reading a table page by page: at most PAGE_SIZE items are in memory at a time, however large the
table, and only the attributes asked for cross the network. A filter runs in DynamoDB, before the
page comes back (it still reads, and is billed for, every item it looks at)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from enquiries_cli.functions_adapter import aws_call, canary, plain_item, timestamps

PAGE_SIZE = 1000

# The attributes of an enquiry the contract's Storage section names, in the export's column order.
ENQUIRY_COLUMNS = (
    "id",
    "created_at",
    "name",
    "email",
    "phone",
    "service",
    "message",
    "consent",
    "notified_at",
)


def table_time(moment: datetime) -> str:
    """The table's time format (created_at, notified_at): ISO 8601 in UTC, milliseconds, a Z."""
    return timestamps.table_time(moment)


@dataclass
class Condition:
    """A FilterExpression under construction, with its placeholders (`name` is a reserved word)."""

    clauses: list[str] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)

    def name(self, attribute: str) -> str:
        placeholder = f"#a{len(self.names)}"
        self.names[placeholder] = attribute
        return placeholder

    def value(self, text: str) -> str:
        placeholder = f":v{len(self.values)}"
        self.values[placeholder] = {"S": text}
        return placeholder

    def add(self, build: Callable[[Condition], str]) -> Condition:
        self.clauses.append(build(self))
        return self


def period(since: date | None, until: date | None) -> Condition:
    """Enquiries created from the start of `since` to the end of `until` (UTC days, both included).
    ISO 8601 times in UTC sort as text, so a comparison of strings is a comparison of times."""
    condition = Condition()
    if since is not None:
        condition.add(lambda c: f"{c.name('created_at')} >= {c.value(since.isoformat())}")
    if until is not None:
        next_day = (until + timedelta(days=1)).isoformat()
        condition.add(lambda c: f"{c.name('created_at')} < {c.value(next_day)}")
    return condition


def scan(
    client: Any,
    table_name: str,
    *,
    attributes: Sequence[str] | None = None,
    condition: Condition | None = None,
    on_page: Callable[[int], None] = lambda count: None,
) -> Iterator[dict[str, Any]]:
    """Every item (plain values) that meets `condition`, one page at a time, with only `attributes`
    (all when None). Consistent reads: an enquiry stored a moment ago is included. The scheduled
    canary's enquiry, the stack's own test, is never one of them: no subcommand lists, exports,
    counts, hands out, erases or resends it (nothing else has its attribute)."""
    condition = condition or Condition()
    request: dict[str, Any] = {"TableName": table_name, "Limit": PAGE_SIZE, "ConsistentRead": True}
    names = {**condition.names, "#canary": canary.ATTRIBUTE}
    if attributes:
        projected: list[str] = []
        for attribute in attributes:
            placeholder = f"#p{len(projected)}"
            names[placeholder] = attribute
            projected.append(placeholder)
        request["ProjectionExpression"] = ", ".join(projected)
    clauses = [*condition.clauses, "attribute_not_exists(#canary)"]
    request["FilterExpression"] = " AND ".join(f"({clause})" for clause in clauses)
    request["ExpressionAttributeNames"] = names
    if condition.values:
        request["ExpressionAttributeValues"] = condition.values
    while True:
        page = aws_call(client, "scan", **request)
        on_page(int(page.get("ScannedCount", 0)))
        for item in page.get("Items", []):
            yield plain_item(item)
        if not page.get("LastEvaluatedKey"):
            return
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
