"""WebSocket flow control both ways, and graceful shutdown, over real sockets."""

from __future__ import annotations

import os
import select
import signal
import socket
from typing import Any

from tests.server import test_websocket as shared
from tests.server.conftest import Harness, dartle_only, new_rid, rss_kib, uvicorn_differs
from tests.server.test_websocket import (
    RawWS,
    client_frame,
    close_payload,
    closed_by_server,
    open_ws,
    raw_ws,
)

# the shared server fixtures (one ws_app server per module and event loop)
ws_server = shared.ws_server
srv = shared.srv

MESSAGE = 64 * 1024
MESSAGES = 16 * 1024  # 1 GiB in all
CLEAN_EXIT = (0, -signal.SIGTERM)


def test_send_waits_for_a_client_that_reads_nothing(srv: Harness) -> None:
    pid = srv.pid()
    before = rss_kib(pid)
    rid = new_rid()
    sock = socket.socket()
    # a small receive buffer, so that kernel buffering is not mistaken for flow control
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    sock.settimeout(10)
    sock.connect((srv.host, srv.port))
    conn = RawWS(sock)
    srv._raws.append(conn)
    conn.open(f"/flood?rid={rid}&count={MESSAGES}&size={MESSAGE}")
    # the app's progress stalls: a send() stays pending while the client reads nothing
    record = srv.wait(rid, "stalled", timeout=30)
    stalled_at = record["sends"]
    assert stalled_at < MESSAGES // 4, "the app sent 1 GiB to a client that read nothing"
    grown = rss_kib(pid) - before
    assert grown < 64 * 1024, f"server RSS grew by {grown} KiB while the client read nothing"
    assert srv.info(rid)["sends"] <= stalled_at + 1
    conn.close()
    record = srv.wait(rid, "finished")
    assert record["send_error"] is not None and record["send_error"]["oserror"], record
    assert record["sends"] < MESSAGES // 4


def _send_until_blocked(sock: socket.socket, frame: bytes, limit: int) -> tuple[int, bytes, int]:
    """Send `frame` over and over until the socket stays unwritable: (frames begun, unsent rest, bytes)."""
    sock.setblocking(False)
    begun = 0
    rest = b""
    sent = 0
    while sent < limit:
        if not rest:
            rest = frame
            begun += 1
        try:
            n = sock.send(rest)
        except BlockingIOError:
            # full; the server drains it within moments unless it stopped reading
            _, writable, _ = select.select([], [sock], [], 2.0)
            if not writable:
                break
            continue
        rest = rest[n:]
        sent += n
    sock.setblocking(True)
    return begun, rest, sent


def test_flooding_client_is_held_to_the_app_pace(srv: Harness) -> None:
    pid = srv.pid()
    before = rss_kib(pid)
    rid = new_rid()
    conn = raw_ws(srv, timeout=30)
    conn.open(f"/hold?rid={rid}")  # the app accepts, then reads nothing until released
    frame = client_frame(0x2, os.urandom(MESSAGE))
    begun, rest, sent = _send_until_blocked(conn.sock, frame, MESSAGE * MESSAGES)
    assert sent < MESSAGE * MESSAGES, "the server read 1 GiB that its app never asked for"
    grown = rss_kib(pid) - before
    assert grown < 64 * 1024, f"server RSS grew by {grown} KiB while its app read nothing"
    assert srv.info(rid)["received"] == 0
    # the app starts reading: every message the client began arrives, none lost
    srv.release(rid)
    conn.send(rest + client_frame(0x8, close_payload(1000, "all sent")))
    assert conn.read_close() == (1000, "all sent")
    record = srv.wait(rid, "disconnect", timeout=30)
    assert record["received"] == begun
    assert record["disconnect"]["reason"] == "all sent"


@uvicorn_differs("closes with 1012 on shutdown")
def test_graceful_shutdown_closes_sockets_with_1001(start_server: Any) -> None:
    srv = start_server("--lifespan", "on", target="tests.apps.ws_app:app")
    rid = new_rid()
    with open_ws(srv, f"/echo?rid={rid}") as ws:
        ws.send("before")
        assert ws.recv(timeout=10) == "before"
        srv.process.proc.send_signal(signal.SIGTERM)
        rcvd = closed_by_server(ws)
    assert rcvd is not None and rcvd.code == 1001
    assert srv.process.proc.wait(20) in CLEAN_EXIT
    log = srv.log_since(0)
    assert f"ws_app: {rid} disconnect 1001" in log


@dartle_only
def test_shutdown_does_not_wait_forever_for_a_silent_client(start_server: Any) -> None:
    srv = start_server(target="tests.apps.ws_app:app")
    rid = new_rid()
    conn = RawWS(socket.create_connection((srv.host, srv.port), timeout=30), 30)
    try:
        conn.open(f"/echo?rid={rid}")
        srv.process.proc.send_signal(signal.SIGTERM)
        assert conn.read_close()[0] == 1001
        # the client never answers the close frame: the server gives up and exits
        conn.closed_by_server(timeout=25)
        assert srv.process.proc.wait(25) in CLEAN_EXIT
    finally:
        conn.close()
    assert f"ws_app: {rid} disconnect 1001" in srv.log_since(0)
