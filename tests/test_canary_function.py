"""The scheduled canary (template.yaml CanaryFunction, enquiries/canary_function.py): its schedule,
role and alarm on the translated template, and its handler against moto, posting through a loopback
HTTP server to the real submission handler, with the real notifier run on each stored enquiry as
the table's stream would run it. Also `enquiries --stack NAME canary`, the same path on demand."""

from __future__ import annotations

import functools
import http.server
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from aws_lambda_powertools import Metrics
from aws_permissions import CALLS, CANARY, OPERATOR, RECORDER, _resources_by_setting, operator_problems
from click.testing import CliRunner
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends
from support import (
    ALLOWED_ORIGIN,
    REGION,
    SECRET_NAME,
    TABLE_NAME,
    FakeContext,
    MakeHandler,
    MakeNotifier,
    stored_items,
)
from support import with_json_body as json_event
from test_iam import assert_granted
from test_operator_cli import clinic  # noqa: F401 - a fixture
from test_template import _deployed, _translate

from emulator.template_tables import load_template
from enquiries import canary, canary_function, canary_metric, canary_run
from enquiries.settings import load_settings
from enquiries_cli import functions_adapter
from enquiries_cli.cli import cli
from enquiries_cli.target import aws_session

CLINIC = "reception@example-clinic.co.uk"
SENDER = "enquiries@example-clinic.co.uk"
STACK = "clinic-enquiries"


@pytest.fixture(scope="module")
def cfn() -> dict[str, Any]:
    return _translate(load_template())


# -- the template ---------------------------------------------------------------------------------


def test_canary_schedule_runs_the_canary_daily_by_default_and_not_at_all_when_off(
    cfn: dict[str, Any],
) -> None:
    # Given the translated schedule, its role and the CanaryRate parameter
    resources = cfn["Resources"]
    schedule = resources["CanarySchedule"]
    [policy] = resources["CanaryScheduleRole"]["Properties"]["Policies"]
    parameter = load_template()["Parameters"]["CanaryRate"]

    # When the schedule's target, rate and condition are read
    target = schedule["Properties"]["Target"]

    # Then it invokes the canary at CanaryRate (a day by default), as a role that may invoke the canary
    # only, and none of the canary's resources exist when the rate is "off"
    assert schedule["Properties"]["ScheduleExpression"] == {"Ref": "CanaryRate"}
    assert schedule["DependsOn"] == "CanaryLogGroup"  # the first run logs to the stack's own group
    assert parameter["Default"] == "rate(1 day)"
    assert "off" in parameter["AllowedValues"]
    assert target["Arn"] == {"Fn::GetAtt": [CANARY, "Arn"]}
    assert target["RoleArn"] == {"Fn::GetAtt": ["CanaryScheduleRole", "Arn"]}
    assert policy["PolicyDocument"]["Statement"] == [
        {
            "Sid": "InvokeCanary",
            "Effect": "Allow",
            "Action": "lambda:InvokeFunction",
            "Resource": {"Fn::GetAtt": [CANARY, "Arn"]},
        }
    ]
    off, _ = _deployed(CanaryRate="off")
    assert not {"CanarySchedule", "CanaryScheduleRole", CANARY, "CanaryRole", "CanaryAlarm"} & set(
        name for name, res in off["Resources"].items() if res.get("Condition") != "RunsCanary"
    )
    assert all(
        resources[name]["Condition"] == "RunsCanary"
        for name in (
            "CanarySchedule",
            "CanaryScheduleRole",
            CANARY,
            "CanaryRole",
            "CanaryAlarm",
            "CanaryLogGroup",
        )
    )
    assert cfn["Conditions"]["RunsCanary"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "CanaryRate"}, "off"]}]}


def test_canary_posts_to_the_api_url_the_stack_outputs(cfn: dict[str, Any]) -> None:
    # Given the canary's environment and the stack's ApiUrl output
    variables = cfn["Resources"][CANARY]["Properties"]["Environment"]["Variables"]
    # When the URL it posts to is compared with the output
    # Then they are one URL, and the function reads it through the settings table
    assert variables["CANARY_API_URL"] == cfn["Outputs"]["ApiUrl"]["Value"]
    assert variables["CLIENT_ADDRESS_SECRET_ARN"] == {"Ref": "ClientAddressSecret"}
    assert cfn["Outputs"]["CanaryFunctionName"]["Value"] == {"Ref": CANARY}
    assert load_settings({"TABLE_NAME": "t", "CANARY_API_URL": "https://a.example/enquiries"}).canary_api_url


@pytest.mark.parametrize(
    ("rate", "hours"),
    [("rate(1 day)", 24), ("rate(12 hours)", 12), ("rate(6 hours)", 6), ("rate(1 hour)", 1)],
)
def test_canary_alarm_fires_when_the_canary_fails_or_does_not_run(rate: str, hours: int) -> None:
    # Given the alarm as deployed with this rate
    deployed, values = _deployed(CanaryRate=rate)
    props = deployed["Resources"]["CanaryAlarm"]["Properties"]

    # When its window is resolved for the rate
    def chosen(value: Any) -> Any:
        from test_template import _condition_holds

        while isinstance(value, dict) and "Fn::If" in value:
            condition, yes, no = value["Fn::If"]
            value = yes if _condition_holds(deployed, condition, values) else no
        return value

    periods, to_alarm = chosen(props["EvaluationPeriods"]), chosen(props["DatapointsToAlarm"])

    # Then it watches the canary's result for this stack, an hour at a time, over the rate and an
    # hour, every hour breaching: missing data (no run) breaches, and so does a 0 (a failed run)
    assert (props["Namespace"], props["MetricName"]) == (canary_metric.NAMESPACE, canary_metric.NAME)
    assert props["Dimensions"] == [
        {"Name": canary_metric.SERVICE_DIMENSION, "Value": {"Ref": "AWS::StackName"}}
    ]
    assert props["AlarmName"] == {"Fn::Sub": "${AWS::StackName}-canary"}
    assert (props["Statistic"], props["ComparisonOperator"], props["Threshold"]) == (
        "Minimum",
        "LessThanThreshold",
        1,
    )
    assert props["TreatMissingData"] == "breaching"
    assert props["Period"] == 3600
    assert periods == to_alarm == hours + 1
    # And CloudWatch accepts the window: at most 7 days for periods of an hour or more
    assert props["Period"] * periods <= 7 * 86400


def test_canary_role_allows_only_its_key_its_reads_and_its_deletes(cfn: dict[str, Any]) -> None:
    # Given the canary's role
    from test_template import _role_of

    role = _role_of(cfn, CANARY)
    [policy] = role["Properties"]["Policies"]

    # When its statements are read
    statements = {s["Sid"]: (s["Action"], s["Resource"]) for s in policy["PolicyDocument"]["Statement"]}

    # Then it reads the address-hashing key and reads and deletes enquiries, nothing more: no email, no
    # writes, no guard table (its metrics go to its log)
    assert statements == {
        "ReadAddressHashKey": ("secretsmanager:GetSecretValue", {"Ref": "ClientAddressSecret"}),
        "FollowAndDeleteTheCanary": (
            ["dynamodb:GetItem", "dynamodb:DeleteItem"],
            {"Fn::GetAtt": ["EnquiriesTable", "Arn"]},
        ),
    }


@pytest.mark.parametrize(
    ("snapstart", "canary_rate", "warms_up"),
    [
        ("true", "off", True),
        ("true", "rate(1 day)", False),
        ("false", "off", False),
        ("false", "rate(1 day)", False),
    ],
)
def test_snapstart_warm_up_only_while_the_canary_is_off(
    snapstart: str, canary_rate: str, warms_up: bool
) -> None:
    # Given a deploy with SnapStart and the canary on or off
    from test_template import _condition_holds

    deployed, values = _deployed(SnapStart=snapstart, CanaryRate=canary_rate)
    # When the warm-up schedule's condition is evaluated
    condition = deployed["Resources"]["SnapStartWarmUpSchedule"]["Condition"]
    # Then the warm-up runs only when SnapStart is on and no canary invokes the live alias through the API
    assert _condition_holds(deployed, condition, values) is warms_up


# -- the handler, against moto ----------------------------------------------------------------------


@dataclass
class Api:
    """The stack's public API on loopback: the real submission handler, then the real notifier on each
    enquiry it stores (as the table's stream would), unless `notifies` is off."""

    url: str
    notifies: bool = True
    answered: list[int] = field(default_factory=list)


@pytest.fixture
def api(
    make_handler: MakeHandler, make_notifier: MakeNotifier, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Api]:
    monkeypatch.setenv("CLINIC_EMAIL", CLINIC)
    monkeypatch.setenv("SENDER_EMAIL", SENDER)
    boto3.client("ses", region_name=REGION).verify_email_identity(EmailAddress=SENDER)
    submit = make_handler()
    notifier = make_notifier()
    state = Api(url="")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            headers = {name.lower(): value for name, value in self.headers.items()}
            answer = submit(json_event("submit-json.json", body, headers=headers))
            state.answered.append(answer["statusCode"])
            enquiry_id = json.loads(answer["body"]).get("id")
            if state.notifies and enquiry_id:
                event = functions_adapter.notifier_event([enquiry_id], region=REGION, source="stream")
                notifier.lambda_handler(event, FakeContext(remaining_millis=120_000))
            self.send_response(answer["statusCode"])
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(answer["body"].encode())

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/enquiries"
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def canary_env(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CANARY_API_URL", api.url)
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", STACK)


def _emf(output: str) -> dict[str, Any]:
    """The one embedded-metric-format record of the canary's result the run printed (the local
    notifier's thread may print its own record, of the canary's email, before or after it)."""
    records = [json.loads(line) for line in output.splitlines() if '"_aws"' in line]
    [record] = [record for record in records if canary_metric.NAME in record]
    assert isinstance(record, dict)
    return record


def _run(make: Callable[..., canary_run.Canary] = canary_run.Canary) -> dict[str, Any]:
    from enquiries.aws_clients import dynamodb_client, secretsmanager_client

    dynamodb_client.cache_clear()
    secretsmanager_client.cache_clear()
    return canary_function.run(
        load_settings(required=canary_function.REQUIRED_SETTINGS),
        dynamodb=dynamodb_client(),
        secrets=secretsmanager_client(),
        metrics=Metrics(namespace=canary_metric.NAMESPACE, service=STACK),
        make=make,
    )


def test_canary_function_sends_follows_deletes_and_publishes_success(
    dynamodb: Any,
    api: Api,
    canary_env: None,
    cfn: dict[str, Any],
    aws_env: dict[str, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given the stack's API on loopback and the canary's settings as the template gives them
    capsys.readouterr()
    # When the scheduled canary runs
    with RECORDER.listening() as calls:
        answer = _run()
    made_calls = [made for made in calls if made.role == CANARY]
    # Then every step worked, its one email went to the simulator (never to staff, never acknowledged)
    # and nothing is left in the table
    assert answer == {"succeeded": True, "failedStep": None}
    sent = list(ses_backends[DEFAULT_ACCOUNT_ID][REGION].sent_messages)
    assert [set(message.destinations) for message in sent] == [{canary.SIMULATOR_ADDRESS}]
    assert stored_items(dynamodb) == []
    # And it published 1 and each step's time, under this stack's service dimension
    record = _emf(capsys.readouterr().out)
    assert record[canary_metric.NAME] == [1.0]
    assert record[canary_metric.SERVICE_DIMENSION] == STACK
    assert [record[canary_metric.STEP_SECONDS[step]][0] >= 0 for step in canary_run.STEPS] == [True] * 4
    # And each AWS call it made is granted to its role, on the resource it named
    assert {(m.service, m.operation) for m in made_calls} == {
        ("secretsmanager", "GetSecretValue"),
        ("dynamodb", "GetItem"),
        ("dynamodb", "DeleteItem"),
    }
    assert all((m.service, m.operation) in CALLS for m in made_calls)
    environment = {**aws_env, "CLIENT_ADDRESS_SECRET_ARN": SECRET_NAME, "TABLE_NAME": TABLE_NAME}
    assert_granted(CANARY, made_calls, _resources_by_setting(cfn, CANARY, environment), "unused")


def _fake_clocks(make: Callable[..., canary_run.Canary]) -> Callable[..., canary_run.Canary]:
    """The canary with a clock that a poll's sleep moves on, so that its 60 s pass at once."""
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    return functools.partial(make, clock=lambda: now[0], sleep=sleep)


@pytest.mark.parametrize(
    ("breakage", "step"),
    [("origin", canary_run.SENT), ("no notifier", canary_run.EMAILED)],
)
def test_canary_function_failed_step_publishes_zero_and_names_the_step(
    dynamodb: Any,
    api: Api,
    canary_env: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    breakage: str,
    step: str,
) -> None:
    # Given an API that refuses the website's origin, or a notifier that never runs
    if breakage == "origin":
        monkeypatch.setenv("ALLOWED_ORIGINS", "https://moved.example")
    else:
        api.notifies = False
    capsys.readouterr()
    # When the canary runs
    answer = _run(_fake_clocks(canary_run.Canary))
    # Then it names the failed step, publishes 0, and leaves no enquiry behind
    assert answer == {"succeeded": False, "failedStep": step}
    assert _emf(capsys.readouterr().out)[canary_metric.NAME] == [0.0]
    assert stored_items(dynamodb) == []


class _Unreadable:
    """A DynamoDB client whose reads fail (as a throttled or unreachable table's would); its deletes
    go through."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def get_item(self, **_: Any) -> Any:
        raise ConnectionError("the table did not answer")

    def delete_item(self, **params: Any) -> Any:
        return self._client.delete_item(**params)


def test_canary_function_unreadable_table_publishes_zero_and_names_the_step(
    dynamodb: Any, api: Api, canary_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a table the canary cannot read
    from enquiries.aws_clients import dynamodb_client, secretsmanager_client

    dynamodb_client.cache_clear()
    secretsmanager_client.cache_clear()
    capsys.readouterr()
    # When the canary runs
    answer = canary_function.run(
        load_settings(required=canary_function.REQUIRED_SETTINGS),
        dynamodb=_Unreadable(dynamodb_client()),
        secrets=secretsmanager_client(),
        metrics=Metrics(namespace=canary_metric.NAMESPACE, service=STACK),
    )
    # Then the run ends normally: it names the step, publishes 0, and still deletes its enquiry
    assert answer == {"succeeded": False, "failedStep": canary_run.STORED}
    assert _emf(capsys.readouterr().out)[canary_metric.NAME] == [0.0]
    assert stored_items(dynamodb) == []


def test_canary_function_valid_proof_skips_turnstile_and_a_forged_one_does_not(
    dynamodb: Any, make_handler: MakeHandler
) -> None:
    # Given Turnstile on, with a verifier that cannot be reached (a request that asked it would fail)
    submit = make_handler(
        TURNSTILE_SECRET="0x4AAA-test", TURNSTILE_VERIFY_URL="http://127.0.0.1:9/siteverify"
    )
    body = {
        "name": "Enquiries canary",
        "email": canary.SIMULATOR_ADDRESS,
        "message": "A test.",
        "consent": True,
    }
    from support import SECRET_VALUE

    key = canary.derive_key(SECRET_VALUE)
    import time

    def post(proof_key: bytes, idempotency_key: str) -> dict[str, Any]:
        proof = canary.make_proof(proof_key, idempotency_key=idempotency_key, now=time.time())
        headers = {"idempotency-key": idempotency_key, "origin": ALLOWED_ORIGIN, canary.HEADER: proof}
        return submit(json_event("submit-json.json", body, headers=headers))

    # When the canary posts with its proof and no token, and a visitor with a forged proof
    valid = post(key, "canary-valid")
    forged = post(canary.derive_key("a guess"), "canary-forged")

    # Then the canary is stored as the canary without a captcha, and the forged one is refused for it
    assert valid["statusCode"] == 201, valid
    [stored] = stored_items(dynamodb)
    assert stored[canary.ATTRIBUTE] is True
    assert forged["statusCode"] == 422
    assert "captcha" in json.loads(forged["body"])["fields"]


# -- `enquiries --stack NAME canary` --------------------------------------------------------------


def test_canary_command_against_a_stack_runs_the_path_with_the_operators_policy(
    dynamodb: Any, api: Api
) -> None:
    # Given a deployed stack (its outputs in moto) whose API is on loopback
    from test_operator_cli import stack_template

    outputs = {
        "TableName": TABLE_NAME,
        "AddressSecretArn": SECRET_NAME,
        "ApiUrl": api.url,
        "CorsAllowedOrigins": ALLOWED_ORIGIN,
    }
    boto3.client("cloudformation", region_name=REGION).create_stack(
        StackName=STACK, TemplateBody=stack_template(outputs)
    )
    aws_session.cache_clear()
    # When the operator runs the canary against it
    with RECORDER.listening() as calls:
        result = CliRunner().invoke(cli, ["--stack", STACK, "--region", REGION, "canary"])
    made_calls = [made for made in calls if made.role == OPERATOR]
    # Then each step is printed ok with its time, within the 60 s, and nothing is left
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert [line[6:28].strip() for line in lines] == list(canary_run.STEPS)
    assert float(lines[-1].split()[-2]) < 60
    assert stored_items(dynamodb) == []
    # And each call it made is one the operator's policy allows, on the resource it names
    assert {made.operation for made in made_calls} == {
        "DescribeStacks",
        "GetSecretValue",
        "GetItem",
        "DeleteItem",
    }
    assert [problem for made in made_calls for problem in operator_problems(made)] == []


def test_canary_function_enquiry_left_behind_is_never_listed_exported_counted_or_handed_out(
    clinic: Any,  # noqa: F811 - the fixture
    api: Api,
    canary_env: None,
    dynamodb: Any,
) -> None:
    # Given an ordinary enquiry, and a scheduled canary whose delete did not happen (its enquiry is
    # left in the table, emailed to the simulator and marked)
    from test_operator_cli import JANE

    ordinary = clinic.store(email=JANE)

    class Undeleted(canary_run.Canary):
        def _delete(self, enquiry_id: str) -> tuple[bool, str]:
            return True, ""

    assert _run(Undeleted)["succeeded"] is True
    [left] = [item["id"] for item in stored_items(dynamodb) if item.get(canary.ATTRIBUTE) is True]
    # When the subcommands that read enquiries run against the stack
    results = [
        clinic.run("list"),
        clinic.run("export", "--format", "json"),
        clinic.run("subject-access", "--email", canary.SIMULATOR_ADDRESS),
        clinic.run("subject-access", "--email", JANE),
    ]
    counted = clinic.run("stats")
    # Then the canary's enquiry is in none of them, and the ordinary one is counted alone
    for result in results:
        assert result.exit_code == 0, result.output
        assert left not in result.stdout
    assert ordinary in results[0].stdout
    assert counted.stdout.splitlines()[-1].split() == ["total", "1"]
