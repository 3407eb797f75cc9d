"""Renders the notification email for the enquiry in events/stream-insert.json to docs/, and the
acknowledgement its enquirer gets when ACKNOWLEDGE_ENQUIRER is on.

`make sample-email` runs it, so staff and reviewers can see what arrives without sending anything;
`--check` only compares, and exits 1 when the committed files are stale.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OUTPUT_DIR = REPO / "docs"
HTML_NAME = "sample-notification.html"
TEXT_NAME = "sample-notification.txt"
ACK_HTML_NAME = "sample-acknowledgement.html"
ACK_TEXT_NAME = "sample-acknowledgement.txt"


def _parts(message: EmailMessage, html_name: str, text_name: str) -> dict[str, str]:
    html = message.get_body(("html",))
    text = message.get_body(("plain",))
    if html is None or text is None:
        raise SystemExit(f"the {message['Subject']!r} email lacks a text or an HTML part")
    return {html_name: str(html.get_content()), text_name: str(text.get_content())}


def render() -> dict[str, str]:
    """The sample emails' HTML and text parts, by file name."""
    if str(REPO / "functions") not in sys.path:
        sys.path.insert(0, str(REPO / "functions"))
    from enquiries.aws import plain_item
    from enquiries.notify.ack_message import acknowledgement_mail, compose_acknowledgement
    from enquiries.notify.headers import reply_to
    from enquiries.notify.mail_settings import mail_settings
    from enquiries.notify.message import compose
    from enquiries.settings import load_settings

    event = json.loads((REPO / "events" / "stream-insert.json").read_text())
    item = plain_item(event["Records"][0]["dynamodb"]["NewImage"])
    settings = load_settings(
        {
            "TABLE_NAME": "sample",
            "CLINIC_EMAIL": "Front desk <frontdesk@clinic.example>",
            "SENDER_EMAIL": "Clinic website <enquiries@clinic.example>",
            "ACKNOWLEDGE_ENQUIRER": "true",
            "CLINIC_NAME": "Riverside Osteopathy",
            "CLINIC_PHONE": "01632 960123",
        }
    )
    mail = mail_settings(settings)
    now = datetime(2026, 11, 21, 10, 15, 31, tzinfo=UTC)
    notification = compose(item, mail, now=now)
    acknowledgement = compose_acknowledgement(
        reply_to("", str(item["email"])), acknowledgement_mail(settings, mail), now=now
    )
    return {
        **_parts(notification, HTML_NAME, TEXT_NAME),
        **_parts(acknowledgement, ACK_HTML_NAME, ACK_TEXT_NAME),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.sample_email", description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if the files are stale")
    parser.add_argument("--output", type=Path, default=OUTPUT_DIR, help="the folder of the files")
    args = parser.parse_args(argv)
    output: Path = args.output
    rendered = render()
    if args.check:
        stale = [
            name
            for name, text in rendered.items()
            if not (output / name).exists() or (output / name).read_text(encoding="utf-8") != text
        ]
        if stale:
            print(f"stale in {output}: {', '.join(stale)}: run `make sample-email`", file=sys.stderr)
            return 1
        print(f"{', '.join(str(output / name) for name in rendered)} are up to date")
        return 0
    output.mkdir(parents=True, exist_ok=True)
    for name, text in rendered.items():
        (output / name).write_text(text, encoding="utf-8")
    print(f"wrote {', '.join(str(output / name) for name in rendered)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
