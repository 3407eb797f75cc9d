"""Renders the notification email for the enquiry in events/stream-insert.json to docs/.

`make sample-email` runs it, so staff and reviewers can see what arrives without sending anything.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    sys.path.insert(0, str(REPO / "functions"))
    from enquiries.notify.mail_settings import mail_settings
    from enquiries.notify.message import compose
    from enquiries.settings import load_settings
    from enquiries.storage.enquiry_store import plain_item

    event = json.loads((REPO / "events" / "stream-insert.json").read_text())
    item = plain_item(event["Records"][0]["dynamodb"]["NewImage"])
    settings = load_settings(
        {
            "TABLE_NAME": "sample",
            "CLINIC_EMAIL": "Front desk <frontdesk@clinic.example>",
            "SENDER_EMAIL": "Clinic website <enquiries@clinic.example>",
        }
    )
    message = compose(item, mail_settings(settings), now=datetime(2026, 11, 21, 10, 15, 31, tzinfo=UTC))
    html = message.get_body(("html",))
    text = message.get_body(("plain",))
    if html is None or text is None:
        raise SystemExit("the notification email lacks a text or an HTML part")
    out = REPO / "docs"
    out.mkdir(exist_ok=True)
    (out / "sample-notification.html").write_text(html.get_content())
    (out / "sample-notification.txt").write_text(text.get_content())
    print(f"wrote {out / 'sample-notification.html'} and {out / 'sample-notification.txt'}")


if __name__ == "__main__":
    main()
