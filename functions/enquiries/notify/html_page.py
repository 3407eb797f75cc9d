"""The frame both emails share: a centred, 600-pixel card that mail clients render alike.

Callers escape everything they pass in: `title` is the page's title, `heading` the card's heading,
and `content` what follows the heading, as HTML.
"""

from __future__ import annotations


def email_page(title: str, heading: str, content: str) -> str:
    return f"""<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title></head>
<body style="margin:0;padding:0;background:#f4f4f4;">
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" style="background:#f4f4f4;">
<tr><td style="padding:24px 12px;">
<table role="presentation" width="600" cellpadding="0" cellspacing="0" align="center"
 style="max-width:600px;width:100%;background:#ffffff;border:1px solid #dddddd;">
<tr><td style="padding:20px 24px;font-family:Arial,Helvetica,sans-serif;">
<h1 style="margin:0 0 16px 0;font-size:20px;color:#1b1b1b;">{heading}</h1>{content}
</td></tr></table>
</td></tr></table>
</body>
</html>
"""
