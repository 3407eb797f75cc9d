"""The submission path's AWS client: DynamoDB and Secrets Manager over their JSON protocols, signed with
SigV4 (sigv4.py), sent with http.client, and answered as botocore answers.

Why not botocore here: a visitor's first submission waits for the function's cold start, and a botocore
client costs most of it: importing botocore, loading the service models, building the client
(docs/performance.md has the figures, from `python -m bench --share`). This client imports the
standard library only, and botocore only when something fails.

What it keeps of botocore, so that nothing else changes (tests/test_aws_json_faults.py and
tests/test_aws_json_signing.py hold each against a botocore client):
- the same answers: the response's JSON with `ResponseMetadata`; a failure as botocore's own
  exceptions: `ClientError` with AWS's code, message and the error's fields (a cancelled transaction's
  `CancellationReasons`, a failed condition's `Item`), `ConnectTimeoutError`, `ReadTimeoutError`,
  `EndpointConnectionError`, `ConnectionClosedError`; so `aws.classify` and every caller are as they were;
- the same deadlines and retries as aws_clients.py's Config: 1 s to connect, 2 s a read, 2 attempts in
  the "standard" mode's terms (what is retried, the jittered backoff, `x-amz-retry-after`, the retry
  quota, DynamoDB's CRC32 check), from botocore/retries/standard.py and special.py
  (https://github.com/boto/botocore/tree/develop/botocore/retries);
- the same endpoint (AWS_ENDPOINT_URL_<SERVICE>, then AWS_ENDPOINT_URL, then the regional one) and
  the same credentials: Lambda's environment variables, or, where they are not set (a SnapStart
  function gets container credentials instead:
  https://docs.aws.amazon.com/lambda/latest/dg/snapstart-activate.html#snapstart-credentials),
  botocore's own credential chain;
- the same trust: HTTPS verified against the CA bundle botocore uses (AWS_CA_BUNDLE, certifi's, or
  botocore's own), and an untrusted certificate as botocore's SSLError (tests/test_aws_json_tls.py).

What it does not do, because nothing here needs it: operations other than each Service's, binary
attribute values, timestamps turned into datetimes (Secrets Manager's CreatedDate stays a number),
the model's members inside an answer's values (they are passed as AWS sends them), account-based,
FIPS and dual-stack endpoints, proxies (HTTPS_PROXY: the function is outside any VPC). Nor does it
follow botocore where botocore fails on an answer (tests/test_aws_json_faults.py shows each): an
error body its parser cannot read (here the status's ClientError), an x-amz-crc32 that is not a
number (here no checksum), an answer cut short (botocore takes the part; here a closed connection,
retried).

The notifier, the canary and the `enquiries` command keep botocore (aws_clients.py).
"""

from __future__ import annotations

import functools
import http.client
import json
import os
import random
import socket
import ssl
import threading
import time
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Protocol
from urllib.parse import quote, urlsplit, urlunsplit

from enquiries.sigv4 import Credentials, authorization


@dataclass(frozen=True)
class Service:
    """What a JSON-protocol service's requests carry (its model's metadata), and the operations made."""

    name: str  # the endpoint's host prefix and the signing name
    endpoint_variable: str  # AWS_ENDPOINT_URL_<the service id, in capitals, "_" for "-">
    target_prefix: str
    json_version: str
    # snake_case (as botocore names a client's methods) -> the operation's name
    operations: dict[str, str]
    # botocore/retries/standard.py's ExponentialBackoff base scale for errors other than throttling
    backoff_scale: float = 0.05
    # errors the model marks retryable (ModeledRetryableChecker), none of them throttling
    retryable_codes: frozenset[str] = frozenset()
    # Every error the model defines (any operation's), with its members: botocore puts those of them
    # an error's body holds at the top of `error.response` and raises a ClientError subclass named after
    # it (endpoint.py's _add_modeled_error_fields, errorfactory.py); an error it does not define gets
    # neither.
    errors: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # The errors each operation lists: a retryable one is retried only by the operations that list it,
    # and a 429 is throttling only when its code is none of them (standard.py's ModeledRetryableChecker
    # and ThrottlingStatusCodeChecker).
    operation_errors: dict[str, frozenset[str]] = field(default_factory=dict)
    # Each operation's output members: botocore's answer has those of them the body holds, no others.
    outputs: dict[str, tuple[str, ...]] = field(default_factory=dict)


# From botocore/data/dynamodb/2012-08-10/service-2.json and secretsmanager/2017-10-17/service-2.json
# (tests/test_aws_json_faults.py holds these tables to the installed botocore's models).
_DYNAMODB_THROTTLING = (
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "ThrottlingException",
)
DYNAMODB = Service(
    "dynamodb",
    "AWS_ENDPOINT_URL_DYNAMODB",
    "DynamoDB_20120810",
    "1.0",
    {"get_item": "GetItem", "put_item": "PutItem", "transact_write_items": "TransactWriteItems"},
    backoff_scale=0.025,
    retryable_codes=frozenset({"ReplicatedWriteConflictException"}),
    errors={
        **dict.fromkeys(
            [
                "BackupInUseException",
                "BackupNotFoundException",
                "ContinuousBackupsUnavailableException",
                "DuplicateItemException",
                "ExportConflictException",
                "ExportNotFoundException",
                "GlobalTableAlreadyExistsException",
                "GlobalTableNotFoundException",
                "ImportConflictException",
                "ImportNotFoundException",
                "IndexNotFoundException",
                "InternalServerError",
                "InvalidExportTimeException",
                "InvalidRestoreTimeException",
                "ItemCollectionSizeLimitExceededException",
                "LimitExceededException",
                "PointInTimeRecoveryUnavailableException",
                "PolicyNotFoundException",
                "ReplicaAlreadyExistsException",
                "ReplicaNotFoundException",
                "ReplicatedWriteConflictException",
                "ResourceInUseException",
                "ResourceNotFoundException",
                "TableAlreadyExistsException",
                "TableInUseException",
                "TableNotFoundException",
                "TransactionConflictException",
            ],
            ("message",),
        ),
        "ConditionalCheckFailedException": ("message", "Item"),
        "IdempotentParameterMismatchException": ("Message",),
        "ProvisionedThroughputExceededException": ("message", "ThrottlingReasons"),
        "RequestLimitExceeded": ("message", "ThrottlingReasons"),
        "ThrottlingException": ("message", "throttlingReasons"),
        "TransactionCanceledException": ("Message", "CancellationReasons"),
        "TransactionInProgressException": ("Message",),
    },
    operation_errors={
        "GetItem": frozenset({"ResourceNotFoundException", "InternalServerError", *_DYNAMODB_THROTTLING}),
        "PutItem": frozenset(
            {
                "ConditionalCheckFailedException",
                "ResourceNotFoundException",
                "ItemCollectionSizeLimitExceededException",
                "TransactionConflictException",
                "InternalServerError",
                "ReplicatedWriteConflictException",
                *_DYNAMODB_THROTTLING,
            }
        ),
        "TransactWriteItems": frozenset(
            {
                "ResourceNotFoundException",
                "TransactionCanceledException",
                "TransactionInProgressException",
                "IdempotentParameterMismatchException",
                "InternalServerError",
                *_DYNAMODB_THROTTLING,
            }
        ),
    },
    outputs={
        "GetItem": ("Item", "ConsumedCapacity"),
        "PutItem": ("Attributes", "ConsumedCapacity", "ItemCollectionMetrics"),
        "TransactWriteItems": ("ConsumedCapacity", "ItemCollectionMetrics"),
    },
)
SECRETS_MANAGER = Service(
    "secretsmanager",
    # botocore's service id for it is "Secrets Manager" (SERVICE_NAME_ALIASES in botocore/utils.py)
    "AWS_ENDPOINT_URL_SECRETS_MANAGER",
    "secretsmanager",
    "1.1",
    {"get_secret_value": "GetSecretValue"},
    errors=dict.fromkeys(
        [
            "DecryptionFailure",
            "EncryptionFailure",
            "InternalServiceError",
            "InvalidNextTokenException",
            "InvalidParameterException",
            "InvalidRequestException",
            "LimitExceededException",
            "MalformedPolicyDocumentException",
            "PreconditionNotMetException",
            "PublicPolicyException",
            "ResourceExistsException",
            "ResourceNotFoundException",
        ],
        ("Message",),
    ),
    operation_errors={
        "GetSecretValue": frozenset(
            {
                "ResourceNotFoundException",
                "InvalidParameterException",
                "InvalidRequestException",
                "DecryptionFailure",
                "InternalServiceError",
            }
        )
    },
    outputs={
        "GetSecretValue": (
            "ARN",
            "Name",
            "VersionId",
            "SecretBinary",
            "SecretString",
            "VersionStages",
            "CreatedDate",
        )
    },
)

# botocore/retries/standard.py: what the standard mode retries.
TRANSIENT_CODES = frozenset({"RequestTimeout", "RequestTimeoutException", "PriorRequestNotComplete"})
TRANSIENT_STATUSES = frozenset({500, 502, 503, 504})
THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
    }
)
THROTTLING_STATUS = HTTPStatus.TOO_MANY_REQUESTS
THROTTLING_BACKOFF_SCALE = 1.0
MAX_BACKOFF_SECONDS = 20
RETRY_AFTER_MAX_ADDITIONAL_SECONDS = 5

# Observers of every call (service, operation, parameters), before it is sent: the tests' permission
# check. Empty on Lambda.
OBSERVERS: list[Callable[[str, str, dict[str, Any]], None]] = []


@dataclass
class RetryQuota:
    """The standard mode's token bucket (botocore/retries/quota.py and standard.py's RetryQuotaChecker):
    a retry takes 14 (5 after throttling), a success gives back what its retry took, or 1."""

    capacity: int = 500
    available: int = 500
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    RETRY_COST = 14
    THROTTLING_RETRY_COST = 5
    NO_RETRY_INCREMENT = 1

    def acquire(self, amount: int) -> bool:
        with self.lock:
            if amount > self.available:
                return False
            self.available -= amount
            return True

    def release(self, amount: int) -> None:
        with self.lock:
            self.available = min(self.available + amount, self.capacity)


@dataclass(frozen=True)
class Answer:
    """One HTTP response."""

    status: int
    reason: str
    headers: dict[str, str]  # names in lower case
    body: bytes


@dataclass(frozen=True)
class Timeouts:
    connect: float
    read: float


class HttpTransport:
    """Connections to one endpoint, kept open between requests (a warm container reuses them), each
    used by one thread at a time. Network failures become botocore's exceptions."""

    def __init__(self, endpoint: str, timeouts: Timeouts, environ: Any = os.environ) -> None:
        parts = urlsplit(endpoint)
        self.endpoint = endpoint
        # The request's URL, which botocore's network errors name (httpsession.py: request.url): the
        # endpoint with "/" for its path when it has none (_urljoin in botocore/utils.py).
        self._url = urlunsplit(parts._replace(path=parts.path or "/"))
        self._https = parts.scheme == "https"
        self._host = parts.hostname or ""
        self._port = parts.port
        self._timeouts = timeouts
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()
        self._ca_bundle = ca_bundle(environ)

    def _connection(self) -> http.client.HTTPConnection:
        with self._lock:
            while self._idle:
                connection = self._idle.pop()
                if not _dropped(connection):
                    return connection
                connection.close()
        if self._https:
            try:
                context = tls_context(self._ca_bundle)
            except (OSError, ValueError) as error:  # no such bundle, or not one: botocore's SSLError
                raise _botocore_error("SSLError", self._url, str(error)) from error
            return http.client.HTTPSConnection(
                self._host, self._port, timeout=self._timeouts.connect, context=context
            )
        return http.client.HTTPConnection(self._host, self._port, timeout=self._timeouts.connect)

    def send(self, headers: dict[str, str], body: bytes) -> Answer:
        connection = self._connection()
        # Outside the try below: botocore's ConnectTimeoutError is also an OSError (through requests'
        # ConnectTimeout, botocore/exceptions.py), which the try would turn into ConnectionClosedError.
        if connection.sock is None:
            self._connect(connection)
        try:
            connection.sock.settimeout(self._timeouts.read)
            connection.request("POST", "/", body, headers)
            response = connection.getresponse()
            headers_read: dict[str, str] = {}
            for name, value in response.getheaders():
                # A repeated header's values joined, as urllib3's HTTPHeaderDict gives them to botocore.
                key = name.lower()
                headers_read[key] = f"{headers_read[key]}, {value}" if key in headers_read else value
            answer = Answer(response.status, response.reason, headers_read, response.read())
        except TimeoutError:
            connection.close()
            raise _botocore_error("ReadTimeoutError", self._url) from None
        except (OSError, http.client.HTTPException) as error:
            connection.close()
            raise _botocore_error("ConnectionClosedError", self._url) from error
        if response.will_close:
            connection.close()
        else:
            with self._lock:
                self._idle.append(connection)
        return answer

    def _connect(self, connection: http.client.HTTPConnection) -> None:
        try:
            connection.connect()
            # aws_clients' Config asks botocore for TCP keep-alive on its connections too.
            connection.sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        except TimeoutError:
            connection.close()
            raise _botocore_error("ConnectTimeoutError", self._url) from None
        except ssl.SSLError as error:  # botocore's SSLError (httpsession.py), a ConnectionError too
            connection.close()
            raise _botocore_error("SSLError", self._url, str(error)) from error
        except OSError as error:
            connection.close()
            raise _botocore_error("EndpointConnectionError", self._url) from error

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()


def _dropped(connection: http.client.HTTPConnection) -> bool:
    """Whether the peer closed an idle connection (urllib3's is_connection_dropped): reading it would
    fail, so a new one is made rather than spending an attempt."""
    import selectors

    if connection.sock is None:
        return True
    with selectors.DefaultSelector() as selector:
        selector.register(connection.sock, selectors.EVENT_READ)
        return bool(selector.select(0))


def _botocore_error(name: str, endpoint: str, reason: str = "") -> Exception:
    import botocore.exceptions

    error: Exception = getattr(botocore.exceptions, name)(endpoint_url=endpoint, error=reason)
    return error


@functools.cache
def tls_context(bundle: str | None) -> ssl.SSLContext:
    """The TLS settings botocore gives urllib3 (create_urllib3_context in botocore/httpsession.py), with
    the bundle loaded: made once per process, since loading a bundle takes tens of milliseconds.
    Not ssl.create_default_context, which on Python 3.13 also makes verification stricter
    (VERIFY_X509_STRICT) than botocore's, and could refuse a bundle botocore accepts."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # certificates and host names verified
    context.options |= ssl.OP_NO_SSLv2 | ssl.OP_NO_SSLv3 | ssl.OP_NO_COMPRESSION | ssl.OP_NO_TICKET
    context.post_handshake_auth = True
    if bundle is None:
        context.load_default_certs()
    else:
        context.load_verify_locations(cafile=bundle)
    return context


def ca_bundle(environ: Any = os.environ) -> str | None:
    """The certificates botocore verifies AWS's against (get_cert_path in botocore/httpsession.py):
    AWS_CA_BUNDLE's file, else certifi's where installed, else the bundle botocore ships (found without
    importing botocore); None, the system's, only where there is no botocore either."""
    if environ.get("AWS_CA_BUNDLE"):
        return str(environ["AWS_CA_BUNDLE"])
    import importlib.util

    try:
        from certifi import where  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        found = importlib.util.find_spec("botocore")
        for folder in (found.submodule_search_locations or []) if found else []:
            path = os.path.join(folder, "cacert.pem")
            if os.path.exists(path):
                return path
        return None
    return str(where())


class Transport(Protocol):
    """Sends one signed request and returns the answer; a network failure is botocore's exception."""

    def send(self, headers: dict[str, str], body: bytes) -> Answer: ...

    def close(self) -> None: ...


class JsonClient:
    """A client of one JSON-protocol service with botocore's interface for the operations made:
    `client.get_item(TableName=..., Key=...)` returns the parsed response or raises as botocore does."""

    def __init__(  # noqa: PLR0913 - a client's parts, each its own port (the tests give their own)
        self,
        service: Service,
        *,
        region: str,
        endpoint: str,
        credentials: Callable[[], Credentials],
        transport: Transport,
        max_attempts: int,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.service = service
        self.region = region
        self.endpoint = endpoint
        self.credentials = credentials
        self.transport = transport
        self._max_attempts = max_attempts
        self._clock = clock
        self._sleep = sleep
        self._jitter = jitter
        self._quota = RetryQuota()
        parts = urlsplit(endpoint)
        default_port = 443 if parts.scheme == "https" else 80
        # The Host header as botocore signs it: the port only when it is not the scheme's default, an
        # IPv6 address in brackets (_host_from_url in botocore/auth.py).
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        self._host = host if parts.port in (None, default_port) else f"{host}:{parts.port}"

    def __getattr__(self, name: str) -> Callable[..., dict[str, Any]]:
        operation = self.service.operations.get(name)
        if operation is None:
            raise AttributeError(f"{self.service.name} client has no operation {name!r} here")
        return lambda **params: self.call(operation, params)

    def close(self) -> None:
        self.transport.close()

    def call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        for observe in OBSERVERS:
            observe(self.service.name, operation, params)
        # botocore's serializer for the JSON protocol (botocore/serialize.py, JSONSerializer) dumps with
        # json's default separators: the same bytes, so the same request and signature as botocore's.
        body = json.dumps(params).encode("utf-8")
        invocation = str(uuid.uuid4())
        attempt = 1
        retry_cost = 0
        while True:
            answer: Answer | None = None
            failure: Exception | None = None
            try:
                answer = self.transport.send(self._headers(operation, body, invocation, attempt), body)
            except Exception as error:
                if not _is_network_error(error):
                    raise
                failure = error
            code = _error_code(answer) if answer is not None else None
            modeled = code in self.service.operation_errors.get(operation, frozenset())
            throttled = code in THROTTLING_CODES or (
                answer is not None and answer.status == THROTTLING_STATUS and not modeled
            )
            # What botocore's retry handler adds to the answer's ResponseMetadata (standard.py's
            # MaxAttemptsChecker and RetryQuotaChecker), which ClientError's message then tells.
            retry_metadata: dict[str, bool] = {}
            if attempt >= self._max_attempts:
                retry_metadata["MaxAttemptsReached"] = True
            elif self._retryable(answer, code, failure, throttled, modeled):
                cost = RetryQuota.THROTTLING_RETRY_COST if throttled else RetryQuota.RETRY_COST
                if self._quota.acquire(cost):
                    retry_cost = cost
                    self._sleep(self._backoff(attempt, answer, throttled))
                    attempt += 1
                    continue
                retry_metadata["RetryQuotaReached"] = True
            if failure is not None:
                raise failure
            assert answer is not None  # one of the two is set
            if _succeeded(answer.status):
                self._quota.release(retry_cost or RetryQuota.NO_RETRY_INCREMENT)
                return self._parsed(operation, answer, attempt, retry_metadata)
            raise self._client_error(operation, answer, attempt, retry_metadata)

    def _headers(self, operation: str, body: bytes, invocation: str, attempt: int) -> dict[str, str]:
        credentials = self.credentials()
        amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(self._clock()))
        headers: dict[str, str] = {
            "Host": self._host,
            "X-Amz-Target": f"{self.service.target_prefix}.{operation}",
            "Content-Type": f"application/x-amz-json-{self.service.json_version}",
            "X-Amz-Date": amz_date,
        }
        if credentials.token:
            headers["X-Amz-Security-Token"] = credentials.token
        headers["Authorization"] = authorization(
            credentials,
            region=self.region,
            service=self.service.name,
            amz_date=amz_date,
            headers=headers,
            body=body,
        )
        # After signing, as botocore adds them (its request-created handlers run after the signer's).
        headers["User-Agent"] = "enquiries aws_json"
        headers["amz-sdk-invocation-id"] = invocation
        headers["amz-sdk-request"] = f"attempt={attempt}; max={self._max_attempts}"
        # On Lambda, the invocation's trace, for X-Ray and Lambda's recursive loop detection (unsigned):
        # add_recursion_detection_header in botocore/handlers.py.
        trace = os.environ.get("_X_AMZN_TRACE_ID")
        if trace and "AWS_LAMBDA_FUNCTION_NAME" in os.environ:
            headers["X-Amzn-Trace-Id"] = quote(trace, safe="-=;:+&[]{}\"',")
        return headers

    def _retryable(
        self,
        answer: Answer | None,
        code: str | None,
        failure: Exception | None,
        throttled: bool,
        modeled: bool,
    ) -> bool:
        if (
            failure is not None
            or throttled
            or code in TRANSIENT_CODES
            or (modeled and code in self.service.retryable_codes)
        ):
            return True
        assert answer is not None  # one of the two is set
        if answer.status in TRANSIENT_STATUSES:
            return True
        # botocore/retries/special.py's RetryDDBChecksumError: a body that does not match its CRC32.
        checksum = answer.headers.get("x-amz-crc32")
        return (
            self.service.name == "dynamodb"
            and checksum is not None
            and checksum.isdigit()
            and zlib.crc32(answer.body) & 0xFFFFFFFF != int(checksum)
        )

    def _backoff(self, attempt: int, answer: Answer | None, throttled: bool) -> float:
        scale = THROTTLING_BACKOFF_SCALE if throttled else self.service.backoff_scale
        delay: float = self._jitter() * min(scale * 2 ** (attempt - 1), MAX_BACKOFF_SECONDS)
        retry_after = answer.headers.get("x-amz-retry-after") if answer is not None else None
        if retry_after is not None:
            try:
                wanted = int(retry_after) / 1000
            except ValueError:
                return delay
            if wanted >= 0:
                return max(delay, min(wanted, RETRY_AFTER_MAX_ADDITIONAL_SECONDS + delay))
        return delay

    def _metadata(
        self, answer: Answer, attempt: int, retry_metadata: dict[str, bool], *, generic: bool = False
    ) -> dict[str, Any]:
        metadata: dict[str, Any] = {}
        # botocore's generic error (parsers.py's _do_generic_error_parse) reads no header for it.
        if "x-amzn-requestid" in answer.headers and not generic:
            metadata["RequestId"] = answer.headers["x-amzn-requestid"]
        metadata.update(HTTPStatusCode=answer.status, HTTPHeaders=answer.headers)
        metadata.update(retry_metadata, RetryAttempts=attempt - 1)
        return metadata

    def _parsed(
        self, operation: str, answer: Answer, attempt: int, retry_metadata: dict[str, bool]
    ) -> dict[str, Any]:
        try:
            body = json.loads(answer.body) if answer.body else {}
        except ValueError:
            # botocore reads a body that is not JSON as {"message": <the body>} (parsers.py's
            # _parse_body_as_json), which no output has: the answer is empty.
            body = {}
        # The output's members, without nulls (parsers.py's _handle_structure).
        members = self.service.outputs.get(operation, ())
        parsed: dict[str, Any] = {name: body[name] for name in members if body.get(name) is not None}
        parsed["ResponseMetadata"] = self._metadata(answer, attempt, retry_metadata)
        return parsed

    def _client_error(
        self, operation: str, answer: Answer, attempt: int, retry_metadata: dict[str, bool]
    ) -> Exception:
        from botocore.exceptions import ClientError

        code = _error_code(answer)
        if code is None:  # a 300, which botocore parses as a success and then raises (client.py)
            unknown: Exception = ClientError(
                self._parsed(operation, answer, attempt, retry_metadata), operation
            )
            return unknown
        fields = _error_fields(answer)
        generic = fields is None
        error_info: dict[str, str] = {"Code": code}
        if fields is None:  # an empty or HTML 5xx (a proxy's page): botocore's generic error
            # named by the status's standard phrase, not the answer's (parsers.py)
            error_info["Message"], fields = http.client.responses.get(answer.status, ""), {}
        else:
            error_info["Message"] = fields.get("message", fields.get("Message", ""))
            query = _query_error(answer)
            if query:
                error_info.update(QueryErrorCode=_error_code(answer, translated=False) or "", Type=query[1])
        # The model's fields of this error, where the body has them (endpoint.py's
        # _add_modeled_error_fields; parsers.py skips a member whose value is null).
        members = self.service.errors.get(code, ())
        parsed: dict[str, Any] = {name: fields[name] for name in members if fields.get(name) is not None}
        parsed["Error"] = error_info
        parsed["ResponseMetadata"] = self._metadata(answer, attempt, retry_metadata, generic=generic)
        error: Exception = _error_class(self.service, code)(parsed, operation)
        return error


# Each modeled error's exception class, made once per service and code.
_ERROR_CLASSES: dict[tuple[str, str], type[Exception]] = {}


def _error_class(service: Service, code: str) -> type[Exception]:
    """What botocore raises for `code`: a ClientError subclass named after the error the model defines
    (made as botocore/errorfactory.py makes it, with its module), or ClientError itself."""
    from botocore.exceptions import ClientError

    if code not in service.errors:
        plain: type[Exception] = ClientError
        return plain
    made = _ERROR_CLASSES.get((service.name, code))
    if made is None:
        made = type(code, (ClientError,), {"__module__": "botocore.errorfactory"})
        made = _ERROR_CLASSES.setdefault((service.name, code), made)
    return made


def _succeeded(status: int) -> bool:
    return HTTPStatus.OK <= status < HTTPStatus.MULTIPLE_CHOICES


def _error_fields(answer: Answer) -> dict[str, Any] | None:
    """A failed answer's body as botocore's JSON parser reads it (botocore/parsers.py: _do_error_parse,
    _is_generic_error_response): None for a 5xx with an empty or HTML body."""
    body = answer.body.strip()
    if answer.status >= HTTPStatus.INTERNAL_SERVER_ERROR and (not body or body.startswith(b"<html>")):
        return None
    try:
        value = json.loads(answer.body) if answer.body else {}
    except ValueError:
        return {"message": answer.body.decode("utf-8", "replace")}
    return value if isinstance(value, dict) else {}


def _error_code(answer: Answer, *, translated: bool = True) -> str | None:
    """A failed answer's code as botocore reads it (parsers.py's _do_error_parse): its `__type` without
    the namespace or what follows a ":", or the status when it has none (or a generic 5xx); the code
    an x-amzn-query-error header names instead, when `translated`. None for what botocore parses as a
    success (under 301)."""
    if answer.status < HTTPStatus.MOVED_PERMANENTLY:
        return None
    fields = _error_fields(answer)
    code = str(answer.status) if fields is None else fields.get("__type", str(answer.status))
    if not isinstance(code, str):  # botocore fails on it (a TypeError): the status, as for none
        return str(answer.status)
    code = code.split(":", 1)[0].rsplit("#", 1)[-1]
    query = _query_error(answer) if translated and fields is not None else None
    return query[0] if query else code


def _query_error(answer: Answer) -> tuple[str, str] | None:
    """The code and type an x-amzn-query-error header ("Code;Sender") gives (parsers.py's
    _do_query_compatible_error_parse: botocore reads it from every JSON service's errors)."""
    parts = answer.headers.get("x-amzn-query-error", "").split(";")
    return (parts[0], parts[1]) if len(parts) == 2 and parts[0] else None  # noqa: PLR2004 - "Code;Type"


def _is_network_error(error: Exception) -> bool:
    if type(error).__module__ != "botocore.exceptions":
        return False
    from botocore.exceptions import ConnectionError as AwsConnectionError
    from botocore.exceptions import HTTPClientError

    return isinstance(error, AwsConnectionError | HTTPClientError)


# --- made from the environment, as botocore would --------------------------------------------------


def endpoint_of(service: Service, region: str, environ: Any = os.environ) -> str:
    """botocore's choice (https://docs.aws.amazon.com/sdkref/latest/guide/feature-ss-endpoints.html):
    the service's own variable, then the global one, then AWS's regional endpoint."""
    if environ.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "").lower() != "true":
        for name in (service.endpoint_variable, "AWS_ENDPOINT_URL"):
            if environ.get(name):
                return str(environ[name])
    suffix = next(
        (suffix for prefix, suffix in PARTITION_SUFFIXES if region.startswith(prefix)), "amazonaws.com"
    )
    return f"https://{service.name}.{region}.{suffix}"


# The partitions whose domain is not amazonaws.com: their regions' prefix and dnsSuffix, from
# botocore/data/partitions.json (1.44.18); tests/test_aws_json_signing.py compares every region of it.
PARTITION_SUFFIXES = (
    ("cn-", "amazonaws.com.cn"),
    ("eusc-", "amazonaws.eu"),
    ("us-iso-", "c2s.ic.gov"),
    ("us-isob-", "sc2s.sgov.gov"),
    ("eu-isoe-", "cloud.adc-e.uk"),
    ("us-isof-", "csp.hci.ic.gov"),
)


def prepare_for_snapshot(environ: Any = os.environ) -> None:
    """For a SnapStart snapshot (snapstart.warm_up), what a restored copy's first call would otherwise
    do: load the CA bundle into the TLS settings (tens of milliseconds; it holds no secret) and, where
    the environment holds no keys (SnapStart's container credentials), import botocore and make its
    session. The credentials themselves are resolved at that call, after the restore."""
    tls_context(ca_bundle(environ))
    if environment_credentials(environ) is _botocore_credentials:
        from enquiries.aws_clients import aws_session

        aws_session()


def environment_credentials(environ: Any = os.environ) -> Callable[[], Credentials]:
    """Lambda's credentials: its environment variables when set, or botocore's credential chain."""
    key, secret = environ.get("AWS_ACCESS_KEY_ID"), environ.get("AWS_SECRET_ACCESS_KEY")
    if key and secret:
        # botocore's EnvProvider (botocore/credentials.py) takes the legacy AWS_SECURITY_TOKEN first.
        token = environ.get("AWS_SECURITY_TOKEN") or environ.get("AWS_SESSION_TOKEN") or None
        fixed = Credentials(key, secret, token)
        return lambda: fixed
    return _botocore_credentials


def _botocore_credentials() -> Credentials:
    from enquiries.aws_clients import aws_session

    found = aws_session().get_credentials()
    if found is None:
        from botocore.exceptions import NoCredentialsError

        raise NoCredentialsError
    frozen = found.get_frozen_credentials()  # refreshed by botocore when they near their expiry
    return Credentials(frozen.access_key, frozen.secret_key, frozen.token)


def region_of(environ: Any = os.environ) -> str:
    """botocore's region: AWS_DEFAULT_REGION, else the profile's `region` in the config file. botocore
    never reads AWS_REGION (the 'region' row of botocore/configprovider.py); Lambda sets both alike."""
    region = environ.get("AWS_DEFAULT_REGION")
    if not region:  # not on Lambda: botocore's own lookup of the config file
        from enquiries.aws_clients import aws_session

        region = aws_session().get_config_variable("region")
    if not region:
        from botocore.exceptions import NoRegionError

        raise NoRegionError
    return str(region)
