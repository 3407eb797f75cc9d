"""One cold start, in a fresh process: `python -m bench.cold_child <module>` with the event on stdin.

Run by `python -m bench` once per cold sample, with the same environment and arguments for both sides
except the handler module. Before the clock starts it has only what the Lambda runtime itself has loaded
before it imports a handler (the interpreter, `json`, the event already parsed); the clock then covers
importing `<module>` and serving its first request (`lambda_handler(event, context)`). The result is the
last stdout line, after the marker, as JSON (the handler's own log lines may precede it).
"""

from __future__ import annotations

import importlib
import json
import sys
import time
from typing import Any

RESULT_MARKER = "BENCH-COLD-RESULT "


class FakeContext:
    """The attributes of a Lambda context object that Powertools reads."""

    function_name = "SubmitEnquiryFunction"
    function_version = "$LATEST"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:eu-west-2:123456789012:function:SubmitEnquiryFunction"
    aws_request_id = "6f1c2b9e-0d4a-4b8e-9a59-3f0e2f4c1a77"
    log_group_name = "/aws/lambda/SubmitEnquiryFunction"
    log_stream_name = "2026/11/21/[$LATEST]0123456789abcdef"

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m bench.cold_child <handler module>  (event JSON on stdin)", file=sys.stderr)
        return 2
    event = json.loads(sys.stdin.read())
    context = FakeContext()

    start = time.perf_counter()
    module = importlib.import_module(argv[0])
    imported = time.perf_counter()
    response: dict[str, Any] = module.lambda_handler(event, context)
    done = time.perf_counter()

    result = {
        "import_ms": (imported - start) * 1000,
        "first_request_ms": (done - imported) * 1000,
        "total_ms": (done - start) * 1000,
        "status": response.get("statusCode"),
        "body": response.get("body"),
    }
    sys.stdout.write("\n" + RESULT_MARKER + json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
