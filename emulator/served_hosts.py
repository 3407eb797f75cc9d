"""Who may talk to the local server and its emulator: requests addressed to them, from no other page.

A web page the developer has open can reach a loopback port: by DNS rebinding (its own name made to
resolve to 127.0.0.1, so the browser calls it same-origin and sends `Host: attacker.example:PORT`),
or by a cross-site request the browser sends without asking (a form's `text/plain` POST). So a
request whose `Host` is not an address the server listens on is refused, and a request that says
it comes from another site (`Origin`, or the Fetch Metadata header `Sec-Fetch-Site`:
https://www.w3.org/TR/fetch-metadata/#sec-fetch-site-header) is refused where it could read or
change state. Addresses are compared parsed, never as spelt: `0`, `127.1`, `::0` and `[::1]` are
the addresses they mean (inet_aton's shorthand: https://man7.org/linux/man-pages/man3/inet_aton.3.html).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

# What a browser sends for a request the page's own origin made, or the user typed (a bookmark).
OWN_FETCH_SITES = frozenset({"same-origin", "none"})


def parse_address(host: str) -> Address | None:
    """The IP address `host` means (brackets, IPv4 shorthand and any IPv6 spelling understood), or
    None when it is a name."""
    bare = host.strip().strip("[]")
    try:
        return ipaddress.ip_address(bare)
    except ValueError:
        pass
    if not bare or ":" in bare:
        return None
    try:
        # What the socket layer binds for "127.1", "0", "0x7f.1": the same bytes, the same address.
        return ipaddress.IPv4Address(socket.inet_aton(bare))
    except OSError:
        return None


def is_loopback_only(host: str) -> bool:
    """Whether listening on `host` keeps the server to this machine (a wildcard or a network
    address does not; "localhost" is the loopback name)."""
    address = parse_address(host)
    if address is None:
        return host.strip().strip("[]").lower() == "localhost"
    return address.is_loopback


def split_host(value: str) -> tuple[str, int | None] | None:
    """A `Host` header's host and port (None when it names none), or None when it is malformed."""
    value = value.strip()
    if value.startswith("["):
        host, bracket, rest = value[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            return None
        port_text = rest[1:] if rest else None
    else:
        host, colon, port_text_found = value.rpartition(":")
        if not colon:
            host, port_text = value, None
        elif ":" in host:
            return None  # an IPv6 literal must be in brackets
        else:
            port_text = port_text_found
    if port_text is None:
        return host, None
    if not port_text.isdigit() or not port_text.isascii():
        return None
    return host, int(port_text)


def same_host(one: str, other: str) -> bool:
    """Whether two host names or addresses name the same host: addresses parsed, names by letter case."""
    one_address, other_address = parse_address(one), parse_address(other)
    if one_address is not None or other_address is not None:
        return one_address == other_address
    return one.strip().lower() == other.strip().lower()


def host_is_served(header: str | None, hosts: Iterable[str], port: int) -> bool:
    """Whether a request's `Host` header names one of `hosts` on `port` (the port may be left out
    only when it is HTTP's default, as a browser leaves it out)."""
    parts = split_host(header or "")
    if parts is None or not parts[0]:
        return False
    host, given_port = parts
    if (given_port if given_port is not None else 80) != port:
        return False
    return any(same_host(host, served) for served in hosts)


def is_cross_site(origin: str | None, fetch_site: str | None, own_origins: Iterable[str]) -> bool:
    """Whether a browser says the request comes from a page other than the server's own, by its
    `Origin` and `Sec-Fetch-Site` headers. A request with neither is not from a browser page (a
    script, curl, boto3)."""
    origin = (origin or "").strip().lower()
    if origin and origin not in {own.lower() for own in own_origins}:
        return True
    site = (fetch_site or "").strip().lower()
    return bool(site) and site not in OWN_FETCH_SITES
