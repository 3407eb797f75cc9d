"""The canary's enquiry on its way: recognised by the submission path only with a valid proof, emailed
by the notifier to SES's mailbox simulator only (never to staff, never acknowledged), never listed,
exported, counted or handed out by the operator's command, and `enquiries canary` end to end
against the local server."""

from __future__ import annotations

import json
import time
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from click.testing import CliRunner
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends
from support import REGION, SECRET_VALUE, TABLE_NAME, FakeContext, MakeHandler, MakeNotifier
from support import with_json_body as json_event
from test_operator_cli import JANE, Clinic, clinic, lines  # noqa: F401 - `clinic`: a fixture

from devserver.launcher import LocalServerProcess, local_server
from enquiries import canary
from enquiries.aws import plain_item
from enquiries_cli import functions_adapter
from enquiries_cli.cli import cli

CLINIC = "reception@clinic.example"
SENDER = "enquiries@clinic.example"
KEY = canary.derive_key(SECRET_VALUE)


def _body(email: str = canary.SIMULATOR_ADDRESS) -> dict[str, Any]:
    return {"name": "Enquiries canary", "email": email, "message": "A test.", "consent": True}


def _submit(make_handler: MakeHandler, proof: str | None, idempotency_key: str) -> str:
    headers = {"idempotency-key": idempotency_key}
    if proof is not None:
        headers[canary.HEADER] = proof
    response = make_handler()(json_event("submit-json.json", _body(), headers=headers))
    assert response["statusCode"] == 201, response
    return str(json.loads(response["body"])["id"])


def _stored(dynamodb: Any, enquiry_id: str) -> dict[str, Any]:
    return plain_item(dynamodb.get_item(TableName=TABLE_NAME, Key={"id": {"S": enquiry_id}})["Item"])


def test_canary_submission_with_a_valid_proof_is_stored_as_the_canary(
    dynamodb: Any, make_handler: MakeHandler
) -> None:
    # Given a request with the proof the stack's canary makes for it
    key = f"canary-{uuid.uuid4()}"
    proof = canary.make_proof(KEY, idempotency_key=key, now=time.time())
    # When it is submitted
    enquiry_id = _submit(make_handler, proof, key)
    # Then the enquiry is stored with the canary's mark
    assert _stored(dynamodb, enquiry_id)[canary.ATTRIBUTE] is True


@pytest.mark.parametrize(
    "proof",
    [
        canary.make_proof(canary.derive_key("a guessed secret"), idempotency_key="k", now=time.time()),
        "v1.1.forged",
        None,
    ],
    ids=["another key", "garbage", "no proof"],
)
def test_canary_forged_proof_is_an_ordinary_enquiry(
    dynamodb: Any, make_handler: MakeHandler, proof: str | None
) -> None:
    # Given a visitor's request with a forged proof, or none
    # When it is submitted
    enquiry_id = _submit(make_handler, proof, "k")
    # Then it is stored as any enquiry, without the canary's mark
    assert canary.ATTRIBUTE not in _stored(dynamodb, enquiry_id)


# -- the notifier ---------------------------------------------------------------------------------------


@pytest.fixture
def notifier_env(dynamodb: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLINIC_EMAIL", CLINIC)
    monkeypatch.setenv("SENDER_EMAIL", SENDER)
    monkeypatch.setenv("ACKNOWLEDGE_ENQUIRER", "true")
    monkeypatch.setenv("CLINIC_NAME", "Example Clinic")
    boto3.client("ses", region_name=REGION).verify_email_identity(EmailAddress=SENDER)


def _sent() -> list[Any]:
    return list(ses_backends[DEFAULT_ACCOUNT_ID][REGION].sent_messages)


@pytest.mark.parametrize(("is_canary", "to"), [(True, [canary.SIMULATOR_ADDRESS]), (False, [CLINIC])])
def test_canary_notifier_emails_the_canary_to_the_simulator_only_and_never_acknowledges_it(
    dynamodb: Any,
    make_handler: MakeHandler,
    make_notifier: MakeNotifier,
    notifier_env: None,
    capsys: pytest.CaptureFixture[str],
    is_canary: bool,
    to: list[str],
) -> None:
    # Given a stored enquiry, the canary's or (for comparison) an ordinary one from the same address,
    # and a notifier that acknowledges enquirers
    key = f"canary-{uuid.uuid4()}"
    proof = canary.make_proof(KEY, idempotency_key=key, now=time.time()) if is_canary else None
    enquiry_id = _submit(make_handler, proof, key)
    notifier = make_notifier()
    capsys.readouterr()
    # When the notifier handles its stream record
    event = functions_adapter.notifier_event([enquiry_id], region=REGION, source="test")
    context = FakeContext(function_name="NotifyEnquiryFunction", remaining_millis=120_000)
    result = notifier.lambda_handler(event, context)
    # Then one email goes to `to` (the canary's to the simulator, never to staff), the enquiry is
    # marked notified, and only an ordinary enquiry is acknowledged and counted as emailed
    assert result == {"batchItemFailures": []}
    sent = _sent()
    # (moto records each address both from Destination and from the raw message's To)
    assert set(sent[0].destinations) == set(to)
    assert _stored(dynamodb, enquiry_id)["notified_at"]
    acknowledgements = [set(message.destinations) for message in sent[1:]]
    assert acknowledgements == ([] if is_canary else [{canary.SIMULATOR_ADDRESS}])
    assert ("EnquiryNotified" in capsys.readouterr().out) is not is_canary


# -- the operator's command -------------------------------------------------------------------------------


def test_canary_never_listed_exported_counted_or_handed_out(clinic: Clinic) -> None:  # noqa: F811
    # Given an ordinary enquiry and a canary's, stored from the same address, neither emailed
    ordinary = clinic.store(email=JANE)
    the_canary = clinic.store(email=JANE, **{canary.ATTRIBUTE: True})
    # When the subcommands that read enquiries run
    listed = clinic.run("list")
    exported = clinic.run("export", "--format", "json")
    counted = clinic.run("stats")
    handed_out = clinic.run("subject-access", "--email", JANE)
    waiting = clinic.run("list", "--unnotified")
    # Then the ordinary enquiry is in each, and the canary's in none
    for result in (listed, exported, handed_out, waiting):
        assert result.exit_code == 0, result.output
        assert ordinary in result.stdout
        assert the_canary not in result.stdout
    assert lines(counted.stdout)[-1].split() == ["total", "1"]


# -- end to end, against the local server --------------------------------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServerProcess]:
    with local_server() as running:
        yield running


def _get(server: LocalServerProcess, path: str) -> Any:
    with urllib.request.urlopen(server.url + path, timeout=10) as response:
        return json.loads(response.read())


def test_canary_command_runs_the_whole_path_and_leaves_nothing_behind(server: LocalServerProcess) -> None:
    # Given the local server, and the emails it has sent so far
    before = len(_get(server, "/_dev/emails"))
    # When the canary runs against it
    result = CliRunner().invoke(cli, ["--local", server.url, "canary"])
    # Then each step is ok with its time, and it took well under the 60 s allowed
    assert result.exit_code == 0, result.output
    steps = lines(result.stdout)
    assert [line[6:28].strip() for line in steps] == [
        "sent through the API",
        "stored as the canary",
        "emailed and marked",
        "deleted",
    ]
    assert all(line.startswith("ok    ") for line in steps)
    assert float(steps[-1].split()[-2]) < 60
    # And its one email went to the simulator, never to staff, and no enquiry is left
    emails = _get(server, "/_dev/emails")[before:]
    assert [email["to"] for email in emails] == [[canary.SIMULATOR_ADDRESS]]
    assert "Enquiries canary" not in json.dumps(_get(server, "/_dev/enquiries"))


def test_canary_twice_in_the_same_second_is_two_canaries(server: LocalServerProcess) -> None:
    # Given two canaries sent at the same moment from the same address (whose same fields would make
    # the second a double submit of the first, answered with the first's, by then deleted, enquiry)
    from enquiries_cli import canary as canaries
    from enquiries_cli.target import local_target

    target = local_target(server.url)
    moment = time.time()
    # When both run
    runs = [canaries.run(target, wall_clock=lambda: moment) for _ in range(2)]
    # Then both get through every step
    assert [[step.ok for step in steps] for steps in runs] == [[True] * 4, [True] * 4]


def test_canary_forged_proof_through_the_local_server_reaches_the_clinic(server: LocalServerProcess) -> None:
    # Given a visitor who copies the canary's header with a made-up proof
    request = urllib.request.Request(
        server.url + "/enquiries",
        data=json.dumps(_body("visitor@example.com")).encode(),
        method="POST",
        headers={
            "Content-Type": "application/json",
            "Origin": server.url,
            "Idempotency-Key": str(uuid.uuid4()),
            canary.HEADER: canary.make_proof(b"not the key", idempotency_key="x", now=time.time()),
        },
    )
    # When it is posted
    with urllib.request.urlopen(request, timeout=10) as response:
        enquiry_id = json.loads(response.read())["id"]
    # Then it is an ordinary enquiry: stored, and emailed to the clinic
    deadline = time.monotonic() + 15
    while not any(enquiry_id in email["text"] for email in _get(server, "/_dev/emails")):
        assert time.monotonic() < deadline, "the clinic's email never came"
        time.sleep(0.2)
    email = next(email for email in _get(server, "/_dev/emails") if enquiry_id in email["text"])
    assert email["to"] == ["clinic@example.com"]  # the local server's CLINIC_EMAIL
