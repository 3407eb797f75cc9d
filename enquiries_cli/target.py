"""Where the command works: a deployed stack (its outputs name the resources) or a running local
server (GET /_dev/aws names its emulator and resources). Both give the same `Target`, so every
subcommand runs the same code, and prints the same output, on either."""

from __future__ import annotations

import functools
import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from enquiries_cli.errors import OperatorError

# The stack outputs the command reads (template.yaml), and the local server's names for them.
TABLE = "TableName"
GUARD_TABLE = "GuardTableName"
NOTIFIER = "NotifyFunctionName"
DEAD_LETTER_QUEUE = "DeadLetterQueueUrl"
ADDRESS_SECRET = "AddressSecretArn"  # noqa: S105 - the output's name, not a secret
# What `doctor` checks (enquiries_cli/doctor.py).
API_URL = "ApiUrl"
ALLOWED_ORIGINS = "CorsAllowedOrigins"
ALERT_TOPIC = "AlertTopicArn"
SENDER_IDENTITY = "SesSenderIdentity"
CLINIC_ADDRESSES = "ClinicAddresses"
CANARY = "CanaryFunctionName"
_LOCAL_KEYS = {
    TABLE: "table_name",
    GUARD_TABLE: "guard_table_name",
    NOTIFIER: "notify_function_name",
    DEAD_LETTER_QUEUE: "dead_letter_queue_url",
    ADDRESS_SECRET: "address_secret_arn",
    API_URL: "api_url",
    ALLOWED_ORIGINS: "allowed_origins",
}
LOCAL_DUMMY_CREDENTIAL = "testing"  # the emulator takes any key; a real one is never sent to it


@dataclass(frozen=True)
class ClientSettings:
    """How to create the target's AWS clients."""

    region: str
    profile: str | None = None
    # Local only: the emulator, and where the local server takes Lambda's Invoke.
    endpoint_url: str | None = None
    lambda_endpoint_url: str | None = None


@dataclass
class Target:
    """The resources one run works on, and clients for them (created on first use, once each)."""

    description: str
    resources: Mapping[str, str]
    settings: ClientSettings
    _missing_hint: str = ""
    _clients: dict[str, Any] = field(default_factory=dict)

    @property
    def region(self) -> str:
        return self.settings.region

    def resource(self, output: str) -> str:
        """A resource's name or URL, or a clear error naming what the target lacks."""
        value = self.resources.get(output)
        if not value:
            raise OperatorError(f"{self.description} has no output {output}{self._missing_hint}")
        return value

    @property
    def table_name(self) -> str:
        return self.resource(TABLE)

    @property
    def guard_table_name(self) -> str:
        return self.resource(GUARD_TABLE)

    @property
    def notifier_name(self) -> str:
        return self.resource(NOTIFIER)

    @property
    def address_secret(self) -> str:
        return self.resource(ADDRESS_SECRET)

    @property
    def dead_letter_queue_url(self) -> str | None:
        return self.resources.get(DEAD_LETTER_QUEUE) or None

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = _create_client(self.settings, service)
        return self._clients[service]


def _create_client(settings: ClientSettings, service: str) -> Any:
    from botocore.config import Config

    session = aws_session(settings.profile)
    if service == "lambda":
        # The notifier may take its whole 120 s timeout (template.yaml), and an Invoke that botocore
        # retried after a read timeout would run the notifier a second time: one attempt, a long wait.
        config = Config(connect_timeout=5, read_timeout=130, retries={"total_max_attempts": 1})
    else:
        config = Config(
            connect_timeout=5, read_timeout=30, retries={"mode": "standard", "total_max_attempts": 5}
        )
    if settings.endpoint_url is None:
        return session.create_client(service, region_name=settings.region, config=config)
    endpoint = settings.lambda_endpoint_url if service == "lambda" else settings.endpoint_url
    return session.create_client(
        service,
        region_name=settings.region,
        endpoint_url=endpoint,
        aws_access_key_id=LOCAL_DUMMY_CREDENTIAL,
        aws_secret_access_key=LOCAL_DUMMY_CREDENTIAL,
        # botocore would send some calls to account-id endpoints that the emulator does not route.
        config=config.merge(Config(account_id_endpoint_mode="disabled")),
    )


@functools.cache
def aws_session(profile: str | None) -> Any:
    """One botocore session per profile: its clients share credentials and loaded service data."""
    import botocore.session

    return botocore.session.Session(profile=profile)


def stack_target(stack_name: str, *, region: str | None, profile: str | None) -> Target:
    """The stack's resources, read from its outputs (cloudformation:DescribeStacks)."""
    from botocore.exceptions import ClientError

    chosen_region = region or aws_session(profile).get_config_variable("region")
    if not chosen_region:
        raise OperatorError("no AWS region: pass --region, or set AWS_REGION or a profile's region")
    settings = ClientSettings(region=str(chosen_region), profile=profile)
    target = Target(
        description=f"the stack {stack_name} ({chosen_region})",
        resources={},
        settings=settings,
        _missing_hint=": deploy this version of template.yaml (sam deploy) to add it",
    )
    try:
        stacks = target.client("cloudformation").describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as error:
        message = str(error.response.get("Error", {}).get("Message", ""))
        if "does not exist" in message:
            raise OperatorError(f"there is no stack named {stack_name} in {chosen_region}") from None
        raise
    outputs = {
        str(output["OutputKey"]): str(output.get("OutputValue", ""))
        for output in (stacks[0].get("Outputs") or [] if stacks else [])
    }
    target.resources = outputs
    return target


def local_target(url: str) -> Target:
    """The local server's emulator and resources, from its GET /_dev/aws."""
    base = url.rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise OperatorError(f"--local takes the local server's URL, like http://127.0.0.1:3000, not {url!r}")
    try:
        with urllib.request.urlopen(base + "/_dev/aws", timeout=10) as response:  # noqa: S310 - http(s) only
            described = json.loads(response.read())
    except urllib.error.HTTPError as error:
        raise OperatorError(
            f"{base} is not an enquiries local server, or an older one (GET /_dev/aws: {error.code})"
        ) from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise OperatorError(
            f"cannot reach the local server at {base} ({reason}): is `make dev` running?"
        ) from None
    except ValueError:
        raise OperatorError(
            f"{base}/_dev/aws did not answer JSON: is it an enquiries local server?"
        ) from None
    if not isinstance(described, dict) or not described.get("endpoint_url") or not described.get("region"):
        raise OperatorError(f"{base}/_dev/aws does not name the emulator's endpoint and region")
    settings = ClientSettings(
        region=str(described["region"]),
        endpoint_url=str(described["endpoint_url"]),
        lambda_endpoint_url=str(described.get("lambda_endpoint_url") or base + "/_dev/lambda"),
    )
    resources = {output: str(described.get(key) or "") for output, key in _LOCAL_KEYS.items()}
    return Target(
        description=f"the local server at {base}",
        resources=resources,
        settings=settings,
        _missing_hint=" (GET /_dev/aws does not name it)",
    )
