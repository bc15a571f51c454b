"""How the server runs apps: a real task, a context per request, cancellation, background work.

The server starts an app eagerly and parks it on a per-connection worker task only if it
suspends (server/runner.py); these tests pin down what an app must not be able to tell.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from tests.server.rawhttp import RawConn, request
from tests.support.servers import ServerProcess, run_server

pytestmark = pytest.mark.parametrize("loop", ["uvloop", "asyncio"])


@pytest.fixture
def server(loop: str) -> Iterator[ServerProcess]:
    with run_server("tests.apps.runner_app:app", "--loop", loop, "--no-access-log") as srv:
        yield srv


def get(conn: RawConn, path: str) -> bytes:
    conn.send(request("GET", path, []))
    response = conn.read_response()
    assert response.status == 200, response
    return response.body


@pytest.mark.skipif(sys.version_info < (3, 11), reason="asyncio.timeout is Python 3.11+")
def test_timeout_firing_before_the_first_resume_reaches_the_app(server: ServerProcess) -> None:
    conn = RawConn.tcp(server.host, server.port, 10)
    assert get(conn, "/timeout0") == b"timed out"
    assert get(conn, "/timeout0") == b"timed out"  # and the connection still works


def test_anyio_cancel_scope_in_the_first_step(server: ServerProcess) -> None:
    conn = RawConn.tcp(server.host, server.port, 10)
    assert get(conn, "/move-on") == b"moved on"
    assert get(conn, "/task") == b"task"


def test_context_variables_do_not_leak_between_requests(server: ServerProcess) -> None:
    conn = RawConn.tcp(server.host, server.port, 10)
    assert get(conn, "/contextvar?first") == b"unset"
    assert get(conn, "/contextvar?second") == b"unset"  # same connection, fresh context
    conn.send(request("GET", "/contextvar?a", []) + request("GET", "/contextvar?b", []))
    assert [conn.read_response().body for _ in range(2)] == [b"unset", b"unset"]


def test_app_running_after_its_response_does_not_hold_the_next_request(
    server: ServerProcess,
) -> None:
    conn = RawConn.tcp(server.host, server.port, 10)
    # pipelined: the second request must be answered while the first app still runs
    conn.send(request("GET", "/background", []) + request("GET", "/task", []))
    assert conn.read_response().body == b"answered"
    assert conn.read_response().body == b"task"
    assert get(conn, "/release") == b"released"
