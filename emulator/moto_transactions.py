"""DynamoDB transactions in moto, made to behave as DynamoDB's do for this project.

moto 5 applies a transaction write by write and, on a failed condition, rolls back by putting
deep copies of the whole tables in place. That makes every transaction cost the size of the
tables, lets two concurrent transactions interleave, and on rollback swaps the table's stream
shard for a copy, so a stream reader stops seeing new records. DynamoDB transactions are
atomic and isolated; the submission function relies on that. This replaces moto's method with
one that, under a lock, checks every condition first and only then applies the writes through
moto's own put/update/delete (which feed the stream as usual). Only what the project uses is
supported: Put, Update, Delete and ConditionCheck with condition expressions.

moto also checks a single write's condition and then writes, with nothing in between to stop another
thread: two conditional puts of one key at the same moment can both succeed, where DynamoDB lets
exactly one through. The notifier's "mark notified once" and the operator's resend claims rely on
that, so single-item writes take the same lock.

A cancelled transaction answers as DynamoDB documents it: one CancellationReason per item, in the
order of TransactItems, `None` where the item's condition held and `ConditionalCheckFailed` where it
did not (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html,
https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_CancellationReason.html). As
transactions run one at a time here, none ever gets DynamoDB's `TransactionConflict`: a concurrent
one waits for the lock instead.

The method replaced is private to moto, so the patch refuses a moto version it was not tested with.
"""

from __future__ import annotations

import threading
from typing import Any

# The moto versions tests/test_emulator_transactions.py passed with, this patch in place.
TESTED_MOTO_VERSIONS = frozenset({"5.2.5"})

# DynamoDB's limit on the items of one TransactWriteItems (the API reference above).
MAX_TRANSACTION_ITEMS = 100

_LOCK = threading.RLock()
_installed = False


class UntestedMotoVersion(RuntimeError):
    """The installed moto is not one this patch was tested with."""


def check_moto_version(version: str) -> None:
    """Raise UntestedMotoVersion unless `version` is in TESTED_MOTO_VERSIONS."""
    if version not in TESTED_MOTO_VERSIONS:
        tested = ", ".join(sorted(TESTED_MOTO_VERSIONS))
        raise UntestedMotoVersion(
            f"moto {version} is installed, but {__name__} ({__file__}) replaces moto's private "
            f"DynamoDBBackend.transact_write_items and was tested only with moto {tested}. Install the "
            f"pinned moto, or run tests/test_emulator_transactions.py with moto {version} and, if it "
            "passes, add the version to TESTED_MOTO_VERSIONS."
        )


def install() -> None:
    """Patch moto's DynamoDB backend (idempotent); UntestedMotoVersion on a moto it was not tested with."""
    global _installed
    if _installed:
        return
    import moto

    check_moto_version(moto.__version__)
    from moto.dynamodb.exceptions import (
        MultipleTransactionsException,
        TooManyTransactionsException,
        TransactionCanceledException,
    )
    from moto.dynamodb.models import DynamoDBBackend

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        if len(transact_items) > MAX_TRANSACTION_ITEMS:
            raise TooManyTransactionsException()
        with _LOCK:
            planned: list[tuple[str, dict[str, Any]]] = []
            errors: list[tuple[Any, Any, Any]] = []
            seen: set[tuple[str, str]] = set()
            for entry in transact_items:
                op_type, op = next(iter(entry.items()))
                key = _item_key(self.get_table(op["TableName"]), op_type, op)
                identity = (op["TableName"], str(sorted(key.items())))
                if identity in seen:
                    raise MultipleTransactionsException()
                seen.add(identity)
                errors.append(_condition_outcome(self, op, key))
                planned.append((op_type, {**op, "Key": key}))
            if any(code is not None for code, _, _ in errors):
                raise TransactionCanceledException(errors)
            for op_type, op in planned:
                _apply(self, op_type, op)

    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
    for name in ("put_item", "update_item", "delete_item"):
        setattr(DynamoDBBackend, name, _serialised(getattr(DynamoDBBackend, name)))
    _installed = True


def _item_key(table: Any, op_type: str, op: dict[str, Any]) -> dict[str, Any]:
    """The key of the item `op` writes: a Put names it through its item's key attributes."""
    if op_type != "Put":
        return dict(op["Key"])
    key = {table.hash_key_attr: op["Item"][table.hash_key_attr]}
    if table.range_key_attr is not None:
        key[table.range_key_attr] = op["Item"][table.range_key_attr]
    return key


def _condition_outcome(backend: Any, op: dict[str, Any], key: dict[str, Any]) -> tuple[Any, Any, Any]:
    """`op`'s CancellationReason: (None, None, None) when its condition holds (or it has none)."""
    from moto.dynamodb.comparisons import get_filter_expression

    current = backend.get_item(op["TableName"], key)
    condition = op.get("ConditionExpression")
    if condition is None or get_filter_expression(
        condition, op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
    ).expr(current):
        return (None, None, None)
    old = None
    if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
        old = current.to_json()["Attributes"]
    return ("ConditionalCheckFailed", "The conditional request failed", old)


def _apply(backend: Any, op_type: str, op: dict[str, Any]) -> None:
    """Write `op` through moto's own methods (which feed the stream); a ConditionCheck writes nothing."""
    names, values = op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
    if op_type == "Put":
        backend.put_item(op["TableName"], op["Item"])
    elif op_type == "Update":
        backend.update_item(
            op["TableName"],
            op["Key"],
            update_expression=op["UpdateExpression"],
            expression_attribute_names=names,
            expression_attribute_values=values,
        )
    elif op_type == "Delete":
        backend.delete_item(op["TableName"], op["Key"])


def _serialised(write: Any) -> Any:
    """`write`, run under the lock, so its condition check and its write are one step."""

    def locked(self: Any, *args: Any, **kwargs: Any) -> Any:
        with _LOCK:
            return write(self, *args, **kwargs)

    return locked
