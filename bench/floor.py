"""A lower bound for the submission handler: the least any handler must do to keep the contract's
core promises for one valid JSON enquiry, with the libraries this project is required to use.

It parses the JSON body, checks the email with email-validator and normalises the phone with
phonenumbers, makes a ULID, hashes the client address with the key from Secrets Manager, and stores
the enquiry, its double-submit record and the address's rate count in one DynamoDB transaction, as
functions/enquiries does. Nothing else: no routing, CORS, logging, settings, error handling,
Powertools or pydantic. It is not a competitor (it answers only the happy path); `make bench` runs it
beside the handler and the baseline to show how much of the distance from the bare baseline is the
price of validating and guarding an enquiry at all, and how much is this project's own.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import time
from typing import Any

# The botocore session, a client per service and the address-hashing key, once per process.
_clients: dict[str, Any] = {}


def _client(service: str) -> Any:
    """One botocore session and one client per service, created on first use (the cheapest way)."""
    if service not in _clients:
        if "session" not in _clients:
            import botocore.session

            _clients["session"] = botocore.session.get_session()
        _clients[service] = _clients["session"].create_client(service)
    return _clients[service]


def reset_clients() -> None:
    """Forget the clients and the key (tests switch between AWS backends)."""
    _clients.clear()


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    import email_validator
    import phonenumbers
    from ulid import ULID

    fields = json.loads(event["body"])
    email = email_validator.validate_email(fields["email"], check_deliverability=False).normalized
    phone = phonenumbers.format_number(
        phonenumbers.parse(fields["phone"], "GB"), phonenumbers.PhoneNumberFormat.E164
    )
    if "address_key" not in _clients:  # read once per container, as the handler does
        secret = _client("secretsmanager").get_secret_value(SecretId=os.environ["CLIENT_ADDRESS_SECRET_ARN"])
        _clients["address_key"] = secret["SecretString"].encode()
    address = event["requestContext"]["http"]["sourceIp"]
    client_key = hmac.new(_clients["address_key"], address.encode(), hashlib.sha256).hexdigest()
    enquiry_id = str(ULID())
    now = int(time.time())
    fingerprint = hashlib.sha256(f"{client_key}|{email}|{phone}|{fields['message']}".encode()).hexdigest()
    item = {
        "id": {"S": enquiry_id},
        "name": {"S": fields["name"]},
        "email": {"S": email},
        "phone": {"S": phone},
        "message": {"S": fields["message"]},
    }
    body = json.dumps({"id": enquiry_id})
    guard_table = os.environ["GUARD_TABLE_NAME"]
    _client("dynamodb").transact_write_items(
        TransactItems=[
            {
                "Put": {
                    "TableName": os.environ["TABLE_NAME"],
                    "Item": item,
                    "ConditionExpression": "attribute_not_exists(id)",
                }
            },
            {
                "Put": {
                    "TableName": guard_table,
                    "Item": {
                        "id": {"S": f"replay#double#{fingerprint}"},
                        "response": {"S": body},
                        "expiration": {"N": str(now + 600)},
                    },
                    "ConditionExpression": "attribute_not_exists(id)",
                }
            },
            {
                "Update": {
                    "TableName": guard_table,
                    "Key": {"id": {"S": f"rate#{client_key}#{now // 3600 * 3600}"}},
                    "UpdateExpression": "ADD accepted :one SET expiration = :expires",
                    "ConditionExpression": "attribute_not_exists(accepted) OR accepted < :limit",
                    "ExpressionAttributeValues": {
                        ":one": {"N": "1"},
                        ":limit": {"N": "10"},
                        ":expires": {"N": str(now // 3600 * 3600 + 3600)},
                    },
                }
            },
        ],
        ClientRequestToken=enquiry_id,
    )
    return {"statusCode": 201, "headers": {"Content-Type": "application/json"}, "body": body}
