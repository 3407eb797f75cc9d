"""Lambda SnapStart (enquiries/snapstart.py): the snapshot's init does the first request's setup, an
ordinary init does not, and a restored copy shares no randomness, connection, credential or secret
with the snapshot. Lambda's hook library (snapshot_restore_py) is not installed here: a stand-in
records what is registered, and the tests run the hooks in the order Lambda does."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support import BASE_ENV, REGION, SECRET_NAME, Handler, body_of, load_event, stored_items
from ulid import ULID

from enquiries import snapstart
from enquiries.aws_clients import (
    aws_session,
    drop_clients,
    dynamodb_client,
    secretsmanager_client,
    submission_dynamodb,
    submission_secrets,
)
from enquiries.stored_secret import StoredSecret

REPO = Path(__file__).resolve().parent.parent
SNAPSHOT_INIT = {"AWS_LAMBDA_INITIALIZATION_TYPE": "snap-start"}
ORDINARY_INIT = {"AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand"}
Hook = tuple[Callable[..., None], tuple[Any, ...]]


class HookLibrary(types.ModuleType):
    """Stands in for snapshot_restore_py: records the hooks, and runs them as Lambda does (before the
    snapshot in reverse order of registration, after a restore in order)."""

    def __init__(self) -> None:
        super().__init__("snapshot_restore_py")
        self.before: list[Hook] = []
        self.after: list[Hook] = []

    def register_before_snapshot(self, func: Callable[..., None], *args: Any) -> None:
        self.before.append((func, args))

    def register_after_restore(self, func: Callable[..., None], *args: Any) -> None:
        self.after.append((func, args))

    def snapshot(self) -> None:
        for func, args in reversed(self.before):
            func(*args)

    def restore(self) -> None:
        for func, args in self.after:
            func(*args)


@pytest.fixture
def hook_library(monkeypatch: pytest.MonkeyPatch) -> HookLibrary:
    library = HookLibrary()
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", library)
    return library


@pytest.fixture
def fresh_clients(aws_env: dict[str, str]) -> Iterator[None]:
    factories = (aws_session, dynamodb_client, secretsmanager_client, submission_dynamodb, submission_secrets)
    for cached in factories:
        cached.cache_clear()
    yield
    for cached in factories:
        cached.cache_clear()


class RotatingSecretStore:
    """A Secrets Manager client whose secret value the test replaces, as an operator rotating it."""

    def __init__(self, value: str) -> None:
        self.value = value
        self.reads = 0

    def get_secret_value(self, SecretId: str) -> dict[str, str]:  # botocore's parameter name
        self.reads += 1
        return {"SecretString": self.value}


def _in_restored_copies(copies: int, work: Callable[[], str]) -> list[str]:
    """What `work` returns in each of `copies` processes forked from this one, as Lambda restores
    copies of one snapshot."""
    results = []
    for _ in range(copies):
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the copy: do the work, hand back the answer, leave without pytest's teardown
            os.close(read_end)
            os.write(write_end, work().encode())
            os._exit(0)
        os.close(write_end)
        with os.fdopen(read_end) as answer:
            results.append(answer.read())
        os.waitpid(pid, 0)
    return results


def test_snapshot_init_is_recognised_by_lambdas_initialization_type() -> None:
    # Given the initialisation types Lambda reports
    # When each is asked about
    verdicts = {
        kind: snapstart.snapshot_init({"AWS_LAMBDA_INITIALIZATION_TYPE": kind})
        for kind in ("snap-start", "on-demand", "provisioned-concurrency")
    }

    # Then only SnapStart's init is one, and outside Lambda (no variable) none is
    assert verdicts == {"snap-start": True, "on-demand": False, "provisioned-concurrency": False}
    assert snapstart.snapshot_init({}) is False


def _after_init(script: str, environment: dict[str, str]) -> Any:
    """What `script` prints last (a dict's repr), run in a fresh Python with the function's settings and
    `environment`, as Lambda starts one."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(REPO / "functions"),
        "TABLE_NAME": "enquiries",
        "AWS_REGION": "eu-west-2",
        "AWS_DEFAULT_REGION": "eu-west-2",
        **environment,
    }
    result = subprocess.run(  # noqa: S603 - this interpreter and a fixed script
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True, timeout=60
    )
    return eval(result.stdout.strip().splitlines()[-1])  # noqa: S307 - our own script's dict


@pytest.mark.parametrize(("environment", "warmed"), [(SNAPSHOT_INIT, True), (ORDINARY_INIT, False)])
def test_only_the_snapshots_init_does_the_first_requests_setup(
    environment: dict[str, str], warmed: bool
) -> None:
    # Given a fresh Python process, as Lambda starts one, with the function's settings
    script = (
        "import sys\n"
        "from enquiries.settings import load_settings\n"
        "from enquiries.snapstart import prepare_snapshot\n"
        "prepare_snapshot(load_settings(), [])\n"
        "from enquiries.aws_clients import submission_dynamodb\n"
        "modules = ['email_validator', 'phonenumbers', 'python_multipart.multipart', 'enquiries.api.pages']\n"
        "print({'clients': submission_dynamodb.cache_info().currsize,"
        " 'modules': [m for m in modules if m in sys.modules]})\n"
    )
    keys = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}

    # When its init ends with the SnapStart step
    loaded = _after_init(script, {**keys, **environment})

    # Then the snapshot's init has made the AWS clients and loaded the validators and what only some
    # requests import; an ordinary init, which a visitor waits for, has done none of it
    if warmed:
        assert loaded == {
            "clients": 1,
            "modules": [
                "email_validator",
                "phonenumbers",
                "python_multipart.multipart",
                "enquiries.api.pages",
            ],
        }
    else:
        assert loaded == {"clients": 0, "modules": []}


@pytest.mark.parametrize(
    ("keys", "botocore_in_snapshot"),
    [(False, True), (True, False)],
    ids=["container credentials, as SnapStart has", "keys in the environment"],
)
def test_the_snapshot_holds_the_tls_settings_and_botocores_chain_only_where_needed(
    keys: bool, botocore_in_snapshot: bool
) -> None:
    # Given a fresh Python process initialised for a snapshot: with the container credentials Lambda
    # gives a SnapStart function (no keys in the environment), or with keys
    # https://docs.aws.amazon.com/lambda/latest/dg/snapstart-activate.html#snapstart-credentials
    script = (
        "import sys\n"
        "from enquiries.settings import load_settings\n"
        "from enquiries.snapstart import prepare_snapshot\n"
        "prepare_snapshot(load_settings(), [])\n"
        "from enquiries.aws_clients import aws_session\n"
        "from enquiries.aws_json import tls_context\n"
        "print({'tls': tls_context.cache_info().currsize,"
        " 'botocore': 'botocore.session' in sys.modules, 'session': aws_session.cache_info().currsize,"
        " 'credentials': aws_session.cache_info().currsize and aws_session()._credentials is not None})\n"
    )
    environment = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"} if keys else {}

    # When its init ends with the SnapStart step
    loaded = _after_init(script, {**SNAPSHOT_INIT, **environment})

    # Then the snapshot has the TLS settings with the CA bundle loaded; without keys it has botocore's
    # session too, so a restored copy's first request does not import it, but no credentials resolved
    # (they would be stale after a restore); with keys the submission path never needs botocore
    assert loaded == {
        "tls": 1,
        "botocore": botocore_in_snapshot,
        "session": int(botocore_in_snapshot),
        "credentials": False if botocore_in_snapshot else 0,
    }


def test_hooks_are_registered_only_where_lambdas_hook_library_is(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given no hook library (as here, or in the local server)
    monkeypatch.delitem(sys.modules, "snapshot_restore_py", raising=False)

    # When the hooks are registered
    registered = snapstart.register_hooks([])

    # Then nothing is, and nothing fails
    assert registered is False


def test_hooks_are_registered_with_the_secrets_they_drop(hook_library: HookLibrary) -> None:
    # Given the hook library of Lambda's Python runtime, and the function's secrets
    secrets = [StoredSecret("CLIENT_ADDRESS_SECRET_ARN", "arn", client_factory=lambda: None)]

    # When the hooks are registered
    registered = snapstart.register_hooks(secrets)

    # Then one runs before the snapshot and one after each restore, both given the secrets
    assert registered is True
    assert hook_library.before == [(snapstart.before_snapshot, (secrets,))]
    assert hook_library.after == [(snapstart.after_restore, (secrets,))]


def test_an_ordinary_init_registers_no_hook(hook_library: HookLibrary) -> None:
    # Given an init that is not SnapStart's (with the hook library present)
    # When the init's SnapStart step runs
    prepared = snapstart.prepare_snapshot(None, [], environ=ORDINARY_INIT)  # type: ignore[arg-type]

    # Then it does nothing at all
    assert prepared is False
    assert (hook_library.before, hook_library.after) == ([], [])


def test_a_failed_warm_up_never_fails_the_init(
    hook_library: HookLibrary, monkeypatch: pytest.MonkeyPatch, log_output: Any
) -> None:
    # Given a warm-up that fails (a request would do the same setup itself)
    def broken(settings: Any) -> None:
        raise RuntimeError("no region")

    monkeypatch.setattr(snapstart, "warm_up", broken)

    # When the snapshot's init runs its SnapStart step
    prepared = snapstart.prepare_snapshot(None, [], environ=SNAPSHOT_INIT)  # type: ignore[arg-type]

    # Then the init goes on, the hooks are registered all the same, and the log names the error type
    assert prepared is True
    assert len(hook_library.after) == 1
    (line,) = [json.loads(line) for line in log_output.getvalue().splitlines()]
    assert (line["message"], line["error_type"]) == ("snapshot warm-up incomplete", "RuntimeError")


def test_restored_copies_generate_distinct_ids_even_in_the_snapshots_millisecond() -> None:
    # Given a process that generated an id in the millisecond its snapshot was taken (python-ulid
    # keeps that millisecond and those random bits to make the next id in it the next number)
    taken_at = 1_800_000_000.123
    ULID.from_timestamp(taken_at)

    def restored_copy() -> str:
        snapstart.after_restore([])
        return str(ULID.from_timestamp(taken_at))

    # When two copies restored from it generate an id in that same millisecond
    first, second = _in_restored_copies(2, restored_copy)

    # Then the ids differ: each copy's come from its own os.urandom
    assert first != second


def test_restored_copies_do_not_share_the_random_modules_sequence() -> None:
    # Given the random module's state as the snapshot holds it
    random.seed(20261122)
    in_snapshot = random.getstate()

    def restored_copy() -> str:
        # A fork re-seeds `random` in the child (CPython's at-fork hook); a restored snapshot does
        # not, so the copy starts from the snapshot's state
        random.setstate(in_snapshot)
        snapstart.after_restore([])
        return repr(random.random())

    # When two restored copies draw a number
    first, second = _in_restored_copies(2, restored_copy)

    # Then they draw different ones (botocore's retry jitter, for one, uses this module)
    assert first != second


def test_after_a_restore_clients_are_made_anew_with_fresh_credentials(
    fresh_clients: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a client made in the snapshot's init, with the credentials Lambda gave then
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "KEY-AT-SNAPSHOT")
    before = submission_dynamodb()
    closed: list[bool] = []
    monkeypatch.setattr(before, "close", lambda: closed.append(True))

    # When the copy is restored, with the credentials Lambda gives now
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "KEY-AT-RESTORE")
    snapstart.after_restore([])
    after = submission_dynamodb()

    # Then the old client's pooled connections were closed, and the next call gets a new client
    # signing with the current credentials
    assert closed == [True]
    assert after is not before
    assert after.credentials().access_key == "KEY-AT-RESTORE"


def test_dropping_clients_covers_every_client_function(fresh_clients: None) -> None:
    # Given every client the functions make, the notifier's SES client among them, made
    from enquiries.notify.mailer import sesv2_client

    factories = [
        dynamodb_client,
        secretsmanager_client,
        submission_dynamodb,
        submission_secrets,
        sesv2_client,
    ]
    made = {factory: factory() for factory in factories}

    # When the clients are dropped
    drop_clients()

    # Then each function makes a new one
    assert all(factory() is not client for factory, client in made.items())


def test_no_secret_is_kept_in_the_snapshot_and_a_restored_copy_reads_the_current_one() -> None:
    # Given the address key read in the snapshot's init
    store = RotatingSecretStore("key-at-snapshot")
    secret = StoredSecret("CLIENT_ADDRESS_SECRET_ARN", "arn", client_factory=lambda: store)
    assert secret.value() == "key-at-snapshot"

    # When the snapshot is taken, the operator rotates the key, and a copy is restored
    snapstart.before_snapshot([secret])
    kept = list(vars(secret).values())
    store.value = "key-after-rotation"
    snapstart.after_restore([secret])

    # Then the snapshot held no key, and the restored copy uses the current one
    assert "key-at-snapshot" not in kept
    assert secret.value() == "key-after-rotation"
    assert store.reads == 2


def test_a_restored_copy_retries_a_secret_the_snapshot_could_not_read_at_once() -> None:
    # Given a secret that could not be read in the snapshot's init (the clock stands still)
    class Unreadable:
        def get_secret_value(self, SecretId: str) -> dict[str, str]:
            from botocore.exceptions import EndpointConnectionError

            raise EndpointConnectionError(endpoint_url="https://secretsmanager")

    store: Any = Unreadable()
    secret = StoredSecret("CLIENT_ADDRESS_SECRET_ARN", "arn", client_factory=lambda: store, clock=lambda: 0.0)
    with pytest.raises(Exception, match="secret:"):
        secret.value()

    # When a copy is restored and the secret is readable again
    store = RotatingSecretStore("key")
    snapstart.after_restore([secret])

    # Then its first request reads it at once, without waiting for the retry interval
    assert secret.value() == "key"


def test_a_restored_copy_of_the_handler_stores_an_enquiry(
    make_handler: Callable[..., Handler], hook_library: HookLibrary, dynamodb: Any
) -> None:
    # Given the submission handler initialised as SnapStart does: its setup done, hooks registered
    handler = make_handler(**SNAPSHOT_INIT)
    assert submission_dynamodb.cache_info().currsize == 1

    # When Lambda takes the snapshot and restores a copy, which then gets an enquiry
    hook_library.snapshot()
    hook_library.restore()
    response = handler(load_event("submit-json.json"))

    # Then the copy makes new clients, reads the address key again, and stores the enquiry
    assert response["statusCode"] == 201
    assert [item["id"] for item in stored_items(dynamodb)] == [body_of(response)["id"]]


def _copies_in_memory_when_the_snapshot_is_taken(initialization_type: str) -> int:
    """How many copies of a fresh address key the submission function's process holds once its init,
    its before-snapshot hook and a garbage collection have run (tests/snapstart_memory_child.py):
    every readable mapping of its memory, searched from outside it, as the snapshot would hold it."""
    import secrets as random_tokens

    import boto3

    from emulator.moto_server import running_moto

    key = random_tokens.token_hex(32)  # never given to the child: it reads it from the emulator
    with running_moto() as endpoint:
        boto3.client(
            "secretsmanager",
            endpoint_url=endpoint,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        ).create_secret(Name=f"{SECRET_NAME}-{key[:8]}", SecretString=key)
        environment = {
            **os.environ,
            **BASE_ENV,
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_LAMBDA_INITIALIZATION_TYPE": initialization_type,
            "CLIENT_ADDRESS_SECRET_ARN": f"{SECRET_NAME}-{key[:8]}",
        }
        child = subprocess.Popen(  # noqa: S603 - our own interpreter and script; no shell
            [sys.executable, str(Path(__file__).parent / "snapstart_memory_child.py")],
            env=environment,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        try:
            assert child.stdout is not None
            for line in child.stdout:
                if line.strip() == "snapshot":
                    break
            else:
                pytest.fail("the child stopped before its snapshot point")
            return _count_in_memory(child.pid, key.encode())
        finally:
            assert child.stdin is not None
            assert child.stdout is not None
            child.stdin.close()
            child.wait(timeout=30)
            child.stdout.close()


def _count_in_memory(pid: int, needle: bytes) -> int:
    found = 0
    try:
        with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", 0) as memory:
            for mapping in maps:
                addresses, permissions = mapping.split()[:2]
                if not permissions.startswith("r"):
                    continue
                start, end = (int(address, 16) for address in addresses.split("-"))
                try:
                    memory.seek(start)
                    found += memory.read(end - start).count(needle)
                except (OSError, ValueError, OverflowError):  # [vvar] and the like cannot be read
                    continue
    except (FileNotFoundError, PermissionError) as error:
        pytest.skip(f"this machine does not let a process read its child's memory: {error}")
    return found


def test_no_copy_of_a_secret_is_in_memory_when_the_snapshot_is_taken() -> None:
    # Given the submission function initialised for a SnapStart snapshot, and for an ordinary start
    # When its before-snapshot hook and a garbage collection have run, and its memory is searched
    in_snapshot = _copies_in_memory_when_the_snapshot_is_taken(snapstart.SNAPSHOT_INIT)
    ordinary = _copies_in_memory_when_the_snapshot_is_taken("on-demand")
    # Then the snapshot would hold no copy of the address key, where an ordinary init holds it
    # (which shows the search finds it)
    assert in_snapshot == 0
    assert ordinary >= 1
