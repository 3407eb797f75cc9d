"""Sends a composed email through SES v2 as raw MIME, mapping failures to transient or permanent."""

from __future__ import annotations

from collections.abc import Callable
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from typing import Any

from enquiries.aws import classify
from enquiries.aws_clients import RETRY_BACKOFF_SECONDS, aws_session, lazy_client
from enquiries.errors import EnquiriesError
from enquiries.notify.headers import ascii_domain


class SendFailed(EnquiriesError):
    """SES did not accept the message. `reason` (an SES error code) is safe to log. A transient
    failure (`enquiries.aws.classify`: throttling, SES or the network failing) is likely to pass
    when the stream retries the record; a permanent one (a rejected message, an unverified
    sender) needs someone to act."""

    def __init__(self, reason: str, *, permanent: bool) -> None:
        super().__init__(f"{'permanent' if permanent else 'transient'} send failure: {reason}")
        self.reason = reason
        self.permanent = permanent


# One SES call gives up after at most 2 attempts of (1 s to connect + 3 s to read), with at most 1 s
# of backoff between them (botocore's standard retry mode: a random wait of up to 1 s after a
# throttling error, 50 ms after others): 9 s. SES usually answers in well under a second. A send
# timed out after SES accepted it is sent again by the second attempt, so attempts stay few.
SES_CONNECT_TIMEOUT_SECONDS = 1
SES_READ_TIMEOUT_SECONDS = 3
SES_ATTEMPTS = 2
SES_CALL_MAX_SECONDS = (
    SES_ATTEMPTS * (SES_CONNECT_TIMEOUT_SECONDS + SES_READ_TIMEOUT_SECONDS) + RETRY_BACKOFF_SECONDS
)


@lazy_client
def sesv2_client() -> Any:
    from botocore.config import Config

    config = Config(
        connect_timeout=SES_CONNECT_TIMEOUT_SECONDS,
        read_timeout=SES_READ_TIMEOUT_SECONDS,
        retries={"mode": "standard", "total_max_attempts": SES_ATTEMPTS},
    )
    return aws_session().create_client("sesv2", config=config)


def envelope_address(address: Address) -> str:
    """The bare address SES wants in FromEmailAddress and Destination: 7-bit ASCII, the domain in
    punycode, no display name (SES has no SMTPUTF8; non-ASCII names belong in the raw message's
    headers, as RFC 2047 encoded words). https://docs.aws.amazon.com/ses/latest/APIReference-V2/API_Destination.html"""
    return Address(username=address.username, domain=ascii_domain(address.domain)).addr_spec


class SesMailer:
    def __init__(
        self, configuration_set: str | None = None, client_factory: Callable[[], Any] = sesv2_client
    ) -> None:
        self._configuration_set = configuration_set
        self._client_factory = client_factory

    def with_configuration_set(self, configuration_set: str | None) -> SesMailer:
        """A mailer with the same client that sends under `configuration_set` instead."""
        return SesMailer(configuration_set, self._client_factory)

    def send(self, message: EmailMessage) -> str:
        """Send `message` to its To addresses; return SES's message id, or raise SendFailed."""
        request: dict[str, Any] = {
            "FromEmailAddress": envelope_address(message["From"].addresses[0]),
            "Destination": {
                "ToAddresses": [envelope_address(address) for address in message["To"].addresses]
            },
            "Content": {"Raw": {"Data": message.as_bytes(policy=SMTP)}},
        }
        if self._configuration_set:
            request["ConfigurationSetName"] = self._configuration_set
        try:
            response = self._client_factory().send_email(**request)
        except Exception as error:
            failure = classify(error)
            if failure is None:  # not SES's answer nor the network: a bug or the configuration
                raise
            raise SendFailed(failure.code, permanent=not failure.transient) from error
        return str(response["MessageId"])
