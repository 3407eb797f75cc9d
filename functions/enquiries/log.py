"""The structured logger every function shares. Log ids, statuses and reasons; never enquiry content.

Libraries log too, and what they format can hold the request: python-multipart writes an unknown
part header's value at WARNING, botocore writes each call's parameters (the enquiry, the email) at
DEBUG. So every record from a logger that is not ours has its message, arguments, exception and
stack replaced, as it is made, by a fixed sentence naming only the logger, the level and the source
line. It is done in the log record factory (https://docs.python.org/3/library/logging.html#logging.setLogRecordFactory),
which makes every record of every logger before any handler or filter sees it. Per-library levels
would miss the next library; a filter on the root handlers would miss handlers added later or on a
library's own logger, and Python's last-resort handler; letting through "records without arguments"
would pass a message a library formatted itself. This way it holds for every library, every
handler (Lambda's, Powertools', anyone's) and every level an operator may set
(AWS_LAMBDA_LOG_LEVEL, POWERTOOLS_LOG_LEVEL; see https://docs.aws.amazon.com/lambda/latest/dg/python-logging.html).
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable
from typing import Any, TypeVar

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.lambda_context import build_lambda_context_model

# The deployed functions get both from the template: the service is the stack's name, so that two clinics'
# stacks in one account never share a metric or an alarm. The defaults are for local runs.
SERVICE_NAME_VARIABLE = "POWERTOOLS_SERVICE_NAME"
METRICS_NAMESPACE_VARIABLE = "POWERTOOLS_METRICS_NAMESPACE"
logger = Logger(service=os.environ.get(SERVICE_NAME_VARIABLE, "enquiries"))


def metrics_names() -> tuple[str, str]:
    """The metrics' namespace and service dimension, as the environment names them now."""
    return (
        os.environ.get(METRICS_NAMESPACE_VARIABLE, "Enquiries"),
        os.environ.get(SERVICE_NAME_VARIABLE, "enquiries"),
    )


# Our loggers, and their children: this code's, the local server's and its emulator's (they run the
# handlers in their own process and log methods, paths, statuses, counts and exception types).
OWN_LOGGERS = frozenset({logger.name, "enquiries", "devserver", "emulator"})
WITHHELD = "log line withheld: third-party log lines may carry request content"


def is_own_logger(name: str) -> bool:
    return any(name == own or name.startswith(own + ".") for own in OWN_LOGGERS)


def _withholding(make_record: Callable[..., logging.LogRecord]) -> Callable[..., logging.LogRecord]:
    # logging.Logger.makeRecord's signature, which this stands in for: its arguments are not ours to group.
    def make_withheld_record(  # noqa: PLR0913, PLR0917
        name: str,
        level: int,
        pathname: str,
        lineno: int,
        msg: object,
        args: Any,
        exc_info: Any,
        func: str | None = None,
        sinfo: str | None = None,
        **kwargs: Any,
    ) -> logging.LogRecord:
        if is_own_logger(name):
            return make_record(name, level, pathname, lineno, msg, args, exc_info, func, sinfo, **kwargs)
        # The location is code, never content: enough to look up what the library logs there.
        where = f"{os.path.basename(pathname)}:{lineno}"
        error = exc_info[0].__name__ if isinstance(exc_info, tuple) and exc_info[0] else None
        message = f"{name} ({where}{', ' + error if error else ''}): {WITHHELD}"
        return make_record(name, level, pathname, lineno, message, (), None, func, None, **kwargs)

    make_withheld_record.withholds = True  # type: ignore[attr-defined]
    return make_withheld_record


def withhold_third_party_log_content() -> None:
    """Install the record factory above, once per process (a reload must not wrap it twice)."""
    current = logging.getLogRecordFactory()
    if not getattr(current, "withholds", False):
        logging.setLogRecordFactory(_withholding(current))


withhold_third_party_log_content()


def announces_more_than_a_withholding(record: logging.LogRecord) -> bool:
    """A handler filter for a terminal (the local server's): a library's record below WARNING is only
    the sentence above once withheld, so it is dropped there rather than announced on every call;
    a library's warning or error still shows, withheld, and our own lines all show."""
    return record.levelno >= logging.WARNING or is_own_logger(record.name)


Result = TypeVar("Result")


def with_invocation_keys(
    handler: Callable[[dict[str, Any], Any], Result],
) -> Callable[[dict[str, Any], Any], Result]:
    """Powertools' `inject_lambda_context` (log_event off), with the keys held by the invocation's
    thread and removed after it, not appended to the logger every handler shares.

    In Lambda one process runs one function; the local server runs both handlers in one process, in
    different threads, and shared keys made one function's lines carry the other's name. Powertools'
    thread-safe keys live in a context variable
    (thread_safe_append_keys: https://docs.aws.amazon.com/powertools/python/latest/api_doc/logger/formatter).
    """
    cold = [True]  # this handler's first invocation in this process, as Powertools counts it

    @functools.wraps(handler)
    def invoke(event: dict[str, Any], context: Any) -> Result:
        keys = {"cold_start": cold[0], **build_lambda_context_model(context).__dict__}
        cold[0] = False
        logger.thread_safe_append_keys(**keys)
        try:
            return handler(event, context)
        finally:
            logger.thread_safe_remove_keys([*keys, "correlation_id"])

    return invoke


def set_correlation_id(value: str | None) -> None:
    """The request's id on every line of this invocation (and only this one)."""
    logger.thread_safe_append_keys(correlation_id=value)
