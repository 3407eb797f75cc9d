"""Create DynamoDB tables exactly as template.yaml declares them.

The local server and the tests both create their (moto) table through this module, reading the key
schema, billing mode, stream and TTL from the deployed template itself, so the emulated table cannot
drift from the real one.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import yaml

TEMPLATE_PATH = Path(__file__).resolve().parent.parent / "template.yaml"
TABLE_TYPE = "AWS::DynamoDB::Table"

# Short-form tags that take the bare name as their key; every other `!Name` becomes `Fn::Name`.
_UNPREFIXED_TAGS = frozenset({"Ref", "Condition"})


class DynamoDBClient(Protocol):
    """The part of a boto3 low-level DynamoDB client this module uses."""

    def create_table(self, **kwargs: Any) -> Any: ...

    def update_time_to_live(self, **kwargs: Any) -> Any: ...

    def get_waiter(self, waiter_name: str) -> Any: ...


def _construct_intrinsic(loader: Any, tag_suffix: str, node: Any) -> dict[str, Any]:
    """Read `!Ref X`, `!GetAtt A.B`, `!Sub ...`, `!If [...]` etc. as their long form."""
    key = tag_suffix if tag_suffix in _UNPREFIXED_TAGS else f"Fn::{tag_suffix}"
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if tag_suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {key: value}


# A SafeLoader that also understands CloudFormation's short-form tags (built with type() rather than a
# class statement because PyYAML ships untyped here, and strict mypy refuses to subclass Any).
CloudFormationLoader: Any = type("CloudFormationLoader", (yaml.SafeLoader,), {})
CloudFormationLoader.add_multi_constructor("!", _construct_intrinsic)


@functools.cache
def _load_cached(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as stream:
        document = yaml.load(stream, Loader=CloudFormationLoader)  # noqa: S506 - a SafeLoader subclass
    if not isinstance(document, dict):
        raise ValueError(f"{path} is not a CloudFormation template (expected a mapping at the top)")
    return document


def load_template(path: Path | None = None) -> dict[str, Any]:
    """The template as plain data (intrinsics as {"Ref": ...} / {"Fn::...": ...}).

    Parsed once per path; each call returns a fresh deep copy, so callers may mutate it freely.
    """
    return copy.deepcopy(_load_cached((path or TEMPLATE_PATH).resolve()))


def table_properties(
    logical_id: str = "EnquiriesTable", template: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The Properties of the AWS::DynamoDB::Table resource `logical_id` (default template: the repo's)."""
    # The cached parse itself, not a copy of the whole template: only the properties are copied below.
    source = _load_cached(TEMPLATE_PATH.resolve()) if template is None else template
    resource = source.get("Resources", {}).get(logical_id)
    if not isinstance(resource, Mapping) or resource.get("Type") != TABLE_TYPE:
        raise KeyError(f"the template has no {TABLE_TYPE} resource named {logical_id!r}")
    return copy.deepcopy(dict(resource.get("Properties", {})))


def _literal(value: Any, what: str) -> Any:
    """`value`, refusing an unresolved intrinsic (a table property this module cannot evaluate)."""
    if isinstance(value, Mapping) and any(key == "Ref" or str(key).startswith("Fn::") for key in value):
        raise ValueError(
            f"{what} uses an intrinsic function ({value!r}); declare it literally in the template"
        )
    if isinstance(value, Mapping):
        return {key: _literal(item, f"{what}.{key}") for key, item in value.items()}
    if isinstance(value, list):
        return [_literal(item, what) for item in value]
    return value


def create_table_kwargs(table_name: str, properties: Mapping[str, Any]) -> dict[str, Any]:
    """Map the template's table Properties to boto3 `create_table` arguments.

    Mapped: AttributeDefinitions, KeySchema, BillingMode (with ProvisionedThroughput when provisioned),
    GlobalSecondaryIndexes, LocalSecondaryIndexes, StreamSpecification, SSESpecification.
    Deliberately ignored, as they change nothing the code can observe locally: TableName (the caller
    names the table), PointInTimeRecoverySpecification, DeletionProtectionEnabled, TableClass,
    ContributorInsightsSpecification, KinesisStreamSpecification, Tags and any other property.
    TimeToLiveSpecification is applied after creation (see create_table_from_template).
    """
    props = _literal(dict(properties), "table properties")
    kwargs: dict[str, Any] = {
        "TableName": table_name,
        "AttributeDefinitions": props["AttributeDefinitions"],
        "KeySchema": props["KeySchema"],
        "BillingMode": props.get("BillingMode", "PROVISIONED"),
    }
    if kwargs["BillingMode"] == "PROVISIONED":
        kwargs["ProvisionedThroughput"] = props["ProvisionedThroughput"]
    for index_kind in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
        if props.get(index_kind):
            # CloudFormation's index shape is the API's, minus properties the API has no place for here.
            kwargs[index_kind] = [
                {
                    key: value
                    for key, value in index.items()
                    if key in {"IndexName", "KeySchema", "Projection", "ProvisionedThroughput"}
                }
                for index in props[index_kind]
            ]
    stream = props.get("StreamSpecification")
    if stream:
        # CloudFormation enables the stream by the presence of StreamViewType; the API wants both.
        kwargs["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": stream["StreamViewType"]}
    sse = props.get("SSESpecification")
    if sse:
        # CloudFormation's SSEEnabled is the API's Enabled; moto accepts it (and makes a KMS key).
        api_sse: dict[str, Any] = {"Enabled": bool(sse.get("SSEEnabled", False))}
        if sse.get("SSEType"):
            api_sse["SSEType"] = sse["SSEType"]
        if sse.get("KMSMasterKeyId"):
            api_sse["KMSMasterKeyId"] = sse["KMSMasterKeyId"]
        kwargs["SSESpecification"] = api_sse
    return kwargs


def create_table_from_template(
    client: DynamoDBClient, table_name: str, logical_id: str = "EnquiriesTable"
) -> None:
    """Create `table_name` with `client` (e.g. a moto-backed boto3 client) as the template declares
    `logical_id`, wait until it exists, then enable its TTL like the template does."""
    properties = table_properties(logical_id)
    client.create_table(**create_table_kwargs(table_name, properties))
    client.get_waiter("table_exists").wait(TableName=table_name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    ttl = _literal(properties.get("TimeToLiveSpecification"), "TimeToLiveSpecification")
    if ttl and ttl.get("Enabled", False):
        client.update_time_to_live(
            TableName=table_name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]},
        )
