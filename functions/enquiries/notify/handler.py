"""Lambda entry point of the notifier: the table's stream, in batches, with partial failure reporting.

Only INSERT records matter (the event source mapping filters the rest; this checks again), and each
record succeeds or fails on its own, so one bad record never holds back or repeats the others.

Records are taken one after another only while the invocation has time for the worst case of one
(`budget`); the rest are reported as failures, and Lambda delivers them again from the first of
them, in a new invocation (https://docs.aws.amazon.com/lambda/latest/dg/services-ddb-batchfailurereporting.html).

With ACKNOWLEDGE_ENQUIRER on, the enquirers of the delivered records are acknowledged after the
batch's clinic emails, within the time left; nothing about it fails a record (`acknowledgement`).

`init` is what Lambda's init phase does: it reads the settings, so a misconfigured deployment fails
there naming the variable, and builds the parts the handler uses, whose AWS clients are made on first
use. `handler_for` makes the handler of those parts.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import (
    DynamoDBRecord,
    DynamoDBRecordEventName,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from enquiries.aws import StorageUnavailable
from enquiries.forms import deployment_forms
from enquiries.log import logger, metrics_names, with_invocation_keys
from enquiries.notify.acknowledgement import Acknowledger, RetargetableMailer, acknowledger_for
from enquiries.notify.budget import RecordBudget
from enquiries.notify.canary_mail import compose_for, is_canary
from enquiries.notify.configuration import RULES
from enquiries.notify.delivery import RESEND_AGAIN, RESEND_KEY, RESEND_REASONS_KEY, Outcome, deliver
from enquiries.notify.ledger import DynamoNotificationLedger, NotificationLedger
from enquiries.notify.mail_settings import MailSettings, mail_settings
from enquiries.notify.mailer import SendFailed, SesMailer
from enquiries.notify.notification_cap import DynamoNotificationCap, NotificationCap
from enquiries.settings import NOTIFIER_REQUIRES, Settings, load_settings

NotifyHandler = Callable[[dict[str, Any], LambdaContext], dict[str, Any]]
REQUIRED_SETTINGS = NOTIFIER_REQUIRES


@dataclass(frozen=True)
class Notifier:
    """What the init phase builds, once per container, for every batch the handler takes."""

    mail: MailSettings
    ledger: NotificationLedger
    mailer: RetargetableMailer
    metrics: Metrics
    acknowledger: Acknowledger | None
    # NOTIFICATION_DAILY_CAP on the stream's clinic emails; None without a guard table (tests).
    cap: NotificationCap | None = None


def ses_mailer(mail: MailSettings) -> RetargetableMailer:
    """The clinic's emails' mailer, through SES (the acknowledgements retarget it to their own set)."""
    return SesMailer(configuration_set=mail.configuration_set)


def init(
    settings: Settings | None = None,
    *,
    mailer_for: Callable[[MailSettings], RetargetableMailer] = ses_mailer,
    ledger_for: Callable[[str], NotificationLedger] = DynamoNotificationLedger,
    clock: Callable[[], float] = time.time,
) -> Notifier:
    """What the init phase does: the settings (from the environment unless given), checked, and the
    parts made for them: the mailer for the mail settings, the ledger for the table, the metrics, and
    the acknowledger (on `clock`) if the settings ask for one."""
    if settings is None:
        settings = load_settings(required=REQUIRED_SETTINGS, rules=RULES)
    mail = mail_settings(settings)
    # The forms' files, read and checked now: a bad one stops the init, never an email (forms.py).
    deployment_forms().check_routes(settings.services)
    namespace, service = metrics_names()
    metrics = Metrics(namespace=namespace, service=service)
    acknowledger = acknowledger_for(
        settings,
        mail,
        lambda name, value: metrics.add_metric(name=name, unit=MetricUnit.Count, value=value),
        clock,
    )
    return Notifier(
        mail=mail,
        ledger=ledger_for(settings.table_name),
        mailer=mailer_for(mail),
        metrics=metrics,
        acknowledger=acknowledger,
        cap=(
            DynamoNotificationCap(settings.guard_table_name, settings.notification_daily_cap)
            if settings.guard_table_name
            else None
        ),
    )


def record_handler(
    record: DynamoDBRecord,
    budget: RecordBudget,
    delivered: list[Mapping[str, Any]] | None = None,
    *,
    notifier: Notifier,
    reasons: dict[str, str] | None = None,
) -> None:
    """Email the clinic about one record's enquiry; add the enquiry to `delivered`, for its
    acknowledgement, once its email is sent or was sent before. When it cannot be sent, put the
    reason (an AWS error code, never enquiry text) in `reasons` under the record's sequence number."""
    keys = record.dynamodb.keys if record.dynamodb else None
    enquiry_id = str((keys or {}).get("id", ""))
    if record.event_name != DynamoDBRecordEventName.INSERT or not enquiry_id:
        # The stream's own word (MODIFY), not str() of the enum ("DynamoDBRecordEventName.MODIFY").
        event_name = record.event_name.name if record.event_name else None
        logger.info("record skipped", extra={"event_name": event_name, "enquiry_id": enquiry_id})
        return
    budget.take(enquiry_id)
    resend = record.raw_event.get(RESEND_KEY)  # the operator's command, not the stream
    try:
        delivery = deliver(
            enquiry_id,
            notifier.ledger,
            notifier.mailer,
            partial(compose_for, mail=notifier.mail),
            again=resend == RESEND_AGAIN,
            cap=notifier.cap if resend is None else None,
        )
    except SendFailed as failed:
        _note(reasons, record, failed.reason)
        notifier.metrics.add_metric(name="NotificationFailed", unit=MetricUnit.Count, value=1)
        log = logger.error if failed.permanent else logger.warning
        log(
            "notification not sent",
            extra={"enquiry_id": enquiry_id, "reason": failed.reason, "permanent": failed.permanent},
        )
        raise
    except StorageUnavailable as unavailable:
        _note(reasons, record, unavailable.reason)
        notifier.metrics.add_metric(name="NotificationFailed", unit=MetricUnit.Count, value=1)
        logger.warning(
            "notification deferred", extra={"enquiry_id": enquiry_id, "reason": unavailable.reason}
        )
        raise
    canary = is_canary(delivery.item)
    if delivery.outcome in (Outcome.SENT, Outcome.SENT_UNMARKED) and not canary:
        notifier.metrics.add_metric(name="EnquiryNotified", unit=MetricUnit.Count, value=1)
    if notifier.cap is not None and resend is None and delivery.outcome is not Outcome.ALREADY_NOTIFIED:
        # 1 for each held back, 0 for each sent: the cap's alarm turns OK with the next day's first
        capped = delivery.outcome is Outcome.CAPPED
        notifier.metrics.add_metric(name="NotificationCapped", unit=MetricUnit.Count, value=int(capped))
        if capped:
            logger.warning("notification held back by the daily cap", extra={"enquiry_id": enquiry_id})
    if delivery.item is not None and delivered is not None and not canary:
        delivered.append(delivery.item)
    logger.info(
        "record handled",
        extra={
            "enquiry_id": enquiry_id,
            "outcome": delivery.outcome.value,
            "ses_message_id": delivery.ses_message_id,
        },
    )


def _note(reasons: dict[str, str] | None, record: DynamoDBRecord, reason: str) -> None:
    sequence_number = record.dynamodb.sequence_number if record.dynamodb else None
    if reasons is not None and sequence_number is not None:
        reasons[sequence_number] = reason


def process_batch(
    event: dict[str, Any],
    context: LambdaContext,
    notifier: Notifier,
    delivered: list[Mapping[str, Any]] | None = None,
    processor: BatchProcessor | None = None,
) -> dict[str, Any]:
    """Each record on its own, with partial failure reporting. The operator's resend (its records carry
    RESEND_KEY) also gets each failed record's reason under RESEND_REASONS_KEY, so that `enquiries
    resend` can print it, and a batch whose every record failed is answered, not raised: the stream's
    own batches keep Powertools' answer, which Lambda reads (batchItemFailures only)."""
    resend = any(RESEND_KEY in record for record in event.get("Records") or [] if isinstance(record, dict))
    reasons: dict[str, str] = {}
    response: dict[str, Any] = dict(
        process_partial_response(
            event=event,
            record_handler=partial(
                record_handler,
                budget=RecordBudget(context),
                delivered=delivered,
                notifier=notifier,
                reasons=reasons,
            ),
            processor=(
                BatchProcessor(event_type=EventType.DynamoDBStreams, raise_on_entire_batch_failure=False)
                if resend
                else processor or BatchProcessor(event_type=EventType.DynamoDBStreams)
            ),
            context=context,
        )
    )
    if resend and reasons:
        response[RESEND_REASONS_KEY] = reasons
    return response


def publish_metrics(metrics: Metrics) -> None:
    """Print the batch's metrics (CloudWatch embedded metric format), if it counted any.

    A batch of repeats or skipped records counts nothing, which is normal here; Powertools'
    `log_metrics` would write a UserWarning into the function's log for each such batch.
    https://docs.powertools.aws.dev/lambda/python/latest/core/metrics/#flushing-metrics-manually
    """
    if metrics.metric_set:
        metrics.flush_metrics()


def handler_for(notifier: Notifier) -> NotifyHandler:
    processor = BatchProcessor(event_type=EventType.DynamoDBStreams)

    # Never the event, whatever POWERTOOLS_LOGGER_LOG_EVENT says: the stream records hold the enquiries.
    @with_invocation_keys
    def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        delivered: list[Mapping[str, Any]] = []
        try:
            response = process_batch(event, context, notifier, delivered, processor)
            if notifier.acknowledger is not None:
                notifier.acknowledger.acknowledge_all(delivered, notifier.mailer, context)
            return response
        finally:
            publish_metrics(notifier.metrics)

    return lambda_handler


lambda_handler = handler_for(init())
