"""The metric the scheduled canary publishes, one data point a run: 1 when an enquiry sent through the
public API reached the notifier's email, 0 when a step failed. The canary writes it, the template's
alarm watches it and `enquiries doctor` reads the last one: all three take its name from here."""

from __future__ import annotations

# Powertools' Metrics publish under a namespace with the "service" dimension (POWERTOOLS_SERVICE_NAME
# in template.yaml), as the notifier's metrics do.
NAMESPACE = "Enquiries"
NAME = "CanarySucceeded"
DIMENSIONS = {"service": "enquiries"}
