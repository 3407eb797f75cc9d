"""Save docs/demo-form-errors.png: the demo page after sending it empty, with the server's inline errors.

Run by `make screenshot`. Starts `python -m devserver` on a free port and drives Debian's Chromium
(/usr/bin/chromium, or $CHROMIUM) with Playwright; no browser is downloaded.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

from devserver.launcher import local_server

REPO = Path(__file__).resolve().parent.parent
OUTPUT = REPO / "docs" / "demo-form-errors.png"
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))


def main() -> int:
    if not CHROMIUM.exists():
        print(f"{CHROMIUM} is missing: install Debian's chromium package, or set CHROMIUM", file=sys.stderr)
        return 1
    with local_server() as server, sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"],
        )
        page = browser.new_page(viewport={"width": 760, "height": 900})
        page.goto(server.url + "/")
        page.get_by_label("Email address").fill("jane@")
        page.get_by_role("button", name="Send enquiry").click()
        expect(page.locator(".enquiry-status")).to_contain_text("correcting")
        page.mouse.move(0, 0)  # no hover effect in the picture
        page.screenshot(path=OUTPUT, full_page=True)
        browser.close()
    print(f"saved {OUTPUT.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
