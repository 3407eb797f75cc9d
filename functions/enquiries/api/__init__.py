"""The HTTP API: the submission function behind API Gateway."""
