"""The enquiry's field rules (the contract's Fields table), with plain-words messages for visitors.

Each field has a validator that sees the raw value (None when absent) and returns the value as stored,
or raises with the visitor's message; `validate_enquiry` runs them all and reports every failing field
at once, with any field the form does not have.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from enquiries.field_messages import EMAIL_MAX, MESSAGE_MAX, MESSAGES, NAME_MAX
from enquiries.plain_header import is_plain_address, is_plain_name
from enquiries.text_classes import (
    breaks_lines_or_controls,
    controls_beyond_line_feed_and_tab,
    hidden_characters,
    shows_nothing,
)

CONSENT_TRUE = {"true", "on", "yes", "1"}
CONSENT_FALSE = {"false", "off", "no", "0"}


@dataclass(frozen=True)
class FieldRules:
    """The settings that shape the field rules."""

    services: tuple[str, ...]
    require_consent: bool = True
    default_phone_region: str = "GB"
    # With TURNSTILE_SECRET set, the widget's token field is required; without it, it is unknown.
    captcha_required: bool = False


class InvalidEnquiry(Exception):
    """One or more fields failed: `fields` maps each failing field to what to fix, in plain words."""

    def __init__(self, fields: dict[str, str]) -> None:
        super().__init__(f"{len(fields)} invalid field(s): {', '.join(sorted(fields))}")
        self.fields = fields


class _Refused(Exception):
    """A field's value fails its rule: `rule` keys MESSAGES, `message` is what the visitor reads."""

    def __init__(self, rule: str, message: str | None = None) -> None:
        super().__init__(rule)
        self.rule = rule
        self.message = message or MESSAGES[rule]


class FilePart:
    """A multipart part that carried a file (the contract refuses them, naming the field)."""

    def __repr__(self) -> str:
        return "FilePart()"


@dataclass(frozen=True, slots=True, kw_only=True)
class Enquiry:
    """A valid enquiry, normalised as stored: trimmed text, normalised email, E.164 phone."""

    name: str
    email: str
    phone: str | None
    service: str | None
    message: str
    consent: bool | None
    # Honeypot and redirect: accepted, never stored.
    gotcha: str | None
    next_url: str | None
    # Cloudflare Turnstile's token; checked against Cloudflare after validation, never stored.
    captcha_token: str | None

    def stored_fields(self) -> dict[str, Any]:
        """The fields that are stored, without absent optional ones."""
        stored = {
            "name": self.name,
            "email": self.email,
            "phone": self.phone,
            "service": self.service,
            "message": self.message,
            "consent": self.consent,
        }
        return {field: value for field, value in stored.items() if value is not None}


def _single_text(value: Any) -> str | None:
    """The field's text, or None when absent or blank; a list means the field was sent twice."""
    if value is None:
        return None
    if isinstance(value, FilePart):
        raise _Refused("file")
    if isinstance(value, list):
        raise _Refused("repeated")
    if not isinstance(value, str):
        raise _Refused("not_text")
    return value.strip() or None


def _required_text(value: Any, field: str, max_length: int) -> str:
    """A required field's trimmed text: the field's own message when absent or when it shows nothing
    (only invisible characters, such as U+200B or the Hangul filler), `<field>_long` when too long."""
    text = _single_text(value)
    if text is None or shows_nothing(text):
        raise _Refused(field)
    if len(text) > max_length:
        raise _Refused(f"{field}_long")
    return text


def _name(value: Any, rules: FieldRules) -> str:
    text = _required_text(value, "name", NAME_MAX)
    if breaks_lines_or_controls(text):
        raise _Refused("name_control")
    if hidden_characters(text):
        raise _Refused("name_format")
    if is_plain_name(text):  # survives as a header without the round trip (enquiries/plain_header.py)
        return text
    # Imported here, with the email package: only a name that is not plain needs it.
    from enquiries.header_checks import UnsafeHeader, check_name

    try:
        check_name(text)  # as the notification's Subject and Reply-To display name
    except UnsafeHeader:
        raise _Refused("name_header") from None
    return text


def _email(value: Any, rules: FieldRules) -> str:
    text = _required_text(value, "email", EMAIL_MAX)
    from email_validator import EmailNotValidError, validate_email

    try:
        # Without SMTPUTF8: the clinic answers through Reply-To, which must be an address every
        # mail system accepts (an accented domain is fine: it has an ASCII form).
        valid = validate_email(text, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError:
        accented_local = not text.rpartition("@")[0].isascii()
        raise _Refused("email_ascii" if accented_local else "email") from None
    if len(valid.normalized) > EMAIL_MAX:
        raise _Refused("email_long")
    if is_plain_address(valid.normalized):  # as is_plain_name above
        return valid.normalized
    from enquiries.header_checks import UnsafeHeader, check_email

    try:
        check_email(valid.normalized)  # as the notification's Reply-To
    except UnsafeHeader:
        raise _Refused("email_header") from None
    return valid.normalized


def _phone(value: Any, rules: FieldRules) -> str | None:
    text = _single_text(value)
    if text is None:
        return None
    # Imported here: phone metadata is only needed by the visitors who give a number.
    import phonenumbers

    try:
        number = phonenumbers.parse(text, rules.default_phone_region)
    except phonenumbers.NumberParseException:
        raise _Refused("phone") from None
    # Possible for its region, by length: not IS_POSSIBLE_LOCAL_ONLY (is_possible_number's other "yes"),
    # a number without its area code ("12345" in GB), which nobody outside the area could call.
    reason = phonenumbers.is_possible_number_with_reason(number)
    if reason != phonenumbers.ValidationResult.IS_POSSIBLE:
        raise _Refused("phone")
    e164 = str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))
    # An extension ("ext 2", "x2", "#2") is kept, in RFC 3966's form, which phonenumbers.parse reads
    # back and a tel: link dials: the clinic calls back through it.
    return f"{e164};ext={number.extension}" if number.extension else e164


def _service(value: Any, rules: FieldRules) -> str | None:
    text = _single_text(value)
    if text is None:
        return None
    for canonical in rules.services:
        if canonical.casefold() == text.casefold():
            return canonical
    raise _Refused("service", "Choose one of: " + ", ".join(rules.services) + ".")


def _message(value: Any, rules: FieldRules) -> str:
    if isinstance(value, str):
        # A browser posts a textarea's line breaks as CR LF (HTML's form submission); stored as LF.
        value = value.replace("\r\n", "\n").replace("\r", "\n")
    text = _required_text(value, "message", MESSAGE_MAX)
    if controls_beyond_line_feed_and_tab(text):  # ESC, BEL, CSI: terminal escapes, never stored
        raise _Refused("message_control")
    return text


def _consent(value: Any, rules: FieldRules) -> bool | None:
    if isinstance(value, FilePart):
        raise _Refused("file")
    if isinstance(value, list):
        raise _Refused("repeated")
    given = value is not None and not (isinstance(value, str) and not value.strip())
    if given and (
        value is True or (isinstance(value, str | int) and str(value).strip().lower() in CONSENT_TRUE)
    ):
        return True
    if rules.require_consent:
        raise _Refused("consent")
    if not given or value is False or str(value).strip().lower() in CONSENT_FALSE:
        return None  # consent is optional here, and was not given
    raise _Refused("consent")


def _captcha_token(value: Any, rules: FieldRules) -> str | None:
    if not rules.captcha_required:
        if value is not None:
            raise _Refused("unknown")
        return None
    text = _single_text(value)
    if text is None:
        raise _Refused("captcha")
    return text


def _optional_text(value: Any, rules: FieldRules) -> str | None:
    return _single_text(value)


# Each field as the form names it, the Enquiry attribute it becomes, and its validator, in the order
# failing fields are reported. Only these names are fields: a key spelt like an attribute (`gotcha`,
# `next_url`, `captcha_token`) is unknown.
FIELDS: tuple[tuple[str, str, Callable[[Any, FieldRules], Any]], ...] = (
    ("name", "name", _name),
    ("email", "email", _email),
    ("phone", "phone", _phone),
    ("service", "service", _service),
    ("message", "message", _message),
    ("consent", "consent", _consent),
    ("_gotcha", "gotcha", _optional_text),
    ("_next", "next_url", _optional_text),
    ("cf-turnstile-response", "captcha_token", _captcha_token),
)
FIELD_NAMES = frozenset(name for name, _, _ in FIELDS)


def validate_enquiry(data: dict[str, Any], rules: FieldRules) -> Enquiry:
    """Validate a submitted form, or raise InvalidEnquiry listing every failing field."""
    values: dict[str, Any] = {}
    failing: dict[str, str] = {}
    for name, attribute, validate in FIELDS:
        try:
            values[attribute] = validate(data.get(name), rules)
        except _Refused as refused:
            # The contract names the Turnstile check `captcha`, not the widget's field.
            field = "captcha" if refused.rule == "captcha" else name
            failing.setdefault(field, refused.message)
    for name, value in data.items():
        if name not in FIELD_NAMES:
            failing.setdefault(name, MESSAGES["file"] if isinstance(value, FilePart) else MESSAGES["unknown"])
    if failing:
        raise InvalidEnquiry(failing)
    return Enquiry(**values)
