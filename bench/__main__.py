"""`python -m bench` (`make bench`): the submission handler against a bare boto3 baseline and a lower bound,
cold and warm, in the layout Lambda runs them in.

Every side runs in a child of the runtime's Python (the template's, 3.13, when this machine has it),
with the function's files and its layers' files as `sam build` made them, unzipped read-only with no
bytecode written (bench/layout.py); the baseline uses boto3 as the runtime provides it. One moto
server on the loopback interface serves every AWS call, first as it is (loopback), then holding each
call for a fixed delay (8 ms by default, a stand-in for DynamoDB seen from Lambda). Each mode runs cold
starts (fresh processes, interleaved) and warm requests (one process, alternating blocks).

The last lines are the delay mode's ratios (suffix _delay), then `cold_ratio=` (handler / baseline),
`cold_floor_ratio=` (handler / floor), `warm_ratio=`, `warm_floor_ratio=` on loopback, `zip_bytes=` and
`layer_bytes=` (the function's and its layers' zips as `sam deploy` makes them). The goals of issue 14
are reported, not enforced: a measurement exits 0 whether or not they are met, and 1 only when it
could not measure.
"""

from __future__ import annotations

import argparse
import platform
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from bench import harness, layout

COLD_RATIO_GOAL = 1.5
COLD_FLOOR_RATIO_GOAL = 1.2
WARM_FLOOR_RATIO_GOAL = 1.1
ZIP_BYTES_GOAL = 1024 * 1024
DELAY_SUFFIX = "_delay"
PROFILE_REQUESTS = 200


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--cold-runs", type=int, default=21, help="cold starts of each side per mode (default 21)"
    )
    parser.add_argument(
        "--warm-requests", type=int, default=800, help="warm requests of each side per mode (default 800)"
    )
    parser.add_argument("--warm-block", type=int, default=100, help="requests per alternating block")
    parser.add_argument(
        "--delay-ms",
        type=float,
        default=8.0,
        help="the delay mode's wait per AWS call (default 8; 0: no delay mode)",
    )
    parser.add_argument(
        "--layout",
        choices=("deployed", "source"),
        default="deployed",
        help="deployed (default): the sam build output as Lambda runs it; source: this checkout and venv",
    )
    parser.add_argument(
        "--build-dir",
        type=Path,
        default=layout.BUILD_DIR,
        help="the sam build output to measure (default make sam-check's, which `make bench` builds first)",
    )
    parser.add_argument(
        "--importtime",
        action="store_true",
        help="only list the handler's most expensive imports (python -X importtime) in the layout, and exit",
    )
    parser.add_argument(
        "--share",
        type=int,
        nargs="?",
        const=15,
        default=0,
        metavar="ROUNDS",
        help="only time the submission path's AWS calls step by step, with botocore and the function's own "
        "client, in cold children (default 15 rounds), and exit",
    )
    arguments = parser.parse_args(argv)
    if arguments.cold_runs < 1 or arguments.warm_requests < 1 or arguments.warm_block < 1:
        parser.error("--cold-runs, --warm-requests and --warm-block must be at least 1")
    if arguments.delay_ms < 0:
        parser.error("--delay-ms must not be negative")
    return arguments


def _progress(message: str) -> None:
    print(f"  ... {message}", file=sys.stderr, flush=True)


def _verdict(met: bool) -> str:
    return "met" if met else "NOT MET"


@dataclass
class Mode:
    name: str  # "loopback" or "delay"
    delay_ms: float
    cold: dict[str, list[harness.ColdSample]]
    warm: harness.Warm

    @property
    def suffix(self) -> str:
        return "" if self.name == "loopback" else DELAY_SUFFIX

    def cold_median(self, side: str) -> float:
        return harness.median([sample.in_child_ms for sample in self.cold[side]])

    def warm_median(self, side: str) -> float:
        return harness.median(self.warm.samples[side])

    def ratios(self) -> dict[str, float]:
        return {
            "cold_ratio": self.cold_median("handler") / self.cold_median("baseline"),
            "cold_floor_ratio": self.cold_median("handler") / self.cold_median("floor"),
            "warm_ratio": self.warm_median("handler") / self.warm_median("baseline"),
            "warm_floor_ratio": self.warm_median("handler") / self.warm_median("floor"),
        }


def main(argv: list[str] | None = None) -> int:
    arguments = _arguments(argv)
    try:
        with layout.prepared(arguments.layout, _progress, arguments.build_dir) as lay:
            if arguments.importtime:
                from bench.importtime import report as importtime_report

                with harness.moto_server() as server:
                    harness.create_resources(server.endpoint)
                    print(importtime_report(lay, harness.bench_environ(server.endpoint)))
                return 0
            if arguments.share:
                from bench import sdk_share

                print(sdk_share.run(lay, arguments.share))
                return 0
            print(_header(lay), flush=True)
            modes = _measure(lay, arguments)
            out = [*_layout_report(lay)]
            for mode in modes:
                out += _mode_report(mode, arguments)
            out += _goals_report(lay, modes)
    except (harness.BenchError, layout.LayoutError) as error:
        print(f"benchmark failed: {error}", file=sys.stderr)
        return 1
    print("\n".join(out), flush=True)
    return 0


def _header(lay: layout.Layout) -> str:
    return "\n".join(
        [
            f"enquiries benchmark: submission handler ({harness.HANDLER_MODULE}) vs bare boto3 baseline "
            "(bench/baseline.py) and floor (bench/floor.py)",
            f"layout: {lay.kind}; children run Python {lay.python_version} ({lay.python}); this process: "
            f"Python {platform.python_version()} on {platform.machine()} ({platform.system()}), "
            f"moto {metadata.version('moto')}; Lambda runs python3.13 on arm64 with 512 MB",
            *[f"NOTE: {note}" for note in lay.notes],
        ]
    )


def _measure(lay: layout.Layout, arguments: argparse.Namespace) -> list[Mode]:
    """Each mode's cold starts and warm requests, against one moto server."""
    wanted = [("loopback", 0.0)] + ([("delay", arguments.delay_ms)] if arguments.delay_ms else [])
    profile_requests = min(PROFILE_REQUESTS, arguments.warm_requests)
    bytecode_before = layout.bytecode_files(lay.task.parent.parent) if lay.kind == "deployed" else 0
    modes = []
    with harness.moto_server() as server:
        harness.create_resources(server.endpoint)
        print(
            f"moto server: {server.endpoint} (loopback, a thread of this process; every side uses it)",
            flush=True,
        )
        environ = harness.bench_environ(server.endpoint)
        events = harness.new_events()
        for name, delay_ms in wanted:
            server.latency.seconds = delay_ms / 1000
            _progress(f"{name}: {arguments.cold_runs} cold starts of each side ...")
            cold = harness.run_cold(lay, arguments.cold_runs, events, environ, _progress)
            _progress(f"{name}: {arguments.warm_requests} warm requests of each side ...")
            plan = harness.WarmPlan(arguments.warm_requests, arguments.warm_block, profile_requests)
            warm = harness.run_warm(lay, plan, events, environ)
            modes.append(Mode(name, delay_ms, cold, warm))
    if lay.kind == "deployed" and layout.bytecode_files(lay.task.parent.parent) != bytecode_before:
        raise harness.BenchError(
            "a child wrote bytecode into the layout: the cold starts did not run as on Lambda"
        )
    return modes


def _layout_report(lay: layout.Layout) -> list[str]:
    if lay.kind != "deployed":
        return ["", "layout: source (functions/ and this virtualenv); sizes not measured"]
    out = [
        "",
        f"layout: the function and its layers from {lay.build_dir}/, zipped as "
        "sam deploy zips them, unzipped read-only (var/task, opt), run with -B; the runtime's site-packages:",
        "  boto3 with its bytecode",
        f"  function {layout.FUNCTION}: {lay.zip_bytes:,} bytes zipped; "
        f"{layout.bytecode_summary(lay.task, lay.python_version)}",
    ]
    for layer in lay.layers:
        out.append(f"  layer {layer.name}: {layer.zip_bytes:,} bytes zipped, {layer.note}")
    out.append(f"  layers in /opt: {layout.bytecode_summary(lay.opt, lay.python_version)}")
    return out


def _mode_report(mode: Mode, arguments: argparse.Namespace) -> list[str]:
    title = "loopback" if mode.name == "loopback" else f"delay: every AWS call held {mode.delay_ms:g} ms"
    out = [
        "",
        f"== {title} ==",
        f"cold start: a fresh child per run (Python {mode.cold['handler'][0].python}), {arguments.cold_runs} "
        "runs each, interleaved, after one discarded run each; medians",
        f"  {'':<10}{'import+1st req ms':>18}{'import ms':>11}{'1st request ms':>16}{'whole process ms':>18}",
    ]
    for side, samples in mode.cold.items():
        out.append(
            f"  {side:<10}{mode.cold_median(side):>18.1f}"
            f"{harness.median([s.import_ms for s in samples]):>11.1f}"
            f"{harness.median([s.first_request_ms for s in samples]):>16.1f}"
            f"{harness.median([s.process_ms for s in samples]):>18.1f}"
        )
    warm = mode.warm.samples
    out += [
        "  the ratios use the in-child figure (import + first request); the interpreter's own start-up is in",
        "  'whole process' only",
        f"warm: one child (Python {mode.warm.python}), {len(warm['handler'])} requests of each side in "
        f"alternating blocks of {min(arguments.warm_block, arguments.warm_requests)}, after a warm-up",
        f"  {'':<10}{'median us':>12}{'p95 us':>12}",
    ]
    out += [f"  {side:<10}{harness.median(v):>12.0f}{harness.p95(v):>12.0f}" for side, v in warm.items()]
    out.append(
        f"  AWS calls per request and the median time outside them (a separate pass of "
        f"{len(mode.warm.profiles['handler'].own_us)} requests each, not in the ratios):"
    )
    for side, profile in mode.warm.profiles.items():
        out.append(
            f"    {side:<9} {len(profile.operations)} calls, {harness.median(profile.own_us):>6.0f} us "
            f"outside them: {', '.join(profile.operations) or 'none'}"
        )
    ratios = mode.ratios()
    out.append("  " + ", ".join(f"{name}{mode.suffix} {value:.2f}" for name, value in ratios.items()))
    return out


def _goal(name: str, value: float, goal: float) -> str:
    return f"  {name} {value:,.2f} <= {goal:,}: {_verdict(value <= goal)}"


def _goals_report(lay: layout.Layout, modes: list[Mode]) -> list[str]:
    out = ["", "goals (issue 14, deployed layout), reported, not enforced:"]
    if lay.kind != "deployed" or lay.zip_bytes is None:
        out.append("  not judged: --layout source is not the deployed layout")
    else:
        for mode in modes:
            ratios = mode.ratios()
            if mode.name == "loopback":
                out.append(_goal("cold_ratio", ratios["cold_ratio"], COLD_RATIO_GOAL))
                out.append(_goal("cold_floor_ratio", ratios["cold_floor_ratio"], COLD_FLOOR_RATIO_GOAL))
            out.append(
                _goal(f"warm_floor_ratio{mode.suffix}", ratios["warm_floor_ratio"], WARM_FLOOR_RATIO_GOAL)
            )
        out.append(
            f"  zip_bytes {lay.zip_bytes:,} <= 1 MiB ({ZIP_BYTES_GOAL:,}): "
            f"{_verdict(lay.zip_bytes <= ZIP_BYTES_GOAL)}"
        )
    for mode in reversed(modes):  # the delay mode's first: the last six lines are issue 14's names
        out += [f"{name}{mode.suffix}={value:.2f}" for name, value in mode.ratios().items()]
    sizes = {"zip_bytes": lay.zip_bytes, "layer_bytes": lay.layer_bytes}
    out += [f"{name}={'skipped' if value is None else value}" for name, value in sizes.items()]
    return out


if __name__ == "__main__":
    raise SystemExit(main())
