"""Write-side flow control: a client that stops reading must not grow the server's memory."""

from __future__ import annotations

import socket

from tests.server.conftest import Harness, new_rid, rss_kib, uvicorn_differs
from tests.server.rawhttp import request

CHUNK = 64 * 1024
CHUNKS = 16 * 1024  # 1 GiB in all


@uvicorn_differs("send() returns quietly after the client left (no OSError)")
def test_streaming_to_a_client_that_reads_nothing(server: Harness) -> None:
    pid = server.pid()
    before = rss_kib(pid)
    rid = new_rid()
    sock = socket.create_connection((server.host, server.port), timeout=10)
    try:
        # A small receive buffer, so kernel buffering is not mistaken for flow control.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        sock.sendall(request("GET", f"/stream?chunks={CHUNKS}&size={CHUNK}", [("X-Rid", rid)]))
        # The app's progress stalls: a send() stays pending while the client reads nothing.
        record = server.wait(rid, "stalled", timeout=30)
        assert not record["finished"], "the app streamed 1 GiB to a client that read nothing"
        stalled_at = record["sends"]
        assert stalled_at < CHUNKS // 4
        grown = rss_kib(pid) - before
        assert grown < 64 * 1024, f"server RSS grew by {grown} KiB while the client read nothing"
        assert server.info(rid)["sends"] <= stalled_at + 1
    finally:
        sock.close()
    record = server.wait(rid, "finished")
    assert record["send_error"] is not None and record["send_error"]["oserror"], record
    assert record["sends"] < CHUNKS // 4
