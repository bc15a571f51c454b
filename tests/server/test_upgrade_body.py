"""A request with an Upgrade the server does not take is plain HTTP, body included.

llhttp stops parsing at the head of any request that asks to upgrade, so its body (with
Content-Length or chunked) has to be read some other way; before it was, the app saw an
empty body and the bytes were dropped. Cases: an unknown protocol, a POST that asks for a
WebSocket (a handshake is a GET), h2c with a chunked body (RFC 9113 needs the whole body
first, so it is not upgraded) or with --no-http2. The response closes the connection
(what followed the upgrade request is not parsed as HTTP).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.server.conftest import LOOPS, Harness, serve
from tests.server.rawhttp import RawConn, chunked, request

BODY = b"the body of an upgrade request that was not taken " * 40
H2C = [("Connection", "Upgrade, HTTP2-Settings"), ("Upgrade", "h2c"), ("HTTP2-Settings", "AAMAAABkAAQAAP__")]
CASES = {
    "unknown-protocol": [("Connection", "Upgrade"), ("Upgrade", "foo/2")],
    "post-websocket": [("Connection", "Upgrade"), ("Upgrade", "websocket"),
                       ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), ("Sec-WebSocket-Version", "13")],
    "h2c": H2C,
}


@pytest.fixture(scope="module", params=LOOPS)
def upgrade_server(request: pytest.FixtureRequest) -> Iterator[Harness]:
    with serve("--loop", request.param, "--max-body-size", "100000") as harness:
        yield harness


def send_in_pieces(conn: RawConn, data: bytes, cut: int) -> None:
    conn.send(data[:cut])
    conn.send(data[cut:])


# (h2c with a Content-Length body is taken: test_http2_clients.py)
@pytest.mark.parametrize(("case", "framing"), [
    ("unknown-protocol", "length"), ("unknown-protocol", "chunked"),
    ("post-websocket", "length"), ("post-websocket", "chunked"), ("h2c", "chunked"),
])
def test_body_reaches_the_app(upgrade_server: Harness, case: str, framing: str) -> None:
    headers = list(CASES[case])
    if framing == "chunked":
        headers.append(("Transfer-Encoding", "chunked"))
        body = chunked(BODY[:100], BODY[100:])
    else:
        body = BODY
    data = request("POST", "/echo", headers, body)
    conn = upgrade_server.raw()
    send_in_pieces(conn, data, data.index(b"\r\n\r\n") + 10)  # the body straddles two reads
    response = conn.read_response()
    assert (response.status, response.body) == (200, BODY)
    assert conn.closed_by_server() == b""


def test_pipelined_behind_another_request(upgrade_server: Harness) -> None:
    conn = upgrade_server.raw()
    conn.send(request("POST", "/echo", body=b"first")
              + request("POST", "/echo", CASES["unknown-protocol"], BODY))
    assert conn.read_response().body == b"first"
    response = conn.read_response()
    assert (response.status, response.body) == (200, BODY)
    assert conn.closed_by_server() == b""


def test_h2c_with_http2_off(start_server: Any, loop: str) -> None:
    srv = start_server("--loop", loop, "--no-http2")
    conn = srv.raw()
    conn.send(request("POST", "/echo", H2C, BODY))
    response = conn.read_response()
    assert (response.status, response.body) == (200, BODY)


def test_body_over_the_limit_is_413(upgrade_server: Harness) -> None:
    conn = upgrade_server.raw()
    conn.send(request("POST", "/echo", [*CASES["unknown-protocol"], ("Transfer-Encoding", "chunked")],
                      chunked(b"x" * 60_000, b"y" * 60_000)))
    assert conn.read_response().status == 413


def test_bad_chunked_body_is_400(upgrade_server: Harness) -> None:
    conn = upgrade_server.raw()
    conn.send(request("POST", "/echo", [*CASES["unknown-protocol"], ("Transfer-Encoding", "chunked")],
                      b"zz\r\nnot a chunk size\r\n0\r\n\r\n"))
    assert conn.read_response().status == 400
