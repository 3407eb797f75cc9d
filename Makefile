# Two commands on a fresh machine: `make dev` (the local server) and `make test` (every check).
# Each creates .venv and installs the pinned requirements the first time, and again when they change.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 3000

.PHONY: dev test lint typecheck unit install clean sample-email screenshot

# The last step installs the operator's command, .venv/bin/enquiries, editable: it runs this checkout's code.
$(VENV)/.installed: functions/requirements.txt layers/timezone-data/requirements.txt requirements-operator.txt \
		requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --editable .
	touch $@

install: $(VENV)/.installed

dev: $(VENV)/.installed
	$(PY) -m devserver --host $(HOST) --port $(PORT)

lint: $(VENV)/.installed
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(VENV)/bin/cfn-lint template.yaml

typecheck: $(VENV)/.installed
	$(PY) -m mypy

unit: $(VENV)/.installed
	$(PY) -m pytest

test: lint typecheck unit

# A sample notification email from fixed data (events/stream-insert.json), for staff and reviewers.
sample-email: $(VENV)/.installed
	$(PY) -m scripts.sample_email

# The demo page with the server's inline errors, in Debian's Chromium (/usr/bin/chromium), for the docs.
screenshot: $(VENV)/.installed
	$(PY) -m scripts.screenshot_demo_form

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .aws-sam

# --- proof and performance (issue 6) -------------------------------------------------------------
.PHONY: bench load fuzz openapi

# Submission handler vs a bare boto3 handler, interleaved, against one loopback moto server.
bench: $(VENV)/.installed
	$(PY) -m bench

# A bounded load against the local server (loopback only; stops by itself).
load: $(VENV)/.installed
	$(PY) -m bench.load

# A longer schemathesis and Hypothesis run than `make test` does.
fuzz: $(VENV)/.installed
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-1000} $(PY) -m pytest -m fuzz -p no:cacheprovider tests/test_fuzz_api.py tests/test_fuzz_parsing.py

# Regenerate docs/openapi.json from the routes and models (a test fails when it is stale).
openapi: $(VENV)/.installed
	$(PY) -m scripts.openapi

# The operator's command on 2,000 and 20,000 enquiries in the emulator: time and peak memory.
.PHONY: operator-scale
operator-scale: $(VENV)/.installed
	$(PY) -m bench.operator_scale
