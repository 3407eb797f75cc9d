"""The notifier's event source mapping, locally: the table's stream read as Lambda reads it for the template.

A background thread polls each shard of the table's stream (TRIM_HORIZON first, so nothing stored before
it started is missed), turns each record into the exact shape Lambda hands a function, keeps those the
mapping's filter on `eventName` lets through, and invokes the function with batches of them. As Lambda
does with ReportBatchItemFailures and BisectBatchOnFunctionError: records before the first reported
failure are done and the rest are retried; a batch whose invocation raised is split in two (the split
is not a retry) and, once down to one record, retried; retries back off, and after
MaximumRetryAttempts the batch's metadata (never its records) goes to the dead-letter list and the
shard moves on.

Nothing a record holds ever reaches a log line: enquiries are health information. The log says what
happened in counts, sequence numbers and exception types.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol

log = logging.getLogger(__name__)

POLL_INTERVAL_SECONDS = 0.25  # Lambda polls a DynamoDB stream shard four times a second
FIRST_BACKOFF_SECONDS = 0.5
MAX_BACKOFF_SECONDS = 8.0
ERROR_PAUSE_SECONDS = 1.0  # after the poll itself failed (the stream, not the function)
RECORDS_PER_READ = 1000  # GetRecords' maximum
STOP_TIMEOUT_SECONDS = 10.0

EVENT_SOURCE_TYPE = "DynamoDB"
# The one filter shape this module runs: the template's `{"eventName": [...]}`.
_FILTER_SHAPE = '{"eventName": ["INSERT", ...]}'


class StreamsClient(Protocol):
    """The part of a boto3 low-level DynamoDB Streams client the poller uses."""

    def describe_stream(self, **kwargs: Any) -> Any: ...

    def get_shard_iterator(self, **kwargs: Any) -> Any: ...

    def get_records(self, **kwargs: Any) -> Any: ...


# -- the mapping, as template.yaml declares it -----------------------------------------------------


@dataclass(frozen=True)
class StreamMapping:
    """The event source mapping's settings, and the limits of the function it invokes."""

    function_name: str = "NotifyEnquiryFunction"
    batch_size: int = 10
    starting_position: str = "TRIM_HORIZON"
    event_names: frozenset[str] = frozenset({"INSERT"})  # what the filter on `eventName` lets through
    maximum_retry_attempts: int = 5  # -1: until the record leaves the stream
    bisect_on_error: bool = True
    dead_letter_queue: str | None = "NotificationDeadLetterQueue"
    memory_mb: int = 256
    timeout_seconds: int = 30

    def accepts(self, record: Mapping[str, Any]) -> bool:
        """Whether the mapping's filter lets `record` (as Lambda hands it over) through to the function."""
        return record.get("eventName") in self.event_names


def mapping_from_template(
    template: Mapping[str, Any] | None, function: str = "NotifyEnquiryFunction"
) -> StreamMapping:
    """The settings of `function`'s DynamoDB event in `template`; the defaults for what it leaves out.

    Raises ValueError for FilterCriteria other than one `{"eventName": [...]}` pattern, so the server
    refuses to start rather than send what the deployed mapping would not.
    """
    defaults = StreamMapping(function_name=function)
    resources = (template or {}).get("Resources", {})
    resource = resources.get(function) if isinstance(resources, Mapping) else None
    if not isinstance(resource, Mapping):
        return defaults
    globals_ = (template or {}).get("Globals", {}).get("Function", {})
    function_props = {**(globals_ if isinstance(globals_, Mapping) else {}), **resource.get("Properties", {})}
    events = function_props.get("Events", {}) or {}
    stream_event: Mapping[str, Any] = next(
        (
            event.get("Properties", {})
            for event in events.values()
            if isinstance(event, Mapping) and event.get("Type") == EVENT_SOURCE_TYPE
        ),
        {},
    )
    on_failure = stream_event.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
    event_names = defaults.event_names
    if "FilterCriteria" in stream_event:
        event_names = _event_name_filter(stream_event["FilterCriteria"])
    return StreamMapping(
        function_name=function,
        batch_size=int(stream_event.get("BatchSize", defaults.batch_size)),
        starting_position=str(stream_event.get("StartingPosition", defaults.starting_position)),
        event_names=event_names,
        maximum_retry_attempts=int(stream_event.get("MaximumRetryAttempts", defaults.maximum_retry_attempts)),
        bisect_on_error=bool(stream_event.get("BisectBatchOnFunctionError", defaults.bisect_on_error)),
        dead_letter_queue=_logical_id(on_failure) or defaults.dead_letter_queue,
        memory_mb=int(function_props.get("MemorySize", 128)),
        timeout_seconds=int(function_props.get("Timeout", 3)),
    )


def _logical_id(reference: Any) -> str | None:
    """`X` from `!GetAtt X.Arn` or `!Ref X`; None for anything else."""
    if isinstance(reference, Mapping):
        target = reference.get("Fn::GetAtt") or reference.get("Ref")
        if isinstance(target, list) and target:
            return str(target[0])
        if isinstance(target, str):
            return target.split(".", 1)[0]
    return None


# -- records: what GetRecords returns, as Lambda hands it over --------------------------------------


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return int(value.timestamp())  # epoch seconds, as in the events Lambda sends
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(bytes(value)).decode("ascii")  # binary attributes travel as base64
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    return str(value)


def lambda_record(raw: Mapping[str, Any], *, region: str, stream_arn: str) -> dict[str, Any]:
    """One GetRecords record as the function receives it: Lambda's fields, after a JSON round trip."""
    record: dict[str, Any] = {
        "eventID": raw.get("eventID"),
        "eventName": raw.get("eventName"),
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": region,
        "dynamodb": raw.get("dynamodb", {}),
        "eventSourceARN": stream_arn,
    }
    if "userIdentity" in raw:  # TTL deletions carry it
        record["userIdentity"] = raw["userIdentity"]
    converted: dict[str, Any] = json.loads(json.dumps(record, default=_json_default))
    return converted


def _event_name_filter(criteria: Any) -> frozenset[str]:
    """The eventName values of FilterCriteria holding one pattern `{"eventName": [names]}`; ValueError
    for anything else, which the local server does not evaluate."""
    filters = criteria.get("Filters") if isinstance(criteria, Mapping) else None
    if not isinstance(filters, list) or len(filters) != 1 or not isinstance(filters[0], Mapping):
        raise ValueError(f"FilterCriteria must hold one filter, {_FILTER_SHAPE}; found {criteria!r}")
    pattern = filters[0].get("Pattern")
    try:
        parsed = json.loads(pattern) if isinstance(pattern, str) else pattern
    except ValueError:
        parsed = None
    names = parsed.get("eventName") if isinstance(parsed, Mapping) and set(parsed) == {"eventName"} else None
    if not isinstance(names, list) or not names or not all(isinstance(name, str) for name in names):
        raise ValueError(
            f"the local server runs only a filter of the shape {_FILTER_SHAPE}, as template.yaml has; "
            f"found the pattern {pattern!r}"
        )
    return frozenset(names)


def _sequence(record: Mapping[str, Any]) -> str:
    return str(record["dynamodb"]["SequenceNumber"])


def _arrival(record: Mapping[str, Any]) -> str:
    seconds = record.get("dynamodb", {}).get("ApproximateCreationDateTime")
    if not isinstance(seconds, int | float):
        return ""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class BatchSource:
    """Where a batch came from: its shard, the stream, and the function the mapping invokes with it."""

    shard_id: str
    stream_arn: str
    function_arn: str


def failure_record(
    batch: Sequence[Mapping[str, Any]],
    source: BatchSource,
    *,
    invocations: int,
    function_error: bool,
    now: datetime | None = None,
) -> dict[str, Any]:
    """What Lambda sends the OnFailure destination for a batch it gave up on: metadata, not records."""
    response: dict[str, Any] = {"statusCode": 200, "executedVersion": "$LATEST"}
    if function_error:
        response["functionError"] = "Unhandled"
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return {
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "functionArn": source.function_arn,
            "condition": "RetryAttemptsExhausted",
            "approximateInvokeCount": invocations,
        },
        "responseContext": response,
        "version": "1.0",
        "timestamp": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "DDBStreamBatchInfo": {
            "shardId": source.shard_id,
            "startSequenceNumber": _sequence(batch[0]),
            "endSequenceNumber": _sequence(batch[-1]),
            "approximateArrivalOfFirstRecord": _arrival(batch[0]),
            "approximateArrivalOfLastRecord": _arrival(batch[-1]),
            "batchSize": len(batch),
            "streamArn": source.stream_arn,
        },
    }


def backoff_seconds(failures: int) -> float:
    """The pause before retry number `failures` (1, 2, ...): 0.5 s, 1 s, 2 s ... at most 8 s."""
    return float(min(MAX_BACKOFF_SECONDS, FIRST_BACKOFF_SECONDS * 2 ** max(0, failures - 1)))


# -- the poller ---------------------------------------------------------------------------------


@dataclass
class _Shard:
    shard_id: str
    iterator: str | None = None
    last_read: str | None = None  # the sequence number of the last record read, filtered or not
    closed: bool = False
    pending: list[dict[str, Any]] = field(default_factory=list)  # filtered records not yet done
    failures: int = 0  # failed invocations (bisections aside) of the batch at the head of `pending`
    batch_limit: int = 0  # a bisected batch's size; 0: the mapping's batch size
    retry_at: float = 0.0


@dataclass(frozen=True)
class _Outcome:
    first_failed: int | None  # index in the batch; None: every record succeeded
    function_error: bool = False  # the invocation raised (rather than reporting failed records)


@dataclass(frozen=True)
class StreamTarget:
    """The stream a mapping reads and the function it invokes, by ARN, and the stream's region."""

    stream_arn: str
    function_arn: str
    region: str


@dataclass(frozen=True)
class PollerHooks:
    """What the poller calls out to: where given-up batches go, who forgets used iterators, the clock."""

    send_dead_letter: Callable[[str], None] | None = None
    forget_iterator: Callable[[str], None] | None = None
    clock: Callable[[], float] = time.monotonic


class StreamPoller:
    """Reads a stream and runs `handler` on it as a Lambda event source mapping would.

    `handler` takes the event and returns the function's (JSON) result, raising what the function
    raised. Step it with `poll_once` (tests do), or run it in a thread with `running`.
    """

    def __init__(
        self,
        client: StreamsClient,
        *,
        target: StreamTarget,
        handler: Callable[[dict[str, Any]], Any],
        mapping: StreamMapping,
        hooks: PollerHooks | None = None,
    ) -> None:
        hooks = hooks or PollerHooks()
        self._client = client
        self.stream_arn = target.stream_arn
        self._handler = handler
        self.mapping = mapping
        self._region = target.region
        self._function_arn = target.function_arn
        self._send_dead_letter = hooks.send_dead_letter
        self._forget_iterator = hooks.forget_iterator or (lambda iterator: None)
        self._clock = hooks.clock
        self._shards: dict[str, _Shard] = {}
        self._finished: set[str] = set()
        self._refresh = True
        self._dead_letters: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._last_error: str | None = None

    def dead_letters(self) -> list[dict[str, Any]]:
        """The batches given up on so far, as their OnFailure records, oldest first."""
        with self._lock:
            return copy.deepcopy(self._dead_letters)

    # -- one round: read every shard, then run at most one batch from each ---------------------
    def poll_once(self) -> bool:
        """Read what is new and invoke the function once per shard with work due; True if work is due."""
        if self._refresh:
            self._discover_shards()
        for shard in list(self._shards.values()):
            if not shard.closed:
                self._read(shard)
            self._process(shard)
            if shard.closed and not shard.pending:
                del self._shards[shard.shard_id]
                self._finished.add(shard.shard_id)
                self._refresh = True  # its children, if any, come next
        now = self._clock()
        return any(shard.pending and shard.retry_at <= now for shard in self._shards.values())

    def _discover_shards(self) -> None:
        request: dict[str, Any] = {"StreamArn": self.stream_arn}
        while True:
            description = self._client.describe_stream(**request)["StreamDescription"]
            for shard in description.get("Shards", []):
                shard_id = str(shard["ShardId"])
                if shard_id not in self._shards and shard_id not in self._finished:
                    self._shards[shard_id] = _Shard(shard_id)
            last = description.get("LastEvaluatedShardId")
            if not last:
                break
            request["ExclusiveStartShardId"] = last
        self._refresh = False

    def _read(self, shard: _Shard) -> None:
        if len(shard.pending) >= RECORDS_PER_READ:
            return  # enough waiting; the stream keeps the rest
        iterator = shard.iterator or self._new_iterator(shard)
        shard.iterator = None  # if the read fails, the next round starts again after `last_read`
        response = self._client.get_records(ShardIterator=iterator, Limit=RECORDS_PER_READ)
        self._forget_iterator(iterator)
        shard.iterator = response.get("NextShardIterator")
        shard.closed = shard.iterator is None
        for raw in response.get("Records", []):
            record = lambda_record(raw, region=self._region, stream_arn=self.stream_arn)
            shard.last_read = _sequence(record)
            if self.mapping.accepts(record):
                shard.pending.append(record)

    def _new_iterator(self, shard: _Shard) -> str:
        request: dict[str, Any] = {"StreamArn": self.stream_arn, "ShardId": shard.shard_id}
        if shard.last_read is None:
            request["ShardIteratorType"] = self.mapping.starting_position
        else:
            request.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", SequenceNumber=shard.last_read)
        return str(self._client.get_shard_iterator(**request)["ShardIterator"])

    # -- invoking, retrying, giving up ---------------------------------------------------------
    def _process(self, shard: _Shard) -> None:
        if not shard.pending or self._clock() < shard.retry_at:
            return
        batch = shard.pending[: shard.batch_limit or self.mapping.batch_size]
        outcome = self._invoke(batch)
        if outcome.first_failed is None:
            del shard.pending[: len(batch)]
            shard.failures, shard.batch_limit, shard.retry_at = 0, 0, 0.0
            return
        name = self.mapping.function_name
        if outcome.function_error and self.mapping.bisect_on_error and len(batch) > 1:
            shard.batch_limit = len(batch) // 2  # split in two, first half next; a split is not a retry
            log.warning("%s: splitting the failed batch of %d records", name, len(batch))
            return
        del shard.pending[: outcome.first_failed]  # the records before the first failure are done
        retried = batch[outcome.first_failed :]
        shard.failures += 1
        limit = self.mapping.maximum_retry_attempts
        if 0 <= limit < shard.failures:
            self._give_up(shard, retried, function_error=outcome.function_error)
            del shard.pending[: len(retried)]
            shard.failures, shard.batch_limit, shard.retry_at = 0, 0, 0.0
            return
        pause = backoff_seconds(shard.failures)
        shard.retry_at = self._clock() + pause
        log.warning(
            "%s: %d of %d records to retry from sequence number %s in %.1f s (retry %d of %s)",
            name,
            len(retried),
            len(batch),
            _sequence(retried[0]),
            pause,
            shard.failures,
            limit if limit >= 0 else "unlimited",
        )

    def _invoke(self, batch: list[dict[str, Any]]) -> _Outcome:
        try:
            result = self._handler({"Records": copy.deepcopy(batch)})
        except Exception as error:
            log.warning(
                "%s raised %s on a batch of %d", self.mapping.function_name, type(error).__name__, len(batch)
            )
            return _Outcome(first_failed=0, function_error=True)
        failures = result.get("batchItemFailures") if isinstance(result, Mapping) else None
        if not failures:
            return _Outcome(first_failed=None)
        sequences = [_sequence(record) for record in batch]
        identifiers = [
            item.get("itemIdentifier") if isinstance(item, Mapping) else None
            for item in (failures if isinstance(failures, list) else [None])
        ]
        if any(identifier not in sequences for identifier in identifiers):
            # Lambda treats a response naming no record of the batch as the whole batch failing.
            log.warning("%s reported failures Lambda cannot read", self.mapping.function_name)
            return _Outcome(first_failed=0)
        return _Outcome(first_failed=min(sequences.index(str(identifier)) for identifier in identifiers))

    def _give_up(self, shard: _Shard, batch: list[dict[str, Any]], *, function_error: bool) -> None:
        record = failure_record(
            batch,
            BatchSource(shard.shard_id, self.stream_arn, self._function_arn),
            invocations=shard.failures,
            function_error=function_error,
        )
        with self._lock:
            self._dead_letters.append(record)
        info = record["DDBStreamBatchInfo"]
        log.error(
            "%s gave up on %d records (sequence numbers %s to %s) after %d attempts; see /_dev/dead-letters",
            self.mapping.function_name,
            len(batch),
            info["startSequenceNumber"],
            info["endSequenceNumber"],
            shard.failures,
        )
        if self._send_dead_letter is not None:
            try:
                self._send_dead_letter(json.dumps(record))
            except Exception as error:
                log.error("the dead-letter queue refused the record: %s", type(error).__name__)

    # -- the thread ----------------------------------------------------------------------------
    @contextlib.contextmanager
    def running(self) -> Iterator[StreamPoller]:
        """Poll in a background thread for the duration of the block; stop (and wait) at its end."""
        self._stop.clear()
        thread = threading.Thread(target=self._run, name="stream-poller", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join(STOP_TIMEOUT_SECONDS)
            if thread.is_alive():
                log.warning("the stream poller is still in an invocation; leaving it behind")

    def _run(self) -> None:
        while not self._stop.is_set():
            pause = POLL_INTERVAL_SECONDS
            try:
                if self.poll_once():
                    pause = 0.0
                self._last_error = None
            except Exception as error:  # never let the thread die: log the kind, not the contents
                kind = type(error).__name__
                if kind != self._last_error:
                    log.error("reading the table's stream failed (%s); retrying", kind)
                self._last_error = kind
                pause = ERROR_PAUSE_SECONDS
            self._stop.wait(pause)
