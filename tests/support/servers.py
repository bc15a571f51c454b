"""Start real servers (dartle, uvicorn, ...) in subprocesses on free loopback ports.

Readiness is an event, not a sleep: we read the server's log until it prints the URL it
serves on. Every process started here is stopped by its PID when the context exits.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_URL = re.compile(rb"running on (https?://[^\s]+|unix socket [^\s]+)")
STARTUP_TIMEOUT = 30.0


@dataclass
class ServerProcess:
    """A server we started; `url` is where it listens, `log` what it printed so far.

    A thread reads the server's output as it comes, so a chatty server (access logs
    under load) never blocks on a full pipe.
    """

    proc: subprocess.Popen[bytes]
    url: str
    log: list[bytes] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._more = threading.Condition()
        self._eof = False
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        stream = self.proc.stdout
        assert stream is not None
        fd = stream.fileno()
        while True:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                chunk = b""
            with self._more:
                if chunk:
                    self.log.append(chunk)
                else:
                    self._eof = True
                self._more.notify_all()
            if not chunk:
                return

    @property
    def host(self) -> str:
        return self.url.split("//", 1)[1].rsplit(":", 1)[0]

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def read_log(self, timeout: float = 0.0) -> bytes:
        """What the server printed so far, after waiting up to `timeout` for more."""
        with self._more:
            if timeout > 0 and not self._eof:
                self._more.wait(timeout)
            return b"".join(self.log)

    def wait_for_log(self, pattern: bytes, timeout: float = 10.0) -> bytes:
        """Wait until the log matches `pattern` (a regex); returns the whole log."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._more:
            while True:
                text = b"".join(self.log)
                if rx.search(text):
                    return text
                remaining = deadline - time.monotonic()
                if self._eof:
                    raise AssertionError(f"server exited; log:\n{text.decode(errors='replace')}")
                if remaining <= 0:
                    raise AssertionError(
                        f"log never matched {pattern!r}:\n{text.decode(errors='replace')}"
                    )
                self._more.wait(remaining)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        """Signal the server and wait for it to exit; returns its exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(5)
        return self.proc.returncode


def _spawn(cmd: list[str], env: dict[str, str] | None) -> subprocess.Popen[bytes]:
    full_env = dict(os.environ)
    full_env["PYTHONUNBUFFERED"] = "1"
    full_env["PYTHONPATH"] = str(ROOT) + os.pathsep + full_env.get("PYTHONPATH", "")
    if env:
        full_env.update(env)
    return subprocess.Popen(
        cmd, cwd=ROOT, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )


def _started(proc: subprocess.Popen[bytes]) -> ServerProcess:
    """Wrap `proc` and wait for its "running on URL" line (killing it if none comes)."""
    server = ServerProcess(proc, "")
    try:
        text = server.wait_for_log(_URL.pattern, STARTUP_TIMEOUT)
    except AssertionError as exc:
        proc.kill()
        proc.wait()
        raise AssertionError(f"server did not start: {exc}") from None
    match = _URL.search(text)
    assert match is not None
    server.url = match.group(1).decode()
    return server


def dartle_command(target: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "dartle", "run", target, "--host", "127.0.0.1", "--port", "0", *args]


def uvicorn_command(target: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "uvicorn", target, "--host", "127.0.0.1", "--port", "0", *args]


@contextlib.contextmanager
def run_server(
    target: str, *args: str, kind: str = "dartle", env: dict[str, str] | None = None
) -> Iterator[ServerProcess]:
    """Serve `module:app` with `kind` ("dartle" or "uvicorn") on a free loopback port."""
    if kind == "dartle":
        cmd = dartle_command(target, *args)
    elif kind == "uvicorn":
        cmd = uvicorn_command(target, *args)
    else:
        raise ValueError(f"unknown server kind {kind!r}")
    server = _started(_spawn(cmd, env))
    try:
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def run_command(cmd: list[str], env: dict[str, str] | None = None) -> Iterator[ServerProcess]:
    """Run an arbitrary server command that prints 'running on URL' (e.g. flags we test)."""
    server = _started(_spawn(cmd, env))
    try:
        yield server
    finally:
        server.stop()
