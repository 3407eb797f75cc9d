"""`sam local` with the README's env.json: each function's environment as SAM CLI resolves it
(scripts/sam_local_env.py, run by the SAM CLI's own virtualenv) loads the function's settings."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from support import REPO

from emulator.template_tables import load_template
from enquiries.settings import (
    CANARY_REQUIRES,
    NOTIFIER_REQUIRES,
    SUBMISSION_REQUIRES,
    SettingsError,
    load_settings,
)
from scripts.docs_commands import documentation

SAM_PYTHON = REPO / ".sam-venv" / "bin" / "python"
ENV_JSON = re.compile(
    r"<!-- sam-local-env-json -->\n```sh\ncat > env\.json <<'JSON'\n(.*?)\nJSON\n```", re.DOTALL
)


REQUIRED = {
    "SubmitEnquiryFunction": SUBMISSION_REQUIRES,
    "NotifyEnquiryFunction": NOTIFIER_REQUIRES,
    "CanaryFunction": CANARY_REQUIRES,
}
# The SAM CLI in a process of its own: end to end, so `make unit` leaves it to `make test`.
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not SAM_PYTHON.exists(), reason="no .sam-venv: make test creates it before the tests"),
]


def readme_env_json() -> str:
    found = ENV_JSON.search(documentation())
    assert found, "the docs have no <!-- sam-local-env-json --> block"
    return found.group(1)


def local_environments(env_json: str, tmp_path: Path) -> dict[str, dict[str, str]]:
    env_file = tmp_path / "env.json"
    env_file.write_text(env_json, encoding="utf-8")
    completed = subprocess.run(  # noqa: S603 - the SAM CLI's Python on this repository's script
        [str(SAM_PYTHON), "-m", "scripts.sam_local_env", str(REPO / "template.yaml"), str(env_file)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    environments: dict[str, dict[str, str]] = json.loads(completed.stdout)
    return environments


@pytest.fixture(scope="module")
def readme_environments(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, str]]:
    return local_environments(readme_env_json(), tmp_path_factory.mktemp("sam-local"))


def test_sam_local_env_json_loads_every_function_settings(readme_environments: dict[str, Any]) -> None:
    # Given each function's environment under `sam local --env-vars env.json`, as SAM CLI resolves it
    # When each function's settings are loaded from it, as its init does
    problems = {}
    for function, required in REQUIRED.items():
        try:
            load_settings(readme_environments[function], required=required)
        except SettingsError as error:
            problems[function] = str(error)

    # Then every function starts
    assert set(readme_environments) == set(REQUIRED)
    assert problems == {}


def test_sam_local_env_json_leaves_no_bare_logical_id(readme_environments: dict[str, Any]) -> None:
    # Given the template's parameter and resource names, which SAM CLI puts for an unresolved !Ref
    template = load_template()
    bare_names = set(template["Parameters"]) | set(template["Resources"])

    # When the functions' environments are searched for them
    bare = {
        (function, name)
        for function, environment in readme_environments.items()
        for name, value in environment.items()
        if value in bare_names and not name.startswith("AWS_LAMBDA_")  # the runtime's, not the template's
    }

    # Then there is none, and email goes through the emulator with no SES configuration set
    assert bare == set()
    notifier = readme_environments["NotifyEnquiryFunction"]
    assert notifier["SES_CONFIGURATION_SET"] == ""
    assert notifier["NOTIFICATION_SES_CONFIGURATION_SET"] == ""
    assert notifier["AWS_ENDPOINT_URL"] == readme_environments["SubmitEnquiryFunction"]["AWS_ENDPOINT_URL"]


def test_sam_local_env_json_per_function_as_before_fails_the_notifier(tmp_path: Path) -> None:
    # Given the env.json the README had: the notifier without ALLOWED_ORIGINS
    env_json = json.dumps(
        {
            "NotifyEnquiryFunction": {
                "TABLE_NAME": "enquiries",
                "CLINIC_EMAIL": "reception@example.com",
                "SENDER_EMAIL": "enquiries@example.com",
            }
        }
    )

    # When the notifier's settings are loaded from what SAM CLI gives it
    environment = local_environments(env_json, tmp_path)["NotifyEnquiryFunction"]

    # Then they are refused: SAM CLI filled ALLOWED_ORIGINS with the parameter's name
    assert environment["ALLOWED_ORIGINS"] == "AllowedOrigins"
    with pytest.raises(SettingsError, match="ALLOWED_ORIGINS"):
        load_settings(environment, required=REQUIRED["NotifyEnquiryFunction"])
