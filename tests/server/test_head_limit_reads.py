"""The request head limit (--max-header-size) holds however the head is cut into reads.

The server counts a head's fields one by one only when it must (server/http1.py,
data_received): when a read is longer than the limit, or when a head goes on from an
earlier read, whose fields so far it then counts once. A head that begins and ends within
one read no longer than the limit cannot be over it. These tests feed one `H1Connection`
in-process, cut exactly where they say (a socket cannot promise where a server's reads
end), and check the verdict each time: 431 past the limit, served below it.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from typing import Any

import pytest

from dartle.config import Config
from dartle.server.serve import ServerState
from tests.robustness.h1harness import connect, settle
from tests.server.rawhttp import request

LIMIT = 4096


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


class _Conn:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        config = Config(app=app, loop="asyncio", lifespan="off", access_log=False,  # type: ignore[arg-type]
                        max_header_size=LIMIT)
        self.conn, self.transport = connect(ServerState(config, app, self.loop))

    def settle(self) -> None:
        settle(self.loop)

    def feed(self, data: bytes, cuts: list[int]) -> list[int]:
        """Feed `data` cut at `cuts`; the statuses of the responses written."""
        for start, end in zip([0, *cuts], [*cuts, len(data)], strict=True):
            if self.transport.closed:
                break
            self.conn.data_received(data[start:end])
            self.settle()
        return [int(status) for status in re.findall(rb"HTTP/1\.1 (\d\d\d) ", self.transport.out)]

    def close(self) -> None:
        self.transport.close()
        self.settle()
        self.loop.close()


@pytest.fixture
def conn() -> Iterator[_Conn]:
    conn = _Conn()
    yield conn
    conn.close()


def head_of(size: int) -> bytes:
    """A GET request whose head is `size` bytes long (one padding header fills it)."""
    bare = len(request("GET", "/", [("X-Pad", "")]))
    return request("GET", "/", [("X-Pad", "a" * (size - bare))])


def test_a_head_over_the_limit_in_one_read(conn: _Conn) -> None:
    assert conn.feed(head_of(LIMIT + 500), []) == [431]


def test_a_head_over_the_limit_in_two_reads_each_under_it(conn: _Conn) -> None:
    data = head_of(LIMIT + 1500)
    assert conn.feed(data, [len(data) // 2]) == [431]


def test_a_head_over_the_limit_cut_after_its_first_fields(conn: _Conn) -> None:
    fields = b"".join(b"X-F%d: %s\r\n" % (i, b"v" * 100) for i in range(30))  # 3,500 bytes
    data = b"GET / HTTP/1.1\r\nHost: t\r\n" + fields + b"X-Last: " + b"w" * 1000 + b"\r\n\r\n"
    cut = data.index(b"X-Last")  # the first read ends between fields
    assert conn.feed(data, [cut]) == [431]


def test_a_head_over_the_limit_in_many_small_reads(conn: _Conn) -> None:
    data = head_of(LIMIT + 200)
    assert conn.feed(data, list(range(100, len(data), 100))) == [431]


def test_a_head_under_the_limit_cut_anywhere_is_served(conn: _Conn) -> None:
    data = head_of(LIMIT - 200) * 2
    cuts = [700, LIMIT - 300, LIMIT + 1000]  # inside the first head, near its end, in the second
    assert conn.feed(data, cuts) == [200, 200]


def test_pipelined_heads_longer_than_the_limit_together_are_each_served(conn: _Conn) -> None:
    data = head_of(LIMIT // 2) * 5  # one read of 2.5 limits, every head half the limit
    assert conn.feed(data, []) == [200] * 5
