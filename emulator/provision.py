"""What template.yaml deploys and the handlers need, created in a running emulator.

The local server provisions with this at start; so can a moto server run by hand for `sam local`
(docs/sam-local.md).
"""

from __future__ import annotations

import logging
import secrets
from email.utils import parseaddr

from emulator.moto_server import Emulator
from emulator.template_tables import create_table_from_template

log = logging.getLogger(__name__)


def provision(
    emulator: Emulator, *, table_name: str, sender: str, guard_table_name: str, address_secret: str
) -> None:
    """Create what the template deploys and the handlers need: both tables, the address-hashing
    secret (a random one per run, as the template generates one per stack) and the verified sender."""
    dynamodb = emulator.client("dynamodb")
    create_table_from_template(dynamodb, table_name)
    create_table_from_template(dynamodb, guard_table_name, logical_id="GuardTable")
    emulator.client("secretsmanager").create_secret(Name=address_secret, SecretString=secrets.token_hex(32))
    address = parseaddr(sender)[1] or sender
    emulator.client("ses").verify_email_identity(EmailAddress=address)
    log.info(
        "created tables %s and %s, the address-hashing secret, and verified sender %s in the emulator",
        table_name,
        guard_table_name,
        address,
    )


def create_dead_letter_queue(emulator: Emulator, name: str) -> str:
    """Create the notifier's dead-letter queue (the template's OnFailure destination); return its URL."""
    url = str(emulator.client("sqs").create_queue(QueueName=name)["QueueUrl"])
    log.info("created queue %s in the emulator", name)
    return url
