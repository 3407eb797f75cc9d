"""`python -m bench.load [--requests 2000] [--concurrency 16] [--timeout-seconds 300]`: a bounded load.

Starts the local server (`python -m devserver --port 0`, rate limit off, on loopback), sends
`--requests` distinct valid JSON enquiries from `--concurrency` threads (one keep-alive connection
each), then waits, at most `--email-wait-seconds`, until the notifier has emailed every stored enquiry.
It prints throughput, latency percentiles, the statuses, and the counts of stored, emailed and lost
enquiries (lost: answered 201 but not stored, or stored but not emailed). The exit status is 1 if any
enquiry was lost, any answer was a 5xx or no answer came, or the time limit cut the run short.

Every loop is bounded by a count and by a clock, and the server is stopped at the end, whatever happens.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import queue
import re
import signal
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlsplit

from devserver.launcher import ServerNotReady, local_server

REPO = Path(__file__).resolve().parent.parent
REQUEST_TIMEOUT_SECONDS = 30.0
POLL_SECONDS = 3.0  # each look scans the emulated table: not too often, it slows the notifier
ENQUIRY_ID = re.compile(r"\b[0-9A-HJKMNP-TV-Z]{26}\b")


# -- the load ---------------------------------------------------------------------------------------


@dataclass
class Result:
    index: int
    status: int  # 0: no answer (connection failed or timed out)
    seconds: float
    enquiry_id: str | None = None


@dataclass
class Load:
    results: list[Result] = field(default_factory=list)
    elapsed: float = 0.0
    cut_short: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, result: Result) -> None:
        """Record one answer; every worker thread calls this."""
        with self.lock:
            self.results.append(result)


def enquiry(index: int) -> bytes:
    return json.dumps(
        {
            "name": f"Load Test {index}",
            "email": f"load.test.{index}@example.com",
            "message": f"Enquiry {index} of a load test: is there an appointment next week?",
            "consent": True,
        }
    ).encode("utf-8")


def worker(host: str, port: int, work: queue.Queue[int], deadline: float, load: Load) -> None:
    connection: http.client.HTTPConnection | None = None
    try:
        while time.monotonic() < deadline:
            try:
                index = work.get_nowait()
            except queue.Empty:
                return
            current = connection or http.client.HTTPConnection(host, port, timeout=REQUEST_TIMEOUT_SECONDS)
            connection = current
            started = time.perf_counter()
            try:
                current.request(
                    "POST", "/enquiries", body=enquiry(index), headers={"Content-Type": "application/json"}
                )
                response = current.getresponse()
                body = response.read()
                status = response.status
                if response.getheader("Connection", "").lower() == "close":
                    current.close()
                    connection = None
            except (OSError, http.client.HTTPException):
                status, body = 0, b""
                current.close()
                connection = None  # the next request opens a new connection
            seconds = time.perf_counter() - started
            enquiry_id = None
            if status == HTTPStatus.CREATED:
                enquiry_id = str(json.loads(body)["id"])
            load.add(Result(index, status, seconds, enquiry_id))
    finally:
        if connection is not None:
            connection.close()


def run_load(url: str, requests: int, concurrency: int, timeout_seconds: float) -> Load:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    work: queue.Queue[int] = queue.Queue()
    for index in range(requests):
        work.put(index)
    load = Load()
    started = time.perf_counter()
    deadline = time.monotonic() + timeout_seconds
    threads = [
        threading.Thread(
            target=worker,
            args=(host, port, work, deadline, load),
            name=f"load-{n}",
            daemon=True,
        )
        for n in range(concurrency)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        # A request in flight at the deadline still has its own socket timeout to finish in.
        thread.join(max(0.0, deadline - time.monotonic()) + REQUEST_TIMEOUT_SECONDS + 1)
    load.elapsed = time.perf_counter() - started
    load.cut_short = len(load.results) < requests
    return load


# -- what was stored and emailed ----------------------------------------------------------------------


def get_json(url: str, path: str) -> Any:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=60)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        body = response.read()
        if response.status != HTTPStatus.OK:
            raise SystemExit(f"load: GET {path} answered {response.status}")
        return json.loads(body)
    finally:
        connection.close()


def emails_by_enquiry(url: str, stored: set[str]) -> Counter[str]:
    """How many emails name each stored enquiry's id (the notifier puts it in the text part)."""
    counts: Counter[str] = Counter()
    for message in get_json(url, "/_dev/emails"):
        counts.update(set(ENQUIRY_ID.findall(str(message.get("text", "")))) & stored)
    return counts


def wait_for_emails(url: str, wait_seconds: float) -> tuple[set[str], Counter[str], float]:
    """Stored ids and emails per id, once every stored enquiry was emailed or `wait_seconds` passed."""
    started = time.monotonic()
    deadline = started + wait_seconds
    stored: set[str] = set()
    emailed: Counter[str] = Counter()
    for _ in range(int(wait_seconds / POLL_SECONDS) + 2):
        items = get_json(url, "/_dev/enquiries")
        stored = {str(item["id"]) for item in items}
        # The notifier marks each item it emailed: a cheap sign that /_dev/emails is worth reading.
        if all(item.get("notified_at") for item in items) or time.monotonic() >= deadline:
            emailed = emails_by_enquiry(url, stored)
            if stored <= set(emailed) or time.monotonic() >= deadline:
                break
        time.sleep(POLL_SECONDS)
    return stored, emailed, time.monotonic() - started


# -- the report ---------------------------------------------------------------------------------------


def percentile(sorted_values: list[float], percent: float) -> float:
    """Nearest-rank percentile of an ascending list (0.0 for an empty one)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(percent / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def report(
    args: argparse.Namespace, load: Load, stored: set[str], emailed: Counter[str], waited: float
) -> int:
    statuses = Counter(result.status for result in load.results)
    latencies = sorted(result.seconds * 1000 for result in load.results if result.status)
    accepted = {result.enquiry_id for result in load.results if result.enquiry_id}
    not_stored = accepted - stored
    not_emailed = stored - set(emailed)
    lost = len(not_stored) + len(not_emailed)
    server_errors = sum(
        count for status, count in statuses.items() if status >= HTTPStatus.INTERNAL_SERVER_ERROR
    )
    no_answer = statuses.get(0, 0)
    throughput = len(load.results) / load.elapsed if load.elapsed else 0.0
    status_text = ", ".join(
        f"{status if status else 'no answer'}: {count}" for status, count in sorted(statuses.items())
    )
    print(
        f"load: {len(load.results)} of {args.requests} requests at concurrency {args.concurrency}, loopback"
    )
    print(f"throughput: {throughput:.1f} req/s ({len(load.results)} in {load.elapsed:.2f} s)")
    print(
        f"latency: p50 {percentile(latencies, 50):.1f} ms, p95 {percentile(latencies, 95):.1f} ms, "
        f"p99 {percentile(latencies, 99):.1f} ms, max {percentile(latencies, 100):.1f} ms"
    )
    print(f"statuses: {status_text}")
    print(
        f"stored: {len(stored)}, emailed: {len(set(emailed) & stored)} "
        f"(waited {waited:.1f} s after the last request), "
        f"emailed twice or more: {sum(1 for count in emailed.values() if count > 1)}"
    )
    print(
        f"lost: {lost} ({len(not_stored)} answered 201 but not stored, "
        f"{len(not_emailed)} stored but not emailed)"
    )
    failures = []
    if lost:
        failures.append(f"{lost} lost")
    if server_errors:
        failures.append(f"{server_errors} answered 5xx")
    if no_answer:
        failures.append(f"{no_answer} got no answer")
    if load.cut_short:
        failures.append(
            f"the {args.timeout_seconds:g} s limit stopped the run after {len(load.results)} requests"
        )
    print("result: " + ("FAIL: " + "; ".join(failures) if failures else "ok"))
    return 1 if failures else 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__.split("\n\n")[1])
    parser.add_argument("--requests", type=int, default=2000, help="enquiries to send (default 2000)")
    parser.add_argument("--concurrency", type=int, default=16, help="parallel connections (default 16)")
    parser.add_argument(
        "--timeout-seconds", type=float, default=300.0, help="time limit for sending (default 300)"
    )
    parser.add_argument(
        "--email-wait-seconds",
        type=float,
        default=240.0,
        help="how long to wait for the emails after the last request (default 240: the local "
        "notifier, one process beside moto, emails about 15 a second)",
    )
    args = parser.parse_args(argv)
    if args.requests < 1 or args.concurrency < 1 or args.timeout_seconds <= 0 or args.email_wait_seconds < 0:
        parser.error("--requests and --concurrency must be at least 1, and the time limits positive")
    return args


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)  # stopped from outside: still stop the server first
    output: list[str] = []
    try:
        with local_server() as server:
            output = server.output
            print(f"load: the local server is at {server.url}", flush=True)
            load = run_load(server.url, args.requests, args.concurrency, args.timeout_seconds)
            stored, emailed, waited = wait_for_emails(server.url, args.email_wait_seconds)
    except ServerNotReady as not_ready:
        raise SystemExit(f"load: {not_ready}") from None
    except KeyboardInterrupt:
        print("load: interrupted; the local server was stopped", file=sys.stderr)
        return 130
    status = report(args, load, stored, emailed, waited)
    if status:
        tail = [line.rstrip() for line in output[-20:]]
        print("load: the local server's output ended with:", *tail, sep="\n", file=sys.stderr)
    return status


if __name__ == "__main__":
    raise SystemExit(main())
