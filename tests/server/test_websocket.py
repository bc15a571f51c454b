"""WebSocket handshake and scope, over real sockets: `websockets` clients, raw sockets for bad input.

The app is tests/apps/ws_app.py, which records what it saw per socket (the ``rid`` query
parameter); tests read that back over HTTP instead of sleeping. The helpers here (the
server fixtures, a raw WebSocket client) are shared by the other test_websocket_* modules.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import socket
import struct
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.frames import Close
from websockets.sync.client import ClientConnection, connect

from tests.server.conftest import LOOPS, Harness, dartle_only, new_rid, serve, uvicorn_differs
from tests.server.rawhttp import RawConn, Response, request

WS_APP = "tests.apps.ws_app:app"
KEY = base64.b64encode(b"0123456789abcdef").decode()
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


# -- fixtures and clients (shared with the other test_websocket_* modules) ---------------------


@pytest.fixture(scope="module", params=LOOPS)
def ws_server(request: pytest.FixtureRequest) -> Iterator[Harness]:
    """One ws_app server per test module and event loop."""
    with serve("--loop", request.param, "--lifespan", "on", target=WS_APP) as harness:
        yield harness


@pytest.fixture
def srv(ws_server: Harness) -> Iterator[Harness]:
    """The module's server; after each test, the app must have seen no spec violation."""
    yield ws_server
    for conn in ws_server._raws:
        conn.close()
    ws_server._raws.clear()
    ws_server.process.read_log()
    violations = ws_server.violations()
    before, ws_server.violations_checked = ws_server.violations_checked, len(violations)
    assert violations[before:] == [], "the app saw ASGI spec violations"


def ws_url(srv: Harness, path: str) -> str:
    return srv.url.replace("http://", "ws://", 1) + path


def open_ws(srv: Harness, path: str, **kwargs: Any) -> ClientConnection:
    kwargs.setdefault("max_size", None)
    return connect(ws_url(srv, path), open_timeout=10, close_timeout=10, proxy=None, **kwargs)


def closed_by_server(ws: ClientConnection) -> Close | None:
    """Read until the connection closes; the close frame the server sent (None: none)."""
    with pytest.raises(ConnectionClosed) as info:
        while True:
            ws.recv(timeout=10)
    return info.value.rcvd


def handshake(path: str, *headers: tuple[str, str], key: str | None = KEY) -> bytes:
    items = [("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Version", "13")]
    if key is not None:
        items.append(("Sec-WebSocket-Key", key))
    return request("GET", path, items + list(headers))


def client_frame(opcode: int, payload: bytes, fin: bool = True, rsv1: bool = False) -> bytes:
    """A masked frame, as a client sends it."""
    mask = os.urandom(4)
    head = bytes([(0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", n)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + masked


def close_payload(code: int, reason: str = "") -> bytes:
    return struct.pack("!H", code) + reason.encode()


class RawWS(RawConn):
    """A raw socket speaking just enough WebSocket to send what a test needs and read frames."""

    def open(self, path: str, *headers: tuple[str, str]) -> Response:
        self.send(handshake(path, *headers))
        response = self.read_head()
        assert response.status == 101, response
        return response

    def read_frame(self) -> tuple[int, bytes, bool, bool]:
        """(opcode, payload, fin, rsv1) of the next frame from the server."""
        head = self._take(2, "a frame head")
        assert not head[1] & 0x80, "server frames must not be masked"
        n = head[1] & 0x7F
        if n == 126:
            n = struct.unpack("!H", self._take(2, "a frame length"))[0]
        elif n == 127:
            n = struct.unpack("!Q", self._take(8, "a frame length"))[0]
        return head[0] & 0x0F, self._take(n, "a frame payload"), bool(head[0] & 0x80), bool(head[0] & 0x40)

    def read_close(self) -> tuple[int | None, str]:
        """Skip to the server's close frame; its (code, reason)."""
        while True:
            opcode, payload, _, _ = self.read_frame()
            if opcode == 0x8:
                if not payload:
                    return None, ""
                return struct.unpack("!H", payload[:2])[0], payload[2:].decode()


def raw_ws(srv: Harness, timeout: float = 10.0) -> RawWS:
    conn = RawWS(socket.create_connection((srv.host, srv.port), timeout=timeout), timeout)
    srv._raws.append(conn)
    return conn


# -- the scope ----------------------------------------------------------------------------


@uvicorn_differs("claims spec_version 2.4")
def test_scope(srv: Harness) -> None:
    rid = new_rid()
    with open_ws(srv, f"/scope?rid={rid}&x=%20y", subprotocols=["chat", "json"]) as ws:
        scope = json.loads(ws.recv(timeout=10))
        local_port = ws.local_address[1]
    assert scope["type"] == "websocket"
    assert scope["asgi"] == {"version": "3.0", "spec_version": "2.5"}
    assert scope["http_version"] == "1.1"
    assert scope["scheme"] == "ws"
    assert scope["path"] == "/scope"
    assert scope["raw_path"] == {"$bytes": "/scope"}
    assert scope["query_string"] == {"$bytes": f"rid={rid}&x=%20y"}
    assert scope["root_path"] == ""
    assert scope["subprotocols"] == ["chat", "json"]
    assert scope["state"] == {"started": "yes"}  # a copy of the lifespan state
    assert scope["extensions"] == {"websocket.http.response": {}}
    assert scope["client"] == ["127.0.0.1", local_port]
    assert scope["server"] == ["127.0.0.1", srv.port]
    headers = {name["$bytes"]: value["$bytes"] for name, value in scope["headers"]}
    assert headers["host"].startswith("127.0.0.1")
    assert headers["upgrade"] == "websocket"
    assert headers["sec-websocket-version"] == "13"
    assert "sec-websocket-key" in headers
    assert srv.wait(rid, "disconnect")["disconnect"]["code"] == 1000


@dartle_only
def test_access_log_line(srv: Harness) -> None:
    mark = srv.log_mark()
    rid = new_rid()
    with open_ws(srv, f"/scope?rid={rid}") as ws:
        ws.recv(timeout=10)
        local_port = ws.local_address[1]
    log = srv.wait_for_log(rf'"WebSocket /scope\?rid={rid}" \d+', mark)
    # client address, path and query, the handshake's status
    assert re.search(rf'127\.0\.0\.1:{local_port} - "WebSocket /scope\?rid={rid}" 101', log), log


def test_scope_path_is_decoded_and_subprotocols_come_from_every_header(srv: Harness) -> None:
    conn = raw_ws(srv)
    conn.open(
        "/sc%6Fpe?rid=" + new_rid(),
        ("Sec-WebSocket-Protocol", "a, b"),
        ("Sec-WebSocket-Protocol", "c"),
    )
    opcode, payload, _, _ = conn.read_frame()
    assert opcode == 0x1
    scope = json.loads(payload)
    assert scope["path"] == "/scope"
    assert scope["raw_path"] == {"$bytes": "/sc%6Fpe"}
    assert scope["subprotocols"] == ["a", "b", "c"]


@dartle_only
def test_root_path_and_proxy_headers(start_server: Any) -> None:
    srv = start_server("--root-path", "/api", "--forwarded-allow-ips", "*", target=WS_APP)
    conn = raw_ws(srv)
    conn.open("/scope", ("X-Forwarded-Proto", "https"), ("X-Forwarded-For", "10.1.2.3"))
    scope = json.loads(conn.read_frame()[1])
    assert scope["root_path"] == "/api"
    assert scope["path"] == "/api/scope"
    assert scope["raw_path"] == {"$bytes": "/api/scope"}
    assert scope["scheme"] == "wss"
    assert scope["client"][0] == "10.1.2.3"


# -- the handshake answer -----------------------------------------------------------------


def test_accept_with_subprotocol_and_headers(srv: Harness) -> None:
    path = "/echo?subprotocol=b&header=x-extra:one&header=x-extra:two"
    with open_ws(srv, path, subprotocols=["a", "b"]) as ws:
        assert ws.subprotocol == "b"
        assert ws.response.headers.get_all("x-extra") == ["one", "two"]
        ws.send("hi")
        assert ws.recv(timeout=10) == "hi"


def test_handshake_completes_only_after_accept(srv: Harness) -> None:
    rid = new_rid()
    conn = raw_ws(srv)
    conn.send(handshake(f"/slow-accept?rid={rid}"))
    srv.wait(rid, "connect")  # the app has websocket.connect and has not answered
    assert not conn.readable(0.3), "the server answered the handshake before the app accepted"
    srv.release(rid)
    response = conn.read_head()
    assert response.status == 101
    assert response.header("upgrade") == "websocket"
    assert response.header("connection") == "Upgrade"
    # RFC 6455 section 1.3: base64(SHA-1(key + the protocol's GUID))
    expected = base64.b64encode(hashlib.sha1((KEY + WS_GUID).encode()).digest()).decode()
    assert response.header("sec-websocket-accept") == expected


def test_close_before_accept_is_403(srv: Harness) -> None:
    rid = new_rid()
    with pytest.raises(InvalidStatus) as info:
        open_ws(srv, f"/refuse?rid={rid}")
    assert info.value.response.status_code == 403
    assert srv.wait(rid, "disconnect")["disconnect"]["code"] == 1006


@pytest.mark.parametrize(
    "chunks", ["1", pytest.param("2", marks=uvicorn_differs("buffers the body: no chunked framing"))]
)
def test_denial_response(srv: Harness, chunks: str) -> None:
    rid = new_rid()
    conn = raw_ws(srv)
    conn.send(handshake(f"/deny?rid={rid}&chunks={chunks}"))
    response = conn.read_response()
    assert response.status == 401
    assert response.header("x-denied") == "yes"
    assert response.header("content-type") == "application/json"
    assert json.loads(response.body) == {"detail": "no entry"}
    assert response.framing == ("length" if chunks == "1" else "chunked")
    assert conn.closed_by_server() == b""
    assert srv.wait(rid, "disconnect")["disconnect"]["code"] == 1006


def test_denial_response_with_a_websockets_client(srv: Harness) -> None:
    with pytest.raises(InvalidStatus) as info:
        open_ws(srv, "/deny")
    assert info.value.response.status_code == 401
    assert json.loads(info.value.response.body) == {"detail": "no entry"}


@pytest.mark.parametrize(
    ("path", "logged"),
    [
        ("/raise-before", "Exception in ASGI application"),
        pytest.param(
            "/return-before", "without accepting", marks=uvicorn_differs("words the log line differently")
        ),
    ],
)
def test_app_that_ends_before_accepting_gets_500(srv: Harness, path: str, logged: str) -> None:
    mark = srv.log_mark()
    rid = new_rid()
    with pytest.raises(InvalidStatus) as info:
        open_ws(srv, f"{path}?rid={rid}")
    assert info.value.response.status_code == 500
    srv.wait(rid, "finished")
    srv.wait_for_log(logged, mark)


@uvicorn_differs("drops the connection without a close frame")
@pytest.mark.parametrize(("path", "code"), [("/raise-after", 1011), ("/return-after", 1000)])
def test_app_that_ends_after_accepting_closes_the_socket(srv: Harness, path: str, code: int) -> None:
    with open_ws(srv, path) as ws:
        rcvd = closed_by_server(ws)
    assert rcvd is not None and rcvd.code == code


# -- bad handshakes: the server answers, the app is never called ---------------------------------

FIFTEEN_BYTES = base64.b64encode(b"0123456789abcde").decode()
BAD_HANDSHAKES = {
    "missing-key": ([], None),
    "key-not-base64": ([], "not base64!"),
    "key-15-bytes": ([], FIFTEEN_BYTES),
    "two-keys": ([("Sec-WebSocket-Key", KEY)], KEY),
    "bad-extensions": ([("Sec-WebSocket-Extensions", "permessage-deflate; ;")], KEY),
}


@pytest.mark.parametrize("case", list(BAD_HANDSHAKES))
def test_bad_key_or_extensions_is_400(srv: Harness, case: str) -> None:
    headers, key = BAD_HANDSHAKES[case]
    rid = new_rid()
    conn = raw_ws(srv)
    conn.send(handshake(f"/echo?rid={rid}", *headers, key=key))
    response = conn.read_response()
    assert response.status == 400
    field = "Sec-WebSocket-Extensions" if case == "bad-extensions" else "Sec-WebSocket-Key"
    assert field in response.body.decode(), "the answer does not name the header at fault"
    assert response.header("connection") == "close"
    assert conn.closed_by_server() == b""
    assert srv.info(rid)["events"] == [], "the app was called for a bad handshake"


@uvicorn_differs("answers 400 without Sec-WebSocket-Version")
@pytest.mark.parametrize("version", ["8", "", "13, 8"])
def test_unsupported_version_is_426_naming_version_13(srv: Harness, version: str) -> None:
    rid = new_rid()
    conn = raw_ws(srv)
    items = [("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Key", KEY)]
    if version:
        items.append(("Sec-WebSocket-Version", version))
    conn.send(request("GET", f"/echo?rid={rid}", items))
    response = conn.read_response()
    assert response.status == 426
    assert response.header("sec-websocket-version") == "13"
    assert "version 13" in response.body.decode()
    assert conn.closed_by_server() == b""
    assert srv.info(rid)["events"] == []


def test_non_websocket_upgrade_is_served_as_plain_http(srv: Harness) -> None:
    conn = raw_ws(srv)
    conn.send(request("GET", "/plain", [("Upgrade", "h2c"), ("Connection", "Upgrade, HTTP2-Settings")]))
    response = conn.read_response()
    assert response.status == 200
    assert response.body == b"plain http"


@pytest.mark.parametrize(
    "headers",
    [
        [("Upgrade", "websocket"), ("Sec-WebSocket-Key", KEY), ("Sec-WebSocket-Version", "13")],
        [("Connection", "Upgrade"), ("Sec-WebSocket-Key", KEY), ("Sec-WebSocket-Version", "13")],
    ],
    ids=["no-connection-upgrade", "no-upgrade-header"],
)
def test_incomplete_upgrade_request_is_plain_http(srv: Harness, headers: list[tuple[str, str]]) -> None:
    conn = raw_ws(srv)
    conn.send(request("GET", "/plain", headers))
    response = conn.read_response()
    assert response.status == 200
    assert response.body == b"plain http"


@uvicorn_differs("takes a POST with Upgrade: websocket for a handshake")
def test_post_with_websocket_upgrade_is_plain_http(srv: Harness) -> None:
    conn = raw_ws(srv)
    conn.send(
        request(
            "POST", "/plain",
            [("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Key", KEY),
             ("Sec-WebSocket-Version", "13")],
        )
    )
    response = conn.read_response()
    assert response.status == 200
    assert response.body == b"plain http"


@dartle_only
def test_handshake_pipelined_behind_a_request_is_refused_after_it(srv: Harness) -> None:
    conn = raw_ws(srv)
    conn.send(request("GET", "/plain") + handshake("/echo"))
    first = conn.read_response()
    assert (first.status, first.body) == (200, b"plain http")
    second = conn.read_response()
    assert second.status == 400
    assert conn.closed_by_server() == b""


@dartle_only
def test_ws_none_serves_upgrades_as_plain_http(start_server: Any) -> None:
    srv = start_server("--ws", "none", target=WS_APP)
    conn = RawWS.tcp(srv.host, srv.port)
    try:
        conn.send(handshake("/plain"))
        response = conn.read_response()
        assert (response.status, response.body) == (200, b"plain http")
    finally:
        conn.close()


# -- permessage-deflate --------------------------------------------------------------------


def test_permessage_deflate_is_negotiated_by_default(srv: Harness) -> None:
    text = "compress me " * 10000
    with open_ws(srv, "/echo") as ws:
        offered = ws.response.headers["sec-websocket-extensions"]
        assert offered.startswith("permessage-deflate")
        ws.send(text)
        assert ws.recv(timeout=10) == text
        ws.send(text.encode())
        assert ws.recv(timeout=10) == text.encode()


def test_permessage_deflate_honours_the_client_parameters(srv: Harness) -> None:
    conn = raw_ws(srv)
    offer = "permessage-deflate; client_max_window_bits=10; server_no_context_takeover"
    response = conn.open("/echo", ("Sec-WebSocket-Extensions", offer))
    params = [p.strip() for p in (response.header("sec-websocket-extensions") or "").split(";")]
    assert params[0] == "permessage-deflate"
    assert "server_no_context_takeover" in params
    assert "client_max_window_bits=10" in params
    server_bits = next(int(p.split("=")[1]) for p in params if p.startswith("server_max_window_bits"))
    text = b"hello deflate " * 200
    # a compressed message, as the client's parameters allow: window of 2**10 bytes
    compressor = zlib.compressobj(wbits=-10)
    data = compressor.compress(text) + compressor.flush(zlib.Z_SYNC_FLUSH)
    conn.send(client_frame(0x1, data[:-4], rsv1=True))
    for _ in range(2):  # server_no_context_takeover: each reply inflates on its own
        opcode, payload, fin, rsv1 = conn.read_frame()
        assert (opcode, fin, rsv1) == (0x1, True, True), "the echo was not compressed"
        assert zlib.decompressobj(wbits=-server_bits).decompress(payload + b"\x00\x00\xff\xff") == text
        conn.send(client_frame(0x1, text))  # uncompressed messages are fine too


@dartle_only
def test_no_permessage_deflate_when_turned_off(start_server: Any) -> None:
    srv = start_server("--no-ws-per-message-deflate", target=WS_APP)
    with connect(ws_url(srv, "/echo"), open_timeout=10, proxy=None) as ws:
        assert "sec-websocket-extensions" not in ws.response.headers
        ws.send("plain")
        assert ws.recv(timeout=10) == "plain"


@dartle_only
def test_handshake_past_limit_concurrency_is_503(start_server: Any) -> None:
    srv = start_server("--limit-concurrency", "1", target=WS_APP)
    with open_ws(srv, "/echo") as ws:
        with pytest.raises(InvalidStatus) as info:
            open_ws(srv, "/echo")
        assert info.value.response.status_code == 503
        ws.send("still served")
        assert ws.recv(timeout=10) == "still served"
