"""Responses written at the end of the loop iteration keep their order and their bytes.

A complete response that fits in one message is not written at once but when the event
loop has served every connection that was ready (server/http1_response.py): connections
then write back to back, and a peer on the same host is woken once for many responses.
Everything else is written at once, after what the connection deferred. These tests hold
the server to what a client can see: every response, in request order, byte-exact,
whatever mix of deferred and immediate writes produced it, on many connections at once,
and when the client half-closes right after its request.

The last tests drive one `H1Connection` in-process (a simulated transport, as the fuzz
harness does), because what they pin down happens inside one loop iteration, which no
socket can make a server do on demand: a deferred response is written before the bytes
of whatever takes the connection over, and before the connection closes.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from dartle.config import Config
from dartle.server.http1_response import DEFER_LIMIT
from dartle.server.serve import ServerState
from tests.robustness.h1harness import connect, settle
from tests.server.rawhttp import RawConn, request
from tests.support.servers import ServerProcess, run_server

BIG = DEFER_LIMIT + 4096  # a response this long is written at once


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """/n/TEXT: TEXT with a Content-Length; /big: BIG bytes, also; /stream/TEXT: chunked."""
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path.startswith("/stream/"):
        text = path[8:].encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": text[:1], "more_body": True})
        await send({"type": "http.response.body", "body": text[1:]})
        return
    body = b"z" * BIG if path == "/big" else path[3:].encode()
    headers = [(b"content-type", b"text/plain"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@pytest.fixture(scope="module", params=["uvloop", "asyncio"])
def server(request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    target = "tests.server.test_write_coalescing:app"
    with run_server(target, "--no-access-log", "--loop", request.param) as srv:
        yield srv


def test_pipelined_responses_keep_their_order_across_deferred_and_immediate_writes(
    server: ServerProcess,
) -> None:
    conn = RawConn.tcp(server.host, server.port)
    conn.send(
        request("GET", "/n/one")  # deferred
        + request("GET", "/stream/two")  # chunked: written at once, after "one"
        + request("GET", "/n/three")
        + request("GET", "/big")  # too long to defer
        + request("GET", "/n/four")
        + request("HEAD", "/n/five")  # framed with care: written at once
        + request("GET", "/n/six", [("Connection", "close")])
    )
    bodies = [conn.read_response().body for _ in range(4)]
    assert bodies == [b"one", b"two", b"three", b"z" * BIG]
    assert conn.read_response().body == b"four"
    head = conn.read_response("HEAD")
    assert head.status == 200 and head.header("content-length") == "4" and head.body == b""
    last = conn.read_response()
    assert last.body == b"six" and last.header("connection") == "close"
    assert conn.closed_by_server() == b""


def test_many_connections_served_at_once_each_get_their_own_responses(server: ServerProcess) -> None:
    conns = [RawConn.tcp(server.host, server.port) for _ in range(64)]
    try:
        for i, conn in enumerate(conns):
            conn.send(b"".join(request("GET", f"/n/c{i}-r{j}") for j in range(4)))
        for i, conn in enumerate(conns):
            for j in range(4):
                response = conn.read_response()
                assert (response.status, response.body) == (200, f"c{i}-r{j}".encode())
                assert response.header("content-length") == str(len(response.body))
        for conn in conns:  # and the connections stay usable
            conn.send(request("GET", "/n/again"))
        assert all(conn.read_response().body == b"again" for conn in conns)
    finally:
        for conn in conns:
            conn.close()


def test_a_client_that_half_closes_after_its_request_gets_the_response(server: ServerProcess) -> None:
    other = RawConn.tcp(server.host, server.port)  # two connections: responses are deferred
    other.send(request("GET", "/n/warm"))
    assert other.read_response().body == b"warm"
    conn = RawConn.tcp(server.host, server.port)
    conn.send(request("GET", "/n/bye"))
    conn.sock.shutdown(socket.SHUT_WR)
    assert conn.read_response().body == b"bye"
    assert conn.closed_by_server() == b""
    other.close()


# -- in-process: what happens within one loop iteration -------------------------------


class _Served:
    """Two connections of one server on simulated transports, the first one's to read."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        config = Config(app=app, loop="asyncio", lifespan="off", access_log=False)  # type: ignore[arg-type]
        self.state = ServerState(config, app, self.loop)
        self.transports = []
        self.conns = []
        for _ in range(2):
            conn, transport = connect(self.state)
            self.transports.append(transport)
            self.conns.append(conn)

    def settle(self) -> None:
        settle(self.loop)

    def close(self) -> None:
        for transport in self.transports:
            transport.close()
        self.settle()
        self.loop.close()


@pytest.fixture
def served() -> Iterator[_Served]:
    served = _Served()
    yield served
    served.close()


def test_a_response_waits_for_the_end_of_the_iteration_then_goes_out_whole(served: _Served) -> None:
    first, second = served.conns
    first.data_received(request("GET", "/n/a"))
    second.data_received(request("GET", "/n/b"))
    assert served.transports[0].out == served.transports[1].out == b""  # deferred, both
    served.settle()
    for transport, body in zip(served.transports, (b"a", b"b"), strict=True):
        assert bytes(transport.out).startswith(b"HTTP/1.1 200 OK\r\n")
        assert bytes(transport.out).endswith(b"\r\ncontent-length: 1\r\n\r\n" + body)


def test_a_deferred_response_goes_out_before_an_http2_takeover(served: _Served) -> None:
    conn = served.conns[0]
    conn.data_received(request("GET", "/n/first"))
    conn.data_received(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")  # the same iteration
    out = bytes(served.transports[0].out)
    response, _, rest = out.partition(b"\r\n\r\nfirst")
    assert response.startswith(b"HTTP/1.1 200 OK\r\n")
    assert rest[3:4] == b"\x04"  # then HTTP/2: our SETTINGS frame


def test_a_deferred_response_goes_out_before_the_connection_closes(served: _Served) -> None:
    conn = served.conns[0]
    conn.data_received(request("GET", "/n/last"))
    assert conn.eof_received() is None  # the client's FIN: the transport closes now
    served.transports[0].close()
    assert bytes(served.transports[0].out).endswith(b"\r\n\r\nlast")
