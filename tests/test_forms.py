"""Forms as configuration (the contract's Forms section): forms/<form-id>.yaml read and checked at start,
and everything else (validation, storage, the email, the no-JavaScript page, the log, OpenAPI, the
export and the HTML snippet) derived from the file."""

from __future__ import annotations

import base64
import csv
import io
import json
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from click.testing import CliRunner
from support import REPO, TABLE_NAME, Handler, body_of, load_event, log_records, stored_items

from enquiries.forms import (
    DEFAULT_FORM_ID,
    FormError,
    build_forms,
    compile_forms,
    load_forms,
    parse_yaml,
)
from enquiries.notify.mail_settings import mail_settings
from enquiries.notify.message import compose
from enquiries.settings import DEFAULT_SERVICES, load_settings
from enquiries.validation import FieldRules, InvalidEnquiry, validate_enquiry

FORMS = REPO / "forms"
MAIL = mail_settings(
    load_settings(
        {"TABLE_NAME": "t", "CLINIC_EMAIL": "frontdesk@clinic.example", "SENDER_EMAIL": "e@clinic.example"}
    )
)
RULES = FieldRules(services=DEFAULT_SERVICES)
STORED = {"id": "01JDQ6Y5ZK3M9V7W2X4Y6Z8A0B", "created_at": "2026-11-21T10:15:30.000Z"}
EXTRA_FIELD = """  - name: contact_time
    label: Preferred time for a call
    type: text
    required: false
    max_length: 100
"""


def forms_with(tmp_path: Path, **files: str) -> Path:
    """A copy of forms/ with these files (name without .yaml: text) added or replaced."""
    folder = tmp_path / "forms"
    shutil.copytree(FORMS, folder)
    for name, text in files.items():
        (folder / f"{name}.yaml").write_text(text, encoding="utf-8")
    return folder


def problems_of(folder: Path) -> list[str]:
    with pytest.raises(FormError) as raised:
        load_forms(folder)
    return raised.value.problems


# --- the files ---------------------------------------------------------------------------------------


def test_forms_every_file_in_forms_loads() -> None:
    # Given the repository's form files
    # When they are read and checked as the functions and the local server read them at start
    forms = load_forms(FORMS)
    # Then each is a form, the default one first, and each has one email field
    ids = [path.stem for path in sorted(FORMS.glob("*.yaml"))]
    assert [form.id for form in forms] == [DEFAULT_FORM_ID, *sorted(set(ids) - {DEFAULT_FORM_ID})]
    assert "callback" in ids
    for form in forms:
        assert [each.type for each in form.fields].count("email") == 1


def test_forms_default_form_is_the_contract_fields_table() -> None:
    # Given the contract's Fields table: each field, whether it is required, and its rule's type
    contract = [
        ("name", True, "name"),
        ("email", True, "email"),
        ("phone", False, "phone"),
        ("service", False, "choice"),
        ("message", True, "long-text"),
        ("consent", True, "consent"),
    ]
    # When forms/enquiry.yaml is read
    default = load_forms(FORMS).default
    # Then it declares exactly those, service's choices from SERVICES and a message of at most 5,000
    assert [(each.name, each.required, each.type) for each in default.fields] == contract
    assert default.field("service").choices_setting == "SERVICES"  # type: ignore[union-attr]
    assert default.field("message").max_length == 5000  # type: ignore[union-attr]
    assert default.recipients == ()
    assert default.route is None


def test_forms_bad_file_names_every_problem_with_its_file_and_line(tmp_path: Path) -> None:
    # Given a form file with many problems, each on its own line
    folder = forms_with(
        tmp_path,
        **{
            "bad": """title: Bad
recipients: [front desk@clinic]
route:
  field: topic
  to: {Reiki: [reiki@clinic.example]}
fields:
  - name: email
    label: Email
    type: email
  - name: email
    label: Email again
    type: email
  - name: created_at
    label: Created
    type: text
  - name: topic
    label: Topic
    type: choice
    choices: [Osteopathy]
  - name: when
    label: When
    type: datetime
  - name: note
    label: Note
    type: text
    max_length: 0
"""
        },
    )
    # When the forms are read
    problems = problems_of(folder)
    # Then every problem is named at once, each with the file and the line
    assert "forms/bad.yaml, line 2: recipients: 'front desk@clinic' is not an email address" in problems
    assert "forms/bad.yaml, line 10: the field name 'email' is used twice" in problems
    assert any(
        problem.startswith("forms/bad.yaml, line 13: name 'created_at' is reserved") for problem in problems
    )
    assert any(problem.startswith("forms/bad.yaml, line 22: unknown type 'datetime'") for problem in problems)
    assert "forms/bad.yaml, line 26: max_length: a whole number from 1 to 5000" in problems
    assert "forms/bad.yaml, line 5: route: 'Reiki' is not a choice of 'topic'" in problems


def test_forms_need_exactly_one_email_field(tmp_path: Path) -> None:
    # Given a form without an email field
    folder = forms_with(
        tmp_path, nomail="title: No mail\nfields:\n  - name: name\n    label: Name\n    type: name\n"
    )
    # When the forms are read
    problems = problems_of(folder)
    # Then the file is refused, saying why
    assert problems == [
        "forms/nomail.yaml, line 2: a form has exactly one field of type email (the Reply-To), not 0"
    ]


def test_forms_email_field_is_named_email(tmp_path: Path) -> None:
    # Given a form whose email field has another name
    text = "title: Other\nfields:\n  - name: contact_email\n    label: Email\n    type: email\n"
    folder = forms_with(tmp_path, other=text)
    # When the forms are read
    problems = problems_of(folder)
    # Then it is refused: erase and subject-access find an address's enquiries under `email` only
    assert problems == ["forms/other.yaml: the field of type email is named email, not 'contact_email'"]


def test_forms_yaml_mistakes_name_the_line(tmp_path: Path) -> None:
    # Given a file that is not YAML, and one with a key given twice
    folder = forms_with(tmp_path, broken="title: [unclosed\nfields: []\n", twice="title: A\ntitle: B\n")
    # When the forms are read
    problems = problems_of(folder)
    # Then both are named, with their lines
    assert any(problem.startswith("forms/broken.yaml, line 2:") for problem in problems)
    assert "forms/twice.yaml, line 2: 'title' is given twice" in problems


def test_forms_without_the_default_form_are_refused(tmp_path: Path) -> None:
    # Given a forms folder without enquiry.yaml
    folder = tmp_path / "forms"
    folder.mkdir()
    shutil.copy(FORMS / "callback.yaml", folder)
    # When it is read
    # Then the missing default form is the problem
    assert problems_of(folder) == ["forms/enquiry.yaml: missing: it declares the default form"]


def test_forms_file_name_must_be_a_form_id(tmp_path: Path) -> None:
    # Given a form file whose name is not a form id
    folder = forms_with(tmp_path, **{"Call_Back": (FORMS / "callback.yaml").read_text(encoding="utf-8")})
    # When the forms are read
    [problem] = problems_of(folder)
    # Then the name is the problem
    assert problem.startswith("forms/Call_Back.yaml: a form file is named <form-id>.yaml")


def test_forms_compiled_json_gives_the_same_forms_with_their_lines(tmp_path: Path) -> None:
    # Given the forms compiled as the build compiles them
    output = tmp_path / "forms.json"
    compile_forms(FORMS, output)
    # When the compiled file is read (as the deployed functions read it, without YAML)
    compiled = build_forms(json.loads(output.read_text(encoding="utf-8")))
    # Then the forms are the same as the files', with each key's line (for a problem found at init)
    assert compiled == load_forms(FORMS)
    parsed = parse_yaml((FORMS / "callback.yaml").read_text(encoding="utf-8"), "forms/callback.yaml")
    assert (
        json.loads(output.read_text(encoding="utf-8"))["forms/callback.yaml"]["__lines__"]
        == parsed["__lines__"]
    )


def test_forms_build_step_compiles_good_files_and_stops_on_a_bad_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the repository's forms, and a copy with a form using a reserved name
    from enquiries.forms import main

    bad = forms_with(tmp_path, bad="title: Bad\nfields:\n  - name: id\n    label: Id\n    type: email\n")
    # When the build's step (python -m enquiries.forms FORMS-DIR OUTPUT) runs on each, and without arguments
    good = main([str(FORMS), str(tmp_path / "good.json")])
    refused = main([str(bad), str(tmp_path / "bad.json")])
    usage = main([])
    # Then the good forms are written, the bad file stops the build naming its line, and no JSON is left
    assert (good, refused, usage) == (0, 1, 2)
    assert set(json.loads((tmp_path / "good.json").read_text(encoding="utf-8"))) == {
        f"forms/{path.name}" for path in FORMS.glob("*.yaml")
    }
    assert "forms/bad.yaml, line 3: name 'id' is reserved" in capsys.readouterr().err
    assert not (tmp_path / "bad.json").exists()


def test_forms_route_to_a_service_not_in_services_stops_the_functions_at_init(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_handler: Any, make_notifier: Any
) -> None:
    # Given the default form routing a service that SERVICES does not list
    text = (
        (FORMS / "enquiry.yaml")
        .read_text(encoding="utf-8")
        .replace("fields:\n", "route:\n  field: service\n  to: {Reiki: [reiki@clinic.example]}\nfields:\n", 1)
    )
    monkeypatch.setenv("FORMS_DIR", str(forms_with(tmp_path, enquiry=text)))
    # When either function starts
    # Then it stops, naming the file, the line and the problem
    mail = {"CLINIC_EMAIL": "frontdesk@clinic.example", "SENDER_EMAIL": "enquiries@clinic.example"}
    for start in (make_handler, make_notifier):
        with pytest.raises(FormError, match=r"forms/enquiry.yaml, line 9: route: 'Reiki' is not a choice"):
            start(**mail)


# --- serving ------------------------------------------------------------------------------------------


def test_forms_callback_is_served_and_stored_with_its_form(handler: Handler, dynamodb: Any) -> None:
    # Given a call-back request from the clinic's site
    event = load_event("submit-callback.json")
    # When it is handled
    response = handler(event)
    # Then it is stored with its form's fields by name, normalised, and the form's id
    assert response["statusCode"] == 201
    [item] = stored_items(dynamodb)
    assert item["id"] == body_of(response)["id"]
    assert item["form"] == "callback"
    assert item["contact_time"] == "Morning"
    assert item["phone"] == "+441632960123"
    assert "service" not in item


def test_forms_default_form_items_keep_their_attribute_names(handler: Handler, dynamodb: Any) -> None:
    # Given an enquiry posted to /enquiries
    # When it is stored
    assert handler(load_event("submit-json.json"))["statusCode"] == 201
    # Then its attributes are the contract's, with the default form's id
    [item] = stored_items(dynamodb)
    assert set(item) == {
        "id",
        "created_at",
        "expires_at",
        "form",
        "name",
        "email",
        "phone",
        "service",
        "message",
        "consent",
    }
    assert item["form"] == DEFAULT_FORM_ID


def test_forms_unknown_form_is_the_contract_404(handler: Handler, dynamodb: Any) -> None:
    # Given a post to a form that forms/ does not have
    event = load_event("submit-callback.json", rawPath="/forms/no-such-form")
    event["requestContext"]["http"]["path"] = "/forms/no-such-form"
    # When it is handled
    response = handler(event)
    # Then it is the contract's 404, and nothing is stored
    assert response["statusCode"] == 404
    assert body_of(response)["error"] == "not_found"
    assert stored_items(dynamodb) == []


def test_forms_a_required_field_of_another_form_is_refused_in_plain_words(
    handler: Handler, log_output: io.StringIO
) -> None:
    # Given a call-back request without its required phone, and with a time that is not a choice
    event = load_event("submit-callback.json")
    event["body"] = json.dumps({**json.loads(event["body"]), "phone": "", "contact_time": "Midnight"})
    # When it is handled
    response = handler(event)
    # Then both fields are named, and the log line names them and the form, as its own field names
    assert response["statusCode"] == 422
    fields = body_of(response)["fields"]
    assert fields["phone"] == "Enter a phone number like 01632 960123 or +44 1632 960123."
    assert fields["contact_time"] == "Choose one of: Morning, Afternoon, Evening."
    [line] = [record for record in log_records(log_output) if record.get("message") == "request handled"]
    assert line["invalid_fields"] == ["contact_time", "phone"]
    assert (line["path"], line["form"]) == ("/forms/callback", "callback")


def test_forms_pages_of_a_plain_html_post_name_the_form(handler: Handler) -> None:
    # Given a call-back request posted by a browser without JavaScript, then the same without a phone
    fields = {**json.loads(load_event("submit-callback.json")["body"]), "consent": "on"}

    def html_post(changes: dict[str, str]) -> dict[str, Any]:
        body = base64.b64encode(urlencode({**fields, **changes}).encode()).decode()
        event = load_event("submit-urlencoded.json", body=body, rawPath="/forms/callback")
        event["headers"]["accept"] = "text/html"
        event["requestContext"]["http"]["path"] = "/forms/callback"
        return event

    # When both are handled
    sent, refused = handler(html_post({})), handler(html_post({"phone": ""}))
    # Then the pages call it by the form's title, and name the field by its label
    assert sent["statusCode"] == 200
    assert "<h1>Thank you: your call-back request has been sent</h1>" in sent["body"]
    assert refused["statusCode"] == 422
    assert "<h1>Your call-back request has not been sent</h1>" in refused["body"]
    assert "<strong>Phone</strong>: Enter a phone number" in refused["body"]


def test_forms_the_same_fields_sent_to_two_forms_are_two_enquiries(handler: Handler, dynamodb: Any) -> None:
    # Given the same fields, posted to the default form and then to the call-back form
    fields = {
        "name": "Jane Doe",
        "email": "jane@example.com",
        "phone": "01632 960123",
        "message": "Hi",
        "consent": True,
    }
    first = load_event("submit-json.json", body=json.dumps(fields))
    second = load_event("submit-callback.json", body=json.dumps(fields))
    # When both are handled
    answers = [handler(first), handler(second)]
    # Then both are stored: the second is no double-click of the first
    assert [answer["statusCode"] for answer in answers] == [201, 201]
    assert sorted(item["form"] for item in stored_items(dynamodb)) == ["callback", DEFAULT_FORM_ID]


# --- the email --------------------------------------------------------------------------------------


def test_forms_email_goes_to_the_route_for_the_choice_else_the_forms_recipients(tmp_path: Path) -> None:
    # Given the call-back form routing its morning calls to the early shift
    text = (
        (FORMS / "callback.yaml")
        .read_text(encoding="utf-8")
        .replace(
            "fields:\n",
            "route:\n  field: contact_time\n  to: {Morning: [early@clinic.example]}\nfields:\n",
            1,
        )
    )
    forms = load_forms(forms_with(tmp_path, callback=text))
    item = {
        **STORED,
        "form": "callback",
        "name": "Jane Doe",
        "email": "jane@example.com",
        "phone": "+441632960123",
    }
    # When the emails of a morning call and of one with no time given are composed
    morning = compose({**item, "contact_time": "Morning"}, MAIL, forms=forms)
    any_time = compose(item, MAIL, forms=forms)
    # Then the first goes to the route's address, the second to the form's recipients, and the subject
    # names the form
    assert morning["To"] == "early@clinic.example"
    assert any_time["To"] == "frontdesk@clinic.example.com"
    assert morning["Subject"] == "New call-back request from Jane Doe"


def test_forms_email_lists_fields_by_label_in_the_files_order_in_columns(tmp_path: Path) -> None:
    # Given a call-back request with a label too long for the column
    forms = load_forms(FORMS)
    item = {
        **STORED,
        "form": "callback",
        "name": "Jane Doe",
        "email": "jane@example.com",
        "phone": "+441632960123",
        "contact_time": "Afternoon",
        "consent": True,
    }
    # When its email is composed
    text = compose(item, MAIL, forms=forms).get_body(("plain",)).get_content()  # type: ignore[union-attr]
    # Then the fields are listed by label in the file's order, the short ones' values in one column, and
    # the long label's value on the next line
    lines = text.splitlines()
    labels = [
        line.split(":")[0]
        for line in lines
        if line.startswith(("Name", "Email", "Phone", "Preferred", "Consent"))
    ]
    assert labels == ["Name", "Email", "Phone", "Preferred time for a call", "Consent"]
    columns = {
        line.index(value)
        for line in lines
        for value in ("Jane Doe", "jane@example.com", "Yes")
        if line.endswith(value) and ":" in line
    }
    assert len(columns) == 1
    assert lines[lines.index("Preferred time for a call:") + 1].strip() == "Afternoon"


# --- one field added, one file changed ----------------------------------------------------------------


def test_forms_a_field_added_to_a_form_file_flows_through_everything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_handler: Any, dynamodb: Any
) -> None:
    # Given forms/enquiry.yaml with one more optional field, and no other change
    text = (
        (FORMS / "enquiry.yaml")
        .read_text(encoding="utf-8")
        .replace("  - name: message\n", EXTRA_FIELD + "  - name: message\n", 1)
    )
    monkeypatch.setenv("FORMS_DIR", str(forms_with(tmp_path, enquiry=text)))
    handler = make_handler()
    fields = json.loads(load_event("submit-json.json")["body"])

    # When an enquiry gives it, and an HTML form post gives too much of it
    stored = handler(
        load_event("submit-json.json", body=json.dumps({**fields, "contact_time": " After 5pm "}))
    )
    refused = handler(
        load_event(
            "submit-urlencoded.json",
            body=base64.b64encode(
                urlencode({**fields, "consent": "on", "contact_time": "x" * 101}).encode()
            ).decode(),
            headers={"accept": "text/html"},
        )
    )

    # Then validation takes it, trimmed, and refuses it too long in plain words
    assert (
        validate_enquiry({**fields, "contact_time": "Evenings"}, RULES).stored_fields()["contact_time"]
        == "Evenings"
    )
    with pytest.raises(InvalidEnquiry) as invalid:
        validate_enquiry({**fields, "contact_time": "x" * 101}, RULES)
    assert invalid.value.fields == {
        "contact_time": "Shorten your preferred time for a call to at most 100 characters."
    }
    # And it is stored by its name
    assert stored["statusCode"] == 201
    [item] = stored_items(dynamodb)
    assert item["contact_time"] == "After 5pm"
    # And the email shows it by its label, in the file's order (before the message)
    email = compose(item, MAIL)
    text_part = email.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html_part = email.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert text_part.index("Preferred time for a call:\n    After 5pm") < text_part.index("Message:")
    assert ">Preferred time for a call</td>" in html_part
    # And the no-JavaScript page names it by its label
    assert refused["statusCode"] == 422
    assert "<strong>Preferred time for a call</strong>: Shorten your preferred time" in refused["body"]
    # And the OpenAPI document has it in the form's bodies
    from scripts.openapi import build_document

    schemas = build_document()["components"]["schemas"]
    assert schemas["Enquiry"]["properties"]["contact_time"]["maxLength"] == 100
    assert "contact_time" in schemas["EnquiryForm"]["properties"]
    # And the export has a column for it, after the contract's and `form`
    from enquiries_cli.export import write_csv

    out = io.StringIO()
    write_csv([item], out)
    [row] = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert list(row)[-1] == "contact_time"
    assert row["contact_time"] == "After 5pm"
    # And the generated HTML form has it, labelled, optional, with its length
    from enquiries_cli.cli import cli

    html = CliRunner().invoke(cli, ["form-html", "enquiry"]).stdout
    assert (
        '<label for="contact_time">Preferred time for a call <span class="optional">(optional)</span>' in html
    )
    assert '<input id="contact_time" name="contact_time" type="text" maxlength="100">' in html


def test_forms_openapi_has_one_operation_per_form() -> None:
    # Given the committed OpenAPI document and the forms of forms/
    document = json.loads((REPO / "docs" / "openapi.json").read_text(encoding="utf-8"))
    forms = load_forms(FORMS)
    # When the operations that take each form are looked up
    paths = {form.id: "/enquiries" if form.is_default else f"/forms/{form.id}" for form in forms}
    # Then each form has its POST with its own fields, required as its file says, and a preflight
    for form in forms:
        operation = document["paths"][paths[form.id]]
        assert set(operation) == {"post", "options"}
        reference = operation["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        schema = document["components"]["schemas"][reference.rpartition("/")[2]]
        assert {name for name in schema["properties"] if not name.startswith("_")} == set(form.field_names)
        assert sorted(schema["required"]) == sorted(each.name for each in form.fields if each.required)
    assert set(document["paths"]) == set(paths.values())


def test_forms_export_of_one_form_takes_its_enquiries_only(dynamodb: Any) -> None:
    # Given an enquiry stored before forms were named, one of the default form and a call-back request
    from enquiries_cli.forms import only_form
    from enquiries_cli.scanning import Condition, scan

    for enquiry_id, form in (("old", None), ("new", DEFAULT_FORM_ID), ("call", "callback")):
        item = {"id": {"S": enquiry_id}, "email": {"S": "jane@example.com"}}
        dynamodb.put_item(TableName=TABLE_NAME, Item=item | ({"form": {"S": form}} if form else {}))

    # When each form's enquiries are read as `export --form ID` reads them
    def ids_of(form_id: str) -> list[str]:
        found = scan(dynamodb, TABLE_NAME, condition=Condition().add(only_form(form_id)))
        return sorted(str(item["id"]) for item in found)

    # Then the default form's are the old and the new, the call-back form's its own
    assert ids_of(DEFAULT_FORM_ID) == ["new", "old"]
    assert ids_of("callback") == ["call"]


# --- the HTML snippet and the demo page ---------------------------------------------------------------


def test_forms_form_html_is_an_accessible_form_the_script_drives() -> None:
    # Given the call-back form
    from enquiries_cli.cli import cli

    # When its HTML is asked for, with the API's address
    result = CliRunner().invoke(cli, ["form-html", "callback", "--api", "https://api.example.com/"])
    # Then it posts to the form's path, every field labelled, with autocomplete and required, the robot
    # trap hidden, a live status, and the script tag
    assert result.exit_code == 0
    html = result.stdout
    assert (
        'action="https://api.example.com/forms/callback" data-enquiry-endpoint="https://api.example.com/forms/callback"'
        in html
    )
    assert '<label for="callback-phone">Phone</label>' in html
    assert 'name="phone" type="tel" autocomplete="tel" required' in html
    assert 'name="email" type="email" autocomplete="email" spellcheck="false" required' in html
    assert '<option value="">Choose a preferred time for a call (optional)</option>' in html
    assert '<div class="enquiry-trap" aria-hidden="true">' in html
    assert 'name="_gotcha" type="text" tabindex="-1" autocomplete="off"' in html
    assert 'role="status" aria-live="polite"' in html
    assert html.rstrip().endswith('<script src="/enquiry-form.js" defer></script>')


def test_forms_form_html_of_an_unknown_form_is_a_usage_error() -> None:
    # Given no form "nope" in forms/
    from enquiries_cli.cli import cli

    # When its HTML is asked for
    result = CliRunner().invoke(cli, ["form-html", "nope"])
    # Then the command says which forms there are, with the usage exit status
    assert result.exit_code == 2
    assert "no form 'nope' in forms/ (the forms: enquiry, callback)" in result.stderr


def test_forms_demo_page_holds_the_generated_default_form() -> None:
    # Given the demo page the local server serves at /
    from scripts.demo_page import PAGE, demo_page

    page = PAGE.read_text(encoding="utf-8")
    # When its form is generated again from forms/enquiry.yaml
    # Then the page is unchanged: run `make demo-page` after changing the form file
    assert demo_page(page) == page, "site/index.html is stale: run `make demo-page`"


# --- the date type ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("2026-12-07", "2026-12-07"),
        ("2026-2-3", "2026-02-03"),
        ("07/12/2026", "2026-12-07"),
        ("7.12.2026", "2026-12-07"),
        (" 29/02/2028 ", "2028-02-29"),
    ],
)
def test_forms_date_is_read_as_iso_or_day_first(tmp_path: Path, typed: str, stored: str) -> None:
    # Given a form with a date field
    form = load_forms(forms_with(tmp_path, visit=VISIT_FORM)).by_id["visit"]
    # When a person types a date in ISO order or day first, as in the UK
    enquiry = validate_enquiry({"email": "jane@example.com", "visit_date": typed}, RULES, form)
    # Then it is stored as YYYY-MM-DD
    assert enquiry.stored_fields()["visit_date"] == stored


@pytest.mark.parametrize("typed", ["31/02/2026", "12-07-2026", "next Tuesday", "2026/12/07", "07/12/26"])
def test_forms_date_that_is_no_day_is_refused_in_plain_words(tmp_path: Path, typed: str) -> None:
    # Given a form with a date field
    form = load_forms(forms_with(tmp_path, visit=VISIT_FORM)).by_id["visit"]
    # When what is typed is not a day (or is month first, or has a two-digit year)
    with pytest.raises(InvalidEnquiry) as invalid:
        validate_enquiry({"email": "jane@example.com", "visit_date": typed}, RULES, form)
    # Then the visitor is told which forms a date takes
    assert invalid.value.fields == {
        "visit_date": "Enter a date like 2026-12-07, or 07/12/2026 (day, month, year)."
    }


VISIT_FORM = """title: Visit
fields:
  - name: email
    label: Email
    type: email
    required: true
  - name: visit_date
    label: Preferred day
    type: date
"""


# --- the local server ---------------------------------------------------------------------------------


def test_forms_local_server_serves_the_callback_form_and_emails_its_recipients() -> None:
    # Given the local server, with forms/ as it is
    from devserver.launcher import local_server

    body = load_event("submit-callback.json")["body"].encode()
    with local_server() as server:
        # When a call-back request is posted to its form's path
        reply = _post(server.url, "/forms/callback", body)
        # Then it is stored, and its email goes to the form's recipients, naming the form
        assert reply[0] == 201
        emails = _wait_for_emails(server.url)
    [email] = emails
    assert email["to"] == ["frontdesk@clinic.example.com"]
    assert email["subject"] == "New call-back request from Jane Doe"
    assert "Preferred time for a call:\n    Morning" in email["text"]


def test_forms_bad_form_file_stops_the_local_server_at_start(tmp_path: Path) -> None:
    # Given a form file with an unknown type
    from devserver.launcher import LocalServerProcess, ServerNotReady

    text = (FORMS / "callback.yaml").read_text(encoding="utf-8").replace("type: phone", "type: telephone")
    server = LocalServerProcess({"FORMS_DIR": str(forms_with(tmp_path, callback=text))})
    # When the local server starts
    with pytest.raises(ServerNotReady) as not_ready:
        server.wait_ready(timeout=60)
    # Then it stops, naming the file, the line and the problem
    assert server.wait_exit() == 1
    assert "forms/callback.yaml, line 16: unknown type 'telephone'" in str(not_ready.value)


def _post(base_url: str, path: str, body: bytes) -> tuple[int, bytes]:
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(base_url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=15)
    try:
        connection.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def _wait_for_emails(base_url: str, timeout: float = 15.0) -> list[dict[str, Any]]:
    import time
    import urllib.request

    deadline = time.monotonic() + timeout
    while True:
        with urllib.request.urlopen(base_url + "/_dev/emails", timeout=5) as answer:
            emails: list[dict[str, Any]] = json.loads(answer.read())
        if emails or time.monotonic() > deadline:
            return emails
        time.sleep(0.2)
