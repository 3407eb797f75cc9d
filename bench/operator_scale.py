"""`python -m bench.operator_scale [--enquiries 2000 20000]`: the operator's command on a large table.

For each size, an emulator (moto, as the local server runs it, with both tables made from
template.yaml) is filled with that many enquiries, three of them from one address in mixed letter
case. A small stand-in for the local server's GET /_dev/aws points the command at it: the local
server itself would run the notifier over every one of the stored enquiries while the command is
measured. Each subcommand then runs as `python -m enquiries_cli --local ...` in its own process,
and the wall time and the process's peak resident memory are printed, with a bare boto3 scan of
the same table beside them for what the emulator itself takes. Flat memory shows as the same peak
for every size.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from emulator.moto_server import Emulator, running_moto
from emulator.template_tables import create_table_from_template

REPO = Path(__file__).resolve().parent.parent
REGION = "eu-west-2"
TABLE, GUARD_TABLE = "enquiries", "enquiries-guard"
ADDRESS_SECRET = "enquiries-client-address-key"  # noqa: S105 - its name; erase hashes the address with it
ADDRESS = "Jane.Doe@Example.com"
ADDRESS_SPELLINGS = (str.lower, str.upper, str)  # the enquiries from ADDRESS, one spelling each
BATCH_WRITE_LIMIT = 25  # BatchWriteItem's most items a request
MESSAGE = (
    "My lower back has been stiff since a half marathon two weeks ago, and it is worse in the morning. "
) * 4  # about 400 characters, a typical enquiry


def fill(emulator: Emulator, count: int) -> None:
    """`count` enquiries (three of them from ADDRESS, in other letter cases), BATCH_WRITE_LIMIT to a write."""
    client = emulator.client("dynamodb")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    pending: list[dict[str, Any]] = []
    for index in range(count):
        created = start + timedelta(minutes=17 * index)
        email = (
            ADDRESS_SPELLINGS[index](ADDRESS) if index < len(ADDRESS_SPELLINGS) else f"p{index}@example.com"
        )
        item = {
            "id": {"S": f"01BENCH{index:019d}"},
            "name": {"S": f"Patient {index}"},
            "email": {"S": email},
            "phone": {"S": "+448009875336"},
            "service": {"S": "Osteopathy"},
            "message": {"S": MESSAGE},
            "consent": {"BOOL": True},
            "created_at": {"S": created.isoformat(timespec="milliseconds").replace("+00:00", "Z")},
            "expires_at": {"N": str(int((created + timedelta(days=365)).timestamp()))},
            "notified_at": {"S": created.isoformat(timespec="milliseconds").replace("+00:00", "Z")},
        }
        pending.append({"PutRequest": {"Item": item}})
        if len(pending) == BATCH_WRITE_LIMIT or index == count - 1:
            client.batch_write_item(RequestItems={TABLE: pending})
            pending = []


@contextlib.contextmanager
def discovery(emulator: Emulator) -> Iterator[str]:
    """A stand-in for the local server's GET /_dev/aws, naming `emulator`; yields its URL."""
    body = json.dumps(
        {
            "endpoint_url": emulator.endpoint,
            "region": emulator.region,
            "table_name": TABLE,
            "guard_table_name": GUARD_TABLE,
            "address_secret_arn": ADDRESS_SECRET,
            "dead_letter_queue_url": None,
            "notify_function_name": "NotifyEnquiryFunction",
        }
    ).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/_dev/aws" else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


# Runs the command in this interpreter and, as it exits, writes the process's peak resident memory
# (VmHWM: of this process alone, since exec; ru_maxrss would count the pages a fork shared with this
# benchmark, which holds the emulator) to the file named by the environment.
_MEASURED = """
import atexit, os, runpy, sys
def report():
    with open("/proc/self/status") as status, open(os.environ["PEAK_FILE"], "w") as out:
        out.write(next(line.split()[1] for line in status if line.startswith("VmHWM:")))
atexit.register(report)
sys.argv[0] = "enquiries"
runpy.run_module("enquiries_cli", run_name="__main__")
"""

# For comparison: the same reads with nothing of the command's, one boto3 Scan of id and email, page
# by page as `erase` reads them, so what the emulator itself takes shows beside the command's figures.
_BARE_SCAN = """
import atexit, os, boto3
def report():
    with open("/proc/self/status") as status, open(os.environ["PEAK_FILE"], "w") as out:
        out.write(next(line.split()[1] for line in status if line.startswith("VmHWM:")))
atexit.register(report)
client = boto3.client("dynamodb", endpoint_url=os.environ["EMULATOR"], region_name="eu-west-2",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
pages = client.get_paginator("scan").paginate(TableName="enquiries", ProjectionExpression="id, email",
                                              ConsistentRead=True, PaginationConfig={"PageSize": 1000})
for page in pages:
    pass
"""


def measure(program: str, scratch: Path, *args: str, emulator: str = "") -> tuple[float, int, int]:
    """(seconds, peak resident memory in MiB, exit status) of one run of `program`."""
    peak_file = scratch / "peak"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO / "functions"), str(REPO)]),
        "PEAK_FILE": str(peak_file),
        "EMULATOR": emulator,
    }
    started = time.monotonic()
    completed = subprocess.run(  # noqa: S603 - our own interpreter and code, fixed arguments
        [sys.executable, "-c", program, *args],
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )
    seconds = time.monotonic() - started
    return seconds, int(peak_file.read_text()) // 1024, completed.returncode


def reset(emulator: Emulator) -> None:
    """Empty the emulator (moto keeps its state per process, across servers)."""
    request = urllib.request.Request(emulator.endpoint + "/moto-api/reset", method="POST")  # noqa: S310
    with urllib.request.urlopen(request, timeout=30):  # noqa: S310 - the loopback emulator, over http
        pass


def report(count: int, command: str, seconds: float, peak: int, status: int) -> None:
    print(
        f"{count:>9,}  {command:<48}  {seconds:>7.1f}  {peak:>8}" + ("" if status == 0 else " FAILED"),
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.operator_scale", description=__doc__)
    parser.add_argument("--enquiries", type=int, nargs="+", default=[2000, 20000])
    args = parser.parse_args(argv)
    print(f"{'enquiries':>9}  {'command':<48}  seconds  peak MiB")
    for count in args.enquiries:
        with running_moto() as endpoint, tempfile.TemporaryDirectory() as scratch:
            emulator = Emulator(endpoint=endpoint, region=REGION)
            reset(emulator)
            dynamodb = emulator.client("dynamodb")
            create_table_from_template(dynamodb, TABLE)
            create_table_from_template(dynamodb, GUARD_TABLE, logical_id="GuardTable")
            emulator.client("secretsmanager").create_secret(Name=ADDRESS_SECRET, SecretString="bench-key")
            fill(emulator, count)
            with discovery(emulator) as url:
                for command in (
                    ["export", "--output", str(Path(scratch) / "enquiries.csv")],
                    ["export", "--format", "json", "--output", str(Path(scratch) / "enquiries.json")],
                    ["subject-access", "--email", ADDRESS.upper()],
                    ["erase", "--email", ADDRESS.upper(), "--yes"],
                    ["stats"],
                    ["list"],
                ):
                    seconds, peak, status = measure(_MEASURED, Path(scratch), "--local", url, *command)
                    shown = " ".join(part if "/" not in part else Path(part).name for part in command)
                    report(count, shown, seconds, peak, status)
            seconds, peak, status = measure(_BARE_SCAN, Path(scratch), emulator=endpoint)
            report(count, "(for comparison: a bare boto3 scan of id, email)", seconds, peak, status)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
