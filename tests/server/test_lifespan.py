"""The lifespan protocol with --lifespan auto/on/off."""

from __future__ import annotations

import signal
import subprocess
from typing import Any

import pytest

from tests.apps.lifespans import FAIL_MESSAGE
from tests.server.conftest import SERVER_KIND, new_rid
from tests.support.servers import dartle_command, uvicorn_command

EXIT_TIMEOUT = 30
# After SIGTERM a clean exit is status 0, or death by the re-raised signal (uvicorn does that).
CLEAN_EXIT = (0, -signal.SIGTERM)


def run_to_exit(target: str, *flags: str) -> subprocess.CompletedProcess[bytes]:
    """Run a server that is expected to exit by itself (bounded)."""
    import os

    from tests.support.servers import ROOT

    command = dartle_command if SERVER_KIND == "dartle" else uvicorn_command
    env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=str(ROOT))
    return subprocess.run(
        command(target, *flags),
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        timeout=EXIT_TIMEOUT,
        check=False,
    )


@pytest.mark.parametrize("mode", ["auto", "on"])
def test_startup_failed_exits_3_with_the_message(mode: str) -> None:
    result = run_to_exit("tests.apps.lifespans:failing_startup", "--lifespan", mode)
    assert result.returncode == 3, result.stdout.decode()
    assert FAIL_MESSAGE.encode() in result.stdout
    assert b"running on" not in result.stdout


def test_startup_exception_with_lifespan_on_is_fatal() -> None:
    result = run_to_exit("tests.apps.lifespans:raising_startup", "--lifespan", "on")
    assert result.returncode != 0
    assert b"marker-5120" in result.stdout
    assert b"running on" not in result.stdout


def test_unsupported_lifespan_with_on_is_fatal() -> None:
    result = run_to_exit("tests.apps.lifespans:no_lifespan", "--lifespan", "on")
    assert result.returncode != 0
    assert b"running on" not in result.stdout


def test_unsupported_lifespan_with_auto_continues(start_server: Any) -> None:
    srv = start_server("--lifespan", "auto", target="tests.apps.lifespans:no_lifespan")
    response = srv.http.get("/")
    assert response.status_code == 200
    assert response.json()["state"] in (None, {})
    assert srv.process.stop() in CLEAN_EXIT


def test_lifespan_off_never_calls_the_app(start_server: Any) -> None:
    srv = start_server("--lifespan", "off")
    assert srv.ctl("lifespan").json() == {"events": [], "ran": False}
    assert srv.process.stop() in CLEAN_EXIT
    assert "recorder: shutdown complete" not in srv.log_since(0)


def test_lifespan_on_runs_startup_and_shutdown(start_server: Any) -> None:
    srv = start_server("--lifespan", "on")
    log = srv.log_since(0)
    assert log.index("recorder: startup complete") < log.index("running on")
    lifespan = srv.ctl("lifespan").json()
    assert lifespan["ran"] and lifespan["events"] == ["lifespan.startup"]
    assert lifespan["scope_has_state"]
    state = srv.http.get("/state", headers={"x-rid": new_rid()}).json()["state"]
    assert state["greeting"] == "hello"
    assert srv.process.stop() in CLEAN_EXIT
    assert "recorder: shutdown complete" in srv.log_since(0)


def test_requests_wait_for_startup_complete(start_server: Any) -> None:
    srv = start_server("--lifespan", "auto", target="tests.apps.lifespans:slow_startup")
    assert srv.http.get("/").json()["state"] == {"ready": True}


def test_shutdown_failed_is_logged(start_server: Any) -> None:
    srv = start_server("--lifespan", "on", target="tests.apps.lifespans:failing_shutdown")
    assert srv.http.get("/").status_code == 200
    srv.process.stop()
    assert "marker-8842" in srv.log_since(0)
