"""The SnapStart warm-up: the schedule that keeps the `live` version active (template.yaml,
SnapStartWarmUpSchedule) and the submission function's answer to its event (enquiries/api/warm_up.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from support import GUARD_TABLE_NAME, Handler, load_event, stored_items

from emulator.template_tables import load_template
from enquiries.api.warm_up import WARM_UP_EVENT


@pytest.fixture(scope="module")
def cfn() -> dict[str, Any]:
    from test_template import _translate

    return _translate(load_template())


def test_warm_up_is_answered_without_storing_anything(handler: Handler, dynamodb: Any) -> None:
    # Given the event the schedule sends
    event = load_event("warm-up.json")

    # When the submission function gets it
    answer = handler(event)

    # Then it answers at once, with no enquiry and no guard record stored
    assert answer == {"warmedUp": True}
    assert stored_items(dynamodb) == []
    assert stored_items(dynamodb, GUARD_TABLE_NAME) == []


def test_warm_up_event_is_the_one_the_schedule_sends(cfn: dict[str, Any]) -> None:
    # Given the schedule's input, the event file and the event the handler recognises
    schedule = cfn["Resources"]["SnapStartWarmUpSchedule"]

    # When they are compared
    sent = json.loads(schedule["Properties"]["Target"]["Input"])

    # Then they are one event
    assert sent == load_event("warm-up.json") == WARM_UP_EVENT


def test_warm_up_schedule_invokes_the_live_alias_well_within_14_days(cfn: dict[str, Any]) -> None:
    # Given the translated schedule and its role
    resources = cfn["Resources"]
    schedule = resources["SnapStartWarmUpSchedule"]
    role = resources["SnapStartWarmUpRole"]

    # When their target, rate, conditions and grants are read
    target = schedule["Properties"]["Target"]
    [policy] = role["Properties"]["Policies"]
    [trust] = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]

    # Then, with SnapStart on and the canary off only (tests/test_canary_function.py), it invokes
    # the alias visitors reach daily (a version is made Inactive after 14 days without one), as a
    # role that may invoke that alias and nothing else, assumed only by EventBridge Scheduler for
    # this account
    assert schedule["Condition"] == role["Condition"] == "WarmsUpSnapStart"
    assert target["Arn"] == {"Ref": "SubmitEnquiryFunctionAliaslive"}
    assert target["RoleArn"] == {"Fn::GetAtt": ["SnapStartWarmUpRole", "Arn"]}
    assert schedule["Properties"]["ScheduleExpression"] == "rate(1 day)"
    assert policy["PolicyDocument"]["Statement"] == [
        {
            "Sid": "InvokeLiveAlias",
            "Effect": "Allow",
            "Action": "lambda:InvokeFunction",
            "Resource": {"Ref": "SubmitEnquiryFunctionAliaslive"},
        }
    ]
    assert "ManagedPolicyArns" not in role["Properties"]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
    api_integration = json.dumps(resources["EnquiriesApi"])
    assert "SubmitEnquiryFunctionAliaslive" in api_integration


def test_submit_log_group_exists_before_the_first_snapstart_init(cfn: dict[str, Any]) -> None:
    # Given the translated submission function, its first version, and its log group
    resources = cfn["Resources"]
    function = resources["SubmitEnquiryFunction"]
    [version] = [name for name, r in resources.items() if r["Type"] == "AWS::Lambda::Version"]
    group = resources["SubmitEnquiryLogGroup"]["Properties"]

    # When what each needs first is read
    logging = function["Properties"]["LoggingConfig"]

    # Then the function logs to the group, which CloudFormation therefore creates before the function
    # and so before the version whose publication runs the init; the group's name needs no function
    assert logging == {"LogGroup": {"Ref": "SubmitEnquiryLogGroup"}}
    assert "SubmitEnquiryFunction" in json.dumps(resources[version]["Properties"]["FunctionName"])
    assert "${SubmitEnquiryFunction}" not in json.dumps(group["LogGroupName"])
