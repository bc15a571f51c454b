"""The servers under test, and how one is started, checked, measured and stopped.

Each server is one row of `SERVERS`: the arguments given to the bench venv's Python.
Adding an anchor (daphne, ...) is adding a row. Every server runs one process serving
one event loop where it can be told so, pinned to one core, with access logs off: the
benchmark compares the cost of serving a request, not of logging it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from benchmarks import cpu
from benchmarks.benchenv import OUT, ROOT

HOST = "127.0.0.1"
STARTUP_TIMEOUT = 30.0  # seconds for a server to answer its first request
STOP_TIMEOUT = 15.0


@dataclass(frozen=True)
class ServerSpec:
    """How to run one server: `args` follow `python`, with {app} and {port} filled in."""

    name: str
    distribution: str  # PyPI name, for the version in RESULTS.md
    args: tuple[str, ...]
    only: tuple[str, ...] = ()  # the scenarios it can serve, when not every one

    def serves(self, scenario: str) -> bool:
        return not self.only or scenario in self.only

    def command(self, python: Path, app: str, port: int) -> list[str]:
        return [str(python), *(arg.format(app=app, port=port, host=HOST) for arg in self.args)]


SERVERS: dict[str, ServerSpec] = {
    spec.name: spec
    for spec in (
        ServerSpec("dartle", "dartle", (
            "-m", "dartle", "run", "{app}", "--host", "{host}", "--port", "{port}",
            "--no-access-log",
        )),
        ServerSpec("uvicorn", "uvicorn", (
            "-m", "uvicorn", "{app}", "--host", "{host}", "--port", "{port}",
            "--http", "httptools", "--loop", "uvloop", "--no-access-log", "--log-level", "warning",
        )),
        # granian always runs its worker in a child process; the CPU of the whole
        # process tree is counted, so that costs it nothing here.
        ServerSpec("granian", "granian", (
            "-m", "granian", "--interface", "asgi", "--host", "{host}", "--port", "{port}",
            "--workers", "1", "--loop", "uvloop", "--no-access-log", "--log-level", "warning",
            "{app}",
        )),
        ServerSpec("hypercorn", "hypercorn", (
            "-m", "hypercorn", "--bind", "{host}:{port}", "--workers", "1",
            "--worker-class", "uvloop", "--log-level", "warning", "{app}",
        )),
        # Not an ASGI server: the floor (see benchmarks/apps/canned.py). It ignores {app}.
        ServerSpec("canned", "uvloop", (
            "-m", "benchmarks.apps.canned", "--host", "{host}", "--port", "{port}",
        ), only=("plaintext", "pipelined")),
    )
}


class ServerFailed(Exception):
    """The server did not start, or did not answer the hello-world request correctly."""

    log_tail = ""  # what the server printed, when it failed to start


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def http_get(port: int, path: str = "/", timeout: float = 5.0) -> tuple[int, bytes]:
    """One GET over a fresh connection (Connection: close); returns (status, body)."""
    with socket.create_connection((HOST, port), timeout=timeout) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
                     "Connection: close\r\n\r\n".encode())
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    raw = b"".join(chunks)
    head, _, body = raw.partition(b"\r\n\r\n")
    try:
        status = int(head.split(b" ", 2)[1])
    except (IndexError, ValueError):
        raise ServerFailed(f"not an HTTP response: {raw[:200]!r}") from None
    return status, body


@dataclass
class RunningServer:
    spec: ServerSpec
    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.rstrip().splitlines()[-lines:])

    def check(self, expected_body: bytes) -> None:
        """Raise ServerFailed unless the server is alive and answers 200 + expected body."""
        if self.proc.poll() is not None:
            raise ServerFailed(f"exited with status {self.proc.returncode}")
        try:
            status, body = http_get(self.port)
        except OSError as exc:
            raise ServerFailed(f"request failed: {exc}") from None
        if status != 200 or body != expected_body:
            raise ServerFailed(f"answered {status} {body[:80]!r}, expected 200 {expected_body!r}")


def _wait_ready(server: RunningServer, expected_body: bytes) -> None:
    """Poll until the port accepts a connection, then check one real response."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        if server.proc.poll() is not None:
            raise ServerFailed(f"exited with status {server.proc.returncode} before serving")
        try:
            socket.create_connection((HOST, server.port), timeout=1.0).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                raise ServerFailed(f"not listening after {STARTUP_TIMEOUT:.0f} s") from None
            time.sleep(0.05)  # poll interval while the server imports and binds
    server.check(expected_body)


@contextlib.contextmanager
def started(spec: ServerSpec, python: Path, app: str, expected_body: bytes,
            cpu: str | None) -> Iterator[RunningServer]:
    """Start `spec` serving `app` (pinned to core `cpu` if given) and stop it by PID after."""
    port = free_port()
    OUT.mkdir(exist_ok=True)
    log_path = OUT / f"{spec.name}.log"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    env.pop("VIRTUAL_ENV", None)
    pin = ["taskset", "-c", cpu] if cpu is not None else []
    with open(log_path, "wb") as log:
        # taskset execs the server, so proc.pid is the server's own PID.
        proc = subprocess.Popen([*pin, *spec.command(python, app, port)], cwd=ROOT, env=env,
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    server = RunningServer(spec, proc, port, log_path)
    try:
        _wait_ready(server, expected_body)
    except BaseException as exc:
        stop(server)
        if isinstance(exc, ServerFailed):
            exc.log_tail = server.log_tail()
        raise
    try:
        yield server
    finally:
        stop(server)


def stop(server: RunningServer) -> None:
    """SIGTERM the server (then SIGKILL), and any of its worker processes left behind."""
    children = [(pid, cpu.start_time(pid)) for pid in cpu.descendants(server.pid)]
    if server.proc.poll() is None:
        server.proc.send_signal(signal.SIGTERM)
        try:
            server.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            server.proc.kill()
            server.proc.wait()
    for pid, started_at in children:  # workers the server itself should have stopped
        # Same PID and same start time: still our worker, not a reused PID.
        if started_at is not None and cpu.start_time(pid) == started_at:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
