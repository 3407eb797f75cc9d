"""The one typed settings object, read from the environment once, failing fast.

A missing or malformed setting raises `SettingsError` naming the variable, at import of the handler
(Lambda's init phase), so a misconfigured deployment fails once and loudly, never a 500 per request.
Every bad variable is named at once.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from enquiries.errors import EnquiriesError
from enquiries.origins import serialise_origin

DEFAULT_SERVICES = (
    "Osteopathy",
    "Sports Massage",
    "Medical Acupuncture",
    "Personal Training",
    "Nutritional Advice",
)

# The acknowledgement's wording for a clinic in the UK; both are settings, so it works elsewhere.
DEFAULT_REPLY_WITHIN = "two working days"
DEFAULT_EMERGENCY_NOTE = (
    "This form is not for emergencies: in an emergency call 999, or 111 for urgent advice."
)

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}
# A whole number as these settings have always been read: a sign, digits grouped by single
# underscores, and a fraction of zeros (CloudFormation's Number parameters take `10.0`).
_WHOLE_NUMBER = re.compile(r"[+-]?[0-9]+(?:_[0-9]+)*(?:\.0+)?")
_REGION = re.compile(r"[A-Z]{2}")


class SettingsError(EnquiriesError, RuntimeError):
    """A setting is missing or malformed; the message names the environment variable."""


def configuration_error(problems: Sequence[str]) -> SettingsError:
    """The one error for a configuration's problems, every one named."""
    return SettingsError("Configuration error: " + "; ".join(problems))


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """Every setting of the contract's Configuration section (FIELDS_BY_VARIABLE names the variables)."""

    table_name: str
    allowed_origins: tuple[str, ...] = ()
    # Set by the template for the submission function: short-lived request records (Idempotency-Key
    # replays, double-submit fingerprints, rate-limit windows) and the secret that keys the hash of
    # client addresses, so no address is ever stored in the clear.
    guard_table_name: str | None = None
    client_address_secret_arn: str | None = None
    # Required by the notifier only (see `load_settings(required=...)`).
    clinic_email: tuple[str, ...] = ()
    sender_email: str | None = None
    # The SES identity the notifier's role may send From (template.yaml, SenderIdentity): SENDER_EMAIL
    # is checked against it at start (notify/mail_settings.py).
    sender_identity: str | None = None
    success_url: str | None = None
    clinic_phone: str | None = None
    services: tuple[str, ...] = DEFAULT_SERVICES
    require_consent: bool = True
    default_phone_region: str = "GB"
    rate_limit_per_hour: int = 10
    retention_days: int = 365
    timezone: str = "Europe/London"
    ses_configuration_set: str | None = None
    # The clinic's notification's own configuration set, when it differs from SES_CONFIGURATION_SET:
    # the template's, which never suppresses the clinic's addresses (notify/mail_settings.py).
    notification_ses_configuration_set: str | None = None
    # The Turnstile secret key itself (the local server, tests), or, when deployed, the ARN of a
    # Secrets Manager secret that holds it, so the key is not readable in the function's configuration.
    turnstile_secret: str | None = field(default=None, repr=False)
    turnstile_secret_arn: str | None = None
    turnstile_verify_url: str | None = None
    # The acknowledgement email to the enquirer (opt-in; the notifier, notify/acknowledgement.py).
    acknowledge_enquirer: bool = False
    clinic_name: str | None = None
    acknowledgement_reply_within: str = DEFAULT_REPLY_WITHIN
    acknowledgement_emergency_note: str = DEFAULT_EMERGENCY_NOTE
    acknowledgement_daily_cap: int = 200
    # The most clinic emails the notifier sends in a UTC day (notify/notification_cap.py); beyond it,
    # enquiries are stored and listed as unnotified, and an alarm tells the operator.
    notification_daily_cap: int = 200
    # The public API's URL, which the scheduled canary posts to (enquiries/canary_function.py).
    canary_api_url: str | None = None


# Readers: each takes a variable's trimmed, non-blank text and returns the field's value, or raises
# ValueError saying what the value must be.


def _text(text: str) -> str:
    return text


def _comma_list(text: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in text.split(",") if item.strip())


def _boolean(text: str) -> bool:
    lowered = text.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError("must be true or false")


def _whole_number(least: int, most: int | None = None) -> Callable[[str], int]:
    wanted = f"from {least} to {most}" if most is not None else f"of at least {least}"

    def read(text: str) -> int:
        try:
            number = int(text.partition(".")[0]) if _WHOLE_NUMBER.fullmatch(text) else None
        except ValueError:  # more digits than int() reads
            number = None
        if number is None or number < least or (most is not None and number > most):
            raise ValueError(f"must be a whole number {wanted}")
        return number

    return read


def _origins(text: str) -> tuple[str, ...]:
    # Compared with the Origin header and echoed in CORS headers, so written as browsers write
    # them (https://clinic.example:443/ becomes https://clinic.example), or refused at start.
    serialised: list[str] = []
    for origin in _comma_list(text):
        try:
            canonical = serialise_origin(origin)
        except ValueError as reason:
            example = "an origin looks like https://www.example.com"
            raise ValueError(f"{origin!r} {reason}; {example}") from None
        if canonical not in serialised:
            serialised.append(canonical)
    return tuple(serialised)


def _services(text: str) -> tuple[str, ...]:
    services = _comma_list(text)
    if not services:
        raise ValueError("must name at least one service, comma-separated")
    return services


def _absolute_url(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname or any(c.isspace() for c in url):
        raise ValueError("must be an absolute http(s) URL, like https://www.example.com/thanks/")
    return url


def _phone_region(region: str) -> str:
    if not _REGION.fullmatch(region):
        raise ValueError("must be a region's two capital letters, like GB")
    if region != "GB":  # the default is known good: only a chosen region costs the import
        import phonenumbers

        if region not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"{region!r} is not a region phone numbers can be read in (GB, not UK)")
    return region


# Each environment variable, the Settings field it sets, and its reader.
_VARIABLES: tuple[tuple[str, str, Callable[[str], object]], ...] = (
    ("TABLE_NAME", "table_name", _text),
    ("ALLOWED_ORIGINS", "allowed_origins", _origins),
    ("GUARD_TABLE_NAME", "guard_table_name", _text),
    ("CLIENT_ADDRESS_SECRET_ARN", "client_address_secret_arn", _text),
    ("CLINIC_EMAIL", "clinic_email", _comma_list),
    ("SENDER_EMAIL", "sender_email", _text),
    ("SENDER_IDENTITY", "sender_identity", _text),
    ("SUCCESS_URL", "success_url", _absolute_url),
    ("CLINIC_PHONE", "clinic_phone", _text),
    ("SERVICES", "services", _services),
    ("REQUIRE_CONSENT", "require_consent", _boolean),
    ("DEFAULT_PHONE_REGION", "default_phone_region", _phone_region),
    ("RATE_LIMIT_PER_HOUR", "rate_limit_per_hour", _whole_number(0)),
    ("RETENTION_DAYS", "retention_days", _whole_number(1, 36500)),
    ("TIMEZONE", "timezone", _text),
    ("SES_CONFIGURATION_SET", "ses_configuration_set", _text),
    ("NOTIFICATION_SES_CONFIGURATION_SET", "notification_ses_configuration_set", _text),
    ("TURNSTILE_SECRET", "turnstile_secret", _text),
    ("TURNSTILE_SECRET_ARN", "turnstile_secret_arn", _text),
    ("TURNSTILE_VERIFY_URL", "turnstile_verify_url", _absolute_url),
    ("ACKNOWLEDGE_ENQUIRER", "acknowledge_enquirer", _boolean),
    ("CLINIC_NAME", "clinic_name", _text),
    ("ACKNOWLEDGEMENT_REPLY_WITHIN", "acknowledgement_reply_within", _text),
    ("ACKNOWLEDGEMENT_EMERGENCY_NOTE", "acknowledgement_emergency_note", _text),
    ("ACKNOWLEDGEMENT_DAILY_CAP", "acknowledgement_daily_cap", _whole_number(1)),
    ("NOTIFICATION_DAILY_CAP", "notification_daily_cap", _whole_number(1)),
    ("CANARY_API_URL", "canary_api_url", _absolute_url),
)
# The variables this module reads, each with the Settings field it sets.
FIELDS_BY_VARIABLE: Mapping[str, str] = MappingProxyType(
    {variable: attribute for variable, attribute, _ in _VARIABLES}
)
# Required of every function (the others are required by the functions that name them).
ALWAYS_REQUIRED = ("TABLE_NAME",)
# Required by one function only: each entry point passes its own to `load_settings(required=...)`.
SUBMISSION_REQUIRES = ("GUARD_TABLE_NAME", "CLIENT_ADDRESS_SECRET_ARN")
NOTIFIER_REQUIRES = ("CLINIC_EMAIL", "SENDER_EMAIL")
CANARY_REQUIRES = ("CANARY_API_URL", "ALLOWED_ORIGINS", "CLIENT_ADDRESS_SECRET_ARN")

CLINIC_NAME_REQUIRED = (
    "CLINIC_NAME is required when ACKNOWLEDGE_ENQUIRER is true"
    " (the acknowledgement's subject names the clinic)"
)
# A rule across settings, or one a function adds: the problems it finds, each naming its variables.
Rule = Callable[["Settings"], Iterable[str]]


def _one_turnstile_secret(settings: Settings) -> Iterable[str]:
    if settings.turnstile_secret and settings.turnstile_secret_arn:
        # Which one to use would be a guess; a stale plain secret left beside the ARN is likely.
        yield "TURNSTILE_SECRET and TURNSTILE_SECRET_ARN are both set: set only one"


def acknowledgement_needs(settings: Settings) -> Iterable[str]:
    """The notifier's rule: what ACKNOWLEDGE_ENQUIRER needs besides the notifier's own settings."""
    if not settings.acknowledge_enquirer:
        return
    missing = [
        name
        for name, value in (
            ("GUARD_TABLE_NAME", settings.guard_table_name),
            ("CLIENT_ADDRESS_SECRET_ARN", settings.client_address_secret_arn),
        )
        if not value
    ]
    if missing:
        yield f"{' and '.join(missing)} required when ACKNOWLEDGE_ENQUIRER is true"
    if not settings.clinic_name:
        yield CLINIC_NAME_REQUIRED


# Every function's rules; a function adds its own (the notifier: notify/configuration.py).
RULES: tuple[Rule, ...] = (_one_turnstile_secret,)


def load_settings(
    environ: Mapping[str, str] | None = None, required: tuple[str, ...] = (), rules: Sequence[Rule] = ()
) -> Settings:
    """Read the settings from `environ` (default: os.environ), or raise SettingsError naming the variables.

    `required` names variables that are optional in general but that this function cannot do without;
    `rules` are its own checks, run with RULES on the values that could be read (the defaults for the
    rest), so that one error names every problem.
    """
    source = os.environ if environ is None else environ
    # A blank variable (a CloudFormation parameter left empty) means unset: its default, or "required".
    given = {name: source[name].strip() for name in FIELDS_BY_VARIABLE if source.get(name, "").strip()}
    problems = [
        f"{name} is required but not set"
        for name in dict.fromkeys((*required, *ALWAYS_REQUIRED))
        if name not in given
    ]
    values: dict[str, Any] = {}
    for name, attribute, read in _VARIABLES:
        if name in given:
            try:
                values[attribute] = read(given[name])
            except ValueError as reason:
                problems.append(f"{name} is invalid: {reason}")
    # TABLE_NAME, the one setting without a default, is reported above when missing.
    readable = Settings(**{"table_name": "", **values})
    for rule in (*RULES, *rules):
        problems.extend(rule(readable))
    if problems:
        raise configuration_error(problems)
    return Settings(**values)
