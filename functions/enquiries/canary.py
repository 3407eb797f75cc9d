"""The canary's proof: how the submission path tells the scheduled canary's synthetic enquiry from a
visitor's, so that only the canary's is emailed to the SES mailbox simulator instead of the clinic.

A proof is an HMAC, under a key only the stack holds, of a version, the time it was made and the
request's Idempotency-Key. Without the key no one can make one, so a visitor cannot make an enquiry
skip the clinic's email; a proof is good for `PROOF_LIFETIME` only and for one Idempotency-Key, and a
second request with that key gets the first one's answer (the replay records), so a proof seen once
makes no second canary. Anything else, a forged, stale, malformed or misplaced proof included, is an
ordinary enquiry: the check never fails a request.

The key is derived from a stored secret (`derive_key`), with a label of its own, so that the
secret's other use (the client address's HMAC) and this one never share a key.
"""

from __future__ import annotations

import hashlib
import hmac

# The request header that carries the proof (header names are case-insensitive; the API reads them
# in lower case).
HEADER = "x-enquiries-canary"
# Where the notifier sends a canary's email: SES's mailbox simulator, which takes it as delivered,
# works in the sandbox, and counts toward neither the daily quota nor the reputation metrics (it is
# billed as any email): https://docs.aws.amazon.com/ses/latest/DeveloperGuide/mailbox-simulator.html
SIMULATOR_ADDRESS = "success@simulator.amazonses.com"
VERSION = "v1"
# How long a proof is good for, and how far ahead of this clock another's may be.
PROOF_LIFETIME = 300
CLOCK_SKEW = 60
_LABEL = b"enquiries canary proof " + VERSION.encode()
# The stored enquiry's mark: the notifier emails it to SIMULATOR_ADDRESS only and never acknowledges
# it, and the operator's command never lists, exports, counts or hands it out.
ATTRIBUTE = "canary"


def derive_key(secret: str) -> bytes:
    """The proof's key, from the stored secret's value."""
    return hmac.new(secret.encode(), _LABEL, hashlib.sha256).digest()


def make_proof(key: bytes, *, idempotency_key: str, now: float) -> str:
    """The header's value for a request sent at `now` (seconds since the epoch) with this key."""
    issued = str(int(now))
    return f"{VERSION}.{issued}.{_signature(key, issued, idempotency_key)}"


def is_canary(proof: str | None, key: bytes, *, idempotency_key: str | None, now: float) -> bool:
    """Whether `proof` proves the request is the stack's own canary: made with `key`, for this
    Idempotency-Key, within `PROOF_LIFETIME` of `now`."""
    if not proof or not idempotency_key:
        return False
    version, _, rest = proof.strip().partition(".")
    issued, _, signature = rest.partition(".")
    if version != VERSION or not issued.isdigit() or len(issued) > len(str(int(now))) + 1:
        return False
    if not -CLOCK_SKEW <= now - int(issued) <= PROOF_LIFETIME:
        return False
    return hmac.compare_digest(signature, _signature(key, issued, idempotency_key))


def _signature(key: bytes, issued: str, idempotency_key: str) -> str:
    message = f"{VERSION}\n{issued}\n{idempotency_key}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()
