"""The notification's email headers; the checks themselves are in `enquiries/header_checks.py`, at the
bottom of the import graph so that validation can use them, and their names stay importable from here."""

from __future__ import annotations

from enquiries.header_checks import (
    UnsafeHeader,
    ascii_domain,
    check_email,
    check_name,
    fixed_subject,
    one_line,
    reply_to,
    subject,
)

__all__ = [
    "UnsafeHeader",
    "ascii_domain",
    "check_email",
    "check_name",
    "fixed_subject",
    "one_line",
    "reply_to",
    "subject",
]
