"""The SAM template: what it deploys (translated to plain CloudFormation, offline), that it lints
clean, and that the local table built from it matches it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from samtranslator.public.parser import Parser
from samtranslator.public.translator import Translator

from devserver.template_tables import TEMPLATE_PATH, create_table_from_template, load_template

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
)


@pytest.fixture(scope="module")
def cfn() -> dict[str, Any]:
    """template.yaml translated by the SAM translator, as CloudFormation would receive it.

    No AWS access: the region comes from a bare boto3 Session, and no managed policy is looked up by
    name (the template names none). `sam package` would replace the local CodeUri with an S3 URI,
    which the translator requires, so the test does the same.
    """
    return _translate(load_template())


def _translate(template: dict[str, Any]) -> dict[str, Any]:
    template["Globals"]["Function"]["CodeUri"] = "s3://artifacts-bucket/enquiries.zip"
    translator = Translator(None, Parser(), boto_session=boto3.Session(region_name="eu-west-2"))
    return translator.translate(template, parameter_values={}, get_managed_policy_map=lambda: {})


def _resources_of_type(cfn: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {name: res for name, res in cfn["Resources"].items() if res["Type"] == resource_type}


def _statements(policy_document: dict[str, Any]) -> list[dict[str, Any]]:
    statements = policy_document["Statement"]
    return statements if isinstance(statements, list) else [statements]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_submit_function_runtime_architecture_and_sizing() -> None:
    # Given the SAM template
    template = load_template()

    # When it is translated to CloudFormation
    translated = _translate(template)

    # Then the submit function runs the handler on Python 3.13 / arm64 with the documented sizing
    props = translated["Resources"]["SubmitEnquiryFunction"]["Properties"]
    assert translated["Resources"]["SubmitEnquiryFunction"]["Type"] == "AWS::Lambda::Function"
    assert props["Runtime"] == "python3.13"
    assert props["Architectures"] == ["arm64"]
    assert props["Handler"] == "enquiries.api.submit.lambda_handler"
    assert props["MemorySize"] == 512
    assert props["Timeout"] == 10


def test_submit_function_handler_resolves_to_a_module_under_code_uri() -> None:
    # Given the handler's dotted path and the functions/ code root (CodeUri)
    template = load_template()
    code_root = REPO_ROOT / template["Globals"]["Function"]["CodeUri"]
    module, _, function = template["Resources"]["SubmitEnquiryFunction"]["Properties"]["Handler"].rpartition(
        "."
    )

    # When it is mapped to a source file
    source = code_root / Path(*module.split(".")).with_suffix(".py")

    # Then that file exists and defines the handler (read as text: importing it needs settings)
    assert source.is_file(), f"{source} is missing"
    assert f"def {function}(" in source.read_text(encoding="utf-8")


def test_submit_function_environment_has_every_contract_setting(cfn: dict[str, Any]) -> None:
    # Given the translated submit function
    variables = cfn["Resources"]["SubmitEnquiryFunction"]["Properties"]["Environment"]["Variables"]

    # When its environment is compared with the contract's Configuration section
    missing = [name for name in CONTRACT_SETTINGS if name not in variables]

    # Then every setting is there, the table name from the table resource, powertools configured
    assert missing == []
    assert variables["TABLE_NAME"] == {"Ref": "EnquiriesTable"}
    assert variables["POWERTOOLS_SERVICE_NAME"] == "enquiries"
    assert variables["POWERTOOLS_LOG_LEVEL"] == "INFO"


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
    for optional in (
        "SuccessUrl",
        "ClinicPhone",
        "SesConfigurationSet",
        "TurnstileSecret",
        "TurnstileVerifyUrl",
    ):
        assert defaults[optional] == "", optional
    assert parameters["TurnstileSecret"]["NoEcho"] is True
    for required in ("AllowedOrigins", "ClinicEmail", "SenderEmail"):
        assert "Default" not in parameters[required], required


def test_allowed_origins_parameter_accepts_origins_and_rejects_paths_and_spaces() -> None:
    # Given the AllowedOrigins parameter's pattern (CloudFormation anchors it to the whole value)
    pattern = re.compile(load_template()["Parameters"]["AllowedOrigins"]["AllowedPattern"])

    # When origins lists are checked
    accepted = ["https://www.example.com", "https://a.example,http://localhost:3000"]
    rejected = ["", "https://www.example.com/contact", "https://a.example, https://b.example", "example.com"]

    # Then only comma-separated bare origins pass (the CORS !Split does not trim spaces)
    assert all(pattern.fullmatch(value) for value in accepted)
    assert not any(pattern.fullmatch(value) for value in rejected)


def test_submit_role_allows_only_put_item_on_the_table(cfn: dict[str, Any]) -> None:
    # Given the role the submit function runs as
    role_ref = cfn["Resources"]["SubmitEnquiryFunction"]["Properties"]["Role"]
    role = cfn["Resources"][role_ref["Fn::GetAtt"][0]]

    # When its inline policies are collected
    statements = [
        s for policy in role["Properties"]["Policies"] for s in _statements(policy["PolicyDocument"])
    ]

    # Then the only grant is dynamodb:PutItem on the table (plus the managed basic-logging policy)
    assert [(s["Effect"], _as_list(s["Action"]), s["Resource"]) for s in statements] == [
        ("Allow", ["dynamodb:PutItem"], {"Fn::GetAtt": ["EnquiriesTable", "Arn"]})
    ]
    assert role["Properties"]["ManagedPolicyArns"] == [
        "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
    ]


def test_template_grants_no_ses_permission_anywhere(cfn: dict[str, Any]) -> None:
    # Given every IAM role and policy in the translated template
    documents = [
        policy["PolicyDocument"]
        for role in _resources_of_type(cfn, "AWS::IAM::Role").values()
        for policy in role["Properties"].get("Policies", [])
    ] + [
        policy["Properties"]["PolicyDocument"]
        for policy in _resources_of_type(cfn, "AWS::IAM::Policy").values()
    ]

    # When their actions are listed
    actions = [action for doc in documents for s in _statements(doc) for action in _as_list(s["Action"])]

    # Then none is an SES action (email is a later, separate function)
    assert actions
    assert not [action for action in actions if str(action).lower().startswith(("ses:", "*"))]


def test_enquiries_table_is_durable_and_streams_new_images(cfn: dict[str, Any]) -> None:
    # Given the translated table
    table = cfn["Resources"]["EnquiriesTable"]

    # When its properties are read
    props = table["Properties"]

    # Then it is on-demand, backed up, encrypted, expiring, streaming, and never deleted with the stack
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
        "maxAge": 600,
    }
    assert otherwise == {"Ref": "AWS::NoValue"}


def test_http_api_routes_enquiries_and_everything_else_to_the_function(cfn: dict[str, Any]) -> None:
    # Given the translated HTTP API's routes
    paths = cfn["Resources"]["EnquiriesApi"]["Properties"]["Body"]["paths"]

    # When the integrations are listed
    routes = {
        (path, method): operation["x-amazon-apigateway-integration"]
        for path, operations in paths.items()
        for method, operation in operations.items()
    }

    # Then POST/OPTIONS /enquiries and the $default catch-all reach the function with payload 2.0
    assert set(routes) == {
        ("/enquiries", "post"),
        ("/enquiries", "options"),
        ("$default", "x-amazon-apigateway-any-method"),
    }
    for integration in routes.values():
        assert integration["payloadFormatVersion"] == "2.0"
        assert "${SubmitEnquiryFunction.Arn}" in integration["uri"]["Fn::Sub"]


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


def test_submit_function_logs_have_a_retention(cfn: dict[str, Any]) -> None:
    # Given the translated log groups
    log_groups = _resources_of_type(cfn, "AWS::Logs::LogGroup")

    # When the submit function's is looked up
    group = log_groups["SubmitEnquiryLogGroup"]["Properties"]

    # Then it is the function's own group, with a retention
    assert group["LogGroupName"] == {"Fn::Sub": "/aws/lambda/${SubmitEnquiryFunction}"}
    assert group["RetentionInDays"] == 90


def test_template_outputs_api_url_and_table_name(cfn: dict[str, Any]) -> None:
    # Given the translated outputs
    outputs = cfn["Outputs"]

    # When the API URL is read
    api_url = outputs["ApiUrl"]["Value"]["Fn::Sub"]

    # Then it is the full POST /enquiries endpoint, and the table name is exported too
    assert api_url == "https://${EnquiriesApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/enquiries"
    assert outputs["TableName"]["Value"] == {"Ref": "EnquiriesTable"}


@mock_aws
def test_create_table_from_template_matches_the_template() -> None:
    # Given an emulated DynamoDB and the template's table declaration
    client = boto3.client("dynamodb", region_name="eu-west-2")
    declared = load_template()["Resources"]["EnquiriesTable"]["Properties"]

    # When the table is created from the template
    create_table_from_template(client, "enquiries-test")

    # Then its key schema, billing, stream, encryption and TTL are the template's
    table = client.describe_table(TableName="enquiries-test")["Table"]
    ttl = client.describe_time_to_live(TableName="enquiries-test")["TimeToLiveDescription"]
    assert table["TableStatus"] == "ACTIVE"
    assert table["KeySchema"] == declared["KeySchema"]
    assert table["AttributeDefinitions"] == declared["AttributeDefinitions"]
    assert table["BillingModeSummary"]["BillingMode"] == declared["BillingMode"]
    assert table["StreamSpecification"] == {
        "StreamEnabled": True,
        "StreamViewType": declared["StreamSpecification"]["StreamViewType"],
    }
    assert table["SSEDescription"]["Status"] == "ENABLED"
    assert ttl == {
        "TimeToLiveStatus": "ENABLED",
        "AttributeName": declared["TimeToLiveSpecification"]["AttributeName"],
    }


def test_load_template_reads_short_form_intrinsics_as_long_form() -> None:
    # Given the template on disk, which uses !Ref, !GetAtt, !Sub, !Split and !If
    text = TEMPLATE_PATH.read_text(encoding="utf-8")
    assert all(tag in text for tag in ("!Ref ", "!GetAtt ", "!Sub ", "!Split ", "!If"))

    # When it is loaded
    template = load_template()

    # Then the tags are plain CloudFormation values, and callers get their own copy
    function = template["Resources"]["SubmitEnquiryFunction"]["Properties"]
    assert function["Environment"]["Variables"]["TABLE_NAME"] == {"Ref": "EnquiriesTable"}
    assert function["Policies"][0]["Statement"][0]["Resource"] == {"Fn::GetAtt": ["EnquiriesTable", "Arn"]}
    template["Resources"].clear()
    assert load_template()["Resources"]


def test_template_passes_cfn_lint() -> None:
    # Given the template and the pinned cfn-lint installed beside this interpreter
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    assert cfn_lint.exists(), f"{cfn_lint} is missing: install requirements-dev.txt"

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
