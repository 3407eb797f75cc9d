"""The warm-up event: what a schedule sends the submission function's `live` alias to keep it in use.

With SnapStart, Lambda makes a function version Inactive when it "hasn't been invoked for 14 days", and
invoking it then fails with SnapStartNotReadyException until it is Active again
(https://docs.aws.amazon.com/lambda/latest/dg/snapstart-troubleshooting.html): a quiet clinic's next
visitor would get API Gateway's bare 5xx. template.yaml's SnapStartWarmUpSchedule (SnapStart on and the
canary off: the canary's request through the API invokes `live` too) sends this event daily. The
handler answers it at once, storing and reading nothing. No HTTP API event equals it: those always
carry a version, a route key and a request context.

tests/test_warm_up.py checks that events/warm-up.json and the schedule's Input are this event.
"""

from __future__ import annotations

from typing import Any

from enquiries.log import logger

WARM_UP_EVENT = {"enquiries": "warm-up"}
WARM_UP_ANSWER = {"warmedUp": True}


def is_warm_up(event: Any) -> bool:
    return bool(event == WARM_UP_EVENT)


def answer_warm_up() -> dict[str, Any]:
    logger.info("warm-up", extra={"outcome": "warm-up"})
    return dict(WARM_UP_ANSWER)
