"""The one typed settings object, read from the environment once, failing fast.

A missing or malformed setting raises `SettingsError` naming the variable, at import of the handler
(Lambda's init phase), so a misconfigured deployment fails once and loudly, never a 500 per request.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

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


class SettingsError(RuntimeError):
    """A setting is missing or malformed; the message names the environment variable."""


def _stripped(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


def _comma_list(value: Any) -> Any:
    if isinstance(value, str):
        return tuple(item.strip() for item in value.split(",") if item.strip())
    return value


def _boolean(value: Any) -> Any:
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ValueError("must be true or false")
    return value


OptionalText = Annotated[str | None, BeforeValidator(_stripped)]
CommaList = Annotated[tuple[str, ...], BeforeValidator(_comma_list)]


class Settings(BaseModel):
    """Every setting of the contract's Configuration section. Field aliases are the variable names."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    table_name: Annotated[str, BeforeValidator(_stripped)] = Field(alias="TABLE_NAME")
    allowed_origins: CommaList = Field(default=(), alias="ALLOWED_ORIGINS")
    # Set by the template for the submission function: short-lived request records (Idempotency-Key
    # replays, double-submit fingerprints, rate-limit windows) and the secret that keys the hash of
    # client addresses, so no address is ever stored in the clear.
    guard_table_name: OptionalText = Field(default=None, alias="GUARD_TABLE_NAME")
    client_address_secret_arn: OptionalText = Field(default=None, alias="CLIENT_ADDRESS_SECRET_ARN")
    # Required by the notifier only (see `load_settings(required=...)`).
    clinic_email: CommaList = Field(default=(), alias="CLINIC_EMAIL")
    sender_email: OptionalText = Field(default=None, alias="SENDER_EMAIL")
    success_url: OptionalText = Field(default=None, alias="SUCCESS_URL")
    clinic_phone: OptionalText = Field(default=None, alias="CLINIC_PHONE")
    services: CommaList = Field(default=DEFAULT_SERVICES, alias="SERVICES", min_length=1)
    require_consent: Annotated[bool, BeforeValidator(_boolean)] = Field(default=True, alias="REQUIRE_CONSENT")
    default_phone_region: Annotated[str, BeforeValidator(_stripped)] = Field(
        default="GB", alias="DEFAULT_PHONE_REGION", pattern=r"^[A-Z]{2}$"
    )
    rate_limit_per_hour: int = Field(default=10, alias="RATE_LIMIT_PER_HOUR", ge=0)
    retention_days: int = Field(default=365, alias="RETENTION_DAYS", ge=1, le=36500)
    timezone: Annotated[str, BeforeValidator(_stripped)] = Field(default="Europe/London", alias="TIMEZONE")
    ses_configuration_set: OptionalText = Field(default=None, alias="SES_CONFIGURATION_SET")
    # The clinic's notification's own configuration set, when it differs from SES_CONFIGURATION_SET:
    # the template's, which never suppresses the clinic's addresses (notify/mail_settings.py).
    notification_ses_configuration_set: OptionalText = Field(
        default=None, alias="NOTIFICATION_SES_CONFIGURATION_SET"
    )
    # The Turnstile secret key itself (the local server, tests), or, when deployed, the ARN of a
    # Secrets Manager secret that holds it, so the key is not readable in the function's configuration.
    turnstile_secret: OptionalText = Field(default=None, alias="TURNSTILE_SECRET", repr=False)
    turnstile_secret_arn: OptionalText = Field(default=None, alias="TURNSTILE_SECRET_ARN")
    turnstile_verify_url: OptionalText = Field(default=None, alias="TURNSTILE_VERIFY_URL")
    # The acknowledgement email to the enquirer (opt-in; the notifier, notify/acknowledgement.py).
    acknowledge_enquirer: Annotated[bool, BeforeValidator(_boolean)] = Field(
        default=False, alias="ACKNOWLEDGE_ENQUIRER"
    )
    clinic_name: OptionalText = Field(default=None, alias="CLINIC_NAME")
    acknowledgement_reply_within: Annotated[str, BeforeValidator(_stripped)] = Field(
        default=DEFAULT_REPLY_WITHIN, alias="ACKNOWLEDGEMENT_REPLY_WITHIN"
    )
    acknowledgement_emergency_note: Annotated[str, BeforeValidator(_stripped)] = Field(
        default=DEFAULT_EMERGENCY_NOTE, alias="ACKNOWLEDGEMENT_EMERGENCY_NOTE"
    )
    acknowledgement_daily_cap: int = Field(default=200, alias="ACKNOWLEDGEMENT_DAILY_CAP", ge=1)

    @field_validator("allowed_origins")
    @classmethod
    def _origins_as_browsers_send_them(cls, origins: tuple[str, ...]) -> tuple[str, ...]:
        # Compared with the Origin header and echoed in CORS headers, so written as browsers write
        # them (https://clinic.example:443/ becomes https://clinic.example), or refused at start.
        serialised: list[str] = []
        for origin in origins:
            try:
                canonical = serialise_origin(origin)
            except ValueError as reason:
                example = "an origin looks like https://www.example.com"
                raise ValueError(f"{origin!r} {reason}; {example}") from None
            if canonical not in serialised:
                serialised.append(canonical)
        return tuple(serialised)

    @field_validator("success_url", "turnstile_verify_url")
    @classmethod
    def _absolute_url(cls, url: str | None) -> str | None:
        if url is None:
            return None
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        if parts.scheme not in ("https", "http") or not parts.hostname or any(c.isspace() for c in url):
            raise ValueError("must be an absolute http(s) URL, like https://www.example.com/thanks/")
        return url

    @field_validator("default_phone_region")
    @classmethod
    def _known_region(cls, region: str) -> str:
        if region != "GB":  # the default is known good: only a chosen region costs the import
            import phonenumbers

            if region not in phonenumbers.SUPPORTED_REGIONS:
                raise ValueError(f"{region!r} is not a region phone numbers can be read in (GB, not UK)")
        return region

    @model_validator(mode="after")
    def _one_turnstile_secret(self) -> Settings:
        if self.turnstile_secret and self.turnstile_secret_arn:
            # Which one to use would be a guess; a stale plain secret left beside the ARN is likely.
            raise ValueError("TURNSTILE_SECRET and TURNSTILE_SECRET_ARN are both set: set only one")
        return self


def load_settings(environ: Mapping[str, str] | None = None, required: tuple[str, ...] = ()) -> Settings:
    """Read the settings from `environ` (default: os.environ), or raise SettingsError naming the variables.

    `required` names variables that are optional in general but that this function cannot do without.
    """
    source = os.environ if environ is None else environ
    # A blank variable (a CloudFormation parameter left empty) means unset: its default, or "required".
    values = {
        field.alias: source[field.alias]
        for field in Settings.model_fields.values()
        if field.alias and source.get(field.alias, "").strip()
    }
    problems = [f"{name} is required but not set" for name in required if name not in values]
    try:
        settings = Settings.model_validate(values)
    except ValidationError as error:
        for detail in error.errors():
            if not detail["loc"]:  # a check across variables: its message names them
                problems.append(str(detail.get("ctx", {}).get("error", detail["msg"])))
                continue
            variable = str(detail["loc"][0])
            reason = (
                "is required but not set" if detail["type"] == "missing" else f"is invalid: {detail['msg']}"
            )
            problems.append(f"{variable} {reason}")
    if problems:
        raise SettingsError("Configuration error: " + "; ".join(problems))
    return settings
