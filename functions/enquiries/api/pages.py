"""The HTML pages a browser without JavaScript sees after posting the form. Every value is escaped."""

from __future__ import annotations

from html import escape

FIELD_LABELS = {
    "name": "Name",
    "email": "Email",
    "phone": "Phone",
    "service": "Service",
    "message": "Message",
    "consent": "Consent",
    "captcha": "Robot check",
}

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


def thank_you_page(enquiry_id: str, site_url: str | None = None) -> str:
    """`site_url`: the clinic's site, when the form's page was on an allowed origin."""
    content = (
        "<h1>Thank you: your enquiry has been sent</h1>\n"
        "<p>We have received your enquiry and will reply by email as soon as we can.</p>\n"
        f"<p>Your reference is <strong>{escape(enquiry_id)}</strong>.</p>"
    )
    if site_url:
        content += f'\n<p><a href="{escape(site_url, quote=True)}">Return to the website</a></p>'
    return _PAGE.format(title="Enquiry sent", content=content)


def error_page(
    message: str, fields: dict[str, str] | None, back_url: str | None, reference: str | None
) -> str:
    parts = [f"<h1>Your enquiry has not been sent</h1>\n<p>{escape(message)}</p>"]
    if fields:
        items = "\n".join(
            f"<li><strong>{escape(FIELD_LABELS.get(name, name))}</strong>: {escape(problem)}</li>"
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
    return _PAGE.format(title="Your enquiry has not been sent", content="\n".join(parts))
