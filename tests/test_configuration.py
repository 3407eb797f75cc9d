"""A misconfigured notifier names every bad setting in one error, wherever its rule is written."""

from __future__ import annotations

import pytest

from enquiries.notify.configuration import RULES
from enquiries.settings import NOTIFIER_REQUIRES, SettingsError, load_settings

NOTIFIER_ENVIRONMENT = {
    "TABLE_NAME": "enquiries",
    "CLINIC_EMAIL": "clinic@example.com",
    "SENDER_EMAIL": "enquiries@example.com",
    "GUARD_TABLE_NAME": "guard",
    "CLIENT_ADDRESS_SECRET_ARN": "arn:aws:secretsmanager:eu-west-2:123456789012:secret:key",
    "ACKNOWLEDGE_ENQUIRER": "true",
    "CLINIC_NAME": "Example Clinic",
}


def test_configuration_names_three_problems_of_three_kinds_at_once() -> None:
    # Given the notifier's settings with a malformed number, an address SES would not accept, and the
    # acknowledgement switched on without the guard table it needs
    environ = {
        **NOTIFIER_ENVIRONMENT,
        "RATE_LIMIT_PER_HOUR": "ten",
        "SENDER_EMAIL": "not an address",
        "GUARD_TABLE_NAME": "",
    }

    # When the notifier's init reads them
    with pytest.raises(SettingsError) as raised:
        load_settings(environ, required=NOTIFIER_REQUIRES, rules=RULES)

    # Then one error names all three
    message = str(raised.value)
    assert message.startswith("Configuration error: ")
    assert "RATE_LIMIT_PER_HOUR is invalid" in message
    assert "SENDER_EMAIL is invalid: 'not an address'" in message
    assert "GUARD_TABLE_NAME required when ACKNOWLEDGE_ENQUIRER is true" in message


def test_configuration_good_notifier_settings_pass_every_rule() -> None:
    # Given the notifier's settings as a deployment with the acknowledgement gives them
    # When they are read with the notifier's rules
    settings = load_settings(NOTIFIER_ENVIRONMENT, required=NOTIFIER_REQUIRES, rules=RULES)

    # Then they are read as given
    assert settings.acknowledge_enquirer is True
    assert settings.sender_email == "enquiries@example.com"
