"""The operator's command against the local server (`make dev`), as a separate process, as the clinic runs it:
`enquiries --local URL ...`. The server names its emulator at GET /_dev/aws and runs the notifier for
Lambda's Invoke under /_dev/lambda."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from devserver.launcher import LocalServerProcess, local_server

# End to end: the command in its own process against a local server (`-m "not slow"` leaves them out).
pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
SENDER = "enquiries@example.com"  # the local server's default SENDER_EMAIL address


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServerProcess]:
    with local_server() as running:
        yield running


def get_json(server: LocalServerProcess, path: str) -> Any:
    with urllib.request.urlopen(server.url + path, timeout=10) as response:
        return json.loads(response.read())


def post_enquiry(server: LocalServerProcess, **fields: Any) -> str:
    body = {"name": "Jane Doe", "email": "jane.doe@example.com", "consent": True, **fields}
    body.setdefault("message", f"My knee hurts ({uuid.uuid4()}).")
    request = urllib.request.Request(
        server.url + "/enquiries",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Idempotency-Key": str(uuid.uuid4())},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return str(json.loads(response.read())["id"])


def emails_about(server: LocalServerProcess, enquiry_id: str) -> int:
    return sum(enquiry_id in email["text"] for email in get_json(server, "/_dev/emails"))


def wait_until(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def enquiries(server: LocalServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    """`enquiries --local URL ...` in its own process, with no terminal (standard input is /dev/null)."""
    # The tests' own PYTHONPATH kept too: the command's AWS calls are checked as in-process ones are.
    paths = [str(REPO / "functions"), str(REPO), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, paths))}
    return subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "enquiries_cli", "--local", server.url, *args],
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
        check=False,
    )


def emulator_client(server: LocalServerProcess, service: str) -> Any:
    described = get_json(server, "/_dev/aws")
    return boto3.client(
        service,
        endpoint_url=described["endpoint_url"],
        region_name=described["region"],
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(account_id_endpoint_mode="disabled"),
    )


# -- what the local server offers the command ------------------------------------------------------


def test_local_server_names_its_emulator_and_resources(server: LocalServerProcess) -> None:
    # Given the running local server
    # When the command asks where things are
    described = get_json(server, "/_dev/aws")
    # Then it names the emulator, the region, both tables, the queue and the notifier
    assert described["endpoint_url"].startswith("http://127.0.0.1:")
    assert described["region"] == "eu-west-2"
    assert described["table_name"] == "enquiries"
    assert described["guard_table_name"] == "enquiries-guard"
    assert described["dead_letter_queue_url"].endswith("/NotificationDeadLetterQueue")
    assert described["notify_function_name"] == "NotifyEnquiryFunction"
    assert described["lambda_endpoint_url"] == server.url + "/_dev/lambda"


def test_local_server_runs_the_notifier_for_lambdas_invoke(server: LocalServerProcess) -> None:
    # Given a stored enquiry, emailed once from the stream, and a Lambda client for the local server
    enquiry_id = post_enquiry(server)
    wait_until(lambda: emails_about(server, enquiry_id) == 1)
    described = get_json(server, "/_dev/aws")
    lambda_client = boto3.client(
        "lambda",
        endpoint_url=described["lambda_endpoint_url"],
        region_name="eu-west-2",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    event = {
        "Records": [
            {
                "eventName": "INSERT",
                "eventSource": "aws:dynamodb",
                "dynamodb": {"Keys": {"id": {"S": enquiry_id}}, "SequenceNumber": "0"},
            }
        ]
    }
    # When the notifier is invoked for it, and a function that does not exist is invoked
    answer = lambda_client.invoke(FunctionName="NotifyEnquiryFunction", Payload=json.dumps(event).encode())
    with pytest.raises(lambda_client.exceptions.ResourceNotFoundException):
        lambda_client.invoke(FunctionName="NoSuchFunction", Payload=b"{}")
    # Then the notifier ran, found the enquiry already notified, and sent nothing more
    assert answer["StatusCode"] == 200
    assert "FunctionError" not in answer
    assert json.loads(answer["Payload"].read()) == {"batchItemFailures": []}
    assert emails_about(server, enquiry_id) == 1


# -- every subcommand ----------------------------------------------------------------------------------


def test_local_list_show_export_stats_and_subject_access(server: LocalServerProcess) -> None:
    # Given two enquiries from one person (one name a spreadsheet formula, one in Greek and Japanese)
    address = f"patient-{uuid.uuid4().hex[:8]}@example.com"
    formula = post_enquiry(server, name='=HYPERLINK("https://evil.example","Results")', email=address)
    greek = post_enquiry(server, name="Ζωή 山田", email=address.upper(), message="Πονάει 腰")
    wait_until(lambda: emails_about(server, formula) == 1 and emails_about(server, greek) == 1)
    # When each read-only subcommand runs against the local server
    listed = enquiries(server, "list")
    shown = enquiries(server, "show", greek)
    exported = enquiries(server, "export")
    exported_json = enquiries(server, "export", "--format", "json")
    counted = enquiries(server, "stats", "--by", "service")
    access = enquiries(server, "subject-access", "--email", address)
    # Then each succeeds and shows the enquiries as stored
    for result in (listed, shown, exported, exported_json, counted, access):
        assert result.returncode == 0, result.stderr
        assert result.stderr == ""
    assert [line.split()[0] for line in listed.stdout.splitlines()[:2]] == [greek, formula]
    assert json.loads(shown.stdout)["name"] == "Ζωή 山田"
    rows = {row["id"]: row for row in csv.DictReader(io.StringIO(exported.stdout, newline=""))}
    assert rows[formula]["name"] == '\'=HYPERLINK("https://evil.example","Results")'
    assert rows[greek]["message"] == "Πονάει 腰"
    assert {record["id"] for record in json.loads(exported_json.stdout)} >= {formula, greek}
    assert counted.stdout.splitlines()[0].split() == ["service", "enquiries"]
    document = json.loads(access.stdout)
    assert [enquiry["id"] for enquiry in document["enquiries"]] == [formula, greek]
    assert {record["enquiry_id"] for record in document["request_records"]} == {formula, greek}


def test_local_erase_refuses_without_a_terminal_then_erases_only_that_address(
    server: LocalServerProcess,
) -> None:
    # Given enquiries from two people
    address = f"erase-{uuid.uuid4().hex[:8]}@example.com"
    theirs = post_enquiry(server, email=address)
    others = post_enquiry(server, email=f"other-{uuid.uuid4().hex[:8]}@example.com")
    # When the first address is erased with no terminal, then with --yes (in another letter case)
    refused = enquiries(server, "erase", "--email", address)
    erased = enquiries(server, "erase", "--email", address.upper(), "--yes")
    # Then the first run refused (2) and deleted nothing; the second deleted theirs and only theirs
    assert refused.returncode == 2
    assert "--yes" in refused.stderr
    assert erased.returncode == 0, erased.stderr
    assert erased.stdout == f"erase: deleted 1 enquiry ({theirs}) and 2 linked request records\n"
    assert address.split("@")[0] not in erased.stdout
    stored = {item["id"] for item in get_json(server, "/_dev/enquiries")}
    assert theirs not in stored
    assert others in stored


def test_local_resend_after_failed_emails_sends_once_even_when_run_twice_at_once() -> None:
    # Given a local server whose SES refuses the sender, so an enquiry's email fails until the
    # notifier gives up on it and its batch lands in the dead-letter queue
    with local_server() as server:
        ses = emulator_client(server, "ses")
        ses.delete_identity(Identity=SENDER)
        enquiry_id = post_enquiry(server)
        wait_until(lambda: get_json(server, "/_dev/dead-letters"), timeout=60)
        assert emails_about(server, enquiry_id) == 0
        # When the sender is fixed and two resends of it start at the same moment
        ses.verify_email_identity(EmailAddress=SENDER)
        with ThreadPoolExecutor(max_workers=2) as pool:
            runs = list(pool.map(lambda _: enquiries(server, "resend", enquiry_id), range(2)))
        # Then both runs succeeded, and the clinic got one email per run that says it sent one: one
        # when the runs overlapped (the other saw it sent), two when one ran after the other had
        # finished (each run emails once: the contract's "once per run")
        assert [run.returncode for run in runs] == [0, 0], [run.stdout + run.stderr for run in runs]
        outcomes = sorted(run.stdout.splitlines()[0].split("  ")[1].split(" (")[0] for run in runs)
        assert set(outcomes) <= {"sent", "sent by another resend running at the same time"}
        assert outcomes.count("sent") >= 1
        assert emails_about(server, enquiry_id) == outcomes.count("sent")
        # And the dead letter, now about an emailed enquiry, is offered for removal in a terminal
        assert any("1 about enquiries now all emailed or deleted" in run.stdout for run in runs)
        # And a later resend of it emails the clinic again (the email was lost), once
        again = enquiries(server, "resend", enquiry_id)
        assert again.returncode == 0
        assert f"{enquiry_id}  sent (" in again.stdout
        assert emails_about(server, enquiry_id) == outcomes.count("sent") + 1
        assert "To remove the 1 message no longer needed, run resend in a terminal." in again.stdout


def test_local_resend_prints_the_notifiers_reason_for_an_email_it_could_not_send() -> None:
    # Given a local server whose SES refuses the sender, and an enquiry whose email failed
    with local_server() as server:
        emulator_client(server, "ses").delete_identity(Identity=SENDER)
        enquiry_id = post_enquiry(server)
        wait_until(lambda: enquiry_id in enquiries(server, "list", "--unnotified").stdout)
        # When the operator resends it
        result = enquiries(server, "resend", enquiry_id.lower())
        # Then the line for it carries the notifier's reason, as the local notifier answered the
        # Invoke, and the advice is about fixing it, in a grammatical sentence
        assert result.returncode == 1
        outcome = next(line for line in result.stdout.splitlines() if line.startswith(enquiry_id))
        assert outcome.startswith(f"{enquiry_id}  not sent (MessageRejected: SES refused the email"), outcome
        assert "1 enquiry still has no email: the reason is on its line above" in result.stdout
        assert emails_about(server, enquiry_id) == 0
