"""The measuring parts of `python -m bench`: one loopback moto server, the environment both handlers
run in, per-request events, cold starts in fresh processes and warm requests in this one."""

from __future__ import annotations

import contextlib
import copy
import importlib
import json
import math
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any

from bench.cold_child import RESULT_MARKER, FakeContext
from devserver.environment import SETTING_NAMES

REPO = Path(__file__).resolve().parent.parent
CODE_ROOT = REPO / "functions"
EVENT_PATH = REPO / "events" / "submit-json.json"

HANDLER_MODULE = "enquiries.api.submit"
BASELINE_MODULE = "bench.baseline"
FLOOR_MODULE = "bench.floor"
# The ratios are handler / baseline; the floor (a lower bound for any validating handler) is shown
# beside them for reference.
SIDES = {"handler": HANDLER_MODULE, "baseline": BASELINE_MODULE, "floor": FLOOR_MODULE}

REGION = "eu-west-2"
TABLE_NAME = "enquiries-bench"
GUARD_TABLE_NAME = "enquiries-guard-bench"
SECRET_NAME = "enquiries-client-address-key-bench"  # noqa: S105 - a name, in moto
ALLOWED_ORIGIN = "https://www.example-clinic.co.uk"

COLD_CHILD_TIMEOUT_SECONDS = 120


def bench_environ(endpoint: str) -> dict[str, str]:
    """The environment of both handlers: this process's, minus anything that would change the measured
    path (contract settings, AWS_*, POWERTOOLS_*, PYTHON*), plus the template's defaults and moto."""
    environ = {
        name: value
        for name, value in os.environ.items()
        if name not in SETTING_NAMES and not name.startswith(("AWS_", "POWERTOOLS_", "PYTHON"))
    }
    environ.update(
        {
            # As template.yaml's Globals set them; RATE_LIMIT_PER_HOUR stays at its default of 10.
            "POWERTOOLS_SERVICE_NAME": "enquiries",
            "POWERTOOLS_LOG_LEVEL": "INFO",
            "TABLE_NAME": TABLE_NAME,
            "GUARD_TABLE_NAME": GUARD_TABLE_NAME,
            "CLIENT_ADDRESS_SECRET_ARN": SECRET_NAME,
            "ALLOWED_ORIGINS": ALLOWED_ORIGIN,
            "CLINIC_EMAIL": "reception@example-clinic.co.uk",
            "SENDER_EMAIL": "enquiries@example-clinic.co.uk",
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_SESSION_TOKEN": "bench",
            "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
            # The Lambda code root first (as /var/task), then the repository for bench.baseline.
            "PYTHONPATH": os.pathsep.join([str(CODE_ROOT), str(REPO)]),
        }
    )
    return environ


def moto_server() -> contextlib.AbstractContextManager[str]:
    """One moto server on a free loopback port, in a thread of this process, as the local server runs
    it (with DynamoDB's atomic transactions); yields its URL."""
    from emulator.moto_server import running_moto

    return running_moto()


def create_resources(endpoint: str) -> None:
    """The two tables, from template.yaml, and the address-hashing secret the template creates."""
    import boto3

    from emulator.template_tables import create_table_from_template

    settings: dict[str, Any] = {
        "endpoint_url": endpoint,
        "region_name": REGION,
        "aws_access_key_id": "bench",
        "aws_secret_access_key": "bench",
    }
    dynamodb = boto3.client("dynamodb", **settings)
    create_table_from_template(dynamodb, TABLE_NAME)
    create_table_from_template(dynamodb, GUARD_TABLE_NAME, logical_id="GuardTable")
    boto3.client("secretsmanager", **settings).create_secret(
        Name=SECRET_NAME, SecretString="bench-address-hash-key"
    )


class Events:
    """Valid submissions, each different (message, client address, request id), so that neither the
    double-submit replay nor the per-address rate limit ever short-cuts the measured path."""

    def __init__(self) -> None:
        self._template: dict[str, Any] = json.loads(EVENT_PATH.read_text(encoding="utf-8"))
        self._fields: dict[str, Any] = json.loads(self._template["body"])
        self._count = 0

    def next(self) -> dict[str, Any]:
        self._count += 1
        n = self._count
        if n >= 1 << 24:
            raise RuntimeError("out of distinct 10.x.y.z client addresses")
        address = f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"
        fields = dict(self._fields, message=f"{self._fields['message']} (benchmark request {n})")
        event = copy.deepcopy(self._template)
        event["body"] = json.dumps(fields)
        event["headers"]["content-length"] = str(len(event["body"].encode()))
        event["headers"]["x-forwarded-for"] = address
        event["requestContext"]["http"]["sourceIp"] = address
        event["requestContext"]["requestId"] = f"bench-{n:08d}"
        return event


class BenchError(RuntimeError):
    """A handler did not answer 201: the figures would not be of the path we mean to measure."""


def check_created(side: str, status: Any, body: Any) -> None:
    if status != HTTPStatus.CREATED:
        raise BenchError(f"the {side} answered {status}, not 201: {str(body)[:300]}")


# --- cold -------------------------------------------------------------------------------------------


@dataclass
class ColdSample:
    in_child_ms: float
    import_ms: float
    first_request_ms: float
    process_ms: float


def cold_start(side: str, event: dict[str, Any], environ: dict[str, str]) -> ColdSample:
    """Start a fresh interpreter that imports `side`'s module and serves `event`."""
    command = [sys.executable, "-m", "bench.cold_child", SIDES[side]]
    started = time.perf_counter()
    try:
        completed = subprocess.run(  # noqa: S603 - our own interpreter and module, fixed arguments
            command,
            input=json.dumps(event),
            capture_output=True,
            text=True,
            env=environ,
            cwd=REPO,
            timeout=COLD_CHILD_TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise BenchError(f"the {side} cold-start child took over {COLD_CHILD_TIMEOUT_SECONDS} s") from None
    process_ms = (time.perf_counter() - started) * 1000
    lines = [line for line in completed.stdout.splitlines() if line.startswith(RESULT_MARKER)]
    if completed.returncode != 0 or not lines:
        raise BenchError(
            f"the {side} cold-start child failed (exit {completed.returncode}):\n{completed.stderr[-2000:]}"
        )
    result = json.loads(lines[-1][len(RESULT_MARKER) :])
    check_created(side, result["status"], result["body"])
    return ColdSample(
        in_child_ms=float(result["total_ms"]),
        import_ms=float(result["import_ms"]),
        first_request_ms=float(result["first_request_ms"]),
        process_ms=process_ms,
    )


def run_cold(
    runs: int, events: Events, environ: dict[str, str], progress: Callable[[str], None]
) -> dict[str, list[ColdSample]]:
    """`runs` cold starts of each side, interleaved (handler, baseline, handler, ...), after one
    discarded start of each (so both find their bytecode caches written)."""
    for side in SIDES:
        cold_start(side, events.next(), environ)
    samples: dict[str, list[ColdSample]] = {side: [] for side in SIDES}
    for run in range(runs):
        for side in SIDES:
            samples[side].append(cold_start(side, events.next(), environ))
        progress(f"cold run {run + 1}/{runs}")
    return samples


# --- warm -------------------------------------------------------------------------------------------


@contextlib.contextmanager
def stdout_discarded() -> Iterator[None]:
    """Send file descriptor 1 to /dev/null (the handler logs a JSON line per request, as on Lambda)."""
    sys.stdout.flush()
    saved = os.dup(1)
    with open(os.devnull, "w", encoding="utf-8") as devnull:
        os.dup2(devnull.fileno(), 1)
        try:
            yield
        finally:
            sys.stdout.flush()
            os.dup2(saved, 1)
            os.close(saved)


Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


@contextlib.contextmanager
def environment(environ: dict[str, str]) -> Iterator[None]:
    """This process's environment replaced by `environ` for the block (the handler reads its settings at
    import, and boto3 its endpoint and credentials when it creates a client)."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(environ)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def import_handlers(environ: dict[str, str]) -> dict[str, Handler]:
    """Both handlers, imported in this process from the code root and the repository (call it inside
    `environment(environ)`)."""
    for path in reversed(environ["PYTHONPATH"].split(os.pathsep)):
        if path not in sys.path:
            sys.path.insert(0, path)
    return {side: importlib.import_module(module).lambda_handler for side, module in SIDES.items()}


def run_warm(
    requests: int,
    block: int,
    events: Events,
    handlers: dict[str, Handler],
    progress: Callable[[str], None],
) -> dict[str, list[float]]:
    """Per-request times in microseconds, at least `requests` per side, in alternating blocks, after a
    discarded warm-up block of each (clients created, connections open, code paths cached)."""
    context = FakeContext()
    samples: dict[str, list[float]] = {side: [] for side in handlers}
    block = max(1, min(block, requests))
    rounds = math.ceil(requests / block)
    with stdout_discarded():
        for side, handler in handlers.items():
            for _ in range(min(block, 20)):
                response = handler(events.next(), context)
                check_created(side, response.get("statusCode"), response.get("body"))
        for round_number in range(rounds):
            for side, handler in handlers.items():
                for _ in range(block):
                    event = events.next()
                    started = time.perf_counter()
                    response = handler(event, context)
                    elapsed = time.perf_counter() - started
                    check_created(side, response.get("statusCode"), response.get("body"))
                    samples[side].append(elapsed * 1_000_000)
            if (round_number + 1) % 5 == 0 or round_number + 1 == rounds:
                progress(f"warm round {round_number + 1}/{rounds}")
    return samples


@dataclass
class CallProfile:
    operations: list[str]  # the AWS operations of one request, in order
    own_us: list[float]  # per request: its time minus the time spent in AWS calls (moto's and botocore's)


def profile_calls(side: str, handler: Handler, events: Events, requests: int) -> CallProfile:
    """A separate, untimed-for-the-ratio pass: which AWS calls a warm request makes, and how long the
    request takes outside them (wrapping botocore's Endpoint.make_request, so not in the warm figures)."""
    from botocore.endpoint import Endpoint

    original = Endpoint.make_request
    operations: list[str] = []
    in_calls = 0.0

    def timed(endpoint: Any, operation_model: Any, request_dict: Any) -> Any:
        nonlocal in_calls
        operations.append(f"{operation_model.service_model.service_name}.{operation_model.name}")
        started = time.perf_counter()
        try:
            return original(endpoint, operation_model, request_dict)
        finally:
            in_calls += time.perf_counter() - started

    context = FakeContext()
    own_us: list[float] = []
    first_operations: list[str] = []
    Endpoint.make_request = timed
    try:
        with stdout_discarded():
            for _ in range(requests):
                operations.clear()
                in_calls = 0.0
                event = events.next()
                started = time.perf_counter()
                response = handler(event, context)
                elapsed = time.perf_counter() - started
                check_created(side, response.get("statusCode"), response.get("body"))
                own_us.append((elapsed - in_calls) * 1_000_000)
                first_operations = first_operations or list(operations)
    finally:
        Endpoint.make_request = original
    return CallProfile(first_operations, own_us)


# --- statistics -------------------------------------------------------------------------------------


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def p95(values: list[float]) -> float:
    """Nearest-rank 95th percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]
