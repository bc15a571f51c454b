"""Process-level faults: a worker killed under load, and lifespan failures.

A worker killed with SIGKILL loses only the requests it held (docs/operations.md); requests
in flight on the other worker finish, and new connections are all served. Lifespan
failures each have their documented outcome, and a request in flight is never lost to one.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess

import pytest

from tests.apps.robust_lifespans import RUNNING_MARKER, SHUTDOWN_MARKER
from tests.ops.support import ENV, Load, mark, serving_pids, wait_log
from tests.robustness.conftest import serve_robust
from tests.robustness.test_faults import Witness
from tests.server.conftest import new_rid
from tests.server.rawhttp import RawConn, ServerClosed, request
from tests.support.servers import ROOT, dartle_command


def pid_of(conn: RawConn) -> int:
    conn.send(request("GET", "/robust/stats"))
    return int(conn.read_response().json()["pid"])


def test_worker_killed_under_load_loses_only_its_own_requests() -> None:
    with serve_robust("--workers", "2") as srv:
        wait_log(srv.process, rb"(?s)serving.*serving")
        workers = set(serving_pids(srv.process.read_log()))
        # Keep-alive connections stay with the worker that accepted them: pin two to each.
        pinned: dict[int, list[RawConn]] = {pid: [] for pid in workers}
        for _ in range(200):
            if all(len(conns) >= 2 for conns in pinned.values()):
                break
            conn = srv.raw(timeout=15)
            pid = pid_of(conn)
            if len(pinned[pid]) < 2:
                pinned[pid].append(conn)
            else:
                conn.close()
        assert all(len(conns) >= 2 for conns in pinned.values()), {p: len(c) for p, c in pinned.items()}
        victim, survivor = sorted(workers)
        in_flight: dict[int, list[Witness]] = {pid: [] for pid in workers}
        for pid, conns in pinned.items():
            for conn in conns:
                in_flight[pid].append(Witness(srv, conn))
        with Load(srv.url, clients=6, keep_alive=True, path="/robust/pid") as load:
            load.wait_for(10)
            since = mark(srv.process)
            os.kill(victim, signal.SIGKILL)
            log = wait_log(
                srv.process, rb"Worker \[%d\] died.*\n(?s:.*)Worker \[\d+\] serving" % victim, since
            )
            load.wait_for(10)
        replacement = serving_pids(log)[-1]
        for record in load.results:
            # A load client fails only on the request in flight when its worker died; it then
            # reconnects and carries on. A client that never talked to the victim never fails.
            for index, (_, error) in enumerate(record):
                if error is not None:
                    before = [pid for pid, _ in record[:index] if pid is not None]
                    assert before and before[-1] == victim, record[max(0, index - 3) : index + 1]
            assert record[-1][1] is None, f"a load client did not recover: {record[-3:]}"
        # The victim's requests are gone with it; the survivor's finish as if nothing happened.
        for witness in in_flight[victim]:
            with pytest.raises((ServerClosed, ConnectionError)):
                witness.finish()
        for witness in in_flight[survivor]:
            witness.finish()
        answered = set()
        for _ in range(200):
            response = srv._control.get("/robust/stats")
            assert response.status_code == 200
            answered.add(int(response.json()["pid"]))
            if answered == {survivor, replacement}:
                break
        assert answered == {survivor, replacement}, answered


# -- lifespan failures -------------------------------------------------------------------


def test_lifespan_shutdown_raising_never_loses_the_request_in_flight() -> None:
    with serve_robust("--lifespan", "on", target="tests.apps.robust_lifespans:raising_shutdown") as srv:
        witness = Witness(srv)
        since = srv.log_mark()
        srv.process.proc.send_signal(signal.SIGTERM)
        srv.wait_for_log("Waiting for connections to close", since)
        witness.finish()
        status = srv.process.stop()
        log = srv.log_since(since)
    assert log.count(SHUTDOWN_MARKER) >= 1 and "Exception in 'lifespan' protocol" in log
    assert log.index("Waiting for connections to close") < log.index("got lifespan.shutdown")
    assert status == 0, log


def test_lifespan_shutdown_raising_is_not_reported_as_complete() -> None:
    with serve_robust("--lifespan", "on", target="tests.apps.robust_lifespans:raising_shutdown") as srv:
        since = srv.log_mark()
        srv.process.stop()
        log = srv.log_since(since)
    assert SHUTDOWN_MARKER in log
    assert "Application shutdown complete" not in log, log


def test_lifespan_dying_while_serving_does_not_stop_the_server() -> None:
    with serve_robust("--lifespan", "on", target="tests.apps.robust_lifespans:dies_while_serving") as srv:
        srv.wait_for_log(re.escape(RUNNING_MARKER))
        for _ in range(10):
            assert srv.http.get("/echo", headers={"x-rid": new_rid()}).status_code == 200
        since = srv.log_mark()
        assert srv.process.stop() == 0
        # Its lifespan is gone: no lifespan.shutdown is sent to it.
        assert "Waiting for application shutdown" not in srv.log_since(since)


def test_lifespan_returning_after_startup_is_fine() -> None:
    with serve_robust("--lifespan", "on", target="tests.apps.robust_lifespans:returns_after_startup") as srv:
        witness = Witness(srv)
        assert srv.http.get("/echo", headers={"x-rid": new_rid()}).status_code == 200
        witness.finish()
        since = srv.log_mark()
        assert srv.process.stop() == 0
        assert "ERROR" not in srv.log_since(since)


def run_until(args: list[str], pattern: bytes, timeout: float = 30.0) -> tuple[int | None, bytes]:
    """Run a dartle command until it exits or its output contains `pattern` (then stop it)."""
    proc = subprocess.Popen(
        args, cwd=ROOT, env=dict(os.environ, **ENV), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    assert proc.stdout is not None
    output = b""
    try:
        for line in iter(proc.stdout.readline, b""):
            output += line
            if pattern in output:
                return None, output
        return proc.wait(timeout), output
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        proc.stdout.close()


def test_system_exit_in_startup_stops_the_supervisor() -> None:
    """docs/operations.md: a worker's failed startup stops everything with status 3."""
    args = [*dartle_command("tests.apps.robust_lifespans:startup_exit", "--lifespan", "on", "--workers", "2")]
    status, output = run_until(args, b"restarting it in")
    assert status == 3, output.decode(errors="replace")[-2000:]


def test_system_exit_in_startup_with_lifespan_auto() -> None:
    """Either carry on without lifespan (and serve), or exit before announcing an address."""
    server = serve_robust("--lifespan", "auto", target="tests.apps.robust_lifespans:startup_exit")
    try:
        srv = server.__enter__()
    except AssertionError as exc:  # exited before it announced an address: allowed
        assert "running on" not in str(exc)
        return
    try:
        # It announced an address, so it must serve there, and stop cleanly when told.
        assert srv.http.get("/echo", headers={"x-rid": new_rid()}).status_code == 200
        assert srv.process.stop() == 0
    finally:
        server.__exit__(None, None, None)


def test_startup_failure_message_under_workers_exits_3() -> None:
    """lifespan.startup.failed with --workers: status 3, the message logged, no restart loop."""
    args = dartle_command("tests.apps.lifespans:failing_startup", "--lifespan", "on", "--workers", "2")
    status, output = run_until(args, b"restarting it in")
    assert status == 3, output.decode(errors="replace")[-2000:]
    assert b"marker-7731" in output
