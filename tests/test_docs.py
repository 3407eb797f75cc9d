"""The documentation as a whole: a short README that links to pages by audience, and no link that
leaves the repository (a clone has nothing outside it)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from support import REPO

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), REPO / "CHANGELOG.md"]
LINK = re.compile(r"(?<!!)\[[^\]]+\]\(([^)\s]+)\)")


def test_readme_is_short_and_links_to_every_docs_page() -> None:
    # Given the README
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    # Then it stays short, and every page of the site is one link away from it
    assert len(readme.splitlines()) <= 200
    linked = {Path(target).name for target in LINK.findall(readme) if target.startswith("docs/")}
    pages = {page.name for page in (REPO / "docs").glob("*.md")} - {"index.md"}
    assert pages <= {name.split("#")[0] for name in linked}, pages - linked


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_docs_links_stay_inside_the_repository(page: Path) -> None:
    # Given every relative link of a page
    targets = [t.split("#")[0] for t in LINK.findall(page.read_text(encoding="utf-8"))]
    relative = [t for t in targets if t and not re.match(r"^[a-z]+:", t)]
    # Then each names a file of this repository
    for target in relative:
        resolved = (page.parent / target).resolve()
        assert resolved.is_relative_to(REPO), f"{page.name} links outside the repository: {target}"
        assert resolved.exists(), f"{page.name} links to a missing file: {target}"
