"""docs/api.md, the repository's API reference, against the code and the tests' copy of the contract:
its tables must say what the API does."""

from __future__ import annotations

import re

from support import CONTRACT_ERRORS, CONTRACT_OTHER_ERRORS, REPO

from enquiries.api.errors import MESSAGES
from enquiries.settings import FIELDS_BY_VARIABLE

API = (REPO / "docs" / "api.md").read_text(encoding="utf-8")


def _section(title: str) -> str:
    """The text under a `## ` or `### ` heading, up to the next heading of any level."""
    match = re.search(rf"^#+ {re.escape(title)}\n(.*?)(?=^#+ |\Z)", API, flags=re.M | re.S)
    assert match, f"docs/api.md has no section {title!r}"
    return match.group(1)


def _error_rows() -> set[tuple[int, str]]:
    rows = re.findall(r"^\| (\d{3}) \|[^\n]*\| `([a-z_]+)` \|$", _section("Responses"), flags=re.M)
    return {(int(status), code) for status, code in rows}


def test_api_reference_lists_every_error_code_the_api_sends() -> None:
    # Given the Responses table of docs/api.md, and the codes the API's error bodies can carry
    documented = _error_rows()
    # Then each code the code can send has its row, and each row names a code the code sends
    assert {code for _, code in documented} == set(MESSAGES)


def test_api_reference_statuses_are_the_contracts() -> None:
    # Given the tests' own copy of the contract's status -> code table
    contract = {(status, code) for status, code in CONTRACT_ERRORS.items()}
    contract |= {(status, code) for status, codes in CONTRACT_OTHER_ERRORS.items() for code in codes}
    # Then docs/api.md pairs each status with the same codes
    assert _error_rows() == contract


def test_api_reference_names_only_settings_the_functions_read() -> None:
    # Given the settings the Configuration section names
    named = set(re.findall(r"`([A-Z][A-Z_]+)`", _section("Configuration")))
    # Then each is read by the settings table, or is one of the standard AWS variables
    assert named - {"AWS_REGION", "AWS_ENDPOINT_URL"} <= set(FIELDS_BY_VARIABLE)
