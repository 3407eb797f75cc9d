"""POST /enquiries through the real Lambda handler against a moto table: the contract's responses."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import pytest
from support import ALLOWED_ORIGIN, Handler, body_of, load_event, stored_items, with_json_body

VALID = {
    "name": "Jane Doe",
    "email": "jane.doe@example.com",
    "message": "My lower back hurts after running.",
    "consent": True,
}


def form_event(
    fields: Mapping[str, object], accept: str = "text/html", **headers: str | None
) -> dict[str, Any]:
    body = base64.b64encode(urlencode(fields).encode()).decode()
    return load_event("submit-urlencoded.json", body=body, headers={"accept": accept, **headers})


# --- 201: stored, for each body type ---------------------------------------------------------


def test_submit_json_stores_the_enquiry_and_answers_201(handler: Handler, dynamodb: Any) -> None:
    # Given a JSON submission from the clinic's site
    event = load_event("submit-json.json")

    # When it is handled
    response = handler(event)

    # Then it is stored, normalised, and the visitor gets its id
    assert response["statusCode"] == 201
    assert response["headers"]["Content-Type"] == "application/json"
    body = body_of(response)
    assert set(body) == {"id", "message"}
    [item] = stored_items(dynamodb)
    assert item["id"] == body["id"]
    assert item["name"] == "Jane Doe"
    assert item["email"] == "jane.doe@example.com"
    assert item["phone"] == "+448009875336"
    assert item["service"] == "Sports Massage"
    assert item["consent"] is True
    assert item["message"].startswith("My lower back has been stiff")


def test_submit_item_has_created_at_and_ttl_from_retention_days(make_handler: Any, dynamodb: Any) -> None:
    # Given a 30-day retention
    handler = make_handler(RETENTION_DAYS="30")

    # When an enquiry is stored
    before = datetime.now(UTC).timestamp()
    response = handler(load_event("submit-json.json"))
    after = datetime.now(UTC).timestamp()

    # Then created_at is ISO 8601 UTC and expires_at is 30 days later in epoch seconds
    assert response["statusCode"] == 201
    [item] = stored_items(dynamodb)
    created = datetime.fromisoformat(item["created_at"].replace("Z", "+00:00"))
    assert item["created_at"].endswith("Z")
    assert before - 1 <= created.timestamp() <= after + 1
    assert int(item["expires_at"]) == pytest.approx(created.timestamp() + 30 * 86400, abs=2)


def test_submit_ids_sort_by_time_received(handler: Handler, dynamodb: Any) -> None:
    # Given three different enquiries sent one after another
    ids = [
        body_of(handler(with_json_body("submit-json.json", dict(VALID, message=f"Question {n}"))))["id"]
        for n in range(3)
    ]

    # Then their ids are distinct and in order
    assert len(set(ids)) == 3
    assert ids == sorted(ids)


def test_submit_urlencoded_base64_body_is_stored(handler: Handler, dynamodb: Any) -> None:
    # Given a plain HTML form post, base64-encoded by API Gateway, from a JSON-speaking client
    event = load_event("submit-urlencoded.json", headers={"accept": "application/json"})

    # When it is handled
    response = handler(event)

    # Then it is stored like a JSON one
    assert response["statusCode"] == 201, response["body"]
    [item] = stored_items(dynamodb)
    assert item["name"] == "Jane Doe"
    assert item["consent"] is True
    assert "_gotcha" not in item


def test_submit_multipart_body_is_stored(handler: Handler, dynamodb: Any) -> None:
    # Given a multipart/form-data post
    event = load_event("submit-multipart.json", headers={"accept": "application/json"})

    # When it is handled
    response = handler(event)

    # Then it is stored
    assert response["statusCode"] == 201, response["body"]
    [item] = stored_items(dynamodb)
    assert item["service"] == "Sports Massage"


def test_submit_content_type_is_matched_case_insensitively_with_parameters(
    handler: Handler, dynamodb: Any
) -> None:
    # Given a JSON body labelled with an unusual but valid spelling
    event = load_event("submit-json.json", headers={"content-type": "Application/JSON; Charset=UTF-8"})

    # When it is handled
    response = handler(event)

    # Then it is accepted
    assert response["statusCode"] == 201


def test_submit_json_body_may_arrive_base64_encoded(handler: Handler, dynamodb: Any) -> None:
    # Given a JSON body that API Gateway base64-encoded
    event = load_event("submit-json.json")
    event["body"] = base64.b64encode(event["body"].encode()).decode()
    event["isBase64Encoded"] = True

    # When it is handled
    response = handler(event)

    # Then it is decoded before anything else and stored
    assert response["statusCode"] == 201
    assert len(stored_items(dynamodb)) == 1


def test_submit_unicode_text_is_kept(handler: Handler, dynamodb: Any) -> None:
    # Given a name and message in several scripts
    event = with_json_body(
        "submit-json.json", dict(VALID, name="  Zoë Łukasiewicz-Ōtani  ", message="Douleur 😣 au dos")
    )

    # When it is handled
    response = handler(event)

    # Then the text is stored trimmed and intact
    assert response["statusCode"] == 201
    [item] = stored_items(dynamodb)
    assert item["name"] == "Zoë Łukasiewicz-Ōtani"
    assert item["message"] == "Douleur 😣 au dos"


# --- 4xx: the body or the request is wrong ---------------------------------------------------


@pytest.mark.parametrize(
    ("event_name", "status", "code"),
    [
        ("submit-malformed-json.json", 400, "bad_request"),
        ("submit-not-object.json", 400, "bad_request"),
        ("submit-too-large.json", 413, "payload_too_large"),
        ("submit-unsupported-type.json", 415, "unsupported_media_type"),
        ("submit-disallowed-origin.json", 403, "origin_not_allowed"),
        ("unknown-path.json", 404, "not_found"),
        ("get-enquiries.json", 405, "method_not_allowed"),
    ],
)
def test_submit_refusals_answer_the_contract_error_and_store_nothing(
    handler: Handler, dynamodb: Any, event_name: str, status: int, code: str
) -> None:
    # Given a request the contract refuses
    event = load_event(event_name)

    # When it is handled
    response = handler(event)

    # Then the status and JSON error body are the contract's, and nothing is stored
    assert response["statusCode"] == status
    assert response["headers"]["Content-Type"] == "application/json"
    body = body_of(response)
    assert body["error"] == code
    assert body["message"]
    assert "reference" not in body
    assert stored_items(dynamodb) == []


def test_submit_bad_base64_is_400(handler: Handler, dynamodb: Any) -> None:
    # Given a body flagged base64 that is not
    event = load_event("submit-bad-base64.json", headers={"accept": "application/json"})

    # When it is handled
    response = handler(event)

    # Then it is a 400
    assert response["statusCode"] == 400
    assert body_of(response)["error"] == "bad_request"


@pytest.mark.parametrize(
    ("content_type", "raw", "status"),
    [
        ("application/json", b'{"name": "Ren\xe9e"}', 400),  # Latin-1 bytes, not UTF-8
        ("application/x-www-form-urlencoded", b"name=Ren%E9e&email=a%40b.co", 400),
        ("application/json; charset=iso-8859-1", b"{}", 415),
        ("multipart/form-data", b"name=x", 400),  # no boundary
        ("multipart/form-data; boundary=XYZ", b"this is not multipart at all", 400),
        ("application/xml", b"<enquiry/>", 415),
    ],
)
def test_submit_unreadable_bodies_are_clear_errors(
    handler: Handler, dynamodb: Any, content_type: str, raw: bytes, status: int
) -> None:
    # Given a body that cannot be read as declared
    event = load_event(
        "submit-json.json",
        body=base64.b64encode(raw).decode(),
        isBase64Encoded=True,
        headers={"content-type": content_type},
    )

    # When it is handled
    response = handler(event)

    # Then it is the contract's 400 or 415, never a 500
    assert response["statusCode"] == status
    assert body_of(response)["error"] in {"bad_request", "unsupported_media_type"}


def test_submit_missing_content_type_is_415(handler: Handler, dynamodb: Any) -> None:
    # Given a body with no content type
    event = load_event("submit-json.json", headers={"content-type": None})

    # When it is handled
    response = handler(event)

    # Then it is a 415
    assert response["statusCode"] == 415


def test_submit_invalid_fields_are_all_reported_at_once(handler: Handler, dynamodb: Any) -> None:
    # Given a submission where every field is wrong and one is unknown
    event = load_event("submit-invalid-fields.json")

    # When it is handled
    response = handler(event)

    # Then one 422 lists each failing field in plain words
    assert response["statusCode"] == 422
    body = body_of(response)
    assert body["error"] == "validation_failed"
    assert set(body["fields"]) == {"name", "email", "phone", "service", "message", "consent", "website"}
    assert body["fields"]["email"] == "Enter an email address like name@example.com."
    assert all("value_error" not in text and "Input should" not in text for text in body["fields"].values())
    assert stored_items(dynamodb) == []


@pytest.mark.parametrize("key", ["k" * 129, "abc\ndef", "tab\there"])
def test_submit_bad_idempotency_key_is_400(handler: Handler, dynamodb: Any, key: str) -> None:
    # Given an Idempotency-Key that is too long or has control characters
    event = load_event("submit-json.json", headers={"idempotency-key": key})

    # When it is handled
    response = handler(event)

    # Then it is a 400 and nothing is stored
    assert response["statusCode"] == 400
    assert "Idempotency-Key" in body_of(response)["message"]
    assert stored_items(dynamodb) == []


def test_submit_idempotency_key_of_128_printable_characters_is_accepted(
    handler: Handler, dynamodb: Any
) -> None:
    # Given a key at the limit
    event = load_event("submit-json.json", headers={"idempotency-key": "k" * 128})

    # When it is handled
    response = handler(event)

    # Then the enquiry is stored
    assert response["statusCode"] == 201


# --- CORS ------------------------------------------------------------------------------------


def test_submit_allowed_origin_is_echoed_with_vary(handler: Handler, dynamodb: Any) -> None:
    # Given a request from an allowed origin
    event = load_event("submit-json.json")

    # When it is handled
    response = handler(event)

    # Then that origin is allowed by name, caches are told the answer varies by Origin, and the
    # page's script may read Retry-After (for a 429 or 503)
    assert response["headers"]["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN
    assert response["headers"]["Vary"] == "Origin"
    assert "retry-after" in response["headers"]["Access-Control-Expose-Headers"].lower()


def test_submit_errors_carry_cors_headers_so_scripts_can_read_them(handler: Handler, dynamodb: Any) -> None:
    # Given an invalid submission from an allowed origin
    response = handler(load_event("submit-invalid-fields.json"))

    # Then the 422 is readable by the page's script
    assert response["headers"]["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN


def test_submit_request_without_origin_is_allowed_without_cors_headers(
    handler: Handler, dynamodb: Any
) -> None:
    # Given a server-side or curl request with no Origin
    event = load_event("submit-json.json", headers={"origin": None})

    # When it is handled
    response = handler(event)

    # Then it is stored and no CORS header is added
    assert response["statusCode"] == 201
    assert "Access-Control-Allow-Origin" not in response["headers"]


def test_submit_preflight_from_allowed_origin_is_204_allowing_post_and_headers(handler: Handler) -> None:
    # Given a browser's preflight
    event = load_event("preflight.json")

    # When it is handled
    response = handler(event)

    # Then it is a 204 that allows POST with Content-Type and Idempotency-Key
    assert response["statusCode"] == 204
    headers = response["headers"]
    assert headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN
    assert "POST" in headers["Access-Control-Allow-Methods"].split(",")
    allowed = {name.strip().lower() for name in headers["Access-Control-Allow-Headers"].split(",")}
    assert {"content-type", "idempotency-key"} <= allowed


def test_submit_preflight_from_other_origin_is_403(handler: Handler) -> None:
    # Given a preflight from a site that is not allowed
    event = load_event("preflight.json", headers={"origin": "https://evil.example"})

    # When it is handled
    response = handler(event)

    # Then it is refused and grants nothing
    assert response["statusCode"] == 403
    assert "Access-Control-Allow-Origin" not in response["headers"]


def test_submit_405_carries_allow(handler: Handler) -> None:
    # Given a GET on the enquiries path
    response = handler(load_event("get-enquiries.json"))

    # Then the 405 says which methods are allowed
    assert response["statusCode"] == 405
    assert "POST" in response["headers"]["Allow"]


# --- HTML form posts --------------------------------------------------------------------------


def test_submit_html_form_post_without_redirect_gets_thank_you_page(handler: Handler, dynamodb: Any) -> None:
    # Given a browser form post (Accept: text/html) with no _next and no SUCCESS_URL
    event = load_event("submit-urlencoded.json")

    # When it is handled
    response = handler(event)

    # Then the visitor sees a thank-you page with the reference
    assert response["statusCode"] == 200
    assert response["headers"]["Content-Type"].startswith("text/html")
    [item] = stored_items(dynamodb)
    assert "Thank you" in response["body"]
    assert item["id"] in response["body"]


def test_submit_html_thank_you_page_links_to_the_allowed_site_the_form_was_on(
    handler: Handler, dynamodb: Any
) -> None:
    # Given a form post without _next from a page on the allowed site
    event = form_event(dict(VALID, consent="on"), referer=f"{ALLOWED_ORIGIN}/contact/?from=home")

    # When it is handled
    response = handler(event)

    # Then the thank-you page links back to that site's home page
    assert response["statusCode"] == 200
    assert f'<a href="{ALLOWED_ORIGIN}/">Return to the website</a>' in response["body"]


@pytest.mark.parametrize("referer", ["https://evil.example/contact/", None])
def test_submit_html_thank_you_page_has_no_link_without_an_allowed_referer(
    handler: Handler, dynamodb: Any, referer: str | None
) -> None:
    # Given a form post from a page on another site, or with no Referer at all
    event = form_event(dict(VALID, consent="on"), referer=referer)

    # When it is handled
    response = handler(event)

    # Then the thank-you page links nowhere
    assert response["statusCode"] == 200
    assert "Thank you" in response["body"]
    assert "<a " not in response["body"]


def test_submit_html_form_post_redirects_to_allowed_next(handler: Handler, dynamodb: Any) -> None:
    # Given a form post whose _next is on the allowed site
    event = form_event(dict(VALID, consent="on", _next=f"{ALLOWED_ORIGIN}/thanks/"))

    # When it is handled
    response = handler(event)

    # Then the browser is sent there with a 303
    assert response["statusCode"] == 303
    assert response["headers"]["Location"] == f"{ALLOWED_ORIGIN}/thanks/"
    assert len(stored_items(dynamodb)) == 1


@pytest.mark.parametrize(
    "next_url",
    [
        "https://evil.example/phish",
        f"https://user@{ALLOWED_ORIGIN.removeprefix('https://')}/x",
        f"{ALLOWED_ORIGIN}@evil.example/",
        "javascript:alert(1)",
        "/relative/path",
    ],
)
def test_submit_html_form_post_ignores_next_off_the_allowed_origins(
    make_handler: Any, dynamodb: Any, next_url: str
) -> None:
    # Given a SUCCESS_URL and a form post whose _next points elsewhere
    handler = make_handler(SUCCESS_URL=f"{ALLOWED_ORIGIN}/enquiry-sent/")
    event = form_event(dict(VALID, consent="on", _next=next_url))

    # When it is handled
    response = handler(event)

    # Then the browser goes to SUCCESS_URL, never to the foreign address
    assert response["statusCode"] == 303
    assert response["headers"]["Location"] == f"{ALLOWED_ORIGIN}/enquiry-sent/"


def test_submit_html_form_post_failure_lists_problems_with_link_back(handler: Handler, dynamodb: Any) -> None:
    # Given a form post missing its email, with script in the name
    event = form_event({"name": "<script>alert(1)</script>", "message": "hello", "consent": "on"})

    # When it is handled
    response = handler(event)

    # Then the page lists the problem in plain words, escapes what was typed, says to go Back (which
    # keeps what was typed), and links to the form, saying that it opens empty
    assert response["statusCode"] == 422
    assert response["headers"]["Content-Type"].startswith("text/html")
    page = response["body"]
    assert "Enter an email address like name@example.com." in page
    assert "<script>alert(1)</script>" not in page
    assert "Use your browser's Back button to return to the form: what you typed is kept there." in page
    assert f'<a href="{ALLOWED_ORIGIN}/contact/">open the form again</a>, empty.' in page
    assert stored_items(dynamodb) == []


def test_submit_html_error_page_does_not_link_to_foreign_referer(handler: Handler, dynamodb: Any) -> None:
    # Given a failing form post whose Referer is another site
    event = form_event({"name": "Jane"}, referer="https://evil.example/form")

    # When it is handled
    response = handler(event)

    # Then the page does not link there
    assert response["statusCode"] == 422
    assert "evil.example" not in response["body"]


def test_submit_json_client_gets_json_even_for_form_bodies(handler: Handler, dynamodb: Any) -> None:
    # Given a urlencoded post from a script that asks for JSON
    event = form_event({"name": "Jane"}, accept="application/json")

    # When it is handled
    response = handler(event)

    # Then the error is JSON
    assert response["statusCode"] == 422
    assert response["headers"]["Content-Type"] == "application/json"


# --- honeypot ---------------------------------------------------------------------------------


def test_submit_honeypot_looks_like_success_and_stores_nothing(handler: Handler, dynamodb: Any) -> None:
    # Given a bot that filled the hidden field
    event = load_event("submit-honeypot.json")

    # When it is handled
    response = handler(event)

    # Then it gets a success-shaped answer with a plausible id, and nothing is stored
    assert response["statusCode"] == 201
    body = body_of(response)
    assert set(body) == {"id", "message"}
    assert len(body["id"]) == 26
    assert stored_items(dynamodb) == []
