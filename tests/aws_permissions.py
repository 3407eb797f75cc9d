"""Which AWS calls each role may make: the permission table, the template's grants, and a recorder of
every AWS call made in the test process, attributed to the role that makes it.

`CALLS` is the table: each AWS operation the functions' code calls, the IAM actions it is authorised
as (from the AWS Service Authorization Reference), and on which resource of the template each
function's role must allow them. tests/test_iam.py checks the table against the code and the
template; conftest.py checks every call the functions and the operator's command make in any test
against it (the functions' roles) or against the template's OperatorPolicy (the command).
"""

from __future__ import annotations

import contextlib
import fnmatch
import functools
import json
import os
import sys
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from emulator.template_tables import load_template

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
    # of its own, only those of the writes in it: Put -> PutItem, Update -> UpdateItem, ConditionCheck
    # -> ConditionCheckItem (a trap hit checks a real enquiry's replay record). The notifier's
    # (acknowledgements on) claims the enquirer's hashed address and counts the day: two updates.
    ("dynamodb", "TransactWriteItems"): Call(
        DYNAMODB_TRANSACTIONS,
        (
            Grant(SUBMIT, ("dynamodb:PutItem",), ENQUIRIES_TABLE),
            Grant(
                SUBMIT,
                ("dynamodb:ConditionCheckItem", "dynamodb:PutItem", "dynamodb:UpdateItem"),
                GUARD_TABLE,
            ),
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
    # The notifier marks an enquiry notified, and records its acknowledgement's outcome.
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
            # The canary derives its proof's key from the address-hashing key, on each run.
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


@dataclass(frozen=True)
class Made:
    """One AWS call a handler made: its operation, and what it was made on."""

    service: str
    operation: str
    params: dict[str, Any]
    # Who made it (a function's role, OPERATOR, or None: the test itself), and the settings it ran with.
    role: str | None = None
    environment: dict[str, str] = field(default_factory=dict, compare=False, repr=False)
    # The operator command's target: its stack outputs (output key -> resource name).
    outputs: dict[str, str] = field(default_factory=dict, compare=False, repr=False)


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


# --- the operator's policy ------------------------------------------------------------------------

# The managed policy a person who runs `enquiries` has (template.yaml, OperatorPolicy).
OPERATOR = "OperatorPolicy"
# IAM's names where they are not the service's own and the operation's: DynamoDB Streams' actions are
# dynamodb:*, Lambda's Invoke is lambda:InvokeFunction.
# https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazondynamodb.html
# https://docs.aws.amazon.com/service-authorization/latest/reference/list_awslambda.html
_IAM_PREFIX = {"dynamodbstreams": "dynamodb", "sesv2": "ses"}
_IAM_ACTION = {("lambda", "Invoke"): "lambda:InvokeFunction"}


@functools.cache
def operator_statements() -> tuple[Statement, ...]:
    policy = load_template()["Resources"][OPERATOR]["Properties"]["PolicyDocument"]
    raw = policy["Statement"]
    found = []
    for statement in raw if isinstance(raw, list) else [raw]:
        assert statement["Effect"] == "Allow"
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        found.append(Statement(frozenset(actions), statement["Resource"], statement.get("Condition"), None))
    return tuple(found)


def _output_resources(outputs: Mapping[str, str]) -> dict[str, str]:
    """The command's target's resource names (or URLs), to the template resource each output names."""
    declared = load_template()["Outputs"]
    found = {}
    for key, name in outputs.items():
        value = declared.get(key, {}).get("Value")
        if name and isinstance(value, dict) and "Ref" in value:
            found[name] = value["Ref"]
    return found


def _operator_needs(made: Made) -> list[tuple[str, Any, str | None]]:
    """(IAM action, template resource as a statement names it, item key) for each thing `made` does;
    the resource is None where the call does not name one (DescribeStacks, GetRecords)."""
    names = _output_resources(made.outputs)
    prefix = _IAM_PREFIX.get(made.service, made.service)

    def arn_of(name: str, attribute: str = "Arn") -> Any:
        return {"Fn::GetAtt": [names.get(name, name), attribute]}

    def key_of(write: Mapping[str, Any]) -> str | None:
        key = write.get("Key") or write.get("Item") or {}
        return str(key["id"]["S"]) if "id" in key else None

    params = made.params
    if made.service == "dynamodb" and made.operation == "TransactWriteItems":
        return [
            (_ITEM_ACTIONS[kind], arn_of(write["TableName"]), key_of(write))
            for item in params["TransactItems"]
            for kind, write in item.items()
        ]
    action = _IAM_ACTION.get((made.service, made.operation), f"{prefix}:{made.operation}")
    if "TableName" in params:
        return [(action, arn_of(params["TableName"]), key_of(params))]
    if "StreamArn" in params:
        # arn:aws:dynamodb:region:account:table/<name>/stream/<label>
        return [(action, arn_of(str(params["StreamArn"]).split("/")[1], "StreamArn"), None)]
    if "QueueUrl" in params:
        return [(action, arn_of(params["QueueUrl"]), None)]
    if "FunctionName" in params:
        return [(action, arn_of(params["FunctionName"]), None)]
    return [(action, _doctor_resource(made, names), None)]


# What `doctor` reads, as OperatorPolicy's statements name it (template.yaml, the Doctor* statements).
_SES_ARN = "arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}"
_ALARMS = "arn:${AWS::Partition}:cloudwatch:${AWS::Region}:${AWS::AccountId}:alarm:${AWS::StackName}-*"
_NO_RESOURCE_TYPE = {
    ("sesv2", "GetAccount"),
    ("sesv2", "ListEmailIdentities"),
    ("cloudwatch", "GetMetricData"),
}


def _doctor_resource(made: Made, names: Mapping[str, str]) -> Any:
    """The resource a read of `doctor`'s names, or None for a call that names none (DescribeStacks)."""
    params = made.params
    if (made.service, made.operation) in _NO_RESOURCE_TYPE:
        return "*"
    if made.service == "sesv2" and "EmailIdentity" in params:
        sender = made.outputs.get("SesSenderIdentity")
        if params["EmailIdentity"] == sender:
            return {"Fn::Sub": f"{_SES_ARN}:identity/${{SenderIdentity}}"}
        return f"identity/{params['EmailIdentity']}"
    if made.service == "sns" and "TopicArn" in params:
        return {"Ref": names.get(params["TopicArn"], params["TopicArn"])}
    if made.service == "cloudwatch" and made.operation == "DescribeAlarms":
        stack = made.outputs.get("StackName", "")
        prefix = str(params.get("AlarmNamePrefix", ""))
        return {"Fn::Sub": _ALARMS} if prefix and (not stack or prefix.startswith(stack)) else "alarm:*"
    return None


def _condition_allows(condition: Any, key: str | None) -> bool:
    """Whether a statement's condition allows an item of this partition key. Only the one kind the
    operator's policy uses is understood; any other condition allows nothing here."""
    if not condition:
        return True
    if set(condition) != {"ForAllValues:StringLike"} or set(condition["ForAllValues:StringLike"]) != {
        "dynamodb:LeadingKeys"
    }:
        return False
    patterns = condition["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]
    return key is not None and any(fnmatch.fnmatchcase(key, pattern) for pattern in patterns)


def operator_problems(made: Made) -> list[str]:
    """What the operator's policy does not allow of `made`: empty when it is granted."""
    problems = []
    for action, resource, key in _operator_needs(made):
        if not any(
            action in statement.actions
            and (resource is None or statement.resource == resource)
            and _condition_allows(statement.condition, key)
            for statement in operator_statements()
        ):
            problems.append(
                f"the operator's command made {made.service}.{made.operation} needing {action} on "
                f"{resource} (key {key}): {OPERATOR} does not allow it"
            )
    return problems


# --- the functions' roles -------------------------------------------------------------------------


@functools.cache
def translated_template() -> dict[str, Any]:
    """template.yaml as SAM translates it (the functions' roles as deployed); translated once."""
    from test_template import _translate

    return _translate(load_template())


def conditions_holding(environment: Mapping[str, str]) -> frozenset[str]:
    """The template's conditions that hold in a deploy that gives a function these settings."""
    from enquiries.settings import _boolean

    holding = set()
    try:
        if _boolean(environment.get("ACKNOWLEDGE_ENQUIRER", "false").strip()):
            holding.add("AcknowledgesEnquirer")
    except ValueError:
        pass
    if environment.get("TURNSTILE_SECRET_ARN"):
        holding.add("HasTurnstile")
    # The operator's set names both emails' set; the stack's own give the clinic's email its own.
    if environment.get("SES_CONFIGURATION_SET") and not environment.get("NOTIFICATION_SES_CONFIGURATION_SET"):
        holding.add("HasSesConfigurationSet")
    return frozenset(holding)


def function_problems(
    function: str, made: Made, resources: dict[str, str], holding: frozenset[str] = frozenset()
) -> list[str]:
    """What `function`'s role, deployed with the conditions in `holding`, does not grant of `made`
    (a row of CALLS with a grant on each resource it names): empty when it is granted."""
    call = CALLS.get((made.service, made.operation))
    if call is None:
        return [f"{function} made {made.service}.{made.operation}, which CALLS does not list"]
    grants = [
        grant
        for grant in call.grants
        if grant.function == function and (grant.when is None or grant.when in holding)
    ]
    if not grants:
        return [f"CALLS grants {made.service}.{made.operation} to others, but {function} makes it"]
    return [
        f"{function} made {made.operation} needing {action} on {resource}: no grant covers it"
        for action, resource in _needs(made, resources)
        if not any(
            (action is None or action in grant.actions)
            and _covers(grant, resource, holding)
            and _keys_allowed(grant, made)
            for grant in grants
        )
    ]


def _keys_allowed(grant: Grant, made: Made) -> bool:
    """Whether the item `made` names is one the grant's dynamodb:LeadingKeys condition allows, if it
    has one (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/specifying-conditions.html)."""
    patterns = (grant.condition or {}).get("ForAllValues:StringLike", {}).get("dynamodb:LeadingKeys")
    if patterns is None:
        return True
    key = made.params.get("Key", {}).get("id", {}).get("S")
    return isinstance(key, str) and any(fnmatch.fnmatchcase(key, pattern) for pattern in patterns)


def permission_problems(made: Made) -> list[str]:
    """What the role that made the call is not granted of it (nothing for a test's own calls)."""
    if made.role is None:
        return []
    if made.role == OPERATOR:
        return operator_problems(made)
    holding = conditions_holding(made.environment)
    resources = _resources_by_setting(translated_template(), made.role, made.environment, holding)
    return function_problems(made.role, made, resources, holding)


# --- who makes a call -----------------------------------------------------------------------------

# The functions' modules, by the role that runs them; the operator's command. A module not named
# (enquiries.aws, enquiries.aws_clients, enquiries.stored_secret ...) is shared: the caller decides.
_ROLE_MODULES = (
    ("enquiries_cli", OPERATOR),
    ("enquiries.notify", NOTIFY),
    # The canary's entry point; its path (enquiries.canary_run) is shared with the command.
    ("enquiries.canary_function", CANARY),
    ("enquiries.api", SUBMIT),
    ("enquiries.submission", SUBMIT),
    ("enquiries.storage", SUBMIT),
    ("enquiries.client_address", SUBMIT),
    ("enquiries.captcha", SUBMIT),
    ("enquiries.turnstile", SUBMIT),
    ("enquiries.snapstart", SUBMIT),
)


def _role_of_module(module: str) -> str | None:
    for prefix, role in _ROLE_MODULES:
        if module == prefix or module.startswith(prefix + "."):
            return role
    return None


def _module_of(frame: FrameType) -> str:
    return str(frame.f_globals.get("__name__", ""))


def _is_machinery(frame: FrameType) -> bool:
    """botocore's and boto3's frames, and this recorder's own."""
    module = _module_of(frame)
    return module.startswith(("botocore", "boto3")) or module in (
        "aws_permissions",
        "sitecustomize",
        "enquiries.aws_json",
    )


def role_of_caller(frame: FrameType | None) -> tuple[str | None, FrameType | None]:
    """The role that makes the call whose handler runs in `frame`, and the caller's innermost frame.

    The frames from the call out to an enclosing AWS call (a Lambda Invoke a test serves in-process)
    are one program's: its role is that of the outermost of them in a module of a function or of the
    command (the command's reuse of the functions' code is the command's). None for a call the
    test's own code makes (setup, seeding, reading back)."""
    while frame is not None and _is_machinery(frame):
        frame = frame.f_back
    caller, role = frame, None
    while frame is not None and not _is_machinery(frame):
        role = _role_of_module(_module_of(frame)) or role
        frame = frame.f_back
    return role, caller


def _target_outputs(frame: FrameType | None) -> dict[str, str] | None:
    """The resources (stack outputs) of the command's target found from `frame` outwards, or None
    where there is no target: a test calling one of the command's helpers itself."""
    from enquiries_cli.target import Target

    while frame is not None and not _is_machinery(frame):
        for value in list(frame.f_locals.values()):
            if isinstance(value, Target):
                return dict(value.resources)
        frame = frame.f_back
    return None


class CallRecorder:
    """botocore's `before-parameter-build` handler for every session: records each call made in this
    process with the role that makes it. `calls` is what was made since `begin()`; a list given to
    `listening()` also gets every call while it listens."""

    def __init__(self) -> None:
        self.calls: list[Made] = []
        self._listeners: list[list[Made]] = []
        # In a child process of the tests (the local server): where to write each attributed call.
        self.sink: str | None = None
        self._sink_lock = threading.Lock()

    def begin(self) -> list[Made]:
        self.calls = []
        return self.calls

    @contextlib.contextmanager
    def listening(self) -> Iterator[list[Made]]:
        calls: list[Made] = []
        self._listeners.append(calls)
        try:
            yield calls
        finally:
            self._listeners.remove(calls)

    def __call__(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        """botocore's handler."""
        self.record(model.service_model.service_name, model.name, params)

    def record(self, service: str, operation: str, params: dict[str, Any]) -> None:
        """A call of botocore's or of aws_json's (one of its OBSERVERS)."""
        role, frame = role_of_caller(sys._getframe(1))
        outputs = _target_outputs(frame) if role == OPERATOR else {}
        if outputs is None:
            role, outputs = None, {}
        made = Made(
            service,
            operation,
            dict(params),
            role,
            dict(os.environ) if role is not None else {},
            outputs,
        )
        # list.append is atomic: calls from the command's and the stream poller's threads are safe.
        self.calls.append(made)
        for listener in self._listeners:
            listener.append(made)
        if made.role is not None and self.sink is not None:
            line = json.dumps(
                [made.service, made.operation, made.params, made.role, made.environment, made.outputs],
                default=str,
            )
            with self._sink_lock, open(self.sink, "a", encoding="utf-8") as sink:
                sink.write(line + "\n")


# The one recorder of this process. Every botocore session registers botocore.handlers'
# BUILTIN_HANDLERS when it is made, so a handler added there sees every client made afterwards:
# the functions', the command's, boto3's and moto's own.
RECORDER = CallRecorder()


def record_every_call() -> None:
    import botocore.handlers

    # A test process started by another (pytest-xdist's workers) has child_hooks' recorder too: this
    # process records its own calls itself.
    botocore.handlers.BUILTIN_HANDLERS[:] = [
        spec
        for spec in botocore.handlers.BUILTIN_HANDLERS
        if getattr(spec[1], "__module__", "") != "sitecustomize"
    ]
    handler = ("before-parameter-build", RECORDER)
    if handler not in botocore.handlers.BUILTIN_HANDLERS:
        botocore.handlers.BUILTIN_HANDLERS.append(handler)
    # The submission path's own client (enquiries/aws_json.py) tells its observers of every call.
    from enquiries import aws_json

    if RECORDER.record not in aws_json.OBSERVERS:
        aws_json.OBSERVERS.append(RECORDER.record)


# --- the tests' child processes (the local server, `python -m devserver`) ------------------------

# The directory where a child Python of the tests writes its calls (child_hooks/sitecustomize.py
# records them when this is set), one file per process.
CHILD_CALLS = "ENQUIRIES_TEST_AWS_CALLS"
CHILD_HOOKS = Path(__file__).resolve().parent / "child_hooks"


def record_in_child_processes(directory: Path) -> None:
    """Have every Python the tests start (they inherit this environment) record its calls there."""
    os.environ[CHILD_CALLS] = str(directory)
    paths = [str(CHILD_HOOKS), str(CHILD_HOOKS.parent), *filter(None, [os.environ.get("PYTHONPATH")])]
    os.environ["PYTHONPATH"] = os.pathsep.join(paths)


class ChildCalls:
    """Reads the calls child processes wrote, each line once."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._read: dict[Path, int] = {}

    def new_calls(self) -> list[Made]:
        found = []
        for path in sorted(self.directory.glob("calls-*.jsonl")):
            with path.open("rb") as lines:
                lines.seek(self._read.get(path, 0))
                data = lines.read()
            complete = data[: data.rfind(b"\n") + 1]
            self._read[path] = self._read.get(path, 0) + len(complete)
            for line in complete.decode("utf-8").splitlines():
                service, operation, params, role, environment, outputs = json.loads(line)
                found.append(Made(service, operation, params, role, environment, outputs))
        return found
