"""The local server: `python -m devserver` end to end, and its API Gateway translation as pure functions."""

from __future__ import annotations

import base64
import html
import http.client
import json
import signal
import socket
import time
import urllib.request
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import parseaddr
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlencode, urlsplit

import boto3
import pytest
from moto import mock_aws

from devserver import apigw, environment, inspection, site
from devserver.launcher import READY_PREFIX, LocalServerProcess, ServerNotReady, local_server
from emulator import served_hosts

REPO = Path(__file__).resolve().parent.parent

RunningServer = LocalServerProcess


@pytest.fixture(scope="session")
def server() -> Iterator[RunningServer]:
    with local_server() as running:
        yield running


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def call(
    base_url: str, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> Reply:
    """One request, sent as given (no redirects followed, no path normalised)."""
    parts = urlsplit(base_url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=15)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
    finally:
        connection.close()


def post_json(base_url: str, payload: dict[str, Any]) -> Reply:
    body = json.dumps(payload).encode("utf-8")
    return call(base_url, "POST", "/enquiries", body, {"Content-Type": "application/json"})


def an_enquiry(**changes: Any) -> dict[str, Any]:
    enquiry: dict[str, Any] = {
        "name": "Ada Lovelace",
        "email": "ada@example.com",
        "message": f"My left knee hurts when I run ({uuid.uuid4()}).",
        "consent": True,
    }
    enquiry.update(changes)
    return enquiry


# -- the running server -----------------------------------------------------------------------------


def test_server_root_serves_the_demo_page_from_site(server: RunningServer) -> None:
    # Given the running local server
    # When a browser opens its root
    reply = call(server.url, "GET", "/")
    # Then it gets site/index.html, the demo page with the enquiry form
    assert reply.status == 200
    assert reply.headers["content-type"].startswith("text/html")
    assert reply.body == (REPO / "site" / "index.html").read_bytes()
    assert "<form" in reply.body.decode("utf-8")


def test_server_dev_enquiries_returns_a_json_list(server: RunningServer) -> None:
    # Given the running local server
    # When the stored enquiries are asked for
    reply = call(server.url, "GET", "/_dev/enquiries")
    # Then they come as a JSON list
    assert reply.status == 200
    assert reply.headers["content-type"] == "application/json"
    assert isinstance(reply.json(), list)


def test_server_dev_emails_returns_a_json_list(server: RunningServer) -> None:
    # Given the running local server
    # When the sent emails are asked for
    reply = call(server.url, "GET", "/_dev/emails")
    # Then they come as a JSON list
    assert reply.status == 200
    assert reply.headers["content-type"] == "application/json"
    assert isinstance(reply.json(), list)


def test_server_dev_views_refuse_other_methods(server: RunningServer) -> None:
    # Given the running local server
    # When something is POSTed to a developer view
    reply = call(server.url, "POST", "/_dev/enquiries", b"{}", {"Content-Type": "application/json"})
    # Then it is a 405 that says what is allowed
    assert reply.status == 405
    assert reply.headers["allow"] == "GET, HEAD"


def test_server_concurrent_posts_are_all_answered(server: RunningServer) -> None:
    # Given 20 different valid enquiries
    bodies = [json.dumps(an_enquiry(name=f"Visitor {number}")).encode("utf-8") for number in range(20)]

    def post(body: bytes) -> int:
        request = urllib.request.Request(
            server.url + "/enquiries", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status)

    # When they are all posted at once
    with ThreadPoolExecutor(max_workers=20) as pool:
        statuses = list(pool.map(post, bodies))
    # Then every one is answered, and stored
    assert statuses == [201] * 20


def test_server_valid_json_post_is_stored(server: RunningServer) -> None:
    # Given a valid enquiry
    enquiry = an_enquiry(phone="0800 987 5336")
    # When it is posted as JSON
    reply = post_json(server.url, enquiry)
    # Then it is a 201 with the id and a sentence, and the item is in the table
    assert reply.status == 201
    assert reply.headers["content-type"].startswith("application/json")
    created = reply.json()
    assert set(created) == {"id", "message"}
    items = {item["id"]: item for item in call(server.url, "GET", "/_dev/enquiries").json()}
    stored = items[created["id"]]
    assert stored["name"] == enquiry["name"]
    assert stored["email"] == enquiry["email"]
    assert stored["message"] == enquiry["message"]
    assert stored["consent"] is True
    assert stored["phone"] == "+448009875336"
    assert isinstance(stored["created_at"], str)
    assert isinstance(stored["expires_at"], int)


def test_server_html_form_post_is_stored(server: RunningServer) -> None:
    # Given what a plain HTML form sends, from a browser that accepts HTML
    marker = str(uuid.uuid4())
    form = {"name": "Bob", "email": "bob@example.com", "message": f"Back pain {marker}", "consent": "on"}
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "text/html,*/*;q=0.8"}
    # When it is posted
    reply = call(server.url, "POST", "/enquiries", urlencode(form).encode("ascii"), headers)
    # Then the visitor gets a page (or a redirect), and the enquiry is stored
    assert reply.status in (200, 303)
    messages = [item["message"] for item in call(server.url, "GET", "/_dev/enquiries").json()]
    assert f"Back pain {marker}" in messages


def test_server_own_origin_is_allowed(server: RunningServer) -> None:
    # Given a page served by the local server itself
    origin = server.url
    # When it posts with its Origin
    body = json.dumps(an_enquiry()).encode("utf-8")
    reply = call(
        server.url, "POST", "/enquiries", body, {"Content-Type": "application/json", "Origin": origin}
    )
    # Then the origin is allowed
    assert reply.status == 201
    assert reply.headers["access-control-allow-origin"] == origin


def test_server_on_ipv6_loopback_allows_posts_from_its_own_page() -> None:
    # Given a machine with an IPv6 loopback, and the local server started with --host ::1
    try:
        socket.create_server(("::1", 0), family=socket.AF_INET6).close()
    except OSError as error:
        pytest.skip(f"this machine has no IPv6 loopback: {error}")
    with local_server(host="::1") as running:
        # When its page, served at http://[::1]:PORT, posts an enquiry with that Origin
        page_origin = running.url
        body = json.dumps(an_enquiry()).encode("utf-8")
        headers = {"Content-Type": "application/json", "Origin": page_origin}
        reply = call(running.url, "POST", "/enquiries", body, headers)
    # Then the enquiry is stored, and the answer is readable by that page
    assert page_origin.startswith("http://[::1]:")
    assert reply.status == 201, reply.body
    assert reply.headers["access-control-allow-origin"] == page_origin


def test_server_log_never_contains_the_enquiry_text(server: RunningServer) -> None:
    # Given an enquiry with text that is easy to spot
    secret = f"confidential-symptom-{uuid.uuid4()}"
    # When it is posted, and a later request marks the end of its log lines
    assert post_json(server.url, an_enquiry(message=f"I have {secret}")).status == 201
    sync_path = f"/_dev/sync-{uuid.uuid4()}"
    call(server.url, "GET", sync_path)
    server.wait_for_output(sync_path)
    # Then the text is in no line of the server's output
    assert not [line for line in server.output if secret in line]


def emails_about(server: RunningServer, enquiry_ids: list[str], timeout: float = 2.0) -> list[dict[str, Any]]:
    """The emails sent about these enquiries, once each has one (or `timeout` passed), then a little
    longer, so a second email about one of them would show."""
    deadline = time.monotonic() + timeout
    while True:
        emails = [
            email
            for email in call(server.url, "GET", "/_dev/emails").json()
            if any(enquiry_id in email["text"] for enquiry_id in enquiry_ids)
        ]
        found = {enquiry_id for enquiry_id in enquiry_ids if any(enquiry_id in e["text"] for e in emails)}
        if found == set(enquiry_ids) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    time.sleep(0.6)  # more than two polls of the stream
    return [
        email
        for email in call(server.url, "GET", "/_dev/emails").json()
        if any(enquiry_id in email["text"] for enquiry_id in enquiry_ids)
    ]


def test_server_stored_enquiry_is_emailed_to_the_clinic_from_the_stream(server: RunningServer) -> None:
    # Given a valid enquiry with a non-ASCII name, a service and text that HTML must escape
    enquiry = an_enquiry(
        name="Zoë Smith",
        email="zoe@example.com",
        service="osteopathy",
        message=f"Knee <pain> ({uuid.uuid4()})",
    )
    # When it is posted as JSON
    reply = post_json(server.url, enquiry)
    assert reply.status == 201
    enquiry_id = reply.json()["id"]
    # Then within two seconds exactly one email about it went to the clinic, replying to the enquirer
    [email] = emails_about(server, [enquiry_id])
    assert email["to"] == ["clinic@example.com"]
    assert email["from"] == "Clinic website <enquiries@example.com>"
    assert [parseaddr(address)[1] for address in email["reply_to"]] == ["zoe@example.com"]
    assert email["subject"] == "New enquiry from Zoë Smith - Osteopathy"
    assert enquiry["message"] in email["text"]
    assert html.escape(enquiry["message"]) in email["html"]
    assert enquiry["message"] not in email["html"]
    assert "\r" not in email["text"]
    # And the item is marked notified, with SES's message id
    items = {item["id"]: item for item in call(server.url, "GET", "/_dev/enquiries").json()}
    assert isinstance(items[enquiry_id]["notified_at"], str)
    assert isinstance(items[enquiry_id]["ses_message_id"], str)
    assert items[enquiry_id]["ses_message_id"]


def test_server_concurrent_enquiries_get_one_email_each(server: RunningServer) -> None:
    # Given five different valid enquiries
    enquiries = [an_enquiry(name=f"Concurrent {number}") for number in range(5)]
    # When they are posted at once
    with ThreadPoolExecutor(max_workers=5) as pool:
        replies = list(pool.map(lambda enquiry: post_json(server.url, enquiry), enquiries))
    assert [reply.status for reply in replies] == [201] * 5
    ids = [reply.json()["id"] for reply in replies]
    # Then there are exactly five emails, one per enquiry
    emails = emails_about(server, ids)
    assert len(emails) == 5
    assert sorted(next(i for i in ids if i in email["text"]) for email in emails) == sorted(ids)


def stored_with_message(server: RunningServer, message: str) -> list[dict[str, Any]]:
    return [item for item in call(server.url, "GET", "/_dev/enquiries").json() if item["message"] == message]


def test_server_concurrent_same_idempotency_key_stores_and_emails_once(server: RunningServer) -> None:
    # Given six identical requests with one Idempotency-Key (a retrying phone), sent at once
    enquiry = an_enquiry()
    body = json.dumps(enquiry).encode()
    headers = {"Content-Type": "application/json", "Idempotency-Key": str(uuid.uuid4())}

    # When they reach the local server together
    with ThreadPoolExecutor(max_workers=6) as pool:
        replies = list(pool.map(lambda _: call(server.url, "POST", "/enquiries", body, headers), range(6)))

    # Then all get the first response, one enquiry is stored and one email is sent
    assert [reply.status for reply in replies] == [201] * 6
    assert len({reply.body for reply in replies}) == 1
    [item] = stored_with_message(server, enquiry["message"])
    assert len(emails_about(server, [item["id"]])) == 1


def test_server_double_click_in_parallel_stores_and_emails_once(server: RunningServer) -> None:
    # Given the same enquiry, without a key, posted four times at once (an impatient double click)
    enquiry = an_enquiry()

    # When the posts reach the local server together
    with ThreadPoolExecutor(max_workers=4) as pool:
        replies = list(pool.map(lambda _: post_json(server.url, enquiry), range(4)))

    # Then all get the same answer, one enquiry is stored and one email is sent
    assert [reply.status for reply in replies] == [201] * 4
    assert len({reply.json()["id"] for reply in replies}) == 1
    [item] = stored_with_message(server, enquiry["message"])
    assert len(emails_about(server, [item["id"]])) == 1


def test_server_honeypot_stores_and_emails_nothing(server: RunningServer) -> None:
    # Given a bot's post with the hidden field filled
    enquiry = an_enquiry(_gotcha="https://cheap-pills.example")

    # When it is posted
    reply = post_json(server.url, enquiry)

    # Then it looks accepted, but nothing is stored or emailed
    assert reply.status == 201
    assert stored_with_message(server, enquiry["message"]) == []
    assert emails_about(server, [reply.json()["id"]], timeout=0.5) == []


def all_emails_once_there_are(
    server: RunningServer, count: int, timeout: float = 5.0
) -> list[dict[str, Any]]:
    """Every email sent, once there are `count` (or `timeout` passed), then a little longer, so that
    one more would show."""
    deadline = time.monotonic() + timeout
    while len(call(server.url, "GET", "/_dev/emails").json()) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.6)  # more than two polls of the stream
    emails: list[dict[str, Any]] = call(server.url, "GET", "/_dev/emails").json()
    return emails


@pytest.mark.slow
def test_server_with_acknowledgements_two_enquiries_from_one_address_give_three_emails() -> None:
    # Given the local server started as `ACKNOWLEDGE_ENQUIRER=true make dev` starts it
    with local_server({"ACKNOWLEDGE_ENQUIRER": "true"}) as running:
        # When two enquiries come from one address, written two ways, with words of the visitor's own
        first = post_json(running.url, an_enquiry(email="ada@example.com", message="Zebulon's knee hurts."))
        second = post_json(running.url, an_enquiry(email="Ada@Example.com", message="And the other knee."))
        assert (first.status, second.status) == (201, 201)
        emails = all_emails_once_there_are(running, 3)
        items = {item["id"]: item for item in call(running.url, "GET", "/_dev/enquiries").json()}

    # Then the clinic got both, and the enquirer one acknowledgement, in /_dev/emails like any other:
    # To the address alone, Reply-To the clinic, naming the clinic, with none of the visitor's words
    assert len(emails) == 3
    clinic = [email for email in emails if email["to"] == ["clinic@example.com"]]
    [patient] = [email for email in emails if email["to"] == ["ada@example.com"]]
    assert len(clinic) == 2
    assert patient["reply_to"] == ["clinic@example.com"]
    assert patient["from"] == "Clinic website <enquiries@example.com>"
    assert patient["subject"] == "Your enquiry to Example Clinic has been received"
    for part in (patient["text"], patient["html"]):
        assert "not for emergencies" in part
        assert "Zebulon" not in part
        assert "Ada Lovelace" not in part
    # And the enquiries record it: the first sent, the second held back by the one-a-day limit
    outcomes = [items[reply.json()["id"]]["acknowledgement"] for reply in (first, second)]
    assert outcomes == ["sent", "address_limit"]


def test_server_dev_dead_letters_returns_a_json_list(server: RunningServer) -> None:
    # Given the running local server
    # When the notifier's dead letters are asked for
    reply = call(server.url, "GET", "/_dev/dead-letters")
    # Then they come as a JSON list
    assert reply.status == 200
    assert reply.headers["content-type"] == "application/json"
    assert isinstance(reply.json(), list)


def test_server_notifier_log_never_contains_the_enquiry_text(server: RunningServer) -> None:
    # Given an enquiry with text that is easy to spot
    secret = f"confidential-symptom-{uuid.uuid4()}"
    # When it is posted and emailed, and a later request marks the end of its log lines
    reply = post_json(server.url, an_enquiry(message=f"I have {secret}"))
    assert reply.status == 201
    assert emails_about(server, [reply.json()["id"]])
    sync_path = f"/_dev/sync-{uuid.uuid4()}"
    call(server.url, "GET", sync_path)
    server.wait_for_output(sync_path)
    # Then the notifier ran, and the text is in no line of the server's output
    assert any("NotifyEnquiryFunction" in line for line in server.output)
    assert not [line for line in server.output if secret in line]


@pytest.mark.parametrize(
    "path",
    ["/../pyproject.toml", "/%2e%2e/pyproject.toml", "/..%2fpyproject.toml", "/.git/config", "/%00"],
)
def test_server_static_files_refuse_path_traversal(server: RunningServer, path: str) -> None:
    # Given the running local server, and files outside site/
    # When a path tries to climb out of site/
    reply = call(server.url, "GET", path)
    # Then nothing is served
    assert reply.status == 404
    assert b"[project]" not in reply.body


def test_server_stops_cleanly_on_interrupt() -> None:
    # Given a freshly started local server
    server = LocalServerProcess()
    server.wait_ready()
    # When it gets Ctrl-C
    server.process.send_signal(signal.SIGINT)
    # Then it stops promptly, successfully
    assert server.wait_exit() == 0


def test_launcher_stop_leaves_the_output_complete_and_its_pipe_closed() -> None:
    # Given a local server that started
    with local_server() as running:
        pass

    # When the block has stopped it
    # Then its output is read to the end, and the pipe it came through is closed (no open file is left
    # for the garbage collector, which would warn)
    assert running.process.returncode is not None
    assert running.process.stdout is not None
    assert running.process.stdout.closed
    assert any(line.startswith(READY_PREFIX) for line in running.output)


def test_server_bad_setting_stops_start_with_its_name() -> None:
    # Given a malformed setting
    server = LocalServerProcess({"ALLOWED_ORIGINS": "not-an-origin"})
    # When the server starts
    with pytest.raises(ServerNotReady) as not_ready:
        server.wait_ready(timeout=60)
    # Then it exits with an error that names the setting, and never says it is ready
    assert server.wait_exit() == 1
    assert "ALLOWED_ORIGINS" in str(not_ready.value)
    assert READY_PREFIX not in str(not_ready.value)


# -- the event builder ----------------------------------------------------------------------------


def _event(**changes: Any) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "method": "POST",
        "target": "/enquiries",
        "headers": [("Content-Type", "application/json")],
        "body": b'{"name": "Ada"}',
        "source_ip": "203.0.113.9",
        "domain_name": "127.0.0.1:3000",
        "now": 1_700_000_000.123,
        "request_id": "req-1",
    }
    arguments.update(changes)
    now, request_id = arguments.pop("now"), arguments.pop("request_id")
    return apigw.build_event(apigw.HttpRequest(**arguments), now=now, request_id=request_id)


def test_build_event_lowercases_header_names_and_joins_repeats() -> None:
    # Given headers in mixed case, one of them repeated
    headers = [("Content-Type", "application/json"), ("X-Thing", "a"), ("x-thing", "b"), ("Accept", "*/*")]
    # When the event is built
    event = _event(headers=headers)
    # Then names are lowercased and repeats joined with commas
    assert event["headers"]["content-type"] == "application/json"
    assert event["headers"]["x-thing"] == "a,b"
    assert event["headers"]["accept"] == "*/*"
    assert all(name == name.lower() for name in event["headers"])


def test_build_event_has_the_payload_v2_shape() -> None:
    # Given a JSON POST
    # When the event is built
    event = _event(headers=[("Content-Type", "application/json"), ("User-Agent", "curl/8")])
    # Then it is shaped like API Gateway's HTTP API payload 2.0
    assert event["version"] == "2.0"
    assert event["routeKey"] == "$default"
    assert event["rawPath"] == "/enquiries"
    assert event["rawQueryString"] == ""
    context = event["requestContext"]
    assert context["http"] == {
        "method": "POST",
        "path": "/enquiries",
        "protocol": "HTTP/1.1",
        "sourceIp": "203.0.113.9",
        "userAgent": "curl/8",
    }
    assert context["stage"] == "$default"
    assert context["requestId"] == "req-1"
    assert context["timeEpoch"] == 1_700_000_000_123
    assert context["time"] == "14/Nov/2023:22:13:20 +0000"
    assert "queryStringParameters" not in event
    assert "cookies" not in event


def test_build_event_keeps_json_bodies_as_text() -> None:
    # Given a JSON body with non-ASCII text
    body = json.dumps({"name": "Zoë"}, ensure_ascii=False).encode("utf-8")
    # When the event is built
    event = _event(body=body)
    # Then the body is the text itself
    assert event["isBase64Encoded"] is False
    assert event["body"] == '{"name": "Zoë"}'


@pytest.mark.parametrize(
    "content_type",
    [
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=xyz",
        "Application/X-WWW-Form-Urlencoded",
    ],
)
def test_build_event_base64_encodes_form_bodies(content_type: str) -> None:
    # Given a form body
    body = b"name=Ada&message=hello"
    # When the event is built
    event = _event(headers=[("Content-Type", content_type)], body=body)
    # Then, as API Gateway does, the body is base64-encoded
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == body


def test_build_event_base64_encodes_bodies_that_are_not_utf8() -> None:
    # Given a body that is not UTF-8 text
    body = b'{"name": "\xff\xfe"}'
    # When the event is built
    event = _event(body=body)
    # Then it is base64-encoded
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == body


def test_build_event_takes_source_ip_from_client_address() -> None:
    # Given a client that claims another address in X-Forwarded-For
    headers = [("Content-Type", "application/json"), ("X-Forwarded-For", "198.51.100.1")]
    # When the event is built for the socket's client address
    event = _event(headers=headers, source_ip="192.0.2.44")
    # Then sourceIp is the socket's address, appended to the forwarded chain as API Gateway does
    assert event["requestContext"]["http"]["sourceIp"] == "192.0.2.44"
    assert event["headers"]["x-forwarded-for"] == "198.51.100.1, 192.0.2.44"


def test_build_event_moves_cookies_and_parses_the_query_string() -> None:
    # Given cookies and a query string with a repeated key
    headers = [("Cookie", "a=1; b=2"), ("Cookie", "c=3")]
    # When the event is built
    event = _event(method="get", target="/enquiries?x=1&x=2&y=%C3%A9", headers=headers, body=b"")
    # Then cookies are listed apart, and parameters decoded with repeats joined
    assert event["cookies"] == ["a=1", "b=2", "c=3"]
    assert "cookie" not in event["headers"]
    assert event["rawPath"] == "/enquiries"
    assert event["rawQueryString"] == "x=1&x=2&y=%C3%A9"
    assert event["queryStringParameters"] == {"x": "1,2", "y": "é"}
    assert event["requestContext"]["http"]["method"] == "GET"
    assert "body" not in event
    assert event["isBase64Encoded"] is False


# -- the response writer --------------------------------------------------------------------------


def test_to_http_response_writes_status_headers_cookies_and_body() -> None:
    # Given a full Lambda result
    result = {
        "statusCode": 422,
        "headers": {"Content-Type": "application/json", "Vary": "Origin"},
        "multiValueHeaders": {"X-Many": ["1", "2"]},
        "cookies": ["a=1; Path=/", "b=2"],
        "body": '{"error": "validation_failed"}',
        "isBase64Encoded": False,
    }
    # When it becomes an HTTP response
    response = apigw.to_http_response(result)
    # Then everything is carried over, cookies as Set-Cookie lines
    assert response.status == 422
    assert ("Content-Type", "application/json") in response.headers
    assert ("Vary", "Origin") in response.headers
    assert [value for name, value in response.headers if name == "X-Many"] == ["1", "2"]
    assert [value for name, value in response.headers if name == "Set-Cookie"] == ["a=1; Path=/", "b=2"]
    assert response.body == b'{"error": "validation_failed"}'


def test_to_http_response_decodes_base64_bodies() -> None:
    # Given a base64-encoded result body
    result = {
        "statusCode": 200,
        "body": base64.b64encode(b"\x00\x01binary").decode(),
        "isBase64Encoded": True,
    }
    # When it becomes an HTTP response
    response = apigw.to_http_response(result)
    # Then the body is the decoded bytes
    assert response.body == b"\x00\x01binary"


def test_to_http_response_takes_a_plain_result_as_json() -> None:
    # Given a result with no statusCode
    result = {"hello": "world"}
    # When it becomes an HTTP response
    response = apigw.to_http_response(result)
    # Then, by the payload 2.0 rules, it is a 200 JSON body
    assert response.status == 200
    assert response.header("content-type") == "application/json"
    assert json.loads(response.body) == {"hello": "world"}


def test_to_http_response_without_body_is_empty() -> None:
    # Given a preflight-style result with no body
    # When it becomes an HTTP response
    response = apigw.to_http_response({"statusCode": 204, "headers": {"Allow": "OPTIONS, POST"}})
    # Then the body is empty
    assert response.status == 204
    assert response.body == b""


# -- what a developer trying the form meets ---------------------------------------------------------


def test_server_default_has_no_rate_limit_and_says_data_is_kept_in_memory(server: RunningServer) -> None:
    # Given the local server as `make dev` starts it (no RATE_LIMIT_PER_HOUR in the environment)
    # When one address sends more enquiries than the deployed limit of 10 an hour
    replies = [post_json(server.url, an_enquiry()) for _ in range(12)]
    # Then each is stored, and the start line said the limit is off and that nothing survives a stop
    assert [reply.status for reply in replies] == [201] * 12
    started = "".join(server.output)
    assert "kept in memory and lost when the server stops" in started
    assert "rate limit off (RATE_LIMIT_PER_HOUR=0; RATE_LIMIT_PER_HOUR=10 make dev turns it on" in started


def test_server_rate_limit_set_by_the_developer_applies_and_is_announced() -> None:
    # Given a local server started with RATE_LIMIT_PER_HOUR=2
    with local_server({"RATE_LIMIT_PER_HOUR": "2"}) as running:
        # When one address sends three enquiries
        statuses = [post_json(running.url, an_enquiry()).status for _ in range(3)]
    # Then the third is refused as over the limit, and the start line said the limit is on
    assert statuses == [201, 201, 429]
    assert "rate limit on: RATE_LIMIT_PER_HOUR=2" in "".join(running.output)


def test_server_output_does_not_announce_withheld_library_lines(server: RunningServer) -> None:
    # Given the running local server, which has made its AWS clients and stored an enquiry
    assert post_json(server.url, an_enquiry()).status == 201
    server.wait_for_output("POST /enquiries 201")
    # When its output is read
    output = "".join(server.output)
    # Then no library's INFO line is there as a "withheld" sentence (botocore says one per client)
    assert "log line withheld" not in output


# -- the handlers' environment ---------------------------------------------------------------------


def test_handler_environment_defaults_every_required_setting() -> None:
    # Given an empty environment
    # When the handlers' environment is worked out
    changes = environment.handler_environment(
        {}, aws_endpoint="http://127.0.0.1:5999", origins=["http://a:1"]
    )
    # Then AWS points at the emulator, and every required setting has a working value
    assert changes["AWS_ENDPOINT_URL"] == "http://127.0.0.1:5999"
    assert changes["AWS_ACCESS_KEY_ID"] == changes["AWS_SECRET_ACCESS_KEY"] == "testing"
    assert changes["AWS_ACCOUNT_ID_ENDPOINT_MODE"] == "disabled"
    assert changes["AWS_DEFAULT_REGION"] == changes["AWS_REGION"] == "eu-west-2"
    assert changes["TABLE_NAME"] == "enquiries"
    assert changes["CLINIC_EMAIL"] == "clinic@example.com"
    assert changes["SENDER_EMAIL"] == "Clinic website <enquiries@example.com>"
    assert changes["CLINIC_NAME"] == "Example Clinic"  # needed by ACKNOWLEDGE_ENQUIRER=true
    assert changes["ALLOWED_ORIGINS"] == "http://a:1"


@pytest.mark.parametrize(
    ("host", "origins"),
    [
        ("127.0.0.1", ["http://127.0.0.1:3000", "http://localhost:3000"]),
        ("0.0.0.0", ["http://127.0.0.1:3000", "http://localhost:3000"]),  # noqa: S104 - a name, not a bind
        ("LocalHost", ["http://localhost:3000", "http://127.0.0.1:3000"]),
        ("::1", ["http://[::1]:3000", "http://localhost:3000"]),
        ("[::1]", ["http://[::1]:3000", "http://localhost:3000"]),
        ("0:0:0:0:0:0:0:1", ["http://[::1]:3000", "http://localhost:3000"]),
        ("::", ["http://[::1]:3000", "http://127.0.0.1:3000", "http://localhost:3000"]),
        ("FE80::0:1", ["http://[fe80::1]:3000"]),
        ("192.0.2.7", ["http://192.0.2.7:3000"]),
        ("Dev.Example", ["http://dev.example:3000"]),
        ("0", ["http://127.0.0.1:3000", "http://localhost:3000"]),
        ("127.1", ["http://127.0.0.1:3000", "http://localhost:3000"]),
        ("::0", ["http://[::1]:3000", "http://127.0.0.1:3000", "http://localhost:3000"]),
        ("[::0]", ["http://[::1]:3000", "http://127.0.0.1:3000", "http://localhost:3000"]),
    ],
)
def test_own_origins_are_where_a_browser_reaches_the_server_written_as_it_sends_them(
    host: str, origins: list[str]
) -> None:
    # Given the address the local server listens on
    # When its own origins are worked out
    # Then they are the origins a browser sends from its page there (IPv6 in brackets, compressed)
    assert environment.own_origins(host, 3000) == origins


def test_handler_environment_keeps_user_settings_and_appends_own_origin() -> None:
    # Given a developer's own settings, and a profile that must not reach real AWS
    current = {
        "TABLE_NAME": "mine",
        "ALLOWED_ORIGINS": "https://www.example.com, http://localhost:3000",
        "AWS_REGION": "us-east-1",
        "AWS_PROFILE": "production",
        "AWS_ENDPOINT_URL_DYNAMODB": "https://dynamodb.us-east-1.amazonaws.com",
    }
    origins = environment.own_origins("127.0.0.1", 3000)
    # When the handlers' environment is worked out
    changes = environment.handler_environment(current, aws_endpoint="http://127.0.0.1:1", origins=origins)
    # Then the settings stay, the server's origins are added once, and the real-AWS pointers go
    assert "TABLE_NAME" not in changes
    assert changes["ALLOWED_ORIGINS"] == "https://www.example.com,http://localhost:3000,http://127.0.0.1:3000"
    assert changes["AWS_DEFAULT_REGION"] == "us-east-1"
    assert "AWS_REGION" not in changes
    assert changes["AWS_PROFILE"] is None
    assert changes["AWS_ENDPOINT_URL_DYNAMODB"] is None


# -- the static site ------------------------------------------------------------------------------


def test_site_resolve_serves_files_and_refuses_to_leave_the_root(tmp_path: Path) -> None:
    # Given a site folder beside a secret
    root = tmp_path / "site"
    (root / "js").mkdir(parents=True)
    (root / "index.html").write_text("<form></form>")
    (root / "js" / "form.js").write_text("// js")
    (root / ".env").write_text("SECRET=1")
    (tmp_path / "secret.txt").write_text("secret")
    (root / "link.txt").symlink_to(tmp_path / "secret.txt")
    # When paths are resolved
    # Then files inside are found, and nothing outside (or hidden) is
    assert site.resolve(root, "/") == (root / "index.html").resolve()
    assert site.resolve(root, "/js/form.js") == (root / "js" / "form.js").resolve()
    for path in ("/../secret.txt", "/%2e%2e/secret.txt", "/js/..%2f..%2fsecret.txt", "/.env", "/link.txt"):
        assert site.resolve(root, path) is None, path
    assert site.resolve(root, "/missing.js") is None


def test_site_content_type_names_scripts_and_pages() -> None:
    # Given files of the usual kinds
    # When their content types are chosen
    # Then browsers get what they need to run and render them
    assert site.content_type(Path("enquiry-form.js")) == "text/javascript; charset=utf-8"
    assert site.content_type(Path("index.html")) == "text/html; charset=utf-8"
    assert site.content_type(Path("style.css")) == "text/css; charset=utf-8"
    assert site.content_type(Path("logo.png")) == "image/png"
    assert site.content_type(Path("blob.unknownext")) == "application/octet-stream"


# -- the developer views --------------------------------------------------------------------------


def test_plain_items_turns_numbers_into_ints_and_sorts_by_created_at() -> None:
    # Given two items as DynamoDB returns them, newest first
    raw: list[dict[str, Any]] = [
        {"id": {"S": "b"}, "created_at": {"S": "2025-01-02T00:00:00Z"}, "expires_at": {"N": "1767312000"}},
        {"id": {"S": "a"}, "created_at": {"S": "2025-01-01T00:00:00Z"}, "consent": {"BOOL": True}},
    ]
    # When they are made plain
    items = inspection.plain_items(raw)
    # Then they are plain JSON, oldest first
    assert items == [
        {"id": "a", "created_at": "2025-01-01T00:00:00Z", "consent": True},
        {"id": "b", "created_at": "2025-01-02T00:00:00Z", "expires_at": 1767312000},
    ]
    assert type(items[1]["expires_at"]) is int


def _notification() -> EmailMessage:
    message = EmailMessage()
    message["From"] = "Clinic website <enquiries@example.com>"
    message["To"] = "clinic@example.com"
    message["Reply-To"] = "Zoë Smith <zoe@example.com>"
    message["Subject"] = "New enquiry from Zoë Smith - Osteopathy"
    message.set_content("Name: Zoë Smith\n")
    message.add_alternative("<p>Name: Zoë Smith</p>\n", subtype="html")
    return message


def test_email_view_reads_a_raw_mime_message() -> None:
    # Given a raw message as moto's SES records it
    sent = SimpleNamespace(
        source="enquiries@example.com",
        destinations=["clinic@example.com"],
        raw_data=_notification().as_string(),
    )
    # When it is viewed
    view = inspection.email_view(sent)
    # Then every part of it is there, decoded
    assert view == {
        "to": ["clinic@example.com"],
        "from": "Clinic website <enquiries@example.com>",
        "reply_to": ["Zoë Smith <zoe@example.com>"],
        "subject": "New enquiry from Zoë Smith - Osteopathy",
        "text": "Name: Zoë Smith\n",
        "html": "<p>Name: Zoë Smith</p>\n",
    }


def test_sent_emails_lists_what_went_through_moto_ses(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given moto's SES with a verified sender, and a notification sent through SESv2 as raw MIME
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "eu-west-2",
        "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        boto3.client("ses").verify_email_identity(EmailAddress="enquiries@example.com")
        boto3.client("sesv2").send_email(
            FromEmailAddress="Clinic website <enquiries@example.com>",
            Destination={"ToAddresses": ["clinic@example.com"]},
            Content={"Raw": {"Data": _notification().as_bytes()}},
        )
        # When the sent emails are listed
        emails = inspection.sent_emails()
    # Then the notification is there, with its parts
    assert len(emails) == 1
    assert emails[0]["to"] == ["clinic@example.com"]
    assert emails[0]["reply_to"] == ["Zoë Smith <zoe@example.com>"]
    assert emails[0]["subject"] == "New enquiry from Zoë Smith - Osteopathy"
    assert emails[0]["html"] == "<p>Name: Zoë Smith</p>\n"


def port_of(url: str) -> int:
    return int(urlsplit(url).port or 80)


@pytest.mark.parametrize("path", ["/_dev/enquiries", "/_dev/aws", "/", "/enquiries"])
@pytest.mark.parametrize(
    "host", ["rebound.example:{port}", "rebound.example", "127.0.0.1:1", "127.0.0.1.nip.io:{port}"]
)
def test_server_refuses_a_request_addressed_to_another_host(
    server: RunningServer, path: str, host: str
) -> None:
    # Given the running local server, and a page whose name was made to resolve to it (DNS rebinding)
    # When that page's request arrives with its own name in Host
    reply = call(server.url, "GET", path, headers={"Host": host.format(port=port_of(server.url))})
    # Then nothing is served: the stored enquiries stay unread
    assert reply.status == 403
    assert reply.json()["error"] == "host_not_served"


def test_server_refuses_a_request_with_two_hosts(server: RunningServer) -> None:
    # Given the running local server
    port = port_of(server.url)
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        # When a request names its own address and another host
        connection.putrequest("GET", "/_dev/enquiries", skip_host=True)
        connection.putheader("Host", f"127.0.0.1:{port}")
        connection.putheader("Host", f"rebound.example:{port}")
        connection.endheaders()
        response = connection.getresponse()
        status = response.status
        response.read()
    finally:
        connection.close()
    # Then it is refused
    assert status == 403


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "LOCALHOST:{port}", "127.1:{port}"])
def test_server_answers_its_own_address_however_it_is_written(server: RunningServer, host: str) -> None:
    # Given the running local server on 127.0.0.1
    # When a request names that address in Host, in any spelling of it
    reply = call(
        server.url, "GET", "/_dev/enquiries", headers={"Host": host.format(port=port_of(server.url))}
    )
    # Then it is served
    assert reply.status == 200


@pytest.mark.parametrize(
    "browser_headers",
    [
        {"Origin": "http://attacker.example"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Origin": "http://attacker.example", "Sec-Fetch-Site": "cross-site"},
    ],
)
def test_server_dev_routes_refuse_other_pages(server: RunningServer, browser_headers: dict[str, str]) -> None:
    # Given the running local server, and another site's page the developer has open
    # When that page sends a form's text/plain POST to invoke the notifier, and reads the enquiries
    aws = call(server.url, "GET", "/_dev/aws").json()
    invocation = f"/_dev/lambda/2015-03-31/functions/{aws['notify_function_name']}/invocations"
    headers = {"Content-Type": "text/plain", **browser_headers}
    invoked = call(server.url, "POST", invocation, b'{"Records": []}', headers)
    read = call(server.url, "GET", "/_dev/enquiries", headers=browser_headers)
    # Then both are refused, and neither answer lets a browser share it with the page
    assert (invoked.status, read.status) == (403, 403)
    assert read.json()["error"] == "cross_site_refused"
    for reply in (invoked, read):
        assert not [name for name in reply.headers if name.startswith("access-control-")]


@pytest.mark.parametrize(
    "browser_headers", [{"Sec-Fetch-Site": "same-origin"}, {"Sec-Fetch-Site": "none"}, {}]
)
def test_server_dev_routes_answer_its_own_page_and_scripts(
    server: RunningServer, browser_headers: dict[str, str]
) -> None:
    # Given the running local server
    # When its own page (or a typed address, or a script) asks for the stored enquiries
    headers = {"Origin": server.url, **browser_headers} if browser_headers else {}
    reply = call(server.url, "GET", "/_dev/enquiries", headers=headers)
    # Then it is answered, without CORS headers
    assert reply.status == 200
    assert not [name for name in reply.headers if name.startswith("access-control-")]


def test_server_emulator_answers_no_web_page(server: RunningServer) -> None:
    # Given the running local server's emulator
    endpoint = call(server.url, "GET", "/_dev/aws").json()["endpoint_url"]
    # When another page asks for a CORS preflight, reads it directly, or reaches it by DNS rebinding
    preflight = call(
        endpoint,
        "OPTIONS",
        "/",
        headers={"Origin": "http://attacker.example", "Access-Control-Request-Method": "POST"},
    )
    simple = call(endpoint, "POST", "/", b"Action=ListQueues", {"Origin": "http://attacker.example"})
    rebound = call(endpoint, "GET", "/", headers={"Host": f"rebound.example:{port_of(endpoint)}"})
    # Then every one is refused, and no answer names an allowed origin
    assert (preflight.status, simple.status, rebound.status) == (403, 403, 403)
    for reply in (preflight, simple, rebound):
        assert not [name for name in reply.headers if name.startswith("access-control-")]


def test_server_started_on_an_address_shorthand_serves_the_address_it_means() -> None:
    # Given the local server started with --host 127.1 (inet_aton's spelling of 127.0.0.1)
    with local_server(host="127.1") as running:
        # When its page posts an enquiry, and asks for the stored ones
        body = json.dumps(an_enquiry()).encode("utf-8")
        posted = call(
            running.url,
            "POST",
            "/enquiries",
            body,
            {"Content-Type": "application/json", "Origin": running.url},
        )
        read = call(running.url, "GET", "/_dev/enquiries", headers={"Origin": running.url})
        output = "".join(running.output)
    # Then it is the loopback server at 127.0.0.1, quietly: both are answered
    assert running.url.startswith("http://127.0.0.1:")
    assert (posted.status, read.status) == (201, 200)
    assert "REACHABLE FROM THE NETWORK" not in output


@pytest.mark.parametrize(
    ("host", "loopback_only"),
    [
        ("127.0.0.1", True),
        ("127.1", True),
        ("::1", True),
        ("[::1]", True),
        ("0:0:0:0:0:0:0:1", True),
        ("localhost", True),
        ("0", False),
        ("0.0.0.0", False),  # noqa: S104 - a name, not a bind
        ("::", False),
        ("::0", False),
        ("[::]", False),
        ("192.0.2.7", False),
        ("dev.example", False),
    ],
)
def test_is_loopback_only_compares_addresses_not_spellings(host: str, loopback_only: bool) -> None:
    # Given an address the local server is told to listen on
    # When it decides whether to warn that it is reachable from the network
    # Then the address is judged by what it means
    assert served_hosts.is_loopback_only(host) is loopback_only


@pytest.mark.parametrize(
    ("header", "served"),
    [
        ("127.0.0.1:3000", True),
        ("[::1]:3000", True),
        ("[0:0::1]:3000", True),
        ("localhost:3000", True),
        ("127.0.0.1", False),
        ("127.0.0.1:3001", False),
        ("127.0.0.1:3000:3000", False),
        ("[::1:3000", False),
        ("::1:3000", False),
        ("", False),
        (None, False),
        (":3000", False),
        ("127.0.0.1:３０００", False),
    ],
)
def test_host_is_served_compares_parsed_addresses(header: str | None, served: bool) -> None:
    # Given a server reached as 127.0.0.1, [::1] and localhost on port 3000
    # When a request's Host header is checked
    # Then only those hosts on that port are served, however the address is written
    assert served_hosts.host_is_served(header, ["127.0.0.1", "::1", "localhost"], 3000) is served


def test_server_requirements_are_what_make_dev_needs_without_the_test_tools() -> None:
    from scripts.upgrade_check import pins

    # Given the local server's requirements (what `make dev` installs) and the development ones
    server = pins(REPO / "requirements-server.txt")
    development = pins(REPO / "requirements.txt")
    # When they are compared
    # Then the server's hold the emulator, the template reader and the command, and no test or lint
    # tool, and the development requirements hold every one of the server's pins, at the same version
    assert {"moto", "pyyaml", "click", "boto3", "aws-lambda-powertools"} <= set(server)
    assert not {"pytest", "coverage", "ruff", "mypy", "playwright", "cfn-lint", "hypothesis"} & set(server)
    assert {name: development[name] for name in server} == server
