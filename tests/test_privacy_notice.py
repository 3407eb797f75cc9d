"""docs/privacy.md's privacy notice and records-of-processing entry, written from the configuration."""

from __future__ import annotations

import pytest

from scripts import privacy_notice


def test_privacy_notice_committed_sample_is_current() -> None:
    # Given docs/privacy.md's sample, made from fixed settings
    # When it is made again from the same settings
    # Then it is the same (else: run `make privacy-notice-sample`)
    assert privacy_notice.main(["--check"]) == 0


def _render(**settings: str) -> str:
    return privacy_notice.render({**privacy_notice.SAMPLE_ENVIRONMENT, **settings})


def test_privacy_notice_states_the_configured_retention_and_recipients() -> None:
    # Given a clinic that keeps enquiries 30 days and sends them to two addresses
    # When its notice is written
    text = _render(RETENTION_DAYS="30", CLINIC_EMAIL="a@clinic.example,b@clinic.example")
    # Then both show, and the default's 365 does not
    assert "We delete it 30 days after you send it" in text
    assert "| Recipients | a@clinic.example, b@clinic.example |" in text
    assert "365" not in text


@pytest.mark.parametrize(("turnstile", "named"), [("", False), ("secret-key", True)])
def test_privacy_notice_names_cloudflare_only_with_turnstile(turnstile: str, named: bool) -> None:
    # Given Turnstile on or off
    # When the notice is written
    text = _render(TURNSTILE_SECRET=turnstile)
    # Then Cloudflare is named as a processor exactly when it receives anything
    assert ("Cloudflare" in text) is named


def test_privacy_notice_follows_the_consent_and_acknowledgement_settings() -> None:
    # Given a clinic without the consent box, which acknowledges enquiries
    text = _render(REQUIRE_CONSENT="false", ACKNOWLEDGE_ENQUIRER="true")
    # Then the notice promises no tick box, and mentions the acknowledgement
    assert "tick box" not in text
    assert "confirm that your enquiry arrived" in text


def test_privacy_notice_lists_the_fields_a_visitor_fills_in() -> None:
    # Given the default form
    # When the notice is written
    fields = privacy_notice.collected_fields()
    # Then it lists what a visitor types, never the robot trap or the redirect
    assert {"name", "email", "message"} <= set(fields)
    assert not [name for name in fields if name.startswith("_")]
