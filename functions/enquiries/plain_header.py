"""Names and addresses so plain that they always survive as email headers, without the round trip.

`enquiries.header_checks` proves each header from visitor input by building it, serialising it and
parsing it back: about 1 ms a request, and the email package's import (about 15 ms) on a cold start.
Most names and addresses need none of that: made only of the characters below, a value holds no "="
or "?" (so no RFC 2047 encoded word), no quote, comment, group or address syntax, and no control or
format character, so it cannot come back as anything else. tests/test_email_integrity.py checks that
every value these accept passes the round trip; anything else still takes it.
"""

from __future__ import annotations

import re

from enquiries.field_messages import EMAIL_MAX, NAME_MAX

# Letters, digits, spaces and the punctuation of ordinary names ("Mary-Jane O'Neil Jr.").
_PLAIN_NAME = re.compile(rf"[A-Za-z0-9][A-Za-z0-9 .'-]{{0,{NAME_MAX - 1}}}")
# A dot-atom local part (atoms of letters, digits and _ + -, joined by single dots: no "=" or "?"), at
# an ASCII domain of letters, digits and hyphens, in labels joined by single dots.
_PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
LOCAL_PART_MAX = 64  # RFC 5321 section 4.5.3.1.1


def is_plain_name(name: str) -> bool:
    return _PLAIN_NAME.fullmatch(name) is not None


def is_plain_address(address: str) -> bool:
    local_part = address.partition("@")[0]
    return (
        len(address) <= EMAIL_MAX
        and len(local_part) <= LOCAL_PART_MAX
        and _PLAIN_ADDRESS.fullmatch(address) is not None
    )
