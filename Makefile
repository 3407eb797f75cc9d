# Two commands on a fresh machine: `make dev` (the local server) and `make test` (every check).
# Each creates .venv and installs the pinned requirements the first time, and again when they change.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 3000

.PHONY: dev test lint typecheck unit install clean sample-email

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
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
	$(PY) -m devserver.sample_email

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .aws-sam
