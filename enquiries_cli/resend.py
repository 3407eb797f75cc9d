"""Emailing the clinic again for enquiries, through the notifier: those named (also when one was
emailed already: the email was lost or deleted), or those never marked notified.

On AWS the deployed notifier is invoked (synchronously) with a stream INSERT record for each
enquiry, so the email is sent with the notifier's own permissions, configuration and marking: it
re-reads each enquiry, takes its sending claim, sends, and marks it. For a named enquiry the record
asks for the email again (`notifier_event(again=True)`); for `--unnotified` it does not, so one the
stream emailed in the meantime is skipped. The local server takes the same Invoke call and runs the
same handler.

Never twice with the stream's own delivery: the notifier's claim on the enquiry's item, which every
delivery takes before sending (enquiries/notify/ledger.py), lets one send at a time; a resend that
finds the stream's delivery sending it says so ("being emailed right now"), and a stream record
that finds a resend sending it is retried later and then skips it as notified.

Two runs at once: each run first claims the enquiry with a conditional write of `resend#<id>` to the
guard table, which exactly one of two simultaneous runs can make, and lets it go afterwards; a claim
left by a run that died expires after CLAIM_SECONDS. The run that loses waits for the other to
finish: if the other's email went out after this run started, that answers both; otherwise this run
sends its own.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from enquiries_cli.functions_adapter import (
    aws_call,
    failed_enquiry_ids,
    failure_reasons,
    get_enquiry,
    notifier_event,
)
from enquiries_cli.scanning import Condition, scan, table_time
from enquiries_cli.target import Target

BATCH_SIZE = 10  # the records in one invocation, as the stream's event source mapping sends them
CLAIM_PREFIX = "resend#"
# Longer than the notifier's timeout (120 s, template.yaml) and this command's wait for another run.
CLAIM_SECONDS = 300
# Another run's notifier invocation may take the notifier's whole timeout.
WAIT_FOR_OTHER_RUN_SECONDS = 130.0
_POLL_SECONDS = 0.25


class Outcome(StrEnum):
    SENT = "sent"
    SENT_BY_OTHER_RUN = "sent by another resend running at the same time"
    ALREADY_NOTIFIED = "already notified"
    NOT_FOUND = "not found"
    FAILED = "not sent"
    OTHER_RUN_STILL_SENDING = "another resend is still sending it"
    BEING_SENT = "being emailed right now by the notifier"


FAILURES = frozenset({Outcome.NOT_FOUND, Outcome.FAILED, Outcome.OTHER_RUN_STILL_SENDING, Outcome.BEING_SENT})


@dataclass(frozen=True)
class Result:
    enquiry_id: str
    outcome: Outcome
    detail: str = ""


def unnotified(target: Target, older_than: timedelta | None = None) -> list[tuple[str, str]]:
    """(created_at, id) of every enquiry with no notified_at (stored more than `older_than` ago),
    oldest first."""
    condition = Condition().add(lambda c: f"attribute_not_exists({c.name('notified_at')})")
    if older_than is not None:
        cutoff = table_time(datetime.now(UTC) - older_than)
        condition.add(lambda c: f"{c.name('created_at')} < {c.value(cutoff)}")
    found = scan(
        target.client("dynamodb"), target.table_name, attributes=("id", "created_at"), condition=condition
    )
    return sorted((str(item.get("created_at", "")), str(item["id"])) for item in found)


class NotifierFailed(Exception):
    """The invocation itself failed (the function raised or timed out); `reason` is Lambda's type."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def invoke_notifier(target: Target, enquiry_ids: Sequence[str], *, again: bool = False) -> dict[str, str]:
    """Run the notifier for these enquiries (`again`: even those emailed already) and wait for it;
    return those it could not send, each with the notifier's reason ("" when it gave none)."""
    event = notifier_event(
        enquiry_ids, region=target.region, source=f"enquiries resend ({target.table_name})", again=again
    )
    response = target.client("lambda").invoke(
        FunctionName=target.notifier_name,
        InvocationType="RequestResponse",
        Payload=json.dumps(event).encode(),
    )
    raw = response["Payload"].read()
    payload = json.loads(raw) if raw else None
    if response.get("FunctionError"):
        error_type = payload.get("errorType") if isinstance(payload, dict) else None
        raise NotifierFailed(str(error_type or response["FunctionError"]))
    reasons = failure_reasons(enquiry_ids, payload)
    failed = failed_enquiry_ids(enquiry_ids, payload)
    return {enquiry_id: reasons.get(enquiry_id, "") for enquiry_id in failed}


class ClaimTaken(Exception):
    """Another run holds the claim."""


class Claims:
    """Resend claims in the guard table: one run at a time may send a given enquiry."""

    def __init__(self, target: Target, clock: Callable[[], float] = time.time) -> None:
        self._target = target
        self._clock = clock

    def take(self, enquiry_id: str) -> bool:
        """Claim the enquiry for this run; False when another run holds it."""
        now = int(self._clock())
        try:
            aws_call(
                self._target.client("dynamodb"),
                "put_item",
                ClaimTaken(enquiry_id),
                TableName=self._target.guard_table_name,
                Item={
                    "id": {"S": CLAIM_PREFIX + enquiry_id},
                    "claimed_at": {"S": table_time(datetime.fromtimestamp(now, UTC))},
                    # The guard table's TTL attribute: DynamoDB deletes a forgotten claim.
                    "expiration": {"N": str(now + CLAIM_SECONDS)},
                },
                # A claim past its expiry may still be there (TTL deletes lazily): it no longer counts.
                ConditionExpression="attribute_not_exists(id) OR expiration < :now",
                ExpressionAttributeValues={":now": {"N": str(now)}},
            )
        except ClaimTaken:
            return False
        return True

    def release(self, enquiry_id: str) -> None:
        aws_call(
            self._target.client("dynamodb"),
            "delete_item",
            TableName=self._target.guard_table_name,
            Key={"id": {"S": CLAIM_PREFIX + enquiry_id}},
        )


def resend(
    target: Target,
    enquiry_ids: Sequence[str],
    *,
    again: bool = True,
    on_done: Callable[[int], None] = lambda count: None,
    sleep: Callable[[float], None] = time.sleep,
) -> list[Result]:
    """Send each enquiry's email once (`again`: also one emailed before; otherwise only one never
    marked notified); one Result each, in order."""
    client = target.client("dynamodb")
    claims = Claims(target)
    started = table_time(datetime.now(UTC))
    results: dict[str, Result] = {}
    claimed: list[str] = []
    others: list[str] = []
    before: dict[str, str] = {}
    try:
        for enquiry_id in dict.fromkeys(enquiry_ids):
            if not claims.take(enquiry_id):
                others.append(enquiry_id)
                continue
            claimed.append(enquiry_id)
            # Read after claiming: a run that finished a moment ago has marked it by now.
            item = get_enquiry(client, target.table_name, enquiry_id)
            if item is None:
                results[enquiry_id] = Result(enquiry_id, Outcome.NOT_FOUND)
            elif item.get("notified_at") and not again:
                results[enquiry_id] = Result(enquiry_id, Outcome.ALREADY_NOTIFIED, str(item["notified_at"]))
            elif str(item.get("notified_at") or "") >= started:
                # Emailed since this run began (a run that finished a moment ago): that answers it.
                message_id = str(item.get("ses_message_id", ""))
                results[enquiry_id] = Result(enquiry_id, Outcome.SENT_BY_OTHER_RUN, message_id)
            else:
                before[enquiry_id] = str(item.get("ses_message_id", ""))
        to_send = [enquiry_id for enquiry_id in claimed if enquiry_id not in results]
        on_done(len(results))
        for start in range(0, len(to_send), BATCH_SIZE):
            batch = to_send[start : start + BATCH_SIZE]
            for enquiry_id, result in _send(target, batch, before, again).items():
                results[enquiry_id] = result
            on_done(len(batch))
    finally:
        for enquiry_id in claimed:
            claims.release(enquiry_id)
    for enquiry_id in others:
        results[enquiry_id] = _wait_for_other_run(target, claims, enquiry_id, _Run(started, again, sleep))
        on_done(1)
    return [results[enquiry_id] for enquiry_id in dict.fromkeys(enquiry_ids)]


def _send(target: Target, batch: list[str], before: dict[str, str], again: bool) -> dict[str, Result]:
    """Invoke the notifier for `batch` (claimed by this run); each enquiry's Result."""
    try:
        failed, reason = invoke_notifier(target, batch, again=again), ""
    except NotifierFailed as failure:
        # An older notifier raises Powertools' BatchProcessingError when every record of a batch
        # failed: each was a send the notifier logged, as when only some fail.
        failed = dict.fromkeys(batch, "")
        reason = "" if failure.reason == "BatchProcessingError" else f"the notifier failed ({failure.reason})"
    return {
        enquiry_id: _after_sending(
            target, enquiry_id, failed.get(enquiry_id), reason, before.get(enquiry_id, "")
        )
        for enquiry_id in batch
    }


# What to do about the notifier's reasons that need someone to act, in words. SES answers
# MessageRejected also for an unverified sender or, in the sandbox, recipient
# (https://docs.aws.amazon.com/ses/latest/dg/troubleshoot-error-messages.html).
_ADVICE = {
    "MessageRejected": "SES refused the email: the doctor command checks the sender's verification and "
    "the SES sandbox",
    "MailFromDomainNotVerifiedException": "SES cannot use the sender's MAIL FROM domain: check its DNS "
    "records in SES",
    "SendingPausedException": "sending is paused for the SES account or configuration set: see the SES "
    "console's reputation page",
    "AccountSuspendedException": "the SES account may no longer send: contact AWS Support",
    "NotFoundException": "the SES configuration set is missing: redeploy the stack",
}


def reason_in_words(reason: str) -> str:
    """The notifier's reason, and what to do when someone must act; a passing one (throttling, a
    timeout) says to try again later."""
    advice = _ADVICE.get(reason)
    if advice:
        return f"{reason}: {advice}"
    return f"{reason}: this usually passes; try again in a few minutes"


def _after_sending(
    target: Target, enquiry_id: str, reported: str | None, reason: str, message_before: str = ""
) -> Result:
    """The outcome once the notifier answered: `reported` is its reason for failing this enquiry
    ("" when it gave none), None when it did not report it failed; `reason`, the invocation's."""
    item = get_enquiry(target.client("dynamodb"), target.table_name, enquiry_id)
    if item is None:
        return Result(enquiry_id, Outcome.NOT_FOUND, "deleted while it was being sent")
    message_id = str(item.get("ses_message_id", ""))
    if item.get("notified_at") and message_id != message_before:
        return Result(enquiry_id, Outcome.SENT, message_id)
    if reason:
        return Result(enquiry_id, Outcome.FAILED, reason)
    if _claimed_now(item):
        # The stream's own delivery (or its retry) holds the claim: it is sending it now, once.
        return Result(enquiry_id, Outcome.BEING_SENT, "check in a minute with `enquiries show`")
    if reported is not None:
        detail = reason_in_words(reported) if reported else "the notifier could not send it; its log says why"
        return Result(enquiry_id, Outcome.FAILED, detail)
    return Result(enquiry_id, Outcome.FAILED, "the notifier did not mark it notified; its log says why")


def _claimed_now(item: Mapping[str, Any]) -> bool:
    until = item.get("sending_until")
    return isinstance(until, int | float) and until > time.time()


@dataclass(frozen=True)
class _Run:
    started: str  # when this run began (table time): an email marked after it answers this run too
    again: bool
    sleep: Callable[[float], None]


def _wait_for_other_run(target: Target, claims: Claims, enquiry_id: str, run: _Run) -> Result:
    """The outcome of another run's send of this enquiry once it has one, or this run's own send
    when the other's email (if any) went out before this run was asked."""
    deadline = time.monotonic() + WAIT_FOR_OTHER_RUN_SECONDS
    while True:
        finished = claims.take(enquiry_id)  # the other run has let go of it
        try:
            item = get_enquiry(target.client("dynamodb"), target.table_name, enquiry_id)
            if item is None:
                return Result(enquiry_id, Outcome.NOT_FOUND)
            notified_at = str(item.get("notified_at") or "")
            if notified_at and (notified_at >= run.started or not run.again):
                return Result(enquiry_id, Outcome.SENT_BY_OTHER_RUN, str(item.get("ses_message_id", "")))
            if finished:
                # The other run sent nothing since this one started: this run sends its own.
                before = {enquiry_id: str(item.get("ses_message_id", ""))}
                return _send(target, [enquiry_id], before, run.again)[enquiry_id]
        finally:
            if finished:
                claims.release(enquiry_id)
        if time.monotonic() > deadline:
            return Result(enquiry_id, Outcome.OTHER_RUN_STILL_SENDING, "check later with `enquiries show`")
        run.sleep(_POLL_SECONDS)
