"""The field rules of a form (forms.py; the default form is the contract's Fields table), with
plain-words messages for visitors.

Each field has a validator, chosen by its type in the form file, that sees the raw value (None when
absent) and returns the value as stored, or raises with the visitor's message; `validate_enquiry` runs
them all and reports every failing field at once, with any field the form does not have.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from enquiries import form_messages
from enquiries.errors import EnquiriesError
from enquiries.field_messages import EMAIL_MAX, MESSAGE_MAX, MESSAGES, NAME_MAX
from enquiries.forms import DEFAULT_FORM_ID, Form, FormField, deployment_forms
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


Validator = Callable[[Any, "FieldRules"], Any]


class InvalidEnquiry(EnquiriesError):
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


@dataclass(frozen=True, kw_only=True)
class Enquiry:
    """A valid enquiry, normalised as stored (trimmed text, normalised email, E.164 phone): the form's
    fields by name, in the form's order (None when absent), read as attributes too (`enquiry.name`)."""

    form: str = DEFAULT_FORM_ID
    values: Mapping[str, Any]
    # Honeypot and redirect: accepted, never stored.
    gotcha: str | None
    next_url: str | None
    # Cloudflare Turnstile's token; checked against Cloudflare after validation, never stored.
    captcha_token: str | None

    def __getattr__(self, name: str) -> Any:
        values = self.__dict__.get("values")
        if values is not None and name in values:
            return values[name]
        raise AttributeError(name)

    def stored_fields(self) -> dict[str, Any]:
        """The fields that are stored, without absent optional ones."""
        return {field: value for field, value in self.values.items() if value is not None}


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


def _optional(validate: Validator) -> Validator:
    """An optional field of a type whose validator requires it (a form's optional name)."""

    def optional(value: Any, rules: FieldRules) -> Any:
        return None if _single_text(value) is None else validate(value, rules)

    return optional


def _required(validate: Validator, each: FormField) -> Validator:
    """A required field of a type whose validator allows it absent (a form's required phone)."""

    def required(value: Any, rules: FieldRules) -> Any:
        if _single_text(value) is None:
            raise _Refused(each.type, form_messages.required(each))
        return validate(value, rules)

    return required


def _choice(each: FormField) -> Validator:
    def choice(value: Any, rules: FieldRules) -> str | None:
        text = _single_text(value)
        if text is None and not each.required:
            return None
        for canonical in each.choices:
            if text is not None and canonical.casefold() == text.casefold():
                return canonical
        raise _Refused("choice", form_messages.choose(each.choices))

    return choice


def _text(each: FormField) -> Validator:
    maximum = each.max_length or form_messages.TEXT_MAX

    def text(value: Any, rules: FieldRules) -> str | None:
        if isinstance(value, str) and each.type == "long-text":
            # As the message: a textarea's CR LF (HTML's form submission) is stored as LF.
            value = value.replace("\r\n", "\n").replace("\r", "\n")
        given = _single_text(value)
        if given is None or shows_nothing(given):
            if each.required:
                raise _Refused("text", form_messages.required(each))
            return None
        if len(given) > maximum:
            raise _Refused("text_long", form_messages.too_long(each, maximum))
        if each.type == "text" and breaks_lines_or_controls(given):
            raise _Refused("text_lines", form_messages.one_line(each))
        if controls_beyond_line_feed_and_tab(given):  # terminal escapes, never stored
            raise _Refused("text_control", form_messages.controls(each))
        return given

    return text


def _date(each: FormField) -> Validator:
    def date(value: Any, rules: FieldRules) -> str | None:
        text = _single_text(value)
        if text is None:
            if each.required:
                raise _Refused("date", form_messages.DATE)
            return None
        parsed = form_messages.read_date(text)
        if parsed is None:
            raise _Refused("date", form_messages.DATE)
        return parsed

    return date


def _consent_field(each: FormField) -> Validator:
    def consent(value: Any, rules: FieldRules) -> bool | None:
        # REQUIRE_CONSENT=false makes every consent field optional; a form may make its own optional.
        return _consent(value, replace(rules, require_consent=rules.require_consent and each.required))

    return consent


def _validator(each: FormField) -> Validator:  # noqa: PLR0911 - one answer per type
    """The field's validator: today's for the contract's types, each form field's own rules around it."""
    if each.type == "name":
        return _name if each.required else _optional(_name)
    if each.type == "email":
        return _email if each.required else _optional(_email)
    if each.type == "phone":
        return _required(_phone, each) if each.required else _phone
    if each.type == "choice":
        if each.choices_setting is not None:
            return _required(_service, each) if each.required else _service
        return _choice(each)
    if each.type == "consent":
        return _consent_field(each)
    if each.type == "date":
        return _date(each)
    if (each.name, each.type, each.required, each.max_length) == ("message", "long-text", True, MESSAGE_MAX):
        return _message  # the contract's own message, with its own words
    return _text(each)


# The request's own fields beside the form's, as the form names them, and the Enquiry attribute each
# becomes. Only these names and the form's are fields: a key spelt like an attribute (`gotcha`,
# `next_url`, `captcha_token`) is unknown.
REQUEST_FIELDS: tuple[tuple[str, str, Validator], ...] = (
    ("_gotcha", "gotcha", _optional_text),
    ("_next", "next_url", _optional_text),
    ("cf-turnstile-response", "captcha_token", _captcha_token),
)


def form_fields(form: Form) -> tuple[tuple[str, Validator], ...]:
    """Each of the form's fields with its validator, in the order failing fields are reported."""
    return tuple((each.name, _validator(each)) for each in form.fields)


def validate_enquiry(data: dict[str, Any], rules: FieldRules, form: Form | None = None) -> Enquiry:
    """Validate a submitted form (the default one unless given), or raise InvalidEnquiry listing every
    failing field."""
    if form is None:
        form = deployment_forms().default
    values: dict[str, Any] = {}
    request: dict[str, Any] = {}
    failing: dict[str, str] = {}
    checks = [(name, name, validate, values) for name, validate in form_fields(form)]
    checks += [(name, attribute, validate, request) for name, attribute, validate in REQUEST_FIELDS]
    for name, attribute, validate, into in checks:
        try:
            into[attribute] = validate(data.get(name), rules)
        except _Refused as refused:
            # The contract names the Turnstile check `captcha`, not the widget's field.
            field = "captcha" if refused.rule == "captcha" else name
            failing.setdefault(field, refused.message)
    known = {name for name, *_ in checks}
    for name, value in data.items():
        if name not in known:
            failing.setdefault(name, MESSAGES["file"] if isinstance(value, FilePart) else MESSAGES["unknown"])
    if failing:
        raise InvalidEnquiry(failing)
    return Enquiry(form=form.id, values=values, **request)
