"""What the operator's command stands on: its packaging, its permissions and outputs in the template,
and its one link to the functions' code."""

from __future__ import annotations

import ast
import importlib
import json
import tomllib
from pathlib import Path
from typing import Any

import boto3
import pytest
from support import GUARD_TABLE_NAME, REGION, TABLE_NAME, FakeContext, MakeNotifier, with_json_body

from emulator.template_tables import load_template
from enquiries.intake import ReplayKey
from enquiries_cli import functions_adapter, target

REPO = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


# -- packaging -----------------------------------------------------------------------------------------


def test_pyproject_ships_every_package_of_the_command_and_the_functions() -> None:
    # Given the package directories of the command and of the functions it reuses
    roots = {REPO / "functions": "enquiries", REPO: "enquiries_cli"}
    on_disk = {
        ".".join(init.parent.relative_to(root).parts)
        for root, package in roots.items()
        for init in (root / package).rglob("__init__.py")
    }
    # When pyproject.toml says what `pip install .` installs, and from where
    setuptools = PYPROJECT["tool"]["setuptools"]
    # Then it lists every one of them, the functions' package from the Lambda code root
    assert set(setuptools["packages"]) == on_disk
    assert setuptools["package-dir"] == {"enquiries": "functions/enquiries", "enquiries_cli": "enquiries_cli"}


def test_console_script_enquiries_runs_the_command() -> None:
    # Given the console script pyproject.toml declares
    module_name, _, function_name = PYPROJECT["project"]["scripts"]["enquiries"].partition(":")
    # When it is resolved
    function = getattr(importlib.import_module(module_name), function_name)
    # Then it is the command's entry point
    from enquiries_cli.cli import main

    assert function is main


def test_package_dependencies_are_the_pinned_files_and_include_the_command_library() -> None:
    # Given the files pyproject.toml takes the dependencies from
    files = PYPROJECT["tool"]["setuptools"]["dynamic"]["dependencies"]["file"]
    # When they are read as requirements
    requirements = [
        line.strip()
        for name in files
        for line in (REPO / name).read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    # Then every one is pinned, click and boto3 among them, and the tests install the same pins
    assert all("==" in requirement for requirement in requirements)
    assert {requirement.split("==")[0] for requirement in requirements} >= {
        "click",
        "boto3",
        "email-validator",
    }
    assert "-r requirements-server.txt" in (REPO / "requirements.txt").read_text()
    assert "-r requirements-operator.txt" in (REPO / "requirements-server.txt").read_text()


def test_only_the_adapter_imports_the_functions_code() -> None:
    # Given the command's modules
    importers = []
    for module in sorted((REPO / "enquiries_cli").glob("*.py")):
        tree = ast.parse(module.read_text())
        for node in ast.walk(tree):
            names = (
                [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else []
            )
            if any(name == "enquiries" or name.startswith("enquiries.") for name in names):
                importers.append(module.name)
    # When their imports are read
    # Then only functions_adapter.py reaches into functions/
    assert set(importers) == {"functions_adapter.py"}


# -- the template: outputs and the operator's policy -------------------------------------------------


def test_template_outputs_what_the_command_reads_and_the_operator_policy() -> None:
    # Given the template's outputs
    outputs = load_template()["Outputs"]
    # When the command's names for them are looked up
    # Then each exists and names the right resource
    assert outputs[target.TABLE]["Value"] == {"Ref": "EnquiriesTable"}
    assert outputs[target.GUARD_TABLE]["Value"] == {"Ref": "GuardTable"}
    assert outputs[target.NOTIFIER]["Value"] == {"Ref": "NotifyEnquiryFunction"}
    assert outputs[target.DEAD_LETTER_QUEUE]["Value"] == {"Ref": "NotificationDeadLetterQueue"}
    assert outputs[target.ADDRESS_SECRET]["Value"] == {"Ref": "ClientAddressSecret"}
    assert outputs["OperatorPolicyArn"]["Value"] == {"Ref": "OperatorPolicy"}
    assert outputs[target.API_URL]["Value"]["Fn::Sub"].endswith("/enquiries")
    assert outputs[target.ALLOWED_ORIGINS]["Value"] == {"Ref": "AllowedOrigins"}
    assert outputs[target.ALERT_TOPIC]["Value"] == {"Ref": "AlertTopic"}
    assert outputs[target.SENDER_IDENTITY]["Value"] == {"Ref": "SenderIdentity"}
    assert outputs[target.CLINIC_ADDRESSES]["Value"] == {"Ref": "ClinicEmail"}
    assert outputs[target.CANARY]["Value"] == {"Ref": "CanaryFunction"}


THIS_STACK = "arn:${AWS::Partition}:cloudformation:${AWS::Region}:${AWS::AccountId}:stack/${AWS::StackName}/*"
SES_IDENTITY = "arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:identity/${SenderIdentity}"
THIS_STACKS_ALARMS = (
    "arn:${AWS::Partition}:cloudwatch:${AWS::Region}:${AWS::AccountId}:alarm:${AWS::StackName}-*"
)


def _statements() -> dict[str, dict[str, Any]]:
    policy = load_template()["Resources"]["OperatorPolicy"]
    assert policy["Type"] == "AWS::IAM::ManagedPolicy"
    return {statement["Sid"]: statement for statement in policy["Properties"]["PolicyDocument"]["Statement"]}


def test_operator_policy_touches_only_this_stacks_resources() -> None:
    # Given the operator's policy
    statements = _statements()
    # When each statement's resource is read
    resources = {sid: statement["Resource"] for sid, statement in statements.items()}
    # Then each is one of this stack's own resources, never a wildcard over the account
    assert resources == {
        "ReadThisStacksOutputs": {"Fn::Sub": THIS_STACK},
        "ReadAndEraseEnquiries": {"Fn::GetAtt": ["EnquiriesTable", "Arn"]},
        "FindGuardRecords": {"Fn::GetAtt": ["GuardTable", "Arn"]},
        "ReadTheAddressHashingKey": {"Ref": "ClientAddressSecret"},
        "DeleteReplayRecordsAndClaimResends": {"Fn::GetAtt": ["GuardTable", "Arn"]},
        "ClaimResends": {"Fn::GetAtt": ["GuardTable", "Arn"]},
        "InvokeTheNotifier": {"Fn::GetAtt": ["NotifyEnquiryFunction", "Arn"]},
        "ReadFailedBatchesFromTheStream": {"Fn::GetAtt": ["EnquiriesTable", "StreamArn"]},
        "TidyTheDeadLetterQueue": {"Fn::GetAtt": ["NotificationDeadLetterQueue", "Arn"]},
        "DoctorReadsTheSenderIdentity": {"Fn::Sub": SES_IDENTITY},
        # The two actions without a resource type (the account's SES settings, metric values).
        "DoctorReadsTheSesAccount": "*",
        "DoctorReadsTheAlertSubscriptions": {"Ref": "AlertTopic"},
        "DoctorReadsTheAlarms": {"Fn::Sub": THIS_STACKS_ALARMS},
        "DoctorReadsTheCanaryResult": "*",
    }
    assert all(statement["Effect"] == "Allow" for statement in statements.values())


def test_operator_policy_writes_only_replay_records_claims_and_address_claims_to_the_guard_table() -> None:
    # Given the operator's policy
    statements = _statements()
    # When its guard-table writes are read
    deletes = statements["DeleteReplayRecordsAndClaimResends"]
    puts = statements["ClaimResends"]
    # Then deletes are limited to replay records, resend claims and the acknowledgement's address
    # claims, puts to resend claims: never the rate counts or the day's acknowledgement count
    assert deletes["Action"] == "dynamodb:DeleteItem"
    assert deletes["Condition"] == {
        "ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["replay#*", "resend#*", "ack#*"]}
    }
    assert puts["Action"] == "dynamodb:PutItem"
    assert puts["Condition"] == {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["resend#*"]}}
    assert (
        functions_adapter.REPLAY_RECORD_PREFIX + "*"
        in deletes["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]
    )


# -- the adapter, checked against the functions' code ------------------------------------------------------


def test_adapter_acknowledgement_record_id_is_the_one_the_real_notifier_writes(
    dynamodb: Any, make_notifier: MakeNotifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an enquiry from a +tagged address in mixed case, and the real notifier with acknowledgements on
    from support import SECRET_VALUE

    from enquiries.aws import attribute_map

    for name, value in {
        "CLINIC_EMAIL": "reception@example.com",
        "SENDER_EMAIL": "enquiries@example.com",
        "ACKNOWLEDGE_ENQUIRER": "true",
        "CLINIC_NAME": "Example Clinic",
    }.items():
        monkeypatch.setenv(name, value)
    boto3.client("ses", region_name=REGION).verify_email_identity(EmailAddress="enquiries@example.com")
    item = {"id": "01AAAAAAAAAAAAAAAAAAAAAAAA", "name": "Jane", "email": "Jane.Doe+Clinic@example.com"}
    item.update(message="Hi", created_at=datetime_now_text())
    dynamodb.put_item(TableName=TABLE_NAME, Item=attribute_map(item))
    notifier = make_notifier()
    # When the notifier emails and acknowledges it
    event = functions_adapter.notifier_event([item["id"]], region=REGION, source="test")
    notifier.lambda_handler(
        event, FakeContext(function_name="NotifyEnquiryFunction", remaining_millis=120_000)
    )
    # Then the address record it wrote is the one the adapter computes from the stored address
    claims = [
        functions_adapter.plain_item(record)
        for record in dynamodb.scan(TableName=GUARD_TABLE_NAME)["Items"]
        if record["id"]["S"].startswith("ack#")
    ]
    expected = functions_adapter.acknowledgement_record_id(SECRET_VALUE.encode(), item["email"])
    assert [(claim["id"], claim["enquiry_id"]) for claim in claims] == [(expected, item["id"])]


def datetime_now_text() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def test_adapter_replay_prefix_is_the_intake_stores() -> None:
    # Given a replay record key as the submission function writes it
    record_id = ReplayKey("idempotency-key", "abc", 60).record_id
    # When the adapter's prefix is compared
    # Then it is that key's prefix
    assert record_id.startswith(functions_adapter.REPLAY_RECORD_PREFIX)


def test_adapter_links_the_replay_records_the_submission_function_writes(dynamodb: Any, handler: Any) -> None:
    # Given an enquiry accepted with an Idempotency-Key (two replay records) and a rate count
    response = handler(
        with_json_body(
            "submit-json.json",
            {"name": "Jane Doe", "email": "jane@example.com", "message": "Hello", "consent": True},
            headers={"idempotency-key": "key-1"},
        )
    )
    enquiry_id = json.loads(response["body"])["id"]
    # When the guard table's records are read through the adapter
    records = [
        functions_adapter.plain_item(item) for item in dynamodb.scan(TableName=GUARD_TABLE_NAME)["Items"]
    ]
    linked = [functions_adapter.linked_enquiry_id(record) for record in records]
    # Then both replay records name the enquiry, and the rate count names none
    assert sorted(linked, key=str) == sorted([enquiry_id, enquiry_id, None], key=str)


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("Jane.Doe@Example.COM", "Jane.Doe@example.com"),
        ("  jane.doe@example.com ", "JANE.DOE@EXAMPLE.COM"),
        ("a@xn--bcher-kva.ch", "a@bücher.ch"),
        ("A@BÜCHER.CH", "a@bücher.ch"),
    ],
)
def test_adapter_address_key_matches_what_validation_stores_in_any_case(typed: str, stored: str) -> None:
    # Given an address as validation stores it, and as an operator types it
    from enquiries.validation import FieldRules, validate_enquiry

    normalised = validate_enquiry(
        {"name": "x", "email": stored, "message": "x", "consent": "true"}, FieldRules(services=())
    ).email
    # When both are keyed for comparison
    # Then they are equal
    assert functions_adapter.address_key(typed) == normalised.lower()


def test_adapter_address_key_does_not_fold_distinct_domains() -> None:
    # Given two addresses whose domains differ under IDNA 2008 (straße.de is not strasse.de)
    # When they are keyed
    # Then they stay different
    assert functions_adapter.address_key("a@straße.de") != functions_adapter.address_key("a@strasse.de")


def test_adapter_notifier_event_is_sent_by_the_real_notifier_and_failures_map_back(
    dynamodb: Any, make_notifier: MakeNotifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given two stored enquiries, and the real notifier, whose SES refuses the second's batch
    from enquiries.aws import attribute_map
    from enquiries.notify.mailer import SendFailed

    monkeypatch.setenv("CLINIC_EMAIL", "reception@example.com")
    monkeypatch.setenv("SENDER_EMAIL", "enquiries@example.com")
    boto3.client("ses", region_name=REGION).verify_email_identity(EmailAddress="enquiries@example.com")
    for enquiry_id in ("01AAAAAAAAAAAAAAAAAAAAAAAA", "01BBBBBBBBBBBBBBBBBBBBBBBB"):
        item = {"id": enquiry_id, "name": "Jane", "email": "j@example.com", "message": "Hi"}
        item["created_at"] = "2026-11-01T10:00:00.000Z"
        dynamodb.put_item(TableName=TABLE_NAME, Item=attribute_map(item))
    from enquiries.notify.handler import ses_mailer
    from enquiries.notify.mail_settings import MailSettings

    class RefusingB:
        """The notifier's mailer, but SES refuses the email about the second enquiry."""

        def __init__(self, mail: MailSettings) -> None:
            self.real = ses_mailer(mail)

        def send(self, message: Any) -> str:
            if "01BBBBBBBBBBBBBBBBBBBBBBBB" in str(message["X-Enquiry-Id"]):
                raise SendFailed("MessageRejected", permanent=True)
            return self.real.send(message)

        def with_configuration_set(self, configuration_set: str | None) -> Any:
            """The acknowledgements' mailer: the real one, unwrapped."""
            return self.real.with_configuration_set(configuration_set)

    notifier = make_notifier(mailer_for=RefusingB)
    ids = ["01AAAAAAAAAAAAAAAAAAAAAAAA", "01NOTSTORED000000000000000", "01BBBBBBBBBBBBBBBBBBBBBBBB"]
    # When the notifier handles the adapter's event for the three ids
    event = functions_adapter.notifier_event(ids, region=REGION, source="test")
    result = notifier.lambda_handler(event, FakeContext(function_name="NotifyEnquiryFunction"))
    # Then the first is sent and marked, the missing one is skipped, and the refused one is named
    assert functions_adapter.failed_enquiry_ids(ids, result) == ["01BBBBBBBBBBBBBBBBBBBBBBBB"]
    stored = functions_adapter.get_enquiry(dynamodb, TABLE_NAME, "01AAAAAAAAAAAAAAAAAAAAAAAA")
    assert stored is not None
    assert stored["notified_at"]


def test_package_license_is_an_spdx_expression_its_build_backend_reads() -> None:
    # Given the package's metadata and its build requirement
    requires = PYPROJECT["build-system"]["requires"]
    # When the license and the oldest setuptools allowed are read
    [setuptools] = [requirement for requirement in requires if requirement.startswith("setuptools")]
    oldest = int(setuptools.split(">=")[1].split(".")[0])
    # Then the license is an SPDX string (the table form makes setuptools warn on every install), and
    # the build asks for a setuptools that reads it (77 and later)
    assert PYPROJECT["project"]["license"] == "MIT"
    assert oldest >= 77
