"""The bare baseline the submission handler is measured against: what a minimal boto3 Lambda handler
for a contact form looks like. `json.loads` the body, one `put_item` of its fields plus an id, 201.

Deliberately without validation, Powertools, duplicates, rate limits or error handling: it is the bare
minimum ("what does DynamoDB behind API Gateway cost at all"), not a competitor (bench/floor.py is the
least a handler that validates and guards an enquiry must do). Like a plain handler, it creates
its boto3 client lazily, once per process, with boto3's default settings.
"""

from __future__ import annotations

import json
import os
import uuid
from typing import Any

_client: Any = None


def dynamodb() -> Any:
    """The process's DynamoDB client, created on first use."""
    global _client  # one client per Lambda container, as plain handlers do
    if _client is None:
        import boto3

        _client = boto3.client("dynamodb")
    return _client


def reset_client() -> None:
    """Forget the client (tests switch between AWS backends)."""
    global _client
    _client = None


def _attribute(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int | float):
        return {"N": str(value)}
    if isinstance(value, str):
        return {"S": value}
    return {"S": json.dumps(value)}


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    fields = json.loads(event["body"])
    enquiry_id = uuid.uuid4().hex
    item = {name: _attribute(value) for name, value in fields.items()}
    item["id"] = {"S": enquiry_id}
    dynamodb().put_item(TableName=os.environ["TABLE_NAME"], Item=item)
    return {
        "statusCode": 201,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps({"id": enquiry_id}),
    }
