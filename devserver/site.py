"""The demo website: files under site/ at their paths, or a built-in plain-HTML form when there is none."""

from __future__ import annotations

import html
import mimetypes
import os
from pathlib import Path
from urllib.parse import unquote

_CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".htm": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".svg": "image/svg+xml",
    ".txt": "text/plain; charset=utf-8",
    ".webmanifest": "application/manifest+json",
    ".woff2": "font/woff2",
    ".ico": "image/x-icon",
}


def content_type(path: Path) -> str:
    """The Content-Type for a file, by its suffix; unknown suffixes are opaque bytes."""
    known = _CONTENT_TYPES.get(path.suffix.lower())
    if known:
        return known
    guessed, _ = mimetypes.guess_type(path.name)
    if guessed is None:
        return "application/octet-stream"
    return f"{guessed}; charset=utf-8" if guessed.startswith("text/") else guessed


def resolve(site_root: Path, url_path: str) -> Path | None:
    """The file under `site_root` that `url_path` names, or None: no traversal, no dotfiles, no links out."""
    decoded = unquote(url_path.split("?", 1)[0])
    if "\x00" in decoded or "\\" in decoded:
        return None
    parts = [part for part in decoded.split("/") if part]
    if any(part.startswith(".") for part in parts):  # "..", ".env", ".git"
        return None
    root = site_root.resolve()
    candidate = root.joinpath(*parts).resolve()
    if not candidate.is_relative_to(root):
        return None
    if candidate.is_dir():
        candidate = candidate / "index.html"
    return candidate if candidate.is_file() and os.access(candidate, os.R_OK) else None


def builtin_form_page(services: list[str]) -> str:
    """A working enquiry form with no JavaScript, for when the repository has no site/ yet."""
    options = "\n".join(
        f'          <option value="{html.escape(service)}">{html.escape(service)}</option>'
        for service in services
    )
    return f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Enquiry form (local server)</title>
  <style>
    body {{ font-family: system-ui, sans-serif; max-width: 36rem; margin: 2rem auto; padding: 0 1rem; }}
    label {{ display: block; margin-top: 1rem; font-weight: 600; }}
    input, select, textarea {{ width: 100%; padding: .5rem; font: inherit; box-sizing: border-box; }}
    .check {{ display: flex; gap: .5rem; align-items: flex-start; font-weight: normal; }}
    .check input {{ width: auto; }}
    .hp {{ position: absolute; left: -10000px; width: 1px; height: 1px; overflow: hidden; }}
    button {{ margin-top: 1.5rem; padding: .6rem 1.4rem; font: inherit; }}
    footer {{ margin-top: 2rem; color: #555; font-size: .9rem; }}
  </style>
</head>
<body>
  <main>
    <h1>Send us an enquiry</h1>
    <form method="post" action="/enquiries">
      <label for="name">Name</label>
      <input id="name" name="name" autocomplete="name" required maxlength="120">
      <label for="email">Email</label>
      <input id="email" name="email" type="email" autocomplete="email" required maxlength="254">
      <label for="phone">Phone (optional)</label>
      <input id="phone" name="phone" type="tel" autocomplete="tel">
      <label for="service">Service (optional)</label>
      <select id="service" name="service">
          <option value="">Choose a service</option>
{options}
      </select>
      <label for="message">Message</label>
      <textarea id="message" name="message" rows="6" required maxlength="5000"></textarea>
      <div class="hp" aria-hidden="true">
        <label for="_gotcha">Leave this field empty</label>
        <input id="_gotcha" name="_gotcha" tabindex="-1" autocomplete="off">
      </div>
      <label class="check">
        <input type="checkbox" name="consent" value="true" required>
        <span>I agree that the clinic may store my details to answer this enquiry.</span>
      </label>
      <button type="submit">Send enquiry</button>
    </form>
  </main>
  <footer>
    Local server: <a href="/_dev/enquiries">stored enquiries</a> ·
    <a href="/_dev/emails">emails sent</a>
  </footer>
</body>
</html>
"""
