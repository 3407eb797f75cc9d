"""`make demo-page`: the demo page's form (site/index.html) written by `enquiries form-html enquiry`'s
generator from forms/enquiry.yaml, with the default SERVICES; tests/test_forms.py fails when the
page is stale. The local server serves the page as it is on disk."""

from __future__ import annotations

import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PAGE = REPO / "site" / "index.html"
_FORM = re.compile(
    r"(?P<start>( *)<!-- form: (?P<id>[a-z0-9-]+) [^\n]*-->\n).*?(?P<end>\2<!-- /form -->\n)", re.S
)


def demo_page(text: str) -> str:
    """The page with each `<!-- form: ID ... -->` ... `<!-- /form -->` block filled with that form."""
    from enquiries.settings import DEFAULT_SERVICES
    from enquiries_cli.forms import form_html, known_form

    def filled(match: re.Match[str]) -> str:
        indent = match.group(2)
        html = form_html(known_form(match["id"]), DEFAULT_SERVICES)
        body = "".join(indent + line if line.strip() else line for line in html.splitlines(keepends=True))
        return match["start"] + body + match["end"]

    return _FORM.sub(filled, text)


def main() -> int:
    sys.path.insert(0, str(REPO / "functions"))
    PAGE.write_text(demo_page(PAGE.read_text(encoding="utf-8")), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
