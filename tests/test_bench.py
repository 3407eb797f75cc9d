"""The benchmark harness (`python -m bench`), its bare boto3 baseline and its lower-bound handler."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from support import GUARD_TABLE_NAME, REPO, Handler, load_event, stored_items

from bench import baseline, floor


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
    # Given the harness with the smallest numbers (one cold start each, a few warm requests, no zip)
    command = [sys.executable, "-m", "bench", "--cold-runs", "1", "--warm-requests", "20", "--skip-zip"]

    # When it runs
    completed = subprocess.run(  # noqa: S603 - our own interpreter and module
        command, cwd=REPO, capture_output=True, text=True, timeout=120, check=False
    )

    # Then it exits 0 and its last three lines are the ratios and the skipped zip, in that order
    assert completed.returncode == 0, completed.stderr[-3000:]
    last = completed.stdout.strip().splitlines()[-3:]
    assert re.fullmatch(r"cold_ratio=\d+\.\d\d", last[0]), last
    assert re.fullmatch(r"warm_ratio=\d+\.\d\d", last[1]), last
    assert last[2] == "zip_bytes=skipped", last
    assert float(last[0].split("=")[1]) > 0
    assert float(last[1].split("=")[1]) > 0
