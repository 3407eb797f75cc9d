"""Nothing lost under faults: hundreds of enquiries through the real handlers while DynamoDB and SES fail.

The submission handler runs in process against moto, with its services built as `services_from` builds
them but with client factories that hand out a fault-injecting wrapper around the moto-backed client.
The wrapper fails a seeded share of calls the way AWS fails once botocore's own retries have given up:
throttling, 5xx, no connection, a timeout before the write, and (for the enquiry's put) a lost answer
after the write landed, which botocore resends. Refused enquiries are resent as the form script resends
them (same body, same Idempotency-Key, same address), then the notifier runs over the table's stream
as Lambda's event source mapping runs it, with a seeded share of SES sends throttled or dropped and a
few enquiries rejected outright.

Every enquiry comes from its own address, so the rate limit (left at its default, 10 an hour) is read
and written, and faulted, but never bites.
"""

from __future__ import annotations

import contextlib
import copy
import email
import email.policy
import functools
import io
import json
import logging
import random
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends
from support import (
    GUARD_TABLE_NAME,
    REGION,
    SECRET_NAME,
    TABLE_NAME,
    FakeContext,
    Handler,
    MakeHandler,
    MakeNotifier,
    body_of,
    load_event,
    stored_items,
    with_json_body,
)

from emulator import stream
from emulator.template_tables import load_template

SEED = 20261121
SUBMISSIONS = 300
ENQUIRY_FAULT_RATE = 0.15  # of calls on the enquiries table
GUARD_FAULT_RATE = 0.05  # of calls on the guard table (idempotency records, rate limit)
SES_THROTTLE_RATE = 0.15
SES_CONNECTION_RATE = 0.05
REJECTED_EVERY = 60  # every 60th enquiry has an address SES rejects for good: 5 of 300
RESEND_ROUNDS = 10
LOST_ANSWER_EVERY = 10  # every 10th accepted enquiry is resent as if its 201 never arrived
# Lambda's remaining time when the handler starts; an in-progress idempotency record expires with it.
# Scaled down from the function's 10 s, and the pause before a resend from Retry-After's 30 s with it.
REMAINING_MILLIS = 1_000
RESEND_PAUSE_SECONDS = 0.0
ENDPOINT = "https://dynamodb.eu-west-2.amazonaws.com"
CLINIC = "reception@clinic.example"
SENDER = "enquiries@clinic.example"


# --- injecting faults ---------------------------------------------------------------------------


def client_error(code: str, status: int, operation: str) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": "injected"}, "ResponseMetadata": {"HTTPStatusCode": status}},
        operation,
    )


DYNAMODB_FAULTS: dict[str, Callable[[str], Exception]] = {
    "throttled": lambda op: client_error("ProvisionedThroughputExceededException", 400, op),
    "unavailable": lambda op: client_error("ServiceUnavailable", 503, op),
    "internal_error": lambda op: client_error("InternalServerError", 500, op),
    "connection_error": lambda op: EndpointConnectionError(endpoint_url=ENDPOINT),
    "timeout": lambda op: ReadTimeoutError(endpoint_url=ENDPOINT),  # the request was never applied
}
LOST_ANSWER = "lost_answer"  # applied, then its answer lost; botocore sends the same request again


@dataclass(frozen=True)
class Fault:
    where: str  # "enquiries.put_item", "guard.update_item", "ses.send_email"
    kind: str


class FaultyClient:
    """A moto-backed boto3 client whose calls to `operations` fail at `rate`, the kind drawn from `kinds`."""

    def __init__(
        self,
        client: Any,
        name: str,
        operations: set[str],
        rate: float,
        kinds: list[str],
        rng: random.Random,
        journal: list[Fault],
    ) -> None:
        self._client = client
        self._name = name
        self._operations = operations
        self._rate = rate
        self._kinds = kinds
        self._rng = rng
        self._journal = journal

    def __getattr__(self, name: str) -> Any:
        if name in self._operations:
            return functools.partial(self._call, name)
        return getattr(self._client, name)

    def _call(self, operation: str, **request: Any) -> Any:
        call = getattr(self._client, operation)
        if self._rng.random() >= self._rate:
            return call(**request)
        kind = self._rng.choice(self._kinds)
        self._journal.append(Fault(f"{self._name}.{operation}", kind))
        if kind == LOST_ANSWER:
            call(**request)
            return call(**request)
        raise DYNAMODB_FAULTS[kind](operation)


class FaultySes:
    """moto's SES v2 client, with throttling and dropped connections at random, and rejections for good."""

    def __init__(self, client: Any, rejected: set[str], rng: random.Random, journal: list[Fault]) -> None:
        self._client = client
        self._rejected = rejected
        self._rng = rng
        self._journal = journal
        self.attempts: Counter[str] = Counter()

    def send_email(self, **request: Any) -> Any:
        message = email.message_from_bytes(request["Content"]["Raw"]["Data"], policy=email.policy.default)
        enquiry_id = str(message["X-Enquiry-Id"])
        self.attempts[enquiry_id] += 1
        draw = self._rng.random()
        if enquiry_id in self._rejected:
            self._journal.append(Fault(f"ses.send_email:{enquiry_id}", "rejected"))
            raise client_error("MessageRejected", 400, "SendEmail")
        if draw < SES_THROTTLE_RATE:
            self._journal.append(Fault(f"ses.send_email:{enquiry_id}", "throttled"))
            raise client_error("TooManyRequestsException", 429, "SendEmail")
        if draw < SES_THROTTLE_RATE + SES_CONNECTION_RATE:
            self._journal.append(Fault(f"ses.send_email:{enquiry_id}", "connection_error"))
            raise EndpointConnectionError(endpoint_url="https://email.eu-west-2.amazonaws.com")
        return self._client.send_email(**request)


# --- the visitor's side -------------------------------------------------------------------------


class ShortLivedContext(FakeContext):
    def get_remaining_time_in_millis(self) -> int:
        return REMAINING_MILLIS


@dataclass
class Attempt:
    status: int
    faults: list[Fault]
    enquiry_id: str | None


@dataclass
class Submission:
    index: int
    key: str | None
    ip: str
    body: dict[str, Any]
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def accepted_ids(self) -> list[str]:
        return [attempt.enquiry_id for attempt in self.attempts if attempt.enquiry_id]


def submissions() -> list[Submission]:
    made = []
    for index in range(SUBMISSIONS):
        body = {
            "name": f"Patient {index}",
            "email": f"patient{index}@example.com",
            "message": f"Enquiry number {index}: could I book an assessment next week?",
            "consent": True,
        }
        # A third come from a script without Idempotency-Key: only the double-submit check guards them.
        key = None if index % 3 == 0 else f"form-key-{index}"
        made.append(Submission(index, key, f"198.51.{index // 200}.{index % 200 + 1}", body))
    return made


def send(handler: Handler, submission: Submission, journal: list[Fault]) -> Attempt:
    headers = {"idempotency-key": submission.key} if submission.key else {}
    event = with_json_body("submit-json.json", submission.body, headers=headers)
    event["requestContext"]["http"]["sourceIp"] = submission.ip
    event["requestContext"]["requestId"] = f"req-{submission.index}-{len(submission.attempts)}"
    journal.clear()
    response = handler(event)
    status = int(response["statusCode"])
    enquiry_id = None
    if status == 201:
        enquiry_id = body_of(response)["id"]
    elif status == 503:
        # What the form script needs to resend: a wait, and the contract's code.
        assert int(response["headers"]["Retry-After"]) > 0
        assert body_of(response)["error"] == "unavailable"
        assert body_of(response)["reference"] == event["requestContext"]["requestId"]
    attempt = Attempt(status, list(journal), enquiry_id)
    submission.attempts.append(attempt)
    return attempt


def send_until_accepted(
    handler: Handler, pending: list[Submission], journal: list[Fault]
) -> list[Submission]:
    """Each one sent, then the refused ones resent after a pause, RESEND_ROUNDS times at most."""
    for round_number in range(RESEND_ROUNDS + 1):
        if not pending:
            break
        if round_number:
            time.sleep(RESEND_PAUSE_SECONDS)
        pending = [s for s in pending if send(handler, s, journal).status == 503]
    return pending


# --- the notifier's side --------------------------------------------------------------------------


def stream_records(dynamodb: Any) -> list[dict[str, Any]]:
    """Every record of the table's stream from its start, as Lambda hands them to the function."""
    streams = boto3.client("dynamodbstreams", region_name=REGION)
    stream_arn = dynamodb.describe_table(TableName=TABLE_NAME)["Table"]["LatestStreamArn"]
    records: list[dict[str, Any]] = []
    for shard in streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"]:
        iterator = streams.get_shard_iterator(
            StreamArn=stream_arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        for _ in range(100):  # 1,000 records a read at most; far more reads than needed
            page = streams.get_records(ShardIterator=iterator, Limit=1000)
            records.extend(
                stream.lambda_record(raw, region=REGION, stream_arn=stream_arn) for raw in page["Records"]
            )
            iterator = page.get("NextShardIterator")
            if not page["Records"] or not iterator:
                break
    return records


@dataclass
class MappingRun:
    invocations: int = 0
    retried_batches: int = 0
    dead_letters: list[dict[str, Any]] = field(default_factory=list)


def run_mapping(notify: Handler, records: list[dict[str, Any]], mapping: stream.StreamMapping) -> MappingRun:
    """Lambda's event source mapping with ReportBatchItemFailures: records before the first reported
    failure are done, the batch is retried from it, and after MaximumRetryAttempts the rest of the batch
    goes to the dead-letter path (here, a list)."""
    run = MappingRun()
    pending = [record for record in records if mapping.accepts(record)]
    failures = 0
    limit = 20 * (len(pending) + 1) * (mapping.maximum_retry_attempts + 1)
    while pending and run.invocations < limit:
        batch = pending[: mapping.batch_size]
        result = notify({"Records": copy.deepcopy(batch)})
        run.invocations += 1
        failed = {item["itemIdentifier"] for item in result["batchItemFailures"]}
        sequences = [record["dynamodb"]["SequenceNumber"] for record in batch]
        if not failed:
            del pending[: len(batch)]
            failures = 0
            continue
        first = min(sequences.index(sequence) for sequence in failed)
        del pending[:first]
        failures += 1
        run.retried_batches += 1
        if failures > mapping.maximum_retry_attempts:
            run.dead_letters.extend(batch[first:])
            del pending[: len(batch) - first]
            failures = 0
    assert not pending, "the mapping did not finish within its bound"
    return run


def emailed_ids() -> Counter[str]:
    backend = ses_backends[DEFAULT_ACCOUNT_ID][REGION]
    return Counter(
        str(email.message_from_string(message.raw_data, policy=email.policy.default)["X-Enquiry-Id"])
        for message in backend.sent_messages
    )


# --- fixtures -------------------------------------------------------------------------------------


@pytest.fixture
def quiet_functions(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Hundreds of requests' log lines would bury the summary (metrics: see `quietly`)."""
    from enquiries.log import logger

    stdlib_logger = logging.getLogger(logger.name)
    level = stdlib_logger.level
    stdlib_logger.setLevel(logging.CRITICAL)
    yield
    stdlib_logger.setLevel(level)


def quietly(handler: Handler) -> Handler:
    """`handler` with its stdout (the functions' metrics) swallowed."""

    def run(event: dict[str, Any]) -> dict[str, Any]:
        with contextlib.redirect_stdout(io.StringIO()):
            return handler(event)

    return run


def notifier_sending_through(ses: FaultySes, make_notifier: MakeNotifier) -> Handler:
    """The notifier's handler, quiet, its SES v2 calls made to `ses`."""
    from enquiries.notify.mailer import SesMailer

    boto3.client("ses", region_name=REGION).verify_email_identity(EmailAddress=SENDER)
    notifier = make_notifier(
        mailer_for=lambda mail: SesMailer(
            configuration_set=mail.configuration_set, client_factory=lambda: ses
        ),
        CLINIC_EMAIL=CLINIC,
        SENDER_EMAIL=SENDER,
        # Hundreds of enquiries in one day: above the daily cap on clinic emails, which is not tested here
        NOTIFICATION_DAILY_CAP="100000",
    )
    context = FakeContext(function_name="NotifyEnquiryFunction")
    return quietly(lambda event: notifier.lambda_handler(event, context))


def tally(visitors: list[Submission]) -> tuple[list[Attempt], Counter[int], dict[Fault, Counter[int]]]:
    """Every answered attempt, the count of each status, and the statuses each fault led to."""
    attempts = [attempt for s in visitors for attempt in s.attempts if attempt.status]
    by_fault: dict[Fault, Counter[int]] = defaultdict(Counter)
    for attempt in attempts:
        for fault in attempt.faults:
            by_fault[fault][attempt.status] += 1
    return attempts, Counter(attempt.status for attempt in attempts), by_fault


OUTCOMES = {201: "answered 201 (stored)", 503: "refused 503, resent and stored"}


def describe(faults: dict[Fault, Counter[int]]) -> list[str]:
    lines = []
    for fault in sorted(faults, key=lambda f: (f.where, f.kind)):
        outcomes = ", ".join(
            f"{count} {OUTCOMES.get(status, f'answered {status}')}"
            for status, count in sorted(faults[fault].items())
        )
        lines.append(f"  {fault.where} {fault.kind}: {sum(faults[fault].values())} → {outcomes}")
    return lines


# --- the proof ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_faults_hundreds_of_enquiries_none_lost_none_twice(
    dynamodb: Any,
    make_handler: MakeHandler,
    make_notifier: MakeNotifier,
    quiet_functions: None,
) -> None:
    from enquiries.api.services import Services
    from enquiries.client_address import AddressHasher
    from enquiries.settings import load_settings
    from enquiries.storage.intake_store import DynamoIntakeStore

    # Given the real submission handler whose DynamoDB calls fail now and then: the transaction
    # that stores an enquiry with its replay records and rate-limit count, and the reads and writes
    # of replay records on their own
    rng = random.Random(SEED)
    journal: list[Fault] = []
    client = FaultyClient(
        dynamodb,
        "dynamodb",
        {"transact_write_items", "get_item", "put_item"},
        ENQUIRY_FAULT_RATE,
        [*DYNAMODB_FAULTS, LOST_ANSWER],
        rng,
        journal,
    )
    assert load_settings().rate_limit_per_hour == 10
    services = Services(
        store=DynamoIntakeStore(TABLE_NAME, GUARD_TABLE_NAME, client_factory=lambda: client),
        hasher=AddressHasher(SECRET_NAME),
    )
    handler = quietly(make_handler(services, context=ShortLivedContext()))
    visitors = submissions()

    # When every enquiry is sent, and each refused one resent as the form script resends it
    unaccepted = send_until_accepted(handler, list(visitors), journal)
    # and a share of accepted ones resent as if the 201 had been lost on the way back
    time.sleep(RESEND_PAUSE_SECONDS)
    lost_answers = [s for s in visitors if s.index % LOST_ANSWER_EVERY == 3]
    for submission in lost_answers:
        submission.attempts.append(Attempt(0, [], None))  # marks where the resends start
    unreplayed = send_until_accepted(handler, lost_answers, journal)

    # Then every enquiry was accepted, and what each fault did is summed up
    attempts, statuses, by_fault = tally(visitors)
    items = stored_items(dynamodb)
    accepted = {s.accepted_ids[0]: s for s in visitors if s.accepted_ids}
    print(
        f"\nfaults: {SUBMISSIONS} enquiries, {len(attempts)} requests "
        f"({statuses[201]} × 201, {statuses[503]} × 503, {statuses[500]} × 500, "
        f"{sum(statuses.values()) - statuses[201] - statuses[503] - statuses[500]} other); "
        f"{len(lost_answers)} resent after a lost 201; stored {len(items)} for {len(accepted)} accepted",
        *describe(by_fault),
        sep="\n",
    )
    assert unaccepted == unreplayed == []
    assert set(statuses) <= {201, 503}, statuses
    # and each enquiry was accepted under one id, a resend after a lost 201 getting the same one
    for submission in visitors:
        assert len(set(submission.accepted_ids)) == 1, submission.index
    # and what was stored is exactly what was accepted: none missing, none stored twice
    assert sorted(item["id"] for item in items) == sorted(accepted)
    assert all(item["message"] == accepted[item["id"]].body["message"] for item in items)
    # and each fault was refused with a 503 or, where the enquiry was stored all the same, absorbed:
    # a write that landed but whose answer was lost, which botocore resent
    for attempt in attempts:
        absorbed = all(f.kind == LOST_ANSWER for f in attempt.faults)
        assert (attempt.status == 201) == (not attempt.faults or absorbed), attempt
    # and the run exercised every kind of fault on the transaction
    assert {fault.kind for fault in by_fault if fault.where == "dynamodb.transact_write_items"} == {
        *DYNAMODB_FAULTS,
        LOST_ANSWER,
    }

    # Given the notifier, whose SES sends fail now and then, and for good for a few enquiries
    rejected = {s.accepted_ids[0] for s in visitors if s.index % REJECTED_EVERY == 7}
    ses_journal: list[Fault] = []
    ses = FaultySes(boto3.client("sesv2", region_name=REGION), rejected, rng, ses_journal)
    notify = notifier_sending_through(ses, make_notifier)
    mapping = stream.mapping_from_template(load_template())

    # When the mapping runs it over the table's stream
    run = run_mapping(notify, stream_records(dynamodb), mapping)

    # Then every stored enquiry was emailed exactly once, except the rejected ones, which are dead-lettered
    emailed = emailed_ids()
    dead = {record["dynamodb"]["Keys"]["id"]["S"] for record in run.dead_letters}
    ses_faults = Counter(fault.kind for fault in ses_journal)
    transient = {fault.where.split(":")[1] for fault in ses_journal if fault.kind != "rejected"}
    print(
        f"  ses throttled: {ses_faults['throttled']} sends → retried, all sent",
        f"  ses connection errors: {ses_faults['connection_error']} sends → retried, all sent "
        f"({len(transient)} enquiries had a transient failure; each emailed once)",
        f"  ses rejected: {len(rejected)} enquiries ({ses_faults['rejected']} sends) → dead-lettered",
        f"  notifier: {run.invocations} invocations, {run.retried_batches} batches retried from their "
        f"first failure, {len(run.dead_letters)} records dead-lettered ({len(dead - rejected)} of them "
        f"behind a rejected one in its batch, already emailed); "
        f"emailed {sum(emailed.values())} of {len(items)} stored, "
        f"at most {max(emailed.values())} per enquiry",
        sep="\n",
    )
    assert max(emailed.values()) == 1
    assert set(emailed) == set(accepted) - rejected
    assert rejected <= dead
    assert all(emailed[enquiry_id] == 1 or enquiry_id in dead for enquiry_id in accepted)
    # and each transient SES failure was retried until the email went; each rejection counted
    assert all(emailed[enquiry_id] == 1 for enquiry_id in transient)
    assert ses_faults["rejected"] == sum(ses.attempts[enquiry_id] for enquiry_id in rejected)
    assert ses_faults["throttled"] > 0
    assert ses_faults["connection_error"] > 0


# --- regressions the fault run found ---------------------------------------------------------------


def test_faults_write_resent_by_the_client_after_a_lost_answer_stores_one_enquiry(
    make_handler: MakeHandler, dynamodb: Any
) -> None:
    from enquiries.aws_clients import submission_dynamodb
    from enquiries.aws_json import Answer

    # Given a write transaction that lands but whose answer times out once
    handler = make_handler()
    client = submission_dynamodb()
    lost: list[str] = []

    class LandThenTimeOut:
        def __init__(self, transport: Any) -> None:
            self.transport = transport

        def send(self, headers: dict[str, str], body: bytes) -> Answer:
            answer: Answer = self.transport.send(headers, body)
            if not lost and headers["X-Amz-Target"].endswith(".TransactWriteItems"):
                lost.append(json.loads(body)["TransactItems"][0]["Put"]["Item"]["id"]["S"])
                raise ReadTimeoutError(endpoint_url=ENDPOINT)
            return answer

        def close(self) -> None:
            self.transport.close()

    client.transport = LandThenTimeOut(client.transport)

    # When an enquiry is submitted (the client resends the transaction, which finds it already applied)
    response = handler(with_json_body("submit-json.json", sample_body()))

    # Then the visitor is told the id that was stored, and it is stored once
    assert response["statusCode"] == 201
    assert [item["id"] for item in stored_items(dynamodb)] == lost == [body_of(response)["id"]]


def test_faults_keyed_resend_after_a_lost_answer_gets_the_same_enquiry(
    make_handler: MakeHandler, dynamodb: Any
) -> None:
    # Given an enquiry with an Idempotency-Key that was stored, but whose 201 never arrived
    handler = make_handler()
    event = with_json_body("submit-json.json", sample_body(), headers={"idempotency-key": "k1"})
    first = handler(event)

    # When the form script resends it, from another network (another address) a minute later
    event["requestContext"]["http"]["sourceIp"] = "198.51.100.200"
    again = handler(event)

    # Then the resend gets the first answer and nothing more is stored
    assert again["statusCode"] == first["statusCode"] == 201
    assert again["body"] == first["body"]
    assert [item["id"] for item in stored_items(dynamodb)] == [body_of(first)["id"]]


def sample_body() -> dict[str, Any]:
    body: dict[str, Any] = json.loads(load_event("submit-json.json")["body"])
    return body
