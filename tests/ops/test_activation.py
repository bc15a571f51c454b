"""Socket activation: serving the sockets systemd passes (LISTEN_FDS/LISTEN_PID).

`systemd-socket-activate` plays systemd: it binds, waits for the first connection, then
execs the server with the socket as fd 3 — so the first request sits in the backlog
until dartle serves it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import httpx
import pytest

from tests.ops.support import ENV, OPS_APP, pids_seen
from tests.support.servers import ROOT, ServerProcess
from tests.support.services import free_port, require_binary


@pytest.mark.parametrize("workers", [[], ["--workers", "2"]], ids=["single", "workers"])
def test_systemd_socket_activation(workers: list[str]) -> None:
    activate = require_binary("systemd-socket-activate")
    port = free_port()
    # --host/--port say something else: the passed socket wins.
    command = [activate, "-l", f"127.0.0.1:{port}", sys.executable, "-m", "dartle", "run", OPS_APP,
               "--host", "127.0.0.1", "--port", "1", *workers]
    proc = subprocess.Popen(command, cwd=ROOT, env=dict(os.environ, **ENV), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    server = ServerProcess(proc, f"http://127.0.0.1:{port}")
    try:
        server.wait_for_log(rb"Listening on 127\.0\.0\.1:\d+", timeout=30)
        first = httpx.get(f"{server.url}/pid", timeout=30)  # this connection starts dartle
        assert first.status_code == 200
        log = server.wait_for_log(rb"running on http://127\.0\.0\.1:%d" % port)
        assert b"Using 1 socket(s) passed by systemd (LISTEN_FDS)" in log
        if workers:
            seen = pids_seen(server.url, 2)
            assert len(seen) == 2 and proc.pid not in seen
        else:
            assert int(first.text) == proc.pid  # activate exec'd dartle in place
    finally:
        status = server.stop(signal.SIGTERM)
    assert status == 0, b"".join(server.log).decode(errors="replace")


def test_listen_pid_of_another_process_is_ignored() -> None:
    """A child that inherited LISTEN_* (meant for its parent) must not take fd 3 for a socket."""
    env = dict(os.environ, **ENV, LISTEN_FDS="1", LISTEN_PID="1")
    command = [sys.executable, "-m", "dartle", "run", OPS_APP, "--host", "127.0.0.1", "--port", "0"]
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    server = ServerProcess(proc, "")
    try:
        log = server.wait_for_log(rb"running on http://\S+")
        assert b"passed by systemd" not in log
    finally:
        assert server.stop() == 0
