"""A lower bound for the submission handler: the least any handler must do to keep the contract's
core promises for one valid JSON enquiry, with the libraries this project is required to use.

It parses the JSON body, checks the email with email-validator and the phone with phonenumbers,
makes a ULID, hashes the client address with the key from Secrets Manager (read once per container),
and stores the enquiry (with created_at and the TTL expires_at), its double-submit record and the
address's rate count in one DynamoDB transaction with the same conditions functions/enquiries
writes. Nothing else: no routing, CORS, Origin check, logging, settings, error handling, Idempotency-
Key, Powertools or pydantic. It is not a competitor (it answers only the happy path); `make bench` runs it
beside the handler and the baseline to show how much of the distance from the bare baseline is the
price of validating and guarding an enquiry at all, and how much is this project's own.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import time
from datetime import UTC, datetime, timedelta
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
    email = email_validator.validate_email(
        fields["email"], check_deliverability=False, allow_smtputf8=False
    ).normalized
    number = phonenumbers.parse(fields["phone"], "GB")
    if not phonenumbers.is_possible_number(number):
        raise ValueError("the floor serves valid enquiries only")
    phone = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if "address_key" not in _clients:  # read once per container, as the handler does
        secret = _client("secretsmanager").get_secret_value(SecretId=os.environ["CLIENT_ADDRESS_SECRET_ARN"])
        _clients["address_key"] = secret["SecretString"].encode()
    address = event["requestContext"]["http"]["sourceIp"]
    client_key = hmac.new(_clients["address_key"], address.encode(), hashlib.sha256).hexdigest()
    enquiry_id = str(ULID())
    now = time.time()
    received = datetime.fromtimestamp(now, UTC)
    stored = {
        "name": fields["name"].strip(),
        "email": email,
        "phone": phone,
        "service": fields["service"].strip(),
        "message": fields["message"].strip(),
        "consent": fields["consent"] is True,
    }
    fingerprint = hashlib.sha256(json.dumps([client_key, stored], sort_keys=True).encode()).hexdigest()
    item: dict[str, Any] = {name: {"S": value} for name, value in stored.items() if isinstance(value, str)}
    item["consent"] = {"BOOL": stored["consent"]}
    item["id"] = {"S": enquiry_id}
    item["created_at"] = {"S": received.isoformat(timespec="milliseconds").replace("+00:00", "Z")}
    item["expires_at"] = {"N": str(int((received + timedelta(days=365)).timestamp()))}
    body = json.dumps({"id": enquiry_id})
    guard_table = os.environ["GUARD_TABLE_NAME"]
    whole_seconds = int(now)
    bucket = whole_seconds // 600 * 600  # the handler's 10-minute rate bucket
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
                # As the handler's replay records: an expired record no longer counts, and a
                # repeat reads the first response from the cancellation reason.
                "Put": {
                    "TableName": guard_table,
                    "Item": {
                        "id": {"S": f"replay#double-submit#{fingerprint}"},
                        "response": {"S": body},
                        "expiration": {"N": str(whole_seconds + 600)},
                    },
                    "ConditionExpression": "attribute_not_exists(id) OR expiration < :now",
                    "ExpressionAttributeValues": {":now": {"N": str(whole_seconds)}},
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            },
            {
                # As the handler's first attempt for an address with no recent count (every
                # benchmark request comes from its own address): one in the current bucket.
                "Update": {
                    "TableName": guard_table,
                    "Key": {"id": {"S": f"rate#{client_key}"}},
                    "UpdateExpression": "ADD #counter :one SET expiration = :expires",
                    "ConditionExpression": "attribute_not_exists(id)",
                    "ExpressionAttributeNames": {"#counter": f"a{bucket}"},
                    "ExpressionAttributeValues": {
                        ":one": {"N": "1"},
                        ":expires": {"N": str(bucket + 7 * 600)},
                    },
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            },
        ],
        ClientRequestToken=f"{enquiry_id}-1",
    )
    return {"statusCode": 201, "headers": {"Content-Type": "application/json"}, "body": body}
