"""Imported by every Python the tests start (tests/aws_permissions.py puts this directory on their
PYTHONPATH): when the tests ask for it, the local server and the operator's command record each AWS
call their code makes, with the role that makes it, for the tests to check against template.yaml (as
they check their own). Any other Python (a build's, a benchmark's) is left as it is."""

import os
import sys

_RECORDED = ("devserver", "enquiries_cli")


def _records() -> bool:
    argv = getattr(sys, "orig_argv", [])
    return bool(os.environ.get("ENQUIRIES_TEST_AWS_CALLS")) and any(
        argv[index : index + 2] == ["-m", module] for index in range(len(argv)) for module in _RECORDED
    )


if _records():
    import botocore.handlers

    def _record(**kwargs: object) -> None:
        # Imported at the first call, when the program has put the repository on sys.path.
        from aws_permissions import CHILD_CALLS, RECORDER

        if RECORDER.sink is None:
            RECORDER.sink = os.path.join(os.environ[CHILD_CALLS], f"calls-{os.getpid()}.jsonl")
        RECORDER(**kwargs)  # type: ignore[arg-type]

    botocore.handlers.BUILTIN_HANDLERS.append(("before-parameter-build", _record))

    def _record_json(service: str, operation: str, params: dict[str, object]) -> None:
        from aws_permissions import CHILD_CALLS, RECORDER

        if RECORDER.sink is None:
            RECORDER.sink = os.path.join(os.environ[CHILD_CALLS], f"calls-{os.getpid()}.jsonl")
        RECORDER.record(service, operation, params)

    # The submission path's own client (enquiries/aws_json.py), from the repository's functions/, which
    # the local server puts first on sys.path too.
    _functions = os.path.join(
        os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "functions"
    )
    sys.path.append(_functions)
    from enquiries import aws_json

    aws_json.OBSERVERS.append(_record_json)
