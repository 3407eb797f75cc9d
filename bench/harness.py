"""The measuring parts of `python -m bench`: one loopback moto server (with a fixed delay per AWS call
when asked), the environment every side runs in, cold starts in fresh processes and warm requests in
one, each a child of the runtime's Python in the layout (bench/layout.py, bench/lambda_child.py)."""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import statistics
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any

from bench.lambda_child import COLD_MARKER, WARM_MARKER, Events
from bench.layout import REPO, Layout
from devserver.environment import SETTING_NAMES

EVENT_PATH = REPO / "events" / "submit-json.json"

HANDLER_MODULE = "enquiries.api.submit"
# The side's module, imported from its code root: the function's, or the reference handler's own.
SIDES = {"handler": HANDLER_MODULE, "baseline": "baseline", "floor": "floor"}

REGION = "eu-west-2"
TABLE_NAME = "enquiries-bench"
GUARD_TABLE_NAME = "enquiries-guard-bench"
SECRET_NAME = "enquiries-client-address-key-bench"  # noqa: S105 - a name, in moto
ALLOWED_ORIGIN = "https://www.clinic.example"

CHILD_TIMEOUT_SECONDS = 600
MEDIAN_CONFIDENCE = 0.95  # of the interval each ratio's median is reported with


class BenchError(RuntimeError):
    """A side did not answer 201, or a child failed: the figures would not be of the path we mean."""


def bench_environ(endpoint: str) -> dict[str, str]:
    """The environment of every side: this process's, minus anything that would change the measured path
    (contract settings, AWS_*, POWERTOOLS_*, PYTHON*, LAMBDA_*), plus the template's settings, moto, and
    what the Lambda runtime itself sets that libraries read."""
    environ = {
        name: value
        for name, value in os.environ.items()
        if name not in SETTING_NAMES and not name.startswith(("AWS_", "POWERTOOLS_", "PYTHON", "LAMBDA_"))
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
            "CLINIC_EMAIL": "reception@clinic.example",
            "SENDER_EMAIL": "enquiries@clinic.example",
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_SESSION_TOKEN": "bench",
            "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
            # https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html#configuration-envvars-runtime
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
            "AWS_LAMBDA_FUNCTION_NAME": "SubmitEnquiryFunction",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
        }
    )
    return environ


# --- the server -------------------------------------------------------------------------------------


class Latency:
    """A WSGI middleware that holds each request for `seconds` before moto serves it: every AWS call of
    every side, cold or warm, waits the same, as if AWS were that far away."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.seconds = 0.0

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if self.seconds:
            time.sleep(self.seconds)
        return self.app(environ, start_response)


@dataclass(frozen=True)
class Server:
    endpoint: str
    latency: Latency


@contextlib.contextmanager
def moto_server() -> Iterator[Server]:
    """One moto server on a free loopback port, in a thread of this process, with DynamoDB's atomic
    transactions as the local server runs it (emulator/moto_server.py), behind `Latency`."""
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    from emulator import moto_transactions

    moto_transactions.install()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    latency = Latency(DomainDispatcherApplication(create_backend_app))
    server = make_server("127.0.0.1", 0, latency, threaded=True, request_handler=MotoRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Server(f"http://127.0.0.1:{server.server_port}", latency)
    finally:
        server.shutdown()
        thread.join()


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


def new_events() -> Events:
    return Events(json.loads(EVENT_PATH.read_text(encoding="utf-8")))


def check_created(side: str, status: Any, body: Any) -> None:
    if status != HTTPStatus.CREATED:
        raise BenchError(f"the {side} answered {status}, not 201: {str(body)[:300]}")


# --- the children -----------------------------------------------------------------------------------


def task_roots(layout: Layout, sides: Iterable[str]) -> list[Path]:
    """The code roots of `sides`, the function's last: the reference handlers' own directories hold one
    module each, and the floor takes its libraries from the function's code root."""
    roots = [layout.handlers[side] for side in sides if side in layout.handlers]
    if "handler" in sides or "floor" in sides:
        roots.append(layout.task)
    return roots


def child(
    layout: Layout, arguments: list[str], stdin: str, environ: dict[str, str], side: str
) -> dict[str, Any]:
    """Run lambda_child.py with the runtime's Python; its result, parsed."""
    roots = task_roots(layout, [side] if side in SIDES else SIDES)
    if side == "baseline":  # a bare function: no layers
        environ = {**environ, **layout.sys_path(roots, opt=layout.opt.parent / "no-layers")}
    else:
        environ = {**environ, **layout.sys_path(roots)}
    command = [
        layout.python,
        *([] if layout.write_bytecode else ["-B"]),
        str(layout.runtime / "lambda_child.py"),
    ]
    try:
        completed = subprocess.run(  # noqa: S603 - the runtime's interpreter, our own script
            [*command, *arguments],
            input=stdin,
            capture_output=True,
            text=True,
            env=environ,
            cwd=roots[-1],
            timeout=CHILD_TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise BenchError(f"the {side} child took over {CHILD_TIMEOUT_SECONDS} s") from None
    marker = COLD_MARKER if arguments[0] == "cold" else WARM_MARKER
    lines = [line for line in completed.stdout.splitlines() if line.startswith(marker)]
    if completed.returncode != 0 or not lines:
        raise BenchError(
            f"the {side} child failed (exit {completed.returncode}):\n{completed.stderr[-3000:]}"
        )
    result: dict[str, Any] = json.loads(lines[-1][len(marker) :])
    return result


# --- cold -------------------------------------------------------------------------------------------


@dataclass
class ColdSample:
    in_child_ms: float
    import_ms: float
    first_request_ms: float
    process_ms: float
    python: str


def cold_start(layout: Layout, side: str, event: dict[str, Any], environ: dict[str, str]) -> ColdSample:
    """A fresh interpreter that imports `side`'s module and serves `event`."""
    started = time.perf_counter()
    result = child(layout, ["cold", SIDES[side]], json.dumps(event), environ, side)
    process_ms = (time.perf_counter() - started) * 1000
    check_created(side, result["status"], result["body"])
    return ColdSample(
        in_child_ms=float(result["total_ms"]),
        import_ms=float(result["import_ms"]),
        first_request_ms=float(result["first_request_ms"]),
        process_ms=process_ms,
        python=str(result["python"]),
    )


def run_cold(
    layout: Layout, runs: int, events: Events, environ: dict[str, str], progress: Callable[[str], None]
) -> dict[str, list[ColdSample]]:
    """`runs` cold starts of each side, interleaved (handler, baseline, floor, handler, ...), after one
    discarded start of each (the files read once, into the page cache, as a warm host has them)."""
    for side in SIDES:
        cold_start(layout, side, events.next(), environ)
    samples: dict[str, list[ColdSample]] = {side: [] for side in SIDES}
    for run in range(runs):
        for side in SIDES:
            samples[side].append(cold_start(layout, side, events.next(), environ))
        if (run + 1) % 10 == 0 or run + 1 == runs:
            progress(f"cold run {run + 1}/{runs}")
    return samples


# --- warm -------------------------------------------------------------------------------------------


@dataclass
class CallProfile:
    operations: list[str]  # the AWS operations of one request, in order
    own_us: list[float]  # per request: its time minus the time spent in AWS calls


@dataclass
class Warm:
    blocks: dict[str, list[list[float]]]  # per side, its blocks in order: block k of each side alternated
    profiles: dict[str, CallProfile]
    python: str

    @property
    def samples(self) -> dict[str, list[float]]:
        return {side: [value for block in blocks for value in block] for side, blocks in self.blocks.items()}


@dataclass(frozen=True)
class WarmPlan:
    requests: int  # of each side, rounded up to whole blocks
    block: int  # requests of one side in a row
    profile_requests: int  # of each side, in the separate pass that counts AWS calls


def run_warm(layout: Layout, plan: WarmPlan, events: Events, environ: dict[str, str]) -> Warm:
    """Every side's warm requests in one child (see lambda_child.warm); `events` skips what it used."""
    job = {
        "sides": SIDES,
        "requests": plan.requests,
        "block": plan.block,
        "profile_requests": plan.profile_requests,
        "event": json.loads(EVENT_PATH.read_text(encoding="utf-8")),
        "start": events.count + 1,
    }
    result = child(layout, ["warm"], json.dumps(job), environ, "warm")
    events.count = int(result["last_event"])
    profiles = {
        side: CallProfile(list(profile["operations"]), [float(v) for v in profile["own_us"]])
        for side, profile in result["profiles"].items()
    }
    blocks = {side: [[float(v) for v in block] for block in runs] for side, runs in result["warm"].items()}
    return Warm(blocks, profiles, str(result["python"]))


# --- statistics -------------------------------------------------------------------------------------


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def p95(values: list[float]) -> float:
    """Nearest-rank 95th percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


@dataclass(frozen=True)
class Spread:
    """Paired ratios summed up: their median, quartiles (Q1, Q3), how many pairs, and the interval that
    holds the true median with MEDIAN_CONFIDENCE (low, high)."""

    median: float
    q1: float
    q3: float
    count: int
    low: float
    high: float

    @property
    def half_width(self) -> float:
        """Half the interquartile range: how far one pair's ratio typically strays from the median. More
        pairs do not narrow it; they narrow the median's interval."""
        return (self.q3 - self.q1) / 2


def spread(values: list[float]) -> Spread:
    """The median and quartiles of `values`, taken as the whole population measured (the inclusive
    method: Q1 and Q3 lie between the smallest and the largest value); one value is its own quartiles."""
    low, high = median_interval(values)
    if len(values) == 1:
        return Spread(values[0], values[0], values[0], 1, low, high)
    q1, middle, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return Spread(middle, q1, q3, len(values), low, high)


def median_interval(values: list[float], confidence: float = MEDIAN_CONFIDENCE) -> tuple[float, float]:
    """The distribution-free interval of the median: the r-th smallest and the r-th largest value, r the
    largest with P(B < r) <= (1 - confidence) / 2 for B ~ Binomial(n, 1/2), as each of n independent
    values falls below the true median with probability 1/2 (W. J. Conover, Practical Nonparametric
    Statistics, 3rd ed., the confidence interval for a quantile). Under 6 values it is their whole range,
    of less confidence than asked."""
    ordered = sorted(values)
    count = len(ordered)
    tail = (1 - confidence) / 2
    rank = 1
    while _binomial_below(rank + 1, count) <= tail:
        rank += 1
    return ordered[rank - 1], ordered[count - rank]


def _binomial_below(k: int, n: int) -> float:
    """P(B < k) for B ~ Binomial(n, 1/2)."""
    return sum(math.comb(n, i) for i in range(k)) / (1 << n)


def paired_ratios(numerators: list[float], denominators: list[float]) -> list[float]:
    """One ratio per pair measured in the same stretch of time (a cold round, a block of warm requests),
    so that what slowed the machine down then slowed both sides of the ratio."""
    return [numerator / denominator for numerator, denominator in zip(numerators, denominators, strict=True)]
