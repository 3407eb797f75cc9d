"""The services the submission function talks to, made from its settings; tests hand in others."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from enquiries.client_address import AddressHasher
from enquiries.intake import IntakeStore
from enquiries.settings import Settings
from enquiries.storage.intake_store import DynamoIntakeStore
from enquiries.stored_secret import StoredSecret

if TYPE_CHECKING:
    from enquiries.turnstile import TurnstileVerifier


@dataclass
class Services:
    """Without a hasher there is no double-submit detection and no rate limit (both key on the
    address); without a verifier, no captcha."""

    store: IntakeStore
    hasher: AddressHasher | None = None
    verifier: TurnstileVerifier | None = None


def services_from(settings: Settings) -> Services:
    """The real services for these settings, each creating its AWS client on first use."""
    return Services(
        store=DynamoIntakeStore(settings.table_name, settings.guard_table_name or ""),
        hasher=AddressHasher(settings.client_address_secret_arn)
        if settings.client_address_secret_arn
        else None,
        verifier=_turnstile(settings),
    )


def stored_secrets(services: Services) -> list[StoredSecret]:
    """The Secrets Manager secrets these services read, for the init phase to read first."""
    secrets = [services.hasher.secret] if services.hasher is not None else []
    if services.verifier is not None and services.verifier.stored_secret is not None:
        secrets.append(services.verifier.stored_secret)
    return secrets


def _turnstile(settings: Settings) -> TurnstileVerifier | None:
    if not (settings.turnstile_secret or settings.turnstile_secret_arn):
        return None
    # Imported only when configured: urllib.request is not needed otherwise.
    from enquiries.turnstile import TurnstileVerifier

    if settings.turnstile_secret_arn:
        return TurnstileVerifier(
            StoredSecret("TURNSTILE_SECRET_ARN", settings.turnstile_secret_arn), settings.turnstile_verify_url
        )
    return TurnstileVerifier(settings.turnstile_secret or "", settings.turnstile_verify_url)
