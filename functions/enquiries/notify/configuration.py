"""The notifier's own configuration rules, which load_settings runs with its general ones, so that the
notifier's init names every problem of its settings in one error."""

from __future__ import annotations

from enquiries.notify import ack_message, mail_settings
from enquiries.settings import Rule, acknowledgement_needs

RULES: tuple[Rule, ...] = (mail_settings.problems, acknowledgement_needs, ack_message.problems)
