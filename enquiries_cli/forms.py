"""The command's view of the deployment's forms (forms/*.yaml): the export's `--form`, and
`form-html`, the HTML form a site owner pastes into a page, which site/enquiry-form.js drives.

The snippet works without JavaScript (a plain form post, answered with the API's pages) and is
accessible as it stands: every field has a visible label tied to it, the browser's autocomplete
tokens (https://html.spec.whatwg.org/multipage/form-control-infrastructure.html#autofill), `required`
on required fields and "(optional)" on the others, a hint tied with aria-describedby, the robot trap
hidden from people and screen readers, and a live status region for the script's messages.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from html import escape

import click

from enquiries_cli.functions_adapter import (
    DEFAULT_FORM_ID,
    Form,
    FormField,
    deployment_forms,
    services_setting,
)
from enquiries_cli.scanning import Condition

# What the form's script and styles are served as beside the page (site/ on the local server).
SCRIPT_URL = "/enquiry-form.js"
# The contract's lengths of the typed fields the browser can check before sending.
NAME_MAX = 120
EMAIL_MAX = 254
LONG_TEXT_ROWS = 6


def known_form(form_id: str, hint: str = "--form") -> Form:
    form = deployment_forms().get(form_id)
    if form is None:
        known = ", ".join(deployment_forms().by_id)
        raise click.BadParameter(f"no form {form_id!r} in forms/ (the forms: {known})", param_hint=hint)
    return form


def only_form(form_id: str) -> Callable[[Condition], str]:
    """The filter for one form's enquiries: those stored before forms were named are the default's."""
    form = known_form(form_id)
    if form.id == DEFAULT_FORM_ID:
        return lambda c: (
            f"attribute_not_exists({c.name('form')}) OR {c.name('form')} = {c.value(DEFAULT_FORM_ID)}"
        )
    return lambda c: f"{c.name('form')} = {c.value(form.id)}"


def endpoint(form: Form, api_url: str = "") -> str:
    """Where the form posts: /enquiries for the default form, /forms/<id> for the others."""
    path = "/enquiries" if form.id == DEFAULT_FORM_ID else f"/forms/{form.id}"
    return api_url.rstrip("/") + path


def _attributes(pairs: Sequence[tuple[str, str | None]]) -> str:
    """`name="value"` for each pair with a value, and bare `name` for those whose value is ""."""
    return "".join(
        f" {name}" if value == "" else f' {name}="{escape(value, quote=True)}"'
        for name, value in pairs
        if value is not None
    )


def _ident(form: Form, each: FormField) -> str:
    """The element's id: the field's name on the default form (as the demo page has always had),
    prefixed with the form's id on the others, so that two forms can share a page."""
    return each.name if form.id == DEFAULT_FORM_ID else f"{form.id}-{each.name}"


def _control(form: Form, each: FormField, services: Sequence[str]) -> list[str]:
    ident = _ident(form, each)
    required = "" if each.required else None
    described = f"{ident}-hint" if each.hint else None
    common = [("id", ident), ("name", each.name)]
    if each.type == "long-text":
        attributes = [*common, ("rows", str(LONG_TEXT_ROWS)), ("required", required)]
        attributes += [("maxlength", str(each.max_length)), ("aria-describedby", described)]
        return [f"<textarea{_attributes(attributes)}></textarea>"]
    if each.type == "choice":
        words = (each.prompt or each.label).lower()
        first = f"Choose a {words}" + ("" if each.required else " (optional)")
        options = [f'  <option value="">{escape(first)}</option>']
        options += [f"  <option>{escape(choice)}</option>" for choice in form.choices(each, services)]
        attributes = [*common, ("required", required), ("aria-describedby", described)]
        return [f"<select{_attributes(attributes)}>", *options, "</select>"]
    kind, length, extra = {
        "name": ("text", NAME_MAX, []),
        "email": ("email", EMAIL_MAX, [("spellcheck", "false")]),
        "phone": ("tel", None, []),
        "date": ("date", None, []),
        "text": ("text", each.max_length, []),
    }[each.type]
    attributes = [*common, ("type", kind), ("autocomplete", each.autocomplete), *extra]
    attributes += [("required", required), ("maxlength", str(length) if length else None)]
    attributes += [("aria-describedby", described)]
    return [f"<input{_attributes(attributes)}>"]


def _field(form: Form, each: FormField, services: Sequence[str]) -> list[str]:
    ident = _ident(form, each)
    words = escape(each.prompt or each.label)
    if each.type == "consent":
        attributes: list[tuple[str, str | None]] = [("id", ident), ("name", each.name), ("type", "checkbox")]
        attributes += [("value", "true"), ("required", "" if each.required else None)]
        return [
            f'<label class="check" for="{escape(ident, quote=True)}">',
            f"  <input{_attributes(attributes)}>",
            f"  <span>{words}</span>",
            "</label>",
        ]
    optional = "" if each.required else ' <span class="optional">(optional)</span>'
    lines = [f'<label for="{escape(ident, quote=True)}">{words}{optional}</label>']
    if each.hint:
        lines.append(f'<p class="hint" id="{escape(ident, quote=True)}-hint">{escape(each.hint)}</p>')
    return lines + _control(form, each, services)


def form_html(form: Form, services: Sequence[str], *, api_url: str = "", script_url: str = SCRIPT_URL) -> str:
    """The form's HTML: the form element and the script tag that drives it."""
    action = escape(endpoint(form, api_url), quote=True)
    lines = [
        "<!-- Works without JavaScript (a plain HTML form post); enquiry-form.js improves it when it"
        " runs. -->",
        f'<form class="enquiry-form" method="post" action="{action}" data-enquiry-endpoint="{action}">',
    ]
    for each in form.fields:
        lines.append('  <div class="field">')
        lines += ["    " + line for line in _field(form, each, services)]
        lines += ["  </div>", ""]
    lines += [
        "  <!-- A trap for robots: hidden from people and screen readers, so only a bot fills it in. -->",
        '  <div class="enquiry-trap" aria-hidden="true">',
        f'    <label for="{form.id}-gotcha">Leave this field empty</label>',
        f'    <input id="{form.id}-gotcha" name="_gotcha" type="text" tabindex="-1" autocomplete="off">',
        "  </div>",
        "",
        f'  <button type="submit">{escape(form.submit)}</button>',
        '  <div class="enquiry-status" data-enquiry-status role="status" aria-live="polite"></div>',
        "</form>",
        f'<script src="{escape(script_url, quote=True)}" defer></script>',
    ]
    return "\n".join(lines) + "\n"


def form_html_for(form_id: str, *, api_url: str = "", script_url: str = SCRIPT_URL) -> str:
    """`enquiries form-html FORM-ID`: the form of forms/FORM-ID.yaml, its choices from SERVICES."""
    form = known_form(form_id, "FORM-ID")
    return form_html(form, services_setting(), api_url=api_url, script_url=script_url)
