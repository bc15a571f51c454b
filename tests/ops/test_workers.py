"""--workers: a supervisor and worker processes, tested with real processes and real clients."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading

import httpx

from tests.ops.support import (
    ENV,
    OPS_APP,
    Load,
    fresh_get,
    mark,
    pids_seen,
    run_dartle,
    serving_pids,
    stopped_pids,
    wait_log,
)
from tests.support.servers import ROOT, run_command, run_server


def test_workers_share_one_port() -> None:
    with run_server(OPS_APP, "--no-access-log", "--workers", "2") as server:
        workers = set(serving_pids(wait_log(server, rb"(?s)serving.*serving")))
        assert len(workers) == 2
        assert pids_seen(server.url, 2) == workers
        assert server.proc.pid not in workers
        assert server.read_log().count(b"dartle running on") == 1


def test_kill_9_under_load_replaces_the_worker_and_spares_the_others() -> None:
    with run_server(OPS_APP, "--no-access-log", "--workers", "2") as server:
        wait_log(server, rb"(?s)serving.*serving")
        workers = serving_pids(server.read_log())
        with Load(server.url, clients=8, keep_alive=True) as load:
            load.wait_for(20)
            # Each client keeps one connection, so it talks to one worker until that goes.
            pinned = [record[-1][0] for record in load.results]
            victim = pinned[0]
            assert victim in workers
            assert any(pid != victim for pid in pinned), f"every client landed on {victim}; {pinned}"
            since = mark(server)
            os.kill(victim, signal.SIGKILL)
            after = wait_log(server, rb"Worker \[%d\] died \(killed by SIGKILL\).*\n(?s:.*)"
                             rb"Worker \[\d+\] serving" % victim, since)
            load.wait_for(20)
        replacement = serving_pids(after)[-1]
        assert replacement not in workers
        for record in load.results:
            errors = [i for i, (_, error) in enumerate(record) if error is not None]
            for i in errors:
                before = [pid for pid, _ in record[:i] if pid is not None]
                # Only requests in flight on the killed worker may fail.
                assert before and before[-1] == victim, (record[:i][-3:], record[i])
        survivors = [record for record, pid in zip(load.results, pinned, strict=False) if pid != victim]
        assert survivors and all(error is None for record in survivors for _, error in record)
        assert replacement in pids_seen(server.url, 2)


def test_sighup_rolls_the_workers_without_refusing_a_connection() -> None:
    with run_server(OPS_APP, "--no-access-log", "--workers", "2") as server:
        wait_log(server, rb"(?s)serving.*serving")
        old = set(serving_pids(server.read_log()))
        since = mark(server)
        with Load(server.url, clients=4) as load:
            load.wait_for(10)
            server.proc.send_signal(signal.SIGHUP)
            log = wait_log(server, rb"Rolling restart complete", since, timeout=60)
            load.wait_for(10)
        assert load.errors() == []
        new = set(serving_pids(log))
        assert len(new) == 2 and not new & old
        assert set(stopped_pids(log)) == old
        # Each new worker served before an old one was told to stop.
        first_new = log.index(b"Worker [%d] serving" % serving_pids(log)[0])
        first_stop = min(log.index(b"Worker [%d] stopped" % pid) for pid in old)
        assert first_new < first_stop
        assert pids_seen(server.url, 2) == new
        assert load.pids() & new


def test_sigttin_adds_and_sigttou_removes_a_worker() -> None:
    with run_server(OPS_APP, "--no-access-log", "--workers", "1") as server:
        first = serving_pids(wait_log(server, rb"serving"))[0]
        since = mark(server)
        server.proc.send_signal(signal.SIGTTIN)
        added = serving_pids(wait_log(server, rb"Worker \[\d+\] serving", since))[0]
        assert pids_seen(server.url, 2) == {first, added}
        since = mark(server)
        server.proc.send_signal(signal.SIGTTOU)
        gone = stopped_pids(wait_log(server, rb"Worker \[\d+\] stopped", since))[0]
        assert gone in (first, added)
        remaining = {first, added} - {gone}
        assert {int(fresh_get(server.url).text) for _ in range(20)} == remaining


def test_max_requests_recycles_the_worker_gracefully() -> None:
    with run_server(OPS_APP, "--no-access-log", "--workers", "1", "--max-requests", "10",
                    "--max-requests-jitter", "5") as server:
        first = serving_pids(wait_log(server, rb"serving"))[0]
        with Load(server.url, clients=2) as load:
            try:
                log = wait_log(server, rb"Worker \[%d\] stopped" % first, timeout=60)
            except AssertionError as exc:
                raise AssertionError(f"load: {[len(r) for r in load.results]} {load.errors()[:3]}") from exc
            load.wait_for(5)
        assert load.errors() == []
        limit = int(re.search(rb"(\d+) for this worker\)", log).group(1))
        assert 10 <= limit <= 15
        successor = next(pid for pid in serving_pids(log) if pid != first)
        assert successor in load.pids()


def test_max_worker_memory_recycles_a_grown_worker() -> None:
    with run_server(OPS_APP, "--no-access-log", "--workers", "1", "--max-worker-memory", "150M") as server:
        first = serving_pids(wait_log(server, rb"serving"))[0]
        since = mark(server)
        assert fresh_get(server.url, "/grow?mb=200").text == str(first)
        log = wait_log(server, rb"Worker \[%d\] stopped" % first, since)
        assert re.search(rb"Worker \[%d\] uses [\d.]+ MiB, over --max-worker-memory 150.0 MiB" % first, log)
        assert int(fresh_get(server.url).text) != first


def test_worker_that_stops_answering_the_heartbeat_is_replaced() -> None:
    flags = ("--no-access-log", "--workers", "1", "--worker-healthcheck-timeout", "1")
    with run_server(OPS_APP, *flags) as server:
        first = serving_pids(wait_log(server, rb"serving"))[0]
        since = mark(server)
        outcome: list[object] = []
        blocked = threading.Thread(
            target=lambda: outcome.append(_try(lambda: fresh_get(server.url, "/block?seconds=60"))),
        )
        blocked.start()
        log = wait_log(server, rb"(?s)did not answer the heartbeat.*Worker \[\d+\] serving", since)
        blocked.join(timeout=30)
        assert b"Worker [%d] did not answer the heartbeat within 1s" % first in log
        assert isinstance(outcome[0], httpx.HTTPError)  # the request on the hung worker is lost
        assert int(fresh_get(server.url).text) != first


def _try(call: object) -> object:
    try:
        return call()  # type: ignore[operator]
    except httpx.HTTPError as exc:
        return exc


def test_sigterm_lets_in_flight_requests_finish() -> None:
    with run_server(OPS_APP, "--no-access-log", "--workers", "2") as server:
        wait_log(server, rb"(?s)serving.*serving")
        since = mark(server)
        result: list[object] = []
        slow = threading.Thread(
            target=lambda: result.append(_try(lambda: fresh_get(server.url, "/slow?seconds=2")))
        )
        slow.start()
        wait_log(server, rb"slow request started", since)
        server.proc.send_signal(signal.SIGTERM)
        slow.join(timeout=30)
        assert server.proc.wait(timeout=30) == 0
    assert isinstance(result[0], httpx.Response) and result[0].status_code == 200


def test_startup_failure_stops_the_supervisor_with_status_3() -> None:
    result = run_dartle("run", "tests.apps.lifespans:failing_startup", "--port", "0", "--workers", "2")
    output = result.stdout + result.stderr
    assert result.returncode == 3, output
    assert "cannot reach the database (marker-7731)" in output
    assert "could not start the application" in output
    assert output.count("Started worker") <= 2  # no restart loop


def test_app_that_does_not_import_stops_the_supervisor_with_status_1() -> None:
    result = run_dartle("run", "tests.apps.broken_import:app", "--port", "0", "--workers", "2")
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "dartle_test_missing_dependency" in output
    assert output.count("Started worker") <= 2


def test_a_crashing_worker_is_restarted_with_a_growing_back_off() -> None:
    with run_server("tests.apps.ops_app:crashing", "--workers", "1") as server:
        log = wait_log(server, rb"(?:restarting it in [\d.]+s(?s:.*)){4}", timeout=60)
        delays = [float(d) for d in re.findall(rb"restarting it in ([\d.]+)s", log)]
        assert delays[:4] == [0.1, 0.2, 0.4, 0.8]


def test_reuse_port_workers_bind_their_own_sockets() -> None:
    with run_server(OPS_APP, "--no-access-log", "--workers", "2", "--reuse-port") as server:
        workers = set(serving_pids(wait_log(server, rb"(?s)serving.*serving")))
        assert pids_seen(server.url, 2) == workers


def test_uds_with_workers(tmp_path: object) -> None:
    path = f"{tmp_path}/dartle.sock"
    command = [sys.executable, "-m", "dartle", "run", OPS_APP, "--uds", path, "--workers", "2"]
    with run_command(command, env=ENV) as server:
        workers = set(serving_pids(wait_log(server, rb"(?s)serving.*serving")))
        seen = set()
        for _ in range(400):
            with httpx.Client(transport=httpx.HTTPTransport(uds=path), timeout=20) as client:
                seen.add(int(client.get("http://localhost/pid").text))
            if seen == workers:
                break
        assert seen == workers


def test_fd_with_workers() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    port = listener.getsockname()[1]
    command = [sys.executable, "-m", "dartle", "run", OPS_APP, "--fd", str(listener.fileno()),
               "--workers", "2"]
    proc = subprocess.Popen(command, cwd=ROOT, env=dict(os.environ, **ENV), pass_fds=[listener.fileno()],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    listener.close()
    try:
        seen = pids_seen(f"http://127.0.0.1:{port}", 2)
        assert len(seen) == 2 and proc.pid not in seen
    finally:
        proc.terminate()
        output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, output


def test_programmatic_run_with_workers_needs_an_import_string() -> None:
    code = "import dartle\nfrom tests.apps.ops_app import app\ndartle.run(app, port=0, workers=2)\n"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=dict(os.environ, **ENV),
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 1
    assert "give it as 'module:attribute', not as an object" in result.stderr


def test_programmatic_run_with_workers() -> None:
    code = f"import dartle\ndartle.run({OPS_APP!r}, port=0, workers=2, access_log=False)\n"
    with run_command([sys.executable, "-c", code], env=ENV) as server:
        workers = set(serving_pids(wait_log(server, rb"(?s)serving.*serving")))
        assert pids_seen(server.url, 2) == workers
