"""The API's responses: JSON for scripts, pages and redirects for a plain HTML form, and the answer
kept for a repeat of the request (a `Replayable`) and given back as it was."""

from __future__ import annotations

import json
from dataclasses import dataclass
from http import HTTPStatus
from urllib.parse import quote, urlsplit

from enquiries.api.errors import RETRY_AFTER_SECONDS, ApiError, error_body
from enquiries.api.http import Response
from enquiries.intake import Replayable
from enquiries.origins import serialise_origin

ALLOWED_METHODS = "OPTIONS, POST"
SUCCESS_MESSAGE = "Thank you: your enquiry has been sent. We will reply by email as soon as we can."
JSON_TYPE = "application/json"
HTML_TYPE = "text/html; charset=utf-8"
_FIRST_PRINTABLE = 0x20  # below: the C0 control characters
_DELETE = 0x7F


def is_control(char: str) -> bool:
    """An ASCII control character: never in a header value or a Location we write."""
    return ord(char) < _FIRST_PRINTABLE or ord(char) == _DELETE


def serialised_origin(origin: str) -> str | None:
    """The origin as browsers write it (so https://Clinic.example:443 matches), or None if it is none."""
    try:
        return serialise_origin(origin)
    except ValueError:
        return None


# What RFC 3986 lets a path, query or fragment hold as it is (with "%" for escapes already made):
# everything else, any non-ASCII letter included, is percent-encoded as UTF-8, as browsers do.
_URL_SAFE = "/?:@!$&'()*+,;=%"


def _origin_of(url: str) -> str | None:
    try:
        parts = urlsplit(url)
    except ValueError:  # also a host whose compatibility form holds "/", "?", "#", "@" or ":"
        return None
    # urlsplit silently drops CR, LF and tab, so they are refused here: they must never reach Location.
    if any(char.isspace() or is_control(char) for char in url):
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc or "@" in parts.netloc or "\\" in url:
        return None
    return serialised_origin(f"{parts.scheme}://{parts.netloc}")


def ascii_url(url: str) -> str | None:
    """`url` as a browser would request it, in ASCII, so that it can be a header's value: its origin
    serialised (the host through IDNA's UTS #46 mapping, so fullwidth letters become the ASCII host
    they mean, then punycode), and its path, query and fragment percent-encoded. None for a URL
    that has no such form (see `_origin_of`). HTTP header values are ASCII (RFC 9110, section 5.5);
    https://url.spec.whatwg.org/#concept-basic-url-parser does the same mapping and encoding."""
    origin = _origin_of(url)
    if origin is None:
        return None
    parts = urlsplit(url)
    written = origin + (quote(parts.path, safe=_URL_SAFE) or "/")
    if parts.query:
        written += "?" + quote(parts.query, safe=_URL_SAFE)
    if parts.fragment:
        written += "#" + quote(parts.fragment, safe=_URL_SAFE)
    return written


def json_response(status: int, body: dict[str, object], headers: dict[str, str] | None = None) -> Response:
    return Response(
        status_code=status,
        content_type=JSON_TYPE,
        body=json.dumps(body, ensure_ascii=False),
        headers=headers or {},
    )


def to_replayable(response: Response, enquiry_id: str | None) -> Replayable:
    return {
        "status_code": response.status_code,
        "content_type": response.headers.get("Content-Type"),
        "headers": {k: v for k, v in response.headers.items() if k != "Content-Type"},
        "body": response.body,
        "enquiry_id": enquiry_id,
    }


def from_replayable(replayable: Replayable) -> Response:
    headers = dict(replayable.get("headers") or {})
    location = headers.get("Location")
    if location is not None and not location.isascii():
        # Kept (for up to a day) by a version that wrote _next as it came: sent in ASCII now.
        headers["Location"] = ascii_url(location) or "/"
    return Response(
        status_code=int(replayable["status_code"]),
        content_type=replayable.get("content_type"),
        body=replayable.get("body") or "",
        headers=headers,
    )


@dataclass(frozen=True)
class Responses:
    """The responses of one deployment: its allowed origins (serialised by the settings, as
    browsers send them), its thank-you address and its phone number."""

    allowed_origins: frozenset[str]
    success_url: str | None
    clinic_phone: str | None

    def allowed_url(self, url: str | None) -> str | None:
        """`url` if its origin is allowed, written in ASCII (see `ascii_url`); else None."""
        if not url or _origin_of(url) not in self.allowed_origins:
            return None
        return ascii_url(url)

    def success(
        self, enquiry_id: str, next_url: str | None, *, html: bool, referer: str | None = None
    ) -> Response:
        """A stored enquiry: 201 with its id, or for an HTML form a 303 to an allowed `_next` (or
        the success URL) or a thank-you page, linking to the site of an allowed referring page."""
        if not html:
            return json_response(201, {"id": enquiry_id, "message": SUCCESS_MESSAGE})
        target = self.allowed_url(next_url) or (ascii_url(self.success_url) if self.success_url else None)
        if target:
            return Response(status_code=303, content_type=HTML_TYPE, body="", headers={"Location": target})
        from enquiries.api.pages import thank_you_page

        site = _origin_of(referer) if referer else None
        site_url = site + "/" if site in self.allowed_origins else None
        return Response(status_code=200, content_type=HTML_TYPE, body=thank_you_page(enquiry_id, site_url))

    def error(self, error: ApiError, *, html: bool, referer: str | None, request_id: str) -> Response:
        """The contract's error body, or for an HTML form a page with a link back to an allowed
        referring page; a 5xx carries the request's id as its reference, which the log shows too."""
        reference = request_id if error.status >= HTTPStatus.INTERNAL_SERVER_ERROR else None
        headers = dict(error.headers)
        if error.status == HTTPStatus.METHOD_NOT_ALLOWED:
            headers["Allow"] = ALLOWED_METHODS
        if error.status == HTTPStatus.SERVICE_UNAVAILABLE:
            headers.setdefault("Retry-After", str(RETRY_AFTER_SECONDS))
        body = error_body(error, reference=reference, clinic_phone=self.clinic_phone)
        if not html:
            return json_response(error.status, body, headers)
        from enquiries.api.pages import error_page

        page = error_page(str(body["message"]), error.fields, self.allowed_url(referer), reference)
        return Response(status_code=error.status, content_type=HTML_TYPE, body=page, headers=headers)
