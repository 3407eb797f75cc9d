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

# DEL and the C1 control characters: json.dumps leaves them as they are when it keeps non-ASCII
# text, and some terminals act on them (U+009B starts an escape sequence).
_C1_CONTROLS = re.compile("[\u007f-\u009f]")


# What a terminal acts on instead of showing: the C0 controls but tab and line feed (a carriage return
# only when it ends a line, as CSV's do), DEL and the C1 controls. ESC and U+009B (CSI) start an
# escape sequence that moves the cursor or recolours text, ESC ] and U+009D (OSC) one that retitles
# the window (ECMA-48, https://ecma-international.org/publications-and-standards/standards/ecma-48/).
_TERMINAL_CONTROLS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]|\r(?!\n)")


def terminal_safe(text: str) -> str:
    """`text` with every character a terminal would act on shown as U+FFFD, one for one."""
    return _TERMINAL_CONTROLS.sub("\ufffd", text)


class _TerminalSafeWriter(io.TextIOWrapper):
    def write(self, text: str) -> int:
        return super().write(terminal_safe(text))


def json_text(value: Any, *, indent: int | None = 2) -> str:
    """`value` as JSON, non-Latin text kept as it is (not \\u-escaped), control characters escaped."""
    text = json.dumps(value, ensure_ascii=False, indent=indent)
    return _C1_CONTROLS.sub(lambda match: f"\\u{ord(match.group()):04x}", text)


def one_line(value: Any) -> str:
    """Stored text for a one-line listing: white space runs folded to one space, and any other
    control or formatting character (an escape sequence, a right-to-left override) shown as U+FFFD."""
    text = " ".join(str(value).split())
    return "".join("\ufffd" if unicodedata.category(char) in ("Cc", "Cf") else char for char in text)


def stdout_is_terminal() -> bool:
    return sys.stdout.isatty()


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
    """Standard output as UTF-8 whatever the locale says, so non-Latin text is never mangled. On a
    terminal, every command's output goes through `terminal_safe`; a pipe or a file gets the data
    exactly as stored."""
    sys.stdout.flush()
    buffer = getattr(sys.stdout, "buffer", None)
    if buffer is None:
        yield sys.stdout
        return
    kind = _TerminalSafeWriter if stdout_is_terminal() else io.TextIOWrapper
    stream = kind(buffer, encoding="utf-8", newline="", write_through=True)
    try:
        yield stream
    finally:
        stream.flush()
        stream.detach()  # leave sys.stdout open


class FileExists(click.UsageError):
    """`--output` names a file that is there already, and `--force` was not given (exit status 2)."""

    def __init__(self, path: str) -> None:
        super().__init__(f"{path} already exists: give another file name, or add --force to replace it")


def refuse_to_overwrite(path: str | None, *, force: bool) -> None:
    """Stop before any work when `--output` would replace a file without `--force`."""
    if path not in (None, "-") and not force and os.path.lexists(path):
        raise FileExists(str(path))


@contextlib.contextmanager
def output_file(path: str | None, *, newline: str | None, force: bool = True) -> Iterator[TextIO]:
    """`path`, written in full or not at all, readable only by its owner (it holds health data);
    standard output when None. Without `force`, a file already at `path` is left as it is (FileExists),
    also one made while this was writing."""
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
        if force:
            os.replace(partial, final)
        else:
            try:
                os.link(partial, final)  # unlike a rename, fails when `final` exists
            except FileExistsError:
                raise FileExists(str(path)) from None
    finally:
        partial.unlink(missing_ok=True)
