"""Every AWS call the functions make, tied to the IAM actions the template grants for it.

The table, `CALLS` in aws_permissions.py, lists each AWS operation the code calls, the IAM actions it
is authorised as, and on which resource of the template each function's role must allow them. Checks
keep the table and the code and the template in step:

- a scan of functions/ finds every operation the code can call (client methods, and operation names
  handed to `aws_call`); an operation missing from the table fails, so a new call cannot ship
  without its permission, and a row no code uses fails too;
- the translated template grants each row's actions, on its resource, under its conditions;
- the roles grant nothing beyond the table and what Lambda itself does with them (`PLATFORM`);
- the real handlers, run against moto, make only calls their function's rows grant, on the resources
  the template names for the settings they read (and conftest.py checks the same of every call the
  functions and the operator's command make in any test).
"""

from __future__ import annotations

import ast
import email
import email.policy
import fnmatch
import functools
import json
import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from email.utils import parseaddr
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import pytest
from aws_permissions import (
    CALLS,
    CANARY,
    NOTIFY,
    RECORDER,
    SUBMIT,
    Grant,
    Made,
    _grants,
    _resources_by_setting,
    _statements_of,
    function_problems,
    permission_problems,
    translated_template,
)
from botocore import xform_name
from support import EVENTS, REGION, REPO, TABLE_NAME, FakeContext, MakeNotifier, load_event
from test_template import _role_of

from emulator.template_tables import load_template

FUNCTIONS_DIR = Path(__file__).resolve().parent.parent / "functions"
# Writing its own logs: the managed policy every Lambda role gets, the one managed policy allowed.
BASIC_EXECUTION = "service-role/AWSLambdaBasicExecutionRole"


# --- the scan of functions/ ----------------------------------------------------------------------


@functools.cache
def _operations_of(service: str) -> dict[str, str]:
    """botocore's snake_case method names of `service`, to its API operation names."""
    model = botocore.session.get_session().get_service_model(service)
    return {xform_name(operation): operation for operation in model.operation_names}


def _created_services(tree: ast.AST) -> set[str]:
    """Services the code creates clients for: `create_client("x", ...)`, `boto3.client("x")`, and the
    submission path's own client's `Service("x", ...)` (enquiries/aws_json.py)."""
    services = set()
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)):
            continue
        name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        if name in ("create_client", "client", "Service") and isinstance(node.args[0].value, str):
            services.add(node.args[0].value)
    return services


def scan_calls(sources: dict[str, str]) -> set[tuple[str, str]]:
    """Every (service, operation) the Python `sources` can call: a method call (`client.get_item(`)
    or a string (`aws_call(client, "get_item", ...)`) naming an operation of a service a client is
    created for anywhere in them. A name several of those services have counts for each."""
    trees = [ast.parse(text, filename=name) for name, text in sources.items()]
    services = set().union(*(_created_services(tree) for tree in trees))
    names = set()
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                names.add(node.func.attr)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                names.add(node.value)
    return {
        (service, _operations_of(service)[name])
        for service in services
        for name in names
        if name in _operations_of(service)
    }


def _function_sources() -> dict[str, str]:
    return {str(path): path.read_text(encoding="utf-8") for path in sorted(FUNCTIONS_DIR.rglob("*.py"))}


def test_scan_calls_finds_client_methods_and_operation_names_of_created_clients() -> None:
    # Given code that creates a DynamoDB client and calls it both ways, an aws_json service for SNS
    # with one operation, and mentions an SQS operation without ever creating an SQS client
    source = (
        'client = session.create_client("dynamodb")\n'
        "client.scan(TableName=t)\n"
        'aws_call(client, "batch_write_item", RequestItems={})\n'
        'SNS = Service("sns", "AWS_ENDPOINT_URL_SNS", "", "1.0", {"publish": "Publish"})\n'
        'label = "send_message"\n'
    )

    # When it is scanned
    calls = scan_calls({"new_code.py": source})

    # Then the DynamoDB operations and SNS's are found (none is in the table, so the next test would
    # fail on this code), and nothing is claimed for a service the code has no client for
    assert calls == {("dynamodb", "Scan"), ("dynamodb", "BatchWriteItem"), ("sns", "Publish")}
    assert not calls & CALLS.keys()


def test_every_aws_call_in_the_functions_has_a_row_in_the_permission_table() -> None:
    # Given every operation the code in functions/ can call
    calls = scan_calls(_function_sources())

    # When they are looked up in the table
    missing = sorted(calls - CALLS.keys())
    unused = sorted(CALLS.keys() - calls)

    # Then each has its permissions there, and no row is left for a call the code no longer makes
    assert missing == [], f"add these to CALLS (and their statements to template.yaml): {missing}"
    assert unused == [], f"no code makes these calls any more: remove their rows and statements: {unused}"


# --- the template --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cfn() -> dict[str, Any]:
    return translated_template()


@pytest.mark.parametrize(
    ("need", "grant"), list(_grants()), ids=lambda value: getattr(value, "function", value)
)
def test_template_grants_each_call_its_actions_on_its_resource(
    cfn: dict[str, Any], need: str, grant: Grant
) -> None:
    # Given the role of the function that makes the call
    statements = _statements_of(_role_of(cfn, grant.function))

    # When the statements on the call's resource are picked out
    matching = [
        statement
        for statement in statements
        if statement.resource == grant.resource
        and statement.condition == grant.condition
        and statement.when == grant.when
    ]

    # Then one of them allows every action the call needs, under the call's conditions
    assert any(set(grant.actions) <= statement.actions for statement in matching), (
        f"{grant.function} needs {grant.actions} on {grant.resource} for {need}"
    )


def _managed_policy_names(role: dict[str, Any]) -> list[str]:
    arns = role["Properties"].get("ManagedPolicyArns", [])
    return [str(arn["Fn::Sub"] if isinstance(arn, dict) else arn).split(":policy/", 1)[1] for arn in arns]


def _keyed(resource: Any, condition: Any) -> str:
    return json.dumps([resource, condition], sort_keys=True)


@pytest.mark.parametrize("function", [SUBMIT, NOTIFY, CANARY])
def test_roles_grant_nothing_that_no_call_needs(cfn: dict[str, Any], function: str) -> None:
    # Given every action the function's role allows, on each resource, under each condition
    role = _role_of(cfn, function)
    granted = {
        (action, _keyed(statement.resource, statement.condition))
        for statement in _statements_of(role)
        for action in statement.actions
    }

    # When the actions the table and the platform need are taken away
    needed = {
        (action, _keyed(grant.resource, grant.condition))
        for _, grant in _grants()
        if grant.function == function
        for action in grant.actions
    }

    # Then nothing is left, and the only managed policy is the one for the function's own logs
    assert granted - needed == set()
    assert _managed_policy_names(role) == [BASIC_EXECUTION]


# --- the handlers, against moto ------------------------------------------------------------------


@pytest.fixture
def recorded() -> Iterator[list[Made]]:
    """Every API call botocore makes while the test runs (moto answers them), by anyone."""
    with RECORDER.listening() as calls:
        yield calls


def _from_address(made: Made) -> str:
    """The bare From address SES authorises a raw send by: FromEmailAddress, else the From header."""
    given = made.params.get("FromEmailAddress")
    if not given:
        message = email.message_from_bytes(made.params["Content"]["Raw"]["Data"], policy=email.policy.default)
        given = str(message["From"])
    return parseaddr(given)[1]


def _allowed_from(pattern: Any, sender_identity: str) -> str:
    text: str = pattern["Fn::Sub"] if "Fn::Sub" in pattern else "${" + pattern["Ref"] + "}"
    return text.replace("${SenderIdentity}", sender_identity)


def assert_granted(
    function: str,
    calls: list[Made],
    resources: dict[str, str],
    sender_identity: str,
    holding: frozenset[str] = frozenset(),
) -> None:
    """Each call is a row of the table with a grant to `function` on the resource it was made on,
    unconditional or under a template condition `holding` names; an email's From address is one the
    grant's ses:FromAddress condition allows."""
    assert calls, "the handler made no AWS call: the scenario did not run"
    for made in calls:
        problems = function_problems(function, made, resources, holding)
        assert not problems, problems[0]
        if made.service == "sesv2":
            sender = _from_address(made)
            grants = [
                grant for grant in CALLS[made.service, made.operation].grants if grant.function == function
            ]
            for grant in grants:
                allowed = [
                    _allowed_from(p, sender_identity)
                    for p in grant.condition["StringLike"]["ses:FromAddress"]
                ]
                assert any(fnmatch.fnmatchcase(sender, pattern) for pattern in allowed), (sender, allowed)


def test_submit_handler_makes_only_calls_its_role_is_granted(
    make_handler: Callable[..., Any], cfn: dict[str, Any], recorded: list[Made], aws_env: dict[str, str]
) -> None:
    # Given the submission handler against moto, with every call it makes recorded from its import on
    recorded.clear()
    handler = make_handler()
    first = load_event("submit-json.json", headers={"idempotency-key": "first-key"})
    second = load_event("submit-json.json", headers={"idempotency-key": "second-key"})
    invalid = load_event("submit-invalid-fields.json", headers={"idempotency-key": "first-key"})

    # When it stores an enquiry, answers a double submit under a new key and reads the first key's
    # record for other fields (refused as a reused key)
    answers = [handler(event)["statusCode"] for event in (first, second, invalid)]

    # Then each call it made is in the table, granted to it on the resource it was made on
    assert answers == [201, 201, 422]
    assert {(made.service, made.operation) for made in recorded} >= {
        ("secretsmanager", "GetSecretValue"),
        ("dynamodb", "TransactWriteItems"),
        ("dynamodb", "PutItem"),
        ("dynamodb", "GetItem"),
    }
    assert_granted(SUBMIT, recorded, _resources_by_setting(cfn, SUBMIT, aws_env), "clinic.example")


@pytest.fixture
def make_clinic_notifier(
    dynamodb: Any, make_notifier: MakeNotifier, monkeypatch: pytest.MonkeyPatch
) -> MakeNotifier:
    """`make_notifier`, sending From a verified domain."""
    monkeypatch.setenv("CLINIC_EMAIL", "Front desk <frontdesk@clinic.example>")
    monkeypatch.setenv("SENDER_EMAIL", "Clinic website <enquiries@clinic.example>")
    boto3.client("ses", region_name=REGION).verify_domain_identity(Domain="clinic.example")
    return make_notifier


def stored_insert_event(dynamodb: Any) -> dict[str, Any]:
    """events/stream-insert.json, with its enquiries stored and not yet notified."""
    event: dict[str, Any] = json.loads((EVENTS / "stream-insert.json").read_text())
    for record in event["Records"]:
        image = record["dynamodb"]["NewImage"]
        dynamodb.put_item(
            TableName=TABLE_NAME,
            Item={key: value for key, value in image.items() if key not in ("notified_at", "ses_message_id")},
        )
    return event


@pytest.mark.parametrize(
    ("sender_email", "sender_identity", "outcome"),
    [
        # The README's spelling: a capital in the domain, in the identity too
        ("Clinic <Enquiries@Example.com>", "Example.com", "refused at deploy"),
        ("Clinic <Enquiries@Example.com>", "example.com", "sent"),
        ("ENQUIRIES@CLINIC.EXAMPLE", "clinic.example", "sent"),
        ("Clinic <Enquiries@Example.com>", "Enquiries@example.com", "sent"),
        ("Clinic <Enquiries@Example.com>", "Enquiries@Example.com", "refused at deploy"),
        ("Clinic <enquiries@example.com>", "Enquiries@example.com", "refused at start"),
        ("Clinic <enquiries@mail.example.com>", "example.com", "refused at start"),
    ],
)
def test_notify_sender_in_any_letter_case_is_sent_from_the_identity_or_refused_before_any_email(
    make_notifier: MakeNotifier,
    dynamodb: Any,
    cfn: dict[str, Any],
    recorded: list[Made],
    aws_env: dict[str, str],
    lambda_context: FakeContext,
    monkeypatch: pytest.MonkeyPatch,
    sender_email: str,
    sender_identity: str,
    outcome: str,
) -> None:
    # Given a sender and a SenderIdentity spelled with capitals, as a deployer may write them, the
    # identity passed to the notifier as the template passes it, and a stored enquiry
    import re

    from enquiries.settings import SettingsError

    pattern = load_template()["Parameters"]["SenderIdentity"]["AllowedPattern"]
    variables = cfn["Resources"]["NotifyEnquiryFunction"]["Properties"]["Environment"]["Variables"]
    assert variables["SENDER_IDENTITY"] == {"Ref": "SenderIdentity"}
    monkeypatch.setenv("CLINIC_EMAIL", "frontdesk@clinic.example")
    monkeypatch.setenv("SENDER_EMAIL", sender_email)
    monkeypatch.setenv("SENDER_IDENTITY", sender_identity)
    boto3.client("ses", region_name=REGION).verify_domain_identity(Domain=sender_identity.split("@")[-1])
    event = stored_insert_event(dynamodb)

    # When it is deployed (the parameter's pattern), started and given the record
    if re.fullmatch(pattern, sender_identity) is None:
        assert outcome == "refused at deploy"
        return
    recorded.clear()
    if outcome == "refused at start":
        with pytest.raises(SettingsError, match="not under SENDER_IDENTITY"):
            make_notifier()
        assert recorded == [] or all(made.service != "sesv2" for made in recorded)
        return
    notifier = make_notifier()
    result = notifier.lambda_handler(event, lambda_context)

    # Then every email is From an address the role's case-sensitive condition allows
    assert outcome == "sent"
    assert result == {"batchItemFailures": []}
    assert ("sesv2", "SendEmail") in {(made.service, made.operation) for made in recorded}
    assert_granted(NOTIFY, recorded, _resources_by_setting(cfn, NOTIFY, aws_env), sender_identity)


def test_notify_handler_makes_only_calls_its_role_is_granted(
    make_clinic_notifier: MakeNotifier,
    dynamodb: Any,
    cfn: dict[str, Any],
    recorded: list[Made],
    aws_env: dict[str, str],
    lambda_context: FakeContext,
) -> None:
    # Given a stored enquiry, and the notifier with every call it makes recorded from its init on
    event = stored_insert_event(dynamodb)
    recorded.clear()
    notifier = make_clinic_notifier()

    # When it handles the record
    result = notifier.lambda_handler(event, lambda_context)

    # Then it sent the email, and each call it made is granted to it, From the sender identity
    assert result == {"batchItemFailures": []}
    assert {(made.service, made.operation) for made in recorded} >= {
        ("dynamodb", "GetItem"),
        ("sesv2", "SendEmail"),
        ("dynamodb", "UpdateItem"),
    }
    assert_granted(NOTIFY, recorded, _resources_by_setting(cfn, NOTIFY, aws_env), "clinic.example")


def test_notify_handler_sends_to_a_forms_routed_recipient_as_its_role_is_granted(
    make_clinic_notifier: MakeNotifier,
    dynamodb: Any,
    cfn: dict[str, Any],
    recorded: list[Made],
    aws_env: dict[str, str],
    lambda_context: FakeContext,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    # Given the default form routing sports massage to the therapist (forms/, one file changed), and a
    # stored sports massage enquiry
    forms = tmp_path / "forms"
    shutil.copytree(REPO / "forms", forms)
    text = (forms / "enquiry.yaml").read_text(encoding="utf-8")
    route = "route:\n  field: service\n  to: {Sports Massage: [massage@clinic.example]}\nfields:\n"
    (forms / "enquiry.yaml").write_text(text.replace("fields:\n", route, 1), encoding="utf-8")
    monkeypatch.setenv("FORMS_DIR", str(forms))
    event = stored_insert_event(dynamodb)
    recorded.clear()
    notifier = make_clinic_notifier()

    # When it handles the record
    result = notifier.lambda_handler(event, lambda_context)

    # Then the email went to the routed address, with calls its role is granted (the sandbox's
    # recipient check is on identity/*, narrowed by the From condition)
    assert result == {"batchItemFailures": []}
    [send] = [made for made in recorded if made.operation == "SendEmail"]
    assert b"To: massage@clinic.example" in send.params["Content"]["Raw"]["Data"]
    assert_granted(NOTIFY, recorded, _resources_by_setting(cfn, NOTIFY, aws_env), "clinic.example")


@pytest.mark.parametrize(
    ("configuration_sets", "holding"),
    [
        # SesConfigurationSet empty (the default): the stack's two sets, the clinic's email in its own
        (
            {
                "SES_CONFIGURATION_SET": "stack-acknowledgements",
                "NOTIFICATION_SES_CONFIGURATION_SET": "stack-clinic",
            },
            frozenset(),
        ),
        # SesConfigurationSet named: the operator's set for both emails
        ({"SES_CONFIGURATION_SET": "operators-set"}, frozenset({"HasSesConfigurationSet"})),
    ],
    ids=["stack's sets", "operator's set"],
)
def test_notify_handler_sends_only_through_a_configuration_set_its_role_is_granted(
    make_clinic_notifier: MakeNotifier,
    dynamodb: Any,
    cfn: dict[str, Any],
    recorded: list[Made],
    aws_env: dict[str, str],
    lambda_context: FakeContext,
    monkeypatch: pytest.MonkeyPatch,
    configuration_sets: dict[str, str],
    holding: frozenset[str],
) -> None:
    # Given the configuration sets as the template sets them in this deploy, and a stored enquiry
    for name, value in configuration_sets.items():
        monkeypatch.setenv(name, value)
    environment = {**aws_env, **configuration_sets}
    event = stored_insert_event(dynamodb)
    recorded.clear()
    notifier = make_clinic_notifier()

    # When it emails the clinic
    result = notifier.lambda_handler(event, lambda_context)

    # Then the email named a configuration set, and the role may send through that set in this deploy
    assert result == {"batchItemFailures": []}
    sends = [made for made in recorded if made.operation == "SendEmail"]
    assert sends
    assert {send.params["ConfigurationSetName"] for send in sends} <= set(configuration_sets.values())
    resources = _resources_by_setting(cfn, NOTIFY, environment, holding)
    assert_granted(NOTIFY, recorded, resources, "clinic.example", holding=holding)
    # And the check tells deploys apart: the other deploy's grant does not cover this set
    other = frozenset({"HasSesConfigurationSet"}) - holding
    with pytest.raises(AssertionError, match="no grant covers it"):
        assert_granted(NOTIFY, recorded, resources, "clinic.example", holding=other)


def test_notify_handler_acknowledging_makes_only_calls_its_role_is_granted_with_acknowledgements_on(
    make_clinic_notifier: MakeNotifier,
    dynamodb: Any,
    cfn: dict[str, Any],
    recorded: list[Made],
    aws_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given acknowledgements on, a stored enquiry of today, and every call the notifier makes recorded
    monkeypatch.setenv("ACKNOWLEDGE_ENQUIRER", "true")
    monkeypatch.setenv("CLINIC_NAME", "Riverside Osteopathy")
    event = json.loads((EVENTS / "stream-insert.json").read_text())
    image = event["Records"][0]["dynamodb"]["NewImage"]
    image["created_at"] = {"S": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")}
    dynamodb.put_item(TableName=TABLE_NAME, Item=image)
    recorded.clear()
    notifier = make_clinic_notifier()

    # When it handles the record
    result = notifier.lambda_handler(event, FakeContext(remaining_millis=120_000))

    # Then it emailed the clinic and the enquirer, and each call it made (the key, the limits in the
    # guard table, the outcome) is granted to it when acknowledgements are on, From the sender identity
    assert result == {"batchItemFailures": []}
    assert [made.operation for made in recorded if made.service == "sesv2"] == ["SendEmail", "SendEmail"]
    assert {(made.service, made.operation) for made in recorded} >= {
        ("secretsmanager", "GetSecretValue"),
        ("dynamodb", "TransactWriteItems"),
        ("dynamodb", "UpdateItem"),
    }
    resources = _resources_by_setting(cfn, NOTIFY, aws_env)
    assert_granted(NOTIFY, recorded, resources, "clinic.example", holding=frozenset({"AcknowledgesEnquirer"}))
    # And without that condition the guard table and the key are out of its reach
    with pytest.raises(AssertionError):
        assert_granted(NOTIFY, recorded, resources, "clinic.example")


def test_submit_handler_trap_hit_makes_only_calls_its_role_is_granted(
    make_handler: Callable[..., Any], cfn: dict[str, Any], recorded: list[Made], aws_env: dict[str, str]
) -> None:
    # Given the submission handler against moto, and a robot's submission: the trap field filled
    handler = make_handler()
    trap_hit = load_event("submit-json.json", headers={"idempotency-key": "robot-key"})
    body = json.loads(trap_hit["body"])
    trap_hit["body"] = json.dumps({**body, "_gotcha": "https://cheap-pills.example"})

    # When it answers the robot as if its enquiry were stored
    answer = handler(trap_hit)

    # Then the robot sees a 201, nothing is stored, and the transaction (which checks the record a real
    # enquiry of the same fields would have, without writing it) is granted item by item
    assert answer["statusCode"] == 201
    writes = [
        kind
        for made in recorded
        if made.operation == "TransactWriteItems"
        for item in made.params["TransactItems"]
        for kind in item
    ]
    assert "ConditionCheck" in writes
    assert "Put" in writes
    assert_granted(SUBMIT, recorded, _resources_by_setting(cfn, SUBMIT, aws_env), "clinic.example")


def test_every_call_is_attributed_to_the_role_whose_code_makes_it(
    dynamodb: Any, recorded: list[Made]
) -> None:
    # Given the submission's store, the notifier's ledger and the test itself, each reading a record
    from support import GUARD_TABLE_NAME

    from enquiries.intake import ReplayKey
    from enquiries.notify.ledger import DynamoNotificationLedger
    from enquiries.storage.intake_store import DynamoIntakeStore

    # When each makes its call
    DynamoIntakeStore(TABLE_NAME, GUARD_TABLE_NAME).recall([ReplayKey("idempotency-key", "abc", 60)])
    DynamoNotificationLedger(TABLE_NAME).get("01AAAAAAAAAAAAAAAAAAAAAAAA")
    dynamodb.get_item(TableName=TABLE_NAME, Key={"id": {"S": "01AAAAAAAAAAAAAAAAAAAAAAAA"}})

    # Then each call is the role's whose code made it, and the test's own is nobody's (not checked):
    # the submission's through its own client (aws_json, observed), the notifier's through botocore
    from enquiries.aws_clients import dynamodb_client, submission_dynamodb
    from enquiries.aws_json import JsonClient

    assert isinstance(submission_dynamodb(), JsonClient)
    assert not isinstance(dynamodb_client(), JsonClient)
    assert [(made.operation, made.role) for made in recorded] == [
        ("GetItem", SUBMIT),
        ("GetItem", NOTIFY),
        ("GetItem", None),
    ]


# The store is pointed at the wrong table on purpose: conftest.py would fail this test for it.
@pytest.mark.not_granted("dynamodb.GetItem", reason="the call the check must name")
def test_permission_check_names_a_call_the_role_is_not_granted(dynamodb: Any, recorded: list[Made]) -> None:
    # Given the submission's store reading a replay record, as the role may (the guard table)
    from enquiries.intake import ReplayKey
    from enquiries.storage.intake_store import DynamoIntakeStore

    DynamoIntakeStore(TABLE_NAME, TABLE_NAME).recall([ReplayKey("idempotency-key", "abc", 60)])
    [made] = recorded

    # When the same read is checked as made on the enquiries table instead, which the role may not read
    problems = permission_problems(made)

    # Then the check names the call, the action and the table
    assert problems == [
        "SubmitEnquiryFunction made GetItem needing None on EnquiriesTable: no grant covers it"
    ]
