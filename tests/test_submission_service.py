"""The submission service (enquiries/submission.py) on plain values, with no HTTP: the order of its
decisions, against the in-memory intake store (tests/fakes.py) and against DynamoDB's (moto) alike.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fakes import FixedHasher, InMemoryIntakeStore, OneTimeTokens
from support import GUARD_TABLE_NAME, TABLE_NAME, load_event, stored_items
from ulid import ULID

from enquiries.aws import StorageUnavailable
from enquiries.captcha import CaptchaFailed
from enquiries.intake import (
    IdAlreadyUsed,
    IdempotencyKeyReused,
    IntakeStore,
    RateLimited,
    Replayable,
    ReplayKey,
)
from enquiries.settings import DEFAULT_SERVICES
from enquiries.stored_secret import SecretUnavailable
from enquiries.submission import Answer, Submission, SubmissionService, idempotency_keys
from enquiries.validation import FieldRules, InvalidEnquiry

START = datetime(2026, 11, 21, 10, 15, 30, tzinfo=UTC)


def form(**changes: Any) -> dict[str, Any]:
    """The fields of events/submit-json.json, changed."""
    fields: dict[str, Any] = json.loads(load_event("submit-json.json")["body"])
    return {**fields, **changes}


def render(enquiry_id: str, next_url: str | None) -> Replayable:
    """A stand-in for the API's answer to a stored enquiry: the service only keeps and hands it back."""
    return {
        "status_code": 201,
        "body": json.dumps({"id": enquiry_id, "next": next_url}),
        "enquiry_id": enquiry_id,
    }


@dataclass
class Intake:
    """An intake store and a way to read back the enquiries it holds."""

    store: IntakeStore
    enquiries: Callable[[], list[dict[str, Any]]]


class FailingLookups:
    """Any intake store whose look-ups (`recall`) fail, as a throttled GetItem does; the rest works."""

    def __init__(self, store: IntakeStore) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def recall(self, keys: list[ReplayKey]) -> tuple[ReplayKey, Replayable] | None:
        raise StorageUnavailable("ProvisionedThroughputExceededException")


@pytest.fixture(params=["in memory", "dynamodb"])
def intake(request: pytest.FixtureRequest) -> Iterator[Intake]:
    if request.param == "in memory":
        fake = InMemoryIntakeStore(clock=START.timestamp)
        yield Intake(fake, lambda: list(fake.enquiries.values()))
        return
    from enquiries.storage.intake_store import DynamoIntakeStore

    dynamodb = request.getfixturevalue("dynamodb")
    yield Intake(
        DynamoIntakeStore(TABLE_NAME, GUARD_TABLE_NAME, clock=START.timestamp), lambda: stored_items(dynamodb)
    )


def service_on(store: IntakeStore, **changes: Any) -> SubmissionService:
    """The service with an address hash and a rate limit of 10 an hour, as deployed by default."""
    settings: dict[str, Any] = {
        "store": store,
        "rules": FieldRules(services=DEFAULT_SERVICES, captcha_required="verifier" in changes),
        "hasher": FixedHasher(),
        "rate_limit_per_hour": 10,
        "count_caught": lambda: None,
        **changes,
    }
    return SubmissionService(**settings)


def submission(fields: dict[str, Any], key: str | None = None, address: str = "203.0.113.24") -> Submission:
    return Submission(fields, key, address, START, str(ULID()))


# --- storing ------------------------------------------------------------------------------------


def test_submission_valid_form_is_stored_with_the_answer_rendered_for_its_id(intake: Intake) -> None:
    # Given a valid form and a fresh id
    service = service_on(intake.store)
    sent = submission(form(_next="https://www.clinic.example/thanks/"))

    # When it is submitted
    answer = service.submit(sent, render)

    # Then it is stored under that id, normalised, with its TTL, and answered with the id
    assert answer == Answer(
        "stored", sent.enquiry_id, render(sent.enquiry_id, "https://www.clinic.example/thanks/")
    )
    [stored] = intake.enquiries()
    assert stored["id"] == sent.enquiry_id
    assert stored["phone"] == "+448009875336"
    assert stored["service"] == "Sports Massage"
    assert stored["created_at"] == "2026-11-21T10:15:30.000Z"
    assert stored["expires_at"] == int((START + timedelta(days=365)).timestamp())


def test_submission_id_in_use_is_refused_never_overwritten(intake: Intake) -> None:
    # Given an enquiry stored under an id
    service = service_on(intake.store)
    first = submission(form())
    service.submit(first, render)

    # When another enquiry comes with the same id (a ULID collision: never in practice)
    second = Submission(
        form(message="Another message entirely."), None, "198.51.100.7", START, first.enquiry_id
    )

    # Then it is refused, and the first enquiry is kept as it was
    with pytest.raises(IdAlreadyUsed):
        service.submit(second, render)
    assert [e["message"] for e in intake.enquiries()] == [form()["message"]]


# --- replays ------------------------------------------------------------------------------------


def test_submission_double_submit_gets_the_first_answer_and_stores_once(intake: Intake) -> None:
    # Given a stored enquiry
    service = service_on(intake.store)
    first = service.submit(submission(form()), render)

    # When the same form comes again from the same address
    again = service.submit(submission(form()), render)

    # Then it gets the first answer, and nothing more is stored
    assert again == Answer("replay:double-submit", first.enquiry_id, first.response)
    assert len(intake.enquiries()) == 1


def test_submission_double_submit_with_a_key_remembers_the_answer_under_the_key(intake: Intake) -> None:
    # Given a stored enquiry, and its double submit carrying an Idempotency-Key
    service = service_on(intake.store)
    first = service.submit(submission(form()), render)
    replayed = service.submit(submission(form(), key="key-of-the-second-tab"), render)

    # When that key comes again from another address (a phone changing networks: past the
    # double-submit check, which keys on the address)
    later = service.submit(submission(form(), key="key-of-the-second-tab", address="198.51.100.7"), render)

    # Then the key answers with the first answer too: it was remembered under the key
    assert replayed.outcome == "replay:double-submit"
    assert later == Answer("replay:idempotency-key", first.enquiry_id, first.response)
    assert len(intake.enquiries()) == 1


def test_submission_invalid_form_with_a_known_key_is_a_reused_key(intake: Intake) -> None:
    # Given an enquiry stored with a key
    service = service_on(intake.store)
    service.submit(submission(form(), key="kept-key"), render)

    # When the key comes again with fields to fix, and another key does
    # Then the key's answer is not given to fields it did not answer; without an earlier answer,
    # the field errors
    with pytest.raises(IdempotencyKeyReused):
        service.submit(submission(form(email="jane@"), key="kept-key"), render)
    with pytest.raises(InvalidEnquiry) as refused:
        service.submit(submission(form(email="jane@"), key="new-key"), render)
    assert set(refused.value.fields) == {"email"}


def test_submission_same_key_with_other_fields_is_refused_and_stores_nothing(intake: Intake) -> None:
    # Given an enquiry stored with a key
    service = service_on(intake.store)
    first = service.submit(submission(form(), key="kept-key"), render)

    # When the key comes with another message, and then again with the first fields, written
    # differently (the same after normalisation)
    with pytest.raises(IdempotencyKeyReused):
        service.submit(submission(form(message="Another question."), key="kept-key"), render)
    again = service.submit(submission(form(name="  " + form()["name"] + " "), key="kept-key"), render)

    # Then the other enquiry is refused, the same one gets its first answer, and one is stored
    assert again == Answer("replay:idempotency-key", first.enquiry_id, first.response)
    assert len(intake.enquiries()) == 1


def test_submission_other_fields_under_a_key_are_refused_before_the_captcha(intake: Intake) -> None:
    # Given a captcha, and an enquiry stored with a key
    tokens = OneTimeTokens()
    service = service_on(intake.store, verifier=tokens)
    service.submit(submission(form(**{"cf-turnstile-response": "pass-1"}), key="kept-key"), render)

    # When the key comes with other fields and a fresh token
    other = form(**{"cf-turnstile-response": "pass-2"}, message="Another question.")

    # Then it is refused without asking the verifier
    with pytest.raises(IdempotencyKeyReused):
        service.submit(submission(other, key="kept-key"), render)
    assert [token for token, _ in tokens.checked] == ["pass-1"]


def test_submission_record_without_a_fingerprint_still_answers_its_key(intake: Intake) -> None:
    # Given a key's answer remembered before fingerprints were kept (a record of an older version)
    service = service_on(intake.store)
    [key] = idempotency_keys("old-key")
    intake.store.remember(key, render("01KAPX4Q7N3Y8Z2M5R6T9V1W0A", None))

    # When the key comes with any fields
    again = service.submit(submission(form(message="Whatever."), key="old-key"), render)

    # Then it gets that answer, as before (the record expires within a day)
    assert again == Answer(
        "replay:idempotency-key", "01KAPX4Q7N3Y8Z2M5R6T9V1W0A", render("01KAPX4Q7N3Y8Z2M5R6T9V1W0A", None)
    )
    assert intake.enquiries() == []


def test_submission_earlier_answer_is_refused_for_a_key_that_answered_fields(intake: Intake) -> None:
    # Given an enquiry stored with a key
    service = service_on(intake.store)
    service.submit(submission(form(), key="kept-key"), render)

    # When a request the API cannot read asks for its key's earlier answer
    # Then the key answered readable fields, which this is not: refused; nothing for another key or none
    with pytest.raises(IdempotencyKeyReused):
        service.earlier_answer("kept-key")
    assert service.earlier_answer("other-key") is None
    assert service.earlier_answer(None) is None


def test_submission_failed_lookup_never_hides_the_requests_own_answer(intake: Intake) -> None:
    # Given a store whose look-ups fail (throttled)
    service = service_on(FailingLookups(intake.store))

    # When a form with fields to fix comes with a key, and a request the API cannot read
    # Then the field errors are the answer, not a 503, and there is no earlier answer
    with pytest.raises(InvalidEnquiry):
        service.submit(submission(form(email="jane@"), key="some-key"), render)
    assert service.earlier_answer("some-key") is None


# --- captcha ------------------------------------------------------------------------------------


def test_submission_repeat_is_replayed_before_the_captcha_check(intake: Intake) -> None:
    # Given Turnstile, and an enquiry stored with a token (used up by its check)
    tokens = OneTimeTokens()
    service = service_on(intake.store, verifier=tokens)
    first = service.submit(submission(form(**{"cf-turnstile-response": "pass"}), key="k"), render)

    # When the same request comes again (its answer was lost), with its spent token
    again = service.submit(submission(form(**{"cf-turnstile-response": "pass"}), key="k"), render)

    # Then it gets the first answer, and the spent token was not checked again
    assert again == Answer("replay:idempotency-key", first.enquiry_id, first.response)
    assert tokens.checked == [("pass", "203.0.113.24")]


def test_submission_captcha_is_checked_when_the_lookup_fails(intake: Intake) -> None:
    # Given Turnstile, and a store whose look-ups fail
    tokens = OneTimeTokens()
    service = service_on(FailingLookups(intake.store), verifier=tokens)

    # When a form with a good token comes, and one with a bad token
    answer = service.submit(submission(form(**{"cf-turnstile-response": "pass"})), render)
    with pytest.raises(CaptchaFailed):
        service.submit(submission(form(**{"cf-turnstile-response": "bad"}), address="198.51.100.7"), render)

    # Then the first was checked and stored (the write finds repeats itself), the second refused
    assert answer.outcome == "stored"
    assert [token for token, _ in tokens.checked] == ["pass", "bad"]
    assert len(intake.enquiries()) == 1


# --- the robot trap -----------------------------------------------------------------------------


def test_submission_trap_hit_is_answered_like_an_enquiry_and_nothing_stored(intake: Intake) -> None:
    # Given a form whose hidden field a robot filled
    caught: list[str] = []
    service = service_on(intake.store, count_caught=lambda: caught.append("spam"))
    sent = submission(form(_gotcha="https://cheap-pills.example"))

    # When it is submitted, and submitted again
    answer = service.submit(sent, render)
    again = service.submit(submission(form(_gotcha="https://cheap-pills.example")), render)

    # Then it got a stored enquiry's answer with its own id, its repeat the same, and nothing is stored
    assert answer == Answer("honeypot", sent.enquiry_id, render(sent.enquiry_id, None))
    assert again == Answer("replay:double-submit", sent.enquiry_id, answer.response)
    assert intake.enquiries() == []
    assert caught == ["spam", "spam"]


# --- limits and failures ------------------------------------------------------------------------


def test_submission_over_the_rate_limit_is_refused_with_retry_after(intake: Intake) -> None:
    # Given a limit of 1 an hour, used by one enquiry
    service = service_on(intake.store, rate_limit_per_hour=1)
    service.submit(submission(form()), render)

    # When another enquiry comes from the same address
    with pytest.raises(RateLimited) as limited:
        service.submit(submission(form(message="A second question.")), render)

    # Then it is refused until a slot frees, and not stored
    assert 0 < limited.value.retry_after <= 70 * 60
    assert len(intake.enquiries()) == 1


def test_submission_unreadable_address_key_is_a_secret_failure_not_a_storage_one(intake: Intake) -> None:
    # Given the address-hashing key cannot be read
    class NoKey:
        def hash(self, address: str) -> str:
            raise SecretUnavailable("secret:CLIENT_ADDRESS_SECRET_ARN:AccessDeniedException")

    service = service_on(intake.store, hasher=NoKey())

    # When a valid form comes
    with pytest.raises(SecretUnavailable) as raised:
        service.submit(submission(form()), render)

    # Then the failure names the secret (a 503 naming it in the log), never storage, and nothing is stored
    assert not isinstance(raised.value, StorageUnavailable)
    assert raised.value.reason == "secret:CLIENT_ADDRESS_SECRET_ARN:AccessDeniedException"
    assert intake.enquiries() == []


def test_submission_without_an_address_key_has_no_double_submit_check_or_limit(intake: Intake) -> None:
    # Given no address hash (a bare store, as the OpenAPI build and some tests use)
    service = service_on(intake.store, hasher=None, rate_limit_per_hour=1)

    # When the same form comes twice
    answers = [service.submit(submission(form()), render) for _ in range(2)]

    # Then both are stored: the double-submit check and the limit key on the address
    assert [a.outcome for a in answers] == ["stored", "stored"]
    assert len(intake.enquiries()) == 2
