"""The fast path for plain names and addresses (enquiries/plain_header.py): everything it lets skip the
email round trip passes that round trip, so skipping it changes no answer."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from support import REPO

from enquiries.field_messages import NAME_MAX
from enquiries.notify.headers import check_email, check_name, reply_to, subject
from enquiries.plain_header import _PLAIN_ADDRESS, _PLAIN_NAME, is_plain_address, is_plain_name


@settings(max_examples=400, deadline=None)
@given(st.from_regex(_PLAIN_NAME, fullmatch=True))
@example("Mary-Jane O'Neil Jr.")
@example("J. R. R. Tolkien")
@example("A" * NAME_MAX)
@example("A" + " " * (NAME_MAX - 2) + ".")
@example("x" + "-" * (NAME_MAX - 1))
def test_plain_header_every_plain_name_survives_the_round_trip(name: str) -> None:
    # Given a name the fast path accepts
    assert is_plain_name(name)

    # When it is checked the slow way, as the notification's Reply-To display name and Subject
    check_name(name)
    built = reply_to(name, "jane@example.com")

    # Then it survives, and the headers show it as typed
    assert "".join(built.display_name.split()) == "".join(name.split())
    assert "".join(subject(name, "Osteopathy").split()) == "".join(
        f"New enquiry from {name} - Osteopathy".split()
    )


@settings(max_examples=400, deadline=None)
@given(st.from_regex(_PLAIN_ADDRESS, fullmatch=True).filter(lambda address: len(address) <= 254))
@example("jane.doe+enquiries@mail.example.co.uk")
@example("a" * 64 + "@" + "b" * 63 + ".example")
@example("-@-.-")
def test_plain_header_every_plain_address_survives_the_round_trip(address: str) -> None:
    # Given an address the fast path accepts
    assert is_plain_address(address)

    # When it is checked the slow way, as the notification's Reply-To
    check_email(address)

    # Then it survives as the same one address
    built = reply_to("", address)
    assert f"{built.username}@{built.domain}" == address


@pytest.mark.parametrize(
    "name",
    [
        "=?utf-8?q?Jane?=",
        "Jane <jane@example.com>",
        'Jane "J" Doe',
        "Jane (Doe)",
        "Jane, Doe",
        "Jane;Doe",
        "Zoë Smith",
        "Jane\tDoe",
        " Jane",
        "",
        "A" * (NAME_MAX + 1),
    ],
)
def test_plain_header_names_with_syntax_take_the_round_trip(name: str) -> None:
    # Given a name with header syntax, non-ASCII text, a tab, a leading space, or too long
    # When the fast path reads it
    # Then it does not vouch for it: the round trip decides
    assert not is_plain_name(name)


@pytest.mark.parametrize(
    "address",
    [
        "=?utf-8?q?x?=@example.com",
        "a?b@example.com",
        "a=b@example.com",
        '"a b"@example.com',
        "a@b",
        "ä@b.example",
    ],
)
def test_plain_header_addresses_with_syntax_take_the_round_trip(address: str) -> None:
    assert not is_plain_address(address)


@pytest.mark.parametrize(("name", "round_trip"), [("Jane Doe", False), ("Zoë Doe", True)])
def test_plain_header_a_plain_enquiry_costs_no_email_package(name: str, round_trip: bool) -> None:
    # Given a fresh interpreter, as a cold start is, and an enquiry with a plain or an accented name
    code = (
        "import sys\n"
        "from enquiries.validation import FieldRules, validate_enquiry\n"
        f"validate_enquiry({{'name': {name!r}, 'email': 'jane@example.com', 'message': 'My back.',"
        " 'consent': True}, FieldRules(services=('Osteopathy',)))\n"
        "print('email.headerregistry' in sys.modules)\n"
    )

    # When it is validated
    result = subprocess.run(  # noqa: S603 - this interpreter, fixed code
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO / "functions")},
        check=True,
    )

    # Then only the accented name pays for the email package's import (about 15 ms cold)
    assert result.stdout.strip() == str(round_trip)
