"""The local server: the real handlers behind an API-Gateway-shaped HTTP server, on an embedded moto.

Start-up order matters: the emulator first, then the listening socket (its real port is part of the
allowed origins), then the handlers' environment, then the resources, and only then the handler
import, because a handler reads its settings once, at import, as in Lambda's init phase.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import logging
import os
import re
import signal
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlsplit

from devserver import apigw, environment, inspection, site
from devserver.apigw import HttpResponse
from emulator import stream
from emulator.lambda_context import LambdaContext
from emulator.moto_server import Emulator, forget_shard_iterator, latest_stream_arn, running_moto
from emulator.provision import create_dead_letter_queue, provision
from emulator.served_hosts import host_is_served, is_cross_site, is_loopback_only, parse_address
from emulator.template_tables import load_template

log = logging.getLogger("devserver")

REPO_ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS_DIR = REPO_ROOT / "functions"
SITE_DIR = REPO_ROOT / "site"

SUBMIT_HANDLER = "enquiries.api.submit.lambda_handler"
NOTIFY_HANDLER = "enquiries.notify.handler.lambda_handler"
API_PATH = "/enquiries"
# Every form of forms/ at /forms/<form-id> (the function answers an unknown one with the contract's 404).
FORMS_PATH = "/forms"
# The Lambda Invoke API (POST /2015-03-31/functions/{name}/invocations) under this prefix, so that a
# boto3 Lambda client whose endpoint is <server>/_dev/lambda invokes the local functions.
LAMBDA_PREFIX = "/_dev/lambda"
_INVOKE_PATH = re.compile(r"^/2015-03-31/functions/(?P<name>[^/]+)/invocations$")
MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway HTTP API's payload limit
FUNCTION_TIMEOUT_SECONDS = 10


class StartupError(Exception):
    """The server cannot start; the message says why, for the terminal."""


class LambdaFunction:
    """A handler run as in one warm Lambda execution environment: one invocation at a time.

    Lambda never runs two events concurrently in one environment, so module state in a handler is
    safe there; serialising here keeps the local server from inventing races that cannot happen.
    """

    def __init__(
        self,
        name: str,
        handler: Callable[[dict[str, Any], Any], Any],
        region: str,
        *,
        memory_mb: int = 512,
        timeout_seconds: float = FUNCTION_TIMEOUT_SECONDS,
    ) -> None:
        self.name = name
        self._handler = handler
        self.arn = f"arn:aws:lambda:{region}:{apigw.LOCAL_ACCOUNT_ID}:function:{name}"
        self._memory_mb = memory_mb
        self._timeout_seconds = timeout_seconds
        self._lock = threading.Lock()

    @classmethod
    def load(
        cls,
        dotted: str,
        *,
        name: str,
        region: str,
        memory_mb: int = 512,
        timeout_seconds: float = FUNCTION_TIMEOUT_SECONDS,
    ) -> LambdaFunction:
        module_name, _, attribute = dotted.rpartition(".")
        try:
            handler = getattr(importlib.import_module(module_name), attribute)
        except Exception as error:
            # Typically a missing or malformed setting, which the handler names at import.
            raise StartupError(f"{dotted} failed to load: {error}") from error
        return cls(name, handler, region, memory_mb=memory_mb, timeout_seconds=timeout_seconds)

    def invoke(self, event: dict[str, Any]) -> Any:
        """The handler's result after a JSON round trip (what Lambda returns to its caller)."""
        with self._lock:
            context = LambdaContext(
                function_name=self.name,
                invoked_function_arn=self.arn,
                memory_limit_in_mb=self._memory_mb,
                aws_request_id=str(uuid.uuid4()),
                log_group_name="/aws/lambda/local",
                log_stream_name="local",
                deadline=time.monotonic() + self._timeout_seconds,
            )
            result = self._handler(event, context)
        return json.loads(json.dumps(result))


@dataclass
class DevApp:
    """What the request handler serves."""

    submit: LambdaFunction
    dynamodb: Any
    table_name: str
    site_root: Path
    # The notifier's batches given up on (their OnFailure records), for GET /_dev/dead-letters.
    dead_letters: Callable[[], list[dict[str, Any]]] = list
    # Functions a Lambda client may invoke through LAMBDA_PREFIX, by name.
    functions: dict[str, LambdaFunction] = field(default_factory=dict)
    # Where the emulator and the deployed resources' local stand-ins are, for GET /_dev/aws.
    aws: dict[str, Any] = field(default_factory=dict)
    # Where a browser loads this server's page from: the only origins its /_dev routes answer.
    own_origins: list[str] = field(default_factory=list)


class DevHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default listen backlog of 5 resets connections when a page fires a burst.
    request_queue_size = 128
    app: DevApp | None = None


class DevHTTPServer6(DevHTTPServer):
    address_family = socket.AF_INET6


class RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "enquiries-devserver"
    server: DevHTTPServer
    _started = 0.0

    # Every method goes through one router; http.server dispatches on do_<METHOD>.
    def do_GET(self) -> None:
        self._route()

    # TRACE and QUERY too: every method on /enquiries reaches the handler (405 for all but POST).
    do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_TRACE = do_QUERY = do_GET

    # -- routing -----------------------------------------------------------------------------------
    def _route(self) -> None:
        self._started = time.monotonic()
        path = self.path.split("?", 1)[0]
        try:
            response = self._respond(path)
        except Exception:
            log.exception("the local server failed on %s %s", self.command, path)
            response = _json_response(500, {"error": "devserver_error", "message": "See the server log."})
        try:
            self._send(response)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _respond(self, path: str) -> HttpResponse:
        refusal = self._refusal(path)
        if refusal is not None:
            return refusal
        if any(path == api or path.startswith(api + "/") for api in (API_PATH, FORMS_PATH)):
            return self._invoke_api()
        if path.startswith(LAMBDA_PREFIX + "/"):
            return self._invoke_function(path[len(LAMBDA_PREFIX) :])
        if path.startswith("/_dev/"):
            return self._dev_view(path)
        if self.command in ("GET", "HEAD"):
            return self._static(path)
        return _json_response(404, {"error": "not_found", "message": "Nothing here."})

    def _refusal(self, path: str) -> HttpResponse | None:
        """The answer to a request meant for another host (DNS rebinding) or, on a /_dev route, sent
        by another site's page; None for one this server should serve (see emulator.served_hosts)."""
        own_origins = self._app().own_origins
        hosts = [urlsplit(origin).hostname or "" for origin in own_origins]
        # Listening on a wildcard, the server is also the address a connection reached it at.
        local = parse_address(str(self.connection.getsockname()[0]))
        if local is not None:
            hosts.append(str(getattr(local, "ipv4_mapped", None) or local))
        # Two Host headers are refused too: which one a proxy or a browser meant is unknown (RFC 9112, 3.2).
        host_headers = self.headers.get_all("Host") or []
        if len(host_headers) != 1 or not host_is_served(host_headers[0], hosts, self.server.server_port):
            self.close_connection = True  # its body is left unread
            return _json_response(
                403, {"error": "host_not_served", "message": "This server answers only for its own address."}
            )
        if path.startswith("/_dev/") and is_cross_site(
            self.headers.get("Origin"), self.headers.get("Sec-Fetch-Site"), own_origins
        ):
            self.close_connection = True  # its body is left unread
            return _json_response(
                403,
                {
                    "error": "cross_site_refused",
                    "message": "The /_dev routes answer only this server's page.",
                },
            )
        return None

    def _invoke_api(self) -> HttpResponse:
        body = self._read_body()
        if isinstance(body, HttpResponse):
            return body
        app = self._app()
        event = apigw.build_event(
            apigw.HttpRequest(
                method=self.command,
                target=self.path,
                headers=self.headers.items(),
                body=body,
                source_ip=str(self.client_address[0]),
                domain_name=self.headers.get("Host") or f"localhost:{self.server.server_port}",
            )
        )
        try:
            return apigw.to_http_response(app.submit.invoke(event))
        except Exception:
            # Lambda reports an unhandled error and API Gateway answers a bare 500; the traceback is
            # for the developer's terminal.
            log.exception("%s raised (request %s)", app.submit.name, event["requestContext"]["requestId"])
            return apigw.internal_server_error()

    def _invoke_function(self, path: str) -> HttpResponse:
        """Lambda's Invoke (RequestResponse), as the Lambda API answers it: the function's result,
        or, when it raised, its error as the payload with an X-Amz-Function-Error header."""
        match = _INVOKE_PATH.match(path)
        function = self._app().functions.get(match["name"]) if match else None
        if self.command != "POST" or function is None:
            response = _json_response(
                404, {"Type": "User", "message": "Function not found: " + path.rsplit("/", 2)[0]}
            )
            response.headers.append(("x-amzn-ErrorType", "ResourceNotFoundException"))
            return response
        body = self._read_body()
        if isinstance(body, HttpResponse):
            return body
        try:
            event = json.loads(body or b"{}")
            return _json_response(200, function.invoke(event))
        except Exception as error:
            # Logged by type only: an exception's text may quote the event.
            log.error("%s raised %s when invoked directly", function.name, type(error).__name__)
            response = _json_response(200, {"errorType": type(error).__name__, "errorMessage": "see the log"})
            response.headers.append(("X-Amz-Function-Error", "Unhandled"))
            return response

    def _dev_view(self, path: str) -> HttpResponse:
        if path not in ("/_dev/enquiries", "/_dev/emails", "/_dev/dead-letters", "/_dev/aws"):
            return _json_response(404, {"error": "not_found", "message": "Nothing here."})
        if self.command not in ("GET", "HEAD"):
            response = _json_response(405, {"error": "method_not_allowed", "message": "Use GET."})
            response.headers.append(("Allow", "GET, HEAD"))
            return response
        app = self._app()
        if path == "/_dev/enquiries":
            return _json_response(200, inspection.stored_enquiries(app.dynamodb, app.table_name))
        if path == "/_dev/dead-letters":
            return _json_response(200, app.dead_letters())
        if path == "/_dev/aws":
            return _json_response(200, app.aws)
        return _json_response(200, inspection.sent_emails())

    def _static(self, path: str) -> HttpResponse:
        file = site.resolve(self._app().site_root, path)
        if file is not None:
            headers = [("Content-Type", site.content_type(file)), ("Cache-Control", "no-store")]
            return HttpResponse(200, headers, file.read_bytes())
        return HttpResponse(404, [("Content-Type", "text/plain; charset=utf-8")], b"Not found\n")

    # -- plumbing ----------------------------------------------------------------------------------
    def _app(self) -> DevApp:
        assert self.server.app is not None, "the server serves only once the app is set"
        return self.server.app

    def _read_body(self) -> bytes | HttpResponse:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0:
            self.close_connection = True
            return _json_response(400, {"message": "Bad Request"})
        if length > MAX_BODY_BYTES:
            self.close_connection = True
            return _json_response(413, {"message": "Request Entity Too Large"})
        return self.rfile.read(length)

    def _read_chunked(self) -> bytes | HttpResponse:
        chunks: list[bytes] = []
        total = 0
        while True:
            size_line = self.rfile.readline(1024).split(b";", 1)[0].strip()
            try:
                size = int(size_line, 16)
            except ValueError:
                self.close_connection = True
                return _json_response(400, {"message": "Bad Request"})
            if size == 0:
                while self.rfile.readline(1024).strip():  # trailers
                    pass
                return b"".join(chunks)
            total += size
            if total > MAX_BODY_BYTES:
                self.close_connection = True
                return _json_response(413, {"message": "Request Entity Too Large"})
            chunks.append(self.rfile.read(size))
            self.rfile.readline(1024)

    def _send(self, response: HttpResponse) -> None:
        self.send_response(response.status)
        for name, value in response.headers:
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    # -- logging: method, path (no query string), status, time; never a body -----------------------
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        path = getattr(self, "path", "").split("?", 1)[0]
        elapsed = f" {(time.monotonic() - self._started) * 1000:.0f}ms" if self._started else ""
        status = getattr(code, "value", code)
        log.info("%s %s %s%s", getattr(self, "command", "-"), path, status, elapsed)

    def log_message(self, format: str, *args: Any) -> None:
        log.warning("%s - %s", self.address_string(), format % args)


def _json_response(status: int, payload: Any) -> HttpResponse:
    body = json.dumps(payload, indent=2, ensure_ascii=False).encode("utf-8")
    return HttpResponse(status, [("Content-Type", "application/json")], body)


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m devserver",
        description="Run the enquiry handlers locally against an embedded AWS emulator (moto).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=3000, help="port to listen on; 0 picks a free one")
    return parser.parse_args(argv)


def serve(host: str, port: int) -> None:
    """Run the local server until interrupted; prints one ready line with its URL."""
    if str(FUNCTIONS_DIR) not in sys.path:
        sys.path.insert(0, str(FUNCTIONS_DIR))
    from enquiries.forms import FormError, deployment_forms

    try:  # before anything starts: a form file that cannot be used stops the server, naming it
        deployment_forms()
    except FormError as error:
        raise StartupError(str(error)) from None
    _quiet_library_info()
    host = host.strip("[]")  # "--host [::1]" as in a URL: the socket wants the bare address
    server_class = DevHTTPServer6 if ":" in host else DevHTTPServer
    with contextlib.ExitStack() as stack:
        moto_endpoint = stack.enter_context(running_moto())
        try:
            httpd = stack.enter_context(server_class((host, port), RequestHandler))
        except OSError as error:
            raise StartupError(f"cannot listen on {host}:{port}: {error}") from error
        real_port = int(httpd.server_address[1])
        # The page's own origins are allowed to post: the first is the URL shown when ready.
        origins = environment.own_origins(host, real_port) or [f"http://{host}:{real_port}"]
        environment.apply(
            environment.handler_environment(os.environ, aws_endpoint=moto_endpoint, origins=origins)
        )
        emulator = Emulator(endpoint=moto_endpoint, region=os.environ["AWS_DEFAULT_REGION"])
        table_name = os.environ["TABLE_NAME"].strip()
        provision(
            emulator,
            table_name=table_name,
            sender=os.environ["SENDER_EMAIL"],
            guard_table_name=os.environ["GUARD_TABLE_NAME"].strip(),
            address_secret=os.environ["CLIENT_ADDRESS_SECRET_ARN"].strip(),
        )
        # Named as the template names it, with its memory size and timeout (LambdaContext).
        submit = LambdaFunction.load(SUBMIT_HANDLER, name="SubmitEnquiryFunction", region=emulator.region)
        notifier = _notifier(emulator, table_name)
        base_url = origins[0]
        httpd.app = DevApp(
            submit=submit,
            dynamodb=emulator.client("dynamodb"),
            table_name=table_name,
            site_root=SITE_DIR,
            dead_letters=notifier.poller.dead_letters if notifier.poller else list,
            functions={notifier.function.name: notifier.function},
            aws={
                "endpoint_url": emulator.endpoint,
                "region": emulator.region,
                "table_name": table_name,
                "guard_table_name": os.environ["GUARD_TABLE_NAME"].strip(),
                "address_secret_arn": os.environ["CLIENT_ADDRESS_SECRET_ARN"].strip(),
                "dead_letter_queue_url": notifier.dead_letter_queue_url,
                "notify_function_name": notifier.function.name,
                "lambda_endpoint_url": base_url + LAMBDA_PREFIX,
                # For `enquiries doctor`'s CORS preflights.
                "api_url": base_url + API_PATH,
                "allowed_origins": os.environ["ALLOWED_ORIGINS"],
                # For `enquiries canary`'s proof (the emulator's secret, never a real one).
            },
            own_origins=origins,
        )
        # Background workers (such as a poller running the notifier from the table's stream) are
        # entered here with stack.enter_context, so they stop before the HTTP server and the emulator.
        if notifier.poller is not None:
            stack.enter_context(notifier.poller.running())
        if not is_loopback_only(host):
            _warn_reachable(host, real_port)
        print(f"enquiries local server ready at {base_url}", flush=True)
        print(_start_notes(os.environ), flush=True)
        httpd.serve_forever()


def _start_notes(environ: Mapping[str, str]) -> str:
    """What a developer trying the form should know before the first send: nothing survives a stop,
    and whether the per-address limit is on (environment.SETTING_DEFAULTS turns it off locally)."""
    limit = environ.get("RATE_LIMIT_PER_HOUR", "").strip()
    limit_note = (
        "rate limit off (RATE_LIMIT_PER_HOUR=0; RATE_LIMIT_PER_HOUR=10 make dev turns it on, as deployed)"
        if limit in ("", "0")
        else f"rate limit on: RATE_LIMIT_PER_HOUR={limit} accepted enquiries per address per hour"
    )
    return f"Enquiries and emails are kept in memory and lost when the server stops; {limit_note}."


def _quiet_library_info() -> None:
    """Libraries' INFO lines (botocore's on each client made) reach the terminal only as "withheld"
    (enquiries.log): the terminal's handler drops them, and still shows a library's warnings."""
    from enquiries.log import announces_more_than_a_withholding

    for handler in logging.getLogger().handlers:
        handler.addFilter(announces_more_than_a_withholding)


def _warn_reachable(host: str, port: int) -> None:
    """Said loudly: the demo's data, its emails and its /_dev routes are open to whoever can connect."""
    line = "!" * 78
    print(
        f"{line}\nWARNING: listening on {host} port {port}, which is REACHABLE FROM THE NETWORK.\n"
        "Anyone who can connect can read and add enquiries and the emails sent (/_dev/*).\n"
        f"Use --host 127.0.0.1 unless you mean it.\n{line}",
        file=sys.stderr,
        flush=True,
    )


@dataclass(frozen=True)
class Notifier:
    """The notifier function, its dead-letter queue, and the poller that runs it from the stream."""

    function: LambdaFunction
    dead_letter_queue_url: str | None
    poller: stream.StreamPoller | None


def _notifier(emulator: Emulator, table_name: str) -> Notifier:
    """The notifier behind the table's stream, as template.yaml's event source mapping runs it."""
    try:
        mapping = stream.mapping_from_template(load_template())
    except ValueError as error:
        raise StartupError(f"the notifier's event source mapping in template.yaml: {error}") from error
    notifier = LambdaFunction.load(
        NOTIFY_HANDLER,
        name=mapping.function_name,
        region=emulator.region,
        memory_mb=mapping.memory_mb,
        timeout_seconds=mapping.timeout_seconds,
    )
    queue_url = (
        create_dead_letter_queue(emulator, mapping.dead_letter_queue) if mapping.dead_letter_queue else None
    )
    stream_arn = latest_stream_arn(emulator, table_name)
    if stream_arn is None:
        log.warning("table %s has no stream: no notification emails will be sent", table_name)
        return Notifier(notifier, queue_url, None)
    send_dead_letter: Callable[[str], None] | None = None
    if queue_url is not None:
        sqs = emulator.client("sqs")

        def send_to_queue(body: str) -> None:
            sqs.send_message(QueueUrl=queue_url, MessageBody=body)

        send_dead_letter = send_to_queue
    log.info(
        "%s runs from the table's stream (batches of up to %d, %d retries); given up: /_dev/dead-letters",
        mapping.function_name,
        mapping.batch_size,
        mapping.maximum_retry_attempts,
    )
    poller = stream.StreamPoller(
        emulator.client("dynamodbstreams"),
        target=stream.StreamTarget(stream_arn, function_arn=notifier.arn, region=emulator.region),
        handler=notifier.invoke,
        mapping=mapping,
        hooks=stream.PollerHooks(send_dead_letter=send_dead_letter, forget_iterator=forget_shard_iterator),
    )
    return Notifier(notifier, queue_url, poller)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    try:
        serve(args.host, args.port)
    except KeyboardInterrupt:
        log.info("stopped")
    except StartupError as error:
        print(f"devserver: {error}", file=sys.stderr)
        return 1
    return 0
