"""Requests go on in the order their input arrived: a new request does not jump ahead of
one that input already woke up.

The server starts a request's app at once, inside the read that brought it, when no other
request is in flight: most requests finish right there, which is the fast path. A request
that arrives while others are suspended in their apps waits its turn behind the ones
already woken instead, as it would as a task of its own. If it ran first, it would take
whatever they were woken for: a pooled database connection handed back to a waiter is
grabbed by the newcomer, the waiter queues again, and under load a few requests wait many
times over (measured: p99 175 ms against a median of 21 ms, where uvicorn has 27 ms
against 21; benchmarks' tfb scenarios show the same).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.server.conftest import LOOPS, Harness, serve


@pytest.fixture(scope="module", params=LOOPS)
def fair_server(request: pytest.FixtureRequest) -> Iterator[Harness]:
    with serve("--loop", request.param, target="tests.apps.fair_app:app") as harness:
        yield harness


def test_a_woken_request_goes_on_before_a_newer_one(fair_server: Harness, tmp_path: Path) -> None:
    fifo = tmp_path / "hold"
    os.mkfifo(fifo)
    waiting, newer, holder = (fair_server.raw() for _ in range(3))
    newer.send(b"GET /start?name=warm-up HTTP/1.1\r\nHost: t\r\n\r\n")  # connected and served
    assert newer.read_response().body == b"warm-up"
    waiting.send(b"POST /wait-body?name=woken HTTP/1.1\r\nHost: t\r\nContent-Length: 8\r\n\r\nfirst")
    waiting.read_head()
    assert waiting.read_chunk() == b"ready\n"  # its app now waits for the rest of the body
    holder.send(f"GET /hold?fifo={fifo} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
    holder.read_head()
    assert holder.read_chunk() == b"ready\n"  # the server's loop is held from now on
    # The rest of the body first, then a new request on another connection: the server
    # reads both in one go once the loop is free.
    waiting.send(b"end")
    newer.send(b"GET /start?name=newer HTTP/1.1\r\nHost: t\r\n\r\n")
    with open(fifo, "wb") as release:
        release.write(b"x")
    assert holder.read_chunk() == b"done\n"
    assert waiting.read_chunk() == b"done\n"
    assert newer.read_response().body == b"newer"
    assert holder.read_chunk() == b"" and holder.read_trailers() == []
    holder.send(b"GET /order HTTP/1.1\r\nHost: t\r\n\r\n")
    assert holder.read_response().json() == ["warm-up", "woken", "newer"]
