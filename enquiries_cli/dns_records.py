"""The sender's domain's DNS TXT records, read with dnspython, for `doctor`'s SPF and DMARC checks."""

from __future__ import annotations

# A whole lookup, every retry and name server included, gives up after this long
# (https://dnspython.readthedocs.io/en/stable/resolver-class.html: `lifetime`).
LOOKUP_SECONDS = 5.0


class DnsUnreadable(Exception):
    """The name's records could not be read now (no answer in time, no resolver, a server failure),
    which says nothing about whether they exist."""


def txt_records(name: str) -> list[str]:
    """The TXT records at `name`, each one string (a record's strings joined, as SPF and DMARC read
    them: RFC 7208 section 3.3, RFC 7489 section 6.4); empty when the name or its TXT records do
    not exist."""
    import dns.exception
    import dns.resolver

    try:
        resolver = dns.resolver.Resolver()
        resolver.lifetime = LOOKUP_SECONDS
        answer = resolver.resolve(name, "TXT")
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return []
    except dns.exception.DNSException as error:
        raise DnsUnreadable(type(error).__name__) from None
    return [
        b"".join(record.strings).decode("utf-8", "replace") for record in answer if hasattr(record, "strings")
    ]
