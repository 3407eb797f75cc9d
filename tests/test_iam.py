"""Every AWS call the functions make, tied to the IAM actions the template grants for it.

`CALLS` is the table: each AWS operation the code calls, the IAM actions it is authorised as (from
the AWS Service Authorization Reference), and on which resource of the template each function's role
must allow them. Checks keep the table and the code and the template in step:

- a scan of functions/ finds every operation the code can call (client methods, and operation names
  handed to `aws_call`); an operation missing from the table fails, so a new call cannot ship
  without its permission, and a row no code uses fails too;
- the translated template grants each row's actions, on its resource, under its conditions;
- the roles grant nothing beyond the table and what Lambda itself does with them (`PLATFORM`);
- the real handlers, run against moto, make only calls their function's rows grant, on the resources
  the template names for the settings they read.
"""

from __future__ import annotations

import ast
import email
import email.policy
import fnmatch
import functools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parseaddr
from pathlib import Path
from typing import Any

import boto3
import botocore.client
import botocore.session
import pytest
from botocore import xform_name
from support import EVENTS, REGION, TABLE_NAME, FakeContext, MakeNotifier, load_event
from test_template import _role_of, _translate

from emulator.template_tables import load_template

FUNCTIONS_DIR = Path(__file__).resolve().parent.parent / "functions"
SUBMIT = "SubmitEnquiryFunction"
NOTIFY = "NotifyEnquiryFunction"
CANARY = "CanaryFunction"

# The Service Authorization Reference: the IAM actions each API operation needs, per service.
DYNAMODB_ACTIONS = (
    "https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazondynamodb.html"
)
DYNAMODB_TRANSACTIONS = (
    "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis-iam.html"
)
SECRETS_MANAGER_ACTIONS = (
    "https://docs.aws.amazon.com/service-authorization/latest/reference/list_awssecretsmanager.html"
)
SES_V2_ACTIONS = (
    "https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonsimpleemailservicev2.html"
)
LAMBDA_STREAM_READS = "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/iam-policy-example-lamda-process-dynamodb-streams.html"
LAMBDA_STREAM_FAILURES = "https://docs.aws.amazon.com/lambda/latest/dg/services-dynamodb-errors.html"

# Resources as the translated template writes them in a statement.
ENQUIRIES_TABLE = {"Fn::GetAtt": ["EnquiriesTable", "Arn"]}
ENQUIRIES_STREAMS = {"Fn::Sub": "${EnquiriesTable.Arn}/stream/*"}
GUARD_TABLE = {"Fn::GetAtt": ["GuardTable", "Arn"]}
ADDRESS_KEY = {"Ref": "ClientAddressSecret"}
TURNSTILE_KEY = {"Ref": "TurnstileSecretArn"}
SES_ARN = "arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}"
SES_IDENTITIES = {"Fn::Sub": f"{SES_ARN}:identity/*"}
# The operator's configuration set when one is named (both emails), else the stack's own two: the
# acknowledgement's, and the clinic's email's, which never suppresses the clinic's addresses.
SES_CONFIGURATION_SETS = {
    "Fn::If": [
        "HasSesConfigurationSet",
        {"Fn::Sub": SES_ARN + ":configuration-set/${SesConfigurationSet}"},
        [
            {"Fn::Sub": SES_ARN + ":configuration-set/${EmailConfigurationSet}"},
            {"Fn::Sub": SES_ARN + ":configuration-set/${NotificationConfigurationSet}"},
        ],
    ]
}
DEAD_LETTER_QUEUE = {"Fn::GetAtt": ["NotificationDeadLetterQueue", "Arn"]}
# Sends only From the sender identity: an address at the domain, or the address itself.
FROM_SENDER_IDENTITY = {
    "StringLike": {"ses:FromAddress": [{"Fn::Sub": "*@${SenderIdentity}"}, {"Ref": "SenderIdentity"}]}
}


# Only the guard table's records of the day's clinic emails (notify/notification_cap.py).
NOTIFICATION_DAY_COUNTS = {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["notify-day#*"]}}


@dataclass(frozen=True)
class Grant:
    """`actions` on `resource` in `function`'s role; with this IAM `condition` and only when the
    template's condition `when` holds, if given."""

    function: str
    actions: tuple[str, ...]
    resource: Any
    condition: Any = None
    when: str | None = None


@dataclass(frozen=True)
class Call:
    """An AWS API operation the code makes: where its actions come from, and what it needs granted."""

    reference: str
    grants: tuple[Grant, ...]


# (botocore service name, API operation) -> what the roles need for it. A new AWS call in functions/
# needs its row here, and its statement in template.yaml. A call on a new resource needs a Grant,
# e.g. reading an optional secret only when it is configured:
#   Grant(SUBMIT, ("secretsmanager:GetSecretValue",), {"Ref": "TurnstileSecretArn"}, when="HasTurnstile")
CALLS: dict[tuple[str, str], Call] = {
    # One transaction stores the enquiry, its replay records and the rate count. It needs no action
    # of its own, only those of the writes in it: Put -> PutItem, Update -> UpdateItem. The notifier's
    # (acknowledgements on) claims the enquirer's hashed address and counts the day: two updates.
    ("dynamodb", "TransactWriteItems"): Call(
        DYNAMODB_TRANSACTIONS,
        (
            Grant(SUBMIT, ("dynamodb:PutItem",), ENQUIRIES_TABLE),
            Grant(SUBMIT, ("dynamodb:PutItem", "dynamodb:UpdateItem"), GUARD_TABLE),
            Grant(NOTIFY, ("dynamodb:UpdateItem",), GUARD_TABLE, when="AcknowledgesEnquirer"),
        ),
    ),
    # The submit function looks up remembered answers; the notifier re-reads an enquiry; the canary
    # follows its enquiry until it is marked notified.
    ("dynamodb", "GetItem"): Call(
        DYNAMODB_ACTIONS,
        (
            Grant(SUBMIT, ("dynamodb:GetItem",), GUARD_TABLE),
            Grant(NOTIFY, ("dynamodb:GetItem",), ENQUIRIES_TABLE),
            Grant(CANARY, ("dynamodb:GetItem",), ENQUIRIES_TABLE),
        ),
    ),
    # The canary deletes its own enquiry (conditional on canary = true: IAM cannot tell items apart).
    ("dynamodb", "DeleteItem"): Call(
        DYNAMODB_ACTIONS, (Grant(CANARY, ("dynamodb:DeleteItem",), ENQUIRIES_TABLE),)
    ),
    # The submit function remembers an answer under a second Idempotency-Key.
    ("dynamodb", "PutItem"): Call(DYNAMODB_ACTIONS, (Grant(SUBMIT, ("dynamodb:PutItem",), GUARD_TABLE),)),
    # The notifier claims an enquiry for sending, marks it notified, and records its acknowledgement's
    # outcome; it counts the day's clinic emails in the guard table, on those records only.
    ("dynamodb", "UpdateItem"): Call(
        DYNAMODB_ACTIONS,
        (
            Grant(NOTIFY, ("dynamodb:UpdateItem",), ENQUIRIES_TABLE),
            Grant(NOTIFY, ("dynamodb:UpdateItem",), GUARD_TABLE, NOTIFICATION_DAY_COUNTS),
        ),
    ),
    # The submit function reads its address-hashing key, and the Turnstile key when one is
    # configured, once per container; the notifier reads the address-hashing key (once per container)
    # when it acknowledges enquirers.
    ("secretsmanager", "GetSecretValue"): Call(
        SECRETS_MANAGER_ACTIONS,
        (
            Grant(SUBMIT, ("secretsmanager:GetSecretValue",), ADDRESS_KEY),
            Grant(SUBMIT, ("secretsmanager:GetSecretValue",), TURNSTILE_KEY, when="HasTurnstile"),
            Grant(NOTIFY, ("secretsmanager:GetSecretValue",), ADDRESS_KEY, when="AcknowledgesEnquirer"),
            # The canary derives its proof's key from the address-hashing key.
            Grant(CANARY, ("secretsmanager:GetSecretValue",), ADDRESS_KEY),
        ),
    ),
    # SES v2 SendEmail with Content.Raw is authorised as ses:SendRawEmail (the AccessDenied message
    # names it) as well as the operation's own ses:SendEmail; on the sender's identity, and in the SES
    # sandbox on each recipient's too: the clinic's, and the enquirer's for an acknowledgement (hence
    # identity/*, narrowed by the From condition); and on the configuration set each send names.
    ("sesv2", "SendEmail"): Call(
        SES_V2_ACTIONS,
        (
            Grant(NOTIFY, ("ses:SendEmail", "ses:SendRawEmail"), SES_IDENTITIES, FROM_SENDER_IDENTITY),
            Grant(
                NOTIFY, ("ses:SendEmail", "ses:SendRawEmail"), SES_CONFIGURATION_SETS, FROM_SENDER_IDENTITY
            ),
        ),
    ),
}

# What Lambda does with a function's role besides the function's own calls: the notifier's event
# source mapping reads the table's stream and records failed batches in the dead-letter queue.
PLATFORM: dict[str, Call] = {
    "stream reads": Call(
        LAMBDA_STREAM_READS,
        (
            Grant(
                NOTIFY,
                ("dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"),
                ENQUIRIES_STREAMS,
            ),
            # No resource type: "*" only (the Service Authorization Reference).
            Grant(NOTIFY, ("dynamodb:ListStreams",), "*"),
        ),
    ),
    "failed batches": Call(LAMBDA_STREAM_FAILURES, (Grant(NOTIFY, ("sqs:SendMessage",), DEAD_LETTER_QUEUE),)),
}

# Writing its own logs: the managed policy every Lambda role gets, the one managed policy allowed.
BASIC_EXECUTION = "service-role/AWSLambdaBasicExecutionRole"


# --- the scan of functions/ ----------------------------------------------------------------------


@functools.cache
def _operations_of(service: str) -> dict[str, str]:
    """botocore's snake_case method names of `service`, to its API operation names."""
    model = botocore.session.get_session().get_service_model(service)
    return {xform_name(operation): operation for operation in model.operation_names}


def _created_services(tree: ast.AST) -> set[str]:
    """Services the code creates clients for: `create_client("x", ...)`, `boto3.client("x")`."""
    services = set()
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)):
            continue
        name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        if name in ("create_client", "client") and isinstance(node.args[0].value, str):
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
    # Given code that creates a DynamoDB client and calls it both ways, and mentions an SQS operation
    # without ever creating an SQS client
    source = (
        'client = session.create_client("dynamodb")\n'
        "client.scan(TableName=t)\n"
        'aws_call(client, "batch_write_item", RequestItems={})\n'
        'label = "send_message"\n'
    )

    # When it is scanned
    calls = scan_calls({"new_code.py": source})

    # Then both DynamoDB operations are found (neither is in the table, so the next test would fail
    # on this code), and nothing is claimed for a service the code has no client for
    assert calls == {("dynamodb", "Scan"), ("dynamodb", "BatchWriteItem")}
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
    return _translate(load_template())


@dataclass(frozen=True)
class Statement:
    actions: frozenset[str]
    resource: Any
    condition: Any
    when: str | None


def _statements_of(role: dict[str, Any]) -> list[Statement]:
    """Every Allow statement of the role's inline policies; one under `Fn::If` carries its condition."""
    found = []
    for policy in role["Properties"].get("Policies", []):
        raw = policy["PolicyDocument"]["Statement"]
        for statement in raw if isinstance(raw, list) else [raw]:
            when = None
            if "Fn::If" in statement:
                when, statement, otherwise = statement["Fn::If"]
                assert otherwise == {"Ref": "AWS::NoValue"}, "a conditional statement has no other branch"
            assert statement["Effect"] == "Allow"
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            found.append(
                Statement(frozenset(actions), statement["Resource"], statement.get("Condition"), when)
            )
    return found


def _grants() -> Iterator[tuple[str, Grant]]:
    for (service, operation), call in CALLS.items():
        for grant in call.grants:
            yield f"{service}.{operation}", grant
    for name, call in PLATFORM.items():
        for grant in call.grants:
            yield name, grant


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


@dataclass(frozen=True)
class Made:
    """One AWS call a handler made: its operation, and what it was made on."""

    service: str
    operation: str
    params: dict[str, Any]


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> list[Made]:
    """Every API call botocore makes while the test runs (moto answers them)."""
    calls: list[Made] = []
    original = botocore.client.BaseClient._make_api_call

    def record(client: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
        calls.append(Made(client.meta.service_model.service_name, operation_name, dict(api_params)))
        return original(client, operation_name, api_params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", record)
    return calls


def _chosen(value: Any, holding: frozenset[str]) -> Any:
    """`value` with each `Fn::If` resolved as deployed when the conditions in `holding` hold."""
    if isinstance(value, dict) and "Fn::If" in value:
        condition, when_true, when_false = value["Fn::If"]
        return _chosen(when_true if condition in holding else when_false, holding)
    if isinstance(value, list):
        return [_chosen(item, holding) for item in value]
    return value


def _resources_by_setting(
    cfn: dict[str, Any], function: str, environment: dict[str, str], holding: frozenset[str] = frozenset()
) -> dict[str, str]:
    """The setting values the test gave `function`, to the template resource (or parameter) each
    names when deployed with the conditions in `holding`: the table name in TABLE_NAME is the
    EnquiriesTable, NOTIFICATION_SES_CONFIGURATION_SET's set is NotificationConfigurationSet, and so on."""
    variables = cfn["Resources"][function]["Properties"]["Environment"]["Variables"]
    chosen = {name: _chosen(value, holding) for name, value in variables.items()}
    return {
        environment[name]: value["Ref"]
        for name, value in chosen.items()
        if isinstance(value, dict) and "Ref" in value and environment.get(name)
    }


_ITEM_ACTIONS = {
    "Put": "dynamodb:PutItem",
    "Update": "dynamodb:UpdateItem",
    "Delete": "dynamodb:DeleteItem",
    "ConditionCheck": "dynamodb:ConditionCheckItem",
}


def _needs(made: Made, resources: dict[str, str]) -> list[tuple[str | None, str | None]]:
    """(action, template resource) pairs `made` needs where the call names them; None where the
    table's row alone says. An email needs its identity (every row grants identity/*; its From
    address is checked against the condition instead) and the configuration set it names."""
    if made.service == "dynamodb" and made.operation == "TransactWriteItems":
        return [
            (_ITEM_ACTIONS[kind], resources.get(write["TableName"], write["TableName"]))
            for item in made.params["TransactItems"]
            for kind, write in item.items()
        ]
    name = (
        made.params.get("TableName") or made.params.get("SecretId") or made.params.get("ConfigurationSetName")
    )
    return [(None, resources.get(name, name) if name else None)]


def _covers(grant: Grant, resource: str | None, holding: frozenset[str]) -> bool:
    """Whether the grant's resource, as deployed under `holding`, is `resource`: a Ref or GetAtt of
    it, or an ARN that names it (`configuration-set/${NotificationConfigurationSet}`)."""
    if resource is None:
        return True
    text = json.dumps(_chosen(grant.resource, holding))
    return f'"{resource}"' in text or f"${{{resource}}}" in text


def _keys_allowed(grant: Grant, made: Made) -> bool:
    """Whether the item `made` names is one the grant's dynamodb:LeadingKeys condition allows, if it
    has one (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/specifying-conditions.html)."""
    patterns = (grant.condition or {}).get("ForAllValues:StringLike", {}).get("dynamodb:LeadingKeys")
    if patterns is None:
        return True
    key = made.params.get("Key", {}).get("id", {}).get("S")
    return isinstance(key, str) and any(fnmatch.fnmatchcase(key, pattern) for pattern in patterns)


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
        call = CALLS.get((made.service, made.operation))
        assert call is not None, f"{function} made {made.service}.{made.operation}, which CALLS does not list"
        grants = [
            grant
            for grant in call.grants
            if grant.function == function and (grant.when is None or grant.when in holding)
        ]
        assert grants, f"CALLS grants {made.service}.{made.operation} to others, but {function} makes it"
        for action, resource in _needs(made, resources):
            assert any(
                (action is None or action in grant.actions)
                and _covers(grant, resource, holding)
                and _keys_allowed(grant, made)
                for grant in grants
            ), f"{function} made {made.operation} needing {action} on {resource}: no grant covers it"
        if made.service == "sesv2":
            sender = _from_address(made)
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
