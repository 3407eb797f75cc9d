"""What a visitor reads when a field a form file declares fails its type's rule, in plain words made
from the field's label; and the dates a person can type. The contract's own fields keep their own
sentences (field_messages.py)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date

from enquiries.forms import TEXT_MAX, FormField

__all__ = ["DATE", "TEXT_MAX", "choose", "controls", "one_line", "read_date", "required", "too_long"]

# A date as people type it: ISO 8601 (what a browser's date input sends), or day/month/year, the
# order of the UK, where the clinic is (07/12/2026 is 7 December). Month-first is never guessed.
DATE = "Enter a date like 2026-12-07, or 07/12/2026 (day, month, year)."
_ISO = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")
_DAY_FIRST = re.compile(r"(\d{1,2})[/.](\d{1,2})[/.](\d{4})")


def read_date(text: str) -> str | None:
    """The date as stored (YYYY-MM-DD), or None when it is not a date."""
    iso, day_first = _ISO.fullmatch(text), _DAY_FIRST.fullmatch(text)
    try:
        if iso:
            return date(int(iso[1]), int(iso[2]), int(iso[3])).isoformat()
        if day_first:
            return date(int(day_first[3]), int(day_first[2]), int(day_first[1])).isoformat()
    except ValueError:  # 31/02/2026
        return None
    return None


def _what(each: FormField) -> str:
    return each.label[:1].lower() + each.label[1:] if not each.label[:2].isupper() else each.label


def required(each: FormField) -> str:
    if each.type == "choice":
        return choose(each.choices) if each.choices else f"Choose your {_what(each)}."
    if each.type == "phone":
        return "Enter a phone number like 01632 960123 or +44 1632 960123."
    if each.type == "consent":
        return "Tick the box to agree that we may use your details to reply to your enquiry."
    return f"Enter your {_what(each)}."


def choose(choices: Sequence[str]) -> str:
    return "Choose one of: " + ", ".join(choices) + "."


def too_long(each: FormField, maximum: int) -> str:
    return f"Shorten your {_what(each)} to at most {maximum:,} characters."


def one_line(each: FormField) -> str:
    return f"Enter your {_what(each)} on one line, without special control characters."


def controls(each: FormField) -> str:
    return f"Remove the special control characters (such as escape codes) from your {_what(each)}."
