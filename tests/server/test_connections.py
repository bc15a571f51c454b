"""Keep-alive, HTTP/1.0, Connection: close, idle timeout and pipelining."""

from __future__ import annotations

import errno
import select
import socket
import struct
from typing import Any

from tests.server.asgi_json import decode
from tests.server.conftest import Harness, dartle_only, new_rid, rss_kib
from tests.server.rawhttp import request


def test_keep_alive_reuses_the_connection(server: Harness) -> None:
    conn = server.raw()
    ports = []
    for _ in range(3):
        conn.send(request("GET", "/scope", [("X-Rid", new_rid())]))
        response = conn.read_response()
        assert response.status == 200
        ports.append(decode(response.json())["client"][1])
    assert ports == [conn.local_port] * 3


def test_connection_close_is_honoured(server: Harness) -> None:
    conn = server.raw()
    conn.send(request("GET", "/echo", [("Connection", "close"), ("X-Rid", new_rid())]))
    response = conn.read_response()
    assert response.status == 200
    assert conn.closed_by_server() == b""


def test_http10_closes_by_default(server: Harness) -> None:
    conn = server.raw()
    conn.send(request("GET", "/stream?chunks=2&size=4&cl=1", [("X-Rid", new_rid())], version="HTTP/1.0"))
    response = conn.read_response()
    assert response.version == "HTTP/1.1" or response.version == "HTTP/1.0"
    assert response.status == 200 and response.body == b"x" * 8
    assert conn.closed_by_server() == b""


@dartle_only  # uvicorn closes HTTP/1.0 connections even when keep-alive is asked
def test_http10_keep_alive_when_asked(server: Harness) -> None:
    conn = server.raw()
    for _ in range(2):
        conn.send(
            request(
                "GET",
                "/stream?chunks=2&size=4&cl=1",
                [("Connection", "keep-alive"), ("X-Rid", new_rid())],
                version="HTTP/1.0",
            )
        )
        response = conn.read_response()
        assert response.status == 200 and response.body == b"x" * 8
        # RFC 9112 section 9.3: an HTTP/1.0 persistent connection is announced explicitly.
        assert (response.header("connection") or "").lower() == "keep-alive"


def test_idle_keep_alive_connection_times_out(start_server: Any, loop: str) -> None:
    srv = start_server("--loop", loop, "--timeout-keep-alive", "1")
    conn = srv.raw()
    conn.send(request("GET", "/echo", [("X-Rid", new_rid())]))
    assert conn.read_response().status == 200
    assert conn.closed_by_server(timeout=15) == b""


def test_keep_alive_timeout_does_not_cut_a_slow_app(start_server: Any) -> None:
    srv = start_server("--timeout-keep-alive", "1")
    rid = new_rid()
    busy = srv.raw(timeout=20)
    busy.send(request("GET", "/hold", [("X-Rid", rid)]))
    srv.wait(rid, "events:1")
    # A second, idle connection is the clock: once it is closed, the timeout has passed.
    clock = srv.raw(timeout=20)
    clock.send(request("GET", "/echo", [("X-Rid", new_rid())]))
    assert clock.read_response().status == 200
    assert clock.closed_by_server(timeout=15) == b""
    srv.release(rid)
    assert busy.read_response().json() == {"bytes": 0}


def test_pipelined_requests_answered_in_order(server: Harness) -> None:
    conn = server.raw()
    rids = [new_rid() for _ in range(4)]
    conn.send(
        request("GET", "/stream?chunks=3&size=7", [("X-Rid", rids[0])])
        + request("POST", "/echo", [("X-Rid", rids[1])], body=b"second body")
        + request(
            "POST",
            "/echo",
            [("X-Rid", rids[2]), ("Transfer-Encoding", "chunked")],
            body=b"5\r\nthird\r\n0\r\n\r\n",
        )
        + request("GET", "/scope", [("X-Rid", rids[3])])
    )
    first = conn.read_response()
    second = conn.read_response()
    third = conn.read_response()
    fourth = conn.read_response()
    assert first.body == b"x" * 21
    assert second.body == b"second body"
    assert third.body == b"third"
    assert decode(fourth.json())["headers"][1] == [b"x-rid", rids[3].encode()]


def test_pipelined_request_waits_for_the_one_in_flight(server: Harness) -> None:
    conn = server.raw()
    held, after = new_rid(), new_rid()
    conn.send(
        request("GET", "/hold", [("X-Rid", held)])
        + request("POST", "/echo", [("X-Rid", after)], body=b"later")
    )
    server.wait(held, "events:1")
    # The second request arrived in the same segment, but the app must not be running it yet.
    assert server.info(after)["scope"] is None
    server.release(held)
    first = conn.read_response()
    assert first.status == 200 and first.json() == {"bytes": 0}
    second = conn.read_response()
    assert second.body == b"later"


def _flood(sock: socket.socket, data: bytes, cap: int) -> int:
    """Write `data` repeatedly until the peer stops reading (1 s without room) or `cap` bytes."""
    sock.setblocking(False)
    sent = 0
    view = memoryview(data)
    offset = 0
    while sent < cap:
        try:
            count = sock.send(view[offset:])
        except BlockingIOError:
            _, writable, _ = select.select([], [sock], [], 1.0)
            if not writable:
                break
            continue
        except OSError as exc:
            assert exc.errno in (errno.EPIPE, errno.ECONNRESET), exc
            break
        sent += count
        offset = (offset + count) % len(data)
    sock.setblocking(True)
    return sent


def test_pipelined_flood_is_not_buffered_without_bound(server: Harness) -> None:
    pid = server.pid()
    held = new_rid()
    conn = server.raw()
    conn.send(request("GET", "/hold", [("X-Rid", held)]))
    server.wait(held, "events:1")
    before = rss_kib(pid)
    # Many small pipelined requests behind the held one: reading must be paused.
    flood = new_rid("flood")
    one = request("GET", f"/echo?{flood}")
    batch = one * (65536 // len(one))
    cap = 256 * 1024 * 1024
    sent = _flood(conn.sock, batch, cap)
    grown = rss_kib(pid) - before
    assert sent < 64 * 1024 * 1024, f"server kept reading {sent} bytes of pipelined requests"
    assert grown < 64 * 1024, f"server RSS grew by {grown} KiB"
    assert not [line for line in server.seen() if flood in line], "ran before the held one ended"
    # Reset (not close) before releasing, so the server has no queued requests left to answer.
    conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()
    server.release(held)


def test_many_pipelined_requests(server: Harness) -> None:
    conn = server.raw()
    count = 200
    conn.send(
        b"".join(
            request("POST", f"/echo?i={i}", [("X-Rid", new_rid())], body=b"body-%d" % i) for i in range(count)
        )
    )
    bodies = [conn.read_response().body for _ in range(count)]
    assert bodies == [b"body-%d" % i for i in range(count)]


def test_request_sent_one_byte_at_a_time(server: Harness) -> None:
    conn = server.raw()
    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    data = (
        request("POST", "/echo", [("X-Rid", new_rid()), ("Transfer-Encoding", "chunked")])
        + b"3\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\n\r\n"
    )
    for index in range(len(data)):
        conn.send(data[index : index + 1])
    response = conn.read_response()
    assert response.status == 200
    assert response.body == b"abc0123456789abcdef"
