"""`python -m bench.load`, small: the local server under a short concurrent load loses nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_load_small_run_loses_nothing_and_stops_by_itself() -> None:
    # Given the load tool, told to send 60 enquiries over 4 connections
    command = [sys.executable, "-m", "bench.load", "--requests", "60", "--concurrency", "4"]

    # When it runs (it starts and stops the local server itself)
    done = subprocess.run(  # noqa: S603 - our own interpreter and module, fixed arguments
        command,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )

    # Then every enquiry was answered 201, stored and emailed, and it says so
    assert done.returncode == 0, done.stdout + done.stderr
    assert "statuses: 201: 60\n" in done.stdout
    assert "stored: 60, emailed: 60 " in done.stdout
    assert "lost: 0 " in done.stdout
    assert "result: ok" in done.stdout
