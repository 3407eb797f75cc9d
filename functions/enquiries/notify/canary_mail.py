"""The scheduled canary's enquiry (enquiries/canary.py), as the notifier treats it: emailed like any
other, through the same mailer, ledger and marking, but to SES's mailbox simulator instead of the
clinic, never acknowledged, and not counted as an enquiry emailed (the QuietDays alarm counts those)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from email.headerregistry import Address
from email.message import EmailMessage
from typing import Any

from enquiries import canary
from enquiries.notify.mail_settings import MailSettings
from enquiries.notify.message import compose

SIMULATOR = Address(addr_spec=canary.SIMULATOR_ADDRESS)


def is_canary(item: Mapping[str, Any] | None) -> bool:
    """Whether a stored enquiry is the canary's: only the submission path, on a valid proof, marks it."""
    return item is not None and item.get(canary.ATTRIBUTE) is True


def compose_for(item: Mapping[str, Any], mail: MailSettings) -> EmailMessage:
    """The email for one stored enquiry: to the clinic, or, for the canary's, to the simulator only."""
    return compose(item, replace(mail, recipients=(SIMULATOR,)) if is_canary(item) else mail)
