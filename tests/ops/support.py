"""Helpers for the operations tests: real dartle processes, real clients, their logs."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.support.servers import ROOT, ServerProcess

OPS_APP = "tests.apps.ops_app:app"
ENV = {"PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT)}


def serving_pids(log: bytes) -> list[int]:
    """Workers that announced they serve, in order."""
    return [int(pid) for pid in re.findall(rb"Worker \[(\d+)\] serving", log)]


def stopped_pids(log: bytes) -> list[int]:
    return [int(pid) for pid in re.findall(rb"Worker \[(\d+)\] stopped", log)]


def fresh_get(url: str, path: str = "/pid", timeout: float = 20.0) -> httpx.Response:
    """One request on a connection of its own (a new accept on the listening socket)."""
    with httpx.Client(timeout=timeout, limits=httpx.Limits(max_keepalive_connections=0)) as client:
        return client.get(url + path)


def pids_seen(url: str, want: int, attempts: int = 400) -> set[int]:
    """Ask on fresh connections until `want` different workers answered (or attempts run out)."""
    seen: set[int] = set()
    for _ in range(attempts):
        seen.add(int(fresh_get(url).text))
        if len(seen) >= want:
            break
    return seen


def run_dartle(*args: str, env: dict[str, str] | None = None, cwd: Path = ROOT,
               timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run `python -m dartle ARGS` to completion (for commands that exit by themselves)."""
    return subprocess.run(
        [sys.executable, "-m", "dartle", *args], cwd=cwd, env=dict(os.environ, **ENV, **(env or {})),
        capture_output=True, text=True, timeout=timeout, check=False,
    )


def mark(process: ServerProcess) -> int:
    return len(process.read_log())


def wait_log(process: ServerProcess, pattern: bytes, since: int = 0, timeout: float = 30.0) -> bytes:
    """Wait until the log after offset `since` matches `pattern`; returns that part of the log."""
    if pattern.startswith(b"(?s)"):
        pattern = pattern[4:]  # the whole expression is matched with DOTALL anyway
    process.wait_for_log(rb"(?s)\A.{%d}.*?" % since + pattern, timeout)
    return b"".join(process.log)[since:]


@dataclass
class Load:
    """Client threads sending requests until stopped; every outcome is recorded per client."""

    url: str
    clients: int = 4
    keep_alive: bool = False
    path: str = "/pid"
    max_requests: int = 20000  # per client: the load stops by itself
    results: list[list[tuple[int | None, str | None]]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _progress: threading.Condition = field(default_factory=threading.Condition)
    _threads: list[threading.Thread] = field(default_factory=list)

    def __enter__(self) -> Load:
        self.results = [[] for _ in range(self.clients)]
        for index in range(self.clients):
            thread = threading.Thread(target=self._client, args=(index,), daemon=True)
            self._threads.append(thread)
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def _client(self, index: int) -> None:
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1 if self.keep_alive else 0)
        record = self.results[index]
        with httpx.Client(timeout=20.0, limits=limits) as client:
            for _ in range(self.max_requests):
                if self._stop.is_set():
                    return
                try:
                    response = client.get(self.url + self.path)
                    record.append((int(response.text), None) if response.status_code == 200
                                  else (None, f"status {response.status_code}"))
                except httpx.HTTPError as exc:
                    record.append((None, f"{type(exc).__name__}: {exc}"))
                with self._progress:
                    self._progress.notify_all()

    def wait_for(self, requests: int, timeout: float = 30.0) -> None:
        """Wait until every client completed at least `requests` more requests than now."""
        targets = [len(r) + requests for r in self.results]
        with self._progress:
            done = self._progress.wait_for(
                lambda: all(len(r) >= t for r, t in zip(self.results, targets, strict=False)), timeout
            )
        assert done, f"load stalled: {[len(r) for r in self.results]} < {targets}"

    def errors(self) -> list[str]:
        return [error for record in self.results for _, error in record if error is not None]

    def pids(self) -> set[int]:
        return {pid for record in self.results for pid, _ in record if pid is not None}
