"""The API's OpenAPI document, built from the submission app's own routes and models.

`python -m scripts.openapi` writes docs/openapi.json; `--check` only compares, and exits 1 when the
committed file is stale. Powertools' `get_openapi_json_schema` gives the routes, operation id and
document frame; what it cannot know (the bodies the handler reads itself, the contract's error bodies,
303 and HTML answers for form posts, 405 with Allow, the CORS preflight) is corrected here, from the
same constants the handler uses (field limits, error codes, Idempotency-Key length). No AWS is needed.
"""

from __future__ import annotations

import argparse
import copy
import functools
import json
import sys
import tomllib
from collections.abc import Callable
from http import HTTPStatus
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
FUNCTIONS_DIR = REPO / "functions"
DOCUMENT_PATH = REPO / "docs" / "openapi.json"
TITLE = "enquiries"
ENQUIRIES_PATH = "/enquiries"
# The document describes the defaults; an example origin turns CORS (and so the preflight) on.
EXAMPLE_ORIGIN = "https://www.clinic.example"

Schema = dict[str, Any]

# Which status carries which error code (the contract's Responses table).
STATUS_CODES: dict[int, str] = {
    400: "bad_request",
    403: "origin_not_allowed",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_failed",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}
# A status's other codes: a used Idempotency-Key with another body is a 422 without `fields`.
OTHER_CODES: dict[int, tuple[str, ...]] = {422: ("idempotency_key_reused",)}
# Component names of the error responses, by status.
ERROR_RESPONSES: dict[int, tuple[str, str]] = {
    400: (
        "BadRequest",
        "The body cannot be read: malformed JSON or multipart, not a JSON object, not UTF-8, bad "
        "base64, a multipart body without a boundary or cut short; or a bad Idempotency-Key.",
    ),
    403: (
        "OriginNotAllowed",
        "The request has an `Origin` header that is not in `ALLOWED_ORIGINS`; nothing is stored.",
    ),
    404: ("NotFound", "Any path other than /enquiries."),
    405: ("MethodNotAllowed", "Any method on /enquiries other than POST and OPTIONS; `Allow` lists them."),
    413: (
        "PayloadTooLarge",
        "The form's content (field names and values, once decoded) is over 32 KiB, or the body itself "
        "is over 128 KiB.",
    ),
    415: (
        "UnsupportedMediaType",
        "The content type is not JSON, urlencoded or multipart, or its charset is not UTF-8.",
    ),
    422: (
        "ValidationFailed",
        "One or more fields fail; `fields` names every one, each with what to fix, in "
        "plain words. Unknown fields, repeated fields and file parts are named too. Or "
        "(`idempotency_key_reused`, without `fields`) the Idempotency-Key was used within 24 hours for "
        "an enquiry with other fields: nothing is stored.",
    ),
    429: (
        "RateLimited",
        "Over `RATE_LIMIT_PER_HOUR` accepted enquiries from one client address in the last "
        "60 minutes (counted in 10-minute buckets, so a wait may be up to 10 minutes longer); "
        "`Retry-After` says when to resend.",
    ),
    500: ("InternalError", "Anything else unexpected; `reference` is also in the log line for it."),
    503: (
        "Unavailable",
        "Storage (or the Turnstile verifier) is unavailable or throttled; resend after "
        "`Retry-After` seconds.",
    ),
}
# Statuses a POST /enquiries can answer with an error (404 and 405 are for other paths and methods).
POST_ERROR_STATUSES = (400, 403, 413, 415, 422, 429, 500, 503)
DESCRIPTION = (
    "A self-hosted backend for the contact form of a static website: `POST /enquiries` takes JSON, a "
    "plain HTML form (urlencoded) or multipart/form-data, checks it, stores it and has it emailed to "
    "staff. The repository's CONTRACT.md is the public contract; this document follows it.\n\n"
    "Every response is JSON unless the request is an HTML form post (urlencoded or multipart) whose "
    "`Accept` contains `text/html`: then success is a `303` (to an allowed `_next` or `SUCCESS_URL`) or a "
    "`200` thank-you page, and an error is an HTML page with the same status. Every error body has a "
    "stable `error` code and a `message` a visitor can act on; 5xx bodies add a `reference`. Any other "
    "path answers `404` (`NotFound`), and any other method on /enquiries `405` (`MethodNotAllowed`).\n\n"
    "This document shows the default settings: consent required, the default `SERVICES`, no Turnstile."
)


def project_version() -> str:
    data = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    return str(data["project"]["version"])


def powertools_document() -> Schema:
    """What Powertools generates for the app's one route (POST /enquiries, with CORS on), before any
    correction. The function serves the route without Powertools' resolver (api/http.py: its import
    cost every cold start); the document is made here, at development time, with the resolver."""
    if str(FUNCTIONS_DIR) not in sys.path:
        sys.path.insert(0, str(FUNCTIONS_DIR))
    from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, CORSConfig, Response

    from enquiries.api.app import CORS_EXPOSE_HEADERS, CORS_MAX_AGE_SECONDS, ENQUIRIES_PATH

    cors = CORSConfig(
        allow_origin=EXAMPLE_ORIGIN, expose_headers=list(CORS_EXPOSE_HEADERS), max_age=CORS_MAX_AGE_SECONDS
    )
    app = APIGatewayHttpResolver(cors=cors)

    def submit() -> None:  # pragma: no cover - described, never called
        raise NotImplementedError

    # Given as an object: this module's annotations are strings, which Powertools cannot resolve here.
    submit.__annotations__["return"] = Response[str]
    app.post(ENQUIRIES_PATH)(submit)
    document: Schema = json.loads(
        app.get_openapi_json_schema(title=TITLE, version=project_version(), description=DESCRIPTION)
    )
    return document


# -- request bodies ------------------------------------------------------------------------------------


SURROGATES = range(0xD800, 0xE000)  # not characters: never in text
LAST_BMP = 0xFFFF


@functools.cache
def _classed_code_points() -> tuple[int, ...]:
    """Every code point in any of the classes of enquiries/text_classes.py (a few thousand), in order."""
    from enquiries import text_classes as classes

    return tuple(
        code
        for code in range(0x110000)
        if code not in SURROGATES
        and (
            classes.is_control_format_or_separator(chr(code))
            or classes.is_format_or_default_ignorable(chr(code))
        )
    )


def _class_body(member: Callable[[str], bool]) -> str:
    """The code points `member` holds, as a regular expression class body: BMP characters escaped
    (\\uXXXX, which ECMA-262 and Python read alike), others as themselves."""
    ranges: list[list[int]] = []
    for code in _classed_code_points():
        if not member(chr(code)):
            continue
        if ranges and ranges[-1][1] == code - 1:
            ranges[-1][1] = code
        else:
            ranges.append([code, code])

    def one(code: int) -> str:
        return f"\\u{code:04x}" if code <= LAST_BMP else chr(code)

    return "".join(one(low) if low == high else f"{one(low)}-{one(high)}" for low, high in ranges)


def character_classes() -> dict[str, str]:
    """The classes the field rules use (enquiries/text_classes.py), as regular expression class bodies."""
    from enquiries import text_classes as classes

    return {
        # Control characters (Cc) and the line and paragraph separators (Zl, Zp).
        "control": _class_body(lambda c: classes.is_control(c) or classes.is_line_or_paragraph_separator(c)),
        # What a name may not hold besides: format and default-ignorable characters, but the joiners.
        "hidden": _class_body(
            lambda c: classes.is_format_or_default_ignorable(c) and c not in classes.JOINERS
        ),
        # What a message may not hold: controls other than tab, LF and CR (CR LF and CR become LF).
        "message_control": _class_body(lambda c: classes.is_control(c) and c not in "\t\n\r"),
    }


# A phone number as people write it: digits, a leading +, spaces, brackets, dots, slashes and dashes,
# and an extension (ext 2, x2, #2). Whether it is possible for its region is libphonenumber's to say.
PHONE_PATTERN = r"^(|\+?[0-9][0-9 ().\/-]{3,30}((ext\.?|x|#) ?[0-9]{1,7})?)$"
# What JSON Schema cannot say: tests/test_fuzz_api.py allows exactly these when it checks that valid data
# is accepted and invalid data refused.
UNEXPRESSED_RULES = (
    "Some rules are not expressible here. Matching this schema, an enquiry is still a 422 for an address "
    "email-validator refuses, a number not possible for its region, a name holding `=?` (an encoded word "
    "in email), or a name or message that shows nothing (such as U+2800 BRAILLE PATTERN BLANK). Not "
    "matching it, an enquiry is still accepted when it does once normalised (trimmed, a service or "
    "consent word in another letter case, consent as the number 1, a phone number in another layout), "
    "and a filled `_gotcha` gets the answer an enquiry would get."
)
TURNSTILE_NOTE = (
    "With `TURNSTILE_SECRET` set, the field `cf-turnstile-response` (the Cloudflare Turnstile token) is "
    "required too, and a failed check is a 422 on field `captcha`; without it, that field is unknown."
)


def _field_rules(form: bool) -> dict[str, Schema | None]:
    """The contract's rule for each field of the Enquiry model, as JSON Schema (None: not a field under
    the default settings). `form` is for urlencoded and multipart bodies, where every value is text.
    """
    from enquiries.field_messages import EMAIL_MAX, MESSAGE_MAX, NAME_MAX
    from enquiries.settings import DEFAULT_SERVICES
    from enquiries.validation import CONSENT_TRUE

    def optional(schema: Schema) -> Schema:
        return schema if form else {**schema, "type": ["string", "null"]}

    classes = character_classes()
    control, hidden, message_control = classes["control"], classes["hidden"], classes["message_control"]
    consent_words = sorted(CONSENT_TRUE)
    consent_text: Schema = {"type": "string", "enum": consent_words}
    return {
        "name": {
            "type": "string",
            "minLength": 1,
            "maxLength": NAME_MAX,
            # Something other than spaces, and no control, separator, format or default-ignorable
            # character but the joiners (an emoji variation selector after a symbol is allowed too).
            "pattern": f"^[^{control}{hidden}]*[^\\s{control}{hidden}][^{control}{hidden}]*$",
            "description": f"1-{NAME_MAX} characters after trimming; no control, format or line/paragraph "
            "separator characters, and no default-ignorable ones except ZWJ, ZWNJ and an emoji variation "
            "selector after a symbol. Stored trimmed.",
            "examples": ["Jane Doe"],
        },
        "email": {
            "type": "string",
            "format": "email",
            "maxLength": EMAIL_MAX,
            "description": f"A syntactically valid address of at most {EMAIL_MAX} characters (no DNS "
            "look-up). Stored normalised.",
            "examples": ["jane.doe@example.com"],
        },
        "phone": optional(
            {
                "type": "string",
                "pattern": PHONE_PATTERN,
                "description": "Optional: a phone number possible for its region (libphonenumber's "
                "lengths: the pattern only shows the characters); national numbers are read in "
                "`DEFAULT_PHONE_REGION` (default GB). Stored as E.164, e.g. +448009875336, with an "
                "extension as `;ext=2`. Empty counts as absent.",
                "examples": ["0800 987 5336", "+44 1632 960123", "07700 900123 ext 2"],
            }
        ),
        "service": optional(
            {
                "type": "string",
                # The canonical spellings (any letter case is accepted), and empty for none.
                "enum": [*DEFAULT_SERVICES, ""] if form else [*DEFAULT_SERVICES, "", None],
                "description": "Optional: one of `SERVICES`, matched case-insensitively (default: "
                + ", ".join(DEFAULT_SERVICES)
                + "). Stored in its canonical spelling. Empty counts as absent.",
                "examples": list(DEFAULT_SERVICES),
            }
        ),
        "message": {
            "type": "string",
            "minLength": 1,
            "maxLength": MESSAGE_MAX,
            "pattern": f"^[^{message_control}]*[^\\s{message_control}][^{message_control}]*$",
            "description": f"1-{MESSAGE_MAX:,} characters after trimming; line breaks and tabs, but no "
            "other control character. Stored trimmed, line breaks as LF.",
            "examples": ["My lower back has been stiff since a half marathon."],
        },
        "consent": {
            **(consent_text if form else {"anyOf": [{"type": "boolean", "const": True}, consent_text]}),
            "description": "Required unless `REQUIRE_CONSENT=false`: "
            + ("" if form else "true, or ")
            + "one of "
            + ", ".join(consent_words)
            + " (any letter case). Stored as true.",
        },
        "_gotcha": optional(
            {
                "type": "string",
                "maxLength": 0,
                "description": "The honeypot: must stay empty. A filled one gets the answer an enquiry "
                "would get (field errors, a success with a fresh id, a repeat's first answer, a 429), and "
                "nothing is stored or sent. Never stored.",
            }
        ),
        "_next": optional(
            {
                # Any text: a value that is not an absolute http(s) URL of an allowed origin (empty,
                # relative, elsewhere) is accepted and ignored, so it is no `format: uri`.
                "type": "string",
                "description": "Where an HTML form post is sent (303) on success; honoured only when it "
                "is an absolute http(s) URL whose origin is in `ALLOWED_ORIGINS`. Any other value (empty, "
                "relative, another origin) is accepted and ignored. Never stored.",
            }
        ),
        # Unknown (a 422) under the default settings this document shows; see TURNSTILE_NOTE.
        "cf-turnstile-response": None,
    }


def _title(name: str) -> str:
    """A field's title, as JSON Schema generators write one from its name: `_next` is "Next",
    `cf-turnstile-response` "Cf-Turnstile-Response"."""
    return name.title().replace("_", " ").strip()


def enquiry_schemas() -> tuple[Schema, Schema]:
    """The JSON body and the form body schemas: the fields validation reads, in its order, each with
    the contract's rule."""
    from enquiries.validation import FIELDS, Enquiry

    names = [name for name, _, _ in FIELDS]
    required = ["name", "email", "message", "consent"]
    schemas = []
    for form in (False, True):
        rules = _field_rules(form)
        if set(rules) != set(names):  # a new field must get its contract rule here, a removed one lose it
            raise ValueError(
                f"scripts/openapi.py has rules for {sorted(rules)}, validation has fields {sorted(names)}"
            )
        properties: Schema = {}
        for name in names:
            rule = rules[name]
            if rule is not None:
                properties[name] = {"title": _title(name), **rule}
        schemas.append(
            {
                "title": "EnquiryForm" if form else Enquiry.__name__,
                "description": (
                    "An enquiry sent as an HTML form: the same fields as `Enquiry`, every value text; a "
                    "file part is a 422."
                    if form
                    else "An enquiry as a UTF-8 JSON object."
                )
                + " Any other field is a 422 that names it; a field sent twice is a 422. "
                + TURNSTILE_NOTE
                + " "
                + UNEXPRESSED_RULES,
                "type": "object",
                "properties": properties,
                "required": required,
                "additionalProperties": False,  # any other field is a 422
            }
        )
    return schemas[0], schemas[1]


# -- responses -----------------------------------------------------------------------------------------


def _ref(kind: str, name: str) -> Schema:
    return {"$ref": f"#/components/{kind}/{name}"}


def error_body_schema() -> Schema:
    from enquiries.api.errors import MESSAGES

    return {
        "title": "ErrorBody",
        "description": "Every error body. `message` is a sentence a visitor can act on (on 5xx it offers "
        "`CLINIC_PHONE` when set); `fields` comes with 422; `reference` with every 5xx, and the same id "
        "is in the log line for that failure.",
        "type": "object",
        "properties": {
            "error": {"type": "string", "enum": list(MESSAGES), "description": "A stable code."},
            "message": {"type": "string", "minLength": 1},
            "fields": {
                "type": "object",
                "minProperties": 1,
                "additionalProperties": {"type": "string", "minLength": 1},
                "description": "Each failing field (or `captcha`) and what to fix, in plain words.",
            },
            "reference": {"type": "string", "minLength": 1},
        },
        "required": ["error", "message"],
        "additionalProperties": False,
    }


HTML_PAGE: Schema = {"type": "string", "description": "An HTML page (for HTML form posts)."}
RETRY_AFTER: Schema = {
    "description": "Seconds to wait before resending.",
    "required": True,
    "schema": {"type": "integer", "minimum": 0},
}


def error_response(status: int) -> Schema:
    description = ERROR_RESPONSES[status][1]
    schema: Schema = {
        "allOf": [_ref("schemas", "ErrorBody"), {"properties": {"error": {"const": STATUS_CODES[status]}}}]
    }
    if status == HTTPStatus.UNPROCESSABLE_ENTITY:
        schema["allOf"][1]["required"] = ["fields"]
    if status in OTHER_CODES:
        others = [
            {"allOf": [_ref("schemas", "ErrorBody"), {"properties": {"error": {"const": code}}}]}
            for code in OTHER_CODES[status]
        ]
        schema = {"oneOf": [schema, *others]}
    if status >= HTTPStatus.INTERNAL_SERVER_ERROR:
        schema["allOf"][1]["required"] = ["reference"]
    response: Schema = {
        "description": description,
        "content": {"application/json": {"schema": schema}, "text/html": {"schema": HTML_PAGE}},
    }
    if status == HTTPStatus.METHOD_NOT_ALLOWED:
        response["headers"] = {
            "Allow": {
                "description": "The methods /enquiries takes.",
                "required": True,
                "schema": {"type": "string", "examples": ["OPTIONS, POST"]},
            }
        }
    if status in (429, 503):
        response["headers"] = {"Retry-After": RETRY_AFTER}
    return response


def success_schema() -> Schema:
    return {
        "title": "Accepted",
        "type": "object",
        "properties": {
            "id": {"type": "string", "minLength": 1, "description": "The enquiry id."},
            "message": {"type": "string", "minLength": 1, "description": "A sentence for the visitor."},
        },
        "required": ["id", "message"],
        "additionalProperties": False,
    }


def post_operation(generated: Schema) -> Schema:
    from enquiries import text_classes
    from enquiries.api.app import IDEMPOTENCY_KEY_MAX

    # Cc, Cf, Zl and Zp; with the format characters meant to be seen listed, as Cf in any Unicode version.
    key_excluded = _class_body(
        lambda c: (
            text_classes.is_control_format_or_separator(c)
            or (text_classes.is_format_or_default_ignorable(c) and not text_classes.is_default_ignorable(c))
        )
    )

    operation = {key: value for key, value in generated.items() if key not in ("responses", "summary")}
    responses: Schema = {
        "201": {
            "description": "Stored. A filled honeypot with valid fields gets the same answer, and nothing is "
            "stored.",
            "content": {"application/json": {"schema": _ref("schemas", "Accepted")}},
        },
        "200": {
            "description": "An HTML form post stored, with no allowed `_next` and no `SUCCESS_URL`: a "
            "thank-you page.",
            "content": {"text/html": {"schema": HTML_PAGE}},
        },
        "303": {
            "description": "An HTML form post stored: to the allowed `_next`, else to `SUCCESS_URL`.",
            "headers": {
                "Location": {"required": True, "schema": {"type": "string", "format": "uri"}},
            },
            "content": {"text/html": {"schema": {"type": "string", "maxLength": 0}}},
        },
    }
    for status in POST_ERROR_STATUSES:
        responses[str(status)] = _ref("responses", ERROR_RESPONSES[status][0])
    return {
        **operation,
        "summary": "Send an enquiry",
        "description": "Checks, stores and (from the table's stream) emails an enquiry. Requests with "
        "the same `Idempotency-Key` within 24 hours, and identical submissions from one client address "
        "within 10 minutes, get the first one's response; nothing is stored or sent twice.",
        "parameters": [
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "description": f"1 to {IDEMPOTENCY_KEY_MAX} characters; longer, or with a control, format "
                "or line/paragraph separator character, is a 400.",
                "schema": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": IDEMPOTENCY_KEY_MAX,
                    "pattern": f"^[^{key_excluded}]+$",
                },
            }
        ],
        "requestBody": {
            "required": True,
            "description": "At most 32 KiB of content: the UTF-8 bytes of the field names and values once "
            "decoded, the same in every encoding; the body itself at most 128 KiB. API Gateway may hand it "
            "over base64-encoded; it is decoded first. Any other content type is a 415.",
            "content": {
                "application/json": {"schema": _ref("schemas", "Enquiry")},
                "application/x-www-form-urlencoded": {"schema": _ref("schemas", "EnquiryForm")},
                "multipart/form-data": {"schema": _ref("schemas", "EnquiryForm")},
            },
        },
        "responses": responses,
    }


def preflight_operation() -> Schema:
    text: Schema = {"type": "string"}
    return {
        "operationId": "preflight_enquiries_options",
        "summary": "CORS preflight",
        "description": "A browser's preflight for a cross-origin POST. Requests with no `Origin` are "
        "allowed too (curl, server-side code).",
        "parameters": [
            {
                "name": "Access-Control-Request-Method",
                "in": "header",
                "required": False,
                "schema": {"type": "string", "examples": ["POST"]},
            },
            {
                "name": "Access-Control-Request-Headers",
                "in": "header",
                "required": False,
                "schema": {"type": "string", "examples": ["content-type,idempotency-key"]},
            },
        ],
        "responses": {
            "204": {
                "description": "Allowed: `POST`, with the headers `Content-Type` and `Idempotency-Key`. "
                "`Access-Control-Allow-Origin` echoes an allowed `Origin`.",
                "headers": {
                    "Access-Control-Allow-Methods": {"required": True, "schema": text},
                    "Access-Control-Allow-Origin": {"required": False, "schema": text},
                    "Access-Control-Allow-Headers": {"required": False, "schema": text},
                    "Access-Control-Max-Age": {"required": False, "schema": {"type": "integer"}},
                    "Vary": {"required": True, "schema": text},
                },
            },
            "403": _ref("responses", "OriginNotAllowed"),
        },
    }


def correct(document: Schema) -> Schema:
    """Powertools' document, made to say what the contract says."""
    corrected = copy.deepcopy(document)
    path = corrected["paths"][ENQUIRIES_PATH]
    path["post"] = post_operation(path["post"])
    path["options"] = preflight_operation()
    json_body, form_body = enquiry_schemas()
    # Powertools' 422 shapes (HTTPValidationError, ValidationError, ResponseValidationError) describe its
    # own request validation, which this app does not use: the contract's ErrorBody replaces them.
    corrected["components"] = {
        "schemas": {
            "Enquiry": json_body,
            "EnquiryForm": form_body,
            "Accepted": success_schema(),
            "ErrorBody": error_body_schema(),
        },
        "responses": {name: error_response(status) for status, (name, _) in ERROR_RESPONSES.items()},
    }
    return corrected


def build_document() -> Schema:
    return correct(powertools_document())


def render(document: Schema) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.openapi", description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if docs/openapi.json is stale")
    parser.add_argument("--output", type=Path, default=DOCUMENT_PATH, help="where to write the document")
    args = parser.parse_args(argv)
    text = render(build_document())
    output: Path = args.output
    if args.check:
        current = output.read_text(encoding="utf-8") if output.exists() else ""
        if current != text:
            print(f"{output} is stale: run `make openapi`", file=sys.stderr)
            return 1
        print(f"{output} is up to date")
        return 0
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
