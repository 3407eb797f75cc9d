"""The submission service: what becomes of a submitted form, in the order it is decided.

1. Validation: the contract's field rules (InvalidEnquiry). A refused form whose Idempotency-Key
   answered an earlier request is another request under a used key (IdempotencyKeyReused), as is any
   request whose normalised fields differ from the ones the key answered: the key's answer is
   given again only to the same fields. (A body that cannot be read at all is refused by the API,
   which asks `earlier_answer` the same question first.)
2. The robot trap: a filled `_gotcha` goes the way a real enquiry goes up to the write (its repeats,
   captcha and rate limit look the same), where nothing is stored: only its replay records and
   its own rate count, so a repeat gets the same make-believe answer.
3. Replay keys and the rate window: the Idempotency-Key, and with the hashed client address, the
   double-submit fingerprint and the address's hourly count.
4. Captcha: a Turnstile token works once, so a repeat gets its first answer before the check.
5. Store: the enquiry, its answer under its replay keys and the rate count, in one write; the
   store finds a repeat (Replayed) or a limit (RateLimited) there, and never overwrites an id.
6. Remember: a double submit that carried an Idempotency-Key gets its answer remembered under the
   key too, so that the key's retries keep getting it after the fingerprint's 10 minutes.

It takes plain values (the parsed fields, the key, the client address, the time, a fresh id) and
answers with an `Answer` or raises: InvalidEnquiry, IdempotencyKeyReused, CaptchaFailed,
CaptchaUnavailable, RateLimited, StorageUnavailable, SecretUnavailable or IdAlreadyUsed. A failed
replay look-up never hides the request's own answer. Rendering the answer is the caller's
(`render_success`), before the write, so that the answer is stored in the same transaction as the
enquiry.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from enquiries import canary
from enquiries.aws import StorageUnavailable
from enquiries.captcha import CaptchaVerifier
from enquiries.forms import DEFAULT_FORM_ID, Form
from enquiries.intake import (
    DOUBLE_SUBMIT_SECONDS,
    IDEMPOTENCY_KEY_SECONDS,
    REQUEST_FINGERPRINT,
    IdempotencyKeyReused,
    IntakeStore,
    Replayable,
    Replayed,
    ReplayKey,
)
from enquiries.log import logger, metrics_names
from enquiries.rate_window import RateWindow
from enquiries.timestamps import table_time
from enquiries.validation import Enquiry, FieldRules, InvalidEnquiry, validate_enquiry

# The answer to a stored enquiry, from its id and the `_next` address it asked for.
RenderSuccess = Callable[[str, str | None], Replayable]


class Hasher(Protocol):
    def hash(self, address: str) -> str:
        """The address's keyed hash; SecretUnavailable when the key cannot be read."""


@dataclass(frozen=True)
class Submission:
    fields: Mapping[str, Any]  # the form's fields as the body held them
    idempotency_key: str | None
    client_address: str  # empty when unknown
    now: datetime
    enquiry_id: str  # fresh: the id the enquiry gets if it is stored
    form: Form | None = None  # the form posted to; None: the default form
    canary: bool = False  # the stack's own canary (enquiries/canary.py): stored with its mark


@dataclass(frozen=True)
class Answer:
    """What to answer: `response` as rendered (now or for the first request), the enquiry it names,
    and `outcome` for the log: "stored", "honeypot" or "replay:<scope>"."""

    outcome: str
    enquiry_id: str | None
    response: Replayable


def utc_now() -> datetime:
    return datetime.now(UTC)


def count_spam_blocked() -> None:
    from aws_lambda_powertools.metrics import MetricUnit, single_metric

    namespace, service = metrics_names()
    with single_metric(name="SpamBlocked", unit=MetricUnit.Count, value=1, namespace=namespace) as metric:
        metric.add_dimension(name="service", value=service)


@dataclass(frozen=True)
class SubmissionService:
    """Without a hasher there is no double-submit detection and no rate limit (both key on the
    address); without a verifier, no captcha."""

    store: IntakeStore
    rules: FieldRules
    hasher: Hasher | None = None
    verifier: CaptchaVerifier | None = None
    rate_limit_per_hour: int = 0
    retention_days: int = 365
    count_caught: Callable[[], None] = count_spam_blocked

    def earlier_answer(self, idempotency_key: str | None) -> Answer | None:
        """The answer an earlier request with this Idempotency-Key got, if any: for a request the
        caller refuses before its fields can be read: IdempotencyKeyReused when the key answered
        readable fields (which these are not)."""
        return self._recalled(idempotency_keys(idempotency_key), fingerprint=None)

    def submit(self, submission: Submission, render_success: RenderSuccess) -> Answer:
        keys = idempotency_keys(submission.idempotency_key)
        # The stack's own canary has no Turnstile token to give: a valid proof (enquiries/canary.py)
        # takes its place. Only the stack can make one, for this Idempotency-Key and 5 minutes; a
        # forged, stale or copied one leaves the request an ordinary enquiry, captcha and all.
        rules = replace(self.rules, captcha_required=False) if submission.canary else self.rules
        verifier = None if submission.canary else self.verifier
        try:
            enquiry = validate_enquiry(dict(submission.fields), rules, submission.form)
        except InvalidEnquiry:
            earlier = self._recalled(keys, fingerprint=None)
            if earlier is None:
                raise
            return earlier
        fingerprint = request_fingerprint(enquiry)
        caught = enquiry.gotcha is not None
        rate = None
        if self.hasher is not None:
            client_key = self.hasher.hash(submission.client_address)
            keys += double_submit_keys(enquiry, client_key, caught)
            if self.rate_limit_per_hour > 0:
                rate = RateWindow(client_key, self.rate_limit_per_hour, submission.now.timestamp())
        if verifier is not None:
            earlier = self._recalled(keys, fingerprint)
            if earlier is not None:
                return earlier
            verifier.verify(enquiry.captcha_token or "", submission.client_address or None)
        response = render_success(submission.enquiry_id, enquiry.next_url)
        kept = {**response, REQUEST_FINGERPRINT: fingerprint}  # the answer, and what it answered
        try:
            self._store(enquiry, submission, kept, keys, rate)
        except Replayed as repeat:
            answer = _replayed(repeat.key, repeat.response, fingerprint)
            if repeat.key.scope == "double-submit" and submission.idempotency_key is not None:
                self._remember(keys[0], repeat.response)
            return answer
        return Answer("honeypot" if caught else "stored", submission.enquiry_id, response)

    def _store(
        self,
        enquiry: Enquiry,
        submission: Submission,
        response: Replayable,
        keys: list[ReplayKey],
        rate: RateWindow | None,
    ) -> None:
        if enquiry.gotcha is not None:
            self.count_caught()
            self.store.accept_caught(submission.enquiry_id, response, keys, rate)
            return
        item = enquiry_item(enquiry, submission.enquiry_id, submission.now, self.retention_days)
        if submission.canary:
            item[canary.ATTRIBUTE] = True
        self.store.accept(item, response, keys, rate)

    def _recalled(self, keys: list[ReplayKey], fingerprint: str | None) -> Answer | None:
        """The answer remembered for a repeat of this request (whose fields have `fingerprint`, None
        when they cannot be read), if any; IdempotencyKeyReused if the key answered other fields.

        It is asked only where the request has an answer of its own without it: its field errors,
        or a captcha check followed by the write, which finds repeats itself. So a look-up that
        fails (throttled, down) answers "none": it must not turn that answer into a 503."""
        if not keys:
            return None
        try:
            found = self.store.recall(keys)
        except StorageUnavailable as unavailable:
            logger.warning("replay lookup unavailable", extra={"reason": unavailable.reason})
            return None
        return _replayed(*found, fingerprint) if found else None

    def _remember(self, key: ReplayKey, response: Replayable) -> None:
        # Best effort: the visitor has their answer whether or not the key keeps it.
        with contextlib.suppress(StorageUnavailable):
            self.store.remember(key, response)


def _replayed(key: ReplayKey, response: Replayable, fingerprint: str | None) -> Answer:
    """The remembered answer, if it answered these fields. A record kept before fingerprints were
    (none) matches: it expires within IDEMPOTENCY_KEY_SECONDS."""
    remembered = response.get(REQUEST_FINGERPRINT)
    if key.scope == "idempotency-key" and remembered is not None and remembered != fingerprint:
        raise IdempotencyKeyReused
    given = {name: value for name, value in response.items() if name != REQUEST_FINGERPRINT}
    return Answer(f"replay:{key.scope}", response.get("enquiry_id"), given)


def idempotency_keys(idempotency_key: str | None) -> list[ReplayKey]:
    if idempotency_key is None:
        return []
    digest = hashlib.sha256(idempotency_key.encode()).hexdigest()
    return [ReplayKey("idempotency-key", digest, IDEMPOTENCY_KEY_SECONDS)]


def double_submit_keys(enquiry: Enquiry, client_key: str, caught: bool) -> list[ReplayKey]:
    """The fingerprint record of this submission. A trap hit that repeats a real enquiry gets the
    real one's answer, as a double click would (a read-only key); a real enquiry never gets a trap
    hit's."""
    keys = []
    if caught:
        real = submission_fingerprint(enquiry, client_key)
        keys.append(ReplayKey("double-submit", real, DOUBLE_SUBMIT_SECONDS, read_only=True))
    fingerprint = submission_fingerprint(enquiry, client_key, caught)
    keys.append(ReplayKey("double-submit", fingerprint, DOUBLE_SUBMIT_SECONDS))
    return keys


def request_fingerprint(enquiry: Enquiry) -> str:
    """The request's fields after normalisation (what would be stored, and `_next`): a retry under
    an Idempotency-Key has the same, another enquiry under the same key does not."""
    fingerprinted: dict[str, object] = {"fields": enquiry.stored_fields(), "next": enquiry.next_url}
    if enquiry.form != DEFAULT_FORM_ID:  # the same key with the same fields to another form: another request
        fingerprinted["form"] = enquiry.form
    material = json.dumps(fingerprinted, sort_keys=True)
    return hashlib.sha256(material.encode()).hexdigest()


def submission_fingerprint(enquiry: Enquiry, client_key: str, caught: bool = False) -> str:
    """Same normalised fields from the same client address: the same submission. A robot-trap hit
    never matches a real enquiry, so a real one is never answered with a trap hit's make-believe."""
    fingerprinted: dict[str, object] = {
        "fields": enquiry.stored_fields(),
        "next": enquiry.next_url,
        "client": client_key,
    }
    if caught:
        fingerprinted["caught"] = True
    if enquiry.form != DEFAULT_FORM_ID:  # the same fields sent to two forms are two enquiries
        fingerprinted["form"] = enquiry.form
    material = json.dumps(fingerprinted, sort_keys=True)
    return hashlib.sha256(material.encode()).hexdigest()


def enquiry_item(enquiry: Enquiry, enquiry_id: str, now: datetime, retention_days: int) -> dict[str, Any]:
    """The stored item: the stored fields, the form's id, `created_at` (ISO 8601 UTC) and the TTL
    `expires_at`."""
    received = now.astimezone(UTC)
    return {
        "id": enquiry_id,
        **enquiry.stored_fields(),
        "form": enquiry.form,
        "created_at": table_time(received),
        "expires_at": int((received + timedelta(days=retention_days)).timestamp()),
    }
