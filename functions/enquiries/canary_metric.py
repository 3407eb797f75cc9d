"""The metrics the scheduled canary publishes, one data point each a run: `NAME` is 1 when an enquiry
sent through the public API reached the notifier's email, 0 when a step failed; `STEP_SECONDS` are
the seconds from the start to the end of each step that ran. The canary writes them, the template's
alarm watches `NAME` and `enquiries doctor` reads its last value: all three take the names from here.
"""

from __future__ import annotations

# Powertools' Metrics publish under the namespace POWERTOOLS_METRICS_NAMESPACE with the "service"
# dimension POWERTOOLS_SERVICE_NAME (template.yaml: the stack's name, so that two stacks in one
# account never count into each other's alarms), as the notifier's metrics do (enquiries/log.py).
NAMESPACE = "Enquiries"
NAME = "CanarySucceeded"
SERVICE_DIMENSION = "service"
# The step (enquiries/canary_run.py STEPS) -> its metric.
STEP_SECONDS = {
    "sent through the API": "CanarySendSeconds",
    "stored as the canary": "CanaryStoredSeconds",
    "emailed and marked": "CanaryEmailedSeconds",
    "deleted": "CanaryDeletedSeconds",
}


def dimensions(service: str) -> dict[str, str]:
    """The metrics' dimensions for the stack `service` (its name)."""
    return {SERVICE_DIMENSION: service}
