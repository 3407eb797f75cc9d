"""The notifier's dead-letter queue: which of its messages are about enquiries that are now emailed.

A message is Lambda's record of a stream batch it gave up on: the shard, the first and last sequence
numbers, the stream, the time; never the records, so never an enquiry id
(https://docs.aws.amazon.com/lambda/latest/dg/services-dynamodb-errors.html). Two ways to tell what
it was about:

- Read the batch back from the table's stream, by shard and sequence numbers. The stream keeps
  records for 24 hours (https://docs.aws.amazon.com/lambda/latest/dg/services-ddb-params.html), so
  this works for a day after the enquiries were stored; it names the enquiries exactly.
- After that, reason from the table: every enquiry of the batch was stored before the message was
  written. If no enquiry stored by then is still waiting for its email, the batch's enquiries have
  all been emailed (or deleted) and the message is done with. If one is waiting, the message is kept.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from enquiries_cli.functions_adapter import aws_call, get_enquiry
from enquiries_cli.target import Target

RECEIVE_BATCH = 10  # SQS's maximum
MAX_MESSAGES = 1000  # more than a clinic's queue holds; the count of the rest is still reported
# Long enough to decide and delete; after it, a message not deleted shows in the queue again.
VISIBILITY_SECONDS = 120
_STREAM_READS = 20  # GetRecords calls for one batch (each up to 1,000 records)
_UNREADABLE = frozenset(
    {
        "TrimmedDataAccessException",
        "ResourceNotFoundException",
        "ExpiredIteratorException",
        "ValidationException",
    }
)


@dataclass(frozen=True)
class DeadLetter:
    receipt_handle: str
    written_at: str  # when Lambda gave up (ISO 8601, UTC)
    shard_id: str | None
    first_sequence: str | None
    last_sequence: str | None
    stream_arn: str | None
    # The batch's enquiries, read back from the stream; None when that is no longer possible.
    enquiry_ids: tuple[str, ...] | None = None


@dataclass(frozen=True)
class QueueReport:
    total: int  # messages in the queue, as SQS counts them (approximately)
    done: list[DeadLetter]  # about enquiries all emailed or deleted: safe to remove
    waiting: list[DeadLetter]  # about at least one enquiry still without its email
    waiting_ids: list[str]  # those enquiries, where the stream named them

    @property
    def unread(self) -> int:
        """Messages SQS did not hand over: another run has them for a moment."""
        return max(0, self.total - len(self.done) - len(self.waiting))


def message_count(target: Target, queue_url: str) -> int:
    attributes = target.client("sqs").get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return sum(
        int(attributes.get(name, 0))
        for name in ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible")
    )


def receive(target: Target, queue_url: str) -> list[DeadLetter]:
    """The queue's messages (up to MAX_MESSAGES), hidden from other readers for a while."""
    letters: list[DeadLetter] = []
    while len(letters) < MAX_MESSAGES:
        # A short wait makes SQS ask all its servers, so an empty answer means an empty queue.
        messages = (
            target.client("sqs")
            .receive_message(
                QueueUrl=queue_url,
                MaxNumberOfMessages=RECEIVE_BATCH,
                VisibilityTimeout=VISIBILITY_SECONDS,
                WaitTimeSeconds=1,
            )
            .get("Messages", [])
        )
        if not messages:
            break
        letters.extend(_parsed(message) for message in messages)
    return [_with_enquiry_ids(target, letter) for letter in letters]


def _parsed(message: dict[str, Any]) -> DeadLetter:
    try:
        record = json.loads(message.get("Body", ""))
    except ValueError:
        record = {}
    info = record.get("DDBStreamBatchInfo") if isinstance(record, dict) else None
    info = info if isinstance(info, dict) else {}
    return DeadLetter(
        receipt_handle=str(message["ReceiptHandle"]),
        written_at=str(record.get("timestamp", "")) if isinstance(record, dict) else "",
        shard_id=info.get("shardId"),
        first_sequence=info.get("startSequenceNumber"),
        last_sequence=info.get("endSequenceNumber"),
        stream_arn=info.get("streamArn"),
    )


def _with_enquiry_ids(target: Target, letter: DeadLetter) -> DeadLetter:
    """`letter` with the ids of its batch's new enquiries, if the stream still has the records."""
    from botocore.exceptions import ClientError, ParamValidationError

    if not (letter.shard_id and letter.first_sequence and letter.last_sequence and letter.stream_arn):
        return letter
    streams = target.client("dynamodbstreams")
    last = int(letter.last_sequence)
    ids: list[str] = []
    try:
        iterator = streams.get_shard_iterator(
            StreamArn=letter.stream_arn,
            ShardId=letter.shard_id,
            ShardIteratorType="AT_SEQUENCE_NUMBER",
            SequenceNumber=letter.first_sequence,
        ).get("ShardIterator")
        for _ in range(_STREAM_READS):
            if not iterator:
                break
            page = streams.get_records(ShardIterator=iterator, Limit=1000)
            records = page.get("Records", [])
            for record in records:
                if int(record["dynamodb"]["SequenceNumber"]) > last:
                    return _named(letter, ids)
                key = record["dynamodb"].get("Keys", {}).get("id", {}).get("S")
                if record.get("eventName") == "INSERT" and key:
                    ids.append(str(key))
            if not records:
                break
            iterator = page.get("NextShardIterator")
    except ParamValidationError:
        return letter  # not a stream position: a message this command cannot read
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in _UNREADABLE:
            return letter  # past the stream's 24 hours, or the stream is gone
        raise
    return _named(letter, ids)


def _named(letter: DeadLetter, ids: Sequence[str]) -> DeadLetter:
    return DeadLetter(**{**letter.__dict__, "enquiry_ids": tuple(dict.fromkeys(ids))})


def report(target: Target, queue_url: str, waiting_since: Sequence[tuple[str, str]]) -> QueueReport:
    """Sort the queue's messages into done and waiting. `waiting_since` is every enquiry still
    without its email, as (created_at, id)."""
    letters = receive(target, queue_url)
    client = target.client("dynamodb")
    done: list[DeadLetter] = []
    waiting: list[DeadLetter] = []
    waiting_ids: list[str] = []
    for letter in letters:
        if letter.enquiry_ids is not None:
            unsent = [
                enquiry_id
                for enquiry_id in letter.enquiry_ids
                if (item := get_enquiry(client, target.table_name, enquiry_id)) is not None
                and not item.get("notified_at")
            ]
            waiting_ids.extend(unsent)
        else:
            # Without the records: is any enquiry that was stored before the message still waiting?
            # (A message with no time could be about any of them.)
            unsent = [
                enquiry_id
                for created_at, enquiry_id in waiting_since
                if not letter.written_at or created_at <= letter.written_at
            ]
        (waiting if unsent else done).append(letter)
    return QueueReport(
        total=max(message_count(target, queue_url), len(letters)),
        done=done,
        waiting=waiting,
        waiting_ids=list(dict.fromkeys(waiting_ids)),
    )


def remove(target: Target, queue_url: str, letters: Sequence[DeadLetter]) -> None:
    for letter in letters:
        aws_call(
            target.client("sqs"), "delete_message", QueueUrl=queue_url, ReceiptHandle=letter.receipt_handle
        )


def put_back(target: Target, queue_url: str, letters: Sequence[DeadLetter]) -> None:
    """Show messages that stay in the queue to other readers again, now rather than after
    VISIBILITY_SECONDS, so the next run (and the alarm) sees the queue as it is."""
    for letter in letters:
        aws_call(
            target.client("sqs"),
            "change_message_visibility",
            QueueUrl=queue_url,
            ReceiptHandle=letter.receipt_handle,
            VisibilityTimeout=0,
        )
