"""Origins written the one way a browser sends them, so that a configured origin can match.

A browser's `Origin` header is the ASCII serialisation of the page's origin (RFC 6454, section 6.2;
the WHATWG URL standard computes it): lower-case scheme and host, an international host in
punycode, an IPv6 host in brackets and compressed, no default port, no path, not even "/".
`serialise_origin` turns a setting or a header into that form, and refuses what no browser sends:

- written differently, the same origin: upper case, `:443` on https or `:80` on http, an empty
  port or leading zeros, one trailing `/`, a Unicode host, an uncompressed IPv6 host: normalised;
- not an origin or never sent: another scheme, a path, query, fragment or user name, spaces, a
  wildcard or another character no host name has, an empty label, a port out of range, a
  numeric host that is not four decimal numbers, an IPv6 zone: refused, with the reason.
"""

from __future__ import annotations

import re

DEFAULT_PORTS = {"http": 80, "https": 443}
# What a host name may hold once in ASCII; browsers also allow "*", "!" and the like, but no site
# is served at such a name, so a setting with one is a mistake (often a wildcard, which CORS lacks).
_HOST_LABEL = re.compile(r"^[a-z0-9_-]+$")
# The WHATWG "ends in a number" rule: a host whose last label looks numeric is an IPv4 address.
_NUMERIC_LABEL = re.compile(r"^([0-9]+|0x[0-9a-f]*)$")


# ASCII's control characters: below the space, and DEL.
_FIRST_PRINTABLE, _DELETE = 32, 127
_HIGHEST_PORT = 65535


def serialise_origin(text: str) -> str:
    """`text` as a browser's Origin header would carry it; ValueError saying why it never could."""
    if any(char.isspace() or ord(char) < _FIRST_PRINTABLE or ord(char) == _DELETE for char in text):
        raise ValueError("must not contain spaces or control characters")
    scheme, separator, rest = text.partition("://")
    scheme = scheme.lower()
    if not separator or scheme not in DEFAULT_PORTS:
        raise ValueError("must start with https:// or http://")
    if rest.endswith("/"):  # the site's root URL: the same origin
        rest = rest[:-1]
    if any(char in rest for char in "/?#@\\"):
        raise ValueError("must be an origin alone, without a path, query, fragment or user name")
    host, port = _host_and_port(rest)
    if port is None or port == DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def _host_and_port(authority: str) -> tuple[str, int | None]:
    if authority.startswith("["):
        literal, bracket, after = authority[1:].partition("]")
        if not bracket or (after and not after.startswith(":")):
            raise ValueError("must close an IPv6 address with ] before the port")
        return f"[{_ipv6(literal)}]", _port(after[1:]) if after else None
    host, colon, port_text = authority.rpartition(":") if ":" in authority else (authority, "", "")
    return _domain_or_ipv4(host), _port(port_text) if colon else None


def _port(text: str) -> int | None:
    if not text:  # "https://a.example:" has no port: browsers send "https://a.example"
        return None
    if not (text.isascii() and text.isdigit()) or not 0 < int(text) <= _HIGHEST_PORT:
        raise ValueError("must have a port from 1 to 65535, if any")
    return int(text)


def _domain_or_ipv4(host: str) -> str:
    if not host:
        raise ValueError("must name a host")
    if not host.isascii() or "xn--" in host.lower():
        host = _punycode(host)
    host = host.lower()
    labels = host.split(".")
    if not all(_HOST_LABEL.match(label) for label in labels):
        raise ValueError("must have a host name of letters, digits and hyphens (no wildcard, no empty part)")
    if _NUMERIC_LABEL.match(labels[-1]):
        # Browsers read "127.1" or "0x7f.0.0.1" as 127.0.0.1: only the form they send can match.
        import ipaddress

        try:
            canonical = str(ipaddress.IPv4Address(host))
        except ValueError:
            canonical = ""
        if canonical != host:
            raise ValueError("must write an IPv4 address as four decimal numbers, like 127.0.0.1")
    return host


def _punycode(host: str) -> str:
    # Imported only for an international name: idna comes with email-validator.
    import idna

    try:
        # UTS #46 non-transitional processing, as browsers do ("straße" stays "straße", in punycode).
        return idna.encode(host, uts46=True, transitional=False).decode("ascii")
    except idna.IDNAError:
        raise ValueError("must have a valid international domain name") from None


def _ipv6(literal: str) -> str:
    import ipaddress

    if "%" in literal:
        raise ValueError("must not have an IPv6 zone (browsers do not send one)")
    try:
        packed = ipaddress.IPv6Address(literal).packed
    except ValueError:
        raise ValueError("must have a valid IPv6 address between [ and ]") from None
    # The WHATWG IPv6 serializer: eight lower-case hex pieces, the first longest run of two or more
    # zero pieces written "::". (ipaddress writes IPv4-mapped addresses differently on some versions.)
    pieces = [int.from_bytes(packed[i : i + 2], "big") for i in range(0, 16, 2)]
    best_start, best_length, start = -1, 1, None
    for index, piece in enumerate([*pieces, 1]):
        if piece == 0 and start is None:
            start = index
        elif piece != 0 and start is not None:
            if index - start > best_length:
                best_start, best_length = start, index - start
            start = None
    hexes = [format(piece, "x") for piece in pieces]
    if best_start < 0:
        return ":".join(hexes)
    return ":".join(hexes[:best_start]) + "::" + ":".join(hexes[best_start + best_length :])
