"""`python -m bench --share`'s child: one cold start of the submission path's AWS work alone, with one way of
making its calls, timed step by step. Copied beside lambda_child.py and run with the runtime's Python in
the layout, as a cold start is (lambda_child.set_lambda_sys_path first; no bytecode written).

`python sdk_share_child.py <way>` prints one JSON line after SHARE_MARKER: milliseconds for
- import: the modules that make the calls;
- clients: the DynamoDB and Secrets Manager clients, made as the function makes them;
- credentials: the credentials resolved (botocore resolves them again in create_client, from its cache);
- GetSecretValue, GetItem, TransactWriteItems: the first call of each, then `warm_` the second, whose
  difference is the first call's own work (loading and signing machinery, JSON handling);
- total: all of it.

The ways (`WAYS`): botocore as the function used it; botocore without its docs package (what botocore
imports for docstrings, never read on Lambda, stood in for by an empty module); aws_json (the function's
client now); aws_json signing with botocore's signer module (botocore.auth) instead of its own.
"""

from __future__ import annotations

import json
import os
import sys
import time
import types

SHARE_MARKER = "BENCH-SHARE-RESULT "
WAYS = ("botocore", "botocore_without_docs", "aws_json", "aws_json_botocore_signer")
CONNECT_TIMEOUT_SECONDS = 1
READ_TIMEOUT_SECONDS = 2
MAX_ATTEMPTS = 2


def _without_botocore_docs() -> None:
    """botocore.client and botocore.waiter import botocore.docs.docstring for lazily made docstrings,
    and the package's __init__ imports its service documenter: empty stand-ins for those two, so that
    the rest of botocore (botocore.docs.utils, which botocore.handlers uses, included) is timed as it
    would be without them."""
    import importlib.util

    botocore_spec = importlib.util.find_spec("botocore")
    if botocore_spec is None or not botocore_spec.submodule_search_locations:
        raise RuntimeError("botocore is not importable here")
    package = types.ModuleType("botocore.docs")
    package.__path__ = [os.path.join(botocore_spec.submodule_search_locations[0], "docs")]
    sys.modules["botocore.docs"] = package
    sys.modules["botocore.docs.docstring"] = types.ModuleType("botocore.docs.docstring")
    docstring = sys.modules["botocore.docs.docstring"]
    for name in ("ClientMethodDocstring", "PaginatorDocstring", "WaiterDocstring"):
        setattr(docstring, name, type(name, (str,), {"__new__": lambda cls, *_, **__: str.__new__(cls)}))


class _BotocoreWay:
    def __init__(self, without_docs: bool) -> None:
        if without_docs:
            _without_botocore_docs()
        import botocore.session
        from botocore.config import Config

        self.session = botocore.session.get_session()
        self.config = Config(
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
            read_timeout=READ_TIMEOUT_SECONDS,
            retries={"mode": "standard", "total_max_attempts": MAX_ATTEMPTS},
            tcp_keepalive=True,
        )

    def credentials(self) -> None:
        self.session.get_credentials().get_frozen_credentials()

    def clients(self) -> tuple[object, object]:
        return (
            self.session.create_client("dynamodb", config=self.config),
            self.session.create_client("secretsmanager", config=self.config),
        )


class _AwsJsonWay:
    def __init__(self, botocore_signer: bool) -> None:
        from enquiries import aws_json

        self.aws_json = aws_json
        if botocore_signer:
            # The signer module alone: botocore.auth's SigV4Auth over the same request.
            from botocore.auth import SigV4Auth
            from botocore.awsrequest import AWSRequest
            from botocore.credentials import Credentials as BotocoreCredentials

            def authorization(credentials, *, region, service, amz_date, headers, body):  # type: ignore[no-untyped-def]  # noqa: PLR0913
                # (add_auth dates the request itself: the cost is the same, the date may differ by a second)
                request = AWSRequest("POST", f"http://{headers['Host']}/", data=body, headers=dict(headers))
                signer = SigV4Auth(
                    BotocoreCredentials(credentials.access_key, credentials.secret_key, credentials.token),
                    service,
                    region,
                )
                signer.add_auth(request)
                return request.headers["Authorization"]

            aws_json.authorization = authorization  # type: ignore[attr-defined]

    def credentials(self) -> None:
        self.found = self.aws_json.environment_credentials()
        self.found()

    def clients(self) -> tuple[object, object]:
        aws_json = self.aws_json
        region = aws_json.region_of()
        made = []
        for service in (aws_json.DYNAMODB, aws_json.SECRETS_MANAGER):
            endpoint = aws_json.endpoint_of(service, region)
            made.append(
                aws_json.JsonClient(
                    service,
                    region=region,
                    endpoint=endpoint,
                    credentials=self.found,
                    transport=aws_json.HttpTransport(
                        endpoint, aws_json.Timeouts(CONNECT_TIMEOUT_SECONDS, READ_TIMEOUT_SECONDS)
                    ),
                    max_attempts=MAX_ATTEMPTS,
                )
            )
        return made[0], made[1]


def _calls(dynamodb: object, secrets: object, round_id: str) -> dict[str, object]:
    table, guard, secret = (
        os.environ[name] for name in ("TABLE_NAME", "GUARD_TABLE_NAME", "CLIENT_ADDRESS_SECRET_ARN")
    )
    put = {
        "Put": {
            "TableName": table,
            "Item": {"id": {"S": round_id}},
            "ConditionExpression": "attribute_not_exists(id)",
        }
    }
    return {
        "GetSecretValue": lambda: secrets.get_secret_value(SecretId=secret),  # type: ignore[attr-defined]
        "GetItem": lambda: dynamodb.get_item(  # type: ignore[attr-defined]
            TableName=guard, Key={"id": {"S": f"replay#{round_id}"}}, ConsistentRead=True
        ),
        "TransactWriteItems": lambda: dynamodb.transact_write_items(  # type: ignore[attr-defined]
            TransactItems=[put], ClientRequestToken=round_id
        ),
    }


def measure(way: str, round_id: str) -> dict[str, float]:
    times: dict[str, float] = {}
    started = last = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal last
        now = time.perf_counter()
        times[name] = (now - last) * 1000
        last = now

    if way.startswith("botocore"):
        made: _BotocoreWay | _AwsJsonWay = _BotocoreWay(without_docs=way == "botocore_without_docs")
    else:
        made = _AwsJsonWay(botocore_signer=way == "aws_json_botocore_signer")
    lap("import")
    made.credentials()
    lap("credentials")
    dynamodb, secrets = made.clients()
    lap("clients")
    first = _calls(dynamodb, secrets, f"{round_id}-1")
    for name, call in first.items():
        call()  # type: ignore[operator]
        lap(name)
    times["total"] = (last - started) * 1000
    second = _calls(dynamodb, secrets, f"{round_id}-2")
    for name, call in second.items():
        call()  # type: ignore[operator]
        lap(f"warm_{name}")
    return times


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in WAYS:  # noqa: PLR2004 - the way and the round's id
        print(f"usage: python sdk_share_child.py {{{'|'.join(WAYS)}}} <round id>", file=sys.stderr)
        return 2
    import lambda_child  # type: ignore[import-not-found, unused-ignore]  # beside this file

    lambda_child.set_lambda_sys_path()
    result = measure(argv[0], argv[1])
    sys.stdout.write("\n" + SHARE_MARKER + json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
