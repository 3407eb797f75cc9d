"""`enquiries doctor` against a stack in moto (SES identities, SNS, alarms, the queue, the canary's
metric), with an API on loopback that answers CORS preflights as the deployed one does, and the DNS
answers given by the test: a healthy setup passes, and each broken condition is its own FAIL line."""

from __future__ import annotations

import fnmatch
import http.server
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from click.testing import CliRunner, Result
from moto import mock_aws
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends
from moto.sns.models import sns_backends
from support import REGION
from test_operator_cli import stack_template

from emulator.template_tables import load_template
from enquiries import canary_metric
from enquiries_cli import dns_records, target
from enquiries_cli.cli import cli

STACK = "clinic-enquiries"
DOMAIN = "clinic.example"
MAIL_FROM = f"mail.{DOMAIN}"
CLINIC = f"reception@{DOMAIN}"
WEBSITE = f"https://www.{DOMAIN}"
HEALTHY_DNS = {
    MAIL_FROM: ["v=spf1 include:amazonses.com ~all"],
    f"_dmarc.{DOMAIN}": ["v=DMARC1; p=none; rua=mailto:dmarc@clinic.example"],
}


class PreflightApi(http.server.BaseHTTPRequestHandler):
    """A preflight as API Gateway's CORS answers it: 204, with the CORS headers only for an allowed
    origin (https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-cors.html)."""

    allowed: ClassVar[set[str]] = set()

    def do_OPTIONS(self) -> None:
        origin = self.headers.get("Origin", "")
        self.send_response(204)
        if origin in self.allowed:
            self.send_header("Access-Control-Allow-Origin", origin)
            self.send_header("Access-Control-Allow-Methods", "OPTIONS,POST")
            self.send_header("Access-Control-Allow-Headers", "content-type,idempotency-key")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


@dataclass
class Stack:
    """A deployed stack in moto, healthy until a test breaks one thing."""

    api_url: str
    queue_url: str
    topic_arn: str
    dns: dict[str, list[str]] = field(default_factory=lambda: dict(HEALTHY_DNS))
    account: dict[str, Any] = field(
        default_factory=lambda: {
            "SendingEnabled": True,
            "ProductionAccessEnabled": True,
            "EnforcementStatus": "HEALTHY",
            "SendQuota": {"Max24HourSend": 50000.0, "MaxSendRate": 14.0, "SentLast24Hours": 12.0},
        }
    )
    mail_from: dict[str, Any] = field(
        default_factory=lambda: {
            "MailFromDomain": MAIL_FROM,
            "MailFromDomainStatus": "SUCCESS",
            "BehaviorOnMxFailure": "USE_DEFAULT_VALUE",
        }
    )

    def run(self) -> Result:
        return CliRunner().invoke(cli, ["--stack", STACK, "--region", REGION, "doctor"])


def _lines(result: Result) -> list[str]:
    return [line for line in result.stdout.splitlines() if line.strip()]


def _fails(result: Result) -> list[str]:
    return [line for line in _lines(result) if line.startswith("FAIL")]


@pytest.fixture
def api() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), PreflightApi)
    PreflightApi.allowed = {WEBSITE}
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/enquiries"
    server.shutdown()
    server.server_close()


def _put_canary_result(value: float) -> None:
    boto3.client("cloudwatch", region_name=REGION).put_metric_data(
        Namespace=canary_metric.NAMESPACE,
        MetricData=[
            {
                "MetricName": canary_metric.NAME,
                "Dimensions": [{"Name": k, "Value": v} for k, v in canary_metric.dimensions(STACK).items()],
                "Timestamp": datetime.now(UTC),
                "Value": value,
            }
        ],
    )


@pytest.fixture
def stack(aws_env: dict[str, str], api: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    with mock_aws():
        boto3.client("sesv2", region_name=REGION).create_email_identity(
            EmailIdentity=DOMAIN, DkimSigningAttributes={"NextSigningKeyLength": "RSA_2048_BIT"}
        )
        sns = boto3.client("sns", region_name=REGION)
        topic_arn = sns.create_topic(Name=f"{STACK}-AlertTopic")["TopicArn"]
        sns.subscribe(TopicArn=topic_arn, Protocol="email", Endpoint="manager@clinic.example")
        queue_url = boto3.client("sqs", region_name=REGION).create_queue(QueueName=f"{STACK}-dlq")["QueueUrl"]
        cloudwatch = boto3.client("cloudwatch", region_name=REGION)
        for name in ("visitor-errors", "notification-dead-letters"):
            cloudwatch.put_metric_alarm(
                AlarmName=f"{STACK}-{name}",
                Namespace="AWS/Lambda",
                MetricName="Errors",
                Statistic="Sum",
                Period=300,
                EvaluationPeriods=1,
                Threshold=1,
                ComparisonOperator="GreaterThanOrEqualToThreshold",
                AlarmDescription=f"The {name} alarm.",
            )
        _put_canary_result(1)
        outputs = {
            target.TABLE: "enquiries",
            target.DEAD_LETTER_QUEUE: queue_url,
            target.API_URL: api,
            target.ALLOWED_ORIGINS: WEBSITE,
            target.ALERT_TOPIC: topic_arn,
            target.SENDER_IDENTITY: DOMAIN,
            target.CLINIC_ADDRESSES: CLINIC,
            target.CANARY: f"{STACK}-CanaryFunction",
        }
        boto3.client("cloudformation", region_name=REGION).create_stack(
            StackName=STACK, TemplateBody=stack_template(outputs)
        )
        deployed = Stack(api_url=api, queue_url=queue_url, topic_arn=topic_arn)
        monkeypatch.setattr(dns_records, "txt_records", lambda name: deployed.dns.get(name, []))
        session = target.aws_session(None)

        # moto has no SES GetAccount, and leaves MAIL FROM out of GetEmailIdentity: the test's answers.
        def get_account(**kwargs: Any) -> tuple[AWSResponse, dict[str, Any]]:
            return AWSResponse("https://email.local", 200, {}, None), dict(deployed.account)

        def add_mail_from(parsed: dict[str, Any], **kwargs: Any) -> None:
            parsed["MailFromAttributes"] = dict(deployed.mail_from)

        session.register("before-call.sesv2.GetAccount", get_account)
        session.register("after-call.sesv2.GetEmailIdentity", add_mail_from)
        try:
            yield deployed
        finally:
            session.unregister("before-call.sesv2.GetAccount", get_account)
            session.unregister("after-call.sesv2.GetEmailIdentity", add_mail_from)


def test_doctor_healthy_stack_is_all_ok_and_exits_0(stack: Stack) -> None:
    # Given a stack whose every part is set up
    # When doctor runs
    result = stack.run()
    # Then every check is ok, one line each, and the exit status is 0
    assert result.exit_code == 0, result.output
    lines = _lines(result)
    assert lines
    assert all(line.startswith("ok  ") for line in lines), lines
    checked = {line[6:].split(": ", 1)[0] for line in lines}
    assert checked >= {
        f"CORS from {WEBSITE}",
        "dead-letter queue",
        "sender identity",
        "DKIM",
        "SPF (MAIL FROM)",
        "DMARC",
        "SES sending",
        "SES sandbox",
        "sending quota",
        "alert email",
        "alarms",
        "canary",
    }


def _unverified_identity(stack: Stack) -> None:
    ses_backends[DEFAULT_ACCOUNT_ID][REGION].email_identities[DOMAIN].verification_status = "PENDING"


def _sandbox_with_unverified_clinic(stack: Stack) -> None:
    stack.account["ProductionAccessEnabled"] = False
    boto3.client("cloudformation", region_name=REGION).update_stack(
        StackName=STACK,
        TemplateBody=stack_template({**_outputs(), target.CLINIC_ADDRESSES: f"{CLINIC},owner@gmail.example"}),
    )


def _outputs() -> dict[str, str]:
    stacks = boto3.client("cloudformation", region_name=REGION).describe_stacks(StackName=STACK)["Stacks"]
    return {output["OutputKey"]: output["OutputValue"] for output in stacks[0]["Outputs"]}


def _unconfirmed_subscription(stack: Stack) -> None:
    for subscription in sns_backends[DEFAULT_ACCOUNT_ID][REGION].subscriptions.values():
        subscription.arn = "PendingConfirmation"


def _alarm_in_alarm(stack: Stack) -> None:
    boto3.client("cloudwatch", region_name=REGION).set_alarm_state(
        AlarmName=f"{STACK}-visitor-errors", StateValue="ALARM", StateReason="test"
    )


def _message_in_dead_letter_queue(stack: Stack) -> None:
    boto3.client("sqs", region_name=REGION).send_message(QueueUrl=stack.queue_url, MessageBody="{}")


def _origin_the_api_refuses(stack: Stack) -> None:
    boto3.client("cloudformation", region_name=REGION).update_stack(
        StackName=STACK,
        TemplateBody=stack_template(
            {**_outputs(), target.ALLOWED_ORIGINS: f"{WEBSITE},https://old.clinic.example"}
        ),
    )


def _failed_canary(stack: Stack) -> None:
    _put_canary_result(0)  # the newest data point


def _dkim_off(stack: Stack) -> None:
    identity = ses_backends[DEFAULT_ACCOUNT_ID][REGION].email_identities[DOMAIN]
    identity.dkim_attributes["Status"] = "PENDING"


def _mail_from_refusing(stack: Stack) -> None:
    stack.mail_from.update(MailFromDomainStatus="FAILED", BehaviorOnMxFailure="REJECT_MESSAGE")


def _quota_used_up(stack: Stack) -> None:
    stack.account["SendQuota"]["SentLast24Hours"] = 50000.0


def _sending_paused(stack: Stack) -> None:
    stack.account.update(SendingEnabled=False, EnforcementStatus="SHUTDOWN")


@pytest.mark.parametrize(
    ("broken", "failing", "says"),
    [
        (_unverified_identity, "sender identity", "SES has not verified clinic.example"),
        (_sandbox_with_unverified_clinic, "SES sandbox", "owner@gmail.example is not verified"),
        (_unconfirmed_subscription, "alert email", "nobody has confirmed the alert email"),
        (_alarm_in_alarm, f"alarm {STACK}-visitor-errors", "in ALARM since"),
        (_message_in_dead_letter_queue, "dead-letter queue", f"enquiries --stack {STACK} resend"),
        (_origin_the_api_refuses, "CORS from https://old.clinic.example", "AllowedOrigins"),
        (_failed_canary, "canary", "did not get through"),
        (_dkim_off, "DKIM", "publish the three CNAME records"),
        (_mail_from_refusing, "SPF (MAIL FROM)", "refuse every email"),
        (_quota_used_up, "sending quota", "SES refuses more"),
        (_sending_paused, "SES sending", "SES has paused sending"),
    ],
    ids=lambda value: getattr(value, "__name__", None),
)
def test_doctor_each_broken_condition_is_its_own_fail_line_and_exit_1(
    stack: Stack, broken: Callable[[Stack], None], failing: str, says: str
) -> None:
    # Given a healthy stack with one thing broken
    broken(stack)
    # When doctor runs
    result = stack.run()
    # Then that check, and only it, FAILs, saying what is wrong and what to do; the exit status is 1
    assert result.exit_code == 1, result.output
    fails = _fails(result)
    assert len(fails) == 1, _lines(result)
    assert fails[0].startswith(f"FAIL  {failing}: ")
    assert says in fails[0]
    assert result.stderr.strip() == "Error: 1 check failed: see the FAIL lines above"


@pytest.mark.parametrize(
    ("sent", "maximum", "line"),
    [
        (
            41000.0,
            50000.0,
            "warn  sending quota: 41000 of 50000 emails a day used in the last 24 hours: request",
        ),
        (41000.0, -1.0, "ok    sending quota: the account has no daily sending limit"),
    ],
    ids=["most of it used", "unlimited"],
)
def test_doctor_sending_quota_warns_before_it_runs_out(
    stack: Stack, sent: float, maximum: float, line: str
) -> None:
    # Given an account that has sent this much of its daily quota
    stack.account["SendQuota"].update(SentLast24Hours=sent, Max24HourSend=maximum)
    # When doctor runs
    result = stack.run()
    # Then the quota line says so, and nothing fails
    assert result.exit_code == 0, result.output
    assert any(text.startswith(line) for text in _lines(result)), _lines(result)


def test_doctor_canary_without_a_recent_result_fails(stack: Stack) -> None:
    # Given a stack with a canary that has published nothing (it stopped running)
    from moto.cloudwatch.models import cloudwatch_backends

    cloudwatch_backends[DEFAULT_ACCOUNT_ID][REGION].metric_data.clear()
    # When doctor runs
    result = stack.run()
    # Then the canary line FAILs and says how to try the path now
    assert _fails(result) == [
        "FAIL  canary: no canary has run in the last 36 hours: run "
        f"`enquiries --stack {STACK} canary` to try the path now, and check that the schedule is on."
    ]


def test_doctor_stack_without_a_canary_skips_it_with_a_reason(stack: Stack) -> None:
    # Given a stack deployed without the scheduled canary
    outputs = _outputs()
    del outputs[target.CANARY]
    boto3.client("cloudformation", region_name=REGION).update_stack(
        StackName=STACK, TemplateBody=stack_template(outputs)
    )
    # When doctor runs
    result = stack.run()
    # Then the canary is skipped with a sentence, and nothing fails
    assert result.exit_code == 0
    assert [line for line in _lines(result) if "canary" in line] == [
        "skip  canary: this stack runs no scheduled canary, so there is no daily proof that an "
        "enquiry reaches the inbox"
    ]


@pytest.mark.parametrize(
    ("dns", "line"),
    [
        (
            {MAIL_FROM: HEALTHY_DNS[MAIL_FROM]},
            "warn  DMARC: clinic.example has no DMARC record",
        ),
        (
            {**HEALTHY_DNS, MAIL_FROM: ["v=spf1 -all"]},
            f"warn  SPF (MAIL FROM): {MAIL_FROM} has no SPF record that includes amazonses.com",
        ),
    ],
    ids=["no DMARC", "SPF without SES"],
)
def test_doctor_missing_dns_records_warn_without_failing(
    stack: Stack, dns: dict[str, list[str]], line: str
) -> None:
    # Given the sender's domain without one of the records a deliverability guide asks for
    stack.dns = dns
    # When doctor runs
    result = stack.run()
    # Then that check warns, with what to publish, and the exit status stays 0
    assert result.exit_code == 0, result.output
    warnings = [text for text in _lines(result) if text.startswith("warn")]
    assert len(warnings) == 1
    assert warnings[0].startswith(line)


def test_doctor_unreadable_dns_warns(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given DNS that cannot be read now
    def unreadable(name: str) -> list[str]:
        raise dns_records.DnsUnreadable("LifetimeTimeout")

    monkeypatch.setattr(dns_records, "txt_records", unreadable)
    # When doctor runs
    result = stack.run()
    # Then both DNS checks warn that they could not read, and nothing fails
    assert result.exit_code == 0, result.output
    warnings = [text for text in _lines(result) if text.startswith("warn")]
    assert [text.split(":", 1)[0] for text in warnings] == ["warn  SPF (MAIL FROM)", "warn  DMARC"]
    assert all("could not read the DNS records" in text for text in warnings)


def test_doctor_without_the_sns_permission_says_to_attach_the_policy(stack: Stack) -> None:
    # Given AWS refusing one of doctor's reads
    from botocore.exceptions import ClientError

    def refuse(**kwargs: Any) -> None:
        raise ClientError(
            {"Error": {"Code": "AuthorizationError", "Message": "no"}}, "ListSubscriptionsByTopic"
        )

    session = target.aws_session(None)
    session.register("before-call.sns.ListSubscriptionsByTopic", refuse)
    try:
        # When doctor runs
        result = stack.run()
    finally:
        session.unregister("before-call.sns.ListSubscriptionsByTopic", refuse)
    # Then that check FAILs with what to do, and the others still run
    assert _fails(result) == [
        "FAIL  alert email: could not check: AWS refused ListSubscriptionsByTopic (AuthorizationError): "
        "attach the stack's OperatorPolicyArn policy to your role (docs/clinic.md)"
    ]
    assert any(line.startswith("ok    canary") for line in _lines(result))


# -- the permissions doctor needs ----------------------------------------------------------------------

# Each call's IAM action (the Service Authorization Reference: SES v2, SNS, CloudWatch, SQS and
# CloudFormation; see template.yaml's OperatorPolicy) and the ARN it is authorised on.
_ACCOUNT = DEFAULT_ACCOUNT_ID


def _authorised_as(  # noqa: PLR0911 - one return per operation
    service: str, operation: str, params: dict[str, Any], stack: Stack
) -> tuple[str, str]:
    arn = f"arn:aws:{{}}:{REGION}:{_ACCOUNT}:{{}}"
    match (service, operation):
        case ("cloudformation", "DescribeStacks"):
            return "cloudformation:DescribeStacks", arn.format(
                "cloudformation", f"stack/{params['StackName']}/id"
            )
        case ("sesv2", "GetEmailIdentity"):
            return "ses:GetEmailIdentity", arn.format("ses", f"identity/{params['EmailIdentity']}")
        case ("sesv2", "GetAccount" | "ListEmailIdentities"):
            return f"ses:{operation}", "*"
        case ("sns", "ListSubscriptionsByTopic"):
            return "sns:ListSubscriptionsByTopic", str(params["TopicArn"])
        case ("cloudwatch", "DescribeAlarms"):
            return "cloudwatch:DescribeAlarms", arn.format(
                "cloudwatch", f"alarm:{params['AlarmNamePrefix']}*"
            )
        case ("cloudwatch", "GetMetricData"):
            return "cloudwatch:GetMetricData", "*"
        case ("sqs", "GetQueueAttributes"):
            return "sqs:GetQueueAttributes", arn.format("sqs", stack.queue_url.rsplit("/", 1)[1])
    raise AssertionError(f"doctor calls {service}.{operation}: add it to the policy and this table")


def _policy_resources(stack: Stack) -> list[tuple[set[str], str]]:
    """The OperatorPolicy's statements: their actions, and their resource as deployed on `stack`."""
    names = {
        "AWS::Partition": "aws",
        "AWS::Region": REGION,
        "AWS::AccountId": _ACCOUNT,
        "AWS::StackName": STACK,
        "SenderIdentity": DOMAIN,
    }
    refs = {
        "AlertTopic": stack.topic_arn,
        "NotificationDeadLetterQueue.Arn": _authorised_as("sqs", "GetQueueAttributes", {}, stack)[1],
    }

    def resolved(resource: Any) -> str:
        if isinstance(resource, str):
            return resource
        if "Fn::Sub" in resource:
            text = str(resource["Fn::Sub"])
            for name, value in names.items():
                text = text.replace("${" + name + "}", value)
            return text
        if "Ref" in resource:
            return refs.get(resource["Ref"], "unresolved")
        return refs.get(".".join(resource["Fn::GetAtt"]), "unresolved")

    statements = load_template()["Resources"]["OperatorPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    return [
        (
            {statement["Action"]} if isinstance(statement["Action"], str) else set(statement["Action"]),
            resolved(statement["Resource"]),
        )
        for statement in statements
        if "Condition" not in statement
    ]


def test_operator_policy_grants_each_read_doctor_makes_on_its_resource(stack: Stack) -> None:
    # Given every AWS call doctor makes on a stack that has every part to check (a sandbox account,
    # so that it reads the identities too)
    stack.account["ProductionAccessEnabled"] = False
    calls: list[tuple[str, str, dict[str, Any]]] = []

    def remember(params: dict[str, Any], model: Any, **kwargs: Any) -> None:
        calls.append((model.service_model.service_name, model.name, dict(params)))

    session = target.aws_session(None)
    session.register("before-parameter-build", remember)
    try:
        result = stack.run()
    finally:
        session.unregister("before-parameter-build", remember)
    assert result.exit_code == 0, result.output
    # When each is matched with the policy's statements
    statements = _policy_resources(stack)
    needed = {_authorised_as(service, operation, params, stack) for service, operation, params in calls}
    ungranted = [
        (action, resource)
        for action, resource in needed
        if not any(
            action in actions and fnmatch.fnmatchcase(resource, pattern) for actions, pattern in statements
        )
    ]
    # Then the policy grants every one on its resource, and its doctor statements grant nothing doctor
    # does not call
    assert ungranted == []
    doctor_actions = {
        action
        for statement in load_template()["Resources"]["OperatorPolicy"]["Properties"]["PolicyDocument"][
            "Statement"
        ]
        if statement["Sid"].startswith("Doctor")
        for action in ([statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"])
    }
    assert doctor_actions <= {action for action, _ in needed}


# -- against the local server --------------------------------------------------------------------------


def test_doctor_local_server_checks_what_applies_and_skips_the_rest() -> None:
    # Given a running local server (make dev)
    from devserver.launcher import local_server

    with local_server() as server:
        # When doctor runs against it
        result = CliRunner().invoke(cli, ["--local", server.url, "doctor"])
    # Then the server, the API's preflight from each of its origins and the queue are ok, the checks
    # of what only a deployed stack has are skipped, and the exit status is 0
    assert result.exit_code == 0, result.output
    lines = _lines(result)
    assert lines[0] == f"ok    local server: the local server at {server.url} answers"
    assert f"ok    CORS from {server.url}: the API lets the website's form post from here" in lines
    assert "ok    dead-letter queue: empty: no enquiry email was given up on" in lines
    skipped = [line for line in lines if line.startswith("skip")]
    assert [line[6:].split(": ", 1)[0] for line in skipped] == [
        "sender identity",
        "SES account",
        "alert email",
        "alarms",
        "canary",
    ]


def test_doctor_local_server_not_running_fails_with_what_to_do() -> None:
    # Given no server on the port
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"
    # When doctor runs against it
    result = CliRunner().invoke(cli, ["--local", url, "doctor"])
    # Then one FAIL line says so and how to start it, and the exit status is 1
    assert result.exit_code == 1
    assert len(_lines(result)) == 1
    assert _fails(result)[0].startswith(f"FAIL  local server: cannot reach the local server at {url}")
    assert "is `make dev` running?" in _fails(result)[0]


# -- the DNS look-up (dnspython, with its answers stubbed) ---------------------------------------------


def _resolver_answering(outcome: Any) -> type:
    class Resolver:
        """dnspython's Resolver, answering every TXT query with `outcome` (or raising it)."""

        lifetime = 0.0

        def resolve(self, name: str, rdtype: str) -> Any:
            assert rdtype == "TXT"
            if isinstance(outcome, Exception):
                raise outcome
            return outcome

    return Resolver


def test_dns_txt_records_joins_each_records_strings(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a name with a DMARC record split into two strings, and another record
    import dns.resolver

    class Txt:
        def __init__(self, *strings: bytes) -> None:
            self.strings = strings

    answer = [Txt(b"v=DMARC1; ", b"p=reject;"), Txt(b"other")]
    monkeypatch.setattr(dns.resolver, "Resolver", _resolver_answering(answer))
    # When its TXT records are read
    # Then each record is one string
    assert dns_records.txt_records("_dmarc.example.com") == ["v=DMARC1; p=reject;", "other"]


def test_dns_txt_records_of_a_missing_name_are_none_and_a_timeout_is_unreadable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import dns.exception
    import dns.resolver

    # Given a name that does not exist
    missing = dns.resolver.NXDOMAIN()  # type: ignore[no-untyped-call]
    monkeypatch.setattr(dns.resolver, "Resolver", _resolver_answering(missing))
    # When its records are read
    # Then there are none
    assert dns_records.txt_records("_dmarc.example.com") == []
    # Given DNS that does not answer in time
    timeout = dns.exception.Timeout()  # type: ignore[no-untyped-call]
    monkeypatch.setattr(dns.resolver, "Resolver", _resolver_answering(timeout))
    # When the records are read
    # Then they are unreadable, which is not the same as none
    with pytest.raises(dns_records.DnsUnreadable, match="Timeout"):
        dns_records.txt_records("_dmarc.example.com")
