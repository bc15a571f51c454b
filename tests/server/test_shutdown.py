"""Graceful shutdown on SIGTERM/SIGINT, its timeout, and a forced exit on a second SIGINT."""

from __future__ import annotations

import signal
import socket
import subprocess
from typing import Any

import pytest

from tests.server.conftest import Harness, new_rid
from tests.server.rawhttp import RawConn, request

CLEAN_EXIT = (0, -signal.SIGTERM, -signal.SIGINT)


def idle_connection(srv: Harness) -> RawConn:
    conn = srv.raw(timeout=20)
    conn.send(request("GET", "/echo", [("X-Rid", new_rid())]))
    assert conn.read_response().status == 200
    return conn


def in_flight_request(srv: Harness) -> RawConn:
    """A request the app is serving: it echoed the first chunk and waits for the rest."""
    conn = srv.raw(timeout=20)
    conn.send(
        request("POST", "/slow-echo", [("X-Rid", new_rid()), ("Transfer-Encoding", "chunked")])
        + b"1\r\na\r\n"
    )
    assert conn.read_head().status == 200
    assert conn.read_chunk() == b"a"
    return conn


def exit_status(srv: Harness, timeout: float = 20) -> int:
    try:
        return srv.process.proc.wait(timeout)
    except subprocess.TimeoutExpired:
        raise AssertionError("the server did not exit") from None


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_in_flight_request_finishes_then_lifespan_shutdown(start_server: Any, sig: int) -> None:
    srv = start_server("--lifespan", "on")
    idle = idle_connection(srv)
    busy = in_flight_request(srv)
    srv.process.proc.send_signal(sig)
    # Shutdown has begun once the idle keep-alive connection is closed.
    assert idle.closed_by_server(timeout=15) == b""
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((srv.host, srv.port), timeout=5).close()
    srv.process.read_log()
    assert "recorder: shutdown complete" not in srv.log_since(0), "lifespan ended before the request"
    busy.send(b"3\r\nbcd\r\n0\r\n\r\n")
    assert busy.read_chunk() == b"bcd"
    assert busy.read_chunk() == b""
    assert exit_status(srv) in CLEAN_EXIT
    srv.process.read_log()
    assert "recorder: shutdown complete" in srv.log_since(0)


def test_graceful_timeout_cuts_off_stuck_requests(start_server: Any) -> None:
    srv = start_server("--lifespan", "on", "--timeout-graceful-shutdown", "1")
    busy = in_flight_request(srv)
    srv.process.proc.send_signal(signal.SIGTERM)
    rest = busy.closed_by_server(timeout=15)
    assert not rest.endswith(b"0\r\n\r\n"), "the stuck response cannot have completed"
    assert exit_status(srv) in CLEAN_EXIT
    srv.process.read_log()
    assert "recorder: shutdown complete" in srv.log_since(0)


def test_second_sigint_forces_exit(start_server: Any) -> None:
    srv = start_server("--lifespan", "on")
    idle = idle_connection(srv)
    busy = in_flight_request(srv)
    srv.process.proc.send_signal(signal.SIGINT)
    assert idle.closed_by_server(timeout=15) == b""
    srv.process.proc.send_signal(signal.SIGINT)
    exit_status(srv, timeout=10)
    busy.closed_by_server(timeout=10)
