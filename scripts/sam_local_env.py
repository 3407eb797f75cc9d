"""The environment `sam local invoke --env-vars FILE` gives each function, as SAM CLI itself works it out.

Run by the SAM CLI's own virtualenv (.sam-venv), since it imports samcli:

    .sam-venv/bin/python -m scripts.sam_local_env template.yaml env.json

It prints one JSON object: each function's logical id, to the variables its container would get. SAM
CLI resolves the template without parameter values (a `!Ref` to a parameter without a default becomes
the parameter's name, a resource's `!Ref` its logical id), then lets the file's values replace the
template's declared variables, never add any (samcli/commands/local/lib/local_lambda.py,
`_make_env_vars`; samcli/local/lambdafn/env_vars.py). tests/test_sam_local.py loads each function's
settings from the result, as the function's init would.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Any

REGION = "eu-west-2"


def local_environments(template: Path, env_file: Path) -> dict[str, dict[str, str]]:
    """Each function's environment under `sam local invoke --env-vars env_file`, with dummy credentials."""
    # samcli is in .sam-venv only, and untyped: imported by name.
    function_provider = importlib.import_module("samcli.lib.providers.sam_function_provider")
    stack_provider = importlib.import_module("samcli.lib.providers.sam_stack_provider")
    env_vars = importlib.import_module("samcli.local.lambdafn.env_vars")

    overrides_by_function: dict[str, Any] = json.loads(env_file.read_text(encoding="utf-8"))
    # As `sam local invoke` reads the template (invoke_context.py, InvokeContext._get_stacks).
    stacks, _ = stack_provider.SamLocalStackProvider.get_stacks(
        str(template), global_parameter_overrides={"AWS::Region": REGION}
    )
    environments = {}
    for function in function_provider.SamFunctionProvider(
        stacks, ignore_code_extraction_warnings=True
    ).get_all():
        variables = (function.environment or {}).get("Variables")
        overrides = {
            **overrides_by_function.get("Parameters", {}),
            **(overrides_by_function.get(function.name) or {}),
        }
        environment = env_vars.EnvironmentVariables(
            function.name,
            function.memory,
            function.timeout,
            function.handler,
            function.logging_config,
            variables=variables,
            shell_env_values={},
            override_values=overrides,
            aws_creds={"region": REGION, "key": "testing", "secret": "testing"},
        )
        environments[function.name] = environment.resolve()
    return environments


def main(arguments: list[str]) -> int:
    template, env_file = (Path(argument) for argument in arguments)
    print(json.dumps(local_environments(template, env_file), sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
