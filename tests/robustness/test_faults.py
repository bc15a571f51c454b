"""Faults inside one request: the app raising at every step, the client leaving at every step.

Each fault must have its own outcome (ASGI: a 500 before the response started, a cut-off
response after; the app sees http.disconnect when the client leaves) and no other: a
request in flight on another connection (the witness) completes, the server keeps serving,
and its task and file-descriptor counts come back down (nothing leaks).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.robustness.conftest import serve_robust, stats
from tests.server.conftest import LOOPS, Harness, new_rid
from tests.server.rawhttp import RawConn, ServerClosed, request

BEFORE_RESPONSE = ("call", "receive", "body", "start")
STEPS = (*BEFORE_RESPONSE, "chunk", "final")


class Witness:
    """A request in flight on its own connection while something else goes wrong."""

    def __init__(self, harness: Harness, conn: RawConn | None = None) -> None:
        self.conn = conn or harness.raw(timeout=15)
        self.conn.send(
            request("POST", "/slow-echo", [("X-Rid", new_rid("witness")), ("Transfer-Encoding", "chunked")])
            + b"6\r\nbefore\r\n"
        )
        assert self.conn.read_head().status == 200
        assert self.conn.read_chunk() == b"before"

    def finish(self) -> None:
        self.conn.send(b"5\r\nafter\r\n0\r\n\r\n")
        assert self.conn.read_chunk() == b"after", "the witness request was lost"
        assert self.conn.read_chunk() == b""
        assert self.conn.read_trailers() == []


def fault(harness: Harness, conn: RawConn, step: str, exc: str, sync: bool, rid: str) -> None:
    query = f"step={step}&exc={exc}&sync={int(sync)}&rid={rid}"
    conn.send(request("POST", f"/fault?{query}", body=b"some body"))


# -- the app raising ---------------------------------------------------------------------


@pytest.fixture(scope="module", params=LOOPS)
def faulty(request: pytest.FixtureRequest) -> Iterator[Harness]:
    with serve_robust("--loop", request.param, "--lifespan", "on") as harness:
        yield harness


@pytest.mark.parametrize("sync", [False, True], ids=["after-await", "eager"])
@pytest.mark.parametrize("step", STEPS)
def test_app_raising_at_each_step(faulty: Harness, step: str, sync: bool) -> None:
    witness = Witness(faulty)
    rid = new_rid("raise")
    mark = faulty.log_mark()
    conn = faulty.raw()
    fault(faulty, conn, step, "error", sync, rid)
    # A request pipelined behind the failing one: served only if the connection survives.
    behind = new_rid("behind")
    conn.send(request("GET", "/echo", [("X-Rid", behind)]))
    if step in BEFORE_RESPONSE:
        response = conn.read_response()
        assert response.status == 500
        assert (response.header("connection") or "").lower() == "close"
        assert conn.closed_by_server() == b""
        assert faulty.info(behind)["scope"] is None, "a request behind a 500 + close was run"
    elif step == "chunk":
        head = conn.read_head()
        assert head.status == 200 and head.header("transfer-encoding") == "chunked"
        assert conn.read_chunk() == b"first-chunk;"
        with pytest.raises(ServerClosed):
            conn.read_chunk()  # cut off: no last chunk, so the client knows it is incomplete
    else:
        response = conn.read_response()
        assert response.status == 200 and response.body == b"first-chunk;last-chunk"
        assert conn.read_response().status == 200, "the connection must survive an error after the response"
    log = faulty.wait_for_log(f"fault-{rid}", mark)
    assert log.count(f"RuntimeError: fault-{rid}") == 1, "the traceback must be logged once"
    assert faulty.info(rid)["outcome"].startswith("raised RuntimeError")
    witness.finish()
    assert faulty.http.get("/echo", headers={"x-rid": new_rid()}).status_code == 200


@pytest.mark.parametrize(
    "step", [*BEFORE_RESPONSE, "chunk", "final"]
)
def test_app_raising_cancelled_error(faulty: Harness, step: str) -> None:
    """ASGI: any exception out of the app gives a 500 if the response has not started."""
    witness = Witness(faulty)
    rid = new_rid("cancel")
    conn = faulty.raw()
    fault(faulty, conn, step, "cancel", False, rid)
    if step in BEFORE_RESPONSE:
        try:
            response = conn.read_response()
        except ServerClosed:
            raise AssertionError("no response: the connection was dropped") from None
        assert response.status == 500
    elif step == "chunk":
        assert conn.read_head().status == 200 and conn.read_chunk() == b"first-chunk;"
        with pytest.raises(ServerClosed):
            conn.read_chunk()
    else:
        assert conn.read_response().body == b"first-chunk;last-chunk"
    witness.finish()
    assert faulty.http.get("/echo", headers={"x-rid": new_rid()}).status_code == 200


@pytest.mark.parametrize(
    ("loop_name", "sync"),
    [
        pytest.param("uvloop", True, id="uvloop-eager"),
        pytest.param("uvloop", False, id="uvloop-after-await"),
        pytest.param("asyncio", True, id="asyncio-eager"),
        pytest.param("asyncio", False, id="asyncio-after-await"),
    ],
)
def test_app_raising_system_exit_does_not_take_the_server_down(
    start_server: Any, loop_name: str, sync: bool
) -> None:
    """A BaseException out of one request ends that request (500), not every connection.

    Whether the server dies on a given one is not certain on every path (uvloop after an
    await dies on about one in six), so the fault is repeated until it has been survived
    60 times.
    """
    srv: Harness = start_server("--no-access-log", "--loop", loop_name, target="tests.apps.robust_app:app")
    for attempt in range(60):
        witness = Witness(srv)
        conn = srv.raw()
        fault(srv, conn, "body", "exit", sync, new_rid("exit"))
        assert conn.read_response().status == 500
        try:
            witness.finish()
        except ServerClosed:
            status = srv.process.proc.wait(10)
            raise AssertionError(f"the server died (exit status {status}) at attempt {attempt}") from None
        conn.close()
    assert srv.http.get("/echo", headers={"x-rid": new_rid()}).status_code == 200


# -- the client leaving ------------------------------------------------------------------


def settle(harness: Harness, base: dict[str, int]) -> None:
    """Wait until the server's tasks and fds are back to `base`: nothing left behind."""
    stats(harness, until_tasks=base["tasks"], until_fds=base["fds"], timeout=20)


def leave(conn: RawConn) -> None:
    conn.close()


def test_client_leaves_mid_request_line(robust: Harness) -> None:
    base = stats(robust)
    marker = new_rid("gone")
    conn = robust.raw()
    conn.send(b"GET /echo?" + marker.encode())
    leave(conn)
    settle(robust, base)
    assert not [line for line in robust.seen() if marker in line]


def test_client_leaves_mid_headers(robust: Harness) -> None:
    base = stats(robust)
    marker = new_rid("gone")
    conn = robust.raw()
    conn.send(b"GET /echo?%s HTTP/1.1\r\nHost: x\r\nX-Half: " % marker.encode())
    leave(conn)
    settle(robust, base)
    assert not [line for line in robust.seen() if marker in line]


@pytest.mark.parametrize("framing", ["length", "chunked"])
def test_client_leaves_mid_body(robust: Harness, framing: str) -> None:
    base = stats(robust)
    rid = new_rid("gone")
    conn = robust.raw()
    if framing == "length":
        conn.send(request("POST", "/echo", [("X-Rid", rid), ("Content-Length", "1000")]) + b"x" * 10)
    else:
        conn.send(
            request("POST", "/echo", [("X-Rid", rid), ("Transfer-Encoding", "chunked")])
            + b"a\r\n"
            + b"x" * 10
            + b"\r\n64\r\nhalf"
        )
    robust.wait(rid, "events:1")  # the app has the first piece and waits for more
    leave(conn)
    record = robust.wait(rid, "finished")
    assert [e["type"] for e in record["events"]] == ["http.request", "http.disconnect"], record["events"]
    assert record["events"][0]["more_body"] is True
    settle(robust, base)


def test_client_leaves_while_the_app_works(robust: Harness) -> None:
    base = stats(robust)
    rid = new_rid("gone")
    conn = robust.raw()
    conn.send(request("POST", "/wait-disconnect", [("X-Rid", rid)], body=b"all of it"))
    robust.wait(rid, "note:second-receive")
    leave(conn)
    record = robust.wait(rid, "finished")
    assert record["events"][-1]["type"] == "http.disconnect"
    settle(robust, base)


def test_client_leaves_mid_response(robust: Harness) -> None:
    """ASGI 2.4: send() after the client left raises an OSError, so the app stops streaming.

    Whether the server happened to be waiting on a full write buffer when the client left is
    a race, so the scenario runs ten times; each time the app must learn of it.
    """
    base = stats(robust)
    chunks = 2000  # 125 MiB: far more than the socket buffers can hold
    for _ in range(10):
        rid = new_rid("gone")
        conn = robust.raw()
        conn.send(request("GET", f"/stream?chunks={chunks}&size=65536", [("X-Rid", rid)]))
        assert conn.read_head().status == 200
        conn.read_chunk()
        leave(conn)
        record = robust.wait(rid, "finished", timeout=30)
        assert record["send_error"] is not None and record["send_error"]["oserror"], (
            f"the app made all {record['sends']} sends without learning the client had left"
        )
        assert record["sends"] < chunks
    settle(robust, base)


def test_client_leaves_with_a_request_queued_behind_one_in_flight(start_server: Any, loop: str) -> None:
    # A server of its own: the stuck request would hold up a shared server's shutdown.
    srv: Harness = start_server(
        "--no-access-log",
        "--loop",
        loop,
        "--timeout-graceful-shutdown",
        "1",
        target="tests.apps.robust_app:app",
    )
    base = stats(srv)
    held, queued = new_rid("gone"), new_rid("gone")
    conn = srv.raw()
    conn.send(
        request("POST", "/wait-disconnect", [("X-Rid", held)], body=b"x")
        + request("GET", "/echo", [("X-Rid", queued)])
    )
    srv.wait(held, "note:second-receive")
    leave(conn)
    assert srv.wait(held, "finished", timeout=5)["events"][-1]["type"] == "http.disconnect"
    settle(srv, base)
    assert srv.info(queued)["scope"] is None, "a request queued on a closed connection was run"


def test_client_leaves_after_the_response(robust: Harness) -> None:
    base = stats(robust)
    conn = robust.raw()
    conn.send(request("POST", "/echo", [("X-Rid", new_rid("gone"))], body=b"fine"))
    assert conn.read_response().body == b"fine"
    leave(conn)
    settle(robust, base)


def test_client_resets_mid_body(robust: Harness) -> None:
    """An abortive close (RST) instead of a FIN."""
    import socket
    import struct

    base = stats(robust)
    rid = new_rid("reset")
    conn = robust.raw()
    conn.send(request("POST", "/echo", [("X-Rid", rid), ("Content-Length", "100")]) + b"y" * 10)
    robust.wait(rid, "events:1")
    conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    leave(conn)
    assert robust.wait(rid, "finished")["events"][-1]["type"] == "http.disconnect"
    settle(robust, base)
