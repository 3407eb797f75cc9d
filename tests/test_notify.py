"""The notifier through its real handler: stream records in, one email per enquiry out, failures retried."""

from __future__ import annotations

import email
import email.policy
import importlib
import io
import json
import sys
import warnings
from collections.abc import Callable
from email.message import EmailMessage
from typing import Any
from unittest.mock import ANY

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends
from support import (
    EVENTS,
    REGION,
    TABLE_NAME,
    FakeContext,
    MadeNotifier,
    MakeNotifier,
    log_records,
    stored_items,
)

from emulator.template_tables import load_template
from enquiries.aws import StorageUnavailable
from enquiries.notify import delivery
from enquiries.notify.acknowledgement import RetargetableMailer
from enquiries.notify.delivery import Mailer
from enquiries.notify.ledger import DynamoNotificationLedger
from enquiries.notify.mail_settings import MailSettings
from enquiries.notify.mailer import SES_CALL_MAX_SECONDS, SendFailed, SesMailer, sesv2_client
from enquiries.settings import SettingsError

CLINIC = "Front desk <frontdesk@clinic.example>, therapists@clinic.example"
SENDER = "Clinic website <enquiries@clinic.example>"


def stream_event(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return event


def put_images(client: Any, event: dict[str, Any]) -> None:
    """Store the items a stream event speaks of, as the submission function would have."""
    for record in event["Records"]:
        image = {
            k: v
            for k, v in record["dynamodb"]["NewImage"].items()
            if k not in ("notified_at", "ses_message_id")
        }
        client.put_item(TableName=TABLE_NAME, Item=image)


def sent_emails() -> list[EmailMessage]:
    backend = ses_backends[DEFAULT_ACCOUNT_ID][REGION]
    return [
        email.message_from_string(message.raw_data, policy=email.policy.default)
        for message in backend.sent_messages
    ]


Notifier = Callable[[dict[str, Any]], Any]


@pytest.fixture
def clinic_settings(dynamodb: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The clinic's addresses in the notifier's settings, and its sender verified in SES."""
    monkeypatch.setenv("CLINIC_EMAIL", CLINIC)
    monkeypatch.setenv("SENDER_EMAIL", SENDER)
    boto3.client("ses", region_name=REGION).verify_email_identity(EmailAddress="enquiries@clinic.example")


@pytest.fixture
def notifier(clinic_settings: None, make_notifier: MakeNotifier) -> MadeNotifier:
    return make_notifier()


@pytest.fixture
def notify(notifier: MadeNotifier, lambda_context: FakeContext) -> Notifier:
    return lambda event: notifier.lambda_handler(event, lambda_context)


def wrapped(
    wrap: Callable[[RetargetableMailer], RetargetableMailer],
) -> Callable[[MailSettings], RetargetableMailer]:
    """A mailer factory for the notifier's init: `wrap` around the mailer it would have made."""
    from enquiries.notify.handler import ses_mailer

    return lambda mail: wrap(ses_mailer(mail))


# --- the email ----------------------------------------------------------------------------------


def test_notify_insert_sends_one_email_with_reply_to_the_patient(notify: Notifier, dynamodb: Any) -> None:
    # Given a stored enquiry and its INSERT record
    event = stream_event("stream-insert.json")
    put_images(dynamodb, event)

    # When the notifier handles the record
    result = notify(event)

    # Then the clinic gets one email the staff can answer with Reply
    assert result == {"batchItemFailures": []}
    [message] = sent_emails()
    assert message["To"].addresses[0].addr_spec == "frontdesk@clinic.example"
    assert [a.addr_spec for a in message["To"].addresses] == [
        "frontdesk@clinic.example",
        "therapists@clinic.example",
    ]
    assert message["From"].addresses[0].display_name == "Clinic website"
    assert message["Reply-To"].addresses[0].addr_spec == "jane.doe@example.com"
    assert message["Subject"] == "New enquiry from Jane Doe - Sports Massage"
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    for part in (text, html):
        assert "01KAPX4Q7N3Y8Z2M5R6T9V1W0A" in part
        assert "half marathon" in part
        assert "jane.doe@example.com" in part
        assert "Saturday 21 November 2026, 10:15 GMT" in part
    assert 'href="mailto:jane.doe@example.com"' in html
    assert 'href="tel:+448009875336"' in html
    assert "+44 800 987 5336" in text


def test_notify_marks_the_item_notified(notify: Notifier, dynamodb: Any) -> None:
    # Given a stored enquiry
    event = stream_event("stream-insert.json")
    put_images(dynamodb, event)

    # When it is notified
    notify(event)

    # Then the item records when and which SES message
    [item] = stored_items(dynamodb)
    assert item["notified_at"].endswith("Z")
    assert item["ses_message_id"]


def test_notify_time_received_is_shown_in_the_clinic_time_zone(
    clinic_settings: None, make_notifier: MakeNotifier, dynamodb: Any, lambda_context: FakeContext
) -> None:
    # Given a clinic in New York
    notifier = make_notifier(TIMEZONE="America/New_York")
    event = stream_event("stream-insert.json")
    put_images(dynamodb, event)

    # When the enquiry is notified
    notifier.lambda_handler(event, lambda_context)

    # Then the time is local to the clinic
    [message] = sent_emails()
    assert "Saturday 21 November 2026, 05:15 EST" in message.get_body(("plain",)).get_content()  # type: ignore[union-attr]


def test_notify_subject_without_service_and_with_unicode_name(notify: Notifier, dynamodb: Any) -> None:
    # Given an enquiry from a name outside ASCII and one with no service
    event = stream_event("stream-batch.json")
    put_images(dynamodb, event)

    # When they are notified
    notify(event)

    # Then subjects read correctly once decoded
    subjects = sorted(message["Subject"] for message in sent_emails())
    assert subjects == [
        "New enquiry from Jane Doe - Sports Massage",
        "New enquiry from Priya Natarajan",
        "New enquiry from Tomás Ó Briain - Osteopathy",
    ]


def test_notify_counts_notified_and_failed_in_metrics(
    clinic_settings: None,
    make_notifier: MakeNotifier,
    dynamodb: Any,
    lambda_context: FakeContext,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given a batch of three where one send fails
    event = stream_event("stream-batch.json")
    put_images(dynamodb, event)
    failing = {"01KAPX4QC9D8E7F6G5H4J3K2M1": SendFailed("MessageRejected", permanent=True)}
    notifier = make_notifier(mailer_for=wrapped(lambda real: FlakyMailer(real, failing)))

    # When the batch is handled
    notifier.lambda_handler(event, lambda_context)

    # Then the metrics (CloudWatch embedded metric format on stdout) count 2 sent and 1 failed
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert emf

    def total(values: float | list[float]) -> float:
        return sum(values) if isinstance(values, list) else values

    assert total(emf[-1]["EnquiryNotified"]) == 2
    assert total(emf[-1]["NotificationFailed"]) == 1
    assert emf[-1]["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Enquiries"


def test_notify_metrics_carry_the_stack_own_service_and_namespace(
    clinic_settings: None,
    make_notifier: MakeNotifier,
    dynamodb: Any,
    lambda_context: FakeContext,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a notifier whose environment names its stack as the service (as template.yaml does)
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "clinic-b")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "EnquiriesB")
    event = stream_event("stream-insert.json")
    put_images(dynamodb, event)
    notifier = make_notifier()

    # When a record is notified
    notifier.lambda_handler(event, lambda_context)

    # Then its metrics are that stack's: the alarms of another clinic's stack never see them
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert emf
    assert emf[-1]["service"] == "clinic-b"
    assert emf[-1]["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "EnquiriesB"


def test_notify_batch_with_nothing_to_count_publishes_no_metrics_and_no_warning(
    notify: Notifier, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a batch that counts nothing: the MODIFY record that marking an item produces
    event = stream_event("stream-modify.json")

    # When it is handled, every warning recorded
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = notify(event)

    # Then it succeeds, with no metrics blob and no warning in the function's log
    assert result == {"batchItemFailures": []}
    assert '"_aws"' not in capsys.readouterr().out
    assert [str(warning.message) for warning in caught] == []


# --- exactly once --------------------------------------------------------------------------------


def test_notify_same_record_delivered_twice_sends_one_email(notify: Notifier, dynamodb: Any) -> None:
    # Given a record the stream delivers twice (a retried batch)
    event = stream_event("stream-insert.json")
    put_images(dynamodb, event)

    # When both deliveries are handled
    first = notify(event)
    second = notify(event)

    # Then one email was sent and both deliveries succeeded
    assert first == second == {"batchItemFailures": []}
    assert len(sent_emails()) == 1


def test_notify_modify_records_send_nothing(notify: Notifier, dynamodb: Any) -> None:
    # Given the MODIFY record that marking an item produces
    event = stream_event("stream-modify.json")

    # When it reaches the notifier
    result = notify(event)

    # Then nothing is sent and nothing fails
    assert result == {"batchItemFailures": []}
    assert sent_emails() == []


def test_notify_skipped_record_is_logged_with_the_streams_event_name(
    notify: Notifier, log_output: io.StringIO
) -> None:
    # Given the MODIFY record that marking an item produces
    event = stream_event("stream-modify.json")

    # When it reaches the notifier
    notify(event)

    # Then the log names the event as the stream does, for a search on eventName
    [skipped] = [r for r in log_records(log_output) if r["message"] == "record skipped"]
    assert skipped["event_name"] == event["Records"][0]["eventName"] == "MODIFY"


def test_notify_item_gone_sends_nothing(notify: Notifier) -> None:
    # Given an INSERT record whose item was deleted before the notifier ran
    event = stream_event("stream-insert.json")

    # When it is handled
    result = notify(event)

    # Then nothing is sent and the record is done
    assert result == {"batchItemFailures": []}
    assert sent_emails() == []


# --- failures -------------------------------------------------------------------------------------


class FlakyMailer:
    """Sends through the real mailer, except for the enquiry ids told to fail."""

    def __init__(self, real: RetargetableMailer, failing: dict[str, SendFailed]) -> None:
        self.real = real
        self.failing = failing

    def with_configuration_set(self, configuration_set: str | None) -> Mailer:
        """The acknowledgements' mailer: the real one, unwrapped."""
        return self.real.with_configuration_set(configuration_set)

    def send(self, message: EmailMessage) -> str:
        failure = self.failing.get(str(message["X-Enquiry-Id"]))
        if failure:
            raise failure
        return self.real.send(message)


def test_notify_one_failing_record_is_the_only_one_reported(
    clinic_settings: None, make_notifier: MakeNotifier, dynamodb: Any, lambda_context: FakeContext
) -> None:
    # Given a batch of three where SES throttles the second
    event = stream_event("stream-batch.json")
    put_images(dynamodb, event)
    failing_id = "01KAPX4QB2C3D4E5F6G7H8J9K0"
    failing = {failing_id: SendFailed("TooManyRequestsException", permanent=False)}
    notifier = make_notifier(mailer_for=wrapped(lambda real: FlakyMailer(real, failing)))

    def notify(event: dict[str, Any]) -> Any:
        return notifier.lambda_handler(event, lambda_context)

    # When the batch is handled
    result = notify(event)

    # Then only that record is reported for retry, and the others were emailed
    assert result == {"batchItemFailures": [{"itemIdentifier": "100000000000000000002"}]}
    assert len(sent_emails()) == 2

    # And when the stream retries from the failed record, only it is emailed now
    failing.clear()
    retry = {"Records": event["Records"][1:]}
    assert notify(retry) == {"batchItemFailures": []}
    assert len(sent_emails()) == 3


@pytest.mark.parametrize(
    ("code", "http_status", "permanent"),
    [
        ("TooManyRequestsException", 429, False),
        ("LimitExceededException", 400, False),
        ("InternalFailure", 500, False),
        ("MessageRejected", 400, True),
        ("MailFromDomainNotVerifiedException", 400, True),
        ("AccountSuspendedException", 400, True),
        ("SendingPausedException", 400, True),
    ],
)
def test_notify_ses_failures_fail_the_record_with_a_clear_reason(
    clinic_settings: None,
    make_notifier: MakeNotifier,
    dynamodb: Any,
    lambda_context: FakeContext,
    log_output: io.StringIO,
    code: str,
    http_status: int,
    permanent: bool,
) -> None:
    # Given SES refuses the send with this error
    client = boto3.client("sesv2", region_name=REGION)
    stubber = Stubber(client)
    stubber.add_client_error("send_email", service_error_code=code, http_status_code=http_status)
    stubber.activate()
    notifier = make_notifier(mailer_for=lambda mail: SesMailer(client_factory=lambda: client))
    event = stream_event("stream-insert.json")
    put_images(dynamodb, event)

    # When the record is handled
    with pytest.raises(Exception, match="All records failed"):
        notifier.lambda_handler(event, lambda_context)

    # Then the record failed (so the stream retries it, then dead-letters it), the reason is logged,
    # and the item is not marked notified
    failures = [r for r in log_records(log_output) if r["message"] == "notification not sent"]
    assert [(r["reason"], r["permanent"]) for r in failures] == [(code, permanent)]
    assert failures[0]["level"] == ("ERROR" if permanent else "WARNING")
    [item] = stored_items(dynamodb)
    assert "notified_at" not in item


def test_notify_unverified_sender_is_a_permanent_failure(
    clinic_settings: None, make_notifier: MakeNotifier, dynamodb: Any, lambda_context: FakeContext
) -> None:
    # Given a sender SES has not verified (moto refuses it as SES would)
    notifier = make_notifier(SENDER_EMAIL="someone-else@unverified.example")
    event = stream_event("stream-insert.json")
    put_images(dynamodb, event)

    # When the record is handled
    with pytest.raises(Exception, match="All records failed"):
        notifier.lambda_handler(event, lambda_context)

    # Then nothing was sent
    assert sent_emails() == []


def test_notify_mark_failure_after_send_does_not_resend(
    clinic_settings: None,
    make_notifier: MakeNotifier,
    dynamodb: Any,
    monkeypatch: pytest.MonkeyPatch,
    lambda_context: FakeContext,
    log_output: io.StringIO,
) -> None:
    from enquiries.aws_clients import dynamodb_client

    # Given the table throttles the update that marks the item, after SES accepted the email
    event = stream_event("stream-insert.json")
    put_images(dynamodb, event)
    real_client = dynamodb_client()
    stubbed = boto3.client("dynamodb", region_name=REGION)
    stubber = Stubber(stubbed)
    stubber.add_response(
        "get_item",
        real_client.get_item(TableName=TABLE_NAME, Key={"id": {"S": "01KAPX4Q7N3Y8Z2M5R6T9V1W0A"}}),
    )
    stubber.add_response("update_item", {})  # the sending claim
    for _ in range(1 + len(delivery.MARK_RETRY_PAUSES)):
        stubber.add_client_error("update_item", service_error_code="ProvisionedThroughputExceededException")
    stubber.activate()
    notifier = make_notifier(ledger_for=lambda table: DynamoNotificationLedger(table, lambda: stubbed))
    monkeypatch.setattr(delivery, "MARK_RETRY_PAUSES", (0.0, 0.0, 0.0))

    # When the record is handled
    result = notifier.lambda_handler(event, lambda_context)

    # Then, every retry of the mark having failed, the record is still not failed (a retry would
    # email the clinic twice), and the gap is logged by id
    assert result == {"batchItemFailures": []}
    assert len(sent_emails()) == 1
    [gap] = [r for r in log_records(log_output) if r["message"] == "emailed but not marked notified"]
    assert gap["enquiry_id"] == "01KAPX4Q7N3Y8Z2M5R6T9V1W0A"


def test_notify_storage_throttled_before_send_fails_the_record(
    clinic_settings: None, make_notifier: MakeNotifier, dynamodb: Any, lambda_context: FakeContext
) -> None:
    # Given the table throttles the read before sending
    event = stream_event("stream-batch.json")
    put_images(dynamodb, event)
    stubbed = boto3.client("dynamodb", region_name=REGION)
    stubber = Stubber(stubbed)
    for _ in event["Records"]:
        stubber.add_client_error("get_item", service_error_code="ThrottlingException")
    stubber.activate()
    notifier = make_notifier(ledger_for=lambda table: DynamoNotificationLedger(table, lambda: stubbed))

    # When the batch is handled
    with pytest.raises(Exception, match="All records failed"):
        notifier.lambda_handler(event, lambda_context)

    # Then nothing was sent, so the retry will send each one
    assert sent_emails() == []


def test_notify_mark_throttled_once_is_retried_and_recorded(
    clinic_settings: None,
    make_notifier: MakeNotifier,
    dynamodb: Any,
    monkeypatch: pytest.MonkeyPatch,
    lambda_context: FakeContext,
) -> None:
    from enquiries.aws_clients import dynamodb_client

    # Given the update that marks the item is throttled once, after SES accepted the email
    event = stream_event("stream-insert.json")
    put_images(dynamodb, event)
    real_client = dynamodb_client()
    throttled = {"left": 1}

    class ThrottleOnce:
        def __getattr__(self, name: str) -> Any:
            return getattr(real_client, name)

        def update_item(self, **request: Any) -> Any:
            if throttled["left"] and "notified_at" in request["UpdateExpression"]:
                throttled["left"] -= 1
                raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow"}}, "UpdateItem")
            return real_client.update_item(**request)

    notifier = make_notifier(ledger_for=lambda table: DynamoNotificationLedger(table, ThrottleOnce))
    monkeypatch.setattr(delivery, "MARK_RETRY_PAUSES", (0.0, 0.0, 0.0))

    # When the record is handled, and the stream delivers it again
    notifier.lambda_handler(event, lambda_context)
    notifier.lambda_handler(event, lambda_context)

    # Then the retried mark was recorded, so the second delivery sent nothing
    assert len(sent_emails()) == 1
    [item] = stored_items(dynamodb)
    assert item["notified_at"]


# --- time ---------------------------------------------------------------------------------------------


class Clock:
    """The time an invocation has used, moved on by the fakes below as AWS would spend it."""

    def __init__(self) -> None:
        self.seconds = 0.0


class InvocationContext(FakeContext):
    """Lambda's context for one invocation of the notifier: its remaining time runs down with `clock`."""

    def __init__(self, clock: Clock, timeout_seconds: float = 30) -> None:
        super().__init__(function_name="NotifyEnquiryFunction")
        self.clock = clock
        self.timeout_seconds = timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.timeout_seconds - self.clock.seconds) * 1000))


class SlowMailer:
    """Sends through the real mailer, as if each send took `seconds`."""

    def __init__(self, real: RetargetableMailer, clock: Clock, seconds: float) -> None:
        self.real, self.clock, self.seconds = real, clock, seconds

    def with_configuration_set(self, configuration_set: str | None) -> Mailer:
        """The acknowledgements' mailer: the real one, unwrapped."""
        return self.real.with_configuration_set(configuration_set)

    def send(self, message: EmailMessage) -> str:
        self.clock.seconds += self.seconds
        return self.real.send(message)


def test_notify_stops_taking_records_when_the_time_left_runs_short(
    clinic_settings: None, make_notifier: MakeNotifier, dynamodb: Any, log_output: io.StringIO
) -> None:
    # Given a batch of three, and SES taking 5 s a send (slow, within the client's timeouts)
    event = stream_event("stream-batch.json")
    put_images(dynamodb, event)
    clock = Clock()
    notifier = make_notifier(mailer_for=wrapped(lambda real: SlowMailer(real, clock, seconds=5)))

    # When the batch is handled in one 40 s invocation
    result = notifier.lambda_handler(event, InvocationContext(clock, timeout_seconds=40))

    # Then two records are emailed while 40 s and 35 s are left; with 30 s left, under the worst case
    # of one record (31 s, and 1 s to answer), the third is not started but reported for a retry
    assert result == {"batchItemFailures": [{"itemIdentifier": "100000000000000000003"}]}
    assert len(sent_emails()) == 2
    assert [
        item.get("notified_at") is not None for item in sorted(stored_items(dynamodb), key=lambda i: i["id"])
    ]
    deferred = [r for r in log_records(log_output) if r["message"] == "record deferred"]
    assert [(r["enquiry_id"], r["remaining_ms"]) for r in deferred] == [
        ("01KAPX4QC9D8E7F6G5H4J3K2M1", 30_000)
    ]

    # And when Lambda delivers the rest again, in a new invocation, it is emailed once
    retry = {"Records": event["Records"][2:]}
    assert notifier.lambda_handler(retry, InvocationContext(Clock())) == {"batchItemFailures": []}
    assert len(sent_emails()) == 3


def test_notify_takes_the_first_record_whatever_the_time_left(notifier: MadeNotifier, dynamodb: Any) -> None:
    # Given an invocation with less time than the worst case of one record from the start
    event = stream_event("stream-batch.json")
    put_images(dynamodb, event)

    # When the batch is handled
    result = notifier.lambda_handler(event, InvocationContext(Clock(), timeout_seconds=10))

    # Then the first record is emailed (deferring it would gain nothing), and the others wait
    assert result == {
        "batchItemFailures": [
            {"itemIdentifier": "100000000000000000002"},
            {"itemIdentifier": "100000000000000000003"},
        ]
    }
    assert len(sent_emails()) == 1


def test_notify_worst_case_of_one_record_follows_the_clients_and_fits_the_timeout(dynamodb: Any) -> None:
    from enquiries.aws_clients import dynamodb_client
    from enquiries.notify.budget import RECORD_MAX_SECONDS, RECORD_START_MIN_MILLIS

    # Given the clients as configured, and the notifier's timeout in the template
    timeout = load_template()["Resources"]["NotifyEnquiryFunction"]["Properties"]["Timeout"]

    def worst_case(client: Any) -> int:
        config = client.meta.config
        attempts = config.retries["total_max_attempts"]
        return int(attempts * (config.connect_timeout + config.read_timeout) + 1)  # + the backoff

    # Then the figures the handler budgets with are those of the clients, and one record fits
    assert worst_case(dynamodb_client()) == delivery.DYNAMODB_CALL_MAX_SECONDS == 7
    assert worst_case(sesv2_client()) == SES_CALL_MAX_SECONDS == 9
    # (the read and the sending claim, the send, the mark)
    assert RECORD_MAX_SECONDS == 7 + 7 + 9 + delivery.MARK_BUDGET_SECONDS == 31
    assert timeout * 1000 > RECORD_START_MIN_MILLIS
    sesv2_client.cache_clear()


class UnmarkableLedger:
    """A table that throttles every update, each try taking `seconds`."""

    def __init__(self, clock: Clock, seconds: float) -> None:
        self.clock, self.seconds, self.tries = clock, seconds, 0

    def get(self, enquiry_id: str) -> dict[str, Any]:
        return {"id": enquiry_id}

    def claim(self, enquiry_id: str, claim: str, now: int, *, again: bool) -> None:
        pass

    def release(self, enquiry_id: str, claim: str) -> None:
        pass

    def mark_notified(self, enquiry_id: str, notified_at: str, ses_message_id: str, claim: str) -> None:
        self.tries += 1
        self.clock.seconds += self.seconds
        raise StorageUnavailable("ProvisionedThroughputExceededException")


@pytest.mark.parametrize(("seconds_a_try", "tries"), [(0.05, 3), (delivery.DYNAMODB_CALL_MAX_SECONDS, 1)])
def test_notify_mark_retries_end_within_their_budget(
    monkeypatch: pytest.MonkeyPatch, seconds_a_try: float, tries: int
) -> None:
    # Given a table that throttles every mark, each try answering fast or only at the client's timeout
    clock = Clock()
    ledger = UnmarkableLedger(clock, seconds_a_try)
    monkeypatch.setattr("enquiries.notify.delivery.time.monotonic", lambda: clock.seconds)
    monkeypatch.setattr(
        "enquiries.notify.delivery.time.sleep", lambda pause: setattr(clock, "seconds", clock.seconds + pause)
    )

    class Mailer:
        def send(self, message: EmailMessage) -> str:
            return "ses-id"

    # When an enquiry is emailed and marked
    outcome = delivery.deliver("01KAPX4Q7N3Y8Z2M5R6T9V1W0A", ledger, Mailer(), lambda item: EmailMessage())

    # Then marking is retried while a try still fits in its budget, and not after
    assert outcome.outcome == delivery.Outcome.SENT_UNMARKED
    assert ledger.tries == tries
    assert clock.seconds <= delivery.MARK_BUDGET_SECONDS


# --- what SES receives -----------------------------------------------------------------------------


def test_notify_non_ascii_names_reach_ses_as_ascii_addresses_and_encoded_words(
    clinic_settings: None,
    make_notifier: MakeNotifier,
    dynamodb: Any,
    monkeypatch: pytest.MonkeyPatch,
    lambda_context: FakeContext,
) -> None:
    # Given a clinic whose sender and recipients have non-ASCII display names and domains
    monkeypatch.setenv("SENDER_EMAIL", "Clínica Dr. Smith <enquiries@clínica.example>")
    monkeypatch.setenv(
        "CLINIC_EMAIL", "Recepción Ñandú <frontdesk@clínica.example>, Équipe <team@clinic.example>"
    )
    client = boto3.client("sesv2", region_name=REGION)
    requests: list[dict[str, Any]] = []
    client.meta.events.register(
        "provide-client-params.sesv2.SendEmail", lambda params, **_: requests.append(params)
    )
    stubber = Stubber(client)
    stubber.add_response(
        "send_email",
        {"MessageId": "0100018c-test"},
        {
            "FromEmailAddress": "enquiries@xn--clnica-4va.example",
            "Destination": {"ToAddresses": ["frontdesk@xn--clnica-4va.example", "team@clinic.example"]},
            "Content": ANY,
        },
    )
    stubber.activate()
    notifier = make_notifier(mailer_for=lambda mail: SesMailer(client_factory=lambda: client))
    event = stream_event("stream-insert.json")
    put_images(dynamodb, event)

    # When the record is handled
    result = notifier.lambda_handler(event, lambda_context)

    # Then SES got bare 7-bit ASCII addresses, and the raw message carries the names as RFC 2047
    # encoded words that decode to the names as configured
    assert result == {"batchItemFailures": []}
    stubber.assert_no_pending_responses()
    [request] = requests
    envelope = [request["FromEmailAddress"], *request["Destination"]["ToAddresses"]]
    assert all(address.isascii() for address in envelope)
    raw = request["Content"]["Raw"]["Data"]
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert head.isascii()
    assert b"From: =?utf-8?" in head
    message = email.message_from_bytes(raw, policy=email.policy.default)
    [sender] = message["From"].addresses
    assert (sender.display_name, sender.addr_spec) == (
        "Clínica Dr. Smith",
        "enquiries@xn--clnica-4va.example",
    )
    assert [(a.display_name, a.addr_spec) for a in message["To"].addresses] == [
        ("Recepción Ñandú", "frontdesk@xn--clnica-4va.example"),
        ("Équipe", "team@clinic.example"),
    ]


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SENDER_EMAIL", "José <josé@clinic.example>"),
        ("CLINIC_EMAIL", "frontdesk@clinic.example, recepción@clinic.example"),
    ],
)
def test_notify_address_ses_cannot_send_to_fails_at_start(
    clinic_settings: None,
    make_notifier: MakeNotifier,
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
    value: str,
) -> None:
    # Given an address with non-ASCII before the @, which SES cannot use (it has no SMTPUTF8)
    monkeypatch.setenv(variable, value)

    # When Lambda initialises the notifier, it stops, naming the variable
    with pytest.raises(SettingsError, match=f"{variable} is invalid"):
        make_notifier()


# --- configuration ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("CLINIC_EMAIL", "", "CLINIC_EMAIL is required"),
        ("SENDER_EMAIL", "", "SENDER_EMAIL is required"),
        ("CLINIC_EMAIL", "frontdesk@clinic.example, not-an-address", "CLINIC_EMAIL is invalid"),
        ("SENDER_EMAIL", "Clinic <nobody>", "SENDER_EMAIL is invalid"),
        ("TIMEZONE", "Europe/Atlantis", "TIMEZONE is invalid"),
    ],
)
def test_notify_bad_configuration_fails_at_start_naming_the_variable(
    clinic_settings: None, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, named: str
) -> None:
    # Given a misconfigured notifier, not imported yet in this container
    monkeypatch.setenv(variable, value)
    monkeypatch.delitem(sys.modules, "enquiries.notify.handler", raising=False)

    # When Lambda imports it (its init phase)
    with pytest.raises(SettingsError, match=named):
        importlib.import_module("enquiries.notify.handler")


# --- sending again (`enquiries resend`) -----------------------------------------------------------------


def send_again(event: dict[str, Any]) -> dict[str, Any]:
    """The event as `enquiries resend ID` sends it: each record asks for the email again."""
    from enquiries.notify.delivery import RESEND_AGAIN, RESEND_KEY

    return {"Records": [{**record, RESEND_KEY: RESEND_AGAIN} for record in event["Records"]]}


def test_notify_answers_a_resend_it_could_not_send_with_the_reason(
    clinic_settings: None, make_notifier: MakeNotifier, dynamodb: Any, lambda_context: FakeContext
) -> None:
    # Given a sender SES has not verified, and an enquiry the operator resends
    from enquiries.notify.delivery import RESEND_REASONS_KEY

    notifier = make_notifier(SENDER_EMAIL="someone-else@unverified.example")
    event = stream_event("stream-insert.json")
    put_images(dynamodb, event)
    [record] = event["Records"]

    # When the notifier handles the resend's record (every record of it failing)
    answer = notifier.lambda_handler(send_again(event), lambda_context)

    # Then it answers, rather than raising as for the stream, naming the record and SES's reason
    sequence_number = record["dynamodb"]["SequenceNumber"]
    assert answer == {
        "batchItemFailures": [{"itemIdentifier": sequence_number}],
        RESEND_REASONS_KEY: {sequence_number: "MessageRejected"},
    }
    assert sent_emails() == []


def test_notify_send_again_emails_an_enquiry_already_notified(notify: Notifier, dynamodb: Any) -> None:
    # Given an enquiry the stream's delivery emailed (the email was then lost)
    event = stream_event("stream-insert.json")
    put_images(dynamodb, event)
    notify(event)
    [first] = stored_items(dynamodb)

    # When the operator asks for it again, and the stream delivers its record once more
    again = notify(send_again(event))
    notify(event)

    # Then the clinic got a second email for the resend only, and the mark names the new one
    assert again == {"batchItemFailures": []}
    assert len(sent_emails()) == 2
    [second] = stored_items(dynamodb)
    assert second["ses_message_id"] != first["ses_message_id"]
    assert "sending_until" not in second
    assert "sending_claim" not in second


def another_invocation(notifier: MadeNotifier) -> MadeNotifier:
    """The same notifier's handler as another container runs it (its own batch processor)."""
    from enquiries.notify.handler import handler_for

    return MadeNotifier(notifier.parts, handler_for(notifier.parts))


ALL_FAILED = "every record failed"


def answer_of(notifier: MadeNotifier, event: dict[str, Any], context: FakeContext) -> Any:
    """The handler's answer; Powertools raises when every record of the batch failed."""
    from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

    try:
        return notifier.lambda_handler(event, context)
    except BatchProcessingError:
        return ALL_FAILED


class ResendDuringSend:
    """The real mailer, with the operator's resend of the same enquiry arriving while the stream's
    delivery is sending it (after its read and its claim, before SES answers)."""

    def __init__(self, real: RetargetableMailer, event: dict[str, Any], lambda_context: FakeContext) -> None:
        self.real, self.event, self.context = real, event, lambda_context
        self.notifier: MadeNotifier | None = None
        self.resend_answers: list[Any] = []

    def with_configuration_set(self, configuration_set: str | None) -> Mailer:
        return self.real.with_configuration_set(configuration_set)

    def send(self, message: EmailMessage) -> str:
        if self.notifier is not None and not self.resend_answers:
            self.resend_answers.append(answer_of(self.notifier, send_again(self.event), self.context))
        return self.real.send(message)


def test_notify_resend_racing_the_streams_delivery_emails_once(
    clinic_settings: None, make_notifier: MakeNotifier, dynamodb: Any, lambda_context: FakeContext
) -> None:
    # Given a new enquiry, and a resend of it that arrives while the stream's delivery is sending it
    event = stream_event("stream-insert.json")
    put_images(dynamodb, event)
    racing: list[ResendDuringSend] = []

    def wrap(real: RetargetableMailer) -> RetargetableMailer:
        racing.append(ResendDuringSend(real, event, lambda_context))
        return racing[-1]

    notifier = make_notifier(mailer_for=wrapped(wrap))
    racing[0].notifier = another_invocation(notifier)

    # When the stream's record is handled
    result = notifier.lambda_handler(event, lambda_context)

    # Then the clinic got one email: the resend found the delivery's claim and sent nothing, and says
    # so by failing its record, with the reason (the operator's command reports it as being emailed
    # right now)
    from enquiries.notify.delivery import RESEND_REASONS_KEY

    assert result == {"batchItemFailures": []}
    assert len(sent_emails()) == 1
    [answer] = racing[0].resend_answers
    sequence_number = event["Records"][0]["dynamodb"]["SequenceNumber"]
    assert answer == {
        "batchItemFailures": [{"itemIdentifier": sequence_number}],
        RESEND_REASONS_KEY: {sequence_number: "claimed_by_another_delivery"},
    }
    [item] = stored_items(dynamodb)
    assert item["notified_at"]


class StreamDuringResend(ResendDuringSend):
    """The stream's delivery of the enquiry arriving while a resend is sending it."""

    def send(self, message: EmailMessage) -> str:
        if self.notifier is not None and not self.resend_answers:
            self.resend_answers.append(answer_of(self.notifier, self.event, self.context))
        return self.real.send(message)


def test_notify_streams_delivery_racing_a_resend_emails_once(
    clinic_settings: None, make_notifier: MakeNotifier, dynamodb: Any, lambda_context: FakeContext
) -> None:
    # Given an enquiry never emailed, and its stream record arriving while the operator's resend sends it
    event = stream_event("stream-insert.json")
    put_images(dynamodb, event)
    racing: list[StreamDuringResend] = []

    def wrap(real: RetargetableMailer) -> RetargetableMailer:
        racing.append(StreamDuringResend(real, event, lambda_context))
        return racing[-1]

    notifier = make_notifier(mailer_for=wrapped(wrap))
    racing[0].notifier = another_invocation(notifier)

    # When the resend runs, and the stream retries its record afterwards
    resent = notifier.lambda_handler(send_again(event), lambda_context)
    [during] = racing[0].resend_answers
    racing[0].notifier = None
    retried = notifier.lambda_handler(event, lambda_context)

    # Then one email: the stream's record failed while the resend held the claim, and its retry
    # found the enquiry notified
    assert resent == {"batchItemFailures": []}
    assert during == ALL_FAILED
    assert retried == {"batchItemFailures": []}
    assert len(sent_emails()) == 1


# --- the daily cap on clinic emails ---------------------------------------------------------------------


def metric_values(printed: str, name: str) -> list[float]:
    """Every value of metric `name` in the embedded metric format lines printed."""
    values: list[float] = []
    for line in printed.splitlines():
        if '"_aws"' in line and name in (document := json.loads(line)):
            value = document[name]
            values += value if isinstance(value, list) else [value]
    return values


def test_notify_daily_cap_stores_and_holds_back_the_rest_until_the_operator_resends(
    clinic_settings: None,
    make_notifier: MakeNotifier,
    dynamodb: Any,
    lambda_context: FakeContext,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given a cap of two clinic emails a day, and a batch of three new enquiries
    from enquiries.notify.delivery import RESEND_KEY, RESEND_UNNOTIFIED

    notifier = make_notifier(NOTIFICATION_DAILY_CAP="2")
    event = stream_event("stream-batch.json")
    put_images(dynamodb, event)
    capsys.readouterr()

    # When the stream delivers them
    result = notifier.lambda_handler(event, lambda_context)

    # Then two are emailed; the third is kept, unnotified, not retried, and counted for the alarm
    assert result == {"batchItemFailures": []}
    assert len(sent_emails()) == 2
    held = [item for item in stored_items(dynamodb) if not item.get("notified_at")]
    assert [item["id"] for item in held] == [event["Records"][2]["dynamodb"]["Keys"]["id"]["S"]]
    assert metric_values(capsys.readouterr().out, "NotificationCapped") == [0, 0, 1]

    # And the operator's `resend --unnotified` emails it, whatever the cap
    resend = {"Records": [{**event["Records"][2], RESEND_KEY: RESEND_UNNOTIFIED}]}
    assert notifier.lambda_handler(resend, lambda_context) == {"batchItemFailures": []}
    assert len(sent_emails()) == 3
    assert all(item.get("notified_at") for item in stored_items(dynamodb))
