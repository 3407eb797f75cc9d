"""Writing for people and for files: JSON that keeps every script intact, one-line text a terminal
cannot be tricked by, and progress on standard error only when someone is watching it."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import sys
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TextIO

import click

# C1 control characters: json.dumps leaves them as they are when it keeps non-ASCII text, and some
# terminals act on them (U+009B starts an escape sequence).
_C1_CONTROLS = re.compile("[\u0080-\u009f]")


def json_text(value: Any, *, indent: int | None = 2) -> str:
    """`value` as JSON, non-Latin text kept as it is (not \\u-escaped), control characters escaped."""
    text = json.dumps(value, ensure_ascii=False, indent=indent)
    return _C1_CONTROLS.sub(lambda match: f"\\u{ord(match.group()):04x}", text)


def one_line(value: Any) -> str:
    """Stored text for a one-line listing: white space runs folded to one space, and any other
    control or formatting character (an escape sequence, a right-to-left override) shown as U+FFFD."""
    text = " ".join(str(value).split())
    return "".join("\ufffd" if unicodedata.category(char) in ("Cc", "Cf") else char for char in text)


def stderr_is_terminal() -> bool:
    return sys.stderr.isatty()


def stdin_is_terminal() -> bool:
    return sys.stdin.isatty()


@contextlib.contextmanager
def progress(label: str, length: int | None = None) -> Iterator[Callable[[int], None]]:
    """A function to call with how many more items are done. It draws a bar on standard error when
    that is a terminal, and does nothing otherwise, so pipes and files get only the results."""
    if not stderr_is_terminal():
        yield lambda done: None
        return
    # A generator has no length, so the bar counts up without a total when `length` is unknown.
    no_steps: tuple[int, ...] = ()
    steps: Iterable[int] = range(length) if length is not None else (step for step in no_steps)
    with click.progressbar(steps, label=label, file=sys.stderr, show_pos=True, length=length) as bar:
        yield bar.update


@contextlib.contextmanager
def utf8_stdout() -> Iterator[TextIO]:
    """Standard output as UTF-8 whatever the locale says, so non-Latin text is never mangled."""
    sys.stdout.flush()
    buffer = getattr(sys.stdout, "buffer", None)
    if buffer is None:
        yield sys.stdout
        return
    stream = io.TextIOWrapper(buffer, encoding="utf-8", newline="", write_through=True)
    try:
        yield stream
    finally:
        stream.flush()
        stream.detach()  # leave sys.stdout open


@contextlib.contextmanager
def output_file(path: str | None, *, newline: str | None) -> Iterator[TextIO]:
    """`path`, written in full or not at all, readable only by its owner (it holds health data);
    standard output when None."""
    if path is None or path == "-":
        with utf8_stdout() as stream:
            yield stream
        return
    final = Path(path)
    partial = final.with_name(final.name + ".part")
    partial.unlink(missing_ok=True)  # a left-over one may be readable by others
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with open(descriptor, "w", encoding="utf-8", newline=newline) as stream:
            yield stream
        os.replace(partial, final)
    finally:
        partial.unlink(missing_ok=True)
