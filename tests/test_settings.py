"""Settings fail fast, naming the variable, so a misconfiguration never becomes a 500 per request."""

from __future__ import annotations

import importlib
import sys

import pytest

from enquiries.settings import DEFAULT_SERVICES, SettingsError, load_settings


def test_settings_defaults_match_the_contract() -> None:
    # Given only the required setting
    settings = load_settings({"TABLE_NAME": "enquiries"})

    # Then every default is the contract's
    assert settings.services == DEFAULT_SERVICES
    assert settings.require_consent is True
    assert settings.default_phone_region == "GB"
    assert settings.rate_limit_per_hour == 10
    assert settings.retention_days == 365
    assert settings.timezone == "Europe/London"
    assert settings.allowed_origins == ()


def test_settings_parse_lists_and_blank_values() -> None:
    # Given comma-separated lists with spaces and blank optional values (CloudFormation's empty parameters)
    settings = load_settings(
        {
            "TABLE_NAME": "t",
            "ALLOWED_ORIGINS": " https://a.example , http://localhost:3000 ",
            "SERVICES": "Pilates, Physiotherapy",
            "REQUIRE_CONSENT": "false",
            "SUCCESS_URL": "",
            "RATE_LIMIT_PER_HOUR": "",
        }
    )

    # Then lists are trimmed and blanks fall back to defaults
    assert settings.allowed_origins == ("https://a.example", "http://localhost:3000")
    assert settings.services == ("Pilates", "Physiotherapy")
    assert settings.require_consent is False
    assert settings.success_url is None
    assert settings.rate_limit_per_hour == 10


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({}, "TABLE_NAME is required"),
        ({"TABLE_NAME": "  "}, "TABLE_NAME is required"),
        ({"TABLE_NAME": "t", "ALLOWED_ORIGINS": "https://a.example/contact"}, "ALLOWED_ORIGINS is invalid"),
        ({"TABLE_NAME": "t", "REQUIRE_CONSENT": "maybe"}, "REQUIRE_CONSENT is invalid"),
        ({"TABLE_NAME": "t", "RETENTION_DAYS": "a year"}, "RETENTION_DAYS is invalid"),
        ({"TABLE_NAME": "t", "RATE_LIMIT_PER_HOUR": "-1"}, "RATE_LIMIT_PER_HOUR is invalid"),
        ({"TABLE_NAME": "t", "DEFAULT_PHONE_REGION": "Britain"}, "DEFAULT_PHONE_REGION is invalid"),
        ({"TABLE_NAME": "t", "SUCCESS_URL": "thanks.html"}, "SUCCESS_URL is invalid"),
    ],
)
def test_settings_missing_or_malformed_names_the_variable(environ: dict[str, str], named: str) -> None:
    # When settings are loaded from a bad environment
    with pytest.raises(SettingsError) as raised:
        load_settings(environ)

    # Then the error names the variable
    assert named in str(raised.value)


def test_settings_submission_function_fails_at_start_without_table_name(
    aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a deployment without TABLE_NAME
    monkeypatch.delenv("TABLE_NAME")
    sys.modules.pop("enquiries.api.submit", None)

    # When Lambda imports the handler (its init phase)
    with pytest.raises(SettingsError, match="TABLE_NAME"):
        importlib.import_module("enquiries.api.submit")


def test_settings_every_variable_is_in_the_shared_list_of_setting_names() -> None:
    # Given the settings model and the list the local server, the tests and the benchmark clear
    from devserver.environment import SETTING_NAMES
    from enquiries.settings import Settings

    # Then they name the same variables, so a new setting cannot leak in from a developer's shell
    assert {field.alias for field in Settings.model_fields.values()} == set(SETTING_NAMES)
