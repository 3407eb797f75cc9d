"""aws_json over HTTPS, as on Lambda (every other test speaks plain HTTP to a loopback server): it trusts
the certificates botocore trusts and no others, and fails on an untrusted one as botocore does.

A loopback HTTPS server with a certificate made for the test (for 127.0.0.1, by `cryptography`, which
moto brings) answers a GetItem; AWS_CA_BUNDLE names the certificate to trust, as a deployer behind a
TLS-inspecting proxy would.
"""

from __future__ import annotations

import datetime
import http.server
import ipaddress
import json
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.httpsession
import botocore.session
import pytest
from botocore.exceptions import SSLError
from support import REGION, TABLE_NAME

from enquiries import aws, aws_clients, aws_json
from enquiries.sigv4 import Credentials

ITEM = {"Item": {"id": {"S": "01TLS"}}}


def _self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, in PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    certificate_file, key_file = folder / "cert.pem", folder / "key.pem"
    certificate_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return certificate_file, key_file


class _Answer(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # connections kept, as AWS keeps them

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        body = json.dumps(ITEM).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-amz-json-1.0")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """An HTTPS endpoint on the loopback, and the file of its certificate."""
    certificate, key = _self_signed(tmp_path_factory.mktemp("tls"))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificate, key)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Answer)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_port}", certificate
    server.shutdown()
    thread.join()
    server.server_close()


def _aws_json_client(endpoint: str, environ: dict[str, str]) -> Any:
    timeouts = aws_json.Timeouts(aws_clients.CONNECT_TIMEOUT_SECONDS, aws_clients.READ_TIMEOUT_SECONDS)
    return aws_json.JsonClient(
        aws_json.DYNAMODB,
        region=REGION,
        endpoint=endpoint,
        credentials=lambda: Credentials("AKIDEXAMPLE", "secret"),
        transport=aws_json.HttpTransport(endpoint, timeouts, environ),
        max_attempts=aws_clients.MAX_ATTEMPTS,
        sleep=lambda _: None,
    )


def _botocore_client(endpoint: str, monkeypatch: pytest.MonkeyPatch, bundle: Path | None) -> Any:
    if bundle is None:
        monkeypatch.delenv("AWS_CA_BUNDLE", raising=False)
    else:
        monkeypatch.setenv("AWS_CA_BUNDLE", str(bundle))
    return botocore.session.Session().create_client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="secret",
        config=aws_clients._request_config(),
    )


def test_aws_json_over_https_trusts_the_bundle_aws_ca_bundle_names(
    tls_server: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an HTTPS endpoint whose certificate AWS_CA_BUNDLE names
    endpoint, certificate = tls_server

    # When each client reads an item from it
    ours = _aws_json_client(endpoint, {"AWS_CA_BUNDLE": str(certificate)})
    theirs = _botocore_client(endpoint, monkeypatch, certificate)
    answers = [client.get_item(TableName=TABLE_NAME, Key={"id": {"S": "01TLS"}}) for client in (ours, theirs)]
    for client in (ours, theirs):
        client.close()  # their kept connections

    # Then both get it, over the verified connection
    assert [answer["Item"] for answer in answers] == [ITEM["Item"], ITEM["Item"]]


def test_aws_json_over_https_refuses_a_certificate_it_does_not_trust_as_botocore_does(
    tls_server: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the same endpoint, with the default bundle (which does not hold the test's certificate)
    endpoint, _ = tls_server

    # When each client tries to read an item from it
    failures = []
    for client in (_aws_json_client(endpoint, {}), _botocore_client(endpoint, monkeypatch, None)):
        with pytest.raises(SSLError) as raised:
            client.get_item(TableName=TABLE_NAME, Key={"id": {"S": "01TLS"}})
        failures.append(raised.value)
        client.close()

    # Then both refuse the connection, read alike by the classifier (no enquiry data went out)
    assert [aws.classify(failure) for failure in failures] == [aws.AwsFailure("SSLError", transient=True)] * 2
    assert all("certificate verify failed" in str(failure) for failure in failures)


def test_aws_json_ca_bundle_is_botocores(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Given no AWS_CA_BUNDLE, then one naming a file
    monkeypatch.delenv("AWS_CA_BUNDLE", raising=False)
    default = aws_json.ca_bundle({})
    named = aws_json.ca_bundle({"AWS_CA_BUNDLE": str(tmp_path / "bundle.pem")})

    # Then the default is the file botocore verifies against, and the named one is used as it is
    assert default == botocore.httpsession.get_cert_path(True)
    assert named == str(tmp_path / "bundle.pem")


def test_aws_json_tls_context_has_botocores_settings(tls_server: tuple[str, Path]) -> None:
    # Given the context aws_json makes for a bundle, and the one botocore gives urllib3
    _, certificate = tls_server
    ours = aws_json.tls_context(str(certificate))
    theirs = botocore.httpsession.create_urllib3_context()

    # Then they verify alike: the same protocol floor, options and verification flags (on Python 3.13,
    # ssl.create_default_context would add VERIFY_X509_STRICT, which botocore does not set)
    assert ours.verify_mode == theirs.verify_mode == ssl.CERT_REQUIRED
    assert ours.minimum_version == theirs.minimum_version
    assert ours.options == theirs.options
    assert ours.verify_flags == theirs.verify_flags
    assert ours.post_handshake_auth == theirs.post_handshake_auth
    # (botocore leaves the host name to urllib3, which checks it itself; here OpenSSL checks it)
    assert ours.check_hostname


def test_aws_json_with_a_missing_ca_bundle_fails_as_a_classified_connection_error(
    tls_server: tuple[str, Path], tmp_path: Path
) -> None:
    # Given AWS_CA_BUNDLE naming a file that is not there
    endpoint, _ = tls_server
    client = _aws_json_client(endpoint, {"AWS_CA_BUNDLE": str(tmp_path / "missing.pem")})

    # When the client makes a call
    with pytest.raises(SSLError) as raised:
        client.get_item(TableName=TABLE_NAME, Key={"id": {"S": "01TLS"}})

    # Then it is botocore's SSLError, which the classifier reads (a 503 for a visitor, not a 500)
    assert aws.classify(raised.value) == aws.AwsFailure("SSLError", transient=True)


def test_aws_json_connections_are_kept_alive_as_botocores(tls_server: tuple[str, Path]) -> None:
    # Given a client that has made a call, its connection kept for the next one
    endpoint, certificate = tls_server
    client = _aws_json_client(endpoint, {"AWS_CA_BUNDLE": str(certificate)})
    client.get_item(TableName=TABLE_NAME, Key={"id": {"S": "01TLS"}})

    # When its kept connection's socket is looked at
    [connection] = client.transport._idle
    keepalive = connection.sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE)
    client.close()

    # Then TCP keep-alive is on, as aws_clients' Config (tcp_keepalive=True) has botocore set it
    assert keepalive == 1
