"""`python -m bench` (`make bench`): the submission handler against a bare boto3 baseline.

Both run against one moto server on the loopback interface, started in this process, interleaved in one
run: cold starts (fresh processes, alternating), warm requests (one process, alternating blocks), and the
deployment zip's size. A third side, the floor (bench/floor.py: the least any handler that validates and
guards an enquiry must do), runs beside them for reference; it is in no ratio. The last three lines are
`cold_ratio=`, `warm_ratio=` and `zip_bytes=` (or `zip_bytes=skipped` with --skip-zip). The goals of
issue 6 are reported, not enforced: a measurement exits 0 whether or not they are met, and 1 only when
it could not measure.
"""

from __future__ import annotations

import argparse
import platform
import sys
from dataclasses import dataclass
from importlib import metadata

from bench import harness

COLD_RATIO_GOAL = 1.15
WARM_RATIO_GOAL = 1.3
ZIP_BYTES_GOAL = 1024 * 1024
MIN_COLD_RUNS = 9
MIN_WARM_REQUESTS = 2000
PROFILE_REQUESTS = 200


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--cold-runs", type=int, default=41, help="cold starts of each side (default 41; issue 6: >= 9)"
    )
    parser.add_argument(
        "--warm-requests",
        type=int,
        default=2000,
        help="warm requests of each side (default 2000; issue 6: >= 2000)",
    )
    parser.add_argument("--warm-block", type=int, default=100, help="requests per alternating block")
    parser.add_argument("--skip-zip", action="store_true", help="do not build the deployment zip")
    parser.add_argument(
        "--importtime",
        action="store_true",
        help="only list the handler's 25 most expensive imports (python -X importtime) and exit",
    )
    arguments = parser.parse_args(argv)
    if arguments.cold_runs < 1 or arguments.warm_requests < 1 or arguments.warm_block < 1:
        parser.error("--cold-runs, --warm-requests and --warm-block must be at least 1")
    return arguments


def _progress(message: str) -> None:
    print(f"  ... {message}", file=sys.stderr, flush=True)


def _verdict(met: bool) -> str:
    return "met" if met else "NOT MET"


def main(argv: list[str] | None = None) -> int:
    arguments = _arguments(argv)
    if arguments.importtime:
        from bench.importtime import report as importtime_report

        # With the server up, as in the cold runs, should an import ever reach for AWS.
        with harness.moto_server() as endpoint:
            harness.create_resources(endpoint)
            print(importtime_report(harness.HANDLER_MODULE, harness.bench_environ(endpoint)))
        return 0

    print(
        f"enquiries benchmark: submission handler ({harness.HANDLER_MODULE}) "
        f"vs bare boto3 baseline ({harness.BASELINE_MODULE})"
    )
    print(
        f"Python {platform.python_version()} on {platform.machine()} ({platform.system()}), "
        f"boto3 {metadata.version('boto3')}, moto {metadata.version('moto')}; "
        "Lambda runs python3.13 on arm64 with 512 MB",
        flush=True,
    )
    for note in _shortfalls(arguments):
        print(f"NOTE: {note}", flush=True)

    try:
        measured = _measure(arguments)
    except harness.BenchError as error:
        print(f"benchmark failed: {error}", file=sys.stderr)
        return 1

    cold_ratio, cold_lines = _cold_report(measured.cold, arguments.cold_runs)
    warm_ratio, warm_lines = _warm_report(measured, arguments)
    zip_bytes, zip_lines = _zip_report(arguments.skip_zip)
    out = [*cold_lines, *warm_lines, *zip_lines, *_goals_report(cold_ratio, warm_ratio, zip_bytes)]
    print("\n".join(out), flush=True)
    return 0


@dataclass
class Measured:
    cold: dict[str, list[harness.ColdSample]]
    warm: dict[str, list[float]]
    profiles: dict[str, harness.CallProfile]
    profile_requests: int


def _measure(arguments: argparse.Namespace) -> Measured:
    """Cold starts, warm requests and the AWS calls of each side, against one moto server."""
    profile_requests = min(PROFILE_REQUESTS, arguments.warm_requests)
    with harness.moto_server() as endpoint:
        harness.create_resources(endpoint)
        print(f"moto server: {endpoint} (loopback, a thread of this process; both sides use it)", flush=True)
        environ = harness.bench_environ(endpoint)
        events = harness.Events()
        cold = harness.run_cold(arguments.cold_runs, events, environ, _progress)
        with harness.environment(environ):
            handlers = harness.import_handlers(environ)
            warm = harness.run_warm(
                arguments.warm_requests, arguments.warm_block, events, handlers, _progress
            )
            profiles = {
                side: harness.profile_calls(side, h, events, profile_requests) for side, h in handlers.items()
            }
    return Measured(cold, warm, profiles, profile_requests)


def _cold_report(cold: dict[str, list[harness.ColdSample]], runs: int) -> tuple[float, list[str]]:
    """cold_ratio, and the lines that explain it."""
    cold_median = {side: harness.median([s.in_child_ms for s in samples]) for side, samples in cold.items()}
    out = [
        "",
        f"cold start: a fresh `python -m bench.cold_child <module>` per run, {runs} runs "
        "each, interleaved (handler, baseline, floor, ...), after one discarded run each; medians",
        f"  {'':<10}{'import+1st req ms':>18}{'import ms':>11}{'1st request ms':>16}{'whole process ms':>18}",
    ]
    for side, samples in cold.items():
        out.append(
            f"  {side:<10}{cold_median[side]:>18.1f}"
            f"{harness.median([s.import_ms for s in samples]):>11.1f}"
            f"{harness.median([s.first_request_ms for s in samples]):>16.1f}"
            f"{harness.median([s.process_ms for s in samples]):>18.1f}"
        )
    out += [
        "  cold_ratio uses the in-child figure (handler import + first request, from perf_counter in the",
        "  child): the interpreter's own start-up is the same for both sides and is in 'whole process' only",
        f"  floor / baseline = {cold_median['floor'] / cold_median['baseline']:.2f}: the part of the "
        "distance that validating and guarding an enquiry costs any handler (bench/floor.py)",
    ]
    return cold_median["handler"] / cold_median["baseline"], out


def _warm_report(measured: Measured, arguments: argparse.Namespace) -> tuple[float, list[str]]:
    """warm_ratio, and the lines that explain it, with the separate profile of AWS calls."""
    warm = measured.warm
    warm_median = {side: harness.median(values) for side, values in warm.items()}
    counts = {side: len(values) for side, values in warm.items()}
    out = [
        "",
        f"warm: one process, all imported, {counts['handler']} handler, {counts['baseline']} baseline and "
        f"{counts['floor']} floor requests in alternating blocks of "
        f"{min(arguments.warm_block, arguments.warm_requests)}, after a discarded warm-up",
        f"  {'':<10}{'median us':>12}{'p95 us':>12}",
    ]
    out += [
        f"  {side:<10}{warm_median[side]:>12.0f}{harness.p95(values):>12.0f}" for side, values in warm.items()
    ]
    out += [
        f"  floor / baseline = {warm_median['floor'] / warm_median['baseline']:.2f}",
        "  each time includes moto serving that request's AWS calls, in this process; for reference, a",
        f"  separate pass of {measured.profile_requests} requests each (not in warm_ratio): AWS calls per "
        "request, and",
        "  the median time outside them (the handler's own code and botocore's parameter validation and",
        "  serialisation; signing, sending, moto and response parsing count as inside the calls)",
    ]
    for side, profile in measured.profiles.items():
        operations = profile.operations
        out.append(
            f"    {side:<9} {len(operations)} calls, {harness.median(profile.own_us):>6.0f} us outside them: "
            f"{', '.join(operations) or 'none'}"
        )
    return warm_median["handler"] / warm_median["baseline"], out


def _zip_report(skip: bool) -> tuple[int | None, list[str]]:
    """The deployment zip's size (None when skipped), and the lines that describe it."""
    if skip:
        return None, ["", "zip: skipped (--skip-zip)"]
    from bench.package import build_zip

    package = build_zip(_progress)
    out = [
        "",
        f"zip: {package.zip_bytes:,} bytes ({package.zip_bytes / 1024 / 1024:.2f} MiB), functions/ with "
        f"functions/requirements.txt for {package.platform}, ZIP_DEFLATED level 9 ({package.path.name})",
    ]
    if package.note:
        out.append(f"  {package.note}")
    out.append("  largest top-level entries (compressed bytes):")
    out += [f"    {size:>10,}  {name}" for name, size in package.contributions[:8]]
    return package.zip_bytes, out


def _goals_report(cold_ratio: float, warm_ratio: float, zip_bytes: int | None) -> list[str]:
    out = [
        "",
        "goals (issue 6), reported, not enforced:",
        f"  cold_ratio {cold_ratio:.2f} <= {COLD_RATIO_GOAL}: {_verdict(cold_ratio <= COLD_RATIO_GOAL)}",
        f"  warm_ratio {warm_ratio:.2f} <= {WARM_RATIO_GOAL}: {_verdict(warm_ratio <= WARM_RATIO_GOAL)}",
    ]
    if zip_bytes is None:
        out.append("  zip <= 1 MiB: not measured (--skip-zip)")
    else:
        out.append(f"  zip <= 1 MiB ({ZIP_BYTES_GOAL} bytes): {_verdict(zip_bytes <= ZIP_BYTES_GOAL)}")
    out += [
        f"cold_ratio={cold_ratio:.2f}",
        f"warm_ratio={warm_ratio:.2f}",
        "zip_bytes=skipped" if zip_bytes is None else f"zip_bytes={zip_bytes}",
    ]
    return out


def _shortfalls(arguments: argparse.Namespace) -> list[str]:
    notes = []
    if arguments.cold_runs < MIN_COLD_RUNS:
        notes.append(f"--cold-runs {arguments.cold_runs} is below issue 6's {MIN_COLD_RUNS}: a smoke run")
    if arguments.warm_requests < MIN_WARM_REQUESTS:
        notes.append(
            f"--warm-requests {arguments.warm_requests} is below issue 6's {MIN_WARM_REQUESTS}: a smoke run"
        )
    return notes


if __name__ == "__main__":
    raise SystemExit(main())
