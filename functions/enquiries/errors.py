"""The exceptions' common bases. Each exception is defined where it is raised and importable from
there; this module, at the bottom of the import graph, only gives them one tree:

* EnquiriesError
  + Unavailable(reason): a dependency did not answer usefully; try again later (a 503 on the API)
    - StorageUnavailable (aws): DynamoDB throttling, failing or unreachable
      . OverBudget (request_budget): too little of the request's time left to start a call
      . SentElsewhere (notify.delivery): another delivery holds the enquiry's claim
    - SecretUnavailable (stored_secret): a secret could not be read
    - CaptchaUnavailable (captcha): the captcha's verifier could not be asked
  + SettingsError (settings): a setting is missing or malformed (also a RuntimeError)
  + FormError (forms): a form file cannot be used, named with its file and line (also a RuntimeError)
  + InvalidEnquiry (validation): one or more fields fail their rules
  + ApiError (api.errors): a response the contract defines for a failure
  + CaptchaFailed (captcha): the captcha token was missing, wrong or used
  + MalformedAnswer (turnstile): the verifier's answer is not one it documents (also a ValueError)
  + Replayed (intake): a repeat, with the first request's answer
  + IdempotencyKeyReused (intake): the key answered an earlier, different request
  + RateLimited (intake): too many enquiries from this address
  + IdAlreadyUsed (intake): an enquiry with this id exists already
  + UnsafeHeader (header_checks): a value would not survive as an email header (also a ValueError)
  + SendFailed (notify.mailer): SES did not accept the message
  + NotEnoughTime (notify.budget): too little time left in the invocation for a record
  + AlreadyNotified (notify.ledger): the enquiry's email was sent and marked already
  + ClaimRefused (notify.ledger): another delivery holds the claim, or it was marked since
  + AlreadyDecided (notify.ack_store): the acknowledgement's outcome is recorded already

tests/test_errors.py checks this drawing against the classes. Private exceptions that never leave
their module (`_Refused`, `_Reached`) stay outside the tree.
"""

from __future__ import annotations


class EnquiriesError(Exception):
    """Any error this package raises on purpose; anything else is a bug or a missing permission."""


class Unavailable(EnquiriesError):
    """Something the request or record needs did not answer usefully; `reason` is safe to log (an AWS
    error code, a setting's name, never enquiry content)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
