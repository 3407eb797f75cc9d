"""The HTML pages a browser without JavaScript sees after posting the form. Every value is escaped."""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from enquiries.forms import Form

# The labels of the checks that are no form's field; each form's fields have their file's labels.
REQUEST_LABELS = {"captcha": "Robot check"}

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 40rem; margin: 3rem auto; padding: 0 1rem;
       line-height: 1.5; color: #1b1b1b; }}
h1 {{ font-size: 1.6rem; }}
.problems li {{ margin-bottom: .5rem; }}
a {{ color: #0b5cad; }}
</style>
</head>
<body>
<main>
{content}
</main>
</body>
</html>
"""


def thank_you_page(enquiry_id: str, site_url: str | None = None, noun: str = "enquiry") -> str:
    """`site_url`: the clinic's site, when the form's page was on an allowed origin; `noun` names what
    was sent (the form's title)."""
    what = escape(noun)
    content = (
        f"<h1>Thank you: your {what} has been sent</h1>\n"
        f"<p>We have received your {what} and will reply by email as soon as we can.</p>\n"
        f"<p>Your reference is <strong>{escape(enquiry_id)}</strong>.</p>"
    )
    if site_url:
        content += f'\n<p><a href="{escape(site_url, quote=True)}">Return to the website</a></p>'
    return _PAGE.format(title=f"{what[:1].upper()}{what[1:]} sent", content=content)


def error_page(
    message: str,
    fields: dict[str, str] | None,
    back_url: str | None,
    reference: str | None,
    form: Form | None = None,
) -> str:
    """The page for a refused HTML form post (to `form`, else the default one): each failing field by
    its label in the form's file, and a way back to the form."""
    labels = {**REQUEST_LABELS, **{each.name: each.label for each in form.fields}} if form else REQUEST_LABELS
    noun = form.noun if form else "enquiry"
    heading = f"Your {escape(noun)} has not been sent"
    parts = [f"<h1>{heading}</h1>\n<p>{escape(message)}</p>"]
    if fields:
        items = "\n".join(
            f"<li><strong>{escape(labels.get(name, name))}</strong>: {escape(problem)}</li>"
            for name, problem in fields.items()
        )
        parts.append(f'<ul class="problems">\n{items}\n</ul>')
    if reference:
        parts.append(
            f"<p>If you contact us about this, please quote <strong>{escape(reference)}</strong>.</p>"
        )
    # Back, not a link: a link loads the form afresh, empty, while Back keeps what was typed.
    parts.append("<p>Use your browser's Back button to return to the form: what you typed is kept there.</p>")
    if back_url:
        parts.append(f'<p>Or <a href="{escape(back_url, quote=True)}">open the form again</a>, empty.</p>')
    return _PAGE.format(title=heading, content="\n".join(parts))
