"""Memory per idle keep-alive connection: open many, let them idle, read the server's RSS.

    python -m benchmarks.idle --port P --connections 10000

The client (this module, run in the bench venv, pinned to the load core) opens the
connections from one process, a bounded number at a time, sends one GET / on each and
reads its answer, so every connection has served a request and sits idle in
keep-alive. It prints `OPEN` and a JSON count, then waits for a line on stdin: the
harness reads the server's resident memory meanwhile. On that line the client sends
a second request on every connection (an idle connection the server dropped is no
connection held) and prints `END` with the counts.

The figure: (server RSS with the connections open - RSS before) / connections, RSS
being the sum of VmRSS over the server's process tree, from /proc.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks import cpu
from benchmarks.benchenv import ROOT
from benchmarks.probes import request_bytes
from benchmarks.scenarios import Request, Scenario

CONCURRENT_OPENS = 100  # connections being opened at once: kind to a small listen backlog
TIMEOUT = 30.0  # seconds for one connection to open and be answered
PHASE_TIMEOUT = 300.0  # seconds for the client to open (or check) all of them


@dataclass
class IdleResult:
    """What one idle-connections run found; `problems` lists why it is no result."""

    connections: int = 0  # asked for
    opened: int = 0  # opened and answered once
    kept: int = 0  # still answering after the RSS was read
    rss_before: int = 0  # bytes
    rss_after: int = 0
    output: str = ""
    problems: list[str] = field(default_factory=list)

    @property
    def bytes_per_connection(self) -> float:
        return (self.rss_after - self.rss_before) / self.opened if self.opened else 0.0


def tree_rss(pid: int) -> int:
    """Resident memory in bytes of `pid` and its descendants (VmRSS from /proc)."""
    total = 0
    for member in (pid, *cpu.descendants(pid)):
        try:
            status = Path(f"/proc/{member}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024  # kB
    return total


def raise_fd_limit() -> int:
    """Lift this process's open-files soft limit to the hard one; returns the new limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        return hard
    return soft


# -- the client -----------------------------------------------------------------------


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    request: bytes) -> bool:
    """Send one request; True if a complete 200 response came back on the same connection."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = head.split(b" ", 2)[1]
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    await reader.readexactly(length)
    return status == b"200"


async def _open(port: int, request: bytes, gate: asyncio.Semaphore
                ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
    async with gate:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", port), TIMEOUT)
        except (OSError, asyncio.TimeoutError):
            return None
        try:
            if await asyncio.wait_for(_exchange(reader, writer, request), TIMEOUT):
                return reader, writer
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, IndexError,
                ValueError):
            pass
        writer.close()
        return None


async def _still_open(conn: tuple[asyncio.StreamReader, asyncio.StreamWriter], request: bytes,
                      gate: asyncio.Semaphore) -> bool:
    async with gate:
        try:
            return await asyncio.wait_for(_exchange(*conn, request), TIMEOUT)
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, IndexError,
                ValueError):
            return False


async def _client(port: int, connections: int, path: str) -> None:
    request = request_bytes(Request(path=path), port, close=False)
    gate = asyncio.Semaphore(CONCURRENT_OPENS)
    began = time.monotonic()
    opened = await asyncio.wait_for(asyncio.gather(
        *(_open(port, request, gate) for _ in range(connections))), PHASE_TIMEOUT)
    conns = [conn for conn in opened if conn is not None]
    print("OPEN " + json.dumps({"opened": len(conns), "seconds": time.monotonic() - began}),
          flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.readline)  # the harness read the RSS
    kept = await asyncio.wait_for(asyncio.gather(
        *(_still_open(conn, request, gate) for conn in conns)), PHASE_TIMEOUT)
    print("END " + json.dumps({"opened": len(conns), "kept": sum(kept)}), flush=True)
    for _, writer in conns:
        writer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--connections", type=int, default=10_000)
    parser.add_argument("--path", default="/")
    args = parser.parse_args()
    limit = raise_fd_limit()
    if limit < args.connections + 100:
        raise SystemExit(f"the open-files limit is {limit}: too low for {args.connections}"
                         " connections (raise the hard limit: ulimit -Hn)")
    import uvloop

    uvloop.run(_client(args.port, args.connections, args.path))


# -- the harness side -------------------------------------------------------------------


def measure(python: str, scenario: Scenario, pid: int, port: int,
            cpus: str | None) -> IdleResult:
    """Open the scenario's connections to the server `pid` listening on `port`."""
    result = IdleResult(connections=scenario.connections, rss_before=tree_rss(pid))
    cmd = ["taskset", "-c", cpus] if cpus is not None else []
    cmd += [python, "-m", "benchmarks.idle", "--port", str(port), "--connections",
            str(scenario.connections), "--path", scenario.request.path]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdin is not None and proc.stdout is not None
    output = []
    try:
        for line in proc.stdout:  # the client's phases are bounded by PHASE_TIMEOUT
            output.append(line)
            if line.startswith("OPEN "):
                result.opened = json.loads(line[5:])["opened"]
                result.rss_after = tree_rss(pid)
                proc.stdin.write("check\n")
                proc.stdin.flush()
            elif line.startswith("END "):
                result.kept = json.loads(line[4:])["kept"]
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    result.output = "".join(output)
    if not result.rss_after:
        result.problems.append(f"the client failed (status {proc.returncode}): "
                               f"{result.output.strip()[-300:]}")
        return result
    if result.opened < result.connections:
        result.problems.append(f"only {result.opened} of {result.connections} connections "
                               "opened and answered")
    if result.kept < result.opened:
        result.problems.append(f"the server dropped {result.opened - result.kept} of "
                               f"{result.opened} idle connections")
    return result


if __name__ == "__main__":
    main()
