"""Duplicates and abuse through the real submission handler against moto: one enquiry per intent.

Idempotency-Key replays, double-submit detection, the per-address rate limit, the honeypot and
Cloudflare Turnstile. Stored items are counted in the table, never assumed.
"""

from __future__ import annotations

import base64
import copy
import http.server
import json
import random
import re
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, cast
from unittest.mock import ANY
from urllib.parse import parse_qsl, quote, urlencode

import boto3
import pytest
from support import (
    GUARD_TABLE_NAME,
    REGION,
    TABLE_NAME,
    Handler,
    MakeHandler,
    body_of,
    load_event,
    stored_items,
    with_json_body,
)
from ulid import ULID

VALID = {
    "name": "Jane Doe",
    "email": "jane.doe@example.com",
    "message": "My lower back hurts after running.",
    "consent": True,
}


def enquiry_event(ip: str = "203.0.113.24", key: str | None = None, **fields: Any) -> dict[str, Any]:
    event = with_json_body("submit-json.json", dict(VALID, **fields))
    event["requestContext"]["http"]["sourceIp"] = ip
    if key is not None:
        event["headers"]["idempotency-key"] = key
    return event


class Clock:
    """A clock the test moves: the rate limit's hour passes without sleeping."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def run_together(handler: Handler, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Handle the events on parallel threads released at the same moment."""
    barrier = threading.Barrier(len(events))
    results: list[dict[str, Any]] = [{}] * len(events)

    def run(index: int) -> None:
        barrier.wait()
        results[index] = handler(events[index])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(events))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


# --- Idempotency-Key ---------------------------------------------------------------------------


def test_idempotency_key_repeat_gets_first_response_and_stores_once(handler: Handler, dynamodb: Any) -> None:
    # Given a request with an Idempotency-Key, sent three times (a phone on a train retrying)
    event = enquiry_event(key="3f0e2f4c-1a77-4b8e-9a59-6f1c2b9e0d4a")

    # When each is handled
    responses = [handler(event) for _ in range(3)]

    # Then all three get the first one's status and body, and one enquiry is stored
    assert {r["statusCode"] for r in responses} == {201}
    assert len({r["body"] for r in responses}) == 1
    assert [item["id"] for item in stored_items(dynamodb)] == [body_of(responses[0])["id"]]


def test_idempotency_key_with_another_body_is_422_reused_and_stores_nothing(
    handler: Handler, dynamodb: Any
) -> None:
    # Given a key already used for one enquiry
    first = handler(enquiry_event(key="same-key"))

    # When the same key comes with different content
    second = handler(enquiry_event(key="same-key", message="A different message"))

    # Then the second is refused with a sentence saying why, never answered with the first's 201,
    # and nothing more is stored
    assert first["statusCode"] == 201
    assert second["statusCode"] == 422
    assert body_of(second)["error"] == "idempotency_key_reused"
    assert "different enquiry" in body_of(second)["message"]
    assert len(stored_items(dynamodb)) == 1


def test_idempotency_key_with_another_form_post_is_an_html_page_saying_so(
    handler: Handler, dynamodb: Any
) -> None:
    # Given a plain form post with a key, stored
    first = load_event("submit-urlencoded.json", headers={"idempotency-key": "form-key"})
    handler(first)

    # When the same key comes with another message from the same plain form
    fields = dict(parse_qsl(base64.b64decode(first["body"]).decode()), message="Another question")
    other = load_event(
        "submit-urlencoded.json",
        headers={"idempotency-key": "form-key"},
        body=base64.b64encode(urlencode(fields).encode()).decode(),
    )
    response = handler(other)

    # Then the visitor gets the 422 as a page that says so
    assert response["statusCode"] == 422
    assert response["headers"]["Content-Type"].startswith("text/html")
    assert "different enquiry" in response["body"]
    assert len(stored_items(dynamodb)) == 1


def test_idempotency_key_concurrent_requests_store_one(handler: Handler, dynamodb: Any) -> None:
    # Given five identical requests with one key arriving at the same moment
    events = [enquiry_event(key="concurrent-key") for _ in range(5)]

    # When they are handled in parallel
    responses = run_together(handler, events)

    # Then every one gets the same 201 and one enquiry is stored
    assert [r["statusCode"] for r in responses] == [201] * 5
    assert len({r["body"] for r in responses}) == 1
    assert len(stored_items(dynamodb)) == 1


def test_idempotency_key_failure_is_not_remembered(handler: Handler, dynamodb: Any) -> None:
    # Given a first attempt that fails validation
    first = handler(enquiry_event(key="fix-and-resend", email="jane@"))

    # When the visitor fixes the email and resends with the same key (the form script keeps it)
    second = handler(enquiry_event(key="fix-and-resend"))

    # Then the corrected enquiry is stored, not the old 422 replayed
    assert first["statusCode"] == 422
    assert second["statusCode"] == 201
    assert len(stored_items(dynamodb)) == 1


def test_idempotency_key_different_keys_are_different_enquiries(handler: Handler, dynamodb: Any) -> None:
    # Given two different keys with different messages
    handler(enquiry_event(key="key-one", message="First question"))
    handler(enquiry_event(key="key-two", message="Second question"))

    # Then both are stored
    assert len(stored_items(dynamodb)) == 2


def test_idempotency_key_html_form_post_replays_the_redirect(handler: Handler, dynamodb: Any) -> None:
    # Given a plain form post with a key, sent twice
    event = load_event("submit-urlencoded.json", headers={"idempotency-key": "form-key"})

    # When both are handled
    first, second = handler(event), handler(event)

    # Then both get the thank-you page for the one stored enquiry
    assert first["statusCode"] == second["statusCode"] == 200
    [item] = stored_items(dynamodb)
    assert item["id"] in second["body"]


def test_idempotency_key_invalid_resend_is_422_reused_not_the_earlier_success(
    handler: Handler, dynamodb: Any
) -> None:
    # Given a key whose enquiry was accepted
    first = handler(enquiry_event(key="kept-key"))

    # When the same key comes with a body that would fail validation
    second = handler(enquiry_event(key="kept-key", email="jane@"))

    # Then it is not told that it was sent
    assert first["statusCode"] == 201
    assert second["statusCode"] == 422
    assert body_of(second)["error"] == "idempotency_key_reused"
    assert len(stored_items(dynamodb)) == 1


def throttled_lookups(make_handler: MakeHandler, **settings: Any) -> Any:
    """The real handler whose replay look-ups (GetItem on the guard table) DynamoDB throttles, each
    one answered by a Stubber; every other call reaches moto."""
    from botocore.stub import Stubber

    from enquiries.aws_clients import dynamodb_client
    from enquiries.storage.intake_store import DynamoIntakeStore

    real = dynamodb_client()
    lookups = boto3.client("dynamodb", region_name=REGION)
    stubber = Stubber(lookups)
    stubber.activate()

    class ThrottledLookups:
        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        def get_item(self, **request: Any) -> Any:
            stubber.add_client_error(
                "get_item", service_error_code="ProvisionedThroughputExceededException", http_status_code=400
            )
            return lookups.get_item(**request)

    store = DynamoIntakeStore(TABLE_NAME, GUARD_TABLE_NAME, client_factory=ThrottledLookups)
    return make_handler(store=store, **settings), stubber


@pytest.mark.parametrize(
    ("event_file", "status"),
    [
        ("submit-invalid-fields.json", 422),
        ("submit-malformed-json.json", 400),
        ("submit-unsupported-type.json", 415),
        ("submit-too-large.json", 413),
    ],
)
def test_idempotency_key_refusal_is_not_hidden_by_a_throttled_lookup(
    make_handler: MakeHandler,
    dynamodb: Any,
    event_file: str,
    status: int,
) -> None:
    # Given a guard table that throttles the replay look-up, and a body the API refuses
    handler, stubber = throttled_lookups(make_handler)
    keyless = load_event(event_file)
    keyed = load_event(event_file, headers={"idempotency-key": "a-fresh-key"})

    # When it is sent with an Idempotency-Key, and without one
    with_key, without_key = handler(keyed), handler(keyless)

    # Then the look-up was tried, and the visitor gets the same refusal as without a key (the
    # field errors, for a 422), not a 503: nothing remembered could have changed that answer
    stubber.assert_no_pending_responses()
    assert with_key["statusCode"] == without_key["statusCode"] == status
    assert with_key["body"] == without_key["body"]
    assert stored_items(dynamodb) == []


# --- double submit without a key -----------------------------------------------------------------


def test_double_submit_gets_first_response_and_stores_once(handler: Handler, dynamodb: Any) -> None:
    # Given the same enquiry sent twice from one address without a key (a double click)
    first = handler(enquiry_event())
    second = handler(enquiry_event())

    # Then the second gets the first one's response and nothing more is stored
    assert first["statusCode"] == second["statusCode"] == 201
    assert first["body"] == second["body"]
    assert len(stored_items(dynamodb)) == 1


def test_double_submit_normalised_fields_count_as_the_same(handler: Handler, dynamodb: Any) -> None:
    # Given the same enquiry typed with different spacing and email case
    handler(enquiry_event(name="Jane Doe", email="jane.doe@example.com"))
    handler(enquiry_event(name="  Jane Doe ", email="jane.doe@EXAMPLE.COM"))

    # Then it is one enquiry
    assert len(stored_items(dynamodb)) == 1


def test_double_submit_concurrent_identical_requests_store_one(handler: Handler, dynamodb: Any) -> None:
    # Given four identical submissions arriving together
    responses = run_together(handler, [enquiry_event() for _ in range(4)])

    # Then one is stored and all get its response
    assert [r["statusCode"] for r in responses] == [201] * 4
    assert len({r["body"] for r in responses}) == 1
    assert len(stored_items(dynamodb)) == 1


def test_double_submit_other_address_or_other_text_is_a_new_enquiry(handler: Handler, dynamodb: Any) -> None:
    # Given the same text from another address, and other text from the same address
    handler(enquiry_event(ip="203.0.113.24"))
    handler(enquiry_event(ip="198.51.100.9"))
    handler(enquiry_event(ip="203.0.113.24", message="A follow-up question"))

    # Then all three are stored
    assert len(stored_items(dynamodb)) == 3


def test_double_submit_window_is_ten_minutes(handler: Handler, dynamodb: Any) -> None:
    # Given an enquiry, whose double-submit record expires ten minutes after it
    import time

    handler(enquiry_event())
    [record] = [
        item
        for item in dynamodb.scan(TableName=GUARD_TABLE_NAME)["Items"]
        if item["id"]["S"].startswith("replay#double-submit#")
    ]
    assert int(record["expiration"]["N"]) == pytest.approx(time.time() + 600, abs=5)

    # When those ten minutes have passed (the record's expiry moved into the past) and it is sent again
    dynamodb.update_item(
        TableName=GUARD_TABLE_NAME,
        Key={"id": record["id"]},
        UpdateExpression="SET expiration = :past",
        ExpressionAttributeValues={":past": {"N": str(int(time.time()) - 1)}},
    )
    again = handler(enquiry_event())

    # Then it is stored as a new enquiry
    assert again["statusCode"] == 201
    assert len(stored_items(dynamodb)) == 2


def test_double_submit_with_a_key_keeps_the_answer_under_the_key(handler: Handler, dynamodb: Any) -> None:
    # Given an enquiry, and its double submit from a second tab that sends an Idempotency-Key
    import time

    first = handler(enquiry_event())
    double = handler(enquiry_event(key="second-tab-key"))

    # When the double-submit record has expired (ten minutes on) and the second tab retries its key
    for item in dynamodb.scan(TableName=GUARD_TABLE_NAME)["Items"]:
        if item["id"]["S"].startswith("replay#double-submit#"):
            dynamodb.update_item(
                TableName=GUARD_TABLE_NAME,
                Key={"id": item["id"]},
                UpdateExpression="SET expiration = :past",
                ExpressionAttributeValues={":past": {"N": str(int(time.time()) - 1)}},
            )
    retried = handler(enquiry_event(key="second-tab-key"))

    # Then the key still answers with the first enquiry: its answer was remembered under the key
    assert first["statusCode"] == double["statusCode"] == retried["statusCode"] == 201
    assert double["body"] == retried["body"] == first["body"]
    assert [item["id"] for item in stored_items(dynamodb)] == [body_of(first)["id"]]


# --- rate limit ------------------------------------------------------------------------------------


def test_rate_limit_over_the_limit_is_429_with_retry_after_at_most_one_bucket_late(
    make_handler: MakeHandler, dynamodb: Any
) -> None:
    """The counts are kept per 10-minute bucket, the oldest bucket of the last hour counted whole:
    a visitor may wait up to one bucket longer than an exact sliding window would make them."""
    # Given a limit of 3 per hour and three enquiries from one address, at 09:00, 09:10 and 09:20
    clock = Clock()
    handler = make_handler(clock=clock, RATE_LIMIT_PER_HOUR="3")
    for n in range(3):
        assert handler(enquiry_event(message=f"Question {n}"))["statusCode"] == 201
        clock.advance(minutes=10)

    # When a fourth comes at 09:30
    response = handler(enquiry_event(message="Question 4"))

    # Then it is a 429 whose Retry-After is 40 minutes: an exact window would free a slot at
    # 10:00, the bucket of 09:00 stops counting at 10:10
    assert response["statusCode"] == 429
    assert response["headers"]["Retry-After"] == str(40 * 60)
    body = body_of(response)
    assert body["error"] == "rate_limited"
    assert "40 minutes" in body["message"]
    assert len(stored_items(dynamodb)) == 3


def test_rate_limit_retry_after_is_exactly_when_a_slot_frees(
    make_handler: MakeHandler, dynamodb: Any
) -> None:
    # Given an address at its limit of 2 (09:00 and 09:05), refused at 09:05
    clock = Clock()
    handler = make_handler(clock=clock, RATE_LIMIT_PER_HOUR="2")
    handler(enquiry_event(message="One"))
    clock.advance(minutes=5)
    handler(enquiry_event(message="Two"))
    refused = handler(enquiry_event(message="Three"))
    retry_after = int(refused["headers"]["Retry-After"])

    # When it sends again one second before Retry-After has passed, and then when it has
    clock.advance(seconds=retry_after - 1)
    early = handler(enquiry_event(message="Three"))
    clock.advance(seconds=1)
    on_time = handler(enquiry_event(message="Three"))

    # Then the early one is refused for one more second, and the one on time is accepted
    assert refused["statusCode"] == early["statusCode"] == 429
    assert retry_after == 65 * 60  # the bucket of 09:00 stops counting at 10:10
    assert early["headers"]["Retry-After"] == "1"
    assert on_time["statusCode"] == 201
    assert len(stored_items(dynamodb)) == 3


def test_rate_limit_holds_across_an_hour_boundary(make_handler: MakeHandler, dynamodb: Any) -> None:
    # Given a limit of 3 reached at 09:59:30
    clock = Clock()
    clock.advance(minutes=59, seconds=30)
    handler = make_handler(clock=clock, RATE_LIMIT_PER_HOUR="3")
    first = [handler(enquiry_event(message=f"Before {n}"))["statusCode"] for n in range(3)]

    # When the same address sends three more a minute later, in the next clock hour
    clock.advance(minutes=1)
    after = [handler(enquiry_event(message=f"After {n}")) for n in range(3)]

    # Then all three are refused, until the first three are more than an hour old
    assert first == [201] * 3
    assert [r["statusCode"] for r in after] == [429] * 3
    assert all(3540 <= int(r["headers"]["Retry-After"]) <= 3540 + 600 for r in after)
    assert len(stored_items(dynamodb)) == 3


def test_rate_limit_no_60_minutes_hold_more_than_the_limit_and_waits_are_at_most_a_bucket_longer(
    make_handler: MakeHandler, dynamodb: Any
) -> None:
    """The bucket design's two promises, over eight hours of requests at random moments: never more
    than the limit in any 60 minutes, and a refusal only while the limit was reached within the
    last 70 minutes, with a Retry-After between the exact wait and the exact wait + 10 minutes."""
    # Given a limit of 3 and one address sending at seeded random intervals for eight hours
    rng = random.Random(20261121)
    clock = Clock()
    handler = make_handler(clock=clock, RATE_LIMIT_PER_HOUR="3")
    start = clock.now
    accepted: list[float] = []
    refusals: list[tuple[float, int]] = []

    # When each request is handled
    n = 0
    while clock.now - start < timedelta(hours=8):
        n += 1
        response = handler(enquiry_event(message=f"Question {n}"))
        at = clock.now.timestamp()
        if response["statusCode"] == 201:
            accepted.append(at)
        else:
            assert response["statusCode"] == 429
            refusals.append((at, int(response["headers"]["Retry-After"])))
        clock.advance(seconds=rng.choice([1, 30, 200, 599, 600, 601, 1200, 1799]))

    # Then no 60 minutes ever held more than 3 accepted enquiries
    assert len(accepted) == len(stored_items(dynamodb))
    for t in accepted:
        assert sum(1 for other in accepted if t - 3600 < other <= t) <= 3
    # and each refusal came while 3 had been accepted within the last 70 minutes, and told the
    # visitor to wait at least until the third most recent was an hour old, and at most 10 minutes more
    assert len(refusals) > 20
    assert len(accepted) > 15
    for at, retry_after in refusals:
        recent = [t for t in accepted if t <= at]
        assert sum(1 for t in recent if at - 4200 < t) >= 3
        exact_wait = max(0.0, recent[-3] + 3600 - at)
        assert exact_wait <= retry_after <= exact_wait + 600


@pytest.mark.parametrize(
    ("limit", "used"),
    [pytest.param("3", 2, id="last-slot-of-a-record"), pytest.param("1", 0, id="first-slot-no-record")],
)
def test_rate_limit_two_racing_for_the_last_slot_one_201_one_429(
    make_handler: MakeHandler, dynamodb: Any, limit: str, used: int
) -> None:
    # Given an address with one slot left in the hour
    clock = Clock()
    handler = make_handler(clock=clock, RATE_LIMIT_PER_HOUR=limit)
    for n in range(used):
        assert handler(enquiry_event(message=f"Earlier {n}"))["statusCode"] == 201
    clock.advance(minutes=1)

    # When two different enquiries from it arrive at the same moment
    responses = run_together(handler, [enquiry_event(message="Racer A"), enquiry_event(message="Racer B")])

    # Then one is accepted and the other refused, and the limit holds
    assert sorted(r["statusCode"] for r in responses) == [201, 429]
    assert len(stored_items(dynamodb)) == int(limit)


def test_rate_limit_is_per_address(make_handler: MakeHandler, dynamodb: Any) -> None:
    # Given one address at its limit of 1
    handler = make_handler(clock=Clock(), RATE_LIMIT_PER_HOUR="1")
    handler(enquiry_event(ip="203.0.113.24", message="One"))

    # When another address sends
    response = handler(enquiry_event(ip="198.51.100.9", message="Two"))

    # Then it is accepted
    assert response["statusCode"] == 201


def test_rate_limit_ignores_forwarded_headers(make_handler: MakeHandler, dynamodb: Any) -> None:
    # Given an address at its limit that claims another address in X-Forwarded-For
    handler = make_handler(clock=Clock(), RATE_LIMIT_PER_HOUR="1")
    handler(enquiry_event(message="One"))
    event = enquiry_event(message="Two")
    event["headers"]["x-forwarded-for"] = "192.0.2.1"

    # When it sends again
    response = handler(event)

    # Then the socket address counts, not the header
    assert response["statusCode"] == 429


def test_rate_limit_duplicates_and_honeypot_do_not_count(make_handler: MakeHandler, dynamodb: Any) -> None:
    # Given a limit of 2, one enquiry, its double click, and five robot-trap hits from that address
    handler = make_handler(clock=Clock(), RATE_LIMIT_PER_HOUR="2")
    handler(enquiry_event(message="One"))
    handler(enquiry_event(message="One"))
    handler(enquiry_event(ip="198.51.100.7", message="One"))  # the address of submit-honeypot.json
    handler(load_event("submit-honeypot.json"))
    for n in range(4):
        handler(enquiry_event(message=f"Spam {n}", _gotcha="https://pills.example"))

    # When a second genuine enquiry comes
    response = handler(enquiry_event(message="Two"))

    # Then it is accepted: only accepted enquiries count
    assert response["statusCode"] == 201
    assert len(stored_items(dynamodb)) == 3


def test_rate_limit_trap_hits_are_refused_as_accepted_enquiries_would_be(
    make_handler: MakeHandler, dynamodb: Any
) -> None:
    # Given a limit of 2, one address that sends three real enquiries, another that sends three
    # trapped ones, at the same moments
    clock = Clock()
    handler = make_handler(clock=clock, RATE_LIMIT_PER_HOUR="2")
    real, caught = [], []
    for n in range(3):
        real.append(handler(enquiry_event(ip="203.0.113.24", message=f"Question {n}")))
        caught.append(handler(filled_trap(enquiry_event(ip="192.0.2.66", message=f"Question {n}"))))
        clock.advance(minutes=3)

    # When the trapped address then sends a real enquiry
    genuine = handler(enquiry_event(ip="192.0.2.66", message="A real question"))

    # Then the robot saw what a real sender sees, a third one refused with the same Retry-After,
    # and its trap hits used none of the address's allowance
    assert [r["statusCode"] for r in caught] == [r["statusCode"] for r in real] == [201, 201, 429]
    assert without_id(caught[2], None) == without_id(real[2], None)
    assert genuine["statusCode"] == 201
    assert len(stored_items(dynamodb)) == 3


def test_rate_limit_zero_turns_it_off(make_handler: MakeHandler, dynamodb: Any) -> None:
    # Given RATE_LIMIT_PER_HOUR=0
    handler = make_handler(clock=Clock(), RATE_LIMIT_PER_HOUR="0")

    # When one address sends 15 different enquiries
    statuses = [handler(enquiry_event(message=f"Question {n}"))["statusCode"] for n in range(15)]

    # Then all are accepted
    assert statuses == [201] * 15


def test_rate_limit_stores_only_a_keyed_hash_of_the_address(make_handler: MakeHandler, dynamodb: Any) -> None:
    # Given an enquiry from a distinctive address
    handler = make_handler(clock=Clock(), RATE_LIMIT_PER_HOUR="5")
    handler(enquiry_event(ip="198.51.100.77"))

    # When every stored record is read
    guard_items = dynamodb.scan(TableName=GUARD_TABLE_NAME)["Items"]
    everything = json.dumps(guard_items) + json.dumps(stored_items(dynamodb), default=str)

    # Then the address is nowhere in the clear, and every guard record expires by TTL
    assert guard_items
    assert "198.51.100.77" not in everything
    assert all("expiration" in item for item in guard_items)


def test_rate_limit_slot_is_not_used_when_storage_fails(
    make_handler: MakeHandler, dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a limit of 1 and a first attempt whose write DynamoDB throttles
    from botocore.exceptions import ClientError

    from enquiries.aws_clients import dynamodb_client
    from enquiries.storage.intake_store import DynamoIntakeStore

    real = dynamodb_client()
    throttled = {"left": 1}

    class ThrottleOnce:
        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        def transact_write_items(self, **request: Any) -> Any:
            if throttled["left"]:
                throttled["left"] -= 1
                error = {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}}
                raise ClientError(error, "TransactWriteItems")
            return real.transact_write_items(**request)

    handler = make_handler(
        store=DynamoIntakeStore(TABLE_NAME, GUARD_TABLE_NAME, client_factory=ThrottleOnce),
        RATE_LIMIT_PER_HOUR="1",
    )

    # When the visitor resends after the 503
    first = handler(enquiry_event())
    second = handler(enquiry_event())

    # Then the resend is accepted: the enquiry, its replay record and its count are written together
    assert first["statusCode"] == 503
    assert second["statusCode"] == 201
    assert len(stored_items(dynamodb)) == 1


# --- honeypot ---------------------------------------------------------------------------------------

TRAP = "https://cheap-pills.example"
THANKS = "https://www.clinic.example/thanks/"


def filled_trap(event: dict[str, Any]) -> dict[str, Any]:
    """The same post with the hidden `_gotcha` field filled, in the event's own body encoding."""
    event = copy.deepcopy(event)
    kind = event["headers"]["content-type"]
    if kind == "application/json":
        event["body"] = json.dumps(dict(json.loads(event["body"]), _gotcha=TRAP))
        return event
    raw = base64.b64decode(event["body"]).decode()
    if kind.startswith("multipart/"):
        empty = 'name="_gotcha"\r\n\r\n\r\n'
        assert empty in raw
        raw = raw.replace(empty, f'name="_gotcha"\r\n\r\n{TRAP}\r\n')
    else:
        assert "&_gotcha=" in raw
        raw = raw.replace("&_gotcha=", "&_gotcha=" + quote(TRAP, safe=""))
    event["body"] = base64.b64encode(raw.encode()).decode()
    return event


def with_next(event: dict[str, Any]) -> dict[str, Any]:
    """A plain form post that names an allowed thank-you page in `_next`."""
    raw = base64.b64decode(event["body"]).decode() + "&_next=" + quote(THANKS, safe="")
    return dict(event, body=base64.b64encode(raw.encode()).decode())


def without_id(response: dict[str, Any], enquiry_id: str | None) -> dict[str, Any]:
    """What a client can observe of a response, with the enquiry id blanked out."""
    observed = json.dumps({k: response.get(k) for k in ("statusCode", "headers", "body", "cookies")})
    return cast(dict[str, Any], json.loads(observed.replace(enquiry_id, "<id>") if enquiry_id else observed))


def enquiry_id_in(response: dict[str, Any]) -> str | None:
    found = re.search(r"\b[0-9A-HJKMNP-TV-Z]{26}\b", response.get("body") or "")
    return found.group(0) if found else None


@pytest.mark.parametrize(
    "post",
    [
        pytest.param(lambda: load_event("submit-json.json"), id="json"),
        pytest.param(lambda: load_event("submit-urlencoded.json"), id="form-thank-you-page"),
        pytest.param(lambda: with_next(load_event("submit-urlencoded.json")), id="form-303-to-next"),
        pytest.param(lambda: load_event("submit-multipart.json"), id="multipart-thank-you-page"),
    ],
)
def test_honeypot_answer_looks_exactly_like_a_real_one(
    handler: Handler, dynamodb: Any, post: Callable[[], dict[str, Any]]
) -> None:
    # Given a real enquiry, and the same post with the robot trap filled from another address
    real_event = post()
    caught_event = filled_trap(post())
    caught_event["requestContext"]["http"]["sourceIp"] = "192.0.2.66"

    # When both are handled
    real = handler(real_event)
    caught = handler(caught_event)

    # Then the trap hit gets the same status, headers and body as the real one, but its own id;
    # the id is a fresh ULID (its time is now, as a stored enquiry's is) and nothing was stored for it
    real_id, caught_id = enquiry_id_in(real), enquiry_id_in(caught)
    assert real["statusCode"] in (201, 200, 303)
    assert without_id(caught, caught_id) == without_id(real, real_id)
    assert [item["id"] for item in stored_items(dynamodb)] == ([real_id] if real_id else [ANY])
    if caught_id:
        assert caught_id != real_id
        assert abs(ULID.from_str(caught_id).timestamp - time.time()) < 5


@pytest.mark.parametrize("event_file", ["submit-json.json", "submit-urlencoded.json"])
def test_honeypot_repeat_with_the_same_key_gets_the_same_answer(
    handler: Handler, dynamodb: Any, event_file: str
) -> None:
    # Given a trapped post with an Idempotency-Key, sent three times (as a real retry would be)
    event = filled_trap(load_event(event_file, headers={"idempotency-key": "bot-key-1"}))

    # When each is handled
    responses = [handler(copy.deepcopy(event)) for _ in range(3)]

    # Then all three get the first answer, id included, as three sends of a real enquiry do
    assert responses[0]["statusCode"] in (200, 201)
    assert enquiry_id_in(responses[0]) is not None
    assert [without_id(r, None) for r in responses[1:]] == [without_id(responses[0], None)] * 2
    assert stored_items(dynamodb) == []


def test_honeypot_double_submit_gets_the_same_id_within_ten_minutes(handler: Handler, dynamodb: Any) -> None:
    # Given the same trapped enquiry sent twice from one address without a key (a double click)
    event = filled_trap(enquiry_event())
    first = handler(copy.deepcopy(event))
    second = handler(copy.deepcopy(event))

    # When other text comes from that address
    other = handler(filled_trap(enquiry_event(message="Another question")))

    # Then the double click got the first id, as a real one would, the other text a new id, and
    # nothing was stored
    assert first["statusCode"] == second["statusCode"] == other["statusCode"] == 201
    assert body_of(second)["id"] == body_of(first)["id"] != body_of(other)["id"]
    assert stored_items(dynamodb) == []


def test_honeypot_with_invalid_fields_gets_the_same_field_errors(handler: Handler, dynamodb: Any) -> None:
    # Given a bot that filled the hidden field and got other fields wrong
    invalid = load_event("submit-invalid-fields.json")

    # When it is handled, beside the same post without the trap
    caught = handler(filled_trap(invalid))
    real = handler(load_event("submit-invalid-fields.json"))

    # Then both get the same 422 listing the same fields: the trap does not show through
    assert caught["statusCode"] == real["statusCode"] == 422
    assert caught["body"] == real["body"]
    assert stored_items(dynamodb) == []


def test_honeypot_repeat_of_a_real_enquiry_gets_its_answer_as_a_double_click_would(
    handler: Handler, dynamodb: Any
) -> None:
    # Given a real enquiry, then the same fields with the trap filled, from the same address
    real = handler(enquiry_event())
    caught = handler(filled_trap(enquiry_event()))

    # Then the trapped one gets the real one's answer, and nothing more is stored
    assert caught["statusCode"] == real["statusCode"] == 201
    assert caught["body"] == real["body"]
    assert [item["id"] for item in stored_items(dynamodb)] == [body_of(real)["id"]]


def test_honeypot_never_answers_a_real_enquiry_with_its_make_believe(handler: Handler, dynamodb: Any) -> None:
    # Given a trapped post, then the same fields without the trap from the same address
    caught = handler(filled_trap(enquiry_event()))
    real = handler(enquiry_event())

    # Then the real enquiry is stored under its own id
    assert real["statusCode"] == 201
    assert body_of(real)["id"] != body_of(caught)["id"]
    assert [item["id"] for item in stored_items(dynamodb)] == [body_of(real)["id"]]


def test_honeypot_keeps_only_replay_and_rate_records_in_the_guard_table(
    handler: Handler, dynamodb: Any
) -> None:
    # Given a trapped post with a distinctive message and a key
    handler(filled_trap(enquiry_event(key="bot-key-2", message="Zanzibar unicorn pills")))

    # When the guard table is read
    guard = dynamodb.scan(TableName=GUARD_TABLE_NAME)["Items"]

    # Then it holds the answer's replay records and a rate count, none of the visitor's text, and
    # every record expires
    assert sorted(item["id"]["S"].split("#")[0] for item in guard) == ["rate", "replay", "replay"]
    assert "Zanzibar" not in json.dumps(guard)
    assert all("expiration" in item for item in guard)
    assert stored_items(dynamodb) == []


def test_honeypot_counts_spam_blocked_metric(
    handler: Handler, dynamodb: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a bot's submission
    response = handler(load_event("submit-honeypot.json"))

    # Then it looks accepted, nothing is stored, and SpamBlocked is counted (no personal data in it)
    assert response["statusCode"] == 201
    assert stored_items(dynamodb) == []
    metrics = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"SpamBlocked"' in line]
    assert [m["SpamBlocked"] for m in metrics] in ([1.0], [[1.0]])
    assert "198.51.100.7" not in json.dumps(metrics)


def test_honeypot_metric_carries_the_stack_own_service(
    handler: Handler, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a function whose environment names its stack as the service (as template.yaml does)
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "clinic-b")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "EnquiriesB")

    # When a bot's submission is caught
    handler(load_event("submit-honeypot.json"))

    # Then SpamBlocked is counted for that stack, in the namespace the environment names
    [metric] = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"SpamBlocked"' in line]
    assert metric["service"] == "clinic-b"
    assert metric["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "EnquiriesB"


# --- Turnstile ------------------------------------------------------------------------------------


class StubVerifier(http.server.BaseHTTPRequestHandler):
    """Cloudflare's siteverify, on loopback: the token "pass" passes, anything else fails."""

    received: ClassVar[list[dict[str, list[str]]]] = []

    def do_POST(self) -> None:
        from urllib.parse import parse_qs

        form = parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
        StubVerifier.received.append(form)
        if form.get("secret") != ["turnstile-test-secret"]:
            answer = {"success": False, "error-codes": ["invalid-input-secret"]}
        else:
            ok = form.get("response") == ["pass"]
            answer = {"success": ok, "error-codes": [] if ok else ["invalid-input-response"]}
        body = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def verifier_url() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), StubVerifier)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    StubVerifier.received = []
    yield f"http://127.0.0.1:{server.server_address[1]}/turnstile/v0/siteverify"
    server.shutdown()
    server.server_close()


@pytest.fixture
def turnstile_handler(make_handler: MakeHandler, verifier_url: str) -> Handler:
    return make_handler(TURNSTILE_SECRET="turnstile-test-secret", TURNSTILE_VERIFY_URL=verifier_url)


def test_turnstile_valid_token_is_accepted_and_verified_with_address(
    turnstile_handler: Handler, dynamodb: Any
) -> None:
    # Given a submission with a token Cloudflare accepts
    response = turnstile_handler(enquiry_event(**{"cf-turnstile-response": "pass"}))

    # Then it is stored, the token is not, and the verifier was asked with the secret and address
    assert response["statusCode"] == 201
    [item] = stored_items(dynamodb)
    assert "cf-turnstile-response" not in item
    assert StubVerifier.received[-1]["remoteip"] == ["203.0.113.24"]


def test_turnstile_repeat_gets_its_first_answer_before_the_token_is_checked_again(
    turnstile_handler: Handler, dynamodb: Any
) -> None:
    # Given an enquiry stored with a key and a token, which Cloudflare accepts only once
    event = enquiry_event(key="lost-answer-key", **{"cf-turnstile-response": "pass"})
    first = turnstile_handler(event)

    # When the same request is sent again, its answer having been lost on the way back
    again = turnstile_handler(event)

    # Then it gets the first answer, Cloudflare was asked once (a spent token would fail), and one
    # enquiry is stored
    assert first["statusCode"] == again["statusCode"] == 201
    assert again["body"] == first["body"]
    assert len(StubVerifier.received) == 1
    assert len(stored_items(dynamodb)) == 1


def test_turnstile_failed_token_is_422_on_captcha(turnstile_handler: Handler, dynamodb: Any) -> None:
    # Given a token Cloudflare rejects
    response = turnstile_handler(enquiry_event(**{"cf-turnstile-response": "forged"}))

    # Then it is a 422 on the captcha field, and nothing is stored
    assert response["statusCode"] == 422
    assert set(body_of(response)["fields"]) == {"captcha"}
    assert stored_items(dynamodb) == []


def test_turnstile_missing_token_is_422_on_captcha_with_other_fields(turnstile_handler: Handler) -> None:
    # Given no token and a bad email
    response = turnstile_handler(enquiry_event(email="jane@"))

    # Then both are reported at once, and the verifier is not asked (tokens are single-use)
    assert response["statusCode"] == 422
    assert set(body_of(response)["fields"]) == {"captcha", "email"}
    assert StubVerifier.received == []


def test_turnstile_verifier_down_is_503_not_acceptance(make_handler: MakeHandler, dynamodb: Any) -> None:
    # Given a verifier URL where nothing answers
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[1]
    handler = make_handler(TURNSTILE_SECRET="s", TURNSTILE_VERIFY_URL=f"http://127.0.0.1:{dead}/siteverify")

    # When a submission with a token comes
    response = handler(enquiry_event(**{"cf-turnstile-response": "pass"}))

    # Then it is a 503 with Retry-After, and nothing is stored
    assert response["statusCode"] == 503
    assert "Retry-After" in response["headers"]
    assert stored_items(dynamodb) == []


def test_turnstile_field_is_unknown_without_secret(handler: Handler, dynamodb: Any) -> None:
    # Given no TURNSTILE_SECRET
    response = handler(enquiry_event(**{"cf-turnstile-response": "pass"}))

    # Then the field is named as unknown
    assert response["statusCode"] == 422
    assert set(body_of(response)["fields"]) == {"cf-turnstile-response"}


def test_turnstile_throttled_lookup_still_checks_the_token_and_stores(
    make_handler: MakeHandler, verifier_url: str, dynamodb: Any
) -> None:
    # Given Turnstile, and a guard table that throttles the look-up made before the token is used
    handler, stubber = throttled_lookups(
        make_handler, TURNSTILE_SECRET="turnstile-test-secret", TURNSTILE_VERIFY_URL=verifier_url
    )

    # When a visitor with a good token submits
    response = handler(enquiry_event(**{"cf-turnstile-response": "pass"}))

    # Then the token is checked and the enquiry stored (the transaction finds repeats itself),
    # rather than a 503 for a look-up that found nothing to replay
    stubber.assert_no_pending_responses()
    assert response["statusCode"] == 201
    assert len(StubVerifier.received) == 1
    assert [item["id"] for item in stored_items(dynamodb)] == [body_of(response)["id"]]


def test_turnstile_wrong_secret_is_503_not_the_visitors_fault(
    make_handler: MakeHandler, verifier_url: str, dynamodb: Any
) -> None:
    # Given a deployment whose TURNSTILE_SECRET Cloudflare does not recognise
    handler = make_handler(TURNSTILE_SECRET="a-stale-secret", TURNSTILE_VERIFY_URL=verifier_url)

    # When a visitor with a good token submits
    response = handler(enquiry_event(**{"cf-turnstile-response": "pass"}))

    # Then they are told to try again later (and the operator sees why in the log), not that
    # they failed the robot check
    assert response["statusCode"] == 503
    assert body_of(response)["error"] == "unavailable"
    assert stored_items(dynamodb) == []
