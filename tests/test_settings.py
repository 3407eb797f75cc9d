"""Settings fail fast, naming the variable, so a misconfiguration never becomes a 500 per request."""

from __future__ import annotations

import base64
import dataclasses
import importlib
import sys
from collections.abc import Callable
from urllib.parse import urlencode

import pytest
from support import ALLOWED_ORIGIN, Handler, load_event

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


@pytest.mark.parametrize(
    ("variable", "value", "reason"),
    [
        ("RETENTION_DAYS", "a year", "must be a whole number from 1 to 36500"),
        ("RETENTION_DAYS", "36501", "must be a whole number from 1 to 36500"),
        ("RATE_LIMIT_PER_HOUR", "10.5", "must be a whole number of at least 0"),
        ("RATE_LIMIT_PER_HOUR", "-1", "must be a whole number of at least 0"),
        ("ACKNOWLEDGEMENT_DAILY_CAP", "0", "must be a whole number of at least 1"),
        ("ACKNOWLEDGEMENT_DAILY_CAP", "1e3", "must be a whole number of at least 1"),
        ("REQUIRE_CONSENT", "maybe", "must be true or false"),
        ("SERVICES", " , ,", "must name at least one service, comma-separated"),
        ("DEFAULT_PHONE_REGION", "gb", "must be a region's two capital letters, like GB"),
        ("DEFAULT_PHONE_REGION", "UK", "'UK' is not a region phone numbers can be read in (GB, not UK)"),
        (
            "SUCCESS_URL",
            "thanks.html",
            "must be an absolute http(s) URL, like https://www.example.com/thanks/",
        ),
    ],
)
def test_settings_malformed_value_says_what_it_must_be(variable: str, value: str, reason: str) -> None:
    # When a variable holds a value the setting cannot take
    with pytest.raises(SettingsError) as raised:
        load_settings({"TABLE_NAME": "t", variable: value})

    # Then the deployer reads which variable, and what it must be, in plain words
    assert str(raised.value) == f"Configuration error: {variable} is invalid: {reason}"


@pytest.mark.parametrize(("value", "number"), [(" 12 ", 12), ("+3", 3), ("10.0", 10), ("0", 0)])
def test_settings_whole_number_with_a_sign_or_a_zero_fraction_is_read(value: str, number: int) -> None:
    # When a whole number is written with spaces, a sign or a zero fraction (as a Number parameter may be)
    settings = load_settings({"TABLE_NAME": "t", "RATE_LIMIT_PER_HOUR": value})

    # Then it is read as that number
    assert settings.rate_limit_per_hour == number


def test_settings_every_bad_variable_is_named_at_once() -> None:
    # Given an environment with several mistakes
    environ = {
        "RETENTION_DAYS": "0",
        "REQUIRE_CONSENT": "maybe",
        "TURNSTILE_SECRET": "0x4AAA-key",
        "TURNSTILE_SECRET_ARN": "arn:x",
    }

    # When settings are loaded for a function that also needs GUARD_TABLE_NAME
    with pytest.raises(SettingsError) as raised:
        load_settings(environ, required=("GUARD_TABLE_NAME",))

    # Then one error names every one of them, so one fix-and-deploy round is enough
    assert str(raised.value) == (
        "Configuration error: GUARD_TABLE_NAME is required but not set; TABLE_NAME is required but not set;"
        " REQUIRE_CONSENT is invalid: must be true or false;"
        " RETENTION_DAYS is invalid: must be a whole number from 1 to 36500;"
        " TURNSTILE_SECRET and TURNSTILE_SECRET_ARN are both set: set only one"
    )


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
    # Given the variables the settings read and the list the local server, the tests and the benchmark
    # clear
    from devserver.environment import SETTING_NAMES
    from enquiries.settings import FIELDS_BY_VARIABLE, Settings

    # Then they name the same variables, so a new setting cannot leak in from a developer's shell, and
    # every field of the settings is read from one
    assert set(FIELDS_BY_VARIABLE) == set(SETTING_NAMES)
    assert sorted(FIELDS_BY_VARIABLE.values()) == sorted(field.name for field in dataclasses.fields(Settings))


@pytest.mark.parametrize(
    ("configured", "sent_by_browsers"),
    [
        ("https://clinic.example:443", "https://clinic.example"),
        ("http://clinic.example:80", "http://clinic.example"),
        ("HTTPS://Clinic.Example", "https://clinic.example"),
        ("https://clinic.example/", "https://clinic.example"),
        ("https://clinic.example:", "https://clinic.example"),
        ("https://clinic.example:08443", "https://clinic.example:8443"),
        ("http://clinic.example:443", "http://clinic.example:443"),
        ("https://bücher.example", "https://xn--bcher-kva.example"),
        (
            "https://STRASSE.example,https://straße.example",
            "https://strasse.example,https://xn--strae-oqa.example",
        ),
        ("http://[::1]:3000", "http://[::1]:3000"),
        ("http://[0:0:0:0:0:0:0:1]:3000", "http://[::1]:3000"),
        ("http://[2001:DB8:0:0:1:0:0:1]", "http://[2001:db8::1:0:0:1]"),
        ("http://[::ffff:192.0.2.1]", "http://[::ffff:c000:201]"),
        ("http://192.0.2.1:3000", "http://192.0.2.1:3000"),
        ("https://a.example,https://A.example:443/", "https://a.example"),
    ],
)
def test_settings_allowed_origins_are_written_as_browsers_send_them(
    configured: str, sent_by_browsers: str
) -> None:
    # Given origins written the ways a deployer might (default port, upper case, Unicode, IPv6)
    # When the settings are read
    settings = load_settings({"TABLE_NAME": "t", "ALLOWED_ORIGINS": configured})

    # Then each is the exact Origin header a browser sends from that site (RFC 6454 serialisation)
    assert settings.allowed_origins == tuple(sent_by_browsers.split(","))


@pytest.mark.parametrize(
    "configured",
    [
        "https://clinic.example/contact",
        "https://clinic.example?from=form",
        "https://clinic.example#form",
        "https://staff@clinic.example",
        "ftp://clinic.example",
        "clinic.example",
        "null",
        "*",
        "https://*.clinic.example",
        "https://clinic..example",
        "https://clinic.example.",
        "https://clinic.example:0",
        "https://clinic.example:65536",
        "https://clinic.example:44 3",
        "http://127.1:3000",
        "http://0x7f.0.0.1:3000",
        "http://192.0.2.01",
        "http://[fe80::1%25eth0]",
        "http://[::1",
        "http://[nonsense]",
        "https://xn--a.\u0378.example",
    ],
)
def test_settings_allowed_origins_no_browser_sends_stop_the_start_naming_the_variable(
    configured: str,
) -> None:
    # When an origin that no browser's Origin header could ever equal is configured
    with pytest.raises(SettingsError) as raised:
        load_settings({"TABLE_NAME": "t", "ALLOWED_ORIGINS": f"https://ok.example,{configured}"})

    # Then the function refuses to start, naming the variable and the value, instead of refusing every post
    assert "ALLOWED_ORIGINS is invalid" in str(raised.value)
    assert repr(configured) in str(raised.value)


def test_settings_origin_with_a_default_port_still_accepts_the_sites_posts(
    make_handler: Callable[..., Handler],
) -> None:
    # Given a deployment configured with the site's origin and its default port
    handler = make_handler(ALLOWED_ORIGINS=f"{ALLOWED_ORIGIN.upper()}:443/")

    # When the site's page posts (its browser sends the origin without the port)
    response = handler(load_event("submit-json.json", headers={"origin": ALLOWED_ORIGIN}))

    # Then the enquiry is accepted, with CORS headers the browser accepts
    assert response["statusCode"] == 201
    assert response["headers"]["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN


@pytest.mark.parametrize("origin", [f"{ALLOWED_ORIGIN}:443", ALLOWED_ORIGIN.upper(), f"{ALLOWED_ORIGIN}/"])
def test_settings_origin_check_of_a_request_compares_origins_as_browsers_write_them(
    handler: Handler, origin: str
) -> None:
    # Given a request whose Origin header names the allowed site, written another way
    event = load_event("submit-json.json", headers={"origin": origin})

    # When it is handled
    response = handler(event)

    # Then it is the allowed site, not a 403
    assert response["statusCode"] == 201


@pytest.mark.parametrize(
    "origin", [f"{ALLOWED_ORIGIN}/contact", f"{ALLOWED_ORIGIN}.evil.example", "null", "*"]
)
def test_settings_origin_check_of_a_request_still_refuses_other_origins(
    handler: Handler, origin: str
) -> None:
    # Given a request whose Origin header is not the allowed site
    event = load_event("submit-json.json", headers={"origin": origin})

    # When it is handled
    response = handler(event)

    # Then it is refused
    assert response["statusCode"] == 403


def test_settings_next_on_the_allowed_site_written_with_its_default_port_is_followed(
    handler: Handler,
) -> None:
    # Given a plain HTML form whose _next names the allowed site with its default port
    next_url = f"{ALLOWED_ORIGIN}:443/thanks/"
    fields = {"name": "Jane Doe", "email": "jane@example.com", "message": "Hello", "consent": "on"}
    body = base64.b64encode(urlencode({**fields, "_next": next_url}).encode()).decode()
    event = load_event("submit-urlencoded.json", body=body, isBase64Encoded=True)

    # When it is posted
    response = handler(event)

    # Then the visitor goes there (written as browsers write it): it is the same origin as the allowed one
    assert response["statusCode"] == 303
    assert response["headers"]["Location"] == f"{ALLOWED_ORIGIN}/thanks/"
