"""The SAM template: what it deploys (translated to plain CloudFormation, offline), and that it lints
clean. The emulator's tables built from it: test_emulator_template_tables.py."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from samtranslator.public.parser import Parser
from samtranslator.public.translator import Translator

from emulator.template_tables import TEMPLATE_PATH, load_template
from enquiries.settings import DEFAULT_EMERGENCY_NOTE, DEFAULT_REPLY_WITHIN, load_settings
from scripts.docs_commands import documentation

REPO_ROOT = Path(__file__).resolve().parent.parent

# The contract's Configuration section, minus the AWS_* variables the Lambda runtime provides.
CONTRACT_SETTINGS = (
    "TABLE_NAME",
    "CLINIC_EMAIL",
    "SENDER_EMAIL",
    "ALLOWED_ORIGINS",
    "SUCCESS_URL",
    "CLINIC_PHONE",
    "SERVICES",
    "REQUIRE_CONSENT",
    "DEFAULT_PHONE_REGION",
    "RATE_LIMIT_PER_HOUR",
    "RETENTION_DAYS",
    "TIMEZONE",
    "SES_CONFIGURATION_SET",
    "TURNSTILE_SECRET",
    "TURNSTILE_VERIFY_URL",
    "ACKNOWLEDGE_ENQUIRER",
    "CLINIC_NAME",
)


@pytest.fixture(scope="module")
def cfn() -> dict[str, Any]:
    """template.yaml translated by the SAM translator, as CloudFormation would receive it.

    No AWS access: the region comes from a bare boto3 Session, and no managed policy is looked up by
    name (the template names none). `sam package` would replace the local CodeUri (and the layer's
    ContentUri) with an S3 URI, which the translator requires, so the test does the same.
    """
    return _translate(load_template())


def _translate(template: dict[str, Any]) -> dict[str, Any]:
    template["Globals"]["Function"]["CodeUri"] = "s3://artifacts-bucket/enquiries.zip"
    for name, resource in template["Resources"].items():
        if resource["Type"] == "AWS::Serverless::LayerVersion":
            resource["Properties"]["ContentUri"] = f"s3://artifacts-bucket/{name}.zip"
    translator = Translator(None, Parser(), boto_session=boto3.Session(region_name="eu-west-2"))
    translated: dict[str, Any] = translator.translate(
        template, parameter_values={}, get_managed_policy_map=lambda: {}
    )
    return translated


def _resources_of_type(cfn: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {name: res for name, res in cfn["Resources"].items() if res["Type"] == resource_type}


def _statements(policy_document: dict[str, Any]) -> list[dict[str, Any]]:
    statements = policy_document["Statement"]
    return statements if isinstance(statements, list) else [statements]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _role_of(cfn: dict[str, Any], function: str) -> dict[str, Any]:
    role_ref = cfn["Resources"][function]["Properties"]["Role"]
    role: dict[str, Any] = cfn["Resources"][role_ref["Fn::GetAtt"][0]]
    return role


def _role_statements(role: dict[str, Any]) -> list[dict[str, Any]]:
    """Every statement of the role's inline policies, both branches of a conditional one included."""
    statements = []
    for policy in role["Properties"].get("Policies", []):
        for statement in _statements(policy["PolicyDocument"]):
            branches = statement["Fn::If"][1:] if "Fn::If" in statement else [statement]
            statements += [branch for branch in branches if branch != {"Ref": "AWS::NoValue"}]
    return statements


def _actions(statement: dict[str, Any]) -> list[str]:
    return [str(action).lower() for action in _as_list(statement["Action"])]


def _handler_source(function: str) -> tuple[Path, str]:
    template = load_template()
    code_root = REPO_ROOT / template["Globals"]["Function"]["CodeUri"]
    module, _, name = template["Resources"][function]["Properties"]["Handler"].rpartition(".")
    return code_root / Path(*module.split(".")).with_suffix(".py"), name


ALARMS = (
    "ApiServerErrorsAlarm",
    "NotificationDeadLetterAlarm",
    "NotifierErrorsAlarm",
    "NotifierIteratorAgeAlarm",
    "SesBounceRateAlarm",
    "SesComplaintRateAlarm",
    "AcknowledgementFailureRateAlarm",
    "AcknowledgementCapAlarm",
    "ApiClientErrorsAlarm",
    "NotificationCapAlarm",
    "QuietFormAlarm",
    "CanaryAlarm",
)
# Alarms that watch for too little activity: no data is what they look for.
BREACHING_WHEN_QUIET = ("QuietFormAlarm", "CanaryAlarm")
# Alarms that keep their state while their metric is quiet: a quiet queue may still hold messages,
# SES publishes reputation rates irregularly, and the cap's count is 0 only when one goes out.
KEEP_STATE_WHEN_QUIET = (
    "NotificationDeadLetterAlarm",
    "SesBounceRateAlarm",
    "SesComplaintRateAlarm",
    "AcknowledgementCapAlarm",
    "NotificationCapAlarm",
)
SES_CONFIGURATION_SET = {
    "Fn::If": ["HasSesConfigurationSet", {"Ref": "SesConfigurationSet"}, {"Ref": "EmailConfigurationSet"}]
}


# HTTP APIs wait at most 30 s for an integration, a limit that cannot be raised:
# https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-quotas.html
HTTP_API_INTEGRATION_TIMEOUT_SECONDS = 30


def test_submit_function_runtime_architecture_and_timeout() -> None:
    # Given the SAM template
    template = load_template()

    # When it is translated to CloudFormation
    translated = _translate(template)

    # Then the submit function runs the handler on Python 3.13 / arm64, and gives up before API
    # Gateway does, so a slow request ends in its own clear 503 rather than the gateway's bare error
    props = translated["Resources"]["SubmitEnquiryFunction"]["Properties"]
    assert translated["Resources"]["SubmitEnquiryFunction"]["Type"] == "AWS::Lambda::Function"
    assert props["Runtime"] == "python3.13"
    assert props["Architectures"] == ["arm64"]
    assert props["Handler"] == "enquiries.api.submit.lambda_handler"
    assert props["Timeout"] < HTTP_API_INTEGRATION_TIMEOUT_SECONDS


@pytest.mark.parametrize("function", ["SubmitEnquiryFunction", "NotifyEnquiryFunction", "CanaryFunction"])
def test_function_handler_resolves_to_a_module_under_code_uri(function: str) -> None:
    # Given the function's handler (a dotted path) under the functions/ code root (CodeUri)
    # When it is mapped to a source file
    source, name = _handler_source(function)

    # Then that file exists and defines the handler (read as text: importing it needs settings)
    assert source.is_file(), f"{source} is missing"
    assert f"def {name}(" in source.read_text(encoding="utf-8")


@pytest.mark.parametrize("function", ["SubmitEnquiryFunction", "NotifyEnquiryFunction"])
def test_function_environment_has_every_contract_setting(cfn: dict[str, Any], function: str) -> None:
    # Given a translated function
    variables = cfn["Resources"][function]["Properties"]["Environment"]["Variables"]

    # When its environment is compared with the contract's Configuration section
    # (Turnstile is the submission function's alone, the acknowledgement the notifier's)
    acknowledgement = ("ACKNOWLEDGE_ENQUIRER", "CLINIC_NAME")
    expected = [
        name
        for name in CONTRACT_SETTINGS
        if ("TURNSTILE" not in name or function == "SubmitEnquiryFunction")
        and (name not in acknowledgement or function == "NotifyEnquiryFunction")
    ]
    missing = [name for name in expected if name not in variables]

    # Then every setting is there (the one settings object reads them all), the table name from the
    # table resource, powertools configured
    assert missing == []
    assert variables["TABLE_NAME"] == {"Ref": "EnquiriesTable"}
    assert variables["SENDER_EMAIL"] == {"Ref": "SenderEmail"}
    assert variables["SES_CONFIGURATION_SET"] == SES_CONFIGURATION_SET
    if function == "NotifyEnquiryFunction":
        assert variables["ACKNOWLEDGE_ENQUIRER"] == {"Ref": "AcknowledgeEnquirer"}
        assert variables["ACKNOWLEDGEMENT_DAILY_CAP"] == {"Ref": "AcknowledgementDailyCap"}
    # (the service, every metric's dimension, is the stack's own: two clinics' stacks never share one)
    assert variables["POWERTOOLS_SERVICE_NAME"] == {"Ref": "AWS::StackName"}
    assert variables["POWERTOOLS_METRICS_NAMESPACE"] == "Enquiries"
    assert variables["POWERTOOLS_LOG_LEVEL"] == "INFO"


def test_notify_function_runtime_handler_and_metrics_namespace(cfn: dict[str, Any]) -> None:
    # Given the translated notifier
    function = cfn["Resources"]["NotifyEnquiryFunction"]

    # When its properties are read
    props = function["Properties"]

    # Then it runs the stream handler on Python 3.13 / arm64 with its metrics namespace (its timeout
    # is checked against the worst case of one record in test_notify.py)
    assert function["Type"] == "AWS::Lambda::Function"
    assert props["Runtime"] == "python3.13"
    assert props["Architectures"] == ["arm64"]
    assert props["Handler"] == "enquiries.notify.handler.lambda_handler"
    assert props["Environment"]["Variables"]["POWERTOOLS_METRICS_NAMESPACE"] == "Enquiries"


def test_template_parameters_cover_settings_with_contract_defaults() -> None:
    # Given the template's parameters
    parameters = load_template()["Parameters"]

    # When the optional ones are read
    defaults = {name: spec.get("Default") for name, spec in parameters.items()}

    # Then the defaults are the contract's, optional settings default to "", secrets are hidden
    assert defaults["Services"] == (
        "Osteopathy,Sports Massage,Medical Acupuncture,Personal Training,Nutritional Advice"
    )
    assert defaults["RequireConsent"] == "true"
    assert parameters["RequireConsent"]["AllowedValues"] == ["true", "false"]
    assert defaults["DefaultPhoneRegion"] == "GB"
    assert defaults["RateLimitPerHour"] == 10
    assert defaults["RetentionDays"] == 365
    assert defaults["Timezone"] == "Europe/London"
    assert defaults["AcknowledgeEnquirer"] == "false"
    assert parameters["AcknowledgeEnquirer"]["AllowedValues"] == ["true", "false"]
    assert defaults["AcknowledgementDailyCap"] == 200
    assert defaults["AcknowledgementReplyWithin"] == DEFAULT_REPLY_WITHIN
    assert defaults["AcknowledgementEmergencyNote"] == DEFAULT_EMERGENCY_NOTE
    for optional in (
        "SuccessUrl",
        "ClinicPhone",
        "SesConfigurationSet",
        "TurnstileSecretArn",
        "TurnstileVerifyUrl",
        "ClinicName",
    ):
        assert defaults[optional] == "", optional
    for required in ("AllowedOrigins", "ClinicEmail", "SenderEmail", "SenderIdentity", "AlertEmail"):
        assert "Default" not in parameters[required], required


def test_guided_deploy_asks_for_the_required_parameters_first() -> None:
    # Given the template's parameters, in the order `sam deploy --guided` asks for them
    parameters = load_template()["Parameters"]

    # When those without a default (the deployer must type a value) are picked out
    order = list(parameters)
    required = [name for name, spec in parameters.items() if "Default" not in spec]

    # Then they come first, so that Enter is right for every question after them
    assert order[: len(required)] == required
    assert required == ["AllowedOrigins", "ClinicEmail", "SenderEmail", "SenderIdentity", "AlertEmail"]


def test_deploy_settings_go_to_an_ignored_local_file_never_the_tracked_samconfig() -> None:
    # Given the tracked SAM configuration, .gitignore and the README's commands
    config = tomllib.loads((REPO_ROOT / "samconfig.toml").read_text(encoding="utf-8"))
    ignored = (REPO_ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()
    readme = documentation()
    deploy_commands = [line.strip() for line in readme.splitlines() if line.strip().startswith("sam deploy")]

    # When the deploy settings are looked for
    sections = {env: sorted(commands) for env, commands in config.items() if isinstance(commands, dict)}

    # Then samconfig.toml holds build and validate settings only (so it offers no deploy section for
    # the guided deploy to fill with the clinic's addresses), the local file is ignored by git, and
    # every deploy command in the README reads and writes that local file
    assert sections == {"default": ["build", "validate"]}
    assert "parameter_overrides" not in json.dumps(config)
    assert "samconfig.local.toml" in ignored
    assert deploy_commands
    assert all("--config-file samconfig.local.toml" in command for command in deploy_commands)


def test_turnstile_parameter_is_an_optional_secret_arn_that_enter_leaves_off() -> None:
    # Given the Turnstile parameter, as `sam deploy --guided` prompts for it (issue 15)
    parameters = load_template()["Parameters"]
    parameter = parameters["TurnstileSecretArn"]
    pattern = re.compile(parameter["AllowedPattern"])

    # When values a deployer might type are checked (CloudFormation anchors the pattern)
    arn = "arn:aws:secretsmanager:eu-west-2:123456789012:secret:enquiries/turnstile-AbC12d"
    accepted = ["", arn, "arn:aws-us-gov:secretsmanager:us-gov-west-1:123456789012:secret:t-x1y2Z3"]
    rejected = [
        "0x4AAAAAAABkMYinukE8nzYS",  # a Turnstile secret key pasted where its secret's ARN belongs
        "1x0000000000000000000000000000000AA",  # Cloudflare's test secret key
        "enquiries/turnstile",  # a secret's name: the IAM grant needs its full ARN
        arn[: -len("-AbC12d")],  # a partial ARN, without the suffix Secrets Manager adds
        "arn:aws:ssm:eu-west-2:123456789012:parameter/turnstile",
        f" {arn}",
    ]

    # Then pressing Enter means no Turnstile (an empty default, shown, not hidden), only a full secret
    # ARN passes, and the old plain-key parameter is gone
    assert parameter["Default"] == ""
    assert "NoEcho" not in parameter
    assert "TurnstileSecret" not in parameters
    assert all(pattern.fullmatch(value) for value in accepted)
    assert not any(pattern.fullmatch(value) for value in rejected)


def test_submit_role_reads_the_turnstile_secret_only_when_one_is_configured(cfn: dict[str, Any]) -> None:
    # Given the submit function's role and environment, translated
    role = _role_of(cfn, "SubmitEnquiryFunction")
    variables = cfn["Resources"]["SubmitEnquiryFunction"]["Properties"]["Environment"]["Variables"]

    # When its conditional statements are listed
    conditional = [
        s["Fn::If"]
        for policy in role["Properties"]["Policies"]
        for s in _statements(policy["PolicyDocument"])
        if "Fn::If" in s
    ]

    # Then the Turnstile secret may be read only when its ARN is given, and only that secret; the
    # function gets the ARN, and never a key in its configuration
    ((condition, when_set, otherwise),) = conditional
    assert condition == "HasTurnstile"
    assert when_set == {
        "Sid": "ReadTurnstileSecret",
        "Effect": "Allow",
        "Action": "secretsmanager:GetSecretValue",
        "Resource": {"Ref": "TurnstileSecretArn"},
    }
    assert otherwise == {"Ref": "AWS::NoValue"}
    assert cfn["Conditions"]["HasTurnstile"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "TurnstileSecretArn"}, ""]}]
    }
    assert variables["TURNSTILE_SECRET_ARN"] == {"Ref": "TurnstileSecretArn"}
    assert variables["TURNSTILE_SECRET"] == ""


def test_allowed_origins_parameter_accepts_origins_and_rejects_paths_and_spaces() -> None:
    # Given the AllowedOrigins parameter's pattern (CloudFormation anchors it to the whole value)
    pattern = re.compile(load_template()["Parameters"]["AllowedOrigins"]["AllowedPattern"])

    # When origins lists are checked
    accepted = [
        "https://www.example.com",
        "https://a.example,http://localhost:3000",
        "https://xn--bcher-kva.example",
        "https://clinic.example:8443,http://clinic.example:443,https://clinic.example:80",
    ]
    rejected = ["", "https://www.example.com/contact", "https://a.example, https://b.example", "example.com"]

    # Then only comma-separated bare origins pass (the CORS !Split does not trim spaces)
    assert all(pattern.fullmatch(value) for value in accepted)
    assert not any(pattern.fullmatch(value) for value in rejected)


@pytest.mark.parametrize(
    "value",
    [
        "https://clinic.example:443",  # browsers never send a default port
        "http://clinic.example:80",
        "https://a.example,https://clinic.example:443",
        "https://clinic.example/",  # nor a trailing slash
        "https://Clinic.example",  # nor upper case
        "HTTPS://clinic.example",
        "https://bücher.example",  # they send punycode
        "https://clinic.example:0443",
        "https://clinic.example:0",
        "https://clinic.example:65536",
        "https://*.clinic.example",  # CORS has no wildcards here
        "http://127.1:3000",  # browsers send 127.0.0.1
        "http://[::1]:3000",
        "https://clinic..example",
        "https://clinic.example.",
    ],
)
def test_allowed_origins_parameter_refuses_origins_no_browser_sends(value: str) -> None:
    # Given the AllowedOrigins parameter's pattern, which API Gateway's CORS gets as written
    pattern = re.compile(load_template()["Parameters"]["AllowedOrigins"]["AllowedPattern"])

    # When a value that a browser's Origin header can never equal is checked
    # Then the deploy refuses it, instead of an API whose every post from the site is refused
    assert not pattern.fullmatch(value)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_allowed_origins_parameter_accepts_only_what_the_function_keeps_unchanged(
    data: st.DataObject,
) -> None:
    # Given any value the AllowedOrigins parameter's pattern lets through to the deploy
    pattern = load_template()["Parameters"]["AllowedOrigins"]["AllowedPattern"]
    value = data.draw(st.from_regex(pattern, fullmatch=True))

    # When the function reads it as ALLOWED_ORIGINS
    origins = load_settings({"TABLE_NAME": "t", "ALLOWED_ORIGINS": value}).allowed_origins

    # Then it takes every origin exactly as written: API Gateway and the function allow the same ones
    assert list(origins) == list(dict.fromkeys(value.split(",")))


def test_sender_identity_parameter_accepts_a_domain_or_bare_address_only() -> None:
    # Given the SenderIdentity parameter's pattern (the name in the SES identity ARN)
    pattern = re.compile(load_template()["Parameters"]["SenderIdentity"]["AllowedPattern"])

    # When identities are checked
    accepted = ["example.com", "mail.example.co.uk", "clinic@example.com", "Clinic@example.com"]
    rejected = ["", "localhost", "Clinic <clinic@example.com>", "a@example.com,b@example.com", "*"]
    # IAM's StringLike is case-sensitive and the notifier sends From a lower-case domain
    rejected += ["Example.com", "clinic@Example.COM", "MAIL.example.com"]

    # Then only a domain or a bare address passes (never a display name, a list, a wildcard or a
    # domain with a capital letter)
    assert all(pattern.fullmatch(value) for value in accepted)
    assert not any(pattern.fullmatch(value) for value in rejected)


def test_submit_role_allows_only_put_item_on_the_table_and_guard_records(cfn: dict[str, Any]) -> None:
    # Given the role the submit function runs as
    role_ref = cfn["Resources"]["SubmitEnquiryFunction"]["Properties"]["Role"]
    role = cfn["Resources"][role_ref["Fn::GetAtt"][0]]

    # When its inline policies are collected (both branches of a conditional statement)
    statements = _role_statements(role)

    # Then it may only put enquiries (never read them back), keep and check request records on the
    # guard table, read its address-hashing key and, when configured, the Turnstile key (plus the managed
    # basic-logging policy)
    assert [(s["Effect"], _as_list(s["Action"]), s["Resource"]) for s in statements] == [
        ("Allow", ["dynamodb:PutItem"], {"Fn::GetAtt": ["EnquiriesTable", "Arn"]}),
        (
            "Allow",
            ["dynamodb:ConditionCheckItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"],
            {"Fn::GetAtt": ["GuardTable", "Arn"]},
        ),
        ("Allow", ["secretsmanager:GetSecretValue"], {"Ref": "ClientAddressSecret"}),
        ("Allow", ["secretsmanager:GetSecretValue"], {"Ref": "TurnstileSecretArn"}),
    ]
    assert role["Properties"]["ManagedPolicyArns"] == [
        "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
    ]


def test_only_the_notify_role_may_send_email_or_update_items(cfn: dict[str, Any]) -> None:
    # Given every IAM role in the translated template, and that no standalone policy exists
    roles = _resources_of_type(cfn, "AWS::IAM::Role")
    assert _resources_of_type(cfn, "AWS::IAM::Policy") == {}

    # When the roles holding SES or UpdateItem actions (or a wildcard action) are listed
    def holders(predicate: Any, on: str | None = None) -> set[str]:
        return {
            name
            for name, role in roles.items()
            for statement in _role_statements(role)
            for action in _actions(statement)
            if predicate(action) and (on is None or on in json.dumps(statement.get("Resource")))
        }

    # Then only the notifier's role sends email or updates items, and no role has a wildcard action
    notify_role = cfn["Resources"]["NotifyEnquiryFunction"]["Properties"]["Role"]["Fn::GetAtt"][0]
    assert holders(lambda action: action.startswith("ses:")) == {notify_role}
    assert holders(lambda action: action == "dynamodb:updateitem", on="EnquiriesTable") == {notify_role}
    assert holders(lambda action: "*" in action) == set()


def _actions_without_resource_types() -> set[str]:
    """Actions the Service Authorization Reference gives no resource type ("*" only), as cfn-lint ships it
    (cfnlint/data/AdditionalSpecs/Policies.json, generated from that reference)."""
    from importlib.resources import files

    path = files("cfnlint.data.AdditionalSpecs") / "Policies.json"
    services = json.loads(path.read_text(encoding="utf-8"))
    return {
        f"{prefix}:{action}"
        for prefix, service in services.items()
        for action, spec in service.get("Actions", {}).items()
        if not spec.get("Resources")
    }


def test_roles_grant_actions_without_a_resource_type_on_star_only(cfn: dict[str, Any]) -> None:
    # Given every statement of every role, and the actions that have no resource type
    unscoped = _actions_without_resource_types()
    statements = [
        s for role in _resources_of_type(cfn, "AWS::IAM::Role").values() for s in _role_statements(role)
    ]

    # When the statements naming a resource other than "*" are searched for such actions
    matching_nothing = [
        (action, statement.get("Sid"))
        for statement in statements
        if statement["Resource"] != "*"
        for action in _actions(statement)
        if action in unscoped
    ]

    # Then there are none: such a grant would match no request (dynamodb:ListStreams on a stream ARN)
    assert "dynamodb:liststreams" in unscoped
    assert matching_nothing == []


def test_notify_role_reads_the_enquiries_stream_only_not_every_stream(cfn: dict[str, Any]) -> None:
    # Given the role the notifier runs as (its own, not one SAM generates)
    role_id = cfn["Resources"]["NotifyEnquiryFunction"]["Properties"]["Role"]["Fn::GetAtt"][0]
    role = cfn["Resources"][role_id]

    # When its stream, DynamoDB and SQS grants are collected
    statements = _role_statements(role)
    stream = [s for s in statements if "dynamodb:getrecords" in _actions(s)]
    items = [s for s in statements if "dynamodb:getitem" in _actions(s)]
    sqs = [s for s in statements if any(a.startswith("sqs:") for a in _actions(s))]

    # Then it reads the enquiries table's streams only (not the managed AWSLambdaDynamoDBExecutionRole,
    # which reads every stream in the account), gets and updates items of the table only (no put,
    # delete, scan or query), and sends to the dead-letter queue only; its one managed policy is for
    # its own logs
    assert role["Type"] == "AWS::IAM::Role"
    assert [(sorted(_actions(s)), s["Resource"]) for s in stream] == [
        (
            ["dynamodb:describestream", "dynamodb:getrecords", "dynamodb:getsharditerator"],
            {"Fn::Sub": "${EnquiriesTable.Arn}/stream/*"},
        )
    ]
    assert [(sorted(_actions(s)), s["Resource"]) for s in items] == [
        (["dynamodb:getitem", "dynamodb:updateitem"], {"Fn::GetAtt": ["EnquiriesTable", "Arn"]})
    ]
    assert [(_actions(s), s["Resource"]) for s in sqs] == [
        (["sqs:sendmessage"], {"Fn::GetAtt": ["NotificationDeadLetterQueue", "Arn"]})
    ]
    assert role["Properties"]["ManagedPolicyArns"] == [
        {"Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"}
    ]


def test_notify_role_sends_only_from_the_sender_identity(cfn: dict[str, Any]) -> None:
    # Given the notifier's role
    role = _role_of(cfn, "NotifyEnquiryFunction")

    # When its SES grants are collected (a configuration set's grant included)
    ses = [s for s in _role_statements(role) if any(a.startswith("ses:") for a in _actions(s))]

    # Then they allow sending raw email (SES v2 SendEmail with Content.Raw is authorised as
    # ses:SendRawEmail), on this account's identities (in the SES sandbox the recipients' identities,
    # the enquirer's included, are checked too) and on the configuration sets the sends name, never on
    # "*", and only From the sender identity: an address at its domain, or the address itself
    arn = "arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}"
    from_sender_identity = {
        "StringLike": {"ses:FromAddress": [{"Fn::Sub": "*@${SenderIdentity}"}, {"Ref": "SenderIdentity"}]}
    }
    assert [(s["Effect"], sorted(_actions(s)), s["Resource"], s["Condition"]) for s in ses] == [
        (
            "Allow",
            ["ses:sendemail", "ses:sendrawemail"],
            {"Fn::Sub": f"{arn}:identity/*"},
            from_sender_identity,
        ),
        (
            "Allow",
            ["ses:sendemail", "ses:sendrawemail"],
            {
                "Fn::If": [
                    "HasSesConfigurationSet",
                    {"Fn::Sub": arn + ":configuration-set/${SesConfigurationSet}"},
                    [
                        {"Fn::Sub": arn + ":configuration-set/${EmailConfigurationSet}"},
                        {"Fn::Sub": arn + ":configuration-set/${NotificationConfigurationSet}"},
                    ],
                ]
            },
            from_sender_identity,
        ),
    ]


def test_configuration_sets_deliver_only_over_tls(cfn: dict[str, Any]) -> None:
    # Given the configuration sets the stack creates (every email the stack sends names one, unless
    # the operator names their own)
    sets = _resources_of_type(cfn, "AWS::SES::ConfigurationSet")

    # When their delivery options are read
    policies = {name: config_set["Properties"].get("DeliveryOptions") for name, config_set in sets.items()}

    # Then each requires TLS to the recipient's mail server: an enquiry is never delivered in plain text
    # (https://docs.aws.amazon.com/ses/latest/dg/security-protocols.html)
    assert set(policies) == {"EmailConfigurationSet", "NotificationConfigurationSet"}
    assert all(policy == {"TlsPolicy": "REQUIRE"} for policy in policies.values()), policies


def test_configuration_sets_suppress_strangers_but_never_the_clinic_unless_the_operator_names_one(
    cfn: dict[str, Any],
) -> None:
    # Given the translated template
    resources = cfn["Resources"]
    acknowledgements = resources["EmailConfigurationSet"]
    clinic = resources["NotificationConfigurationSet"]

    # When the configuration sets and the settings that name them are read
    settings = resources["NotifyEnquiryFunction"]["Properties"]["Environment"]["Variables"]

    # Then the stack creates both unless the operator names one (which both emails then use): the
    # acknowledgement's suppresses addresses that bounce or complain, with reputation metrics on;
    # the clinic's overrides the account's suppression with no reason at all, so one bounce of the
    # clinic's mailbox or one complaint never stops its enquiry emails
    # (https://docs.aws.amazon.com/ses/latest/dg/sending-email-suppression-list-config-level.html)
    for config_set in (acknowledgements, clinic):
        assert config_set["Type"] == "AWS::SES::ConfigurationSet"
        assert config_set["Condition"] == "CreatesConfigurationSet"
        assert config_set["Properties"]["SendingOptions"] == {"SendingEnabled": True}
        assert "Name" not in config_set["Properties"]  # generated, so that two stacks never collide
    assert cfn["Conditions"]["CreatesConfigurationSet"] == {
        "Fn::Equals": [{"Ref": "SesConfigurationSet"}, ""]
    }
    assert cfn["Conditions"]["HasSesConfigurationSet"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "SesConfigurationSet"}, ""]}]
    }
    assert sorted(acknowledgements["Properties"]["SuppressionOptions"]["SuppressedReasons"]) == [
        "BOUNCE",
        "COMPLAINT",
    ]
    assert acknowledgements["Properties"]["ReputationOptions"] == {"ReputationMetricsEnabled": True}
    assert clinic["Properties"]["SuppressionOptions"] == {"SuppressedReasons": []}
    assert settings["SES_CONFIGURATION_SET"] == SES_CONFIGURATION_SET
    assert settings["NOTIFICATION_SES_CONFIGURATION_SET"] == {
        "Fn::If": ["HasSesConfigurationSet", "", {"Ref": "NotificationConfigurationSet"}]
    }
    assert cfn["Outputs"]["SesConfigurationSetName"]["Value"] == SES_CONFIGURATION_SET
    assert cfn["Outputs"]["NotificationConfigurationSetName"]["Value"] == {
        "Fn::If": [
            "HasSesConfigurationSet",
            {"Ref": "SesConfigurationSet"},
            {"Ref": "NotificationConfigurationSet"},
        ]
    }


def test_notify_role_reaches_the_acknowledgement_limits_only_when_acknowledgements_are_on(
    cfn: dict[str, Any],
) -> None:
    # Given the notifier's inline policy statements, as written (conditions unresolved), and its settings
    role = _role_of(cfn, "NotifyEnquiryFunction")
    statements = [
        s for policy in role["Properties"]["Policies"] for s in _statements(policy["PolicyDocument"])
    ]
    variables = cfn["Resources"]["NotifyEnquiryFunction"]["Properties"]["Environment"]["Variables"]

    # When the conditional statements are picked out
    conditional = [s["Fn::If"] for s in statements if "Fn::If" in s]

    # Then, with AcknowledgeEnquirer only, it may update the guard table's records and read the
    # address-hashing key, nothing more
    assert [(condition, when_set, otherwise) for condition, when_set, otherwise in conditional] == [
        (
            "AcknowledgesEnquirer",
            {
                "Sid": "AcknowledgementLimits",
                "Effect": "Allow",
                "Action": "dynamodb:UpdateItem",
                "Resource": {"Fn::GetAtt": ["GuardTable", "Arn"]},
            },
            {"Ref": "AWS::NoValue"},
        ),
        (
            "AcknowledgesEnquirer",
            {
                "Sid": "ReadAddressHashKey",
                "Effect": "Allow",
                "Action": "secretsmanager:GetSecretValue",
                "Resource": {"Ref": "ClientAddressSecret"},
            },
            {"Ref": "AWS::NoValue"},
        ),
    ]
    assert cfn["Conditions"]["AcknowledgesEnquirer"] == {
        "Fn::Equals": [{"Ref": "AcknowledgeEnquirer"}, "true"]
    }
    assert variables["GUARD_TABLE_NAME"] == {"Ref": "GuardTable"}
    assert variables["CLIENT_ADDRESS_SECRET_ARN"] == {"Ref": "ClientAddressSecret"}


def test_acknowledgement_needs_a_clinic_name_before_the_deploy_starts() -> None:
    # Given the template's rules
    rules = load_template()["Rules"]

    # When the acknowledgement's rule is read
    rule = rules["AcknowledgementNamesTheClinic"]

    # Then turning acknowledgements on without ClinicName is refused (the subject names the clinic)
    assert rule["RuleCondition"] == {"Fn::Equals": [{"Ref": "AcknowledgeEnquirer"}, "true"]}
    assert rule["Assertions"] == [
        {
            "Assert": {"Fn::Not": [{"Fn::Equals": [{"Ref": "ClinicName"}, ""]}]},
            "AssertDescription": "ClinicName is required when AcknowledgeEnquirer is true.",
        }
    ]


@pytest.mark.parametrize(
    ("alarm", "metric", "threshold", "review_level"),
    [
        # SES reviews an account at a bounce rate of 5% and a complaint rate of 0.1%:
        # https://docs.aws.amazon.com/ses/latest/dg/reputationdashboardmessages.html
        ("SesBounceRateAlarm", "Reputation.BounceRate", 0.025, 0.05),
        ("SesComplaintRateAlarm", "Reputation.ComplaintRate", 0.0005, 0.001),
    ],
)
def test_reputation_alarms_fire_below_the_levels_at_which_ses_reviews_the_account(
    cfn: dict[str, Any], alarm: str, metric: str, threshold: float, review_level: float
) -> None:
    # Given a translated reputation alarm
    props = cfn["Resources"][alarm]["Properties"]

    # When its metric and threshold are read
    watched = (props["Namespace"], props["MetricName"], props.get("Dimensions"))

    # Then it watches the account's rate (a decimal: 0.05 is 5%), and fires at half the review level
    assert watched == ("AWS/SES", metric, None)
    assert props["Threshold"] == threshold == review_level / 2
    assert props["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert (props["Statistic"], props["Period"], props["EvaluationPeriods"]) == ("Maximum", 3600, 1)
    # SES publishes the rates irregularly: a quiet spell keeps the alarm's state, as AWS recommends
    assert props["TreatMissingData"] == "ignore"
    assert "Condition" not in cfn["Resources"][alarm]  # both emails depend on it, acknowledgements or not


def _notifier_variables(cfn: dict[str, Any]) -> dict[str, Any]:
    variables: dict[str, Any] = cfn["Resources"]["NotifyEnquiryFunction"]["Properties"]["Environment"][
        "Variables"
    ]
    return variables


def test_acknowledgement_failure_rate_alarm_fires_when_half_or_more_are_not_sent(cfn: dict[str, Any]) -> None:
    # Given the translated alarm on acknowledgements not sent
    resource = cfn["Resources"]["AcknowledgementFailureRateAlarm"]
    props = resource["Properties"]

    # When its metric is read
    variables = _notifier_variables(cfn)
    watched = (props["Namespace"], props["MetricName"], props["Dimensions"])

    # Then it averages, over an hour, the notifier's count of acknowledgements not sent (1 each, and
    # 0 for each sent: the share not sent), in its metrics namespace with the service dimension
    # Powertools adds to every metric; and it exists only with acknowledgements on
    assert resource["Condition"] == "AcknowledgesEnquirer"
    assert watched == (
        variables["POWERTOOLS_METRICS_NAMESPACE"],
        "AcknowledgementFailed",
        [{"Name": "service", "Value": variables["POWERTOOLS_SERVICE_NAME"]}],
    )
    assert (props["Statistic"], props["Period"], props["EvaluationPeriods"]) == ("Average", 3600, 1)
    assert (props["Threshold"], props["ComparisonOperator"]) == (0.5, "GreaterThanOrEqualToThreshold")
    assert props["TreatMissingData"] == "notBreaching"


def test_acknowledgement_cap_alarm_stays_on_until_one_is_sent_again(cfn: dict[str, Any]) -> None:
    # Given the translated alarm on the daily cap
    resource = cfn["Resources"]["AcknowledgementCapAlarm"]
    props = resource["Properties"]

    # When its metric is read
    watched = (props["Namespace"], props["MetricName"], props["Dimensions"])

    # Then any acknowledgement held back by the cap fires it, and only a 0 (one sent again) clears it
    assert resource["Condition"] == "AcknowledgesEnquirer"
    variables = _notifier_variables(cfn)
    assert watched == (
        variables["POWERTOOLS_METRICS_NAMESPACE"],
        "AcknowledgementCapped",
        [{"Name": "service", "Value": variables["POWERTOOLS_SERVICE_NAME"]}],
    )
    assert (props["Statistic"], props["Threshold"]) == ("Maximum", 1)
    assert props["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert props["TreatMissingData"] == "ignore"


def test_notify_event_source_reads_only_inserts_from_the_table_stream(cfn: dict[str, Any]) -> None:
    # Given the notifier's event source mappings
    mappings = [
        m["Properties"]
        for m in _resources_of_type(cfn, "AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["FunctionName"] == {"Ref": "NotifyEnquiryFunction"}
    ]

    # When the single mapping is read
    (mapping,) = mappings

    # Then it reads the table's stream from the oldest record, invoked at once and only for INSERTs
    assert mapping["EventSourceArn"] == {"Fn::GetAtt": ["EnquiriesTable", "StreamArn"]}
    assert mapping["StartingPosition"] == "TRIM_HORIZON"
    assert mapping["BatchSize"] == 10
    assert mapping["MaximumBatchingWindowInSeconds"] in (0, 1)
    (only_filter,) = mapping["FilterCriteria"]["Filters"]
    assert json.loads(only_filter["Pattern"]) == {"eventName": ["INSERT"]}


def test_notify_event_source_retries_a_bounded_time_then_dead_letters(cfn: dict[str, Any]) -> None:
    # Given the notifier's event source mapping
    (mapping,) = [
        m["Properties"]
        for m in _resources_of_type(cfn, "AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["FunctionName"] == {"Ref": "NotifyEnquiryFunction"}
    ]

    # When its failure handling is read
    destination = mapping["DestinationConfig"]["OnFailure"]

    # Then failed records are reported one by one, bisected, retried a bounded number of times for
    # at most an hour, and then recorded in the dead-letter queue
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["BisectBatchOnFunctionError"] is True
    assert 1 <= mapping["MaximumRetryAttempts"] <= 10
    assert mapping["MaximumRecordAgeInSeconds"] == 3600
    assert destination == {"Destination": {"Fn::GetAtt": ["NotificationDeadLetterQueue", "Arn"]}}


def test_enquiries_table_is_durable_and_streams_new_images(cfn: dict[str, Any]) -> None:
    # Given the translated table
    table = cfn["Resources"]["EnquiriesTable"]

    # When its properties are read
    props = table["Properties"]

    # Then it is on-demand, backed up, encrypted, expiring, streaming, never deleted with the stack, and
    # protected from a delete by hand
    assert table["Type"] == "AWS::DynamoDB::Table"
    assert table["DeletionPolicy"] == "Retain"
    assert table["UpdateReplacePolicy"] == "Retain"
    assert "TableName" not in props
    assert props["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert props["AttributeDefinitions"] == [{"AttributeName": "id", "AttributeType": "S"}]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["SSESpecification"]["SSEEnabled"] is True
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert props["StreamSpecification"] == {"StreamViewType": "NEW_IMAGE"}
    assert props["DeletionProtectionEnabled"] is True


def test_http_api_has_cors_for_allowed_origins(cfn: dict[str, Any]) -> None:
    # Given the translated HTTP API
    body = cfn["Resources"]["EnquiriesApi"]["Properties"]["Body"]

    # When its CORS extension is read (the true branch of the HasAllowedOrigins condition)
    condition, cors, otherwise = body["x-amazon-apigateway-cors"]["Fn::If"]

    # Then it allows the configured origins, POST and the two request headers, cached for 10 minutes
    assert condition == "HasAllowedOrigins"
    assert cors == {
        "allowOrigins": {"Fn::Split": [",", {"Ref": "AllowedOrigins"}]},
        "allowMethods": ["POST", "OPTIONS"],
        "allowHeaders": ["content-type", "idempotency-key"],
        "exposeHeaders": ["retry-after"],
        "maxAge": 600,
    }
    assert otherwise == {"Ref": "AWS::NoValue"}


def test_http_api_sends_every_request_to_the_function_through_one_route(cfn: dict[str, Any]) -> None:
    # Given the translated HTTP API's routes, and the function events SAM CLI's guided deploy asks
    # about ("has no authentication. Is this okay?", once per HttpApi event)
    paths = cfn["Resources"]["EnquiriesApi"]["Properties"]["Body"]["paths"]
    events = load_template()["Resources"]["SubmitEnquiryFunction"]["Properties"]["Events"]

    # When the integrations are listed
    routes = {
        (path, method): operation["x-amazon-apigateway-integration"]
        for path, operations in paths.items()
        for method, operation in operations.items()
    }

    # Then the $default catch-all alone reaches the function, through its alias, with payload 2.0:
    # POST /enquiries, preflights and every other path or method (the function answers the
    # contract's 404 / 405 itself), and the guided deploy asks its question once
    assert set(routes) == {("$default", "x-amazon-apigateway-any-method")}
    for integration in routes.values():
        assert integration["payloadFormatVersion"] == "2.0"
        assert "${SubmitEnquiryFunctionAliaslive}" in integration["uri"]["Fn::Sub"]
    assert [event["Type"] for event in events.values()] == ["HttpApi"]


def test_http_api_stage_is_throttled_from_parameters(cfn: dict[str, Any]) -> None:
    # Given the translated HTTP API stage
    stages = _resources_of_type(cfn, "AWS::ApiGatewayV2::Stage")

    # When its default route settings are read
    (stage,) = stages.values()
    settings = stage["Properties"]["DefaultRouteSettings"]

    # Then throttling comes from the two parameters
    assert settings == {
        "ThrottlingRateLimit": {"Ref": "ApiThrottleRateLimit"},
        "ThrottlingBurstLimit": {"Ref": "ApiThrottleBurstLimit"},
    }


def test_http_api_stage_logs_each_request_without_personal_data(cfn: dict[str, Any]) -> None:
    # Given the translated HTTP API stage and its access log group
    (stage,) = _resources_of_type(cfn, "AWS::ApiGatewayV2::Stage").values()
    settings = stage["Properties"]["AccessLogSettings"]
    group = cfn["Resources"]["ApiAccessLogGroup"]

    # When a log line is formatted the way API Gateway fills it in
    line = json.loads(re.sub(r"\$context\.[A-Za-z.]+", "x", settings["Format"]))
    variables = set(re.findall(r"\$context\.([A-Za-z.]+)", settings["Format"]))

    # Then each request leaves one JSON line in a group kept 90 days: its id, the route, the status,
    # the integration's status and error, API Gateway's own error (throttling), and the timings; and
    # nothing that identifies a visitor or carries what a visitor typed (no address, user agent,
    # path or query)
    assert settings["DestinationArn"] == {"Fn::GetAtt": ["ApiAccessLogGroup", "Arn"]}
    assert group["Type"] == "AWS::Logs::LogGroup"
    assert group["Properties"]["RetentionInDays"] == 90
    assert group["DeletionPolicy"] == "Delete"
    assert set(line.values()) == {"x"}
    assert {
        "requestId",
        "routeKey",
        "status",
        "integrationStatus",
        "integrationErrorMessage",
        "error.responseType",
        "error.message",
        "responseLatency",
        "integrationLatency",
    } <= variables
    identifying = {"identity.sourceIp", "identity.userAgent", "path", "domainName", "authorizer.principalId"}
    assert not {v for v in variables if v in identifying or v.startswith(("identity.", "authorizer."))}


def test_visitor_errors_alarm_watches_the_deployed_stage(cfn: dict[str, Any]) -> None:
    # Given the alarm on the HTTP API's 5xx and the translated stage
    alarm = cfn["Resources"]["ApiServerErrorsAlarm"]["Properties"]
    dimensions = {dimension["Name"]: dimension["Value"] for dimension in alarm["Dimensions"]}
    (stage,) = _resources_of_type(cfn, "AWS::ApiGatewayV2::Stage").values()

    # When the alarm's dimensions are compared with the stage
    watched = (dimensions["ApiId"], dimensions["Stage"])

    # Then they name the API and the stage that serves visitors (HTTP API metrics by ApiId and Stage)
    assert watched == (stage["Properties"]["ApiId"], stage["Properties"]["StageName"])


def _refers_to(value: Any, resource: str) -> bool:
    """Whether `value` (a translated property) names `resource` or one of SAM's resources made from it
    (its versions and aliases: `SubmitEnquiryFunctionAliaslive`)."""
    if isinstance(value, dict):
        named = value.get("Ref", value.get("Fn::GetAtt", [""])[0] if "Fn::GetAtt" in value else "")
        return str(named).startswith(resource) or any(_refers_to(item, resource) for item in value.values())
    return isinstance(value, list) and any(_refers_to(item, resource) for item in value)


def test_visitor_errors_alarm_covers_every_failure_of_the_submission_function(cfn: dict[str, Any]) -> None:
    # Given the translated template: what may invoke the submission function, and the 5xx alarm
    resources = cfn["Resources"]
    invokers = [
        resource
        for resource in resources.values()
        if resource["Type"]
        in ("AWS::Lambda::Permission", "AWS::Lambda::EventSourceMapping", "AWS::Lambda::EventInvokeConfig")
        and _refers_to(resource["Properties"].get("FunctionName"), "SubmitEnquiryFunction")
    ]
    alarm = resources["ApiServerErrorsAlarm"]["Properties"]

    # When its invokers, its timeout and the alarms on it are read
    principals = [invoker["Properties"].get("Principal") for invoker in invokers]
    timeout = resources["SubmitEnquiryFunction"]["Properties"]["Timeout"]
    on_its_errors = [
        name
        for name, resource in _resources_of_type(cfn, "AWS::CloudWatch::Alarm").items()
        if resource["Properties"].get("MetricName") == "Errors"
        and _refers_to(resource["Properties"].get("Dimensions"), "SubmitEnquiryFunction")
    ]

    # Then only the HTTP API invokes it (synchronously: no stream, no asynchronous retries), and it
    # gives up before the API does, so each of its failures is a 5xx a visitor gets ("API Gateway
    # treats all invocation and function errors as internal errors":
    # https://docs.aws.amazon.com/lambda/latest/dg/services-apigateway-errors.html); the 5xx alarm
    # fires on the first one in 5 minutes, as an alarm on the function's Errors would, so there is
    # none: it would bill $0.10 a month to say the same thing
    assert principals == ["apigateway.amazonaws.com"]
    assert timeout < HTTP_API_INTEGRATION_TIMEOUT_SECONDS
    assert (alarm["Namespace"], alarm["MetricName"], alarm["Statistic"]) == ("AWS/ApiGateway", "5xx", "Sum")
    assert (alarm["Period"], alarm["EvaluationPeriods"], alarm["Threshold"]) == (300, 1, 1)
    assert (alarm["ComparisonOperator"], alarm["TreatMissingData"]) == (
        "GreaterThanOrEqualToThreshold",
        "notBreaching",
    )
    assert on_its_errors == []


@pytest.mark.parametrize(
    ("function", "log_group"),
    [
        ("SubmitEnquiryFunction", "SubmitEnquiryLogGroup"),
        ("NotifyEnquiryFunction", "NotifyEnquiryLogGroup"),
        ("CanaryFunction", "CanaryLogGroup"),
    ],
)
def test_function_logs_have_a_retention(cfn: dict[str, Any], function: str, log_group: str) -> None:
    # Given the translated log groups
    log_groups = _resources_of_type(cfn, "AWS::Logs::LogGroup")

    # When the function's is looked up
    group = log_groups[log_group]["Properties"]

    # Then it is the function's own group, with a retention (the submission function's is named for
    # the stack and given to it, so that it exists before a SnapStart init logs: test_warm_up.py)
    function_props = cfn["Resources"][function]["Properties"]
    if "LoggingConfig" in function_props:
        assert function_props["LoggingConfig"] == {"LogGroup": {"Ref": log_group}}
        assert group["LogGroupName"] == {"Fn::Sub": f"/aws/lambda/${{AWS::StackName}}-{function}"}
    else:
        assert group["LogGroupName"] == {"Fn::Sub": f"/aws/lambda/${{{function}}}"}
    assert group["RetentionInDays"] == 90


def test_dead_letter_queue_is_encrypted_and_keeps_messages_14_days(cfn: dict[str, Any]) -> None:
    # Given the translated dead-letter queue
    queue = cfn["Resources"]["NotificationDeadLetterQueue"]

    # When its properties are read
    props = queue["Properties"]

    # Then it is encrypted with SQS-managed keys and keeps messages for the SQS maximum of 14 days
    assert queue["Type"] == "AWS::SQS::Queue"
    assert props["SqsManagedSseEnabled"] is True
    assert props["MessageRetentionPeriod"] == 14 * 24 * 60 * 60


def test_alert_topic_emails_the_alert_address(cfn: dict[str, Any]) -> None:
    # Given the translated alert topic
    topic = cfn["Resources"]["AlertTopic"]["Properties"]

    # When its subscriptions are read
    subscriptions = topic["Subscription"]

    # Then it emails AlertEmail, and it has no KMS key: CloudWatch can publish only under a customer
    # managed key ($1 a month and more), and alarm messages hold no personal data (README, "Cost")
    assert subscriptions == [{"Protocol": "email", "Endpoint": {"Ref": "AlertEmail"}}]
    assert "KmsMasterKeyId" not in topic


def test_stack_has_no_customer_managed_kms_key(cfn: dict[str, Any]) -> None:
    # Given every resource of the translated template
    types = {resource["Type"] for resource in cfn["Resources"].values()}

    # When the KMS keys among them are picked out
    keys = {t for t in types if t.startswith("AWS::KMS::")}

    # Then there are none: each would cost $1 a month at no traffic, $2 to $3 once it rotates. The
    # table, the queue and the secret are encrypted under AWS owned or AWS managed keys, free.
    assert keys == set()


@pytest.mark.parametrize("alarm", ALARMS)
def test_alarm_notifies_the_alert_topic(cfn: dict[str, Any], alarm: str) -> None:
    # Given a translated alarm
    props = cfn["Resources"][alarm]["Properties"]

    # When its actions and name are read
    actions = (props["AlarmActions"], props["OKActions"])

    # Then it notifies the topic on ALARM and on OK, and its name starts with the stack name
    assert actions == ([{"Ref": "AlertTopic"}], [{"Ref": "AlertTopic"}])
    assert props["AlarmName"]["Fn::Sub"].startswith("${AWS::StackName}-")


# What each kind of resource costs a month while the stack has no traffic, in US dollars (README,
# "Cost", and its sources). A new kind of resource must be priced here before a test passes.
IDLE_MONTHLY_PRICE = {
    "AWS::CloudWatch::Alarm": 0.10,  # a standard-resolution alarm on one metric
    "AWS::SecretsManager::Secret": 0.40,
    "AWS::KMS::Key": 1.00,
}
# Billed only by use (requests, duration, data stored or sent), or not at all: $0 with no traffic.
BILLED_BY_USE = {
    "AWS::Serverless::HttpApi",
    "AWS::Serverless::Function",  # SnapStart, which caches a snapshot for a fee, is off by default
    "AWS::Serverless::LayerVersion",
    "AWS::Logs::LogGroup",
    "AWS::DynamoDB::Table",  # on demand; storage and point-in-time recovery by the GB, empty at first
    "AWS::SQS::Queue",
    "AWS::SNS::Topic",
    "AWS::SES::ConfigurationSet",  # SES bills emails and data sent, no fixed fee
    "AWS::IAM::Role",
    "AWS::IAM::ManagedPolicy",
    "AWS::Scheduler::Schedule",  # $1 per million invocations, 14 million free a month
}
# The $1.00 goal, the two alarms on a flood (the API's refusals, the clinic emails' daily cap) and
# the canary's alarm: the clinic decided the alarms are worth their $0.10 each.
IDLE_BUDGET_DOLLARS = 1.30


def _holds_by_default(template: dict[str, Any], condition: str) -> bool:
    """Whether a template condition holds when every parameter keeps its default (a required one,
    which has none, is taken as non-empty)."""

    def value(node: Any) -> Any:
        if isinstance(node, dict) and "Ref" in node:
            return str(template["Parameters"][node["Ref"]].get("Default", "given"))
        if isinstance(node, dict) and "Fn::Equals" in node:
            left, right = (value(side) for side in node["Fn::Equals"])
            return left == right
        if isinstance(node, dict) and "Fn::Not" in node:
            return not value(node["Fn::Not"][0])
        if isinstance(node, dict) and "Fn::And" in node:
            return all(value(part) for part in node["Fn::And"])
        if isinstance(node, dict) and "Condition" in node:
            return value(template["Conditions"][node["Condition"]])
        assert not isinstance(node, dict), f"price this condition by hand: {node}"
        return node

    return bool(value(template["Conditions"][condition]))


def test_stack_costs_its_budget_a_month_with_no_traffic() -> None:
    # Given the resources a deploy with the defaults creates
    template = load_template()
    created = [
        resource["Type"]
        for resource in template["Resources"].values()
        if "Condition" not in resource or _holds_by_default(template, resource["Condition"])
    ]

    # When each is priced as it costs with no traffic
    unpriced = sorted(set(created) - IDLE_MONTHLY_PRICE.keys() - BILLED_BY_USE)
    idle = round(sum(IDLE_MONTHLY_PRICE.get(kind, 0.0) for kind in created), 2)

    # Then every kind has a known price, the sum is within the goal, and README, "Cost", says it
    assert unpriced == []
    assert idle <= IDLE_BUDGET_DOLLARS
    readme = documentation()
    assert f"| **Total, defaults** | **${idle:.2f}**;" in readme


def test_alarms_are_ones_the_cloudwatch_free_tier_counts(cfn: dict[str, Any]) -> None:
    # Given every alarm of the translated template
    alarms = _resources_of_type(cfn, "AWS::CloudWatch::Alarm")

    # When each is classified as CloudWatch bills it
    # (https://aws.amazon.com/cloudwatch/pricing/: "10 Alarm metrics (only applicable to Standard
    # resolution alarms that list metrics directly and don't use a Metrics Insights query)")
    not_free = sorted(
        name
        for name, alarm in alarms.items()
        if "Metrics" in alarm["Properties"] or alarm["Properties"].get("Period", 0) < 60
    )

    # Then each watches one metric at standard resolution, so the free tier's 10 cover them when the
    # account has no others, and README, "Cost", prices as many as there are
    assert not_free == []
    assert set(ALARMS) <= set(alarms)
    readme = documentation()
    assert f"| CloudWatch alarms: {len(alarms)}, each a standard-resolution alarm on one metric |" in readme


@pytest.mark.parametrize(
    "alarm", [alarm for alarm in ALARMS if alarm not in KEEP_STATE_WHEN_QUIET + BREACHING_WHEN_QUIET]
)
def test_alarm_on_activity_treats_no_data_as_nothing_happened(cfn: dict[str, Any], alarm: str) -> None:
    # Given an alarm on requests or invocations (no data: no requests, no invocations)
    props = cfn["Resources"][alarm]["Properties"]

    # When its handling of missing data is read
    treatment = props["TreatMissingData"]

    # Then a quiet period counts as fine
    assert treatment == "notBreaching"


def test_quiet_form_alarm_fires_after_quiet_days_without_an_enquiry_and_is_off_by_default(
    cfn: dict[str, Any],
) -> None:
    # Given the alarm on a quiet form, and the QuietDays parameter that sets it
    alarm = cfn["Resources"]["QuietFormAlarm"]
    props = alarm["Properties"]
    parameter = load_template()["Parameters"]["QuietDays"]
    notifier = (REPO_ROOT / "functions" / "enquiries" / "notify" / "handler.py").read_text(encoding="utf-8")

    # When its definition is read
    window = (props["Period"], props["EvaluationPeriods"])

    # Then it counts the enquiries the notifier emails, a day at a time, over QuietDays days, and a
    # day with none (no data) breaches: it fires when every one of those days had none
    assert (props["Namespace"], props["MetricName"]) == ("Enquiries", "EnquiryNotified")
    assert 'add_metric(name="EnquiryNotified"' in notifier
    assert props["Dimensions"] == [{"Name": "service", "Value": {"Ref": "AWS::StackName"}}]
    assert window == (86400, {"Ref": "QuietDays"})
    assert (props["Statistic"], props["ComparisonOperator"], props["Threshold"]) == (
        "Sum",
        "LessThanThreshold",
        1,
    )
    assert props["TreatMissingData"] == "breaching"
    assert "DatapointsToAlarm" not in props  # all QuietDays days, not some of them
    # And CloudWatch accepts every value QuietDays takes: Period x EvaluationPeriods at most 7 days
    # (https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricAlarm.html)
    assert parameter["MinValue"] == 0
    assert props["Period"] * parameter["MaxValue"] <= 7 * 86400
    # And it exists only when QuietDays is set: the default, 0, makes none
    assert alarm["Condition"] == "AlarmsWhenQuiet"
    assert cfn["Conditions"]["AlarmsWhenQuiet"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "QuietDays"}, "0"]}]}
    assert str(parameter["Default"]) == "0"


def test_dead_letter_alarm_stays_in_alarm_while_the_queue_is_quiet(cfn: dict[str, Any]) -> None:
    # Given the dead-letter queue's alarm (SQS publishes queue metrics only while a queue is active,
    # so failed batches can wait in a quiet queue with no data points)
    props = cfn["Resources"]["NotificationDeadLetterAlarm"]["Properties"]

    # When its handling of missing data is read
    treatment = props["TreatMissingData"]

    # Then missing data keeps the current state: it turns OK only on a data point under 1 (the queue
    # emptied), never because the metric went quiet, and it went into ALARM on the first message
    assert treatment == "ignore"
    assert (props["MetricName"], props["Statistic"], props["Threshold"]) == (
        "ApproximateNumberOfMessagesVisible",
        "Maximum",
        1,
    )
    assert props["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"


@pytest.mark.parametrize(
    ("alarm", "metric", "dimensions", "statistic", "comparison", "threshold"),
    [
        (
            "ApiServerErrorsAlarm",
            ("AWS/ApiGateway", "5xx"),
            {"ApiId": {"Ref": "EnquiriesApi"}, "Stage": "$default"},
            "Sum",
            "GreaterThanOrEqualToThreshold",
            1,
        ),
        (
            "NotificationDeadLetterAlarm",
            ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
            {"QueueName": {"Fn::GetAtt": ["NotificationDeadLetterQueue", "QueueName"]}},
            "Maximum",
            "GreaterThanOrEqualToThreshold",
            1,
        ),
        (
            "NotifierErrorsAlarm",
            ("AWS/Lambda", "Errors"),
            {"FunctionName": {"Ref": "NotifyEnquiryFunction"}},
            "Sum",
            "GreaterThanOrEqualToThreshold",
            1,
        ),
        (
            "NotifierIteratorAgeAlarm",
            ("AWS/Lambda", "IteratorAge"),
            {"FunctionName": {"Ref": "NotifyEnquiryFunction"}},
            "Maximum",
            "GreaterThanThreshold",
            300_000,
        ),
    ],
)
def test_alarm_watches_its_metric_over_one_five_minute_period(
    cfn: dict[str, Any],
    alarm: str,
    metric: tuple[str, str],
    dimensions: dict[str, Any],
    statistic: str,
    comparison: str,
    threshold: int,
) -> None:
    # Given a translated alarm
    props = cfn["Resources"][alarm]["Properties"]

    # When its metric and threshold are read
    watched = (props["Namespace"], props["MetricName"])

    # Then it watches the right resource's metric, and fires on the first bad 5-minute period
    assert watched == metric
    assert props["Dimensions"] == [{"Name": name, "Value": value} for name, value in dimensions.items()]
    assert props["Statistic"] == statistic
    assert props["ComparisonOperator"] == comparison
    assert props["Threshold"] == threshold
    assert (props["Period"], props["EvaluationPeriods"]) == (300, 1)


def test_template_outputs_api_url_and_table_name(cfn: dict[str, Any]) -> None:
    # Given the translated outputs
    outputs = cfn["Outputs"]

    # When the API URL is read
    api_url = outputs["ApiUrl"]["Value"]["Fn::Sub"]

    # Then it is the full POST /enquiries endpoint; the table, dead-letter queue and topic are exported too
    assert api_url == "https://${EnquiriesApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/enquiries"
    assert outputs["TableName"]["Value"] == {"Ref": "EnquiriesTable"}
    assert outputs["DeadLetterQueueUrl"]["Value"] == {"Ref": "NotificationDeadLetterQueue"}
    assert outputs["AlertTopicArn"]["Value"] == {"Ref": "AlertTopic"}


def test_template_passes_cfn_lint() -> None:
    # Given the template and the pinned cfn-lint installed beside this interpreter
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    assert cfn_lint.exists(), f"{cfn_lint} is missing: install requirements.txt"

    # When cfn-lint checks it (informational findings included)
    result = subprocess.run(  # noqa: S603 - a fixed argument list
        [str(cfn_lint), "--include-checks", "I", "--", str(TEMPLATE_PATH)],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        check=False,
    )

    # Then it reports nothing
    assert result.returncode == 0, result.stdout + result.stderr


def test_functions_use_the_projects_own_libraries_layer(cfn: dict[str, Any]) -> None:
    # Given the translated template, the template itself and the layer's pinned requirements
    resources = cfn["Resources"]
    template = load_template()
    layer = template["Resources"]["LibrariesLayer"]
    layer_pins = (REPO_ROOT / "layers" / "libraries" / "requirements.txt").read_text()
    bundled = (REPO_ROOT / "functions" / "requirements.txt").read_text()

    # Then both functions take Powertools first from the layer sam build makes for arm64 /
    # python3.13 (layers/libraries/Makefile), and neither a public layer nor an SSM lookup is left
    assert layer["Metadata"] == {"BuildMethod": "makefile", "BuildArchitecture": "arm64"}
    assert layer["Properties"]["ContentUri"] == "layers/libraries/"
    assert layer["Properties"]["CompatibleRuntimes"] == ["python3.13"]
    assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]
    for name in ("SubmitEnquiryFunction", "NotifyEnquiryFunction"):
        first_layer = resources[name]["Properties"]["Layers"][0]["Ref"]  # SAM appends a hash to the id
        assert first_layer.startswith("LibrariesLayer")
        assert resources[first_layer]["Type"] == "AWS::Lambda::LayerVersion"
        assert template["Resources"][name]["Metadata"] == {"BuildMethod": "makefile"}
    assert "PowertoolsLayerArn" not in template["Parameters"]
    assert "AWS::SSM" not in (REPO_ROOT / "template.yaml").read_text()
    assert "aws-lambda-powertools==" in layer_pins
    assert "aws-lambda-powertools==" not in bundled
    # pydantic is in neither: no function imports it (tests/test_build.py checks that on the build)
    assert "pydantic==" not in layer_pins
    assert "pydantic==" not in bundled


def test_time_zone_data_is_only_in_the_notifiers_layer(cfn: dict[str, Any]) -> None:
    # Given the translated template and the two requirements files sam build installs
    resources = cfn["Resources"]
    layer_ids = [
        name for name, resource in resources.items() if resource["Type"] == "AWS::Lambda::LayerVersion"
    ]
    bundled = (REPO_ROOT / "functions" / "requirements.txt").read_text()
    layer_pins = (REPO_ROOT / "layers" / "timezone-data" / "requirements.txt").read_text()
    template = load_template()["Resources"]["TimeZoneDataLayer"]

    # Then the notifier gets tzdata from its own layer, built by sam build for arm64 / python3.13,
    # and the submission function, which works in UTC, carries neither the layer nor tzdata
    [time_zone_layer] = [name for name in layer_ids if name.startswith("TimeZoneDataLayer")]
    assert template["Metadata"] == {"BuildMethod": "makefile", "BuildArchitecture": "arm64"}
    assert template["Properties"]["ContentUri"] == "layers/timezone-data/"
    assert resources["NotifyEnquiryFunction"]["Properties"]["Layers"][1:] == [{"Ref": time_zone_layer}]
    assert {"Ref": time_zone_layer} not in resources["SubmitEnquiryFunction"]["Properties"]["Layers"]
    assert "tzdata==" in layer_pins
    assert "tzdata" not in bundled.split("Not here, on purpose:")[0]
    assert not any(line.startswith("tzdata") for line in bundled.splitlines())


# --- Versions and SnapStart (README, "Performance") ------------------------------------------------
# The submission function is reached through its alias `live`, which SAM moves to a new version when
# the function's hash changes. AWS::LanguageExtensions writes PUBLISHED_WITH out before SAM hashes the
# function; the translator here does not run that transform, so these tests do what it documents:
# https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/intrinsic-function-reference-ToJsonString.html


def _parameter_values(template: dict[str, Any], changes: dict[str, str]) -> dict[str, str]:
    values = {name: str(spec.get("Default", "")) for name, spec in template["Parameters"].items()}
    return values | changes


def _with_language_extensions(template: dict[str, Any], values: dict[str, str]) -> dict[str, Any]:
    """The template as AWS::LanguageExtensions hands it on: each Fn::ToJsonString replaced by the JSON
    text of its object, with references to parameters replaced by their values."""

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            if set(node) == {"Ref"} and node["Ref"] in values:
                return values[node["Ref"]]
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(value) for value in node]
        return node

    def expand(node: Any) -> Any:
        if isinstance(node, dict):
            if set(node) == {"Fn::ToJsonString"}:
                return json.dumps(resolve(node["Fn::ToJsonString"]), separators=(",", ":"))
            return {key: expand(value) for key, value in node.items()}
        if isinstance(node, list):
            return [expand(value) for value in node]
        return node

    expanded: dict[str, Any] = expand(template)
    return expanded


def _deployed(**changes: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The template translated as CloudFormation would for these parameter values, and the values."""
    template = load_template()
    values = _parameter_values(template, changes)
    template = _with_language_extensions(template, values)
    template["Globals"]["Function"]["CodeUri"] = "s3://artifacts-bucket/enquiries.zip"
    for name, resource in template["Resources"].items():
        if resource["Type"] == "AWS::Serverless::LayerVersion":
            resource["Properties"]["ContentUri"] = f"s3://artifacts-bucket/{name}.zip"
    translator = Translator(None, Parser(), boto_session=boto3.Session(region_name="eu-west-2"))
    translated = translator.translate(template, parameter_values=values, get_managed_policy_map=lambda: {})
    return translated, values


def _condition_holds(cfn: dict[str, Any], name: str, values: dict[str, str]) -> bool:
    """A condition of the template, evaluated for these parameter values (Fn::Equals, Fn::Not)."""

    def evaluate(node: Any) -> Any:
        if isinstance(node, dict) and set(node) == {"Ref"}:
            return values[node["Ref"]]
        if isinstance(node, dict) and "Fn::Equals" in node:
            left, right = (evaluate(side) for side in node["Fn::Equals"])
            return left == right
        if isinstance(node, dict) and "Fn::Not" in node:
            return not evaluate(node["Fn::Not"][0])
        if isinstance(node, dict) and "Fn::And" in node:
            return all(evaluate(part) for part in node["Fn::And"])
        if isinstance(node, dict) and set(node) == {"Condition"}:
            return evaluate(cfn["Conditions"][node["Condition"]])
        return node

    return bool(evaluate(cfn["Conditions"][name]))


def _submit_version(cfn: dict[str, Any]) -> str:
    """The logical id of the version SAM publishes for the submission function (its hash)."""
    (version,) = [
        name
        for name, resource in _resources_of_type(cfn, "AWS::Lambda::Version").items()
        if resource["Properties"]["FunctionName"] == {"Ref": "SubmitEnquiryFunction"}
    ]
    return version


def _parameter_refs(node: Any, parameters: set[str], conditions: dict[str, Any]) -> set[str]:
    """The parameters `node` refers to, through the conditions of any Fn::If in it too."""
    if isinstance(node, list):
        return set().union(*(_parameter_refs(value, parameters, conditions) for value in node))
    if not isinstance(node, dict):
        return set()
    found: set[str] = set()
    if node.get("Ref") in parameters:
        found.add(node["Ref"])
    if "Fn::If" in node:
        found |= _parameter_refs(conditions[node["Fn::If"][0]], parameters, conditions)
    if "Fn::Sub" in node and isinstance(node["Fn::Sub"], str):
        found |= {name for name in re.findall(r"\$\{([A-Za-z0-9]+)\}", node["Fn::Sub"]) if name in parameters}
    return found | set().union(*(_parameter_refs(value, parameters, conditions) for value in node.values()))


def test_snapstart_parameter_is_an_off_by_default_switch() -> None:
    # Given the template's SnapStart parameter
    parameter = load_template()["Parameters"]["SnapStart"]

    # When its allowed values and default are read
    allowed = (parameter["AllowedValues"], parameter["Default"])

    # Then it is a plain switch, off unless the deployer turns it on
    assert allowed == (["true", "false"], "false")


@pytest.mark.parametrize(("snapstart", "apply_on"), [("false", "None"), ("true", "PublishedVersions")])
def test_snapstart_parameter_sets_snapstart_on_the_submission_function_only(
    snapstart: str, apply_on: str
) -> None:
    # Given the template translated with SnapStart off, then on
    cfn, values = _deployed(SnapStart=snapstart)
    resources = cfn["Resources"]

    # When the functions' SnapStart settings are read, choosing the branch the condition picks
    setting = resources["SubmitEnquiryFunction"]["Properties"]["SnapStart"]["ApplyOn"]
    condition, when_true, when_false = setting["Fn::If"]
    chosen = when_true if _condition_holds(cfn, condition, values) else when_false

    # Then the submission function snapshots its published versions only when the parameter says so,
    # and the notifier, which no visitor waits for, never does
    assert chosen == apply_on
    assert "SnapStart" not in resources["NotifyEnquiryFunction"]["Properties"]


@pytest.mark.parametrize("snapstart", ["false", "true"])
def test_visitors_reach_the_submission_function_through_its_alias(snapstart: str) -> None:
    # Given the template translated with SnapStart off, then on
    cfn, _ = _deployed(SnapStart=snapstart)
    resources = cfn["Resources"]

    # When the API's integration, the invoke permission and the alias are read
    (integration,) = [
        operation["x-amazon-apigateway-integration"]
        for operations in resources["EnquiriesApi"]["Properties"]["Body"]["paths"].values()
        for operation in operations.values()
    ]
    permissions = _resources_of_type(cfn, "AWS::Lambda::Permission")
    alias = resources["SubmitEnquiryFunctionAliaslive"]
    version = _submit_version(cfn)

    # Then API Gateway invokes the alias, never $LATEST (which has no snapshot), the alias points at
    # the version SAM published, and the version the alias leaves is deleted rather than kept (a
    # snapshot is billed for every version that exists)
    assert "${SubmitEnquiryFunctionAliaslive}" in integration["uri"]["Fn::Sub"]
    assert [p["Properties"]["FunctionName"] for p in permissions.values()] == [
        {"Ref": "SubmitEnquiryFunctionAliaslive"}
    ]
    assert alias["Properties"]["FunctionVersion"] == {"Fn::GetAtt": [version, "Version"]}
    assert resources[version]["DeletionPolicy"] == "Delete"


def test_published_with_names_every_parameter_the_submission_function_uses() -> None:
    # Given the submission function's properties, with the Globals it inherits (its events and its
    # role's policies are not part of a version), and its PUBLISHED_WITH
    template = load_template()
    parameters = set(template["Parameters"])
    properties = template["Resources"]["SubmitEnquiryFunction"]["Properties"]
    variables = properties["Environment"]["Variables"]
    published_with = variables["PUBLISHED_WITH"]["Fn::ToJsonString"]
    configuration = [template["Globals"]["Function"]] + [
        value for key, value in properties.items() if key not in {"Events", "Policies", "Environment"}
    ]
    configuration.append({k: v for k, v in variables.items() if k != "PUBLISHED_WITH"})

    # When the parameters the configuration refers to are collected
    used = _parameter_refs(configuration, parameters, template["Conditions"])

    # Then PUBLISHED_WITH names each of them, under its own name: none can change without a new
    # version that the alias moves to
    assert set(published_with) == used
    assert all(value == {"Ref": name} for name, value in published_with.items())


@pytest.mark.parametrize(
    "parameter",
    sorted(
        load_template()["Resources"]["SubmitEnquiryFunction"]["Properties"]["Environment"]["Variables"][
            "PUBLISHED_WITH"
        ]["Fn::ToJsonString"]
    ),
)
def test_a_parameter_change_publishes_a_new_version_for_the_alias(parameter: str) -> None:
    # Given the template deployed with its defaults
    before, values = _deployed()
    allowed = load_template()["Parameters"][parameter].get("AllowedValues")
    changed = next(v for v in allowed if v != values[parameter]) if allowed else values[parameter] + "1"

    # When one parameter the submission function uses is changed
    after, _ = _deployed(**{parameter: changed})

    # Then SAM publishes a new version and moves the alias to it, so visitors get the new setting
    assert _submit_version(after) != _submit_version(before)
    assert after["Resources"]["SubmitEnquiryFunctionAliaslive"]["Properties"]["FunctionVersion"] == {
        "Fn::GetAtt": [_submit_version(after), "Version"]
    }


def test_a_change_the_function_does_not_see_publishes_no_version() -> None:
    # Given the template deployed with its defaults
    before, _ = _deployed()

    # When only parameters outside the function's configuration change (the alerts' address, the
    # API's throttling)
    after, _ = _deployed(AlertEmail="ops@example.com", ApiThrottleRateLimit="9")

    # Then the version stays: no snapshot is taken, and none billed, for nothing
    assert _submit_version(after) == _submit_version(before)


def test_api_refusals_alarm_fires_on_a_client_that_keeps_the_stage_throttle_busy(cfn: dict[str, Any]) -> None:
    # Given the alarm on the HTTP API's 4xx answers (its own 429s when the stage throttle is exceeded)
    template = load_template()
    props = cfn["Resources"]["ApiClientErrorsAlarm"]["Properties"]
    rate = template["Parameters"]["ApiThrottleRateLimit"]["Default"]

    # When a client sends one request a second more than the throttle allows, for one period
    refused_in_a_period = 1 * props["Period"]

    # Then the alarm watches the API's stage, and those refusals alone cross its threshold, while a
    # visitor's mistakes (a few 422s) do not
    assert (props["Namespace"], props["MetricName"], props["Statistic"]) == ("AWS/ApiGateway", "4xx", "Sum")
    assert props["Dimensions"] == [
        {"Name": "ApiId", "Value": {"Ref": "EnquiriesApi"}},
        {"Name": "Stage", "Value": "$default"},
    ]
    assert props["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert 10 < props["Threshold"] <= refused_in_a_period < rate * props["Period"]
    assert props["AlarmActions"] == [{"Ref": "AlertTopic"}]


def test_notification_cap_is_a_parameter_the_notifier_reads_and_alarms_on(cfn: dict[str, Any]) -> None:
    # Given the template's cap on clinic emails a day, and the notifier's environment
    template = load_template()
    parameter = template["Parameters"]["NotificationDailyCap"]
    variables = cfn["Resources"]["NotifyEnquiryFunction"]["Properties"]["Environment"]["Variables"]
    alarm = cfn["Resources"]["NotificationCapAlarm"]["Properties"]

    # When the notifier's settings are read with the parameter's default
    settings = load_settings({"TABLE_NAME": "t", "NOTIFICATION_DAILY_CAP": str(parameter["Default"])})

    # Then a clinic's busy day fits under the default, the notifier gets the parameter, and an alarm
    # watches the metric the notifier counts held-back emails in
    assert parameter["Default"] >= 200
    assert settings.notification_daily_cap == parameter["Default"]
    assert variables["NOTIFICATION_DAILY_CAP"] == {"Ref": "NotificationDailyCap"}
    assert (alarm["Namespace"], alarm["MetricName"]) == ("Enquiries", "NotificationCapped")
    assert "Condition" not in cfn["Resources"]["NotificationCapAlarm"]


def test_every_alarm_on_our_metrics_watches_this_stacks_service(cfn: dict[str, Any]) -> None:
    # Given every alarm on the functions' own metrics (Powertools' namespace, the service dimension)
    namespace = load_template()["Globals"]["Function"]["Environment"]["Variables"][
        "POWERTOOLS_METRICS_NAMESPACE"
    ]
    alarms = {
        name: resource["Properties"]
        for name, resource in cfn["Resources"].items()
        if resource["Type"] == "AWS::CloudWatch::Alarm"
        and resource["Properties"].get("Namespace") == namespace
    }
    assert alarms
    # Then each watches this stack's service: the functions publish under POWERTOOLS_SERVICE_NAME, the
    # stack's name, so an alarm on any other service would never see data (and two stacks would share)
    for name, properties in alarms.items():
        dimensions = {d["Name"]: d["Value"] for d in properties.get("Dimensions", [])}
        assert dimensions.get("service") == {"Ref": "AWS::StackName"}, name
