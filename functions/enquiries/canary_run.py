"""The canary's path, step by step: one synthetic enquiry sent through the public API as a website on
an allowed origin sends it, followed in the table until the notifier has emailed it, then deleted.

One implementation for both runners: the stack's scheduled function (enquiries/canary_function.py)
and the operator's `enquiries canary` (enquiries_cli/canary.py), each giving it the API's URL, the
origin, the table and a DynamoDB client. The request carries the canary proof (enquiries/canary.py),
so the submission path marks the stored enquiry as the canary's and the notifier emails it to SES's
mailbox simulator, never to staff, and never acknowledges it.
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
from typing import Any

from enquiries import canary
from enquiries.notify.ledger import DynamoNotificationLedger

# The whole path, from the request to the mark, within this (the contract's `canary`).
DEADLINE_SECONDS = 60.0
POLL_SECONDS = 0.25
REQUEST_SECONDS = 30.0
# The steps, in order (canary_metric.STEP_SECONDS names each one's metric).
SENT = "sent through the API"
STORED = "stored as the canary"
EMAILED = "emailed and marked"
DELETED = "deleted"
STEPS = (SENT, STORED, EMAILED, DELETED)


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


@dataclass(frozen=True)
class Where:
    """Where the canary goes: the API's URL, the Origin it sends (an allowed one) and the table."""

    api_url: str
    origin: str
    table_name: str


def first_origin(allowed_origins: str) -> str:
    """The origin the canary posts from: the first of ALLOWED_ORIGINS (comma-separated)."""
    return allowed_origins.split(",")[0].strip()


@dataclass
class Canary:
    where: Where
    key: bytes
    dynamodb: Any
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
        step(SENT, enquiry_id is not None, problem)
        if enquiry_id is None:
            return steps
        try:
            try:
                stored = self._get(enquiry_id)
            except Exception as error:  # any failure to read is this step's, never the run's
                step(STORED, False, _unreadable(error))
                return steps
            marked = stored is not None and stored.get(canary.ATTRIBUTE) is True
            problem = "not in the table" if stored is None else "stored as an ordinary enquiry"
            if not step(STORED, marked, "" if marked else problem):
                return steps
            try:
                emailed = self._wait_until_emailed(enquiry_id, started)
                problem = "" if emailed else f"not within {DEADLINE_SECONDS:.0f} s"
            except Exception as error:
                emailed, problem = False, _unreadable(error)
            step(EMAILED, emailed, problem)
        finally:
            deleted, problem = self._delete(enquiry_id)
        if steps[-1].ok or not deleted:
            step(DELETED, deleted, problem)
        return steps

    def _get(self, enquiry_id: str) -> dict[str, Any] | None:
        # A consistent read, as the notifier reads an enquiry.
        return DynamoNotificationLedger(self.where.table_name, client_factory=lambda: self.dynamodb).get(
            enquiry_id
        )

    def _send(self) -> tuple[str | None, str]:
        idempotency_key = f"canary-{uuid.uuid4()}"
        sent_at = datetime.fromtimestamp(self.wall_clock(), UTC)
        body = {
            "name": "Enquiries canary",
            "email": canary.SIMULATOR_ADDRESS,
            # Unique, so that two canaries never look like one double-submitted enquiry.
            "message": f"A test the stack sent itself at {sent_at:%Y-%m-%d %H:%M:%S} UTC ({idempotency_key})",
            "consent": True,
        }
        request = urllib.request.Request(  # noqa: S310 - the stack's own API URL
            self.where.api_url,
            data=json.dumps(body).encode(),
            method="POST",
            headers={
                "Content-Type": "application/json",
                "Accept": "application/json",
                "Origin": self.where.origin,
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
            reason = " ".join(str(getattr(error, "reason", error)).split())[:200]
            return None, f"the API did not answer ({reason})"
        except ValueError:
            return None, "the API's answer was not JSON"
        enquiry_id = answer.get("id") if isinstance(answer, dict) else None
        return (str(enquiry_id), "") if enquiry_id else (None, "the API's answer named no enquiry")

    def _wait_until_emailed(self, enquiry_id: str, started: float) -> bool:
        while True:
            item = self._get(enquiry_id)
            if item is not None and item.get("notified_at"):
                return True
            if self.clock() - started + POLL_SECONDS > DEADLINE_SECONDS:
                return False
            self.sleep(POLL_SECONDS)

    def _delete(self, enquiry_id: str) -> tuple[bool, str]:
        """Delete the enquiry, only while it is the canary's (never an ordinary enquiry)."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.dynamodb.delete_item(
                TableName=self.where.table_name,
                Key={"id": {"S": enquiry_id}},
                ConditionExpression="#canary = :yes",
                ExpressionAttributeNames={"#canary": canary.ATTRIBUTE},
                ExpressionAttributeValues={":yes": {"BOOL": True}},
            )
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", ""))
            if code == "ConditionalCheckFailedException":
                return True, ""  # not the canary's (or gone already): never deleted
            return False, f"DynamoDB refused the delete ({code})"
        except BotoCoreError as error:
            return False, f"DynamoDB did not answer ({type(error).__name__})"
        return True, ""


def _unreadable(error: Exception) -> str:
    return f"the table could not be read ({type(error).__name__})"


def failed_step(steps: list[Step]) -> Step | None:
    return next((step for step in steps if not step.ok), None)
