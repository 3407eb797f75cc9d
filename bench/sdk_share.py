"""`python -m bench --share`: what the submission path's AWS calls cost a cold start, step by step, made
with botocore (as the function made them until aws_json.py), botocore without its docs package, the
function's own client (aws_json), and aws_json with botocore's signer module: each way in a fresh child
of the runtime's Python in the deployed layout (bench/sdk_share_child.py), interleaved, medians.

The calls are the submission path's three: Secrets Manager GetSecretValue, DynamoDB GetItem and
TransactWriteItems, against the benchmark's moto server on loopback.
"""

from __future__ import annotations

import json
import subprocess

from bench import harness
from bench.layout import Layout

SHARE_MARKER = "BENCH-SHARE-RESULT "
WAYS = ("botocore", "botocore_without_docs", "aws_json", "aws_json_botocore_signer")
STEPS = ("import", "credentials", "clients", "GetSecretValue", "GetItem", "TransactWriteItems", "total")
WARM = ("GetSecretValue", "GetItem", "TransactWriteItems")


def _child(layout: Layout, way: str, round_id: str, environ: dict[str, str]) -> dict[str, float]:
    command = [
        layout.python,
        *([] if layout.write_bytecode else ["-B"]),
        str(layout.runtime / "sdk_share_child.py"),
    ]
    completed = subprocess.run(  # noqa: S603 - the runtime's interpreter, our own script
        [*command, way, round_id],
        capture_output=True,
        text=True,
        env={**environ, **layout.sys_path([layout.task])},
        cwd=layout.task,
        timeout=harness.CHILD_TIMEOUT_SECONDS,
        check=False,
    )
    lines = [line for line in completed.stdout.splitlines() if line.startswith(SHARE_MARKER)]
    if completed.returncode != 0 or not lines:
        raise harness.BenchError(
            f"the {way} child failed (exit {completed.returncode}):\n{completed.stderr[-3000:]}"
        )
    result: dict[str, float] = json.loads(lines[-1][len(SHARE_MARKER) :])
    return result


def measure(layout: Layout, environ: dict[str, str], rounds: int) -> dict[str, list[dict[str, float]]]:
    """`rounds` cold children of each way, interleaved, after one discarded run of each."""
    samples: dict[str, list[dict[str, float]]] = {way: [] for way in WAYS}
    for round_number in range(rounds + 1):
        for way in WAYS:
            result = _child(layout, way, f"share-{round_number}-{way}", environ)
            if round_number:
                samples[way].append(result)
    return samples


def report(samples: dict[str, list[dict[str, float]]], python_version: str) -> str:
    rounds = len(next(iter(samples.values())))
    out = [
        f"the submission path's AWS calls in a cold child (Python {python_version}, deployed layout), "
        f"{rounds} rounds, medians in ms",
        f"  {'':<26}" + "".join(f"{step:>20}" for step in STEPS),
    ]
    for way, results in samples.items():
        out.append(
            f"  {way:<26}" + "".join(f"{harness.median([r[step] for r in results]):>20.1f}" for step in STEPS)
        )
    out.append("  the first call's own work (first call minus the same call warm):")
    for way, results in samples.items():
        own = [
            f"{name} {harness.median([r[name] - r['warm_' + name] for r in results]):.1f}" for name in WARM
        ]
        out.append(f"    {way:<26}" + ", ".join(own))
    return "\n".join(out)


def run(layout: Layout, rounds: int) -> str:
    with harness.moto_server() as server:
        harness.create_resources(server.endpoint)
        samples = measure(layout, harness.bench_environ(server.endpoint), rounds)
    return report(samples, layout.python_version)
