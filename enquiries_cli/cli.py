"""The `enquiries` command: the contract's "The operator's command" section, subcommand by subcommand.

Each subcommand parses, asks the modules beside this one to do the work, and prints. The target
(`--local URL` or `--stack NAME`) is resolved when a subcommand first needs it.
"""

from __future__ import annotations

import errno
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from itertools import chain
from typing import Any

import click

from enquiries_cli import dead_letters, export, forms, people
from enquiries_cli import resend as resending
from enquiries_cli.dates import Day, clinic_time
from enquiries_cli.errors import OperatorError, Refused
from enquiries_cli.failures import describe
from enquiries_cli.functions_adapter import get_enquiry
from enquiries_cli.letter import letter
from enquiries_cli.output import (
    json_text,
    one_line,
    output_file,
    progress,
    refuse_to_overwrite,
    stdin_is_terminal,
    terminal_safe,
    utf8_stdout,
)
from enquiries_cli.scanning import ENQUIRY_COLUMNS, period, scan, table_time
from enquiries_cli.target import CLINIC_ADDRESSES, Target, local_target, stack_target


class OperatorGroup(click.Group):
    """Turns any failure of a subcommand into the contract's exit status 1 and a one-line reason."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except OSError as error:
            if error.errno == errno.EPIPE:
                raise  # `enquiries export | head`: click ends quietly
            where = f" ({error.filename})" if error.filename else ""
            raise OperatorError(f"{error.strerror or type(error).__name__}{where}") from None
        except Exception as error:
            raise OperatorError(describe(error)) from None


@dataclass
class TargetChoice:
    local_url: str | None
    stack_name: str | None
    region: str | None
    profile: str | None
    _target: Target | None = None

    def get(self) -> Target:
        if self._target is None:
            if self.local_url is not None:
                self._target = local_target(self.local_url)
            else:
                assert self.stack_name is not None
                self._target = stack_target(self.stack_name, region=self.region, profile=self.profile)
        return self._target


pass_choice = click.make_pass_decorator(TargetChoice)
# Subcommands that read only this checkout (forms/), and need no target.
NO_TARGET = ("form-html",)


@click.group(cls=OperatorGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--local", "local_url", metavar="URL", help="A running local server, e.g. http://127.0.0.1:3000."
)
@click.option(
    "--stack", "stack_name", metavar="NAME", help="A deployed stack; its outputs name its resources."
)
@click.option(
    "--region", metavar="REGION", help="The stack's AWS region (default: AWS_REGION or the profile's)."
)
@click.option(
    "--profile", metavar="PROFILE", help="The AWS profile to use (default: AWS_PROFILE or default)."
)
@click.pass_context
def cli(
    ctx: click.Context, local_url: str | None, stack_name: str | None, region: str | None, profile: str | None
) -> None:
    """The clinic's enquiries: list, show, export, erase, subject access, resend, stats, doctor.

    The target comes first: --local URL for a running local server (make dev), or --stack NAME for
    a deployed stack.
    """
    if ctx.resilient_parsing:
        return
    if ctx.invoked_subcommand in NO_TARGET and local_url is None and stack_name is None:
        return
    if (local_url is None) == (stack_name is None):
        raise click.UsageError("give one target: --local URL or --stack NAME")
    if local_url is not None and (region or profile):
        raise click.UsageError("--region and --profile are for --stack; the local server names its own")
    ctx.obj = TargetChoice(local_url, stack_name, region, profile)


def main() -> None:
    """The console script `enquiries`."""
    cli.main(prog_name="enquiries")


# -- printing ---------------------------------------------------------------------------------------


def plural(count: int, singular: str, many: str | None = None) -> str:
    return f"{count} {singular if count == 1 else (many or singular + 's')}"


def in_attribute_order(item: dict[str, Any]) -> dict[str, Any]:
    """The contract's fields first, in the export's order, then the rest by name."""
    known = {key: item[key] for key in ENQUIRY_COLUMNS if key in item}
    return {**known, **{key: item[key] for key in sorted(item) if key not in known}}


DATE = Day()
SINCE_HELP = "From this day (UTC): YYYY-MM-DD, DD/MM/YYYY, today, yesterday or Nd (N days ago)."


def enquiry_key(typed: str) -> str:
    """An id as stored: ULIDs are upper case (Crockford's base 32), and staff may type or paste one
    in any case."""
    return typed.strip().upper()


def days(since: datetime | None, until: datetime | None) -> tuple[date | None, date | None]:
    first, last = (since.date() if since else None), (until.date() if until else None)
    if first and last and first > last:
        raise click.UsageError("--since is after --until")
    return first, last


# -- subcommands --------------------------------------------------------------------------------------


@cli.command("list")
@click.option("--since", type=DATE, metavar="DATE", help=SINCE_HELP)
@click.option("--until", type=DATE, metavar="DATE", help="To the end of this day (UTC), in the same forms.")
@click.option("--unnotified", is_flag=True, help="Only enquiries never marked as emailed.")
@pass_choice
def list_command(
    choice: TargetChoice, since: datetime | None, until: datetime | None, unnotified: bool
) -> None:
    """One line per enquiry, newest first."""
    target = choice.get()
    condition = period(*days(since, until))
    if unnotified:
        condition.add(lambda c: f"attribute_not_exists({c.name('notified_at')})")
    columns = ("id", "created_at", "name", "email", "service", "notified_at")
    with progress("Reading enquiries") as advance:
        rows = list(
            scan(
                target.client("dynamodb"),
                target.table_name,
                attributes=columns,
                condition=condition,
                on_page=advance,
            )
        )
    rows.sort(key=lambda item: (str(item.get("created_at", "")), str(item["id"])), reverse=True)
    if not rows:
        click.echo("No enquiries.", err=True)
    with utf8_stdout() as out:
        for item in rows:
            received = clinic_time(str(item.get("created_at", "")))
            status = "emailed" if item.get("notified_at") else "NOT EMAILED"
            who = f"{one_line(item.get('name', ''))} <{one_line(item.get('email', ''))}>"
            service = one_line(item.get("service") or "")
            out.write(
                f"{item['id']}  {received}  {status:<11}  {who}" + (f"  {service}" if service else "") + "\n"
            )


@cli.command()
@click.argument("enquiry_id", metavar="ID")
@pass_choice
def show(choice: TargetChoice, enquiry_id: str) -> None:
    """Every stored attribute of one enquiry, as JSON."""
    target = choice.get()
    item = get_enquiry(target.client("dynamodb"), target.table_name, enquiry_key(enquiry_id))
    if item is None:
        raise OperatorError(f"no enquiry with id {one_line(enquiry_id)} in {target.description}")
    with utf8_stdout() as out:
        out.write(json_text(in_attribute_order(item)) + "\n")


@cli.command("export")
@click.option(
    "--format",
    "file_format",
    type=click.Choice(["csv", "excel-csv", "json"]),
    default="csv",
    show_default=True,
    help="excel-csv: CSV that Excel and LibreOffice open as UTF-8 (it starts with a byte order mark).",
)
@click.option("--since", type=DATE, metavar="DATE", help=SINCE_HELP)
@click.option("--until", type=DATE, metavar="DATE", help="To the end of this day (UTC), in the same forms.")
@click.option(
    "--output", metavar="FILE", help="Write to FILE (readable only by you) instead of standard output."
)
@click.option("--force", is_flag=True, help="Replace FILE if it exists.")
@click.option("--form", "form_id", metavar="ID", help="Only the enquiries of this form (forms/ID.yaml).")
@pass_choice
def export_command(  # noqa: PLR0913, PLR0917 - one per option
    choice: TargetChoice,
    file_format: str,
    since: datetime | None,
    until: datetime | None,
    output: str | None,
    force: bool,
    form_id: str | None,
) -> None:
    """Every enquiry as CSV (safe to open in a spreadsheet) or JSON, read and written page by page."""
    refuse_to_overwrite(output, force=force)
    condition = period(*days(since, until))
    if form_id is not None:
        condition.add(forms.only_form(form_id))
    target = choice.get()
    write = {"csv": export.write_csv, "excel-csv": export.write_excel_csv, "json": export.write_json}
    with progress("Exporting enquiries") as advance:
        items = scan(target.client("dynamodb"), target.table_name, condition=condition, on_page=advance)
        with output_file(output, newline=None if file_format == "json" else "", force=force) as out:
            count = write[file_format](items, out)
    if output not in (None, "-"):
        click.echo(f"Exported {plural(count, 'enquiry', 'enquiries')} to {output}.", err=True)


def _address(email: str) -> str:
    address = email.strip()
    if "@" not in address or any(char.isspace() for char in address):
        raise click.BadParameter("give one email address, like jane@example.com", param_hint="--email")
    return address


@cli.command()
@click.option("--email", required=True, metavar="ADDRESS", help="The address, in any letter case.")
@click.option("--yes", is_flag=True, help="Do not ask first (for scripts).")
@pass_choice
def erase(choice: TargetChoice, email: str, yes: bool) -> None:
    """Delete every enquiry from an address, and the request records linked to them."""
    address = _address(email)
    if not yes and not stdin_is_terminal():
        raise Refused(
            "erase asks before it deletes, and cannot ask without a terminal: run it in one, or add --yes"
        )
    target = choice.get()
    with progress("Looking for the address") as advance:
        holdings = people.holdings_of(target, address, on_page=advance)
    if not holdings.enquiries:
        click.echo("erase: no enquiries from that address; nothing deleted")
        return
    summary = plural(len(holdings.enquiries), "enquiry", "enquiries")
    records = plural(
        len(holdings.request_records) + len(holdings.acknowledgement_records), "linked request record"
    )
    if not yes:
        for item in holdings.enquiries:
            received = clinic_time(str(item.get("created_at", "")))
            click.echo(f"  {item['id']}  {received}  {one_line(item.get('name', ''))}", err=True)
    if not yes and not click.confirm(
        terminal_safe(
            f"Delete {summary} ({', '.join(holdings.enquiry_ids)}) and {records}? This cannot be undone here"
        ),
        default=False,
        err=True,
    ):
        raise Refused("not confirmed; nothing deleted")
    people.erase(target, holdings)
    # The log line the contract asks for: the count and the ids, never the address.
    click.echo(terminal_safe(f"erase: deleted {summary} ({', '.join(holdings.enquiry_ids)}) and {records}"))


SUBJECT_ACCESS_NOTES = (
    "enquiries: every attribute stored for each enquiry from this address. expires_at is when it is "
    "deleted automatically (seconds since 1970-01-01 UTC); notified_at and ses_message_id record the "
    "email that brought it to the clinic's inbox.",
    "request_records: short-lived records (at most 24 hours) that let a repeated submission get the "
    "same answer; they hold that answer, not the enquiry. A record whose id begins with ack# holds a "
    "keyed hash of the address and the enquiry that was acknowledged, so that the address gets at most "
    "one acknowledgement email in 24 hours.",
    "Also not in this document: Amazon SES's account-level suppression list, which may hold this "
    "address if an email to it bounced or was marked as spam (the clinic's guide, docs/clinic.md, "
    "says how to check or remove it).",
    "Not in this document: the copies of each enquiry in the clinic's email inbox, and the service's "
    "logs, which hold enquiry ids and never the details above.",
)


@cli.command("subject-access")
@click.option("--email", required=True, metavar="ADDRESS", help="The address, in any letter case.")
@click.option(
    "--format",
    "file_format",
    type=click.Choice(["json", "letter"]),
    default="json",
    show_default=True,
    help="letter: a letter to send to the person, in words and dates, with the JSON after it.",
)
@click.option("--output", metavar="FILE", help="Write to FILE (readable only by you) instead.")
@click.option("--force", is_flag=True, help="Replace FILE if it exists.")
@pass_choice
def subject_access(
    choice: TargetChoice, email: str, file_format: str, output: str | None, force: bool
) -> None:
    """Everything stored about an address: one JSON document, or a letter to send (--format letter)."""
    address = _address(email)
    refuse_to_overwrite(output, force=force)
    target = choice.get()
    with progress("Looking for the address") as advance:
        holdings = people.holdings_of(target, address, on_page=advance)
    document = {
        "subject_access": {
            "email": address,
            "matched": "every stored address equal to this one without regard to letter case",
            "generated_at": table_time(datetime.now(UTC)),
        },
        "enquiries": [in_attribute_order(item) for item in holdings.enquiries],
        "request_records": [
            people.described_record(record)
            for record in [*holdings.request_records, *holdings.acknowledgement_records]
        ],
        "notes": list(SUBJECT_ACCESS_NOTES),
    }
    if file_format == "letter":
        listed = target.resources.get(CLINIC_ADDRESSES, "")
        text = letter(document, [address.strip() for address in listed.split(",") if address.strip()])
    else:
        text = json_text(document) + "\n"
    with output_file(output, newline=None, force=force) as out:
        out.write(text)
    if output not in (None, "-"):
        click.echo(f"Wrote the subject access document to {output} (readable only by you).", err=True)


@cli.command()
@click.argument("enquiry_ids", nargs=-1, metavar="[ID]...")
@click.option("--unnotified", is_flag=True, help="Every enquiry never marked as emailed.")
@click.option(
    "--older-than",
    type=click.IntRange(min=0),
    metavar="MINUTES",
    help="With --unnotified: only those stored longer ago than this (default 10).",
)
@pass_choice
def resend(
    choice: TargetChoice, enquiry_ids: tuple[str, ...], unnotified: bool, older_than: int | None
) -> None:
    """Email the clinic again for the named enquiries (also one already emailed), or for those whose
    email was never sent, once each, through the notifier.

    Afterwards, report the notifier's dead-letter queue and offer to remove the messages whose
    enquiries are now all emailed.
    """
    if bool(enquiry_ids) == unnotified:
        raise click.UsageError("give enquiry ids, or --unnotified")
    if older_than is not None and not unnotified:
        raise click.UsageError("--older-than goes with --unnotified")
    target = choice.get()
    if unnotified:
        minutes = 10 if older_than is None else older_than
        with progress("Looking for enquiries not emailed") as advance:
            waiting = resending.unnotified(target, timedelta(minutes=minutes))
            advance(len(waiting))
        enquiry_ids = tuple(enquiry_id for _, enquiry_id in waiting)
        if not enquiry_ids:
            click.echo(f"resend: no enquiry older than {plural(minutes, 'minute')} is waiting for its email")
    results: list[resending.Result] = []
    if enquiry_ids:
        with progress("Sending", length=len(set(enquiry_ids))) as advance:
            results = resending.resend(
                target, [enquiry_key(i) for i in enquiry_ids], again=not unnotified, on_done=advance
            )
        for result in results:
            detail = f" ({result.detail})" if result.detail else ""
            click.echo(terminal_safe(f"{result.enquiry_id}  {result.outcome.value}{detail}"))
        counts = Counter(result.outcome for result in results)
        click.echo("resend: " + ", ".join(f"{count} {outcome.value}" for outcome, count in counts.items()))
    waiting = resending.unnotified(target)
    _report_dead_letters(target, waiting)
    _advise(choice, waiting, results, unnotified=unnotified)
    if any(result.outcome in resending.FAILURES for result in results):
        raise OperatorError("some enquiries were not emailed: see the lines above")


def command_line(choice: TargetChoice, subcommand: str) -> str:
    """The command line of `subcommand` against this run's target, to copy."""
    if choice.local_url is not None:
        return f"enquiries --local {choice.local_url} {subcommand}"
    options = "".join(
        f" {flag} {value}"
        for flag, value in (("--region", choice.region), ("--profile", choice.profile))
        if value
    )
    return f"enquiries --stack {choice.stack_name}{options} {subcommand}"


def has(count: int) -> str:
    return "has" if count == 1 else "have"


def _advise(
    choice: TargetChoice,
    waiting: list[tuple[str, str]],
    results: list[resending.Result],
    *,
    unnotified: bool,
) -> None:
    """What to do about the enquiries still without their email: those this run tried have their
    reason on their line above; the others were not part of this run."""
    tried = {result.enquiry_id for result in results}
    failed = [enquiry_id for _, enquiry_id in waiting if enquiry_id in tried]
    others = [enquiry_id for _, enquiry_id in waiting if enquiry_id not in tried]
    if failed:
        lines = "its line" if len(failed) == 1 else "their lines"
        click.echo(
            f"{plural(len(failed), 'enquiry', 'enquiries')} still {has(len(failed))} no email: the reason "
            f"is on {lines} above; once it is fixed, run resend again."
        )
    if not others:
        return
    count, one = plural(len(others), "enquiry", "enquiries"), len(others) == 1
    if unnotified:
        click.echo(
            f"{count} {has(len(others))} no email yet and {'was' if one else 'were'} received too recently "
            f"for this run: the notifier is likely sending {'it' if one else 'them'} now; to check in a few "
            "minutes, run: " + command_line(choice, "list --unnotified")
        )
    else:
        click.echo(
            f"{count} {has(len(others))} no email yet and {'was' if one else 'were'} not in this run: to "
            "send those older than 10 minutes, run: " + command_line(choice, "resend --unnotified")
        )


def _report_dead_letters(target: Target, waiting: list[tuple[str, str]]) -> None:
    queue_url = target.dead_letter_queue_url
    if queue_url is None:
        return
    queue = dead_letters.report(target, queue_url, waiting)
    kept = list(queue.waiting)
    try:
        _describe_queue(queue)
        if queue.done and _may_remove(queue.done):
            dead_letters.remove(target, queue_url, queue.done)
            click.echo(f"Removed {plural(len(queue.done), 'message')} from the dead-letter queue.")
        else:
            kept += queue.done
    finally:
        dead_letters.put_back(target, queue_url, kept)


def _describe_queue(queue: dead_letters.QueueReport) -> None:
    if queue.total == 0:
        click.echo("The dead-letter queue is empty.")
    else:
        click.echo(
            f"The dead-letter queue holds {plural(queue.total, 'message')}: "
            f"{len(queue.done)} about enquiries now all emailed or deleted, "
            f"{len(queue.waiting)} about enquiries still without their email."
        )
    if queue.unread:
        click.echo(
            f"{plural(queue.unread, 'message')} could not be read now (another run has them): try later."
        )
    if queue.waiting_ids:
        click.echo(terminal_safe("Still without their email: " + ", ".join(queue.waiting_ids)))


def _may_remove(done: list[dead_letters.DeadLetter]) -> bool:
    if not stdin_is_terminal():
        click.echo(
            f"To remove the {plural(len(done), 'message')} no longer needed, run resend in a terminal."
        )
        return False
    return click.confirm(
        f"Remove the {plural(len(done), 'message')} about enquiries now all emailed?", default=False, err=True
    )


@cli.command()
@click.option("--by", "grouping", type=click.Choice(["month", "service"]), default="month", show_default=True)
@pass_choice
def stats(choice: TargetChoice, grouping: str) -> None:
    """Counts of enquiries, by month received (UTC) or by service."""
    target = choice.get()
    attribute = "created_at" if grouping == "month" else "service"
    counts: Counter[str] = Counter()
    with progress("Counting enquiries") as advance:
        for item in scan(
            target.client("dynamodb"), target.table_name, attributes=("id", attribute), on_page=advance
        ):
            value = str(item.get(attribute) or "")
            counts[value[:7] if grouping == "month" else (one_line(value) or "(none)")] += 1
    width = max([len(grouping), len("total"), *(len(key) for key in counts)])
    with utf8_stdout() as out:
        out.write(f"{grouping:<{width}}  enquiries\n")
        for key in sorted(counts):
            out.write(f"{key:<{width}}  {counts[key]:>9}\n")
        out.write(f"{'total':<{width}}  {sum(counts.values()):>9}\n")


@cli.command()
@pass_choice
def doctor(choice: TargetChoice) -> None:
    """Check what must hold for enquiries to reach the clinic: one line per check, and what to do."""
    from enquiries_cli.doctor import Check, Doctor, Status

    checks: Iterable[Check]
    try:
        target = choice.get()
    except OperatorError as error:
        if choice.local_url is None:
            raise
        checks = [Check("local server", Status.FAIL, error.format_message())]
    else:
        answering = [Check("local server", Status.OK, f"{target.description} answers")]
        checks = chain(answering if choice.local_url else [], Doctor(target, choice.stack_name).checks())
    failures = 0
    with utf8_stdout() as out:
        for check in checks:
            out.write(check.line() + "\n")
            failures += check.status is Status.FAIL
    if failures:
        raise OperatorError(f"{plural(failures, 'check')} failed: see the FAIL lines above")


@cli.command("canary")
@pass_choice
def canary_command(choice: TargetChoice) -> None:
    """Send one test enquiry through the API as a website would, follow it until it is emailed (to
    SES's mailbox simulator, never to staff), delete it, and print how long each step took."""
    from enquiries_cli import canary as canaries

    target = choice.get()
    steps = canaries.run(target)
    with utf8_stdout() as out:
        for step in steps:
            out.write(step.line() + "\n")
    failed = canaries.failed_step(steps)
    if failed is not None:
        raise OperatorError(f"the canary failed at: {failed.name}")


@cli.command("form-html")
@click.argument("form_id", metavar="FORM-ID")
@click.option("--api", "api_url", default="", metavar="URL", help="The API's URL (default: the page's own).")
@click.option("--script", "script_url", default=forms.SCRIPT_URL, show_default=True, metavar="URL")
def form_html(form_id: str, api_url: str, script_url: str) -> None:
    """The HTML form of forms/FORM-ID.yaml, to paste into a page (enquiry-form.js drives it)."""
    with utf8_stdout() as out:
        out.write(forms.form_html_for(form_id, api_url=api_url, script_url=script_url))
