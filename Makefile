# Two commands on a fresh machine: `make dev` (the local server) and `make test` (every check).
# Each creates .venv and installs the pinned requirements the first time, and again when they change.
# `make test` also creates .sam-venv, the SAM CLI's own virtualenv (it pins its own boto3).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
SAM_VENV ?= .sam-venv
HOST ?= 127.0.0.1
PORT ?= 3000

.PHONY: dev test lint typecheck unit coverage sam-check docs-commands install clean sample-email screenshot

# `make dev` installs only what the local server needs (requirements-server.txt); `make test` adds the
# test and lint tools (requirements.txt, which includes it). The last step of the server's installs the
# operator's command, .venv/bin/enquiries, editable: it runs this checkout's code.
$(VENV)/.server-installed: functions/requirements.txt functions/build-requirements.txt \
		layers/libraries/requirements.txt \
		layers/timezone-data/requirements.txt requirements-operator.txt requirements-server.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-server.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --editable .
	touch $@

$(VENV)/.installed: $(VENV)/.server-installed requirements.txt
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

$(SAM_VENV)/.installed: requirements-sam.txt
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(SAM_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-sam.txt
	touch $@

install: $(VENV)/.installed

dev: $(VENV)/.server-installed
	$(PY) -m devserver --host $(HOST) --port $(PORT)

lint: $(VENV)/.installed
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(VENV)/bin/cfn-lint template.yaml

typecheck: $(VENV)/.installed
	$(PY) -m mypy

# pytest under coverage, the local server the tests start included; each process writes its own data
# file, combined before the report, which fails under fail_under (pyproject.toml, [tool.coverage]).
# Quick feedback: the tests in one process per core (pytest-xdist), a test file's tests together in
# one of them (a module's local server starts once), without the end-to-end ones marked `slow` (the
# browser, the SAM CLI, the local server's command runs, load and faults) and without coverage.
unit: $(VENV)/.installed
	$(PY) -m pytest -n auto --dist loadfile -m "not slow"

# Every test, under coverage (it measures each worker, as it does the local server), and the gate.
# (.sam-venv too: tests/test_sam_local.py resolves the template with the SAM CLI's own code.)
coverage: $(VENV)/.installed $(SAM_VENV)/.installed
	$(PY) -m coverage erase
	$(PY) -m coverage run -m pytest -n auto --dist loadfile
	$(PY) -m coverage combine --quiet
	$(PY) -m coverage report

# sam validate --lint, then sam build with the template's Python, or, on a machine without it, from a copy
# of the template for a Python it has (it says so; scripts/sam_check.py). Into .aws-sam/check/, never
# .aws-sam/build, which `sam deploy` reads: a check build is never deployed by mistake.
sam-check: $(SAM_VENV)/.installed
	$(SAM_VENV)/bin/python -m scripts.sam_check

# The deploy commands of docs/deploying.md, as written, in a fresh copy with the pinned SAM CLI, fake credentials and
# no network: each must get as far as its first AWS call (scripts/docs_commands.py).
docs-commands: $(SAM_VENV)/.installed
	$(SAM_VENV)/bin/python -m scripts.docs_commands

test: lint typecheck docs coverage sam-check docs-commands

# The sample notification email from fixed data (events/stream-insert.json), and its enquirer's
# acknowledgement, for staff and reviewers.
sample-email: $(VENV)/.installed
	$(PY) -m scripts.sample_email

# The demo page with the server's inline errors, in Debian's Chromium (/usr/bin/chromium), for the docs.
screenshot: $(VENV)/.installed
	$(PY) -m scripts.screenshot_demo_form

clean:
	rm -rf $(VENV) $(SAM_VENV) .pytest_cache .mypy_cache .ruff_cache .aws-sam .coverage .coverage.* htmlcov

# --- proof and performance (issue 6) -------------------------------------------------------------
.PHONY: bench load fuzz openapi

# The submission handler against a bare boto3 handler and a lower bound, cold and warm, as Lambda runs
# them: what `sam build` made (sam-check builds it first), unzipped read-only, under the template's Python,
# against one loopback moto server, then with a fixed delay per AWS call (bench/__main__.py).
bench: $(VENV)/.installed sam-check
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

# Regenerate the demo page's form (site/index.html) from forms/enquiry.yaml (a test fails when it is stale).
.PHONY: demo-page
demo-page: $(VENV)/.installed
	$(PY) -m scripts.demo_page

# The operator's command on 2,000 and 20,000 enquiries in the emulator: time and peak memory.
.PHONY: operator-scale
operator-scale: $(VENV)/.installed
	$(PY) -m bench.operator_scale

# --- docs ------------------------------------------------------------------------------------------
.PHONY: privacy-notice privacy-notice-sample

# The short privacy notice for the form's page and the records-of-processing entry, written from the
# settings in the environment (docs/privacy.md); `-sample` rewrites the page's sample (a test checks it).
privacy-notice: $(VENV)/.installed
	$(PY) -m scripts.privacy_notice

privacy-notice-sample: $(VENV)/.installed
	$(PY) -m scripts.privacy_notice --sample

# The newest release of every pinned library, in a scratch virtualenv, with the unit tests: run it
# before bumping a pin (scripts/upgrade_check.py says what to check when it fails).
.PHONY: upgrade-check
upgrade-check: $(VENV)/.installed
	$(PY) -m scripts.upgrade_check

# The documentation site (mkdocs.yml, docs/), built with --strict: a broken link or anchor fails it.
.PHONY: docs configuration-reference
docs: $(VENV)/.installed
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet

# docs/configuration.md from the settings table (a test fails when it is stale).
configuration-reference: $(VENV)/.installed
	$(PY) -m scripts.configuration_reference
