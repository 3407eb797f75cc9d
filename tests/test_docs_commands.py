"""scripts/docs_commands.py: the docs' deploy commands, read exactly, run offline by the pinned SAM."""

from __future__ import annotations

import json
import re
from typing import Any

import botocore.session
import pytest
from botocore import xform_name
from support import REPO, MakeHandler, load_event, stored_items

from emulator.template_tables import load_template
from scripts.docs_commands import asked, command_blocks, documentation, keystrokes, questions, run_all

DOCS_TEXT = documentation()
SAM_BIN = REPO / ".sam-venv" / "bin"
needs_sam = pytest.mark.skipif(
    not (SAM_BIN / "sam").exists(),
    reason="no .sam-venv (make docs-commands makes it and runs the docs' commands)",
)
GUIDED = "sam deploy --guided --config-file samconfig.local.toml"


def test_docs_commands_first_deploy_makes_the_config_file_before_the_guided_deploy() -> None:
    # Given the docs' marked deploy blocks
    blocks = command_blocks(DOCS_TEXT)

    # When the first deploy's commands are read
    first = blocks["first-deploy"]

    # Then samconfig.local.toml exists before the guided deploy names it (SAM CLI refuses it otherwise)
    assert GUIDED in first
    made = [i for i, line in enumerate(first) if "samconfig.local.toml" in line and "sam " not in line]
    assert made
    assert made[0] < first.index(GUIDED)
    assert blocks["later-deploys"][-1] == "sam deploy --config-file samconfig.local.toml"


def test_docs_commands_types_the_table_answers_in_order() -> None:
    # Given the docs' question table
    table = questions(DOCS_TEXT)

    # When it is turned into what a reader types
    typed = keystrokes(table).split("\n")
    names = [name for question in table for name in question.names]
    answers = dict(zip(names, typed, strict=False))

    # Then each prompt gets the table's answer: a value, Enter, or the `y` the deploy needs
    assert names[:3] == ["Stack Name", "AWS Region", "AllowedOrigins"]
    assert answers["Stack Name"] == "enquiries"
    assert answers["AWS Region"] == "eu-west-2"
    assert answers["SuccessUrl"] == ""
    assert answers["SubmitEnquiryFunction has no authentication. Is this okay?"] == "y"
    assert answers["SAM configuration file"] == ""


def test_docs_commands_reads_the_questions_sam_asked() -> None:
    # Given what SAM CLI prints for three questions (each after a tab, no newline after the answer)
    output = (
        "\tStack Name [sam-app]: \tParameter Services [A,B C]: \t#Shows you resources changes\n"
        "\tConfirm changes before deploy [y/N]: Error: Security Constraints Not Satisfied!"
    )

    # When the questions are read back
    # Then they are the prompts' names, in order, without the comment line
    assert asked(output) == ["Stack Name", "Services", "Confirm changes before deploy"]


@needs_sam
@pytest.mark.slow
def test_docs_commands_fail_a_guided_deploy_without_its_config_file() -> None:
    # Given the docs' first deploy as it was: the guided deploy on a fresh clone, no config file made
    readme = "\n".join(line for line in DOCS_TEXT.splitlines() if not line.startswith("touch samconfig"))

    # When its commands run
    outcomes = run_all(readme, SAM_BIN)

    # Then the guided deploy is reported first, with SAM CLI's refusal (and what needs its answers after it)
    failed = next(outcome for outcome in outcomes if outcome.problem)
    assert failed.command == GUIDED
    assert "samconfig.local.toml does not exist" in failed.problem


TEST_REQUEST = re.compile(r"<!-- deploy-test-request -->\n\s*```sh\n(.*?)```", re.DOTALL)


def test_docs_commands_after_deploy_test_enquiry_is_accepted(
    make_handler: MakeHandler, dynamodb: Any
) -> None:
    # Given the docs' test request after a deploy, and the AllowedOrigins its question table gives
    found = TEST_REQUEST.search(DOCS_TEXT)
    assert found
    request = found.group(1).replace("\\\n", " ")
    origin = re.search(r"-H 'Origin: ([^']+)'", request)
    body = re.search(r"-d '([^']+)'", request)
    assert origin
    assert body
    answers = {name: q.answer for q in questions(DOCS_TEXT) for name in q.names}
    handler = make_handler(ALLOWED_ORIGINS=answers["AllowedOrigins"])

    # When the deployed function gets that request
    event = load_event(
        "submit-json.json", body=body.group(1), isBase64Encoded=False, headers={"origin": origin.group(1)}
    )
    response = handler(event)

    # Then it is stored, as the README says (201 and the enquiry's id)
    assert response["statusCode"] == 201, response["body"]
    assert [item["id"] for item in stored_items(dynamodb)] == [json.loads(response["body"])["id"]]


def test_docs_commands_leftover_table_search_matches_the_retained_table() -> None:
    # Given the enquiries table (kept when a deploy fails, with deletion protection) and the docs'
    # search for it after a failed first deploy of the stack its question table names
    table = load_template()["Resources"]["EnquiriesTable"]
    stack = {name: q.answer for q in questions(DOCS_TEXT) for name in q.names}["Stack Name"]
    search = re.search(r"TableNames\[\?starts_with\(@, '([^']+)'\)\]", DOCS_TEXT)

    # When CloudFormation names it (no TableName: "<stack>-<logical id>-<suffix>")
    generated_prefix = f"{stack}-EnquiriesTable-"

    # Then the search finds it, and the commands beside it lift the protection before deleting
    assert table["DeletionPolicy"] == "Retain"
    assert table["Properties"]["DeletionProtectionEnabled"] is True
    assert "TableName" not in table["Properties"]
    assert search
    assert search.group(1) == generated_prefix
    assert "--no-deletion-protection-enabled" in DOCS_TEXT.split(search.group(0), 1)[1][:400]


# The AWS CLI's own options, valid with every command (`aws help`, "Global Options").
AWS_CLI_GLOBAL_OPTIONS = {"query", "output", "region", "profile", "cli-binary-format"}
AWS_COMMAND = re.compile(r"\baws ([a-z0-9-]+) ([a-z0-9-]+)((?: +(?:--[a-z0-9-]+|[^-\s#)][^\s)]*))*)")


def aws_commands(markdown: str) -> list[tuple[str, str, list[str]]]:
    """Every `aws SERVICE COMMAND --option ...` in the docs' shell blocks: service, command, options."""
    shell = "\n".join(re.findall(r"```(?:sh|console)\n(.*?)```", markdown, re.DOTALL)).replace("\\\n", " ")
    return [
        (service, command, re.findall(r"--([a-z0-9-]+)", arguments))
        for service, command, arguments in AWS_COMMAND.findall(shell)
    ]


def test_docs_commands_aws_cli_commands_exist_with_their_options() -> None:
    # Given every AWS CLI command the README shows (they need an account, so they cannot run here)
    commands = aws_commands(DOCS_TEXT)
    session = botocore.session.get_session()

    # When each is looked up in botocore's model of its service, which the AWS CLI is generated from
    unknown = []
    for service, command, options in commands:
        model = session.get_service_model(service)
        operations = {xform_name(name, "-"): name for name in model.operation_names}
        if command not in operations:
            unknown.append(f"aws {service} {command}")
            continue
        members = model.operation_model(operations[command]).input_shape.members
        parameters = {xform_name(name, "-"): shape for name, shape in members.items()}
        for option in options:
            negated = option.removeprefix("no-")
            boolean = negated in parameters and parameters[negated].type_name == "boolean"
            if option not in parameters and not boolean and option not in AWS_CLI_GLOBAL_OPTIONS:
                unknown.append(f"aws {service} {command} --{option}")

    # Then each command and option exists (--no-X negates a boolean parameter X)
    assert {"sns", "dynamodb", "iam", "cloudformation"} <= {service for service, _, _ in commands}
    assert unknown == []
