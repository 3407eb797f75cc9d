"""What the docs say about site/enquiry-form.js, checked against the file itself."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "site" / "enquiry-form.js"
# The sentence that states the script's size, wherever the site owner's page is (README or docs/).
SIZE_SENTENCE = re.compile(
    r"(?P<plain>\d+(?:\.\d)?) KB as shipped, unminified, and (?P<gzipped>\d+(?:\.\d)?) KB\s+gzipped"
)
# An edit that moves the size by less than this needs no change to the docs.
TOLERANCE_KB = 0.5


def _size_statements() -> list[tuple[Path, float, float]]:
    pages = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
    return [
        (page, float(found["plain"]), float(found["gzipped"]))
        for page in pages
        for found in SIZE_SENTENCE.finditer(page.read_text(encoding="utf-8"))
    ]


def test_site_script_size_in_the_docs_is_the_files() -> None:
    # Given the script as shipped, measured as the docs say (wc -c, and gzip -9 | wc -c)
    data = SCRIPT.read_bytes()
    plain_kb, gzipped_kb = len(data) / 1000, len(gzip.compress(data, compresslevel=9)) / 1000
    # When the docs' statements of its size are read
    statements = _size_statements()
    # Then there is one, and it gives both figures to within the tolerance
    assert statements, f"no page states the script's size as {SIZE_SENTENCE.pattern!r}"
    for page, plain, gzipped in statements:
        where = page.relative_to(REPO)
        assert abs(plain - plain_kb) <= TOLERANCE_KB, (
            f"{where}: {plain} KB, but the file is {plain_kb:.1f} KB"
        )
        assert abs(gzipped - gzipped_kb) <= TOLERANCE_KB, (
            f"{where}: {gzipped} KB gzipped, but the file gzips to {gzipped_kb:.1f} KB"
        )
