"""The canary's proof (functions/enquiries/canary.py): only the stack's own canary can make one, and
anything else is an ordinary enquiry."""

from __future__ import annotations

import pytest

from enquiries import canary

KEY = canary.derive_key("the address-hashing secret's value")
NOW = 1_796_000_000.0
IDEMPOTENCY_KEY = "canary-01JB8Z6Q6V6J5Y0M5W6K8T3R2N"


def test_canary_proof_made_with_the_stacks_key_is_recognised() -> None:
    # Given a proof the canary makes for its request
    proof = canary.make_proof(KEY, idempotency_key=IDEMPOTENCY_KEY, now=NOW)
    # When the submission path checks it, a little later
    # Then it is the canary
    assert canary.is_canary(proof, KEY, idempotency_key=IDEMPOTENCY_KEY, now=NOW + 2)


@pytest.mark.parametrize(
    ("proof", "idempotency_key", "now"),
    [
        # Forged: the right shape, made with another key
        (
            canary.make_proof(canary.derive_key("a guess"), idempotency_key=IDEMPOTENCY_KEY, now=NOW),
            None,
            NOW,
        ),
        # Tampered: the time moved on to stretch its life
        (
            canary.make_proof(KEY, idempotency_key=IDEMPOTENCY_KEY, now=NOW).replace(
                str(int(NOW)), str(int(NOW) + 600)
            ),
            None,
            NOW + 600,
        ),
        # Copied onto another request
        (canary.make_proof(KEY, idempotency_key=IDEMPOTENCY_KEY, now=NOW), "another-key", NOW),
        # Stale: older than its lifetime
        (
            canary.make_proof(KEY, idempotency_key=IDEMPOTENCY_KEY, now=NOW),
            None,
            NOW + canary.PROOF_LIFETIME + 1,
        ),
        # From the future, beyond the clocks' skew
        (canary.make_proof(KEY, idempotency_key=IDEMPOTENCY_KEY, now=NOW + canary.CLOCK_SKEW + 5), None, NOW),
        # Malformed, empty or missing
        ("v1.notatime.abc", None, NOW),
        ("v2." + canary.make_proof(KEY, idempotency_key=IDEMPOTENCY_KEY, now=NOW)[3:], None, NOW),
        ("v1." + "9" * 400 + ".00", None, NOW),
        ("", None, NOW),
        (None, None, NOW),
    ],
    ids=[
        "forged",
        "tampered",
        "other request",
        "stale",
        "future",
        "malformed",
        "version",
        "huge",
        "empty",
        "none",
    ],
)
def test_canary_proof_anything_else_is_an_ordinary_enquiry(
    proof: str | None, idempotency_key: str | None, now: float
) -> None:
    # Given a request whose proof is not the stack's own for it, now
    # When the submission path checks it
    recognised = canary.is_canary(proof, KEY, idempotency_key=idempotency_key or IDEMPOTENCY_KEY, now=now)
    # Then it is not a canary: its enquiry is emailed to the clinic as any other
    assert recognised is False


def test_canary_proof_needs_an_idempotency_key() -> None:
    # Given a proof, on a request without an Idempotency-Key (whose replay nothing would stop)
    proof = canary.make_proof(KEY, idempotency_key="", now=NOW)
    # When it is checked
    # Then it is not a canary
    assert not canary.is_canary(proof, KEY, idempotency_key=None, now=NOW)
    assert not canary.is_canary(proof, KEY, idempotency_key="", now=NOW)


def test_canary_key_is_not_the_stored_secret_itself() -> None:
    # Given the stored secret the key is derived from
    secret = "the address-hashing secret's value"
    # When the proof's key is derived
    # Then it is neither the secret nor its plain hash, and the same secret gives the same key
    import hashlib

    assert canary.derive_key(secret) not in (secret.encode(), hashlib.sha256(secret.encode()).digest())
    assert canary.derive_key(secret) == KEY
