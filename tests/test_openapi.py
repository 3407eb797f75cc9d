"""docs/openapi.json: generated from the app's routes and models, current, valid, and saying what the
contract says; the handler's real answers to the sample events conform to it."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate as validate_openapi
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from support import CONTRACT_ERRORS, REPO, Handler, contract_codes, load_event

from enquiries.settings import DEFAULT_SERVICES
from enquiries.validation import FieldRules, InvalidEnquiry, validate_enquiry
from scripts import openapi

DOCUMENT_PATH = REPO / "docs" / "openapi.json"
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
VALID = {"name": "Jane Doe", "email": "jane@example.com", "message": "Hello", "consent": "on"}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DOCUMENT_PATH.read_text(encoding="utf-8"))
    return data


def resolve(document: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """`node`, or what its local $ref points at."""
    while "$ref" in node:
        target: Any = document
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = target
    return node


def post_response(document: dict[str, Any], status: int) -> dict[str, Any]:
    return resolve(document, document["paths"]["/enquiries"]["post"]["responses"][str(status)])


# -- the file ------------------------------------------------------------------------------------------


def test_openapi_document_is_the_one_generated_from_the_app() -> None:
    # Given the committed document
    committed = DOCUMENT_PATH.read_text(encoding="utf-8")
    # When it is generated afresh from the app's routes and models
    fresh = openapi.render(openapi.build_document())
    # Then they are the same (otherwise: run `make openapi` and commit docs/openapi.json)
    assert committed == fresh, "docs/openapi.json is stale: run `make openapi`"


def test_openapi_check_mode_exits_1_for_a_stale_file_and_0_for_a_fresh_one(tmp_path: Path) -> None:
    # Given a stale copy of the document
    target = tmp_path / "openapi.json"
    target.write_text("{}\n")
    # When --check compares it, then the file is rewritten, then compared again
    stale = openapi.main(["--check", "--output", str(target)])
    assert target.read_text() == "{}\n"
    written = openapi.main(["--output", str(target)])
    fresh = openapi.main(["--check", "--output", str(target)])
    # Then --check fails only for the stale file, and the written file is sorted, indented JSON + newline
    assert (stale, written, fresh) == (1, 0, 0)
    text = target.read_text()
    assert text == json.dumps(json.loads(text), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def test_openapi_document_is_valid_openapi(document: dict[str, Any]) -> None:
    # Given the document
    # When openapi-spec-validator checks it against the OpenAPI specification
    validate_openapi(document)
    # Then it is valid, names the API and its version from pyproject.toml
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert document["openapi"].startswith("3.")
    assert document["info"]["title"] == "enquiries"
    assert document["info"]["version"] == project["version"]


def test_openapi_document_has_no_powertools_default_validation_shapes(document: dict[str, Any]) -> None:
    # Given the document
    text = json.dumps(document)
    # Then Powertools' own 422 shapes, which this API never answers with, are gone
    for name in ("HTTPValidationError", "ResponseValidationError", "Successful Response"):
        assert name not in text


# -- requests ------------------------------------------------------------------------------------------


def test_openapi_post_takes_json_urlencoded_and_multipart_with_the_same_fields(
    document: dict[str, Any],
) -> None:
    # Given the request body of POST /enquiries
    content = document["paths"]["/enquiries"]["post"]["requestBody"]["content"]
    # Then JSON and both form encodings are documented, with the same fields and required ones
    assert set(content) == {"application/json", *FORM_TYPES}
    json_body = resolve(document, content["application/json"]["schema"])
    for form_type in FORM_TYPES:
        form_body = resolve(document, content[form_type]["schema"])
        assert set(form_body["properties"]) == set(json_body["properties"])
        assert form_body["required"] == json_body["required"]
        assert form_body["additionalProperties"] is False
    assert set(json_body["properties"]) == {
        "name",
        "email",
        "phone",
        "service",
        "message",
        "consent",
        "_gotcha",
        "_next",
    }
    assert sorted(json_body["required"]) == ["consent", "email", "message", "name"]
    assert json_body["additionalProperties"] is False


def test_openapi_fields_carry_the_contract_rules(document: dict[str, Any]) -> None:
    # Given the JSON enquiry schema
    fields = document["components"]["schemas"]["Enquiry"]["properties"]
    # Then the lengths, formats and consent words are the contract's
    assert (fields["name"]["minLength"], fields["name"]["maxLength"]) == (1, 120)
    assert (fields["message"]["minLength"], fields["message"]["maxLength"]) == (1, 5000)
    assert fields["email"]["maxLength"] == 254
    assert fields["email"]["format"] == "email"
    assert fields["_gotcha"]["maxLength"] == 0
    consent = fields["consent"]["anyOf"]
    assert {"type": "boolean", "const": True} in consent
    assert {"type": "string", "enum": ["1", "on", "true", "yes"]} in consent
    for optional in ("phone", "service", "_gotcha", "_next"):
        assert fields[optional]["type"] == ["string", "null"]
    assert all(field.get("description") for field in fields.values())


def test_openapi_idempotency_key_is_an_optional_header_of_at_most_128_characters(
    document: dict[str, Any],
) -> None:
    # Given the parameters of POST /enquiries
    parameters = document["paths"]["/enquiries"]["post"]["parameters"]
    # Then Idempotency-Key is an optional header of 1 to 128 characters
    (key,) = [p for p in parameters if p["name"] == "Idempotency-Key"]
    assert key["in"] == "header"
    assert key["required"] is False
    assert (key["schema"]["minLength"], key["schema"]["maxLength"]) == (1, 128)


def test_openapi_next_is_any_text_honoured_only_when_absolute_and_allowed(document: dict[str, Any]) -> None:
    # Given the _next field, which the handler accepts empty, relative or elsewhere, and then ignores
    for body in ("Enquiry", "EnquiryForm"):
        field = document["components"]["schemas"][body]["properties"]["_next"]
        # Then the document does not promise a URI, and says when it is honoured
        assert "format" not in field
        assert "absolute" in field["description"]
        assert "ALLOWED_ORIGINS" in field["description"]


def test_openapi_service_is_an_enum_of_the_default_services(document: dict[str, Any]) -> None:
    # Given the service field in both bodies
    schemas = document["components"]["schemas"]
    # Then its values are the default SERVICES, or empty (none); JSON may also send null
    assert schemas["Enquiry"]["properties"]["service"]["enum"] == [*DEFAULT_SERVICES, "", None]
    assert schemas["EnquiryForm"]["properties"]["service"]["enum"] == [*DEFAULT_SERVICES, ""]


@pytest.mark.parametrize(
    ("field", "value", "matches"),
    [
        ("phone", "0800 987 5336", True),
        ("phone", "+44 (0)20 7946 0958", True),
        ("phone", "07700 900123 ext 2", True),
        ("phone", "", True),
        ("phone", "call me", False),
        ("phone", "0800<script>", False),
        ("name", "Jane Doe", True),
        ("name", "Priya \U0001f469\u200d\U0001f52c", True),
        ("name", "Jane\u2028Bcc: x", False),
        ("name", "Ja\u034fne", False),
        ("name", "Jane\u17b4", False),
        ("name", "Jane\U000e0100", False),
        ("name", "Ja\x85ne", False),
        ("message", "Line one\r\nLine two\tend", True),
        ("message", "x \x1b]0;PWNED\x07", False),
        ("message", "x \x9b31m", False),
    ],
)
def test_openapi_field_patterns_say_what_validation_does(
    document: dict[str, Any], field: str, value: str, matches: bool
) -> None:
    # Given a field's pattern in the document
    pattern = document["components"]["schemas"]["EnquiryForm"]["properties"][field]["pattern"]
    # When a value is matched, and validated as the handler does
    matched = re.search(pattern, value) is not None
    try:
        validate_enquiry(dict(VALID, **{field: value}), FieldRules(services=DEFAULT_SERVICES))
        accepted = True
    except InvalidEnquiry:
        accepted = False
    # Then the document and the handler agree
    assert (matched, accepted) == (matches, matches)


@pytest.mark.parametrize("key", ["key\x85", "key\u2028", "key\u200b", "key\x7f", "key\u202e"])
def test_openapi_idempotency_key_pattern_refuses_controls_formats_and_separators(
    document: dict[str, Any], key: str
) -> None:
    # Given the Idempotency-Key's schema
    [parameter] = document["paths"]["/enquiries"]["post"]["parameters"]
    # Then a key with a control, format or line separator character does not match it (the handler's 400)
    assert re.search(parameter["schema"]["pattern"], key) is None
    assert re.search(parameter["schema"]["pattern"], "f81d4fae-7dec-11d0-a765-00a0c91e6bf6") is not None


# -- responses -----------------------------------------------------------------------------------------


def test_openapi_post_documents_every_status_it_can_answer(document: dict[str, Any]) -> None:
    # Given the responses of POST /enquiries
    responses = document["paths"]["/enquiries"]["post"]["responses"]
    # Then they are the contract's, and 404 and 405 (other paths, other methods) are components
    assert set(responses) == {"200", "201", "303", "400", "403", "413", "415", "422", "429", "500", "503"}
    assert {"NotFound", "MethodNotAllowed"} <= set(document["components"]["responses"])
    created = resolve(document, post_response(document, 201)["content"]["application/json"]["schema"])
    assert created["required"] == ["id", "message"]
    assert set(post_response(document, 200)["content"]) == {"text/html"}
    assert post_response(document, 303)["headers"]["Location"]["required"] is True


def test_openapi_error_responses_carry_their_contract_code_and_headers(document: dict[str, Any]) -> None:
    # Given every documented error response
    components = document["components"]["responses"]
    by_status = {status: components[name] for status, (name, _) in openapi.ERROR_RESPONSES.items()}
    # Then each is an ErrorBody with its status's codes, in JSON or (for form posts) as an HTML page
    assert set(by_status) == set(CONTRACT_ERRORS)
    schemas = {}
    for status, response in by_status.items():
        assert set(response["content"]) == {"application/json", "text/html"}
        schema = response["content"]["application/json"]["schema"]
        variants = schema.get("oneOf", [schema])
        for variant in variants:
            base, _refinement = variant["allOf"]
            assert base == {"$ref": "#/components/schemas/ErrorBody"}
        codes = {variant["allOf"][1]["properties"]["error"]["const"] for variant in variants}
        assert codes == contract_codes(status)
        schemas[status] = variants[0]
    assert schemas[422]["allOf"][1]["required"] == ["fields"]
    for status in (500, 503):
        assert schemas[status]["allOf"][1]["required"] == ["reference"]
    assert by_status[405]["headers"]["Allow"]["required"] is True
    for status in (429, 503):
        assert by_status[status]["headers"]["Retry-After"]["required"] is True


def test_openapi_error_body_lists_exactly_the_contract_codes(document: dict[str, Any]) -> None:
    # Given the ErrorBody schema
    body = document["components"]["schemas"]["ErrorBody"]
    # Then its codes are the contract's, `error` and `message` are required, and nothing else is allowed
    assert set(body["properties"]["error"]["enum"]) == {
        code for status in CONTRACT_ERRORS for code in contract_codes(status)
    }
    assert body["required"] == ["error", "message"]
    assert set(body["properties"]) == {"error", "message", "fields", "reference"}
    assert body["additionalProperties"] is False


def test_openapi_preflight_is_204_allowing_post_and_the_two_headers(document: dict[str, Any]) -> None:
    # Given OPTIONS /enquiries
    options = document["paths"]["/enquiries"]["options"]
    # Then it is a 204 with the CORS headers, or a 403 for an origin that is not allowed
    assert set(options["responses"]) == {"204", "403"}
    headers = options["responses"]["204"]["headers"]
    assert {
        "Access-Control-Allow-Methods",
        "Access-Control-Allow-Origin",
        "Access-Control-Allow-Headers",
    } <= set(headers)
    assert "Content-Type" in options["responses"]["204"]["description"]
    assert "Idempotency-Key" in options["responses"]["204"]["description"]


# -- the handler's real answers ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event_name", "status"),
    [
        ("submit-json.json", 201),
        ("submit-honeypot.json", 201),
        ("submit-urlencoded.json", 200),
        ("submit-multipart.json", 200),
        ("submit-malformed-json.json", 400),
        ("submit-not-object.json", 400),
        ("submit-bad-base64.json", 400),
        ("submit-disallowed-origin.json", 403),
        ("submit-too-large.json", 413),
        ("submit-unsupported-type.json", 415),
        ("submit-invalid-fields.json", 422),
        ("unknown-path.json", 404),
        ("get-enquiries.json", 405),
        ("preflight.json", 204),
    ],
)
def test_openapi_describes_the_handlers_answer_to_each_sample_event(
    document: dict[str, Any], handler: Handler, event_name: str, status: int
) -> None:
    # Given a sample event from events/
    event = load_event(event_name)
    # When the real handler answers it
    response = handler(event)
    # Then the status is the expected one, and the answer matches what the document says for it
    assert response["statusCode"] == status
    operation = document["paths"]["/enquiries"]["post" if status != 204 else "options"]
    if status == 404:
        documented = document["components"]["responses"]["NotFound"]
    elif status == 405:
        documented = document["components"]["responses"]["MethodNotAllowed"]
    else:
        documented = resolve(document, operation["responses"][str(status)])
    headers = {name.lower(): value for name, value in (response.get("headers") or {}).items()}
    for name, header in (documented.get("headers") or {}).items():
        assert not header.get("required") or name.lower() in headers, name
    if "content" not in documented:
        assert not response.get("body")
        return
    media_type = headers["content-type"].split(";")[0]
    assert media_type in documented["content"]
    if media_type == "application/json":
        # The schema is checked in place, so that its "#/components/..." references resolve.
        schema = documented["content"]["application/json"]["schema"]
        in_place = {**document, "components": {**document["components"], "checked": schema}}
        registry = Registry().with_resource("urn:openapi", Resource.from_contents(in_place, DRAFT202012))
        validator = Draft202012Validator({"$ref": "urn:openapi#/components/checked"}, registry=registry)
        validator.validate(json.loads(response["body"]))
