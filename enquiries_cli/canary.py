"""`enquiries canary`: one synthetic enquiry through the public API, as a website on an allowed origin
sends it, followed until the notifier has emailed it, then deleted; each step timed.

The request carries the canary proof (functions/enquiries/canary.py), so the submission path marks
the stored enquiry as the canary's and the notifier emails it to SES's mailbox simulator, never to
staff, and never acknowledges it. The proof's key is derived from the stack's address-hashing
secret, which only the local server lets this command read: against a stack the canary runs as the
stack's own scheduled function (not in this version of the template).
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from enquiries_cli.functions_adapter import canary, get_enquiry
from enquiries_cli.output import one_line
from enquiries_cli.target import ADDRESS_SECRET, ALLOWED_ORIGINS, API_URL, Target

# The whole path, from the request to the mark, within this (the contract's `canary`).
DEADLINE_SECONDS = 60.0
POLL_SECONDS = 0.25
REQUEST_SECONDS = 30.0


@dataclass(frozen=True)
class Step:
    """One step of the path: whether it worked, and when it ended (seconds from the start)."""

    name: str
    ok: bool
    seconds: float
    detail: str = ""

    def line(self) -> str:
        status = "ok" if self.ok else "FAIL"
        detail = f": {self.detail}" if self.detail else ""
        return f"{status:<4}  {self.name:<22}{self.seconds:7.2f} s{detail}"


@dataclass
class Canary:
    target: Target
    key: bytes
    clock: Callable[[], float] = time.monotonic
    wall_clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep

    def run(self) -> list[Step]:
        """The steps in order, up to and including the first that failed; the enquiry is deleted
        whenever it was stored, so a canary never lingers."""
        started = self.clock()
        steps: list[Step] = []

        def step(name: str, ok: bool, detail: str = "") -> bool:
            steps.append(Step(name, ok, self.clock() - started, detail))
            return ok

        enquiry_id, problem = self._send()
        step("sent through the API", enquiry_id is not None, problem)
        if enquiry_id is None:
            return steps
        try:
            stored = get_enquiry(self.target.client("dynamodb"), self.target.table_name, enquiry_id)
            marked = stored is not None and stored.get(canary.ATTRIBUTE) is True
            problem = "not in the table" if stored is None else "stored as an ordinary enquiry"
            if not step("stored as the canary", marked, "" if marked else problem):
                return steps
            emailed = self._wait_until_emailed(enquiry_id, started)
            step("emailed and marked", emailed, "" if emailed else f"not within {DEADLINE_SECONDS:.0f} s")
        finally:
            self._delete(enquiry_id)
        if steps[-1].ok:
            step("deleted", True)
        return steps

    def _send(self) -> tuple[str | None, str]:
        api_url = self.target.resource(API_URL)
        origin = self.target.resource(ALLOWED_ORIGINS).split(",")[0].strip()
        idempotency_key = f"canary-{uuid.uuid4()}"
        sent_at = datetime.fromtimestamp(self.wall_clock(), UTC)
        body = {
            "name": "Enquiries canary",
            "email": canary.SIMULATOR_ADDRESS,
            # Unique, so that two canaries never look like one double-submitted enquiry.
            "message": f"A test the stack sent itself at {sent_at:%Y-%m-%d %H:%M:%S} UTC ({idempotency_key})",
            "consent": True,
        }
        request = urllib.request.Request(  # noqa: S310 - the target's own API URL
            api_url,
            data=json.dumps(body).encode(),
            method="POST",
            headers={
                "Content-Type": "application/json",
                "Accept": "application/json",
                "Origin": origin,
                "Idempotency-Key": idempotency_key,
                canary.HEADER: canary.make_proof(
                    self.key, idempotency_key=idempotency_key, now=self.wall_clock()
                ),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=REQUEST_SECONDS) as response:  # noqa: S310
                answer = json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            return None, f"the API answered HTTP {error.code}"
        except (urllib.error.URLError, OSError) as error:
            return None, f"the API did not answer ({one_line(getattr(error, 'reason', error))})"
        except ValueError:
            return None, "the API's answer was not JSON"
        enquiry_id = answer.get("id") if isinstance(answer, dict) else None
        return (str(enquiry_id), "") if enquiry_id else (None, "the API's answer named no enquiry")

    def _wait_until_emailed(self, enquiry_id: str, started: float) -> bool:
        while True:
            item = get_enquiry(self.target.client("dynamodb"), self.target.table_name, enquiry_id)
            if item is not None and item.get("notified_at"):
                return True
            if self.clock() - started + POLL_SECONDS > DEADLINE_SECONDS:
                return False
            self.sleep(POLL_SECONDS)

    def _delete(self, enquiry_id: str) -> None:
        """Delete the enquiry, only while it is the canary's (never an ordinary enquiry)."""
        from botocore.exceptions import ClientError

        try:
            self.target.client("dynamodb").delete_item(
                TableName=self.target.table_name,
                Key={"id": {"S": enquiry_id}},
                ConditionExpression="#canary = :yes",
                ExpressionAttributeNames={"#canary": canary.ATTRIBUTE},
                ExpressionAttributeValues={":yes": {"BOOL": True}},
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise


def local_key(target: Target) -> bytes:
    """The proof's key on the local server, from its emulator's address-hashing secret."""
    secret = target.client("secretsmanager").get_secret_value(SecretId=target.resource(ADDRESS_SECRET))
    return canary.derive_key(str(secret["SecretString"]))


def failed_step(steps: list[Step]) -> Step | None:
    return next((step for step in steps if not step.ok), None)
