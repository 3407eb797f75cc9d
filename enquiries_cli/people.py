"""Everything stored about one email address: its enquiries, and the guard-table records that name
them (replay records, and the acknowledgement's claim on the address). What `subject-access` hands
over and what `erase` deletes.

Finding them is one Scan of the table that brings back only `id` and `email`, compared in this
process: DynamoDB cannot compare text without regard to case, and an index on a lower-cased copy
of the address would change the contract's item. The whole enquiries are then read by key, only for
the matches. docs/clinic.md, "At scale", has the figures for 20,000 enquiries.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from enquiries_cli.functions_adapter import (
    REPLAY_RECORD_PREFIX,
    acknowledgement_record_id,
    address_key,
    aws_call,
    get_enquiry,
    linked_enquiry_id,
    plain_item,
    timestamps,
)
from enquiries_cli.scanning import Condition, scan
from enquiries_cli.target import Target


@dataclass(frozen=True)
class Holdings:
    enquiries: list[dict[str, Any]]  # every stored attribute, oldest first
    request_records: list[dict[str, Any]]  # guard-table records naming one of them
    # The acknowledgement's claims on their addresses (`ack#<keyed hash>`) held by one of them.
    acknowledgement_records: list[dict[str, Any]] = field(default_factory=list)

    @property
    def enquiry_ids(self) -> list[str]:
        return [str(item["id"]) for item in self.enquiries]


def enquiry_ids_from(target: Target, address: str, on_page: Callable[[int], None]) -> list[str]:
    """The ids of every enquiry whose address is `address`, without regard to letter case."""
    wanted = address_key(address)
    return sorted(
        str(item["id"])
        for item in scan(
            target.client("dynamodb"), target.table_name, attributes=("id", "email"), on_page=on_page
        )
        if str(item.get("email", "")).lower() == wanted
    )


def linked_records(target: Target, enquiry_ids: list[str]) -> list[dict[str, Any]]:
    """The guard-table records written with these enquiries (replay records, which expire within a
    day). Rate-limit counts hold a keyed hash of a network address and name no enquiry: they cannot be
    linked to a person, and expire within the hour."""
    if not enquiry_ids:
        return []
    wanted = set(enquiry_ids)
    condition = Condition().add(lambda c: f"begins_with({c.name('id')}, {c.value(REPLAY_RECORD_PREFIX)})")
    return [
        record
        for record in scan(target.client("dynamodb"), target.guard_table_name, condition=condition)
        if linked_enquiry_id(record) in wanted
    ]


def acknowledgement_records(target: Target, enquiries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The address records the acknowledgement keeps for 24 hours (`ack#<keyed hash>`) that name one
    of these enquiries. Their key is a keyed hash of the address, so it is computed here with the
    stack's address-hashing key, as the notifier computes it, from each enquiry's stored address;
    a record another enquiry holds is that enquiry's, and is left alone."""
    if not enquiries:
        return []
    client = target.client("dynamodb")
    answer = aws_call(target.client("secretsmanager"), "get_secret_value", SecretId=target.address_secret)
    hashing_key = str(answer["SecretString"]).encode()
    record_ids = {acknowledgement_record_id(hashing_key, str(item.get("email", ""))) for item in enquiries}
    wanted = {str(item["id"]) for item in enquiries}
    found = []
    for record_id in sorted(record_ids):
        stored = aws_call(
            client,
            "get_item",
            TableName=target.guard_table_name,
            Key={"id": {"S": record_id}},
            ConsistentRead=True,
        ).get("Item")
        record = plain_item(stored) if stored else None
        if record is not None and str(record.get("enquiry_id", "")) in wanted:
            found.append(record)
    return found


def holdings_of(
    target: Target, address: str, on_page: Callable[[int], None] = lambda count: None
) -> Holdings:
    enquiry_ids = enquiry_ids_from(target, address, on_page)
    client = target.client("dynamodb")
    enquiries = [item for item in (get_enquiry(client, target.table_name, i) for i in enquiry_ids) if item]
    enquiries.sort(key=lambda item: (str(item.get("created_at", "")), str(item["id"])))
    return Holdings(
        enquiries,
        linked_records(target, [str(item["id"]) for item in enquiries]),
        acknowledgement_records(target, enquiries),
    )


def erase(target: Target, holdings: Holdings) -> None:
    """Delete the enquiries and their linked records."""
    client = target.client("dynamodb")
    for enquiry_id in holdings.enquiry_ids:
        aws_call(client, "delete_item", TableName=target.table_name, Key={"id": {"S": enquiry_id}})
    for record in [*holdings.request_records, *holdings.acknowledgement_records]:
        aws_call(
            client, "delete_item", TableName=target.guard_table_name, Key={"id": {"S": str(record["id"])}}
        )


def described_record(record: dict[str, Any]) -> dict[str, Any]:
    """A guard-table record for a subject access document: what it is, and what it holds."""
    from datetime import UTC, datetime

    expiration = record.get("expiration")
    return {
        "record": str(record.get("id", "")),
        "enquiry_id": linked_enquiry_id(record)
        or (str(record["enquiry_id"]) if "enquiry_id" in record else None),
        "expires_at": (
            timestamps.table_time(datetime.fromtimestamp(int(expiration), UTC), "seconds")
            if isinstance(expiration, int)
            else None
        ),
        "holds": record.get("response"),
    }
