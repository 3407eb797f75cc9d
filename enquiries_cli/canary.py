"""`enquiries canary`: the stack's canary path (functions/enquiries/canary_run.py, which the scheduled
canary function runs too), on demand, against the local server or a deployed stack: the API's URL
and the allowed origins from the target, the proof's key from the target's address-hashing secret
(the operator's policy may read it: it is how `erase` finds a person's records), and the table.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from enquiries_cli.functions_adapter import canary, canary_run
from enquiries_cli.target import ADDRESS_SECRET, ALLOWED_ORIGINS, API_URL, Target

Step = canary_run.Step
failed_step = canary_run.failed_step


def key_of(target: Target) -> bytes:
    """The proof's key, from the target's address-hashing secret."""
    secret = target.client("secretsmanager").get_secret_value(SecretId=target.resource(ADDRESS_SECRET))
    return canary.derive_key(str(secret["SecretString"]))


def run(target: Target, *, wall_clock: Callable[[], float] = time.time) -> list[canary_run.Step]:
    """The canary path on `target`: its API, the first allowed origin, its table; the steps run."""
    where = canary_run.Where(
        api_url=target.resource(API_URL),
        origin=canary_run.first_origin(target.resource(ALLOWED_ORIGINS)),
        table_name=target.table_name,
    )
    return canary_run.Canary(where, key_of(target), target.client("dynamodb"), wall_clock=wall_clock).run()
