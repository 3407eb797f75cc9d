"""Reads a request body into form fields: base64, size, content type, then JSON / urlencoded / multipart.

Every way a body can be unreadable becomes an ApiError with the contract's status; nothing here
raises anything else for any input. Repeated fields are kept as lists so validation can name them.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from enquiries.api.errors import ApiError
from enquiries.validation import FilePart

MAX_BODY_BYTES = 32 * 1024
JSON = "application/json"
URLENCODED = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"
FORM_TYPES = frozenset({URLENCODED, MULTIPART})
_UTF8_CHARSETS = frozenset({"utf-8", "utf8", "us-ascii", "ascii"})
_MAX_FIELDS = 100


def media_type(content_type: str | None) -> tuple[str, dict[str, str]]:
    """`text/plain; Charset="UTF-8"` -> ("text/plain", {"charset": "UTF-8"}); names lower-cased."""
    if not content_type:
        return "", {}
    kind, _, rest = content_type.partition(";")
    params: dict[str, str] = {}
    for param in rest.split(";"):
        key, sep, value = param.partition("=")
        if sep:
            params[key.strip().lower()] = value.strip().strip('"')
    return kind.strip().lower(), params


def decoded_body(body: str | None, is_base64: bool) -> bytes:
    """The raw bytes of the body; API Gateway base64-encodes binary and form bodies."""
    if body is None:
        return b""
    if not is_base64:
        if len(body) > MAX_BODY_BYTES * 4:  # cheap bound before encoding a huge string
            raise ApiError(413, "payload_too_large", reason="body_size")
        return body.encode("utf-8", "surrogatepass")
    try:
        raw = base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(400, "bad_request", reason="bad_base64") from None
    return raw


def _text(raw: bytes, reason: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, "bad_request", reason=reason) from None


def _keep(fields: dict[str, Any], name: str, value: Any) -> None:
    if name in fields:
        previous = fields[name]
        fields[name] = [*previous, value] if isinstance(previous, list) else [previous, value]
    else:
        if len(fields) >= _MAX_FIELDS:
            raise ApiError(400, "bad_request", reason="too_many_fields")
        fields[name] = value


def _json_fields(raw: bytes) -> dict[str, Any]:
    def object_with_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        for key, value in pairs:
            _keep(fields, key, value)
        return fields

    text = _text(raw, "json_not_utf8")
    try:
        data = json.loads(text, object_pairs_hook=object_with_repeats)
    except (ValueError, RecursionError):
        raise ApiError(400, "bad_request", reason="malformed_json") from None
    if not isinstance(data, dict):
        raise ApiError(
            400, "bad_request", message="Send the enquiry as a JSON object.", reason="json_not_object"
        )
    if "\\u" in text:
        try:
            # An escape such as "\ud800" decodes to a lone surrogate: not text, and nothing can store it.
            json.dumps(data, ensure_ascii=False).encode("utf-8")
        except (UnicodeEncodeError, RecursionError):
            raise ApiError(400, "bad_request", reason="json_not_unicode") from None
    return data


def _urlencoded_fields(raw: bytes) -> dict[str, Any]:
    from urllib.parse import parse_qsl

    text = _text(raw, "form_not_utf8")
    try:
        pairs = parse_qsl(text, keep_blank_values=True, errors="strict", max_num_fields=_MAX_FIELDS)
    except (UnicodeDecodeError, ValueError):
        raise ApiError(400, "bad_request", reason="malformed_form") from None
    fields: dict[str, Any] = {}
    for key, value in pairs:
        _keep(fields, key, value)
    return fields


def _multipart_fields(raw: bytes, content_type: str) -> dict[str, Any]:
    # Imported here: only multipart posts pay for the parser.
    from python_multipart.exceptions import FormParserError
    from python_multipart.multipart import parse_form

    fields: dict[str, Any] = {}

    def on_field(part: Any) -> None:
        name = _text(part.field_name or b"", "multipart_not_utf8")
        _keep(fields, name, _text(part.value or b"", "multipart_not_utf8"))

    def on_file(part: Any) -> None:
        # Kept as a marker, so validation names it beside every other failing field.
        _keep(fields, _text(part.field_name or b"", "multipart_not_utf8"), FilePart())

    import io

    try:
        parse_form({"Content-Type": content_type.encode("latin-1")}, io.BytesIO(raw), on_field, on_file)
    except (FormParserError, ValueError, UnicodeEncodeError):
        raise ApiError(400, "bad_request", reason="malformed_multipart") from None
    # The parser silently drops a part cut off before the closing boundary: refuse, never store less.
    close = b"--" + media_type(content_type)[1].get("boundary", "").encode("latin-1") + b"--"
    if not (raw.startswith(close) or b"\r\n" + close in raw):
        raise ApiError(400, "bad_request", reason="multipart_truncated")
    return fields


def read_form(body: str | None, is_base64: bool, content_type: str | None) -> tuple[str, dict[str, Any]]:
    """The body's media type and its fields, or an ApiError (400, 413 or 415)."""
    raw = decoded_body(body, is_base64)
    if len(raw) > MAX_BODY_BYTES:
        raise ApiError(413, "payload_too_large", reason="body_size")
    kind, params = media_type(content_type)
    if kind not in FORM_TYPES and kind != JSON:
        raise ApiError(415, "unsupported_media_type", reason="content_type")
    charset = params.get("charset", "utf-8").lower()
    if kind != MULTIPART and charset not in _UTF8_CHARSETS:
        raise ApiError(
            415, "unsupported_media_type", message="Send the enquiry encoded as UTF-8.", reason="charset"
        )
    if kind == JSON:
        return kind, _json_fields(raw)
    if kind == URLENCODED:
        return kind, _urlencoded_fields(raw)
    if "boundary" not in params:
        raise ApiError(400, "bad_request", reason="multipart_without_boundary")
    return kind, _multipart_fields(raw, content_type or "")
