"""Run by tests/test_build.py with the runtime's Python, isolated (-I): both handlers, from a built layout.

argv: a JSON object with `path` (the function's folder, then each layer's python/, then a folder with
boto3, as Lambda orders sys.path), `submit_event` and `stream_event`. Prints one JSON line: what each
handler answered, the modules Python compiled from source instead of loading their bytecode, and the
top-level packages imported, and where some came from.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import json
import sys
from pathlib import Path
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


def lambda_context() -> Any:
    """Lambda's context, the repository's one (emulator/lambda_context.py), loaded from its file: this
    child runs isolated, without the repository on sys.path."""
    path = Path(__file__).resolve().parent.parent / "emulator" / "lambda_context.py"
    spec = importlib.util.spec_from_file_location("lambda_context", path)
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.LambdaContext(remaining_millis=30_000)


def main() -> None:
    arguments = json.loads(sys.argv[1])
    sys.path[:0] = arguments["path"]
    importlib.machinery.SourceFileLoader.source_to_code = _recording_source_to_code  # type: ignore[method-assign]

    submit = importlib.import_module("enquiries.api.submit")
    submitted = submit.lambda_handler(arguments["submit_event"], lambda_context())
    notifier = importlib.import_module("enquiries.notify.handler")
    notified = notifier.lambda_handler(arguments["stream_event"], lambda_context())

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
