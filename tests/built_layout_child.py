"""Run by tests/test_build.py with the runtime's Python, isolated (-I): both handlers, from a built layout.

argv: a JSON object with `path` (the function's folder, then each layer's python/, then a folder with
boto3, as Lambda orders sys.path), `submit_event` and `stream_event`. Prints one JSON line: what each
handler answered, the modules Python compiled from source instead of loading their bytecode, and the
top-level packages imported, and where some came from.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import json
import sys
from typing import Any

# Where these were imported from: the function's folder or a layer, not this machine's own packages.
LOCATED = (
    "enquiries",
    "email_validator",
    "phonenumbers",
    "aws_lambda_powertools",
)
compiled_from_source: list[str] = []
_source_to_code = importlib.machinery.SourceFileLoader.source_to_code


def _recording_source_to_code(self: Any, data: Any, path: Any, *args: Any, **kwargs: Any) -> Any:
    """The import system calls this only when a module has no valid bytecode."""
    compiled_from_source.append(str(path))
    return _source_to_code(self, data, path, *args, **kwargs)


class FakeContext:
    function_name = "SubmitEnquiryFunction"
    function_version = "$LATEST"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:eu-west-2:123456789012:function:SubmitEnquiryFunction"
    aws_request_id = "6f1c2b9e-0d4a-4b8e-9a59-3f0e2f4c1a77"
    log_group_name = "/aws/lambda/SubmitEnquiryFunction"
    log_stream_name = "2026/11/21/[$LATEST]0123456789abcdef"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def main() -> None:
    arguments = json.loads(sys.argv[1])
    sys.path[:0] = arguments["path"]
    importlib.machinery.SourceFileLoader.source_to_code = _recording_source_to_code  # type: ignore[method-assign]

    submit = importlib.import_module("enquiries.api.submit")
    submitted = submit.lambda_handler(arguments["submit_event"], FakeContext())
    notifier = importlib.import_module("enquiries.notify.handler")
    notified = notifier.lambda_handler(arguments["stream_event"], FakeContext())

    result = {
        "submit_status": submitted["statusCode"],
        "notify_result": notified,
        "compiled_from_source": compiled_from_source,
        "packages": sorted({name.partition(".")[0] for name in sys.modules}),
        "module_files": {name: getattr(sys.modules[name], "__file__", None) for name in LOCATED},
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
