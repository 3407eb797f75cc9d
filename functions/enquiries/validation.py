"""The enquiry's field rules (the contract's Fields table), with plain-words messages for visitors.

Every field uses a plain validator that sees the raw value (None when absent), so each message a
visitor reads is ours, never pydantic's; `validate_enquiry` reports every failing field at once.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from enquiries.field_messages import EMAIL_MAX, MESSAGE_MAX, MESSAGES, NAME_MAX
from enquiries.invisible import hidden_format_characters, shows_nothing

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


def _fail(key: str, message: str | None = None) -> PydanticCustomError:
    return PydanticCustomError(key, message or MESSAGES[key])


class FilePart:
    """A multipart part that carried a file (the contract refuses them, naming the field)."""

    def __repr__(self) -> str:
        return "FilePart()"


def _single_text(value: Any) -> str | None:
    """The field's text, or None when absent or blank; a list means the field was sent twice."""
    if value is None:
        return None
    if isinstance(value, FilePart):
        raise _fail("file")
    if isinstance(value, list):
        raise _fail("repeated")
    if not isinstance(value, str):
        raise _fail("not_text")
    return value.strip() or None


def _required_text(value: Any, field: str, max_length: int) -> str:
    """A required field's trimmed text: the field's own message when absent or when it shows nothing
    (only invisible characters, such as U+200B or the Hangul filler), `<field>_long` when too long."""
    text = _single_text(value)
    if text is None or shows_nothing(text):
        raise _fail(field)
    if len(text) > max_length:
        raise _fail(f"{field}_long")
    return text


def _rules(info: ValidationInfo) -> FieldRules:
    rules = info.context
    if not isinstance(rules, FieldRules):  # a programming error, not a visitor's
        raise TypeError("validate_enquiry must pass FieldRules as the validation context")
    return rules


class Enquiry(BaseModel):
    """A valid enquiry, normalised as stored: trimmed text, normalised email, E.164 phone."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(default=None, validate_default=True)
    email: str = Field(default=None, validate_default=True)
    phone: str | None = Field(default=None, validate_default=True)
    service: str | None = Field(default=None, validate_default=True)
    message: str = Field(default=None, validate_default=True)
    consent: bool | None = Field(default=None, validate_default=True)
    # Honeypot and redirect: accepted, never stored.
    gotcha: str | None = Field(default=None, alias="_gotcha", validate_default=True)
    next_url: str | None = Field(default=None, alias="_next", validate_default=True)
    # Cloudflare Turnstile's token; checked against Cloudflare after validation, never stored.
    captcha_token: str | None = Field(default=None, alias="cf-turnstile-response", validate_default=True)

    @field_validator("name", mode="plain")
    @classmethod
    def _name(cls, value: Any) -> str:
        text = _required_text(value, "name", NAME_MAX)
        if any(unicodedata.category(char) == "Cc" for char in text):
            raise _fail("name_control")
        if hidden_format_characters(text):
            raise _fail("name_format")
        # Imported here, with the email package: only a name that got this far needs it.
        from enquiries.notify.headers import UnsafeHeader, check_name

        try:
            check_name(text)  # as the notification's Subject and Reply-To display name
        except UnsafeHeader:
            raise _fail("name_header") from None
        return text

    @field_validator("email", mode="plain")
    @classmethod
    def _email(cls, value: Any) -> str:
        text = _required_text(value, "email", EMAIL_MAX)
        from email_validator import EmailNotValidError, validate_email

        try:
            # Without SMTPUTF8: the clinic answers through Reply-To, which must be an address every
            # mail system accepts (an accented domain is fine: it has an ASCII form).
            valid = validate_email(text, check_deliverability=False, allow_smtputf8=False)
        except EmailNotValidError:
            accented_local = not text.rpartition("@")[0].isascii()
            raise _fail("email_ascii" if accented_local else "email") from None
        if len(valid.normalized) > EMAIL_MAX:
            raise _fail("email_long")
        from enquiries.notify.headers import UnsafeHeader, check_email

        try:
            check_email(valid.normalized)  # as the notification's Reply-To
        except UnsafeHeader:
            raise _fail("email_header") from None
        return valid.normalized

    @field_validator("phone", mode="plain")
    @classmethod
    def _phone(cls, value: Any, info: ValidationInfo) -> str | None:
        text = _single_text(value)
        if text is None:
            return None
        # Imported here: phone metadata is only needed by the visitors who give a number.
        import phonenumbers

        try:
            number = phonenumbers.parse(text, _rules(info).default_phone_region)
        except phonenumbers.NumberParseException:
            raise _fail("phone") from None
        if not phonenumbers.is_possible_number(number):
            raise _fail("phone")
        return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))

    @field_validator("service", mode="plain")
    @classmethod
    def _service(cls, value: Any, info: ValidationInfo) -> str | None:
        text = _single_text(value)
        if text is None:
            return None
        services = _rules(info).services
        for canonical in services:
            if canonical.casefold() == text.casefold():
                return canonical
        raise _fail("service", "Choose one of: " + ", ".join(services) + ".")

    @field_validator("message", mode="plain")
    @classmethod
    def _message(cls, value: Any) -> str:
        return _required_text(value, "message", MESSAGE_MAX)

    @field_validator("consent", mode="plain")
    @classmethod
    def _consent(cls, value: Any, info: ValidationInfo) -> bool | None:
        if isinstance(value, FilePart):
            raise _fail("file")
        if isinstance(value, list):
            raise _fail("repeated")
        given = value is not None and not (isinstance(value, str) and not value.strip())
        if given and (
            value is True or (isinstance(value, str | int) and str(value).strip().lower() in CONSENT_TRUE)
        ):
            return True
        if _rules(info).require_consent:
            raise _fail("consent")
        if not given or value is False or str(value).strip().lower() in CONSENT_FALSE:
            return None  # consent is optional here, and was not given
        raise _fail("consent")

    @field_validator("captcha_token", mode="plain")
    @classmethod
    def _captcha_token(cls, value: Any, info: ValidationInfo) -> str | None:
        required = _rules(info).captcha_required
        if not required:
            if value is not None:
                raise _fail("unknown")
            return None
        text = _single_text(value)
        if text is None:
            raise _fail("captcha")
        return text

    @field_validator("gotcha", "next_url", mode="plain")
    @classmethod
    def _optional_text(cls, value: Any) -> str | None:
        return _single_text(value)

    def stored_fields(self) -> dict[str, Any]:
        """The fields that are stored, without absent optional ones."""
        return self.model_dump(exclude={"gotcha", "next_url", "captcha_token"}, exclude_none=True)


def validate_enquiry(data: dict[str, Any], rules: FieldRules) -> Enquiry:
    """Validate a submitted form, or raise InvalidEnquiry listing every failing field."""
    try:
        return Enquiry.model_validate(data, context=rules)
    except ValidationError as error:
        fields: dict[str, str] = {}
        for detail in error.errors():
            field = str(detail["loc"][0]) if detail["loc"] else "form"
            if detail["type"] == "captcha":
                field = "captcha"  # the contract names the check, not the widget's field
            if detail["type"] == "extra_forbidden":
                message = (
                    MESSAGES["file"] if isinstance(detail.get("input"), FilePart) else MESSAGES["unknown"]
                )
            else:
                message = detail["msg"]
            fields.setdefault(field, message)
        raise InvalidEnquiry(fields) from None
