"""CORS: the function allows exactly what the contract and the deployed API (the template's
HttpApi CorsConfiguration, which API Gateway serves) allow, so the local server is no looser."""

from __future__ import annotations

from typing import Any

from support import ALLOWED_ORIGIN, Handler, load_event

from emulator.template_tables import load_template

# The contract's CORS section: a preflight allows POST and these request headers (the tests' own copy).
CONTRACT_METHODS = {"post"}
CONTRACT_REQUEST_HEADERS = {"content-type", "idempotency-key"}


def template_cors() -> dict[str, Any]:
    """The HttpApi's CorsConfiguration when AllowedOrigins is set (the !If's true branch)."""
    cors = load_template()["Resources"]["EnquiriesApi"]["Properties"]["CorsConfiguration"]
    condition, configuration, _ = cors["Fn::If"]
    assert condition == "HasAllowedOrigins"
    return dict(configuration)


def names(listed: str | list[str]) -> set[str]:
    """Header or method names from a CORS header value or a template list, compared without case."""
    items = listed.split(",") if isinstance(listed, str) else listed
    return {str(item).strip().lower() for item in items if str(item).strip()}


def cors_headers(response: dict[str, Any]) -> dict[str, str]:
    return {k.lower(): v for k, v in response["headers"].items() if k.lower().startswith("access-control-")}


def test_cors_preflight_allows_exactly_what_the_template_allows(handler: Handler) -> None:
    # Given the deployed API's CORS configuration, and a browser's preflight from the allowed site
    template = template_cors()
    event = load_event("preflight.json")

    # When the function answers the preflight (as it does locally and under sam local)
    response = handler(event)

    # Then it grants the same methods, request headers and cache time as API Gateway, and nothing more
    headers = cors_headers(response)
    assert response["statusCode"] == 204
    assert headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert names(headers["access-control-allow-methods"]) == names(template["AllowMethods"])
    assert names(headers["access-control-allow-headers"]) == names(template["AllowHeaders"])
    assert int(headers["access-control-max-age"]) == template["MaxAge"]
    assert "access-control-allow-credentials" not in headers
    assert "AllowCredentials" not in template


def test_cors_response_exposes_exactly_what_the_template_exposes(handler: Handler) -> None:
    # Given the deployed API's CORS configuration, and a post from the allowed site
    template = template_cors()

    # When the function answers it
    response = handler(load_event("submit-json.json"))

    # Then the page may read the same response headers as behind API Gateway (Retry-After)
    headers = cors_headers(response)
    assert response["statusCode"] == 201
    assert names(headers["access-control-expose-headers"]) == names(template["ExposeHeaders"])


def test_cors_preflight_allows_the_contracts_method_and_request_headers_only(handler: Handler) -> None:
    # Given a browser's preflight from the allowed site
    event = load_event("preflight.json")

    # When the function and the template are read
    headers = cors_headers(handler(event))
    template = template_cors()

    # Then both allow POST (and the preflight's own OPTIONS) with Content-Type and Idempotency-Key,
    # never headers the API does not read, such as Authorization or X-Api-Key
    for methods in (names(headers["access-control-allow-methods"]), names(template["AllowMethods"])):
        assert methods - {"options"} == CONTRACT_METHODS
    assert names(headers["access-control-allow-headers"]) == CONTRACT_REQUEST_HEADERS
    assert names(template["AllowHeaders"]) == CONTRACT_REQUEST_HEADERS
