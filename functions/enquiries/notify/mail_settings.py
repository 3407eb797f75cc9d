"""The notifier's addresses and time zone, checked once at start so a typo fails the deploy, not an email."""

from __future__ import annotations

from dataclasses import dataclass
from email.headerregistry import Address
from email.utils import getaddresses, parseaddr
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from enquiries.notify.headers import UnsafeHeader, ascii_domain
from enquiries.settings import Settings, configuration_error


@dataclass(frozen=True)
class MailSettings:
    sender: Address
    recipients: tuple[Address, ...]
    timezone: ZoneInfo
    # The SES configuration set of the clinic's notification, and of the acknowledgement. Deployed with
    # the stack's own sets, the clinic's is one that never suppresses its recipients: a hard bounce of
    # the clinic's mailbox (full, or its mail server down) or one enquiry marked as spam would otherwise
    # put the clinic's address on the account's suppression list, and SES would then accept every later
    # enquiry email, with a message id, and deliver none, unseen by the bounce rate
    # (https://docs.aws.amazon.com/ses/latest/dg/sending-email-suppression-list.html). Strangers'
    # addresses, the acknowledgement's recipients, stay suppressed. With SES_CONFIGURATION_SET alone
    # (the operator's own set, or none), both emails use it.
    configuration_set: str | None
    acknowledgement_configuration_set: str | None


def _address(text: str, variable: str, problems: list[str]) -> Address | None:
    """An address as SES takes it: an ASCII local part (SES has no SMTPUTF8) and the domain in its
    ASCII (punycode) form, which the email package would otherwise write as an encoded word. The
    display name may be any text: the message encodes it as RFC 2047 encoded words. None, with the
    problem added, for one SES would not accept."""
    from email_validator import EmailNotValidError, validate_email

    display_name, addr_spec = parseaddr(text)
    try:
        valid = validate_email(addr_spec, check_deliverability=False, allow_smtputf8=False)
        local, _, domain = valid.normalized.rpartition("@")
        return Address(display_name=display_name, username=local, domain=ascii_domain(domain))
    except (EmailNotValidError, UnsafeHeader):
        problems.append(f"{variable} is invalid: {text!r} is not an email address SES accepts")
        return None


def _sender_identity_problem(sender: Address, identity: str) -> str | None:
    """Refuse a sender the notifier's role may not send From. The role's condition is IAM's
    `StringLike` on ses:FromAddress, which is case-sensitive
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html):
    `*@<identity>` or `<identity>` exactly. The sender's domain is in lower case here (email-validator
    lower-cases it, IDNA maps it), and the template's pattern keeps SenderIdentity's domain in lower
    case, so only the local part of an address identity must be spelled as in SENDER_EMAIL (a local
    part may be case-sensitive, RFC 5321 section 2.4, so it is never changed)."""
    address = f"{sender.username}@{sender.domain}"
    if identity in (address, sender.domain):
        return None
    return (
        f"SENDER_EMAIL's address {address!r} is not under SENDER_IDENTITY"
        f" {identity!r}: the notifier may send only from an address at that domain, or from that"
        " address exactly, letter case included (write the identity's domain in lower case)"
    )


def _read(settings: Settings, problems: list[str]) -> MailSettings | None:
    """The notifier's view of the settings, or None with every problem found added to `problems`."""
    if not settings.sender_email or not settings.clinic_email:
        problems.append("CLINIC_EMAIL and SENDER_EMAIL are required by the notifier")
        return None
    recipients = [
        _address(formatted, "CLINIC_EMAIL", problems)
        for formatted in (
            f"{name} <{addr}>" if name else addr for name, addr in getaddresses(settings.clinic_email)
        )
    ]
    timezone = None
    try:
        timezone = ZoneInfo(settings.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(f"TIMEZONE is invalid: {settings.timezone!r} is not a time zone")
    sender = _address(settings.sender_email, "SENDER_EMAIL", problems)
    if sender is not None and settings.sender_identity:
        problem = _sender_identity_problem(sender, settings.sender_identity)
        if problem:
            problems.append(problem)
    if sender is None or timezone is None or None in recipients:
        return None
    return MailSettings(
        sender=sender,
        recipients=tuple(address for address in recipients if address is not None),
        timezone=timezone,
        configuration_set=settings.notification_ses_configuration_set or settings.ses_configuration_set,
        acknowledgement_configuration_set=settings.ses_configuration_set,
    )


def problems(settings: Settings) -> list[str]:
    """The notifier's rule for load_settings: what is wrong with its addresses and time zone (a missing
    address is named by load_settings' `required`)."""
    found: list[str] = []
    if not settings.sender_email or not settings.clinic_email:
        return found
    _read(settings, found)
    return found


def mail_settings(settings: Settings) -> MailSettings:
    """The notifier's view of the settings; SettingsError names every variable at fault."""
    found: list[str] = []
    mail = _read(settings, found)
    if mail is None or found:
        raise configuration_error(found)
    return mail
