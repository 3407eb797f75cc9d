"""The scheduled canary (template.yaml, CanaryFunction): each run sends one synthetic enquiry through
the public API (enquiries/canary_run.py), follows it until the notifier has emailed it to SES's
mailbox simulator, deletes it, and publishes the result and each step's time (canary_metric.py),
which the `<stack>-canary` alarm and `enquiries doctor` read. A failed step is a result (0), never an
error of the function: the alarm watches the result, and a run that does not happen publishes none.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

from enquiries import canary, canary_metric
from enquiries.aws_clients import dynamodb_client, secretsmanager_client
from enquiries.canary_run import SENT, Canary, Step, Where, failed_step, first_origin
from enquiries.log import logger, metrics_names
from enquiries.settings import CANARY_REQUIRES, Settings, SettingsError, load_settings

REQUIRED_SETTINGS = CANARY_REQUIRES


def where(settings: Settings) -> Where:
    if not settings.canary_api_url or not settings.allowed_origins:
        raise SettingsError("CANARY_API_URL and ALLOWED_ORIGINS are required by the canary")
    return Where(
        settings.canary_api_url, first_origin(",".join(settings.allowed_origins)), settings.table_name
    )


def proof_key(secret_arn: str, client: Any) -> bytes:
    """The proof's key, from the address-hashing secret (read on each run: a run is a day apart)."""
    secret = client.get_secret_value(SecretId=secret_arn)
    return canary.derive_key(str(secret["SecretString"]))


def publish(steps: list[Step], metrics: Metrics) -> None:
    """The run's result, 1 or 0, and the time each step that ran ended at, as one EMF record."""
    metrics.add_metric(name=canary_metric.NAME, unit=MetricUnit.Count, value=int(failed_step(steps) is None))
    for step in steps:
        metrics.add_metric(
            name=canary_metric.STEP_SECONDS[step.name], unit=MetricUnit.Seconds, value=round(step.seconds, 3)
        )
    metrics.flush_metrics()


def run(
    settings: Settings,
    *,
    dynamodb: Any,
    secrets: Any,
    metrics: Metrics,
    make: Callable[..., Canary] = Canary,
) -> dict[str, Any]:
    """One run; its answer names the failed step, if any (for a manual invoke's reader)."""
    try:
        key = proof_key(str(settings.client_address_secret_arn), secrets)
    except Exception as error:  # any failure to read the key fails the first step
        steps = [Step(SENT, False, 0.0, f"the proof's key could not be read ({type(error).__name__})")]
    else:
        steps = make(where(settings), key, dynamodb).run()
    publish(steps, metrics)
    failed = failed_step(steps)
    for step in steps:
        logger.info(
            "canary step",
            extra={
                "step": step.name,
                "ok": step.ok,
                "seconds": round(step.seconds, 3),
                "detail": step.detail,
            },
        )
    return {"succeeded": failed is None, "failedStep": failed.name if failed else None}


def lambda_handler(event: Any, context: Any) -> dict[str, Any]:
    settings = load_settings(required=REQUIRED_SETTINGS)
    namespace, service = metrics_names()
    return run(
        settings,
        dynamodb=dynamodb_client(),
        secrets=secretsmanager_client(),
        metrics=Metrics(namespace=namespace, service=service),
    )
