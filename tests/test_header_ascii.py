"""Every header the submission function emits is ASCII with no CR or LF, whatever URL a visitor's
`_next` or `Referer` holds: hosts through IDNA (UTS #46, as browsers map them), paths and queries
percent-encoded. A non-ASCII header is refused by the local server (UnicodeEncodeError) and is not a
valid HTTP header on AWS."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from hypothesis import given, settings
from hypothesis import strategies as st
from support import ALLOWED_ORIGIN, load_event

from enquiries.api.errors import ApiError
from enquiries.api.responses import Responses, from_replayable

VALID = {"name": "Jane Doe", "email": "jane.doe@example.com", "message": "My back hurts.", "consent": "on"}
ALLOWED_HOST = ALLOWED_ORIGIN.removeprefix("https://")
RESPONSES = Responses(frozenset({ALLOWED_ORIGIN}), None, None)


def fullwidth(text: str) -> str:
    """`text` in fullwidth forms (U+FF01 to U+FF5E), which UTS #46 maps back to ASCII."""
    return "".join(chr(ord(char) + 0xFEE0) if "!" <= char <= "~" else char for char in text)


def form_post(fields: Mapping[str, object]) -> dict[str, Any]:
    body = base64.b64encode(urlencode(fields).encode()).decode()
    return load_event("submit-urlencoded.json", body=body)


def assert_headers_ascii(headers: Mapping[str, str]) -> None:
    for name, value in headers.items():
        assert name.isascii()
        assert value.isascii(), (name, value)
        assert "\r" not in value
        assert "\n" not in value


def test_submit_next_with_fullwidth_allowed_host_redirects_to_its_ascii_form(
    make_handler: Any, dynamodb: Any
) -> None:
    # Given a plain form post whose _next names the allowed site in fullwidth letters, with a
    # non-ASCII path and query
    next_url = f"https://{fullwidth(ALLOWED_HOST)}/merci/é?ref=ü"

    # When it is handled
    response = make_handler()(form_post(dict(VALID, _next=next_url)))

    # Then the browser goes to the same place, written in ASCII, as a browser would request it
    assert response["statusCode"] == 303
    assert response["headers"]["Location"] == f"{ALLOWED_ORIGIN}/merci/%C3%A9?ref=%C3%BC"
    assert_headers_ascii(response["headers"])


def test_submit_next_with_fullwidth_other_host_is_not_followed(make_handler: Any, dynamodb: Any) -> None:
    # Given a _next naming another site in fullwidth letters
    next_url = f"https://{fullwidth('elsewhere.example')}/"

    # When it is handled
    response = make_handler()(form_post(dict(VALID, _next=next_url)))

    # Then it is not followed: the built-in thank-you page answers
    assert response["statusCode"] == 200
    assert "Location" not in response["headers"]
    assert_headers_ascii(response["headers"])


def test_submit_success_url_with_non_ascii_path_is_sent_percent_encoded(
    make_handler: Any, dynamodb: Any
) -> None:
    # Given a SUCCESS_URL with an accented path, and a form post without _next
    handler = make_handler(SUCCESS_URL=f"{ALLOWED_ORIGIN}/réussi/")

    # When it is handled
    response = handler(form_post(VALID))

    # Then Location is that page in ASCII
    assert response["statusCode"] == 303
    assert response["headers"]["Location"] == f"{ALLOWED_ORIGIN}/r%C3%A9ussi/"


def test_responses_replayed_redirect_kept_with_a_non_ascii_location_is_sent_in_ascii() -> None:
    # Given a redirect remembered under a key by a version that kept _next as it came
    kept = {"status_code": 303, "headers": {"Location": f"https://{fullwidth(ALLOWED_HOST)}/é"}, "body": ""}

    # When it is given again
    response = from_replayable(kept)

    # Then its Location is the same place in ASCII
    assert response.headers["Location"] == f"{ALLOWED_ORIGIN}/%C3%A9"
    assert_headers_ascii(response.headers)


# -- the URL grammar --------------------------------------------------------------------------------

ANY_TEXT = st.text(st.characters(codec="utf-8"), max_size=20)
HOSTS = st.one_of(
    st.just(ALLOWED_HOST),
    st.just(ALLOWED_HOST.upper()),
    st.just(fullwidth(ALLOWED_HOST)),
    st.sampled_from(["elsewhere.example", fullwidth("elsewhere.example"), "straße.de", "127.0.0.1", "[::1]"]),
    ANY_TEXT,
)
URLS = st.builds(
    lambda scheme, host, port, path, query, fragment: (
        f"{scheme}://{host}{port}/{path}{'?' + query if query is not None else ''}"
        f"{'#' + fragment if fragment is not None else ''}"
    ),
    st.sampled_from(["https", "HTTPS", "http", "javascript", fullwidth("https")]),
    HOSTS,
    st.sampled_from(["", ":443", ":8443", ":", fullwidth(":443")]),
    ANY_TEXT,
    st.none() | ANY_TEXT,
    st.none() | ANY_TEXT,
)


@settings(max_examples=300, deadline=None)
@given(next_url=URLS | ANY_TEXT)
def test_responses_success_headers_are_ascii_for_any_next(next_url: str) -> None:
    # Given any URL (or any text) as _next
    # When the success of a plain form post is rendered
    response = RESPONSES.success("01KAPX4Q7N3Y8Z2M5R6T9V1W0A", next_url, html=True)

    # Then every header is ASCII without CR or LF, and a redirect goes only to the allowed origin
    assert_headers_ascii(response.headers)
    location = response.headers.get("Location")
    if location is not None:
        assert location.startswith(ALLOWED_ORIGIN + "/")


@settings(max_examples=200, deadline=None)
@given(referer=URLS | ANY_TEXT)
def test_responses_error_page_headers_are_ascii_for_any_referer(referer: str) -> None:
    # Given any Referer on a refused plain form post
    # When the error page is rendered
    response = RESPONSES.error(ApiError(503, "unavailable"), html=True, referer=referer, request_id="r-1")

    # Then every header is ASCII without CR or LF
    assert_headers_ascii(response.headers)


def test_local_server_answers_a_fullwidth_next_with_an_ascii_redirect() -> None:
    import http.client
    from urllib.parse import urlsplit

    from devserver.launcher import local_server

    # Given the local server, and a plain form post whose _next names its own site in fullwidth
    with local_server() as server:
        parts = urlsplit(server.url)
        next_url = f"http://{fullwidth(parts.hostname or '')}:{parts.port}/merci/é"
        body = urlencode(dict(VALID, _next=next_url))
        connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)

        # When it is posted
        connection.request(
            "POST",
            "/enquiries",
            body=body,
            headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": "text/html"},
        )
        response = connection.getresponse()

        # Then the connection is answered (not dropped): a redirect to the same place, in ASCII
        assert response.status == 303
        assert response.getheader("Location") == f"{server.url.rstrip('/')}/merci/%C3%A9"
        connection.close()
