"""The field rules a deployment's settings ask for: made here for the API and for SnapStart's warm-up,
so that both validate with the same rules."""

from __future__ import annotations

from enquiries.settings import Settings
from enquiries.validation import FieldRules


def field_rules(settings: Settings, *, captcha_required: bool = False) -> FieldRules:
    """The rules for `settings`; `captcha_required` when a captcha verifier is configured."""
    return FieldRules(
        services=settings.services,
        require_consent=settings.require_consent,
        default_phone_region=settings.default_phone_region,
        captcha_required=captcha_required,
    )
