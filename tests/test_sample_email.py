"""docs/sample-notification.* and docs/sample-acknowledgement.*: the notification email for
events/stream-insert.json and its enquirer's acknowledgement, as committed."""

from __future__ import annotations

from pathlib import Path

from scripts import sample_email


def test_sample_email_committed_files_are_current() -> None:
    # Given the committed sample email in docs/
    # When the generator compares it with what the notifier composes today
    # Then they are the same (else: run `make sample-email`)
    assert sample_email.main(["--check"]) == 0


def test_sample_email_check_mode_exits_1_for_stale_files_and_0_after_writing(tmp_path: Path) -> None:
    # Given a folder with a stale text part and no other
    (tmp_path / sample_email.TEXT_NAME).write_text("an old email\n", encoding="utf-8")
    # When --check compares it, then the files are written, then compared again
    stale = sample_email.main(["--check", "--output", str(tmp_path)])
    written = sample_email.main(["--output", str(tmp_path)])
    fresh = sample_email.main(["--check", "--output", str(tmp_path)])
    # Then --check fails only before writing, and both parts of both emails are written
    assert (stale, written, fresh) == (1, 0, 0)
    assert "<html" in (tmp_path / sample_email.HTML_NAME).read_text(encoding="utf-8").lower()
    assert "New enquiry" in (tmp_path / sample_email.TEXT_NAME).read_text(encoding="utf-8")
    assert "<html" in (tmp_path / sample_email.ACK_HTML_NAME).read_text(encoding="utf-8").lower()
    assert "not for emergencies" in (tmp_path / sample_email.ACK_TEXT_NAME).read_text(encoding="utf-8")


def test_sample_email_check_mode_finds_a_stale_acknowledgement(tmp_path: Path) -> None:
    # Given current files, but for the acknowledgement's HTML part, which an older wording left
    assert sample_email.main(["--output", str(tmp_path)]) == 0
    (tmp_path / sample_email.ACK_HTML_NAME).write_text("<html>an older wording</html>\n", encoding="utf-8")
    # When --check compares them
    # Then it fails
    assert sample_email.main(["--check", "--output", str(tmp_path)]) == 1
