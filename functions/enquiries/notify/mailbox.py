"""Which mailbox an address reaches: the key the acknowledgement's 24-hour limit counts by.

Two spellings that a provider documents as one mailbox get one key, so that the limit cannot be
walked around with `v.ictim@gmail.com`, `victim@googlemail.com` or `x-1@yahoo.com` / `x-2@yahoo.com`.
Two different domains never get one key: the domain is compared after IDNA (UTS #46 mapping, then
IDNA 2008, as email-validator and DNS use it), so `straße.de` (xn--strae-oqa.de) stays apart from
`strasse.de`, and only the ASCII result is lower-cased (no `casefold`, which would merge them).

The local part is compared in lower case (the contract compares addresses without regard to letter
case) and without a `+tag`, the RFC 5233 subaddress that most mail systems deliver to the base
mailbox; beyond that only what each provider documents:
- Gmail: dots in the local part do not matter (https://support.google.com/mail/answer/7436150), and
  googlemail.com (Google's name for Gmail in Germany and the UK) reaches the same accounts as
  gmail.com; no Google page on the second was found to cite.
- Yahoo: a disposable address is `basename-keyword@`, delivered to the account that chose the base
  name (http://help.yahoo.com/help/uk/bt/tutorials/mail/addressguard2.html): the key is the base name.
- Fastmail: `+` tags, and subdomain addressing, `anything@user.fastmail.com` for
  `user@fastmail.com` (https://www.fastmail.help/hc/en-us/articles/360060591053).
- Outlook.com / Hotmail and Exchange Online (https://learn.microsoft.com/exchange/recipients-in-exchange-online/plus-addressing-in-exchange-online),
  iCloud and Proton: `+` tags, as for every domain.
"""

from __future__ import annotations

_GMAIL_DOMAINS = frozenset({"gmail.com", "googlemail.com"})
_YAHOO_DOMAINS = frozenset(
    {"yahoo.com", "yahoo.co.uk", "yahoo.fr", "yahoo.de", "yahoo.es", "yahoo.it", "yahoo.ca", "ymail.com"}
)
_FASTMAIL_DOMAINS = frozenset({"fastmail.com", "fastmail.fm"})


def ascii_domain_key(domain: str) -> str:
    """The domain as DNS knows it (UTS #46 mapping and IDNA 2008), in lower case; a domain IDNA
    refuses is kept as written with only its ASCII letters lower-cased, so it can match nothing else."""
    import idna

    try:
        mapped = idna.encode(domain.strip().rstrip("."), uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError):
        mapped = domain.strip()
    return "".join(c.lower() if c.isascii() else c for c in mapped)


def mailbox_key(address: str) -> str:
    """The mailbox `address` reaches, as the acknowledgement's limit compares addresses."""
    local, _, domain = address.strip().rpartition("@")
    domain = ascii_domain_key(domain)
    local = "".join(c.lower() if c.isascii() else c for c in local).split("+", 1)[0]
    if domain in _GMAIL_DOMAINS:
        return local.replace(".", "") + "@gmail.com"
    if domain in _YAHOO_DOMAINS:
        return local.split("-", 1)[0] + "@" + domain
    user, _, parent = domain.partition(".")
    if parent in _FASTMAIL_DOMAINS and user:
        return f"{user}@{parent}"
    return f"{local}@{domain}"
