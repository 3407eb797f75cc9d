"""The environment the handlers see under the local server: the user's settings, plus what is needed.

Every AWS call goes to the embedded emulator with dummy credentials, whatever the shell holds, so the
local server can never touch a real AWS account. Required settings get working defaults, and the
server's own origin is always allowed, so `python -m devserver` works with an empty environment.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
from collections.abc import Mapping, MutableMapping, Sequence

from emulator.moto_server import DUMMY_CREDENTIAL
from emulator.served_hosts import parse_address
from enquiries.settings import FIELDS_BY_VARIABLE

DEFAULT_REGION = "eu-west-2"
LOOPBACK_V4 = ipaddress.IPv4Address("127.0.0.1")

# Every variable the functions read, from the settings table itself. A shell that carries one must not
# change what the local server, the tests or the benchmark do unless asked to.
SETTING_NAMES = tuple(FIELDS_BY_VARIABLE)

# Working defaults for the settings the handlers require, and the local server's own choices; a value
# already set (non-blank) wins.
SETTING_DEFAULTS = {
    "TABLE_NAME": "enquiries",
    "CLINIC_EMAIL": "clinic@example.com",
    "SENDER_EMAIL": "Clinic website <enquiries@example.com>",
    # Named in the acknowledgement's subject (required with ACKNOWLEDGE_ENQUIRER=true).
    "CLINIC_NAME": "Example Clinic",
    # Created in the emulator at start, as the template creates them when deployed.
    "GUARD_TABLE_NAME": "enquiries-guard",
    "CLIENT_ADDRESS_SECRET_ARN": "enquiries-client-address-key",
    # Off: a developer trying the form sends more than the deployed default of 10 an hour from one
    # address. RATE_LIMIT_PER_HOUR=10 turns it on (the server's start line says which).
    "RATE_LIMIT_PER_HOUR": "0",
}

# Anything that could point boto3 at a real account or another endpoint is removed.
_REMOVED = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")
_REMOVED_PREFIXES = ("AWS_ENDPOINT_URL_",)


def own_origins(host: str, port: int) -> list[str]:
    """The origins a browser can load this server's page from, as it writes them, first the one shown.

    A loopback or wildcard address is reached by its loopback names; any other host by itself, an
    IPv6 literal in brackets (`--host ::1` serves http://[::1]:PORT), each serialised as browsers do.
    """
    # Imported here: functions/ is on sys.path only once the server starts.
    from enquiries.origins import serialise_origin

    bare = host.strip("[]").lower()
    address = parse_address(bare)  # "0", "127.1" and "::0" are the addresses they mean
    if address is None:
        names = ["localhost", "127.0.0.1"] if bare == "localhost" else [bare]
    elif address in (LOOPBACK_V4, ipaddress.IPv4Address(0)):
        names = ["127.0.0.1", "localhost"]
    elif isinstance(address, ipaddress.IPv4Address):
        names = [str(address)]
    elif address.is_unspecified:  # an IPv6 wildcard socket also takes IPv4 connections (unless bindv6only)
        names = ["[::1]", "127.0.0.1", "localhost"]
    else:
        names = [f"[{address.compressed}]", *(["localhost"] if address.is_loopback else [])]
    origins: list[str] = []
    for name in names:
        with contextlib.suppress(ValueError):  # a name no browser could send is simply not listed
            origins.append(serialise_origin(f"http://{name}:{port}"))
    return origins


def handler_environment(
    current: Mapping[str, str], *, aws_endpoint: str, origins: Sequence[str]
) -> dict[str, str | None]:
    """The changes to make to `current` before importing a handler; a value of None means unset it."""
    changes: dict[str, str | None] = {
        name: None for name in current if name in _REMOVED or name.startswith(_REMOVED_PREFIXES)
    }
    changes.update(
        {
            "AWS_ENDPOINT_URL": aws_endpoint,
            "AWS_ACCESS_KEY_ID": DUMMY_CREDENTIAL,
            "AWS_SECRET_ACCESS_KEY": DUMMY_CREDENTIAL,
            # botocore >= 1.44.4 would send some calls to account-id endpoints the emulator does not route.
            "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
        }
    )
    # Lambda sets both; boto3 reads AWS_DEFAULT_REGION, code may read AWS_REGION.
    region = current.get("AWS_DEFAULT_REGION") or current.get("AWS_REGION") or DEFAULT_REGION
    for name in ("AWS_DEFAULT_REGION", "AWS_REGION"):
        if not current.get(name):
            changes[name] = region
    for name, default in SETTING_DEFAULTS.items():
        if not current.get(name, "").strip():
            changes[name] = default

    allowed = [origin.strip() for origin in current.get("ALLOWED_ORIGINS", "").split(",") if origin.strip()]
    allowed += [origin for origin in origins if origin not in allowed]
    changes["ALLOWED_ORIGINS"] = ",".join(allowed)
    return changes


def apply(changes: Mapping[str, str | None], environ: MutableMapping[str, str] = os.environ) -> None:
    """Apply `handler_environment`'s changes to `environ` (default: this process's environment)."""
    for name, value in changes.items():
        if value is None:
            environ.pop(name, None)
        else:
            environ[name] = value
