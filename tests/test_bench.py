"""The benchmark harness (`python -m bench`), its bare boto3 baseline and its lower-bound handler."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import GUARD_TABLE_NAME, REPO, Handler, load_event, stored_items

from bench import __main__ as bench_main
from bench import baseline, floor, harness, layout


@pytest.fixture
def fresh_references(dynamodb: Any) -> Iterator[None]:
    """The baseline and the floor with no clients yet, so they create theirs inside moto."""
    baseline.reset_client()
    floor.reset_clients()
    yield
    baseline.reset_client()
    floor.reset_clients()


@pytest.mark.usefixtures("fresh_references")
def test_baseline_handler_stores_the_submitted_fields_with_an_id(dynamodb: Any) -> None:
    # Given a JSON submission
    event = load_event("submit-json.json")
    fields = json.loads(event["body"])

    # When the baseline handler serves it
    response = baseline.lambda_handler(event, None)

    # Then it answers 201 with an id, and stored exactly those fields under that id
    assert response["statusCode"] == 201
    enquiry_id = json.loads(response["body"])["id"]
    assert stored_items(dynamodb) == [{**fields, "id": enquiry_id}]


@pytest.mark.usefixtures("fresh_references")
def test_floor_handler_stores_the_enquiry_with_its_guard_records(dynamodb: Any) -> None:
    # Given a JSON submission
    event = load_event("submit-json.json")

    # When the lower-bound handler serves it
    response = floor.lambda_handler(event, None)

    # Then it did the work it stands for: the enquiry stored with the normalised phone, and the
    # double-submit record and the address's rate count beside it, the address only as a hash
    assert response["statusCode"] == 201
    enquiry_id = json.loads(response["body"])["id"]
    [stored] = stored_items(dynamodb)
    assert stored["id"] == enquiry_id
    assert stored["phone"] == "+448009875336"
    assert stored["consent"] is True
    assert stored["created_at"].endswith("Z")
    assert stored["expires_at"] > 0
    guard = dynamodb.scan(TableName=GUARD_TABLE_NAME)["Items"]
    kinds = sorted(item["id"]["S"].split("#")[0] for item in guard)
    assert kinds == ["rate", "replay"]
    assert not any(event["requestContext"]["http"]["sourceIp"] in json.dumps(item) for item in guard)


@pytest.mark.usefixtures("fresh_references")
def test_floor_handler_counts_the_rate_limit_as_the_handler_does(dynamodb: Any, handler: Handler) -> None:
    # Given one enquiry through the real handler and one through the floor, from two new addresses
    real_event = load_event("submit-json.json")
    floor_event = load_event("submit-json.json")
    floor_event["requestContext"]["http"]["sourceIp"] = "192.0.2.99"

    # When both are served
    assert handler(real_event)["statusCode"] == 201
    assert floor.lambda_handler(floor_event, None)["statusCode"] == 201

    # Then both wrote the same kind of rate record: one in the current bucket, the same expiry
    records = [
        item
        for item in dynamodb.scan(TableName=GUARD_TABLE_NAME)["Items"]
        if item["id"]["S"].startswith("rate#")
    ]
    shapes = [
        sorted(
            (re.sub(r"\d+", "<t>", name), value.get("N") if name.startswith("a") else None)
            for name, value in r.items()
        )
        for r in records
    ]
    assert len(records) == 2
    assert shapes[0] == shapes[1] == [("a<t>", "1"), ("expiration", None), ("id", None)]
    assert abs(int(records[0]["expiration"]["N"]) - int(records[1]["expiration"]["N"])) <= 600


@pytest.mark.slow
def test_bench_smoke_run_ends_with_the_ratio_lines() -> None:
    # Given the harness with the smallest numbers, on this checkout (the deployed layout needs a sam
    # build, which `make test` makes after the unit tests): one cold start of each side per mode, a
    # few warm requests, both modes
    command = [
        sys.executable,
        "-m",
        "bench",
        "--layout",
        "source",
        "--cold-runs",
        "1",
        "--warm-requests",
        "10",
        "--warm-block",
        "5",
    ]

    # When it runs
    completed = subprocess.run(  # noqa: S603 - our own interpreter and module
        command, cwd=REPO, capture_output=True, text=True, timeout=300, check=False
    )

    # Then it exits 0, and its last lines are the delay mode's ratios, then issue 14's six names in
    # order, the sizes skipped (no build is measured in the source layout); before them, each ratio's
    # interquartile range
    assert completed.returncode == 0, completed.stderr[-3000:]
    lines = completed.stdout.strip().splitlines()
    last = lines[-10:]
    names = [line.split("=")[0] for line in last]
    ratios = ["cold_ratio", "cold_floor_ratio", "warm_ratio", "warm_floor_ratio"]
    assert names == [f"{name}_delay" for name in ratios] + ratios + ["zip_bytes", "layer_bytes"], last
    assert all(re.fullmatch(r"\w+=\d+\.\d\d", line) and float(line.split("=")[1]) > 0 for line in last[:8])
    assert last[8:] == ["zip_bytes=skipped", "layer_bytes=skipped"]
    ranges = lines[-18:-10]
    assert [line.split("=")[0] for line in ranges] == [f"{name}_iqr" for name in names[:8]], ranges
    assert all(re.fullmatch(r"\w+_iqr=\d+\.\d\d-\d+\.\d\d", line) for line in ranges), ranges


def test_bench_spread_is_the_median_and_quartiles_of_the_values() -> None:
    # Given five paired ratios
    ratios = [1.4, 1.0, 1.2, 1.3, 1.1]

    # When the benchmark sums them up
    spread = harness.spread(ratios)

    # Then it reports their median and the quartiles between the smallest and the largest, and the
    # interquartile range's half-width
    assert (spread.median, spread.q1, spread.q3, spread.count) == (1.2, 1.1, 1.3, 5)
    assert spread.half_width == pytest.approx(0.1)


def test_bench_spread_of_one_round_is_that_round() -> None:
    # Given a single paired ratio (`--cold-runs 1`)
    # When the benchmark sums it up
    spread = harness.spread([1.25])

    # Then the ratio is its own median, quartiles and interval
    assert (spread.median, spread.q1, spread.q3, spread.low, spread.high) == (1.25,) * 5
    assert spread.half_width == 0


@pytest.mark.parametrize(("count", "rank"), [(6, 1), (9, 2), (20, 6), (51, 19)])
def test_bench_median_interval_is_the_order_statistics_of_the_binomial_table(count: int, rank: int) -> None:
    # Given the rounds' ratios 1, 2, ..., count
    values = [float(value) for value in range(count, 0, -1)]

    # When the benchmark bounds their median with 95% confidence
    low, high = harness.median_interval(values)

    # Then the bounds are the rank-th smallest and largest, as the binomial tables give them
    assert (low, high) == (rank, count + 1 - rank)


def test_bench_more_rounds_narrow_the_median_interval_not_the_quartiles() -> None:
    # Given the same spread of ratios measured over 10 and over 50 rounds
    few = harness.spread([1.0, 1.1, 1.2, 1.3, 1.4] * 2)
    many = harness.spread([1.0, 1.1, 1.2, 1.3, 1.4] * 10)

    # When the benchmark reports them
    # Then the interquartile range is that of the rounds either way, and the median is known more
    # closely from more rounds
    assert (few.q1, few.q3) == (many.q1, many.q3) == (1.1, 1.3)
    assert few.low < many.low <= many.median <= many.high < few.high


def test_bench_paired_ratios_divide_round_by_round() -> None:
    # Given two sides' times in the same rounds, the second round twice as slow for both
    handler = [110.0, 220.0]
    floor_ = [100.0, 200.0]

    # When the benchmark pairs them
    ratios = harness.paired_ratios(handler, floor_)

    # Then each round gives its own ratio, and rounds that do not pair up are refused
    assert ratios == pytest.approx([1.1, 1.1])
    with pytest.raises(ValueError, match="shorter"):
        harness.paired_ratios(handler, floor_[:1])


def _cold(times: list[float]) -> list[harness.ColdSample]:
    return [harness.ColdSample(t, t / 2, t / 2, t + 20, "3.13.0") for t in times]


def _mode(cold: dict[str, list[float]], warm: dict[str, list[list[float]]]) -> bench_main.Mode:
    profiles = {side: harness.CallProfile(["dynamodb.PutItem"], [100.0]) for side in warm}
    return bench_main.Mode(
        "loopback",
        0.0,
        {side: _cold(times) for side, times in cold.items()},
        harness.Warm(warm, profiles, "3.13.0"),
    )


def test_bench_ratios_pair_cold_rounds_and_warm_blocks() -> None:
    # Given three cold rounds in which the handler takes 1.1 times the floor's time while the machine's
    # speed changes, a baseline whose times do not follow the rounds, and two warm block pairs
    mode = _mode(
        cold={
            "handler": [110.0, 330.0, 220.0],
            "baseline": [100.0, 110.0, 400.0],
            "floor": [100.0, 300.0, 200.0],
        },
        warm={
            "handler": [[30.0, 20.0, 20.0], [60.0, 90.0, 60.0]],
            "baseline": [[10.0, 10.0, 10.0], [30.0, 30.0, 30.0]],
            "floor": [[20.0, 20.0, 20.0], [60.0, 60.0, 60.0]],
        },
    )

    # When the benchmark takes the ratios
    ratios = mode.ratios()

    # Then each is the median of the per-round (cold) or per-block-pair (warm) ratios, not a ratio of
    # the sides' medians (which would make cold_ratio 220 / 110 = 2.0)
    assert ratios["cold_floor_ratio"].median == pytest.approx(1.1)
    assert ratios["cold_floor_ratio"].half_width == pytest.approx(0)
    assert ratios["cold_ratio"].median == pytest.approx(1.1)
    assert (ratios["cold_ratio"].q1, ratios["cold_ratio"].q3) == pytest.approx((0.825, 2.05))
    assert ratios["warm_ratio"].median == pytest.approx(2.0)
    assert ratios["warm_floor_ratio"].median == pytest.approx(1.0)
    assert ratios["warm_floor_ratio"].count == 2


def test_bench_report_shows_each_ratio_with_its_spread() -> None:
    # Given a mode's measurements
    mode = _mode(
        cold={"handler": [140.0, 110.0, 130.0, 120.0, 150.0], "baseline": [100.0] * 5, "floor": [200.0] * 5},
        warm={
            "handler": [[20.0], [22.0], [24.0], [26.0], [28.0]],
            "baseline": [[10.0]] * 5,
            "floor": [[20.0]] * 5,
        },
    )
    arguments = bench_main._arguments(["--cold-runs", "5", "--warm-requests", "5", "--warm-block", "1"])

    # When the benchmark reports it
    report = bench_main._mode_report(mode, arguments)

    # Then every ratio has a line with its median, interquartile range, half-width and pairs
    assert "  cold_ratio             1.30 (IQR 1.20-1.40, +/-0.10, 5 rounds; median 1.10-1.50)" in report
    assert "  cold_floor_ratio       0.65 (IQR 0.60-0.70, +/-0.05, 5 rounds; median 0.55-0.75)" in report
    assert "  warm_floor_ratio       1.20 (IQR 1.10-1.30, +/-0.10, 5 block pairs; median 1.00-1.40)" in report


def test_bench_latency_holds_every_aws_call_for_the_delay() -> None:
    # Given the benchmark's moto server with a 50 ms delay
    import boto3

    with harness.moto_server() as server:
        server.latency.seconds = 0.05
        client = boto3.client(
            "dynamodb",
            endpoint_url=server.endpoint,
            region_name="eu-west-2",
            aws_access_key_id="bench",
            aws_secret_access_key="bench",
        )

        # When a client makes two calls
        started = time.perf_counter()
        client.list_tables()
        client.list_tables()
        elapsed = time.perf_counter() - started

    # Then each waited the delay
    assert elapsed >= 0.1


def _write_template(path: Path, template: dict[str, Any]) -> Path:
    path.write_text(json.dumps(template), encoding="utf-8")  # JSON is YAML
    return path


def _built_template(function_layers: list[Any]) -> dict[str, Any]:
    """A template as sam build writes it: code and layer content relative to the build directory."""
    return {
        "Transform": "AWS::Serverless-2016-10-31",
        "Parameters": {"PublicLayerArn": {"Type": "String"}},
        "Globals": {"Function": {"Runtime": "python3.13", "Layers": [{"Ref": "PublicLayerArn"}]}},
        "Resources": {
            "SubmitEnquiryFunction": {
                "Type": "AWS::Serverless::Function",
                "Properties": {"CodeUri": "SubmitEnquiryFunction", "Handler": "probe.lambda_handler"}
                | ({"Layers": function_layers} if function_layers else {}),
            },
            "LibrariesLayer": {
                "Type": "AWS::Serverless::LayerVersion",
                "Properties": {"ContentUri": "LibrariesLayer"},
            },
        },
    }


def test_layout_function_layers_are_the_globals_then_the_functions_own() -> None:
    # Given a template with a layer in Globals and one on the function
    template = _built_template([{"Ref": "LibrariesLayer"}])

    # When the benchmark reads the function's layers
    names = [layout.layer_name(entry) for entry in layout.function_layers(template)]

    # Then they are in the order SAM deploys them: the Globals' first
    assert names == ["PublicLayerArn", "LibrariesLayer"]


def test_layout_every_layer_of_the_submission_function_is_built_or_stood_in() -> None:
    # Given the real template
    from emulator.template_tables import load_template

    template = load_template()

    # When the benchmark reads the submission function's layers
    names = [layout.layer_name(entry) for entry in layout.function_layers(template)]

    # Then each is one sam build makes, or one the benchmark knows how to stand in for
    assert names
    for name in names:
        assert layout.is_layer_resource(template, name) or name in layout.STAND_INS, name


PROBE = """
import json, sys
import shadow

def lambda_handler(event, context):
    return {"statusCode": 201, "body": json.dumps({"path": sys.path[:5], "shadow": shadow.WHO})}
"""


@pytest.fixture
def fake_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A sam build output: a function (probe.py) and a layer of the template, and a stand-in for the
    public layer; the children run this interpreter."""
    build = tmp_path / "build"
    (build / "SubmitEnquiryFunction").mkdir(parents=True)
    (build / "SubmitEnquiryFunction" / "probe.py").write_text(PROBE, encoding="utf-8")
    (build / "LibrariesLayer" / "python").mkdir(parents=True)
    (build / "LibrariesLayer" / "python" / "shadow.py").write_text(
        "WHO = 'LibrariesLayer'\n", encoding="utf-8"
    )
    public = tmp_path / "public"
    (public / "python").mkdir(parents=True)
    (public / "python" / "shadow.py").write_text("WHO = 'PublicLayerArn'\n", encoding="utf-8")
    _write_template(build / "template.yaml", _built_template([{"Ref": "LibrariesLayer"}]))

    version = ".".join(map(str, sys.version_info[:3]))
    monkeypatch.setattr(
        layout, "runtime_python", lambda progress: layout.Runtime(sys.executable, version, None)
    )
    monkeypatch.setattr(
        layout,
        "stand_in",
        lambda name, runtime, progress: layout.Layer(name, public, built=False, note="stand-in"),
    )
    return build


def test_layout_deployed_unzips_the_build_read_only_as_lambda_does(fake_build: Path, tmp_path: Path) -> None:
    # Given a sam build output
    root = tmp_path / "root"
    root.mkdir()

    # When the benchmark lays it out
    deployed = layout.deployed(root, lambda message: None, build_dir=fake_build)

    # Then the function's files are in the code root, the layers' in /opt, each file with the zip's
    # 1980 timestamp and no write permission, and the sizes are the zips'
    probe = deployed.task / "probe.py"
    assert probe.read_text(encoding="utf-8") == PROBE
    assert time.gmtime(probe.stat().st_mtime)[:3] == (1980, 1, 1)
    assert (deployed.opt / "python" / "shadow.py").is_file()
    assert not any(path.stat().st_mode & 0o222 for path in root.rglob("*"))
    assert [layer.name for layer in deployed.layers] == ["PublicLayerArn", "LibrariesLayer"]
    assert deployed.zip_bytes
    assert deployed.layer_bytes == sum(layer.zip_bytes for layer in deployed.layers) > 0
    layout.make_writable(root)


def test_lambda_child_imports_as_the_lambda_runtime_does_and_writes_no_bytecode(
    fake_build: Path, tmp_path: Path
) -> None:
    # Given the deployed layout of a function whose module reports where it imports from
    root = tmp_path / "root"
    root.mkdir()
    deployed = layout.deployed(root, lambda message: None, build_dir=fake_build)

    # When a cold-start child imports it and serves one request
    result = harness.child(
        deployed, ["cold", "probe"], json.dumps({}), {"PATH": os.environ["PATH"]}, "handler"
    )

    # Then sys.path began as Lambda's bootstrap sets it (the code root, the layers' two paths, the
    # runtime's site-packages), the later layer's file won, and no bytecode was written anywhere
    body = json.loads(result["body"])
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    assert body["path"][:4] == [
        str(deployed.task),
        f"{deployed.opt}/python/lib/{version}/site-packages",
        f"{deployed.opt}/python",
        next(path for path in sys.path if path.endswith("site-packages")),
    ]
    assert body["shadow"] == "LibrariesLayer"
    assert layout.bytecode_files(root) == 0
    layout.make_writable(root)


def _elf(machine: int) -> bytes:
    """The first bytes of a little-endian ELF file for `machine`."""
    return b"\x7fELF\x02\x01\x01" + bytes(11) + machine.to_bytes(2, "little") + bytes(44)


def test_layout_swaps_native_files_built_for_another_machine(tmp_path: Path) -> None:
    # Given an installed distribution whose extension is built for another machine
    site = tmp_path / "python"
    package = site / "fastlib"
    package.mkdir(parents=True)
    here = layout.elf_machine(Path(sys.executable).resolve())
    assert here is not None
    other = 183 if here != 183 else 62
    (package / "__init__.py").write_text("from fastlib._speed import *\n", encoding="utf-8")
    (package / "_speed.cpython-313-other.so").write_bytes(_elf(other))
    info = site / "fastlib-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fastlib\nVersion: 1.2.3\n", encoding="utf-8")
    (info / "RECORD").write_text(
        "fastlib/__init__.py,,\nfastlib/_speed.cpython-313-other.so,,\n", encoding="utf-8"
    )
    wheel = tmp_path / "fastlib-1.2.3-cp313-cp313-here.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("fastlib/__init__.py", "ignored")
        archive.writestr("fastlib/_speed.cpython-313-here.so", _elf(here))
    asked: list[tuple[str, str]] = []

    def download(name: str, version: str) -> Path:
        asked.append((name, version))
        return wheel

    # When the benchmark makes the layout runnable here
    notes = layout.make_native([site], [site], download, lambda message: None)

    # Then that distribution's native file is this machine's build of the same version, and its
    # Python files are as built
    assert asked == [("fastlib", "1.2.3")]
    assert sorted(path.name for path in package.iterdir()) == ["__init__.py", "_speed.cpython-313-here.so"]
    assert (package / "__init__.py").read_text(encoding="utf-8") == "from fastlib._speed import *\n"
    assert len(notes) == 1
    assert "fastlib==1.2.3" in notes[0]


def test_layout_bytecode_summary_tells_each_kind_of_bytecode(tmp_path: Path) -> None:
    # Given three modules: one compiled with unchecked hashes, one with timestamps, one not at all
    import py_compile

    for name in ("hashed", "stamped", "plain"):
        (tmp_path / f"{name}.py").write_text("X = 1\n", encoding="utf-8")
    mode = py_compile.PycInvalidationMode
    py_compile.compile(str(tmp_path / "hashed.py"), invalidation_mode=mode.UNCHECKED_HASH)
    py_compile.compile(str(tmp_path / "stamped.py"), invalidation_mode=mode.TIMESTAMP)

    # When the benchmark describes them
    summary = layout.bytecode_summary(tmp_path, ".".join(map(str, sys.version_info[:3])))

    # Then it counts each kind, and says timestamp bytecode does not survive the zip
    assert summary.startswith("3 modules (0 as bytecode only), 2 with bytecode")
    assert "timestamp 1" in summary
    assert "unchecked-hash 1" in summary
    assert "1980" in summary


def test_layout_pins_come_from_requirements_txt() -> None:
    # Given requirements.txt and the files it includes, the one place for version pins
    text = "\n".join(path.read_text(encoding="utf-8") for path in REPO.glob("requirements*.txt"))
    [boto3_pin] = set(re.findall(r"^boto3==(\S+)", text, re.MULTILINE))

    # When the benchmark asks for the runtime's boto3, and for a package nothing pins
    pins = layout.pinned(["boto3"])

    # Then it gets requirements.txt's version, and a clear error for the unpinned one
    assert pins == {"boto3": boto3_pin}
    with pytest.raises(layout.LayoutError, match="pins no version of not-a-package"):
        layout.pinned(["not-a-package"])
    assert layout.template_python() == "3.13"
