"""Shared fixtures: a moto-backed AWS with the tables built from template.yaml, the real submission
handler and notifier, and the functions' log. Helpers and constants are in support.py.

Every AWS call the functions' code or the operator's command makes, in any test, is checked against
the permissions of the role that makes it (aws_permissions.py): a test whose code made a call its
role is not granted fails, whatever it asserts itself."""

from __future__ import annotations

import atexit
import functools
import io
import logging
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from aws_permissions import (
    RECORDER,
    ChildCalls,
    permission_problems,
    record_every_call,
    record_in_child_processes,
)
from moto import mock_aws
from moto_transport import MotoTransport
from support import (
    BASE_ENV,
    GUARD_TABLE_NAME,
    REGION,
    SECRET_NAME,
    SECRET_VALUE,
    TABLE_NAME,
    FakeContext,
    Handler,
    MadeNotifier,
    MakeHandler,
    MakeNotifier,
)

from devserver.environment import SETTING_NAMES
from emulator import moto_transactions
from emulator.template_tables import create_table_from_template

if TYPE_CHECKING:
    from enquiries.api.services import Services
    from enquiries.intake import IntakeStore
    from enquiries.notify.acknowledgement import RetargetableMailer
    from enquiries.notify.ledger import NotificationLedger
    from enquiries.notify.mail_settings import MailSettings

# DynamoDB transactions are atomic and isolated; moto's are not unless patched (see the module).
moto_transactions.install()

# Before any botocore session is made: every client of every session reports its calls, in this
# process and in the Pythons the tests start (the local server).
record_every_call()
CHILD_CALLS = ChildCalls(Path(tempfile.mkdtemp(prefix="aws-calls-")))
atexit.register(shutil.rmtree, CHILD_CALLS.directory, ignore_errors=True)
record_in_child_processes(CHILD_CALLS.directory)

# Settings a developer's shell might carry that would change what the tests see.
_CLEARED = (*SETTING_NAMES, "AWS_ENDPOINT_URL", "AWS_PROFILE")


@pytest.fixture(autouse=True)
def aws_calls_are_granted(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fails the test when the functions or the operator's command made an AWS call that the role
    making it (template.yaml) does not grant on the resource it names. The test's own calls (setup,
    seeding, reading back) are not checked, nor the operations a `not_granted` mark names."""
    marker = request.node.get_closest_marker("not_granted")
    expected = set(marker.args) if marker else set()
    calls = RECORDER.begin()
    yield
    # A local server's calls are read after each test of its module (a late one, of its notifier's
    # thread, may be read after the next test).
    problems = sorted(
        {
            problem
            for made in [*calls, *CHILD_CALLS.new_calls()]
            if f"{made.service}.{made.operation}" not in expected
            for problem in permission_problems(made)
        }
    )
    if problems:
        pytest.fail("AWS calls not granted in template.yaml:\n" + "\n".join(problems), pytrace=False)


@pytest.fixture
def lambda_context() -> FakeContext:
    return FakeContext()


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name in _CLEARED:
        monkeypatch.delenv(name, raising=False)
    for name, value in BASE_ENV.items():
        monkeypatch.setenv(name, value)
    return dict(BASE_ENV)


@pytest.fixture(scope="session")
def emulator() -> Iterator[None]:
    """What every test's moto shares, made once per test process: boto3's default session (moto
    otherwise makes a new one per test, and each loads its service models again, about 0.1 s a
    client), and the key material of the KMS key a table's encryption creates (an RSA key made per
    key, up to 0.5 s; DynamoDB's server-side encryption never uses it)."""
    from moto.kms.utils import generate_private_key

    with pytest.MonkeyPatch.context() as patch:
        # Where moto 5.2.5's KMS key makes its key (an upgrade that moves it fails here, by name).
        patch.setattr("moto.kms.models.generate_private_key", functools.cache(generate_private_key))
        yield


@pytest.fixture
def dynamodb(emulator: None, aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A moto DynamoDB with the enquiries and guard tables created from template.yaml's own
    properties, and the address-hashing secret the template would create. Every test starts from
    an empty AWS: moto forgets everything (every service's state) between tests. The submission
    path's aws_json clients reach the same moto (moto_transport.py)."""
    from enquiries import aws_json
    from enquiries.aws_clients import (
        dynamodb_client,
        secretsmanager_client,
        submission_dynamodb,
        submission_secrets,
    )

    factories = (dynamodb_client, secretsmanager_client, submission_dynamodb, submission_secrets)
    monkeypatch.setattr(aws_json, "HttpTransport", MotoTransport)
    # The functions' session stays (its loaded models); their clients are made afresh in each test.
    with mock_aws(config={"core": {"reset_boto3_session": False}}):
        for factory in factories:
            factory.cache_clear()
        client = boto3.client("dynamodb", region_name=REGION)
        create_table_from_template(client, TABLE_NAME)
        create_table_from_template(client, GUARD_TABLE_NAME, logical_id="GuardTable")
        boto3.client("secretsmanager", region_name=REGION).create_secret(
            Name=SECRET_NAME, SecretString=SECRET_VALUE
        )
        yield client
        for factory in factories:
            factory.cache_clear()


@pytest.fixture
def make_handler(dynamodb: Any, monkeypatch: pytest.MonkeyPatch, lambda_context: FakeContext) -> MakeHandler:
    """The real submission handler, initialised as on Lambda (settings from the environment, with
    these extra ones; the secrets read once), on the real services unless given: all of them
    (`services`), or the real ones with another store (`store`); on `clock` and with the Lambda
    `context` if given."""

    def make(
        services: Services | None = None,
        *,
        store: IntakeStore | None = None,
        clock: Callable[[], datetime] | None = None,
        context: Any = None,
        **settings: str,
    ) -> Handler:
        from enquiries.api import submit
        from enquiries.api.services import services_from
        from enquiries.submission import utc_now

        for name, value in settings.items():
            monkeypatch.setenv(name, value)

        def services_for(loaded: Any) -> Services:
            made = services if services is not None else services_from(loaded)
            if store is not None:
                made.store = store
            return made

        handler = submit.handler_for(submit.init(services_for=services_for, clock=clock or utc_now))
        # FakeContext has what Powertools reads of a LambdaContext.
        return lambda event: handler(event, context or lambda_context)  # type: ignore[arg-type]

    return make


@pytest.fixture
def handler(make_handler: MakeHandler) -> Handler:
    return make_handler()


@pytest.fixture
def make_notifier(dynamodb: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[MakeNotifier]:
    """The real notifier, initialised as on Lambda (settings from the environment, with these extra
    ones), with the real mailer, ledger and clock unless given; the SES client is made afresh, in
    moto, for each test."""
    from enquiries.notify.mailer import sesv2_client

    def make(
        *,
        mailer_for: Callable[[MailSettings], RetargetableMailer] | None = None,
        ledger_for: Callable[[str], NotificationLedger] | None = None,
        clock: Callable[[], float] | None = None,
        **settings: str,
    ) -> MadeNotifier:
        for name, value in settings.items():
            monkeypatch.setenv(name, value)
        from enquiries.notify import handler
        from enquiries.notify.ledger import DynamoNotificationLedger

        parts = handler.init(
            mailer_for=mailer_for or handler.ses_mailer,
            ledger_for=ledger_for or DynamoNotificationLedger,
            clock=clock or time.time,
        )
        return MadeNotifier(parts, handler.handler_for(parts))

    sesv2_client.cache_clear()
    yield make
    sesv2_client.cache_clear()


@pytest.fixture
def log_output() -> Iterator[io.StringIO]:
    """Everything the functions log, exactly as Powertools formats it (JSON lines)."""
    from enquiries.log import logger

    stream = io.StringIO()
    capture = logging.StreamHandler(stream)
    capture.setFormatter(logger.registered_formatter)
    stdlib_logger = logging.getLogger(logger.name)
    stdlib_logger.addHandler(capture)
    yield stream
    stdlib_logger.removeHandler(capture)
