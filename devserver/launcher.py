"""The local server as a child process, for the tests, the load test and the screenshot script.

`python -m devserver --port 0` on a free loopback port (127.0.0.1 unless asked otherwise), with the
settings a developer's shell might carry removed, its output read for its whole life (so a full pipe
never blocks it) and kept, and its URL taken from the line it prints once it is ready.
"""

from __future__ import annotations

import contextlib
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

from devserver.environment import SETTING_NAMES

REPO = Path(__file__).resolve().parent.parent
READY_PREFIX = "enquiries local server ready at "
READY_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 10.0

# Settings a developer's shell might carry that would change what the server does; the server's
# own defaults are what callers expect.
CLEARED_SETTINGS = (*SETTING_NAMES, "AWS_ENDPOINT_URL", "AWS_PROFILE")


class ServerNotReady(RuntimeError):
    """The server stopped, or printed no ready line in time; the message holds its output."""


class LocalServerProcess:
    def __init__(self, settings: Mapping[str, str] | None = None, host: str = "127.0.0.1") -> None:
        env = {name: value for name, value in os.environ.items() if name not in CLEARED_SETTINGS}
        # Callers send many enquiries from one address (the server's default has no rate limit), and
        # more than a day's cap of clinic emails (a load run stores thousands), which has its own.
        env["NOTIFICATION_DAILY_CAP"] = "1000000"
        env.update(settings or {})
        self.output: list[str] = []
        self.url = ""
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module; no shell
            [sys.executable, "-m", "devserver", "--host", host, "--port", "0"],
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )
        self._ready: queue.Queue[str] = queue.Queue()
        self._drainer = threading.Thread(target=self._drain, daemon=True)
        self._drainer.start()

    def _drain(self) -> None:
        assert self.process.stdout is not None
        # Closed once the server has stopped writing: an open pipe would outlive it (a ResourceWarning).
        with self.process.stdout as lines:
            for line in lines:
                self.output.append(line)
                if line.startswith(READY_PREFIX):
                    self._ready.put(line[len(READY_PREFIX) :].strip())
        self._ready.put("")  # the server stopped

    def wait_ready(self, timeout: float = READY_TIMEOUT_SECONDS) -> str:
        """The server's URL once it is ready; ServerNotReady (and the process killed) otherwise."""
        try:
            self.url = self._ready.get(timeout=timeout)
        except queue.Empty:
            self.url = ""
        if not self.url:
            self.process.kill()
            raise ServerNotReady("the local server never became ready:\n" + "".join(self.output))
        return self.url

    def wait_for_output(self, text: str, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(text in line for line in list(self.output)):
                return
            time.sleep(0.02)
        raise AssertionError(f"{text!r} never appeared in the server's output")

    def wait_exit(self, timeout: float = STOP_TIMEOUT_SECONDS) -> int:
        """The server's exit code, once it has stopped and all its output is read (and the pipe closed)."""
        code = self.process.wait(timeout=timeout)
        self._drainer.join(timeout)
        return code

    def stop(self) -> int:
        """Terminate the server (killing it if it does not stop in time); its exit code."""
        self.process.terminate()
        try:
            return self.wait_exit()
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.wait_exit()


@contextlib.contextmanager
def local_server(
    settings: Mapping[str, str] | None = None, host: str = "127.0.0.1"
) -> Iterator[LocalServerProcess]:
    """A ready local server for the block; stopped after it, whatever happens."""
    server = LocalServerProcess(settings, host)
    try:
        server.wait_ready()
        yield server
    finally:
        if server.process.poll() is None:
            server.stop()
