"""Lambda's context object, as the handlers and Powertools read it: the one stand-in for the tests, the
local server and the benchmark's children.

It imports nothing but `time`, which the Lambda runtime's bootstrap imports before any handler, so the
benchmark's cold-start child (bench/lambda_child.py, copied beside it) measures no import of its own.
The attributes are those of https://docs.aws.amazon.com/lambda/latest/dg/python-context.html.
"""

from __future__ import annotations

import time

FUNCTION_NAME = "SubmitEnquiryFunction"
REQUEST_ID = "6f1c2b9e-0d4a-4b8e-9a59-3f0e2f4c1a77"


class LambdaContext:
    """One invocation's context. Its remaining time is `remaining_millis` throughout, or, with
    `deadline` (a `time.monotonic()` value), what is left until then."""

    function_version = "$LATEST"

    def __init__(  # noqa: PLR0913 - one keyword a context attribute; all have defaults
        self,
        *,
        function_name: str = FUNCTION_NAME,
        invoked_function_arn: str | None = None,
        memory_limit_in_mb: int = 512,
        aws_request_id: str = REQUEST_ID,
        log_group_name: str | None = None,
        log_stream_name: str = "2026/11/21/[$LATEST]0123456789abcdef",
        remaining_millis: int = 120_000,
        deadline: float | None = None,
    ) -> None:
        self.function_name = function_name
        self.invoked_function_arn = (
            invoked_function_arn or f"arn:aws:lambda:eu-west-2:123456789012:function:{function_name}"
        )
        self.memory_limit_in_mb = memory_limit_in_mb
        self.aws_request_id = aws_request_id
        self.log_group_name = log_group_name or f"/aws/lambda/{function_name}"
        self.log_stream_name = log_stream_name
        self.remaining_millis = remaining_millis
        self.deadline = deadline

    def get_remaining_time_in_millis(self) -> int:
        if self.deadline is None:
            return self.remaining_millis
        return max(0, int((self.deadline - time.monotonic()) * 1000))
