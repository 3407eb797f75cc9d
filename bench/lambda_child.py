"""The benchmark's child process, in the place of the Lambda runtime's bootstrap.

`python lambda_child.py cold <module>` (the event on stdin): one cold start. `python lambda_child.py
warm` (a job on stdin): warm requests of every side in one process. Run by `python -m bench` with the
runtime's Python, from a copy beside the layout (as the runtime's own code is in /var/runtime), so it
uses the standard library only and imports at the top nothing the Lambda runtime has not imported
before it imports a handler.

Before any clock starts it sets sys.path as the runtime's bootstrap does (the code root, then the
layers' python/lib/pythonX.Y/site-packages and python/, then the runtime's site-packages, all ahead
of the standard library) and has imported what that bootstrap imports (importlib, json, logging, os,
sys, time, traceback: awslambdaric/bootstrap.py in
https://github.com/aws/aws-lambda-python-runtime-interface-client). A cold start's clock covers
importing `<module>` and serving its first request (`lambda_handler(event, context)`). The result is
the last stdout line, after the marker, as JSON (the handlers' own log lines may precede it).
"""

from __future__ import annotations

import importlib
import json
import logging  # noqa: F401 - imported by the runtime's bootstrap before any handler
import os
import site
import sys
import time
import traceback  # noqa: F401 - imported by the runtime's bootstrap before any handler

# Not `typing`: the runtime has not imported it before a handler, and a cold start must not find it
# already loaded. mypy and ruff read this name as typing.TYPE_CHECKING.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    Handler = Callable[[dict[str, Any], Any], dict[str, Any]]

COLD_MARKER = "BENCH-COLD-RESULT "
WARM_MARKER = "BENCH-WARM-RESULT "
WARM_UP_REQUESTS = 20
ADDRESS_SPACE = 1 << 24  # 10.x.y.z
CREATED = 201


def make_context() -> Any:
    """Lambda's context, the repository's one (emulator/lambda_context.py), imported when first needed:
    beside this file in a built layout, from emulator/ when run from the repository."""
    here = os.path.dirname(os.path.abspath(__file__))
    beside = os.path.exists(os.path.join(here, "lambda_context.py"))
    folder = here if beside else os.path.join(os.path.dirname(here), "emulator")
    sys.path.insert(0, folder)
    try:
        import lambda_context  # type: ignore[import-not-found, unused-ignore]
    finally:
        sys.path.remove(folder)
    return lambda_context.LambdaContext(remaining_millis=10_000)


class Events:
    """Valid submissions, each different (message, client address, request id), so that neither the
    double-submit replay nor the per-address rate limit ever short-cuts the measured path.

    The parent and its warm children draw from one numbering: a child starts at the parent's next free
    number and reports the last it used, so no two requests of a run share an address."""

    def __init__(self, template: dict[str, Any], start: int = 1) -> None:
        self._template = json.dumps(template)
        self._fields: dict[str, Any] = json.loads(template["body"])
        self.count = start - 1

    def next(self) -> dict[str, Any]:
        self.count += 1
        n = self.count
        if n >= ADDRESS_SPACE:
            raise RuntimeError("out of distinct 10.x.y.z client addresses")
        address = f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"
        fields = dict(self._fields, message=f"{self._fields['message']} (benchmark request {n})")
        event: dict[str, Any] = json.loads(self._template)
        event["body"] = json.dumps(fields)
        event["headers"]["content-length"] = str(len(event["body"].encode()))
        event["headers"]["x-forwarded-for"] = address
        event["requestContext"]["http"]["sourceIp"] = address
        event["requestContext"]["requestId"] = f"bench-{n:08d}"
        return event


class ChildError(RuntimeError):
    """A handler did not answer 201."""


def check_created(side: str, response: dict[str, Any]) -> None:
    if response.get("statusCode") != CREATED:
        raise ChildError(f"the {side} answered {response.get('statusCode')}, not 201: {response.get('body')}")


def set_lambda_sys_path() -> None:
    """sys.path as the runtime's bootstrap sets it (set_default_sys_path, add_default_site_directories):
    the code roots (BENCH_TASK_ROOTS, as LAMBDA_TASK_ROOT), the layers (BENCH_OPT_ROOT, as /opt), then
    this interpreter's site-packages (as /var/lang/lib/pythonX.Y/site-packages)."""
    roots = os.environ.pop("BENCH_TASK_ROOTS").split(os.pathsep)
    opt = os.environ.pop("BENCH_OPT_ROOT")
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    layers = [f"{opt}/python/lib/{version}/site-packages", f"{opt}/python"]
    runtime_site = [path for path in sys.path if path.endswith("site-packages")]
    for path in runtime_site:
        sys.path.remove(path)
    sys.path[:0] = [*roots, *layers, *runtime_site]
    for path in [*roots, *layers]:
        if os.path.isdir(path):
            site.addsitedir(path)  # the bootstrap does, for .pth files


def cold(module_name: str, event: dict[str, Any]) -> dict[str, Any]:
    context = make_context()
    start = time.perf_counter()
    module = importlib.import_module(module_name)
    imported = time.perf_counter()
    response: dict[str, Any] = module.lambda_handler(event, context)
    done = time.perf_counter()
    return {
        "import_ms": (imported - start) * 1000,
        "first_request_ms": (done - imported) * 1000,
        "total_ms": (done - start) * 1000,
        "status": response.get("statusCode"),
        "body": response.get("body"),
    }


def run_warm(
    requests: int, block: int, events: Events, handlers: dict[str, Handler]
) -> dict[str, list[float]]:
    """Per-request times in microseconds, `requests` per side rounded up to whole blocks, in alternating
    blocks, after a discarded warm-up of each (clients created, connections open, code paths cached)."""
    import math

    context = make_context()
    samples: dict[str, list[float]] = {side: [] for side in handlers}
    block = max(1, min(block, requests))
    for side, handler in handlers.items():
        for _ in range(min(block, WARM_UP_REQUESTS)):
            check_created(side, handler(events.next(), context))
    for _ in range(math.ceil(requests / block)):
        for side, handler in handlers.items():
            for _ in range(block):
                event = events.next()
                started = time.perf_counter()
                response = handler(event, context)
                elapsed = time.perf_counter() - started
                check_created(side, response)
                samples[side].append(elapsed * 1_000_000)
    return samples


def profile_calls(side: str, handler: Handler, events: Events, requests: int) -> dict[str, Any]:
    """A separate pass, not in the warm figures: the AWS operations of a warm request, and per request its
    time outside them (wrapping botocore's Endpoint.make_request, and the submission path's own client's
    JsonClient.call: signing, sending, the server and parsing the response count as inside)."""
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

    import contextlib

    json_client: Any = None  # the class, in a child with the function's code
    with contextlib.suppress(ImportError):
        from enquiries.aws_json import JsonClient as json_client
    original_call = getattr(json_client, "call", None)

    def timed_call(client: Any, operation: str, params: dict[str, Any]) -> Any:
        nonlocal in_calls
        operations.append(f"{client.service.name}.{operation}")
        started = time.perf_counter()
        try:
            return original_call(client, operation, params)  # type: ignore[misc]
        finally:
            in_calls += time.perf_counter() - started

    context = make_context()
    own_us: list[float] = []
    first_operations: list[str] = []
    Endpoint.make_request = timed
    if json_client is not None:
        json_client.call = timed_call
    try:
        for _ in range(requests):
            operations.clear()
            in_calls = 0.0
            event = events.next()
            started = time.perf_counter()
            response = handler(event, context)
            elapsed = time.perf_counter() - started
            check_created(side, response)
            own_us.append((elapsed - in_calls) * 1_000_000)
            first_operations = first_operations or list(operations)
    finally:
        Endpoint.make_request = original
        if json_client is not None:
            json_client.call = original_call
    return {"operations": first_operations, "own_us": own_us}


def warm(job: dict[str, Any]) -> dict[str, Any]:
    events = Events(job["event"], start=job["start"])
    handlers = {side: importlib.import_module(module).lambda_handler for side, module in job["sides"].items()}
    # The handlers log a JSON line per request, as on Lambda: not into the result's stream.
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    try:
        samples = run_warm(job["requests"], job["block"], events, handlers)
        profiles = {
            side: profile_calls(side, handler, events, job["profile_requests"])
            for side, handler in handlers.items()
        }
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)
    return {"warm": samples, "profiles": profiles, "last_event": events.count}


def main(argv: list[str]) -> int:
    if argv[:1] == ["cold"] and len(argv) == 2:  # noqa: PLR2004 - "cold" and the module
        set_lambda_sys_path()
        result = cold(argv[1], json.loads(sys.stdin.read()))
        marker = COLD_MARKER
    elif argv == ["warm"]:
        set_lambda_sys_path()
        result = warm(json.loads(sys.stdin.read()))
        marker = WARM_MARKER
    else:
        print(
            "usage: python lambda_child.py cold <module> | warm  (the event or job on stdin)", file=sys.stderr
        )
        return 2
    result["python"] = sys.version.split()[0]
    sys.stdout.write("\n" + marker + json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
