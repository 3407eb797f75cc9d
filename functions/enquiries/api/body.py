"""Reads a request body into form fields: base64, size, content type, then JSON / urlencoded / multipart.

Every way a body can be unreadable becomes an ApiError with the contract's status; nothing here
raises anything else for any input. Repeated fields are kept as lists so validation can name them.

The 32 KiB limit is on the form's content, so that the same enquiry is accepted however it is
encoded. The content is the UTF-8 bytes of every field name and every text value once decoded
(percent-encoding, JSON escapes, base64 or quoted-printable parts undone); a JSON value that is not
text counts as its compact JSON text (`true` is 4 bytes), and a file part counts only its name (it
is refused by name anyway). Over 32 KiB is a 413 `payload_too_large`.

Before any parsing, the raw body (after API Gateway's base64) is bounded at 128 KiB, also a 413:
percent-encoding triples a byte, and a `\\uXXXX` escape is at most three times the UTF-8 bytes of
the character it writes (6 for a 2-byte character, 12 for a 4-byte one as a surrogate pair), so
32 KiB of content takes at most 96 KiB in any of the three types; the rest covers the separators,
quotes and multipart boundaries and part headers of up to 100 fields. Only text written as
`\\u00XX` escapes of ASCII, which no common encoder writes, could need more.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from enquiries.api.errors import ApiError
from enquiries.validation import FilePart

MAX_CONTENT_BYTES = 32 * 1024
MAX_RAW_BODY_BYTES = 4 * MAX_CONTENT_BYTES
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
    # Cheap bounds before encoding or decoding a huge string: a character is at least one byte, and
    # four base64 characters carry three bytes.
    if len(body) > (MAX_RAW_BODY_BYTES if not is_base64 else (MAX_RAW_BODY_BYTES + 2) // 3 * 4):
        raise ApiError(413, "payload_too_large", reason="body_size")
    if not is_base64:
        raw = body.encode("utf-8", "surrogatepass")
    else:
        try:
            raw = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise ApiError(400, "bad_request", reason="bad_base64") from None
    if len(raw) > MAX_RAW_BODY_BYTES:
        raise ApiError(413, "payload_too_large", reason="body_size")
    return raw


def content_size(fields: dict[str, Any]) -> int:
    """The form's content in bytes, as the module docstring defines it."""
    return sum(_text_size(name) + _value_size(value) for name, value in fields.items())


def _text_size(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def _value_size(value: Any) -> int:
    if isinstance(value, str):
        return _text_size(value)
    if isinstance(value, list):  # a repeated field (or a JSON array): each value
        return sum(_value_size(item) for item in value)
    if isinstance(value, FilePart):
        return 0
    return _text_size(json.dumps(value, ensure_ascii=False, separators=(",", ":")))


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
    kind, fields = _read_fields(decoded_body(body, is_base64), content_type)
    try:
        too_large = content_size(fields) > MAX_CONTENT_BYTES
    except (ValueError, RecursionError):  # a JSON value too deep to write back: unreadable
        raise ApiError(400, "bad_request", reason="malformed_json") from None
    if too_large:
        raise ApiError(413, "payload_too_large", reason="content_size")
    return kind, fields


def _read_fields(raw: bytes, content_type: str | None) -> tuple[str, dict[str, Any]]:
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
