"""The emulator's tables (emulator/template_tables.py): created exactly as template.yaml declares them."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from moto import mock_aws

from emulator.template_tables import (
    TEMPLATE_PATH,
    create_table_from_template,
    create_table_kwargs,
    load_template,
    table_properties,
)


@mock_aws
def test_create_table_from_template_matches_the_template() -> None:
    # Given an emulated DynamoDB and the template's table declaration
    client = boto3.client("dynamodb", region_name="eu-west-2")
    declared = load_template()["Resources"]["EnquiriesTable"]["Properties"]

    # When the table is created from the template
    create_table_from_template(client, "enquiries-test")

    # Then its key schema, billing, stream, encryption and TTL are the template's
    table = client.describe_table(TableName="enquiries-test")["Table"]
    ttl = client.describe_time_to_live(TableName="enquiries-test")["TimeToLiveDescription"]
    assert table["TableStatus"] == "ACTIVE"
    assert table["KeySchema"] == declared["KeySchema"]
    assert table["AttributeDefinitions"] == declared["AttributeDefinitions"]
    assert table["BillingModeSummary"]["BillingMode"] == declared["BillingMode"]
    assert table["StreamSpecification"] == {
        "StreamEnabled": True,
        "StreamViewType": declared["StreamSpecification"]["StreamViewType"],
    }
    assert table["SSEDescription"]["Status"] == "ENABLED"
    assert ttl == {
        "TimeToLiveStatus": "ENABLED",
        "AttributeName": declared["TimeToLiveSpecification"]["AttributeName"],
    }


def test_load_template_reads_short_form_intrinsics_as_long_form() -> None:
    # Given the template on disk, which uses !Ref, !GetAtt, !Sub, !Split and !If
    text = TEMPLATE_PATH.read_text(encoding="utf-8")
    assert all(tag in text for tag in ("!Ref ", "!GetAtt ", "!Sub ", "!Split ", "!If"))

    # When it is loaded
    template = load_template()

    # Then the tags are plain CloudFormation values, and callers get their own copy
    function = template["Resources"]["SubmitEnquiryFunction"]["Properties"]
    assert template["Globals"]["Function"]["Environment"]["Variables"]["TABLE_NAME"] == {
        "Ref": "EnquiriesTable"
    }
    assert function["Policies"][0]["Statement"][0]["Resource"] == {"Fn::GetAtt": ["EnquiriesTable", "Arn"]}
    template["Resources"].clear()
    assert load_template()["Resources"]


@mock_aws
def test_create_table_from_template_makes_the_guard_table_as_declared() -> None:
    # Given an emulated DynamoDB and the template's guard table declaration
    client = boto3.client("dynamodb", region_name="eu-west-2")
    declared = table_properties("GuardTable")

    # When the table is created from the template
    create_table_from_template(client, "enquiries-guard-test", logical_id="GuardTable")

    # Then its key schema and TTL are the template's
    table = client.describe_table(TableName="enquiries-guard-test")["Table"]
    ttl = client.describe_time_to_live(TableName="enquiries-guard-test")["TimeToLiveDescription"]
    assert table["KeySchema"] == declared["KeySchema"]
    assert ttl["AttributeName"] == declared["TimeToLiveSpecification"]["AttributeName"]


def test_table_properties_refuses_a_resource_that_is_not_a_table() -> None:
    # Given the template, and the logical id of a function
    # When its table properties are asked for
    # Then it is refused, naming the resource
    with pytest.raises(KeyError, match="SubmitEnquiryFunction"):
        table_properties("SubmitEnquiryFunction")


def test_create_table_kwargs_refuses_a_property_set_by_an_intrinsic() -> None:
    # Given table properties whose billing mode comes from a parameter
    properties: dict[str, Any] = {**table_properties(), "BillingMode": {"Ref": "BillingMode"}}
    # When they are mapped to create_table's arguments
    # Then they are refused: the emulator cannot evaluate the template's parameters
    with pytest.raises(ValueError, match="intrinsic"):
        create_table_kwargs("enquiries-test", properties)
