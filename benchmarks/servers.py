"""The servers under test, and how one is started, checked and stopped.

Each server is one row of `SERVERS`: the arguments given to the bench venv's Python,
and the modes (protocols) it can serve. Adding an anchor is adding a row. Every server
runs one worker unless a stack asks for more, with access logs off: the benchmark
compares the cost of serving a request, not of logging it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks import cpu, probes
from benchmarks.benchenv import OUT, ROOT
from benchmarks.scenarios import Scenario, Stack

HOST = "127.0.0.1"
STARTUP_TIMEOUT = 30.0  # seconds for a server to answer its first request
STOP_TIMEOUT = 15.0


@dataclass(frozen=True)
class ServerSpec:
    """How to run one server: `args` follow `python`, with {app}, {host} and {port} filled in.

    modes: what the server can take part in, each with the flags it needs for it:
        "http1" (HTTP/1.1), "h2c" (HTTP/2 without TLS), "websocket", "idle" (holding
        thousands of idle keep-alive connections: the flags that keep them open). A
        scenario whose mode a server lacks reports it as "not supported".
    workers_args: appended when a stack asks for more than one worker ({workers}).
    """

    name: str
    distribution: str  # PyPI name, for the version in RESULTS.md
    args: tuple[str, ...]
    modes: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: {"http1": (), "websocket": (), "idle": ()})
    workers_args: tuple[str, ...] = ("--workers", "{workers}")

    def supports(self, mode: str) -> bool:
        return mode in self.modes

    def command(self, python: Path, app: str, port: int, mode: str = "http1",
                workers: int = 1) -> list[str]:
        args = [*self.args, *self.modes[mode]]
        if workers > 1:
            args += self.workers_args
        return [str(python), *(arg.format(app=app, port=port, host=HOST, workers=workers)
                               for arg in args)]


# Idle connections must outlive the few seconds it takes to open 10,000 of them.
IDLE_SECONDS = "600"

SERVERS: dict[str, ServerSpec] = {
    spec.name: spec
    for spec in (
        # HTTP/2 without TLS (prior knowledge) is detected on the HTTP/1.1 port; --http2 is
        # the default, said here so that a changed default cannot turn a row into HTTP/1.1.
        ServerSpec("dartle", "dartle", (
            "-m", "dartle", "run", "{app}", "--host", "{host}", "--port", "{port}",
            "--no-access-log", "--log-level", "warning",
        ), {"http1": (), "h2c": ("--http2",), "websocket": (),
            "idle": ("--timeout-keep-alive", IDLE_SECONDS)}),
        ServerSpec("uvicorn", "uvicorn", (
            "-m", "uvicorn", "{app}", "--host", "{host}", "--port", "{port}",
            "--http", "httptools", "--loop", "uvloop", "--no-access-log", "--log-level", "warning",
        ), {"http1": (), "websocket": ("--ws", "websockets-sansio"),
            "idle": ("--timeout-keep-alive", IDLE_SECONDS)}),
        # granian always runs its worker in a child process; the CPU of the whole
        # process tree is counted, so that costs it nothing here. Plain-text HTTP/2
        # (prior knowledge) is detected on the same port.
        ServerSpec("granian", "granian", (
            "-m", "granian", "--interface", "asgi", "--host", "{host}", "--port", "{port}",
            "--loop", "uvloop", "--no-access-log", "--log-level", "warning", "{app}",
        ), {"http1": (), "h2c": (), "websocket": (),
            # It holds at most --backpressure connections per worker (default 1024: the
            # rest wait in the listen queue), and closes an idle keep-alive connection
            # when no request head comes within the header timeout (at most 60 s).
            "idle": ("--backpressure", "16384", "--http1-header-read-timeout", "60000")}),
        # apps/hypercorn.toml: keep connections open past 1000 requests, as the others do.
        ServerSpec("hypercorn", "hypercorn", (
            "-m", "hypercorn", "--config", "benchmarks/apps/hypercorn.toml",
            "--bind", "{host}:{port}", "--worker-class", "uvloop", "--log-level", "warning",
            "{app}",
        ), {"http1": (), "h2c": (), "websocket": (), "idle": ("--keep-alive", IDLE_SECONDS)}),
        # daphne (Twisted) has no worker processes, no HTTP/2 without TLS; -v 0: no access log.
        ServerSpec("daphne", "daphne", (
            "-m", "daphne", "-b", "{host}", "-p", "{port}", "-v", "0", "{app}",
        ), workers_args=()),
        # Not an ASGI server: the floor (see benchmarks/apps/canned.py). It ignores {app}.
        ServerSpec("canned", "uvloop", (
            "-m", "benchmarks.apps.canned", "--host", "{host}", "--port", "{port}",
        ), {"http1": ()}, workers_args=()),
    )
}


class ServerFailed(Exception):
    """The server did not start, died, or did not give the scenario's right answer."""

    log_tail = ""  # what the server printed, when it failed to start


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@dataclass
class RunningServer:
    spec: ServerSpec
    scenario: Scenario
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

    def check(self) -> None:
        """Raise ServerFailed unless the server is alive and gives the scenario's answer."""
        if self.proc.poll() is not None:
            raise ServerFailed(f"exited with status {self.proc.returncode}")
        try:
            probes.check(self.scenario, self.port)
        except probes.WrongAnswer as exc:
            raise ServerFailed(str(exc)) from None
        except OSError as exc:
            raise ServerFailed(f"request failed: {exc}") from None


def _wait_ready(server: RunningServer) -> None:
    """Poll until the port accepts a connection, then check one real answer."""
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
    server.check()


@contextlib.contextmanager
def started(spec: ServerSpec, python: Path, stack: Stack, scenario: Scenario,
            cpus: str | None, env: Mapping[str, str] | None = None) -> Iterator[RunningServer]:
    """Start `spec` serving the stack's app (pinned to `cpus` if given); stop it by PID after.

    `env`: more environment variables for the server (a database's URL).
    """
    port = free_port()
    OUT.mkdir(exist_ok=True)
    log_path = OUT / f"{scenario.name}-{stack.name.replace(' ', '-')}.log"
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1", **(env or {})}
    environment.pop("VIRTUAL_ENV", None)
    pin = ["taskset", "-c", cpus] if cpus is not None else []
    command = spec.command(python, stack.app, port, scenario.mode, stack.workers)
    with open(log_path, "wb") as log:
        # taskset execs the server, so proc.pid is the server's own PID.
        proc = subprocess.Popen([*pin, *command], cwd=ROOT, env=environment, stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    server = RunningServer(spec, scenario, proc, port, log_path)
    try:
        _wait_ready(server)
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
