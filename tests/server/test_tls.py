"""TLS: the --ssl-* options, the `tls` scope extension, wss, client certificates, and
startup errors that name the file at fault.

Certificates are made fresh for the run (tests/support/tls.py). Clients are httpx, the
websockets client and raw `ssl` sockets, talking to a real dartle server.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from tests.server.conftest import LOOPS, dartle_only
from tests.support.servers import ROOT, ServerProcess, run_server
from tests.support.tls import KEY_PASSWORD, PKI, make_pki

pytestmark = dartle_only
APP = "tests.apps.tls_app:app"
# IANA TLS cipher suite ids (RFC 8446 B.4, RFC 5289 3.2), to check the tls extension's
# cipher_suite against names the client reports.
TLS13_SUITES = {"TLS_AES_128_GCM_SHA256": 0x1301, "TLS_AES_256_GCM_SHA384": 0x1302,
                "TLS_CHACHA20_POLY1305_SHA256": 0x1303}
ECDHE_ECDSA_AES128_GCM_SHA256 = 0xC02B


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    return make_pki(tmp_path_factory.mktemp("pki"))


def tls_flags(pki: PKI, *extra: str) -> list[str]:
    return ["--ssl-certfile", str(pki.server_cert), "--ssl-keyfile", str(pki.server_key),
            "--no-access-log", *extra]


@pytest.fixture(scope="module", params=LOOPS)
def https(request: pytest.FixtureRequest, pki: PKI) -> Iterator[ServerProcess]:
    with run_server(APP, *tls_flags(pki, "--loop", request.param)) as server:
        yield server


@pytest.fixture(scope="module")
def mtls(pki: PKI) -> Iterator[ServerProcess]:
    """Client certificates required, verified against the test CA."""
    flags = tls_flags(pki, "--ssl-ca-certs", str(pki.ca_cert), "--ssl-cert-reqs", "2")
    with run_server(APP, *flags) as server:
        yield server


def client_context(pki: PKI, *, cert: bool = False) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki.ca_cert))
    if cert:
        context.load_cert_chain(str(pki.client_cert), str(pki.client_key))
    return context


def get_facts(server: ServerProcess, context: ssl.SSLContext) -> dict[str, Any]:
    with httpx.Client(verify=context, timeout=10) as client:
        response = client.get(f"{server.url}/scope")
    assert response.status_code == 200
    return dict(response.json())


def raw_tls(server: ServerProcess, context: ssl.SSLContext) -> ssl.SSLSocket:
    sock = socket.create_connection((server.host, server.port), timeout=10)
    return context.wrap_socket(sock, server_hostname="localhost")


def test_startup_line_says_https(https: ServerProcess) -> None:
    assert https.url.startswith("https://127.0.0.1:")


def test_https_scope_and_tls_extension(https: ServerProcess, pki: PKI) -> None:
    context = client_context(pki)
    with raw_tls(https, context) as tls:
        negotiated_version, negotiated_cipher = tls.version(), tls.cipher()
    facts = get_facts(https, context)
    assert facts["scheme"] == "https"
    assert facts["http_version"] == "1.1"
    ext = facts["tls"]
    assert set(ext) == {"server_cert", "client_cert_chain", "client_cert_name",
                        "client_cert_error", "tls_version", "cipher_suite"}
    # The leaf certificate the handshake sent, as PEM.
    assert ssl.PEM_cert_to_DER_cert(ext["server_cert"]) == ssl.PEM_cert_to_DER_cert(
        pki.server_cert_pem
    )
    assert ext["client_cert_chain"] == [] and ext["client_cert_name"] is None
    assert ext["client_cert_error"] is None
    assert negotiated_version == "TLSv1.3" and ext["tls_version"] == 0x0304
    assert negotiated_cipher is not None
    assert ext["cipher_suite"] == TLS13_SUITES[negotiated_cipher[0]]


def test_tls12_version_and_cipher_suite_id(pki: PKI) -> None:
    flags = tls_flags(pki, "--ssl-ciphers", "ECDHE-ECDSA-AES128-GCM-SHA256")
    with run_server(APP, *flags) as server:
        context = client_context(pki)
        context.maximum_version = ssl.TLSVersion.TLSv1_2
        facts = get_facts(server, context)
    assert facts["tls"]["tls_version"] == 0x0303
    assert facts["tls"]["cipher_suite"] == ECDHE_ECDSA_AES128_GCM_SHA256


def test_tls11_is_refused(https: ServerProcess, pki: PKI) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_ciphers("DEFAULT:@SECLEVEL=0")  # let this client really offer TLS 1.1
    with pytest.warns(DeprecationWarning):
        context.minimum_version = ssl.TLSVersion.TLSv1_1
        context.maximum_version = ssl.TLSVersion.TLSv1_1
    with pytest.raises(ssl.SSLError) as refused:
        raw_tls(https, context).close()
    assert "NO_PROTOCOLS_AVAILABLE" not in str(refused.value), "the client never offered TLS 1.1"
    context.maximum_version = ssl.TLSVersion.TLSv1_2  # the same client, allowed 1.2, gets in
    with raw_tls(https, context) as tls:
        assert tls.version() == "TLSv1.2"


def test_plain_http_has_no_tls_extension() -> None:
    with run_server(APP, "--no-access-log") as server:
        facts = httpx.get(f"{server.url}/scope").json()
    assert facts["scheme"] == "http"
    assert facts["has_tls"] is False


def test_client_certificate_reported(mtls: ServerProcess, pki: PKI) -> None:
    facts = get_facts(mtls, client_context(pki, cert=True))
    ext = facts["tls"]
    assert ext["client_cert_name"] == pki.client_name
    assert len(ext["client_cert_chain"]) == 1
    assert ssl.PEM_cert_to_DER_cert(ext["client_cert_chain"][0]) == ssl.PEM_cert_to_DER_cert(
        pki.client_cert.read_text()
    )
    assert ext["client_cert_error"] is None


def test_client_without_certificate_refused_when_required(mtls: ServerProcess, pki: PKI) -> None:
    with pytest.raises((ssl.SSLError, httpx.ConnectError, httpx.ReadError,
                        httpx.RemoteProtocolError)):
        get_facts(mtls, client_context(pki))
    # ...and the server keeps serving clients that have one.
    assert get_facts(mtls, client_context(pki, cert=True))["tls"]["client_cert_name"]


def test_encrypted_key_with_password(pki: PKI) -> None:
    flags = ["--ssl-certfile", str(pki.server_cert), "--ssl-keyfile",
             str(pki.server_key_encrypted), "--ssl-keyfile-password", KEY_PASSWORD]
    with run_server(APP, *flags) as server:
        assert get_facts(server, client_context(pki))["scheme"] == "https"


def test_certificate_and_key_in_one_file(pki: PKI, tmp_path: Path) -> None:
    combined = tmp_path / "combined.pem"
    combined.write_text(pki.server_cert.read_text() + pki.server_key.read_text())
    with run_server(APP, "--ssl-certfile", str(combined)) as server:
        assert get_facts(server, client_context(pki))["scheme"] == "https"


def test_wss_scope(https: ServerProcess, pki: PKI) -> None:
    async def talk() -> dict[str, Any]:
        url = https.url.replace("https://", "wss://") + "/ws"
        async with websockets.connect(url, ssl=client_context(pki)) as ws:
            facts = json.loads(await ws.recv())
            await ws.send("over tls")
            assert await ws.recv() == "over tls"
            return dict(facts)

    facts = asyncio.run(talk())
    assert facts["type"] == "websocket"
    assert facts["scheme"] == "wss"
    assert facts["tls"]["tls_version"] == 0x0304


def test_pathsend_over_tls(https: ServerProcess, pki: PKI, tmp_path: Path) -> None:
    # sendfile cannot bypass TLS: the file must arrive through the encrypted stream intact.
    data = os.urandom(3 * 1024 * 1024 + 17)
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    with httpx.Client(verify=client_context(pki), timeout=30) as client:
        response = client.get(f"{https.url}/file", params={"path": str(path)})
    assert response.status_code == 200
    assert response.content == data


def test_silent_handshake_closed_after_header_timeout(pki: PKI) -> None:
    with (
        run_server(APP, *tls_flags(pki, "--timeout-header", "1")) as server,
        socket.create_connection((server.host, server.port), timeout=20) as sock,
    ):
        # Never send a ClientHello: the server must give up on us by itself.
        assert sock.recv(1024) == b""


def test_workers_serve_tls(pki: PKI) -> None:
    with run_server(APP, *tls_flags(pki, "--workers", "2")) as server:
        assert server.url.startswith("https://")
        assert get_facts(server, client_context(pki))["tls"]["tls_version"] == 0x0304


def test_alpn_offers_only_http11_without_http2(pki: PKI) -> None:
    with run_server(APP, *tls_flags(pki, "--no-http2")) as server:
        context = client_context(pki)
        context.set_alpn_protocols(["h2", "http/1.1"])
        with raw_tls(server, context) as tls:
            assert tls.selected_alpn_protocol() == "http/1.1"


def _start_failure(*args: str) -> tuple[int, str]:
    cmd = [sys.executable, "-m", "dartle", "run", APP, "--port", "0", *args]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    return done.returncode, done.stderr + done.stdout


def bad_setups(pki: PKI, tmp: Path) -> list[tuple[list[str], str]]:
    not_pem = tmp / "not-pem.txt"
    not_pem.write_text("hello\n")
    cert, key = str(pki.server_cert), str(pki.server_key)
    return [
        (["--ssl-certfile", str(tmp / "missing.pem")], "missing.pem': no such file"),
        (["--ssl-certfile", cert, "--ssl-keyfile", str(tmp / "gone.key")], "gone.key': no such file"),
        (["--ssl-certfile", cert], f"--ssl-certfile {cert!r} holds no private key"),
        (["--ssl-certfile", str(not_pem), "--ssl-keyfile", key], "not-pem.txt' holds no PEM certificate"),
        (["--ssl-certfile", cert, "--ssl-keyfile", str(not_pem)], "not-pem.txt' holds no PEM private key"),
        (["--ssl-certfile", cert, "--ssl-keyfile", str(pki.client_key)],
         "client.key' is not the key of the certificate"),
        (["--ssl-certfile", cert, "--ssl-keyfile", str(pki.server_key_encrypted)],
         "server-encrypted.key': the private key is encrypted; give --ssl-keyfile-password"),
        (["--ssl-certfile", cert, "--ssl-keyfile", str(pki.server_key_encrypted),
          "--ssl-keyfile-password", "wrong"], "server-encrypted.key': wrong --ssl-keyfile-password"),
        (["--ssl-certfile", cert, "--ssl-keyfile", key, "--ssl-ca-certs", str(not_pem)],
         "--ssl-ca-certs"),
        (["--ssl-certfile", cert, "--ssl-keyfile", key, "--ssl-ciphers", "NO-SUCH-CIPHER"],
         "--ssl-ciphers 'NO-SUCH-CIPHER'"),
        (["--ssl-keyfile", key], "ssl_keyfile needs ssl_certfile"),
    ]


def test_bad_tls_setup_fails_at_startup_naming_the_file(pki: PKI, tmp_path: Path) -> None:
    for args, expected in bad_setups(pki, tmp_path):
        status, output = _start_failure(*args)
        assert status == 1, (args, output)
        assert expected in output, (args, output)
        assert "Traceback" not in output
        assert "running on" not in output
