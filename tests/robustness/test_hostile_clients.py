"""Slow and hostile clients: slowloris, slow bodies, slow readers, connection floods.

Each test keeps a well-behaved client going while the hostile ones do their worst, and
bounds the server's resident memory (RSS, read from /proc) with a figure stated in the
test: growth over the baseline taken once the server is warm.
"""

from __future__ import annotations

import select
import socket
import time
from typing import Any

from tests.robustness.conftest import stats
from tests.server.conftest import Harness, new_rid, rss_kib
from tests.server.rawhttp import RawConn, ServerClosed, request

MIB = 1024


def served(harness: Harness, count: int = 1) -> None:
    """`count` requests from a well-behaved client, each on a fresh connection: all 200."""
    for _ in range(count):
        rid = new_rid("good")
        response = harness._control.post("/echo", content=rid.encode(), headers={"x-rid": rid})
        assert response.status_code == 200 and response.content == rid.encode()


def warm_rss(harness: Harness) -> int:
    served(harness, 20)
    return rss_kib(harness.pid())


def test_slowloris_is_cut_off_while_others_are_served(start_server: Any) -> None:
    """100 clients dribble header lines forever; --timeout-header ends each, others carry on."""
    srv: Harness = start_server(
        "--no-access-log", "--timeout-header", "1", target="tests.apps.robust_app:app"
    )
    base = warm_rss(srv)
    slow = [srv.raw(timeout=5) for _ in range(100)]
    for conn in slow:
        conn.send(b"GET /scope HTTP/1.1\r\nHost: x\r\n")
    open_ = {conn.sock: conn for conn in slow}
    peak = 0
    good = 0
    deadline = time.monotonic() + 30
    while open_ and time.monotonic() < deadline:
        # The select paces the dribble (one line per client per round) and notices closes.
        readable, _, _ = select.select(list(open_), [], [], 0.2)
        for sock in readable:
            try:
                data = sock.recv(65536)
            except ConnectionResetError:
                data = b""
            if not data or data.startswith(b"HTTP/1.1 408"):
                del open_[sock]
        for sock in list(open_):
            try:
                sock.sendall(b"X-Dribble: y\r\n")
            except (BrokenPipeError, ConnectionResetError):
                del open_[sock]
        served(srv)
        good += 1
        peak = max(peak, rss_kib(srv.process.proc.pid) - base)
    assert not open_, f"{len(open_)} slowloris connections outlived --timeout-header 1"
    assert good >= 2
    assert peak < 32 * MIB, f"RSS grew {peak} KiB under 100 slowloris clients (bound 32 MiB)"
    served(srv, 5)


def test_slow_uploads_do_not_hold_up_others(robust: Harness) -> None:
    """50 chunked uploads, a chunk per round; between rounds others are served and echoes flow."""
    base = warm_rss(robust)
    uploads = []
    for _ in range(50):
        conn = robust.raw(timeout=20)
        conn.send(request("POST", "/slow-echo", [("X-Rid", new_rid("up")), ("Transfer-Encoding", "chunked")]))
        uploads.append(conn)
    for round_ in range(5):
        piece = b"round-%d;" % round_
        for conn in uploads:
            conn.send(b"%x\r\n%s\r\n" % (len(piece), piece))
        served(robust, 2)
        for conn in uploads:
            if round_ == 0:  # the head goes out with the first echoed chunk
                assert conn.read_head().status == 200
            assert conn.read_chunk() == piece
    grown = rss_kib(robust.pid()) - base
    for conn in uploads:
        conn.send(b"0\r\n\r\n")
        assert conn.read_chunk() == b""
        conn.read_trailers()
    assert grown < 32 * MIB, f"RSS grew {grown} KiB with 50 uploads in flight (bound 32 MiB)"
    served(robust, 2)


def test_slow_readers_of_large_responses_stay_bounded(robust: Harness) -> None:
    """8 clients each owed 16 MiB read nothing, then read slowly: memory stays bounded."""
    base = warm_rss(robust)
    chunks, size = 256, 64 * 1024
    readers = []
    for _ in range(8):
        rid = new_rid("big")
        sock = socket.create_connection((robust.host, robust.port), timeout=20)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        conn = RawConn(sock, timeout=20)
        robust._raws.append(conn)
        conn.send(request("GET", f"/stream?chunks={chunks}&size={size}&cl=1", [("X-Rid", rid)]))
        readers.append((rid, conn))
    for rid, _ in readers:
        record = robust.wait(rid, "stalled", timeout=30)
        assert not record["finished"], "the app streamed 16 MiB to a client that read nothing"
    served(robust, 3)
    stalled = rss_kib(robust.pid()) - base
    assert stalled < 48 * MIB, f"RSS grew {stalled} KiB with 128 MiB owed to stalled readers (bound 48 MiB)"
    peak = stalled
    for index, (_, conn) in enumerate(readers):
        response = conn.read_head()
        assert response.status == 200
        remaining = chunks * size
        while remaining:
            data = conn.sock.recv(min(remaining, 16 * 1024) - len(conn.buffer)) if not conn.buffer else b""
            data, conn.buffer = conn.buffer + data, b""
            assert data, "the server closed a slow reader's response early"
            assert data.count(b"x") == len(data)
            remaining -= len(data)
        if index % 4 == 0:
            served(robust)
            peak = max(peak, rss_kib(robust.pid()) - base)
    assert peak < 48 * MIB, f"RSS grew {peak} KiB while slow readers drained 128 MiB (bound 48 MiB)"
    for rid, _ in readers:
        assert robust.wait(rid, "finished")["send_error"] is None


def test_connection_flood_past_the_concurrency_limit(start_server: Any) -> None:
    """600 connections against --limit-concurrency 20: each is answered 200 or 503, none hang."""
    srv: Harness = start_server(
        "--no-access-log", "--limit-concurrency", "20", target="tests.apps.robust_app:app"
    )
    base = warm_rss(srv)
    idle_fds = stats(srv)["fds"]
    flood = [srv.raw(timeout=20) for _ in range(600)]
    for conn in flood:
        conn.send(request("POST", "/echo", [("X-Rid", new_rid("flood"))], body=b"flood"))
    statuses: dict[int, int] = {}
    for conn in flood:
        try:
            status = conn.read_response().status
        except ServerClosed as exc:
            raise AssertionError("a flooding client got no answer at all") from exc
        statuses[status] = statuses.get(status, 0) + 1
    assert set(statuses) <= {200, 503}, statuses
    assert statuses.get(503), f"600 connections against a limit of 20 were all served: {statuses}"
    peak = rss_kib(srv.process.proc.pid) - base
    for conn in flood:
        conn.close()
    # Once the flood is gone, the server is back to normal.
    stats(srv, until_fds=idle_fds, timeout=20)
    served(srv, 10)
    assert peak < 48 * MIB, f"RSS grew {peak} KiB under 600 connections (bound 48 MiB)"


def test_flood_past_the_backlog_while_the_loop_is_blocked(start_server: Any) -> None:
    """--backlog 8, an app blocking the loop for 2 s, and 200 clients connecting meanwhile.

    Past the backlog the kernel drops handshakes and the clients retransmit on their own
    schedule, so not every flooding client can be answered soon, and a connection the
    server accepts before its client's retransmitted request arrives may be closed as idle.
    What the server owes: every answer it gives is a complete 200, it stays up with bounded
    memory, a well-behaved client is served once the loop is free, and once the flood goes
    away no connection is left behind.
    """
    srv: Harness = start_server("--no-access-log", "--backlog", "8", target="tests.apps.robust_app:app")
    base = warm_rss(srv)
    fds = stats(srv)["fds"]
    blocker = srv.raw(timeout=30)
    blocker.send(request("GET", "/robust/block?seconds=2"))
    clients = []
    for _ in range(200):
        sock = socket.socket()
        sock.setblocking(False)
        sock.connect_ex((srv.host, srv.port))
        clients.append(sock)
    pending = {sock: b"" for sock in clients}
    answered: list[bytes] = []
    sent: set[socket.socket] = set()
    unblocked = False
    deadline = time.monotonic() + 30  # bounds the wait for clients the kernel is still retrying
    while pending and time.monotonic() < deadline:
        unsent = [sock for sock in pending if sock not in sent]
        watch = [*pending, blocker.sock] if not unblocked else list(pending)
        readable, writable, _ = select.select(watch, unsent, [], 0.5)
        for sock in writable:
            if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                sock.sendall(request("GET", "/echo?rid=" + new_rid("backlog"), [("Connection", "close")]))
                sent.add(sock)
        for sock in readable:
            if sock is blocker.sock:
                assert blocker.read_response().body == b"unblocked"
                unblocked = True
                served(srv, 3)  # the loop is free: a well-behaved client is served at once
                deadline = min(deadline, time.monotonic() + 3)
                continue
            try:
                data = sock.recv(65536)
            except ConnectionError:
                data = b""
            if data:
                pending[sock] += data
                continue
            if pending[sock]:
                answered.append(pending.pop(sock))
            else:
                del pending[sock]  # closed unanswered (idle before its request arrived)
    peak = rss_kib(srv.process.proc.pid) - base
    for sock in clients:
        sock.close()
    assert unblocked, "the blocking request never finished"
    assert len(answered) >= 8, f"only {len(answered)} of 200 flooding clients were answered"
    bad = [data[:60] for data in answered if not data.startswith(b"HTTP/1.1 200 ")]
    assert not bad, f"answers other than a complete 200: {bad[:5]}"
    stats(srv, until_fds=fds, timeout=30)
    served(srv, 3)
    assert peak < 32 * MIB, f"RSS grew {peak} KiB under the flood (bound 32 MiB)"
