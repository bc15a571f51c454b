"""HTTP/2 over TLS: ALPN "h2", the tls extension on h2 scopes, wss over RFC 8441, and a
real browser (Debian's headless Chromium, driven by Playwright) on both event loops.

Certificates are made fresh for the run (tests/support/tls.py).
"""

from __future__ import annotations

import json
import re
import socket
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.frames import Frame, Opcode

from tests.server.asgi_json import decode
from tests.server.conftest import LOOPS
from tests.server.h2client import H2Client
from tests.server.h2fixtures import H2_APP, dartle_only
from tests.server.test_http2_websocket import WebSocketStream
from tests.support.servers import ServerProcess, run_server
from tests.support.services import require_binary
from tests.support.tls import PKI, make_pki

pytestmark = dartle_only

CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--disable-sync",
]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    return make_pki(tmp_path_factory.mktemp("pki"))


def tls_flags(pki: PKI) -> list[str]:
    return ["--ssl-certfile", str(pki.server_cert), "--ssl-keyfile", str(pki.server_key)]


@pytest.fixture(scope="module", params=LOOPS)
def https(request: pytest.FixtureRequest, pki: PKI) -> Iterator[ServerProcess]:
    with run_server(H2_APP, *tls_flags(pki), "--loop", request.param, "--lifespan", "on") as server:
        yield server


def verify(pki: PKI) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(pki.ca_cert))


def h2_tls_client(server: ServerProcess, pki: PKI) -> H2Client:
    context = ssl.create_default_context(cafile=str(pki.ca_cert))
    context.set_alpn_protocols(["h2"])
    raw = socket.create_connection((server.host, server.port), timeout=10)
    sock = context.wrap_socket(raw, server_hostname="localhost")
    assert sock.selected_alpn_protocol() == "h2"
    return H2Client(server.host, server.port, sock=sock)


def test_httpx_negotiates_h2(https: ServerProcess, pki: PKI) -> None:
    with httpx.Client(http2=True, verify=verify(pki), base_url=https.url, timeout=10) as http:
        response = http.get("/scope/tls")
        posted = http.post("/echo", content=b"over tls " * 10_000)
    assert response.http_version == "HTTP/2"
    scope = decode(response.json())
    assert scope["http_version"] == "2"
    assert scope["scheme"] == "https"
    tls = scope["extensions"]["tls"]
    assert tls["server_cert"] == pki.server_cert_pem
    assert tls["tls_version"] in (0x0303, 0x0304)
    assert posted.content == b"over tls " * 10_000


def test_http11_clients_still_get_http11(https: ServerProcess, pki: PKI) -> None:
    with httpx.Client(verify=verify(pki), base_url=https.url, timeout=10) as http:
        response = http.get("/scope/tls")
    assert response.http_version == "HTTP/1.1"
    assert decode(response.json())["http_version"] == "1.1"


def test_curl_http2_over_tls(https: ServerProcess, pki: PKI) -> None:
    curl = require_binary("curl")
    result = subprocess.run(
        [curl, "-sS", "--http2", "--cacert", str(pki.ca_cert), "-o", "/dev/null", "-w", "%{http_version}",
         https.url.replace("127.0.0.1", "localhost") + "/scope"],
        capture_output=True, text=True, timeout=30, check=False,
    )
    assert result.stdout == "2", result.stderr


def test_no_http2_means_no_h2_alpn(pki: PKI) -> None:
    with run_server(H2_APP, *tls_flags(pki), "--no-http2") as server, \
            httpx.Client(http2=True, verify=verify(pki), base_url=server.url, timeout=10) as http:
        assert http.get("/scope").http_version == "HTTP/1.1"


def test_wss_over_h2(https: ServerProcess, pki: PKI) -> None:
    client = h2_tls_client(https, pki)
    try:
        ws = WebSocketStream(client, "/ws/echo")
        assert ws.head.status == 200
        ws.send_text("scope")
        scope = decode(json.loads(ws.receive().data))
        assert scope["http_version"] == "2"
        assert scope["scheme"] == "wss"
        assert "tls" in scope["extensions"]
        ws.send(Frame(Opcode.BINARY, b"secret"))
        assert ws.receive().data == b"secret"
    finally:
        client.close()


@pytest.fixture
def chromium_context(tmp_path: Path) -> Iterator[object]:
    chromium = require_binary("chromium", "/usr/bin/chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=chromium, headless=True, args=CHROMIUM_ARGS,
            ignore_https_errors=True,
        )
        try:
            yield context
        finally:
            context.close()


@pytest.mark.timeout(180)
def test_chromium_loads_a_page_over_h2_and_opens_a_websocket(
    https: ServerProcess, chromium_context: object
) -> None:
    mark = len(https.read_log())
    page = chromium_context.new_page()  # type: ignore[attr-defined]
    page.goto(f"{https.url}/page")
    page.locator("body[data-done='1']").wait_for(timeout=30_000)
    result = json.loads(page.locator("#out").text_content())
    assert "error" not in result, result
    assert result["nextHopProtocol"] == "h2"
    assert result["fetchHttpVersion"] == "2"
    assert result["fetchScheme"] == "https"
    assert result["echo"] == "hello from the page"
    # Chromium carries the WebSocket over the same HTTP/2 connection (RFC 8441) once the
    # server's SETTINGS_ENABLE_CONNECT_PROTOCOL says it may.
    assert result["wsScheme"] == "wss"
    assert result["wsHttpVersion"] == "2", result
    log = https.read_log()[mark:].decode(errors="replace")
    page_line = re.search(r'(\S+) - "GET /page HTTP/2" 200', log)
    ws_line = re.search(r'(\S+) - "WebSocket /ws/echo HTTP/2" 200', log)
    assert page_line and ws_line, log
    assert page_line.group(1) == ws_line.group(1), "the WebSocket rode the page's own connection"
