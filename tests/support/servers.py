"""Start real servers (dartle, uvicorn, ...) in subprocesses on free loopback ports.

Readiness is an event, not a sleep: we read the server's log until it prints the URL it
serves on. Every process started here is stopped by its PID when the context exits.
"""

from __future__ import annotations

import contextlib
import os
import re
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_URL = re.compile(rb"running on (http://[^\s]+|unix socket [^\s]+)")
STARTUP_TIMEOUT = 30.0


@dataclass
class ServerProcess:
    """A server we started; `url` is where it listens, `log` what it printed so far."""

    proc: subprocess.Popen[bytes]
    url: str
    log: list[bytes] = field(default_factory=list)

    @property
    def host(self) -> str:
        return self.url.split("//", 1)[1].rsplit(":", 1)[0]

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def read_log(self, timeout: float = 0.0) -> bytes:
        """Collect whatever the server printed, waiting up to `timeout` for more."""
        assert self.proc.stdout is not None
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        while True:
            remaining = max(0.0, deadline - time.monotonic())
            if not sel.select(remaining):
                break
            chunk = os.read(self.proc.stdout.fileno(), 65536)
            if not chunk:
                break
            self.log.append(chunk)
            timeout = 0.05  # drain what is already there, then stop
            deadline = time.monotonic() + timeout
        sel.close()
        return b"".join(self.log)

    def wait_for_log(self, pattern: bytes, timeout: float = 10.0) -> bytes:
        """Wait until the log matches `pattern` (a regex); returns the whole log."""
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        rx = re.compile(pattern)
        while True:
            text = b"".join(self.log)
            if rx.search(text):
                return text
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"log never matched {pattern!r}:\n{text.decode(errors='replace')}")
            sel = selectors.DefaultSelector()
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            ready = sel.select(remaining)
            sel.close()
            if ready:
                chunk = os.read(self.proc.stdout.fileno(), 65536)
                if not chunk:
                    raise AssertionError(f"server exited; log:\n{text.decode(errors='replace')}")
                self.log.append(chunk)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        """Signal the server and wait for it to exit; returns its exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.read_log()
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


def _await_url(proc: subprocess.Popen[bytes], log: list[bytes]) -> str:
    assert proc.stdout is not None
    deadline = time.monotonic() + STARTUP_TIMEOUT
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    try:
        while time.monotonic() < deadline:
            if not sel.select(deadline - time.monotonic()):
                break
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                break
            log.append(chunk)
            match = _URL.search(b"".join(log))
            if match:
                return match.group(1).decode()
    finally:
        sel.close()
    proc.kill()
    proc.wait()
    raise AssertionError("server did not start:\n" + b"".join(log).decode(errors="replace"))


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
    proc = _spawn(cmd, env)
    log: list[bytes] = []
    server = ServerProcess(proc, _await_url(proc, log), log)
    try:
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def run_command(cmd: list[str], env: dict[str, str] | None = None) -> Iterator[ServerProcess]:
    """Run an arbitrary server command that prints 'running on URL' (e.g. flags we test)."""
    proc = _spawn(cmd, env)
    log: list[bytes] = []
    server = ServerProcess(proc, _await_url(proc, log), log)
    try:
        yield server
    finally:
        server.stop()
