"""The notifier's addresses and time zone, checked once at start so a typo fails the deploy, not an email."""

from __future__ import annotations

from dataclasses import dataclass
from email.headerregistry import Address
from email.utils import getaddresses, parseaddr
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from enquiries.notify.headers import UnsafeHeader, ascii_domain
from enquiries.settings import Settings, SettingsError


@dataclass(frozen=True)
class MailSettings:
    sender: Address
    recipients: tuple[Address, ...]
    timezone: ZoneInfo
    configuration_set: str | None


def _address(text: str, variable: str) -> Address:
    """An address as SES takes it: an ASCII local part (SES has no SMTPUTF8) and the domain in its
    ASCII (punycode) form, which the email package would otherwise write as an encoded word. The
    display name may be any text: the message encodes it as RFC 2047 encoded words."""
    from email_validator import EmailNotValidError, validate_email

    display_name, addr_spec = parseaddr(text)
    try:
        valid = validate_email(addr_spec, check_deliverability=False, allow_smtputf8=False)
        local, _, domain = valid.normalized.rpartition("@")
        return Address(display_name=display_name, username=local, domain=ascii_domain(domain))
    except (EmailNotValidError, UnsafeHeader):
        raise SettingsError(
            f"Configuration error: {variable} is invalid: {text!r} is not an email address SES accepts"
        ) from None


def mail_settings(settings: Settings) -> MailSettings:
    """The notifier's view of the settings; SettingsError names the variable at fault."""
    if not settings.sender_email or not settings.clinic_email:
        raise SettingsError("Configuration error: CLINIC_EMAIL and SENDER_EMAIL are required by the notifier")
    recipients = tuple(
        _address(formatted, "CLINIC_EMAIL")
        for formatted in (
            f"{name} <{addr}>" if name else addr for name, addr in getaddresses(settings.clinic_email)
        )
    )
    try:
        timezone = ZoneInfo(settings.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingsError(
            f"Configuration error: TIMEZONE is invalid: {settings.timezone!r} is not a time zone"
        ) from None
    return MailSettings(
        sender=_address(settings.sender_email, "SENDER_EMAIL"),
        recipients=recipients,
        timezone=timezone,
        configuration_set=settings.ses_configuration_set,
    )
