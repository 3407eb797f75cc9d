"""docs/configuration.md is written from the settings table: every variable the functions read has
its line, and nothing else does."""

from __future__ import annotations

from enquiries.settings import FIELDS_BY_VARIABLE
from scripts import configuration_reference


def test_configuration_reference_describes_exactly_the_settings_the_functions_read() -> None:
    # Given the settings table and the meanings written for the reference
    # Then each variable has one meaning, and no meaning is left for a variable no longer read
    assert set(configuration_reference.MEANINGS) == set(FIELDS_BY_VARIABLE)


def test_configuration_reference_page_is_current() -> None:
    # Given docs/configuration.md as committed
    # When it is written again from the settings table
    # Then it is the same (else: run `make configuration-reference`)
    assert configuration_reference.main(["--check"]) == 0


def test_configuration_reference_shows_the_code_defaults() -> None:
    # Given the page as written from the code
    page = configuration_reference.render()
    # Then defaults come from the Settings dataclass, and required ones say so
    assert "| `RATE_LIMIT_PER_HOUR` | `10` |" in page
    assert "| `REQUIRE_CONSENT` | `true` |" in page
    assert "| `TABLE_NAME` | required |" in page
    assert "| `CLINIC_EMAIL` | required by the notifier |" in page
