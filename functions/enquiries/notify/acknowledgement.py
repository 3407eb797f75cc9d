"""The acknowledgement email to the enquirer (opt-in, ACKNOWLEDGE_ENQUIRER): whether to send it, and how.

**From the stream, after the clinic's email.** The handler first emails the clinic for every record of
its batch, then acknowledges the enquiries it delivered (`acknowledge_all`), so an acknowledgement
never delays a clinic email of its batch. Nothing about it fails a record: its failures are logged by
enquiry id and counted (`AcknowledgementFailed`), never retried by failing the record and never sent
to the dead-letter queue as though the clinic's email had failed.

**Who gets one.** Only a stored enquiry reaches the stream: a robot-trap hit, a refused, duplicate or
replayed submission, one over the rate limit and one that failed Turnstile are never stored. Of the
stored ones, at most one acknowledgement per address in 24 hours and at most ACKNOWLEDGEMENT_DAILY_CAP
in a UTC day (`ack_store`). An enquiry stored more than a day ago gets none: the stream holds a record
for a day, so an older one is an item put back or copied into the table, not a new enquiry.

**The address, in the guard table,** is an HMAC-SHA256 of the normalised address, keyed with the
stack's address-hashing secret (CLIENT_ADDRESS_SECRET_ARN, which also keys the client addresses of the
rate limit, under another prefix): a plain SHA-256 of an email address is reversed by hashing a list of
addresses, a keyed one is not without the key, and that key already exists, is random per stack and is
read by no one. Normalised to the mailbox it reaches (`mailbox`): lower case, without a `+tag`, and
the aliases the large providers document (dots and googlemail.com at Gmail, Yahoo's `base-keyword`),
the domain compared after IDNA, so that `victim+1@`, `v.ictim@gmail.com`... count as one address.

**Exactly once.** The enquiry's `acknowledgement` attribute holds the outcome; a redelivered record
that has one is skipped. The reservation in the guard table is made before the send and never undone,
so a record redelivered after a crash between the send and the outcome sends nothing again.

**Time.** One acknowledgement is started only while the invocation has time for its worst case
(ACKNOWLEDGEMENT_MAX_SECONDS), as `budget` does for records: a Lambda timeout would fail the whole
batch. One not started for lack of time is logged and counted as failed; a redelivery of its record
(if any) tries it again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from enum import StrEnum
from typing import Any, Protocol

from enquiries.aws import StorageUnavailable
from enquiries.log import logger
from enquiries.notify import headers
from enquiries.notify.ack_message import AcknowledgementMail, acknowledgement_mail, compose_acknowledgement
from enquiries.notify.ack_store import AlreadyDecided, Reservation
from enquiries.notify.budget import RESPONSE_MARGIN_SECONDS, RemainingTime
from enquiries.notify.delivery import DYNAMODB_CALL_MAX_SECONDS, Mailer
from enquiries.notify.headers import UnsafeHeader
from enquiries.notify.mail_settings import MailSettings
from enquiries.notify.mailer import SES_CALL_MAX_SECONDS, SendFailed
from enquiries.settings import Settings, acknowledgement_needs, configuration_error
from enquiries.stored_secret import SecretUnavailable
from enquiries.timestamps import epoch_table_time, parse_table_time

# The address-hashing key (once per container; a Secrets Manager call has the DynamoDB clients'
# timeouts), the reservation, the send and the outcome: each bounded by its client's timeouts.
ACKNOWLEDGEMENT_MAX_SECONDS = 3 * DYNAMODB_CALL_MAX_SECONDS + SES_CALL_MAX_SECONDS
ACKNOWLEDGEMENT_START_MIN_MILLIS = (ACKNOWLEDGEMENT_MAX_SECONDS + RESPONSE_MARGIN_SECONDS) * 1000
MAX_AGE_SECONDS = 24 * 3600
# Keeps the hashes of enquirers' addresses apart from the client (IP) addresses hashed with the same key.
HASH_PREFIX = "enquirer-email:"


class Result(StrEnum):
    """What became of one acknowledgement. The first seven are recorded on the enquiry."""

    SENT = "sent"
    ADDRESS_LIMIT = "address_limit"
    DAILY_CAP = "daily_cap"
    INTERRUPTED = "interrupted"
    REFUSED = "refused"  # SES refused it for good, e.g. an unverified recipient in the SES sandbox
    FAILED = "failed"  # SES did not take it (throttled, unreachable); not tried again
    UNUSABLE_ADDRESS = "unusable_address"  # stored before the header rules; cannot be a To header
    # Not recorded: a redelivered record may try again.
    DECIDED = "decided"
    STALE = "stale"
    UNAVAILABLE = "unavailable"
    DEFERRED = "deferred"


# The metric each result counts 1 in (CloudWatch namespace Enquiries). A sent one also counts 0 in
# AcknowledgementFailed, so that metric's Average over a period is the share not sent (the failure
# rate alarm) and its Sum how many; a reservation counts 0 in AcknowledgementCapped, which turns the
# daily cap alarm OK again.
METRICS = {
    Result.SENT: "AcknowledgementSent",
    Result.ADDRESS_LIMIT: "AcknowledgementLimited",
    Result.DAILY_CAP: "AcknowledgementCapped",
    Result.INTERRUPTED: "AcknowledgementFailed",
    Result.REFUSED: "AcknowledgementFailed",
    Result.FAILED: "AcknowledgementFailed",
    Result.UNUSABLE_ADDRESS: "AcknowledgementFailed",
    Result.UNAVAILABLE: "AcknowledgementFailed",
    Result.DEFERRED: "AcknowledgementFailed",
}


class RetargetableMailer(Mailer, Protocol):
    def with_configuration_set(self, configuration_set: str | None) -> Mailer:
        """The same mailer, sending under another SES configuration set."""


class AddressKeys(Protocol):
    def hash(self, address: str) -> str:
        """A keyed hash of `address`, or SecretUnavailable."""


class AcknowledgementStore(Protocol):
    def reserve(self, enquiry_id: str, address_key: str, now: float) -> Reservation: ...

    def record(
        self, enquiry_id: str, outcome: str, at: str | None = None, ses_message_id: str | None = None
    ) -> None: ...


def address_hash_text(address: str) -> str:
    """What is hashed for the address record (`ack#<keyed hash>`) of an enquiry from `address`."""
    return HASH_PREFIX + normalised_address(address)


def normalised_address(address: str) -> str:
    """The address as the limit compares it: the mailbox it reaches (`mailbox.mailbox_key`)."""
    from enquiries.notify.mailbox import mailbox_key

    return mailbox_key(address)


def _skipped(item: Mapping[str, Any], now: float) -> Result | None:
    """Why `item` gets no acknowledgement now, before anything is asked of AWS; None if it may."""
    if item.get("acknowledgement"):
        return Result.DECIDED
    try:
        created = parse_table_time(str(item["created_at"]))
    except (KeyError, ValueError):
        return Result.STALE
    return Result.STALE if now - created.timestamp() > MAX_AGE_SECONDS else None


class Acknowledger:
    def __init__(
        self,
        mail: AcknowledgementMail,
        store: AcknowledgementStore,
        address_keys: AddressKeys,
        count: Callable[[str, float], None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._mail = mail
        self._store = store
        self._address_keys = address_keys
        self._count = count
        self._clock = clock

    def acknowledge_all(
        self, items: Sequence[Mapping[str, Any]], mailer: RetargetableMailer, context: RemainingTime
    ) -> None:
        """Acknowledge each delivered enquiry that has no outcome yet, through `mailer` (the clinic
        email's) under the acknowledgement's own configuration set, which suppresses addresses that
        bounced or complained (`MailSettings`), while time allows; never raises."""
        mailer_for_strangers = mailer.with_configuration_set(self._mail.configuration_set)
        waiting = [item for item in items if not item.get("acknowledgement")]
        for index, item in enumerate(waiting):
            remaining = context.get_remaining_time_in_millis()
            if remaining < ACKNOWLEDGEMENT_START_MIN_MILLIS:
                for left in waiting[index:]:
                    logger.warning(
                        "acknowledgement deferred",
                        extra={"enquiry_id": str(left.get("id")), "remaining_ms": remaining},
                    )
                    self._count(METRICS[Result.DEFERRED], 1)
                return
            enquiry_id = str(item.get("id"))
            try:
                result = self.acknowledge(item, mailer_for_strangers)
            except Exception as error:  # a bug or a missing permission: the clinic's emails are sent
                logger.error(
                    "acknowledgement not sent",
                    extra={"enquiry_id": enquiry_id, "reason": type(error).__name__, "permanent": False},
                )
                result = Result.FAILED
            if result in METRICS:
                self._count(METRICS[result], 1)
            if result is Result.SENT:
                self._count(METRICS[Result.FAILED], 0)
            logger.info("acknowledgement handled", extra={"enquiry_id": enquiry_id, "outcome": result.value})

    def acknowledge(self, item: Mapping[str, Any], mailer: Mailer) -> Result:
        """Send the enquirer of `item` (a stored enquiry) its acknowledgement, if it may have one."""
        enquiry_id = str(item["id"])
        now = self._clock()
        skipped = _skipped(item, now)
        if skipped is not None:
            return skipped
        try:
            # The bare address, checked as the email will carry it (the name is never used).
            recipient = headers.reply_to("", str(item.get("email", "")))
        except UnsafeHeader:
            return self._record(enquiry_id, Result.UNUSABLE_ADDRESS)
        try:
            address_key = self._address_keys.hash(address_hash_text(str(item["email"])))
            reservation = self._store.reserve(enquiry_id, address_key, now)
        except (SecretUnavailable, StorageUnavailable) as unavailable:
            self._log_not_sent(enquiry_id, unavailable.reason, permanent=False)
            return Result.UNAVAILABLE
        if reservation is not Reservation.RESERVED:
            if reservation is Reservation.INTERRUPTED:
                logger.warning("acknowledgement interrupted before", extra={"enquiry_id": enquiry_id})
            return self._record(enquiry_id, Result(reservation.value))
        self._count(METRICS[Result.DAILY_CAP], 0)  # under the cap again: the cap alarm turns OK
        try:
            message_id = mailer.send(compose_acknowledgement(recipient, self._mail))
        except SendFailed as failed:
            self._log_not_sent(enquiry_id, failed.reason, permanent=failed.permanent)
            return self._record(enquiry_id, Result.REFUSED if failed.permanent else Result.FAILED)
        return self._record(
            enquiry_id, Result.SENT, at=epoch_table_time(self._clock()), ses_message_id=message_id
        )

    def _record(
        self, enquiry_id: str, result: Result, at: str | None = None, ses_message_id: str | None = None
    ) -> Result:
        try:
            self._store.record(enquiry_id, result.value, at, ses_message_id)
        except AlreadyDecided:
            logger.warning("acknowledgement outcome recorded before", extra={"enquiry_id": enquiry_id})
        except StorageUnavailable as unavailable:
            # The reservation stays, so a redelivered record sends nothing twice.
            logger.warning(
                "acknowledgement outcome not recorded",
                extra={"enquiry_id": enquiry_id, "outcome": result.value, "reason": unavailable.reason},
            )
        return result

    @staticmethod
    def _log_not_sent(enquiry_id: str, reason: str, *, permanent: bool) -> None:
        log = logger.error if permanent else logger.warning
        log(
            "acknowledgement not sent",
            extra={"enquiry_id": enquiry_id, "reason": reason, "permanent": permanent},
        )


def acknowledger_for(
    settings: Settings,
    mail: MailSettings,
    count: Callable[[str, float], None],
    clock: Callable[[], float] = time.time,
) -> Acknowledger | None:
    """The acknowledger the settings ask for, on `clock`, or None when ACKNOWLEDGE_ENQUIRER is off;
    SettingsError names a setting it needs that is missing or malformed."""
    if not settings.acknowledge_enquirer:
        return None
    found = list(acknowledgement_needs(settings))
    if found or settings.guard_table_name is None or settings.client_address_secret_arn is None:
        raise configuration_error(found)
    from enquiries.client_address import AddressHasher
    from enquiries.notify.ack_store import DynamoAcknowledgementStore

    return Acknowledger(
        acknowledgement_mail(settings, mail),
        DynamoAcknowledgementStore(
            settings.table_name, settings.guard_table_name, settings.acknowledgement_daily_cap
        ),
        AddressHasher(settings.client_address_secret_arn),
        count,
        clock,
    )
