"""Lambda SnapStart (the template's SnapStart parameter): the first request's setup done in the init
Lambda snapshots, and what a process restored from that snapshot must not reuse.

Lambda runs the init once, when it publishes a version, snapshots the process, and starts each new
execution environment from that snapshot (https://docs.aws.amazon.com/lambda/latest/dg/snapstart.html).
Work done in that init costs a visitor nothing; but whatever it leaves in memory, every restored copy
shares:

- Randomness. `random` has the same state in every copy, so it is seeded again. Enquiry ids are ULIDs
  whose 80 random bits come from os.urandom, the kernel's generator, which SnapStart keeps unique
  ("Software that always gets random numbers from /dev/random or /dev/urandom also maintains
  randomness": https://docs.aws.amazon.com/lambda/latest/dg/snapstart-uniqueness.html); the ULID
  generator's same-millisecond state (python-ulid's monotonic ids) is started afresh too.
- Connections and credentials. botocore's pooled connections are not valid after a restore, and
  credentials resolved before the snapshot may have expired since: the clients are dropped
  (aws_clients.drop_clients) and made again, from the loaded service models, on first use.
- Secrets. The snapshot's init does not read them (an ordinary init does, to name an unreadable one
  at once): dropping a value read there would not be enough, since botocore's HTTP buffers and
  parsed response, and the freed memory of the value itself, keep copies that Python gives no way to
  overwrite; tests/test_snapstart.py searches the process's memory for the key when the snapshot
  would be taken. Their client is made (warm_up), and each restored copy reads them on its first
  request that needs them, as a new container does, so a rotated key (the address key, a Turnstile
  key replaced after a leak) reaches every copy without publishing a new version. before_snapshot
  still drops any value read by then.

None of this runs unless Lambda initialises the function for a snapshot
(AWS_LAMBDA_INITIALIZATION_TYPE is "snap-start":
https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html#configuration-envvars-runtime),
so an ordinary cold start, which a visitor waits for, does no extra work. The hooks are registered
with Lambda's runtime hook library, snapshot_restore_py, which the Python managed runtimes include
(https://docs.aws.amazon.com/lambda/latest/dg/snapstart-runtime-hooks-python.html); where it is
missing (tests, the local server) nothing is registered, and the hooks are plain functions to call.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from enquiries.log import logger

if TYPE_CHECKING:
    from enquiries.settings import Settings
    from enquiries.stored_secret import StoredSecret

SNAPSHOT_INIT = "snap-start"
HOOKS_MODULE = "snapshot_restore_py"
# Imported lazily by the request path, only by the requests that need them: in a snapshot they cost
# nothing, so every request finds them loaded.
LAZY_MODULES = (
    "enquiries.api.pages",  # a plain HTML form's error and thank-you pages
    "python_multipart.multipart",  # multipart/form-data bodies
    "aws_lambda_powertools.metrics",  # the robot trap's SpamBlocked metric
)


def snapshot_init(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether Lambda is running this init to take a SnapStart snapshot."""
    return environ.get("AWS_LAMBDA_INITIALIZATION_TYPE") == SNAPSHOT_INIT


def prepare_snapshot(
    settings: Settings, secrets: Sequence[StoredSecret], environ: Mapping[str, str] = os.environ
) -> bool:
    """At the end of the init: under SnapStart, register the hooks and do the first request's setup.
    Return whether it did; an ordinary init returns at once."""
    if not snapshot_init(environ):
        return False
    register_hooks(secrets)
    try:
        warm_up(settings)
    except Exception as error:  # a request does the same setup itself; never fail the init for it
        logger.warning("snapshot warm-up incomplete", extra={"error_type": type(error).__name__})
    return True


def register_hooks(secrets: Sequence[StoredSecret]) -> bool:
    """Register before_snapshot and after_restore with Lambda's runtime; False where the library is
    missing (not on Lambda)."""
    try:
        hooks = importlib.import_module(HOOKS_MODULE)
    except ImportError:
        return False
    hooks.register_before_snapshot(before_snapshot, secrets)
    hooks.register_after_restore(after_restore, secrets)
    return True


def warm_up(settings: Settings) -> None:
    """What the first request would do before its first AWS call: make the AWS clients, compile the
    validators (email-validator's grammar, the phone metadata of DEFAULT_PHONE_REGION) and import
    the modules only some requests need."""
    from enquiries.aws_clients import submission_dynamodb, submission_secrets
    from enquiries.aws_json import prepare_for_snapshot

    started = time.perf_counter()
    submission_dynamodb()
    submission_secrets()
    prepare_for_snapshot()
    _validate_a_sample(settings)
    for module in LAZY_MODULES:
        importlib.import_module(module)
    logger.info("snapshot prepared", extra={"duration_ms": round((time.perf_counter() - started) * 1000, 1)})


def _validate_a_sample(settings: Settings) -> None:
    """Every field validator once, on made-up values (nothing is stored or logged)."""
    import phonenumbers

    from enquiries.field_rules import field_rules
    from enquiries.validation import InvalidEnquiry, validate_enquiry

    rules = field_rules(settings)
    sample = {
        "name": "Snapshot",
        "email": "snapshot@example.com",
        "service": settings.services[0],
        "message": "A sample enquiry.",
        "consent": "true",
    }
    # A number as a visitor in the region writes it, which loads that region's phone metadata.
    example = phonenumbers.example_number(settings.default_phone_region)
    if example is not None:
        sample["phone"] = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.NATIONAL)
    with contextlib.suppress(InvalidEnquiry):  # the validators ran, which is what was wanted
        validate_enquiry(sample, rules)


def before_snapshot(secrets: Sequence[StoredSecret]) -> None:
    """Lambda's before-snapshot hook: no secret value read by now stays referenced (the init reads
    none under SnapStart; this covers anything that read one since)."""
    for secret in secrets:
        secret.forget()


def after_restore(secrets: Sequence[StoredSecret]) -> None:
    """Lambda's after-restore hook, run in each restored copy before its first request. It makes no
    call (Lambda gives the hooks 10 s): each thing it drops is made again on first use."""
    import random

    import ulid

    from enquiries.aws_clients import drop_clients

    random.seed()  # from os.urandom, which differs in every copy
    ulid.default_generator = ulid.ULIDGenerator()
    drop_clients()
    for secret in secrets:
        secret.forget()
