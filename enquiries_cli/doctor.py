"""`enquiries doctor`: what must hold for an enquiry typed on the website to reach the clinic's inbox,
checked one thing at a time, each found `ok`, `warn`, `FAIL` or `skip`, and for each problem what to
do in a sentence whoever runs the practice can follow or forward.

Every AWS call here is a read the stack's OperatorPolicy grants (template.yaml; tests/test_doctor.py
ties each call to its statement). A check that cannot read what it needs is a `FAIL` that says why:
the deployment could not be shown to work.
"""

from __future__ import annotations

import enum
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from typing import Any

from enquiries_cli import dns_records
from enquiries_cli.errors import OperatorError
from enquiries_cli.failures import describe
from enquiries_cli.functions_adapter import canary_metric
from enquiries_cli.output import one_line
from enquiries_cli.target import (
    ALERT_TOPIC,
    ALLOWED_ORIGINS,
    API_URL,
    CANARY,
    CLINIC_ADDRESSES,
    SENDER_IDENTITY,
    Target,
)

# A preflight waits this long for the API at most (connecting, then each read).
PREFLIGHT_SECONDS = 5.0
# A daily canary's last result is looked for over this long: one missed run shows as no result.
CANARY_LOOKBACK = timedelta(hours=36)
# Max24HourSend's "unlimited" (https://docs.aws.amazon.com/ses/latest/APIReference-V2/API_SendQuota.html).
UNLIMITED_QUOTA = -1.0
# Share of the 24-hour sending quota used at which doctor warns.
QUOTA_WARNING_SHARE = 0.8
# SES's own MAIL FROM domain, which an SPF record for a custom MAIL FROM domain includes
# (https://docs.aws.amazon.com/ses/latest/dg/mail-from.html).
SES_SPF_INCLUDE = "include:amazonses.com"


class Status(enum.Enum):
    OK = "ok"
    WARN = "warn"
    FAIL = "FAIL"
    SKIP = "skip"


@dataclass(frozen=True)
class Check:
    """One line of the report: what was checked, what was found and, for a problem, what to do."""

    name: str
    status: Status
    detail: str

    def line(self) -> str:
        return f"{self.status.value:<4}  {self.name}: {self.detail}"


TxtLookup = Callable[[str], list[str]]


@dataclass
class Doctor:
    """The checks of one run, on `target` (a stack when `stack_name` is given, else the local server)."""

    target: Target
    stack_name: str | None
    # The DNS lookup (tests give their own answers); None: dnspython's, through dns_records.
    txt_lookup: TxtLookup | None = None

    def txt_records(self, name: str) -> list[str]:
        return (self.txt_lookup or dns_records.txt_records)(name)

    def checks(self) -> Iterator[Check]:
        """Every check, in the order an enquiry meets what they check."""
        yield from self._guarded("API preflight", self._preflights)
        yield from self._guarded("dead-letter queue", self._dead_letters)
        if self.stack_name is None:
            yield from _skipped_locally()
            return
        identity = self._sender_identity()
        yield from self._guarded("sender identity", lambda: self._identity_checks(identity))
        yield from self._guarded("SES account", self._account_checks)
        yield from self._guarded("alert email", self._alert_subscription)
        yield from self._guarded("alarms", self._alarms)
        yield from self._guarded("canary", self._canary)

    # -- running a check --------------------------------------------------------------------------

    def _guarded(self, name: str, run: Callable[[], Iterator[Check]]) -> Iterator[Check]:
        """`run`'s lines; if it fails part way, those so far and a FAIL saying why (the AWS error in
        one line, with what to do for a refusal or expired sign-in: enquiries_cli/failures.py)."""
        try:
            yield from run()
        except OperatorError as error:
            yield Check(name, Status.FAIL, f"could not check: {error.format_message()}")
        except Exception as error:
            yield Check(name, Status.FAIL, f"could not check: {describe(error)}")

    # -- the website's side ----------------------------------------------------------------------

    def _preflights(self) -> Iterator[Check]:
        api_url = self.target.resource(API_URL)
        origins = [origin for origin in self.target.resource(ALLOWED_ORIGINS).split(",") if origin.strip()]
        for origin in (origin.strip() for origin in origins):
            yield preflight(api_url, origin)

    def _dead_letters(self) -> Iterator[Check]:
        queue_url = self.target.dead_letter_queue_url
        if queue_url is None:
            yield Check("dead-letter queue", Status.SKIP, f"{self.target.description} names no queue")
            return
        attributes = self.target.client("sqs").get_queue_attributes(
            QueueUrl=queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        waiting = sum(int(value) for value in attributes.values())
        if waiting == 0:
            yield Check("dead-letter queue", Status.OK, "empty: no enquiry email was given up on")
            return
        resend = self._command("resend --unnotified")
        yield Check(
            "dead-letter queue",
            Status.FAIL,
            f"{_count(waiting, 'batch', 'batches')} of enquiry emails could not be sent after retries; "
            f"the enquiries are safe. Run `{resend}` to send them and tidy the queue.",
        )

    # -- the sender, in SES ------------------------------------------------------------------------

    def _sender_identity(self) -> str:
        return self.target.resources.get(SENDER_IDENTITY, "").strip()

    def _identity_checks(self, identity: str) -> Iterator[Check]:
        if not identity:
            self.target.resource(SENDER_IDENTITY)  # the clear error: deploy this version
        ses = self.target.client("sesv2")
        from botocore.exceptions import ClientError

        try:
            found = ses.get_email_identity(EmailIdentity=identity)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "NotFoundException":
                raise
            yield Check(
                "sender identity",
                Status.FAIL,
                f"{identity} is not set up in SES in {self.target.region}: add it in the SES console "
                f"(Identities, Create identity) in that Region, then follow its verification steps.",
            )
            return
        yield _verification(identity, found)
        is_domain = "@" not in identity
        yield (
            _dkim(identity, found)
            if is_domain
            else Check("DKIM", Status.SKIP, f"{identity} is one address; DKIM is set up for a whole domain")
        )
        domain = identity.rpartition("@")[2].lower()
        yield self._spf(found.get("MailFromAttributes") or {})
        yield self._dmarc(domain)

    def _spf(self, mail_from: dict[str, Any]) -> Check:
        domain = str(mail_from.get("MailFromDomain") or "")
        status = str(mail_from.get("MailFromDomainStatus") or "")
        if not domain:
            return Check(
                "SPF (MAIL FROM)",
                Status.WARN,
                "emails leave with SES's own return address, so SPF does not vouch for your domain: ask "
                "whoever runs your domain to set up a custom MAIL FROM domain in SES (SES console, the "
                "identity, Custom MAIL FROM domain) and publish the MX and SPF records it shows.",
            )
        if status == "FAILED" and mail_from.get("BehaviorOnMxFailure") == "REJECT_MESSAGE":
            return Check(
                "SPF (MAIL FROM)",
                Status.FAIL,
                f"SES cannot find the MX record of the MAIL FROM domain {domain}, and is set to refuse "
                "every email until it does: publish the MX and SPF records the SES console shows for "
                "it, or set SES to use its own MAIL FROM domain when the record is missing.",
            )
        if status != "SUCCESS":
            return Check(
                "SPF (MAIL FROM)",
                Status.WARN,
                f"SES has not confirmed the MAIL FROM domain {domain} (status {status or 'unknown'}): "
                "publish the MX and SPF records the SES console shows for it.",
            )
        try:
            records = self.txt_records(domain)
        except dns_records.DnsUnreadable as error:
            return _dns_unreadable("SPF (MAIL FROM)", domain, error)
        spf = [record for record in records if record.lower().startswith("v=spf1")]
        if any(SES_SPF_INCLUDE in record.lower().split() for record in spf):
            return Check("SPF (MAIL FROM)", Status.OK, f"{domain} lets SES send its email (SPF)")
        return Check(
            "SPF (MAIL FROM)",
            Status.WARN,
            f"{domain} has no SPF record that includes amazonses.com: publish the SPF record the SES "
            "console shows for the MAIL FROM domain.",
        )

    def _dmarc(self, domain: str) -> Check:
        name = f"_dmarc.{domain}"
        try:
            records = self.txt_records(name)
        except dns_records.DnsUnreadable as error:
            return _dns_unreadable("DMARC", name, error)
        dmarc = [record for record in records if record.replace(" ", "").lower().startswith("v=dmarc1")]
        if len(dmarc) == 1:
            return Check("DMARC", Status.OK, f"{domain} publishes a DMARC policy")
        if not dmarc:
            return Check(
                "DMARC",
                Status.WARN,
                f"{domain} has no DMARC record, so mailbox providers are more likely to file its email "
                f"as spam: ask whoever runs the domain to publish one at {name} (for example "
                '"v=DMARC1; p=none;" to start).',
            )
        # More than one record: receivers ignore them all (RFC 7489 section 6.6.3).
        return Check(
            "DMARC",
            Status.WARN,
            f"{domain} has {len(dmarc)} DMARC records, so receivers ignore them all: keep one at {name}.",
        )

    def _account_checks(self) -> Iterator[Check]:
        ses = self.target.client("sesv2")
        account = ses.get_account()
        yield _sending_enabled(account)
        if account.get("ProductionAccessEnabled"):
            yield Check("SES sandbox", Status.OK, "the account has production access")
        else:
            yield self._sandbox_recipients(ses)
        yield _quota(account.get("SendQuota") or {})

    def _sandbox_recipients(self, ses: Any) -> Check:
        listed = self.target.resource(CLINIC_ADDRESSES).split(",")
        recipients = [address.strip() for address in listed if address.strip()]
        verified: set[str] = set()
        token: dict[str, str] = {}
        while True:  # botocore has no paginator for it
            page = ses.list_email_identities(PageSize=1000, **token)
            for identity in page.get("EmailIdentities", []):
                if identity.get("VerificationStatus") == "SUCCESS":
                    verified.add(str(identity.get("IdentityName", "")).lower())
            if not page.get("NextToken"):
                break
            token = {"NextToken": str(page["NextToken"])}
        unverified = [
            address
            for address in recipients
            if address.lower() not in verified and address.rpartition("@")[2].lower() not in verified
        ]
        if not unverified:
            return Check(
                "SES sandbox",
                Status.OK,
                "in the sandbox, but every clinic address is verified (acknowledgements to enquirers "
                "need production access)",
            )
        return Check(
            "SES sandbox",
            Status.FAIL,
            f"the SES account is in the sandbox and {', '.join(unverified)} "
            f"{'is' if len(unverified) == 1 else 'are'} not verified, so SES will not deliver to "
            f"{'it' if len(unverified) == 1 else 'them'}: verify each address in the SES console "
            "(Identities), or request production access (SES console, Account dashboard).",
        )

    # -- hearing about problems ------------------------------------------------------------------

    def _alert_subscription(self) -> Iterator[Check]:
        topic = self.target.resource(ALERT_TOPIC)
        subscriptions = [
            subscription
            for page in self.target.client("sns")
            .get_paginator("list_subscriptions_by_topic")
            .paginate(TopicArn=topic)
            for subscription in page.get("Subscriptions", [])
        ]
        confirmed = [s for s in subscriptions if str(s.get("SubscriptionArn", "")).startswith("arn:")]
        pending = [s for s in subscriptions if s.get("SubscriptionArn") == "PendingConfirmation"]
        if confirmed:
            who = ", ".join(sorted({one_line(s.get("Endpoint", "")) for s in confirmed}))
            yield Check("alert email", Status.OK, f"alarms reach {who}")
        elif pending:
            who = ", ".join(sorted({one_line(s.get("Endpoint", "")) for s in pending}))
            yield Check(
                "alert email",
                Status.FAIL,
                f"nobody has confirmed the alert email to {who}, so no alarm reaches anyone: open the "
                'email from "AWS Notifications" and click "Confirm subscription" (it expires after '
                "3 days; then deploy again or subscribe the address to the topic again).",
            )
        else:
            yield Check(
                "alert email",
                Status.FAIL,
                "the alert topic has no subscription, so no alarm reaches anyone: set AlertEmail and "
                "deploy again (sam deploy), then confirm the email AWS sends.",
            )

    def _alarms(self) -> Iterator[Check]:
        prefix = f"{self.stack_name}-"
        alarms = [
            alarm
            for page in self.target.client("cloudwatch")
            .get_paginator("describe_alarms")
            .paginate(AlarmNamePrefix=prefix, AlarmTypes=["MetricAlarm"])
            for alarm in page.get("MetricAlarms", [])
        ]
        if not alarms:
            yield Check(
                "alarms",
                Status.WARN,
                f"no alarm named {prefix}...: deploy this version of template.yaml (sam deploy).",
            )
            return
        firing = [alarm for alarm in alarms if alarm.get("StateValue") == "ALARM"]
        for alarm in sorted(firing, key=lambda alarm: str(alarm["AlarmName"])):
            since = alarm.get("StateUpdatedTimestamp")
            when = f" since {since:%Y-%m-%d %H:%M} UTC" if isinstance(since, datetime) else ""
            yield Check(
                f"alarm {alarm['AlarmName']}",
                Status.FAIL,
                f"in ALARM{when}. {one_line(alarm.get('AlarmDescription', ''))} "
                "docs/alarms.md says what to do.",
            )
        if not firing:
            yield Check("alarms", Status.OK, f"none of the stack's {len(alarms)} alarms is in ALARM")

    def _canary(self) -> Iterator[Check]:
        if not self.target.resources.get(CANARY):
            yield Check(
                "canary",
                Status.SKIP,
                "this stack runs no scheduled canary, so there is no daily proof that an enquiry "
                "reaches the inbox",
            )
            return
        now = datetime.now(UTC)
        result = self.target.client("cloudwatch").get_metric_data(
            MetricDataQueries=[
                {
                    "Id": "canary",
                    "MetricStat": {
                        "Metric": {
                            "Namespace": canary_metric.NAMESPACE,
                            "MetricName": canary_metric.NAME,
                            "Dimensions": [
                                {"Name": name, "Value": value}
                                for name, value in canary_metric.dimensions(self._service()).items()
                            ],
                        },
                        "Period": 300,
                        "Stat": "Minimum",
                    },
                }
            ],
            StartTime=now - CANARY_LOOKBACK,
            # Past now, so that a result published this second is in.
            EndTime=now + timedelta(minutes=5),
            ScanBy="TimestampDescending",
        )
        series = (result.get("MetricDataResults") or [{}])[0]
        points = sorted(zip(series.get("Timestamps", []), series.get("Values", []), strict=False))
        canary = self._command("canary")
        if not points:
            yield Check(
                "canary",
                Status.FAIL,
                f"no canary has run in the last {CANARY_LOOKBACK.total_seconds() / 3600:.0f} hours: "
                f"run `{canary}` to try the path now, and check that the schedule is on.",
            )
            return
        at, value = points[-1]
        when = f"{at:%Y-%m-%d %H:%M} UTC" if isinstance(at, datetime) else "last run"
        if value >= 1:
            yield Check("canary", Status.OK, f"the last canary ({when}) reached the inbox")
        else:
            yield Check(
                "canary",
                Status.FAIL,
                f"the last canary ({when}) did not get through: run `{canary}` to see which step fails.",
            )

    def _service(self) -> str:
        """The metrics' service dimension: the stack's name (POWERTOOLS_SERVICE_NAME, template.yaml)."""
        return self.stack_name or "enquiries"

    def _command(self, subcommand: str) -> str:
        where = f"--stack {self.stack_name}" if self.stack_name else "--local URL"
        return f"enquiries {where} {subcommand}"


# -- one check each ---------------------------------------------------------------------------------


def preflight(api_url: str, origin: str) -> Check:
    """The API's answer to a browser's CORS preflight from `origin`, for the POST the form makes."""
    name = f"CORS from {origin}"
    request = urllib.request.Request(  # noqa: S310 - the stack's own https URL, or the local server's
        api_url,
        method="OPTIONS",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=PREFLIGHT_SECONDS) as response:  # noqa: S310
            status, headers = response.status, response.headers
    except urllib.error.HTTPError as error:
        status, headers = error.code, error.headers
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        return Check(
            name,
            Status.FAIL,
            f"the API at {api_url} did not answer ({one_line(reason)}): check the network, then try again; "
            "if it stays so, the stack may have been deleted.",
        )
    allowed_origin = headers.get("Access-Control-Allow-Origin", "")
    allowed_methods = headers.get("Access-Control-Allow-Methods", "")
    methods = [method.strip().upper() for method in allowed_methods.split(",")]
    answered = HTTPStatus.OK <= status < HTTPStatus.MULTIPLE_CHOICES
    if answered and allowed_origin in (origin, "*") and ("POST" in methods or "*" in methods):
        return Check(name, Status.OK, "the API lets the website's form post from here")
    return Check(
        name,
        Status.FAIL,
        f"the API refused the browser's check (HTTP {status}), so the form on {origin} cannot send "
        "enquiries: list the origin in AllowedOrigins exactly as the browser shows it, and deploy again.",
    )


def _verification(identity: str, found: dict[str, Any]) -> Check:
    status = str(found.get("VerificationStatus") or "")
    if status == "SUCCESS":
        return Check("sender identity", Status.OK, f"{identity} is verified in SES")
    how = (
        "click the link in the email SES sent to that address (or resend it from the SES console)"
        if "@" in identity
        else "publish the DNS records the SES console shows for it (Identities, the domain)"
    )
    return Check(
        "sender identity",
        Status.FAIL,
        f"SES has not verified {identity} (status {status or 'unknown'}), so no enquiry email can be "
        f"sent: {how}.",
    )


def _dkim(identity: str, found: dict[str, Any]) -> Check:
    dkim = found.get("DkimAttributes") or {}
    if dkim.get("SigningEnabled") and dkim.get("Status") == "SUCCESS":
        return Check("DKIM", Status.OK, f"SES signs the email from {identity}")
    return Check(
        "DKIM",
        Status.FAIL,
        f"DKIM is not working for {identity} (status {dkim.get('Status') or 'unknown'}), so emails are "
        "more likely to be filed as spam: publish the three CNAME records the SES console shows "
        "(Identities, the domain, Authentication), and check that DKIM signing is on.",
    )


def _sending_enabled(account: dict[str, Any]) -> Check:
    enforcement = str(account.get("EnforcementStatus") or "")
    if account.get("SendingEnabled") is False or enforcement == "SHUTDOWN":
        return Check(
            "SES sending",
            Status.FAIL,
            "SES has paused sending for this account, so no enquiry email goes out: open the SES "
            "console's Account dashboard and the message AWS sent about it.",
        )
    if enforcement == "PROBATION":
        return Check(
            "SES sending",
            Status.WARN,
            "SES has the account under review (bounces or complaints): open the SES console's "
            "Reputation metrics and the message AWS sent about it, before sending is paused.",
        )
    return Check("SES sending", Status.OK, "SES is sending for this account")


def _quota(quota: dict[str, Any]) -> Check:
    maximum = float(quota.get("Max24HourSend") or 0)
    sent = float(quota.get("SentLast24Hours") or 0)
    if maximum == UNLIMITED_QUOTA:
        return Check("sending quota", Status.OK, "the account has no daily sending limit")
    if maximum <= 0:
        return Check("sending quota", Status.WARN, "SES did not say the account's daily quota")
    summary = f"{sent:.0f} of {maximum:.0f} emails a day used in the last 24 hours"
    if sent >= maximum:
        return Check(
            "sending quota",
            Status.FAIL,
            f"{summary}: SES refuses more until the count falls; request a higher quota (SES console, "
            "Account dashboard) or find what is sending so much.",
        )
    if sent >= maximum * QUOTA_WARNING_SHARE:
        return Check(
            "sending quota",
            Status.WARN,
            f"{summary}: request a higher quota (SES console, Account dashboard) before it runs out.",
        )
    return Check("sending quota", Status.OK, summary)


def _dns_unreadable(name: str, domain: str, error: Exception) -> Check:
    return Check(
        name,
        Status.WARN,
        f"could not read the DNS records of {domain} now ({error}): run doctor again later, or from "
        "another network.",
    )


def _skipped_locally() -> Iterator[Check]:
    reason = "only a deployed stack has this"
    for name in ("sender identity", "SES account", "alert email", "alarms", "canary"):
        yield Check(name, Status.SKIP, reason)


def _count(count: int, singular: str, many: str) -> str:
    return f"{count} {singular if count == 1 else many}"


def failed(checks: Sequence[Check]) -> int:
    return sum(check.status is Status.FAIL for check in checks)
