"""Real HTTP/2 clients against dartle: curl, nghttp, h2load, httpx, and h2c by Upgrade."""

from __future__ import annotations

import json
import re
import socket
import subprocess
from pathlib import Path
from typing import Any

import h2.events
import pytest

from tests.server import h2fixtures
from tests.server.asgi_json import decode
from tests.server.h2client import H2Client
from tests.server.h2fixtures import H2Harness, dartle_only
from tests.support.services import require_binary

pytestmark = dartle_only

# the HTTP/2 fixtures (h2fixtures.py), under the names the tests ask for
h2_server = h2fixtures.h2_server
h2_shared = h2fixtures.h2_shared
start_h2 = h2fixtures.start_h2


def run(cmd: list[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


def test_curl_prior_knowledge(h2_server: H2Harness) -> None:
    curl = require_binary("curl")
    result = run([curl, "-sS", "--http2-prior-knowledge", "-w", "\n%{http_version}",
                  f"{h2_server.url}/scope/curl"])
    body, _, version = result.stdout.rpartition("\n")
    assert version == "2", result.stderr
    scope = decode(json.loads(body))
    assert scope["http_version"] == "2"
    assert scope["path"] == "/scope/curl"
    posted = run([curl, "-sS", "--http2-prior-knowledge", "--data-binary", "x" * 100_000,
                  f"{h2_server.url}/echo"])
    assert posted.stdout == "x" * 100_000


def test_curl_upgrade_h2c(h2_server: H2Harness) -> None:
    curl = require_binary("curl")
    result = run([curl, "-sSv", "--http2", "-w", "\n%{http_version}", f"{h2_server.url}/scope/up"])
    body, _, version = result.stdout.rpartition("\n")
    assert version == "2"
    assert "101 Switching Protocols" in result.stderr
    scope = decode(json.loads(body))
    assert scope["http_version"] == "2"
    names = [name for name, _ in scope["headers"]]
    assert b"http2-settings" not in names and b"upgrade" not in names
    posted = run([curl, "-sS", "--http2", "--data-binary", "upgrade body", "-w", " %{http_version}",
                  f"{h2_server.url}/echo"])
    assert posted.stdout == "upgrade body 2"


def test_nghttp_prior_knowledge_and_push(h2_server: H2Harness) -> None:
    nghttp = require_binary("nghttp")
    result = run([nghttp, "-nv", f"{h2_server.url}/push?path=/pushed/style.css"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "recv PUSH_PROMISE frame" in result.stdout
    assert ":path: /pushed/style.css" in result.stdout
    assert re.search(r"recv \(stream_id=2\) :status: 200", result.stdout), result.stdout


def test_nghttp_upgrade(h2_server: H2Harness) -> None:
    nghttp = require_binary("nghttp")
    result = run([nghttp, "-nvu", f"{h2_server.url}/scope"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "HTTP Upgrade success" in result.stdout
    assert re.search(r"recv \(stream_id=1\) :status: 200", result.stdout)


def test_nghttp_upload(h2_server: H2Harness, tmp_path: Path) -> None:
    nghttp = require_binary("nghttp")
    data = tmp_path / "upload.bin"
    data.write_bytes(b"n" * 700_000)
    result = run([nghttp, "-d", str(data), f"{h2_server.url}/echo"])
    assert result.returncode == 0, result.stderr
    assert result.stdout == "n" * 700_000


def test_h2load(h2_server: H2Harness) -> None:
    h2load = require_binary("h2load")
    result = run([h2load, "-n", "3000", "-c", "4", "-m", "20", f"{h2_server.url}/scope"], timeout=120)
    assert "3000 succeeded, 0 failed, 0 errored" in result.stdout, result.stdout
    assert "3000 2xx" in result.stdout


def test_h2load_apps_that_suspend(h2_server: H2Harness) -> None:
    h2load = require_binary("h2load")
    result = run([h2load, "-n", "2000", "-c", "4", "-m", "50", f"{h2_server.url}/sleep?ms=2"], timeout=120)
    assert "2000 succeeded, 0 failed, 0 errored" in result.stdout, result.stdout


def test_h2load_with_bodies(h2_server: H2Harness, tmp_path: Path) -> None:
    h2load = require_binary("h2load")
    body = tmp_path / "body"
    body.write_bytes(b"b" * 20_000)
    result = run([h2load, "-n", "500", "-c", "2", "-m", "50", "-d", str(body), f"{h2_server.url}/echo"],
                 timeout=120)
    assert "500 succeeded, 0 failed, 0 errored" in result.stdout, result.stdout


def upgrade_request(host: str, port: int, client: H2Client, body: bytes = b"") -> bytes:
    settings = client.conn.initiate_upgrade_connection()
    head = (
        f"POST /echo HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: Upgrade, HTTP2-Settings\r\n"
        f"Upgrade: h2c\r\nHTTP2-Settings: {settings.decode()}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


@pytest.mark.parametrize("body", [b"", b"upgraded body " * 1000])
def test_upgrade_with_the_h2_library(h2_server: H2Harness, body: bytes) -> None:
    sock = socket.create_connection((h2_server.host, h2_server.port), timeout=10)
    client = H2Client(h2_server.host, h2_server.port, upgrade=True, sock=sock)
    h2_server.clients.append(client)
    sock.sendall(upgrade_request(h2_server.host, h2_server.port, client, body))
    answer = b""
    while b"\r\n\r\n" not in answer:
        answer += sock.recv(1)
    assert answer.startswith(b"HTTP/1.1 101 "), answer
    client.flush()  # the client preface and its SETTINGS
    response = client.response(1)
    assert response.status == 200
    assert response.body == body
    assert client.get("/scope").status == 200, "the connection goes on as HTTP/2"
    assert any(isinstance(e, h2.events.RemoteSettingsChanged) for e in client.events)


def test_upgrade_not_taken_without_settings(h2_server: H2Harness) -> None:
    with socket.create_connection((h2_server.host, h2_server.port), timeout=10) as sock:
        sock.sendall(b"GET /scope HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n")
        answer = b""
        while b"\r\n\r\n" not in answer:
            answer += sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 200 "), answer


def test_no_http2_flag(start_h2: Any, loop: str) -> None:
    server = start_h2("--loop", loop, "--no-http2")
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 505 "), answer
    curl = require_binary("curl")
    result = run([curl, "-sS", "--http2", "-o", "/dev/null", "-w", "%{http_version}", f"{server.url}/scope"])
    assert result.stdout == "1.1", "the Upgrade is ignored: HTTP/1.1 it is"



@pytest.mark.parametrize(("flag", "value", "message"), [
    ("--h2-stall-timeout", "0", "h2_stall_timeout must be positive"),
    ("--h2-max-concurrent-streams", "0", "h2_max_concurrent_streams must be at least 1"),
])
def test_invalid_http2_options_are_refused(flag: str, value: str, message: str) -> None:
    from tests.support.servers import ROOT, dartle_command

    result = subprocess.run([*dartle_command("tests.server.h2_app:app"), flag, value], cwd=ROOT,
                            capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 1
    assert message in result.stderr and flag in result.stderr
