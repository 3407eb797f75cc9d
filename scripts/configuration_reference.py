"""docs/configuration.md, written from the settings table.

The variables, their order and their defaults come from `enquiries.settings` (`FIELDS_BY_VARIABLE`
and the `Settings` dataclass); what each means is written here, once. `make configuration-reference`
rewrites the page; `--check` exits 1 when it is stale, and the tests run it, so a new setting cannot
ship without its line.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PAGE = REPO / "docs" / "configuration.md"

# What each variable means, for whoever deploys (one line each; Markdown). Keys: exactly the settings
# table's variables, which a test checks.
MEANINGS = {
    "TABLE_NAME": "the DynamoDB table of enquiries (the template sets it)",
    "ALLOWED_ORIGINS": (
        "comma-separated origins allowed to post, e.g. `https://www.example.com`. Each is compared as "
        "browsers send it in `Origin` (RFC 6454): scheme and host in lower case, no default port, an "
        "international domain in punycode, no trailing `/`; the function writes it so itself "
        "(`https://Clinic.example:443/` is `https://clinic.example`). A value no browser sends, such as a "
        "path, a wildcard, `127.1` or a port over 65535, stops the function at start. The template's "
        "`AllowedOrigins` accepts only values already written that way, because API Gateway's CORS "
        "compares them as written"
    ),
    "GUARD_TABLE_NAME": (
        "the table of short-lived request records and the emails' daily counts (the template sets it)"
    ),
    "CLIENT_ADDRESS_SECRET_ARN": (
        "the secret that keys the address hash: client addresses, and enquirers' for the "
        "acknowledgement (the template sets it)"
    ),
    "CLINIC_EMAIL": "comma-separated addresses that receive each enquiry",
    "SENDER_EMAIL": (
        "the From address, e.g. `Clinic website <enquiries@example.com>`; must be at a verified SES identity"
    ),
    "SENDER_IDENTITY": (
        "the SES identity the notifier may send From (the template sets it from `SenderIdentity`); a "
        "`SENDER_EMAIL` not at that domain, or not that address exactly, stops the notifier at start"
    ),
    "SUCCESS_URL": "where a plain HTML form post goes after success",
    "CLINIC_PHONE": "offered to visitors in 5xx messages, and in the acknowledgement",
    "SERVICES": "accepted `service` values, comma-separated (matched case-insensitively)",
    "REQUIRE_CONSENT": "whether `consent` must be given",
    "DEFAULT_PHONE_REGION": "the region used to read national phone numbers",
    "RATE_LIMIT_PER_HOUR": "accepted enquiries per client address per hour (`0` turns it off)",
    "RETENTION_DAYS": "days before the table's TTL deletes an enquiry",
    "TIMEZONE": "the time zone of the time received, in the email and in `enquiries list`",
    "SES_CONFIGURATION_SET": (
        "the SES configuration set the acknowledgement is sent with, and the clinic's email too unless "
        "`NOTIFICATION_SES_CONFIGURATION_SET` is set (the template sets the stack's own)"
    ),
    "NOTIFICATION_SES_CONFIGURATION_SET": (
        "the SES configuration set the clinic's email is sent with: the stack's own, which never "
        "suppresses the clinic's addresses (the template sets it; empty when `SesConfigurationSet` "
        "names your own set)"
    ),
    "TURNSTILE_SECRET": (
        "the Cloudflare Turnstile secret key itself, for the local server and tests; deployed, use "
        "`TURNSTILE_SECRET_ARN`. Either turns the Turnstile check on"
    ),
    "TURNSTILE_SECRET_ARN": (
        "the Secrets Manager secret that holds the Turnstile secret key (the template's "
        "`TurnstileSecretArn`); setting it and `TURNSTILE_SECRET` both stops the function at start"
    ),
    "TURNSTILE_VERIFY_URL": "another Turnstile siteverify endpoint (tests, a proxy)",
    "ACKNOWLEDGE_ENQUIRER": "whether the enquirer gets an [acknowledgement email](emails.md)",
    "CLINIC_NAME": (
        "the clinic's name, in the acknowledgement's subject and text; required when "
        "`ACKNOWLEDGE_ENQUIRER` is true"
    ),
    "ACKNOWLEDGEMENT_REPLY_WITHIN": 'the acknowledgement\'s "we usually reply within ..."',
    "ACKNOWLEDGEMENT_EMERGENCY_NOTE": "the acknowledgement's sentence on emergencies",
    "ACKNOWLEDGEMENT_DAILY_CAP": "the most acknowledgements in a day (UTC), at least 1",
    "CANARY_API_URL": (
        "the public API's URL, which the scheduled canary posts its test enquiry to (the template sets it)"
    ),
    "NOTIFICATION_DAILY_CAP": (
        "the most clinic emails the stream sends in a day (UTC), at least 1; later enquiries are stored, "
        "listed by `enquiries list --unnotified`, and emailed by `enquiries resend --unnotified`, which "
        "is not capped"
    ),
}

INTRODUCTION = """\
# Configuration

<!-- Written by `make configuration-reference` from the settings table (functions/enquiries/settings.py)
and scripts/configuration_reference.py: edit those, not this page. -->

The functions read these environment variables. In `template.yaml`, each one is a parameter with the
same name in PascalCase, or is set by the template. A blank value means the variable is not set. A
missing required setting or a malformed one stops the function when it starts, with one message that
names every variable at fault and what each must be, so it never fails one request at a time. The
standard `AWS_REGION` and `AWS_ENDPOINT_URL` are read too (Lambda sets the first).

| variable | default | meaning |
| --- | --- | --- |
"""

SECRETS = """
The submission function reads its secrets when it starts. If one cannot be read (deleted or
scheduled for deletion, not found, no permission, not decryptable, throttled, unreachable), the
log gets one `secret unreadable` error line with the variable's name, AWS's error code and what
to check (never the value), and each enquiry that needs the secret gets the `503` with
`Retry-After`, never a `500`. Fields to fix still get their `422`. The read is tried again at
most every 10 seconds, so once the secret is restored the function heals without a redeploy, and
logs `secret readable again`. These 503s count as the HTTP API's 5xx responses, which the stack's
alarm on visitor-facing errors reports.
"""


def _functions_on_path() -> None:
    if str(REPO / "functions") not in sys.path:
        sys.path.insert(0, str(REPO / "functions"))


def _default(value: object) -> str:
    if value is None or value == ():
        return "none"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, tuple):
        return "`" + ",".join(str(item) for item in value) + "`"
    return f"`{value}`"


def render() -> str:
    """The whole page."""
    _functions_on_path()
    from enquiries.settings import (
        ALWAYS_REQUIRED,
        CANARY_REQUIRES,
        FIELDS_BY_VARIABLE,
        NOTIFIER_REQUIRES,
        SUBMISSION_REQUIRES,
        Settings,
    )

    required_by = {name: "the submission function" for name in SUBMISSION_REQUIRES}
    required_by |= {name: "the notifier" for name in NOTIFIER_REQUIRES}
    # The canary's own variable only: the others it needs are the submission function's too.
    required_by |= {name: "the canary" for name in CANARY_REQUIRES if name not in required_by}
    defaults = {field.name: field.default for field in dataclasses.fields(Settings)}
    rows = []
    for variable, attribute in FIELDS_BY_VARIABLE.items():
        if variable in ALWAYS_REQUIRED:
            default = "required"
        elif variable in required_by:
            default = f"required by {required_by[variable]}"
        else:
            default = _default(defaults[attribute])
        rows.append(f"| `{variable}` | {default} | {MEANINGS[variable]} |")
    return INTRODUCTION + "\n".join(rows) + "\n" + SECRETS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when docs/configuration.md is stale")
    options = parser.parse_args(argv)
    if options.check:
        current = PAGE.read_text(encoding="utf-8") if PAGE.exists() else ""
        if current != render():
            print("docs/configuration.md is stale: run `make configuration-reference`", file=sys.stderr)
            return 1
        return 0
    PAGE.write_text(render(), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
