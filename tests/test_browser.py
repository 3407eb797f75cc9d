"""The demo page and site/enquiry-form.js in a real Chromium, against `python -m devserver` in a subprocess.

Debian's Chromium (/usr/bin/chromium, installed by .ci/run) is driven by Playwright for Python; no
browser is ever downloaded. Without it the tests are skipped locally, and fail in CI.
"""

from __future__ import annotations

import json
import os
import re
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devserver.launcher import ServerNotReady, local_server

# End to end: a local server and a browser (`-m "not slow"` leaves them out).
pytestmark = [pytest.mark.browser, pytest.mark.slow]

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
UUID_PATTERN = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
UNAVAILABLE_BODY = {
    "error": "unavailable",
    "message": (
        "We could not save your enquiry just now. Please try again in a minute, or call us on 01632 960123."
    ),
    "reference": "5e0c8f1a-2b7d-4c1e-9f3a-7d6b2a4c9e10",
}


# -- fixtures: the browser, the server, a page ------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def _chromium_present() -> None:
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing: install Debian's chromium package (bash .ci/run does)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    try:
        with local_server() as running:
            yield running.url
    except ServerNotReady as not_ready:
        pytest.fail(str(not_ready))


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any, server: str) -> Iterator[Any]:
    context = browser.new_context()
    context.set_default_timeout(5_000)
    page = context.new_page()
    page.goto(server + "/")
    yield page
    context.close()


@pytest.fixture
def page_without_js(browser: Any, server: str) -> Iterator[Any]:
    context = browser.new_context(java_script_enabled=False)
    context.set_default_timeout(5_000)
    page = context.new_page()
    page.goto(server + "/")
    yield page
    context.close()


# -- helpers -----------------------------------------------------------------------------------------


def stored_enquiries(server: str, marker: str) -> list[dict[str, Any]]:
    """The stored items whose message holds `marker` (GET /_dev/enquiries)."""
    with urllib.request.urlopen(server + "/_dev/enquiries", timeout=10) as response:
        items: list[dict[str, Any]] = json.load(response)
    return [item for item in items if marker in item.get("message", "")]


def fill_enquiry(page: Any, marker: str, **changes: str) -> None:
    """Fill the demo form as a visitor would: valid values, with `changes` by label."""
    values = {
        "Your name": "Jane Doe",
        "Email address": "jane.doe@example.com",
        "Phone number (optional)": "0800 987 5336",
        "Your message": f"My lower back has been stiff since a half marathon ({marker}).",
    }
    values.update(changes)
    for label, value in values.items():
        page.get_by_label(label, exact=True).fill(value)
    page.get_by_label("Service (optional)").select_option("Sports Massage")
    page.get_by_role("checkbox", name=re.compile("I agree")).check()


def enquiry_posts(page: Any) -> list[Any]:
    """Every POST to /enquiries the page makes from now on (including ones that never get an answer)."""
    posts: list[Any] = []

    def record(request: Any) -> None:
        if request.method == "POST" and request.url.endswith("/enquiries"):
            posts.append(request)

    page.on("request", record)
    return posts


def send_button(page: Any) -> Any:
    return page.get_by_role("button", name="Send enquiry")


def status(page: Any) -> Any:
    return page.get_by_role("status")


# -- with JavaScript -------------------------------------------------------------------------------


def test_form_with_javascript_sends_without_leaving_the_page(page: Any, server: str) -> None:
    from playwright.sync_api import expect

    # Given the demo page, filled in
    marker = str(uuid.uuid4())
    fill_enquiry(page, marker)
    # When the visitor sends it
    send_button(page).click()
    # Then the thanks appear on the same page, the form is cleared for another enquiry, and it is stored
    expect(status(page)).to_contain_text("Thank you")
    assert page.url == server + "/"
    expect(page.get_by_label("Your name")).to_have_value("")
    expect(send_button(page)).to_be_enabled()
    [item] = stored_enquiries(server, marker)
    assert item["name"] == "Jane Doe"
    assert item["service"] == "Sports Massage"
    assert item["phone"] == "+448009875336"
    assert item["consent"] is True


def test_form_with_javascript_shows_each_problem_beside_its_field(page: Any) -> None:
    from playwright.sync_api import expect

    # Given the demo page with a wrong email and phone, and the required fields left empty
    page.get_by_label("Email address").fill("jane@")
    page.get_by_label("Phone number (optional)").fill("12")
    # When the visitor sends it
    with page.expect_response("**/enquiries") as answer:
        send_button(page).click()
    problems = answer.value.json()["fields"]
    # Then every failing field is marked invalid and described by the server's sentence, shown beside it
    assert set(problems) == {"name", "email", "phone", "message", "consent"}
    for field_id, problem in problems.items():
        field = page.locator(f"#{field_id}")
        expect(field).to_have_attribute("aria-invalid", "true")
        error_id = field.get_attribute("aria-describedby").split()[0]
        error = page.locator(f'[id="{error_id}"]')
        expect(error).to_be_visible()
        expect(error).to_have_text(problem)
    # ... the hint stays linked, valid fields are not marked, and what was typed is kept
    expect(page.locator("#message")).to_have_attribute("aria-describedby", "message-error message-hint")
    expect(page.locator("#service")).not_to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Email address")).to_have_value("jane@")
    # ... focus is on the first field to fix, and a summary is announced
    expect(page.get_by_label("Your name")).to_be_focused()
    expect(status(page)).to_contain_text("Some details need correcting")


def test_form_with_javascript_clears_old_problems_when_sent_again(page: Any, server: str) -> None:
    from playwright.sync_api import expect

    # Given a form sent with a wrong phone number, and its problem shown
    marker = str(uuid.uuid4())
    posts = enquiry_posts(page)
    fill_enquiry(page, marker, **{"Phone number (optional)": "12"})
    send_button(page).click()
    expect(page.locator("#phone")).to_have_attribute("aria-invalid", "true")
    # When the visitor corrects it and sends again
    page.get_by_label("Phone number (optional)").fill("01632 960123")
    send_button(page).click()
    # Then the problem is gone and the enquiry is stored, sent under a new key since its content changed
    expect(status(page)).to_contain_text("Thank you")
    expect(page.locator("#phone")).not_to_have_attribute("aria-invalid", "true")
    expect(page.locator("#phone")).not_to_have_attribute("aria-describedby", re.compile("."))
    expect(page.locator(".enquiry-error")).to_be_hidden()
    assert len(stored_enquiries(server, marker)) == 1
    keys = [post.headers["idempotency-key"] for post in posts]
    assert len(keys) == 2
    assert keys[0] != keys[1]


def test_form_with_javascript_sends_json_with_an_idempotency_key(page: Any) -> None:
    from playwright.sync_api import expect

    # Given a filled form, with requests watched
    marker = str(uuid.uuid4())
    posts = enquiry_posts(page)
    fill_enquiry(page, marker)
    # When it is sent
    send_button(page).click()
    expect(status(page)).to_contain_text("Thank you")
    # Then it went as JSON, asked for JSON, carried a UUID key, and the consent box became true
    [post] = posts
    assert post.headers["content-type"] == "application/json"
    assert post.headers["accept"] == "application/json"
    assert UUID_PATTERN.match(post.headers["idempotency-key"])
    body = post.post_data_json
    assert body["consent"] is True
    assert body["service"] == "Sports Massage"
    assert "_gotcha" not in body  # the empty trap is left out, as every empty field is


def test_form_button_cannot_send_twice(page: Any, server: str) -> None:
    from playwright.sync_api import expect

    # Given a filled form, with requests watched
    marker = str(uuid.uuid4())
    posts = enquiry_posts(page)
    fill_enquiry(page, marker)
    # When the visitor double-clicks the button
    send_button(page).dblclick()
    # Then one request is made and one enquiry stored
    expect(status(page)).to_contain_text("Thank you")
    assert len(posts) == 1
    assert len(stored_enquiries(server, marker)) == 1


def test_form_keyboard_alone_fills_and_sends_it(page: Any, server: str) -> None:
    from playwright.sync_api import expect

    # Given the demo page and a visitor with only a keyboard, starting at the top
    marker = str(uuid.uuid4())
    for _ in range(10):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.name") == "name":
            break
    visited: list[str] = []

    def type_then_tab(text: str) -> None:
        visited.append(page.evaluate("document.activeElement.name"))
        if text:
            page.keyboard.type(text)
        page.keyboard.press("Tab")

    # When they type each field, tick the box with Space and press Enter on the button
    type_then_tab("Jane Doe")
    type_then_tab("jane.doe@example.com")
    type_then_tab("")
    type_then_tab("Osteo")  # a closed <select> picks by typing
    type_then_tab(f"Can you help with neck pain? ({marker})")
    visited.append(page.evaluate("document.activeElement.name"))
    page.keyboard.press("Space")
    page.keyboard.press("Tab")
    visited.append(page.evaluate("document.activeElement.textContent.trim()"))
    page.keyboard.press("Enter")
    # Then focus went through the fields in order, never into the robot trap, and the enquiry is stored
    assert visited == ["name", "email", "phone", "service", "message", "consent", "Send enquiry"]
    expect(status(page)).to_contain_text("Thank you")
    [item] = stored_enquiries(server, marker)
    assert item["service"] == "Osteopathy"
    assert "phone" not in item


def test_form_offline_says_so_and_keeps_what_was_typed(page: Any, server: str) -> None:
    from playwright.sync_api import expect

    # Given a filled form and a browser that is offline
    marker = str(uuid.uuid4())
    posts = enquiry_posts(page)
    fill_enquiry(page, marker)
    page.context.set_offline(True)
    # When it is sent
    send_button(page).click()
    # Then the visitor is told in plain words, keeps every value, and can send again
    expect(status(page)).to_contain_text("could not reach our server")
    expect(page.get_by_label("Your message")).to_have_value(re.compile(marker))
    expect(page.get_by_label("Email address")).to_have_value("jane.doe@example.com")
    expect(page.get_by_role("checkbox", name=re.compile("I agree"))).to_be_checked()
    expect(send_button(page)).to_be_enabled()
    # ... and when the network is back, the same content goes with the same key, and is stored
    page.context.set_offline(False)
    send_button(page).click()
    expect(status(page)).to_contain_text("Thank you")
    assert len(stored_enquiries(server, marker)) == 1
    assert len({post.headers["idempotency-key"] for post in posts}) == 1


@pytest.mark.parametrize(
    "failure",
    [
        # API Gateway's throttle: its own body, no `error`, and no CORS headers (a cross-origin page
        # sees a network error, the next case)
        {"status": 429, "body": '{"message":"Too Many Requests"}', "content_type": "application/json"},
        {"status": 502, "body": "<html><body>Bad Gateway</body></html>", "content_type": "text/html"},
        {"status": 503, "body": "Service Unavailable", "content_type": "text/plain"},
        "connectionreset",
        "failed",
    ],
    ids=["gateway-429", "proxy-502-page", "plain-503", "connection-reset", "blocked-cross-origin"],
)
def test_form_failure_without_an_answer_of_ours_says_busy_not_offline(page: Any, failure: Any) -> None:
    from playwright.sync_api import expect

    # Given an online browser and a request that gets no answer the script can read
    if isinstance(failure, str):
        page.route("**/enquiries", lambda route: route.abort(failure))
    else:
        page.route("**/enquiries", lambda route: route.fulfill(**failure))
    fill_enquiry(page, str(uuid.uuid4()))
    # When the form is sent
    send_button(page).click()
    # Then the visitor reads that the form is busy, to try again in a minute, with what they typed kept
    expect(status(page)).to_contain_text("Our form is busy")
    expect(status(page)).to_contain_text("try again in a minute")
    expect(status(page)).not_to_contain_text("could not reach our server")
    expect(status(page)).not_to_contain_text("Too Many Requests")
    expect(page.get_by_label("Your name")).to_have_value("Jane Doe")


def test_form_new_enquiry_after_a_success_gets_a_new_key(page: Any, server: str) -> None:
    from playwright.sync_api import expect

    # Given an enquiry sent and thanked for
    posts = enquiry_posts(page)
    fill_enquiry(page, first := str(uuid.uuid4()))
    send_button(page).click()
    expect(status(page)).to_contain_text("Thank you")
    # When the visitor writes another one and sends it
    fill_enquiry(page, second := str(uuid.uuid4()))
    send_button(page).click()
    expect(status(page)).to_contain_text("Thank you")
    expect(page.get_by_label("Your name")).to_have_value("")
    # Then it went with a key of its own, and both are stored
    assert len(posts) == 2
    assert posts[0].headers["idempotency-key"] != posts[1].headers["idempotency-key"]
    assert len(stored_enquiries(server, first)) == len(stored_enquiries(server, second)) == 1


def test_form_key_refused_as_reused_is_replaced_on_the_next_send(page: Any, server: str) -> None:
    from playwright.sync_api import expect

    # Given a server that refuses the first send's key as used for another enquiry
    marker = str(uuid.uuid4())
    posts = enquiry_posts(page)
    reused = {"error": "idempotency_key_reused", "message": "This enquiry came with the key of another."}
    page.route("**/enquiries", lambda route: route.fulfill(status=422, json=reused), times=1)
    fill_enquiry(page, marker)
    send_button(page).click()
    expect(status(page)).to_contain_text("key of another")
    # When the visitor sends the same content again
    send_button(page).click()
    # Then it goes with a new key and is stored
    expect(status(page)).to_contain_text("Thank you")
    assert len(posts) == 2
    assert posts[0].headers["idempotency-key"] != posts[1].headers["idempotency-key"]
    assert len(stored_enquiries(server, marker)) == 1


def test_form_unavailable_waits_for_retry_after(page: Any) -> None:
    from playwright.sync_api import expect

    # Given a server that answers 503 with Retry-After: 2
    page.route(
        "**/enquiries",
        lambda route: route.fulfill(status=503, headers={"Retry-After": "2"}, json=UNAVAILABLE_BODY),
    )
    fill_enquiry(page, str(uuid.uuid4()))
    # When the form is sent
    send_button(page).click()
    # Then the server's message (with the clinic's phone) and reference show, and the button waits
    expect(status(page)).to_contain_text("call us on 01632 960123")
    expect(status(page)).to_contain_text(UNAVAILABLE_BODY["reference"])
    shown = time.monotonic()
    button = page.locator(".enquiry-form button")
    expect(button).to_be_disabled()
    expect(button).to_have_text(re.compile(r"Try again in \d s"))
    # ... until Retry-After has passed, with what was typed kept
    expect(button).to_be_enabled(timeout=4_000)
    assert time.monotonic() - shown > 1.5
    expect(button).to_have_text("Send enquiry")
    expect(page.get_by_label("Your name")).to_have_value("Jane Doe")


def test_form_problem_with_an_unknown_field_goes_to_the_summary(page: Any) -> None:
    from playwright.sync_api import expect

    # Given a server that refuses a field the form does not show
    body = {
        "error": "validation_failed",
        "message": "Some details need correcting before the enquiry can be sent.",
        "fields": {"website": "This form has no field with this name: remove it."},
    }
    page.route("**/enquiries", lambda route: route.fulfill(status=422, json=body))
    fill_enquiry(page, str(uuid.uuid4()))
    # When the form is sent
    send_button(page).click()
    # Then the summary names it, and no visible field is marked
    expect(status(page)).to_contain_text("website: This form has no field with this name")
    expect(page.locator("[aria-invalid=true]")).to_have_count(0)


def test_form_with_next_goes_there_after_success(page: Any, server: str) -> None:
    # Given a form with a `_next` field, as a site that has its own thank-you page would add
    marker = str(uuid.uuid4())
    page.evaluate(
        """next => {
            const input = Object.assign(document.createElement("input"), {type: "hidden", name: "_next"});
            input.value = next;
            document.querySelector("form").append(input);
        }""",
        server + "/?thanks",
    )
    fill_enquiry(page, marker)
    # When it is sent
    with page.expect_navigation():
        send_button(page).click()
    # Then the browser goes there, and the enquiry is stored
    assert page.url == server + "/?thanks"
    assert len(stored_enquiries(server, marker)) == 1


def test_form_robot_trap_is_in_the_page_but_hidden_from_people(page: Any) -> None:
    from playwright.sync_api import expect

    # Given the demo page
    # When the robot trap is looked for
    trap = page.locator("[name=_gotcha]")
    # Then it is there for robots, as a text field ...
    expect(trap).to_have_count(1)
    expect(trap).to_have_attribute("type", "text")
    # ... but off screen, out of the Tab order, unfilled by autofill and hidden from screen readers
    box = trap.bounding_box()
    assert box is not None
    assert box["x"] + box["width"] <= 0
    expect(trap).to_have_attribute("tabindex", "-1")
    expect(trap).to_have_attribute("autocomplete", "off")
    assert trap.evaluate("el => el.closest('[aria-hidden=true]') !== null")
    expect(page.get_by_role("textbox", name="Leave this field empty")).to_have_count(0)


# -- without JavaScript ------------------------------------------------------------------------------


def test_form_without_javascript_shows_the_thank_you_page(page_without_js: Any, server: str) -> None:
    from playwright.sync_api import expect

    page = page_without_js
    # Given the demo page in a browser with JavaScript off, filled in
    marker = str(uuid.uuid4())
    fill_enquiry(page, marker)
    # When the visitor sends it
    with page.expect_navigation():
        send_button(page).click()
    # Then the server's thank-you page shows, and the enquiry is stored
    expect(page.get_by_role("heading", level=1)).to_have_text("Thank you: your enquiry has been sent")
    assert page.url == server + "/enquiries"
    assert len(stored_enquiries(server, marker)) == 1


def test_form_without_javascript_shows_the_problems_and_a_way_back(page_without_js: Any, server: str) -> None:
    from playwright.sync_api import expect

    page = page_without_js
    # Given the demo page in a browser with JavaScript off, with a phone number the server refuses
    marker = str(uuid.uuid4())
    fill_enquiry(page, marker, **{"Phone number (optional)": "12"})
    # When the visitor sends it
    with page.expect_navigation():
        send_button(page).click()
    # Then the error page lists the problem in plain words and links back to the form
    expect(page.get_by_role("heading", level=1)).to_have_text("Your enquiry has not been sent")
    expect(page.locator(".problems li")).to_have_count(1)
    expect(page.locator(".problems li")).to_contain_text("Phone: Enter a phone number like")
    back = page.get_by_role("link", name="Go back to the form")
    expect(back).to_have_attribute("href", server + "/")
    assert stored_enquiries(server, marker) == []
