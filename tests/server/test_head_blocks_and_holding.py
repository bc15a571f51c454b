"""Response header blocks (remembered per header list) and bytes held while requests queue.

The server remembers each header list an app sends as one rendered block
(server/wire.py, HEAD_BLOCKS); these tests pin down that the remembered block gives
exactly what rendering it afresh gives - for pairs as tuples or lists, the second time as
the first, bodiless statuses included - and that a bad header is refused every time,
not only before it was remembered. Bytes that arrive while pipelined requests wait their
turn are held unparsed (server/http1.py, HOLD_LIMIT): they must be answered in order once
the queue drains.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from tests.server.rawhttp import RawConn, request
from tests.support.servers import ServerProcess, run_server

HEADERS: dict[str, list[Any]] = {
    "tuples": [(b"content-type", b"text/plain"), (b"x-kind", b"tuples")],
    "lists": [[b"content-type", b"text/plain"], [b"x-kind", b"lists"]],
    "length-first": [(b"content-length", b"5"), (b"x-kind", b"length-first")],
    "length-mid": [(b"x-a", b"1"), (b"content-length", b"5"), (b"x-b", b"2")],
    "close": [(b"x-kind", b"close"), (b"connection", b"close")],
    "str-name": [("x-bad", b"1")],
    "crlf": [(b"x-bad", b"1\r\nx-injected: 1")],
}
_release: asyncio.Event | None = None


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """/headers/NAME?status=S answers "hello" with HEADERS[NAME]; /wait waits for /release."""
    global _release
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path == "/wait":
        _release = asyncio.Event()
        await _release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"waited"})
        return
    if path == "/started":  # whether a /wait is waiting
        body = b"yes" if _release is not None and not _release.is_set() else b"no"
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})
        return
    if path == "/release":
        if _release is not None:
            _release.set()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"released"})
        return
    if path.startswith("/n/"):
        body = path[3:].encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})
        return
    status = int(scope["query_string"].decode().partition("=")[2] or 200)
    await send({"type": "http.response.start", "status": status, "headers": HEADERS[path[9:]]})
    await send({"type": "http.response.body", "body": b"hello"})


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    with run_server("tests.server.test_head_blocks_and_holding:app", "--no-access-log") as srv:
        yield srv


def fetch(server: ServerProcess, target: str, method: str = "GET") -> Any:
    conn = RawConn.tcp(server.host, server.port)
    conn.send(request(method, target, []))
    return conn.read_response(method)


def own(response: Any) -> list[tuple[str, str]]:
    return [(k, v) for k, v in response.headers if k not in ("date", "server")]


@pytest.mark.parametrize("name", ["tuples", "lists", "length-first", "length-mid"])
def test_a_remembered_block_is_the_block_rendered_afresh(server: ServerProcess, name: str) -> None:
    first = fetch(server, f"/headers/{name}")
    again = fetch(server, f"/headers/{name}")
    assert first.status == again.status == 200
    assert own(first) == own(again)
    assert first.body == again.body == b"hello"


def test_header_pairs_as_lists_render_as_tuples_do(server: ServerProcess) -> None:
    response = fetch(server, "/headers/lists")
    assert own(response) == [("content-type", "text/plain"), ("x-kind", "lists"), ("content-length", "5")]


def test_content_length_stays_where_the_app_put_it(server: ServerProcess) -> None:
    response = fetch(server, "/headers/length-mid")
    assert own(response) == [("x-a", "1"), ("content-length", "5"), ("x-b", "2")]


def test_bodiless_statuses_with_a_remembered_block(server: ServerProcess) -> None:
    fetch(server, "/headers/length-first")  # remembered with its Content-Length
    no_content = fetch(server, "/headers/length-first?status=204")
    assert no_content.status == 204
    assert no_content.header("content-length") is None and no_content.body == b""
    head = fetch(server, "/headers/length-first", method="HEAD")
    assert head.header("content-length") == "5" and head.body == b""
    again = fetch(server, "/headers/length-first")
    assert again.header("content-length") == "5" and again.body == b"hello"


def test_connection_close_from_the_app_closes_every_time(server: ServerProcess) -> None:
    for _ in range(2):
        conn = RawConn.tcp(server.host, server.port)
        conn.send(request("GET", "/headers/close", []))
        response = conn.read_response()
        assert response.header("connection") == "close"
        assert conn.closed_by_server() == b""


@pytest.mark.parametrize("name", ["str-name", "crlf"])
def test_a_bad_header_is_refused_every_time(server: ServerProcess, name: str) -> None:
    for _ in range(2):
        response = fetch(server, f"/headers/{name}")
        assert response.status == 500
        assert response.header("x-injected") is None and response.header("x-bad") is None
    log = server.read_log(0.5).decode(errors="replace")
    assert "http.response.start headers" in log, log[-2000:]


def test_requests_that_come_while_others_queue_are_answered_in_order(server: ServerProcess) -> None:
    conn = RawConn.tcp(server.host, server.port, timeout=15)
    # /wait holds the connection; /n/1 queues behind it (same segment, parsed at once)
    conn.send(request("GET", "/wait", []) + request("GET", "/n/1", []))
    control = RawConn.tcp(server.host, server.port)
    for _ in range(200):  # until /wait runs: what comes next finds the queue non-empty
        control.send(request("GET", "/started", []))
        if control.read_response().body == b"yes":
            break
    else:
        raise AssertionError("/wait never started")
    # more requests in later segments: read and held unparsed while the queue is not empty
    for index in range(2, 6):
        conn.send(request("GET", f"/n/{index}", []))
    control.send(request("GET", "/release", []))
    assert control.read_response().body == b"released"
    assert conn.read_response().body == b"waited"
    assert [conn.read_response().body for _ in range(5)] == [b"1", b"2", b"3", b"4", b"5"]
