"""The local server's stream poller: the notifier run from the table's stream as Lambda runs it.

Pure units with a fake stream and a fake handler; the server running the real notifier end to end is
in test_devserver.py (it shares that module's server).
"""

from __future__ import annotations

import itertools
import json
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from emulator import stream
from emulator.stream import PollerHooks, StreamMapping, StreamPoller, StreamTarget
from emulator.template_tables import load_template

STREAM_ARN = "arn:aws:dynamodb:eu-west-2:123456789012:table/enquiries/stream/2026-01-01T00:00:00.000"
FUNCTION_ARN = "arn:aws:lambda:eu-west-2:123456789012:function:NotifyEnquiryFunction"
SHARD_ID = "shardId-00000001541626099285-f35f62ef"
FIRST_SEQUENCE = 1100000000017454423009


def raw_record(number: int, event_name: str = "INSERT", **image: Any) -> dict[str, Any]:
    """A record as boto3's GetRecords returns it from moto (a datetime, moto's region and version)."""
    new_image = {"id": {"S": f"enquiry-{number}"}, **image}
    return {
        "eventID": f"event-{number}",
        "eventName": event_name,
        "eventVersion": "1.0",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": {
            "ApproximateCreationDateTime": datetime(2026, 3, 1, 12, 0, number, 250_000, tzinfo=UTC),
            "Keys": {"id": {"S": f"enquiry-{number}"}},
            "NewImage": new_image,
            "SequenceNumber": str(FIRST_SEQUENCE + number),
            "SizeBytes": 100,
            "StreamViewType": "NEW_IMAGE",
        },
    }


class FakeStreams:
    """One shard, read like DynamoDB Streams: iterators are positions in `records`."""

    def __init__(self, records: list[dict[str, Any]] | None = None) -> None:
        self.records = list(records or [])
        self.iterator_requests: list[dict[str, Any]] = []
        self.failures_to_come: list[Exception] = []

    def describe_stream(self, **kwargs: Any) -> Any:
        assert kwargs["StreamArn"] == STREAM_ARN
        return {"StreamDescription": {"StreamArn": STREAM_ARN, "Shards": [{"ShardId": SHARD_ID}]}}

    def get_shard_iterator(self, **kwargs: Any) -> Any:
        self.iterator_requests.append(kwargs)
        if kwargs["ShardIteratorType"] == "TRIM_HORIZON":
            return {"ShardIterator": "at-0"}
        sequences = [record["dynamodb"]["SequenceNumber"] for record in self.records]
        return {"ShardIterator": f"at-{sequences.index(kwargs['SequenceNumber']) + 1}"}

    def get_records(self, **kwargs: Any) -> Any:
        if self.failures_to_come:
            raise self.failures_to_come.pop(0)
        position = int(kwargs["ShardIterator"].removeprefix("at-"))
        found = self.records[position : position + kwargs["Limit"]]
        return {"Records": found, "NextShardIterator": f"at-{position + len(found)}"}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Function:
    """A fake notifier: records each event's sequence numbers; `respond` decides each result."""

    def __init__(self, respond: Callable[[list[str]], Any] | None = None) -> None:
        self.batches: list[list[str]] = []
        self.events: list[dict[str, Any]] = []
        self._respond = respond or (lambda sequences: {"batchItemFailures": []})

    def __call__(self, event: dict[str, Any]) -> Any:
        self.events.append(event)
        sequences = [record["dynamodb"]["SequenceNumber"] for record in event["Records"]]
        self.batches.append(sequences)
        return self._respond(sequences)


def seq(number: int) -> str:
    return str(FIRST_SEQUENCE + number)


def make_poller(
    streams: FakeStreams, function: Function, clock: Callable[[], float] | None = None, **mapping: Any
) -> tuple[StreamPoller, list[str]]:
    sent: list[str] = []
    poller = StreamPoller(
        streams,
        target=StreamTarget(STREAM_ARN, FUNCTION_ARN, region="eu-west-2"),
        handler=function,
        mapping=StreamMapping(**mapping),
        hooks=PollerHooks(send_dead_letter=sent.append, clock=clock or Clock()),
    )
    return poller, sent


def run_until_idle(poller: StreamPoller, clock: Clock, *, seconds: float = 120.0) -> None:
    """Step the poller as its thread would, moving the fake clock on while it waits."""
    end = clock.now + seconds
    while clock.now < end:
        if not poller.poll_once():
            clock.now += stream.POLL_INTERVAL_SECONDS


# -- records as Lambda hands them over -------------------------------------------------------------


def test_lambda_record_has_lambdas_shape_with_epoch_seconds() -> None:
    # Given a record as boto3 returns it: a datetime, moto's fixed region and event version
    raw = raw_record(7, blob={"B": b"\x00\xff"})
    # When it is converted for the function
    record = stream.lambda_record(raw, region="eu-west-2", stream_arn=STREAM_ARN)
    # Then it has exactly Lambda's fields, the time as whole epoch seconds, binary as base64
    assert record == {
        "eventID": "event-7",
        "eventName": "INSERT",
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "eu-west-2",
        "dynamodb": {
            "ApproximateCreationDateTime": 1772366407,
            "Keys": {"id": {"S": "enquiry-7"}},
            "NewImage": {"id": {"S": "enquiry-7"}, "blob": {"B": "AP8="}},
            "SequenceNumber": seq(7),
            "SizeBytes": 100,
            "StreamViewType": "NEW_IMAGE",
        },
        "eventSourceARN": STREAM_ARN,
    }
    assert type(record["dynamodb"]["ApproximateCreationDateTime"]) is int


def test_lambda_record_is_plain_json_whatever_the_time_zone() -> None:
    # Given the same instant in another time zone (boto3 returns local-time datetimes)
    raw = raw_record(1)
    instant = raw["dynamodb"]["ApproximateCreationDateTime"]
    raw["dynamodb"]["ApproximateCreationDateTime"] = instant.astimezone(timezone(timedelta(hours=-5)))
    # When it is converted
    record = stream.lambda_record(raw, region="eu-west-2", stream_arn=STREAM_ARN)
    # Then the epoch seconds are the same, and the record survives a JSON round trip unchanged
    assert record["dynamodb"]["ApproximateCreationDateTime"] == int(instant.timestamp())
    assert json.loads(json.dumps(record)) == record
    assert raw["awsRegion"] == "us-east-1"  # the input is left alone


@pytest.mark.parametrize(("event_name", "passes"), [("INSERT", True), ("MODIFY", False), ("REMOVE", False)])
def test_mapping_accepts_only_inserts_as_the_templates_filter_says(event_name: str, passes: bool) -> None:
    # Given the template's mapping, and a record of each kind
    mapping = stream.mapping_from_template(load_template())
    record = stream.lambda_record(raw_record(1, event_name), region="eu-west-2", stream_arn=STREAM_ARN)
    # When it is filtered
    # Then only a new item reaches the function
    assert mapping.accepts(record) is passes


# -- the mapping, from template.yaml ----------------------------------------------------------------


def test_mapping_from_template_reads_the_notifiers_event_source_mapping() -> None:
    # Given the repository's template
    # When the notifier's mapping is read from it
    mapping = stream.mapping_from_template(load_template())
    # Then it is the deployed one
    assert mapping == StreamMapping(
        function_name="NotifyEnquiryFunction",
        batch_size=10,
        starting_position="TRIM_HORIZON",
        event_names=frozenset({"INSERT"}),
        maximum_retry_attempts=5,
        bisect_on_error=True,
        dead_letter_queue="NotificationDeadLetterQueue",
        memory_mb=256,
        timeout_seconds=120,
    )


def test_mapping_from_template_without_the_function_uses_the_defaults() -> None:
    # Given a template with no notifier
    # When the mapping is read
    mapping = stream.mapping_from_template({"Resources": {}})
    # Then new items only, five retries
    assert mapping.event_names == {"INSERT"}
    assert mapping.maximum_retry_attempts == 5


@pytest.mark.parametrize(
    "filters",
    [
        [{"Pattern": '{"size": [{"numeric": [">", 1]}]}'}],
        [{"Pattern": '{"eventName": [{"prefix": "INS"}]}'}],
        [{"Pattern": '{"eventName": ["INSERT"], "dynamodb": {"NewImage": {"service": {"S": ["Yoga"]}}}}'}],
        [{"Pattern": '{"eventName": []}'}],
        [{"Pattern": '{"eventName": ["INSERT"]'}],
        [{"Pattern": '{"eventName": ["INSERT"]}'}, {"Pattern": '{"eventName": ["MODIFY"]}'}],
        [],
    ],
)
def test_mapping_from_template_refuses_any_filter_but_one_on_event_name(filters: list[Any]) -> None:
    # Given the template with a filter other than one pattern {"eventName": [...]}
    template = load_template()
    event = template["Resources"]["NotifyEnquiryFunction"]["Properties"]["Events"]["NewEnquiry"]
    event["Properties"]["FilterCriteria"] = {"Filters": filters}
    # When the mapping is read
    # Then it is refused, saying which shape the local server runs
    with pytest.raises(ValueError, match="eventName"):
        stream.mapping_from_template(template)


def test_backoff_seconds_doubles_from_half_a_second_up_to_eight() -> None:
    # Given successive failures
    # When the pauses are worked out
    pauses = [stream.backoff_seconds(failures) for failures in range(1, 8)]
    # Then they double, capped
    assert pauses == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]


# -- the poller: reading, batching, retrying, giving up ---------------------------------------------


def test_poller_reads_from_trim_horizon_and_sends_inserts_in_lambdas_event_shape() -> None:
    # Given a stream with two new items and the notifier's own update between them
    streams = FakeStreams([raw_record(0), raw_record(1, "MODIFY"), raw_record(2)])
    function = Function()
    poller, _ = make_poller(streams, function)
    # When it is polled
    poller.poll_once()
    # Then the function gets one event with the two inserts, read from the oldest record
    assert streams.iterator_requests[0]["ShardIteratorType"] == "TRIM_HORIZON"
    assert function.batches == [[seq(0), seq(2)]]
    record = function.events[0]["Records"][0]
    assert record["eventSourceARN"] == STREAM_ARN
    assert record["eventVersion"] == "1.1"
    assert isinstance(record["dynamodb"]["ApproximateCreationDateTime"], int)


def test_poller_batches_at_most_the_batch_size_and_reads_on_from_where_it_was() -> None:
    # Given 12 new items, then 1 more once the first ones were read
    streams = FakeStreams([raw_record(number) for number in range(12)])
    function = Function()
    clock = Clock()
    poller, _ = make_poller(streams, function, clock)
    # When it runs
    run_until_idle(poller, clock, seconds=1)
    streams.records.append(raw_record(12))
    run_until_idle(poller, clock, seconds=1)
    # Then every record went once, in order, ten at a time
    assert function.batches == [[seq(n) for n in range(10)], [seq(10), seq(11)], [seq(12)]]


def test_poller_retries_a_partial_failure_from_the_first_failed_record() -> None:
    # Given a batch of three whose second record fails once
    streams = FakeStreams([raw_record(0), raw_record(1), raw_record(2)])
    failures = [{"batchItemFailures": [{"itemIdentifier": seq(1)}]}]
    function = Function(lambda sequences: failures.pop(0) if failures else {"batchItemFailures": []})
    clock = Clock()
    poller, _ = make_poller(streams, function, clock)
    # When it is polled, then polled again before and after the first back-off
    poller.poll_once()
    clock.now += 0.4
    poller.poll_once()
    clock.now += 0.1
    poller.poll_once()
    # Then the retry starts at the failed record, not before, and waits half a second
    assert function.batches == [[seq(0), seq(1), seq(2)], [seq(1), seq(2)]]
    assert poller.dead_letters() == []


def test_poller_sends_a_batch_to_the_dead_letter_list_after_the_retries_and_moves_on() -> None:
    # Given a record that always fails, between two that do not
    streams = FakeStreams([raw_record(0), raw_record(1), raw_record(2)])

    def respond(sequences: list[str]) -> Any:
        return {"batchItemFailures": [{"itemIdentifier": seq(1)}] if seq(1) in sequences else []}

    function = Function(respond)
    clock = Clock()
    poller, sent = make_poller(streams, function, clock)
    # When it runs through every back-off, and a new record arrives afterwards
    run_until_idle(poller, clock)
    streams.records.append(raw_record(3))
    run_until_idle(poller, clock, seconds=1)
    # Then the first try and five retries, with growing pauses, then the shard moved on
    assert function.batches == [[seq(0), seq(1), seq(2)]] + [[seq(1), seq(2)]] * 5 + [[seq(3)]]
    # And the batch given up on is recorded as Lambda's OnFailure record: metadata, no contents
    [letter] = poller.dead_letters()
    assert letter["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert letter["requestContext"]["functionArn"] == FUNCTION_ARN
    assert letter["requestContext"]["approximateInvokeCount"] == 6
    assert letter["DDBStreamBatchInfo"] == {
        "shardId": SHARD_ID,
        "startSequenceNumber": seq(1),
        "endSequenceNumber": seq(2),
        "approximateArrivalOfFirstRecord": "2026-03-01T12:00:01Z",
        "approximateArrivalOfLastRecord": "2026-03-01T12:00:02Z",
        "batchSize": 2,
        "streamArn": STREAM_ARN,
    }
    assert "enquiry-1" not in json.dumps(letter)
    assert [json.loads(body) for body in sent] == [letter]


def test_poller_waits_longer_between_each_retry() -> None:
    # Given a function that always fails
    streams = FakeStreams([raw_record(0)])
    calls: list[float] = []
    clock = Clock()

    def respond(sequences: list[str]) -> Any:
        calls.append(clock.now)
        return {"batchItemFailures": [{"itemIdentifier": sequences[0]}]}

    poller, _ = make_poller(streams, Function(respond), clock)
    # When it runs until it gives up
    run_until_idle(poller, clock)
    # Then the pauses double from half a second (to the poll interval's precision)
    pauses = [later - earlier for earlier, later in itertools.pairwise(calls)]
    assert [round(pause * 4) / 4 for pause in pauses] == [0.5, 1.0, 2.0, 4.0, 8.0]
    assert len(poller.dead_letters()) == 1


def test_poller_splits_a_batch_that_raised_until_the_bad_record_is_alone() -> None:
    # Given a function that raises whenever one poisoned record is in its batch
    streams = FakeStreams([raw_record(number) for number in range(4)])

    def respond(sequences: list[str]) -> Any:
        if seq(2) in sequences:
            raise RuntimeError("poisoned")
        return {"batchItemFailures": []}

    function = Function(respond)
    clock = Clock()
    poller, _ = make_poller(streams, function, clock)
    # When it runs
    run_until_idle(poller, clock)
    # Then the batch is halved (splits are not retries), the bad record retried alone five times
    assert function.batches[:4] == [
        [seq(0), seq(1), seq(2), seq(3)],
        [seq(0), seq(1)],
        [seq(2), seq(3)],
        [seq(2)],
    ]
    assert function.batches[4:] == [[seq(2)]] * 5 + [[seq(3)]]
    # And only it is given up on
    [letter] = poller.dead_letters()
    assert letter["DDBStreamBatchInfo"]["startSequenceNumber"] == seq(2)
    assert letter["DDBStreamBatchInfo"]["batchSize"] == 1
    assert letter["responseContext"]["functionError"] == "Unhandled"


def test_poller_treats_an_unknown_item_identifier_as_the_whole_batch_failing() -> None:
    # Given a function that reports a failure naming no record of the batch, once
    streams = FakeStreams([raw_record(0), raw_record(1)])
    answers = [{"batchItemFailures": [{"itemIdentifier": "nonsense"}]}]
    function = Function(lambda sequences: answers.pop(0) if answers else {})
    clock = Clock()
    poller, _ = make_poller(streams, function, clock)
    # When it runs
    run_until_idle(poller, clock, seconds=2)
    # Then, as Lambda does, the whole batch is retried
    assert function.batches == [[seq(0), seq(1)], [seq(0), seq(1)]]


def test_poller_logs_exception_types_never_record_contents(caplog: pytest.LogCaptureFixture) -> None:
    # Given a function that fails with enquiry text in its exception
    streams = FakeStreams([raw_record(0, message={"S": "my private symptom"})])

    def respond(sequences: list[str]) -> Any:
        raise ValueError("my private symptom")

    clock = Clock()
    poller, _ = make_poller(streams, Function(respond), clock)
    # When it runs until it gives up
    with caplog.at_level(logging.DEBUG, logger="emulator.stream"):
        run_until_idle(poller, clock)
    # Then the log names the exception's type, and nothing the record holds
    assert "ValueError" in caplog.text
    assert "private symptom" not in caplog.text
    assert len(poller.dead_letters()) == 1


def test_poller_forgets_each_iterator_it_has_used() -> None:
    # Given a poller that reports used iterators
    forgotten: list[str] = []
    poller = StreamPoller(
        FakeStreams([raw_record(0)]),
        target=StreamTarget(STREAM_ARN, FUNCTION_ARN, region="eu-west-2"),
        handler=Function(),
        mapping=StreamMapping(),
        hooks=PollerHooks(forget_iterator=forgotten.append),
    )
    # When it polls three times
    for _ in range(3):
        poller.poll_once()
    # Then each iterator read with is forgotten once read
    assert forgotten == ["at-0", "at-1", "at-1"]


def test_poller_thread_survives_a_failing_stream_and_resumes_where_it_was() -> None:
    # Given a stream that fails on the second read
    streams = FakeStreams([raw_record(0)])
    delivered = threading.Event()
    batches: list[list[str]] = []

    def respond(sequences: list[str]) -> Any:
        batches.append(sequences)
        if seq(1) in sequences:
            delivered.set()
        return {"batchItemFailures": []}

    poller, _ = make_poller(streams, Function(respond), clock=time.monotonic)
    # When it runs in its thread, the stream fails once, and a record arrives after
    with poller.running():
        deadline = time.monotonic() + 2
        while not batches and time.monotonic() < deadline:
            time.sleep(0.01)
        streams.failures_to_come.append(RuntimeError("stream unavailable"))
        streams.records.append(raw_record(1))
        assert delivered.wait(timeout=5)
    # Then every record was delivered exactly once, reading on after the failure from a new iterator
    assert batches == [[seq(0)], [seq(1)]]
    assert [request["ShardIteratorType"] for request in streams.iterator_requests] == [
        "TRIM_HORIZON",
        "AFTER_SEQUENCE_NUMBER",
    ]


def test_poller_log_lines_survive_the_functions_log_filter(caplog: pytest.LogCaptureFixture) -> None:
    # Given the functions' log filter, which withholds what other libraries log (the local server runs
    # the handlers, and so that filter, in the poller's process)
    from enquiries.log import withhold_third_party_log_content

    withhold_third_party_log_content()
    streams = FakeStreams([raw_record(0)])

    def respond(sequences: list[str]) -> Any:
        raise ValueError("the function failed")

    clock = Clock()
    poller, _ = make_poller(streams, Function(respond), clock)
    # When the poller logs why it retries and gives up
    with caplog.at_level(logging.DEBUG, logger="emulator.stream"):
        run_until_idle(poller, clock)
    # Then its lines are kept, as the local server's own are
    assert "ValueError" in caplog.text
    assert "gave up on 1 records" in caplog.text
