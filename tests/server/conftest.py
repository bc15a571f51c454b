"""Fixtures for the HTTP/1.1 server's black-box tests.

Every test talks to a real server process over real sockets. The default app is
tests/apps/recorder.py, which records what it saw; tests read that back through its /ctl
endpoints (an event), never by sleeping.

DARTLE_TEST_SERVER=uvicorn runs the same tests against uvicorn (tests for dartle-only
flags and features skip), which is how the tests and their apps were checked against a
known-good server.
"""

from __future__ import annotations

import contextlib
import os
import re
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.server.rawhttp import RawConn
from tests.support.servers import ServerProcess, run_server

SERVER_KIND = os.environ.get("DARTLE_TEST_SERVER", "dartle")
RECORDER = "tests.apps.recorder:app"
LOOPS = ("uvloop", "asyncio")

dartle_only = pytest.mark.skipif(
    SERVER_KIND != "dartle", reason="a dartle flag or feature that uvicorn does not have"
)


def uvicorn_differs(reason: str) -> pytest.MarkDecorator:
    """A test of the contract that uvicorn is known to fail (checked when validating tests)."""
    return pytest.mark.xfail(SERVER_KIND == "uvicorn", reason=f"uvicorn: {reason}", strict=True)


def new_rid(prefix: str = "r") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def rss_kib(pid: int) -> int:
    """Resident set size of a process, from /proc/PID/status."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


class Harness:
    """A running server plus the ways a test talks to it."""

    def __init__(self, process: ServerProcess) -> None:
        self.process = process
        self.url = process.url
        self.host = process.host
        self.port = process.port
        self.http = httpx.Client(base_url=self.url, timeout=30.0)
        # Control requests get a client of their own, apart from the connections under test,
        # and a fresh connection each: a pooled one could race a short keep-alive timeout.
        self._control = httpx.Client(
            base_url=self.url, timeout=40.0, limits=httpx.Limits(max_keepalive_connections=0)
        )
        self._raws: list[RawConn] = []
        self.violations_checked = 0

    def raw(self, timeout: float = 10.0) -> RawConn:
        conn = RawConn.tcp(self.host, self.port, timeout)
        self._raws.append(conn)
        return conn

    def ctl(self, name: str, **params: Any) -> httpx.Response:
        return self._control.get(f"/ctl/{name}", params=params)

    def info(self, rid: str) -> dict[str, Any]:
        return dict(self.ctl("info", rid=rid).json())

    def wait(self, rid: str, until: str, timeout: float = 10.0) -> dict[str, Any]:
        """Wait until the app's record for `rid` satisfies `until`; fail if it never does."""
        response = self.ctl("wait", rid=rid, until=until, timeout=timeout)
        record = dict(response.json())
        assert response.status_code == 200, f"app never reached {until!r}: {record}"
        return record

    def release(self, rid: str) -> None:
        self.ctl("release", rid=rid).raise_for_status()

    def seen(self) -> list[str]:
        return list(self.ctl("seen").json()["seen"])

    def violations(self) -> list[str]:
        return list(self.ctl("seen").json()["violations"])

    def pid(self) -> int:
        return int(self.ctl("pid").json()["pid"])

    def log_mark(self) -> int:
        return len(self.process.read_log())

    def log_since(self, mark: int) -> str:
        return self.process.read_log()[mark:].decode(errors="replace")

    def wait_for_log(self, pattern: str, mark: int = 0, timeout: float = 10.0) -> str:
        """Wait until the log written after `mark` matches `pattern`; returns that part."""
        rx = re.compile(pattern.encode())
        self.process.wait_for_log(rb"(?s)\A.{%d}.*" % mark + rx.pattern, timeout)
        return self.log_since(mark)

    def close(self) -> None:
        for conn in self._raws:
            conn.close()
        self._raws.clear()
        self.http.close()
        self._control.close()


@contextlib.contextmanager
def serve(*flags: str, target: str = RECORDER, env: dict[str, str] | None = None) -> Iterator[Harness]:
    """Start a server for `target` with `flags`; stop it (SIGTERM) afterwards."""
    with run_server(target, *flags, kind=SERVER_KIND, env=env) as process:
        harness = Harness(process)
        try:
            yield harness
        finally:
            harness.close()


@pytest.fixture(scope="module", params=LOOPS)
def shared_server(request: pytest.FixtureRequest) -> Iterator[Harness]:
    """One recorder server per test module and event loop."""
    with serve("--loop", request.param, "--lifespan", "on") as harness:
        yield harness


@pytest.fixture
def server(shared_server: Harness) -> Iterator[Harness]:
    """The module's server; after each test, the app must have seen no spec violation."""
    yield shared_server
    for conn in shared_server._raws:
        conn.close()
    shared_server._raws.clear()
    shared_server.process.read_log()  # drain the pipe so a chatty server never blocks on it
    violations = shared_server.violations()
    before, shared_server.violations_checked = shared_server.violations_checked, len(violations)
    assert violations[before:] == [], "the app saw ASGI spec violations"


@pytest.fixture
def start_server() -> Iterator[Callable[..., Harness]]:
    """Start extra servers with given flags: `start_server("--timeout-header", "1")`."""
    with contextlib.ExitStack() as stack:

        def start(*flags: str, target: str = RECORDER, env: dict[str, str] | None = None) -> Harness:
            return stack.enter_context(serve(*flags, target=target, env=env))

        yield start


@pytest.fixture(params=LOOPS)
def loop(request: pytest.FixtureRequest) -> str:
    """Each event loop in turn, for tests that start their own servers."""
    return str(request.param)
